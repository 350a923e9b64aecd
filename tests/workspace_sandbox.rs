//! `sandbox: true`: a command confined with Landlock writes only in the workspace (and /tmp) and
//! cannot read files outside the system folders.

use serde_json::Value;
use std::sync::Arc;
use swarm_runtime::tools::command::{run_command, CommandPolicy};
use swarm_runtime::tools::sandbox::Sandbox;
use swarm_runtime::tools::workspace::Workspace;

fn exit_code(content: &str) -> Option<i64> {
    serde_json::from_str::<Value>(content).ok()?["exit_code"].as_i64()
}

#[tokio::test]
async fn a_confined_command_stays_in_the_workspace() {
    // Not under /tmp, which confined commands may write.
    let base = std::env::current_dir().unwrap().join("target/sandbox-test");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    let ws = Workspace::open(&dir.path().join("ws")).unwrap();
    let sandbox = match Sandbox::new(ws.root()) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("cannot be honoured"), "{message}");
            eprintln!("SKIPPED: this kernel cannot confine commands: {message}");
            return;
        }
    };
    let policy = CommandPolicy {
        sandbox: Some(Arc::new(sandbox)),
        ..CommandPolicy::default()
    };
    let inside = run_command(
        &ws,
        "echo hi > made.txt && cat made.txt && ls /usr/bin > /dev/null",
        &policy,
    )
    .await;
    assert!(!inside.is_error, "{}", inside.content);
    assert!(inside.content.contains("hi"));

    let secret = outside.join("secret.txt");
    let read = run_command(&ws, &format!("cat {}", secret.display()), &policy).await;
    assert!(read.is_error, "{}", read.content);
    assert!(
        read.content.contains("Permission denied"),
        "{}",
        read.content
    );
    assert!(!read.content.contains("top secret"));

    let write = run_command(
        &ws,
        &format!("touch {}/planted", outside.display()),
        &policy,
    )
    .await;
    assert!(
        write.is_error && exit_code(&write.content) != Some(0),
        "{}",
        write.content
    );
    assert!(!outside.join("planted").exists());

    // The same commands unconfined reach outside: the test would catch a sandbox that does nothing.
    let open = run_command(
        &ws,
        &format!("cat {}", secret.display()),
        &CommandPolicy::default(),
    )
    .await;
    assert!(open.content.contains("top secret"), "{}", open.content);
}
