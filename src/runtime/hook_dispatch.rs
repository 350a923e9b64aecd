//! Runs the swarm file's hooks on the events they are attached to. A failing hook is reported
//! (an event, which the progress display shows) and never stops the swarm.

use super::context::SwarmContext;
use super::recorder::Observer;
use crate::session::Event;
use crate::spec::HookEvent;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub type HookEnv = Vec<(&'static str, String)>;

/// The variables every hook gets.
fn base_env(ctx: &SwarmContext) -> HookEnv {
    vec![
        ("SWARM_SESSION", ctx.session_id.clone()),
        ("SWARM_SWARM", ctx.plan.name.clone()),
        ("SWARM_NAMESPACE", ctx.plan.memory.namespace.clone()),
        (
            "SWARM_WORKSPACE",
            ctx.workspace.root().display().to_string(),
        ),
    ]
}

/// The variables of a task hook.
pub fn task_env(ctx: &SwarmContext, task: &str, agent: &str, role: &str, status: &str) -> HookEnv {
    let mut env = base_env(ctx);
    env.extend([
        ("SWARM_TASK_ID", task.to_string()),
        ("SWARM_AGENT", agent.to_string()),
        ("SWARM_ROLE", role.to_string()),
        ("SWARM_STATUS", status.to_string()),
    ]);
    env
}

/// Runs the hook of `event`, if the swarm has one, and reports a failure.
pub async fn fire(ctx: &SwarmContext, event: HookEvent, env: HookEnv) {
    let Some(outcome) = ctx.hooks.run(event, &env).await else {
        return;
    };
    if !outcome.ok {
        // The session-end hook runs after the display has shown the session's last event, so
        // its failure is said here; every other failure reaches the user through its event.
        if event == HookEvent::SessionEnd {
            eprintln!("hook {} failed: {}", event.as_str(), outcome.message);
        }
        drop(ctx.recorder.emit(Event::HookFailed {
            hook: event.as_str().to_string(),
            error: outcome.message,
            at_ms: ctx.now_ms(),
        }));
    }
}

/// Runs session-level hooks: session-start and session-end.
pub async fn fire_session(ctx: &SwarmContext, event: HookEvent, status: &str) {
    let mut env = base_env(ctx);
    env.push(("SWARM_STATUS", status.to_string()));
    fire(ctx, event, env).await;
}

/// Follows the event stream and runs post-task, task-failed, checkpoint and budget-warning hooks
/// in order, until the session ends.
pub fn spawn(ctx: Arc<SwarmContext>, mut events: Observer) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            // Most events have no hook: nothing is built for them.
            let hook = match &*event {
                Event::TaskCompleted { .. } => HookEvent::PostTask,
                Event::TaskFailed { .. } => HookEvent::TaskFailed,
                Event::Checkpoint { .. } => HookEvent::Checkpoint,
                Event::BudgetWarning { .. } => HookEvent::BudgetWarning,
                Event::SessionEnded { .. } => return,
                _ => continue,
            };
            if !ctx.hooks.has(hook) {
                continue;
            }
            let (hook, env) = match &*event {
                Event::TaskCompleted { task, agent, .. } => {
                    let role = role_of(&ctx, agent);
                    let mut env = task_env(&ctx, task, agent, &role, "done");
                    env.push((
                        "SWARM_RESULT_KEY",
                        super::prompt::result_key(&ctx.plan.name, task),
                    ));
                    (HookEvent::PostTask, env)
                }
                Event::TaskFailed {
                    task, agent, error, ..
                } => {
                    let agent = agent.clone().unwrap_or_default();
                    let role = role_of(&ctx, &agent);
                    let mut env = task_env(&ctx, task, &agent, &role, "failed");
                    env.push(("SWARM_ERROR", error.clone()));
                    (HookEvent::TaskFailed, env)
                }
                Event::Checkpoint { .. } => (HookEvent::Checkpoint, base_env(&ctx)),
                Event::BudgetWarning {
                    resource,
                    used,
                    limit,
                    ..
                } => {
                    let mut env = base_env(&ctx);
                    env.extend([
                        ("SWARM_BUDGET_RESOURCE", resource.as_str().to_string()),
                        ("SWARM_BUDGET_USED", used.to_string()),
                        ("SWARM_BUDGET_LIMIT", limit.to_string()),
                    ]);
                    (HookEvent::BudgetWarning, env)
                }
                _ => continue,
            };
            fire(&ctx, hook, env).await;
        }
    })
}

fn role_of(ctx: &SwarmContext, agent: &str) -> String {
    ctx.roster
        .get(agent)
        .map(|a| a.role.clone())
        .unwrap_or_default()
}
