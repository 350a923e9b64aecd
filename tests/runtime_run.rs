//! The runtime end to end: the real `swarm` binary against the mock LLM server over HTTP.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::swarm_fixture::{context, stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, MockRequest, Script};

fn llm_block(mock: &MockLlm, stream: bool) -> String {
    format!(
        "llm:\n  provider: openai\n  model: test-model\n  base_url: {}\n  stream: {stream}\n",
        mock.base_url_openai()
    )
}

fn mesh_swarm(
    name: &str,
    max_agents: u32,
    roster: &str,
    tasks: &[(&str, &str, &[&str])],
    llm: &str,
) -> String {
    let mut yaml = format!(
        "name: {name}\ntopology: mesh\nmax_agents: {max_agents}\nagents:\n{roster}tasks:\n"
    );
    for (id, role, deps) in tasks {
        yaml.push_str(&format!(
            "  - id: {id}\n    role: {role}\n    description: \"Do {id} for {{goal}}\"\n    depends_on: [{}]\n",
            deps.join(", ")
        ));
    }
    yaml.push_str(llm);
    yaml.push_str("workspace: ./ws\n");
    yaml
}

fn task_of(request: &MockRequest) -> String {
    context(&request.messages)
        .get("task")
        .cloned()
        .unwrap_or_default()
}

#[test]
fn peak_concurrency_equals_max_agents_on_a_wide_graph() {
    let mock = MockLlm::spawn(Script::text("done"));
    mock.set_latency(Duration::from_millis(150));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    let tasks: Vec<(String, &str, &[&str])> = (1..=8)
        .map(|i| (format!("t{i}"), "worker", &[][..]))
        .collect();
    let tasks: Vec<(&str, &str, &[&str])> =
        tasks.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    fx.swarm(&mesh_swarm(
        "wide",
        3,
        "  - role: worker\n    count: 8\n",
        &tasks,
        &llm_block(&mock, false),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "width"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.request_count(), 8);
    assert_eq!(
        mock.peak_in_flight(),
        3,
        "max_agents is both a cap and really used"
    );
    let summary = stdout(&out);
    assert!(summary.contains("completed: all 8 tasks done"), "{summary}");
}

#[test]
fn a_dependency_chain_runs_one_task_at_a_time_in_order() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        MockReply::text(format!("result of {}", task_of(r)))
    }));
    mock.set_latency(Duration::from_millis(30));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "chain",
        4,
        "  - role: worker\n    count: 4\n",
        &[
            ("d", "worker", &["c"]),
            ("c", "worker", &["b"]),
            ("b", "worker", &["a"]),
            ("a", "worker", &[]),
        ],
        &llm_block(&mock, true),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "order"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.peak_in_flight(), 1);
    let order: Vec<String> = (0..mock.request_count())
        .map(|i| {
            let body = mock.request_json(i);
            let first = body["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            swarm_runtime::runtime::prompt::parse_context(&first)["task"].clone()
        })
        .collect();
    assert_eq!(order, ["a", "b", "c", "d"]);
    let b_prompt = mock.request_json(1)["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(b_prompt.contains("### a (by worker-"), "{b_prompt}");
    assert!(b_prompt.contains("result of a"), "{b_prompt}");
    // The result is stored in memory under the contract's key.
    let get = fx.run(&["memory", "get", "chain/d/result", "--session", "latest"]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(stdout(&get).contains("result of d"));
}

/// The coordinator plans two tasks, workers try to message each other (refused) and then the
/// coordinator (delivered), and the synthesis sees both results and the messages.
#[test]
fn hierarchical_coordinator_plans_workers_report_and_synthesis_receives_results() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let ctx = context(&r.messages);
        let results = tool_results(&r.messages);
        match ctx.get("phase").map(String::as_str) {
            Some("plan") if results.is_empty() => MockReply::tool(
                "create_task",
                json!({"id": "w1", "role": "worker", "description": "first part"}),
            )
            .with_tool(
                "create_task",
                json!({"id": "w2", "role": "worker", "description": "second part", "depends_on": ["w1"]}),
            ),
            Some("plan") => MockReply::tool("complete_task", json!({"result": "planned w1 and w2"})),
            Some("synthesize") if results.is_empty() => MockReply::tool("read_messages", json!({})),
            Some("synthesize") => MockReply::text("final synthesis"),
            _ => {
                let agent = ctx["agent"].clone();
                let peer = if agent == "worker-1" { "worker-2" } else { "worker-1" };
                match results.len() {
                    0 => MockReply::tool("send_message", json!({"to": peer, "body": "hi peer"})),
                    1 => MockReply::tool(
                        "send_message",
                        json!({"to": "lead", "body": format!("{} reporting on {}", agent, ctx["task"])}),
                    ),
                    _ => MockReply::text(format!("result from {}", ctx["task"])),
                }
            }
        }
    }));
    let fx = SwarmFixture::new();
    fx.role(
        "lead",
        &[
            "create_task",
            "read_messages",
            "send_message",
            "complete_task",
        ],
    );
    fx.role("worker", &["send_message", "complete_task"]);
    fx.swarm(&format!(
        "name: tree\ntopology: hierarchical\ncoordinator: lead\nmax_agents: 3\nagents:\n  - role: worker\n    count: 2\n{}workspace: ./ws\n",
        llm_block(&mock, true)
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "ship it"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    let requests: Vec<Value> = (0..mock.request_count())
        .map(|i| mock.request_json(i))
        .collect();
    let text = |v: &Value| v.to_string();
    // The create_task schema offers exactly the roster's worker roles.
    let plan_tools = &requests[0]["tools"];
    let create = plan_tools
        .as_array()
        .and_then(|tools| {
            tools
                .iter()
                .find(|t| t["function"]["name"] == "create_task")
        })
        .expect("create_task offered to the coordinator");
    assert_eq!(
        create["function"]["parameters"]["properties"]["role"]["enum"],
        json!(["worker"])
    );
    // A worker's message to a peer was refused with a tool error that names the coordinator.
    assert!(requests.iter().any(|r| {
        let t = text(r);
        t.contains("workers message only the coordinator") && t.contains("lead-1")
    }));
    // w2 depends on w1 and got its result.
    assert!(requests.iter().any(|r| {
        let t = text(r);
        t.contains("Task `w2`") && t.contains("result from w1")
    }));
    // The synthesis received both results and the messages sent to the coordinator.
    let synthesis: Vec<&Value> = requests
        .iter()
        .filter(|r| text(r).contains("phase: synthesize"))
        .collect();
    assert!(!synthesis.is_empty());
    let last = text(synthesis[synthesis.len() - 1]);
    assert!(
        last.contains("result from w1") && last.contains("result from w2"),
        "{last}"
    );
    assert!(
        last.contains("reporting on w1") && last.contains("reporting on w2"),
        "{last}"
    );

    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_slice(&show.stdout).expect("sessions show --json");
    let ids: Vec<&str> = show["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["plan", "w1", "w2", "synthesis"]);
    assert!(show["tasks"]
        .as_array()
        .is_some_and(|t| t.iter().all(|t| t["status"] == "done")));
    assert_eq!(show["status"], "completed");
}

#[test]
fn mesh_messages_reach_their_recipient() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let ctx = context(&r.messages);
        if ctx["role"] == "writer" && !r.has_tool_result() {
            MockReply::tool(
                "send_message",
                json!({"to": "reader", "body": "the schema is v2"}),
            )
        } else {
            MockReply::text(format!("{} done", ctx["task"]))
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("writer", &["send_message"]);
    fx.role("reader", &["read_messages"]);
    fx.swarm(&mesh_swarm(
        "talk",
        2,
        "  - role: writer\n  - role: reader\n",
        &[("write", "writer", &[]), ("read", "reader", &["write"])],
        &llm_block(&mock, false),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "talk"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reader_brief = (0..mock.request_count())
        .map(|i| {
            mock.request_json(i)["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .find(|b| b.contains("Task `read`"))
        .expect("the reader ran");
    assert!(
        reader_brief.contains("- from writer-1: the schema is v2"),
        "{reader_brief}"
    );
}

#[test]
fn file_tools_never_leave_the_workspace() {
    let mock = MockLlm::spawn(Script::from_fn(|r| match tool_results(&r.messages).len() {
        0 => MockReply::tool(
            "write_file",
            json!({"path": "../escape.txt", "content": "x"}),
        )
        .with_tool(
            "write_file",
            json!({"path": "notes/ok.md", "content": "inside"}),
        )
        .with_tool("read_file", json!({"path": "/etc/hostname"})),
        _ => MockReply::text("done"),
    }));
    let fx = SwarmFixture::new();
    fx.role("worker", &["write_file", "read_file"]);
    fx.swarm(&mesh_swarm(
        "files",
        1,
        "  - role: worker\n",
        &[("t", "worker", &[])],
        &llm_block(&mock, false),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "escape"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!fx.path().join("escape.txt").exists());
    assert_eq!(
        std::fs::read_to_string(fx.path().join("ws/notes/ok.md")).expect("written inside"),
        "inside"
    );
    let last = mock.request_json(mock.request_count() - 1);
    let tool_messages: Vec<&Value> = last["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["role"] == "tool").collect())
        .unwrap_or_default();
    assert_eq!(tool_messages.len(), 3);
    let escape = tool_messages[0]["content"].as_str().unwrap_or("");
    let absolute = tool_messages[2]["content"].as_str().unwrap_or("");
    assert!(escape.contains(".."), "{escape}");
    assert!(absolute.to_lowercase().contains("absolute"), "{absolute}");
}

#[test]
fn every_predefined_swarm_completes_on_the_simulated_provider() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut names: Vec<_> = std::fs::read_dir(format!("{repo}/swarms"))
        .expect("swarms/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6);
    for swarm in names {
        let fx = SwarmFixture::new();
        let out = fx
            .command()
            .args(["run"])
            .arg(&swarm)
            .args(["--goal", "a password reset endpoint"])
            .output()
            .expect("run");
        let (so, se) = (stdout(&out), stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {so}\n{se}",
            swarm.display()
        );
        assert!(se.contains("provider: simulated"), "{se}");
        assert!(so.contains("completed: all"), "{so}");
        // Results are in memory and marked as simulated.
        let list = fx.run(&["memory", "search", "**/result", "--session", "latest"]);
        assert!(stdout(&list).contains("[simulated]"), "{}", stdout(&list));
    }
}

#[test]
fn the_loop_guard_fails_a_task_that_repeats_itself() {
    let mock = MockLlm::spawn(Script::from_fn(|_| {
        MockReply::tool("memory_store", json!({"key": "same", "value": 1}))
    }));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "loop",
        2,
        "  - role: worker\n",
        &[("spin", "worker", &[]), ("after", "worker", &["spin"])],
        &llm_block(&mock, false),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "spin"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("loop guard"), "{summary}");
    assert!(
        summary.contains("blocked"),
        "dependents are blocked: {summary}"
    );
    assert_eq!(mock.request_count(), 3);
}

#[test]
fn an_api_error_fails_the_task_with_the_api_message_and_the_key_stays_secret() {
    let mock = MockLlm::spawn(Script::text("unused"));
    mock.push_fault(support::Fault::bad_request(
        "The model `test-model` does not exist",
    ));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "bad",
        1,
        "  - role: worker\n",
        &[("t", "worker", &[])],
        &llm_block(&mock, true),
    ));
    let secret = "sk-test-7f3a9c1e5b";
    let out = fx
        .command()
        .env("OPENAI_API_KEY", secret)
        .args(["run", "swarm.yaml", "--goal", "x", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(mock.request_count(), 1, "a 400 is not retried");
    assert_eq!(
        mock.requests()[0].api_key.as_deref(),
        Some(secret),
        "the key is sent"
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("does not exist"), "{all}");
    assert!(!all.contains(secret));
    for entry in walk(&fx.path().join(".swarm")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the key is in {}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
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
fn hooks_run_on_events_with_the_session_in_their_environment() {
    let mock = MockLlm::spawn(Script::text("ok"));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    let mut yaml = mesh_swarm(
        "hooked",
        2,
        "  - role: worker\n    count: 2\n",
        &[("a", "worker", &[]), ("b", "worker", &["a"])],
        &llm_block(&mock, false),
    );
    yaml.push_str(
        "hooks:\n  session-start: 'echo \"start $SWARM_SESSION\" >> hooks.log'\n  post-task: 'echo \"post $SWARM_TASK_ID $SWARM_ROLE $SWARM_STATUS\" >> hooks.log'\n  session-end: 'echo \"end $SWARM_STATUS\" >> hooks.log'\n  pre-task: 'exit 3'\n",
    );
    fx.swarm(&yaml);
    let out = fx.run(&["run", "swarm.yaml", "--goal", "hooks"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a failing hook never stops the swarm: {}",
        stderr(&out)
    );
    // One line for the failing hook, however many tasks it failed on, and the count at the end.
    assert_eq!(
        stderr(&out).matches("hook pre-task failed:").count(),
        1,
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("hook pre-task failed 2 times in all"),
        "{}",
        stderr(&out)
    );
    let log = std::fs::read_to_string(fx.path().join("hooks.log")).expect("hooks ran");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].starts_with("start 2"), "{log}");
    assert!(
        lines.contains(&"post a worker done") && lines.contains(&"post b worker done"),
        "{log}"
    );
    assert_eq!(lines.last(), Some(&"end completed"), "{log}");
}

#[test]
fn json_output_is_one_event_per_line() {
    let mock = MockLlm::spawn(Script::tool_then_text(
        "memory_store",
        json!({"key": "k", "value": "v"}),
        "done",
    ));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "jsonl",
        2,
        "  - role: worker\n    count: 2\n",
        &[("a", "worker", &[]), ("b", "worker", &[])],
        &llm_block(&mock, true),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "json", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(json!("session_started"))
    );
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("session_ended"))
    );
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("task_completed"), 2);
    assert_eq!(count("turn_completed"), 4);
    assert_eq!(count("tool_completed"), 2);
    assert!(
        count("memory_changed") >= 4,
        "tool writes and results are memory events"
    );
}

#[test]
fn a_swarm_runs_against_the_anthropic_protocol_by_changing_only_the_provider() {
    let mock = MockLlm::spawn(Script::tool_then_text(
        "memory_store",
        json!({"key": "k", "value": "v"}),
        "done",
    ));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "claude",
        1,
        "  - role: worker\n",
        &[("a", "worker", &[])],
        "",
    ));
    let out = fx.run(&[
        "run",
        "swarm.yaml",
        "--goal",
        "x",
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &mock.base_url_anthropic(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.protocol == support::Protocol::Anthropic));
    assert_eq!(mock.request_count(), 2);
    assert!(
        stderr(&out).contains("provider: anthropic"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_task_blocks_its_dependents_transitively_and_resume_retries_them() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        MockReply::text(format!("{} ok", task_of(r)))
    }));
    mock.push_fault(support::Fault::bad_request("context length exceeded"));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "blocked",
        1,
        "  - role: worker\n",
        &[
            ("c", "worker", &["b"]),
            ("a", "worker", &[]),
            ("b", "worker", &["a"]),
            ("d", "worker", &[]),
        ],
        &llm_block(&mock, false),
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = stdout(&out);
    let line = |id: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("a").contains("failed") && line("a").contains("context length exceeded"),
        "{summary}"
    );
    assert!(
        line("b").contains("blocked") && line("b").contains("`a`"),
        "{summary}"
    );
    assert!(
        line("c").contains("blocked") && line("c").contains("`b`"),
        "{summary}"
    );
    assert!(line("d").contains("done"), "{summary}");
    assert_eq!(
        mock.request_count(),
        2,
        "only a (failed) and d asked the LLM"
    );

    let resumed = fx.run(&["resume", "latest"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(
        stdout(&resumed).contains("all 4 tasks done"),
        "{}",
        stdout(&resumed)
    );
    assert_eq!(mock.request_count(), 5, "d is not asked again");
}

#[test]
fn retried_llm_faults_are_counted_in_the_session_metrics() {
    let mock = MockLlm::spawn(Script::text("done"));
    mock.push_faults([
        support::Fault::rate_limited_ms(20),
        support::Fault::server_error(),
    ]);
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&mesh_swarm(
        "retry",
        1,
        "  - role: worker\n",
        &[("t", "worker", &[])],
        &llm_block(&mock, true),
    ));
    // Without NO_COLOR: stderr is a pipe, which alone must keep ANSI colour out.
    let out = fx
        .command()
        .env_remove("NO_COLOR")
        .args(["run", "swarm.yaml", "--goal", "x"])
        .output()
        .expect("run swarm");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.request_count(), 3);
    let err = stderr(&out);
    let retry_lines: Vec<&str> = err.lines().filter(|l| l.contains("trying again")).collect();
    assert_eq!(retry_lines.len(), 2, "{}", stderr(&out));
    for line in &retry_lines {
        assert!(
            line.contains("agent=worker-1") && line.contains("task=t"),
            "a retry line names its agent and task: {line}"
        );
    }
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "no ANSI escapes on a pipe: {:?}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("retries 2"), "{}", stdout(&out));
    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(show["metrics"]["retries"], 2);
    assert_eq!(show["metrics"]["llm_calls"], 1);
}

/// A coordinator whose plan creates nothing: the summary and the report warn; the synthesis is
/// final, so it is not offered `create_task` and a call to it anyway is refused.
#[test]
fn hierarchical_synthesis_is_final_and_an_empty_plan_is_a_warning() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let ctx = context(&r.messages);
        let results = tool_results(&r.messages);
        match ctx.get("phase").map(String::as_str) {
            Some("plan") => MockReply::tool("complete_task", json!({"result": "nothing to plan"})),
            Some("synthesize") if results.is_empty() => MockReply::tool(
                "create_task",
                json!({"id": "late", "role": "worker", "description": "one more"}),
            ),
            _ => MockReply::text("final synthesis"),
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("lead", &["create_task", "complete_task"]);
    fx.role("worker", &["complete_task"]);
    fx.swarm(&format!(
        "name: tree\ntopology: hierarchical\ncoordinator: lead\nagents:\n  - role: worker\n{}workspace: ./ws\n",
        llm_block(&mock, false)
    ));
    let out = fx.run(&["run", "swarm.yaml", "--goal", "ship it"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("warning: the coordinator's plan created no tasks"),
        "{}",
        stdout(&out)
    );
    let requests: Vec<Value> = (0..mock.request_count())
        .map(|i| mock.request_json(i))
        .collect();
    assert_eq!(
        requests.len(),
        3,
        "plan, synthesis, synthesis after the refusal"
    );
    let offered = |r: &Value| {
        r["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "create_task"))
    };
    assert!(offered(&requests[0]), "the plan may create tasks");
    assert!(!offered(&requests[1]), "the synthesis may not");
    assert!(
        requests[2]
            .to_string()
            .contains("the synthesis has started and is final"),
        "a create_task call from the synthesis is refused"
    );
    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_str(&stdout(&show)).expect("json");
    let ids: Vec<&str> = show["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["plan", "synthesis"], "no task was added");
    let report = stdout(&fx.run(&["sessions", "report", "latest"]));
    assert!(
        report.contains("**Warning**: the coordinator's plan created no tasks"),
        "{report}"
    );
}
