//! MCP servers as agent tools, through the official Rust SDK (`rmcp`).
//!
//! The servers a run's roles use start once, when the run starts, and are shared by every
//! agent: a child process speaking MCP on stdio, or a streamable HTTP endpoint. Their tool lists
//! are read then; a role naming a tool its server does not offer stops the run before any LLM
//! call. A tool is offered to the model as `mcp__<server>__<tool>`, Claude Code's naming.
//!
//! A server found dead (its process exited, its connection closed) is restarted once; after
//! that its tools answer with an error saying so. Every call has the server's timeout. Results
//! become text for the model: text content as is, structured content as JSON, images, audio and
//! resources as a short note, `isError` as a tool error, all capped like `run_command`'s output.
//!
//! `${VAR}` and `${VAR:-default}` in a server's command, arguments, environment, folder, URL and
//! headers are expanded from the environment when the server starts; the plan, which is stored,
//! keeps them unexpanded. A stdio server gets the runner's environment without secrets (like
//! `run_command`), plus the `env` it is given.

use super::shell::HeadTail;
use super::{Tool, ToolError, ToolFuture, ToolReply};
use crate::llm::ToolSchema;
use crate::spec::{McpServerSpec, McpTransport, SwarmPlan};
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

/// Bytes of a tool result given to the model; the middle is cut beyond it, as for commands.
pub const MCP_OUTPUT_CAP: usize = 16 * 1024;
/// Bytes of a stdio server's stderr kept to explain why it failed to start or died.
const STDERR_TAIL: usize = 2048;
/// Tool names a "did you mean" lists.
const NEAREST: usize = 5;

/// Why the MCP servers of a run could not be set up. Every one stops the run before any LLM
/// call.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("MCP server `{server}` ({source_file}) could not be started: {reason}")]
    Start {
        server: String,
        source_file: String,
        reason: String,
    },
    #[error("{role_file}: role `{role}` lists `{tool}`, but {problem}")]
    RoleTool {
        role_file: String,
        role: String,
        tool: String,
        problem: String,
    },
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
}

/// A tool as its server describes it.
#[derive(Debug, Clone)]
struct OfferedTool {
    name: String,
    description: String,
    input_schema: Value,
    /// `readOnlyHint` or `idempotentHint`.
    hinted_safe: bool,
}

/// How to start a server, with `${VAR}` expanded.
#[derive(Clone)]
enum Launch {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: PathBuf,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

type Client = RunningService<RoleClient, ()>;

/// A connection to a server and what is known about its life.
struct Connection {
    client: Option<Client>,
    /// Process id of a stdio server, to make sure it is gone at shutdown.
    pid: Option<u32>,
    stderr: Arc<parking_lot::Mutex<HeadTailText>>,
    restarts: u32,
    /// Set when the server died after its one restart, or the restart failed.
    gone: Option<String>,
}

/// The last bytes a server wrote to stderr.
#[derive(Default)]
struct HeadTailText(String);

impl HeadTailText {
    fn push(&mut self, text: &str) {
        self.0.push_str(text);
        if self.0.len() > STDERR_TAIL {
            let mut cut = self.0.len() - STDERR_TAIL;
            while !self.0.is_char_boundary(cut) {
                cut += 1;
            }
            self.0.drain(..cut);
        }
    }
}

/// One running server.
pub struct McpServer {
    name: String,
    spec: McpServerSpec,
    launch: Launch,
    tools: Vec<OfferedTool>,
    connection: Mutex<Connection>,
    started_in: Duration,
}

impl McpServer {
    /// Starts the server and reads its tool list.
    async fn start(name: &str, spec: &McpServerSpec, base_dir: &Path) -> Result<Self, McpError> {
        let start_error = |reason: String| McpError::Start {
            server: name.to_string(),
            source_file: spec.source.clone(),
            reason,
        };
        let launch = expand_launch(&spec.transport, base_dir).map_err(start_error)?;
        let began = Instant::now();
        let stderr = Arc::new(parking_lot::Mutex::new(HeadTailText::default()));
        let (client, pid) = connect(&launch, spec.timeout, &stderr)
            .await
            .map_err(|e| start_error(with_stderr(e, &stderr)))?;
        let listed = tokio::time::timeout(spec.timeout, client.peer().list_all_tools()).await;
        let listed = match listed {
            Ok(Ok(tools)) => tools,
            Ok(Err(e)) => {
                let _ = client.cancel().await;
                return Err(start_error(with_stderr(
                    format!("listing its tools failed: {e}"),
                    &stderr,
                )));
            }
            Err(_) => {
                let _ = client.cancel().await;
                return Err(start_error(format!(
                    "it did not list its tools within {}",
                    super::shell::format_duration(spec.timeout)
                )));
            }
        };
        let tools = listed
            .into_iter()
            .filter_map(|tool| {
                let value = serde_json::to_value(&tool).ok()?;
                let hint = |key: &str| value["annotations"][key].as_bool() == Some(true);
                Some(OfferedTool {
                    name: tool.name.to_string(),
                    description: value["description"]
                        .as_str()
                        .or(value["title"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    input_schema: value
                        .get("inputSchema")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({"type": "object"})),
                    hinted_safe: hint("readOnlyHint") || hint("idempotentHint"),
                })
            })
            .collect();
        Ok(Self {
            name: name.to_string(),
            spec: spec.clone(),
            launch,
            tools,
            connection: Mutex::new(Connection {
                client: Some(client),
                pid,
                stderr,
                restarts: 0,
                gone: None,
            }),
            started_in: began.elapsed(),
        })
    }

    /// Names of the tools the server offered at start.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| t.name.as_str())
    }

    /// How long the start (spawn or connect, handshake, tool list) took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// A live peer, restarting the server once if it is found dead.
    async fn peer(&self) -> Result<Peer<RoleClient>, String> {
        let mut conn = self.connection.lock().await;
        if let Some(why) = &conn.gone {
            return Err(why.clone());
        }
        if let Some(client) = &conn.client {
            if !client.is_closed() && !client.peer().is_transport_closed() {
                return Ok(client.peer().clone());
            }
        }
        let exited = with_stderr(
            format!("the MCP server `{}` stopped", self.name),
            &conn.stderr,
        );
        if conn.restarts >= 1 {
            let why = format!(
                "{exited}; it was restarted once already, so its tools are unavailable for the rest of this run"
            );
            conn.gone = Some(why.clone());
            if let Some(client) = conn.client.take() {
                let _ = client.cancel().await;
            }
            return Err(why);
        }
        conn.restarts += 1;
        if let Some(client) = conn.client.take() {
            let _ = client.cancel().await;
        }
        tracing::warn!("{exited}; restarting it once");
        match connect(&self.launch, self.spec.timeout, &conn.stderr).await {
            Ok((client, pid)) => {
                let peer = client.peer().clone();
                conn.client = Some(client);
                conn.pid = pid;
                Ok(peer)
            }
            Err(e) => {
                let why = format!(
                    "{exited} and could not be restarted ({e}); its tools are unavailable for the rest of this run"
                );
                conn.gone = Some(why.clone());
                Err(why)
            }
        }
    }

    async fn call(&self, tool: &str, args: &Value) -> Result<ToolReply, ToolError> {
        let arguments: Option<JsonObject> = match args {
            Value::Object(map) if map.contains_key("_raw") && map.len() == 1 => {
                return Err(ToolError(format!(
                    "the arguments for `{tool}` were not valid JSON; send a JSON object"
                )))
            }
            Value::Object(map) => Some(map.clone()),
            Value::Null => None,
            other => {
                return Err(ToolError(format!(
                    "the arguments for `{tool}` must be a JSON object, not {other}"
                )))
            }
        };
        let peer = self.peer().await.map_err(ToolError)?;
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = arguments;
        let timeout = self.spec.timeout;
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => Err(ToolError(format!(
                "the MCP server `{}` did not answer `{tool}` within {} (its `timeout`); the call was cancelled and its outcome is unknown",
                self.name,
                super::shell::format_duration(timeout)
            ))),
            Ok(Err(e)) => {
                let stderr = Arc::clone(&self.connection.lock().await.stderr);
                let dead = peer.is_transport_closed();
                let what = if dead {
                    format!(
                        "the MCP server `{}` stopped during the call of `{tool}` ({e}); its outcome is unknown",
                        self.name
                    )
                } else {
                    format!("the MCP server `{}` failed the call of `{tool}`: {e}", self.name)
                };
                Err(ToolError(with_stderr(what, &stderr)))
            }
            Ok(Ok(result)) => {
                let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                render_result(&value)
            }
        }
    }

    async fn shutdown(&self) {
        let mut conn = self.connection.lock().await;
        if let Some(client) = conn.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
        }
        // Dropping the transport asks the child to go; make sure it has.
        if let Some(pid) = conn.pid.take().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill only sends a signal. The pid is our own child, not yet reaped by us
            // if it is still running; ESRCH after it exited is expected and ignored.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The MCP servers of one run, shared by its agents.
#[derive(Default)]
pub struct McpHub {
    servers: BTreeMap<String, Arc<McpServer>>,
}

impl McpHub {
    /// Starts, all at once, the servers that some role of `plan` uses, after checking that each
    /// such server is defined; then checks every MCP tool the roles name against the tool lists.
    /// Relative `cwd`s are relative to `base_dir`. On any error, the servers already started
    /// are shut down.
    pub async fn start(plan: &SwarmPlan, base_dir: &Path) -> Result<Self, McpError> {
        let mut wanted: BTreeMap<&str, &McpServerSpec> = BTreeMap::new();
        for role in plan.roles.values() {
            for name in &role.mcp_tools {
                let (server, _) = split_name(name);
                match plan.mcp_servers.get(server) {
                    Some(spec) => {
                        wanted.insert(server, spec);
                    }
                    None => {
                        let defined: Vec<&str> =
                            plan.mcp_servers.keys().map(String::as_str).collect();
                        return Err(McpError::RoleTool {
                            role_file: role.source.clone(),
                            role: role.name.clone(),
                            tool: name.clone(),
                            problem: format!(
                                "no MCP server `{server}` is defined ({}); add it under `mcp_servers:` in the swarm file or in an `--mcp-config` file",
                                if defined.is_empty() {
                                    "the swarm defines none".to_string()
                                } else {
                                    format!("defined: {}", defined.join(", "))
                                }
                            ),
                        });
                    }
                }
            }
        }
        let started = futures_util::future::join_all(
            wanted
                .iter()
                .map(|(name, spec)| McpServer::start(name, spec, base_dir)),
        )
        .await;
        let mut hub = McpHub::default();
        let mut first_error = None;
        for result in started {
            match result {
                Ok(server) => {
                    hub.servers.insert(server.name.clone(), Arc::new(server));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_none() {
            first_error = hub.check_roles(plan).err();
        }
        if let Some(e) = first_error {
            hub.shutdown().await;
            return Err(e);
        }
        Ok(hub)
    }

    /// The running servers, by name.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<McpServer>> {
        self.servers.values()
    }

    fn check_roles(&self, plan: &SwarmPlan) -> Result<(), McpError> {
        for role in plan.roles.values() {
            for name in &role.mcp_tools {
                let (server_name, tool) = split_name(name);
                let Some(server) = self.servers.get(server_name) else {
                    continue;
                };
                let Some(tool) = tool else { continue };
                if server.tools.iter().any(|t| t.name == tool) {
                    continue;
                }
                let mut offered: Vec<&str> = server.tool_names().collect();
                offered.sort_by(|a, b| {
                    strsim::jaro_winkler(b, tool)
                        .partial_cmp(&strsim::jaro_winkler(a, tool))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let nearest: Vec<String> = offered
                    .iter()
                    .take(NEAREST)
                    .map(|t| format!("mcp__{server_name}__{t}"))
                    .collect();
                return Err(McpError::RoleTool {
                    role_file: role.source.clone(),
                    role: role.name.clone(),
                    tool: name.clone(),
                    problem: if nearest.is_empty() {
                        format!("MCP server `{server_name}` offers no tools")
                    } else {
                        format!(
                            "MCP server `{server_name}` offers no tool `{tool}`; nearest it offers: {}",
                            nearest.join(", ")
                        )
                    },
                });
            }
        }
        Ok(())
    }

    /// The tools for the MCP names a role lists (`mcp__<server>` expands to all of a server's
    /// tools), in the order listed.
    pub fn tools_for(&self, names: &[String]) -> Vec<Arc<dyn Tool>> {
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        for name in names {
            let (server_name, only) = split_name(name);
            let Some(server) = self.servers.get(server_name) else {
                continue;
            };
            for offered in &server.tools {
                if only.is_some_and(|t| t != offered.name) {
                    continue;
                }
                let full = format!("mcp__{server_name}__{}", offered.name);
                let repeat_safe = offered.hinted_safe
                    || server
                        .spec
                        .safe_to_repeat
                        .iter()
                        .any(|s| *s == offered.name || *s == full);
                tools.push(Arc::new(McpTool {
                    schema: ToolSchema {
                        name: full,
                        description: offered.description.clone(),
                        parameters: offered.input_schema.clone(),
                    },
                    tool: offered.name.clone(),
                    server: Arc::clone(server),
                    repeat_safe,
                }));
            }
        }
        tools
    }

    /// Stops every server. Called on every way a run ends.
    pub async fn shutdown(&self) {
        futures_util::future::join_all(self.servers.values().map(|s| s.shutdown())).await;
    }
}

/// One tool of one server, as an agent holds it.
struct McpTool {
    schema: ToolSchema,
    tool: String,
    server: Arc<McpServer>,
    repeat_safe: bool,
}

impl Tool for McpTool {
    fn schema(&self) -> &ToolSchema {
        &self.schema
    }

    fn repeat_safe(&self) -> bool {
        self.repeat_safe
    }

    fn call<'a>(&'a self, args: &'a Value) -> ToolFuture<'a> {
        Box::pin(self.server.call(&self.tool, args))
    }
}

/// `mcp__git__git_status` -> (`git`, Some(`git_status`)); `mcp__git` -> (`git`, None).
fn split_name(name: &str) -> (&str, Option<&str>) {
    let rest = name.strip_prefix("mcp__").unwrap_or(name);
    match rest.split_once("__") {
        Some((server, tool)) => (server, Some(tool)),
        None => (rest, None),
    }
}

fn with_stderr(message: String, stderr: &parking_lot::Mutex<HeadTailText>) -> String {
    let tail = stderr.lock().0.trim().to_string();
    if tail.is_empty() {
        message
    } else {
        format!("{message}; its stderr ends with: {tail}")
    }
}

/// Connects to a server: spawns the process or opens the HTTP session, and completes the MCP
/// handshake within `timeout`.
async fn connect(
    launch: &Launch,
    timeout: Duration,
    stderr: &Arc<parking_lot::Mutex<HeadTailText>>,
) -> Result<(Client, Option<u32>), String> {
    let within = super::shell::format_duration(timeout);
    match launch {
        Launch::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).current_dir(cwd);
            for (name, _) in std::env::vars_os() {
                if name.to_str().is_none_or(crate::secrets::is_secret_var) {
                    cmd.env_remove(&name);
                }
            }
            cmd.envs(env);
            let (process, child_stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("`{command}` could not be run: {e}"))?;
            let pid = process.id();
            if let Some(mut pipe) = child_stderr {
                let sink = Arc::clone(stderr);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = pipe.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        sink.lock().push(&String::from_utf8_lossy(&buf[..n]));
                    }
                });
            }
            match tokio::time::timeout(timeout, ().serve(process)).await {
                Ok(Ok(client)) => Ok((client, pid)),
                Ok(Err(e)) => Err(format!("the MCP handshake failed: {e}")),
                Err(_) => Err(format!(
                    "it did not complete the MCP handshake within {within}"
                )),
            }
        }
        Launch::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
                let value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| format!("the value of header `{name}` is not valid in HTTP"))?;
                custom.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let transport = StreamableHttpClientTransport::from_config(config);
            match tokio::time::timeout(timeout, ().serve(transport)).await {
                Ok(Ok(client)) => Ok((client, None)),
                Ok(Err(e)) => Err(format!("connecting to {} failed: {e}", redact_url(url))),
                Err(_) => Err(format!(
                    "{} did not complete the MCP handshake within {within}",
                    redact_url(url)
                )),
            }
        }
    }
}

/// A URL without its query string, which may hold a token.
fn redact_url(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

fn expand_launch(transport: &McpTransport, base_dir: &Path) -> Result<Launch, String> {
    // Whatever a server's configuration takes from the environment may be a credential: it is
    // redacted like the API keys and kept from commands' environments.
    let env = |name: &str| {
        let value = crate::secrets::var(name);
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            crate::secrets::register(name, value);
        }
        value
    };
    Ok(match transport {
        McpTransport::Stdio {
            command,
            args,
            env: vars,
            cwd,
        } => Launch::Stdio {
            command: expand(command, &env).map_err(|e| format!("`command`: {e}"))?,
            args: args
                .iter()
                .map(|a| expand(a, &env))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("`args`: {e}"))?,
            env: vars
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        expand(v, &env).map_err(|e| format!("`env.{k}`: {e}"))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
            cwd: match cwd {
                Some(dir) => base_dir.join(expand(dir, &env).map_err(|e| format!("`cwd`: {e}"))?),
                None => base_dir.to_path_buf(),
            },
        },
        McpTransport::Http { url, headers } => Launch::Http {
            url: expand(url, &env).map_err(|e| format!("`url`: {e}"))?,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        expand(v, &env).map_err(|e| format!("header `{k}`: {e}"))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        },
    })
}

/// Expands `${VAR}` and `${VAR:-default}`; an unset variable without a default is an error.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without a closing `}}` in `{text}`"));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{inner}}}` is not a variable reference"));
        }
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "`${{{name}}}` is not set in the environment; export it, or write `${{{name}:-default}}`"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A `tools/call` result (as JSON) as the model reads it.
fn render_result(result: &Value) -> Result<ToolReply, ToolError> {
    let mut parts: Vec<String> = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    for block in result["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => {
                let text = block["text"].as_str().unwrap_or("");
                texts.push(text);
                parts.push(text.to_string());
            }
            Some(kind @ ("image" | "audio")) => {
                let mime = block["mimeType"].as_str().unwrap_or("unknown type");
                let bytes = block["data"].as_str().map_or(0, |d| d.len() / 4 * 3);
                parts.push(format!("[{kind}: {mime}, about {bytes} bytes, not shown]"));
            }
            Some("resource") => {
                let resource = &block["resource"];
                let uri = resource["uri"].as_str().unwrap_or("?");
                match resource["text"].as_str() {
                    Some(text) => parts.push(format!("[resource {uri}]\n{text}")),
                    None => parts.push(format!(
                        "[resource {uri} ({}), binary, not shown]",
                        resource["mimeType"].as_str().unwrap_or("unknown type")
                    )),
                }
            }
            Some("resource_link") => {
                parts.push(format!(
                    "[resource link: {}]",
                    block["uri"].as_str().unwrap_or("?")
                ));
            }
            other => parts.push(format!(
                "[content of type {} not shown]",
                other.unwrap_or("unknown")
            )),
        }
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        // Servers often send the same JSON as text too; say it once.
        let repeated = texts
            .iter()
            .any(|t| serde_json::from_str::<Value>(t).ok().as_ref() == Some(structured));
        if !repeated {
            parts.push(structured.to_string());
        }
    }
    let mut text = parts.join("\n");
    if text.is_empty() {
        text = "(the tool returned no content)".to_string();
    }
    let mut capped = HeadTail::new(MCP_OUTPUT_CAP);
    capped.push(text.as_bytes());
    let (text, _) = capped.finish();
    if result["isError"].as_bool() == Some(true) {
        Err(ToolError(text))
    } else {
        Ok(ToolReply::text(text))
    }
}

/// Loads a Claude Code `.mcp.json` (`{"mcpServers": {name: {command, args, env} | {type, url,
/// headers}}}`) as it is. Unknown fields of a server are ignored, as Claude Code does.
pub fn load_mcp_json(path: &Path) -> Result<BTreeMap<String, McpServerSpec>, McpError> {
    let file = path.display().to_string();
    let config_error = |reason: String| McpError::Config {
        file: file.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| config_error(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(config_error("is not a regular file".into()));
    }
    if meta.len() > 1024 * 1024 {
        return Err(config_error(
            "is larger than 1 MiB; an MCP configuration is a small JSON file".into(),
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| config_error(format!("cannot be read: {e}")))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| {
        config_error(format!(
            "is not valid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Some(servers) = root.get("mcpServers").and_then(Value::as_object) else {
        return Err(config_error(
            "has no `mcpServers` object; write {\"mcpServers\": {\"name\": {\"command\": \"...\", \"args\": [...]}}}".into(),
        ));
    };
    let mut out = BTreeMap::new();
    for (name, server) in servers {
        let what = format!("server `{name}`");
        if !crate::spec::is_server_name(name) {
            return Err(config_error(format!(
                "`{name}` is not a valid MCP server name: use letters, digits, `-` and single `_`"
            )));
        }
        let string = |key: &str| -> Result<Option<String>, McpError> {
            match server.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(config_error(format!("`{key}` of {what} must be a string"))),
            }
        };
        let map = |key: &str| -> Result<BTreeMap<String, String>, McpError> {
            match server.get(key) {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(config_error(format!(
                            "`{key}.{k}` of {what} must be a string"
                        ))),
                    })
                    .collect(),
                Some(_) => Err(config_error(format!("`{key}` of {what} must be an object"))),
            }
        };
        let kind = string("type")?;
        let transport = match (kind.as_deref(), string("command")?, string("url")?) {
            (None | Some("stdio"), Some(command), None) => McpTransport::Stdio {
                command,
                args: match server.get("args") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                config_error(format!("`args` of {what} must be strings"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(config_error(format!("`args` of {what} must be a list")))
                    }
                },
                env: map("env")?,
                cwd: string("cwd")?,
            },
            (None | Some("http") | Some("streamable-http"), None, Some(url)) => {
                McpTransport::Http {
                    url,
                    headers: map("headers")?,
                }
            }
            (Some("sse"), _, _) => {
                return Err(config_error(format!(
                    "{what} uses the SSE transport, which is not supported; use its streamable HTTP endpoint (`\"type\": \"http\"`)"
                )))
            }
            (Some(other), _, _) if !matches!(other, "stdio" | "http" | "streamable-http") => {
                return Err(config_error(format!(
                    "{what} has `\"type\": \"{other}\"`; use `stdio` or `http`"
                )))
            }
            _ => {
                return Err(config_error(format!(
                    "{what} needs either `command` (a process) or `url` (streamable HTTP)"
                )))
            }
        };
        out.insert(
            name.clone(),
            McpServerSpec {
                transport,
                timeout: crate::spec::DEFAULT_MCP_TIMEOUT,
                safe_to_repeat: Vec::new(),
                source: file.clone(),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_expand_from_the_environment_with_defaults() {
        let env = |name: &str| (name == "TOKEN").then(|| "abc".to_string());
        assert_eq!(expand("Bearer ${TOKEN}", &env).unwrap(), "Bearer abc");
        assert_eq!(expand("${MISSING:-x}/${TOKEN}", &env).unwrap(), "x/abc");
        let err = expand("${MISSING}", &env).unwrap_err();
        assert!(err.contains("`${MISSING}` is not set"), "{err}");
        assert!(expand("${bad name}", &env).is_err());
        assert!(expand("${OPEN", &env).is_err());
        assert_eq!(expand("no vars", &env).unwrap(), "no vars");
    }

    #[test]
    fn results_become_text_notes_and_errors() {
        let ok = render_result(&json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "data": "aGVsbG8h", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
        ], "structuredContent": {"n": 1}}))
        .unwrap();
        assert_eq!(
            ok.content,
            "hello\n[image: image/png, about 6 bytes, not shown]\n[resource file:///a]\ninside\n{\"n\":1}"
        );
        let same = render_result(
            &json!({"content": [{"type": "text", "text": "{\"n\": 1}"}], "structuredContent": {"n": 1}}),
        )
        .unwrap();
        assert_eq!(same.content, "{\"n\": 1}");
        let err =
            render_result(&json!({"content": [{"type": "text", "text": "no"}], "isError": true}))
                .unwrap_err();
        assert_eq!(err.0, "no");
        let long = "x".repeat(MCP_OUTPUT_CAP * 2);
        let capped = render_result(&json!({"content": [{"type": "text", "text": long}]})).unwrap();
        assert!(capped.content.len() < MCP_OUTPUT_CAP + 200);
        assert!(capped.content.contains("bytes of output cut"));
    }

    #[test]
    fn names_split_into_server_and_tool() {
        assert_eq!(
            split_name("mcp__git__git_status"),
            ("git", Some("git_status"))
        );
        assert_eq!(split_name("mcp__git"), ("git", None));
    }
}
