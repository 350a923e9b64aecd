//! Built-in swarms by name through the real binary: `swarm swarms list|show`, `swarm run NAME`,
//! `swarm init --from NAME`, and the per-session workspace default.

mod support;

use serde_json::Value;
use support::swarm_fixture::{stderr, stdout, SwarmFixture};

#[test]
fn swarms_list_and_show_name_every_built_in_swarm() {
    let fx = SwarmFixture::new();
    let list = fx.run(&["swarms", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let text = stdout(&list);
    for name in ["development", "code-review", "qa-review", "sprint-planning"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        text.contains("hierarchical") && text.contains("mesh"),
        "{text}"
    );

    let show = fx.run(&["swarms", "show", "development"]);
    assert_eq!(show.status.code(), Some(0));
    assert!(stdout(&show).contains("name: development"));

    let typo = fx.run(&["swarms", "show", "developmnt"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains("did you mean `development`"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn a_bare_name_runs_the_built_in_swarm_in_its_own_workspace() {
    let fx = SwarmFixture::new();
    let out = fx.run(&[
        "run",
        "development",
        "--goal",
        "a health endpoint",
        "--provider",
        "simulated",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_str(&stdout(&show)).expect("json");
    assert_eq!(show["swarm"], "development");
    let id = show["id"].as_str().expect("id");
    let workspace = fx.path().join("workspace").join(id);
    assert!(
        workspace.is_dir(),
        "the session's own workspace {workspace:?}"
    );
    assert!(
        stdout(&out).contains(&format!("workspace/{id}")),
        "the summary names it: {}",
        stdout(&out)
    );
}

#[test]
fn an_unknown_name_is_a_clear_error_without_a_zero_position() {
    let fx = SwarmFixture::new();
    let out = fx.run(&["run", "developmen", "--goal", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("did you mean the built-in swarm `development`"),
        "{err}"
    );
    assert!(!err.contains(":0:0"), "{err}");
    let missing = fx.run(&["run", "missing.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(!stderr(&missing).contains(":0"), "{}", stderr(&missing));
}

#[test]
fn init_from_copies_a_built_in_swarm_that_validates() {
    let fx = SwarmFixture::new();
    let out = fx.run(&["init", "--from", "code-review", "review"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let copied = std::fs::read_to_string(fx.path().join("review/swarm.yaml")).expect("copied");
    assert!(copied.contains("name: code-review"));
    let valid = fx.run(&["validate", "review/swarm.yaml"]);
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
    let again = fx.run(&["init", "--from", "code-review", "review"]);
    assert_eq!(again.status.code(), Some(2), "never overwrites");
    let unknown = fx.run(&["init", "--from", "nope", "x"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(!fx.path().join("x").exists());
}

#[test]
fn sessions_without_a_named_workspace_do_not_share_files() {
    let fx = SwarmFixture::new();
    fx.role("worker", &["write_file", "complete_task"]);
    fx.swarm(
        "name: solo\ntopology: mesh\nagents:\n  - role: worker\ntasks:\n  - id: one\n    role: worker\n    description: write a file\n",
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = fx.run(&["run", "swarm.yaml", "--provider", "simulated"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let show = fx.run(&["sessions", "show", "latest", "--json"]);
        let show: Value = serde_json::from_str(&stdout(&show)).expect("json");
        ids.push(show["id"].as_str().expect("id").to_string());
    }
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        let dir = fx.path().join("workspace").join(id);
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(files > 0, "{dir:?} holds the files of its own session only");
    }
    // --workspace names one folder explicitly: shared on purpose.
    let out = fx.run(&[
        "run",
        "swarm.yaml",
        "--provider",
        "simulated",
        "--workspace",
        "shared",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(fx.path().join("shared").is_dir());
}
