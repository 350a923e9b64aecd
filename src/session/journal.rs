//! The journal: a running session's event stream appended durably by one writer thread with
//! group commit, whatever the backend. Appends queue on a channel; the writer drains everything
//! queued, hands it to the backend's [`EventLog`] to write in one transaction (one durable commit
//! covers the lot), then gives each event its place ([`Envelope`]), tells observers, and resolves
//! each append's [`Ack`].

use super::error::SessionError;
use super::event::{Envelope, Event};
use super::state::SessionState;
use crate::memory::MemoryImage;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc as tokio_mpsc, oneshot, Notify};

/// Upper bound of one group commit, so a flood of appends still gets acks at a steady pace.
const MAX_BATCH: usize = 8192;

/// Receives every event of the session, in journal order, once it is durable.
pub type Observer = tokio_mpsc::UnboundedReceiver<Envelope>;

type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

enum Command {
    /// Answered through [`Durable`], not a reply of its own: most appends are never awaited.
    Append(Arc<Event>),
    Mark(Reply<u64>),
    Snapshot(Box<SnapshotRow>, Reply<()>),
    Close(oneshot::Sender<()>),
}

/// A snapshot as a backend stores it.
pub(crate) struct SnapshotRow {
    /// The journal position it covers: runner events up to here are deleted.
    pub covers: u64,
    /// External events up to here are in `memory` and are deleted too.
    pub external_seen: u64,
    /// External events up to here are gone already (or never were): a backend need only look
    /// for them after it.
    pub external_clean: u64,
    pub state: Vec<u8>,
    pub memory: Vec<u8>,
    /// `(tasks total, tasks done)` for the session's row.
    pub tasks: (i64, i64),
    pub at_ms: u64,
}

/// What one group commit writes, in order.
pub(crate) enum Work {
    Event(Arc<Event>),
    Snapshot(Box<SnapshotRow>),
}

/// A backend's append path: one transaction per batch.
pub(crate) trait EventLog: Send + 'static {
    /// Writes `batch` in one transaction, checking that this runner still holds the session, and
    /// returns the seq of the batch's last event (`last_seq` when it holds none). The events of a
    /// batch get consecutive seqs.
    fn commit(&mut self, batch: &[Work], last_seq: u64) -> Result<u64, SessionError>;

    /// Work that may wait until the batch's acks are sent (e.g. copying a large WAL).
    fn settle(&mut self) {}

    /// The writer stops: leave the store self-contained (e.g. fold the WAL into the file).
    fn close(&mut self) {}
}

/// A backend's reader of external events (the memory CLI) appended to a running session.
pub(crate) trait ExternalFeed: Send + 'static {
    /// External events after journal position `after`, and the position read up to.
    fn poll(&mut self, after: u64) -> Result<(Vec<Event>, u64), SessionError>;

    /// Woken when external events may have arrived, for backends that are told (PostgreSQL's
    /// LISTEN/NOTIFY); `None` for backends that must be polled.
    fn notifications(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// How often a backend without notifications looks for external events.
const EXTERNAL_POLL: Duration = Duration::from_millis(250);

/// How often a backend with notifications looks anyway, in case one was lost on a reconnect.
const NOTIFIED_POLL: Duration = Duration::from_secs(5);

/// The durable event stream of one running session. Cheap to clone; every clone feeds the same
/// writer.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    session: String,
    /// `None` for a disabled journal.
    commands: Option<mpsc::Sender<Command>>,
    /// Appends queued so far: an append's number is its place in the queue.
    appended: Mutex<u64>,
    durable: Arc<Durable>,
    observers: Arc<Observers>,
    external: Mutex<Option<Box<dyn ExternalFeed>>>,
    external_notify: Option<Arc<Notify>>,
    /// The journal position `poll_external` has read up to: every external event at or below it
    /// has been returned.
    external_seen: AtomicU64,
    /// Every external event at or below this position has been deleted, or never existed: a
    /// snapshot deletes those after it only, and none at all when polls found nothing.
    external_clean: AtomicU64,
    /// The seq a disabled journal gives the next event.
    unjournaled_seq: AtomicU64,
    failure: Arc<Failure>,
}

/// The first failed commit. After it the journal writes nothing more: an event committed after
/// one that was lost would make the journal say something that never happened, so the session
/// stays as its last commit left it, which is what a resume continues from.
#[derive(Default)]
struct Failure {
    error: Mutex<Option<SessionError>>,
    notify: Notify,
}

impl Failure {
    fn set(&self, error: &SessionError) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(error.clone());
            self.notify.notify_waiters();
        }
    }

    fn get(&self) -> Option<SessionError> {
        self.error.lock().clone()
    }
}

/// How many appends are durable, for their acks: counted in queue order as each batch is
/// answered, after its envelopes reach the observers.
#[derive(Default)]
struct Durable {
    count: AtomicU64,
    /// A batch failed: appends past `count` never will be durable.
    failed: AtomicBool,
    /// The writer is gone: appends past `count` never will be durable.
    stopped: AtomicBool,
    /// Woken once per answered batch, and when the writer stops.
    notify: Arc<Notify>,
}

impl Durable {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// Everyone following the stream.
#[derive(Default)]
struct Observers(Mutex<Vec<tokio_mpsc::UnboundedSender<Envelope>>>);

impl Observers {
    fn publish(&self, envelope: Envelope) {
        self.0.lock().retain(|tx| tx.send(envelope.clone()).is_ok());
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.commands {
            Some(_) => write!(f, "Journal({})", self.inner.session),
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
        /// The append's place in the queue.
        number: u64,
        inner: Arc<Inner>,
        /// Registered once the ack was found not durable yet.
        woken: Option<Pin<Box<tokio::sync::futures::OwnedNotified>>>,
    },
}

impl Future for Ack {
    type Output = Result<(), SessionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AckState::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            AckState::Waiting {
                number,
                inner,
                woken,
            } => loop {
                if let Some(result) = inner.settled(*number) {
                    return Poll::Ready(result);
                }
                match woken {
                    None => {
                        // Registered, then checked again: a batch answered in between is seen.
                        let mut wait = Box::pin(Arc::clone(&inner.durable.notify).notified_owned());
                        wait.as_mut().enable();
                        *woken = Some(wait);
                    }
                    Some(wait) => match wait.as_mut().poll(cx) {
                        Poll::Ready(()) => *woken = None,
                        Poll::Pending => return Poll::Pending,
                    },
                }
            },
        }
    }
}

impl Inner {
    /// How append `number` ended, once it has.
    fn settled(&self, number: u64) -> Option<Result<(), SessionError>> {
        let durable = &self.durable;
        if durable.count.load(Ordering::Acquire) >= number {
            return Some(Ok(()));
        }
        if durable.failed.load(Ordering::Acquire) {
            return Some(Err(self.failure.get().unwrap_or_else(|| self.closed())));
        }
        if durable.stopped.load(Ordering::Acquire) {
            // The count may have moved before the flag was set.
            if durable.count.load(Ordering::Acquire) >= number {
                return Some(Ok(()));
            }
            return Some(Err(self.closed()));
        }
        None
    }

    fn closed(&self) -> SessionError {
        SessionError::JournalClosed {
            session: self.session.clone(),
        }
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SessionError> {
        let Some(commands) = &self.commands else {
            return Err(self.closed());
        };
        let (tx, rx) = oneshot::channel();
        commands.send(make(tx)).map_err(|_| self.closed())?;
        rx.await.unwrap_or_else(|_| Err(self.closed()))
    }
}

impl Journal {
    /// Starts the writer thread of `session` over a backend's log. `last_seq` is the session's
    /// journal end; `external_from` the position from which external events are new to this
    /// runner (those before it are in what the load returned); `external_clean` the position up
    /// to which the session holds no external event (0 when unknown).
    pub(crate) fn start(
        session: &str,
        log: Box<dyn EventLog>,
        feed: Box<dyn ExternalFeed>,
        last_seq: u64,
        external_from: u64,
        external_clean: u64,
    ) -> Result<Self, SessionError> {
        let (commands, queue) = mpsc::channel();
        let observers = Arc::new(Observers::default());
        let failure = Arc::new(Failure::default());
        let durable = Arc::new(Durable::default());
        let writer = Writer {
            log,
            last_seq,
            observers: Arc::clone(&observers),
            failure: Arc::clone(&failure),
            deliveries: spawn_deliverer(Arc::clone(&observers), Arc::clone(&durable)),
            durable: Arc::clone(&durable),
        };
        std::thread::Builder::new()
            .name(format!("journal-{session}"))
            .spawn(move || writer.run(queue))
            .map_err(|e| SessionError::io(format!("the journal writer of {session}"), e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                session: session.to_string(),
                commands: Some(commands),
                appended: Mutex::new(0),
                durable,
                observers,
                external_notify: feed.notifications(),
                external: Mutex::new(Some(feed)),
                external_seen: AtomicU64::new(external_from),
                external_clean: AtomicU64::new(external_clean.min(external_from)),
                unjournaled_seq: AtomicU64::new(0),
                failure,
            }),
        })
    }

    /// A journal that writes nothing; its acks resolve at once. For measuring what durability
    /// costs (`--no-journal`).
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                session: String::new(),
                commands: None,
                appended: Mutex::new(0),
                durable: Arc::default(),
                observers: Arc::default(),
                external: Mutex::new(None),
                external_notify: None,
                external_seen: AtomicU64::new(0),
                external_clean: AtomicU64::new(0),
                unjournaled_seq: AtomicU64::new(0),
                failure: Arc::default(),
            }),
        }
    }

    /// The error of the commit that failed, once one has: the journal has written nothing since.
    pub fn failure(&self) -> Option<SessionError> {
        self.inner.failure.get()
    }

    /// Resolves with the error of the first failed commit.
    pub async fn failed(&self) -> SessionError {
        loop {
            let notified = self.inner.failure.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(error) = self.failure() {
                return error;
            }
            notified.await;
        }
    }

    /// Whether events are written at all (false for [`Journal::disabled`]).
    pub fn is_enabled(&self) -> bool {
        self.inner.commands.is_some()
    }

    /// A new observer: it sees every event that becomes durable from now on, with its seq.
    pub fn subscribe(&self) -> Observer {
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        self.inner.observers.0.lock().push(tx);
        rx
    }

    /// Hands an event that is already in the state store (written with the session itself) to
    /// the observers.
    pub fn publish_committed(&self, envelope: Envelope) {
        self.inner
            .unjournaled_seq
            .fetch_max(envelope.seq, Ordering::AcqRel);
        self.inner.observers.publish(envelope);
    }

    /// Queues an event; the returned [`Ack`] resolves once it is committed. Observers get it when
    /// it is committed; callers that need that order to match the order of their state call this
    /// under the same lock as they change the state.
    pub fn append(&self, event: Arc<Event>) -> Ack {
        let inner = &self.inner;
        let state = match &inner.commands {
            None => {
                let seq = inner.unjournaled_seq.fetch_add(1, Ordering::AcqRel) + 1;
                inner.observers.publish(Envelope { seq, event });
                AckState::Ready(Some(Ok(())))
            }
            Some(commands) => {
                // Numbered and queued under one lock, so that numbers follow the queue.
                let mut appended = inner.appended.lock();
                match commands.send(Command::Append(event)) {
                    Ok(()) => {
                        *appended += 1;
                        AckState::Waiting {
                            number: *appended,
                            inner: inner.clone(),
                            woken: None,
                        }
                    }
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
        let inner = Arc::clone(&self.inner);
        let queued = inner.commands.as_ref().map(|commands| {
            let (tx, rx) = oneshot::channel();
            let sent = commands.send(Command::Mark(tx)).is_ok();
            (rx, sent)
        });
        async move {
            match queued {
                None => Ok(0),
                Some((_, false)) => Err(inner.closed()),
                Some((rx, true)) => rx.await.unwrap_or_else(|_| Err(inner.closed())),
            }
        }
    }

    /// Stores a snapshot of the state and memory as of journal position `covers` (from
    /// [`Journal::mark`], in one transaction. The runner's events stay (a load replays only
    /// those after `covers`); external events are deleted once [`Journal::poll_external`] has
    /// returned them, i.e. `memory` already holds their changes.
    pub async fn write_snapshot(
        &self,
        covers: u64,
        state: &SessionState,
        memory: &MemoryImage,
    ) -> Result<(), SessionError> {
        let inner = &self.inner;
        if inner.commands.is_none() {
            return Ok(());
        }
        let encode = |what, result: serde_json::Result<Vec<u8>>| {
            result.map_err(|e| SessionError::Encode {
                session: inner.session.clone(),
                what,
                message: e.to_string(),
            })
        };
        let external_seen = inner.external_seen.load(Ordering::Acquire);
        let external_clean = inner.external_clean.load(Ordering::Acquire);
        let snapshot = SnapshotRow {
            covers,
            external_seen,
            external_clean,
            state: encode("snapshot state", super::state_encode::encode_state(state))?,
            memory: encode("snapshot memory", super::snapshot::encode_memory(memory))?,
            tasks: (
                state.tasks.len() as i64,
                state.count(super::TaskStatus::Done) as i64,
            ),
            at_ms: crate::clock::now_ms(),
        };
        inner
            .request(|reply| Command::Snapshot(Box::new(snapshot), reply))
            .await?;
        inner
            .external_clean
            .fetch_max(external_seen, Ordering::AcqRel);
        Ok(())
    }

    /// External events (the memory CLI) appended since the last poll, in journal order.
    pub fn poll_external(&self) -> Result<Vec<Event>, SessionError> {
        let mut feed = self.inner.external.lock();
        let Some(feed) = feed.as_mut() else {
            return Ok(Vec::new());
        };
        let after = self.inner.external_seen.load(Ordering::Acquire);
        let (events, seen) = feed.poll(after)?;
        let seen = seen.max(after);
        self.inner.external_seen.store(seen, Ordering::Release);
        // Nothing external between `after` and `seen`: if everything before was clean, so is
        // everything up to `seen`, and the next snapshot has nothing to delete.
        if events.is_empty() {
            let _ = self.inner.external_clean.fetch_update(
                Ordering::AcqRel,
                Ordering::Acquire,
                |clean| (clean >= after).then_some(seen),
            );
        }
        Ok(events)
    }

    /// Resolves when [`Journal::poll_external`] may have something new: at once on a
    /// notification from the backend, else after a short interval.
    pub async fn external_changed(&self) {
        match &self.inner.external_notify {
            Some(notify) => {
                let _ = tokio::time::timeout(NOTIFIED_POLL, notify.notified()).await;
            }
            None if self.is_enabled() => tokio::time::sleep(EXTERNAL_POLL).await,
            None => std::future::pending().await,
        }
    }

    /// Commits everything queued and stops the writer.
    pub async fn close(self) {
        if let Some(commands) = &self.inner.commands {
            let (tx, rx) = oneshot::channel();
            if commands.send(Command::Close(tx)).is_ok() {
                // An error means the writer already stopped: nothing is left to flush.
                let _ = rx.await;
            }
        }
    }
}

/// The writer thread: drains the queue, commits a batch, answers it.
struct Writer {
    log: Box<dyn EventLog>,
    /// The seq of the last event this writer committed (or the session's journal end at start).
    last_seq: u64,
    observers: Arc<Observers>,
    failure: Arc<Failure>,
    /// Where a committed batch's envelopes and answers go, when the journal was started on a
    /// runtime: see [`spawn_deliverer`].
    deliveries: Option<tokio_mpsc::UnboundedSender<Delivery>>,
    durable: Arc<Durable>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Said here without a deliverer, or when its runtime is gone (the batches were
        // answered from here); else the deliverer says it once it has handed on every batch
        // before (its queue closes with this writer).
        if self.deliveries.as_ref().is_none_or(|d| d.is_closed()) {
            self.durable.stop();
        }
    }
}

/// What a batch owes once its transaction has committed (or failed): the envelopes for the
/// observers, then the answers, then (the last one) the answers to `close`.
#[derive(Default)]
struct Delivery {
    /// One for each of the batch's appends, unless it failed.
    envelopes: Vec<Envelope>,
    replies: Vec<Pending>,
    /// The error of the batch, or of an earlier one.
    failure: Option<SessionError>,
    /// The seq before the batch's first event.
    start: u64,
    closers: Vec<oneshot::Sender<()>>,
}

impl Delivery {
    fn deliver(self, observers: &Observers, durable: &Durable) {
        let appends = self.envelopes.len() as u64;
        for envelope in self.envelopes {
            observers.publish(envelope);
        }
        if self.failure.is_some() {
            durable.failed.store(true, Ordering::Release);
        } else {
            durable.count.fetch_add(appends, Ordering::AcqRel);
        }
        if appends > 0 || self.failure.is_some() {
            durable.notify.notify_waiters();
        }
        for reply in self.replies {
            // A dropped receiver means its caller stopped waiting; the work is done regardless.
            match reply {
                Pending::Ack(tx) => {
                    let _ = tx.send(self.failure.clone().map_or(Ok(()), Err));
                }
                Pending::Mark(tx, before) => {
                    let _ = tx.send(self.failure.clone().map_or(Ok(self.start + before), Err));
                }
            }
        }
        for tx in self.closers {
            let _ = tx.send(());
        }
    }
}

/// Starts the task that hands committed batches to their waiters, on the runtime the journal
/// is started on. Waking a task from the writer thread costs a system call (the runtime's
/// eventfd) per task, one per waiting agent and observer; the writer wakes this task once per
/// batch instead, and it wakes the others from the runtime's own thread, which costs none.
/// Without a runtime (a journal opened from synchronous code) the writer answers directly.
fn spawn_deliverer(
    observers: Arc<Observers>,
    durable: Arc<Durable>,
) -> Option<tokio_mpsc::UnboundedSender<Delivery>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let (tx, mut rx) = tokio_mpsc::unbounded_channel::<Delivery>();
    handle.spawn(async move {
        while let Some(delivery) = rx.recv().await {
            delivery.deliver(&observers, &durable);
        }
        durable.stop();
    });
    Some(tx)
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Command>) {
        let mut batch = Vec::new();
        let mut replies = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut closers = Vec::new();
            for cmd in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
                match cmd {
                    Command::Append(event) => batch.push(Work::Event(event)),
                    // The position is that of the events queued before the mark, not of the
                    // whole batch: events appended after it are not in the caller's state copy.
                    Command::Mark(reply) => {
                        let before = batch
                            .iter()
                            .filter(|work| matches!(work, Work::Event(_)))
                            .count() as u64;
                        replies.push(Pending::Mark(reply, before));
                    }
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
            if closing && self.failure.get().is_none() {
                self.log.close();
            }
            if closing {
                // After the batch's answers: a closer sees every event delivered.
                self.deliver(Delivery {
                    closers,
                    ..Delivery::default()
                });
                break;
            }
        }
    }

    fn deliver(&self, delivery: Delivery) {
        // A runtime that has shut down takes nothing: its batch is answered from here.
        let undelivered = match &self.deliveries {
            Some(deliveries) => deliveries.send(delivery).err().map(|e| e.0),
            None => Some(delivery),
        };
        if let Some(delivery) = undelivered {
            delivery.deliver(&self.observers, &self.durable);
        }
    }

    /// Writes one batch in one transaction, tells the observers, then answers every command of
    /// it.
    fn commit(&mut self, batch: &mut Vec<Work>, replies: &mut Vec<Pending>) {
        let mut start = self.last_seq;
        let mut envelopes = Vec::new();
        let failure = if let Some(earlier) = self.failure.get() {
            Some(earlier)
        } else if batch.is_empty() {
            None
        } else {
            match self.log.commit(batch, self.last_seq) {
                Ok(last) => {
                    let events = batch.iter().filter_map(|work| match work {
                        Work::Event(event) => Some(event),
                        Work::Snapshot(_) => None,
                    });
                    let count = events.clone().count() as u64;
                    envelopes.reserve(count as usize);
                    for (i, event) in events.enumerate() {
                        envelopes.push(Envelope {
                            seq: last + 1 + i as u64 - count,
                            event: Arc::clone(event),
                        });
                    }
                    self.last_seq = last;
                    start = last - count;
                    None
                }
                Err(e) => {
                    self.failure.set(&e);
                    Some(e)
                }
            }
        };
        batch.clear();
        self.deliver(Delivery {
            envelopes,
            replies: std::mem::take(replies),
            failure,
            start,
            closers: Vec::new(),
        });
        if self.failure.get().is_none() {
            self.log.settle();
        }
    }
}

/// Replies owed once a batch's transaction has committed (or failed).
enum Pending {
    Ack(Reply<()>),
    /// With the number of the batch's events queued before the mark.
    Mark(Reply<u64>, u64),
}
