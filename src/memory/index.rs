//! The sorted index of keys behind listing and search.
//!
//! Per namespace, every key in order, plus the keys grouped by their last segment. Searches
//! mostly end in a literal segment (`session/*/blockers`, `**/decisions`); the groups let such a
//! search look only at keys with that last segment instead of every key of the namespace.
//! The groups are built on the first search that needs them, not when a snapshot is restored:
//! with unique last segments (`notes/<n>`) they are one small set per key, which used to be
//! most of the cost of a resume, and most resumed sessions search few namespaces.

use super::key::SlotKey;
use super::pattern::KeyPattern;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    namespaces: BTreeMap<Arc<str>, NamespaceKeys>,
}

/// Hashed on every insert once filled; foldhash with a per-map random seed, as the slot map.
type LeafGroups = HashMap<Box<str>, BTreeSet<Arc<str>>, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct NamespaceKeys {
    all: BTreeSet<Arc<str>>,
    /// Filled by the first scan by leaf (under the index's read lock, hence the cell); kept up to
    /// date by inserts and removes once filled.
    by_leaf: OnceLock<LeafGroups>,
}

impl NamespaceKeys {
    fn by_leaf(&self) -> &LeafGroups {
        self.by_leaf.get_or_init(|| {
            let mut groups = LeafGroups::default();
            for key in &self.all {
                match groups.get_mut(leaf(key)) {
                    Some(group) => {
                        group.insert(Arc::clone(key));
                    }
                    None => {
                        groups.insert(leaf(key).into(), BTreeSet::from([Arc::clone(key)]));
                    }
                }
            }
            groups
        })
    }
}

/// Which keys a scan yields: in `namespace` (all when `None`) and accepted by
/// `include_namespace`, starting with `key_prefix`, with last segment `leaf` when given, and
/// matching `pattern` when given.
pub(crate) struct Scan<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) include_namespace: &'a dyn Fn(&str) -> bool,
    pub(crate) key_prefix: &'a str,
    pub(crate) leaf: Option<&'a str>,
    pub(crate) pattern: Option<&'a KeyPattern>,
}

fn leaf(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl KeyIndex {
    pub(crate) fn insert(&mut self, slot_key: &SlotKey) {
        let keys = self
            .namespaces
            .entry(Arc::clone(&slot_key.namespace))
            .or_default();
        keys.all.insert(Arc::clone(&slot_key.key));
        let Some(by_leaf) = keys.by_leaf.get_mut() else {
            return;
        };
        let leaf = leaf(&slot_key.key);
        match by_leaf.get_mut(leaf) {
            Some(group) => {
                group.insert(Arc::clone(&slot_key.key));
            }
            None => {
                by_leaf.insert(leaf.into(), BTreeSet::from([Arc::clone(&slot_key.key)]));
            }
        }
    }

    /// Puts a whole namespace's keys in place at once (restoring a snapshot): a bulk build
    /// instead of a tree insert per key.
    pub(crate) fn insert_namespace(&mut self, namespace: Arc<str>, all: BTreeSet<Arc<str>>) {
        self.namespaces.insert(
            namespace,
            NamespaceKeys {
                all,
                by_leaf: OnceLock::new(),
            },
        );
    }

    pub(crate) fn remove(&mut self, slot_key: &SlotKey) {
        let Some(keys) = self.namespaces.get_mut(&*slot_key.namespace) else {
            return;
        };
        keys.all.remove(&*slot_key.key);
        let leaf = leaf(&slot_key.key);
        if let Some(by_leaf) = keys.by_leaf.get_mut() {
            if let Some(group) = by_leaf.get_mut(leaf) {
                group.remove(&*slot_key.key);
                if group.is_empty() {
                    by_leaf.remove(leaf);
                }
            }
        }
        if keys.all.is_empty() {
            self.namespaces.remove(&*slot_key.namespace);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.namespaces.clear();
    }

    /// The addresses a scan selects, sorted by namespace then key.
    pub(crate) fn scan(&self, scan: &Scan<'_>) -> Vec<SlotKey> {
        // One namespace is the range from it to itself, so both cases share one iterator type.
        let namespaces = match scan.namespace {
            Some(namespace) => self
                .namespaces
                .range::<str, _>((Bound::Included(namespace), Bound::Included(namespace))),
            None => self
                .namespaces
                .range::<str, _>((Bound::Unbounded, Bound::Unbounded)),
        };
        let mut addresses = Vec::new();
        for (namespace, keys) in namespaces {
            if !(scan.include_namespace)(namespace) {
                continue;
            }
            let candidates = match scan.leaf {
                Some(leaf) => match keys.by_leaf().get(leaf) {
                    Some(group) => group,
                    None => continue,
                },
                None => &keys.all,
            };
            let from = (Bound::Included(scan.key_prefix), Bound::Unbounded);
            for key in candidates
                .range::<str, _>(from)
                .take_while(|key| key.starts_with(scan.key_prefix))
                .filter(|key| scan.pattern.is_none_or(|pattern| pattern.matches(key)))
            {
                addresses.push(SlotKey {
                    namespace: Arc::clone(namespace),
                    key: Arc::clone(key),
                });
            }
        }
        addresses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(keys: &[(&str, &str)]) -> KeyIndex {
        let mut index = KeyIndex::default();
        for (ns, key) in keys {
            index.insert(&SlotKey::new(ns, key));
        }
        index
    }

    fn scan(
        index: &KeyIndex,
        namespace: Option<&str>,
        prefix: &str,
        leaf: Option<&str>,
    ) -> Vec<String> {
        index
            .scan(&Scan {
                namespace,
                include_namespace: &|_| true,
                key_prefix: prefix,
                leaf,
                pattern: None,
            })
            .into_iter()
            .map(|a| format!("{}:{}", a.namespace, a.key))
            .collect()
    }

    #[test]
    fn scans_by_prefix_and_leaf_in_order() {
        let index = index_of(&[
            ("b", "x/leaf"),
            ("a", "y/leaf"),
            ("a", "x/leaf"),
            ("a", "x/other"),
            ("a", "leaf"),
        ]);
        assert_eq!(
            scan(&index, None, "", Some("leaf")),
            ["a:leaf", "a:x/leaf", "a:y/leaf", "b:x/leaf"]
        );
        assert_eq!(
            scan(&index, Some("a"), "x/", None),
            ["a:x/leaf", "a:x/other"]
        );
        assert_eq!(
            scan(&index, None, "x/", Some("leaf")),
            ["a:x/leaf", "b:x/leaf"]
        );
        assert!(scan(&index, None, "", Some("none")).is_empty());
    }

    #[test]
    fn leaf_groups_built_late_follow_later_changes() {
        let mut index = KeyIndex::default();
        index.insert_namespace(
            "a".into(),
            BTreeSet::from(["x/leaf".into(), "y/other".into()]),
        );
        assert_eq!(scan(&index, None, "", Some("leaf")), ["a:x/leaf"]);
        index.insert(&SlotKey::new("a", "z/leaf"));
        index.remove(&SlotKey::new("a", "x/leaf"));
        assert_eq!(scan(&index, None, "", Some("leaf")), ["a:z/leaf"]);
        assert_eq!(scan(&index, None, "", Some("other")), ["a:y/other"]);
    }

    #[test]
    fn removing_the_last_key_forgets_the_groups() {
        let mut index = index_of(&[("a", "x/leaf")]);
        index.remove(&SlotKey::new("a", "x/leaf"));
        index.remove(&SlotKey::new("a", "never-there"));
        assert!(index.namespaces.is_empty());
    }
}
