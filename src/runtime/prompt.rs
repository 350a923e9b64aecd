//! What an agent is told: the system prompt (its role plus the runtime's rules) and the first
//! message of a task (the task, the swarm context, the results it depends on, memory it should
//! know about, messages waiting for it).
//!
//! The first message carries a `## Context` block of `key: value` lines. It is for the model to
//! read, and it is also what the simulated model reads, so its keys are stable.

use std::collections::BTreeMap;
use std::fmt::Write;

/// What a task is for, from the runtime's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A hierarchical coordinator turning the goal into tasks.
    Plan,
    /// Ordinary work on a task.
    Work,
    /// A hierarchical coordinator writing the final synthesis from the results.
    Synthesize,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Work => "work",
            Phase::Synthesize => "synthesize",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "plan" => Some(Phase::Plan),
            "work" => Some(Phase::Work),
            "synthesize" => Some(Phase::Synthesize),
            _ => None,
        }
    }
}

/// The runtime's rules, appended to every role's prompt.
const RUNTIME_RULES: &str = "\
## How this runtime works
- You are one agent of a swarm. Each message from the user is a task assigned to you; the \
`## Context` block says who you are, the swarm's goal, your memory namespace and who you may message.
- Use only the tools you are given. Tool results come back as JSON; a tool error explains what to change.
- Shared memory keys are `/`-separated paths in your swarm's namespace. Record blockers under \
`<swarm>/<task>/blockers` and decisions under `<swarm>/<task>/decisions`. The runtime stores your \
final result at `<swarm>/<task>/result`.
- Finish every task by calling `complete_task` with a concise result: what you did, where it is \
(files, memory keys) and anything left open. If you have no `complete_task` tool, answer with \
your final result as plain text.
- Do not repeat a tool call with the same arguments: the runtime stops agents that loop.";

/// The system prompt of an agent of `role_prompt`.
pub fn system_prompt(role_prompt: &str) -> String {
    let role_prompt = role_prompt.trim_end();
    let mut out = String::with_capacity(role_prompt.len() + 2 + RUNTIME_RULES.len());
    out.push_str(role_prompt);
    out.push_str("\n\n");
    out.push_str(RUNTIME_RULES);
    out
}

/// Everything the first message of a task is built from.
#[derive(Debug, Clone)]
pub struct TaskBrief<'a> {
    pub swarm: &'a str,
    pub session: &'a str,
    pub topology: &'a str,
    pub goal: Option<&'a str>,
    pub task_id: &'a str,
    pub role: &'a str,
    pub agent: &'a str,
    pub phase: Phase,
    pub description: &'a str,
    pub namespace: &'a str,
    pub coordinator: Option<&'a str>,
    /// Who the agent may message (see [`super::roster::Roster::contacts_summary`]).
    pub contacts: String,
    /// Roles tasks can be created for (coordinators planning).
    pub assignable_roles: Vec<String>,
    /// (task id, agent, result) of the tasks this one depends on.
    pub dependency_results: Vec<(String, String, String)>,
    /// (task id, error) of dependencies that failed (only a synthesis waits on failed tasks).
    pub dependency_failures: Vec<(String, String)>,
    /// (namespace/key, compact JSON) of memory the agent should know about.
    pub memory_notes: Vec<(String, String)>,
    /// (from, body) of messages waiting for the agent.
    pub messages: Vec<(String, String)>,
    /// (session, handoff report) of the session this one continues.
    pub handoff: Option<(&'a str, &'a str)>,
}

/// The memory key a task's result is stored at.
pub fn result_key(swarm: &str, task: &str) -> String {
    let mut key = String::with_capacity(swarm.len() + task.len() + 8);
    for part in [swarm, "/", task, "/result"] {
        key.push_str(part);
    }
    key
}

/// The first user message of a task.
pub fn task_message(brief: &TaskBrief<'_>) -> String {
    let mut out = String::with_capacity(1024);
    // Pushed piece by piece rather than formatted: one message per task, on the path of every
    // task start.
    for part in [
        "# Task `",
        brief.task_id,
        "` for ",
        brief.role,
        "\n\n",
        brief.description.trim(),
        "\n\n## Context\n",
    ] {
        out.push_str(part);
    }
    context_line(&mut out, "swarm: ", &[brief.swarm]);
    context_line(&mut out, "session: ", &[brief.session]);
    context_line(&mut out, "topology: ", &[brief.topology]);
    context_line(&mut out, "goal: ", &[brief.goal.unwrap_or("")]);
    context_line(&mut out, "task: ", &[brief.task_id]);
    context_line(&mut out, "phase: ", &[brief.phase.as_str()]);
    context_line(&mut out, "role: ", &[brief.role]);
    context_line(&mut out, "agent: ", &[brief.agent]);
    context_line(&mut out, "namespace: ", &[brief.namespace]);
    // The value of `result_key`, in its parts.
    context_line(
        &mut out,
        "result_key: ",
        &[brief.swarm, "/", brief.task_id, "/result"],
    );
    context_line(
        &mut out,
        "coordinator: ",
        &[brief.coordinator.unwrap_or("")],
    );
    context_line(&mut out, "contacts: ", &[&brief.contacts]);
    if !brief.assignable_roles.is_empty() {
        context_line(&mut out, "roles: ", &[&brief.assignable_roles.join(", ")]);
    }
    out.push('\n');

    if let Some((session, handoff)) = brief.handoff {
        let _ = write!(
        out,
            "## Handoff from session {session}\nThis session continues that one. Its handoff report:\n\n{}\n\n",
            handoff.trim()
        );
    }
    if !brief.dependency_results.is_empty() {
        out.push_str("## Results of the tasks this one builds on\n");
        for (task, agent, result) in &brief.dependency_results {
            let _ = write!(out, "### {task} (by {agent})\n{}\n\n", result.trim());
        }
    }
    if !brief.dependency_failures.is_empty() {
        out.push_str("## Tasks that failed\n");
        for (task, error) in &brief.dependency_failures {
            let _ = writeln!(out, "- {task}: {}", error.trim());
        }
        out.push('\n');
    }
    if !brief.memory_notes.is_empty() {
        out.push_str("## Shared memory you should know about\n");
        for (key, value) in &brief.memory_notes {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push('\n');
    }
    if !brief.messages.is_empty() {
        out.push_str("## Messages for you\n");
        for (from, body) in &brief.messages {
            let _ = writeln!(out, "- from {from}: {}", body.trim());
        }
        out.push('\n');
    }
    out.push_str(match brief.phase {
        Phase::Plan => "When the plan is complete, call complete_task with a short summary of it.",
        Phase::Work => "When the deliverable exists, call complete_task with your result.",
        Phase::Synthesize => {
            "Write the final synthesis for the goal and call complete_task with it."
        }
    });
    out
}

/// A `key: value` line of the `## Context` block (`key` given with its `: `), the value given
/// in parts; none when the value is empty. A line break in the value becomes a space: each key
/// keeps to its line.
fn context_line(out: &mut String, key: &str, value: &[&str]) {
    if value.iter().all(|part| part.is_empty()) {
        return;
    }
    out.push_str(key);
    for part in value {
        let mut rest = *part;
        // A line break is one byte: the text either side of it is whole characters.
        while let Some(at) = rest.bytes().position(|b| b == b'\n') {
            out.push_str(&rest[..at]);
            out.push(' ');
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
    }
    out.push('\n');
}

/// The `key: value` lines of the `## Context` block of a task message.
pub fn parse_context(message: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut in_block = false;
    for line in message.lines() {
        if line.trim() == "## Context" {
            in_block = true;
            continue;
        }
        if in_block {
            if line.trim().is_empty() {
                break;
            }
            if let Some((key, value)) = line.split_once(": ") {
                map.insert(key.to_string(), value.to_string());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief() -> TaskBrief<'static> {
        TaskBrief {
            swarm: "dev",
            session: "s1",
            topology: "mesh",
            goal: Some("build\nit"),
            task_id: "api",
            role: "backend-dev",
            agent: "backend-dev-1",
            phase: Phase::Work,
            description: "Implement the API",
            namespace: "dev",
            coordinator: None,
            contacts: "tester-1, code-reviewer-1".into(),
            assignable_roles: Vec::new(),
            dependency_results: vec![("design".into(), "architect-1".into(), "use REST".into())],
            dependency_failures: Vec::new(),
            memory_notes: Vec::new(),
            messages: vec![("tester-1".into(), "ping".into())],
            handoff: None,
        }
    }

    #[test]
    fn context_block_round_trips() {
        let text = task_message(&brief());
        let ctx = parse_context(&text);
        assert_eq!(ctx["task"], "api");
        assert_eq!(ctx["agent"], "backend-dev-1");
        assert_eq!(ctx["goal"], "build it");
        assert_eq!(ctx["contacts"], "tester-1, code-reviewer-1");
        assert_eq!(ctx["phase"], "work");
        assert_eq!(ctx["result_key"], "dev/api/result");
        assert!(!ctx.contains_key("coordinator"));
        assert!(text.contains("### design (by architect-1)\nuse REST"));
        assert!(text.contains("- from tester-1: ping"));
    }

    /// The message as it has always been written, every section and line break in values
    /// included: it is stored in journals and read by the simulated model.
    #[test]
    fn the_task_message_keeps_its_layout() {
        let mut b = TaskBrief {
            swarm: "dev\nteam",
            session: "s1",
            topology: "hierarchical",
            goal: Some("build\nit\n"),
            task_id: "plan",
            role: "coordinator",
            agent: "coordinator-1",
            phase: Phase::Plan,
            description: "  Plan the work\n\n",
            namespace: "dev",
            coordinator: Some("coordinator-1"),
            contacts: "everyone".into(),
            assignable_roles: vec!["backend-dev".into(), "tester".into()],
            dependency_results: vec![("design".into(), "architect-1".into(), " use REST\n".into())],
            dependency_failures: vec![("db".into(), "it broke\n".into())],
            memory_notes: vec![("dev/k".into(), "{\"a\":1}".into())],
            messages: vec![("tester-1".into(), " ping ".into())],
            handoff: Some(("old", " the report \n")),
        };
        let head = "# Task `plan` for coordinator\n\nPlan the work\n\n## Context\n";
        // What follows the context block and the handoff, in both messages.
        let sections = "## Results of the tasks this one builds on\n\
### design (by architect-1)\n\
use REST\n\
\n\
## Tasks that failed\n\
- db: it broke\n\
\n\
## Shared memory you should know about\n\
- dev/k: {\"a\":1}\n\
\n\
## Messages for you\n\
- from tester-1: ping\n\
\n\
";
        assert_eq!(
            task_message(&b),
            format!(
                "{head}\
swarm: dev team\n\
session: s1\n\
topology: hierarchical\n\
goal: build it \n\
task: plan\n\
phase: plan\n\
role: coordinator\n\
agent: coordinator-1\n\
namespace: dev\n\
result_key: dev team/plan/result\n\
coordinator: coordinator-1\n\
contacts: everyone\n\
roles: backend-dev, tester\n\
\n\
## Handoff from session old\n\
This session continues that one. Its handoff report:\n\
\n\
the report\n\
\n\
{sections}When the plan is complete, call complete_task with a short summary of it."
            )
        );
        b.phase = Phase::Synthesize;
        b.goal = None;
        b.coordinator = None;
        b.contacts = String::new();
        b.assignable_roles.clear();
        b.handoff = None;
        b.swarm = "";
        assert_eq!(
            task_message(&b),
            format!(
                "{head}\
session: s1\n\
topology: hierarchical\n\
task: plan\n\
phase: synthesize\n\
role: coordinator\n\
agent: coordinator-1\n\
namespace: dev\n\
result_key: /plan/result\n\
\n\
{sections}Write the final synthesis for the goal and call complete_task with it."
            )
        );
    }

    #[test]
    fn the_system_prompt_is_the_role_prompt_then_the_rules() {
        for role in ["You build things.\n\n  ", "", "one line", "x\n"] {
            assert_eq!(
                system_prompt(role),
                format!("{}\n\n{RUNTIME_RULES}", role.trim_end())
            );
        }
    }
}
