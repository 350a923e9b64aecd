//! Provider rate limits held across the workers of one PostgreSQL database: two workers, each
//! with runs that want many requests, and `requests_per_minute: 3`. Per process, each worker
//! would send three a minute; shared, both together send three, and then both wait.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::swarm_fixture::{stderr, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

const RPM: usize = 3;

fn minute_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
        / 60_000
}

fn rows(url: &str, sql: &'static str) -> Vec<(String, i64)> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            client
                .query(sql, &[])
                .await
                .expect("query")
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        })
    })
    .join()
    .expect("query thread")
}

#[test]
fn requests_per_minute_hold_across_two_workers_of_one_database() {
    // Every run keeps calling: four tool calls, then done.
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let done = tool_results(&r.messages).len();
        if done < 4 {
            MockReply::tool(
                "memory_store",
                json!({"key": format!("k{done}"), "value": 1}),
            )
        } else {
            MockReply::text("finished")
        }
    }));
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&format!(
        "name: limited\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: a\n    role: worker\n    description: \"a of {{goal}}\"\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  requests_per_minute: {RPM}\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    let command = || {
        let mut cmd: Command = fx.command();
        cmd.env("SWARM_STATE_DIR", &url)
            .env("OPENAI_API_KEY", "sk-test-rate-key")
            .env("RUST_LOG", "swarm_runtime::llm::limit=info");
        cmd
    };
    for i in 0..4 {
        let out = command()
            .args(["submit", "swarm.yaml", "--goal", &format!("run {i}")])
            .output()
            .expect("submit");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let first_minute = minute_now();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let mut workers: Vec<Child> = (0..2)
        .map(|n| {
            let mut child = command()
                .args(["worker", "--max-runs", "2", "--lease", "30s"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn worker");
            let err = child.stderr.take().expect("stderr");
            let tx = waiting_tx.clone();
            std::thread::spawn(move || {
                let mut told = false;
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if !told && line.contains("for the shared rate limit") {
                        let _ = tx.send(n);
                        told = true;
                    }
                }
            });
            child
        })
        .collect();
    // Both workers have found the shared budget spent (each has runs that want more).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut waiting = std::collections::HashSet::new();
    while waiting.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match waiting_rx.recv_timeout(left) {
            Ok(n) => {
                waiting.insert(n);
            }
            Err(_) => break,
        }
    }
    let arrived = mock.request_count();
    let minutes = (minute_now() - first_minute + 1) as usize;
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    assert_eq!(waiting.len(), 2, "both workers wait for the shared limit");
    assert!(arrived >= 1, "the workers sent nothing");
    // Per process, each of the two would have sent RPM per minute.
    assert!(
        arrived <= RPM * minutes,
        "{arrived} requests in {minutes} minute window(s) with requests_per_minute {RPM} shared by two workers"
    );
    let counted = rows(&url, "SELECT key, requests FROM rate_windows");
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert!(
        counted[0].0.contains("openai") && !counted[0].0.contains("sk-test"),
        "the row names the provider, endpoint and model, never a key: {counted:?}"
    );
    assert!(counted[0].1 as usize <= RPM, "{counted:?}");
}
