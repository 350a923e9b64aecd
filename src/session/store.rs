//! The state dir: one SQLite database holding every session, its plan, its journal of events and
//! its latest snapshot.

use super::db::{self, Access, Origin};
use super::error::SessionError;
use super::event::{Event, SessionStatus};
use super::journal::{self, Journal};
use super::lock::{self, SessionLock};
use super::snapshot::{self, MemoryFold};
use super::state::SessionState;
use crate::memory::MemoryRecord;
use crate::spec::SwarmPlan;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};

/// A state dir and its open database.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// One line of `swarm sessions list`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub id: String,
    pub swarm: String,
    /// `Interrupted` when the stored status says running but no live process holds the lock.
    pub status: SessionStatus,
    pub goal: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub tasks_done: u64,
    pub tasks_total: u64,
    /// The process running the session, when one is.
    pub runner_pid: Option<u32>,
}

/// A session as the journal left it: the latest snapshot plus the events after it.
#[derive(Debug, Clone)]
pub struct Restored {
    pub plan: SwarmPlan,
    pub state: SessionState,
    /// Live records, sorted by namespace and key; expired ones are dropped.
    pub memory: Vec<MemoryRecord>,
    pub events_replayed: usize,
}

impl StateDir {
    /// Opens the state dir at `root`, creating the directory and the database when absent. A file
    /// that exists but is not a healthy state database is refused, never recreated.
    pub fn open(root: &Path) -> Result<Self, SessionError> {
        std::fs::create_dir_all(root).map_err(|e| SessionError::io(root, e))?;
        let path = db::db_path(root);
        if !path.exists() {
            db::create(&path)?;
        }
        Self::connect(root, path, Access::ReadWrite)
    }

    /// Opens an existing state dir for reading and writing.
    pub fn open_existing(root: &Path) -> Result<Self, SessionError> {
        let path = Self::existing_db(root)?;
        Self::connect(root, path, Access::ReadWrite)
    }

    /// Opens an existing state dir without ever writing to it.
    pub fn open_read_only(root: &Path) -> Result<Self, SessionError> {
        let path = Self::existing_db(root)?;
        Self::connect(root, path, Access::ReadOnly)
    }

    fn existing_db(root: &Path) -> Result<PathBuf, SessionError> {
        let path = db::db_path(root);
        if !path.is_file() {
            return Err(SessionError::NoStateDir {
                root: root.to_path_buf(),
            });
        }
        Ok(path)
    }

    fn connect(root: &Path, path: PathBuf, access: Access) -> Result<Self, SessionError> {
        db::check_file(&path)?;
        let conn = db::connect(&path, access)?;
        Ok(Self {
            root: root.to_path_buf(),
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The state dir itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database file inside it.
    pub fn db_path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SessionError + '_ {
        move |e| SessionError::sqlite(&self.path, e)
    }

    /// Records a new session for `plan` and returns its id. Its events come through a journal.
    pub fn create_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
    ) -> Result<String, SessionError> {
        let conn = self.conn.lock();
        self.insert_session(&conn, plan, goal, None, crate::clock::now_ms())
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
    ) -> Result<(String, SessionLock, Vec<Event>), SessionError> {
        let now = crate::clock::now_ms();
        let holder = lock::current_process();
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let id = self.insert_session(&tx, plan, goal, Some(holder), now)?;
        let events = opening(&id);
        let last_seq = if journal {
            self.insert_events(&tx, &id, Origin::Runner, &events, Some(now))?
        } else {
            0
        };
        tx.commit().map_err(self.err())?;
        let lock = SessionLock::held(&self.path, &id, holder, last_seq);
        Ok((id, lock, events))
    }

    /// Inserts the row of a new session, held by `holder` (pid, start) when given; returns its id.
    fn insert_session(
        &self,
        conn: &Connection,
        plan: &SwarmPlan,
        goal: Option<&str>,
        holder: Option<(u32, u64)>,
        now: u64,
    ) -> Result<String, SessionError> {
        let plan_json = serde_json::to_string(plan).map_err(|e| SessionError::Encode {
            session: String::new(),
            what: "plan",
            message: e.to_string(),
        })?;
        let (pid, start) = holder.unzip();
        loop {
            let id = new_session_id(now);
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO sessions
                     (id, swarm, status, goal, created_ms, updated_ms, plan, source_hash,
                      tasks_total, lock_pid, lock_start)
                     VALUES (?1, ?2, 'running', ?3, ?4, ?4, ?5, ?6, 0, ?7, ?8)",
                    rusqlite::params![
                        id,
                        plan.name,
                        goal,
                        now as i64,
                        plan_json,
                        plan.source_hash,
                        pid,
                        start.map(|s| s as i64)
                    ],
                )
                .map_err(self.err())?;
            // Zero rows: the random suffix collided with a session created in the same second.
            if inserted == 1 {
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
                    path: self.path.clone(),
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
            .prepare(
                "SELECT id, swarm, status, goal, created_ms, updated_ms, tasks_done, tasks_total,
                        lock_pid, lock_start
                 FROM sessions WHERE ?1 IS NULL OR id = ?1
                 ORDER BY created_ms DESC, rowid DESC",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([only], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.err())?;
        rows.into_iter()
            .map(
                |(id, swarm, status, goal, created, updated, done, total, pid, start)| {
                    let stored = parse_status(&status).ok_or_else(|| SessionError::Decode {
                        path: self.path.clone(),
                        session: id.clone(),
                        what: "status",
                        message: format!("unknown status `{status}`"),
                    })?;
                    let runner_pid = match (pid, start) {
                        (Some(pid), Some(start)) if lock::holder_alive(pid, start) => {
                            Some(pid as u32)
                        }
                        _ => None,
                    };
                    let status = if stored == SessionStatus::Running && runner_pid.is_none() {
                        SessionStatus::Interrupted
                    } else {
                        stored
                    };
                    Ok(SessionSummary {
                        id,
                        swarm,
                        status,
                        goal,
                        created_ms: created as u64,
                        updated_ms: updated as u64,
                        tasks_done: done as u64,
                        tasks_total: total as u64,
                        runner_pid,
                    })
                },
            )
            .collect()
    }

    fn unknown(&self, id: &str) -> SessionError {
        match self.resolve(id) {
            Err(e) => e,
            Ok(_) => SessionError::UnknownSession {
                id: id.to_string(),
                path: self.path.clone(),
                known: Vec::new(),
            },
        }
    }

    /// Takes the run lock of a session. A second runner gets [`SessionError::Locked`] naming the
    /// holder's pid; a lock whose holder is gone is taken over.
    pub fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        lock::acquire(&self.path, id).map_err(|e| match e {
            SessionError::UnknownSession { .. } => self.unknown(id),
            other => other,
        })
    }

    /// Restores a session: its plan, and its latest snapshot with the journal events after it
    /// applied (external memory changes included, in journal order).
    pub fn load(&self, id: &str) -> Result<Restored, SessionError> {
        let mut conn = self.conn.lock();
        // One read transaction: a snapshot committed meanwhile (which deletes the events it
        // covers) cannot pair an old snapshot with a compacted journal.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(self.err())?;
        let plan: Option<String> = tx
            .query_row("SELECT plan FROM sessions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
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
                        path: self.path.clone(),
                        session: id.to_string(),
                        what: "snapshot memory",
                        message: e.to_string(),
                    }
                })?),
            ),
            None => (0, SessionState::default(), MemoryFold::default()),
        };
        let mut stmt = tx
            .prepare(
                "SELECT body FROM events
                 WHERE session = ?1 AND (seq > ?2 OR origin = 'external') ORDER BY seq",
            )
            .map_err(self.err())?;
        let mut rows = stmt
            .query(rusqlite::params![id, covers])
            .map_err(self.err())?;
        let mut events_replayed = 0;
        while let Some(row) = rows.next().map_err(self.err())? {
            let body = row.get_ref(0).map_err(self.err())?;
            let bytes = body
                .as_blob_or_null()
                .ok()
                .flatten()
                .or_else(|| body.as_str().ok().map(str::as_bytes))
                .unwrap_or_default();
            let event: Event = self.decode(id, "event", bytes)?;
            state.apply(&event);
            if let Event::MemoryChanged { change } = &event {
                memory.apply(change);
            }
            events_replayed += 1;
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
            path: self.path.clone(),
            session: session.to_string(),
            what,
            message: e.to_string(),
        })
    }

    /// Starts the journal writer of a locked session.
    pub fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError> {
        Journal::open(&self.path, id, lock)
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
        let mut bodies = Vec::new();
        let mut ends = Vec::with_capacity(events.len());
        for event in events {
            serde_json::to_writer(&mut bodies, event).map_err(|e| SessionError::Encode {
                session: id.to_string(),
                what: "event",
                message: e.to_string(),
            })?;
            ends.push(bodies.len());
            effect.add(event);
        }
        journal::insert_events(
            conn,
            &journal::INSERT_ROWS.map(journal::insert_sql),
            id,
            origin,
            &bodies,
            &ends,
        )
        .map_err(self.err())?;
        let last_seq = if events.is_empty() {
            0
        } else {
            conn.last_insert_rowid() as u64
        };
        effect.write(conn, id, now_ms).map_err(self.err())?;
        Ok(last_seq)
    }
}

/// What a run of events changes in the session's row: task tallies for `sessions list` (kept
/// there so listing does not replay every journal) and the status.
#[derive(Debug, Default)]
pub(crate) struct RowEffect {
    tasks_created: i64,
    tasks_done: i64,
    status: Option<SessionStatus>,
    /// Exact tallies from a snapshot's state, which the deltas then add to.
    exact: Option<(i64, i64)>,
}

impl RowEffect {
    pub fn add(&mut self, event: &Event) {
        match event {
            Event::TaskCreated { .. } => self.tasks_created += 1,
            Event::TaskCompleted { .. } => self.tasks_done += 1,
            Event::SessionStarted { .. } | Event::SessionResumed { .. } => {
                self.status = Some(SessionStatus::Running)
            }
            Event::SessionEnded { status, .. } => self.status = Some(*status),
            _ => {}
        }
    }

    /// Replaces the tallies so far with exact ones `(total, done)` taken from a state.
    pub fn set_exact(&mut self, tallies: (i64, i64)) {
        self.exact = Some(tallies);
        self.tasks_created = 0;
        self.tasks_done = 0;
    }

    pub fn write(
        &self,
        conn: &Connection,
        session: &str,
        now_ms: Option<u64>,
    ) -> rusqlite::Result<()> {
        let (total, done) = self.exact.unzip();
        conn.prepare_cached(
            "UPDATE sessions SET
                 tasks_total = COALESCE(?2, tasks_total) + ?3,
                 tasks_done = COALESCE(?4, tasks_done) + ?5,
                 status = COALESCE(?6, status),
                 updated_ms = ?7
             WHERE id = ?1",
        )?
        .execute(rusqlite::params![
            session,
            total,
            self.tasks_created,
            done,
            self.tasks_done,
            self.status.map(SessionStatus::as_str),
            now_ms.unwrap_or_else(crate::clock::now_ms) as i64,
        ])?;
        Ok(())
    }
}

pub(crate) fn parse_status(text: &str) -> Option<SessionStatus> {
    [
        SessionStatus::Running,
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Interrupted,
        SessionStatus::BudgetStopped,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

/// A sortable, readable session id: UTC time of creation and a random suffix, e.g.
/// `20261121-162530-ab12`.
fn new_session_id(now_ms: u64) -> String {
    let ((y, m, d), (h, min, sec)) = utc_parts(now_ms);
    let suffix: u16 = rand::random();
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{sec:02}-{suffix:04x}")
}

/// `2026-11-21 16:25:30` (UTC) for milliseconds since the Unix epoch.
pub fn format_utc(ms: u64) -> String {
    let ((y, m, d), (h, min, sec)) = utc_parts(ms);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{sec:02}")
}

fn utc_parts(ms: u64) -> ((i64, u32, u32), (u64, u64, u64)) {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    (
        civil_from_days((secs / 86_400) as i64),
        (rem / 3600, rem / 60 % 60, rem % 60),
    )
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_the_utc_time() {
        // 2026-11-21 16:25:30 UTC
        let id = new_session_id(1_795_278_330_000);
        assert!(id.starts_with("20261121-162530-"), "{id}");
        assert_eq!(id.len(), "20261121-162530-ab12".len());
        assert_eq!(format_utc(1_795_278_330_000), "2026-11-21 16:25:30");
    }

    #[test]
    fn civil_dates_around_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }
}
