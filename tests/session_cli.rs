//! `swarm sessions` and `swarm memory` through the real binary, on a state dir built through the
//! session API; and damaged state files, which must be refused with exit 2 and left untouched.

mod session_common;

use assert_cmd::Command;
use session_common::*;
use std::path::Path;
use std::sync::Arc;
use swarm_runtime::session::{Event, SessionStatus, StateDir};

fn swarm(state_dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("SWARM_STATE_DIR")
        .assert()
}

/// `swarm memory ARGS` on the latest session unless ARGS name one.
fn memory(state_dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut all = vec!["memory"];
    all.extend_from_slice(args);
    if !args.contains(&"--session") {
        all.extend_from_slice(&["--session", "latest"]);
    }
    swarm(state_dir, &all)
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// A budget-stopped session: `api` done, `tests` mid-way with a pending tool call, a blocker in
/// memory; then a snapshot and a few events after it.
fn stopped_session(root: &Path) -> String {
    let dir = StateDir::open(root).unwrap();
    let id = dir.create_session(&plan(), Some("user login API")).unwrap();
    let lock = dir.lock(&id).unwrap();
    let journal = dir.open_journal(&id, &lock).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let before = [
            started(&id),
            created("api", &[], 1_100),
            created("tests", &["api"], 1_100),
            task_started("api", "backend-dev-1", 1_200),
            turn("api", "backend-dev-1", 0, 400, 2_000),
            put(
                "development",
                "development/api/result",
                "endpoints done".into(),
                1,
            ),
            completed("api", "backend-dev-1", 2_100),
        ];
        for e in &before {
            journal.append(Arc::new(e.clone())).await.unwrap();
        }
        let covers = journal.mark().await.unwrap();
        let mut state = swarm_runtime::session::SessionState::default();
        before.iter().for_each(|e| state.apply(e));
        let memory = dir.load(&id).unwrap().memory;
        journal
            .write_snapshot(covers, &state, &memory)
            .await
            .unwrap();
        let after = [
            task_started("tests", "backend-dev-2", 2_200),
            turn("tests", "backend-dev-2", 0, 200, 3_000),
            put(
                "development",
                "sprint/blockers",
                "staging DB is down".into(),
                1,
            ),
            Event::SessionEnded {
                status: SessionStatus::BudgetStopped,
                reason: "tokens at 90% of the budget".into(),
                at_ms: 3_100,
            },
        ];
        for e in &after {
            journal.append(Arc::new(e.clone())).await.unwrap();
        }
        journal.close().await;
    });
    id
}

#[test]
fn sessions_list_show_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".swarm");
    let id = stopped_session(&root);
    let before = snapshot_of(&root);

    let list = swarm(&root, &["sessions", "list"]).success();
    let out = stdout(&list);
    assert!(
        out.contains(&id) && out.contains("budget_stopped") && out.contains("1/2"),
        "{out}"
    );

    let list = swarm(&root, &["sessions", "list", "--json"]).success();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["tasks_done"], 1);

    let show = swarm(&root, &["sessions", "show", "latest", "--json"]).success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["swarm"], "development");
    assert_eq!(v["status"], "budget_stopped");
    assert_eq!(
        v["tasks"][0],
        serde_json::json!({"id": "api", "role": "backend-dev", "status": "done", "agent": "backend-dev-1", "depends_on": [], "turns": 1, "error": null})
    );
    assert_eq!(v["tasks"][1]["status"], "running");
    assert_eq!(v["metrics"]["llm_calls"], 2);
    assert_eq!(v["metrics"]["tokens_in"], 600);
    assert_eq!(v["metrics"]["tokens_out"], 300);
    assert_eq!(v["metrics"]["retries"], 2);
    assert_eq!(v["metrics"]["elapsed_s"], 2.1);
    assert!((v["metrics"]["usd"].as_f64().unwrap() - 0.002).abs() < 1e-9);
    assert_eq!(v["health"][0]["resource"], "tokens");
    assert_eq!(v["health"][0]["used"], 900.0);
    assert_eq!(
        v["health"][0]["level"], "red",
        "900 of 1000 tokens is at stop_at"
    );
    assert_eq!(v["health"][1]["level"], "green", "2 of 10 calls");

    let show = swarm(&root, &["sessions", "show", &id]).success();
    let out = stdout(&show);
    assert!(
        out.contains("budget_stopped") && out.contains("backend-dev-2"),
        "{out}"
    );

    let report = swarm(&root, &["sessions", "report", "latest"]).success();
    let md = stdout(&report);
    for needle in [
        format!("# Handoff report: session {id}").as_str(),
        "## Completed work",
        "**api** (backend-dev, by backend-dev-1, 1 turns): api finished",
        "memory key `development/api/result` in namespace `development`",
        "## In-progress work and next steps",
        "### tests (backend-dev, running)",
        "Last assistant text: turn 0 of tests",
        "Pending tool calls: `write_file` (call-tests-0)",
        "## Blockers and decisions",
        "`sprint/blockers` (namespace `development`): staging DB is down",
        "## Metrics",
        "| backend-dev-1 | 1 | 400 | 200 | 0.0010 | 0.2 s | 1 | 0 | 1 | 0 |",
        "| **total** | 2 | 600 | 300 | 0.0020 | 0.5 s | 2 | 0 | 1 | 0 |",
        "🔴",
        format!(
            "swarm resume {id} --state-dir {} --extend-budget",
            root.display()
        )
        .as_str(),
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    assert_eq!(snapshot_of(&root), before, "reading changed the state dir");
}

#[test]
fn memory_commands_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".swarm");
    let id = stopped_session(&root);

    memory(&root, &["set", "design/decisions", r#"{"db":"postgres"}"#]).success();
    memory(&root, &["set", "notes/today", "plain text", "--ttl", "10m"]).success();
    memory(&root, &["set", "x", "1", "--namespace", "other"]).success();

    let get = memory(&root, &["get", "design/decisions"]).success();
    assert_eq!(stdout(&get).trim(), r#"{"db":"postgres"}"#);
    let get = memory(&root, &["get", "notes/today", "--session", &id]).success();
    assert_eq!(stdout(&get).trim(), "plain text");

    let missing = memory(&root, &["get", "nope"]).code(1);
    assert!(stderr(&missing).contains("not found"));

    let list = stdout(&memory(&root, &["list"]).success());
    assert_eq!(list.lines().count(), 5, "{list}");
    let list = stdout(&memory(&root, &["list", "--namespace", "other"]).success());
    assert_eq!(list.trim(), "other\tx\t1");

    let found = stdout(&memory(&root, &["search", "*/blockers"]).success());
    assert_eq!(found.lines().count(), 1, "{found}");
    let found = stdout(&memory(&root, &["search", "**"]).success());
    assert_eq!(found.lines().count(), 5);
    let found = stdout(&memory(&root, &["search", "*"]).success());
    assert_eq!(found.trim(), "other\tx\t1", "`*` does not cross `/`");
    let found = stdout(&memory(&root, &["search", "**", "--namespace", "other"]).success());
    assert_eq!(found.trim(), "other\tx\t1", "{found}");
    let invalid = memory(&root, &["search", "a/[b"]).failure();
    assert!(
        stderr(&invalid).contains("invalid glob `a/[b`"),
        "{}",
        stderr(&invalid)
    );

    memory(&root, &["delete", "x", "--namespace", "other"]).success();
    memory(&root, &["get", "x", "--namespace", "other"]).code(1);
    memory(&root, &["delete", "x", "--namespace", "other"]).code(1);

    // A second set bumps the version and keeps the creation time.
    memory(&root, &["set", "design/decisions", "sqlite"]).success();
    let export = tmp.path().join("memory.json");
    memory(&root, &["export", export.to_str().unwrap()]).success();
    let exported: Vec<swarm_runtime::memory::MemoryRecord> =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let decisions = exported
        .iter()
        .find(|r| r.key == "design/decisions")
        .unwrap();
    assert_eq!(decisions.entry.version, 2);
    assert_eq!(decisions.entry.value, "sqlite");
    let today = exported.iter().find(|r| r.key == "notes/today").unwrap();
    let ttl = today.entry.expires_ms.unwrap() - today.entry.updated_ms;
    assert_eq!(ttl, 600_000, "--ttl 10m");
    let default_ttl = decisions.entry.expires_ms.unwrap() - decisions.entry.updated_ms;
    assert_eq!(default_ttl, 24 * 3_600_000, "the swarm's memory.ttl");

    // Import into a fresh session: values and expiry times survive.
    let other = StateDir::open(&root)
        .unwrap()
        .create_session(&plan(), None)
        .unwrap();
    memory(
        &root,
        &["import", export.to_str().unwrap(), "--session", &other],
    )
    .success();
    let reexport = stdout(&memory(&root, &["export", "--session", &other]).success());
    let reimported: Vec<swarm_runtime::memory::MemoryRecord> =
        serde_json::from_str(&reexport).unwrap();
    assert_eq!(reimported.len(), exported.len());
    for (a, b) in exported.iter().zip(&reimported) {
        assert_eq!(
            (&a.namespace, &a.key, &a.entry.value),
            (&b.namespace, &b.key, &b.entry.value)
        );
        assert_eq!(
            a.entry.expires_ms, b.entry.expires_ms,
            "TTL kept for {}",
            a.key
        );
    }
}

/// Each file of `dir` with a hash of its bytes.
fn snapshot_of(dir: &Path) -> Vec<(String, u64)> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(e.path()).unwrap().hash(&mut hasher);
            (
                e.file_name().to_string_lossy().into_owned(),
                hasher.finish(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Every reading and writing command refuses the state dir with exit 2, names the file, and
/// leaves the directory byte for byte as it was.
fn assert_refused(root: &Path, expect: &str) {
    let before = snapshot_of(root);
    let db = root.join("state.db");
    for args in [
        &["sessions", "list"][..],
        &["sessions", "show", "latest", "--json"],
        &["sessions", "report", "latest"],
        &["memory", "list"],
        &["memory", "set", "k", "v"],
    ] {
        let out = swarm(root, args).code(2);
        let err = stderr(&out);
        assert!(err.contains(&db.display().to_string()), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(snapshot_of(root), before, "the state dir was modified");
}

#[test]
fn a_garbage_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("state.db"), vec![0x5a; 4096]).unwrap();
    assert_refused(tmp.path(), "not a swarm state database");
}

#[test]
fn a_truncated_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    stopped_session(tmp.path());
    let db = tmp.path().join("state.db");
    let bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() >= 8192, "a few pages to cut");
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(tmp.path(), "truncated");
}

#[test]
fn a_newer_schema_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    stopped_session(tmp.path());
    let conn = rusqlite::Connection::open(tmp.path().join("state.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert_refused(tmp.path(), "schema version 99");
}

/// A version 3 file keeps each plan in its session's row: it is read as it is (read-only) and
/// upgraded in place by a writer, and its sessions load the same either way.
#[test]
fn a_version_3_file_is_read_and_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let id = stopped_session(tmp.path());
    let expected = StateDir::open(tmp.path()).unwrap().load(&id).unwrap().plan;
    let db = tmp.path().join("state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    seqs_from_autoincrement(&conn, 0);
    one_event_per_row(&conn);
    conn.execute_batch(
        "UPDATE sessions SET plan = (SELECT plan FROM plans WHERE session = sessions.id);
         DROP TABLE plans;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);

    let out = swarm(tmp.path(), &["sessions", "show", "latest", "--json"]).success();
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let version = |db: &Path| -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&db), 3, "a reader left the file as it was");

    let dir = StateDir::open(tmp.path()).unwrap();
    assert_eq!(version(&db), swarm_runtime::session::SCHEMA_VERSION);
    let restored = dir.load(&id).unwrap();
    assert_eq!(restored.plan, expected);
    assert_eq!(restored.state.status, Some(SessionStatus::BudgetStopped));
}

/// A version 5 file has seqs from AUTOINCREMENT: its `sqlite_sequence` can be above every row left
/// (rows at the top were deleted). It is read as it is, and once upgraded its next seq still comes
/// after every seq it ever handed out.
#[test]
fn a_version_5_file_is_read_and_upgraded_without_reusing_seqs() {
    let tmp = tempfile::tempdir().unwrap();
    let id = stopped_session(tmp.path());
    let db = tmp.path().join("state.db");
    let (events, last) = {
        let dir = StateDir::open(tmp.path()).unwrap();
        let events = dir.events_after(&id, 0, 1000).unwrap();
        (events.len(), events.last().unwrap().seq as i64)
    };
    let high = last + 40;
    let conn = rusqlite::Connection::open(&db).unwrap();
    seqs_from_autoincrement(&conn, high);
    conn.pragma_update(None, "user_version", 5).unwrap();
    drop(conn);
    let version = |db: &Path| -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };

    let out = swarm(tmp.path(), &["sessions", "show", "latest", "--json"]).success();
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    assert_eq!(version(&db), 5, "a reader left the file as it was");

    let dir = StateDir::open(tmp.path()).unwrap();
    assert_eq!(version(&db), swarm_runtime::session::SCHEMA_VERSION);
    dir.append_external(&id, &[Event::Checkpoint { at_ms: 9_000 }])
        .unwrap();
    let after = dir.events_after(&id, 0, 1000).unwrap();
    assert_eq!(after.len(), events + 1);
    assert_eq!(after.last().unwrap().seq as i64, high + 1);
    assert_eq!(
        dir.load(&id).unwrap().state.status,
        Some(SessionStatus::BudgetStopped)
    );
}

/// Rewrites `events` as files before version 6 hold it: AUTOINCREMENT, with `sqlite_sequence` at
/// `sequence`, and no `seq_high`.
fn seqs_from_autoincrement(conn: &rusqlite::Connection, sequence: i64) {
    conn.execute_batch(&format!(
        "DROP TRIGGER events_keep_seq_high;
         DROP TABLE seq_high;
         DROP INDEX events_by_session;
         ALTER TABLE events RENAME TO events_v6;
         CREATE TABLE events (
             seq     INTEGER PRIMARY KEY AUTOINCREMENT,
             session TEXT NOT NULL REFERENCES sessions(id),
             origin  TEXT NOT NULL CHECK (origin IN ('runner', 'external')),
             body    BLOB NOT NULL,
             n       INTEGER NOT NULL DEFAULT 1
         );
         CREATE INDEX events_by_session ON events(session, seq);
         INSERT INTO events SELECT * FROM events_v6;
         DROP TABLE events_v6;
         UPDATE sqlite_sequence SET seq = MAX(seq, {sequence}) WHERE name = 'events';"
    ))
    .unwrap();
}

/// Rewrites `events` as files before version 5 hold it: a row per event, no count column.
fn one_event_per_row(conn: &rusqlite::Connection) {
    let rows: Vec<(i64, String, String, i64, Vec<u8>)> = conn
        .prepare("SELECT seq, session, origin, n, body FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    conn.execute_batch("DELETE FROM events; ALTER TABLE events DROP COLUMN n;")
        .unwrap();
    for (seq, session, origin, n, body) in rows {
        for (i, event) in body.split(|&b| b == b'\n').enumerate() {
            conn.execute(
                "INSERT INTO events (seq, session, origin, body) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![seq - n + 1 + i as i64, session, origin, event],
            )
            .unwrap();
        }
    }
}

#[test]
fn a_foreign_sqlite_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("state.db")).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    assert_refused(tmp.path(), "not one written by swarm");
}

#[test]
fn a_missing_state_dir_or_session_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(".swarm");
    let out = swarm(&root, &["sessions", "list"]).code(2);
    assert!(stderr(&out).contains("run `swarm run` first"));
    assert!(!root.exists(), "reading does not create the state dir");

    let id = stopped_session(&root);
    let out = swarm(&root, &["sessions", "show", "20200101-000000-0000"]).code(2);
    let err = stderr(&out);
    assert!(
        err.contains("no session `20200101-000000-0000`") && err.contains(&id),
        "{err}"
    );
}
