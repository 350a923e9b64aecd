//! `swarm init`.

use super::InitArgs;

pub fn run(_args: InitArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm init` is not available yet")
}
