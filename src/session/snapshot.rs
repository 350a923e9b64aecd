//! How a snapshot stores memory, and memory rebuilt from a snapshot plus journaled changes.
//!
//! A snapshot of a large session holds ~100k entries, and both writing it (on every checkpoint)
//! and reading it (on every resume) are on a path someone waits for. One JSON document of
//! records costs a full parse on load and is twice the size it needs to be on write, so memory is
//! stored in a compact binary framing instead:
//!
//! ```text
//! blob   = MAGIC chunk-count:u32le (bytes:u64le records:u64le)*chunk-count chunk*
//! chunk  = record*
//! record = text(namespace) text(key) value-len:u32le value-json
//!          created_ms updated_ms expires version access_count
//! expires = 0x00 (never) | 0x01 expires_ms
//! text   = shared-prefix-len suffix-len suffix-bytes   (prefix shared with the previous record
//!                                                       of the same chunk)
//! ```
//! Integers without a stated width are LEB128 varints. Chunks are independent, so they are
//! decoded on one thread each: parsing and allocating the values dominates loading.
//! Sorted keys share long prefixes (`agent/<role>/notes/...`), so front coding stores mostly
//! suffixes.

use crate::memory::{Entry, MemoryChange, MemoryRecord};
use std::collections::HashMap;

/// Identifies the memory blob and its framing version.
const MAGIC: &[u8; 8] = b"swmem\x00\x00\x01";

/// Below this many records one chunk, decoded on one thread, is faster than spawning more.
const PARALLEL_FROM: usize = 8192;

/// Upper bound on the threads one decode uses.
const MAX_CHUNKS: usize = 8;

/// A memory blob that is not in the format [`encode_memory`] writes.
#[derive(Debug, thiserror::Error)]
#[error("memory blob: {0}")]
pub struct BlobError(&'static str);

fn order(a: &MemoryRecord, b: &MemoryRecord) -> std::cmp::Ordering {
    (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key))
}

fn chunk_count(records: usize) -> usize {
    if records < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_CHUNKS)
}

/// Encodes memory for a snapshot in the order given. [`MemoryStore::dump`] gives records sorted,
/// which makes the front coding of names effective; any order decodes to the same records.
///
/// [`MemoryStore::dump`]: crate::memory::MemoryStore::dump
pub fn encode_memory(memory: &[MemoryRecord]) -> serde_json::Result<Vec<u8>> {
    let per_chunk = memory.len().div_ceil(chunk_count(memory.len())).max(1);
    let parts: Vec<&[MemoryRecord]> = memory.chunks(per_chunk).collect();
    // Chunks are for the decoder's threads. Encoding stays on this thread: measured, it is faster
    // than splitting it, since the journal writer's deferred checkpoint of the previous snapshot
    // may hold the other core.
    let encoded: Vec<_> = parts.iter().map(|part| encode_chunk(part)).collect();
    let chunks = encoded
        .into_iter()
        .collect::<serde_json::Result<Vec<_>>>()?;
    let body: usize = chunks.iter().map(Vec::len).sum();
    let mut blob = Vec::with_capacity(MAGIC.len() + 4 + chunks.len() * 16 + body);
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (chunk, part) in chunks.iter().zip(&parts) {
        blob.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        blob.extend_from_slice(&(part.len() as u64).to_le_bytes());
    }
    for chunk in &chunks {
        blob.extend_from_slice(chunk);
    }
    Ok(blob)
}

/// `work` applied to each part, the first on this thread and each other on a thread of its own;
/// results in the order of `parts`.
fn on_threads<P: Sync, R: Send>(parts: &[P], work: impl Fn(&P) -> R + Sync) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let spawned: Vec<_> = parts
            .iter()
            .skip(1)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        let first = parts.first().map(work);
        first
            .into_iter()
            .chain(spawned.into_iter().map(|handle| {
                // A panic in a worker is a bug; carry it to the caller as is.
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }))
            .collect()
    })
}

fn encode_chunk(records: &[MemoryRecord]) -> serde_json::Result<Vec<u8>> {
    // Most values are small objects: ~64 bytes a record avoids most regrowth.
    let mut out = Vec::with_capacity(records.len() * 64);
    let (mut namespace, mut key) = ("", "");
    for r in records {
        put_text(&mut out, namespace, &r.namespace);
        put_text(&mut out, key, &r.key);
        (namespace, key) = (&r.namespace, &r.key);
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        serde_json::to_writer(&mut out, &r.entry.value)?;
        let len = u32::try_from(out.len() - at - 4)
            .map_err(|_| <serde_json::Error as serde::ser::Error>::custom("a value over 4 GiB"))?;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        put_varint(&mut out, r.entry.created_ms);
        put_varint(&mut out, r.entry.updated_ms);
        match r.entry.expires_ms {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                put_varint(&mut out, at);
            }
        }
        put_varint(&mut out, r.entry.version);
        put_varint(&mut out, r.entry.access_count);
    }
    Ok(out)
}

fn put_text(out: &mut Vec<u8>, previous: &str, text: &str) {
    let shared = previous
        .bytes()
        .zip(text.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    put_varint(out, shared as u64);
    put_varint(out, (text.len() - shared) as u64);
    out.extend_from_slice(&text.as_bytes()[shared..]);
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes what [`encode_memory`] wrote, in the order it was given.
pub fn decode_memory(blob: &[u8]) -> Result<Vec<MemoryRecord>, BlobError> {
    let mut header = Reader { bytes: blob };
    if header.take(MAGIC.len())? != MAGIC {
        return Err(BlobError("not a memory blob of this version"));
    }
    let count = u32::from_le_bytes(header.array()?) as usize;
    if count > blob.len() / 16 {
        return Err(BlobError("chunk count past the end"));
    }
    let mut parts = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let bytes = usize::try_from(u64::from_le_bytes(header.array()?))
            .map_err(|_| BlobError("chunk length out of range"))?;
        let records = usize::try_from(u64::from_le_bytes(header.array()?))
            .map_err(|_| BlobError("record count out of range"))?;
        parts.push((bytes, records));
    }
    let mut chunks = Vec::with_capacity(count);
    for (bytes, records) in parts {
        // Every record takes at least 11 bytes: a bound on what a corrupt count may allocate.
        if records > bytes / 11 + 1 {
            return Err(BlobError("record count larger than its chunk"));
        }
        chunks.push((header.take(bytes)?, records));
        total += records;
    }
    if !header.bytes.is_empty() {
        return Err(BlobError("trailing bytes"));
    }
    let decoded = on_threads(&chunks, |&(bytes, records)| decode_chunk(bytes, records));
    let mut records = Vec::with_capacity(total);
    for chunk in decoded {
        records.extend(chunk?);
    }
    Ok(records)
}

fn decode_chunk(bytes: &[u8], count: usize) -> Result<Vec<MemoryRecord>, BlobError> {
    let mut reader = Reader { bytes };
    let mut records: Vec<MemoryRecord> = Vec::with_capacity(count);
    for _ in 0..count {
        let previous = records.last();
        let namespace = reader.text(previous.map_or("", |r| &r.namespace))?;
        let key = reader.text(previous.map_or("", |r| &r.key))?;
        let len = u32::from_le_bytes(reader.array()?) as usize;
        let value = serde_json::from_slice(reader.take(len)?)
            .map_err(|_| BlobError("a value is not valid JSON"))?;
        let created_ms = reader.varint()?;
        let updated_ms = reader.varint()?;
        let expires_ms = match reader.array()? {
            [0] => None,
            [1] => Some(reader.varint()?),
            _ => return Err(BlobError("bad expiry marker")),
        };
        let version = reader.varint()?;
        let access_count = reader.varint()?;
        records.push(MemoryRecord {
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
        });
    }
    if !reader.bytes.is_empty() {
        return Err(BlobError("trailing bytes in a chunk"));
    }
    Ok(records)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        if n > self.bytes.len() {
            return Err(BlobError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, BlobError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(n);
            }
        }
        Err(BlobError("an integer longer than 64 bits"))
    }

    fn text(&mut self, previous: &str) -> Result<String, BlobError> {
        let shared = usize::try_from(self.varint()?).map_err(|_| BlobError("bad prefix"))?;
        let suffix = usize::try_from(self.varint()?).map_err(|_| BlobError("bad length"))?;
        let prefix = previous
            .as_bytes()
            .get(..shared)
            .ok_or(BlobError("a shared prefix longer than the previous key"))?;
        let suffix = self.take(suffix)?;
        let mut bytes = Vec::with_capacity(prefix.len() + suffix.len());
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(suffix);
        String::from_utf8(bytes).map_err(|_| BlobError("a name is not UTF-8"))
    }
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
    fn unsorted_memory_round_trips_and_folds_sorted() {
        let memory = vec![record("b", "x", 1, None), record("a", "y", 2, Some(9))];
        let back = decode_memory(&encode_memory(&memory).unwrap()).unwrap();
        assert_eq!(back, memory);
        let folded = MemoryFold::from_records(back).into_records(0);
        assert_eq!(folded, vec![memory[1].clone(), memory[0].clone()]);
    }

    #[test]
    fn many_records_round_trip_exactly_across_chunks() {
        let mut memory: Vec<MemoryRecord> = (0..PARALLEL_FROM as u64 * 2 + 7)
            .map(|i| MemoryRecord {
                namespace: format!("ns-{}", i % 3),
                key: format!("agent/dév-{}/notes/{i}", i % 5),
                entry: Entry {
                    value: serde_json::json!({"n": i, "text": "ünïcode \"quoted\"", "f": 0.5}),
                    created_ms: i,
                    updated_ms: u64::MAX - i,
                    expires_ms: [None, Some(0), Some(u64::MAX)][(i % 3) as usize],
                    version: i + 1,
                    access_count: i * 7,
                },
            })
            .collect();
        memory.sort_unstable_by(order);
        let blob = encode_memory(&memory).unwrap();
        assert_eq!(decode_memory(&blob).unwrap(), memory);
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let memory: Vec<MemoryRecord> = (0..50)
            .map(|i| record("a", &format!("k/{i}"), i, Some(i as u64)))
            .collect();
        let blob = encode_memory(&memory).unwrap();
        for cut in [0, 5, MAGIC.len() + 3, blob.len() / 2, blob.len() - 1] {
            assert!(decode_memory(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode_memory(&longer).is_err());
        let mut old = blob.clone();
        old[MAGIC.len() - 1] = 0;
        let err = decode_memory(&old).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
        // A JSON document, as schema version 1 stored memory.
        assert!(decode_memory(b"[[\"a\",\"k\",1,1,1,null,1,0]]").is_err());
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
