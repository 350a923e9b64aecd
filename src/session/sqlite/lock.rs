//! Leases in an SQLite state dir: the holder's host, pid and start time, the fencing token and
//! the expiry are columns of the session's row (see [`crate::session::lease`] for the rules).

use super::db::{self, Access};
use super::sqlite_error;
use crate::session::error::SessionError;
use crate::session::lease::{Owner, Recorded, SessionLock};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The lease columns of a session's row, as selected by [`LEASE_COLUMNS`].
pub(crate) const LEASE_COLUMNS: &str =
    "lock_pid, lock_start, lock_host, lock_token, lock_expires_ms";

/// Reads the lease columns starting at column `at` of a row.
pub(crate) fn recorded(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Recorded> {
    let pid: Option<i64> = row.get(at)?;
    let start: Option<i64> = row.get(at + 1)?;
    let host: Option<String> = row.get(at + 2)?;
    let expires: Option<i64> = row.get(at + 4)?;
    let owner = pid.map(|pid| Owner {
        // Rows from before leases named no host: they were taken on this machine.
        host: host.unwrap_or_else(|| Owner::current().host),
        pid: u32::try_from(pid).unwrap_or(0),
        start: start.map_or(0, |s| s as u64),
    });
    Ok(Recorded {
        owner,
        expires_ms: expires.map(|e| e as u64),
    })
}

/// The lease of a session whose row this process has just written as held with `token`.
pub(crate) fn held(
    path: &Path,
    session: &str,
    owner: Owner,
    token: i64,
    ttl: Duration,
    external_from: u64,
) -> Result<SessionLock, SessionError> {
    let renew_path = path.to_path_buf();
    let release_path = path.to_path_buf();
    let renew_session = session.to_string();
    let release_session = session.to_string();
    let mut conn: Option<Connection> = None;
    SessionLock::held(
        session,
        owner,
        token,
        ttl,
        external_from,
        Box::new(move || {
            if conn.is_none() {
                conn = Some(db::connect(&renew_path, Access::ReadWrite)?);
            }
            let Some(conn) = conn.as_ref() else {
                return Ok(true);
            };
            let renewed = conn
                .execute(
                    "UPDATE sessions SET lock_expires_ms = ?3 WHERE id = ?1 AND lock_token = ?2",
                    rusqlite::params![renew_session, token, expiry(ttl)],
                )
                .map_err(|e| sqlite_error(&renew_path, e))?;
            Ok(renewed == 1)
        }),
        Box::new(move || release(&release_path, &release_session, token)),
    )
}

fn release(path: &Path, session: &str, token: i64) {
    let released = db::connect(path, Access::ReadWrite).and_then(|conn| {
        conn.execute(
            "UPDATE sessions SET lock_pid = NULL, lock_start = NULL, lock_host = NULL,
                 lock_expires_ms = NULL
             WHERE id = ?1 AND lock_token = ?2",
            rusqlite::params![session, token],
        )
        .map_err(|e| sqlite_error(path, e))?;
        // Releasing the lease is a run's last write: fold the WAL into `state.db` so the
        // file alone holds the finished session.
        db::checkpoint_wal(&conn);
        Ok(())
    });
    if let Err(err) = released {
        // The next runner will find the lease stale once this process has exited.
        tracing::warn!("could not release the lease of session {session}: {err}");
    }
}

pub(crate) fn expiry(ttl: Duration) -> i64 {
    (crate::clock::now_ms() + ttl.as_millis() as u64) as i64
}

/// Writes `owner` as the holder of `session` with the next token; returns the token.
pub(crate) fn write_holder(
    conn: &Connection,
    session: &str,
    owner: &Owner,
    ttl: Duration,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "UPDATE sessions SET lock_pid = ?2, lock_start = ?3, lock_host = ?4,
             lock_token = lock_token + 1, lock_expires_ms = ?5
         WHERE id = ?1 RETURNING lock_token",
        rusqlite::params![
            session,
            owner.pid,
            owner.start as i64,
            owner.host,
            expiry(ttl)
        ],
        |r| r.get(0),
    )
}

/// Takes the lease of `session` for this process: refused while a live holder has it, taken
/// over when its owner is gone or its lease expired.
pub(crate) fn acquire(
    path: &Path,
    session: &str,
    ttl: Duration,
) -> Result<SessionLock, SessionError> {
    let err = |e| sqlite_error(path, e);
    let mut conn = db::connect(path, Access::ReadWrite)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let current = tx
        .query_row(
            &format!("SELECT {LEASE_COLUMNS} FROM sessions WHERE id = ?1"),
            [session],
            |r| recorded(r, 0),
        )
        .optional()
        .map_err(err)?;
    let Some(current) = current else {
        return Err(SessionError::UnknownSession {
            id: session.to_string(),
            location: path.display().to_string(),
            known: Vec::new(),
        });
    };
    if let Some(holder) = current.live_owner(crate::clock::now_ms()) {
        return Err(SessionError::Locked {
            id: session.to_string(),
            pid: holder.pid,
            owner: holder.to_string(),
        });
    }
    if let Some(previous) = &current.owner {
        tracing::info!("session {session}: taking over the lease of {previous}");
    }
    let me = Owner::current();
    let token = write_holder(&tx, session, &me, ttl).map_err(err)?;
    let external_from = super::log::last_seq(&tx, session).map_err(err)?;
    tx.commit().map_err(err)?;
    held(path, session, me, token, ttl, external_from)
}
