//! What can go wrong with a memory operation. Every message is meant to be shown as is, to a user
//! of the CLI or to an agent as a tool error, so each says what to do instead.

/// A rejected memory operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// A key or namespace is not a well-formed `/`-separated path.
    #[error(
        "invalid {what} `{path}`: {reason}; use `/`-separated names such as `session/42/notes`"
    )]
    InvalidPath {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{what} is {len} bytes long; the limit is {max} bytes")]
    PathTooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The value's compact JSON is larger than the limit.
    #[error("value is larger than the limit of {max} bytes of compact JSON; store a summary or split it over several keys")]
    ValueTooLarge { max: usize },
    /// A compare-and-swap found another version. `current` is 0 when the key does not exist.
    #[error("version conflict: the key is at version {current}; read it again and retry")]
    Conflict { current: u64 },
    #[error("invalid glob `{glob}`: {reason}")]
    InvalidGlob { glob: String, reason: String },
    /// The project memory of the state dir could not be reached.
    #[error("project memory: {0}")]
    Project(String),
    /// An import document that is not an export of this store.
    #[error("cannot import: {0}")]
    InvalidImport(String),
}
