//! `swarm run` and `swarm resume`: load or restore the session, pick the provider, show progress
//! on stderr (or events as JSON lines on stdout), print the summary, exit with the contract's code.

use super::progress::Display;
use super::{exit, ResumeArgs, RunArgs};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use swarm_runtime::llm::{self, Overrides, ProviderConfig};
use swarm_runtime::runtime::{PreparedRun, RunOptions, RunReport, StopReason, SwarmContext};
use swarm_runtime::session::SessionStatus;
use swarm_runtime::spec::{self, LoadOptions, ProviderKind, SwarmPlan};

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let options = LoadOptions {
        roles_dir: args.roles_dir.clone(),
    };
    let mut plan = match super::print_loaded(spec::load_swarm(&args.swarm, &options)) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    if let Some(max_agents) = args.max_agents {
        anyhow::ensure!(max_agents >= 1, "--max-agents must be at least 1");
        plan.max_agents = max_agents;
    }
    if let Some(workspace) = args.workspace {
        plan.workspace = workspace;
    }
    // Resume may start from another folder: keep the workspace as an absolute path.
    plan.workspace = cwd.join(&plan.workspace);
    let provider = match &args.provider {
        Some(name) => Some(name.parse::<ProviderKind>().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let overrides = Overrides {
        provider,
        model: args.model.clone(),
        base_url: args.base_url.clone(),
    };
    let config = resolve_provider(&plan, &overrides)?;
    // The session keeps the provider it started with, so `resume` calls the same one.
    plan.llm.provider = Some(config.kind);
    plan.llm.model = Some(config.model.clone());
    plan.llm.base_url = Some(config.base_url.clone()).filter(|u| !u.is_empty());

    let runtime = tokio_runtime()?;
    let _guard = runtime.enter();
    let prepared = PreparedRun::new_session(
        plan,
        args.goal.clone(),
        RunOptions {
            state_dir: args.state.state_dir.clone(),
            provider: config,
            journal: !args.no_journal,
            hooks_dir: cwd,
        },
    )?;
    runtime.block_on(drive(prepared, args.json, &args.state.state_dir))
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let runtime = tokio_runtime()?;
    let _guard = runtime.enter();
    let prepared = PreparedRun::resume(
        &args.session,
        args.extend_budget,
        args.state.state_dir.clone(),
        true,
        cwd,
        |plan| {
            warn_if_changed(plan);
            resolve_provider(plan, &Overrides::default()).map_err(|e| format!("{e:#}"))
        },
    )?;
    runtime.block_on(drive(prepared, args.json, &args.state.state_dir))
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn resolve_provider(plan: &SwarmPlan, overrides: &Overrides) -> anyhow::Result<ProviderConfig> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let resolved = llm::resolve(&plan.llm, overrides, &env)?;
    eprintln!("{}", resolved.reason);
    Ok(resolved.config)
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
    let report = prepared.execute().await?;
    display.finish().await;
    if !json {
        print!("{}", super::summary::render(&ctx, &report, state_dir));
    }
    if let Some(path) = &report.handoff {
        eprintln!("handoff report: {}", path.display());
    }
    Ok(exit_code(&report))
}

fn exit_code(report: &RunReport) -> u8 {
    match report.end.status {
        SessionStatus::Completed => exit::OK,
        SessionStatus::Failed => exit::FAILED,
        SessionStatus::BudgetStopped => exit::BUDGET,
        SessionStatus::Interrupted | SessionStatus::Running => exit::INTERRUPTED,
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
