//! `swarm memory`.

use super::MemoryArgs;

pub fn run(_args: MemoryArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`swarm memory` is not available yet")
}
