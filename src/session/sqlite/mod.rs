//! The SQLite backend: a state dir is one database file (WAL, `synchronous=FULL`), the embedded
//! default. Everything that knows about SQLite lives here; its errors leave this module as
//! [`SessionError`] variants that name the file.

pub(crate) mod db;
pub(crate) mod event_rows;
pub(crate) mod lock;
pub(crate) mod log;
pub(crate) mod project;
pub(crate) mod store;

use crate::session::error::SessionError;
use std::path::Path;

/// Classifies an SQLite error on the database at `path`: damage and foreign files get their
/// own variants so the message says what is wrong instead of an SQLite code.
pub(crate) fn sqlite_error(path: &Path, err: rusqlite::Error) -> SessionError {
    let location = path.display().to_string();
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => SessionError::NotADatabase {
            location,
            reason: err.to_string(),
        },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => SessionError::Corrupt {
            location,
            reason: err.to_string(),
        },
        _ => SessionError::backend(location, err),
    }
}
