//! Workers on one PostgreSQL state store, through the real binary: a dozen queued runs, three
//! workers, one killed with SIGKILL mid-run; every run completes, and the only LLM requests
//! answered twice are the ones the killed worker had in flight. Also: submitting concurrently,
//! and a worker frozen past its lease that another takes over writes nothing after it wakes.

mod support;

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::crash::three_turn_script;
use support::swarm_fixture::{stderr, SwarmFixture};
use support::MockLlm;

struct Queue {
    fx: SwarmFixture,
    url: String,
}

impl Queue {
    fn new(mock: &MockLlm) -> Option<Self> {
        let url = support::postgres::fresh_database()?;
        let fx = SwarmFixture::new();
        fx.role("worker", &["memory_store"]);
        fx.swarm(&format!(
            "name: fan\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: a\n    role: worker\n    description: \"a of {{goal}}\"\n  - id: b\n    role: worker\n    description: \"b of {{goal}}\"\n    depends_on: [a]\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  stream: true\nworkspace: ./ws\ncheckpoint:\n  interval: 200ms\n",
            mock.base_url_openai()
        ));
        Some(Self { fx, url })
    }

    fn command(&self) -> Command {
        let mut cmd = self.fx.command();
        cmd.env("SWARM_STATE_DIR", &self.url)
            .env("OPENAI_API_KEY", "sk-test-worker-key");
        cmd
    }

    fn submit(&self, goal: &str) -> String {
        let out = self
            .command()
            .args(["submit", "swarm.yaml", "--goal", goal])
            .output()
            .expect("submit");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(id.len(), "20261121-162530-ab12".len(), "{id}");
        id
    }

    fn worker(&self, lease: &str) -> Child {
        self.command()
            .args([
                "worker",
                "--max-runs",
                "2",
                "--lease",
                lease,
                "--until-idle",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn worker")
    }

    fn sessions(&self) -> Vec<Value> {
        let out = self
            .command()
            .args(["sessions", "list", "--json"])
            .output()
            .expect("list");
        serde_json::from_slice::<Value>(&out.stdout)
            .expect("sessions list --json")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_workers_finish_a_dozen_runs_when_one_is_killed_mid_run() {
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(80));
    let Some(q) = Queue::new(&mock) else { return };
    let ids: Vec<String> = (0..12).map(|i| q.submit(&format!("run {i}"))).collect();
    let mut workers: Vec<Child> = (0..3).map(|_| q.worker("2s")).collect();
    assert!(
        mock.wait_for_requests_blocking(10, Duration::from_secs(60)),
        "the workers never got going"
    );
    workers[0].kill().expect("SIGKILL");
    let _ = workers[0].wait();
    for w in &mut workers[1..] {
        assert_eq!(
            wait_exit(w, Duration::from_secs(120)),
            Some(0),
            "a worker did not go idle"
        );
    }
    let sessions = q.sessions();
    assert_eq!(sessions.len(), 12);
    for s in &sessions {
        assert_eq!(s["status"], "completed", "{s}");
        assert!(ids.contains(&s["id"].as_str().unwrap_or_default().to_string()));
    }
    // 12 runs x 2 tasks x 3 turns, each answered once, but for the killed worker's in-flight
    // calls (at most one per run it held).
    let requests = mock.requests();
    let distinct = requests
        .iter()
        .filter(|r| r.succeeded)
        .map(|r| r.body.as_str())
        .collect::<std::collections::HashSet<&str>>()
        .len();
    assert_eq!(distinct, 12 * 2 * 3);
    let repeated = mock.repeated_successful_requests();
    assert!(
        repeated <= 2,
        "{repeated} answered requests were sent again"
    );
}

#[test]
fn concurrent_submits_each_get_their_own_session() {
    let mock = MockLlm::spawn(three_turn_script());
    let Some(q) = Queue::new(&mock) else { return };
    let q = std::sync::Arc::new(q);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let q = std::sync::Arc::clone(&q);
            std::thread::spawn(move || q.submit(&format!("concurrent {i}")))
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    let sessions = q.sessions();
    assert_eq!(sessions.len(), 8);
    assert!(
        sessions.iter().all(|s| s["status"] == "queued"),
        "{sessions:?}"
    );
}

#[test]
fn a_worker_frozen_past_its_lease_is_taken_over_and_writes_nothing_after_it_wakes() {
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(150));
    let Some(q) = Queue::new(&mock) else { return };
    let id = q.submit("frozen");
    let mut first = q.worker("1s");
    assert!(mock.wait_for_requests_blocking(2, Duration::from_secs(30)));
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGSTOP) }, 0);
    let mut second = q.worker("1s");
    assert_eq!(
        wait_exit(&mut second, Duration::from_secs(60)),
        Some(0),
        "the second worker took the run over and finished it"
    );
    let finished = q.sessions();
    assert_eq!(finished[0]["status"], "completed", "{finished:?}");
    let events_before = count_events(&q, &id);
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGCONT) }, 0);
    assert!(
        wait_exit(&mut first, Duration::from_secs(30)).is_some(),
        "the woken worker stops"
    );
    assert_eq!(
        count_events(&q, &id),
        events_before,
        "the woken worker wrote nothing"
    );
    assert_eq!(q.sessions()[0]["status"], "completed");
}

fn count_events(q: &Queue, id: &str) -> usize {
    let out = q
        .command()
        .args(["sessions", "log", id, "--json"])
        .output()
        .expect("log");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn sigterm_interrupts_a_workers_run_resumably_and_another_worker_finishes_it() {
    let mock = MockLlm::spawn(three_turn_script());
    mock.set_latency(Duration::from_millis(300));
    let Some(q) = Queue::new(&mock) else { return };
    let id = q.submit("terminated");
    let mut worker = q
        .command()
        .args(["worker", "--lease", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    // Task a answered twice, task b under way: the run is mid-way.
    assert!(
        mock.wait_for_requests_blocking(3, Duration::from_secs(30)),
        "the worker never got going"
    );
    let in_flight = mock.in_flight();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(
        wait_exit(&mut worker, Duration::from_secs(20)),
        Some(130),
        "a worker stopped by SIGTERM exits 130"
    );
    let out = q
        .command()
        .args(["sessions", "show", &id, "--json"])
        .output()
        .expect("show");
    let shown: Value = serde_json::from_slice(&out.stdout).expect("sessions show --json");
    assert_eq!(
        shown["status"], "queued",
        "back in the queue for the next worker: {shown}"
    );
    assert!(
        shown["metrics"]["llm_calls"].as_u64() >= Some(2),
        "the journal keeps the answered calls: {shown}"
    );
    assert!(
        shown["runner_pid"].is_null(),
        "the lease is released: {shown}"
    );
    let mut next = q.worker("30s");
    assert_eq!(
        wait_exit(&mut next, Duration::from_secs(60)),
        Some(0),
        "a second worker finishes the interrupted run"
    );
    assert_eq!(q.sessions()[0]["status"], "completed");
    let distinct = mock
        .requests()
        .iter()
        .filter(|r| r.succeeded)
        .map(|r| r.body.clone())
        .collect::<std::collections::HashSet<String>>()
        .len();
    assert_eq!(distinct, 2 * 3, "every turn answered");
    let repeated = mock.repeated_successful_requests();
    assert!(
        repeated <= in_flight.max(1),
        "{repeated} answered requests were sent again ({in_flight} in flight at SIGTERM)"
    );
}
