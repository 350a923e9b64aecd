//! Project memory: entries of the state dir shared by sessions, with TTLs, versions that order
//! concurrent writers (compare-and-swap across handles), the CLI without `--session`, and agents
//! of two sessions sharing a `memory.project` namespace live.

mod support;

use serde_json::json;
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};
use swarm_runtime::session::{ProjectPut, PutOutcome, StateDir};

fn put(ns: &str, key: &str, value: serde_json::Value, expected: Option<u64>) -> ProjectPut {
    ProjectPut {
        namespace: ns.into(),
        key: key.into(),
        value,
        ttl_ms: None,
        expected_version: expected,
    }
}

#[test]
fn two_handles_share_entries_versions_order_writers_and_ttls_expire() {
    let dir = tempfile::tempdir().unwrap();
    // Two handles, as two sessions (or processes) on one state dir each have.
    let a = StateDir::open(dir.path()).unwrap();
    let b = StateDir::open_existing(dir.path()).unwrap();
    shared_by_two_handles(&a, &b);
    racing_creators(dir.path());
}

#[test]
fn on_postgres_two_handles_share_entries_versions_order_writers_and_ttls_expire() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let location = std::path::Path::new(&url);
    let a = StateDir::open(location).unwrap();
    let b = StateDir::open_existing(location).unwrap();
    shared_by_two_handles(&a, &b);
    racing_creators(location);
    // The CLI without `--session` works on the database's project memory too.
    let swarm = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("swarm")
            .unwrap()
            .args(args)
            .args(["--state-dir", &url])
            .env_remove("SWARM_STATE_DIR")
            .output()
            .unwrap()
    };
    let set = swarm(&[
        "memory",
        "set",
        "note",
        "from the cli",
        "--namespace",
        "team",
    ]);
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let got = swarm(&["memory", "get", "note", "--namespace", "team"]);
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert!(stdout(&got).contains("from the cli"), "{}", stdout(&got));
    assert_eq!(
        a.project_get("team", "note").unwrap().unwrap().entry.value,
        json!("from the cli")
    );
}

/// Eight handles create the same absent key at once: exactly one wins.
fn racing_creators(location: &std::path::Path) {
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let handle = StateDir::open_existing(location).unwrap();
                    let outcome = handle
                        .project_put(&put("coordination", "leader", json!(i), Some(0)))
                        .unwrap();
                    usize::from(matches!(outcome, PutOutcome::Stored(_)))
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(winners, 1, "compare-and-swap lets exactly one creator win");
}

fn shared_by_two_handles(a: &StateDir, b: &StateDir) {
    let key = "session/development/state";

    let PutOutcome::Stored(first) = a
        .project_put(&put(
            "session-management",
            key,
            json!({"phase": 1}),
            Some(0),
        ))
        .unwrap()
    else {
        panic!("create-if-absent on an absent key stores");
    };
    assert_eq!(first.version, 1);
    let seen = b.project_get("session-management", key).unwrap().unwrap();
    assert_eq!(seen.entry.value, json!({"phase": 1}));

    // Both read version 1; the first writer wins, the second gets a conflict naming version 2.
    let won = b
        .project_put(&put(
            "session-management",
            key,
            json!({"phase": 2}),
            Some(1),
        ))
        .unwrap();
    assert!(
        matches!(won, PutOutcome::Stored(ref e) if e.version == 2),
        "{won:?}"
    );
    let lost = a
        .project_put(&put(
            "session-management",
            key,
            json!({"phase": "x"}),
            Some(1),
        ))
        .unwrap();
    assert_eq!(lost, PutOutcome::Conflict { current: Some(2) });
    assert_eq!(
        a.project_get("session-management", key)
            .unwrap()
            .unwrap()
            .entry
            .value,
        json!({"phase": 2})
    );

    // An entry whose TTL has run out is gone for every reader, and its version is not reused.
    let mut expired = put("session-management", "short", json!("gone"), None);
    expired.ttl_ms = Some(0);
    a.project_put(&expired).unwrap();
    assert!(b
        .project_get("session-management", "short")
        .unwrap()
        .is_none());
    assert!(b
        .project_list(None)
        .unwrap()
        .iter()
        .all(|r| r.key != "short"));
    let again = b
        .project_put(&put("session-management", "short", json!("back"), Some(0)))
        .unwrap();
    assert!(
        matches!(again, PutOutcome::Stored(ref e) if e.version == 2),
        "{again:?}"
    );

    assert!(a.project_delete("session-management", key).unwrap());
    assert!(!b.project_delete("session-management", key).unwrap());
}

#[test]
fn the_cli_without_a_session_works_on_project_memory() {
    let fx = SwarmFixture::new();
    let ok = |args: &[&str]| {
        let out = fx.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    ok(&[
        "memory",
        "set",
        "session/development/state",
        r#"{"progress": "auth done"}"#,
        "--namespace",
        "session-management",
        "--ttl",
        "1d",
    ]);
    ok(&["memory", "set", "note", "plain"]);
    let got = ok(&[
        "memory",
        "get",
        "session/development/state",
        "--namespace",
        "session-management",
    ]);
    assert_eq!(got.trim(), r#"{"progress":"auth done"}"#);
    assert_eq!(ok(&["memory", "get", "note"]).trim(), "plain");
    let found = ok(&["memory", "search", "session/*/state"]);
    assert_eq!(found.lines().count(), 1, "{found}");
    let missing = fx.run(&["memory", "get", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not found"));

    let export = ok(&["memory", "export"]);
    let records: Vec<swarm_runtime::memory::MemoryRecord> = serde_json::from_str(&export).unwrap();
    assert_eq!(records.len(), 2);
    fx.write("mem.json", &export);
    ok(&["memory", "delete", "note"]);
    ok(&["memory", "import", "mem.json"]);
    assert_eq!(ok(&["memory", "list"]).lines().count(), 2);
    let state = StateDir::open_existing(&fx.path().join(".swarm")).unwrap();
    let kept = state
        .project_get("session-management", "session/development/state")
        .unwrap()
        .unwrap();
    assert!(
        kept.entry.expires_ms.is_some(),
        "the TTL survives export and import"
    );
}

const SHARED: &str = "session-management";

#[test]
fn agents_of_two_sessions_share_a_project_namespace_live() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let brief = support::swarm_fixture::brief(&r.messages);
        let results = tool_results(&r.messages);
        if !results.is_empty() {
            return MockReply::text(format!("tool said: {}", results[0].1));
        }
        if brief.contains("save the state") {
            MockReply::tool(
                "memory_store",
                json!({"key": "session/development/state", "value": {"next": "write tests"}, "namespace": SHARED}),
            )
        } else {
            MockReply::tool(
                "memory_retrieve",
                json!({"key": "session/development/state", "namespace": SHARED}),
            )
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store", "memory_retrieve"]);
    let swarm = |description: &str| {
        format!(
            "name: dev\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: t\n    role: worker\n    description: {description}\nmemory:\n  project: [{SHARED}]\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  stream: false\nworkspace: ./ws\n",
            mock.base_url_openai()
        )
    };
    fx.swarm(&swarm("save the state"));
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Visible to the CLI at once, without naming a session.
    let out = fx.run(&[
        "memory",
        "get",
        "session/development/state",
        "--namespace",
        SHARED,
    ]);
    assert_eq!(stdout(&out).trim(), r#"{"next":"write tests"}"#);

    fx.swarm(&swarm("read the state"));
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = mock.request_count() - 1;
    let body = mock.request_json(last).to_string();
    assert!(
        body.contains("write tests"),
        "the second session read it: {body}"
    );
}
