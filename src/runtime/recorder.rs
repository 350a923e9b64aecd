//! The single point every state change goes through: an event is applied to the live
//! [`SessionState`] and appended to the journal under one lock, so that the journal's order is
//! the order the state saw; the journal hands each event, with its seq, to observers (progress,
//! `--json`, hooks) once it is durable.

use crate::memory::{ChangeSink, MemoryChange, MemoryStore};
use crate::session::{Envelope, Event, Journal, SessionError, SessionState};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;

/// Receives every event once it is durable, in journal order, with its seq.
pub use crate::session::Observer;

struct Inner {
    state: SessionState,
}

/// Applies, journals and broadcasts events.
pub struct Recorder {
    inner: Mutex<Inner>,
    journal: Journal,
}

impl Recorder {
    pub fn new(state: SessionState, journal: Journal) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { state }),
            journal,
        })
    }

    /// A new observer; it sees every event emitted from now on, once durable.
    pub fn subscribe(&self) -> Observer {
        self.journal.subscribe()
    }

    /// Applies `event` and appends it to the journal, which notifies observers once it is
    /// durable. The returned future resolves then too; awaiting it is optional.
    pub fn emit(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        // Redacted before the lock is taken, so the emission under it does not look again.
        let event = crate::secrets::redact_serde(event);
        let ack = self.append_built(|_| Some(event), false);
        async move {
            match ack {
                Some(ack) => ack.await,
                None => Ok(()),
            }
        }
    }

    /// Builds an event from the current state and emits it, atomically: nothing is applied in
    /// between (e.g. two agents cannot take the same message id).
    pub fn emit_with(
        &self,
        build: impl FnOnce(&SessionState) -> Event,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        let ack = self.emit_if(|state| Some(build(state)));
        async move {
            match ack {
                Some(ack) => ack.await,
                None => Ok(()),
            }
        }
    }

    /// Like [`Recorder::emit_with`], where the state may say there is nothing to emit.
    pub fn emit_if(
        &self,
        build: impl FnOnce(&SessionState) -> Option<Event>,
    ) -> Option<impl Future<Output = Result<(), SessionError>> + Send + 'static> {
        self.append_built(build, true)
    }

    /// Every event passes here: with `redact`, no known secret reaches the state, the journal or
    /// the observers (callers that redacted already pass false).
    fn append_built(
        &self,
        build: impl FnOnce(&SessionState) -> Option<Event>,
        redact: bool,
    ) -> Option<crate::session::Ack> {
        let mut inner = self.inner.lock();
        let event = build(&inner.state)?;
        let mut event = if redact {
            crate::secrets::redact_serde(event)
        } else {
            event
        };
        // A role's system prompt is journaled with the first task started under it; readers
        // of the journal put it back for the others (`history::SystemPrompts`).
        inner.state.apply_new(&mut event);
        Some(self.journal.append(Arc::new(event)))
    }

    /// Applies and broadcasts an event the state dir already holds (written with the session
    /// itself), without journaling it again.
    pub fn publish_committed(&self, envelope: Envelope) {
        let mut inner = self.inner.lock();
        inner.state.apply(&envelope.event);
        self.journal.publish_committed(envelope);
    }

    /// Resolves once every event emitted before this call is durable, whoever emitted it. An
    /// agent passes it before each LLM request, so a request never rests on a step that a crash
    /// could still take back (only the call in flight is ever asked again).
    pub fn barrier(&self) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        let mark = self.journal.mark();
        async move { mark.await.map(drop) }
    }

    /// Reads the live state. Keep `f` short: emitting waits for it.
    pub fn read<R>(&self, f: impl FnOnce(&SessionState) -> R) -> R {
        f(&self.inner.lock().state)
    }

    /// A sink for the memory store: every memory mutation becomes a journaled event.
    pub fn memory_sink(self: &Arc<Self>) -> ChangeSink {
        let recorder = Arc::downgrade(self);
        Arc::new(move |change: MemoryChange| {
            if let Some(recorder) = recorder.upgrade() {
                // Durability of memory writes rides on the next awaited event of the agent.
                drop(recorder.emit(Event::MemoryChanged { change }));
            }
        })
    }

    /// Writes a snapshot of the state and of `memory`, and lets the journal drop what it covers.
    ///
    /// The journal position is taken under the same lock as the state copy, so the snapshot
    /// covers exactly the events applied to that copy. Memory is dumped afterwards: it may hold
    /// changes past the position, and replaying those again is harmless.
    pub async fn checkpoint(&self, memory: &MemoryStore) -> Result<(), SessionError> {
        self.snapshot(memory, |state| state.clone()).await.map(drop)
    }

    /// The last snapshot of a run, once nothing is emitted any more: the state moves out of
    /// the recorder into the snapshot and is returned, without the copy a running checkpoint
    /// makes. The recorder holds an empty state afterwards.
    pub async fn checkpoint_final(
        &self,
        memory: &MemoryStore,
    ) -> Result<SessionState, SessionError> {
        self.snapshot(memory, std::mem::take).await
    }

    /// Snapshots what `take` makes of the state, under the lock the journal position is
    /// taken under, and returns it.
    async fn snapshot(
        &self,
        memory: &MemoryStore,
        take: impl FnOnce(&mut SessionState) -> SessionState,
    ) -> Result<SessionState, SessionError> {
        let (state, position) = {
            let mut inner = self.inner.lock();
            (take(&mut inner.state), self.journal.mark())
        };
        let covers = position.await?;
        let records = memory.image();
        self.journal
            .write_snapshot(covers, &state, &records)
            .await?;
        Ok(state)
    }

    /// The journal, for closing it at the end of a run.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}
