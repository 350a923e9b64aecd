//! Parts of the load benchmark: a mock OpenAI-compatible server, the generated workload, and a
//! child-process runner that reads the child's own resource usage.

pub mod child;
pub mod mock;
pub mod workload;
