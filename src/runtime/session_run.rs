//! One run of a session, new or resumed: set everything up from the state dir, drive the
//! scheduler with periodic checkpoints and hooks, and close the session cleanly whatever the
//! reason it stops.

use super::context::{LlmPool, StopReason, SwarmContext};
use super::hook_dispatch;
use super::hooks::HookRunner;
use super::recorder::{Observer, Recorder};
use super::resolve::ResolvedRun;
use super::scheduler::{self, RunEnd};
use crate::clock::{self, SharedClock};
use crate::llm::ProviderConfig;
use crate::memory::{MemoryLimits, MemoryStore};
use crate::session::{
    report, Envelope, Event, Journal, RunRecord, SessionError, SessionLock, SessionState,
    SessionStatus, StateDir, TaskStatus,
};
use crate::spec::{HookEvent, SwarmPlan};
use crate::tools::mcp::McpHub;
use crate::tools::workspace::Workspace;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the workspace {path} cannot be used: {reason}")]
    Workspace { path: PathBuf, reason: String },
    #[error("the session {session} has nothing left to do: it {status}")]
    NothingToResume { session: String, status: String },
    /// The first run of a session that has already run.
    #[error("the session {session} has already started: resume it instead")]
    AlreadyStarted { session: String },
    #[error("{0}")]
    Provider(String),
    /// Resuming would stop again at once: the budget is still spent.
    #[error("the session {session} stopped on its budget; resuming it without --extend-budget would stop again at once")]
    BudgetSpent { session: String },
    #[error("{0}")]
    Mcp(String),
    #[error(transparent)]
    Sandbox(#[from] crate::tools::sandbox::SandboxUnavailable),
    #[error("the handoff report {path} could not be written: {reason}")]
    Report { path: PathBuf, reason: String },
    /// The state store failed after the run started: it stopped where its last commit left it.
    #[error(transparent)]
    StoreFailed(SessionError),
}

/// How often expired memory entries are swept.
const MEMORY_SWEEP: Duration = Duration::from_secs(10);

/// A session ready to run: the state dir is locked, the journal open, nothing started yet.
pub struct PreparedRun {
    ctx: Arc<SwarmContext>,
    state_dir: StateDir,
    state_dir_path: PathBuf,
    lock: SessionLock,
    opening: Opening,
}

/// The events a run starts with.
enum Opening {
    /// Already in the state dir, written with the session (or not journaled at all).
    Committed(Vec<Envelope>),
    /// Still to be journaled.
    ToEmit(Vec<Event>),
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    pub session: String,
    pub end: RunEnd,
    /// The handoff report, written when the run stopped before its work was done.
    pub handoff: Option<PathBuf>,
    pub state: SessionState,
}

/// Options common to new and resumed runs.
pub struct RunOptions {
    pub state_dir: PathBuf,
    pub provider: ProviderConfig,
    /// Journal events to the state dir (off only to measure what durability costs).
    pub journal: bool,
    /// Where hooks run.
    pub hooks_dir: PathBuf,
    /// The MCP servers, already started; the run shuts them down when it ends.
    pub mcp: Arc<McpHub>,
    /// How long the run's lease lasts unless renewed (`None`: the store's default).
    pub lease: Option<std::time::Duration>,
}

impl PreparedRun {
    /// A new session of `plan`.
    pub fn new_session(
        plan: SwarmPlan,
        goal: Option<String>,
        options: RunOptions,
    ) -> Result<Self, RunError> {
        let mut state_dir = StateDir::open(&options.state_dir)?;
        if let Some(ttl) = options.lease {
            state_dir.set_lease(ttl);
        }
        let clock = clock::system();
        let now = clock.now_ms();
        // The session row, its lock and its opening events commit together; `execute` then only
        // applies and broadcasts them.
        let (session, lock, opening) = state_dir.create_locked_session(
            &plan,
            goal.as_deref(),
            options.journal,
            |session| opening_events(session, &plan, goal.as_deref(), &options.provider, now),
        )?;
        let memory = MemoryStore::new(Arc::clone(&clock), MemoryLimits::default());
        memory.set_default_ttl(&plan.memory.namespace, plan.memory.ttl);
        share_project_memory(&memory, &plan, &options.state_dir)?;
        Self::assemble(
            plan,
            session,
            goal,
            SessionState::default(),
            memory,
            state_dir,
            lock,
            Opening::Committed(opening),
            options,
            clock,
        )
    }

    /// Takes up an existing session where it stopped: a new run of it. `resolve` turns the plan
    /// the session was stored with and its last run into the plan and provider this run uses
    /// (see [`super::resolve`]). A budget-stopped session is refused unless `extend_budget`.
    pub fn resume(
        session: &str,
        extend_budget: bool,
        state_dir_path: PathBuf,
        journal: bool,
        hooks_dir: PathBuf,
        resolve: impl FnOnce(SwarmPlan, Option<&RunRecord>) -> Result<ResolvedRun, String>,
        mcp: impl FnOnce(&mut SwarmPlan) -> Result<Arc<McpHub>, String>,
    ) -> Result<Self, RunError> {
        Self::resume_leased(
            session,
            extend_budget,
            state_dir_path,
            journal,
            hooks_dir,
            None,
            resolve,
            mcp,
        )
    }

    /// [`Self::resume`] under a lease of `lease` (`None`: the store's default).
    #[allow(clippy::too_many_arguments)]
    pub fn resume_leased(
        session: &str,
        extend_budget: bool,
        state_dir_path: PathBuf,
        journal: bool,
        hooks_dir: PathBuf,
        lease: Option<std::time::Duration>,
        resolve: impl FnOnce(SwarmPlan, Option<&RunRecord>) -> Result<ResolvedRun, String>,
        mcp: impl FnOnce(&mut SwarmPlan) -> Result<Arc<McpHub>, String>,
    ) -> Result<Self, RunError> {
        let mut state_dir = StateDir::open_existing(&state_dir_path)?;
        if let Some(ttl) = lease {
            state_dir.set_lease(ttl);
        }
        let session = state_dir.resolve(session)?;
        let lock = state_dir.lock(&session)?;
        Self::take_up(
            state_dir,
            session,
            lock,
            extend_budget,
            state_dir_path,
            journal,
            hooks_dir,
            resolve,
            mcp,
        )
    }

    /// Runs a session this process already holds the lease of (a worker's claim): a queued run
    /// starts from its plan and goal, a run taken over from another runner resumes from its
    /// journal.
    #[allow(clippy::too_many_arguments)]
    pub fn take_up(
        state_dir: StateDir,
        session: String,
        lock: SessionLock,
        extend_budget: bool,
        state_dir_path: PathBuf,
        journal: bool,
        hooks_dir: PathBuf,
        resolve: impl FnOnce(SwarmPlan, Option<&RunRecord>) -> Result<ResolvedRun, String>,
        mcp: impl FnOnce(&mut SwarmPlan) -> Result<Arc<McpHub>, String>,
    ) -> Result<Self, RunError> {
        let restored = state_dir.load(&session)?;
        // Not started yet: memory written from outside before its first run is all it has.
        if restored.state.session.is_empty() {
            return Self::start_queued(
                state_dir,
                session,
                lock,
                restored.plan,
                restored.memory,
                None,
                state_dir_path,
                hooks_dir,
                resolve,
                mcp,
            );
        }
        match restored.state.status {
            Some(status @ SessionStatus::Completed) => {
                return Err(RunError::NothingToResume {
                    session,
                    status: format!("is {}", status.as_str()),
                })
            }
            Some(SessionStatus::BudgetStopped) if !extend_budget => {
                return Err(RunError::BudgetSpent { session });
            }
            _ => {}
        }
        let crate::session::Restored {
            plan,
            state,
            memory: records,
            ..
        } = restored;
        let resolved = resolve(plan, state.run_history.last()).map_err(RunError::Provider)?;
        let mut plan = resolved.plan;
        let mcp = mcp(&mut plan).map_err(RunError::Mcp)?;
        let options = RunOptions {
            provider: resolved.provider,
            state_dir: state_dir_path,
            journal,
            hooks_dir,
            mcp,
            lease: None,
        };
        let clock = clock::system();
        let memory = MemoryStore::new(Arc::clone(&clock), MemoryLimits::default());
        memory.set_default_ttl(&plan.memory.namespace, plan.memory.ttl);
        share_project_memory(&memory, &plan, &options.state_dir)?;
        memory.restore(records);
        let now = clock.now_ms();
        let mut opening = vec![Event::SessionResumed {
            provider: options.provider.kind.as_str().to_string(),
            model: options.provider.model.clone(),
            base_url: options.provider.base_url.clone(),
            at_ms: now,
        }];
        // A failed session is resumed by giving its failed tasks another chance.
        for task in state.tasks_in_order() {
            if task.status == TaskStatus::Failed {
                opening.push(Event::TaskRetried {
                    task: task.spec.id.clone(),
                    at_ms: now,
                });
            }
        }
        if extend_budget {
            opening.push(Event::BudgetExtended {
                base: state.spend(),
                at_ms: now,
            });
        }
        let goal = state.goal.clone();
        Self::assemble(
            plan,
            session,
            goal,
            state,
            memory,
            state_dir,
            lock,
            Opening::ToEmit(opening),
            options,
            clock,
        )
    }

    /// The first run of a session created without running it ([`StateDir::create_session`]),
    /// with `goal` as its goal (the goal stored with the session when `None`). A session that has
    /// already started is refused: it is resumed instead.
    pub fn start_created(
        session: &str,
        goal: Option<String>,
        state_dir_path: PathBuf,
        hooks_dir: PathBuf,
        resolve: impl FnOnce(SwarmPlan, Option<&RunRecord>) -> Result<ResolvedRun, String>,
        mcp: impl FnOnce(&mut SwarmPlan) -> Result<Arc<McpHub>, String>,
    ) -> Result<Self, RunError> {
        let state_dir = StateDir::open_existing(&state_dir_path)?;
        let session = state_dir.resolve(session)?;
        let lock = state_dir.lock(&session)?;
        let restored = state_dir.load(&session)?;
        if !restored.state.session.is_empty() {
            return Err(RunError::AlreadyStarted { session });
        }
        Self::start_queued(
            state_dir,
            session,
            lock,
            restored.plan,
            restored.memory,
            goal,
            state_dir_path,
            hooks_dir,
            resolve,
            mcp,
        )
    }

    /// The first run of a queued session: its opening events, then the work.
    #[allow(clippy::too_many_arguments)]
    fn start_queued(
        state_dir: StateDir,
        session: String,
        lock: SessionLock,
        plan: SwarmPlan,
        records: crate::memory::MemoryImage,
        goal: Option<String>,
        state_dir_path: PathBuf,
        hooks_dir: PathBuf,
        resolve: impl FnOnce(SwarmPlan, Option<&RunRecord>) -> Result<ResolvedRun, String>,
        mcp: impl FnOnce(&mut SwarmPlan) -> Result<Arc<McpHub>, String>,
    ) -> Result<Self, RunError> {
        let goal = match goal {
            Some(goal) => Some(goal),
            None => state_dir.summary(&session)?.goal,
        };
        let resolved = resolve(plan, None).map_err(RunError::Provider)?;
        let mut plan = resolved.plan;
        let mcp = mcp(&mut plan).map_err(RunError::Mcp)?;
        let options = RunOptions {
            provider: resolved.provider,
            state_dir: state_dir_path,
            journal: true,
            hooks_dir,
            mcp,
            lease: None,
        };
        let clock = clock::system();
        let now = clock.now_ms();
        let opening = opening_events(&session, &plan, goal.as_deref(), &options.provider, now);
        let memory = MemoryStore::new(Arc::clone(&clock), MemoryLimits::default());
        memory.set_default_ttl(&plan.memory.namespace, plan.memory.ttl);
        share_project_memory(&memory, &plan, &options.state_dir)?;
        memory.restore(records);
        Self::assemble(
            plan,
            session,
            goal,
            SessionState::default(),
            memory,
            state_dir,
            lock,
            Opening::ToEmit(opening),
            options,
            clock,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        plan: SwarmPlan,
        session: String,
        goal: Option<String>,
        state: SessionState,
        memory: MemoryStore,
        state_dir: StateDir,
        lock: SessionLock,
        opening: Opening,
        options: RunOptions,
        clock: SharedClock,
    ) -> Result<Self, RunError> {
        let workspace_path = plan.session_workspace(&session);
        let workspace = Workspace::open(&workspace_path).map_err(|e| RunError::Workspace {
            path: workspace_path.clone(),
            reason: e.to_string(),
        })?;
        let sandbox = if plan.sandbox && plan.allow_commands {
            let sandbox = crate::tools::sandbox::Sandbox::new(workspace.root())?;
            eprintln!(
                "sandbox: commands may write only in {} and /tmp (Landlock ABI {})",
                workspace.root().display(),
                sandbox.abi()
            );
            Some(Arc::new(sandbox))
        } else {
            None
        };
        let journal = if options.journal {
            state_dir.open_journal(&session, &lock)?
        } else {
            Journal::disabled()
        };
        let recorder = Recorder::new(state, journal);
        memory.set_sink(recorder.memory_sink());
        let hooks = HookRunner::new(&plan.hooks, &options.hooks_dir);
        let llm = LlmPool::with_aliases(options.provider, plan.llm.model_aliases.clone())
            .with_budget(state_dir.rate_budget());
        let ctx = Arc::new(SwarmContext::new(
            Arc::new(plan),
            session,
            goal,
            recorder,
            memory,
            workspace,
            sandbox,
            options.mcp,
            llm,
            hooks,
            clock,
        ));
        Ok(Self {
            ctx,
            state_dir,
            state_dir_path: options.state_dir,
            lock,
            opening,
        })
    }

    pub fn session_id(&self) -> &str {
        &self.ctx.session_id
    }

    /// The shared context, e.g. to stop the run from a signal handler.
    pub fn context(&self) -> Arc<SwarmContext> {
        Arc::clone(&self.ctx)
    }

    /// Every event of the run from its first, for progress display or `--json`.
    pub fn subscribe(&self) -> Observer {
        self.ctx.recorder.subscribe()
    }

    /// Runs the session until its work is done or it is stopped, then closes it. The MCP
    /// servers are shut down however it ends.
    pub async fn execute(self) -> Result<RunReport, RunError> {
        let mcp = Arc::clone(&self.ctx.mcp);
        let result = self.execute_inner().await;
        mcp.shutdown().await;
        result
    }

    async fn execute_inner(self) -> Result<RunReport, RunError> {
        let ctx = self.ctx;
        let hook_events = ctx.recorder.subscribe();
        match self.opening {
            Opening::Committed(events) => {
                for event in events {
                    ctx.recorder.publish_committed(event);
                }
            }
            Opening::ToEmit(events) => {
                let mut last_ack = None;
                for event in events {
                    last_ack = Some(ctx.recorder.emit(event));
                }
                if let Some(ack) = last_ack {
                    ack.await?;
                }
            }
        }
        // A journaled SessionStarted or SessionResumed has set the stored status already.
        let journaled = ctx.recorder.journal().is_enabled();
        if !journaled {
            self.state_dir
                .set_status(&ctx.session_id, SessionStatus::Running)?;
        }
        let hook_task = hook_dispatch::spawn(Arc::clone(&ctx), hook_events);
        hook_dispatch::fire_session(&ctx, HookEvent::SessionStart, "running").await;
        let sweeper = ctx.memory.spawn_sweeper(MEMORY_SWEEP);
        let background = tokio::spawn(background_duties(Arc::clone(&ctx)));
        // A runner whose lease was taken over stops: its journal refuses every write anyway.
        let lost = self.lock.lost();
        let lease_watch = tokio::spawn({
            let ctx = Arc::clone(&ctx);
            async move {
                lost.wait().await;
                ctx.control.stop(StopReason::Interrupted);
            }
        });

        // A failed commit nobody awaits (a checkpoint, a memory change) stops the run too.
        let store_watch = tokio::spawn({
            let ctx = Arc::clone(&ctx);
            async move {
                ctx.recorder.journal().failed().await;
                ctx.store_failed();
            }
        });

        let end = scheduler::drive(Arc::clone(&ctx)).await;

        background.abort();
        sweeper.abort();
        lease_watch.abort();
        store_watch.abort();
        if let Some(error) = ctx.recorder.journal().failure() {
            // Nothing more can be recorded: no end event, snapshot or report. The session is
            // what its last commit says, and a resume continues from there.
            hook_task.abort();
            ctx.recorder.journal().clone().close().await;
            self.lock.abandon();
            return Err(RunError::StoreFailed(error));
        }
        ctx.recorder
            .emit(Event::SessionEnded {
                status: end.status,
                reason: end.reason.clone(),
                at_ms: ctx.now_ms(),
            })
            .await?;
        let _ = hook_task.await;
        hook_dispatch::fire_session(&ctx, HookEvent::SessionEnd, end.status.as_str()).await;
        // Nothing is emitted any more: the state moves into the last snapshot, and on to the
        // report.
        let state = ctx.recorder.checkpoint_final(&ctx.memory).await?;
        // A journaled SessionEnded has set the stored status already.
        if !journaled {
            self.state_dir.set_status(&ctx.session_id, end.status)?;
        }
        let handoff = match end.status {
            SessionStatus::Interrupted | SessionStatus::BudgetStopped => Some(write_handoff(
                &self.state_dir_path,
                &ctx.plan,
                &state,
                &ctx.memory,
            )?),
            _ => None,
        };
        ctx.recorder.journal().clone().close().await;
        drop(self.lock);
        Ok(RunReport {
            session: ctx.session_id.clone(),
            end,
            handoff,
            state,
        })
    }
}

/// Periodic snapshots and pick-up of `swarm memory` changes made while the swarm runs.
async fn background_duties(ctx: Arc<SwarmContext>) {
    let mut checkpoint = tokio::time::interval(ctx.plan.checkpoint.interval);
    checkpoint.tick().await;
    let journal = ctx.recorder.journal().clone();
    // One wait kept across iterations: a fresh one per iteration would restart its timer on
    // every checkpoint. Polls and checkpoints take turns, so a snapshot never claims external
    // events whose changes its memory dump missed.
    let changed = journal.external_changed();
    tokio::pin!(changed);
    loop {
        tokio::select! {
            _ = checkpoint.tick() => {
                match ctx.recorder.checkpoint(&ctx.memory).await {
                    Ok(()) => drop(ctx.recorder.emit(Event::Checkpoint { at_ms: ctx.now_ms() })),
                    // A failed store is said once, when the run stops.
                    Err(_) if ctx.store_failed() => return,
                    Err(e) => eprintln!("checkpoint failed: {e}"),
                }
            }
            () = &mut changed => {
                if let Ok(events) = journal.poll_external() {
                    for event in events {
                        if let Event::MemoryChanged { change } = event {
                            ctx.memory.apply(&change);
                        }
                    }
                }
                changed.set(journal.external_changed());
            }
        }
    }
}

/// Writes the handoff report next to the sessions and returns its path.
pub fn write_handoff(
    state_dir: &Path,
    plan: &SwarmPlan,
    state: &SessionState,
    memory: &MemoryStore,
) -> Result<PathBuf, RunError> {
    let text = report::handoff_markdown(plan, state, &memory.dump(), state_dir);
    let dir = crate::session::reports_dir(state_dir);
    let path = dir.join(format!("{}-handoff.md", state.session));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| RunError::Report {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok(path)
}

/// Connects the namespaces the swarm file lists under `memory.project` to the project memory of
/// the state dir, through a connection of their own.
/// The events a new session starts with: its start, and the tasks its topology begins with.
fn opening_events(
    session: &str,
    plan: &SwarmPlan,
    goal: Option<&str>,
    provider: &ProviderConfig,
    now: u64,
) -> Vec<Event> {
    let mut opening = vec![Event::SessionStarted {
        session: session.to_string(),
        swarm: plan.name.clone(),
        goal: goal.map(str::to_string),
        provider: provider.kind.as_str().to_string(),
        model: provider.model.clone(),
        base_url: provider.base_url.clone(),
        at_ms: now,
    }];
    opening.extend(super::topology::initial_tasks(plan, goal, now));
    opening
}

fn share_project_memory(
    memory: &MemoryStore,
    plan: &SwarmPlan,
    state_dir: &std::path::Path,
) -> Result<(), RunError> {
    if plan.memory.project.is_empty() {
        return Ok(());
    }
    for ns in &plan.memory.project {
        memory.set_default_ttl(ns, plan.memory.ttl);
    }
    let project = StateDir::open_existing(state_dir)?;
    memory.share_with_project(Arc::new(project), plan.memory.project.clone());
    Ok(())
}
