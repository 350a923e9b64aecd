//! Project memory: entries that belong to the state dir, not to one session. `swarm memory`
//! without `--session`, the MCP server's `memory_usage` without a `swarmId`, and agents in the
//! namespaces a swarm file lists under `memory.project` all read and write it, live, across
//! sessions and processes.
//!
//! Each write is one transaction of the backend (durable before it returns, so crash-safe like
//! the journal); each key has a version that every write raises by one, and a write may name
//! the version it expects, which makes compare-and-swap hold across concurrent sessions. TTLs
//! are enforced on every read.

use super::error::SessionError;
use super::store::StateDir;
use crate::memory::{Entry, MemoryRecord};

/// One write to project memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPut {
    pub namespace: String,
    pub key: String,
    pub value: serde_json::Value,
    /// Time to live from now; `None`: no expiry.
    pub ttl_ms: Option<u64>,
    /// Write only if the live entry has this version (0: only if there is none).
    pub expected_version: Option<u64>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    Stored(Entry),
    /// The expected version did not match; `current` is the live entry's version, if any.
    Conflict {
        current: Option<u64>,
    },
}

/// The row a key has now, live or expired: (version, created_ms, expires_ms).
pub(crate) type CurrentRow = (u64, u64, Option<u64>);

/// What a write stores given the key's current row, or the conflict it meets: the rules both
/// backends share. Versions grow across expiry, so a stale version never matches a newer entry.
pub(crate) fn next_entry(
    current: Option<CurrentRow>,
    put: &ProjectPut,
    now: u64,
) -> Result<Entry, PutOutcome> {
    let live = current.filter(|(_, _, expires)| expires.is_none_or(|at| at > now));
    if let Some(expected) = put.expected_version {
        if live.map_or(0, |(v, _, _)| v) != expected {
            return Err(PutOutcome::Conflict {
                current: live.map(|(v, _, _)| v),
            });
        }
    }
    Ok(Entry {
        value: put.value.clone(),
        version: current.map_or(1, |(v, _, _)| v + 1),
        created_ms: live.map_or(now, |(_, c, _)| c),
        updated_ms: now,
        expires_ms: put.ttl_ms.map(|t| now.saturating_add(t)),
        access_count: 0,
    })
}

impl StateDir {
    /// The live project entries, in one namespace or all, sorted by namespace and key.
    pub fn project_list(&self, namespace: Option<&str>) -> Result<Vec<MemoryRecord>, SessionError> {
        let now = crate::clock::now_ms();
        if let Some(pg) = self.postgres() {
            return pg.project_list(namespace, now);
        }
        self.with_sqlite(|conn, path| super::sqlite::project::list(conn, path, namespace, now))
    }

    /// The live project entry at (namespace, key).
    pub fn project_get(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, SessionError> {
        let now = crate::clock::now_ms();
        if let Some(pg) = self.postgres() {
            return pg.project_get(namespace, key, now);
        }
        self.with_sqlite(|conn, path| super::sqlite::project::get(conn, path, namespace, key, now))
    }

    /// Writes a project entry (see [`ProjectPut`]).
    pub fn project_put(&self, put: &ProjectPut) -> Result<PutOutcome, SessionError> {
        let now = crate::clock::now_ms();
        if let Some(pg) = self.postgres() {
            return pg.project_put(put, now);
        }
        self.with_sqlite(|conn, path| super::sqlite::project::put(conn, path, put, now))
    }

    /// Removes a live project entry; whether there was one.
    pub fn project_delete(&self, namespace: &str, key: &str) -> Result<bool, SessionError> {
        let now = crate::clock::now_ms();
        if let Some(pg) = self.postgres() {
            return pg.project_delete(namespace, key, now);
        }
        self.with_sqlite(|conn, path| {
            super::sqlite::project::delete(conn, path, namespace, key, now)
        })
    }
}

/// A state dir as the live home of the namespaces a swarm shares with the project.
impl crate::memory::ProjectMemory for StateDir {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>, String> {
        self.project_get(namespace, key)
            .map(|r| r.map(|r| r.entry))
            .map_err(|e| e.to_string())
    }

    fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        ttl_ms: Option<u64>,
        expected_version: Option<u64>,
    ) -> Result<Result<Entry, u64>, String> {
        let outcome = self
            .project_put(&ProjectPut {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                value: value.clone(),
                ttl_ms,
                expected_version,
            })
            .map_err(|e| e.to_string())?;
        Ok(match outcome {
            PutOutcome::Stored(entry) => Ok(entry),
            PutOutcome::Conflict { current } => Err(current.unwrap_or(0)),
        })
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, String> {
        self.project_delete(namespace, key)
            .map_err(|e| e.to_string())
    }

    fn list(&self) -> Result<Vec<MemoryRecord>, String> {
        self.project_list(None).map_err(|e| e.to_string())
    }
}
