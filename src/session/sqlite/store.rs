//! The state dir: one SQLite database holding every session, its plan, its journal of events and
//! its latest snapshot.

use super::db::{self, Access};
use super::event_rows::{self, EventRows};
use super::lock;
use super::log::{self as sqlite_log, SqliteFeed, SqliteLog};
use super::sqlite_error;
use crate::session::error::SessionError;
use crate::session::event::{Envelope, Event, SessionStatus};
use crate::session::journal::Journal;
use crate::session::lease::{Owner, SessionLock, DEFAULT_LEASE};
use crate::session::rows::{new_session_id, Origin, RowEffect, SummaryRow};
use crate::session::snapshot::{self, MemoryFold};
use crate::session::state::SessionState;
use crate::session::store::{Restored, SessionStore, SessionSummary};
use crate::spec::SwarmPlan;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A state dir and its open database.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The schema version of the file as opened (a read-only open leaves version 2 as it is).
    schema: i64,
    /// How long the leases this store takes last unless renewed.
    lease: std::time::Duration,
}

impl SqliteStore {
    /// Opens the state dir at `root`, creating the directory and the database when absent. A file
    /// that exists but is not a healthy state database is refused, never recreated.
    pub fn open(root: &Path) -> Result<Self, SessionError> {
        std::fs::create_dir_all(root).map_err(|e| SessionError::io(root, e))?;
        let path = db::db_path(root);
        if !path.exists() {
            db::create(&path)?;
        }
        Self::connect(path, Access::ReadWrite)
    }

    /// Opens an existing state dir for reading and writing.
    pub fn open_existing(root: &Path) -> Result<Self, SessionError> {
        let path = Self::existing_db(root)?;
        Self::connect(path, Access::ReadWrite)
    }

    /// Opens an existing state dir without ever writing to it.
    pub fn open_read_only(root: &Path) -> Result<Self, SessionError> {
        let path = Self::existing_db(root)?;
        Self::connect(path, Access::ReadOnly)
    }

    fn existing_db(root: &Path) -> Result<PathBuf, SessionError> {
        let path = db::db_path(root);
        if !path.is_file() {
            return Err(SessionError::NoStateDir {
                location: root.display().to_string(),
            });
        }
        Ok(path)
    }

    fn connect(path: PathBuf, access: Access) -> Result<Self, SessionError> {
        db::check_file(&path)?;
        let conn = db::connect(&path, access)?;
        let schema = db::version(&conn).map_err(|e| sqlite_error(&path, e))?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            schema,
            lease: DEFAULT_LEASE,
        })
    }

    /// Leases taken from now on last `ttl` unless renewed.
    pub fn set_lease(&mut self, ttl: std::time::Duration) {
        self.lease = ttl;
    }

    /// The lease columns to select: version 2 files opened read-only have only pid and start.
    fn lease_columns(&self) -> &'static str {
        if self.schema >= 3 {
            lock::LEASE_COLUMNS
        } else {
            "lock_pid, lock_start, NULL, 0, NULL"
        }
    }

    /// Runs `f` on this store's connection (for the project memory table).
    pub(crate) fn with_conn<R>(&self, f: impl FnOnce(&mut Connection, &Path) -> R) -> R {
        f(&mut self.conn.lock(), &self.path)
    }

    /// The database file inside it.
    pub fn db_path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SessionError + '_ {
        move |e| sqlite_error(&self.path, e)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// Records a new session for `plan` and returns its id. Its events come through a journal.
    pub fn create_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
    ) -> Result<String, SessionError> {
        let mut conn = self.conn.lock();
        // The session's row and its plan's row stand or fall together.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let id = self.insert_session(&tx, plan, goal, None, crate::clock::now_ms())?;
        tx.commit().map_err(self.err())?;
        Ok(id)
    }

    /// Records a new session for `plan`, locked by this process, together with the events
    /// `opening` builds from its id, in one transaction: a run starts behind one fsync instead
    /// of one per step. Pass `journal: false` to record the session and the lock but no events.
    pub fn create_locked_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        journal: bool,
        opening: impl FnOnce(&str) -> Vec<Event>,
    ) -> Result<(String, SessionLock, Vec<Envelope>), SessionError> {
        let now = crate::clock::now_ms();
        let holder = Owner::current();
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let id = self.insert_session(&tx, plan, goal, Some(&holder), now)?;
        let events = opening(&id);
        let last_seq = if journal {
            self.insert_events(&tx, &id, Origin::Runner, &events, Some(now))?
        } else {
            0
        };
        tx.commit().map_err(self.err())?;
        let lock = lock::held(&self.path, &id, holder, 1, self.lease, last_seq)?.of_new_session();
        // Unjournaled events get the places they would have had.
        let first = if journal {
            last_seq + 1 - events.len() as u64
        } else {
            1
        };
        let envelopes = events
            .into_iter()
            .zip(first..)
            .map(|(event, seq)| Envelope {
                seq,
                event: Arc::new(event),
            })
            .collect();
        Ok((id, lock, envelopes))
    }

    /// Inserts the row of a new session and of its plan, held by `holder` (with token 1) when
    /// given; returns its id. The caller holds a transaction.
    fn insert_session(
        &self,
        conn: &Connection,
        plan: &SwarmPlan,
        goal: Option<&str>,
        holder: Option<&Owner>,
        now: u64,
    ) -> Result<String, SessionError> {
        let plan_json = serde_json::to_string(plan).map_err(|e| SessionError::Encode {
            session: String::new(),
            what: "plan",
            message: e.to_string(),
        })?;
        let expires = holder.map(|_| lock::expiry(self.lease));
        loop {
            let id = new_session_id(now);
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO sessions
                     (id, swarm, status, goal, created_ms, updated_ms, plan, source_hash,
                      tasks_total, lock_pid, lock_start, lock_host, lock_token, lock_expires_ms)
                     VALUES (?1, ?2, 'running', ?3, ?4, ?4, '', ?5, 0, ?6, ?7, ?8, ?9, ?10)",
                    rusqlite::params![
                        id,
                        plan.name,
                        goal,
                        now as i64,
                        plan.source_hash,
                        holder.map(|h| h.pid),
                        holder.map(|h| h.start as i64),
                        holder.map(|h| h.host.as_str()),
                        i64::from(holder.is_some()),
                        expires,
                    ],
                )
                .map_err(self.err())?;
            // Zero rows: the random suffix collided with a session created in the same second.
            if inserted == 1 {
                // The plan has a row of its own: every commit updates the session's row, and
                // SQLite rewrites a row whole, so a plan inside it (~100 bytes per task) would
                // be written again on every commit.
                conn.execute(
                    "INSERT INTO plans (session, plan) VALUES (?1, ?2)",
                    rusqlite::params![id, plan_json],
                )
                .map_err(self.err())?;
                return Ok(id);
            }
        }
    }

    /// The id `id_or_latest` names: `latest` is the newest session.
    pub fn resolve(&self, id_or_latest: &str) -> Result<String, SessionError> {
        let conn = self.conn.lock();
        let found: Option<String> = if id_or_latest == "latest" {
            conn.query_row(
                "SELECT id FROM sessions ORDER BY created_ms DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
        } else {
            conn.query_row(
                "SELECT id FROM sessions WHERE id = ?1",
                [id_or_latest],
                |r| r.get(0),
            )
        }
        .optional()
        .map_err(self.err())?;
        match found {
            Some(id) => Ok(id),
            None => {
                let mut stmt = conn
                    .prepare("SELECT id FROM sessions ORDER BY created_ms DESC, rowid DESC LIMIT 5")
                    .map_err(self.err())?;
                let known = stmt
                    .query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
                    .map_err(self.err())?;
                Err(SessionError::UnknownSession {
                    id: id_or_latest.to_string(),
                    location: self.location(),
                    known,
                })
            }
        }
    }

    /// Every session, newest first.
    pub fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        self.summaries(None)
    }

    /// One session's summary.
    pub fn summary(&self, id: &str) -> Result<SessionSummary, SessionError> {
        self.summaries(Some(id))?
            .pop()
            .ok_or_else(|| self.unknown(id))
    }

    fn summaries(&self, only: Option<&str>) -> Result<Vec<SessionSummary>, SessionError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT id, swarm, status, goal, created_ms, updated_ms, tasks_done, tasks_total,
                        {}
                 FROM sessions WHERE ?1 IS NULL OR id = ?1
                 ORDER BY created_ms DESC, rowid DESC",
                self.lease_columns()
            ))
            .map_err(self.err())?;
        let rows = stmt
            .query_map([only], |r| {
                Ok(SummaryRow {
                    id: r.get(0)?,
                    swarm: r.get(1)?,
                    status: r.get(2)?,
                    goal: r.get(3)?,
                    created_ms: r.get(4)?,
                    updated_ms: r.get(5)?,
                    tasks_done: r.get(6)?,
                    tasks_total: r.get(7)?,
                    lease: lock::recorded(r, 8)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.err())?;
        let now = crate::clock::now_ms();
        rows.into_iter()
            .map(|row| row.into_summary(&self.location(), now))
            .collect()
    }

    fn unknown(&self, id: &str) -> SessionError {
        match self.resolve(id) {
            Err(e) => e,
            Ok(_) => SessionError::UnknownSession {
                id: id.to_string(),
                location: self.location(),
                known: Vec::new(),
            },
        }
    }

    /// Takes the run lock of a session. A second runner gets [`SessionError::Locked`] naming the
    /// holder's pid; a lock whose holder is gone is taken over.
    pub fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        lock::acquire(&self.path, id, self.lease).map_err(|e| match e {
            SessionError::UnknownSession { .. } => self.unknown(id),
            other => other,
        })
    }

    /// Restores a session: its plan, and its latest snapshot with the journal events after it
    /// applied (external memory changes included, in journal order).
    pub fn load(&self, id: &str) -> Result<Restored, SessionError> {
        let mut conn = self.conn.lock();
        // One read transaction: the snapshot and the events after it are read as of one moment
        // (a snapshot committed meanwhile moves `covers` and drops external events).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(self.err())?;
        // Sessions from before version 4 kept the plan in their row.
        let plan_sql = if self.schema >= 4 {
            "SELECT COALESCE((SELECT plan FROM plans WHERE session = ?1), plan)
             FROM sessions WHERE id = ?1"
        } else {
            "SELECT plan FROM sessions WHERE id = ?1"
        };
        let plan: Option<String> = tx
            .query_row(plan_sql, [id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        let Some(plan) = plan else {
            drop(tx);
            drop(conn);
            return Err(self.unknown(id));
        };
        let plan: SwarmPlan = self.decode(id, "plan", plan.as_bytes())?;
        let snapshot: Option<(i64, Vec<u8>, Vec<u8>)> = tx
            .query_row(
                "SELECT covers_seq, state, memory FROM snapshots WHERE session = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        let (covers, mut state, mut memory) = match snapshot {
            Some((covers, state, memory)) => (
                covers,
                self.decode::<SessionState>(id, "snapshot state", &state)?,
                MemoryFold::from_records(snapshot::decode_memory(&memory).map_err(|e| {
                    SessionError::Decode {
                        location: self.location(),
                        session: id.to_string(),
                        what: "snapshot memory",
                        message: e.to_string(),
                    }
                })?),
            ),
            None => (0, SessionState::default(), MemoryFold::default()),
        };
        let mut stmt = tx
            .prepare(&format!(
                "SELECT seq, {}, origin = 'external', body FROM events
                 WHERE session = ?1 AND (seq > ?2 OR origin = 'external') ORDER BY seq",
                self.count_column()
            ))
            .map_err(self.err())?;
        let mut rows = stmt
            .query(rusqlite::params![id, covers])
            .map_err(self.err())?;
        let mut events_replayed = 0;
        while let Some(row) = rows.next().map_err(self.err())? {
            let (seq, n, external) = (
                row.get::<_, i64>(0).map_err(self.err())?,
                row.get::<_, i64>(1).map_err(self.err())?,
                row.get::<_, bool>(2).map_err(self.err())?,
            );
            let body = row.get_ref(3).map_err(self.err())?;
            let bytes = event_rows::body_bytes(body);
            for (event_seq, bytes) in self.split_row(id, seq, n, bytes)? {
                // A runner's row may begin before what the snapshot covers; external events
                // are replayed whatever their seq.
                if !external && event_seq <= covers as u64 {
                    continue;
                }
                let event: Event = self.decode(id, "event", bytes)?;
                state.apply(&event);
                if let Event::MemoryChanged { change } = &event {
                    memory.apply(change);
                }
                events_replayed += 1;
            }
        }
        Ok(Restored {
            plan,
            state,
            memory: memory.into_records(crate::clock::now_ms()),
            events_replayed,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        session: &str,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<T, SessionError> {
        serde_json::from_slice(bytes).map_err(|e| SessionError::Decode {
            location: self.location(),
            session: session.to_string(),
            what,
            message: e.to_string(),
        })
    }

    /// Starts the journal writer of a locked session.
    pub fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError> {
        let log = SqliteLog::open(&self.path, id, lock.token())?;
        let feed = SqliteFeed::new(&self.path, id, log.own_seqs());
        let last_seq = log.last_seq()?;
        Journal::start(
            id,
            Box::new(log),
            Box::new(feed),
            last_seq,
            lock.external_from,
            lock.external_clean,
        )
    }

    /// The events of a session after journal position `after`, oldest first, at most `limit`.
    /// A snapshot keeps the runner's events; external ones it holds are gone.
    pub fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, SessionError> {
        let conn = self.conn.lock();
        // Every row holds at least one event: `limit` rows hold enough.
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT seq, {}, body FROM events WHERE session = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
                self.count_column()
            ))
            .map_err(self.err())?;
        let mut rows = stmt
            .query(rusqlite::params![
                id,
                after as i64,
                limit.min(i64::MAX as usize) as i64
            ])
            .map_err(self.err())?;
        let mut envelopes = Vec::new();
        while envelopes.len() < limit {
            let Some(row) = rows.next().map_err(self.err())? else {
                break;
            };
            let (seq, n) = (
                row.get::<_, i64>(0).map_err(self.err())?,
                row.get::<_, i64>(1).map_err(self.err())?,
            );
            let body = row.get_ref(2).map_err(self.err())?;
            let bytes = event_rows::body_bytes(body);
            for (event_seq, bytes) in self.split_row(id, seq, n, bytes)? {
                if event_seq <= after {
                    continue;
                }
                if envelopes.len() == limit {
                    break;
                }
                envelopes.push(Envelope {
                    seq: event_seq,
                    event: Arc::new(self.decode(id, "event", bytes)?),
                });
            }
        }
        Ok(envelopes)
    }

    /// The column that says how many events a row of `events` holds: one each before version 5.
    fn count_column(&self) -> &'static str {
        if self.schema >= 5 {
            "n"
        } else {
            "1"
        }
    }

    fn split_row<'a>(
        &self,
        session: &str,
        seq: i64,
        n: i64,
        body: &'a [u8],
    ) -> Result<event_rows::RowEvents<'a>, SessionError> {
        event_rows::split(seq, n, body).map_err(|message| SessionError::Decode {
            location: self.location(),
            session: session.to_string(),
            what: "event",
            message,
        })
    }

    /// Sets the stored status of a session (the journal also does so on start, resume and end
    /// events).
    pub fn set_status(&self, id: &str, status: SessionStatus) -> Result<(), SessionError> {
        let changed = self
            .conn
            .lock()
            .execute(
                "UPDATE sessions SET status = ?2, updated_ms = ?3 WHERE id = ?1",
                rusqlite::params![id, status.as_str(), crate::clock::now_ms() as i64],
            )
            .map_err(self.err())?;
        if changed == 0 {
            return Err(self.unknown(id));
        }
        Ok(())
    }

    /// Deletes a session and everything stored for it (plan, journal, snapshot). A session a
    /// live process holds is refused with [`SessionError::Locked`]; a dead holder's lock is
    /// taken over first, so no runner can write to it meanwhile.
    pub fn delete_session(&self, id: &str) -> Result<(), SessionError> {
        let held = self.lock(id)?;
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        for sql in [
            "DELETE FROM events WHERE session = ?1",
            "DELETE FROM snapshots WHERE session = ?1",
            "DELETE FROM plans WHERE session = ?1",
            "DELETE FROM sessions WHERE id = ?1",
        ] {
            tx.execute(sql, [id]).map_err(self.err())?;
        }
        tx.commit().map_err(self.err())?;
        db::checkpoint_wal(&conn);
        drop(conn);
        drop(held);
        Ok(())
    }

    /// Appends events from outside the session's runner (the memory CLI), whether or not a runner
    /// is live: it picks them up with [`Journal::poll_external`], and a load replays them.
    pub fn append_external(&self, id: &str, events: &[Event]) -> Result<(), SessionError> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM sessions WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        if exists.is_none() {
            drop(tx);
            drop(conn);
            return Err(self.unknown(id));
        }
        self.insert_events(&tx, id, Origin::External, events, None)?;
        tx.commit().map_err(self.err())
    }

    /// Inserts `events` and their effect on the session's row; returns the last seq written.
    fn insert_events(
        &self,
        conn: &Connection,
        id: &str,
        origin: Origin,
        events: &[Event],
        now_ms: Option<u64>,
    ) -> Result<u64, SessionError> {
        let mut effect = RowEffect::default();
        let mut rows = EventRows::default();
        for event in events {
            rows.push(event).map_err(|e| SessionError::Encode {
                session: id.to_string(),
                what: "event",
                message: e.to_string(),
            })?;
            effect.add(event);
        }
        let last_seq = rows
            .insert(conn, id, origin)
            .map_err(self.err())?
            .unwrap_or(0);
        sqlite_log::write_effect(conn, id, &effect, now_ms, None).map_err(self.err())?;
        Ok(last_seq)
    }
}

impl SessionStore for SqliteStore {
    fn create_session(&self, plan: &SwarmPlan, goal: Option<&str>) -> Result<String, SessionError> {
        SqliteStore::create_session(self, plan, goal)
    }

    fn create_locked_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        journal: bool,
        opening: impl FnOnce(&str) -> Vec<Event>,
    ) -> Result<(String, SessionLock, Vec<Envelope>), SessionError> {
        SqliteStore::create_locked_session(self, plan, goal, journal, opening)
    }

    fn resolve(&self, id_or_latest: &str) -> Result<String, SessionError> {
        SqliteStore::resolve(self, id_or_latest)
    }

    fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        SqliteStore::list(self)
    }

    fn summary(&self, id: &str) -> Result<SessionSummary, SessionError> {
        SqliteStore::summary(self, id)
    }

    fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        SqliteStore::lock(self, id)
    }

    fn load(&self, id: &str) -> Result<Restored, SessionError> {
        SqliteStore::load(self, id)
    }

    fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError> {
        SqliteStore::open_journal(self, id, lock)
    }

    fn set_status(&self, id: &str, status: SessionStatus) -> Result<(), SessionError> {
        SqliteStore::set_status(self, id, status)
    }

    fn append_external(&self, id: &str, events: &[Event]) -> Result<(), SessionError> {
        SqliteStore::append_external(self, id, events)
    }

    fn delete_session(&self, id: &str) -> Result<(), SessionError> {
        SqliteStore::delete_session(self, id)
    }

    fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, SessionError> {
        SqliteStore::events_after(self, id, after, limit)
    }
}
