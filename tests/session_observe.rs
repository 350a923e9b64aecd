//! Seeing what a swarm did and does, through the real binary on real runs against the mock LLM:
//! `sessions log` (the transcript, also `--json`, `--full`, filters and `--follow` on a running
//! session), `swarm watch` from another process, and the HTML report rendered by a real browser.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::swarm_fixture::{stderr, stdout, tool_results, SwarmFixture};
use support::{MockLlm, MockReply, Script};

const WAIT: Duration = Duration::from_secs(60);

/// Text a model might answer with to attack whoever reads the report.
const HOSTILE: &str = "done <img src=x onerror=\"document.title='pwned'\"></pre><script>document.title='pwned'</script>";

/// The first turn stores a long note (so its arguments get shortened), the second finishes with
/// text that tries to inject markup.
fn script() -> Script {
    Script::from_fn(|r| match tool_results(&r.messages).first() {
        None => MockReply::tool(
            "memory_store",
            json!({"key": "notes/long", "value": format!("start-{}-end", "x".repeat(400))}),
        )
        .with_text("storing a note first")
        .with_usage(120, 30),
        Some(_) => MockReply::text(HOSTILE).with_usage(150, 10),
    })
}

fn fixture(mock: &MockLlm) -> SwarmFixture {
    let fx = SwarmFixture::new();
    fx.role("worker", &["memory_store"]);
    fx.swarm(&format!(
        "name: observe\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: worker\ntasks:\n  - id: api\n    role: worker\n    description: build the api\n  - id: docs\n    role: worker\n    depends_on: [api]\n    description: document the api\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  prices: {{ input_per_mtok: 1.0, output_per_mtok: 2.0 }}\nbudget:\n  tokens: 100000\n  usd: 1.0\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
    fx
}

fn finished_run() -> (MockLlm, SwarmFixture) {
    let mock = MockLlm::spawn(script());
    let fx = fixture(&mock);
    let out = fx.run(&["run", "swarm.yaml", "--goal", "an api"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (mock, fx)
}

#[test]
fn the_log_shows_every_turn_tool_call_and_result_with_task_and_agent() {
    let (_mock, fx) = finished_run();
    let out = fx.run(&["sessions", "log", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stdout(&out);
    let lines: Vec<&str> = log.lines().collect();
    let find = |task: &str, kind: &str| -> Vec<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(1) == Some(&task) && cols.get(3) == Some(&kind)
            })
            .collect()
    };
    // The journal holds the role's system prompt once; the log shows it for every task.
    let db = rusqlite::Connection::open(fx.path().join(".swarm/state.db")).unwrap();
    let bodies: Vec<Vec<u8>> = db
        .prepare("SELECT body FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // A row holds the events committed together, one per line.
    let journaled: Vec<bool> = bodies
        .iter()
        .flat_map(|body| {
            String::from_utf8_lossy(body)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|event| event.contains("\"task_started\""))
        .map(|event| event.contains("\"system\""))
        .collect();
    assert_eq!(journaled, [true, false], "system prompts journaled");
    for task in ["api", "docs"] {
        assert_eq!(find(task, "system").len(), 1, "{log}");
        assert!(find(task, "user")[0].contains("worker-1"), "{log}");
        let turns = find(task, "turn");
        assert_eq!(turns.len(), 2, "{log}");
        assert!(
            turns[0].contains("120 in / 30 out tokens, $0.0002"),
            "tokens and cost per call: {}",
            turns[0]
        );
        assert!(find(task, "text")[0].contains("storing a note first"));
        let call = find(task, "call");
        assert!(call[0].contains("memory_store") && call[0].contains("notes/long"));
        assert!(
            call[0].contains("--full for all") && !call[0].contains("-end"),
            "long arguments are shortened: {}",
            call[0]
        );
        assert!(find(task, "result")[0].contains("memory_store"), "{log}");
        assert!(find(task, "done")[0].contains("done <img"), "{log}");
    }
    assert!(lines[0].contains("session") && lines[0].contains("started"));
    assert!(lines.last().unwrap().contains("ended completed"), "{log}");

    let full = stdout(&fx.run(&["sessions", "log", "latest", "--full", "--task", "api"]));
    assert!(full.contains("-end"), "--full prints all: {full}");
    assert!(full
        .lines()
        .all(|l| l.split_whitespace().nth(1) == Some("api")));
    assert!(!full.contains(" docs "), "--task filters: {full}");

    let json = stdout(&fx.run(&["sessions", "log", "latest", "--json", "--agent", "worker-1"]));
    let events: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in journal order");
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("a tool result");
    assert_eq!(tool["task"], "api");
    assert!(tool["duration_ms"].is_u64());
    let turn = events
        .iter()
        .find(|e| e["type"] == "turn_completed")
        .unwrap();
    assert!(turn["tool_calls"][0]["arguments"]["value"]
        .as_str()
        .unwrap()
        .ends_with("-end"));
    assert!(turn["latency_ms"].is_u64() && turn["retries"] == 0);
    assert!(events.iter().all(|e| e["agent"] == "worker-1"));

    let unknown = fx.run(&["sessions", "log", "latest", "--task", "apii"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("has no task `apii`; its tasks: api, docs"),
        "{}",
        stderr(&unknown)
    );
}

/// Lines of a child's stdout, read on a thread so the test can wait with a timeout.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one satisfies `pred`; every line read is appended to `seen`.
fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, pred: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = pred(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(e) => panic!("no matching line ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

fn drain(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) {
    while let Ok(line) = rx.recv_timeout(WAIT) {
        seen.push(line);
    }
}

#[test]
fn watch_and_log_follow_a_running_session_from_other_processes_until_it_ends() {
    let mock = MockLlm::spawn(script());
    mock.hold();
    let fx = fixture(&mock);
    let run = fx
        .command()
        .args(["run", "swarm.yaml", "--goal", "an api"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    // The first call is in flight and held: the session exists and an agent is busy.
    assert!(mock.wait_for_requests_blocking(1, WAIT));
    let mut watch = fx
        .command()
        .args(["watch", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut follow = fx
        .command()
        .args(["sessions", "log", "latest", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn log --follow");
    let (watch_lines, follow_lines) = (lines_of(&mut watch), lines_of(&mut follow));
    let (mut watched, mut followed) = (Vec::new(), Vec::new());
    wait_line(&watch_lines, &mut watched, |l| {
        l.starts_with("==")
            && l.contains("busy worker-1 on api: waiting for the LLM (turn 1)")
            && l.contains("1 running, 1 pending")
    });
    wait_line(&follow_lines, &mut followed, |l| {
        l.contains(" api ") && l.contains(" user ")
    });
    assert!(
        !followed.iter().any(|l| l.contains(" turn ")),
        "no turn before the held call is answered: {followed:?}"
    );
    mock.release();
    let run = run.wait_with_output().expect("run ends");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    drain(&watch_lines, &mut watched);
    drain(&follow_lines, &mut followed);
    assert_eq!(
        watch.wait().unwrap().code(),
        Some(0),
        "watch exits at the end"
    );
    assert_eq!(
        follow.wait().unwrap().code(),
        Some(0),
        "follow exits at the end"
    );
    let watched = watched.join("\n");
    assert!(
        watched.contains("tasks 2 done, 0 running, 0 pending, 0 failed of 2"),
        "{watched}"
    );
    assert!(
        watched.contains("budget green (tokens green, usd green)"),
        "{watched}"
    );
    assert!(watched.ends_with("session ended: completed"), "{watched}");
    let followed = followed.join("\n");
    assert_eq!(
        followed.matches(" turn ").count(),
        4,
        "every turn of both tasks: {followed}"
    );
    assert!(
        followed.lines().last().unwrap().contains("ended completed"),
        "{followed}"
    );
}

/// The browser for the HTML test: `SWARM_TEST_CHROMIUM`, else Debian's path. `None` skips the
/// test locally; in CI a missing browser fails it.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("SWARM_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "chromium not found at {} (set SWARM_TEST_CHROMIUM)",
        path.display()
    );
    eprintln!("skipped: no chromium at {}", path.display());
    None
}

/// The page's DOM after its scripts ran, and the browser's log (console messages included).
fn render(browser: &Path, page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    (stdout(&out), stderr(&out))
}

#[test]
fn the_html_report_renders_in_a_browser_with_one_node_per_task_and_no_script_errors() {
    let Some(browser) = chromium() else { return };
    let mock = MockLlm::spawn(script());
    // The first call is rate limited once: its mark on the timeline shows the retry.
    mock.push_fault(support::Fault::rate_limited_ms(5));
    let fx = fixture(&mock);
    let out = fx.run(&["run", "swarm.yaml", "--goal", "an api"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = fx.path().join("report.html");
    let out = fx.run(&["sessions", "report", "latest", "--html", "report.html"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://")
            && !html.contains("https://")
            && !html.contains("<link")
            && !html.contains("<script src"),
        "self-contained: nothing to fetch"
    );
    let (dom, log) = render(&browser, &page);
    assert!(
        dom.contains("data-nodes=\"2\" data-result=\"ok\""),
        "the page's self-check: {}",
        dom.lines()
            .filter(|l| l.contains("selfcheck"))
            .collect::<String>()
    );
    assert_eq!(dom.matches("<g class=\"node done\"").count(), 2);
    assert_eq!(
        dom.matches("class=\"edge dep\"").count(),
        1,
        "docs depends on api"
    );
    assert!(!dom.contains("data-errors=\""), "no script error");
    assert!(
        !log.contains(":CONSOLE") && !log.contains("Uncaught"),
        "no console message: {log}"
    );
    // The model's markup is text, not elements.
    assert!(!dom.contains("<img"), "model output stays escaped");
    assert!(dom.contains("done &lt;img src=x"));
    assert!(!dom.contains("<title>pwned</title>"));
    for section in ["summary", "health", "graph", "timeline", "metrics", "tasks"] {
        assert!(
            dom.contains(&format!("<section id=\"{section}\"")),
            "{section}"
        );
    }
    assert_eq!(dom.matches("<details class=\"task\"").count(), 2);
    assert_eq!(dom.matches("class=\"call\"").count(), 3, "a mark per call");
    assert_eq!(dom.matches("class=\"call retried\"").count(), 1);
    assert!(dom.contains("Active time") && dom.contains("Wall-clock span"));
    assert!(dom.contains("class=\"fill green\""), "budget bars");

    // Without FILE the page goes to the state dir's reports folder.
    let out = fx.run(&["sessions", "report", "latest", "--html"]);
    let path = PathBuf::from(stdout(&out).trim());
    assert!(fx.path().join(&path).is_file(), "{}", stdout(&out));
}

/// A session interrupted "last night" (its events journaled ten hours ago) resumes and finishes
/// under a one-minute time budget: only active time counts, the pause does not.
#[test]
fn a_session_resumed_the_next_morning_does_not_count_the_night() {
    let mock = MockLlm::spawn(script());
    let fx = fixture(&mock);
    let yaml = std::fs::read_to_string(fx.path().join("swarm.yaml")).unwrap();
    fx.swarm(&yaml.replace("budget:\n", "budget:\n  time: 1m\n"));
    let plan = swarm_runtime::spec::load_swarm(
        &fx.path().join("swarm.yaml"),
        &swarm_runtime::spec::LoadOptions::default(),
    )
    .expect("the swarm file loads")
    .value;
    let evening = swarm_runtime::clock::now_ms() - 10 * 3_600_000;
    let state_dir = fx.path().join(".swarm");
    {
        use swarm_runtime::session::{Event, SessionStatus, StateDir};
        let dir = StateDir::open(&state_dir).unwrap();
        let id = dir.create_session(&plan, Some("an api")).unwrap();
        let lock = dir.lock(&id).unwrap();
        let journal = dir.open_journal(&id, &lock).unwrap();
        let mut events = vec![Event::SessionStarted {
            session: id.clone(),
            swarm: plan.name.clone(),
            goal: Some("an api".into()),
            provider: "openai".into(),
            model: "m".into(),
            base_url: mock.base_url_openai(),
            at_ms: evening,
        }];
        events.extend(plan.tasks.iter().map(|t| Event::TaskCreated {
            task: t.clone(),
            created_by: None,
            at_ms: evening,
        }));
        events.push(Event::SessionEnded {
            status: SessionStatus::Interrupted,
            reason: "interrupted".into(),
            at_ms: evening + 20_000,
        });
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            for e in events {
                journal.append(std::sync::Arc::new(e)).await.unwrap();
            }
            journal.close().await;
        });
    }
    let out = fx.run(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let show = stdout(&fx.run(&["sessions", "show", "latest", "--json"]));
    let show: Value = serde_json::from_str(&show).unwrap();
    let active = show["metrics"]["elapsed_s"].as_f64().unwrap();
    let span = show["wall_span_s"].as_f64().unwrap();
    assert!((20.0..60.0).contains(&active), "active {active} s");
    assert!(span >= 36_000.0, "wall-clock span {span} s");
    let report = stdout(&fx.run(&["sessions", "report", "latest"]));
    assert!(
        report.contains("- **Runs**: 2, active ") && report.contains("wall-clock span 36"),
        "{report}"
    );
}
