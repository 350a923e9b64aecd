//! Sessions in a PostgreSQL database: the rows, load = snapshot + replay in one snapshot-
//! isolated transaction, leases, external events with NOTIFY, and reads after a seq.

use super::log::{PgFeed, PgLog};
use super::{block, redacted, schema, with_retry, PgFailure};
use crate::session::error::SessionError;
use crate::session::event::{Envelope, Event, SessionStatus};
use crate::session::journal::Journal;
use crate::session::lease::{Owner, Recorded, SessionLock, DEFAULT_LEASE};
use crate::session::rows::{new_session_id, Origin, RowEffect, SummaryRow};
use crate::session::snapshot::{self, MemoryFold};
use crate::session::state::SessionState;
use crate::session::store::{Restored, SessionSummary};
use crate::spec::SwarmPlan;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// The NOTIFY channel that tells runners an external event arrived (payload: the session id).
pub(crate) const EXTERNAL_CHANNEL: &str = "swarm_external";
/// The NOTIFY channel that tells workers a run was queued or released.
pub(crate) const QUEUE_CHANNEL: &str = "swarm_queue";

/// Connections a store keeps at most (the journal writers and listeners have their own).
const POOL_SIZE: usize = 8;

/// A PostgreSQL state store.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    pub(crate) config: tokio_postgres::Config,
    pub(crate) location: String,
    pub(crate) lease: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.location)
    }
}

/// The lease columns, as [`recorded`] reads them.
pub(crate) const LEASE_COLUMNS: &str = "lock_pid, lock_start, lock_host, lock_expires_ms";

pub(crate) fn recorded(row: &tokio_postgres::Row, at: usize) -> Recorded {
    let pid: Option<i64> = row.get(at);
    let start: Option<i64> = row.get(at + 1);
    let host: Option<String> = row.get(at + 2);
    let expires: Option<i64> = row.get(at + 3);
    Recorded {
        owner: pid.map(|pid| Owner {
            host: host.unwrap_or_default(),
            pid: u32::try_from(pid).unwrap_or(0),
            start: start.map_or(0, |s| s as u64),
        }),
        expires_ms: expires.map(|e| e as u64),
    }
}

/// How long the server lets one of our transactions sit idle before it ends it.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// A process frozen (SIGSTOP, a paused VM) between the statements of a transaction keeps its
/// row locks, and the `SKIP LOCKED` of a takeover would then pass the session by forever. The
/// server ends such a transaction after [`IDLE_IN_TRANSACTION`]; the frozen process finds its
/// commit failed when it wakes, and its lease is gone by then. Options in the URL are kept.
fn bound_idle_transactions(config: &mut tokio_postgres::Config) {
    let ours = format!(
        "-c idle_in_transaction_session_timeout={}",
        IDLE_IN_TRANSACTION.as_millis()
    );
    let options = match config.get_options() {
        Some(theirs) if theirs.contains("idle_in_transaction_session_timeout") => return,
        Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
        _ => ours,
    };
    config.options(&options);
}

pub(crate) fn expiry(ttl: Duration) -> i64 {
    (crate::clock::now_ms() + ttl.as_millis() as u64) as i64
}

impl PgStore {
    /// Connects to the database at `url`; with `create`, sets up its tables when it has none.
    pub fn open(url: &str, create: bool) -> Result<Self, SessionError> {
        let location = redacted(url);
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| SessionError::Backend {
                    location: location.clone(),
                    source: Arc::new(e),
                })?;
        bound_idle_transactions(&mut config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| SessionError::backend(location.clone(), e))?;
        let store = Self {
            pool,
            config,
            location,
            lease: DEFAULT_LEASE,
        };
        let pool = store.pool.clone();
        let loc = store.location.clone();
        block(async move {
            with_retry("opening the state store", || {
                let pool = pool.clone();
                let loc = loc.clone();
                async move {
                    let mut client = pool.get().await?;
                    schema::ensure(&mut client, &loc, create).await
                }
            })
            .await
        })
        .map_err(|e| e.into_session(&store.location))?;
        Ok(store)
    }

    pub fn set_lease(&mut self, ttl: Duration) {
        self.lease = ttl;
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `work` with a pooled connection on the module's runtime, retrying while the
    /// database is unavailable, and waits for it.
    pub(crate) fn run<T, F, Fut>(&self, what: &'static str, work: F) -> Result<T, SessionError>
    where
        T: Send + 'static,
        F: Fn(deadpool_postgres::Client, PgStore) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, PgFailure>> + Send,
    {
        let store = self.clone();
        let location = self.location.clone();
        block(async move {
            with_retry(what, || {
                let store = store.clone();
                let work = &work;
                async move {
                    let client = store.pool.get().await?;
                    work(client, store).await
                }
            })
            .await
        })
        .map_err(|e| e.into_session(&location))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        location: &str,
        session: &str,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<T, SessionError> {
        serde_json::from_slice(bytes).map_err(|e| SessionError::Decode {
            location: location.to_string(),
            session: session.to_string(),
            what,
            message: e.to_string(),
        })
    }

    pub fn create_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
    ) -> Result<String, SessionError> {
        self.insert_session(plan, goal, SessionStatus::Running.as_str())
    }

    /// Queues a run of `plan`: a session that a worker takes up.
    pub fn enqueue(&self, plan: &SwarmPlan, goal: Option<&str>) -> Result<String, SessionError> {
        let id = self.insert_session(plan, goal, super::queue::QUEUED)?;
        self.run("queueing a run", |client, _| async move {
            client
                .execute(&format!("NOTIFY {QUEUE_CHANNEL}"), &[])
                .await?;
            Ok(())
        })?;
        Ok(id)
    }

    fn insert_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        status: &'static str,
    ) -> Result<String, SessionError> {
        let plan_json = encode_plan(plan)?;
        let (name, hash) = (plan.name.clone(), plan.source_hash.clone());
        let goal = goal.map(str::to_string);
        self.run("creating a session", move |client, _| {
            let (plan_json, name, hash, goal) =
                (plan_json.clone(), name.clone(), hash.clone(), goal.clone());
            async move {
                let now = crate::clock::now_ms() as i64;
                loop {
                    let id = new_session_id(now as u64);
                    let inserted = client
                        .execute(
                            "INSERT INTO sessions (id, swarm, status, goal, created_ms, updated_ms,
                                                   plan, source_hash)
                             VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                            &[&id, &name, &status, &goal, &now, &plan_json, &hash],
                        )
                        .await?;
                    if inserted == 1 {
                        return Ok(id);
                    }
                }
            }
        })
    }

    pub fn create_locked_session(
        &self,
        plan: &SwarmPlan,
        goal: Option<&str>,
        journal: bool,
        opening: impl FnOnce(&str) -> Vec<Event>,
    ) -> Result<(String, SessionLock, Vec<Envelope>), SessionError> {
        // The id is chosen first so that the opening events can name it; a collision (two
        // sessions in one second with the same random suffix) picks another.
        let now = crate::clock::now_ms();
        let id = new_session_id(now);
        let events = opening(&id);
        let mut bodies = Vec::with_capacity(events.len());
        let mut effect = RowEffect::default();
        for event in &events {
            bodies.push(encode_event(&id, event)?);
            effect.add(event);
        }
        if !journal {
            bodies.clear();
            effect = RowEffect::default();
        }
        let plan_json = encode_plan(plan)?;
        let (name, hash) = (plan.name.clone(), plan.source_hash.clone());
        let goal = goal.map(str::to_string);
        let owner = Owner::current();
        let ttl = self.lease;
        let (id, events_stored) = {
            let owner = owner.clone();
            self.run("starting a session", move |mut client, _| {
                let (plan_json, name, hash, goal, bodies, owner) = (
                    plan_json.clone(),
                    name.clone(),
                    hash.clone(),
                    goal.clone(),
                    bodies.clone(),
                    owner.clone(),
                );
                let id = id.clone();
                let effect = effect.clone();
                async move {
                    let tx = client.transaction().await?;
                    let n = bodies.len() as i64;
                    let inserted = tx
                        .execute(
                            "INSERT INTO sessions (id, swarm, status, goal, created_ms,
                                 updated_ms, plan, source_hash, tasks_total, tasks_done,
                                 last_seq, lock_pid, lock_start, lock_host, lock_token,
                                 lock_expires_ms)
                             VALUES ($1, $2, 'running', $3, $4, $4, $5, $6, $7, $8, $9, $10,
                                     $11, $12, 1, $13)
                             ON CONFLICT (id) DO NOTHING",
                            &[
                                &id,
                                &name,
                                &goal,
                                &(now as i64),
                                &plan_json,
                                &hash,
                                &effect.tasks_created,
                                &effect.tasks_done,
                                &n,
                                &i64::from(owner.pid),
                                &(owner.start as i64),
                                &owner.host,
                                &expiry(ttl),
                            ],
                        )
                        .await?;
                    if inserted == 0 {
                        // Two sessions in one second drew the same random suffix.
                        return Err(PgFailure::Store(SessionError::Encode {
                            session: id.clone(),
                            what: "session id",
                            message: "another session took this id; start the run again"
                                .to_string(),
                        }));
                    }
                    super::log::insert_bodies(&tx, &id, Origin::Runner, 1, &bodies).await?;
                    tx.commit().await?;
                    Ok((id, n as u64))
                }
            })?
        };
        let lock = self.held(&id, owner, 1, events_stored)?;
        let envelopes = events
            .into_iter()
            .zip(1..)
            .map(|(event, seq)| Envelope {
                seq,
                event: Arc::new(event),
            })
            .collect();
        Ok((id, lock, envelopes))
    }

    /// The lease object of a session this process holds with `token`.
    pub(crate) fn held(
        &self,
        id: &str,
        owner: Owner,
        token: i64,
        external_from: u64,
    ) -> Result<SessionLock, SessionError> {
        let renew_store = self.clone();
        let release_store = self.clone();
        let (renew_id, release_id) = (id.to_string(), id.to_string());
        let ttl = self.lease;
        SessionLock::held(
            id,
            owner,
            token,
            ttl,
            external_from,
            Box::new(move || {
                let id = renew_id.clone();
                renew_store.run("renewing a lease", move |client, _| {
                    let id = id.clone();
                    async move {
                        let renewed = client
                            .execute(
                                "UPDATE sessions SET lock_expires_ms = $3
                                 WHERE id = $1 AND lock_token = $2",
                                &[&id, &token, &expiry(ttl)],
                            )
                            .await?;
                        Ok(renewed == 1)
                    }
                })
            }),
            Box::new(move || {
                let id = release_id.clone();
                let released = release_store.run("releasing a lease", move |client, _| {
                    let id = id.clone();
                    async move {
                        client
                            .execute(
                                "UPDATE sessions SET lock_pid = NULL, lock_start = NULL,
                                     lock_host = NULL, lock_expires_ms = NULL
                                 WHERE id = $1 AND lock_token = $2",
                                &[&id, &token],
                            )
                            .await?;
                        client
                            .execute(&format!("NOTIFY {QUEUE_CHANNEL}"), &[])
                            .await?;
                        Ok(())
                    }
                });
                if let Err(e) = released {
                    tracing::warn!("could not release the lease of session {release_id}: {e}");
                }
            }),
        )
    }

    pub fn resolve(&self, id_or_latest: &str) -> Result<String, SessionError> {
        let wanted = id_or_latest.to_string();
        let found = self.run("resolving a session", move |client, _| {
            let wanted = wanted.clone();
            async move {
                let row = if wanted == "latest" {
                    client
                        .query_opt(
                            "SELECT id FROM sessions ORDER BY created_ms DESC, created_order DESC LIMIT 1",
                            &[],
                        )
                        .await?
                } else {
                    client
                        .query_opt("SELECT id FROM sessions WHERE id = $1", &[&wanted])
                        .await?
                };
                Ok(row.map(|r| r.get::<_, String>(0)))
            }
        })?;
        match found {
            Some(id) => Ok(id),
            None => Err(self.unknown(id_or_latest)),
        }
    }

    fn unknown(&self, id: &str) -> SessionError {
        let known = self
            .run("listing sessions", |client, _| async move {
                let rows = client
                    .query(
                        "SELECT id FROM sessions ORDER BY created_ms DESC, created_order DESC LIMIT 5",
                        &[],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
            })
            .unwrap_or_default();
        SessionError::UnknownSession {
            id: id.to_string(),
            location: self.location.clone(),
            known,
        }
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, SessionError> {
        self.summaries(None)
    }

    pub fn summary(&self, id: &str) -> Result<SessionSummary, SessionError> {
        self.summaries(Some(id))?
            .pop()
            .ok_or_else(|| self.unknown(id))
    }

    fn summaries(&self, only: Option<&str>) -> Result<Vec<SessionSummary>, SessionError> {
        let only = only.map(str::to_string);
        let rows = self.run("listing sessions", move |client, _| {
            let only = only.clone();
            async move {
                let rows = client
                    .query(
                        &format!(
                            "SELECT id, swarm, status, goal, created_ms, updated_ms, tasks_done,
                                    tasks_total, {LEASE_COLUMNS}
                             FROM sessions WHERE $1::TEXT IS NULL OR id = $1
                             ORDER BY created_ms DESC, created_order DESC"
                        ),
                        &[&only],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| SummaryRow {
                        id: r.get(0),
                        swarm: r.get(1),
                        status: r.get(2),
                        goal: r.get(3),
                        created_ms: r.get(4),
                        updated_ms: r.get(5),
                        tasks_done: r.get(6),
                        tasks_total: r.get(7),
                        lease: recorded(r, 8),
                    })
                    .collect::<Vec<_>>())
            }
        })?;
        let now = crate::clock::now_ms();
        rows.into_iter()
            .map(|row| row.into_summary(&self.location, now))
            .collect()
    }

    /// Takes the lease of `id` for this process: refused while a live holder has it, taken over
    /// when its owner is a dead process of this host or its lease expired.
    pub fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        match self.try_take(id, None)? {
            Some(lock) => Ok(lock),
            None => Err(self.unknown(id)),
        }
    }

    /// Takes the lease of `id` if free; `only_status` restricts it to sessions in that status.
    /// `Ok(None)`: no such session (or not in that status, or another worker is taking it).
    pub(crate) fn try_take(
        &self,
        id: &str,
        only_status: Option<&'static str>,
    ) -> Result<Option<SessionLock>, SessionError> {
        let me = Owner::current();
        let ttl = self.lease;
        let wanted = id.to_string();
        let taken = {
            let me = me.clone();
            self.run("taking a lease", move |mut client, store| {
                let (wanted, me) = (wanted.clone(), me.clone());
                async move {
                    let tx = client.transaction().await?;
                    let row = tx
                        .query_opt(
                            &format!(
                                "SELECT status, last_seq, {LEASE_COLUMNS} FROM sessions
                                 WHERE id = $1 FOR UPDATE SKIP LOCKED"
                            ),
                            &[&wanted],
                        )
                        .await?;
                    let Some(row) = row else { return Ok(None) };
                    let status: String = row.get(0);
                    if only_status.is_some_and(|s| s != status) {
                        return Ok(None);
                    }
                    let current = recorded(&row, 2);
                    if let Some(holder) = current.live_owner(crate::clock::now_ms()) {
                        return Err(PgFailure::Store(SessionError::Locked {
                            id: wanted.clone(),
                            pid: holder.pid,
                            owner: holder.to_string(),
                        }));
                    }
                    if let Some(previous) = &current.owner {
                        tracing::info!("session {wanted}: taking over the lease of {previous}");
                    }
                    let token: i64 = tx
                        .query_one(
                            "UPDATE sessions SET lock_pid = $2, lock_start = $3, lock_host = $4,
                                 lock_token = lock_token + 1, lock_expires_ms = $5
                             WHERE id = $1 RETURNING lock_token",
                            &[
                                &wanted,
                                &i64::from(me.pid),
                                &(me.start as i64),
                                &me.host,
                                &expiry(ttl),
                            ],
                        )
                        .await?
                        .get(0);
                    tx.commit().await?;
                    let _ = store;
                    let last_seq: i64 = row.get(1);
                    Ok(Some((token, last_seq as u64)))
                }
            })?
        };
        match taken {
            Some((token, external_from)) => Ok(Some(self.held(id, me, token, external_from)?)),
            None => Ok(None),
        }
    }

    pub fn load(&self, id: &str) -> Result<Restored, SessionError> {
        let wanted = id.to_string();
        let loaded = self.run("loading a session", move |mut client, _| {
            let wanted = wanted.clone();
            async move {
                // One snapshot of the database: a checkpoint committed meanwhile (which deletes
                // the events it covers) cannot pair an old snapshot with a compacted journal.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?;
                let Some(plan) = tx
                    .query_opt("SELECT plan FROM sessions WHERE id = $1", &[&wanted])
                    .await?
                else {
                    return Ok(None);
                };
                let plan: String = plan.get(0);
                let snapshot = tx
                    .query_opt(
                        "SELECT covers_seq, state, memory FROM snapshots WHERE session = $1",
                        &[&wanted],
                    )
                    .await?
                    .map(|r| {
                        (
                            r.get::<_, i64>(0),
                            r.get::<_, Vec<u8>>(1),
                            r.get::<_, Vec<u8>>(2),
                        )
                    });
                let covers = snapshot.as_ref().map_or(0, |s| s.0);
                let events: Vec<Vec<u8>> = tx
                    .query(
                        "SELECT body FROM events
                         WHERE session = $1 AND (seq > $2 OR origin = 'external') ORDER BY seq",
                        &[&wanted, &covers],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                tx.commit().await?;
                Ok(Some((plan, snapshot, events)))
            }
        })?;
        let Some((plan, snapshot, events)) = loaded else {
            return Err(self.unknown(id));
        };
        let loc = &self.location;
        let plan: SwarmPlan = Self::decode(loc, id, "plan", plan.as_bytes())?;
        let (mut state, mut memory) = match snapshot {
            Some((_, state, memory)) => (
                Self::decode::<SessionState>(loc, id, "snapshot state", &state)?,
                MemoryFold::from_records(snapshot::decode_memory(&memory).map_err(|e| {
                    SessionError::Decode {
                        location: loc.clone(),
                        session: id.to_string(),
                        what: "snapshot memory",
                        message: e.to_string(),
                    }
                })?),
            ),
            None => (SessionState::default(), MemoryFold::default()),
        };
        let events_replayed = events.len();
        for body in events {
            let event: Event = Self::decode(loc, id, "event", &body)?;
            state.apply(&event);
            if let Event::MemoryChanged { change } = &event {
                memory.apply(change);
            }
        }
        Ok(Restored {
            plan,
            state,
            memory: memory.into_records(crate::clock::now_ms()),
            events_replayed,
        })
    }

    pub fn open_journal(&self, id: &str, lock: &SessionLock) -> Result<Journal, SessionError> {
        let log = PgLog::open(self, id, lock.token())?;
        let feed = PgFeed::start(self, id)?;
        Journal::start(
            id,
            Box::new(log),
            Box::new(feed),
            lock.external_from,
            lock.external_from,
            lock.external_clean,
        )
    }

    pub fn set_status(&self, id: &str, status: SessionStatus) -> Result<(), SessionError> {
        let wanted = id.to_string();
        let changed = self.run("setting a status", move |client, _| {
            let wanted = wanted.clone();
            async move {
                Ok(client
                    .execute(
                        "UPDATE sessions SET status = $2, updated_ms = $3 WHERE id = $1",
                        &[&wanted, &status.as_str(), &(crate::clock::now_ms() as i64)],
                    )
                    .await?)
            }
        })?;
        if changed == 0 {
            return Err(self.unknown(id));
        }
        Ok(())
    }

    pub fn append_external(&self, id: &str, events: &[Event]) -> Result<(), SessionError> {
        let bodies = events
            .iter()
            .map(|e| encode_event(id, e))
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = id.to_string();
        let found = self.run("appending external events", move |mut client, _| {
            let (wanted, bodies) = (wanted.clone(), bodies.clone());
            async move {
                let tx = client.transaction().await?;
                // Locks the row: the session's seqs are handed out in commit order.
                let Some(row) = tx
                    .query_opt(
                        "UPDATE sessions SET last_seq = last_seq + $2, updated_ms = $3
                         WHERE id = $1 RETURNING last_seq",
                        &[
                            &wanted,
                            &(bodies.len() as i64),
                            &(crate::clock::now_ms() as i64),
                        ],
                    )
                    .await?
                else {
                    return Ok(false);
                };
                let last: i64 = row.get(0);
                let first = last - bodies.len() as i64 + 1;
                super::log::insert_bodies(&tx, &wanted, Origin::External, first, &bodies).await?;
                tx.execute("SELECT pg_notify($1, $2)", &[&EXTERNAL_CHANNEL, &wanted])
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        })?;
        if !found {
            return Err(self.unknown(id));
        }
        Ok(())
    }

    /// Deletes a session with its journal and snapshot, in one transaction, after taking its
    /// lease (a live holder is refused; a dead one's lease is taken over).
    pub fn delete_session(&self, id: &str) -> Result<(), SessionError> {
        let held = self.lock(id)?;
        let wanted = id.to_string();
        self.run("deleting a session", move |mut client, _| {
            let wanted = wanted.clone();
            async move {
                let tx = client.transaction().await?;
                tx.execute("DELETE FROM events WHERE session = $1", &[&wanted])
                    .await?;
                tx.execute("DELETE FROM snapshots WHERE session = $1", &[&wanted])
                    .await?;
                tx.execute("DELETE FROM sessions WHERE id = $1", &[&wanted])
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        })?;
        drop(held);
        Ok(())
    }

    pub fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, SessionError> {
        let wanted = id.to_string();
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.run("reading events", move |client, _| {
            let wanted = wanted.clone();
            async move {
                Ok(client
                    .query(
                        "SELECT seq, body FROM events WHERE session = $1 AND seq > $2
                         ORDER BY seq LIMIT $3",
                        &[&wanted, &(after as i64), &limit],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1)))
                    .collect::<Vec<_>>())
            }
        })?;
        rows.into_iter()
            .map(|(seq, body)| {
                Ok(Envelope {
                    seq: seq as u64,
                    event: Arc::new(Self::decode(&self.location, id, "event", &body)?),
                })
            })
            .collect()
    }
}

fn encode_plan(plan: &SwarmPlan) -> Result<String, SessionError> {
    serde_json::to_string(plan).map_err(|e| SessionError::Encode {
        session: String::new(),
        what: "plan",
        message: e.to_string(),
    })
}

pub(crate) fn encode_event(session: &str, event: &Event) -> Result<Vec<u8>, SessionError> {
    serde_json::to_vec(event).map_err(|e| SessionError::Encode {
        session: session.to_string(),
        what: "event",
        message: e.to_string(),
    })
}
