//! `run_command`: real `sh -c` processes in a temporary workspace.

use serde_json::{json, Value};
use std::fs;
use std::time::{Duration, Instant};
use swarm_runtime::spec::ToolName;
use swarm_runtime::tools::command::{run_command, CommandPolicy};
use swarm_runtime::tools::files::execute;
use swarm_runtime::tools::workspace::Workspace;
use tempfile::TempDir;

fn workspace() -> (TempDir, Workspace) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ws = Workspace::open(dir.path()).expect("open workspace");
    (dir, ws)
}

fn policy(timeout: Duration, output_cap: usize) -> CommandPolicy {
    CommandPolicy {
        timeout,
        output_cap,
        sandbox: None,
    }
}

fn parse(content: &str) -> Value {
    serde_json::from_str(content).unwrap_or_else(|e| panic!("not JSON ({e}): {content}"))
}

/// Whether the process exits within `limit`. SIGKILL is asynchronous: a killed process can
/// still be tearing down after its pipes closed, so this waits on a pidfd instead of looking once.
fn exits_within(pid: &str, limit: Duration) -> bool {
    let pid: libc::pid_t = pid.trim().parse().expect("a pid");
    // SAFETY: plain syscalls on integers; the returned descriptor is closed below.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int;
        if fd < 0 {
            // ESRCH: already gone and reaped.
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ready = libc::poll(&mut poll, 1, limit.as_millis() as libc::c_int);
        libc::close(fd);
        ready == 1
    }
}

#[tokio::test]
async fn output_and_exit_code_are_reported() {
    let (_dir, ws) = workspace();
    let p = policy(Duration::from_secs(10), 4096);

    let out = run_command(&ws, "echo hello; echo oops >&2; exit 3", &p).await;
    assert!(out.is_error, "a non-zero exit is flagged");
    let result = parse(&out.content);
    assert_eq!(result["exit_code"], 3);
    let output = result["output"].as_str().unwrap();
    assert!(
        output.contains("hello\n") && output.contains("oops\n"),
        "{output}"
    );

    let out = run_command(&ws, "pwd", &p).await;
    assert!(!out.is_error, "{}", out.content);
    let result = parse(&out.content);
    assert_eq!(result["exit_code"], 0);
    assert_eq!(
        result["output"].as_str().unwrap().trim(),
        ws.root().to_str().unwrap(),
        "commands run in the workspace root"
    );
}

#[tokio::test]
async fn stdin_is_closed() {
    let (_dir, ws) = workspace();
    let start = Instant::now();
    let out = run_command(
        &ws,
        "cat; echo done",
        &policy(Duration::from_secs(10), 4096),
    )
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cat must see EOF at once"
    );
    assert_eq!(parse(&out.content)["output"], "done\n");
}

#[tokio::test]
async fn timeout_kills_the_command_and_its_children() {
    let (_dir, ws) = workspace();
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let out = run_command(
        &ws,
        "sh -c 'sleep 30' & echo $! > child.pid; echo started; sleep 30",
        &policy(timeout, 4096),
    )
    .await;
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout, "stopped early: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "not killed in time: {elapsed:?}"
    );
    assert!(out.is_error);
    let result = parse(&out.content);
    assert_eq!(result["timed_out"], true);
    assert_eq!(result["exit_code"], Value::Null);
    assert_eq!(
        result["output"], "started\n",
        "output before the timeout is kept"
    );
    assert!(
        result["note"].as_str().unwrap().contains("300ms"),
        "{result}"
    );

    let child = fs::read_to_string(ws.root().join("child.pid")).unwrap();
    assert!(
        exits_within(&child, Duration::from_secs(2)),
        "the background child {child} survived"
    );
}

#[tokio::test]
async fn background_processes_do_not_outlive_a_finished_command() {
    let (_dir, ws) = workspace();
    let start = Instant::now();
    let out = run_command(
        &ws,
        "sleep 30 & echo $! > bg.pid; echo finished",
        &policy(Duration::from_secs(20), 4096),
    )
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited for the background sleep"
    );
    assert!(!out.is_error, "{}", out.content);
    let pid = fs::read_to_string(ws.root().join("bg.pid")).unwrap();
    assert!(
        exits_within(&pid, Duration::from_secs(2)),
        "background process {pid} survived"
    );
}

#[tokio::test]
async fn long_output_is_cut_in_the_middle() {
    let (_dir, ws) = workspace();
    let out = run_command(
        &ws,
        "echo FIRST; i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done; echo LAST",
        &policy(Duration::from_secs(20), 1000),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    let output = parse(&out.content)["output"].as_str().unwrap().to_string();
    assert!(output.starts_with("FIRST\n"), "the head is kept");
    assert!(output.ends_with("LAST\n"), "the tail is kept");
    assert!(output.contains("bytes of output cut here"), "{output}");
    assert!(
        output.len() < 1200,
        "cap not applied: {} bytes",
        output.len()
    );
}

#[tokio::test]
async fn commands_are_refused_unless_allowed() {
    let (_dir, ws) = workspace();
    let args = json!({"command": "touch made.txt"});
    let out = execute(&ws, ToolName::RunCommand, &args, None).await;
    assert!(out.is_error);
    assert_eq!(
        out.content,
        "commands are not allowed in this swarm (allow_commands: false)"
    );
    assert!(!ws.root().join("made.txt").exists());

    let allowed = CommandPolicy::default();
    let out = execute(&ws, ToolName::RunCommand, &args, Some(&allowed)).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(ws.root().join("made.txt").exists());

    let out = execute(
        &ws,
        ToolName::RunCommand,
        &json!({"cmd": "ls"}),
        Some(&allowed),
    )
    .await;
    assert!(out.is_error);
    assert!(
        out.content.contains(r#"expected {"command": string}"#),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn secrets_are_not_in_the_environment() {
    // std serialises environment access with process spawning, so tests running in parallel
    // see either the old or the new environment, never a torn one.
    std::env::set_var("OPENAI_API_KEY", "sk-openai-leak");
    std::env::set_var("ANTHROPIC_API_KEY", "sk-ant-leak");
    std::env::set_var("SWARM_TEST_GITHUB_TOKEN", "ghp-leak");
    std::env::set_var("SWARM_TEST_SECRET", "secret-leak");
    std::env::set_var("SWARM_TEST_VISIBLE", "plain-value");
    let (_dir, ws) = workspace();
    let out = run_command(&ws, "env", &policy(Duration::from_secs(10), 1 << 20)).await;
    let env = parse(&out.content)["output"].as_str().unwrap().to_string();
    assert!(env.contains("SWARM_TEST_VISIBLE=plain-value"), "{env}");
    for leak in ["sk-openai-leak", "sk-ant-leak", "ghp-leak", "secret-leak"] {
        assert!(!env.contains(leak), "{leak} visible to the command");
    }
}
