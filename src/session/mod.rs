//! Sessions: every change of a swarm's state is an [`Event`]; the live [`SessionState`] is the
//! events applied in order; the journal in the state store is the same stream made durable, each
//! event in an [`Envelope`] naming its place; a checkpoint is a snapshot of the state plus the
//! journal position, and resume is the latest snapshot plus the events after it.
//!
//! - [`StateDir`]: the state store holding every session, its plan, journal and snapshot, behind
//!   the [`SessionStore`] seam; `sqlite` is the embedded backend;
//! - [`Journal`]: the durable append path of a running session (group commit);
//! - [`SessionLock`]: one runner per session, stale locks of dead processes taken over;
//! - [`budget`]: health of each budget; [`report`]: the Markdown handoff report.

pub mod budget;
mod error;
mod event;
mod journal;
pub mod report;
mod rows;
mod snapshot;
mod sqlite;
mod state;
mod store;

pub use error::SessionError;
pub use event::*;
pub use journal::{Ack, Journal, Observer};
pub use rows::format_utc;
pub use sqlite::db::{DB_FILE, SCHEMA_VERSION};
pub use sqlite::lock::SessionLock;
pub use state::*;
pub use store::{Restored, SessionStore, SessionSummary, StateDir};
