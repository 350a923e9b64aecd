//! `swarm memory` on a session that is running: a value set from the command line reaches the
//! agents, and survives the runner's snapshots.

mod support;

use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

#[test]
fn a_value_set_from_the_cli_reaches_a_running_swarm() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        match tool_results(&r.messages).first() {
            None => MockReply::tool("memory_retrieve", json!({"key": "from-cli"})),
            Some((_, content, _)) => MockReply::text(format!("retrieved: {content}")),
        }
    }));
    // Long enough for the runner to pick up the change before the first turn's answer arrives.
    mock.set_latency(Duration::from_millis(1500));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_retrieve"]);
    fx.swarm(&format!(
        "name: live\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: t\n    role: worker\n    description: read it\nllm:\n  provider: openai\n  model: m\n  base_url: {}\ncheckpoint:\n  interval: 100ms\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    let child = fx
        .command()
        .args(["run", "swarm.yaml", "--goal", "live"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(mock.wait_for_requests_blocking(1, Duration::from_secs(30)));
    let set = fx.run(&[
        "memory",
        "set",
        "from-cli",
        "\"hello from the cli\"",
        "--session",
        "latest",
    ]);
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let last = mock.request_json(mock.request_count() - 1).to_string();
    assert!(
        last.contains("hello from the cli"),
        "the agent saw the value: {last}"
    );
    let get = fx.run(&["memory", "get", "from-cli", "--session", "latest"]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(stdout(&get).contains("hello from the cli"));
}
