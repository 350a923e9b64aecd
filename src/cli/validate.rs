//! `swarm validate`: check swarm and role files and report every problem with its position.

use super::{exit, ValidateArgs};
use swarm_runtime::spec::{validate_path, LoadOptions};

pub fn run(args: ValidateArgs) -> anyhow::Result<u8> {
    let opts = LoadOptions {
        roles_dir: args.roles_dir,
    };
    let mut all_valid = true;
    for file in &args.files {
        match validate_path(file, &opts) {
            Ok(warnings) => {
                for warning in warnings {
                    eprintln!("{warning}");
                }
                warn_if_sandbox_unavailable(file, &opts);
                println!("ok: {}", file.display());
            }
            Err(err) => {
                all_valid = false;
                eprintln!("{err}");
            }
        }
    }
    Ok(if all_valid { exit::OK } else { exit::USAGE })
}

/// `sandbox: true` on a machine that cannot confine commands: the run will refuse to start, so
/// say it now.
fn warn_if_sandbox_unavailable(file: &std::path::Path, opts: &LoadOptions) {
    let is_swarm = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if !is_swarm {
        return;
    }
    let Ok(loaded) = swarm_runtime::spec::load_swarm(file, opts) else {
        return;
    };
    if loaded.value.sandbox && loaded.value.allow_commands {
        if let Err(e) = swarm_runtime::tools::sandbox::Sandbox::probe() {
            eprintln!(
                "{}: warning: {e}; `swarm run` will refuse to start here",
                file.display()
            );
        }
    }
}
