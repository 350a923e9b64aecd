//! Crash and resume through the real binary: SIGKILL at several points of a multi-task run against
//! the mock LLM server, Ctrl-C / SIGTERM, and budget stops; after `swarm resume` every task is done
//! and no LLM turn that had completed was requested again.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::swarm_fixture::{context, stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

/// Three turns a task: store a note, store another, answer.
fn three_turn_script() -> Script {
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

fn fan_out_swarm(fx: &SwarmFixture, mock: &MockLlm, tasks: usize, max_agents: usize, extra: &str) {
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

fn spawn_run(fx: &SwarmFixture) -> Child {
    fx.command()
        .args(["run", "swarm.yaml", "--goal", "crash test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm")
}

fn task_of_body(body: &str) -> String {
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
fn kill_and_resume(kill_after: usize, max_agents: usize) {
    let tasks = 6;
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(120));
    let fx = SwarmFixture::new();
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

#[test]
fn sigkill_early_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(3, 2);
}

#[test]
fn sigkill_midway_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(8, 3);
}

#[test]
fn sigkill_late_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(15, 2);
}

#[test]
fn sigterm_exits_130_and_resume_finishes() {
    interrupt_exits_130_and_resume_finishes(libc::SIGTERM);
}

#[test]
fn ctrl_c_exits_130_and_resume_finishes() {
    interrupt_exits_130_and_resume_finishes(libc::SIGINT);
}

fn interrupt_exits_130_and_resume_finishes(signal: i32) {
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(150));
    let fx = SwarmFixture::new();
    fan_out_swarm(&fx, &mock, 4, 2, "");
    let child = spawn_run(&fx);
    assert!(mock.wait_for_requests_blocking(3, Duration::from_secs(30)));
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stdout(&out).contains("interrupted"), "{}", stdout(&out));
    assert!(stderr(&out).contains("handoff report:"), "{}", stderr(&out));
    let report = std::fs::read_dir(fx.path().join(".swarm/reports"))
        .expect("reports dir")
        .count();
    assert_eq!(report, 1);

    let resumed = fx.run(&["resume", "latest"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(stdout(&resumed).contains("all 4 tasks done"));
}

#[test]
fn a_budget_stop_exits_3_with_a_report_and_extend_budget_finishes() {
    let mock = MockLlm::spawn(three_turn_script());
    let fx = SwarmFixture::new();
    // 6 tasks x 3 calls = 18 calls; stop at 90% of 10 = 9 calls.
    fan_out_swarm(
        &fx,
        &mock,
        6,
        2,
        "budget:\n  llm_calls: 10\n  warn_at: 0.5\n  stop_at: 0.9\n",
    );
    let out = fx.run(&["run", "swarm.yaml", "--goal", "budget"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("budget warning: llm_calls"), "{err}");
    let calls = mock.request_count();
    assert!(
        (9..=10).contains(&calls),
        "calls stop at the threshold, in-flight ones finish: {calls}"
    );

    let report = fx.run(&["sessions", "report", "latest"]);
    let report = stdout(&report);
    assert!(report.contains("--extend-budget"), "{report}");

    let id = session_id(&fx);
    let again = fx.run(&["resume", "latest"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "without extending, the budget is still spent: refused up front"
    );
    let err = stderr(&again);
    assert!(
        err.contains(&format!("swarm resume {id} --extend-budget")),
        "the refusal names the command that continues the session: {err}"
    );
    assert_eq!(
        mock.request_count(),
        calls,
        "a refused resume calls nothing"
    );
    let runs = fx.run(&["sessions", "show", "latest", "--json"]);
    let runs: Value = serde_json::from_str(&stdout(&runs)).expect("show --json");
    assert_eq!(runs["runs"], 1, "a refused resume is not a run");

    let extended = fx.run(&["resume", "latest", "--extend-budget"]);
    assert_eq!(
        extended.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&extended),
        stderr(&extended)
    );
    assert!(stdout(&extended).contains("all 6 tasks done"));
    assert_eq!(mock.repeated_successful_requests(), 0);
}

fn session_id(fx: &SwarmFixture) -> String {
    let out = fx.run(&["sessions", "show", "latest", "--json"]);
    let value: Value = serde_json::from_str(&stdout(&out)).expect("show --json");
    value["id"].as_str().expect("an id").to_string()
}

#[test]
fn a_resume_can_switch_endpoint_and_model_and_each_run_is_recorded() {
    let first = MockLlm::spawn(three_turn_script());
    let second = MockLlm::spawn(three_turn_script());
    let fx = SwarmFixture::new();
    fan_out_swarm(
        &fx,
        &first,
        4,
        2,
        "budget:\n  llm_calls: 6\n  warn_at: 0.5\n  stop_at: 0.9\n",
    );
    let out = fx.run(&["run", "swarm.yaml", "--goal", "switch"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let before = first.request_count();

    let url = second.base_url_openai();
    let resumed = fx.run(&[
        "resume",
        "latest",
        "--extend-budget",
        "--base-url",
        &url,
        "--model",
        "other-model",
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(
        first.request_count(),
        before,
        "the old endpoint is not called"
    );
    let models: Vec<String> = second
        .requests()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            body["model"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert!(!models.is_empty(), "the new endpoint does the rest");
    assert!(models.iter().all(|m| m == "other-model"), "{models:?}");

    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_str(&stdout(&show)).expect("show --json");
    let runs = show["run_history"].as_array().expect("run_history");
    assert_eq!(runs.len(), 2, "{show}");
    assert_eq!(runs[0]["model"], "m");
    assert_eq!(runs[0]["status"], "budget_stopped");
    assert_eq!(runs[1]["model"], "other-model");
    assert_eq!(runs[1]["base_url"], url.trim_end_matches('/'));
    assert_eq!(runs[1]["status"], "completed");
    let text = stdout(&fx.run(&["sessions", "show", "latest"]));
    assert!(text.contains("other-model at "), "{text}");
    let report = stdout(&fx.run(&["sessions", "report", "latest"]));
    assert!(
        report.contains("run 2 (") && report.contains("model other-model"),
        "{report}"
    );
}
