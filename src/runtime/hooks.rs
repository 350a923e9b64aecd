//! Hooks: the shell commands a swarm file attaches to events (`post-task: "echo ... >> log"`).
//!
//! A hook runs with `sh -c` in a fixed folder, gets the event's details as `SWARM_*`
//! environment variables, never sees API keys, and is killed with everything it started when
//! it exceeds the timeout. A hook that fails or hangs is reported, never fatal: the runtime
//! turns a [`HookOutcome`] into a warning and the swarm carries on.

use crate::spec::{HookEvent, HookSettings};
use crate::tools::shell::{format_duration, run_shell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes of a hook's output kept for the report.
pub const HOOK_OUTPUT_CAP: usize = 4 * 1024;

/// How one hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    /// Exited with code 0 within the timeout.
    pub ok: bool,
    /// `None` when the hook was killed (timeout or signal) or could not be started.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The hook's output (trimmed, capped) on success; on failure, what went wrong followed by
    /// the output.
    pub message: String,
    pub elapsed_ms: u64,
}

/// Runs the hooks of one swarm.
#[derive(Debug, Clone)]
pub struct HookRunner {
    commands: BTreeMap<HookEvent, String>,
    timeout: Duration,
    cwd: PathBuf,
}

impl HookRunner {
    /// Hooks from the swarm's settings, run in `cwd`.
    pub fn new(settings: &HookSettings, cwd: &Path) -> Self {
        Self {
            commands: settings.commands.clone(),
            timeout: settings.timeout,
            cwd: cwd.to_path_buf(),
        }
    }

    /// Whether a hook is set for `event`, so callers can skip building its variables.
    pub fn has(&self, event: HookEvent) -> bool {
        self.commands.contains_key(&event)
    }

    /// Runs the hook for `event` with `env` set (and `SWARM_EVENT` set to the event's name);
    /// `None` when the swarm has no hook for it.
    pub async fn run(&self, event: HookEvent, env: &[(&str, String)]) -> Option<HookOutcome> {
        let command = self.commands.get(&event)?;
        let mut vars: Vec<(&str, String)> = env
            .iter()
            .filter(|(name, _)| *name != "SWARM_EVENT")
            .cloned()
            .collect();
        vars.push(("SWARM_EVENT", event.as_str().to_string()));

        let started = std::time::Instant::now();
        let outcome = match run_shell(
            &self.cwd,
            command,
            &vars,
            self.timeout,
            HOOK_OUTPUT_CAP,
            None,
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                return Some(HookOutcome {
                    ok: false,
                    exit_code: None,
                    timed_out: false,
                    message: format!(
                        "hook `{}` could not be started in {}: {err}",
                        event.as_str(),
                        self.cwd.display()
                    ),
                    elapsed_ms: millis(started.elapsed()),
                })
            }
        };
        let output = outcome.output.trim();
        let ok = outcome.success();
        let message = if ok {
            output.to_string()
        } else {
            let what = if outcome.timed_out {
                format!(
                    "timed out after {} and was killed",
                    format_duration(self.timeout)
                )
            } else if let Some(code) = outcome.exit_code {
                format!("exited with code {code}")
            } else {
                format!("was killed by signal {}", outcome.signal.unwrap_or(0))
            };
            let mut message = format!("hook `{}` {what}", event.as_str());
            if !output.is_empty() {
                message.push_str(": ");
                message.push_str(output);
            }
            message
        };
        Some(HookOutcome {
            ok,
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            message,
            elapsed_ms: millis(outcome.elapsed),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
