//! The `swarm` command: parse the command line, call the library, print.

// Outside tests nothing may panic on what a user, a file, the network or a checkpoint holds.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use std::process::ExitCode;

/// The allocator of the whole process. A run allocates for every event, message and chunk, on
/// several threads at once; mimalloc's thread-local free lists take a fraction of the
/// instructions glibc's malloc does for the same work (see BENCHMARKS.md, "Allocator"). Built
/// without transparent huge pages: with them a 500-task run's peak RSS was 44-54 MiB instead of
/// 30 MiB, and the CPU time differed by less than the run-to-run noise.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // First, before any thread: the keys leave the environment (and /proc/<pid>/environ).
    swarm_runtime::secrets::take_from_environment();
    cli::main()
}
