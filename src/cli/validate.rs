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
