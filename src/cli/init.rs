//! `swarm init`: scaffold a swarm file and a custom role that validate as written, to edit.

use super::{exit, InitArgs};
use anyhow::Context;
use std::path::PathBuf;

const SWARM_FILE: &str = "swarm.yaml";
const ROLE_FILE: &str = "agents/domain-reviewer.md";

const SWARM_TEMPLATE: &str = r#"# A swarm: who works on what. Check it with `swarm validate swarm.yaml`.
name: my-swarm
description: Build a change, test it, and have it reviewed against the domain's rules
topology: mesh                 # mesh: the tasks below are the plan; hierarchical: a coordinator plans
max_agents: 3
agents:                        # built-in roles (`swarm roles list`) or files in ./agents
  - role: backend-dev
  - role: tester
  - role: domain-reviewer      # agents/domain-reviewer.md: edit it for your project
tasks:                         # {goal} is replaced by `swarm run --goal "..."`
  - id: build
    role: backend-dev
    description: "Implement in the workspace: {goal}. Store the design decisions you make."
  - id: test
    role: tester
    depends_on: [build]
    description: "Write and describe tests for the work done in task build for: {goal}"
  - id: review
    role: domain-reviewer
    depends_on: [build, test]
    description: "Review the work of tasks build and test against the domain rules for: {goal}"
memory:
  ttl: 24h                     # entries expire after a day; `none` keeps them
checkpoint:
  interval: 30s
budget:
  tokens: 200000
  llm_calls: 60
  time: 30m
  warn_at: 0.7
  stop_at: 0.9
# workspace: ./workspace       # the only folder the agents' file tools may touch; without it,
                               # each session gets its own ./workspace/<session id>
allow_commands: false
"#;

const ROLE_TEMPLATE: &str = r#"---
name: domain-reviewer
description: Reviews changes against this project's domain rules and conventions
tools: [memory_retrieve, memory_search, memory_list, memory_store, read_file, list_files, send_message, read_messages, complete_task]
max_turns: 10
---
You review work done by other agents of the swarm against the rules of this project's domain.
Replace this paragraph with what matters here: business rules, naming, compliance, the people
who use the result.

How to work:
1. Read what your dependencies produced: `memory_retrieve` the key `<swarm>/<task>/result` for
   each task you depend on, and `memory_search` with `*/decisions` and `*/blockers`.
2. Read the files they name with `read_file`; use `list_files` to find the rest.
3. For each problem, record it with `memory_store` at `<swarm>/<your task>/findings`: where it is,
   why it breaks a rule, and the fix. Message the author with `send_message` when it blocks them.
4. Finish with `complete_task`: a short verdict (approve or changes needed), the findings' key,
   and anything still open. Do not repeat the review once the verdict is written.
"#;

pub fn run(args: InitArgs) -> anyhow::Result<u8> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    if let Some(name) = &args.from {
        let Some((_, text)) = swarm_runtime::spec::builtin_swarm(name) else {
            return Ok(super::swarms::unknown(name));
        };
        let swarm = dir.join(SWARM_FILE);
        if let Err(code) = write_new(&[(swarm.clone(), text)]) {
            return Ok(code);
        }
        println!();
        println!("Next:");
        println!(
            "  1. edit {} (roles, tasks, budget); `swarm roles show ROLE > {}` copies a role to edit",
            swarm.display(),
            dir.join("agents/ROLE.md").display()
        );
        println!(
            "  2. swarm plan {} --goal \"what you want built\"",
            swarm.display()
        );
        println!(
            "  3. swarm run {} --goal \"what you want built\"",
            swarm.display()
        );
        return Ok(exit::OK);
    }
    let targets = [
        (dir.join(SWARM_FILE), SWARM_TEMPLATE),
        (dir.join(ROLE_FILE), ROLE_TEMPLATE),
    ];
    if let Err(code) = write_new(&targets) {
        return Ok(code);
    }
    let swarm = dir.join(SWARM_FILE);
    println!();
    println!("Next:");
    println!(
        "  1. edit {} (the reviewer's prompt) and {} (roles, tasks, budget)",
        dir.join(ROLE_FILE).display(),
        swarm.display()
    );
    println!("  2. swarm validate {}", swarm.display());
    println!(
        "  3. swarm run {} --goal \"what you want built\"",
        swarm.display()
    );
    Ok(exit::OK)
}

/// Writes every file, or none when one of them exists already (then the usage exit code).
fn write_new(targets: &[(PathBuf, &str)]) -> Result<(), u8> {
    let existing: Vec<String> = targets
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        eprintln!(
            "error: {} already exist(s); nothing was written\n  help: pick an empty folder: swarm init NEW-DIR",
            existing.join(", ")
        );
        return Err(exit::USAGE);
    }
    for (path, text) in targets {
        if let Err(e) = write_one(path, text) {
            eprintln!("error: {e:#}");
            return Err(exit::USAGE);
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn write_one(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // create_new: never replace a file that appeared since the check above.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
