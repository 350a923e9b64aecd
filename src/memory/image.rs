//! The store's content in the form snapshots hold it, so that a resume moves values instead of
//! parsing them.
//!
//! A restored entry keeps its value as the JSON text the snapshot stored; it is parsed when it
//! is read, and a checkpoint copies the text back as it is. Values written since (or replayed
//! from the journal) are kept parsed, as before. Either way a read returns the same
//! `serde_json::Value`: the text is what serialising that value gave.

use super::{Entry, MemoryRecord};
use serde_json::Value;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// A value as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoredValue {
    Parsed(Value),
    /// Compact JSON text from a snapshot, known to parse: checked when it was read, or covered
    /// by the checksum of a snapshot that wrote it as JSON.
    Text(Box<str>),
}

impl StoredValue {
    pub(crate) fn to_value(&self) -> Value {
        match self {
            StoredValue::Parsed(value) => value.clone(),
            StoredValue::Text(text) => parse(text),
        }
    }

    /// Appends the value's compact JSON.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            StoredValue::Parsed(value) => serde_json::to_writer(out, value),
            StoredValue::Text(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
        }
    }
}

/// Text is only ever stored when it is known to parse (see `session::snapshot`), so this
/// cannot fail; were it to, the entry reads as `null` and the failure is logged, rather than a
/// read taking the process down.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::error!("a stored memory value does not parse: {e}");
        Value::Null
    })
}

/// One entry of an image: a [`MemoryRecord`] with shared names and the value as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRecord {
    pub(crate) namespace: Arc<str>,
    pub(crate) key: Arc<str>,
    pub(crate) value: StoredValue,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    pub(crate) expires_ms: Option<u64>,
    pub(crate) version: u64,
    pub(crate) access_count: u64,
}

impl StoredRecord {
    pub(crate) fn from_record(record: MemoryRecord) -> Self {
        let MemoryRecord {
            namespace,
            key,
            entry,
        } = record;
        Self::from_entry(namespace.into(), key.into(), entry)
    }

    pub(crate) fn from_entry(namespace: Arc<str>, key: Arc<str>, entry: Entry) -> Self {
        Self {
            namespace,
            key,
            value: StoredValue::Parsed(entry.value),
            created_ms: entry.created_ms,
            updated_ms: entry.updated_ms,
            expires_ms: entry.expires_ms,
            version: entry.version,
            access_count: entry.access_count,
        }
    }

    fn to_record(&self) -> MemoryRecord {
        MemoryRecord {
            namespace: self.namespace.to_string(),
            key: self.key.to_string(),
            entry: Entry {
                value: self.value.to_value(),
                created_ms: self.created_ms,
                updated_ms: self.updated_ms,
                expires_ms: self.expires_ms,
                version: self.version,
                access_count: self.access_count,
            },
        }
    }
}

/// Memory records as a snapshot holds them: what [`MemoryStore::image`] writes into a
/// checkpoint, what a load returns, and what [`MemoryStore::restore`] takes without parsing a
/// value. Reading it as a slice of [`MemoryRecord`] parses every value once, on first use.
///
/// [`MemoryStore::image`]: super::MemoryStore::image
/// [`MemoryStore::restore`]: super::MemoryStore::restore
#[derive(Debug, Clone, Default)]
pub struct MemoryImage {
    records: Vec<StoredRecord>,
    parsed: OnceLock<Vec<MemoryRecord>>,
}

impl MemoryImage {
    pub(crate) fn from_stored(records: Vec<StoredRecord>) -> Self {
        Self {
            records,
            parsed: OnceLock::new(),
        }
    }

    pub(crate) fn stored(&self) -> &[StoredRecord] {
        &self.records
    }

    pub(crate) fn into_stored(self) -> Vec<StoredRecord> {
        self.records
    }

    /// How many records, without parsing them.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records with their values parsed (once; later calls return the same slice).
    pub fn records(&self) -> &[MemoryRecord] {
        self.parsed
            .get_or_init(|| self.records.iter().map(StoredRecord::to_record).collect())
    }
}

impl Deref for MemoryImage {
    type Target = [MemoryRecord];

    fn deref(&self) -> &[MemoryRecord] {
        self.records()
    }
}

impl From<Vec<MemoryRecord>> for MemoryImage {
    fn from(records: Vec<MemoryRecord>) -> Self {
        Self::from_stored(records.into_iter().map(StoredRecord::from_record).collect())
    }
}

impl PartialEq for MemoryImage {
    fn eq(&self, other: &Self) -> bool {
        self.records() == other.records()
    }
}
