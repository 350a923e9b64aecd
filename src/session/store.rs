//! The state store seam: every session, its plan, its journal of events and its latest snapshot,
//! behind one interface whatever holds them. [`SessionStore`] is what a backend provides;
//! [`StateDir`] is the store a command opens, dispatching to its backend (a closed set).

use super::error::SessionError;
use super::event::{Envelope, Event, SessionStatus};
use super::journal::Journal;
use super::lease::SessionLock;
use super::postgres::PgStore;
use super::sqlite::store::SqliteStore;
use super::state::SessionState;
use crate::memory::MemoryImage;
use crate::spec::SwarmPlan;
use std::path::{Path, PathBuf};

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
    /// Who runs it (host and pid), when someone does.
    pub runner: Option<super::lease::Owner>,
}

/// A session as the journal left it: the latest snapshot plus the events after it.
#[derive(Debug, Clone)]
pub struct Restored {
    pub plan: SwarmPlan,
    pub state: SessionState,
    /// Live records, sorted by namespace and key; expired ones are dropped. Values stay JSON
    /// text until the records are read (see [`MemoryImage`]).
    pub memory: MemoryImage,
    pub events_replayed: usize,
}

/// What a backend stores for sessions. The append path of a running session is its journal
/// ([`SessionStore::open_journal`]), whose writer commits through the backend's
/// [`super::journal::EventLog`].
pub trait SessionStore {
    /// Records a new session for `plan` and returns its id. Its events come through a journal.
    fn create_session(&self, plan: &SwarmPlan, goal: Option<&str>) -> Result<String, SessionError>;

    /// Records a new session for `plan`, held by this process, together with the events
    /// `opening` builds from its id, in one transaction. With `journal: false` the events are
    /// not stored.
    fn create_locked_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        journal: bool,
        opening: impl FnOnce(&str) -> Vec<Event>,
    ) -> Result<(String, SessionLock, Vec<Envelope>), SessionError>;

    /// The id `id_or_latest` names: `latest` is the newest session.
    fn resolve(&self, id_or_latest: &str) -> Result<String, SessionError>;

    /// Every session, newest first.
    fn list(&self) -> Result<Vec<SessionSummary>, SessionError>;

    /// One session's summary.
    fn summary(&self, id: &str) -> Result<SessionSummary, SessionError>;

    /// Takes a session for this process. A second runner gets [`SessionError::Locked`].
    fn lock(&self, id: &str) -> Result<SessionLock, SessionError>;

    /// Restores a session: its plan, and its latest snapshot with the journal events after it
    /// applied (external memory changes included, in journal order).
    fn load(&self, id: &str) -> Result<Restored, SessionError>;

    /// Starts the journal of a held session.
    fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError>;

    /// Sets the stored status of a session.
    fn set_status(&self, id: &str, status: SessionStatus) -> Result<(), SessionError>;

    /// Appends events from outside the session's runner (the memory CLI), whether or not a
    /// runner is live: it picks them up with [`Journal::poll_external`], and a load replays them.
    fn append_external(&self, id: &str, events: &[Event]) -> Result<(), SessionError>;

    /// Deletes a session and all it stored. Refuses one a live process holds
    /// ([`SessionError::Locked`]); takes over a dead holder's lock first.
    fn delete_session(&self, id: &str) -> Result<(), SessionError>;

    /// The stored events of a session after journal position `after`, oldest first, at most
    /// `limit`. A snapshot keeps the runner's events (they are the session's history: `sessions
    /// log`, `watch`, the HTML report); external events it holds are gone, so seqs have gaps.
    fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, SessionError>;
}

/// The state store a command works on: a state dir (SQLite) or a `postgres://` URL.
#[derive(Debug)]
pub struct StateDir {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($store) => $call,
            Backend::Postgres($store) => $call,
        }
    };
}

/// The URL of a PostgreSQL state store, when `location` is one.
fn postgres_url(location: &Path) -> Option<&str> {
    location.to_str().filter(|s| super::postgres::is_url(s))
}

/// Where handoff reports of the sessions in the store at `location` are written: beside the
/// database of a state dir, or in `.swarm/reports` of the current folder for a database server.
pub fn reports_dir(location: &Path) -> PathBuf {
    match postgres_url(location) {
        Some(_) => PathBuf::from(".swarm").join("reports"),
        None => location.join("reports"),
    }
}

impl StateDir {
    /// Opens the state store at `location`, creating it when absent. A file that exists but is
    /// not a healthy state database is refused, never recreated.
    pub fn open(location: &Path) -> Result<Self, SessionError> {
        let backend = match postgres_url(location) {
            Some(url) => Backend::Postgres(PgStore::open(url, true)?),
            None => Backend::Sqlite(SqliteStore::open(location)?),
        };
        Ok(Self { backend })
    }

    /// Opens an existing state store for reading and writing.
    pub fn open_existing(location: &Path) -> Result<Self, SessionError> {
        let backend = match postgres_url(location) {
            Some(url) => Backend::Postgres(PgStore::open(url, false)?),
            None => Backend::Sqlite(SqliteStore::open_existing(location)?),
        };
        Ok(Self { backend })
    }

    /// Opens an existing state store without ever writing to it.
    pub fn open_read_only(location: &Path) -> Result<Self, SessionError> {
        let backend = match postgres_url(location) {
            Some(url) => Backend::Postgres(PgStore::open(url, false)?),
            None => Backend::Sqlite(SqliteStore::open_read_only(location)?),
        };
        Ok(Self { backend })
    }

    /// Leases taken through this store from now on last `ttl` unless renewed (heartbeats renew
    /// them three times per `ttl`).
    pub fn set_lease(&mut self, ttl: std::time::Duration) {
        match &mut self.backend {
            Backend::Sqlite(s) => s.set_lease(ttl),
            Backend::Postgres(s) => s.set_lease(ttl),
        }
    }

    /// Runs `f` on the SQLite connection of the backend (project memory's table lives there).
    pub(crate) fn with_sqlite<R>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection, &Path) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        match &self.backend {
            Backend::Sqlite(s) => s.with_conn(f),
            Backend::Postgres(s) => Err(SessionError::Unsupported {
                location: s.location().to_string(),
                what: "this operation on a PostgreSQL state store",
            }),
        }
    }

    /// The database file of an SQLite state dir.
    pub fn db_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s.db_path()),
            Backend::Postgres(_) => None,
        }
    }

    /// Where handoff and HTML reports of this store's sessions are written.
    pub fn reports_dir(&self) -> PathBuf {
        match &self.backend {
            Backend::Sqlite(s) => s
                .db_path()
                .parent()
                .map_or_else(|| PathBuf::from("reports"), |root| root.join("reports")),
            Backend::Postgres(_) => PathBuf::from(".swarm").join("reports"),
        }
    }

    /// Where the provider's per-minute limits are counted with every other process using this
    /// store: the database of a PostgreSQL store. A state dir counts them in each process.
    pub fn rate_budget(&self) -> Option<std::sync::Arc<dyn crate::llm::RateBudget>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(std::sync::Arc::new(s.clone())),
        }
    }

    /// The run queue, for a store that has one (PostgreSQL).
    pub fn queue(&self) -> Option<&PgStore> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(s),
        }
    }

    /// The PostgreSQL store behind this state dir, if that is its backend.
    pub(crate) fn postgres(&self) -> Option<&PgStore> {
        self.queue()
    }
}

impl StateDir {
    pub fn create_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
    ) -> Result<String, SessionError> {
        dispatch!(self, s => s.create_session(plan, goal))
    }

    pub fn create_locked_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        journal: bool,
        opening: impl FnOnce(&str) -> Vec<Event>,
    ) -> Result<(String, SessionLock, Vec<Envelope>), SessionError> {
        dispatch!(self, s => s.create_locked_session(plan, goal, journal, opening))
    }

    pub fn resolve(&self, id_or_latest: &str) -> Result<String, SessionError> {
        dispatch!(self, s => s.resolve(id_or_latest))
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        dispatch!(self, s => s.list())
    }

    pub fn summary(&self, id: &str) -> Result<SessionSummary, SessionError> {
        dispatch!(self, s => s.summary(id))
    }

    pub fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        dispatch!(self, s => s.lock(id))
    }

    pub fn load(&self, id: &str) -> Result<Restored, SessionError> {
        dispatch!(self, s => s.load(id))
    }

    pub fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError> {
        dispatch!(self, s => s.open_journal(id, lock))
    }

    pub fn set_status(&self, id: &str, status: SessionStatus) -> Result<(), SessionError> {
        dispatch!(self, s => s.set_status(id, status))
    }

    pub fn append_external(&self, id: &str, events: &[Event]) -> Result<(), SessionError> {
        dispatch!(self, s => s.append_external(id, events))
    }

    pub fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, SessionError> {
        dispatch!(self, s => s.events_after(id, after, limit))
    }

    pub fn delete_session(&self, id: &str) -> Result<(), SessionError> {
        dispatch!(self, s => s.delete_session(id))
    }
}
