//! How a snapshot stores memory, and memory rebuilt from a snapshot plus journaled changes.
//!
//! Records are stored as JSON arrays `[namespace, key, value, created_ms, updated_ms,
//! expires_ms, version, access_count]` sorted by namespace and key: without repeated field names
//! the blob is about half the size, and decoding a fixed-arity array avoids the buffering that the
//! flattened [`MemoryRecord`] form needs, which dominates load time at 100k entries.

use crate::memory::{Entry, MemoryChange, MemoryRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize)]
struct StoredRef<'a>(
    &'a str,
    &'a str,
    &'a serde_json::Value,
    u64,
    u64,
    Option<u64>,
    u64,
    u64,
);

#[derive(Deserialize)]
struct Stored(
    String,
    String,
    serde_json::Value,
    u64,
    u64,
    Option<u64>,
    u64,
    u64,
);

fn order(a: &MemoryRecord, b: &MemoryRecord) -> std::cmp::Ordering {
    (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key))
}

/// Encodes memory for a snapshot, sorted by namespace and key.
pub fn encode_memory(memory: &[MemoryRecord]) -> serde_json::Result<Vec<u8>> {
    let mut sorted: Vec<&MemoryRecord> = memory.iter().collect();
    if !sorted.is_sorted_by(|a, b| order(a, b).is_le()) {
        sorted.sort_unstable_by(|a, b| order(a, b));
    }
    let stored: Vec<StoredRef<'_>> = sorted
        .iter()
        .map(|r| {
            StoredRef(
                &r.namespace,
                &r.key,
                &r.entry.value,
                r.entry.created_ms,
                r.entry.updated_ms,
                r.entry.expires_ms,
                r.entry.version,
                r.entry.access_count,
            )
        })
        .collect();
    serde_json::to_vec(&stored)
}

/// Decodes what [`encode_memory`] wrote.
pub fn decode_memory(bytes: &[u8]) -> serde_json::Result<Vec<MemoryRecord>> {
    let stored: Vec<Stored> = serde_json::from_slice(bytes)?;
    Ok(stored
        .into_iter()
        .map(
            |Stored(
                namespace,
                key,
                value,
                created_ms,
                updated_ms,
                expires_ms,
                version,
                access_count,
            )| {
                MemoryRecord {
                    namespace,
                    key,
                    entry: Entry {
                        value,
                        created_ms,
                        updated_ms,
                        expires_ms,
                        version,
                        access_count,
                    },
                }
            },
        )
        .collect())
}

/// Memory as a snapshot and the `MemoryChanged` events after it leave it. The key index is built
/// only when a change is applied: most loads replay few or no memory changes.
#[derive(Debug, Default)]
pub struct MemoryFold {
    records: Vec<Option<MemoryRecord>>,
    index: Option<HashMap<(String, String), usize>>,
}

impl MemoryFold {
    pub fn from_records(records: Vec<MemoryRecord>) -> Self {
        Self {
            records: records.into_iter().map(Some).collect(),
            index: None,
        }
    }

    pub fn apply(&mut self, change: &MemoryChange) {
        let records = &self.records;
        let index = self.index.get_or_insert_with(|| {
            records
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    r.as_ref()
                        .map(|r| ((r.namespace.clone(), r.key.clone()), i))
                })
                .collect()
        });
        match change {
            MemoryChange::Put {
                namespace,
                key,
                entry,
            } => {
                let record = MemoryRecord {
                    namespace: namespace.clone(),
                    key: key.clone(),
                    entry: entry.clone(),
                };
                match index.get(&(namespace.clone(), key.clone())) {
                    Some(&i) => self.records[i] = Some(record),
                    None => {
                        index.insert((namespace.clone(), key.clone()), self.records.len());
                        self.records.push(Some(record));
                    }
                }
            }
            MemoryChange::Delete { namespace, key } => {
                if let Some(i) = index.remove(&(namespace.clone(), key.clone())) {
                    self.records[i] = None;
                }
            }
        }
    }

    /// The live records sorted by namespace and key; those expired at `now_ms` are dropped.
    pub fn into_records(self, now_ms: u64) -> Vec<MemoryRecord> {
        let mut live: Vec<MemoryRecord> = self
            .records
            .into_iter()
            .flatten()
            .filter(|r| r.entry.expires_ms.is_none_or(|at| at > now_ms))
            .collect();
        if !live.is_sorted_by(|a, b| order(a, b).is_le()) {
            live.sort_unstable_by(order);
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ns: &str, key: &str, v: i64, expires_ms: Option<u64>) -> MemoryRecord {
        MemoryRecord {
            namespace: ns.into(),
            key: key.into(),
            entry: Entry {
                value: v.into(),
                created_ms: 1,
                updated_ms: 2,
                expires_ms,
                version: 3,
                access_count: 4,
            },
        }
    }

    #[test]
    fn memory_round_trips_sorted() {
        let memory = vec![record("b", "x", 1, None), record("a", "y", 2, Some(9))];
        let back = decode_memory(&encode_memory(&memory).unwrap()).unwrap();
        assert_eq!(back, vec![memory[1].clone(), memory[0].clone()]);
    }

    #[test]
    fn changes_replace_delete_and_expire() {
        let mut fold = MemoryFold::from_records(vec![
            record("a", "k1", 1, None),
            record("a", "k2", 2, None),
            record("a", "old", 3, Some(100)),
        ]);
        let put = |key: &str, v: i64| MemoryChange::Put {
            namespace: "a".into(),
            key: key.into(),
            entry: record("a", key, v, None).entry,
        };
        fold.apply(&put("k1", 10));
        fold.apply(&put("k0", 5));
        fold.apply(&MemoryChange::Delete {
            namespace: "a".into(),
            key: "k2".into(),
        });
        let live = fold.into_records(100);
        let keys: Vec<(&str, i64)> = live
            .iter()
            .map(|r| (r.key.as_str(), r.entry.value.as_i64().unwrap()))
            .collect();
        assert_eq!(keys, vec![("k0", 5), ("k1", 10)]);
    }
}
