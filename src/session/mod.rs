//! Sessions: every change of a swarm's state is an [`Event`]; the live [`SessionState`] is the
//! events applied in order; the journal in the state dir is the same stream made durable; a
//! checkpoint is a snapshot of the state plus the journal position, and resume is the latest
//! snapshot plus the events after it.

mod event;
mod state;

pub use event::*;
pub use state::*;
