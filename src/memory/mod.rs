//! The shared, namespaced, in-process memory the agents coordinate through.
//!
//! (namespace, key) -> JSON value with created / updated / expires_at, a version and an access
//! count. Keys are `/`-separated paths. Every mutation is reported as a [`MemoryChange`] so the
//! session journal records it and a resume restores it exactly.

mod types;

pub use types::*;
