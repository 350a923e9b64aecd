//! The scheduler over the task graph: a task starts as soon as its dependencies are done and an
//! agent of its role is free, never more than `max_agents` at once. A failed task fails the tasks
//! that depend on it (but for the coordinator's synthesis, which reports on failures too). The
//! run ends when nothing can progress.

use super::agent::{work_on, TaskEnd};
use super::context::{StopReason, SwarmContext};
use super::RUNTIME_AUTHOR;
use crate::session::{Event, SessionStatus, TaskStatus};
use std::collections::{BTreeMap, HashMap, HashSet};
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
    let mut assigned: HashMap<tokio::task::Id, (String, usize)> = HashMap::new();
    let mut busy = Busy::new(ctx.roster.agents().len());
    let mut graph = ReadyIndex::default();
    loop {
        ensure_synthesis(&ctx);
        graph.index_new_tasks(&ctx);
        if ctx.control.stopped().is_none() {
            let capacity = max_agents.saturating_sub(busy.count);
            for (task, position) in graph.pick(&ctx, &mut busy, capacity) {
                let Some(agent) = ctx.roster.agents().get(position) else {
                    continue;
                };
                let handle = running.spawn(work_on(Arc::clone(&ctx), task.clone(), agent.clone()));
                assigned.insert(handle.id(), (task, position));
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                let id = match &joined { Ok((id, _)) => *id, Err(e) => e.id() };
                let Some((task, position)) = assigned.remove(&id) else { continue };
                busy.release(position);
                let agent = ctx.roster.agents().get(position).map(|a| a.id.clone()).unwrap_or_default();
                match joined {
                    Ok((_, TaskEnd::Done)) => graph.finished(&ctx, &task, true),
                    Ok((_, TaskEnd::Failed)) => graph.finished(&ctx, &task, false),
                    Ok((_, TaskEnd::Stopped(_))) => {}
                    Err(e) => {
                        // A panicking agent fails its task, never the run.
                        let error = if e.is_panic() { "the agent crashed (a bug in swarm-runtime)" } else { "the agent was cancelled" };
                        drop(ctx.recorder.emit(Event::TaskFailed {
                            task: task.clone(), agent: Some(agent), error: error.to_string(), at_ms: ctx.now_ms(),
                        }));
                        graph.finished(&ctx, &task, false);
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

/// Which agents may take a ready task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Queue {
    /// The coordinator's own plan and synthesis.
    Coordinator,
    /// Any agent of the role.
    Role(String),
}

/// The scheduler's view of the graph, kept up to date from task creations and task ends so that a
/// wake-up costs what changed, not a scan of every task (and holds the state lock only to read
/// new tasks).
#[derive(Default)]
struct ReadyIndex {
    /// How many tasks of the session's creation order have been indexed.
    indexed: usize,
    /// Unmet dependencies of each waiting task.
    waiting_on: HashMap<String, usize>,
    /// Waiting tasks by the task they wait for.
    dependents: HashMap<String, Vec<String>>,
    /// Tasks that start once their dependencies finished, done or failed (the synthesis).
    any_outcome: HashSet<String>,
    /// Creation position, queue and previous agent of each task not finished yet.
    info: HashMap<String, (usize, Queue, Option<String>)>,
    /// Ready tasks per queue, in creation order.
    ready: HashMap<Queue, BTreeMap<usize, String>>,
    /// How tasks that ended during this run ended (true: done), for tasks indexed after them.
    outcomes: HashMap<String, bool>,
}

/// A newly seen task, as read from the state.
struct NewTask {
    id: String,
    position: usize,
    queue: Queue,
    agent: Option<String>,
    any_outcome: bool,
    /// Dependencies not yet done (not yet finished, for `any_outcome`).
    unmet: Vec<String>,
    /// A dependency that failed, for tasks that need their dependencies done.
    failed_dependency: Option<String>,
}

impl ReadyIndex {
    /// Indexes tasks created since the last call.
    fn index_new_tasks(&mut self, ctx: &SwarmContext) {
        let start = self.indexed;
        let new: Vec<NewTask> = ctx.recorder.read(|s| {
            s.task_order[start.min(s.task_order.len())..]
                .iter()
                .enumerate()
                .filter_map(|(offset, id)| {
                    let t = s.task(id)?;
                    if t.status != TaskStatus::Pending && t.status != TaskStatus::Running {
                        return None;
                    }
                    let any_outcome = is_synthesis(t);
                    let status_of = |d: &String| s.task(d).map(|d| d.status);
                    let failed_dependency = if any_outcome {
                        None
                    } else {
                        t.spec
                            .depends_on
                            .iter()
                            .find(|d| status_of(d) == Some(TaskStatus::Failed))
                            .cloned()
                    };
                    let unmet = t
                        .spec
                        .depends_on
                        .iter()
                        .filter(|d| match status_of(d) {
                            Some(TaskStatus::Done) => false,
                            Some(TaskStatus::Failed) => !any_outcome,
                            _ => true,
                        })
                        .cloned()
                        .collect();
                    let queue = if t.created_by.as_deref() == Some(RUNTIME_AUTHOR) {
                        Queue::Coordinator
                    } else {
                        Queue::Role(t.spec.role.clone())
                    };
                    Some(NewTask {
                        id: id.clone(),
                        position: start + offset,
                        queue,
                        agent: t.agent.clone(),
                        any_outcome,
                        unmet,
                        failed_dependency,
                    })
                })
                .collect()
        });
        self.indexed = ctx.recorder.read(|s| s.task_order.len()).max(start);
        for mut task in new {
            // A dependency may have ended since the state was read (e.g. blocked just above).
            let failed_now = task
                .unmet
                .iter()
                .find(|d| self.outcomes.get(*d) == Some(&false))
                .cloned();
            if let Some(dep) = task
                .failed_dependency
                .take()
                .or(failed_now.filter(|_| !task.any_outcome))
            {
                block(ctx, &task.id, &dep);
                self.finished(ctx, &task.id, false);
                continue;
            }
            task.unmet.retain(|d| !self.outcomes.contains_key(d));
            if task.any_outcome {
                self.any_outcome.insert(task.id.clone());
            }
            self.info
                .insert(task.id.clone(), (task.position, task.queue, task.agent));
            if task.unmet.is_empty() {
                self.make_ready(&task.id);
            } else {
                self.waiting_on.insert(task.id.clone(), task.unmet.len());
                for dep in task.unmet {
                    self.dependents
                        .entry(dep)
                        .or_default()
                        .push(task.id.clone());
                }
            }
        }
    }

    fn make_ready(&mut self, task: &str) {
        if let Some((position, queue, _)) = self.info.get(task) {
            self.ready
                .entry(queue.clone())
                .or_default()
                .insert(*position, task.to_string());
        }
    }

    /// A task ended: its dependents may become ready, or are blocked when it failed.
    fn finished(&mut self, ctx: &SwarmContext, task: &str, done: bool) {
        self.info.remove(task);
        let mut stack = vec![(task.to_string(), done)];
        while let Some((task, done)) = stack.pop() {
            self.outcomes.insert(task.clone(), done);
            for dependent in self.dependents.remove(&task).unwrap_or_default() {
                if !done && !self.any_outcome.contains(&dependent) {
                    if self.waiting_on.remove(&dependent).is_some() {
                        block(ctx, &dependent, &task);
                        self.info.remove(&dependent);
                        stack.push((dependent, false));
                    }
                    continue;
                }
                if let Some(count) = self.waiting_on.get_mut(&dependent) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.waiting_on.remove(&dependent);
                        self.make_ready(&dependent);
                    }
                }
            }
        }
    }

    /// Ready tasks paired with free agents (by roster position, marked busy here), at most
    /// `capacity`, earliest created first.
    fn pick(
        &mut self,
        ctx: &SwarmContext,
        busy: &mut Busy,
        capacity: usize,
    ) -> Vec<(String, usize)> {
        let mut picked = Vec::new();
        while picked.len() < capacity {
            // The earliest ready task among the queues that have a free agent.
            let mut best: Option<(usize, &Queue, usize)> = None;
            for (queue, tasks) in &self.ready {
                let Some((&position, task)) = tasks.iter().next() else {
                    continue;
                };
                if best.as_ref().is_some_and(|(p, _, _)| *p < position) {
                    continue;
                }
                let previous = self.info.get(task).and_then(|(_, _, a)| a.as_deref());
                if let Some(agent) = free_agent(ctx, queue, previous, busy) {
                    best = Some((position, queue, agent));
                }
            }
            let Some((position, queue, agent)) = best else {
                break;
            };
            let queue = queue.clone();
            let Some(task) = self.ready.get_mut(&queue).and_then(|q| q.remove(&position)) else {
                break;
            };
            busy.take(agent);
            picked.push((task, agent));
        }
        picked
    }
}

/// Which agents have a task, by roster position: a flag per agent, so finding a free one is a
/// scan of flags rather than a hash of each agent's id.
struct Busy {
    flags: Vec<bool>,
    count: usize,
}

impl Busy {
    fn new(agents: usize) -> Self {
        Self {
            flags: vec![false; agents],
            count: 0,
        }
    }

    fn is_free(&self, position: usize) -> bool {
        !self.flags.get(position).copied().unwrap_or(true)
    }

    fn take(&mut self, position: usize) {
        if let Some(flag) = self.flags.get_mut(position) {
            if !*flag {
                *flag = true;
                self.count += 1;
            }
        }
    }

    fn release(&mut self, position: usize) {
        if let Some(flag) = self.flags.get_mut(position) {
            if *flag {
                *flag = false;
                self.count -= 1;
            }
        }
    }
}

/// A free agent (its roster position) for a task of `queue`; a resumed task goes back to the
/// agent that started it when that agent is free.
fn free_agent(
    ctx: &SwarmContext,
    queue: &Queue,
    previous: Option<&str>,
    busy: &Busy,
) -> Option<usize> {
    let roster = &ctx.roster;
    match queue {
        Queue::Coordinator => roster
            .coordinator()
            .and_then(|c| roster.position(c))
            .filter(|p| busy.is_free(*p)),
        Queue::Role(role) => previous
            .and_then(|a| roster.position(a))
            .filter(|p| {
                busy.is_free(*p) && roster.agents().get(*p).is_some_and(|a| a.role == *role)
            })
            .or_else(|| {
                roster
                    .agents()
                    .iter()
                    .enumerate()
                    .find(|(p, a)| busy.is_free(*p) && a.role == *role)
                    .map(|(p, _)| p)
            }),
    }
}

fn is_synthesis(task: &crate::session::TaskState) -> bool {
    super::topology::phase_of(task) == super::prompt::Phase::Synthesize
}

/// Fails a task whose dependency failed.
fn block(ctx: &SwarmContext, task: &str, dependency: &str) {
    drop(ctx.recorder.emit(Event::TaskFailed {
        task: task.to_string(),
        agent: None,
        error: format!("blocked: the task it depends on, `{dependency}`, failed"),
        at_ms: ctx.now_ms(),
    }));
}

/// In a hierarchical swarm, once the coordinator's plan is done, adds the synthesis task that
/// waits for every other task (see [`super::topology::synthesis_task`]).
fn ensure_synthesis(ctx: &SwarmContext) {
    let goal = ctx.goal.as_deref();
    let at_ms = ctx.now_ms();
    let added = ctx.recorder.emit_if(|s| {
        super::topology::synthesis_task(&ctx.plan, goal, s).map(|task| Event::TaskCreated {
            task,
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
            reason: "stopped by Ctrl-C or SIGTERM; the session can be resumed".to_string(),
        },
        Some(StopReason::StoreFailed) => RunEnd {
            status: SessionStatus::Interrupted,
            reason: "stopped by an error of the state store; the session can be resumed"
                .to_string(),
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
