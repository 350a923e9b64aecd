//! Sessions: every change of a swarm's state is an [`Event`]; the live [`SessionState`] is the
//! events applied in order; the journal in the state store is the same stream made durable, each
//! event in an [`Envelope`] naming its place; a checkpoint is a snapshot of the state plus the
//! journal position, and resume is the latest snapshot plus the events after it.
//!
//! - [`StateDir`]: the state store holding every session, its plan, journal and snapshot, behind
//!   the [`SessionStore`] seam; `sqlite` is the embedded backend;
//! - [`Journal`]: the durable append path of a running session (group commit);
//! - [`SessionLock`]: the lease of one runner on a session (owner, expiry, heartbeat, fencing
//!   token); leases of dead local processes are taken over at once, others when they expire;
//! - [`budget`]: health of each budget; [`report`]: the Markdown handoff report;
//! - [`history`]: the journal read back in order, and followed while a run goes on;
//!   [`html`]: the self-contained HTML report (task graph, timeline, transcripts).

pub mod budget;
mod encode;
mod error;
mod event;
pub mod history;
pub mod html;
mod journal;
pub mod lease;
pub mod postgres;
mod project;
pub mod report;
mod rows;
mod snapshot;
mod sqlite;
mod state;
mod state_encode;
mod store;

pub use error::SessionError;
pub use event::*;
pub use journal::{Ack, Journal, Observer};
pub use lease::{Owner, SessionLock};
pub use postgres::queue::Claimed;
pub use postgres::PgStore;
pub use project::{ProjectPut, PutOutcome};
pub use rows::format_utc;
pub use sqlite::db::{DB_FILE, SCHEMA_VERSION};
pub use state::*;
pub use store::{reports_dir, Restored, SessionStore, SessionSummary, StateDir};
