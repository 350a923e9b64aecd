//! `swarm run` and `swarm resume`: load or restore the session, pick the provider, show progress
//! on stderr (or events as JSON lines on stdout), print the summary, exit with the contract's code.

use super::progress::Display;
use super::{exit, ProviderArgs, ResumeArgs, RunArgs, RunOptionArgs};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use swarm_runtime::runtime::{
    self, PreparedRun, ResolveEnv, ResolvedRun, RunError, RunOptions, RunOverrides, RunReport,
    Start, StopReason, SwarmContext,
};
use swarm_runtime::session::SessionStatus;
use swarm_runtime::spec::{self, LoadOptions, SwarmPlan};
use swarm_runtime::tools::mcp::{load_mcp_json, McpError, McpHub};

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let plan = match load_plan(&args.swarm, &args.options) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    warn_missing_goal(&plan, args.goal.as_deref());
    let mut resolved = resolve(plan, Start::New, &args.options.overrides(), &cwd)?;
    if let Some(earlier) = &args.continue_from {
        resolved.plan.continues_from = Some(continuation(&args.state.state_dir, earlier)?);
    }
    if let Err(e) = add_mcp_configs(&mut resolved.plan, &args.mcp_config) {
        eprintln!("error: {e}");
        return Ok(exit::USAGE);
    }
    let runtime = tokio_runtime()?;
    let _guard = runtime.enter();
    // Servers start, and roles' MCP tools are checked, before the session exists.
    let mcp = match runtime.block_on(McpHub::start(&resolved.plan, &cwd)) {
        Ok(hub) => Arc::new(hub),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let prepared = PreparedRun::new_session(
        resolved.plan,
        args.goal.clone(),
        RunOptions {
            state_dir: args.state.state_dir.clone(),
            provider: resolved.provider,
            journal: !args.no_journal,
            hooks_dir: cwd,
            mcp: Arc::clone(&mcp),
            lease: args.lease,
        },
    );
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            runtime.block_on(mcp.shutdown());
            return Err(e.into());
        }
    };
    runtime.block_on(drive(prepared, args.json, &args.state.state_dir))
}

/// The handoff of the session `earlier` names, for `--continue-from`.
fn continuation(state_dir: &Path, earlier: &str) -> anyhow::Result<spec::Continuation> {
    let dir = swarm_runtime::session::StateDir::open_read_only(state_dir)?;
    let session = dir.resolve(earlier)?;
    let restored = dir.load(&session)?;
    let handoff = swarm_runtime::session::report::handoff_markdown(
        &restored.plan,
        &restored.state,
        &restored.memory,
        state_dir,
    );
    eprintln!("continues: {session}");
    Ok(spec::Continuation { session, handoff })
}

/// Without --goal, `{goal}` falls back to the swarm's description: say so.
pub fn warn_missing_goal(plan: &SwarmPlan, goal: Option<&str>) {
    if goal.is_none() && plan.tasks.iter().any(|t| t.description.contains("{goal}")) {
        eprintln!(
            "warning: tasks use {{goal}} but no --goal was given; they get the swarm's description instead (\"{}\")",
            plan.description
        );
    }
}

/// Loads and validates the swarm a run names, printing its warnings; on errors, the exit code.
pub fn load_plan(swarm: &Path, options: &RunOptionArgs) -> Result<SwarmPlan, u8> {
    let load = LoadOptions {
        roles_dir: options.roles_dir.clone(),
    };
    super::print_loaded(spec::load_swarm_or_builtin(swarm, &load))
}

impl RunOptionArgs {
    /// The overrides these options ask for.
    pub fn overrides(&self) -> RunOverrides {
        RunOverrides {
            max_agents: self.max_agents,
            workspace: self.workspace.clone(),
            ..self.provider.overrides()
        }
    }
}

impl ProviderArgs {
    pub fn overrides(&self) -> RunOverrides {
        RunOverrides {
            provider: self.provider,
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            ..RunOverrides::default()
        }
    }
}

/// The resolve step with the process environment; prints which provider was chosen and why.
pub fn resolve(
    plan: SwarmPlan,
    start: Start<'_>,
    overrides: &RunOverrides,
    cwd: &Path,
) -> anyhow::Result<ResolvedRun> {
    let env = |name: &str| swarm_runtime::secrets::var(name).filter(|v| !v.is_empty());
    let resolved = runtime::resolve(plan, start, overrides, &ResolveEnv { cwd, env: &env })?;
    eprintln!("{}", resolved.reason);
    for warning in &resolved.warnings {
        eprintln!("{warning}");
    }
    Ok(resolved)
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let runtime = tokio_runtime()?;
    let _guard = runtime.enter();
    let overrides = args.provider.overrides();
    let mut started: Option<Arc<McpHub>> = None;
    let prepared = PreparedRun::resume_leased(
        &args.session,
        args.extend_budget,
        args.state.state_dir.clone(),
        true,
        cwd.clone(),
        args.lease,
        |plan, last_run| {
            warn_if_changed(&plan);
            resolve(plan, Start::Resume(last_run), &overrides, &cwd).map_err(|e| format!("{e:#}"))
        },
        |plan| {
            add_mcp_configs(plan, &args.mcp_config).map_err(|e| e.to_string())?;
            let hub = Arc::new(
                runtime
                    .block_on(McpHub::start(plan, &cwd))
                    .map_err(|e| e.to_string())?,
            );
            started = Some(Arc::clone(&hub));
            Ok(hub)
        },
    );
    if prepared.is_err() {
        if let Some(hub) = started.take() {
            runtime.block_on(hub.shutdown());
        }
    }
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(RunError::BudgetSpent { session }) => {
            eprintln!(
                "error: the session {session} stopped on its budget; resuming it as it is would stop again at once\n  \
                 help: renew the budget from what has been spent so far:\n    {}",
                continue_command(&session)
            );
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    runtime.block_on(drive(prepared, args.json, &args.state.state_dir))
}

/// This very command line, for the session `session`, with `--extend-budget` added.
fn continue_command(session: &str) -> String {
    let mut words: Vec<String> = vec!["swarm".into()];
    let mut args = std::env::args().skip(1).peekable();
    let mut positional_seen = false;
    while let Some(arg) = args.next() {
        if arg == "resume" && words.len() == 1 {
            words.push(arg);
            continue;
        }
        if arg.starts_with("--") {
            let takes_value = !arg.contains('=')
                && [
                    "--provider",
                    "--model",
                    "--base-url",
                    "--state-dir",
                    "--mcp-config",
                ]
                .contains(&arg.as_str());
            words.push(arg);
            if takes_value {
                if let Some(value) = args.next() {
                    words.push(value);
                }
            }
        } else if !positional_seen {
            positional_seen = true;
            words.push(session.to_string());
        } else {
            words.push(arg);
        }
    }
    words.push("--extend-budget".into());
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Adds the servers of `--mcp-config` files to the plan; a server of the same name is replaced.
fn add_mcp_configs(plan: &mut SwarmPlan, files: &[std::path::PathBuf]) -> Result<(), McpError> {
    for file in files {
        for (name, server) in load_mcp_json(file)? {
            plan.mcp_servers.insert(name, server);
        }
    }
    Ok(())
}

/// The runtime a run's agents share: one thread. Agents wait on the network almost all the time
/// (an LLM call is seconds; its CPU is a fraction of a millisecond), and with a worker per core
/// the workers kept waking and parking each other: ten context switches per LLM call, a fifth
/// of the run's CPU. Blocking work (the journal's writer, the state store's leases, the rate
/// budget, PostgreSQL) has its own threads.
fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn warn_if_changed(plan: &SwarmPlan) {
    if let Ok(bytes) = std::fs::read(&plan.source_path) {
        if spec::source_hash(&bytes) != plan.source_hash {
            eprintln!(
                "warning: {} changed since this session started; resuming with the definition the session was started with",
                plan.source_path.display()
            );
        }
    }
}

async fn drive(prepared: PreparedRun, json: bool, state_dir: &Path) -> anyhow::Result<u8> {
    eprintln!("session: {}", prepared.session_id());
    let ctx = prepared.context();
    let display = Display::start(&ctx, prepared.subscribe(), json);
    watch_signals(Arc::clone(&ctx));
    let report = match prepared.execute().await {
        Ok(report) => report,
        Err(e) => {
            // Work had started: this is not bad usage, and not a failure of the tasks.
            display.abort();
            let cause = swarm_runtime::secrets::redact(&e.to_string()).into_owned();
            eprintln!("{}", stopped_by_error(&cause));
            return Ok(exit::ERROR);
        }
    };
    display.finish().await;
    if !json {
        print!("{}", super::summary::render(&ctx, &report, state_dir));
    }
    if let Some(path) = &report.handoff {
        eprintln!("handoff report: {}", path.display());
    }
    Ok(exit_code(&report))
}

/// The one line a run stopped by an error after it started prints (exit 4).
pub fn stopped_by_error(cause: &str) -> String {
    format!("stopped by an error: {cause}; the session is saved; resume when the cause is fixed")
}

fn exit_code(report: &RunReport) -> u8 {
    match report.end.status {
        SessionStatus::Completed => exit::OK,
        SessionStatus::Failed => exit::FAILED,
        SessionStatus::BudgetStopped => exit::BUDGET,
        SessionStatus::Interrupted | SessionStatus::Running | SessionStatus::Queued => {
            exit::INTERRUPTED
        }
    }
}

/// First Ctrl-C / SIGTERM: stop starting work, checkpoint, exit 130. A second one: exit at once.
fn watch_signals(ctx: Arc<SwarmContext>) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for attempt in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if attempt == 0 {
                eprintln!("stopping: no new work starts; writing a checkpoint (press Ctrl-C again to quit at once)");
                ctx.control.stop(StopReason::Interrupted);
            } else {
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
}
