//! The handoff report: a Markdown document that lets a person (or the next run) pick the work up
//! where the swarm stopped. Every number in it comes from a counter of the session state.

use super::budget::{self, Level};
use super::event::SessionStatus;
use super::state::{Counters, SessionState, TaskState, TaskStatus};
use crate::llm::Message;
use crate::memory::MemoryRecord;
use crate::spec::SwarmPlan;
use globset::{GlobBuilder, GlobMatcher};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

/// How much of a result or an assistant text the report quotes.
const SUMMARY_CHARS: usize = 240;

/// The memory key under which a task's result is stored, in the swarm's namespace.
pub fn result_key(plan: &SwarmPlan, task: &str) -> String {
    format!("{}/{task}/result", plan.name)
}

/// Renders the handoff report of a session.
pub fn handoff_markdown(
    plan: &SwarmPlan,
    state: &SessionState,
    memory: &[MemoryRecord],
    state_dir: &Path,
) -> String {
    let mut out = String::new();
    header(&mut out, plan, state);
    completed(&mut out, plan, state, memory);
    in_progress(&mut out, state);
    blockers_and_decisions(&mut out, state, memory);
    metrics(&mut out, state);
    resume(&mut out, state, state_dir);
    out
}

fn header(out: &mut String, plan: &SwarmPlan, state: &SessionState) {
    let status = state.status.unwrap_or(SessionStatus::Running);
    let _ = writeln!(out, "# Handoff report: session {}\n", state.session);
    let _ = writeln!(
        out,
        "- **Swarm**: {} ({})",
        plan.name,
        one_line(&plan.description)
    );
    if let Some(goal) = &state.goal {
        let _ = writeln!(out, "- **Goal**: {}", one_line(goal));
    }
    if let Some(earlier) = &plan.continues_from {
        let _ = writeln!(out, "- **Continues session**: {}", earlier.session);
    }
    let _ = write!(out, "- **Status**: {}", status.as_str());
    match &state.end_reason {
        Some(reason) => {
            let _ = writeln!(out, ": {}", one_line(reason));
        }
        None if status == SessionStatus::Running => {
            let _ = writeln!(
                out,
                " (no end recorded: the run was interrupted or is still going)"
            );
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "- **Tasks**: {} done, {} failed, {} running, {} pending, of {}",
        state.count(TaskStatus::Done),
        state.count(TaskStatus::Failed),
        state.count(TaskStatus::Running),
        state.count(TaskStatus::Pending),
        state.tasks.len()
    );
    if let Some(warning) = crate::runtime::topology::planning_warning(plan, state) {
        let _ = writeln!(out, "- **Warning**: {warning}");
    }
    let _ = writeln!(
        out,
        "- **Runs**: {}, active {}, wall-clock span {}",
        state.runs,
        seconds(state.elapsed_ms()),
        seconds(state.wall_span_ms())
    );
    for (n, run) in state.run_history.iter().enumerate() {
        let end = run.status.map_or("no end recorded", |s| s.as_str());
        let _ = writeln!(
            out,
            "  - run {} ({} UTC): {}; {end}",
            n + 1,
            super::format_utc(run.started_at_ms),
            run.describe()
        );
    }
    let health = budget::health(state, &plan.budget);
    if health.is_empty() {
        let _ = writeln!(
            out,
            "- **Health**: {} no budget configured",
            Level::Green.emoji()
        );
    } else {
        let worst = budget::overall(&health);
        let _ = writeln!(
            out,
            "- **Health**: {} {} (warn at {:.0}%, stop at {:.0}%)",
            worst.emoji(),
            worst.as_str(),
            plan.budget.warn_at * 100.0,
            plan.budget.stop_at * 100.0
        );
        for h in &health {
            let _ = writeln!(
                out,
                "  - {}: {} {}",
                h.resource.as_str(),
                h.describe(),
                h.level.emoji()
            );
        }
    }
    out.push('\n');
}

fn completed(out: &mut String, plan: &SwarmPlan, state: &SessionState, memory: &[MemoryRecord]) {
    out.push_str("## Completed work\n\n");
    let done: Vec<&TaskState> = state
        .tasks_in_order()
        .filter(|t| t.status == TaskStatus::Done)
        .collect();
    if done.is_empty() {
        out.push_str("No task is done yet.\n\n");
        return;
    }
    let namespace = &plan.memory.namespace;
    for task in done {
        let key = result_key(plan, &task.spec.id);
        let stored = memory
            .iter()
            .any(|r| r.namespace == *namespace && r.key == key);
        let _ = writeln!(
            out,
            "- **{}** ({}, by {}, {} turns): {}",
            task.spec.id,
            task.spec.role,
            task.agent.as_deref().unwrap_or("unknown agent"),
            task.turns,
            summary(task.result.as_deref().unwrap_or("(no result text)"))
        );
        if stored {
            let _ = writeln!(
                out,
                "  - Result: memory key `{key}` in namespace `{namespace}`"
            );
        } else {
            let _ = writeln!(
                out,
                "  - Result: in the session only (memory key `{key}` in namespace `{namespace}` is absent)"
            );
        }
    }
    out.push('\n');
}

fn in_progress(out: &mut String, state: &SessionState) {
    out.push_str("## In-progress work and next steps\n\n");
    let open: Vec<&TaskState> = state
        .tasks_in_order()
        .filter(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Pending))
        .collect();
    if open.is_empty() {
        out.push_str("Nothing is in progress.\n\n");
    }
    for task in &open {
        let _ = writeln!(
            out,
            "### {} ({}, {})\n",
            task.spec.id,
            task.spec.role,
            task.status.as_str()
        );
        let _ = writeln!(out, "- Task: {}", summary(&task.spec.description));
        if let Some(agent) = &task.agent {
            let _ = writeln!(out, "- Agent: {agent}");
        }
        if task.turns == 0 {
            let _ = writeln!(out, "- Done so far: nothing (no LLM turn completed)");
        } else {
            let _ = writeln!(
                out,
                "- Done so far: {} LLM turns, {} tool results",
                task.turns,
                task.transcript
                    .iter()
                    .filter(|m| matches!(m, Message::Tool { .. }))
                    .count()
            );
        }
        if let Some(text) = last_assistant_text(task) {
            let _ = writeln!(out, "- Last assistant text: {}", summary(text));
        }
        let pending = pending_tool_calls(task);
        if !pending.is_empty() {
            let _ = writeln!(out, "- Pending tool calls: {}", pending.join(", "));
        }
        let waiting: Vec<&str> = task
            .spec
            .depends_on
            .iter()
            .filter(|d| state.task(d).is_none_or(|t| t.status != TaskStatus::Done))
            .map(String::as_str)
            .collect();
        let next = if !waiting.is_empty() {
            format!("waits for {}", waiting.join(", "))
        } else if !pending.is_empty() {
            "run the pending tool calls, then continue with the next LLM turn".to_string()
        } else if task.turns > 0 {
            format!("continue with LLM turn {}", task.turns + 1)
        } else {
            "start the task".to_string()
        };
        let _ = writeln!(out, "- Next: {next}\n");
    }
    let blocked: Vec<&TaskState> = state
        .tasks_in_order()
        .filter(|t| t.status == TaskStatus::Failed && t.agent.is_none())
        .collect();
    if !blocked.is_empty() {
        out.push_str("### Blocked by failed dependencies\n\n");
        for task in blocked {
            let _ = writeln!(
                out,
                "- **{}** ({}): {}",
                task.spec.id,
                task.spec.role,
                summary(task.error.as_deref().unwrap_or("a dependency failed"))
            );
        }
        out.push('\n');
    }
}

fn last_assistant_text(task: &TaskState) -> Option<&str> {
    task.transcript.iter().rev().find_map(|m| match m {
        Message::Assistant {
            text: Some(text), ..
        } if !text.trim().is_empty() => Some(text.as_str()),
        _ => None,
    })
}

/// Tool calls of the last assistant turn that have no result yet.
fn pending_tool_calls(task: &TaskState) -> Vec<String> {
    let Some(last) = task
        .transcript
        .iter()
        .rposition(|m| matches!(m, Message::Assistant { .. }))
    else {
        return Vec::new();
    };
    let answered: BTreeSet<&str> = task.transcript[last..]
        .iter()
        .filter_map(|m| match m {
            Message::Tool { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    match &task.transcript[last] {
        Message::Assistant { tool_calls, .. } => tool_calls
            .iter()
            .filter(|c| !answered.contains(c.id.as_str()))
            .map(|c| format!("`{}` ({})", c.name, c.id))
            .collect(),
        _ => Vec::new(),
    }
}

fn blockers_and_decisions(out: &mut String, state: &SessionState, memory: &[MemoryRecord]) {
    out.push_str("## Blockers and decisions\n\n");
    let globs: Vec<GlobMatcher> = ["**/blockers", "**/decisions"]
        .into_iter()
        .filter_map(|g| {
            GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .ok()
                .map(|g| g.compile_matcher())
        })
        .collect();
    let notes: Vec<&MemoryRecord> = memory
        .iter()
        .filter(|r| globs.iter().any(|g| g.is_match(&r.key)))
        .collect();
    let failed: Vec<&TaskState> = state
        .tasks_in_order()
        .filter(|t| t.status == TaskStatus::Failed && t.agent.is_some())
        .collect();
    if notes.is_empty() && failed.is_empty() {
        out.push_str("None recorded.\n\n");
        return;
    }
    for r in notes {
        let value = match &r.entry.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "- `{}` (namespace `{}`): {}",
            r.key,
            r.namespace,
            summary(&value)
        );
    }
    for task in failed {
        let _ = writeln!(
            out,
            "- Task **{}** failed ({}): {}",
            task.spec.id,
            task.agent.as_deref().unwrap_or_default(),
            summary(task.error.as_deref().unwrap_or("no error recorded"))
        );
    }
    out.push('\n');
}

fn metrics(out: &mut String, state: &SessionState) {
    out.push_str("## Metrics\n\n");
    out.push_str("| agent | LLM calls | tokens in | tokens out | cost (USD) | LLM time | retries | failed calls | tasks done | tasks failed |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (agent, c) in &state.per_agent {
        metrics_row(out, agent, c);
    }
    metrics_row(out, "**total**", &state.totals);
    out.push('\n');
    let t = &state.totals;
    if t.cache_read_tokens + t.cache_write_tokens > 0 {
        let _ = writeln!(
            out,
            "Prompt cache: {} of {} input tokens read from the cache, {} written to it; saved ${:.4} against the same calls uncached.\n",
            t.cache_read_tokens, t.tokens_in, t.cache_write_tokens, t.usd_saved
        );
    }
}

fn metrics_row(out: &mut String, name: &str, c: &Counters) {
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {:.4} | {} | {} | {} | {} | {} |",
        c.llm_calls,
        c.tokens_in,
        c.tokens_out,
        c.usd,
        seconds(c.llm_ms),
        c.retries,
        c.failed_calls,
        c.tasks_done,
        c.tasks_failed
    );
}

fn resume(out: &mut String, state: &SessionState, state_dir: &Path) {
    out.push_str("## Resume\n\n");
    let extend = if state.status == Some(SessionStatus::BudgetStopped) {
        " --extend-budget"
    } else {
        ""
    };
    let finished = matches!(state.status, Some(SessionStatus::Completed));
    if finished {
        out.push_str("Every task is done; resuming is not needed.\n\n");
    }
    let _ = writeln!(
        out,
        "```\nswarm resume {} --state-dir {}{extend}\n```",
        state.session,
        shell_quote(&state_dir.display().to_string())
    );
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first [`SUMMARY_CHARS`] characters of `text` on one line.
fn summary(text: &str) -> String {
    let line = one_line(text);
    match line.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_cut_on_a_char_boundary() {
        let long = "é".repeat(SUMMARY_CHARS + 5);
        let s = summary(&long);
        assert_eq!(s.chars().count(), SUMMARY_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(summary("a\n b"), "a b");
    }

    #[test]
    fn paths_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote(".swarm"), ".swarm");
        assert_eq!(shell_quote("my dir/it's"), r"'my dir/it'\''s'");
    }
}
