//! The final summary on stdout: each task with its status and where its result is, and totals.

use std::fmt::Write;
use std::path::Path;
use swarm_runtime::runtime::prompt::result_key;
use swarm_runtime::runtime::{RunReport, SwarmContext};
use swarm_runtime::session::TaskStatus;

pub fn render(ctx: &SwarmContext, report: &RunReport, state_dir: &Path) -> String {
    let state = &report.state;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nswarm {} · session {} · {}: {}",
        ctx.plan.name,
        report.session,
        report.end.status.as_str(),
        report.end.reason
    );
    if let Some(warning) = swarm_runtime::runtime::topology::planning_warning(&ctx.plan, state) {
        let _ = writeln!(out, "warning: {warning}");
    }
    let width = state
        .tasks
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(4)
        .max(4);
    let role_width = state
        .tasks
        .values()
        .map(|t| t.spec.role.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let agent_width = state
        .tasks
        .values()
        .filter_map(|t| t.agent.as_ref().map(String::len))
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<role_width$}  {:<7}  {:<agent_width$}  RESULT",
        "TASK", "ROLE", "STATUS", "AGENT"
    );
    for task in state.tasks_in_order() {
        let detail = match task.status {
            TaskStatus::Done => format!("memory {}", result_key(&ctx.plan.name, &task.spec.id)),
            TaskStatus::Failed => task.error.clone().unwrap_or_default(),
            TaskStatus::Running | TaskStatus::Pending if task.turns > 0 => {
                format!("{} turns so far; resumes from the last one", task.turns)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:<role_width$}  {:<7}  {:<agent_width$}  {}",
            task.spec.id,
            task.spec.role,
            task.status.as_str(),
            task.agent.as_deref().unwrap_or("-"),
            detail
        );
    }
    let t = &state.totals;
    let _ = writeln!(
        out,
        "\nllm calls {} · tokens {} in / {} out · ${:.4} · {:.1}s · retries {} · tool calls {}",
        t.llm_calls,
        t.tokens_in,
        t.tokens_out,
        t.usd,
        state.elapsed_ms() as f64 / 1000.0,
        t.retries,
        t.tool_calls
    );
    let dir = state_dir.display();
    let _ = writeln!(
        out,
        "results: swarm memory get {} --session {} --state-dir {dir}",
        result_key(&ctx.plan.name, "<task>"),
        report.session
    );
    let _ = writeln!(out, "workspace: {}", ctx.workspace.root().display());
    let _ = writeln!(
        out,
        "report: swarm sessions report {} --state-dir {dir}",
        report.session
    );
    if matches!(
        report.end.status,
        swarm_runtime::session::SessionStatus::Interrupted
            | swarm_runtime::session::SessionStatus::BudgetStopped
            | swarm_runtime::session::SessionStatus::Failed
    ) {
        let extend = if report.end.status == swarm_runtime::session::SessionStatus::BudgetStopped {
            " --extend-budget"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "resume: swarm resume {}{extend} --state-dir {dir}",
            report.session
        );
    }
    out
}
