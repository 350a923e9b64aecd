//! The built-in definitions, `swarm init`, `swarm roles` and the role search order, through the
//! real binary; and what `load_swarm` hands the runtime.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use swarm_runtime::spec::{
    builtin_roles, builtin_swarms, load_role_file, load_swarm, LoadOptions, RoleCatalog, Severity,
    ToolName, Topology,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn swarm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the swarm binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const REQUIRED_ROLES: [&str; 17] = [
    "backend-dev",
    "tester",
    "code-reviewer",
    "security-reviewer",
    "performance-reviewer",
    "qa-lead",
    "team-coordinator",
    "system-architect",
    "progress-reporter",
    "sprint-facilitator",
    "product-owner",
    "tech-lead",
    "migration-planner",
    "handoff-coordinator",
    "session-analytics",
    "frontend-dev",
    "devops-engineer",
];

const REQUIRED_SWARMS: [&str; 6] = [
    "development.yaml",
    "code-review.yaml",
    "qa-review.yaml",
    "sprint-planning.yaml",
    "architecture-planning.yaml",
    "team-coordination.yaml",
];

#[test]
fn every_repository_swarm_and_role_validates_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<String> = Vec::new();
    for folder in ["swarms", "agents"] {
        for entry in std::fs::read_dir(repo().join(folder)).unwrap() {
            files.push(entry.unwrap().path().display().to_string());
        }
    }
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = swarm(dir.path(), &args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "warnings:\n{stderr}");
    assert_eq!(text(&out.stdout).matches("ok: ").count(), files.len());
}

#[test]
fn builtin_swarms_validate_from_a_folder_without_role_files() {
    // No agents/ anywhere near: every role must come from the binary.
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<&str> = builtin_swarms().map(|(name, _)| name).collect();
    for required in REQUIRED_SWARMS {
        assert!(
            names.contains(&required),
            "{required} is not built in: {names:?}"
        );
    }
    for (name, body) in builtin_swarms() {
        std::fs::write(dir.path().join(name), body).unwrap();
        let out = swarm(dir.path(), &["validate", name]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
    }
}

#[test]
fn builtin_swarms_are_real_plans() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in builtin_swarms() {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let plan = load_swarm(&path, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .value;
        assert!(
            plan.budget.tokens.is_some() || plan.budget.llm_calls.is_some(),
            "{name} has no budget"
        );
        match plan.topology {
            Topology::Mesh => {
                assert!(
                    plan.tasks.iter().any(|t| t.description.contains("{goal}")),
                    "{name}"
                );
                assert!(
                    plan.tasks.iter().any(|t| !t.depends_on.is_empty()),
                    "{name}"
                );
            }
            Topology::Hierarchical => {
                let coordinator = plan.coordinator.as_ref().expect("validated");
                assert!(
                    plan.roles[coordinator]
                        .tools
                        .contains(&ToolName::CreateTask),
                    "{name}"
                );
            }
        }
        for role in plan.roles.values() {
            assert!(
                role.tools.contains(&ToolName::CompleteTask),
                "{name}: {}",
                role.name
            );
        }
    }
}

#[test]
fn builtin_roles_have_real_prompts_and_the_runtime_conventions() {
    let names: Vec<&str> = builtin_roles()
        .map(|(f, _)| f.trim_end_matches(".md"))
        .collect();
    for required in REQUIRED_ROLES {
        assert!(names.contains(&required), "{required} is not built in");
    }
    let catalog = RoleCatalog::new(&LoadOptions::default(), None);
    for name in names {
        let role = catalog.find(name).unwrap_or_else(|e| panic!("{e}")).value;
        assert_eq!(role.name, name);
        assert!(role.prompt.len() > 1500, "{name}: prompt too short");
        for convention in [
            "<swarm>/<task>/result",
            "/blockers",
            "/decisions",
            "complete_task",
        ] {
            assert!(
                role.prompt.contains(convention),
                "{name} lacks {convention}"
            );
        }
        for tool in &role.tools {
            assert!(
                role.prompt.contains(&format!("`{tool} {{")),
                "{name}: {tool} is not explained"
            );
        }
    }
}

#[test]
fn roles_list_shows_every_builtin_role_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm(dir.path(), &["roles", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 17, "{stdout}");
    for required in REQUIRED_ROLES {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{required} "))),
            "{required} missing"
        );
    }
    let description_column = |l: &str| {
        l.find("  ")
            .map(|i| i + l[i..].len() - l[i..].trim_start().len())
    };
    let first = description_column(lines[0]);
    assert!(
        lines.iter().all(|l| description_column(l) == first),
        "{stdout}"
    );
}

#[test]
fn roles_show_prints_settings_and_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm(dir.path(), &["roles", "show", "tester"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("name:        tester"), "{stdout}");
    assert!(stdout.contains("source:      builtin:tester"), "{stdout}");
    assert!(stdout.contains("complete_task"), "{stdout}");
    assert!(stdout.contains("You are a tester"), "{stdout}");

    let out = swarm(dir.path(), &["roles", "show", "testr"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `tester`?"));
}

const CUSTOM_TESTER: &str = "---\nname: tester\ndescription: Our own tester\ntools: [complete_task]\n---\nYou test our way.\n";

#[test]
fn roles_dir_overrides_the_builtin_role() {
    let dir = tempfile::tempdir().unwrap();
    let roles = dir.path().join("mine");
    std::fs::create_dir(&roles).unwrap();
    std::fs::write(roles.join("tester.md"), CUSTOM_TESTER).unwrap();
    let out = swarm(
        dir.path(),
        &["roles", "show", "tester", "--roles-dir", "mine"],
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Our own tester"), "{stdout}");
    assert!(stdout.contains("You test our way."), "{stdout}");
    let out = swarm(dir.path(), &["roles", "list", "--roles-dir", "mine"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("tester ")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains("Our own tester"), "{stdout}");
}

#[test]
fn search_order_roles_dir_then_beside_the_swarm_then_cwd_then_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let beside = project.join("agents");
    let cwd_agents = dir.path().join("agents");
    let override_dir = dir.path().join("override");
    for d in [&beside, &cwd_agents, &override_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let role = |description: &str| {
        format!(
            "---\nname: tester\ndescription: {description}\ntools: [complete_task]\n---\nPrompt.\n"
        )
    };
    std::fs::write(beside.join("tester.md"), role("beside")).unwrap();
    std::fs::write(cwd_agents.join("tester.md"), role("cwd")).unwrap();
    std::fs::write(override_dir.join("tester.md"), role("override")).unwrap();
    let swarm_file = project.join("s.yaml");
    std::fs::write(
        &swarm_file,
        "name: s\ntopology: mesh\nagents: [tester, backend-dev]\ntasks:\n  - {id: t, role: tester, description: x}\n  - {id: b, role: backend-dev, description: y}\n",
    )
    .unwrap();

    let description = |opts: &LoadOptions| {
        load_swarm(&swarm_file, opts).unwrap().value.roles["tester"]
            .description
            .clone()
    };
    let with_override = LoadOptions {
        roles_dir: Some(override_dir.clone()),
    };
    assert_eq!(description(&with_override), "override");
    assert_eq!(description(&LoadOptions::default()), "beside");
    std::fs::remove_file(beside.join("tester.md")).unwrap();
    // `./agents` is relative to the process's folder; the binary is run there.
    let out = swarm(dir.path(), &["roles", "show", "tester"]);
    assert!(
        text(&out.stdout).contains("description: cwd"),
        "{}",
        text(&out.stdout)
    );
    // No folder there has backend-dev: it comes from the binary.
    let out = swarm(dir.path(), &["roles", "show", "backend-dev"]);
    assert!(
        text(&out.stdout).contains("source:      builtin:backend-dev"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn claude_code_agent_file_loads_with_warnings() {
    let file = repo().join("tests/fixtures/valid/claude-code-agent.md");
    let loaded = load_role_file(&file).unwrap();
    let role = loaded.value;
    assert_eq!(
        role.tools,
        vec![
            ToolName::ReadFile,
            ToolName::WriteFile,
            ToolName::SearchFiles,
            ToolName::RunCommand
        ]
    );
    assert!(loaded
        .warnings
        .iter()
        .all(|w| w.severity == Severity::Warning));
    let messages: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    for expected in [
        "`color`",
        "`priority`",
        "`capabilities`",
        "`hooks`",
        "`Read`",
        "`WebSearch`",
        "`Grep`",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected} not warned: {messages:?}"
        );
    }

    let out = swarm(&repo(), &["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("claude-code-agent.md:5:1: warning: `color` is not used by this runtime"),
        "{stderr}"
    );
    assert!(
        stderr.contains("this role gets `read_file` here"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("ok: "));
}

#[test]
fn init_writes_files_that_validate_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm(dir.path(), &["init", "new"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("swarm run"), "{stdout}");
    let swarm_file = dir.path().join("new/swarm.yaml");
    let role_file = dir.path().join("new/agents/domain-reviewer.md");
    assert!(swarm_file.is_file() && role_file.is_file());

    let out = swarm(
        dir.path(),
        &[
            "validate",
            "new/swarm.yaml",
            "new/agents/domain-reviewer.md",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // The custom role is the one beside the swarm file.
    let plan = load_swarm(&swarm_file, &LoadOptions::default())
        .unwrap()
        .value;
    assert_eq!(
        plan.roles["domain-reviewer"].source,
        role_file.display().to_string()
    );

    std::fs::write(&role_file, "edited").unwrap();
    let out = swarm(dir.path(), &["init", "new"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already exist"));
    assert_eq!(std::fs::read_to_string(&role_file).unwrap(), "edited");
}

#[test]
fn load_swarm_fills_defaults_roles_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    let body = "name: minimal\ntopology: hierarchical\ncoordinator: team-coordinator\nagents:\n  - tester\n  - role: backend-dev\n    count: 2\ntasks:\n  - id: api\n    role: backend-dev\n    description: \"Build {goal}\"\n";
    std::fs::write(&path, body).unwrap();
    let loaded = load_swarm(&path, &LoadOptions::default()).unwrap();
    let plan = loaded.value;
    assert_eq!(plan.memory.namespace, "minimal");
    assert_eq!(plan.memory.ttl, None);
    assert_eq!(plan.workspace, PathBuf::from("./workspace"));
    assert!(!plan.allow_commands);
    assert_eq!(plan.checkpoint.interval, Duration::from_secs(30));
    assert_eq!((plan.budget.warn_at, plan.budget.stop_at), (0.7, 0.9));
    assert_eq!(plan.max_agents, 4, "roster plus the coordinator");
    assert_eq!(plan.tasks[0].description, "Build {goal}");
    let roles: Vec<&str> = plan.roles.keys().map(String::as_str).collect();
    assert_eq!(roles, ["backend-dev", "team-coordinator", "tester"]);
    assert_eq!(plan.source_path, path);
    assert_eq!(plan.source_hash.len(), 16);

    std::fs::write(&path, body.replace("minimal", "minimal-2")).unwrap();
    let changed = load_swarm(&path, &LoadOptions::default()).unwrap().value;
    assert_ne!(changed.source_hash, plan.source_hash);
}

#[test]
fn load_swarm_reads_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yml");
    std::fs::write(
        &path,
        r#"name: full
description: every setting
topology: mesh
max_agents: 2
agents: [tester]
tasks:
  - {id: t, role: tester, description: x, depends_on: []}
memory: {namespace: shared, ttl: none}
checkpoint: {interval: 500ms}
budget: {tokens: 10, llm_calls: 2, time: 1d, usd: 1.5, warn_at: 0.5, stop_at: 1}
llm:
  provider: anthropic
  model: claude-x
  base_url: http://localhost:8080/v1
  stream: false
  max_concurrency: 3
  requests_per_minute: 60
  tokens_per_minute: 1000
  prices: {input_per_mtok: 3, output_per_mtok: 15}
  max_retries: 0
  timeout: 2m
  max_tokens: 512
workspace: out
allow_commands: true
hooks:
  post-task: echo done
  session-end: echo end
  timeout: 5s
"#,
    )
    .unwrap();
    let plan = load_swarm(&path, &LoadOptions::default()).unwrap().value;
    assert_eq!(plan.memory.namespace, "shared");
    assert_eq!(plan.checkpoint.interval, Duration::from_millis(500));
    assert_eq!(plan.budget.time, Some(Duration::from_secs(86_400)));
    assert_eq!(plan.budget.usd, Some(1.5));
    assert_eq!(plan.budget.stop_at, 1.0);
    assert!(!plan.llm.stream);
    assert_eq!(plan.llm.max_retries, 0);
    assert_eq!(plan.llm.timeout, Duration::from_secs(120));
    assert_eq!(plan.llm.prices.map(|p| p.output_per_mtok), Some(15.0));
    assert_eq!(
        plan.llm.base_url.as_deref(),
        Some("http://localhost:8080/v1")
    );
    assert!(plan.allow_commands);
    assert_eq!(plan.hooks.commands.len(), 2);
    assert_eq!(plan.hooks.timeout, Duration::from_secs(5));
}

#[test]
fn a_role_named_unlike_its_file_is_found_by_either_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reviewer.md"),
        "---\nname: my-reviewer\ndescription: d\ntools: [complete_task]\n---\nReview.\n",
    )
    .unwrap();
    let out = swarm(dir.path(), &["validate", "reviewer.md"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    for name in ["my-reviewer", "reviewer"] {
        let out = swarm(dir.path(), &["roles", "show", name, "--roles-dir", "."]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Review."));
    }
}
