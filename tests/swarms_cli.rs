//! Built-in swarms by name through the real binary: `swarm swarms list|show`, `swarm run NAME`,
//! `swarm init --from NAME`, and the per-session workspace default.

mod support;

use serde_json::Value;
use support::swarm_fixture::{stderr, stdout, SwarmFixture};

#[test]
fn swarms_list_and_show_name_every_built_in_swarm() {
    let fx = SwarmFixture::new();
    let list = fx.run(&["swarms", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let text = stdout(&list);
    for name in ["development", "code-review", "qa-review", "sprint-planning"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        text.contains("hierarchical") && text.contains("mesh"),
        "{text}"
    );

    let show = fx.run(&["swarms", "show", "development"]);
    assert_eq!(show.status.code(), Some(0));
    assert!(stdout(&show).contains("name: development"));

    let typo = fx.run(&["swarms", "show", "developmnt"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains("did you mean `development`"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn a_bare_name_runs_the_built_in_swarm_in_its_own_workspace() {
    let fx = SwarmFixture::new();
    let out = fx.run(&[
        "run",
        "development",
        "--goal",
        "a health endpoint",
        "--provider",
        "simulated",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_str(&stdout(&show)).expect("json");
    assert_eq!(show["swarm"], "development");
    let id = show["id"].as_str().expect("id");
    let workspace = fx.path().join("workspace").join(id);
    assert!(
        workspace.is_dir(),
        "the session's own workspace {workspace:?}"
    );
    assert!(
        stdout(&out).contains(&format!("workspace/{id}")),
        "the summary names it: {}",
        stdout(&out)
    );
}

#[test]
fn an_unknown_name_is_a_clear_error_without_a_zero_position() {
    let fx = SwarmFixture::new();
    let out = fx.run(&["run", "developmen", "--goal", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("did you mean the built-in swarm `development`"),
        "{err}"
    );
    assert!(!err.contains(":0:0"), "{err}");
    let missing = fx.run(&["run", "missing.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(!stderr(&missing).contains(":0"), "{}", stderr(&missing));
}

#[test]
fn init_from_copies_a_built_in_swarm_that_validates() {
    let fx = SwarmFixture::new();
    let out = fx.run(&["init", "--from", "code-review", "review"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let copied = std::fs::read_to_string(fx.path().join("review/swarm.yaml")).expect("copied");
    assert!(copied.contains("name: code-review"));
    let valid = fx.run(&["validate", "review/swarm.yaml"]);
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
    let again = fx.run(&["init", "--from", "code-review", "review"]);
    assert_eq!(again.status.code(), Some(2), "never overwrites");
    let unknown = fx.run(&["init", "--from", "nope", "x"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(!fx.path().join("x").exists());
}

#[test]
fn sessions_without_a_named_workspace_do_not_share_files() {
    let fx = SwarmFixture::new();
    fx.role("worker", &["write_file", "complete_task"]);
    fx.swarm(
        "name: solo\ntopology: mesh\nagents:\n  - role: worker\ntasks:\n  - id: one\n    role: worker\n    description: write a file\n",
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = fx.run(&["run", "swarm.yaml", "--provider", "simulated"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let show = fx.run(&["sessions", "show", "latest", "--json"]);
        let show: Value = serde_json::from_str(&stdout(&show)).expect("json");
        ids.push(show["id"].as_str().expect("id").to_string());
    }
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        let dir = fx.path().join("workspace").join(id);
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(files > 0, "{dir:?} holds the files of its own session only");
    }
    // --workspace names one folder explicitly: shared on purpose.
    let out = fx.run(&[
        "run",
        "swarm.yaml",
        "--provider",
        "simulated",
        "--workspace",
        "shared",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(fx.path().join("shared").is_dir());
}

#[test]
fn plan_shows_roles_models_tasks_and_an_estimate_without_calling_anything() {
    let fx = SwarmFixture::new();
    // A local endpoint nobody listens on: a plan must not call it.
    let out = fx.run(&[
        "plan",
        "development",
        "--goal",
        "a health endpoint",
        "--provider",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "gpt-4o-mini",
        "--max-agents",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "swarm      development (builtin:swarms/development.yaml)",
        "at most 2 agents",
        "tech-lead",
        "gpt-4o-mini (run)",
        "create_task",
        "plan [tech-lead] (added by the runtime)",
        "Plan the work for the goal: a health endpoint",
        "input tokens",
        "list price",
        "openai (command line)",
    ] {
        assert!(text.contains(expected), "`{expected}` missing:\n{text}");
    }
    assert!(!text.contains("provider   provider"), "{text}");
    assert!(!text.contains("/./"), "{text}");
    assert!(
        !fx.path().join(".swarm").exists(),
        "a plan starts no session"
    );

    let json = fx.run(&["plan", "code-review", "--provider", "simulated", "--json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let v: Value = serde_json::from_str(&stdout(&json)).expect("one JSON object");
    assert_eq!(v["topology"], "mesh");
    assert!(v["tasks"].as_array().is_some_and(|t| t.len() >= 3), "{v}");
    assert!(v["first_wave_input_tokens"]
        .as_u64()
        .is_some_and(|n| n > 100));
    assert!(v["roles"][0]["source"]
        .as_str()
        .is_some_and(|s| s.starts_with("builtin:")));
}

#[test]
fn a_usd_budget_without_a_known_price_is_a_warning() {
    let fx = SwarmFixture::new();
    fx.role("worker", &["complete_task"]);
    fx.swarm(
        "name: solo\ntopology: mesh\nagents: [worker]\ntasks:\n  - id: one\n    role: worker\n    description: go\nbudget:\n  usd: 1.0\nllm:\n  provider: openai\n  model: my-local-model\n  base_url: http://127.0.0.1:9/v1\n",
    );
    let out = fx.run(&["plan", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the usd budget cannot count calls to my-local-model"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("cost unknown"));
}

#[test]
fn an_unknown_placeholder_is_an_error_and_a_missing_goal_a_warning() {
    let fx = SwarmFixture::new();
    fx.role("worker", &["complete_task"]);
    fx.swarm(
        "name: solo\ntopology: mesh\nagents: [worker]\ntasks:\n  - id: one\n    role: worker\n    description: \"build {gaol}\"\n",
    );
    let out = fx.run(&["validate", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown placeholder `{gaol}`"), "{err}");
    assert!(err.contains("did you mean `{goal}`"), "{err}");
    assert!(err.contains("swarm.yaml:7:"), "{err}");

    fx.swarm(
        "name: solo\ntopology: mesh\nagents: [worker]\ntasks:\n  - id: one\n    role: worker\n    description: \"build {goal}\"\n",
    );
    let out = fx.run(&["plan", "swarm.yaml", "--provider", "simulated"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tasks use {goal} but no --goal was given"),
        "{}",
        stderr(&out)
    );
    let out = fx.run(&[
        "plan",
        "swarm.yaml",
        "--provider",
        "simulated",
        "--goal",
        "x",
    ]);
    assert!(!stderr(&out).contains("no --goal"));
}
