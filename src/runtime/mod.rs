//! The runtime: the scheduler over the task graph, the agent step machine, topology rules and the
//! session tools agents call.

pub mod agent;
pub mod budget;
pub mod context;
pub mod hook_dispatch;
pub mod hooks;
pub mod prompt;
pub mod recorder;
pub mod resolve;
pub mod roster;
pub mod scheduler;
pub mod session_run;
pub mod simulated;
pub mod tools;
pub mod topology;

pub use context::{StopReason, SwarmContext};
pub use resolve::{resolve, ResolveEnv, ResolveError, ResolvedRun, RunOverrides, Start};
pub use scheduler::RunEnd;
pub use session_run::{PreparedRun, RunError, RunOptions, RunReport};

/// The id of a hierarchical coordinator's planning task.
pub const PLAN_TASK: &str = "plan";
/// The id of a hierarchical coordinator's final synthesis task.
pub const SYNTHESIS_TASK: &str = "synthesis";
/// `created_by` of the tasks the runtime itself adds.
pub const RUNTIME_AUTHOR: &str = "runtime";
