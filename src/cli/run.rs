//! `swarm run` and `swarm resume`.

use super::{ResumeArgs, RunArgs};

pub fn run(_args: RunArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm run` is not available yet")
}

pub fn resume(_args: ResumeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm resume` is not available yet")
}
