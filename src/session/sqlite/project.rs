//! Project memory in SQLite: one table of (namespace, key) rows with a version, written in
//! `BEGIN IMMEDIATE` transactions so that the read of the current version and the write of the
//! next are one step for every process sharing the state dir (compare-and-swap across sessions).

use super::sqlite_error;
use crate::memory::{Entry, MemoryRecord};
use crate::session::error::SessionError;
use crate::session::project::{ProjectPut, PutOutcome};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS project_memory (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (namespace, key)
)";

fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'project_memory'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(MemoryRecord, String)> {
    let value: String = row.get(2)?;
    Ok((
        MemoryRecord {
            namespace: row.get(0)?,
            key: row.get(1)?,
            entry: Entry {
                value: serde_json::Value::Null,
                version: row.get::<_, i64>(3)? as u64,
                created_ms: row.get::<_, i64>(4)? as u64,
                updated_ms: row.get::<_, i64>(5)? as u64,
                expires_ms: row.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                access_count: 0,
            },
        },
        value,
    ))
}

fn decode(
    path: &Path,
    (mut r, value): (MemoryRecord, String),
) -> Result<MemoryRecord, SessionError> {
    r.entry.value = serde_json::from_str(&value).map_err(|e| SessionError::Corrupt {
        location: path.display().to_string(),
        reason: format!("project memory `{}`/`{}`: {e}", r.namespace, r.key),
    })?;
    Ok(r)
}

const COLUMNS: &str = "namespace, key, value, version, created_ms, updated_ms, expires_ms";

/// The live entries, in one namespace or all, sorted by namespace and key.
pub(crate) fn list(
    conn: &Connection,
    path: &Path,
    namespace: Option<&str>,
    now: u64,
) -> Result<Vec<MemoryRecord>, SessionError> {
    let err = |e| sqlite_error(path, e);
    if !has_table(conn).map_err(err)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM project_memory
             WHERE (?1 IS NULL OR namespace = ?1) AND (expires_ms IS NULL OR expires_ms > ?2)
             ORDER BY namespace, key"
        ))
        .map_err(err)?;
    let rows = stmt
        .query_map(rusqlite::params![namespace, now as i64], record)
        .map_err(err)?;
    rows.map(|r| decode(path, r.map_err(err)?)).collect()
}

/// The live entry at (namespace, key).
pub(crate) fn get(
    conn: &Connection,
    path: &Path,
    namespace: &str,
    key: &str,
    now: u64,
) -> Result<Option<MemoryRecord>, SessionError> {
    let err = |e| sqlite_error(path, e);
    if !has_table(conn).map_err(err)? {
        return Ok(None);
    }
    let found = conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM project_memory WHERE namespace = ?1 AND key = ?2
                 AND (expires_ms IS NULL OR expires_ms > ?3)"
            ),
            rusqlite::params![namespace, key, now as i64],
            record,
        )
        .optional()
        .map_err(err)?;
    found.map(|r| decode(path, r)).transpose()
}

/// Writes one entry; with `expected_version`, only when the live entry has that version (0: only
/// when the key is absent or expired). Versions grow across expiry, so a stale version never
/// matches a newer entry.
pub(crate) fn put(
    conn: &mut Connection,
    path: &Path,
    put: &ProjectPut,
    now: u64,
) -> Result<PutOutcome, SessionError> {
    let err = |e| sqlite_error(path, e);
    let value = serde_json::to_string(&put.value).map_err(|e| SessionError::Corrupt {
        location: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute(TABLE, []).map_err(err)?;
    let current: Option<(u64, u64, Option<u64>)> = tx
        .query_row(
            "SELECT version, created_ms, expires_ms FROM project_memory WHERE namespace = ?1 AND key = ?2",
            rusqlite::params![put.namespace, put.key],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                ))
            },
        )
        .optional()
        .map_err(err)?;
    let entry = match crate::session::project::next_entry(current, put, now) {
        Ok(entry) => entry,
        Err(conflict) => return Ok(conflict),
    };
    let (version, created_ms, expires_ms) = (entry.version, entry.created_ms, entry.expires_ms);
    tx.execute(
        "INSERT INTO project_memory (namespace, key, value, version, created_ms, updated_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
           version = excluded.version, created_ms = excluded.created_ms,
           updated_ms = excluded.updated_ms, expires_ms = excluded.expires_ms",
        rusqlite::params![
            put.namespace,
            put.key,
            value,
            version as i64,
            created_ms as i64,
            now as i64,
            expires_ms.map(|v| v as i64)
        ],
    )
    .map_err(err)?;
    // Expired rows stay until their key is written again: reads skip them, and keeping the row
    // keeps its version, so a version read before the expiry never matches a newer entry.
    tx.commit().map_err(err)?;
    Ok(PutOutcome::Stored(entry))
}

/// Removes the live entry at (namespace, key); whether there was one.
pub(crate) fn delete(
    conn: &mut Connection,
    path: &Path,
    namespace: &str,
    key: &str,
    now: u64,
) -> Result<bool, SessionError> {
    let err = |e| sqlite_error(path, e);
    if !has_table(conn).map_err(err)? {
        return Ok(false);
    }
    let removed = conn
        .execute(
            "DELETE FROM project_memory WHERE namespace = ?1 AND key = ?2
             AND (expires_ms IS NULL OR expires_ms > ?3)",
            rusqlite::params![namespace, key, now as i64],
        )
        .map_err(err)?;
    Ok(removed > 0)
}
