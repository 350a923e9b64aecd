//! The workspace keeps file tools inside its root: escapes are refused for read, write and
//! list, and ordinary nested work succeeds.

use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use swarm_runtime::spec::ToolName;
use swarm_runtime::tools::files::{execute, schema};
use swarm_runtime::tools::workspace::{Workspace, WorkspaceError};
use tempfile::TempDir;

/// A workspace folder and, beside it, an `outside` folder holding a secret file.
struct Setup {
    _dir: TempDir,
    ws: Workspace,
    outside: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("outside dir");
    fs::write(outside.join("secret.txt"), "top secret").expect("secret file");
    let ws = Workspace::open(&dir.path().join("ws")).expect("open workspace");
    Setup {
        _dir: dir,
        ws,
        outside,
    }
}

fn assert_refused_everywhere(ws: &Workspace, rel: &str, expect: fn(&WorkspaceError) -> bool) {
    let read = ws.read_file(rel, 1024).expect_err("read must be refused");
    assert!(expect(&read), "read `{rel}`: {read}");
    let write = ws.write_file(rel, "x").expect_err("write must be refused");
    assert!(expect(&write), "write `{rel}`: {write}");
    let list = ws
        .list_files(Some(rel), true)
        .expect_err("list must be refused");
    assert!(expect(&list), "list `{rel}`: {list}");
}

#[test]
fn open_creates_the_folder_and_canonicalises_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ws = Workspace::open(&dir.path().join("a/./b")).expect("open");
    assert!(ws.root().is_dir());
    assert_eq!(ws.root(), fs::canonicalize(dir.path().join("a/b")).unwrap());
}

#[test]
fn parent_components_are_refused() {
    let s = setup();
    for rel in ["../x", "a/../../x", "a/../b", "..", "../outside/secret.txt"] {
        assert_refused_everywhere(&s.ws, rel, |e| {
            matches!(e, WorkspaceError::ParentDir { .. }) && e.to_string().contains("`..`")
        });
    }
    assert!(!s.ws.root().parent().unwrap().join("x").exists());
}

#[test]
fn absolute_paths_are_refused() {
    let s = setup();
    let secret = s.outside.join("secret.txt");
    for rel in ["/etc/passwd", secret.to_str().unwrap()] {
        assert_refused_everywhere(&s.ws, rel, |e| {
            matches!(e, WorkspaceError::Absolute { .. }) && e.to_string().contains("relative")
        });
    }
}

#[test]
fn nul_bytes_are_refused() {
    let s = setup();
    assert_refused_everywhere(&s.ws, "a\0b", |e| matches!(e, WorkspaceError::NulByte));
}

#[test]
fn symlinked_file_leading_outside_is_refused() {
    let s = setup();
    symlink(s.outside.join("secret.txt"), s.ws.root().join("link.txt")).unwrap();
    assert_refused_everywhere(
        &s.ws,
        "link.txt",
        |e| matches!(e, WorkspaceError::SymlinkEscape { link, .. } if link == "link.txt"),
    );
    assert_eq!(
        fs::read_to_string(s.outside.join("secret.txt")).unwrap(),
        "top secret",
        "the file outside must not have been overwritten"
    );
}

#[test]
fn symlinked_parent_folder_leading_outside_is_refused() {
    let s = setup();
    fs::create_dir(s.ws.root().join("sub")).unwrap();
    symlink(&s.outside, s.ws.root().join("sub/out")).unwrap();
    // An existing file behind the link, a new file behind it, and a new nested folder.
    for rel in [
        "sub/out/secret.txt",
        "sub/out/new.txt",
        "sub/out/deeper/new.txt",
    ] {
        assert_refused_everywhere(
            &s.ws,
            rel,
            |e| matches!(e, WorkspaceError::SymlinkEscape { link, .. } if link == "sub/out"),
        );
    }
    assert!(!s.outside.join("new.txt").exists());
    assert!(!s.outside.join("deeper").exists());
}

#[test]
fn dangling_symlink_cannot_be_written_through() {
    let s = setup();
    let target = s.outside.join("created-through-link.txt");
    symlink(&target, s.ws.root().join("dangling")).unwrap();
    let err = s.ws.write_file("dangling", "x").expect_err("refused");
    assert!(
        matches!(err, WorkspaceError::DanglingSymlink { .. }),
        "{err}"
    );
    assert!(!target.exists());
}

#[test]
fn symlinks_inside_the_workspace_are_usable() {
    let s = setup();
    s.ws.write_file("real/data.txt", "inside").unwrap();
    symlink(s.ws.root().join("real"), s.ws.root().join("alias")).unwrap();
    assert_eq!(s.ws.read_file("alias/data.txt", 1024).unwrap(), "inside");
    s.ws.write_file("alias/data.txt", "changed").unwrap();
    assert_eq!(s.ws.read_file("real/data.txt", 1024).unwrap(), "changed");
}

#[test]
fn listing_does_not_follow_symlinks_out() {
    let s = setup();
    s.ws.write_file("a.txt", "a").unwrap();
    symlink(&s.outside, s.ws.root().join("out")).unwrap();
    symlink(
        s.outside.join("secret.txt"),
        s.ws.root().join("secret-link"),
    )
    .unwrap();
    let entries = s.ws.list_files(None, true).unwrap();
    assert_eq!(entries, vec!["a.txt".to_string()]);
}

#[test]
fn nested_write_read_and_list_work() {
    let s = setup();
    let bytes =
        s.ws.write_file("src/lib/mod.rs", "pub fn f() {}\n")
            .unwrap();
    assert_eq!(bytes, 14);
    s.ws.write_file("./README.md", "# hi").unwrap();
    s.ws.write_file("src/main.rs", "fn main() {}").unwrap();
    assert_eq!(
        s.ws.read_file("src/lib/mod.rs", 1024).unwrap(),
        "pub fn f() {}\n"
    );
    assert_eq!(
        s.ws.list_files(None, false).unwrap(),
        vec!["README.md", "src/"]
    );
    assert_eq!(
        s.ws.list_files(None, true).unwrap(),
        vec![
            "README.md",
            "src/",
            "src/lib/",
            "src/lib/mod.rs",
            "src/main.rs"
        ]
    );
    assert_eq!(
        s.ws.list_files(Some("src"), false).unwrap(),
        vec!["src/lib/", "src/main.rs"]
    );
    // Overwriting replaces the content and leaves no temporary files behind.
    s.ws.write_file("src/main.rs", "fn main() { run() }")
        .unwrap();
    assert_eq!(
        s.ws.read_file("src/main.rs", 1024).unwrap(),
        "fn main() { run() }"
    );
    assert_eq!(
        s.ws.list_files(Some("src"), false).unwrap(),
        vec!["src/lib/", "src/main.rs"]
    );
}

#[test]
fn long_files_are_truncated_at_a_character_boundary_with_a_note() {
    let s = setup();
    // 'é' is two bytes: a cap of 5 falls inside the third one.
    s.ws.write_file("long.txt", "ééééé").unwrap();
    let text = s.ws.read_file("long.txt", 5).unwrap();
    assert!(text.starts_with("éé\n[truncated"), "{text}");
    assert!(text.contains("first 4 of 10 bytes"), "{text}");
    assert_eq!(s.ws.read_file("long.txt", 10).unwrap(), "ééééé");
}

#[test]
fn binary_files_missing_files_and_folders_get_clear_errors() {
    let s = setup();
    fs::write(s.ws.root().join("blob.bin"), [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let err = s.ws.read_file("blob.bin", 1024).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");

    let err = s.ws.read_file("missing.txt", 1024).unwrap_err();
    assert!(matches!(err, WorkspaceError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("list_files"), "{err}");

    s.ws.write_file("dir/file.txt", "x").unwrap();
    let err = s.ws.read_file("dir", 1024).unwrap_err();
    assert!(matches!(err, WorkspaceError::IsADirectory { .. }), "{err}");
    let err = s.ws.write_file("dir", "x").unwrap_err();
    assert!(matches!(err, WorkspaceError::IsADirectory { .. }), "{err}");
    let err = s.ws.list_files(Some("dir/file.txt"), false).unwrap_err();
    assert!(matches!(err, WorkspaceError::NotADirectory { .. }), "{err}");
    let err = s.ws.write_file("dir/file.txt/under", "x").unwrap_err();
    assert!(
        matches!(&err, WorkspaceError::NotADirectory { path } if path == "dir/file.txt"),
        "{err}"
    );
}

#[test]
fn large_listings_end_with_a_note() {
    let s = setup();
    let root: &Path = s.ws.root();
    for i in 0..1005 {
        fs::write(root.join(format!("f{i:04}")), "").unwrap();
    }
    let entries = s.ws.list_files(None, false).unwrap();
    assert_eq!(entries.len(), 1001);
    assert_eq!(entries[0], "f0000");
    assert!(
        entries[1000].contains("5 more entries not shown"),
        "{}",
        entries[1000]
    );
}

#[tokio::test]
async fn tool_calls_go_through_the_same_checks() {
    let s = setup();
    let out = execute(
        &s.ws,
        ToolName::WriteFile,
        &json!({"path": "notes/a.md", "content": "hello"}),
        None,
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(out.content, r#"{"bytes_written":5,"path":"notes/a.md"}"#);

    let out = execute(
        &s.ws,
        ToolName::ReadFile,
        &json!({"path": "notes/a.md"}),
        None,
    )
    .await;
    assert_eq!((out.is_error, out.content.as_str()), (false, "hello"));

    let out = execute(
        &s.ws,
        ToolName::ListFiles,
        &json!({"recursive": true}),
        None,
    )
    .await;
    assert_eq!(
        (out.is_error, out.content.as_str()),
        (false, "notes/\nnotes/a.md")
    );

    let out = execute(
        &s.ws,
        ToolName::ReadFile,
        &json!({"path": "../outside/secret.txt"}),
        None,
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("refused"), "{}", out.content);

    let out = execute(&s.ws, ToolName::WriteFile, &json!({"path": "x"}), None).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains(r#"expected {"path": string, "content": string}"#),
        "{}",
        out.content
    );

    let out = execute(
        &s.ws,
        ToolName::ReadFile,
        &json!({"_raw": "{path: x"}),
        None,
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("not valid JSON"), "{}", out.content);

    let out = execute(&s.ws, ToolName::MemoryStore, &json!({}), None).await;
    assert!(out.is_error);
}

#[test]
fn schemas_exist_only_for_workspace_tools() {
    for tool in [
        ToolName::ReadFile,
        ToolName::WriteFile,
        ToolName::ListFiles,
        ToolName::RunCommand,
    ] {
        let schema = schema(tool).expect("schema");
        assert_eq!(schema.name, tool.as_str());
        assert_eq!(schema.parameters["type"], "object");
    }
    assert_eq!(
        schema(ToolName::WriteFile).unwrap().parameters["required"],
        json!(["path", "content"])
    );
    assert!(schema(ToolName::MemoryStore).is_none());
}

#[test]
fn rewriting_a_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    s.ws.write_file("run.sh", "#!/bin/sh\necho 1\n").unwrap();
    let script = s.ws.root().join("run.sh");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    s.ws.write_file("run.sh", "#!/bin/sh\necho 2\n").unwrap();
    let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

#[test]
fn pipes_are_not_opened_for_reading() {
    let s = setup();
    let fifo = s.ws.root().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let err = s.ws.read_file("pipe", 1024).unwrap_err();
    assert!(matches!(err, WorkspaceError::NotRegular { .. }), "{err}");
}
