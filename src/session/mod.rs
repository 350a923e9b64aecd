//! Sessions: every change of a swarm's state is an [`Event`]; the live [`SessionState`] is the
//! events applied in order; the journal in the state dir is the same stream made durable; a
//! checkpoint is a snapshot of the state plus the journal position, and resume is the latest
//! snapshot plus the events after it.
//!
//! - [`StateDir`]: the SQLite database holding every session, its plan, journal and snapshot;
//! - [`Journal`]: the durable append path of a running session (group commit);
//! - [`SessionLock`]: one runner per session, stale locks of dead processes taken over;
//! - [`budget`]: health of each budget; [`report`]: the Markdown handoff report.

pub mod budget;
mod db;
mod error;
mod event;
mod journal;
mod lock;
pub mod report;
mod snapshot;
mod state;
mod store;

pub use db::{DB_FILE, SCHEMA_VERSION};
pub use error::SessionError;
pub use event::*;
pub use journal::{Ack, Journal};
pub use lock::SessionLock;
pub use state::*;
pub use store::{format_utc, Restored, SessionSummary, StateDir};
