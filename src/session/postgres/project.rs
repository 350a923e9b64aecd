//! Project memory in PostgreSQL: the same rows and rules as the SQLite table. A write holds a
//! transaction-scoped advisory lock on its (namespace, key), so the read of the current version
//! and the write of the next are one step for every process of every machine sharing the
//! database (compare-and-swap across sessions, also for a key that does not exist yet).

use super::{PgFailure, PgStore};
use crate::memory::{Entry, MemoryRecord};
use crate::session::error::SessionError;
use crate::session::project::{ProjectPut, PutOutcome};

const COLUMNS: &str = "namespace, key, value, version, created_ms, updated_ms, expires_ms";

fn record(location: &str, row: &tokio_postgres::Row) -> Result<MemoryRecord, PgFailure> {
    let namespace: String = row.get(0);
    let key: String = row.get(1);
    let text: String = row.get(2);
    let value = serde_json::from_str(&text).map_err(|e| {
        PgFailure::Store(SessionError::Corrupt {
            location: location.to_string(),
            reason: format!("project memory `{namespace}`/`{key}`: {e}"),
        })
    })?;
    Ok(MemoryRecord {
        namespace,
        key,
        entry: Entry {
            value,
            version: row.get::<_, i64>(3) as u64,
            created_ms: row.get::<_, i64>(4) as u64,
            updated_ms: row.get::<_, i64>(5) as u64,
            expires_ms: row.get::<_, Option<i64>>(6).map(|v| v as u64),
            access_count: 0,
        },
    })
}

impl PgStore {
    /// The live entries, in one namespace or all, sorted by namespace and key.
    pub(crate) fn project_list(
        &self,
        namespace: Option<&str>,
        now: u64,
    ) -> Result<Vec<MemoryRecord>, SessionError> {
        let namespace = namespace.map(str::to_owned);
        self.run("listing project memory", move |client, store| {
            let namespace = namespace.clone();
            async move {
                let rows = client
                    .query(
                        &format!(
                            "SELECT {COLUMNS} FROM project_memory
                             WHERE ($1::TEXT IS NULL OR namespace = $1)
                               AND (expires_ms IS NULL OR expires_ms > $2)
                             ORDER BY namespace, key"
                        ),
                        &[&namespace, &(now as i64)],
                    )
                    .await?;
                rows.iter().map(|r| record(store.location(), r)).collect()
            }
        })
    }

    /// The live entry at (namespace, key).
    pub(crate) fn project_get(
        &self,
        namespace: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<MemoryRecord>, SessionError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.run("reading project memory", move |client, store| {
            let (namespace, key) = (namespace.clone(), key.clone());
            async move {
                let row = client
                    .query_opt(
                        &format!(
                            "SELECT {COLUMNS} FROM project_memory
                             WHERE namespace = $1 AND key = $2
                               AND (expires_ms IS NULL OR expires_ms > $3)"
                        ),
                        &[&namespace, &key, &(now as i64)],
                    )
                    .await?;
                row.map(|r| record(store.location(), &r)).transpose()
            }
        })
    }

    /// Writes one entry; with `expected_version`, only when the live entry has that version (0:
    /// only when the key is absent or expired). Versions grow across expiry, as in SQLite.
    pub(crate) fn project_put(
        &self,
        put: &ProjectPut,
        now: u64,
    ) -> Result<PutOutcome, SessionError> {
        let value = serde_json::to_string(&put.value).map_err(|e| SessionError::Corrupt {
            location: self.location().to_string(),
            reason: e.to_string(),
        })?;
        let put = put.clone();
        self.run("writing project memory", move |mut client, _| {
            let (put, value) = (put.clone(), value.clone());
            async move {
                let tx = client.transaction().await?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(length($1)::text || ':' || $1 || $2, 0))",
                    &[&put.namespace, &put.key],
                )
                .await?;
                let current = tx
                    .query_opt(
                        "SELECT version, created_ms, expires_ms FROM project_memory
                         WHERE namespace = $1 AND key = $2",
                        &[&put.namespace, &put.key],
                    )
                    .await?
                    .map(|r| {
                        (
                            r.get::<_, i64>(0) as u64,
                            r.get::<_, i64>(1) as u64,
                            r.get::<_, Option<i64>>(2).map(|v| v as u64),
                        )
                    });
                let entry = match crate::session::project::next_entry(current, &put, now) {
                    Ok(entry) => entry,
                    Err(conflict) => return Ok(conflict),
                };
                let (version, created_ms, expires_ms) = (entry.version, entry.created_ms, entry.expires_ms);
                tx.execute(
                    "INSERT INTO project_memory
                         (namespace, key, value, version, created_ms, updated_ms, expires_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value,
                       version = EXCLUDED.version, created_ms = EXCLUDED.created_ms,
                       updated_ms = EXCLUDED.updated_ms, expires_ms = EXCLUDED.expires_ms",
                    &[
                        &put.namespace,
                        &put.key,
                        &value,
                        &(version as i64),
                        &(created_ms as i64),
                        &(now as i64),
                        &expires_ms.map(|v| v as i64),
                    ],
                )
                .await?;
                tx.commit().await?;
                Ok(PutOutcome::Stored(entry))
            }
        })
    }

    /// Removes the live entry at (namespace, key); whether there was one.
    pub(crate) fn project_delete(
        &self,
        namespace: &str,
        key: &str,
        now: u64,
    ) -> Result<bool, SessionError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.run("deleting project memory", move |client, _| {
            let (namespace, key) = (namespace.clone(), key.clone());
            async move {
                let removed = client
                    .execute(
                        "DELETE FROM project_memory WHERE namespace = $1 AND key = $2
                         AND (expires_ms IS NULL OR expires_ms > $3)",
                        &[&namespace, &key, &(now as i64)],
                    )
                    .await?;
                Ok(removed > 0)
            }
        })
    }
}
