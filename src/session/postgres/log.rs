//! The PostgreSQL side of the journal: one transaction per batch on a dedicated connection. The
//! first statement of each takes the session's row only where it still names this runner's
//! lease token (the fence), hands out the batch's seqs from it and applies the row's tallies;
//! then the events go in with one multi-row INSERT and snapshots replace the previous one. External
//! events wake the runner through LISTEN.

use super::store::{PgStore, EXTERNAL_CHANNEL};
use super::{block, with_retry, PgFailure};
use crate::session::error::SessionError;
use crate::session::journal::{EventLog, ExternalFeed, Work};
use crate::session::rows::{Origin, RowEffect};
use crate::session::Event;
use std::sync::Arc;
use tokio::sync::Notify;

/// Inserts `bodies` as events `first..` of `session`, with one statement.
pub(crate) async fn insert_bodies(
    tx: &tokio_postgres::Transaction<'_>,
    session: &str,
    origin: Origin,
    first: i64,
    bodies: &[Vec<u8>],
) -> Result<(), tokio_postgres::Error> {
    if bodies.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = (first..first + bodies.len() as i64).collect();
    tx.execute(
        "INSERT INTO events (session, seq, origin, body)
         SELECT $1, s, $2, b FROM unnest($3::BIGINT[], $4::BYTEA[]) AS t(s, b)",
        &[&session, &origin.as_str(), &seqs, &bodies],
    )
    .await?;
    Ok(())
}

/// The journal writer's connection to the database.
pub(crate) struct PgLog {
    store: PgStore,
    session: String,
    token: i64,
}

impl PgLog {
    pub(crate) fn open(store: &PgStore, session: &str, token: i64) -> Result<Self, SessionError> {
        Ok(Self {
            store: store.clone(),
            session: session.to_string(),
            token,
        })
    }
}

/// A batch as owned data, so that a retry can send it again.
#[derive(Clone)]
enum Item {
    Events(Vec<Vec<u8>>),
    Snapshot {
        covers: i64,
        external_seen: i64,
        state: Vec<u8>,
        memory: Vec<u8>,
        at_ms: i64,
    },
}

impl EventLog for PgLog {
    fn commit(&mut self, batch: &[Work], _last_seq: u64) -> Result<u64, SessionError> {
        let mut items = Vec::new();
        let mut effect = RowEffect::default();
        let mut events = 0i64;
        for work in batch {
            match work {
                Work::Event(event) => {
                    let body = super::store::encode_event(&self.session, event)?;
                    effect.add(event);
                    events += 1;
                    match items.last_mut() {
                        Some(Item::Events(bodies)) => bodies.push(body),
                        _ => items.push(Item::Events(vec![body])),
                    }
                }
                Work::Snapshot(s) => {
                    effect.set_exact(s.tasks);
                    items.push(Item::Snapshot {
                        covers: s.covers as i64,
                        external_seen: s.external_seen as i64,
                        state: s.state.clone(),
                        memory: s.memory.clone(),
                        at_ms: s.at_ms as i64,
                    });
                }
            }
        }
        let (session, token, pool) = (self.session.clone(), self.token, self.store.pool.clone());
        let location = self.store.location.clone();
        block(async move {
            with_retry("appending to the journal", || {
                let (session, items, effect, pool) =
                    (session.clone(), items.clone(), effect.clone(), pool.clone());
                async move {
                    let mut client = pool.get().await?;
                    let tx = client.transaction().await?;
                    let (total, done) = effect.exact.unzip();
                    // The fence and the seqs in one statement: no row means another runner
                    // holds the session now, and nothing of this batch may be written.
                    let row = tx
                        .query_opt(
                            "UPDATE sessions SET
                                 last_seq = last_seq + $3,
                                 tasks_total = COALESCE($4, tasks_total) + $5,
                                 tasks_done = COALESCE($6, tasks_done) + $7,
                                 status = COALESCE($8, status),
                                 updated_ms = $9
                             WHERE id = $1 AND lock_token = $2 RETURNING last_seq",
                            &[
                                &session,
                                &token,
                                &events,
                                &total,
                                &effect.tasks_created,
                                &done,
                                &effect.tasks_done,
                                &effect.status.map(|s| s.as_str()),
                                &(crate::clock::now_ms() as i64),
                            ],
                        )
                        .await?;
                    let Some(row) = row else {
                        return Err(PgFailure::Store(SessionError::LeaseLost {
                            id: session.clone(),
                        }));
                    };
                    let last: i64 = row.get(0);
                    let mut next = last - events + 1;
                    for item in &items {
                        match item {
                            Item::Events(bodies) => {
                                insert_bodies(&tx, &session, Origin::Runner, next, bodies).await?;
                                next += bodies.len() as i64;
                            }
                            Item::Snapshot {
                                covers,
                                external_seen,
                                state,
                                memory,
                                at_ms,
                            } => {
                                tx.execute(
                                    "INSERT INTO snapshots (session, covers_seq, state, memory, at_ms)
                                     VALUES ($1, $2, $3, $4, $5)
                                     ON CONFLICT (session) DO UPDATE SET covers_seq = $2,
                                         state = $3, memory = $4, at_ms = $5",
                                    &[&session, covers, state, memory, at_ms],
                                )
                                .await?;
                                // Runner events stay as the session's history; external ones
                                // the snapshot's memory holds are dropped (a load replays
                                // external events whatever their seq).
                                tx.execute(
                                    "DELETE FROM events WHERE session = $1
                                         AND origin = 'external' AND seq <= $2",
                                    &[&session, external_seen],
                                )
                                .await?;
                            }
                        }
                    }
                    tx.commit().await?;
                    Ok(last as u64)
                }
            })
            .await
        })
        .map_err(|e| e.into_session(&location))
    }
}

/// Reads external events, woken by NOTIFY on a connection of its own.
pub(crate) struct PgFeed {
    store: PgStore,
    session: String,
    notify: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgFeed {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgFeed {
    pub(crate) fn start(store: &PgStore, session: &str) -> Result<Self, SessionError> {
        let notify = Arc::new(Notify::new());
        let listener = super::runtime().spawn(listen(
            store.config.clone(),
            session.to_string(),
            Arc::clone(&notify),
        ));
        Ok(Self {
            store: store.clone(),
            session: session.to_string(),
            notify,
            listener,
        })
    }
}

/// Keeps a LISTEN connection open (reconnecting when it drops) and wakes the feed on each
/// notification for `session`.
async fn listen(config: tokio_postgres::Config, session: String, notify: Arc<Notify>) {
    use futures_util::StreamExt;
    loop {
        if let Ok((client, mut connection)) = config.connect(tokio_postgres::NoTls).await {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let pump = tokio::spawn(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message {
                        let _ = tx.send(n.payload().to_string());
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {EXTERNAL_CHANNEL}"))
                .await
                .is_ok()
            {
                // Whatever arrived while not listening is found by the next poll.
                notify.notify_one();
                while let Some(payload) = rx.recv().await {
                    if payload == session {
                        notify.notify_one();
                    }
                }
            }
            pump.abort();
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl ExternalFeed for PgFeed {
    fn poll(&mut self, after: u64) -> Result<(Vec<Event>, u64), SessionError> {
        let session = self.session.clone();
        let rows = self
            .store
            .run("reading external events", move |client, _| {
                let session = session.clone();
                async move {
                    Ok(client
                        .query(
                            "SELECT seq, CASE WHEN origin = 'external' THEN body END FROM events
                         WHERE session = $1 AND seq > $2 ORDER BY seq",
                            &[&session, &(after as i64)],
                        )
                        .await?
                        .iter()
                        .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<Vec<u8>>>(1)))
                        .collect::<Vec<_>>())
                }
            })?;
        let mut events = Vec::new();
        let mut seen = after;
        for (seq, body) in rows {
            seen = seen.max(seq as u64);
            let Some(body) = body else { continue };
            events.push(
                serde_json::from_slice(&body).map_err(|e| SessionError::Decode {
                    location: self.store.location.clone(),
                    session: self.session.clone(),
                    what: "event",
                    message: e.to_string(),
                })?,
            );
        }
        Ok((events, seen))
    }

    fn notifications(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.notify))
    }
}
