//! A call of a tool that is not safe to repeat, in flight when the runner is killed, is never run
//! again on resume: the model is told its outcome is unknown. A tool that is safe to repeat is
//! simply run again.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

/// Waits until `path` exists, for at most `timeout`.
fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_command_in_flight_at_a_crash_is_not_run_again_and_the_model_is_told() {
    // One call of a slow command that counts its runs, then complete_task once a result is in.
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        match tool_results(&r.messages).first() {
            None => MockReply::tool(
                "run_command",
                json!({"command": "echo ran >> runs.txt; touch started; sleep 30"}),
            ),
            Some(_) => MockReply::tool("complete_task", json!({"result": "checked the runs"})),
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("deployer", &["run_command", "complete_task"]);
    fx.swarm(&format!(
        "name: deploy\ntopology: mesh\nagents:\n  - role: deployer\ntasks:\n  - id: ship\n    role: deployer\n    description: ship it\nllm:\n  provider: openai\n  model: m\n  base_url: {}\nworkspace: ./ws\nallow_commands: true\n",
        mock.base_url_openai()
    ));
    let mut child = fx
        .command()
        .args(["run", "swarm.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn swarm");
    let started = fx.path().join("ws/started");
    assert!(
        wait_for_file(&started, Duration::from_secs(30)),
        "the command never started"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let resumed = fx.run(&["resume", "latest"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&resumed),
        stderr(&resumed)
    );
    let runs = std::fs::read_to_string(fx.path().join("ws/runs.txt")).unwrap();
    assert_eq!(runs, "ran\n", "the command ran more than once");

    let last = mock.requests().last().cloned().expect("a request");
    let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
    let tool_message = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .expect("a tool result in the last request");
    let content = tool_message["content"].as_str().unwrap();
    assert!(
        content.contains("outcome unknown") && content.contains("was not run again"),
        "{content}"
    );
}
