//! The SQLite side of the journal: a batch of events and snapshots in one `IMMEDIATE`
//! transaction (WAL, `synchronous=FULL`: one fsync per batch), multi-row INSERTs, and the reader
//! of external events.

use super::db::{self, Access};
use super::event_rows::{self, EventRows};
use super::sqlite_error;
use crate::session::error::SessionError;
use crate::session::journal::{EventLog, ExternalFeed, Work};
use crate::session::rows::{Origin, RowEffect};
use crate::session::Event;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Arc;

/// The writer's page cache, as SQLite's `cache_size` (negative: KiB).
const WRITER_CACHE_KIB: i64 = -256;

/// SQLite's default WAL size, in pages, past which a commit checkpoints.
const AUTOCHECKPOINT_PAGES: i64 = 1000;

/// The journal position of a session: its last event, or what its snapshot covers.
pub(crate) fn last_seq(conn: &Connection, session: &str) -> rusqlite::Result<u64> {
    let last: i64 = conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events WHERE session = ?1), 0),
                    COALESCE((SELECT covers_seq FROM snapshots WHERE session = ?1), 0))",
        [session],
        |r| r.get(0),
    )?;
    Ok(last as u64)
}

/// The writer's connection and buffers.
pub(crate) struct SqliteLog {
    conn: Connection,
    path: PathBuf,
    session: String,
    /// Reused encoding buffer of a run of events: one allocation for the life of the writer,
    /// not one per event.
    rows: EventRows,
    /// A snapshot was written: checkpoint once the acks are sent.
    checkpoint_due: bool,
    /// The fencing token of this runner's lease, checked by every commit.
    token: i64,
    /// The seqs this writer committed, for the reader of external events to skip.
    own: Arc<OwnSeqs>,
    /// What committed batches changed in the session's row that is not written to it yet.
    pending: RowEffect,
    /// When this writer last wrote the session's row.
    row_written_ms: u64,
}

/// How long the session's row may go without its tallies and time rewritten while events commit.
const ROW_EVERY_MS: u64 = 1000;

/// The ranges of seqs a writer committed and the external reader has not read past yet: the
/// reader looks only at the gaps between them (usually none), not at every row it wrote.
#[derive(Debug, Default)]
pub(crate) struct OwnSeqs(Mutex<Vec<(u64, u64)>>);

impl OwnSeqs {
    fn add(&self, first: u64, last: u64) {
        let mut ranges = self.0.lock();
        match ranges.last_mut() {
            Some(prev) if prev.1 + 1 == first => prev.1 = last,
            _ => ranges.push((first, last)),
        }
    }

    /// The ranges after position `after`, in order.
    fn after(&self, after: u64) -> Vec<(u64, u64)> {
        let mut ranges = self.0.lock();
        ranges.retain(|&(_, last)| last > after);
        ranges.clone()
    }
}

/// Why a batch was not written.
enum WriteError {
    Sqlite(rusqlite::Error),
    /// The session's row names another lease holder.
    Fenced,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sqlite(e)
    }
}

impl SqliteLog {
    pub(crate) fn open(
        path: &std::path::Path,
        session: &str,
        token: i64,
    ) -> Result<Self, SessionError> {
        let conn = db::connect(path, Access::ReadWrite)?;
        // The writer appends at the right edge of its b-trees and rereads almost nothing: a small
        // page cache does the same work as SQLite's default 2 MiB, which counts in peak RSS.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(|e| sqlite_error(path, e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            session: session.to_string(),
            rows: EventRows::with_capacity(64 * 1024),
            checkpoint_due: false,
            token,
            own: Arc::default(),
            pending: RowEffect::default(),
            row_written_ms: 0,
        })
    }

    /// Where this writer records what it committed, for [`SqliteFeed`].
    pub(crate) fn own_seqs(&self) -> Arc<OwnSeqs> {
        Arc::clone(&self.own)
    }

    pub(crate) fn last_seq(&self) -> Result<u64, SessionError> {
        last_seq(&self.conn, &self.session).map_err(|e| sqlite_error(&self.path, e))
    }

    /// A failure leaves the previous setting, which costs time, not correctness.
    fn set_autocheckpoint(&self, pages: i64) {
        let _ = self.conn.pragma_update(None, "wal_autocheckpoint", pages);
    }

    /// Writes `batch` in one `IMMEDIATE` transaction. `BEGIN` and `COMMIT` are cached
    /// statements: a [`rusqlite::Transaction`] would parse and plan both anew for every batch.
    fn write(&mut self, batch: &[Work], last_seq: u64) -> Result<u64, WriteError> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let written = self.write_open(batch, last_seq).and_then(|written| {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(written)
        });
        let Written {
            last_seq,
            events,
            effect,
            row_written_ms,
        } = match written {
            Ok(written) => written,
            Err(e) => {
                // A failed COMMIT (or statement) may leave the transaction open.
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                return Err(e);
            }
        };
        match row_written_ms {
            Some(now) => {
                self.pending = RowEffect::default();
                self.row_written_ms = now;
            }
            None => self.pending = effect,
        }
        // One transaction holds the write lock from its first insert: its seqs are consecutive.
        if events > 0 {
            self.own.add(last_seq + 1 - events, last_seq);
        }
        Ok(last_seq)
    }

    /// The statements of [`SqliteLog::write`], inside its transaction.
    fn write_open(&mut self, batch: &[Work], mut last_seq: u64) -> Result<Written, WriteError> {
        let tx = &self.conn;
        // Added to what earlier batches left unwritten; kept only once this batch commits.
        let mut effect = self.pending.clone();
        let mut events = 0u64;
        let mut rest = batch;
        while !rest.is_empty() {
            let run = rest
                .iter()
                .position(|work| !matches!(work, Work::Event(_)))
                .unwrap_or(rest.len());
            if run > 0 {
                self.rows.clear();
                for work in &rest[..run] {
                    if let Work::Event(event) = work {
                        self.rows
                            .push(event)
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                        effect.add(event);
                    }
                }
                if let Some(last) = self.rows.insert(tx, &self.session, Origin::Runner)? {
                    last_seq = last;
                }
                events += self.rows.len() as u64;
                rest = &rest[run..];
                continue;
            }
            if let Some((Work::Snapshot(snapshot), tail)) = rest.split_first() {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO snapshots (session, covers_seq, state, memory, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(rusqlite::params![
                    self.session,
                    snapshot.covers as i64,
                    snapshot.state,
                    snapshot.memory,
                    snapshot.at_ms as i64
                ])?;
                // Runner events stay: they are the session's history (transcripts, timeline);
                // a load replays only those after `covers`. External events are replayed
                // whatever their seq, so the ones the snapshot's memory holds are dropped.
                // Only after what earlier snapshots (or polls that found nothing) left clean:
                // the statement visits every row of its range.
                if snapshot.external_seen > snapshot.external_clean {
                    tx.prepare_cached(
                        "DELETE FROM events WHERE session = ?1 AND origin = 'external'
                         AND seq > ?3 AND seq <= ?2",
                    )?
                    .execute(rusqlite::params![
                        self.session,
                        snapshot.external_seen as i64,
                        snapshot.external_clean as i64
                    ])?;
                }
                effect.set_exact(snapshot.tasks);
                rest = tail;
            }
        }
        // The fence: the row must still name this runner's lease, or nothing of the batch stays.
        // The row's tallies and time are rewritten when its status or tallies are set, a task
        // joins, or a second has passed; in between a commit only reads the row, which spares
        // it a page in the WAL (the tallies then lag by at most a second's completed tasks).
        let now = crate::clock::now_ms();
        let write_row = effect.status.is_some()
            || effect.exact.is_some()
            || effect.tasks_created > 0
            || now.saturating_sub(self.row_written_ms) >= ROW_EVERY_MS;
        let held = if write_row {
            write_effect(tx, &self.session, &effect, Some(now), Some(self.token))?
        } else {
            tx.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1 AND lock_token = ?2")?
                .query([&self.session as &dyn rusqlite::ToSql, &self.token])?
                .next()?
                .map_or(0, |_| 1)
        };
        if held == 0 {
            return Err(WriteError::Fenced);
        }
        Ok(Written {
            last_seq,
            events,
            effect,
            row_written_ms: write_row.then_some(now),
        })
    }
}

/// What a batch's statements did, kept once its transaction commits.
struct Written {
    /// The seq of the batch's last event.
    last_seq: u64,
    /// How many events it inserted.
    events: u64,
    /// What it changed in the session's row, with what earlier batches left unwritten.
    effect: RowEffect,
    /// When the session's row was written with `effect`; `None`: `effect` is still pending.
    row_written_ms: Option<u64>,
}

impl EventLog for SqliteLog {
    fn commit(&mut self, batch: &[Work], last_seq: u64) -> Result<u64, SessionError> {
        // A snapshot puts megabytes into the WAL, and the automatic checkpoint would copy them to
        // the database file inside the commit, while the caller waits for its ack: the snapshot
        // is durable once the WAL is synced, so the copy is deferred until the acks are sent.
        if batch.iter().any(|work| matches!(work, Work::Snapshot(_))) {
            self.set_autocheckpoint(0);
            self.checkpoint_due = true;
        }
        self.write(batch, last_seq).map_err(|e| match e {
            WriteError::Sqlite(e) => sqlite_error(&self.path, e),
            WriteError::Fenced => SessionError::LeaseLost {
                id: self.session.clone(),
            },
        })
    }

    fn settle(&mut self) {
        if std::mem::take(&mut self.checkpoint_due) {
            // `state.db` copied without its `-wal` then loses nothing.
            super::db::checkpoint_wal(&self.conn);
            self.set_autocheckpoint(AUTOCHECKPOINT_PAGES);
        }
    }

    fn close(&mut self) {
        if self.pending != RowEffect::default() {
            // Best effort: a lost tally is corrected by the next snapshot of the session.
            let _ = write_effect(
                &self.conn,
                &self.session,
                &self.pending,
                None,
                Some(self.token),
            );
        }
        super::db::checkpoint_wal(&self.conn);
    }
}

/// Writes what a run of events changed in the session's row, if the row names lease `token`
/// (when given); returns the rows changed.
pub(crate) fn write_effect(
    conn: &Connection,
    session: &str,
    effect: &RowEffect,
    now_ms: Option<u64>,
    token: Option<i64>,
) -> rusqlite::Result<usize> {
    let (total, done) = effect.exact.unzip();
    conn.prepare_cached(
        "UPDATE sessions SET
             tasks_total = COALESCE(?2, tasks_total) + ?3,
             tasks_done = COALESCE(?4, tasks_done) + ?5,
             status = COALESCE(?6, status),
             updated_ms = ?7
         WHERE id = ?1 AND (?8 IS NULL OR lock_token = ?8)",
    )?
    .execute(rusqlite::params![
        session,
        total,
        effect.tasks_created,
        done,
        effect.tasks_done,
        effect.status.map(crate::session::SessionStatus::as_str),
        now_ms.unwrap_or_else(crate::clock::now_ms) as i64,
        token,
    ])
}

/// Reads external events with a read-only connection opened on first use.
pub(crate) struct SqliteFeed {
    conn: Option<Connection>,
    path: PathBuf,
    session: String,
    /// What the runner's own writer committed: never external, so not read.
    own: Arc<OwnSeqs>,
}

impl SqliteFeed {
    pub(crate) fn new(path: &std::path::Path, session: &str, own: Arc<OwnSeqs>) -> Self {
        Self {
            conn: None,
            path: path.to_path_buf(),
            session: session.to_string(),
            own,
        }
    }
}

impl ExternalFeed for SqliteFeed {
    fn poll(&mut self, after: u64) -> Result<(Vec<Event>, u64), SessionError> {
        let path = self.path.clone();
        let err = |e| sqlite_error(&path, e);
        if self.conn.is_none() {
            self.conn = Some(db::connect(&path, Access::ReadOnly)?);
        }
        let Some(conn) = self.conn.as_ref() else {
            return Ok((Vec::new(), after));
        };
        // The cursor moves past every committed event, not only external ones, so that a poll
        // reads just what arrived since the last one (the index is on session and seq). Rows of
        // this runner's writer are skipped by range: a transaction's seqs are visible only once
        // every lower seq is, so the gaps between its ranges and the tail after them hold every
        // row of anyone else.
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, n, CASE WHEN origin = 'external' THEN body END FROM events
                 WHERE session = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq",
            )
            .map_err(err)?;
        let mut gaps = Vec::new();
        let mut cursor = after;
        for (first, last) in self.own.after(after) {
            if first > cursor + 1 {
                gaps.push((cursor, first));
            }
            cursor = cursor.max(last);
        }
        gaps.push((cursor, i64::MAX as u64));
        let mut rows = Vec::new();
        for (from, to) in gaps {
            let found = stmt
                .query_map(
                    rusqlite::params![self.session, from as i64, to as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                        ))
                    },
                )
                .and_then(|found| found.collect::<Result<Vec<_>, _>>())
                .map_err(err)?;
            rows.extend(found);
        }
        let mut events = Vec::new();
        let mut seen = cursor;
        let decode_error = |message: String| SessionError::Decode {
            location: path.display().to_string(),
            session: self.session.clone(),
            what: "event",
            message,
        };
        for (seq, n, body) in rows {
            seen = seen.max(seq as u64);
            let Some(body) = body else { continue };
            for (_, event) in event_rows::split(seq, n, &body).map_err(decode_error)? {
                events
                    .push(serde_json::from_slice(event).map_err(|e| decode_error(e.to_string()))?);
            }
        }
        Ok((events, seen))
    }
}
