//! What can go wrong with the state dir. Every variant names the file or session concerned so the
//! message alone tells a user what to look at.

use std::path::PathBuf;
use std::sync::Arc;

/// An error of the state dir, the journal or a session in it.
///
/// `Clone` because one failed group commit is reported to every append it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("no sessions in {} (run `swarm run` first)", .root.display())]
    NoStateDir { root: PathBuf },

    #[error("{}: not a swarm state database: {reason}", .path.display())]
    NotADatabase { path: PathBuf, reason: String },

    #[error("{}: the database is damaged ({reason}); it was left untouched", .path.display())]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "{}: schema version {found} is not one this swarm understands (it writes version {supported}); \
         use the swarm release that created it",
        .path.display()
    )]
    UnknownSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("no session `{id}` in {}{}", .path.display(), known_ids(.known))]
    UnknownSession {
        id: String,
        path: PathBuf,
        known: Vec<String>,
    },

    #[error(
        "session {id} is being run by process {pid}; wait for it to finish or stop it (kill {pid}) first"
    )]
    Locked { id: String, pid: u32 },

    #[error("{}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// Stored JSON that does not decode: the file was written by a different version or edited.
    #[error("{}: the stored {what} of session {session} cannot be read: {message}", .path.display())]
    Decode {
        path: PathBuf,
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
    /// Classifies an SQLite error on the database at `path`: damage and foreign files get their
    /// own variants so the message says what is wrong instead of an SQLite code.
    pub(crate) fn sqlite(path: impl Into<PathBuf>, err: rusqlite::Error) -> Self {
        let path = path.into();
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => SessionError::NotADatabase {
                path,
                reason: err.to_string(),
            },
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => SessionError::Corrupt {
                path,
                reason: err.to_string(),
            },
            _ => SessionError::Sqlite {
                path,
                source: Arc::new(err),
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        SessionError::Io {
            path: path.into(),
            source: Arc::new(err),
        }
    }
}
