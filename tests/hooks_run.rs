//! Hooks run real shell commands on events, with the event's variables and a timeout.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use swarm_runtime::runtime::hooks::HookRunner;
use swarm_runtime::spec::{HookEvent, HookSettings};

fn runner(dir: &Path, hooks: &[(HookEvent, &str)], timeout: Duration) -> HookRunner {
    let settings = HookSettings {
        commands: hooks
            .iter()
            .map(|(event, command)| (*event, command.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeout,
    };
    HookRunner::new(&settings, dir)
}

#[tokio::test]
async fn variables_reach_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = runner(
        dir.path(),
        &[(
            HookEvent::PostTask,
            r#"echo "$SWARM_EVENT $SWARM_TASK_ID $SWARM_ROLE $SWARM_STATUS" >> hooks.log; echo logged"#,
        )],
        Duration::from_secs(10),
    );
    let env = [
        ("SWARM_TASK_ID", "api".to_string()),
        ("SWARM_ROLE", "backend-dev".to_string()),
        ("SWARM_STATUS", "done".to_string()),
        // The event name always comes from the event itself.
        ("SWARM_EVENT", "pre-task".to_string()),
    ];
    let outcome = hooks
        .run(HookEvent::PostTask, &env)
        .await
        .expect("a hook is set");
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.message, "logged");
    let log = fs::read_to_string(dir.path().join("hooks.log")).unwrap();
    assert_eq!(log, "post-task api backend-dev done\n");
}

#[tokio::test]
async fn a_failing_hook_reports_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = runner(
        dir.path(),
        &[(HookEvent::TaskFailed, "echo cannot notify >&2; exit 7")],
        Duration::from_secs(10),
    );
    let outcome = hooks
        .run(HookEvent::TaskFailed, &[])
        .await
        .expect("a hook is set");
    assert!(!outcome.ok);
    assert!(!outcome.timed_out);
    assert_eq!(outcome.exit_code, Some(7));
    assert_eq!(
        outcome.message,
        "hook `task-failed` exited with code 7: cannot notify"
    );
}

#[tokio::test]
async fn a_hanging_hook_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(300);
    let hooks = runner(dir.path(), &[(HookEvent::Checkpoint, "sleep 30")], timeout);
    let start = Instant::now();
    let outcome = hooks
        .run(HookEvent::Checkpoint, &[])
        .await
        .expect("a hook is set");
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout, "stopped early: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "not killed in time: {elapsed:?}"
    );
    assert!(!outcome.ok);
    assert!(outcome.timed_out);
    assert_eq!(outcome.exit_code, None);
    assert!(
        outcome.elapsed_ms >= 300 && outcome.elapsed_ms < 5000,
        "{outcome:?}"
    );
    assert!(
        outcome.message.contains("timed out after 300ms"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn no_hook_for_the_event_means_none() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = runner(
        dir.path(),
        &[(HookEvent::PostTask, "touch ran")],
        Duration::from_secs(10),
    );
    assert!(!hooks.has(HookEvent::SessionStart));
    assert!(hooks.has(HookEvent::PostTask));
    assert_eq!(hooks.run(HookEvent::SessionStart, &[]).await, None);
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn a_missing_working_directory_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = runner(
        &dir.path().join("missing"),
        &[(HookEvent::SessionEnd, "true")],
        Duration::from_secs(10),
    );
    let outcome = hooks
        .run(HookEvent::SessionEnd, &[])
        .await
        .expect("a hook is set");
    assert!(!outcome.ok);
    assert_eq!(outcome.exit_code, None);
    assert!(
        outcome.message.contains("could not be started"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn hooks_do_not_see_api_keys() {
    // std serialises environment access with process spawning, so parallel tests are safe.
    std::env::set_var("ANTHROPIC_API_KEY", "sk-ant-hook-leak");
    std::env::set_var("SWARM_HOOK_TEST_TOKEN", "token-hook-leak");
    let dir = tempfile::tempdir().unwrap();
    let hooks = runner(
        dir.path(),
        &[(HookEvent::SessionStart, "env > env.txt")],
        Duration::from_secs(10),
    );
    let env = [("SWARM_SESSION", "s-1".to_string())];
    let outcome = hooks
        .run(HookEvent::SessionStart, &env)
        .await
        .expect("a hook is set");
    assert!(outcome.ok, "{outcome:?}");
    let seen = fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert!(seen.contains("SWARM_SESSION=s-1"), "{seen}");
    assert!(
        !seen.contains("sk-ant-hook-leak"),
        "API key visible to the hook"
    );
    assert!(
        !seen.contains("token-hook-leak"),
        "token visible to the hook"
    );
}
