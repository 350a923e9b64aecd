//! `swarm sessions`.

use super::SessionsCommand;

pub fn run(_args: SessionsCommand) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm sessions` is not available yet")
}
