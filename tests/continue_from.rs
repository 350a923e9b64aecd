//! `swarm run --continue-from`: a new session whose agents start from an earlier session's
//! handoff, checked by what the mock LLM receives, and named by `sessions show` and the report.

mod support;

use serde_json::json;
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

#[test]
fn continue_from_hands_the_earlier_session_to_the_new_one() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        if tool_results(&r.messages).is_empty() {
            MockReply::tool(
                "complete_task",
                json!({"result": format!("finished: {}", support::swarm_fixture::brief(&r.messages).lines().next().unwrap_or(""))}),
            )
        } else {
            MockReply::text("ok")
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("worker", &["complete_task"]);
    fx.swarm(&format!(
        "name: dev\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: api\n    role: worker\n    description: \"Build {{goal}}\"\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  stream: false\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    let first = fx.run(&["run", "swarm.yaml", "--goal", "the login endpoint"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let first_id = stderr(&first)
        .lines()
        .find_map(|l| l.strip_prefix("session: "))
        .unwrap()
        .trim()
        .to_string();
    let before = mock.request_count();

    let second = fx.run(&[
        "run",
        "swarm.yaml",
        "--goal",
        "the logout endpoint",
        "--continue-from",
        "latest",
    ]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let first_message = mock.request_json(before).to_string();
    assert!(
        first_message.contains(&format!("Handoff from session {first_id}")),
        "{first_message}"
    );
    assert!(first_message.contains("the login endpoint"), "the old goal");
    assert!(first_message.contains("finished: "), "what was done");

    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(shown["continued_from"], json!(first_id));
    let report = stdout(&fx.run(&["sessions", "report", "latest"]));
    assert!(
        report.contains(&format!("Continues session**: {first_id}")),
        "{report}"
    );

    let bad = fx.run(&["run", "swarm.yaml", "--continue-from", "nosuch"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(stderr(&bad).contains("nosuch"), "{}", stderr(&bad));
}
