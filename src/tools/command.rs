//! The `run_command` tool: a shell command in the workspace root, with the limits of
//! [`CommandPolicy`].

use super::sandbox::Sandbox;
use super::shell::{format_duration, run_shell};
use super::workspace::Workspace;
use crate::llm::ToolOutput;
use std::sync::Arc;
use std::time::Duration;

/// Limits for the `run_command` tool.
#[derive(Debug, Clone)]
pub struct CommandPolicy {
    /// After this long the command and everything it started are killed.
    pub timeout: Duration,
    /// Bytes of combined stdout and stderr returned to the agent; the middle is cut beyond it.
    pub output_cap: usize,
    /// `sandbox: true`: the Landlock ruleset every command confines itself with.
    pub sandbox: Option<Arc<Sandbox>>,
}

impl Default for CommandPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            output_cap: 16 * 1024,
            sandbox: None,
        }
    }
}

/// The `run_command` tool: runs `command` with the workspace root as its working directory.
/// The result is compact JSON with `exit_code` (or `signal`), `timed_out` when it was stopped,
/// and `output`; a non-zero exit or a timeout is flagged as an error to the model.
pub async fn run_command(ws: &Workspace, command: &str, policy: &CommandPolicy) -> ToolOutput {
    if command.trim().is_empty() {
        return ToolOutput::error("run_command needs a non-empty `command` to run with sh -c");
    }
    let outcome = match run_shell(
        ws.root(),
        command,
        &[],
        policy.timeout,
        policy.output_cap,
        policy.sandbox.as_deref(),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(err) => return ToolOutput::error(format!("could not start `sh -c`: {err}")),
    };
    let mut result = serde_json::Map::new();
    result.insert("exit_code".into(), outcome.exit_code.into());
    if let Some(signal) = outcome.signal.filter(|_| !outcome.timed_out) {
        result.insert("signal".into(), signal.into());
    }
    if outcome.timed_out {
        result.insert("timed_out".into(), true.into());
        result.insert(
            "note".into(),
            format!(
                "stopped after the {} timeout; the command and every process it started were killed",
                format_duration(policy.timeout)
            )
            .into(),
        );
    }
    result.insert("output".into(), outcome.output.clone().into());
    let text = serde_json::Value::Object(result).to_string();
    if outcome.success() {
        ToolOutput::ok(text)
    } else {
        ToolOutput::error(text)
    }
}
