//! `swarm roles`.

use super::RolesCommand;

pub fn run(_args: RolesCommand) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm roles` is not available yet")
}
