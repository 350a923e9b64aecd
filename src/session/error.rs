//! What can go wrong with the state store. Every variant names the store (a state dir's file or a
//! database URL without its password) or session concerned so the message alone tells a user what
//! to look at. Backend errors arrive here already classified by their backend's module.

use std::path::Path;
use std::sync::Arc;

/// An error of the state dir, the journal or a session in it.
///
/// `Clone` because one failed group commit is reported to every append it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("no sessions in {location} (run `swarm run` first)")]
    NoStateDir { location: String },

    #[error("{location}: not a swarm state database: {reason}")]
    NotADatabase { location: String, reason: String },

    #[error("{location}: the database is damaged ({reason}); it was left untouched")]
    Corrupt { location: String, reason: String },

    #[error(
        "{location}: schema version {found} is not one this swarm understands (it writes version {supported}); \
         use the swarm release that created it"
    )]
    UnknownSchema {
        location: String,
        found: i64,
        supported: i64,
    },

    #[error("no session `{id}` in {location}{}", known_ids(.known))]
    UnknownSession {
        id: String,
        location: String,
        known: Vec<String>,
    },

    #[error(
        "session {id} is being run by {owner}; wait for it to finish or stop it (kill {pid} there) first"
    )]
    Locked { id: String, pid: u32, owner: String },

    /// Another runner took the session over (this one's lease expired): this runner must not
    /// write to it again.
    #[error(
        "session {id}: the lease was lost to another runner; this runner stopped writing to it"
    )]
    LeaseLost { id: String },

    /// The database did not answer for a while (down, unreachable, refusing connections); the
    /// work was retried with backoff before giving up.
    #[error("{location}: the database is unavailable: {message}")]
    Unavailable { location: String, message: String },

    /// The backend does not offer this.
    #[error("{location}: this state store does not support {what}")]
    Unsupported {
        location: String,
        what: &'static str,
    },

    /// The backend failed (a statement, a transaction, the connection).
    #[error("{location}: {source}")]
    Backend {
        location: String,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    #[error("{location}: {source}")]
    Io {
        location: String,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// Stored JSON that does not decode: the file was written by a different version or edited.
    #[error("{location}: the stored {what} of session {session} cannot be read: {message}")]
    Decode {
        location: String,
        session: String,
        what: &'static str,
        message: String,
    },

    #[error("could not encode the {what} of session {session}: {message}")]
    Encode {
        session: String,
        what: &'static str,
        message: String,
    },

    /// The journal's writer has stopped (closed, or it failed earlier and gave up).
    #[error("the journal of session {session} is closed")]
    JournalClosed { session: String },
}

fn known_ids(known: &[String]) -> String {
    if known.is_empty() {
        " (it holds no sessions)".to_string()
    } else {
        format!("; known sessions (newest first): {}", known.join(", "))
    }
}

impl SessionError {
    pub(crate) fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        SessionError::Io {
            location: path.as_ref().display().to_string(),
            source: Arc::new(err),
        }
    }

    pub(crate) fn backend(
        location: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        SessionError::Backend {
            location: location.into(),
            source: Arc::new(err),
        }
    }
}
