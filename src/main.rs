//! The `swarm` command: parse the command line, call the library, print.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, before any thread: the keys leave the environment (and /proc/<pid>/environ).
    swarm_runtime::secrets::take_from_environment();
    cli::main()
}
