//! How a snapshot stores memory, and memory rebuilt from a snapshot plus journaled changes.
//!
//! A snapshot of a large session holds ~100k entries, and both writing it (on every checkpoint)
//! and reading it (on every resume) are on a path someone waits for. One JSON document of
//! records costs a full parse on load and is twice the size it needs to be on write, so memory is
//! stored in a compact binary framing instead:
//!
//! ```text
//! blob   = MAGIC chunk-count:u32le (bytes:u64le records:u64le checksum:u64le)*chunk-count chunk*
//! chunk  = record*
//! record = text(namespace) text(key) value-len:u32le value-json
//!          created_ms updated_ms expires version access_count
//! expires = 0x00 (never) | 0x01 expires_ms
//! text   = shared-prefix-len suffix-len suffix-bytes   (prefix shared with the previous record
//!                                                       of the same chunk)
//! ```
//! Integers without a stated width are LEB128 varints. Chunks are independent, so they are
//! decoded on one thread each. Values are kept as their text (see `memory::MemoryImage`): a
//! resume parses none of them, and the next snapshot copies them back.
//!
//! Every value written is JSON (serialised, or text copied from a snapshot that was checked), so
//! a blob as written needs no JSON check on load: its chunks' checksums prove it is that blob.
//! Checking each value's JSON instead was most of the cost of a load, and caught less (a changed
//! digit is still JSON). Version 1 blobs, without checksums, are still read, each value checked.
//! Sorted keys share long prefixes (`agent/<role>/notes/...`), so front coding stores mostly
//! suffixes.

use crate::memory::{MemoryChange, MemoryImage, StoredRecord, StoredValue};
use std::collections::HashMap;
use std::sync::Arc;

/// Identifies the memory blob and its framing version; the last byte is the version.
const MAGIC: &[u8; 8] = b"swmem\x00\x00\x02";

/// The version before chunk checksums, whose values are checked one by one on load.
const MAGIC_V1: &[u8; 8] = b"swmem\x00\x00\x01";

/// Below this many records one chunk, decoded on one thread, is faster than spawning more.
const PARALLEL_FROM: usize = 8192;

/// Upper bound on the threads one decode uses.
const MAX_CHUNKS: usize = 8;

/// A memory blob that is not in the format [`encode_memory`] writes.
#[derive(Debug, thiserror::Error)]
#[error("memory blob: {0}")]
pub struct BlobError(&'static str);

fn order(a: &StoredRecord, b: &StoredRecord) -> std::cmp::Ordering {
    // Decoded records of one namespace share its name: no need to compare it.
    if Arc::ptr_eq(&a.namespace, &b.namespace) {
        return a.key.cmp(&b.key);
    }
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

/// Encodes memory for a snapshot in the order given. [`MemoryStore::image`] gives records sorted,
/// which makes the front coding of names effective; any order decodes to the same records.
///
/// [`MemoryStore::image`]: crate::memory::MemoryStore::image
pub fn encode_memory(memory: &MemoryImage) -> serde_json::Result<Vec<u8>> {
    let memory = memory.stored();
    let per_chunk = memory.len().div_ceil(chunk_count(memory.len())).max(1);
    let parts: Vec<&[StoredRecord]> = memory.chunks(per_chunk).collect();
    // Chunks are for the decoder's threads. Encoding stays on this thread: measured, it is faster
    // than splitting it, since the journal writer's deferred checkpoint of the previous snapshot
    // may hold the other core.
    let encoded: Vec<_> = parts.iter().map(|part| encode_chunk(part)).collect();
    let chunks = encoded
        .into_iter()
        .collect::<serde_json::Result<Vec<_>>>()?;
    let body: usize = chunks.iter().map(Vec::len).sum();
    let mut blob = Vec::with_capacity(MAGIC.len() + 4 + chunks.len() * 24 + body);
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (chunk, part) in chunks.iter().zip(&parts) {
        blob.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        blob.extend_from_slice(&(part.len() as u64).to_le_bytes());
        blob.extend_from_slice(&checksum(chunk).to_le_bytes());
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

fn encode_chunk(records: &[StoredRecord]) -> serde_json::Result<Vec<u8>> {
    // Most values are small objects: ~64 bytes a record avoids most regrowth.
    let mut out = Vec::with_capacity(records.len() * 64);
    let (mut namespace, mut key) = ("", "");
    for r in records {
        put_text(&mut out, namespace, &r.namespace);
        put_text(&mut out, key, &r.key);
        (namespace, key) = (&*r.namespace, &*r.key);
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        r.value.write_json(&mut out)?;
        let len = u32::try_from(out.len() - at - 4)
            .map_err(|_| <serde_json::Error as serde::ser::Error>::custom("a value over 4 GiB"))?;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        put_varint(&mut out, r.created_ms);
        put_varint(&mut out, r.updated_ms);
        match r.expires_ms {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                put_varint(&mut out, at);
            }
        }
        put_varint(&mut out, r.version);
        put_varint(&mut out, r.access_count);
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

/// A checksum of a chunk as written, which a load compares before trusting the chunk's values
/// to be JSON. Any change within one 8-byte word changes it (each step is a bijection of the
/// lane it updates); four lanes keep the multiplications independent (measured: about half an
/// instruction a byte). Stored in files: it must never change for version 2.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let word = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let step = |lane: u64, word: u64| (lane.rotate_left(23) ^ word).wrapping_mul(K);
    let mut lanes = [bytes.len() as u64, 1, 2, 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, part) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = step(*lane, word(part));
        }
    }
    for (lane, part) in lanes.iter_mut().zip(blocks.remainder().chunks(8)) {
        *lane = step(*lane, word(part));
    }
    let folded = lanes.iter().fold(0, |all, &lane| step(all, lane));
    folded ^ (folded >> 29)
}

/// How a chunk's content is known to be as written.
#[derive(Debug, Clone, Copy)]
enum Proof {
    /// Version 2: the chunk's bytes have this checksum.
    Checksum(u64),
    /// Version 1: each value is checked to be JSON.
    PerValue,
}

/// Decodes what [`encode_memory`] wrote, in the order it was given; also blobs of version 1.
pub fn decode_memory(blob: &[u8]) -> Result<Vec<StoredRecord>, BlobError> {
    let mut header = Reader { bytes: blob };
    let magic = header.take(MAGIC.len())?;
    let entry_bytes = match magic {
        m if m == MAGIC => 24,
        m if m == MAGIC_V1 => 16,
        _ => return Err(BlobError("not a memory blob of a known version")),
    };
    let count = u32::from_le_bytes(header.array()?) as usize;
    if count > blob.len() / entry_bytes {
        return Err(BlobError("chunk count past the end"));
    }
    let mut parts = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let bytes = usize::try_from(u64::from_le_bytes(header.array()?))
            .map_err(|_| BlobError("chunk length out of range"))?;
        let records = usize::try_from(u64::from_le_bytes(header.array()?))
            .map_err(|_| BlobError("record count out of range"))?;
        let proof = if entry_bytes == 24 {
            Proof::Checksum(u64::from_le_bytes(header.array()?))
        } else {
            Proof::PerValue
        };
        parts.push((bytes, records, proof));
    }
    let mut chunks = Vec::with_capacity(count);
    for (bytes, records, proof) in parts {
        // Every record takes at least 11 bytes: a bound on what a corrupt count may allocate.
        if records > bytes / 11 + 1 {
            return Err(BlobError("record count larger than its chunk"));
        }
        chunks.push((header.take(bytes)?, records, proof));
        total += records;
    }
    if !header.bytes.is_empty() {
        return Err(BlobError("trailing bytes"));
    }
    let decoded = on_threads(&chunks, |&(bytes, records, proof)| {
        decode_chunk(bytes, records, proof)
    });
    let mut records = Vec::with_capacity(total);
    for chunk in decoded {
        records.extend(chunk?);
    }
    Ok(records)
}

fn decode_chunk(bytes: &[u8], count: usize, proof: Proof) -> Result<Vec<StoredRecord>, BlobError> {
    if let Proof::Checksum(expected) = proof {
        if checksum(bytes) != expected {
            return Err(BlobError(
                "a chunk does not match its checksum: the snapshot is damaged",
            ));
        }
    }
    let mut reader = Reader { bytes };
    let mut records: Vec<StoredRecord> = Vec::with_capacity(count);
    let mut scratch = String::new();
    for _ in 0..count {
        let previous = records.last();
        let namespace = reader.name(previous.map(|r| &r.namespace), &mut scratch)?;
        let key = reader.name(previous.map(|r| &r.key), &mut scratch)?;
        let len = u32::from_le_bytes(reader.array()?) as usize;
        let text = std::str::from_utf8(reader.take(len)?)
            .map_err(|_| BlobError("a value is not valid JSON"))?;
        // Without a checksum, checked here, so that reading the entry later cannot fail;
        // checking skips building the value.
        if let Proof::PerValue = proof {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|_| BlobError("a value is not valid JSON"))?;
        }
        let created_ms = reader.varint()?;
        let updated_ms = reader.varint()?;
        let expires_ms = match reader.array()? {
            [0] => None,
            [1] => Some(reader.varint()?),
            _ => return Err(BlobError("bad expiry marker")),
        };
        let version = reader.varint()?;
        let access_count = reader.varint()?;
        records.push(StoredRecord {
            namespace,
            key,
            value: StoredValue::Text(text.into()),
            created_ms,
            updated_ms,
            expires_ms,
            version,
            access_count,
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

    /// A front-coded name; the previous record's own when it is the same (a namespace, mostly),
    /// so that equal names share one allocation. `scratch` is reused between calls.
    fn name(
        &mut self,
        previous: Option<&Arc<str>>,
        scratch: &mut String,
    ) -> Result<Arc<str>, BlobError> {
        let shared = usize::try_from(self.varint()?).map_err(|_| BlobError("bad prefix"))?;
        let suffix = usize::try_from(self.varint()?).map_err(|_| BlobError("bad length"))?;
        let previous_text: &str = previous.map_or("", |p| p);
        if shared > previous_text.len() {
            return Err(BlobError("a shared prefix longer than the previous key"));
        }
        let prefix = &previous_text.as_bytes()[..shared];
        let suffix = self.take(suffix)?;
        if let Some(previous) = previous.filter(|p| suffix.is_empty() && shared == p.len()) {
            return Ok(Arc::clone(previous));
        }
        // A prefix cut at a character boundary is valid text, and valid text followed by valid
        // text is valid: only the new bytes need checking.
        if let Some(prefix) = previous_text.get(..shared) {
            let suffix =
                std::str::from_utf8(suffix).map_err(|_| BlobError("a name is not UTF-8"))?;
            scratch.clear();
            scratch.push_str(prefix);
            scratch.push_str(suffix);
            return Ok(Arc::from(scratch.as_str()));
        }
        // Names are cut where they differ, which may be inside a character: then the bytes are
        // checked as a whole.
        let mut bytes = std::mem::take(scratch).into_bytes();
        bytes.clear();
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(suffix);
        *scratch = String::from_utf8(bytes).map_err(|_| BlobError("a name is not UTF-8"))?;
        Ok(Arc::from(scratch.as_str()))
    }
}

/// Memory as a snapshot and the `MemoryChanged` events after it leave it. The key index is built
/// only when a change is applied: most loads replay few or no memory changes, and then the
/// decoded records are handed on as they are.
#[derive(Debug, Default)]
pub struct MemoryFold {
    records: Vec<StoredRecord>,
    changes: Option<Changes>,
}

/// Where each live address is in the records, and which records a change deleted.
#[derive(Debug)]
struct Changes {
    index: HashMap<Address, usize>,
    deleted: Vec<bool>,
}

/// (namespace, key).
type Address = (Arc<str>, Arc<str>);

impl MemoryFold {
    pub fn from_records(records: Vec<StoredRecord>) -> Self {
        Self {
            records,
            changes: None,
        }
    }

    pub fn apply(&mut self, change: &MemoryChange) {
        let records = &self.records;
        let Changes { index, deleted } = self.changes.get_or_insert_with(|| Changes {
            index: records
                .iter()
                .enumerate()
                .map(|(i, r)| ((Arc::clone(&r.namespace), Arc::clone(&r.key)), i))
                .collect(),
            deleted: vec![false; records.len()],
        });
        match change {
            MemoryChange::Put {
                namespace,
                key,
                entry,
            } => {
                let address: Address = (namespace.as_str().into(), key.as_str().into());
                let record = StoredRecord::from_entry(
                    Arc::clone(&address.0),
                    Arc::clone(&address.1),
                    entry.clone(),
                );
                match index.get(&address) {
                    Some(&i) => self.records[i] = record,
                    None => {
                        index.insert(address, self.records.len());
                        self.records.push(record);
                        deleted.push(false);
                    }
                }
            }
            MemoryChange::Delete { namespace, key } => {
                let address: Address = (namespace.as_str().into(), key.as_str().into());
                if let Some(i) = index.remove(&address) {
                    deleted[i] = true;
                }
            }
        }
    }

    /// The live records sorted by namespace and key; those expired at `now_ms` are dropped.
    pub fn into_records(self, now_ms: u64) -> MemoryImage {
        let mut live = self.records;
        let unexpired = |r: &StoredRecord| r.expires_ms.is_none_or(|at| at > now_ms);
        match self.changes {
            None => live.retain(unexpired),
            Some(Changes { deleted, .. }) => {
                // `retain` visits each record once, in order.
                let mut deleted = deleted.into_iter();
                live.retain(|r| !deleted.next().unwrap_or(false) && unexpired(r));
            }
        }
        if !live.is_sorted_by(|a, b| order(a, b).is_le()) {
            live.sort_unstable_by(order);
        }
        MemoryImage::from_stored(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Entry, MemoryRecord};

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

    fn encode(memory: &[MemoryRecord]) -> Vec<u8> {
        encode_memory(&MemoryImage::from(memory.to_vec())).unwrap()
    }

    fn decode(blob: &[u8]) -> Vec<MemoryRecord> {
        MemoryImage::from_stored(decode_memory(blob).unwrap())
            .records()
            .to_vec()
    }

    #[test]
    fn unsorted_memory_round_trips_and_folds_sorted() {
        let memory = vec![record("b", "x", 1, None), record("a", "y", 2, Some(9))];
        let blob = encode(&memory);
        assert_eq!(decode(&blob), memory);
        let folded = MemoryFold::from_records(decode_memory(&blob).unwrap()).into_records(0);
        assert_eq!(folded.records(), [memory[1].clone(), memory[0].clone()]);
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
        memory.sort_unstable_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
        let blob = encode(&memory);
        assert_eq!(decode(&blob), memory);
        // Values kept as text are written back byte for byte.
        let again = encode_memory(&MemoryImage::from_stored(decode_memory(&blob).unwrap()));
        assert_eq!(again.unwrap(), blob);
    }

    #[test]
    fn names_that_differ_inside_a_character_round_trip() {
        // "é" and "ê" share their first byte: front coding cuts inside the character.
        let memory = vec![record("a", "é", 1, None), record("a", "ê", 2, None)];
        assert_eq!(decode(&encode(&memory)), memory);
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let memory: Vec<MemoryRecord> = (0..50)
            .map(|i| record("a", &format!("k/{i}"), i, Some(i as u64)))
            .collect();
        let blob = encode(&memory);
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

    /// `blob` as version 1 wrote it: the same chunks without their checksums.
    fn to_v1(blob: &[u8]) -> Vec<u8> {
        let at = MAGIC.len();
        let count = u32::from_le_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(&blob[at..at + 4]);
        for i in 0..count {
            let entry = at + 4 + i * 24;
            v1.extend_from_slice(&blob[entry..entry + 16]);
        }
        v1.extend_from_slice(&blob[at + 4 + count * 24..]);
        v1
    }

    #[test]
    fn a_damaged_value_is_an_error_at_load_even_when_still_json() {
        let blob = encode(&[record("a", "k", 12345, None)]);
        let digits = blob.windows(5).position(|w| w == b"12345").unwrap();
        for (byte, old_format_error) in [(b'9', None), (b'x', Some("not valid JSON"))] {
            let mut damaged = blob.clone();
            damaged[digits] = byte;
            let err = decode_memory(&damaged).unwrap_err();
            assert!(err.to_string().contains("damaged"), "{err}");
            // Version 1 has no checksums: it catches only what is no longer JSON.
            let v1 = decode_memory(&to_v1(&damaged));
            match old_format_error {
                Some(message) => assert!(v1.unwrap_err().to_string().contains(message)),
                None => assert!(v1.is_ok()),
            }
        }
    }

    #[test]
    fn a_blob_of_version_1_still_decodes() {
        // Written by version 1 (before chunk checksums), byte for byte.
        const V1: &[u8] = b"swmem\x00\x00\x01\x01\x00\x00\x00J\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x05notes\x00\x0cagent/d\xc3\xa9v/1\x10\x00\x00\x00{\x22text\x22:\x22\xc3\xbcn\xc3\xaf\x22}\x01\x02\x00\x03\x04\x05\x00\x0b\x012\x0c\x00\x00\x00[1,2.5,null]\x05\x06\x01\xa8F\x07\x00";
        let entry =
            |key: &str, value, created_ms, updated_ms, expires_ms, version, access_count| {
                MemoryRecord {
                    namespace: "notes".into(),
                    key: key.into(),
                    entry: Entry {
                        value,
                        created_ms,
                        updated_ms,
                        expires_ms,
                        version,
                        access_count,
                    },
                }
            };
        let expected = vec![
            entry(
                "agent/dév/1",
                serde_json::json!({"text": "ünï"}),
                1,
                2,
                None,
                3,
                4,
            ),
            entry(
                "agent/dév/2",
                serde_json::json!([1, 2.5, null]),
                5,
                6,
                Some(9000),
                7,
                0,
            ),
        ];
        assert_eq!(decode(V1), expected);
        assert_eq!(to_v1(&encode(&expected)), V1);
        // Its text values are written back into a blob of the current version.
        let again = encode_memory(&MemoryImage::from_stored(decode_memory(V1).unwrap())).unwrap();
        assert_eq!(&again[..MAGIC.len()], MAGIC);
        assert_eq!(decode(&again), expected);
    }

    #[test]
    fn the_checksum_is_stable_and_sees_every_byte() {
        // Stored in files: a change of the function would make every snapshot look damaged.
        assert_eq!(checksum(b""), 0xf7c2_17af_90f8_7e1c);
        assert_eq!(
            checksum(b"one chunk of a memory blob: 41 bytes long"),
            0x8bdc_8b71_8b9f_02c8
        );
        let text: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = checksum(&text);
        for at in [0, 7, 8, 31, 32, 500, 999] {
            let mut changed = text.clone();
            changed[at] ^= 1;
            assert_ne!(checksum(&changed), whole, "a change at {at}");
        }
        assert_ne!(checksum(&text[..999]), whole);
        assert_ne!(checksum(&[0]), checksum(&[0, 0]));
    }

    #[test]
    fn changes_replace_delete_and_expire() {
        let mut fold = MemoryFold::from_records(
            [
                record("a", "k1", 1, None),
                record("a", "k2", 2, None),
                record("a", "old", 3, Some(100)),
            ]
            .into_iter()
            .map(StoredRecord::from_record)
            .collect(),
        );
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
