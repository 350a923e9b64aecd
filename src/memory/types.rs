//! The records of the memory store and the changes the journal records.

use serde::{Deserialize, Serialize};

/// One stored value and its bookkeeping. Times are wall-clock milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub value: serde_json::Value,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// When the entry stops existing; `None`: never.
    pub expires_ms: Option<u64>,
    /// 1 for a new key, then +1 per write.
    pub version: u64,
    #[serde(default)]
    pub access_count: u64,
}

/// An entry with its address, as listed, searched, exported and snapshotted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    pub namespace: String,
    pub key: String,
    #[serde(flatten)]
    pub entry: Entry,
}

/// A mutation of the store, as the journal records it. Applying it again is harmless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MemoryChange {
    Put {
        namespace: String,
        key: String,
        entry: Entry,
    },
    Delete {
        namespace: String,
        key: String,
    },
}
