//! The scheduler over the task graph: a task starts as soon as its dependencies are done and an
//! agent of its role is free, never more than `max_agents` at once. A failed task fails the tasks
//! that depend on it (but for the coordinator's synthesis, which reports on failures too). The
//! run ends when nothing can progress.

use super::agent::{work_on, TaskEnd};
use super::context::{StopReason, SwarmContext};
use super::roster::AgentInfo;
use super::{PLAN_TASK, RUNTIME_AUTHOR, SYNTHESIS_TASK};
use crate::session::{Event, SessionState, SessionStatus, TaskStatus};
use crate::spec::{TaskSpec, Topology};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::JoinSet;

/// How a run ended and why, in a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub status: SessionStatus,
    pub reason: String,
}

/// Runs tasks until all are done or failed, or the run is stopped.
pub async fn drive(ctx: Arc<SwarmContext>) -> RunEnd {
    let max_agents = ctx.plan.max_agents.max(1) as usize;
    let mut running: JoinSet<TaskEnd> = JoinSet::new();
    let mut assigned: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
    let mut busy: HashSet<String> = HashSet::new();
    // Tasks handed to an agent that has not yet recorded TaskStarted still look pending.
    let mut handed_out: HashSet<String> = HashSet::new();
    loop {
        ensure_synthesis(&ctx);
        fail_blocked(&ctx);
        if ctx.control.stopped().is_none() {
            let capacity = max_agents.saturating_sub(busy.len());
            for (task, agent) in pick_ready(&ctx, &busy, &handed_out, capacity) {
                busy.insert(agent.id.clone());
                handed_out.insert(task.clone());
                let handle = running.spawn(work_on(Arc::clone(&ctx), task.clone(), agent.clone()));
                assigned.insert(handle.id(), (task, agent.id));
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                let id = match &joined { Ok((id, _)) => *id, Err(e) => e.id() };
                if let Some((task, agent)) = assigned.remove(&id) {
                    busy.remove(&agent);
                    handed_out.remove(&task);
                    if let Err(e) = joined {
                        // A panicking agent fails its task, never the run.
                        let error = if e.is_panic() { "the agent crashed (a bug in swarm-runtime)" } else { "the agent was cancelled" };
                        drop(ctx.recorder.emit(Event::TaskFailed {
                            task, agent: Some(agent), error: error.to_string(), at_ms: ctx.now_ms(),
                        }));
                    }
                }
            }
            _ = ctx.woken() => {}
            _ = ctx.control.wait_stop(), if ctx.control.stopped().is_none() => {}
        }
    }
    unschedulable(&ctx);
    outcome(&ctx)
}

/// Ready tasks paired with free agents, at most `capacity` of them, in creation order.
fn pick_ready(
    ctx: &SwarmContext,
    busy: &HashSet<String>,
    handed_out: &HashSet<String>,
    capacity: usize,
) -> Vec<(String, AgentInfo)> {
    if capacity == 0 {
        return Vec::new();
    }
    let mut taken: HashSet<&str> = busy.iter().map(String::as_str).collect();
    let mut picked = Vec::new();
    let ready: Vec<(String, String, Option<String>, bool)> = ctx.recorder.read(|s| {
        s.tasks_in_order()
            .filter(|t| {
                t.status == TaskStatus::Pending
                    && !handed_out.contains(&t.spec.id)
                    && deps_allow_start(s, &t.spec, is_synthesis(t))
            })
            .map(|t| {
                let coordinator_task = t.created_by.as_deref() == Some(RUNTIME_AUTHOR);
                (
                    t.spec.id.clone(),
                    t.spec.role.clone(),
                    t.agent.clone(),
                    coordinator_task,
                )
            })
            .collect()
    });
    for (task, role, previous_agent, coordinator_task) in ready {
        if picked.len() >= capacity {
            break;
        }
        let candidate = if coordinator_task {
            ctx.roster.coordinator().and_then(|c| ctx.roster.get(c))
        } else {
            // A resumed task goes back to the agent that started it when that agent is free.
            previous_agent
                .as_deref()
                .and_then(|a| ctx.roster.get(a))
                .filter(|a| a.role == role && !taken.contains(a.id.as_str()))
                .or_else(|| {
                    ctx.roster
                        .agents()
                        .iter()
                        .find(|a| a.role == role && !taken.contains(a.id.as_str()))
                })
        };
        if let Some(agent) = candidate.filter(|a| !taken.contains(a.id.as_str())) {
            taken.insert(agent.id.as_str());
            picked.push((task, agent.clone()));
        }
    }
    picked
}

fn is_synthesis(task: &crate::session::TaskState) -> bool {
    task.created_by.as_deref() == Some(RUNTIME_AUTHOR) && task.spec.id == SYNTHESIS_TASK
}

/// Whether a task's dependencies let it start: all done, or, for the synthesis, all finished.
fn deps_allow_start(state: &SessionState, spec: &TaskSpec, finished_is_enough: bool) -> bool {
    spec.depends_on
        .iter()
        .all(|d| match state.task(d).map(|t| t.status) {
            Some(TaskStatus::Done) => true,
            Some(TaskStatus::Failed) => finished_is_enough,
            _ => false,
        })
}

/// Fails pending tasks that depend on a failed task, transitively.
fn fail_blocked(ctx: &SwarmContext) {
    loop {
        let blocked: Vec<(String, String)> = ctx.recorder.read(|s| {
            s.tasks_in_order()
                .filter(|t| t.status == TaskStatus::Pending && !is_synthesis(t))
                .filter_map(|t| {
                    t.spec
                        .depends_on
                        .iter()
                        .find(|d| s.task(d).map(|d| d.status) == Some(TaskStatus::Failed))
                        .map(|d| (t.spec.id.clone(), d.clone()))
                })
                .collect()
        });
        if blocked.is_empty() {
            return;
        }
        for (task, dep) in blocked {
            drop(ctx.recorder.emit(Event::TaskFailed {
                task,
                agent: None,
                error: format!("blocked: the task it depends on, `{dep}`, failed"),
                at_ms: ctx.now_ms(),
            }));
        }
    }
}

/// In a hierarchical swarm, once the coordinator's plan is done, adds the synthesis task that
/// waits for every other task.
fn ensure_synthesis(ctx: &SwarmContext) {
    if ctx.plan.topology != Topology::Hierarchical {
        return;
    }
    let Some(role) = ctx.plan.coordinator.clone() else {
        return;
    };
    let goal = ctx
        .goal
        .clone()
        .unwrap_or_else(|| ctx.plan.description.clone());
    let at_ms = ctx.now_ms();
    let added = ctx.recorder.emit_if(|s| {
        let plan_done = s.task(PLAN_TASK).map(|t| t.status) == Some(TaskStatus::Done);
        if !plan_done || s.tasks.contains_key(SYNTHESIS_TASK) {
            return None;
        }
        let depends_on = s
            .task_order
            .iter()
            .filter(|id| id.as_str() != PLAN_TASK)
            .cloned()
            .collect();
        Some(Event::TaskCreated {
            task: TaskSpec {
                id: SYNTHESIS_TASK.to_string(),
                role,
                description: format!(
                    "Every task of the plan has finished. Synthesise the swarm's work for the goal: {goal}\n\
                     Read the results below and your messages (read_messages), reconcile them, and \
                     finish with complete_task: what was delivered and where, what failed or is \
                     still open, and the decisions made."
                ),
                depends_on,
            },
            created_by: Some(RUNTIME_AUTHOR.to_string()),
            at_ms,
        })
    });
    drop(added);
}

/// Tasks left pending when nothing runs and nothing was stopped cannot ever start; say so.
fn unschedulable(ctx: &SwarmContext) {
    if ctx.control.stopped().is_some() {
        return;
    }
    let stuck: Vec<String> = ctx.recorder.read(|s| {
        s.tasks_in_order()
            .filter(|t| t.status == TaskStatus::Pending)
            .map(|t| t.spec.id.clone())
            .collect()
    });
    for task in stuck {
        drop(ctx.recorder.emit(Event::TaskFailed {
            task,
            agent: None,
            error: "could not be scheduled: no agent of its role, or its dependencies never finished"
                .to_string(),
            at_ms: ctx.now_ms(),
        }));
    }
}

fn outcome(ctx: &SwarmContext) -> RunEnd {
    match ctx.control.stopped() {
        Some(StopReason::Interrupted) => RunEnd {
            status: SessionStatus::Interrupted,
            reason: "interrupted (Ctrl-C or SIGTERM); the session can be resumed".to_string(),
        },
        Some(StopReason::Budget(resource)) => RunEnd {
            status: SessionStatus::BudgetStopped,
            reason: format!(
                "the {} budget reached its stop threshold; resume with --extend-budget",
                resource.as_str()
            ),
        },
        None => {
            let (done, failed, total) = ctx.recorder.read(|s| {
                (
                    s.count(TaskStatus::Done),
                    s.count(TaskStatus::Failed),
                    s.tasks.len(),
                )
            });
            if failed == 0 {
                RunEnd {
                    status: SessionStatus::Completed,
                    reason: format!("all {done} tasks done"),
                }
            } else {
                RunEnd {
                    status: SessionStatus::Failed,
                    reason: format!("{failed} of {total} tasks failed"),
                }
            }
        }
    }
}
