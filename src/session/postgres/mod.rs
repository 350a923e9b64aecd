//! The PostgreSQL backend: a state store several machines share. Sessions, events, snapshots
//! and leases are rows of one database; an event is acknowledged when the transaction holding it
//! commits (one commit per batch: group commit); each session's events are numbered by its row
//! (`last_seq`), which every append locks, so a session's seqs follow commit order; external
//! events (`swarm memory set`) wake the runner with LISTEN/NOTIFY. Everything that knows about
//! PostgreSQL lives here.
//!
//! The rest of the store is synchronous, so calls run on a small runtime of this module's own
//! and the caller waits for the answer: that works from plain threads (the journal's writer) and
//! from inside the caller's async runtime alike.

mod log;
mod project;
pub(crate) mod queue;
mod rate;
mod schema;
mod store;

pub use store::PgStore;

use crate::session::error::SessionError;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// Whether a state store location names a PostgreSQL database.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The URL without its password, for messages.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "the PostgreSQL URL".to_string(),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // The runtime lives as long as the process: it is never dropped inside another runtime.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL runtime: {e}"))
    })
}

/// Runs `work` on this module's runtime and waits for its answer.
pub(crate) fn block<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(work.await);
    });
    match rx.recv() {
        Ok(value) => value,
        // The task panicked: surface it here rather than hang.
        Err(_) => panic!("a PostgreSQL task stopped without an answer"),
    }
}

/// How long to keep retrying a database that does not answer, and how the waits grow.
const RETRY_FOR: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds, fails with an error that a retry cannot fix, or the
/// database has not answered for [`RETRY_FOR`]. Each retry is reported in the log.
pub(crate) async fn with_retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, PgFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PgFailure>>,
{
    let started = std::time::Instant::now();
    let mut wait = FIRST_RETRY;
    loop {
        match attempt().await {
            Err(PgFailure::Unavailable(message)) if started.elapsed() < RETRY_FOR => {
                tracing::warn!(
                    "{what}: the database is unavailable ({message}); retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY_WAIT);
            }
            other => return other,
        }
    }
}

/// A failure of a PostgreSQL call, sorted by whether trying again may help.
#[derive(Debug)]
pub(crate) enum PgFailure {
    /// No connection could be had, or it broke before the work was sent: safe to try again.
    Unavailable(String),
    /// Anything else, including a connection lost while committing (the outcome is unknown).
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// A store-level answer (unknown session, lease held, fenced...).
    Store(SessionError),
}

impl From<tokio_postgres::Error> for PgFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            PgFailure::Unavailable(e.to_string())
        } else {
            PgFailure::Failed(Box::new(e))
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgFailure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PgFailure::Unavailable(e.to_string())
    }
}

impl From<SessionError> for PgFailure {
    fn from(e: SessionError) -> Self {
        PgFailure::Store(e)
    }
}

impl PgFailure {
    pub(crate) fn into_session(self, location: &str) -> SessionError {
        match self {
            PgFailure::Store(e) => e,
            PgFailure::Unavailable(message) => SessionError::Unavailable {
                location: location.to_string(),
                message,
            },
            PgFailure::Failed(e) => SessionError::Backend {
                location: location.to_string(),
                source: std::sync::Arc::from(e),
            },
        }
    }
}
