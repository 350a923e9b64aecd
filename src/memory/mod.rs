//! The shared, namespaced, in-process memory the agents coordinate through.
//!
//! (namespace, key) -> JSON value with created / updated / expires_at, a version and an access
//! count. Keys are `/`-separated paths. Every mutation is reported as a [`MemoryChange`] so the
//! session journal records it and a resume restores it exactly: [`MemoryStore::apply`] replays
//! changes and [`MemoryStore::image`] / [`MemoryStore::restore`] snapshot the whole content, both
//! without reporting to the sink again; a restored value stays JSON text until it is read.
//!
//! - [`MemoryStore`]: the store (put, compare-and-swap, get, delete, list, glob search, TTLs);
//! - [`AccessPolicy`]: which namespaces a role may read and write.
//!
//! The `memory_*` tools agents call live with the other tools, in `crate::tools::memory`.

mod error;
mod image;
mod index;
mod key;
mod pattern;
mod policy;
mod store;
mod transfer;
mod types;

pub use error::MemoryError;
pub use image::MemoryImage;
pub(crate) use image::{StoredRecord, StoredValue};
pub(crate) use index::Scan;
pub(crate) use key::clip;
pub use pattern::KeyPattern;
pub use policy::AccessPolicy;
pub use store::{ChangeSink, MemoryLimits, MemoryStore, ProjectMemory, Ttl};
pub use types::*;
