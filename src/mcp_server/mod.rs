//! `swarm mcp`: the runtime as an MCP server, so Claude Code, claude-flow prompts and any MCP
//! client can create sessions, run them in the background, follow them, and read and write
//! project or session memory. Over stdio by default, or streamable HTTP (loopback only unless a
//! bearer token guards it).
//!
//! Runs started here are journaled like any other: when the server stops (stdin closed, SIGINT,
//! SIGTERM) each is stopped as Ctrl-C stops `swarm run`, with a checkpoint, and can be resumed.

mod tools;

use crate::runtime::{
    self, PreparedRun, ResolveEnv, ResolvedRun, RunOverrides, Start, StopReason, SwarmContext,
};
use crate::session::SessionError;
use crate::spec::SwarmPlan;
use crate::tools::mcp::McpHub;
use parking_lot::Mutex;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long the server waits, when it stops, for its runs to write their checkpoints.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// What the server runs sessions with: the options `swarm run` takes.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub state_dir: PathBuf,
    /// Provider, model, endpoint and workspace overrides for every run.
    pub overrides: RunOverrides,
    pub roles_dir: Option<PathBuf>,
    /// Relative swarm paths and workspaces are relative to this folder; hooks run here.
    pub cwd: PathBuf,
}

impl ServeConfig {
    fn resolve(
        &self,
        plan: SwarmPlan,
        start: Start<'_>,
        overrides: &RunOverrides,
    ) -> Result<ResolvedRun, ToolError> {
        let env = |name: &str| crate::secrets::var(name).filter(|v| !v.is_empty());
        let resolved = runtime::resolve(
            plan,
            start,
            overrides,
            &ResolveEnv {
                cwd: &self.cwd,
                env: &env,
            },
        )
        .map_err(|e| ToolError::Provider(e.to_string()))?;
        tracing::info!("{}", resolved.reason);
        Ok(resolved)
    }

    /// Starts the plan's MCP servers from blocking code running on the server's runtime.
    fn start_hub(&self, plan: &mut SwarmPlan) -> Result<Arc<McpHub>, String> {
        let handle = tokio::runtime::Handle::current();
        handle
            .block_on(McpHub::start(plan, &self.cwd))
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

/// Why the server could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the MCP session over stdio failed: {0}")]
    Stdio(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("{addr} is not a loopback address: serving beyond this machine needs a bearer token (--token-env VAR, with the token in $VAR)")]
    NotLoopback { addr: SocketAddr },
    #[error("the HTTP server failed: {0}")]
    Http(String),
}

/// Why a tool call failed; its text is the call's `isError` result, in the CLI's words.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Run(#[from] crate::runtime::RunError),
    #[error("{0}")]
    Provider(String),
    #[error("missing argument `{0}`")]
    Missing(&'static str),
    #[error("argument `{name}` must be {expected}")]
    Argument {
        name: &'static str,
        expected: &'static str,
    },
    #[error("unknown action `{0}`: use store, retrieve, list, delete or search")]
    Action(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Pattern(String),
    #[error("the session {session} is not running in this server (it is {status})")]
    NotRunning { session: String, status: String },
    #[error("the session {session} has no task `{task}`")]
    UnknownTask { session: String, task: String },
    #[error("no tool `{0}`")]
    UnknownTool(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A run this server started: its context (to stop it) and whether it has ended.
#[derive(Clone)]
struct RunningRun {
    ctx: Arc<SwarmContext>,
    done: tokio::sync::watch::Receiver<bool>,
}

/// The server: one per process, shared by every MCP connection (each HTTP client gets a clone).
#[derive(Clone)]
pub struct SwarmServer {
    config: Arc<ServeConfig>,
    runs: Arc<Mutex<HashMap<String, RunningRun>>>,
}

impl SwarmServer {
    pub fn new(config: ServeConfig) -> Self {
        Self {
            config: Arc::new(config),
            runs: Arc::default(),
        }
    }

    fn running(&self, session: &str) -> Option<RunningRun> {
        let run = self.runs.lock().get(session).cloned()?;
        let done = *run.done.borrow();
        (!done).then_some(run)
    }

    /// Runs the session in the background; it stays in `runs` until the server stops.
    fn spawn_run(&self, prepared: PreparedRun) {
        let id = prepared.session_id().to_string();
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.runs.lock().insert(
            id.clone(),
            RunningRun {
                ctx: prepared.context(),
                done: rx,
            },
        );
        tokio::spawn(async move {
            match prepared.execute().await {
                Ok(report) => {
                    tracing::info!("session {id}: {}", report.end.status.as_str());
                }
                Err(e) => eprintln!("swarm mcp: session {id} stopped: {e}"),
            }
            let _ = tx.send(true);
        });
    }

    /// Stops every run as Ctrl-C does and waits for their checkpoints.
    pub async fn stop_runs(&self) {
        let runs: Vec<(String, RunningRun)> = self
            .runs
            .lock()
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let live: Vec<_> = runs
            .into_iter()
            .filter(|(_, r)| {
                let done = *r.done.borrow();
                !done
            })
            .collect();
        if live.is_empty() {
            return;
        }
        eprintln!(
            "swarm mcp: stopping {} run(s): no new work starts; writing checkpoints",
            live.len()
        );
        for (_, run) in &live {
            run.ctx.control.stop(StopReason::Interrupted);
        }
        for (id, mut run) in live {
            let stopped = tokio::time::timeout(SHUTDOWN_WAIT, run.done.wait_for(|d| *d))
                .await
                .is_ok_and(|r| r.is_ok());
            if !stopped {
                eprintln!("swarm mcp: session {id} did not stop in time");
            } else {
                eprintln!("swarm mcp: session {id} stopped; resume it with `swarm resume {id}`");
            }
        }
    }

    /// Serves one MCP session over stdin/stdout until the client closes it or a signal comes;
    /// then stops this server's runs cleanly.
    pub async fn serve_stdio(self) -> Result<(), ServeError> {
        let running = self
            .clone()
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| ServeError::Stdio(e.to_string()))?;
        let cancel = running.cancellation_token();
        let result = tokio::select! {
            r = running.waiting() => r.map(|_| ()).map_err(|e| ServeError::Stdio(e.to_string())),
            () = shutdown_signal() => {
                cancel.cancel();
                Ok(())
            }
        };
        self.stop_runs().await;
        result
    }

    /// Serves streamable HTTP at `addr` (path `/mcp`) until SIGINT/SIGTERM. With a token every
    /// request must carry `Authorization: Bearer <token>`; without one only loopback addresses
    /// are served. Prints `listening on http://ADDR/mcp` on stderr once bound.
    pub async fn serve_http(
        self,
        addr: SocketAddr,
        token: Option<String>,
    ) -> Result<(), ServeError> {
        use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
        use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(ServeError::NotLoopback { addr });
        }
        let handler = self.clone();
        let service: StreamableHttpService<SwarmServer, LocalSessionManager> =
            StreamableHttpService::new(
                move || Ok(handler.clone()),
                Default::default(),
                StreamableHttpServerConfig::default(),
            );
        let token = token.map(Arc::new);
        let router =
            axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        let token = token.clone();
                        async move {
                            if let Some(token) = token {
                                if !bearer_matches(request.headers(), &token) {
                                    return axum::response::IntoResponse::into_response((
                                    axum::http::StatusCode::UNAUTHORIZED,
                                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                                    "a bearer token is required: Authorization: Bearer <token>\n",
                                ));
                                }
                            }
                            next.run(request).await
                        }
                    },
                ));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Bind {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let bound = listener.local_addr().map_err(|e| ServeError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        eprintln!("listening on http://{bound}/mcp");
        // Not a graceful shutdown of the HTTP server: it would wait for clients' open event
        // streams. The runs are what must stop cleanly; connections just close.
        let mut http = tokio::spawn(async move { axum::serve(listener, router).await });
        let served = tokio::select! {
            joined = &mut http => match joined {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServeError::Http(e.to_string())),
                Err(e) => Err(ServeError::Http(e.to_string())),
            },
            () = shutdown_signal() => Ok(()),
        };
        self.stop_runs().await;
        http.abort();
        served
    }
}

/// Compares the presented token in constant time for equal lengths.
fn bearer_matches(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let Some(presented) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (presented.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

impl ServerHandler for SwarmServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("swarm", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Run swarms of LLM agents: swarm_init {swarm} creates a session, task_orchestrate {swarmId, task} \
                 starts it in the background, swarm_status {swarmId} follows it, session_report {sessionId} \
                 gives its handoff report. memory_usage / memory_search read and write project memory \
                 (or a session's, with swarmId).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        serde_json::from_value(tools::list())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let result = match tools::call(self, &request.name, &args).await {
            Ok(serde_json::Value::String(text)) => {
                CallToolResult::success(vec![ContentBlock::text(text)])
            }
            Ok(value) => {
                let text = serde_json::to_string_pretty(&value).unwrap_or_default();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(value);
                result
            }
            // Definition errors already say `file:line:col: error: …`, as the CLI prints them.
            Err(e @ ToolError::Spec(_)) => {
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("error: {e}"))]),
        };
        Ok(CallToolResponse::from(result))
    }
}
