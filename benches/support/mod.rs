//! Parts of the load benchmark: a mock OpenAI-compatible server, the generated workload, a
//! child-process runner that reads the child's own resource usage, and the bare HTTP client
//! that is the floor.

pub mod child;
pub mod floor;
pub mod mock;
pub mod workload;
