//! Claude Code sub-agent files as roles: published files load as they are, found by file name or
//! frontmatter name, in `.claude/agents/`; model aliases never reach an API as a model name.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use support::swarm_fixture::{stderr, stdout, SwarmFixture};
use support::{MockLlm, Script};
use swarm_runtime::spec::load_role_file;

/// Files of the published collections that are broken for Claude Code too (the frontmatter does
/// not start on the first line), so they are expected to fail here.
const EXPECTED_FAILURES: &[&str] = &["0xfurai-claude-code-subagents/sqs-expert.md"];

#[test]
fn published_sub_agent_files_load_as_they_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/subagents");
    let mut by_collection: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut collections: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    collections.sort();
    for dir in collections {
        let collection = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let entry = by_collection.entry(collection.clone()).or_default();
            entry.1 += 1;
            match load_role_file(&path) {
                Ok(_) => entry.0 += 1,
                Err(e) => failures.push((
                    format!(
                        "{collection}/{}",
                        path.file_name().unwrap().to_string_lossy()
                    ),
                    e.to_string(),
                )),
            }
        }
    }
    for (collection, (ok, total)) in &by_collection {
        eprintln!("{collection}: {ok}/{total} load");
    }
    let (ok, total) = by_collection
        .values()
        .fold((0, 0), |(a, b), (ok, n)| (a + ok, b + n));
    assert!(by_collection.len() >= 4, "{by_collection:?}");
    assert!(total >= 40, "{total} files");
    let unexpected: Vec<_> = failures
        .iter()
        .filter(|(f, _)| !EXPECTED_FAILURES.contains(&f.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(ok * 100 >= total * 95, "{ok}/{total}");
}

const UNQUOTED: &str = "---\nname: analyst\ndescription: Use this agent when: the data needs a look. Examples: <example>Context: x</example>\ntools: Read, Grep, Agent, TaskCreate, SendMessage, kubectl\nmodel: sonnet\ncolor: blue\n---\nYou analyse.\n";

#[test]
fn an_unquoted_colon_loads_with_one_warning_that_keeps_the_file_valid_for_claude_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("analyst.md");
    std::fs::write(&path, UNQUOTED).unwrap();
    let loaded = load_role_file(&path).unwrap();
    assert!(loaded
        .value
        .description
        .starts_with("Use this agent when: the data"));
    let tools: Vec<&str> = loaded.value.tools.iter().map(|t| t.as_str()).collect();
    for wanted in ["read_file", "send_message", "read_messages", "create_task"] {
        assert!(tools.contains(&wanted), "{tools:?}");
    }
    let text: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        text.iter()
            .any(|w| w.contains("analyst.md:3:1") && w.contains("holds `: ` without quotes")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|w| w.contains("`kubectl` is not a tool of this runtime or of Claude Code")),
        "{text:#?}"
    );
    // No advice to rename a Claude Code tool or key into one of ours.
    assert!(
        !text
            .iter()
            .any(|w| w.contains("to silence") || w.contains("did you mean")),
        "{text:#?}"
    );

    // A near miss of a tool name is still a typo, and an error.
    std::fs::write(
        &path,
        "---\nname: a\ndescription: d\ntools: Reed, memory_stor\n---\nbody\n",
    )
    .unwrap();
    let err = load_role_file(&path).unwrap_err().to_string();
    assert!(err.contains("did you mean `Read`?"), "{err}");
    assert!(err.contains("did you mean `memory_store`?"), "{err}");
}

#[test]
fn claude_flow_metadata_description_and_a_name_in_words_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("load-balancer.md");
    std::fs::write(
        &path,
        "---\nname: Load Balancing Coordinator\ntype: agent\nmetadata:\n  description: Spreads work across agents\n  capabilities: [a, b]\nhooks:\n  pre: |\n    echo hi\n---\nYou balance.\n",
    )
    .unwrap();
    let loaded = load_role_file(&path).unwrap();
    assert_eq!(loaded.value.name, "load-balancer");
    assert_eq!(loaded.value.description, "Spreads work across agents");
}

const CLAUDE_AGENT: &str = "---\nname: db-expert\ndescription: Database work\ntools: Read, Write, Bash\nmodel: opus\n---\nYou handle databases.\n";

#[test]
fn claude_agents_folder_name_lookup_and_where_roles_come_from() {
    let fx = SwarmFixture::new();
    // Found by its frontmatter name although the file is named otherwise, in a subfolder.
    fx.write(".claude/agents/data/database-specialist.md", CLAUDE_AGENT);
    fx.write(
        "agents/tester.md",
        "---\nname: tester\ndescription: Our own tester\ntools: [complete_task]\n---\nYou test.\n",
    );
    let out = fx.run(&["roles", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = stdout(&out);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing in\n{list}"))
            .to_string()
    };
    assert!(
        line("db-expert").contains(".claude/agents/data/database-specialist.md"),
        "{list}"
    );
    assert!(
        line("tester").contains("agents/tester.md (replaces the built-in)"),
        "{list}"
    );
    assert!(line("tech-lead").contains("built-in"), "{list}");
    // Warnings are one line per role, with counts.
    let err = stderr(&out);
    assert!(
        err.contains("database-specialist.md: warning: 3 warnings (3 Claude Code tools mapped)"),
        "{err}"
    );

    let out = fx.run(&["roles", "show", "db-expert"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("You handle databases."));
    let out = fx.run(&["roles", "show", "database-specialist"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn alias_swarm(fx: &SwarmFixture, llm: &str) {
    fx.write(".claude/agents/db-expert.md", CLAUDE_AGENT);
    fx.write(
        ".claude/agents/helper.md",
        "---\nname: helper\ndescription: Helps\ntools: Read\nmodel: inherit\n---\nYou help.\n",
    );
    fx.swarm(&format!(
        "name: aliases\ntopology: mesh\nmax_agents: 1\nagents:\n  - role: db-expert\n  - role: helper\ntasks:\n  - id: a\n    role: db-expert\n    description: do a\n  - id: b\n    role: helper\n    description: do b\n    depends_on: [a]\n{llm}workspace: ./ws\n"
    ));
}

fn models_sent(mock: &MockLlm) -> Vec<String> {
    (0..mock.request_count())
        .map(|i| {
            mock.request_json(i)["model"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn aliases_become_model_ids_on_anthropic_and_the_swarms_model_elsewhere() {
    let mock = MockLlm::spawn(Script::text("done"));
    let fx = SwarmFixture::new();
    alias_swarm(
        &fx,
        &format!(
            "llm:\n  provider: anthropic\n  model: claude-haiku-4-5\n  base_url: {}\n  stream: false\n",
            mock.base_url_anthropic()
        ),
    );
    let out = fx
        .command()
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .args(["run", "swarm.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        models_sent(&mock),
        ["claude-opus-4-5", "claude-haiku-4-5"],
        "opus is mapped, inherit is the swarm's model"
    );

    let mock = MockLlm::spawn(Script::text("done"));
    let fx = SwarmFixture::new();
    alias_swarm(
        &fx,
        &format!(
            "llm:\n  provider: openai\n  model: qwen-local\n  base_url: {}\n  stream: false\n",
            mock.base_url_openai()
        ),
    );
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(models_sent(&mock), ["qwen-local", "qwen-local"]);
    let err = stderr(&out);
    assert_eq!(
        err.matches("role `db-expert` asks for model `opus`")
            .count(),
        1,
        "{err}"
    );

    // `llm.model_aliases` says what an alias means on this provider.
    let mock = MockLlm::spawn(Script::text("done"));
    let fx = SwarmFixture::new();
    alias_swarm(
        &fx,
        &format!(
            "llm:\n  provider: openai\n  model: qwen-local\n  base_url: {}\n  stream: false\n  model_aliases: {{ opus: big-local }}\n",
            mock.base_url_openai()
        ),
    );
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(models_sent(&mock), ["big-local", "qwen-local"]);
}
