//! The topology rules, in one place: the tasks a session starts with, the coordinator's final
//! synthesis, who may message whom, which tools an agent holds and is offered in each phase, and
//! the phase of a task.
//!
//! * **mesh**: the swarm file's tasks are the plan; any agent may message any other.
//! * **hierarchical**: the runtime adds a `plan` task for the coordinator, whose `create_task`
//!   calls add tasks to the graph; workers message only the coordinator. When the plan is done,
//!   the runtime adds the `synthesis` task, which waits for every other task. The synthesis is
//!   final: once it exists no task can be created, so it reports on a graph that cannot grow.

use super::prompt::Phase;
use super::{PLAN_TASK, RUNTIME_AUTHOR, SYNTHESIS_TASK};
use crate::session::{Event, SessionState, TaskState, TaskStatus};
use crate::spec::{SwarmPlan, TaskSpec, ToolName, Topology};

/// The tasks a new session starts with: the coordinator's plan (hierarchical) and the swarm
/// file's tasks with `{goal}` filled in.
pub fn initial_tasks(plan: &SwarmPlan, goal: Option<&str>, at_ms: u64) -> Vec<Event> {
    let goal_text = goal.unwrap_or(plan.description.as_str());
    let mut events = Vec::new();
    if plan.topology == Topology::Hierarchical {
        if let Some(coordinator) = &plan.coordinator {
            events.push(Event::TaskCreated {
                task: TaskSpec {
                    id: PLAN_TASK.to_string(),
                    role: coordinator.clone(),
                    description: format!(
                        "Plan the work for the goal: {goal_text}\n\
                         Break it into tasks with create_task: one clear deliverable per task for \
                         one of the roles listed in the context, with depends_on where a task needs \
                         another's result. The swarm already has these tasks: {}.\n\
                         Then call complete_task with a short summary of the plan.",
                        if plan.tasks.is_empty() {
                            "none".to_string()
                        } else {
                            plan.tasks
                                .iter()
                                .map(|t| format!("{} ({})", t.id, t.role))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                    depends_on: Vec::new(),
                },
                created_by: Some(RUNTIME_AUTHOR.to_string()),
                at_ms,
            });
        }
    }
    for task in &plan.tasks {
        events.push(Event::TaskCreated {
            task: TaskSpec {
                description: task.description.replace("{goal}", goal_text),
                ..task.clone()
            },
            created_by: None,
            at_ms,
        });
    }
    events
}

/// The synthesis task, once the coordinator's plan is done and if it has not been added yet:
/// it depends on every other task and receives their results.
pub fn synthesis_task(
    plan: &SwarmPlan,
    goal: Option<&str>,
    state: &SessionState,
) -> Option<TaskSpec> {
    if plan.topology != Topology::Hierarchical {
        return None;
    }
    let role = plan.coordinator.clone()?;
    let plan_done = state.task(PLAN_TASK).map(|t| t.status) == Some(TaskStatus::Done);
    if !plan_done || state.tasks.contains_key(SYNTHESIS_TASK) {
        return None;
    }
    let goal = goal.unwrap_or(plan.description.as_str());
    let depends_on = state
        .task_order
        .iter()
        .filter(|id| id.as_str() != PLAN_TASK)
        .cloned()
        .collect();
    Some(TaskSpec {
        id: SYNTHESIS_TASK.to_string(),
        role,
        description: format!(
            "Every task of the plan has finished. Synthesise the swarm's work for the goal: {goal}\n\
             Read the results below and your messages (read_messages), reconcile them, and \
             finish with complete_task: what was delivered and where, what failed or is \
             still open, and the decisions made. This is the final task: no tasks can be created now."
        ),
        depends_on,
    })
}

/// Whether a task may be added to the graph now: not once the synthesis exists.
pub fn may_create_task(state: &SessionState) -> Result<(), String> {
    match state.task(SYNTHESIS_TASK) {
        Some(t) if t.created_by.as_deref() == Some(RUNTIME_AUTHOR) => Err(
            "the synthesis has started and is final: no tasks can be created now; \
             report what is missing in your synthesis instead"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// A warning when a hierarchical coordinator finished its plan without creating any task.
pub fn planning_warning(plan: &SwarmPlan, state: &SessionState) -> Option<String> {
    if plan.topology != Topology::Hierarchical {
        return None;
    }
    let planned = state.task(PLAN_TASK)?;
    if planned.status != TaskStatus::Done {
        return None;
    }
    let created = state.tasks.values().any(|t| {
        t.created_by
            .as_deref()
            .is_some_and(|by| by != RUNTIME_AUTHOR)
    });
    (!created).then(|| {
        let preset = if plan.tasks.is_empty() {
            "so the synthesis had nothing to report on".to_string()
        } else {
            format!("only the swarm file's {} task(s) ran", plan.tasks.len())
        };
        format!(
            "the coordinator's plan created no tasks: {preset} (check the goal, or the coordinator role's prompt and its create_task tool)"
        )
    })
}

/// The phase of a task, from who created it.
pub fn phase_of(task: &TaskState) -> Phase {
    if task.created_by.as_deref() == Some(RUNTIME_AUTHOR) {
        if task.spec.id == PLAN_TASK {
            return Phase::Plan;
        }
        if task.spec.id == SYNTHESIS_TASK {
            return Phase::Synthesize;
        }
    }
    Phase::Work
}

/// Whether `from` may message `to`; the error says why not, in words an agent can act on.
pub fn may_message(
    topology: Topology,
    coordinator: Option<&str>,
    from: &str,
    to: &str,
) -> Result<(), String> {
    if from == to {
        return Err("an agent cannot message itself".to_string());
    }
    match (topology, coordinator) {
        (Topology::Hierarchical, Some(coordinator)) => {
            if from == coordinator || to == coordinator {
                Ok(())
            } else {
                Err(format!(
                    "this swarm is hierarchical: workers message only the coordinator \
                     ({coordinator}); send your message to {coordinator} instead of {to}"
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Whether an agent holds `tool` for the run: `run_command` only when the swarm allows
/// commands, `create_task` only for the coordinator.
pub fn holds_tool(plan: &SwarmPlan, tool: ToolName, is_coordinator: bool) -> bool {
    match tool {
        ToolName::RunCommand => plan.allow_commands,
        ToolName::CreateTask => is_coordinator,
        _ => true,
    }
}

/// Whether a tool the agent holds is offered in `phase`: the synthesis is final, so it is not
/// offered `create_task`.
pub fn offered_in_phase(phase: Phase, tool: &str) -> bool {
    !(phase == Phase::Synthesize && tool == ToolName::CreateTask.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthesis_is_final() {
        let mut state = SessionState::default();
        assert!(may_create_task(&state).is_ok());
        state.apply(&Event::TaskCreated {
            task: TaskSpec {
                id: SYNTHESIS_TASK.into(),
                role: "lead".into(),
                description: "s".into(),
                depends_on: Vec::new(),
            },
            created_by: Some(RUNTIME_AUTHOR.into()),
            at_ms: 1,
        });
        assert!(may_create_task(&state).is_err());
        assert!(!offered_in_phase(Phase::Synthesize, "create_task"));
        assert!(offered_in_phase(Phase::Plan, "create_task"));
    }
}
