//! Export and import of entries as JSON, for `swarm memory export` and `import`.
//!
//! An export is a JSON array of records, each with its namespace, key, value, times, version and
//! access count. Deadlines are absolute (`expires_ms`), so an entry imported later expires when the
//! original would have, and one whose deadline has passed is not imported at all.

use super::{MemoryError, MemoryRecord, MemoryStore};
use serde::Deserialize;
use serde_json::{json, Value};

impl MemoryStore {
    /// Live entries, of `namespace` only when given, as a JSON array of records.
    pub fn export_json(&self, namespace: Option<&str>) -> Value {
        Value::Array(
            self.list(namespace, None)
                .into_iter()
                .map(|record| {
                    let entry = record.entry;
                    json!({
                        "namespace": record.namespace,
                        "key": record.key,
                        "value": entry.value,
                        "created_ms": entry.created_ms,
                        "updated_ms": entry.updated_ms,
                        "expires_ms": entry.expires_ms,
                        "version": entry.version,
                        "access_count": entry.access_count,
                    })
                })
                .collect(),
        )
    }

    /// Writes the records of an export, reporting each to the sink; returns how many were written.
    /// Every record is checked first, so a document with one bad record writes nothing. Records
    /// already expired are skipped. Over an existing key the version continues from the live one.
    pub fn import_json(&self, document: &Value) -> Result<usize, MemoryError> {
        let records = Vec::<MemoryRecord>::deserialize(document).map_err(|e| {
            MemoryError::InvalidImport(format!(
                "expected a JSON array of records as written by `swarm memory export` \
                 ({{\"namespace\", \"key\", \"value\", \"created_ms\", \"updated_ms\", \
                 \"expires_ms\", \"version\"}}): {e}"
            ))
        })?;
        for (position, record) in records.iter().enumerate() {
            self.check_address(&record.namespace, &record.key)
                .and_then(|()| self.check_value(&record.entry.value))
                .map_err(|e| MemoryError::InvalidImport(format!("record {position}: {e}")))?;
        }
        let now = self.now();
        let mut imported = 0;
        for record in records {
            if record
                .entry
                .expires_ms
                .is_none_or(|deadline| now < deadline)
            {
                self.import_record(record);
                imported += 1;
            }
        }
        Ok(imported)
    }
}
