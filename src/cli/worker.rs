//! `swarm submit` and `swarm worker`: a run queue in a PostgreSQL state store. Submit stores a
//! run for later; workers take queued runs and runs whose runner died or lost its lease, run up
//! to `--max-runs` at once under leases they renew, and resume a taken-over run from its journal.
//! API keys come from each worker's environment, never from the queue.

use super::{exit, SubmitArgs, WorkerArgs};
use anyhow::{bail, Context};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use swarm_runtime::runtime::{PreparedRun, Start, StopReason, SwarmContext};
use swarm_runtime::session::{SessionStatus, StateDir};

pub fn submit(args: SubmitArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let plan = match super::run::load_plan(&args.swarm, &args.options) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    let resolved = super::run::resolve(plan, Start::New, &args.options.overrides(), &cwd)?;
    let store = StateDir::open(&args.state.state_dir)?;
    let Some(queue) = store.queue() else {
        bail!(
            "{} is a state dir folder: submit needs a shared state store (--state-dir postgres://...)",
            args.state.state_dir.display()
        );
    };
    let id = queue.enqueue(&resolved.plan, args.goal.as_deref())?;
    println!("{id}");
    Ok(exit::OK)
}

pub fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    let location = args.state.state_dir.clone();
    let mut store = StateDir::open(&location)?;
    store.set_lease(args.lease);
    if store.queue().is_none() {
        bail!(
            "{} is a state dir folder: a worker needs a shared state store (--state-dir postgres://...)",
            location.display()
        );
    }
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(work(Arc::new(store), args, cwd))
}

/// How often an idle worker looks for runs (and for leases that expired).
fn idle_poll(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

async fn work(
    store: Arc<StateDir>,
    args: WorkerArgs,
    cwd: std::path::PathBuf,
) -> anyhow::Result<u8> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    let mut runs: tokio::task::JoinSet<(String, anyhow::Result<SessionStatus>)> =
        tokio::task::JoinSet::new();
    let running: Arc<parking_lot::Mutex<Vec<Arc<SwarmContext>>>> = Arc::default();
    let mut stopping = false;
    loop {
        while !stopping && runs.len() < args.max_runs.max(1) {
            let claimer = Arc::clone(&store);
            let claimed = tokio::task::spawn_blocking(move || match claimer.queue() {
                Some(queue) => queue.claim(),
                None => Ok(None),
            })
            .await
            .context("the claim task stopped")?;
            let claimed = match claimed {
                Ok(Some(claimed)) => claimed,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("worker: cannot take runs: {e}");
                    break;
                }
            };
            let kind = if claimed.fresh {
                "starting"
            } else {
                "taking over"
            };
            eprintln!("worker: {kind} session {}", claimed.session);
            let location = args.state.state_dir.clone();
            let (cwd, lease) = (cwd.clone(), args.lease);
            let running = Arc::clone(&running);
            runs.spawn(async move {
                let session = claimed.session.clone();
                let result = run_one(claimed, &location, lease, cwd, running).await;
                (session, result)
            });
        }
        if stopping && runs.is_empty() {
            return Ok(exit::INTERRUPTED);
        }
        if args.until_idle && runs.is_empty() {
            let checker = Arc::clone(&store);
            let busy = tokio::task::spawn_blocking(move || {
                checker.queue().map_or(Ok(false), |queue| queue.has_work())
            })
            .await
            .context("the idle check stopped")??;
            if !busy {
                return Ok(exit::OK);
            }
        }
        tokio::select! {
            Some(done) = runs.join_next(), if !runs.is_empty() => {
                if let Ok((session, result)) = done {
                    match result {
                        Ok(status) => eprintln!("worker: session {session}: {}", status.as_str()),
                        Err(e) => eprintln!("worker: session {session} stopped: {e:#}"),
                    }
                }
            }
            _ = term.recv() => {
                eprintln!("worker: stopping: no new runs; interrupting the runs in progress (resumable)");
                stopping = true;
                for ctx in running.lock().iter() {
                    ctx.control.stop(StopReason::Interrupted);
                }
            }
            () = tokio::time::sleep(idle_poll(args.lease)) => {}
        }
    }
}

/// Runs one claimed session to its end (or until the worker stops it).
async fn run_one(
    claimed: swarm_runtime::session::Claimed,
    location: &Path,
    lease: Duration,
    cwd: std::path::PathBuf,
    running: Arc<parking_lot::Mutex<Vec<Arc<SwarmContext>>>>,
) -> anyhow::Result<SessionStatus> {
    let claimed_session = claimed.session.clone();
    let mut store = StateDir::open_existing(location)?;
    store.set_lease(lease);
    let prepared = PreparedRun::take_up(
        store,
        claimed.session.clone(),
        claimed.lease,
        false,
        location.to_path_buf(),
        true,
        cwd.clone(),
        |plan, last_run| {
            let start = match last_run {
                Some(run) => Start::Resume(Some(run)),
                None => Start::New,
            };
            super::run::resolve(plan, start, &Default::default(), &cwd)
                .map_err(|e| format!("{e:#}"))
        },
        |plan| {
            // The take-up is synchronous inside this async worker: start the servers on this
            // thread without blocking the runtime's other tasks.
            let handle = tokio::runtime::Handle::current();
            if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                return Err("MCP servers need the multi-threaded runtime".into());
            }
            let hub = tokio::task::block_in_place(|| {
                handle.block_on(swarm_runtime::tools::mcp::McpHub::start(plan, &cwd))
            })
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(hub))
        },
    )?;
    let ctx = prepared.context();
    running.lock().push(Arc::clone(&ctx));
    let result = prepared.execute().await;
    running.lock().retain(|c| !Arc::ptr_eq(c, &ctx));
    let status = result?.end.status;
    if status == SessionStatus::Interrupted {
        // A queued run stays the queue's: the next worker resumes it where this one stopped.
        let store = StateDir::open_existing(location)?;
        if let Some(queue) = store.queue() {
            let session = claimed_session;
            tokio::task::block_in_place(|| queue.requeue(&session))?;
        }
    }
    Ok(status)
}
