//! `swarm run --lease` on a PostgreSQL store: a foreground run frozen (SIGSTOP) past its short
//! lease is taken over by a worker, which finishes it long before the default lease would expire.

mod support;

use serde_json::json;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::swarm_fixture::{tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

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
fn a_frozen_foreground_run_with_a_short_lease_is_taken_over_by_a_worker() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        let done = tool_results(&r.messages).len();
        if done < 3 {
            MockReply::tool(
                "memory_store",
                json!({"key": format!("k{done}"), "value": 1}),
            )
        } else {
            MockReply::text("finished")
        }
    }));
    mock.set_latency(Duration::from_millis(200));
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&format!(
        "name: leased\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: a\n    role: worker\n    description: \"a of {{goal}}\"\nllm:\n  provider: openai\n  model: m\n  base_url: {}\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    let command = || {
        let mut cmd = fx.command();
        cmd.env("SWARM_STATE_DIR", &url)
            .env("OPENAI_API_KEY", "sk-test-lease-key");
        cmd
    };
    let mut run = command()
        .args(["run", "swarm.yaml", "--goal", "g", "--lease", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    assert!(
        mock.wait_for_requests_blocking(1, Duration::from_secs(30)),
        "the run never called"
    );
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGSTOP) }, 0);
    let mut worker = command()
        .args(["worker", "--lease", "1s", "--until-idle"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    // The default lease (30s) would keep the worker waiting far longer than this.
    let code = wait_exit(&mut worker, Duration::from_secs(15));
    // SAFETY: as above.
    unsafe { libc::kill(run.id() as i32, libc::SIGKILL) };
    let _ = run.wait();
    let mut said = String::new();
    if let Some(mut err) = worker.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut said);
    }
    assert_eq!(
        code,
        Some(0),
        "the worker took over the frozen run and finished it"
    );
    let out = command()
        .args(["sessions", "list", "--json"])
        .output()
        .expect("list");
    let sessions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = sessions[0]["id"].as_str().unwrap_or_default().to_string();
    let shown = command()
        .args(["sessions", "show", &id])
        .output()
        .expect("show");
    let said = format!("{said}\n{}", String::from_utf8_lossy(&shown.stdout));
    assert_eq!(sessions[0]["status"], "completed", "{sessions}\n{said}");
}
