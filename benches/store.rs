//! The state store on both backends in one run: durable events per second through the
//! backend-neutral journal (concurrent writers awaiting their commit acks), runs started per
//! second (the store's own calls: create + lease on SQLite, enqueue + claim on PostgreSQL), and
//! on PostgreSQL the takeover time after a worker dies (`swarm worker --lease 2s` killed with
//! SIGKILL once the mock has seen a call; a second worker resumes the run).
//!
//! PostgreSQL comes from `--pg URL` or `SWARM_TEST_POSTGRES_URL` (a superuser URL: the bench
//! creates its own database); without either, the PostgreSQL rows are skipped, saying so.
//! `cargo bench --bench store -- [--pg URL] [--events N] [--runs N]`.

#[allow(dead_code)]
#[path = "support/mock.rs"]
mod mock;
mod shared;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use swarm_runtime::session::StateDir;

const WRITERS: usize = 8;

/// Durable events per second: `WRITERS` tasks append `events / WRITERS` events each, every
/// append awaiting its ack (the commit that holds it).
fn events_per_second(location: &Path, events: usize) -> f64 {
    let store = StateDir::open(location).expect("open the state store");
    let id = store
        .create_session(&shared::plan("store benchmark"), None)
        .expect("session");
    let lease = store.lock(&id).expect("lease");
    let journal = store.open_journal(&id, &lease).expect("journal");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let per = events / WRITERS;
    let start = Instant::now();
    rt.block_on(async {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    for n in 0..per {
                        journal
                            .append(shared::turn(w, n as u32))
                            .await
                            .expect("durable ack");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
    });
    (per * WRITERS) as f64 / start.elapsed().as_secs_f64()
}

/// Runs started per second, measured at the store: SQLite creates a session and takes its
/// lease (what `swarm run` does before its first call); PostgreSQL queues a run (`swarm
/// submit`) and a worker's claim takes it.
fn runs_per_second(location: &Path, runs: usize) -> f64 {
    let store = StateDir::open(location).expect("open the state store");
    let plan = shared::plan("store benchmark");
    let start = Instant::now();
    match store.queue() {
        None => {
            let mut leases = Vec::with_capacity(runs);
            for _ in 0..runs {
                let id = store.create_session(&plan, None).expect("create");
                leases.push(store.lock(&id).expect("lease"));
            }
        }
        Some(queue) => {
            for _ in 0..runs {
                queue.enqueue(&plan, None).expect("enqueue");
            }
            // Held until the end: a dropped lease frees the run for the next claim.
            let mut held = Vec::with_capacity(runs);
            while let Some(claimed) = queue.claim().expect("claim") {
                held.push(claimed);
            }
            assert_eq!(
                held.len(),
                runs,
                "claimed {} of {runs} queued runs",
                held.len()
            );
        }
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

/// Polls the mock's request count until it reaches `count`; when it did (bounded).
fn wait_requests(mock: &mock::MockLlm, count: u64, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if mock.counters.requests.load(Ordering::SeqCst) >= count {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

struct Takeover {
    /// SIGKILL to the first call of the resumed run.
    from_kill: Duration,
    /// The dead worker's lease expiry to that call (negative: taken over before it expired,
    /// because the claim saw the lease holder's pid dead on this host).
    from_expiry_ms: i64,
}

/// One run, two turns per task; a worker with a 2 s lease killed after the first call; the
/// second worker's first call is the resumed run's.
fn takeover(url: &str) -> Takeover {
    let mock = mock::MockLlm::start(Duration::from_millis(300), 3, 0).expect("mock LLM");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("agents")).expect("agents dir");
    std::fs::write(
        dir.path().join("agents/worker.md"),
        "---\nname: worker\ndescription: bench worker\ntools: [memory_store]\nmax_turns: 8\n---\nDo the task.\n",
    )
    .expect("role");
    std::fs::write(
        dir.path().join("swarm.yaml"),
        format!(
            "name: takeover\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: a\n    role: worker\n    description: \"a of {{goal}}\"\nllm:\n  provider: openai\n  model: m\n  base_url: {}\nworkspace: ./ws\n",
            mock.base_url()
        ),
    )
    .expect("swarm file");
    let swarm = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
        cmd.current_dir(dir.path())
            .env("SWARM_STATE_DIR", url)
            .env("OPENAI_API_KEY", "sk-bench")
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let out = swarm(&["submit", "swarm.yaml", "--goal", "takeover"])
        .output()
        .expect("submit");
    assert!(out.status.success(), "swarm submit failed");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut first = swarm(&["worker", "--lease", "2s"])
        .stdout(Stdio::null())
        .spawn()
        .expect("first worker");
    wait_requests(&mock, 1, Duration::from_secs(30)).expect("the first worker made a call");
    let seen = mock.counters.requests.load(Ordering::SeqCst);
    first.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = first.wait();
    let expiry_ms = lease_expiry(url, &id);
    let killed_ms = swarm_runtime::clock::now_ms() as i64 - killed.elapsed().as_millis() as i64;
    let mut second = swarm(&["worker", "--lease", "2s", "--until-idle"])
        .stdout(Stdio::null())
        .spawn()
        .expect("second worker");
    let resumed = wait_requests(&mock, seen + 1, Duration::from_secs(30))
        .expect("the second worker resumed the run");
    let from_kill = resumed - killed;
    let status = second.wait().expect("second worker");
    assert!(status.success(), "the second worker did not finish the run");
    Takeover {
        from_kill,
        from_expiry_ms: killed_ms + from_kill.as_millis() as i64 - expiry_ms,
    }
}

fn lease_expiry(url: &str, id: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        let pump = tokio::spawn(connection);
        let row = client
            .query_one("SELECT lock_expires_ms FROM sessions WHERE id = $1", &[&id])
            .await
            .expect("the session's lease");
        drop(client);
        let _ = pump.await;
        row.get::<_, Option<i64>>(0).unwrap_or_default()
    })
}

/// A new database on `server` for one measure of this run.
fn fresh_database(server: &str, measure: &str) -> String {
    let name = format!("swarm_bench_{measure}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        let pump = tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the bench database");
        drop(client);
        let _ = pump.await;
    });
    let mut url = url::Url::parse(server).expect("a postgres:// URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = arg(&args, "--events").map_or(2000, |n| n.parse().expect("--events N"));
    let runs: usize = arg(&args, "--runs").map_or(100, |n| n.parse().expect("--runs N"));
    let server = arg(&args, "--pg").or_else(|| std::env::var("SWARM_TEST_POSTGRES_URL").ok());

    let sqlite = tempfile::tempdir().expect("temp dir");
    eprintln!("sqlite: durable events");
    let sqlite_events = events_per_second(&sqlite.path().join("events"), events);
    eprintln!("sqlite: runs started");
    let sqlite_runs = runs_per_second(&sqlite.path().join("runs"), runs);
    let pg = server.map(|server| {
        let url = fresh_database(&server, "events");
        eprintln!("postgres: durable events");
        let events = events_per_second(Path::new(&url), events);
        let url = fresh_database(&server, "runs");
        eprintln!("postgres: runs started");
        let runs = runs_per_second(Path::new(&url), runs);
        let url = fresh_database(&server, "takeover");
        (events, runs, takeover(&url))
    });

    println!("state store: {events} durable events ({WRITERS} writers), {runs} runs started");
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "measure", "sqlite", "postgres", "pg/sqlite"
    );
    let row = |name: &str, s: f64, p: Option<f64>| match p {
        Some(p) => println!("{name:<44} {s:>12.0} {p:>12.0} {:>8.2}", p / s),
        None => println!("{name:<44} {s:>12.0} {:>12} {:>8}", "skipped", "-"),
    };
    row("durable events/s", sqlite_events, pg.as_ref().map(|p| p.0));
    row(
        "runs started/s (store calls)",
        sqlite_runs,
        pg.as_ref().map(|p| p.1),
    );
    match &pg {
        Some((_, _, t)) => {
            println!(
                "{:<44} {:>12} {:>12.0}",
                "takeover ms, SIGKILL to resumed call",
                "n/a",
                t.from_kill.as_secs_f64() * 1000.0
            );
            println!(
                "{:<44} {:>12} {:>12}",
                "takeover ms, lease expiry to resumed call", "n/a", t.from_expiry_ms
            );
        }
        None => println!(
            "PostgreSQL skipped: pass --pg URL or set SWARM_TEST_POSTGRES_URL (a superuser URL)"
        ),
    }
}
