//! `swarm sessions`: list the sessions of a state dir, show one, or print its handoff report
//! (Markdown, or the HTML page). The transcript (`sessions log`) lives in `log.rs`.

use super::table::{self, Align};
use super::SessionsCommand;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;
use swarm_runtime::session::{
    budget, format_utc, history, html, report, Counters, Restored, SessionStatus, SessionSummary,
    StateDir,
};

pub fn run(cmd: SessionsCommand) -> Result<u8> {
    match cmd {
        SessionsCommand::List { json, state } => list(&state.state_dir, json),
        SessionsCommand::Show {
            session,
            follow: true,
            state,
            ..
        } => super::watch::run(&state.state_dir, &session),
        SessionsCommand::Show {
            session,
            json,
            state,
            ..
        } => show(&state.state_dir, &session, json),
        SessionsCommand::Log {
            session,
            task,
            agent,
            follow,
            json,
            full,
            state,
        } => super::log::run(
            &state.state_dir,
            &session,
            &super::log::LogOptions {
                task,
                agent,
                follow,
                json,
                full,
            },
        ),
        SessionsCommand::Delete { sessions, state } => delete(&state.state_dir, &sessions),
        SessionsCommand::Prune {
            older_than,
            status,
            dry_run,
            state,
        } => prune(&state.state_dir, older_than, &status, dry_run),
        SessionsCommand::Report {
            session,
            html: Some(file),
            state,
        } => html_report(&state.state_dir, &session, file.as_deref()),
        SessionsCommand::Report { session, state, .. } => {
            let dir = StateDir::open_read_only(&state.state_dir)?;
            let id = dir.resolve(&session)?;
            let restored = dir.load(&id)?;
            print!(
                "{}",
                report::handoff_markdown(
                    &restored.plan,
                    &restored.state,
                    &restored.memory,
                    &state.state_dir
                )
            );
            Ok(super::exit::OK)
        }
    }
}

fn list(root: &Path, json: bool) -> Result<u8> {
    let sessions = StateDir::open_read_only(root)?.list()?;
    if json {
        let rows: Vec<_> = sessions.iter().map(summary_json).collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(super::exit::OK);
    }
    if sessions.is_empty() {
        eprintln!("no sessions in {}", root.display());
        return Ok(super::exit::OK);
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.swarm.clone(),
                s.status.as_str().to_string(),
                format!("{}/{}", s.tasks_done, s.tasks_total),
                format_utc(s.created_ms),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            "",
            &["ID", "SWARM", "STATUS", "TASKS", "CREATED (UTC)"],
            &[
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Left
            ],
            &rows
        )
    );
    Ok(super::exit::OK)
}

/// Deletes each named session; reports every one it could not delete and carries on.
fn delete(root: &Path, sessions: &[String]) -> Result<u8> {
    let dir = StateDir::open_existing(root)?;
    let mut code = super::exit::OK;
    for session in sessions {
        match dir.resolve(session).and_then(|id| {
            dir.delete_session(&id)?;
            Ok(id)
        }) {
            Ok(id) => println!("deleted session {id} (its state; workspace and reports are kept)"),
            Err(err) => {
                eprintln!("error: {err}");
                code = super::exit::FAILED;
            }
        }
    }
    Ok(code)
}

/// The sessions `prune` takes: not updated for `older_than`, with one of `statuses` (default:
/// every status but running and queued). A running session is never taken.
fn prunable(
    sessions: Vec<SessionSummary>,
    older_than: std::time::Duration,
    statuses: &[SessionStatus],
    now_ms: u64,
) -> Vec<SessionSummary> {
    let cutoff = now_ms.saturating_sub(older_than.as_millis() as u64);
    sessions
        .into_iter()
        .filter(|s| s.updated_ms < cutoff)
        .filter(|s| match statuses {
            [] => !matches!(s.status, SessionStatus::Running | SessionStatus::Queued),
            wanted => wanted.contains(&s.status),
        })
        .collect()
}

fn prune(
    root: &Path,
    older_than: std::time::Duration,
    statuses: &[SessionStatus],
    dry_run: bool,
) -> Result<u8> {
    let dir = if dry_run {
        StateDir::open_read_only(root)?
    } else {
        StateDir::open_existing(root)?
    };
    let now = swarm_runtime::clock::now_ms();
    let chosen = prunable(dir.list()?, older_than, statuses, now);
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut code = super::exit::OK;
    let mut count = 0;
    for s in &chosen {
        if !dry_run {
            if let Err(err) = dir.delete_session(&s.id) {
                eprintln!("error: {err}");
                code = super::exit::FAILED;
                continue;
            }
        }
        count += 1;
        println!(
            "{verb} session {} ({}, last active {} UTC)",
            s.id,
            s.status.as_str(),
            format_utc(s.updated_ms)
        );
    }
    eprintln!(
        "{verb} {count} session(s) not active for {}",
        swarm_runtime::spec::duration::format(older_than)
    );
    Ok(code)
}

fn summary_json(s: &SessionSummary) -> serde_json::Value {
    json!({
        "id": s.id,
        "swarm": s.swarm,
        "status": s.status.as_str(),
        "goal": s.goal,
        "tasks_done": s.tasks_done,
        "tasks_total": s.tasks_total,
        "created": format_utc(s.created_ms),
        "created_ms": s.created_ms,
        "updated_ms": s.updated_ms,
        "runner_pid": s.runner_pid,
    })
}

fn show(root: &Path, session: &str, json: bool) -> Result<u8> {
    let dir = StateDir::open_read_only(root)?;
    let id = dir.resolve(session)?;
    let summary = dir.summary(&id)?;
    let restored = dir.load(&id)?;
    if json {
        println!("{}", show_json(&summary, &restored));
    } else {
        show_text(&summary, &restored);
    }
    Ok(super::exit::OK)
}

fn show_json(summary: &SessionSummary, restored: &Restored) -> serde_json::Value {
    let state = &restored.state;
    let tasks: Vec<_> = state
        .tasks_in_order()
        .map(|t| {
            json!({
                "id": t.spec.id,
                "role": t.spec.role,
                "status": t.status.as_str(),
                "agent": t.agent,
                "depends_on": t.spec.depends_on,
                "turns": t.turns,
                "error": t.error,
            })
        })
        .collect();
    let agents: serde_json::Map<String, serde_json::Value> = state
        .per_agent
        .iter()
        .map(|(name, c)| (name.clone(), counters_json(c, None)))
        .collect();
    json!({
        "id": summary.id,
        "swarm": summary.swarm,
        "status": summary.status.as_str(),
        "end_reason": state.end_reason,
        "goal": summary.goal,
        "created": format_utc(summary.created_ms),
        "runs": state.runs,
        "run_history": state.run_history.iter().map(|r| json!({
            "started": format_utc(r.started_at_ms),
            "provider": r.provider,
            "model": r.model,
            "base_url": r.base_url,
            "status": r.status.map(|s| s.as_str()),
        })).collect::<Vec<_>>(),
        "runner_pid": summary.runner_pid,
        "continued_from": restored.plan.continues_from.as_ref().map(|c| &c.session),
        "tasks": tasks,
        "metrics": counters_json(&state.totals, Some(state.elapsed_ms())),
        "wall_span_s": state.wall_span_ms() as f64 / 1000.0,
        "agents": agents,
        "health": budget::health(state, &restored.plan.budget),
    })
}

fn counters_json(c: &Counters, elapsed_ms: Option<u64>) -> serde_json::Value {
    let mut value = json!({
        "llm_calls": c.llm_calls,
        "failed_calls": c.failed_calls,
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "cache_write_tokens": c.cache_write_tokens,
        "cache_read_tokens": c.cache_read_tokens,
        "usd": c.usd,
        "usd_saved": c.usd_saved,
        "retries": c.retries,
        "tool_calls": c.tool_calls,
        "llm_s": c.llm_ms as f64 / 1000.0,
        "tasks_done": c.tasks_done,
        "tasks_failed": c.tasks_failed,
    });
    if let (Some(ms), Some(map)) = (elapsed_ms, value.as_object_mut()) {
        map.insert("elapsed_s".into(), json!(ms as f64 / 1000.0));
    }
    value
}

fn show_text(summary: &SessionSummary, restored: &Restored) {
    let state = &restored.state;
    println!("session  {}", summary.id);
    println!("swarm    {}", summary.swarm);
    if let Some(goal) = &summary.goal {
        println!("goal     {goal}");
    }
    if let Some(earlier) = &restored.plan.continues_from {
        println!("continues {}", earlier.session);
    }
    match &state.end_reason {
        Some(reason) => println!("status   {} ({reason})", summary.status.as_str()),
        None => println!("status   {}", summary.status.as_str()),
    }
    if let Some(pid) = summary.runner_pid {
        println!("runner   pid {pid}");
    }
    println!("created  {} UTC", format_utc(summary.created_ms));
    println!(
        "elapsed  {:.1} s active over {} run(s), wall-clock span {:.1} s",
        state.elapsed_ms() as f64 / 1000.0,
        state.runs,
        state.wall_span_ms() as f64 / 1000.0
    );
    for (n, run) in state.run_history.iter().enumerate() {
        let end = run.status.map_or("no end recorded", |s| s.as_str());
        println!(
            "run {:<4} {} UTC  {}; {end}",
            n + 1,
            format_utc(run.started_at_ms),
            run.describe()
        );
    }
    let health = budget::health(state, &restored.plan.budget);
    if health.is_empty() {
        println!("budget   none configured");
    } else {
        println!("budget");
        for h in &health {
            println!(
                "  {} {:<10} {}",
                h.level.emoji(),
                h.resource.as_str(),
                h.describe()
            );
        }
    }
    println!("agents");
    let rows: Vec<Vec<String>> = state
        .per_agent
        .iter()
        .map(|(n, c)| (n.as_str(), c))
        .chain(std::iter::once(("total", &state.totals)))
        .map(|(name, c)| {
            vec![
                name.to_string(),
                c.llm_calls.to_string(),
                c.tokens_in.to_string(),
                c.tokens_out.to_string(),
                format!("{:.4}", c.usd),
                format!("{:.1}", c.llm_ms as f64 / 1000.0),
                c.retries.to_string(),
                c.failed_calls.to_string(),
                c.tasks_done.to_string(),
                c.tasks_failed.to_string(),
            ]
        })
        .collect();
    let mut align = vec![Align::Right; 10];
    align[0] = Align::Left;
    print!(
        "{}",
        table::render(
            "  ",
            &[
                "NAME",
                "CALLS",
                "TOK IN",
                "TOK OUT",
                "USD",
                "LLM S",
                "RETRIES",
                "FAILED CALLS",
                "TASKS DONE",
                "TASKS FAILED"
            ],
            &align,
            &rows
        )
    );
    println!("tasks");
    let rows: Vec<Vec<String>> = state
        .tasks_in_order()
        .map(|t| {
            vec![
                t.spec.id.clone(),
                t.spec.role.clone(),
                t.status.as_str().to_string(),
                t.agent.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render("  ", &["TASK", "ROLE", "STATUS", "AGENT"], &[], &rows)
    );
}

/// Writes the HTML report to `file` (`-`: stdout; none: the state dir's reports folder).
fn html_report(root: &Path, session: &str, file: Option<&Path>) -> Result<u8> {
    let dir = StateDir::open_read_only(root)?;
    let id = dir.resolve(session)?;
    let restored = dir.load(&id)?;
    let (state, events) = history::read_all(&dir, &id)?;
    let page = html::render(&restored.plan, &state, &events);
    let path = match file {
        Some(file) if file.as_os_str() == "-" => {
            print!("{page}");
            return Ok(super::exit::OK);
        }
        Some(file) => file.to_path_buf(),
        None => dir.reports_dir().join(format!("{id}.html")),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(super::exit::OK)
}
