//! The run lock of a session: at most one runner per session. The lock is a row in the database
//! naming the owner's pid and process start time, so a lock left by a killed process (pid gone, or
//! reused by an unrelated process started later) is recognised as stale and taken over.

use super::db::{self, Access};
use crate::session::error::SessionError;
use rusqlite::{OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};

/// Holds a session for one runner; released on drop.
#[derive(Debug)]
pub struct SessionLock {
    session: String,
    path: PathBuf,
    pid: u32,
    start: u64,
    /// The journal position when the lock was taken: external events after it are returned by
    /// [`crate::session::Journal::poll_external`]; those before it are in what [`crate::session::StateDir::load`]
    /// returns (a load happens after locking).
    pub(crate) external_from: u64,
}

impl SessionLock {
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The lock of a session whose row was written with this process as the holder.
    pub(crate) fn held(
        path: &Path,
        session: &str,
        (pid, start): (u32, u64),
        external_from: u64,
    ) -> Self {
        Self {
            session: session.to_string(),
            path: path.to_path_buf(),
            pid,
            start,
            external_from,
        }
    }
}

/// This process as a lock holder: its pid and start time.
pub(crate) fn current_process() -> (u32, u64) {
    let me = std::process::id();
    (me, process_start(me).unwrap_or(0))
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let released = db::connect(&self.path, Access::ReadWrite).and_then(|conn| {
            conn.execute(
                "UPDATE sessions SET lock_pid = NULL, lock_start = NULL
                 WHERE id = ?1 AND lock_pid = ?2 AND lock_start = ?3",
                rusqlite::params![self.session, self.pid, self.start as i64],
            )
            .map_err(|e| super::sqlite_error(&self.path, e))?;
            // Releasing the lock is a run's last write: fold the WAL into `state.db` so the
            // file alone holds the finished session.
            db::checkpoint_wal(&conn);
            Ok(())
        });
        if let Err(err) = released {
            // The next runner will find the lock stale once this process has exited.
            tracing::warn!(
                "could not release the lock of session {}: {err}",
                self.session
            );
        }
    }
}

/// Takes the lock of `session` for this process.
pub(crate) fn acquire(path: &Path, session: &str) -> Result<SessionLock, SessionError> {
    let err = |e| super::sqlite_error(path, e);
    let mut conn = db::connect(path, Access::ReadWrite)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let holder: Option<(Option<i64>, Option<i64>)> = tx
        .query_row(
            "SELECT lock_pid, lock_start FROM sessions WHERE id = ?1",
            [session],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let Some((pid, start)) = holder else {
        return Err(SessionError::UnknownSession {
            id: session.to_string(),
            location: path.display().to_string(),
            known: Vec::new(),
        });
    };
    if let (Some(pid), Some(start)) = (pid, start) {
        if holder_alive(pid, start) {
            return Err(SessionError::Locked {
                id: session.to_string(),
                pid: pid as u32,
            });
        }
        tracing::info!("session {session}: taking over the stale lock of process {pid}");
    }
    let (me, my_start) = current_process();
    tx.execute(
        "UPDATE sessions SET lock_pid = ?2, lock_start = ?3 WHERE id = ?1",
        rusqlite::params![session, me, my_start as i64],
    )
    .map_err(err)?;
    let external_from: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session = ?1",
            [session],
            |r| r.get(0),
        )
        .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(SessionLock {
        session: session.to_string(),
        path: path.to_path_buf(),
        pid: me,
        start: my_start,
        external_from: external_from as u64,
    })
}

/// Whether the process recorded as a lock holder still runs: the pid exists, is not a zombie,
/// and started when the lock says (otherwise the pid was reused).
pub(crate) fn holder_alive(pid: i64, start: i64) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    match process_start(pid) {
        Some(actual) => start == 0 || actual == start as u64,
        None if cfg!(target_os = "linux") => false,
        None => signal_zero(pid),
    }
}

/// The start time of a live, non-zombie process, in clock ticks after boot (`/proc/<pid>/stat`
/// field 22). `None` when the process does not exist or is a zombie, or on systems without /proc.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Fields after the name start at field 3 (state); starttime is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

fn signal_zero(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
