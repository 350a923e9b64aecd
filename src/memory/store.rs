//! The store itself: a sharded concurrent map from (namespace, key) to entry, plus a sorted index
//! of the keys (see `index`) for listing and glob search.
//!
//! Locking: a mutation holds the shard guard of its key while it updates the index and reports the
//! change to the sink, so for one key the sink sees changes in the order they were applied. Locks
//! are never taken in the other order (index, then shard); readers of the index release it before
//! they touch the map. No guard is ever held across an `.await`.

use super::image::{MemoryImage, StoredRecord, StoredValue};
use super::index::{KeyIndex, Scan};
use super::key::{validate_path, Address, SlotKey};
use super::pattern::KeyPattern;
use super::{Entry, MemoryChange, MemoryError, MemoryRecord};
use crate::clock::SharedClock;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use parking_lot::RwLock;
use serde_json::Value;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Receives every mutation made through the store's public write methods (put, compare-and-swap,
/// delete, import), synchronously, while the key is still locked. It must be cheap and must not
/// call back into the store; sending to a channel is the intended use.
pub type ChangeSink = Arc<dyn Fn(MemoryChange) + Send + Sync>;

/// Size limits that protect the store, and the prompts it feeds, from runaway values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Longest key, and longest namespace, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, measured as the length of its compact JSON.
    pub max_value_bytes: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
        }
    }
}

/// How long a written entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ttl {
    /// The namespace's default set with [`MemoryStore::set_default_ttl`]; no expiry when it has none.
    #[default]
    Default,
    /// No expiry, whatever the namespace's default.
    Never,
    /// Expires this long after the write.
    After(Duration),
}

/// `None` means no expiry: for callers that resolved the namespace default themselves.
impl From<Option<Duration>> for Ttl {
    fn from(ttl: Option<Duration>) -> Self {
        ttl.map_or(Ttl::Never, Ttl::After)
    }
}

/// What the map holds for one key. The access count is atomic so that reads, which count, only
/// need the shard's shared lock.
#[derive(Debug)]
struct Slot {
    value: StoredValue,
    created_ms: u64,
    updated_ms: u64,
    expires_ms: Option<u64>,
    version: u64,
    access_count: AtomicU64,
}

impl Slot {
    fn fresh(value: Value, now: u64, expires_ms: Option<u64>) -> Self {
        Self {
            value: StoredValue::Parsed(value),
            created_ms: now,
            updated_ms: now,
            expires_ms,
            version: 1,
            access_count: AtomicU64::new(0),
        }
    }

    fn from_entry(entry: Entry) -> Self {
        Self {
            value: StoredValue::Parsed(entry.value),
            created_ms: entry.created_ms,
            updated_ms: entry.updated_ms,
            expires_ms: entry.expires_ms,
            version: entry.version,
            access_count: AtomicU64::new(entry.access_count),
        }
    }

    fn to_entry(&self) -> Entry {
        Entry {
            value: self.value.to_value(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            expires_ms: self.expires_ms,
            version: self.version,
            access_count: self.access_count.load(Ordering::Relaxed),
        }
    }

    fn is_live(&self, now: u64) -> bool {
        is_live(self.expires_ms, now)
    }

    /// The version a compare-and-swap compares against: 0 for an entry that has expired.
    fn live_version(&self, now: u64) -> u64 {
        if self.is_live(now) {
            self.version
        } else {
            0
        }
    }
}

fn is_live(expires_ms: Option<u64>, now: u64) -> bool {
    expires_ms.is_none_or(|deadline| now < deadline)
}

/// Where the namespaces a swarm shares with the project live: the state dir's project memory
/// (see `session::project`), reached through this so the store needs no storage backend.
pub trait ProjectMemory: Send + Sync {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>, String>;
    /// `Ok(Err(current))`: the expected version did not match (0: no live entry).
    fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        ttl_ms: Option<u64>,
        expected_version: Option<u64>,
    ) -> Result<Result<Entry, u64>, String>;
    fn delete(&self, namespace: &str, key: &str) -> Result<bool, String>;
    /// Every live entry.
    fn list(&self) -> Result<Vec<MemoryRecord>, String>;
}

type ProjectLink = (Arc<dyn ProjectMemory>, Vec<String>);

/// Keys are hashed on every access and restoring a snapshot hashes ~100k of them: foldhash costs
/// a fraction of the default SipHash, and its per-store random seed keeps colliding keys from
/// being chosen in advance.
type SlotMap = DashMap<SlotKey, Slot, foldhash::fast::RandomState>;

struct Inner {
    project: RwLock<Option<ProjectLink>>,
    map: SlotMap,
    index: RwLock<KeyIndex>,
    clock: SharedClock,
    limits: MemoryLimits,
    sink: RwLock<Option<ChangeSink>>,
    default_ttls: RwLock<HashMap<String, Duration>>,
}

/// The shared, namespaced memory. Cloning is cheap and every clone sees the same entries.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.inner.map.len())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Records matching a query, possibly cut short, and how many matched in all.
pub(crate) struct Page {
    pub(crate) records: Vec<MemoryRecord>,
    pub(crate) total: usize,
}

impl MemoryStore {
    pub fn new(clock: SharedClock, limits: MemoryLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                project: RwLock::new(None),
                map: DashMap::with_hasher(foldhash::fast::RandomState::default()),
                index: RwLock::new(KeyIndex::default()),
                clock,
                limits,
                sink: RwLock::new(None),
                default_ttls: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub fn limits(&self) -> MemoryLimits {
        self.inner.limits
    }

    /// Sends every read and write of `namespaces` to `project` instead of this store: those
    /// entries are shared live with other sessions and never enter this session's journal.
    pub fn share_with_project(&self, project: Arc<dyn ProjectMemory>, namespaces: Vec<String>) {
        *self.inner.project.write() = Some((project, namespaces));
    }

    fn project_for(&self, namespace: &str) -> Option<Arc<dyn ProjectMemory>> {
        let link = self.inner.project.read();
        let (project, namespaces) = link.as_ref()?;
        namespaces
            .iter()
            .any(|ns| ns == namespace)
            .then(|| Arc::clone(project))
    }

    /// Sets the receiver of every later mutation, replacing any earlier one.
    pub fn set_sink(&self, sink: ChangeSink) {
        *self.inner.sink.write() = Some(sink);
    }

    /// Sets the TTL that writes with [`Ttl::Default`] get in `namespace`; `None` removes it.
    /// This is configuration, not state: it is not reported to the sink, and whoever restores a
    /// store sets it again.
    pub fn set_default_ttl(&self, namespace: &str, ttl: Option<Duration>) {
        let mut defaults = self.inner.default_ttls.write();
        match ttl {
            Some(ttl) => defaults.insert(namespace.to_owned(), ttl),
            None => defaults.remove(namespace),
        };
    }

    /// Writes `value` under `key`, creating the key (version 1) or replacing its value (version + 1).
    pub fn put(
        &self,
        namespace: &str,
        key: &str,
        value: Value,
        ttl: Ttl,
    ) -> Result<Entry, MemoryError> {
        self.write(namespace, key, value, ttl, None)
    }

    /// Writes `value` only if the key is at `expected_version` (0: the key must not exist).
    /// Otherwise fails with [`MemoryError::Conflict`] carrying the current version.
    pub fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected_version: u64,
        value: Value,
        ttl: Ttl,
    ) -> Result<Entry, MemoryError> {
        self.write(namespace, key, value, ttl, Some(expected_version))
    }

    /// The entry under `key`, unless it does not exist or has expired. Counts one access.
    pub fn get(&self, namespace: &str, key: &str) -> Option<Entry> {
        if let Some(project) = self.project_for(namespace) {
            return project.get(namespace, key).unwrap_or_else(|e| {
                tracing::warn!("project memory read of `{namespace}`/`{key}` failed: {e}");
                None
            });
        }
        let now = self.now();
        let slot = self.inner.map.get(&(namespace, key) as &dyn Address)?;
        if !slot.is_live(now) {
            return None;
        }
        slot.access_count.fetch_add(1, Ordering::Relaxed);
        Some(slot.to_entry())
    }

    /// Removes `key`. Returns whether a live entry was there; an expired one is removed silently.
    pub fn delete(&self, namespace: &str, key: &str) -> bool {
        if let Some(project) = self.project_for(namespace) {
            return project.delete(namespace, key).unwrap_or_else(|e| {
                tracing::warn!("project memory delete of `{namespace}`/`{key}` failed: {e}");
                false
            });
        }
        let now = self.now();
        let mut deleted = false;
        self.inner
            .map
            .remove_if(&(namespace, key) as &dyn Address, |slot_key, slot| {
                // Still under the shard guard: the sink and the index see this delete in order.
                if slot.is_live(now) {
                    deleted = true;
                    self.emit(|| MemoryChange::Delete {
                        namespace: namespace.to_owned(),
                        key: key.to_owned(),
                    });
                }
                self.unindex(slot_key);
                true
            });
        deleted
    }

    /// Live entries sorted by namespace then key; only `namespace` when given, only keys that start
    /// with `prefix` (plain text, not a glob) when given. Listing does not count as an access.
    pub fn list(&self, namespace: Option<&str>, prefix: Option<&str>) -> Vec<MemoryRecord> {
        let scan = Scan {
            namespace,
            include_namespace: &|_| true,
            key_prefix: prefix.unwrap_or(""),
            leaf: None,
            pattern: None,
        };
        self.query(&scan, usize::MAX).records
    }

    /// Live entries whose key matches `glob`, sorted like [`list`](Self::list). `*` stays within a
    /// `/`-separated segment, `**` spans segments: `session/*/blockers`, `**/decisions`.
    pub fn search(
        &self,
        namespace: Option<&str>,
        glob: &str,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        Ok(self.search_pattern(namespace, &KeyPattern::new(glob)?))
    }

    /// [`search`](Self::search) with a glob compiled once, for callers that search often.
    pub fn search_pattern(
        &self,
        namespace: Option<&str>,
        pattern: &KeyPattern,
    ) -> Vec<MemoryRecord> {
        let scan = pattern.scan(namespace, &|_| true);
        self.query(&scan, usize::MAX).records
    }

    /// Removes every expired entry; returns how many. Expiry is not reported to the sink: a
    /// replayed entry carries its deadline and [`apply`](Self::apply) drops it once past.
    pub fn sweep_expired(&self) -> usize {
        let now = self.now();
        let mut removed = 0;
        self.inner.map.retain(|slot_key, slot| {
            if slot.is_live(now) {
                return true;
            }
            self.unindex(slot_key);
            removed += 1;
            false
        });
        removed
    }

    /// Sweeps expired entries every `every` (at least 1 ms) on the current tokio runtime. The task
    /// ends by itself once every clone of the store is dropped; abort the handle to stop it sooner.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(&self.inner);
        tokio::spawn(sweep_periodically(
            store,
            every.max(Duration::from_millis(1)),
        ))
    }

    /// Applies a journaled change without reporting it to the sink. Applying the same change
    /// twice leaves the same state; a put whose entry has expired by now removes the key.
    pub fn apply(&self, change: &MemoryChange) {
        match change {
            MemoryChange::Put {
                namespace,
                key,
                entry,
            } => {
                if is_live(entry.expires_ms, self.now()) {
                    self.install(
                        SlotKey::new(namespace, key),
                        Slot::from_entry(entry.clone()),
                    );
                } else {
                    self.discard(namespace, key);
                }
            }
            MemoryChange::Delete { namespace, key } => self.discard(namespace, key),
        }
    }

    /// Every live entry, sorted.
    pub fn dump(&self) -> Vec<MemoryRecord> {
        self.list(None, None)
    }

    /// Every live entry, sorted, with values as stored: the memory part of a snapshot. Values
    /// restored from a snapshot are copied as text, not parsed.
    pub fn image(&self) -> MemoryImage {
        let scan = Scan {
            namespace: None,
            include_namespace: &|_| true,
            key_prefix: "",
            leaf: None,
            pattern: None,
        };
        let addresses = self.inner.index.read().scan(&scan);
        let now = self.now();
        let mut records = Vec::with_capacity(addresses.len());
        for address in addresses {
            let Some(slot) = self.inner.map.get(&address) else {
                continue;
            };
            if !slot.is_live(now) {
                continue;
            }
            records.push(StoredRecord {
                value: slot.value.clone(),
                created_ms: slot.created_ms,
                updated_ms: slot.updated_ms,
                expires_ms: slot.expires_ms,
                version: slot.version,
                access_count: slot.access_count.load(Ordering::Relaxed),
                namespace: address.namespace,
                key: address.key,
            });
        }
        MemoryImage::from_stored(records)
    }

    /// Replaces the whole content with `records` (from [`image`](Self::image) or
    /// [`dump`](Self::dump)), without reporting to the sink; records already expired are
    /// dropped. Meant for start-up, before agents run.
    pub fn restore(&self, records: impl Into<MemoryImage>) {
        let records = records.into().into_stored();
        self.inner.map.clear();
        self.inner.index.write().clear();
        reserve(&self.inner.map, records.len());
        let now = self.now();
        // The index is built apart and put in place at once: a bulk build from sorted keys instead
        // of a locked tree insert per record, which dominates restoring a large snapshot.
        let mut keys: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        // Records come grouped by namespace: the keys of the current group are gathered apart,
        // so the map of groups is looked up once per group, not once per record.
        let mut group: Option<(Arc<str>, Vec<Arc<str>>)> = None;
        for record in records {
            if !is_live(record.expires_ms, now) {
                continue;
            }
            let namespace = match &mut group {
                // A snapshot's records share one name per group: mostly the same allocation.
                Some((ns, group_keys))
                    if Arc::ptr_eq(ns, &record.namespace) || **ns == *record.namespace =>
                {
                    group_keys.push(Arc::clone(&record.key));
                    Arc::clone(ns)
                }
                _ => {
                    if let Some((ns, group_keys)) = group.take() {
                        keys.entry(ns).or_default().extend(group_keys);
                    }
                    let ns = record.namespace;
                    group = Some((Arc::clone(&ns), vec![Arc::clone(&record.key)]));
                    ns
                }
            };
            self.inner.map.insert(
                SlotKey {
                    namespace,
                    key: record.key,
                },
                Slot {
                    value: record.value,
                    created_ms: record.created_ms,
                    updated_ms: record.updated_ms,
                    expires_ms: record.expires_ms,
                    version: record.version,
                    access_count: AtomicU64::new(record.access_count),
                },
            );
        }
        if let Some((ns, group_keys)) = group {
            keys.entry(ns).or_default().extend(group_keys);
        }
        let mut index = self.inner.index.write();
        for (ns, keys) in keys {
            index.insert_namespace(ns, keys.into_iter().collect());
        }
    }

    /// Entries held, including expired ones the sweeper has not removed yet.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn check_address(&self, namespace: &str, key: &str) -> Result<(), MemoryError> {
        let max = self.inner.limits.max_key_bytes;
        validate_path("namespace", namespace, max)?;
        validate_path("key", key, max)
    }

    pub(crate) fn check_value(&self, value: &Value) -> Result<(), MemoryError> {
        let max = self.inner.limits.max_value_bytes;
        // Serialising into a byte budget stops early on a huge value instead of building it.
        match serde_json::to_writer(ByteBudget { left: max }, value) {
            Ok(()) => Ok(()),
            Err(_) => Err(MemoryError::ValueTooLarge { max }),
        }
    }

    pub(crate) fn emit(&self, change: impl FnOnce() -> MemoryChange) {
        if let Some(sink) = self.inner.sink.read().as_ref() {
            sink(change());
        }
    }

    /// Scans the sorted index, then reads the matching entries; at most `limit` are
    /// materialised, the others only counted. The index lock is released before the map is
    /// touched, keeping the lock order shard -> index.
    pub(crate) fn query(&self, scan: &Scan<'_>, limit: usize) -> Page {
        let mut page = self.query_local(scan, limit);
        let link = self.inner.project.read().clone();
        let Some((project, namespaces)) = link else {
            return page;
        };
        if scan
            .namespace
            .is_some_and(|ns| !namespaces.iter().any(|p| p == ns))
        {
            return page;
        }
        let records = match project.list() {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!("project memory search failed: {e}");
                return page;
            }
        };
        // The same scan over the shared entries, through a store of their own.
        let shared = MemoryStore::new(Arc::clone(&self.inner.clock), self.inner.limits);
        shared.restore(
            records
                .into_iter()
                .filter(|r| namespaces.contains(&r.namespace))
                .collect::<Vec<_>>(),
        );
        let extra = shared.query_local(scan, limit);
        page.total += extra.total;
        page.records.extend(extra.records);
        page.records
            .sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
        page.records.truncate(limit);
        page
    }

    fn query_local(&self, scan: &Scan<'_>, limit: usize) -> Page {
        let addresses = self.inner.index.read().scan(scan);
        let now = self.now();
        let mut page = Page {
            records: Vec::new(),
            total: 0,
        };
        for address in addresses {
            let Some(slot) = self.inner.map.get(&address) else {
                continue;
            };
            if !slot.is_live(now) {
                continue;
            }
            page.total += 1;
            if page.records.len() < limit {
                page.records.push(MemoryRecord {
                    namespace: address.namespace.to_string(),
                    key: address.key.to_string(),
                    entry: slot.to_entry(),
                });
            }
        }
        page
    }

    fn write(
        &self,
        namespace: &str,
        key: &str,
        value: Value,
        ttl: Ttl,
        expected_version: Option<u64>,
    ) -> Result<Entry, MemoryError> {
        self.check_address(namespace, key)?;
        self.check_value(&value)?;
        let now = self.now();
        let expires_ms = self.deadline(namespace, ttl, now);
        if let Some(project) = self.project_for(namespace) {
            let ttl_ms = expires_ms.map(|at| at.saturating_sub(now));
            return match project.put(namespace, key, &value, ttl_ms, expected_version) {
                Ok(Ok(entry)) => Ok(entry),
                Ok(Err(current)) => Err(MemoryError::Conflict { current }),
                Err(e) => Err(MemoryError::Project(e)),
            };
        }
        let conflict = |current: u64| expected_version.is_some_and(|expected| expected != current);

        // The common case, an existing key, needs no allocation for the address.
        if let Some(mut slot) = self.inner.map.get_mut(&(namespace, key) as &dyn Address) {
            let current = slot.live_version(now);
            if conflict(current) {
                return Err(MemoryError::Conflict { current });
            }
            return Ok(self.overwrite(namespace, key, &mut slot, value, now, expires_ms));
        }
        match self.inner.map.entry(SlotKey::new(namespace, key)) {
            MapEntry::Occupied(mut occupied) => {
                let current = occupied.get().live_version(now);
                if conflict(current) {
                    return Err(MemoryError::Conflict { current });
                }
                Ok(self.overwrite(namespace, key, occupied.get_mut(), value, now, expires_ms))
            }
            MapEntry::Vacant(vacant) => {
                if conflict(0) {
                    return Err(MemoryError::Conflict { current: 0 });
                }
                let slot_key = vacant.key().clone();
                let slot = vacant.insert(Slot::fresh(value, now, expires_ms));
                self.index(&slot_key);
                let entry = slot.to_entry();
                self.emit_put(namespace, key, &entry);
                Ok(entry)
            }
        }
    }

    /// Called with the shard guard held.
    fn overwrite(
        &self,
        namespace: &str,
        key: &str,
        slot: &mut Slot,
        value: Value,
        now: u64,
        expires_ms: Option<u64>,
    ) -> Entry {
        if slot.is_live(now) {
            slot.value = StoredValue::Parsed(value);
            slot.updated_ms = now;
            slot.expires_ms = expires_ms;
            slot.version += 1;
        } else {
            *slot = Slot::fresh(value, now, expires_ms);
        }
        let entry = slot.to_entry();
        self.emit_put(namespace, key, &entry);
        entry
    }

    fn emit_put(&self, namespace: &str, key: &str, entry: &Entry) {
        self.emit(|| MemoryChange::Put {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            entry: entry.clone(),
        });
    }

    fn deadline(&self, namespace: &str, ttl: Ttl, now: u64) -> Option<u64> {
        let ttl = match ttl {
            Ttl::Never => return None,
            Ttl::After(ttl) => ttl,
            Ttl::Default => *self.inner.default_ttls.read().get(namespace)?,
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Some(now.saturating_add(ms))
    }

    /// Puts a slot in place as is, without reporting it.
    fn install(&self, slot_key: SlotKey, slot: Slot) {
        match self.inner.map.entry(slot_key) {
            MapEntry::Occupied(mut occupied) => {
                *occupied.get_mut() = slot;
            }
            MapEntry::Vacant(vacant) => {
                let slot_key = vacant.key().clone();
                let _guard = vacant.insert(slot);
                self.index(&slot_key);
            }
        }
    }

    /// Writes an exported record. Its value, times and deadline are kept; its version is raised
    /// above the live entry's, if any, so that a reader's compare-and-swap cannot succeed against
    /// a value it never saw. Reported to the sink.
    pub(crate) fn import_record(&self, record: MemoryRecord) {
        let MemoryRecord {
            namespace,
            key,
            mut entry,
        } = record;
        let now = self.now();
        entry.version = entry.version.max(1);
        match self.inner.map.entry(SlotKey::new(&namespace, &key)) {
            MapEntry::Occupied(mut occupied) => {
                let current = occupied.get().live_version(now);
                entry.version = entry.version.max(current + 1);
                *occupied.get_mut() = Slot::from_entry(entry.clone());
                self.emit_put(&namespace, &key, &entry);
            }
            MapEntry::Vacant(vacant) => {
                let slot_key = vacant.key().clone();
                let _guard = vacant.insert(Slot::from_entry(entry.clone()));
                self.index(&slot_key);
                self.emit_put(&namespace, &key, &entry);
            }
        }
    }

    /// Removes a key without reporting it.
    fn discard(&self, namespace: &str, key: &str) {
        self.inner
            .map
            .remove_if(&(namespace, key) as &dyn Address, |slot_key, _| {
                self.unindex(slot_key);
                true
            });
    }

    fn index(&self, slot_key: &SlotKey) {
        self.inner.index.write().insert(slot_key);
    }

    fn unindex(&self, slot_key: &SlotKey) {
        self.inner.index.write().remove(slot_key);
    }
}

/// Makes room for `additional` more entries in every shard at once, so that filling the map from
/// a snapshot does not rehash each shard as it grows (which `DashMap` cannot do through `&self`).
fn reserve(map: &SlotMap, additional: usize) {
    let shards = map.shards();
    let even = additional / shards.len();
    // Keys spread over the shards by hash, so some get more than an even share: an eighth more
    // covers the spread at these sizes; a shard that still fills up grows as usual.
    let per_shard = even + even / 8 + 1;
    let hasher = map.hasher();
    for shard in shards {
        shard
            .write()
            .reserve(per_shard, |(key, _)| BuildHasher::hash_one(hasher, key));
    }
}

async fn sweep_periodically(store: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; nothing can have expired yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        MemoryStore { inner }.sweep_expired();
    }
}

/// A writer that only counts, and fails once more than `left` bytes are written.
struct ByteBudget {
    left: usize,
}

impl io::Write for ByteBudget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left = self
            .left
            .checked_sub(buf.len())
            .ok_or_else(|| io::Error::other("over the byte budget"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
