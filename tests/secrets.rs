//! The API keys are out of reach of what agents run and out of everything stored or printed:
//! real `swarm` processes, the mock LLM over HTTP, a real `sh` reading `/proc`.

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

const OPENAI_KEY: &str = "sk-test-openai-5e1f0c9a7b3d";
const ANTHROPIC_KEY: &str = "sk-ant-test-2b8d4f6a0c1e";

/// Finds the runner among the shell's ancestors (the process named `swarm`) and says whether
/// its environment and memory can be opened and, if so, whether the keys' names are in it.
const PROBE: &str = r#"p=$$
while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != swarm ]; do read -r _ _ _ p _ < /proc/$p/stat; done
echo "runner=$p"
if tr '\0' '\n' < /proc/$p/environ > env.txt 2>/dev/null; then
  echo "environ=readable keys=$(grep -c -e '^OPENAI_API_KEY=' -e '^ANTHROPIC_API_KEY=' env.txt) path=$(grep -c '^PATH=' env.txt)"
else
  echo "environ=denied"
fi
if (exec 3< /proc/$p/mem) 2>/dev/null; then echo "mem=open"; else echo "mem=denied"; fi
echo "parent_keys=$(tr '\0' '\n' < /proc/$PPID/environ 2>/dev/null | grep -c -e '^OPENAI_API_KEY=' -e '^ANTHROPIC_API_KEY=')"
echo "own_keys=$(env | grep -c -e '^OPENAI_API_KEY=' -e '^ANTHROPIC_API_KEY=')"
"#;

fn swarm_yaml(mock: &MockLlm) -> String {
    format!(
        "name: probe\ntopology: mesh\nagents:\n  - role: prober\ntasks:\n  - id: look\n    role: prober\n    description: look around\nllm:\n  provider: openai\n  model: m\n  base_url: {}\nworkspace: ./ws\nallow_commands: true\n",
        mock.base_url_openai()
    )
}

/// Runs the probe once, then completes the task with its output.
fn probe_script() -> Script {
    Script::from_fn(|r| match tool_results(&r.messages).first() {
        None => MockReply::tool("run_command", json!({"command": PROBE})),
        Some((_, content, _)) => MockReply::tool(
            "complete_task",
            json!({"result": format!("probe: {content}")}),
        ),
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Neither key is in any file of the state dir (raw bytes: the database, its WAL, reports).
fn assert_state_dir_clean(state_dir: &Path) {
    let files = files_under(state_dir);
    assert!(!files.is_empty(), "no state dir at {}", state_dir.display());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for key in [OPENAI_KEY, ANTHROPIC_KEY] {
            let found = bytes.windows(key.len()).any(|w| w == key.as_bytes());
            assert!(!found, "a key is in {}", file.display());
        }
    }
}

fn assert_clean(what: &str, text: &str) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!text.contains(key), "a key is in {what}: {text}");
    }
}

/// `sessions log --full`, `sessions show --json` and the handoff report of the latest session.
fn assert_views_clean(fx: &SwarmFixture, state_dir: &Path) {
    for args in [
        vec!["sessions", "log", "latest", "--full"],
        vec!["sessions", "log", "latest", "--json"],
        vec!["sessions", "show", "latest", "--json"],
        vec!["sessions", "report", "latest"],
    ] {
        let mut all = args.clone();
        all.push("--state-dir");
        all.push(state_dir.to_str().unwrap());
        let out = fx.run(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_clean(
            &format!("{args:?}"),
            &format!("{}{}", stdout(&out), stderr(&out)),
        );
    }
}

fn with_keys(cmd: &mut Command) -> &mut Command {
    cmd.env("OPENAI_API_KEY", OPENAI_KEY)
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
}

/// The probe's output as the model got it.
fn probe_result(mock: &MockLlm) -> String {
    mock.requests()
        .iter()
        .find_map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
            body["messages"]
                .as_array()?
                .iter()
                .find(|m| m["role"] == "tool")
                .and_then(|m| m["content"].as_str().map(str::to_string))
        })
        .expect("the probe's result reached the model")
}

fn run_probe(fx: &SwarmFixture, mut cmd: Command) -> (Output, u32) {
    let child = with_keys(&mut cmd)
        .args(["run", "swarm.yaml", "--goal", "probe", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    let _ = fx;
    (out, pid)
}

#[test]
fn a_command_finds_no_key_in_the_runners_environment() {
    let mock = MockLlm::spawn(probe_script());
    let fx = SwarmFixture::new();
    fx.role("prober", &["run_command", "complete_task"]);
    fx.swarm(&swarm_yaml(&mock));
    let (out, pid) = run_probe(&fx, fx.command());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let requests = mock.requests();
    assert_eq!(
        requests[0].api_key.as_deref(),
        Some(OPENAI_KEY),
        "the key reached the runner (through the pipe) and is sent to the API"
    );
    let result = probe_result(&mock);
    assert!(
        result.contains(&format!("runner={pid}")),
        "the probe found the runner {pid}: {result}"
    );
    if result.contains("environ=readable") {
        // As root (CAP_SYS_PTRACE) the file opens: the keys are not in it any more.
        assert!(result.contains("keys=0 path=1"), "{result}");
    } else {
        assert!(result.contains("environ=denied"), "{result}");
        assert!(result.contains("mem=denied"), "{result}");
    }
    assert!(result.contains("parent_keys=0"), "{result}");
    assert!(result.contains("own_keys=0"), "{result}");
    for request in &requests {
        assert_clean("a request body", &request.body);
    }
    assert_clean(
        "stdout/stderr",
        &format!("{}{}", stdout(&out), stderr(&out)),
    );
    let state_dir = fx.path().join(".swarm");
    assert_state_dir_clean(&state_dir);
    assert_views_clean(&fx, &state_dir);
}

/// Runs the binary as `nobody`, so that the command is of the same user as the runner and has
/// no privilege over it: only the runner being non-dumpable keeps it out.
#[test]
fn a_command_of_the_same_user_cannot_open_the_runners_environment_or_memory() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var_os("CI").is_some() {
            panic!("CI runs this test as root (it switches to the user nobody)");
        }
        eprintln!("skipped: needs root to run the runner as another user");
        return;
    }
    let mock = MockLlm::spawn(probe_script());
    let fx = SwarmFixture::new();
    fx.role("prober", &["run_command", "complete_task"]);
    fx.swarm(&swarm_yaml(&mock));
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(fx.path())
        .status()
        .expect("chown");
    assert!(chown.success());
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        env!("CARGO_BIN_EXE_swarm"),
    ])
    .current_dir(fx.path())
    .env_remove("SWARM_STATE_DIR")
    .env("NO_COLOR", "1");
    let (out, pid) = run_probe(&fx, cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = probe_result(&mock);
    assert!(result.contains(&format!("runner={pid}")), "{result}");
    assert!(result.contains("environ=denied"), "{result}");
    assert!(result.contains("mem=denied"), "{result}");
    assert_eq!(mock.requests()[0].api_key.as_deref(), Some(OPENAI_KEY));
    assert_state_dir_clean(&fx.path().join(".swarm"));
}

#[test]
fn a_key_echoed_by_the_api_is_in_nothing_stored_or_printed() {
    let mock = MockLlm::spawn(Script::from_fn(|r| {
        match tool_results(&r.messages).first() {
            None => MockReply::tool(
                "memory_store",
                json!({"key": "notes/echo", "value": format!("the key is {OPENAI_KEY}")}),
            )
            .with_text(format!("Your key {OPENAI_KEY} works.")),
            Some(_) => MockReply::text(format!(
                "Done. Key: {OPENAI_KEY}; other key: {ANTHROPIC_KEY}"
            )),
        }
    }));
    let fx = SwarmFixture::new();
    fx.role("prober", &["memory_store", "complete_task"]);
    fx.swarm(&swarm_yaml(&mock));
    for json in [true, false] {
        let mut cmd = fx.command();
        with_keys(&mut cmd).args(["run", "swarm.yaml", "--goal", "echo"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let printed = format!("{}{}", stdout(&out), stderr(&out));
        assert_clean("stdout/stderr", &printed);
        if json {
            assert!(printed.contains("[redacted]"), "{printed}");
        }
    }
    // The second request carries the first answer back: redacted too.
    for request in mock.requests() {
        assert_clean("a request body", &request.body);
    }
    let state_dir = fx.path().join(".swarm");
    assert_state_dir_clean(&state_dir);
    assert_views_clean(&fx, &state_dir);
}
