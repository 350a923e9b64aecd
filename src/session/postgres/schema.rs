//! The database's tables and their version. A database is set up on first use, under an
//! advisory lock so that workers starting together set it up once; a database whose version
//! this build does not know is refused, unchanged.

use super::PgFailure;
use crate::session::error::SessionError;

/// The schema version this build writes and reads (the `swarm_schema` table).
pub const SCHEMA_VERSION: i64 = 1;

/// Serialises set-up across processes (`pg_advisory_xact_lock` key).
const SETUP_LOCK: i64 = 0x5357_4152_4d00_0001;

const SCHEMA: &str = "
CREATE TABLE swarm_schema (version BIGINT NOT NULL);
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    swarm       TEXT NOT NULL,
    status      TEXT NOT NULL,
    goal        TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    plan        TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    tasks_total BIGINT NOT NULL DEFAULT 0,
    tasks_done  BIGINT NOT NULL DEFAULT 0,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    created_order BIGSERIAL,
    lock_pid    BIGINT,
    lock_start  BIGINT,
    lock_host   TEXT,
    lock_token  BIGINT NOT NULL DEFAULT 0,
    lock_expires_ms BIGINT
);
CREATE INDEX sessions_by_status ON sessions (status, created_ms);
CREATE TABLE events (
    session TEXT NOT NULL REFERENCES sessions(id),
    seq     BIGINT NOT NULL,
    origin  TEXT NOT NULL CHECK (origin IN ('runner', 'external')),
    body    BYTEA NOT NULL,
    PRIMARY KEY (session, seq)
);
CREATE TABLE snapshots (
    session    TEXT PRIMARY KEY REFERENCES sessions(id),
    covers_seq BIGINT NOT NULL,
    state      BYTEA NOT NULL,
    memory     BYTEA NOT NULL,
    at_ms      BIGINT NOT NULL
);
";

/// Provider rate limits counted across processes (`rate::take`): one row per provider endpoint
/// and model, holding the current minute's counts. Added beside version 1 without changing it:
/// older builds never read it.
const RATE_WINDOWS: &str = "
CREATE TABLE IF NOT EXISTS rate_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL
);
";

/// Project memory (`project.rs`): entries of the database, not of one session, with a version
/// per key. Added beside version 1 in the same way as `rate_windows`.
const PROJECT_MEMORY: &str = "
CREATE TABLE IF NOT EXISTS project_memory (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    PRIMARY KEY (namespace, key)
);
";

/// Creates the tables when the database has none; checks the version either way.
pub(crate) async fn ensure(
    client: &mut tokio_postgres::Client,
    location: &str,
    create: bool,
) -> Result<(), PgFailure> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
        .await?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('swarm_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        if !create {
            return Err(PgFailure::Store(SessionError::NoStateDir {
                location: location.to_string(),
            }));
        }
        tx.batch_execute(SCHEMA).await?;
        tx.execute(
            "INSERT INTO swarm_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await?;
    }
    let found: i64 = tx
        .query_opt("SELECT version FROM swarm_schema LIMIT 1", &[])
        .await?
        .map_or(0, |row| row.get(0));
    if found == SCHEMA_VERSION {
        tx.batch_execute(RATE_WINDOWS).await?;
        tx.batch_execute(PROJECT_MEMORY).await?;
    }
    tx.commit().await?;
    if found != SCHEMA_VERSION {
        return Err(PgFailure::Store(SessionError::UnknownSchema {
            location: location.to_string(),
            found,
            supported: SCHEMA_VERSION,
        }));
    }
    Ok(())
}
