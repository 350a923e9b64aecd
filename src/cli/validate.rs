//! `swarm validate`.

use super::ValidateArgs;

pub fn run(_args: ValidateArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm validate` is not available yet")
}
