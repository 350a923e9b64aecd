//! `swarm mcp`: serve the runtime as MCP tools, over stdio or streamable HTTP.

use super::{exit, McpArgs};
use anyhow::{bail, Context};
use swarm_runtime::mcp_server::{ServeConfig, SwarmServer};

pub fn run(args: McpArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    // The token is read once and kept only in memory: registered as a secret, it is redacted
    // from everything written and no child process inherits its variable.
    let token = match &args.token_env {
        Some(var) => match swarm_runtime::secrets::var(var) {
            Some(token) if !token.trim().is_empty() => {
                let token = token.trim().to_string();
                swarm_runtime::secrets::register(var, &token);
                Some(token)
            }
            _ => bail!("--token-env {var}: the environment variable {var} is not set or empty; put the bearer token clients must send in it"),
        },
        None => None,
    };
    if token.is_some() && args.http.is_none() {
        bail!("--token-env guards the HTTP server: use it with --http ADDR");
    }
    let config = ServeConfig {
        state_dir: args.state.state_dir.clone(),
        overrides: args.options.overrides(),
        roles_dir: args.options.roles_dir.clone(),
        cwd,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let server = SwarmServer::new(config);
    let served = match &args.http {
        None => runtime.block_on(server.serve_stdio()),
        Some(addr) => {
            let addr = addr.parse().with_context(|| {
                format!("--http {addr}: not an address: use HOST:PORT, e.g. 127.0.0.1:8765")
            })?;
            runtime.block_on(server.serve_http(addr, token))
        }
    };
    // The stdin reader is a blocking thread that only ends on input: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(exit::OK)
}
