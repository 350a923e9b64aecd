//! `swarm mcp` as a real process: an rmcp client over stdio drives claude-flow's flow
//! (swarm_init → task_orchestrate → swarm_status → memory → report), and the official Python
//! SDK does the same; over streamable HTTP a bearer token is required; swarm_destroy leaves a
//! session that `swarm resume` completes.

mod support;

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{MockLlm, Script};

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
    assert!(
        text.contains("no-such-swarm") && text.contains("no built-in swarm"),
        "{text}"
    );
    assert!(
        !text.starts_with("error: "),
        "said once, as the CLI does: {text}"
    );
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

    // Memory given to the session before it starts is what it starts with.
    ok(
        &client,
        "memory_usage",
        json!({"action": "store", "key": "brief", "value": "use axum", "swarmId": id}),
    )
    .await;
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

    let brief = ok(
        &client,
        "memory_usage",
        json!({"action": "retrieve", "key": "brief", "swarmId": id}),
    )
    .await;
    assert_eq!(brief["value"], "use axum", "{brief}");
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

/// Kills the server process when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `swarm mcp --http 127.0.0.1:0` with a token; returns it and the URL it printed.
fn http_server(state: &Path) -> (Server, String) {
    let mut child = std::process::Command::new(SWARM)
        .args([
            "mcp",
            "--http",
            "127.0.0.1:0",
            "--token-env",
            "SWARM_MCP_TOKEN",
            "--provider",
            "simulated",
            "--state-dir",
        ])
        .arg(state)
        .env("SWARM_MCP_TOKEN", "s3cret-token-value")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server says where it listens")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn over_http_a_bearer_token_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (_server, url) = http_server(&state);

    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for auth in [None, Some("Bearer wrong-token-value")] {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{auth:?}");
    }

    let mut headers = std::collections::HashMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_static("Bearer s3cret-token-value"),
    );
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        ().serve(StreamableHttpClientTransport::from_config(config)),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let init = ok(&client, "swarm_init", json!({"swarm": "development"})).await;
    let id = init["swarmId"].as_str().unwrap().to_string();
    ok(
        &client,
        "task_orchestrate",
        json!({"swarmId": id, "task": "over http"}),
    )
    .await;
    let status = wait_end(&client, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    client.cancel().await.unwrap();

    // Nothing the server stored holds the token.
    for entry in walk(&state) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cret-token-value"),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn beyond_loopback_without_a_token_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(SWARM)
        .args(["mcp", "--http", "0.0.0.0:0", "--state-dir"])
        .arg(tmp.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--token-env"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destroyed_session_is_resumed_by_the_cli() {
    let mock = MockLlm::start(Script::text("done")).await;
    mock.set_latency(Duration::from_millis(400));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    slow_swarm(tmp.path());
    let base_url = mock.base_url_openai();
    let mut cmd = tokio::process::Command::new(SWARM);
    cmd.args([
        "mcp",
        "--provider",
        "openai",
        "--model",
        "m",
        "--base-url",
        &base_url,
        "--state-dir",
    ])
    .arg(&state)
    .env("OPENAI_API_KEY", "test-key")
    .current_dir(tmp.path());
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let init = ok(&client, "swarm_init", json!({"swarm": "slow.yaml"})).await;
    let id = init["swarmId"].as_str().unwrap().to_string();
    ok(
        &client,
        "task_orchestrate",
        json!({"swarmId": id, "task": "slowly"}),
    )
    .await;
    // Destroy while the first task is still waiting on the model.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = ok(&client, "swarm_status", json!({"swarmId": id})).await;
        if status["status"] == "running"
            && status["tasks"].as_array().is_some_and(|t| !t.is_empty())
        {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let destroyed = ok(&client, "swarm_destroy", json!({"swarmId": id})).await;
    assert_eq!(destroyed["destroyed"], true, "{destroyed}");
    assert_eq!(destroyed["status"], "interrupted", "{destroyed}");
    let status = ok(&client, "swarm_status", json!({"swarmId": id})).await;
    let done = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "done")
        .count();
    assert!(done < 3, "it stopped before the end: {status}");
    let (is_error, text, _) = call(&client, "swarm_destroy", json!({"swarmId": id})).await;
    assert!(is_error && text.contains("not running"), "{text}");
    client.cancel().await.unwrap();

    mock.set_latency(Duration::ZERO);
    let out = std::process::Command::new(SWARM)
        .args(["resume", &id, "--state-dir"])
        .arg(&state)
        .env("OPENAI_API_KEY", "test-key")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = std::process::Command::new(SWARM)
        .args(["sessions", "show", &id, "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["status"], "completed", "{show}");
    assert_eq!(
        show["runs"], 2,
        "one run over MCP, one by `swarm resume`: {show}"
    );
}

/// A slow swarm of three tasks in a row, for runs that are still going when the server stops.
fn slow_swarm(dir: &Path) {
    std::fs::write(
        dir.join("slow.yaml"),
        "name: slow\ntopology: mesh\nagents:\n  - role: backend-dev\ntasks:\n  - id: one\n    role: backend-dev\n    description: first {goal}\n  - id: two\n    role: backend-dev\n    description: second\n    depends_on: [one]\n  - id: three\n    role: backend-dev\n    description: third\n    depends_on: [two]\nllm:\n  stream: false\nworkspace: ./ws\n",
    )
    .unwrap();
}

/// One JSON-RPC exchange over the server's stdin/stdout: sends `request`, returns the answer
/// with the same id.
fn rpc(
    stdin: &mut std::process::ChildStdin,
    stdout: &mut impl BufRead,
    id: u64,
    method: &str,
    params: Value,
) -> Value {
    use std::io::Write;
    let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    writeln!(stdin, "{line}").unwrap();
    stdin.flush().unwrap();
    loop {
        let mut answer = String::new();
        assert!(
            stdout.read_line(&mut answer).unwrap() > 0,
            "the server closed stdout"
        );
        let answer: Value = serde_json::from_str(&answer).unwrap();
        if answer["id"] == id {
            return answer;
        }
    }
}

#[test]
fn closing_stdin_stops_the_runs_resumably() {
    server_stop_leaves_resumable_runs(|_child, stdin| drop(stdin));
}

#[test]
fn sigterm_stops_the_runs_resumably() {
    server_stop_leaves_resumable_runs(|child, stdin| {
        // SAFETY: a plain kill(2) of our own child.
        let sent = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(sent, 0);
        // Keep stdin open: the signal alone must stop it.
        std::mem::forget(stdin);
    });
}

/// Starts a slow run over stdio, stops the server with `stop` once a task is running, and checks
/// that the session was interrupted cleanly and that `swarm resume` completes it.
fn server_stop_leaves_resumable_runs(
    stop: impl FnOnce(&std::process::Child, std::process::ChildStdin),
) {
    use std::io::Write;
    let mock = MockLlm::spawn(Script::text("done"));
    mock.set_latency(Duration::from_millis(300));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    slow_swarm(tmp.path());
    let base_url = mock.base_url_openai();
    let mut child = std::process::Command::new(SWARM)
        .args([
            "mcp",
            "--provider",
            "openai",
            "--model",
            "m",
            "--base-url",
            &base_url,
            "--state-dir",
        ])
        .arg(&state)
        .env("OPENAI_API_KEY", "test-key")
        .current_dir(tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let init = rpc(
        &mut stdin,
        &mut stdout,
        1,
        "initialize",
        json!({
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert!(init["result"]["serverInfo"]["name"] == "swarm", "{init}");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    let created = rpc(
        &mut stdin,
        &mut stdout,
        2,
        "tools/call",
        json!({"name": "swarm_init", "arguments": {"swarm": "slow.yaml"}}),
    );
    let id = created["result"]["structuredContent"]["swarmId"]
        .as_str()
        .expect("swarmId")
        .to_string();
    let started = rpc(
        &mut stdin,
        &mut stdout,
        3,
        "tools/call",
        json!({"name": "task_orchestrate", "arguments": {"swarmId": id, "task": "t"}}),
    );
    assert_eq!(
        started["result"]["structuredContent"]["started"], true,
        "{started}"
    );
    // Wait until the first model call is under way, then hang up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 4;
    loop {
        let status = rpc(
            &mut stdin,
            &mut stdout,
            n,
            "tools/call",
            json!({"name": "swarm_status", "arguments": {"swarmId": id}}),
        );
        n += 1;
        let tasks = &status["result"]["structuredContent"]["tasks"];
        if tasks
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["status"] == "running"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&child, stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("writing checkpoints"), "{stderr}");

    let show = std::process::Command::new(SWARM)
        .args(["sessions", "show", &id, "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["status"], "interrupted", "{show}");
    mock.set_latency(Duration::ZERO);
    let resumed = std::process::Command::new(SWARM)
        .args(["resume", &id, "--state-dir"])
        .arg(&state)
        .env("OPENAI_API_KEY", "test-key")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
}
