//! The coding tools (`edit_file`, `search_files`, `glob_files`) on real files: exact edits,
//! gitignore-aware search and glob, caps, and the same confinement as the other file tools,
//! including the refusal of hard-linked files.

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use swarm_runtime::llm::ToolOutput;
use swarm_runtime::spec::ToolName;
use swarm_runtime::tools::coding::SEARCH_MAX_MATCHES;
use swarm_runtime::tools::files::execute;
use swarm_runtime::tools::workspace::Workspace;
use tempfile::TempDir;

struct Setup {
    dir: TempDir,
    ws: Workspace,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.txt"), "top secret needle\n").unwrap();
    let ws = Workspace::open(&dir.path().join("ws")).expect("open workspace");
    Setup { dir, ws }
}

impl Setup {
    fn write(&self, rel: &str, text: &str) {
        let path = self.ws.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.ws.root().join(rel)).unwrap()
    }

    async fn call(&self, tool: ToolName, args: Value) -> ToolOutput {
        execute(&self.ws, tool, &args, None).await
    }

    async fn ok(&self, tool: ToolName, args: Value) -> String {
        let out = self.call(tool, args).await;
        assert!(!out.is_error, "{tool} failed: {}", out.content);
        out.content
    }

    async fn err(&self, tool: ToolName, args: Value) -> String {
        let out = self.call(tool, args).await;
        assert!(out.is_error, "{tool} should fail, got {}", out.content);
        out.content
    }
}

#[tokio::test]
async fn edit_replaces_exactly_one_occurrence_and_keeps_the_mode() {
    let s = setup();
    s.write("src/lib.rs", "fn a() {}\nfn b() {}\n");
    let path = s.ws.root().join("src/lib.rs");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let out = s
        .ok(
            ToolName::EditFile,
            json!({"path": "src/lib.rs", "old_string": "fn b() {}", "new_string": "fn b() { a() }"}),
        )
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["replacements"],
        1
    );
    assert_eq!(s.read("src/lib.rs"), "fn a() {}\nfn b() { a() }\n");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[tokio::test]
async fn edit_refuses_missing_and_ambiguous_text_unless_replace_all() {
    let s = setup();
    s.write("notes.txt", "x = 1\ny = 2\nx = 1\n");
    let missing = s
        .err(
            ToolName::EditFile,
            json!({"path": "notes.txt", "old_string": "z = 3", "new_string": "z = 4"}),
        )
        .await;
    assert!(missing.contains("was not found"), "{missing}");
    let ambiguous = s
        .err(
            ToolName::EditFile,
            json!({"path": "notes.txt", "old_string": "x = 1", "new_string": "x = 9"}),
        )
        .await;
    assert!(
        ambiguous.contains("occurs 2 times") && ambiguous.contains("lines 1, 3"),
        "{ambiguous}"
    );
    assert_eq!(
        s.read("notes.txt"),
        "x = 1\ny = 2\nx = 1\n",
        "nothing changed"
    );
    s.ok(
        ToolName::EditFile,
        json!({"file_path": "notes.txt", "old_string": "x = 1", "new_string": "x = 9", "replace_all": true}),
    )
    .await;
    assert_eq!(s.read("notes.txt"), "x = 9\ny = 2\nx = 9\n");
    let empty = s
        .err(
            ToolName::EditFile,
            json!({"path": "notes.txt", "old_string": "", "new_string": "a"}),
        )
        .await;
    assert!(empty.contains("empty"), "{empty}");
    let unknown = s
        .err(
            ToolName::EditFile,
            json!({"path": "notes.txt", "old": "a", "new_string": "b", "old_string": "c"}),
        )
        .await;
    assert!(unknown.contains("expected"), "{unknown}");
}

#[tokio::test]
async fn coding_tools_refuse_paths_outside_the_workspace() {
    let s = setup();
    symlink(s.dir.path().join("outside"), s.ws.root().join("escape")).unwrap();
    for (tool, args) in [
        (
            ToolName::EditFile,
            json!({"path": "../outside/secret.txt", "old_string": "top", "new_string": "x"}),
        ),
        (
            ToolName::EditFile,
            json!({"path": "escape/secret.txt", "old_string": "top", "new_string": "x"}),
        ),
        (
            ToolName::EditFile,
            json!({"path": s.dir.path().join("outside/secret.txt"), "old_string": "top", "new_string": "x"}),
        ),
        (
            ToolName::SearchFiles,
            json!({"pattern": "needle", "path": "../outside"}),
        ),
        (
            ToolName::SearchFiles,
            json!({"pattern": "needle", "path": "escape"}),
        ),
        (ToolName::GlobFiles, json!({"pattern": "*", "path": "/"})),
        (
            ToolName::GlobFiles,
            json!({"pattern": "*", "path": "escape"}),
        ),
    ] {
        let why = s.err(tool, args.clone()).await;
        assert!(why.contains("refused"), "{tool} {args}: {why}");
    }
    assert_eq!(
        fs::read_to_string(s.dir.path().join("outside/secret.txt")).unwrap(),
        "top secret needle\n"
    );
    // A search of the whole workspace does not follow the link out.
    let all = s
        .ok(ToolName::SearchFiles, json!({"pattern": "needle"}))
        .await;
    assert!(!all.contains("secret"), "{all}");
}

#[tokio::test]
async fn a_hard_linked_file_is_neither_read_nor_edited_nor_searched() {
    let s = setup();
    let secret = s.dir.path().join("outside/secret.txt");
    fs::hard_link(&secret, s.ws.root().join("planted.txt")).unwrap();
    let read = s
        .err(ToolName::ReadFile, json!({"path": "planted.txt"}))
        .await;
    assert!(read.contains("hard links"), "{read}");
    let edit = s
        .err(
            ToolName::EditFile,
            json!({"path": "planted.txt", "old_string": "top", "new_string": "x"}),
        )
        .await;
    assert!(edit.contains("hard links"), "{edit}");
    let search = s
        .ok(ToolName::SearchFiles, json!({"pattern": "needle"}))
        .await;
    assert!(
        search.contains("no matches") && search.contains("1 files with more than one hard link"),
        "{search}"
    );
    assert_eq!(fs::read_to_string(&secret).unwrap(), "top secret needle\n");
    // Writing replaces the link with a new file and leaves the other file alone.
    s.ok(
        ToolName::WriteFile,
        json!({"path": "planted.txt", "content": "mine"}),
    )
    .await;
    assert_eq!(fs::read_to_string(&secret).unwrap(), "top secret needle\n");
    assert_eq!(s.read("planted.txt"), "mine");
}

#[tokio::test]
async fn search_honours_gitignore_globs_and_reports_path_and_line() {
    let s = setup();
    s.write(".gitignore", "target/\n*.log\n");
    s.write("src/main.rs", "fn main() {\n    // TODO: parse args\n}\n");
    s.write("src/util.ts", "// todo later\n");
    s.write("target/debug/out.rs", "// TODO generated\n");
    s.write("build.log", "TODO in a log\n");
    let found = s
        .ok(ToolName::SearchFiles, json!({"pattern": "TODO"}))
        .await;
    assert_eq!(found, "src/main.rs:2:    // TODO: parse args");
    let ci = s
        .ok(
            ToolName::SearchFiles,
            json!({"pattern": "todo", "case_insensitive": true, "glob": "*.ts"}),
        )
        .await;
    assert_eq!(ci, "src/util.ts:1:// todo later");
    let bad = s.err(ToolName::SearchFiles, json!({"pattern": "("})).await;
    assert!(bad.contains("not a valid regex"), "{bad}");
}

#[tokio::test]
async fn search_results_are_capped_with_a_note() {
    let s = setup();
    let many: String = (0..SEARCH_MAX_MATCHES + 25)
        .map(|i| format!("hit {i}\n"))
        .collect();
    s.write("big.txt", &many);
    let out = s
        .ok(ToolName::SearchFiles, json!({"pattern": "^hit"}))
        .await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("big.txt:")).count(),
        SEARCH_MAX_MATCHES
    );
    assert!(
        out.ends_with(
            "[25 more matching lines not shown; narrow the pattern, the path or the glob]"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn glob_lists_matching_files_sorted_without_ignored_ones() {
    let s = setup();
    s.write(".gitignore", "target/\n");
    s.write("src/a.rs", "");
    s.write("src/nested/b.rs", "");
    s.write("src/c.txt", "");
    s.write("target/x.rs", "");
    let all = s
        .ok(ToolName::GlobFiles, json!({"pattern": "**/*.rs"}))
        .await;
    assert_eq!(all, "src/a.rs\nsrc/nested/b.rs");
    let top = s
        .ok(ToolName::GlobFiles, json!({"pattern": "src/*.rs"}))
        .await;
    assert_eq!(top, "src/a.rs");
    let none = s.ok(ToolName::GlobFiles, json!({"pattern": "*.py"})).await;
    assert!(none.contains("no files match"), "{none}");
}
