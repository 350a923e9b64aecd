//! The kill-and-resume harness both state store backends run: a fan-out swarm against the mock
//! LLM, SIGKILL once a number of requests have arrived, `swarm resume`, and the check that every
//! task is done and only the calls in flight at the kill were sent again.

use super::swarm_fixture::{context, stderr, stdout, tool_results, SwarmFixture};
use super::{MockLlm, MockReply, Script};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

/// Three turns a task: store a note, store another, answer.
pub fn three_turn_script() -> Script {
    Script::from_fn(|r| {
        let task = context(&r.messages)["task"].clone();
        match tool_results(&r.messages).len() {
            0 => MockReply::tool(
                "memory_store",
                json!({"key": format!("{task}/one"), "value": 1}),
            ),
            1 => MockReply::tool(
                "memory_store",
                json!({"key": format!("{task}/two"), "value": 2}),
            ),
            _ => MockReply::text(format!("{task} finished")),
        }
        .with_usage(100, 20)
    })
}

pub fn fan_out_swarm(
    fx: &SwarmFixture,
    mock: &MockLlm,
    tasks: usize,
    max_agents: usize,
    extra: &str,
) {
    fx.role("worker", &["memory_store"]);
    let mut yaml = format!(
        "name: fan\ntopology: mesh\nmax_agents: {max_agents}\nagents:\n  - role: worker\n    count: {max_agents}\ntasks:\n"
    );
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  - id: t{i}\n    role: worker\n    description: \"part {i} of {{goal}}\"\n"
        ));
    }
    yaml.push_str(&format!(
        "llm:\n  provider: openai\n  model: m\n  base_url: {}\n  stream: true\nworkspace: ./ws\ncheckpoint:\n  interval: 200ms\n{extra}",
        mock.base_url_openai()
    ));
    fx.swarm(&yaml);
}

pub fn spawn_run(fx: &SwarmFixture) -> Child {
    fx.command()
        .args(["run", "swarm.yaml", "--goal", "crash test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm")
}

pub fn task_of_body(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let first = value["messages"][1]["content"].as_str().unwrap_or("");
    swarm_runtime::runtime::prompt::parse_context(first)
        .get("task")
        .cloned()
        .unwrap_or_default()
}

/// Kills the run with SIGKILL once `kill_after` requests have arrived, resumes it, and checks that
/// every task is done and that the only requests sent again are, per task, the last one before the
/// kill (the call that was in flight).
pub fn kill_and_resume(
    fixture: impl FnOnce() -> Option<SwarmFixture>,
    kill_after: usize,
    max_agents: usize,
) {
    let tasks = 6;
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(120));
    let Some(fx) = fixture() else { return };
    fan_out_swarm(&fx, &mock, tasks, max_agents, "");
    let mut child = spawn_run(&fx);
    assert!(
        mock.wait_for_requests_blocking(kill_after, Duration::from_secs(30)),
        "the run never reached {kill_after} requests"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = mock.requests();
    let mut last_before: HashMap<String, String> = HashMap::new();
    for r in &before {
        last_before.insert(task_of_body(&r.body), r.body.clone());
    }

    let resumed = fx.run(&["resume", "latest"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&resumed),
        stderr(&resumed)
    );
    assert!(
        stdout(&resumed).contains(&format!("all {tasks} tasks done")),
        "{}",
        stdout(&resumed)
    );

    let after = &mock.requests()[before.len()..];
    for r in after.iter().filter(|r| r.succeeded) {
        let earlier = before.iter().find(|b| b.succeeded && b.body == r.body);
        if earlier.is_some() {
            let task = task_of_body(&r.body);
            assert_eq!(
                last_before.get(&task),
                Some(&r.body),
                "task {task}: a turn that had completed before the kill was requested again"
            );
        }
    }
    let repeated = mock.repeated_successful_requests();
    assert!(
        repeated <= max_agents,
        "{repeated} repeats with {max_agents} agents"
    );
    // Every task's three turns were answered: nothing was lost either.
    let all = mock.requests();
    let distinct: std::collections::HashSet<&str> = all
        .iter()
        .filter(|r| r.succeeded)
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(distinct.len(), tasks * 3);

    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_slice(&show.stdout).expect("show --json");
    assert_eq!(show["status"], "completed");
    assert!(show["tasks"]
        .as_array()
        .is_some_and(|t| t.len() == tasks && t.iter().all(|t| t["status"] == "done")));
    // Memory written before the kill survived it.
    let notes = fx.run(&["memory", "search", "*/one", "--session", "latest"]);
    assert_eq!(stdout(&notes).lines().count(), tasks, "{}", stdout(&notes));
}
