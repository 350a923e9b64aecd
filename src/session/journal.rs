//! The journal: the session's event stream appended durably by one writer thread with group
//! commit. Appends queue on a channel; the writer drains everything queued, writes it in one
//! transaction (one fsync covers the lot) and then resolves each append's [`Ack`].

use super::db::{self, Access, Origin};
use super::error::SessionError;
use super::event::Event;
use super::lock::SessionLock;
use super::state::SessionState;
use super::store::RowEffect;
use crate::memory::MemoryRecord;
use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Upper bound of one group commit, so a flood of appends still gets acks at a steady pace.
const MAX_BATCH: usize = 8192;

/// The writer's page cache, as SQLite's `cache_size` (negative: KiB).
const WRITER_CACHE_KIB: i64 = -256;

/// SQLite's default WAL size, in pages, past which a commit checkpoints.
const AUTOCHECKPOINT_PAGES: i64 = 1000;

type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

enum Command {
    Append(Arc<Event>, Reply<()>),
    Mark(Reply<u64>),
    Snapshot(Box<Snapshot>, Reply<()>),
    Close(oneshot::Sender<()>),
}

struct Snapshot {
    covers: u64,
    external_seen: u64,
    state: Vec<u8>,
    memory: Vec<u8>,
    tasks: (i64, i64),
    at_ms: u64,
}

/// The durable event stream of one running session. Cheap to clone; every clone feeds the same
/// writer.
#[derive(Clone)]
pub struct Journal {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    session: String,
    commands: mpsc::Sender<Command>,
    external: Mutex<ExternalReader>,
    /// The journal position `poll_external` has read up to: every external event at or below it
    /// has been returned.
    external_seen: AtomicU64,
}

struct ExternalReader {
    conn: Option<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => write!(f, "Journal({})", inner.session),
            None => f.write_str("Journal(disabled)"),
        }
    }
}

/// Resolves when an appended event's transaction has committed.
#[must_use = "an append is durable only once its Ack resolves"]
pub struct Ack {
    state: AckState,
}

enum AckState {
    Ready(Option<Result<(), SessionError>>),
    Waiting {
        reply: oneshot::Receiver<Result<(), SessionError>>,
        inner: Arc<Inner>,
    },
}

impl Future for Ack {
    type Output = Result<(), SessionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AckState::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            AckState::Waiting { reply, inner } => Pin::new(reply)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| Err(inner.closed()))),
        }
    }
}

impl Inner {
    fn closed(&self) -> SessionError {
        SessionError::JournalClosed {
            session: self.session.clone(),
        }
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SessionError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| self.closed())?;
        rx.await.unwrap_or_else(|_| Err(self.closed()))
    }
}

impl Journal {
    pub(crate) fn open(
        path: &Path,
        session: &str,
        lock: &SessionLock,
    ) -> Result<Self, SessionError> {
        let conn = db::connect(path, Access::ReadWrite)?;
        // The writer appends at the right edge of its b-trees and rereads almost nothing: a small
        // page cache does the same work as SQLite's default 2 MiB, which counts in peak RSS.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(|e| SessionError::sqlite(path, e))?;
        let last_seq: i64 = conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events WHERE session = ?1), 0),
                            COALESCE((SELECT covers_seq FROM snapshots WHERE session = ?1), 0))",
                [session],
                |r| r.get(0),
            )
            .map_err(|e| SessionError::sqlite(path, e))?;
        let (commands, queue) = mpsc::channel();
        let writer = Writer {
            conn,
            path: path.to_path_buf(),
            session: session.to_string(),
            last_seq: last_seq as u64,
            buf: Vec::with_capacity(64 * 1024),
            ends: Vec::new(),
            insert_sql: INSERT_ROWS.map(insert_sql),
        };
        std::thread::Builder::new()
            .name(format!("journal-{session}"))
            .spawn(move || writer.run(queue))
            .map_err(|e| SessionError::io(path, e))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                session: session.to_string(),
                commands,
                external: Mutex::new(ExternalReader {
                    conn: None,
                    path: path.to_path_buf(),
                }),
                external_seen: AtomicU64::new(lock.external_from),
            })),
        })
    }

    /// A journal that writes nothing; its acks resolve at once. For measuring what durability
    /// costs (`--no-journal`).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Whether events are written at all (false for [`Journal::disabled`]).
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues an event; the returned [`Ack`] resolves once it is committed.
    pub fn append(&self, event: Arc<Event>) -> Ack {
        let state = match &self.inner {
            None => AckState::Ready(Some(Ok(()))),
            Some(inner) => {
                let (tx, rx) = oneshot::channel();
                match inner.commands.send(Command::Append(event, tx)) {
                    Ok(()) => AckState::Waiting {
                        reply: rx,
                        inner: inner.clone(),
                    },
                    Err(_) => AckState::Ready(Some(Err(inner.closed()))),
                }
            }
        };
        Ack { state }
    }

    /// The journal position covering every event appended before this call, once they are all
    /// committed. Pass it to [`Journal::write_snapshot`].
    ///
    /// The request is queued when this is called, not when the future is first polled, so a
    /// caller can take the position under the same lock as the state it snapshots.
    pub fn mark(&self) -> impl Future<Output = Result<u64, SessionError>> + Send + 'static {
        let queued = self.inner.as_ref().map(|inner| {
            let (tx, rx) = oneshot::channel();
            let sent = inner.commands.send(Command::Mark(tx)).is_ok();
            (rx, inner.clone(), sent)
        });
        async move {
            match queued {
                None => Ok(0),
                Some((_, inner, false)) => Err(inner.closed()),
                Some((rx, inner, true)) => rx.await.unwrap_or_else(|_| Err(inner.closed())),
            }
        }
    }

    /// Stores a snapshot of the state and memory as of journal position `covers` (from
    /// [`Journal::mark`]) and deletes the journal events it covers, in one transaction. External
    /// events are deleted only when [`Journal::poll_external`] has returned them, i.e. `memory`
    /// already holds their changes.
    pub async fn write_snapshot(
        &self,
        covers: u64,
        state: &SessionState,
        memory: &[MemoryRecord],
    ) -> Result<(), SessionError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let encode = |what, result: serde_json::Result<Vec<u8>>| {
            result.map_err(|e| SessionError::Encode {
                session: inner.session.clone(),
                what,
                message: e.to_string(),
            })
        };
        let snapshot = Snapshot {
            covers,
            external_seen: inner.external_seen.load(Ordering::Acquire),
            state: encode("snapshot state", serde_json::to_vec(state))?,
            memory: encode("snapshot memory", super::snapshot::encode_memory(memory))?,
            tasks: (
                state.tasks.len() as i64,
                state.count(super::TaskStatus::Done) as i64,
            ),
            at_ms: crate::clock::now_ms(),
        };
        inner
            .request(|reply| Command::Snapshot(Box::new(snapshot), reply))
            .await
    }

    /// External events (the memory CLI) appended since the last poll, in journal order.
    pub fn poll_external(&self) -> Result<Vec<Event>, SessionError> {
        let Some(inner) = &self.inner else {
            return Ok(Vec::new());
        };
        let mut reader = inner.external.lock();
        let path = reader.path.clone();
        let err = |e| SessionError::sqlite(&path, e);
        if reader.conn.is_none() {
            reader.conn = Some(db::connect(&path, Access::ReadOnly)?);
        }
        let Some(conn) = reader.conn.as_ref() else {
            return Ok(Vec::new());
        };
        let after = inner.external_seen.load(Ordering::Acquire);
        // The cursor moves past every committed event, not only external ones, so that a poll
        // reads just what arrived since the last one (the index is on session and seq).
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, CASE WHEN origin = 'external' THEN body END FROM events
                 WHERE session = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(rusqlite::params![inner.session, after as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err)?;
        let mut events = Vec::new();
        let mut seen = after;
        for (seq, body) in rows {
            seen = seen.max(seq as u64);
            let Some(body) = body else { continue };
            let event = serde_json::from_slice(&body).map_err(|e| SessionError::Decode {
                path: path.clone(),
                session: inner.session.clone(),
                what: "event",
                message: e.to_string(),
            })?;
            events.push(event);
        }
        inner.external_seen.store(seen, Ordering::Release);
        Ok(events)
    }

    /// Commits everything queued and stops the writer.
    pub async fn close(self) {
        if let Some(inner) = &self.inner {
            let (tx, rx) = oneshot::channel();
            if inner.commands.send(Command::Close(tx)).is_ok() {
                // An error means the writer already stopped: nothing is left to flush.
                let _ = rx.await;
            }
        }
    }
}

/// The writer thread's side: one connection, one transaction per batch.
struct Writer {
    conn: Connection,
    path: PathBuf,
    session: String,
    /// The seq of the last event this writer committed (or the session's journal end at open).
    last_seq: u64,
    /// Reused encoding buffer of a run of events, one after the other: one allocation for the
    /// life of the writer, not one per event.
    buf: Vec<u8>,
    /// Where each event of `buf` ends.
    ends: Vec<usize>,
    /// The multi-row INSERT for each size of [`INSERT_ROWS`].
    insert_sql: [String; INSERT_ROWS.len()],
}

/// Rows per INSERT statement, largest first. One statement per event paid for a statement's
/// setup and for the AUTOINCREMENT bookkeeping (a `sqlite_sequence` update) on every event;
/// a multi-row INSERT pays them once per chunk. Seqs stay in event order.
pub(crate) const INSERT_ROWS: [usize; 6] = [32, 16, 8, 4, 2, 1];

pub(crate) fn insert_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|i| format!("(?1, ?2, ?{})", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO events (session, origin, body) VALUES {values}")
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Command>) {
        let mut batch = Vec::new();
        let mut replies = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut closers = Vec::new();
            for cmd in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
                match cmd {
                    Command::Append(event, reply) => {
                        batch.push(Work::Event(event));
                        replies.push(Pending::Ack(reply));
                    }
                    Command::Mark(reply) => replies.push(Pending::Mark(reply)),
                    Command::Snapshot(snapshot, reply) => {
                        batch.push(Work::Snapshot(snapshot));
                        replies.push(Pending::Ack(reply));
                    }
                    Command::Close(reply) => closers.push(reply),
                }
                if batch.len() >= MAX_BATCH {
                    break;
                }
            }
            self.commit(&mut batch, &mut replies);
            let closing = !closers.is_empty();
            for tx in closers {
                let _ = tx.send(());
            }
            if closing {
                break;
            }
        }
    }

    /// Writes one batch in one transaction, then answers every command of it.
    fn commit(&mut self, batch: &mut Vec<Work>, replies: &mut Vec<Pending>) {
        let before = self.last_seq;
        // A snapshot puts megabytes into the WAL, and the automatic checkpoint would copy them to
        // the database file inside the commit, while the caller waits for its ack: the snapshot
        // is durable once the WAL is synced, so the copy is deferred until the acks are sent.
        let snapshot = batch.iter().any(|work| matches!(work, Work::Snapshot(_)));
        if snapshot {
            self.set_autocheckpoint(0);
        }
        let failure = match self.write(batch) {
            Ok(()) => None,
            Err(e) => {
                self.last_seq = before;
                Some(SessionError::sqlite(&self.path, e))
            }
        };
        batch.clear();
        for reply in replies.drain(..) {
            // A dropped receiver means its caller stopped waiting; the work is done regardless.
            match reply {
                Pending::Ack(tx) => {
                    let _ = tx.send(failure.clone().map_or(Ok(()), Err));
                }
                Pending::Mark(tx) => {
                    let _ = tx.send(failure.clone().map_or(Ok(self.last_seq), Err));
                }
            }
        }
        if snapshot {
            // PASSIVE never waits for readers; what it cannot copy now a later checkpoint will.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            self.set_autocheckpoint(AUTOCHECKPOINT_PAGES);
        }
    }

    /// A failure leaves the previous setting, which costs time, not correctness.
    fn set_autocheckpoint(&self, pages: i64) {
        let _ = self.conn.pragma_update(None, "wal_autocheckpoint", pages);
    }

    fn write(&mut self, batch: &[Work]) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut effect = RowEffect::default();
        let mut rest = batch;
        while !rest.is_empty() {
            let run = rest
                .iter()
                .position(|work| !matches!(work, Work::Event(_)))
                .unwrap_or(rest.len());
            if run > 0 {
                self.buf.clear();
                self.ends.clear();
                for work in &rest[..run] {
                    if let Work::Event(event) = work {
                        serde_json::to_writer(&mut self.buf, &**event)
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                        self.ends.push(self.buf.len());
                        effect.add(event);
                    }
                }
                insert_events(
                    &tx,
                    &self.insert_sql,
                    &self.session,
                    Origin::Runner,
                    &self.buf,
                    &self.ends,
                )?;
                self.last_seq = tx.last_insert_rowid() as u64;
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
                tx.prepare_cached(
                    "DELETE FROM events WHERE session = ?1 AND (
                         (origin = 'runner' AND seq <= ?2)
                      OR (origin = 'external' AND seq <= ?3))",
                )?
                .execute(rusqlite::params![
                    self.session,
                    snapshot.covers as i64,
                    snapshot.external_seen as i64
                ])?;
                effect.set_exact(snapshot.tasks);
                rest = tail;
            }
        }
        effect.write(&tx, &self.session, None)?;
        tx.commit()
    }
}

/// Inserts the events whose encodings lie one after the other in `bodies` (each ending at its
/// entry of `ends`), in order, a chunk of rows per statement.
pub(crate) fn insert_events(
    tx: &Connection,
    insert_sql: &[String; INSERT_ROWS.len()],
    session: &str,
    origin: Origin,
    bodies: &[u8],
    ends: &[usize],
) -> rusqlite::Result<()> {
    let mut start = 0;
    let mut done = 0;
    while done < ends.len() {
        let left = ends.len() - done;
        let (size, sql) = INSERT_ROWS
            .iter()
            .zip(insert_sql)
            .find(|(rows, _)| **rows <= left)
            .unwrap_or((&1, &insert_sql[INSERT_ROWS.len() - 1]));
        let mut insert = tx.prepare_cached(sql)?;
        insert.raw_bind_parameter(1, session)?;
        insert.raw_bind_parameter(2, origin.as_str())?;
        for (i, &end) in ends[done..done + size].iter().enumerate() {
            insert.raw_bind_parameter(i + 3, &bodies[start..end])?;
            start = end;
        }
        insert.raw_execute()?;
        done += size;
    }
    Ok(())
}

/// What a batch writes.
enum Work {
    Event(Arc<Event>),
    Snapshot(Box<Snapshot>),
}

/// Replies owed once a batch's transaction has committed (or failed).
enum Pending {
    Ack(Reply<()>),
    Mark(Reply<u64>),
}
