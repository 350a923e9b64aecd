//! `swarm swarms`: the predefined swarms built into the binary, which `swarm run NAME` runs and
//! `swarm init --from NAME` copies.

use super::{exit, SwarmsCommand};
use swarm_runtime::spec::{self, LoadOptions};

pub fn run(command: SwarmsCommand) -> anyhow::Result<u8> {
    match command {
        SwarmsCommand::List => list(),
        SwarmsCommand::Show { name } => show(&name),
    }
}

fn list() -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (file, _) in spec::builtin_swarms() {
        let name = spec::swarm_name_of(file);
        match spec::load_builtin_swarm(name, &LoadOptions::default()) {
            None => {}
            Some(Ok(loaded)) => {
                let plan = loaded.value;
                let topology = match plan.topology {
                    spec::Topology::Mesh => "mesh",
                    spec::Topology::Hierarchical => "hierarchical",
                };
                rows.push((name.to_string(), topology, plan.description));
            }
            Some(Err(e)) => problems.push(e.to_string()),
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, topology, description) in &rows {
        println!("{name:width$}  {topology:<12}  {description}");
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    })
}

fn show(name: &str) -> anyhow::Result<u8> {
    let Some((file, text)) = spec::builtin_swarm(name) else {
        return Ok(unknown(name));
    };
    eprintln!("# builtin:swarms/{file} (run it: swarm run {name} --goal \"...\"; copy it: swarm init --from {name})");
    print!("{text}");
    Ok(exit::OK)
}

/// Says that no built-in swarm is called `name`, suggesting the closest one.
pub fn unknown(name: &str) -> u8 {
    let names: Vec<&str> = spec::builtin_swarms()
        .map(|(f, _)| spec::swarm_name_of(f))
        .collect();
    eprintln!("error: no built-in swarm is called `{name}`");
    match spec::did_you_mean(name, names.iter().copied()) {
        Some(best) => {
            eprintln!("  help: did you mean `{best}`? (`swarm swarms list` shows them all)")
        }
        None => eprintln!("  help: the built-in swarms are {}", names.join(", ")),
    }
    exit::USAGE
}
