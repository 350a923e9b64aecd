//! `swarm roles`: the roles agents can take, from the search path and the built-in set.

use super::{exit, RolesCommand};
use std::path::PathBuf;
use swarm_runtime::spec::{LoadOptions, RoleCatalog};

pub fn run(command: RolesCommand) -> anyhow::Result<u8> {
    match command {
        RolesCommand::List { roles_dir } => list(roles_dir),
        RolesCommand::Show { name, roles_dir } => show(&name, roles_dir),
    }
}

fn catalog(roles_dir: Option<PathBuf>) -> RoleCatalog {
    RoleCatalog::new(&LoadOptions { roles_dir }, None)
}

fn list(roles_dir: Option<PathBuf>) -> anyhow::Result<u8> {
    let (roles, problems) = catalog(roles_dir).scan();
    let width = roles.iter().map(|r| r.role.name.len()).max().unwrap_or(0);
    let origins: Vec<String> = roles.iter().map(|r| r.origin.to_string()).collect();
    let origin_width = origins.iter().map(String::len).max().unwrap_or(0);
    for (listed, origin) in roles.iter().zip(&origins) {
        // Published descriptions run to paragraphs of examples; the list shows the first line.
        let description = listed.role.description.lines().next().unwrap_or("");
        println!(
            "{:width$}  {:origin_width$}  {}",
            listed.role.name, origin, description
        );
    }
    let warnings: Vec<_> = roles.iter().flat_map(|r| r.warnings.clone()).collect();
    for line in swarm_runtime::spec::summarize_warnings(&warnings) {
        eprintln!("{line}");
    }
    // A broken role file in a search folder should not hide the others, but must be visible.
    for problem in &problems {
        eprintln!("{problem}");
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    })
}

fn show(name: &str, roles_dir: Option<PathBuf>) -> anyhow::Result<u8> {
    let role = match super::print_loaded(catalog(roles_dir).find(name)) {
        Ok(role) => role,
        Err(code) => return Ok(code),
    };
    println!("name:        {}", role.name);
    println!("description: {}", role.description);
    println!("source:      {}", role.source);
    let tools: Vec<&str> = role.tools.iter().map(|t| t.as_str()).collect();
    println!("tools:       {}", tools.join(", "));
    println!(
        "model:       {}",
        role.model.as_deref().unwrap_or("(the swarm's)")
    );
    println!("max_turns:   {}", role.max_turns);
    match &role.memory {
        Some(memory) => println!(
            "memory:      read [{}], write [{}]",
            memory.read.join(", "),
            memory.write.join(", ")
        ),
        None => println!(
            "memory:      read every namespace, write the swarm's and agent/{}",
            role.name
        ),
    }
    println!();
    println!("{}", role.prompt);
    Ok(exit::OK)
}
