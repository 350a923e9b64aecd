//! The runtime: the scheduler over the task graph, the agent step machine, topology rules and the
//! tools agents call.

pub mod command;
pub mod hooks;
pub mod workspace;
