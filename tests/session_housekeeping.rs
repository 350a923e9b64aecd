//! `swarm sessions delete` and `swarm sessions prune` through the real binary, on a SQLite state
//! dir and on PostgreSQL: what they delete, what they keep (fresh and live sessions), and what
//! `--dry-run` and `--status` change.

mod session_common;
mod support;

use assert_cmd::Command;
use session_common::plan;
use std::path::Path;
use swarm_runtime::session::{SessionStatus, StateDir};

const DAY_MS: i64 = 86_400_000;

fn swarm(location: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .arg("--state-dir")
        .arg(location)
        .env_remove("SWARM_STATE_DIR")
        .assert()
}

fn out(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

fn err(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn ids(dir: &StateDir) -> Vec<String> {
    let mut ids: Vec<_> = dir.list().unwrap().into_iter().map(|s| s.id).collect();
    ids.sort();
    ids
}

/// Moves a session's last activity `days` into the past, as if it had not run since.
fn age(location: &Path, id: &str, days: i64) {
    let when = swarm_runtime::clock::now_ms() as i64 - days * DAY_MS;
    let sql = "UPDATE sessions SET updated_ms = $1 WHERE id = $2";
    match location.to_str().filter(|l| l.starts_with("postgres")) {
        None => {
            let conn =
                rusqlite::Connection::open(location.join(swarm_runtime::session::DB_FILE)).unwrap();
            let changed = conn
                .execute(&sql.replace('$', "?"), rusqlite::params![when, id])
                .unwrap();
            assert_eq!(changed, 1);
        }
        Some(url) => {
            let (url, id) = (url.to_string(), id.to_string());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async {
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    let pump = tokio::spawn(conn);
                    let changed = client.execute(sql, &[&when, &id]).await.unwrap();
                    assert_eq!(changed, 1);
                    drop(client);
                    let _ = pump.await;
                });
            })
            .join()
            .unwrap();
        }
    }
}

fn housekeeping(location: &Path) {
    let dir = StateDir::open(location).unwrap();
    let new = |status: SessionStatus| {
        let id = dir.create_session(&plan(), Some("goal")).unwrap();
        dir.set_status(&id, status).unwrap();
        id
    };
    let old_done = new(SessionStatus::Completed);
    let old_failed = new(SessionStatus::Failed);
    let fresh = new(SessionStatus::Completed);
    let live = new(SessionStatus::Running);
    let held = dir.lock(&live).unwrap();
    for id in [&old_done, &old_failed, &live] {
        age(location, id, 10);
    }

    let dry = swarm(
        location,
        &["sessions", "prune", "--older-than", "7d", "--dry-run"],
    )
    .success();
    let text = out(&dry);
    assert!(
        text.contains(&format!("would delete session {old_done}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("would delete session {old_failed}")),
        "{text}"
    );
    assert!(!text.contains(&fresh) && !text.contains(&live), "{text}");
    assert!(
        err(&dry).contains("would delete 2 session(s)"),
        "{}",
        err(&dry)
    );
    assert_eq!(ids(&dir).len(), 4, "a dry run deletes nothing");

    let only_failed = swarm(
        location,
        &[
            "sessions",
            "prune",
            "--older-than",
            "7d",
            "--status",
            "failed",
        ],
    )
    .success();
    assert!(out(&only_failed).contains(&format!("deleted session {old_failed} (failed")));
    let mut expect = vec![old_done.clone(), fresh.clone(), live.clone()];
    expect.sort();
    assert_eq!(ids(&dir), expect);

    // A session a live process holds is refused; the others named with it are still deleted.
    let refused = swarm(
        location,
        &["sessions", "delete", &live, &old_done, "nosuch"],
    )
    .code(1);
    assert!(
        err(&refused).contains("is being run by"),
        "{}",
        err(&refused)
    );
    assert!(err(&refused).contains("nosuch"), "{}", err(&refused));
    assert!(out(&refused).contains(&format!("deleted session {old_done}")));
    let mut expect = vec![fresh.clone(), live.clone()];
    expect.sort();
    assert_eq!(ids(&dir), expect);
    assert!(
        dir.load(&old_done).is_err(),
        "a deleted session cannot be loaded"
    );

    // Its runner gone, the session is interrupted and can go.
    drop(held);
    let deleted = swarm(location, &["sessions", "delete", &live]).success();
    assert!(out(&deleted).contains(&format!("deleted session {live}")));
    assert_eq!(ids(&dir), vec![fresh.clone()]);

    let bad = swarm(
        location,
        &[
            "sessions",
            "prune",
            "--older-than",
            "7d",
            "--status",
            "running",
        ],
    )
    .code(2);
    assert!(err(&bad).contains("not a status to prune"), "{}", err(&bad));
}

#[test]
fn delete_and_prune_on_a_state_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    housekeeping(&root);
    // The database file alone holds the result (no deleted rows left only in the WAL).
    let conn = rusqlite::Connection::open(root.join(swarm_runtime::session::DB_FILE)).unwrap();
    let events: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE session NOT IN (SELECT id FROM sessions)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let snapshots: i64 = conn
        .query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    let sessions: i64 = conn
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    let plans: i64 = conn
        .query_row(
            "SELECT count(*) FROM plans WHERE session NOT IN (SELECT id FROM sessions)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((sessions, snapshots), (1, 0));
    assert_eq!(events, 0, "no events of deleted sessions remain");
    assert_eq!(plans, 0, "no plans of deleted sessions remain");
}

#[test]
fn delete_and_prune_on_postgres() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    housekeeping(Path::new(&url));
}
