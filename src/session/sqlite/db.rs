//! The database file of a state dir: its schema, how connections are opened, and the checks that
//! refuse a damaged or foreign file before SQLite is allowed to touch it.

use crate::session::error::SessionError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file name of the database inside the state dir.
pub const DB_FILE: &str = "state.db";

/// The schema version this build writes and reads (`PRAGMA user_version`). Version 6 gives seqs
/// without AUTOINCREMENT (see [`SEQ_HIGH`]); version 5 puts a run of events committed together
/// in one row of `events` (`event_rows.rs`); version 4 keeps a
/// session's plan in its own table, so that the per-commit update of the session's row does not
/// rewrite it; version 3 adds leases (host, fencing token, expiry) to the lock columns; version 2
/// stores snapshot memory in the binary framing of `snapshot.rs`; version 1 stored it as JSON.
pub const SCHEMA_VERSION: i64 = 6;

/// The oldest version this build reads, and upgrades in place on a read-write open.
const OLDEST_UPGRADABLE: i64 = 2;

const UPGRADE_FROM_2: &str = "
ALTER TABLE sessions ADD COLUMN lock_host TEXT;
ALTER TABLE sessions ADD COLUMN lock_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN lock_expires_ms INTEGER;
";

/// Sessions created before version 4 keep their plan in `sessions.plan`; later ones leave that
/// column empty and write the plan here.
const UPGRADE_FROM_3: &str = "
CREATE TABLE plans (
    session TEXT PRIMARY KEY REFERENCES sessions(id),
    plan    TEXT NOT NULL
);
";

/// Rows written before version 5 hold one event each.
const UPGRADE_FROM_4: &str = "
ALTER TABLE events ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
";

/// The highest seq ever handed out is the highest `events.seq`, or, once rows at the top were
/// deleted (a snapshot drops external events, a session can be deleted), the highest deleted one,
/// which the trigger keeps in `seq_high`'s single row. AUTOINCREMENT kept it in
/// `sqlite_sequence`, which costs a page write on every commit; this costs one only on a delete.
const SEQ_HIGH: &str = "
CREATE TABLE seq_high (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    seq INTEGER NOT NULL
);
CREATE TRIGGER events_keep_seq_high AFTER DELETE ON events
WHEN old.seq > COALESCE((SELECT seq FROM seq_high WHERE id = 0), 0)
BEGIN
    INSERT OR REPLACE INTO seq_high (id, seq) VALUES (0, old.seq);
END;
";

/// Files before version 6 keep their AUTOINCREMENT `events` table (it is not rebuilt), and
/// `sqlite_sequence` may hold seqs of rows deleted before the upgrade: `seq_high` starts there.
const UPGRADE_FROM_5_SEED: &str = "
INSERT OR REPLACE INTO seq_high (id, seq)
SELECT 0, seq FROM sqlite_sequence WHERE name = 'events';
";

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    swarm       TEXT NOT NULL,
    status      TEXT NOT NULL,
    goal        TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    plan        TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    tasks_total INTEGER NOT NULL DEFAULT 0,
    tasks_done  INTEGER NOT NULL DEFAULT 0,
    lock_pid    INTEGER,
    lock_start  INTEGER,
    lock_host   TEXT,
    lock_token  INTEGER NOT NULL DEFAULT 0,
    lock_expires_ms INTEGER
);
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(id),
    origin  TEXT NOT NULL CHECK (origin IN ('runner', 'external')),
    body    BLOB NOT NULL,
    n       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX events_by_session ON events(session, seq);
CREATE TABLE snapshots (
    session    TEXT PRIMARY KEY REFERENCES sessions(id),
    covers_seq INTEGER NOT NULL,
    state      BLOB NOT NULL,
    memory     BLOB NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE TABLE plans (
    session TEXT PRIMARY KEY REFERENCES sessions(id),
    plan    TEXT NOT NULL
);
";

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

pub fn db_path(root: &Path) -> PathBuf {
    root.join(DB_FILE)
}

/// Checks the 100-byte SQLite header and the file length against the page count it records, by
/// reading the file directly: a foreign, truncated or future-version file is refused before SQLite
/// opens it (which could create `-wal`/`-shm` files beside it).
pub fn check_file(path: &Path) -> Result<(), SessionError> {
    let mut file = std::fs::File::open(path).map_err(|e| SessionError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| SessionError::io(path, e))?
        .len();
    let mut header = [0u8; 100];
    if len < header.len() as u64 {
        return Err(SessionError::NotADatabase {
            location: path.display().to_string(),
            reason: format!("the file is only {len} bytes long"),
        });
    }
    file.read_exact(&mut header)
        .map_err(|e| SessionError::io(path, e))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(SessionError::NotADatabase {
            location: path.display().to_string(),
            reason: "the file does not start with the SQLite header".to_string(),
        });
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(SessionError::Corrupt {
            location: path.display().to_string(),
            reason: format!("invalid page size {page_size} in the header"),
        });
    }
    // The recorded page count is trustworthy only when the change counter matches the
    // version-valid-for number; a non-empty WAL may hold pages the main file does not have yet.
    let pages = u64::from(be32(28));
    let header_size_valid = pages != 0 && be32(24) == be32(92);
    let wal_len = std::fs::metadata(wal_path(path))
        .map(|m| m.len())
        .unwrap_or(0);
    if header_size_valid && wal_len == 0 && len < pages * page_size {
        return Err(SessionError::Corrupt {
            location: path.display().to_string(),
            reason: format!(
                "the file is truncated: {len} bytes where the header records {pages} pages of {page_size} bytes"
            ),
        });
    }
    let version = i64::from(be32(60) as i32);
    check_version(path, version)
}

fn check_version(path: &Path, found: i64) -> Result<(), SessionError> {
    if (OLDEST_UPGRADABLE..=SCHEMA_VERSION).contains(&found) {
        Ok(())
    } else if found == 0 {
        Err(SessionError::NotADatabase {
            location: path.display().to_string(),
            reason: "an SQLite database, but not one written by swarm".to_string(),
        })
    } else {
        Err(SessionError::UnknownSchema {
            location: path.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        })
    }
}

fn wal_path(path: &Path) -> PathBuf {
    suffixed(path, "-wal")
}

/// Opens a connection to an existing, checked database file.
pub fn connect(path: &Path, access: Access) -> Result<Connection, SessionError> {
    let err = |e| super::sqlite_error(path, e);
    let conn = match access {
        // No WAL file means no connection has the database open (the last one to close removes
        // it): read the file as it is, so that reading creates no `-wal`/`-shm` files beside it.
        Access::ReadOnly if !wal_path(path).exists() => Connection::open_with_flags(
            immutable_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
        Access::ReadOnly => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
        Access::ReadWrite => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
    }
    .map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    if access == Access::ReadWrite {
        // FULL: a committed transaction survives power loss; group commit amortises the fsync.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
    }
    // The WAL may hold a newer page 1 than the one `check_file` read.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    check_version(path, version)?;
    if access == Access::ReadWrite && version < SCHEMA_VERSION {
        upgrade(&conn).map_err(err)?;
    }
    Ok(conn)
}

/// Copies the WAL into the database file and empties it, so that `state.db` alone holds every
/// committed transaction. A reader keeping the WAL busy only defers the copy to the next
/// checkpoint: failure costs disk space, never data.
pub fn checkpoint_wal(conn: &Connection) {
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Brings an older database to this version (lease columns, plans table, event counts, the seq
/// high-water mark), once, whichever process gets there first.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 2 {
            conn.execute_batch(UPGRADE_FROM_2)?;
        }
        if (2..=3).contains(&version) {
            conn.execute_batch(UPGRADE_FROM_3)?;
        }
        if (2..=4).contains(&version) {
            conn.execute_batch(UPGRADE_FROM_4)?;
        }
        if (2..=5).contains(&version) {
            conn.execute_batch(SEQ_HIGH)?;
            let autoincrement: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
                [],
                |r| r.get(0),
            )?;
            if autoincrement {
                conn.execute_batch(UPGRADE_FROM_5_SEED)?;
            }
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The schema version of an open database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// A `file:` URI opening `path` as immutable (see <https://sqlite.org/uri.html>).
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Creates the database file with its schema, unless another process got there first. The file
/// is built under a temporary name and linked into place, so nobody ever sees a half-created
/// `state.db`: several runs starting at once on a new state dir all open the same, complete file.
pub fn create(path: &Path) -> Result<(), SessionError> {
    let temp = temp_path(path);
    let built = build(&temp);
    let placed = built.and_then(|()| match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        // Another run placed its file first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SessionError::io(path, e)),
    });
    for leftover in [temp.clone(), wal_path(&temp), suffixed(&temp, "-shm")] {
        let _ = std::fs::remove_file(leftover);
    }
    placed
}

/// A name beside `path` that no other process uses.
fn temp_path(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    suffixed(path, &format!(".new-{}-{nanos}", std::process::id()))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a fresh database with the schema at `path`, and closes it: closing the only connection
/// folds its WAL into the file, so the file is complete on its own.
fn build(path: &Path) -> Result<(), SessionError> {
    let err = |e| super::sqlite_error(path, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute_batch(SCHEMA).map_err(err)?;
    tx.execute_batch(SEQ_HIGH).map_err(err)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err)?;
    tx.commit().map_err(err)?;
    conn.close().map_err(|(_, e)| err(e))
}
