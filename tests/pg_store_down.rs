//! A PostgreSQL state store that goes away mid-run: the run stops with exit 4 and one message
//! within a bounded time, and `swarm resume` completes once the server is back, asking again
//! only for what was in flight. A throwaway server of the test's own (never the shared one),
//! started from the machine's PostgreSQL binaries, real `swarm` processes, the mock LLM.

mod support;

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::swarm_fixture::{context, stderr, stdout, SwarmFixture};
use support::{MockLlm, MockReply, Script};

/// The folder of `initdb` and `pg_ctl`: `SWARM_TEST_PG_BIN`, else the newest installed.
fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SWARM_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A PostgreSQL server in a temp dir on a free loopback port, stopped when dropped.
struct Server {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
}

impl Server {
    fn start(bin: &Path) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if is_root() {
            // initdb and postgres refuse to run as root.
            let _ = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "swarmpg",
                ])
                .stderr(Stdio::null())
                .status();
            let ok = Command::new("chown")
                .arg("swarmpg")
                .arg(root.path())
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the server's folder");
        }
        let server = Self {
            bin: bin.to_path_buf(),
            root,
            port,
        };
        let data = server.data();
        let ok = server
            .as_pg(&server.bin.join("initdb"))
            .args([
                "-U",
                "swarm",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb")
            .success();
        assert!(ok, "initdb");
        server.pg_ctl_start();
        server
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn as_pg(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "swarmpg", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl_start(&self) {
        let ok = self
            .as_pg(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.root.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.root.path().display()
            ))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start")
            .success();
        assert!(ok, "pg_ctl start");
    }

    fn stop(&self) {
        let _ = self
            .as_pg(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    fn url(&self) -> String {
        format!("postgres://swarm@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_database_that_goes_away_stops_the_run_with_exit_4_and_a_resume_finishes_it() {
    let Some(bin) = pg_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no PostgreSQL binaries: CI installs them (.ci/services)"
        );
        eprintln!("skipped: no PostgreSQL binaries (initdb, pg_ctl)");
        return;
    };
    let server = Server::start(&bin);
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&asked);
    let mock = MockLlm::spawn(Script::from_fn(move |r| {
        let task = context(&r.messages)
            .get("task")
            .cloned()
            .unwrap_or_default();
        log.lock().push(task.clone());
        MockReply::text(format!("{task} done"))
    }));
    mock.set_latency(Duration::from_millis(300));
    let fx = SwarmFixture::new();
    fx.role("writer", &["memory_store"]);
    let tasks: Vec<String> = (1..=8).map(|i| format!("t{i}")).collect();
    let mut yaml =
        "name: pgdown\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: writer\ntasks:\n"
            .to_string();
    for (i, task) in tasks.iter().enumerate() {
        yaml.push_str(&format!(
            "  - id: {task}\n    role: writer\n    description: part {i}\n"
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
    let url = server.url();

    let mut child = fx
        .command()
        .args(["run", "swarm.yaml", "--state-dir", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm");
    assert!(
        mock.wait_for_requests_blocking(3, Duration::from_secs(60)),
        "the run never got going"
    );
    server.stop();
    let stopped_at = Instant::now();
    let deadline = stopped_at + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the runner did not stop within 60 s of the database going away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let err = stderr(&out);
    eprintln!(
        "the runner stopped {:?} after the database went away:\n{err}",
        stopped_at.elapsed()
    );
    assert_eq!(out.status.code(), Some(4), "{err}\n{}", stdout(&out));
    assert_eq!(err.matches("stopped by an error: ").count(), 1, "{err}");
    assert!(
        err.contains("the session is saved; resume when the cause is fixed"),
        "{err}"
    );
    let first_run = asked.lock().len();

    server.pg_ctl_start();
    let show = fx.run(&["sessions", "show", "latest", "--json", "--state-dir", &url]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).expect("json");
    let statuses: Vec<&str> = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap_or(""))
        .collect();
    assert!(!statuses.contains(&"failed"), "{shown}");
    let done: Vec<String> = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "done")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(done.len() >= 2, "tasks were done before: {shown}");

    let resumed = fx.run(&["resume", "latest", "--state-dir", &url]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&resumed),
        stdout(&resumed)
    );
    let second_run: Vec<String> = asked.lock()[first_run..].to_vec();
    for task in &done {
        assert!(
            !second_run.contains(task),
            "{task} was done and asked again: {second_run:?}"
        );
    }
    let mut all = asked.lock().clone();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), tasks.len(), "{all:?}");
    assert!(
        total <= tasks.len() + 1,
        "{total} requests for {} tasks",
        tasks.len()
    );
}
