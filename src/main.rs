//! The `swarm` command: parse the command line, call the library, print.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
