//! Crash and resume through the real binary: SIGKILL at several points of a multi-task run against
//! the mock LLM server, Ctrl-C / SIGTERM, and budget stops; after `swarm resume` every task is done
//! and no LLM turn that had completed was requested again.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::crash::{self, fan_out_swarm, spawn_run, three_turn_script};
use support::swarm_fixture::{stderr, stdout, SwarmFixture};
use support::MockLlm;

#[test]
fn sigkill_early_then_resume_finishes_without_repeating_completed_turns() {
    crash::kill_and_resume(|| Some(SwarmFixture::new()), 3, 2);
}

#[test]
fn sigkill_midway_then_resume_finishes_without_repeating_completed_turns() {
    crash::kill_and_resume(|| Some(SwarmFixture::new()), 8, 3);
}

#[test]
fn sigkill_late_then_resume_finishes_without_repeating_completed_turns() {
    crash::kill_and_resume(|| Some(SwarmFixture::new()), 15, 2);
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
