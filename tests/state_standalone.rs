//! The state file stands alone and definitions cannot make a run hang or balloon: `state.db`
//! copied without its `-wal` holds every finished session, runs starting at once on a new state
//! dir all succeed, and special files and oversized definitions are refused with a clear error.

// Only the fixture is used here, not the mock LLM.
#[allow(unused_imports)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use support::swarm_fixture::{stderr, stdout, SwarmFixture};

const SIMULATED_SWARM: &str = "name: solo\ntopology: mesh\nagents:\n  - role: worker\ntasks:\n  - id: one\n    role: worker\n    description: Write notes about {goal}\nllm:\n  provider: simulated\nworkspace: ./ws\n";

fn fixture() -> SwarmFixture {
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store", "complete_task"]);
    fx.swarm(SIMULATED_SWARM);
    fx
}

fn sessions_json(fx: &SwarmFixture, state_dir: &Path) -> serde_json::Value {
    let out = fx.run(&[
        "sessions",
        "list",
        "--json",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("sessions list --json")
}

#[test]
fn state_db_copied_alone_after_a_clean_run_holds_the_finished_session() {
    let fx = fixture();
    let out = fx.run(&["run", "swarm.yaml", "--goal", "copying"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = fx.path().join(".swarm");
    let wal = state.join("state.db-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "a clean exit leaves nothing in the WAL");

    let copy = fx.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(state.join("state.db"), copy.join("state.db")).unwrap();
    let list = sessions_json(&fx, &copy);
    let sessions = list.as_array().expect("a list");
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["status"], "completed", "{list}");
}

#[test]
fn runs_started_at_once_on_a_new_state_dir_all_succeed() {
    let fx = fixture();
    const RUNS: usize = 6;
    let children: Vec<_> = (0..RUNS)
        .map(|i| {
            fx.command()
                .args(["run", "swarm.yaml", "--goal", &format!("run {i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn swarm")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let list = sessions_json(&fx, &fx.path().join(".swarm"));
    let sessions = list.as_array().expect("a list");
    assert_eq!(sessions.len(), RUNS, "{list}");
    assert!(
        sessions.iter().all(|s| s["status"] == "completed"),
        "{list}"
    );
    // No half-built database is left beside the real one.
    let stray: Vec<_> = std::fs::read_dir(fx.path().join(".swarm"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".new-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn a_fifo_as_swarm_or_role_file_is_refused_without_blocking() {
    let fx = fixture();
    let fifo = fx.path().join("pipe.yaml");
    mkfifo(&fifo);
    // Were the FIFO opened, the run would wait for a writer forever; the test harness's own
    // timeout is the bound, and the error must name the file and what it is.
    let out = fx.run(&["validate", "pipe.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("pipe.yaml"), "{err}");
    assert!(err.contains("named pipe (FIFO)"), "{err}");

    let out = fx.run(&["run", "pipe.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    std::fs::remove_file(fx.path().join("agents/worker.md")).unwrap();
    mkfifo(&fx.path().join("agents/worker.md"));
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("worker.md"), "{}", stderr(&out));
}

#[test]
fn sizes_that_multiply_work_are_bounded_with_the_limit_named() {
    let fx = fixture();
    fx.write(
        "many.yaml",
        "name: many\ntopology: mesh\nagents:\n  - role: worker\n    count: 1000\ntasks:\n  - id: one\n    role: worker\n    description: d\nllm:\n  provider: simulated\n",
    );
    let out = fx.run(&["validate", "many.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("`count` is 1000; the limit is 64"), "{err}");
    assert!(err.contains("many.yaml:5:"), "{err}");

    let mut yaml = String::from("name: wide\ntopology: mesh\nagents:\n  - role: worker\ntasks:\n");
    let over = swarm_runtime::spec::MAX_TASKS + 1;
    for i in 0..over {
        yaml.push_str(&format!(
            "  - id: t{i}\n    role: worker\n    description: d\n"
        ));
    }
    fx.write("wide.yaml", &yaml);
    let out = fx.run(&["validate", "wide.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "`tasks` lists {over} tasks; the limit is {}",
            swarm_runtime::spec::MAX_TASKS
        )),
        "{}",
        stderr(&out)
    );

    let big = "#".repeat(1024 * 1024 + 1);
    fx.write("big.yaml", &big);
    let out = fx.run(&["validate", "big.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("larger than 1048576 bytes"),
        "{}",
        stderr(&out)
    );
}
