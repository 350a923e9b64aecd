//! An error of the state store after work started (disk full) stops the run with exit 4 and one
//! message; the session stays resumable and a resume after the cause is fixed repeats no task
//! that was done. Real `swarm` processes, the mock LLM over HTTP, a real tmpfs as the state dir.

mod support;

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::swarm_fixture::{context, stderr, stdout, SwarmFixture};
use support::{MockLlm, MockReply, Script};

const MESSAGE: &str = "the session is saved; resume when the cause is fixed";

/// A tmpfs mounted for the test, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?
            .success();
        ok.then(|| Self(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_full_disk_stops_the_run_with_exit_4_and_a_resume_repeats_no_done_task() {
    if !root() {
        if std::env::var_os("CI").is_some() {
            panic!("CI runs this test as root (it mounts a tmpfs)");
        }
        eprintln!("skipped: needs root to mount a small tmpfs as the state dir");
        return;
    }
    // Every answer is large, so that a few tasks fill the state dir.
    let big = "lorem ipsum dolor sit amet ".repeat(6_000);
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&asked);
    let mock = MockLlm::spawn(Script::from_fn(move |r| {
        let task = context(&r.messages)
            .get("task")
            .cloned()
            .unwrap_or_default();
        log.lock().push(task.clone());
        MockReply::text(format!("result of {task}: {big}"))
    }));
    let fx = SwarmFixture::new();
    fx.role("writer", &["memory_store"]);
    let tasks: Vec<String> = (1..=12).map(|i| format!("t{i:02}")).collect();
    let mut yaml =
        "name: filler\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: writer\ntasks:\n"
            .to_string();
    for (i, task) in tasks.iter().enumerate() {
        yaml.push_str(&format!(
            "  - id: {task}\n    role: writer\n    description: write part {i}\n"
        ));
        if i > 0 {
            yaml.push_str(&format!("    depends_on: [{}]\n", tasks[i - 1]));
        }
    }
    yaml.push_str(&format!(
        "llm:\n  provider: openai\n  model: m\n  base_url: {}\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    fx.swarm(&yaml);
    let state = fx.path().join("state");
    let Some(tmpfs) = Tmpfs::mount(&state, "1m") else {
        panic!("could not mount a tmpfs at {}", state.display());
    };
    let state_arg = state.to_str().unwrap().to_string();

    let out = fx.run(&["run", "swarm.yaml", "--state-dir", &state_arg]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}\n{}", stdout(&out));
    assert_eq!(
        err.matches("stopped by an error: ").count(),
        1,
        "said once: {err}"
    );
    assert!(err.contains(MESSAGE), "{err}");
    assert!(
        err.to_lowercase().contains("full"),
        "the cause is named: {err}"
    );
    assert!(
        !err.lines()
            .any(|l| l.starts_with("error:") || l.contains("failed")),
        "no other error or failure line: {err}"
    );
    let first_run: Vec<String> = asked.lock().clone();
    assert!(
        first_run.len() < tasks.len(),
        "the disk filled before the end: {first_run:?}"
    );

    tmpfs.resize("64m");
    let show = fx.run(&[
        "sessions",
        "show",
        "latest",
        "--json",
        "--state-dir",
        &state_arg,
    ]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).expect("json");
    assert_ne!(shown["status"], "failed", "{shown}");
    assert_ne!(shown["status"], "completed", "{shown}");
    let done: Vec<String> = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "done")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] != "failed"),
        "no task is recorded as failed: {shown}"
    );
    assert!(!done.is_empty(), "some tasks were done first: {shown}");

    let resumed = fx.run(&["resume", "latest", "--state-dir", &state_arg]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&resumed),
        stdout(&resumed)
    );
    let second_run: Vec<String> = asked.lock()[first_run.len()..].to_vec();
    for task in &done {
        assert!(
            !second_run.contains(task),
            "{task} was done before and asked again: {second_run:?}"
        );
    }
    // Every task was asked for at least once, and only the one in flight when the disk filled
    // may have been asked twice.
    let mut all: Vec<String> = asked.lock().clone();
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(all.len(), tasks.len(), "{all:?}");
    assert!(total <= tasks.len() + 1, "{total} requests");
}
