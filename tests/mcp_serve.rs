//! `swarm mcp` as a real process: an rmcp client over stdio drives claude-flow's flow
//! (swarm_init → task_orchestrate → swarm_status → memory → report), and the official Python
//! SDK does the same.

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const SWARM: &str = env!("CARGO_BIN_EXE_swarm");

async fn connect(state_dir: &Path, extra: &[&str]) -> RunningService<RoleClient, ()> {
    let mut cmd = tokio::process::Command::new(SWARM);
    cmd.arg("mcp")
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .current_dir(state_dir.parent().expect("a parent"));
    let process = TokioChildProcess::new(cmd).expect("swarm mcp starts");
    tokio::time::timeout(Duration::from_secs(20), ().serve(process))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

/// Calls a tool; returns (is_error, text, structured content).
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> (bool, String, Value) {
    let mut params = CallToolRequestParams::new(tool.to_string());
    params.arguments = args.as_object().cloned();
    let result = client
        .peer()
        .call_tool(params)
        .await
        .expect("the call is answered");
    let value = serde_json::to_value(&result).expect("serializable");
    let is_error = value["isError"].as_bool().unwrap_or(false);
    let text = value["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (is_error, text, value["structuredContent"].clone())
}

async fn ok(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let (is_error, text, structured) = call(client, tool, args).await;
    assert!(!is_error, "{tool} failed: {text}");
    if structured.is_null() {
        Value::String(text)
    } else {
        structured
    }
}

/// Polls swarm_status until the session leaves queued/running.
async fn wait_end(client: &RunningService<RoleClient, ()>, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = ok(client, "swarm_status", json!({"swarmId": id})).await;
        let s = status["status"].as_str().unwrap_or_default().to_string();
        if s != "queued" && s != "running" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the session did not end in time: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_flow_flow_over_stdio() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let client = connect(&state, &["--provider", "simulated"]).await;

    let tools = client.peer().list_all_tools().await.unwrap();
    let tools = serde_json::to_value(&tools).unwrap();
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in [
        "swarm_init",
        "task_orchestrate",
        "swarm_status",
        "swarm_destroy",
        "memory_usage",
        "memory_search",
        "session_list",
        "session_report",
        "session_resume",
        "agent_list",
        "task_status",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let annotation = |tool: &str, hint: &str| {
        tools
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == tool)
            .unwrap()["annotations"][hint]
            .as_bool()
    };
    assert_eq!(annotation("swarm_status", "readOnlyHint"), Some(true));
    assert_eq!(annotation("session_report", "readOnlyHint"), Some(true));
    assert_eq!(annotation("swarm_destroy", "destructiveHint"), Some(true));
    assert_eq!(annotation("task_orchestrate", "readOnlyHint"), Some(false));

    // Errors are tool errors with the CLI's words.
    let (is_error, text, _) = call(&client, "swarm_init", json!({"swarm": "no-such-swarm"})).await;
    assert!(is_error, "{text}");
    assert!(text.contains("no-such-swarm"), "{text}");
    let (is_error, text, _) = call(&client, "memory_usage", json!({"action": "explode"})).await;
    assert!(is_error && text.contains("store, retrieve"), "{text}");

    let init = ok(
        &client,
        "swarm_init",
        json!({"swarm": "development", "maxAgents": 3}),
    )
    .await;
    let id = init["swarmId"].as_str().expect("swarmId").to_string();
    assert_eq!(init["status"], "queued");
    assert_eq!(init["maxAgents"], 3);
    let (is_error, text, _) = call(
        &client,
        "swarm_status",
        json!({"swarmId": "20990101-000000-dead"}),
    )
    .await;
    assert!(is_error && text.contains("20990101-000000-dead"), "{text}");
    let queued = ok(&client, "swarm_status", json!({"swarmId": id})).await;
    assert_eq!(queued["status"], "queued", "{queued}");

    let started = ok(
        &client,
        "task_orchestrate",
        json!({"swarmId": id, "task": "a health endpoint", "priority": "high"}),
    )
    .await;
    assert_eq!(started["started"], true);
    let status = wait_end(&client, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["goal"], "a health endpoint");
    let tasks = status["tasks"].as_array().unwrap();
    assert!(
        !tasks.is_empty() && tasks.iter().all(|t| t["status"] == "done"),
        "{status}"
    );
    assert!(
        status["metrics"]["llmCalls"].as_u64().unwrap() > 0,
        "{status}"
    );

    // A started session is not started twice.
    let (is_error, text, _) = call(
        &client,
        "task_orchestrate",
        json!({"swarmId": id, "task": "again"}),
    )
    .await;
    assert!(is_error && text.contains("already started"), "{text}");

    let one = tasks[0]["taskId"].as_str().unwrap();
    let task = ok(
        &client,
        "task_status",
        json!({"swarmId": id, "taskId": one}),
    )
    .await;
    assert_eq!(task["task"]["status"], "done");
    let agents = ok(&client, "agent_list", json!({"swarmId": id})).await;
    assert!(!agents["agents"].as_array().unwrap().is_empty(), "{agents}");

    // Project memory, as claude-flow's session handoff uses it.
    ok(
        &client,
        "memory_usage",
        json!({"action": "store", "key": "session/development/state",
        "namespace": "session-management", "value": {"step": 3}, "ttl": 3600}),
    )
    .await;
    let got = ok(
        &client,
        "memory_usage",
        json!({"action": "retrieve", "key": "session/development/state",
        "namespace": "session-management"}),
    )
    .await;
    assert_eq!(got["value"], json!({"step": 3}));
    assert!(got["entry"]["expires"].is_string(), "{got}");
    let found = ok(
        &client,
        "memory_search",
        json!({"pattern": "session/*/state"}),
    )
    .await;
    assert_eq!(found["count"], 1, "{found}");
    let (is_error, text, _) = call(
        &client,
        "memory_usage",
        json!({"action": "retrieve", "key": "nope"}),
    )
    .await;
    assert!(is_error && text.contains("not found"), "{text}");
    // The CLI sees the same project memory.
    let out = std::process::Command::new(SWARM)
        .args([
            "memory",
            "get",
            "session/development/state",
            "--namespace",
            "session-management",
            "--state-dir",
        ])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"step\":3"),
        "{out:?}"
    );

    let report = ok(&client, "session_report", json!({"sessionId": id})).await;
    assert!(
        report.as_str().unwrap().contains("a health endpoint"),
        "{report}"
    );
    let list = ok(&client, "session_list", json!({})).await;
    assert!(
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["sessionId"] == id.as_str()),
        "{list}"
    );
    client.cancel().await.unwrap();
}

/// The Python interpreter with the official `mcp` SDK, or why there is none.
fn python_mcp() -> Option<String> {
    match std::env::var("SWARM_TEST_PYTHON_MCP") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SWARM_TEST_PYTHON_MCP is not set: run `eval \"$(bash .ci/services)\"`"
            );
            eprintln!(
                "skipped: SWARM_TEST_PYTHON_MCP is not set (a python3 with the `mcp` package)"
            );
            None
        }
    }
}

#[test]
fn the_official_python_sdk_drives_a_session() {
    let Some(python) = python_mcp() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(SWARM)
        .arg(&state)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout.trim().strip_prefix("ok ").expect("ok <id>");
    // The session it ran is in the state dir, completed, as the CLI sees it.
    let show = std::process::Command::new(SWARM)
        .args(["sessions", "show", id, "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["status"], "completed");
}
