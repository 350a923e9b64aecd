//! The validated, trusted form of a swarm definition. Everything here has been checked; the
//! runtime never re-validates. A plan is stored in the session as JSON, so `resume` needs no file.

use super::duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How agents may talk to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Any agent may message any other; tasks come from the swarm file.
    Mesh,
    /// A coordinator plans tasks, workers message only the coordinator.
    Hierarchical,
}

/// One line of the roster: a role and how many agent instances of it exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSlot {
    pub role: String,
    pub count: u32,
}

/// A task of the graph: predefined in the swarm file or created by a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: String,
    pub role: String,
    /// With `{goal}` already filled in.
    pub description: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// The tools an agent can be given. A role gets only those it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    MemoryStore,
    MemoryRetrieve,
    MemorySearch,
    MemoryList,
    MemoryDelete,
    SendMessage,
    ReadMessages,
    CreateTask,
    CompleteTask,
    ReadFile,
    WriteFile,
    ListFiles,
    EditFile,
    SearchFiles,
    GlobFiles,
    RunCommand,
}

impl ToolName {
    pub const ALL: [ToolName; 16] = [
        ToolName::MemoryStore,
        ToolName::MemoryRetrieve,
        ToolName::MemorySearch,
        ToolName::MemoryList,
        ToolName::MemoryDelete,
        ToolName::SendMessage,
        ToolName::ReadMessages,
        ToolName::CreateTask,
        ToolName::CompleteTask,
        ToolName::ReadFile,
        ToolName::WriteFile,
        ToolName::ListFiles,
        ToolName::EditFile,
        ToolName::SearchFiles,
        ToolName::GlobFiles,
        ToolName::RunCommand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::MemoryStore => "memory_store",
            ToolName::MemoryRetrieve => "memory_retrieve",
            ToolName::MemorySearch => "memory_search",
            ToolName::MemoryList => "memory_list",
            ToolName::MemoryDelete => "memory_delete",
            ToolName::SendMessage => "send_message",
            ToolName::ReadMessages => "read_messages",
            ToolName::CreateTask => "create_task",
            ToolName::CompleteTask => "complete_task",
            ToolName::ReadFile => "read_file",
            ToolName::WriteFile => "write_file",
            ToolName::ListFiles => "list_files",
            ToolName::EditFile => "edit_file",
            ToolName::SearchFiles => "search_files",
            ToolName::GlobFiles => "glob_files",
            ToolName::RunCommand => "run_command",
        }
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ToolName {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ToolName::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

/// Which memory namespaces a role may read and write, as globs over namespace names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemoryAccessSpec {
    pub read: Vec<String>,
    pub write: Vec<String>,
}

/// A validated role: who the agent is and what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub tools: Vec<ToolName>,
    /// Overrides the swarm's model for this role.
    pub model: Option<String>,
    /// LLM turns per task.
    pub max_turns: u32,
    /// `None`: the default rule (read all, write the swarm's namespace and `agent/<role>`).
    pub memory: Option<MemoryAccessSpec>,
    /// MCP tools as written (`mcp__<server>__<tool>`, or `mcp__<server>` for all of a server's);
    /// checked against the servers' tool lists when the run starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_tools: Vec<String>,
    /// The Markdown body: the role's system prompt.
    pub prompt: String,
    /// Where the role came from: a path, or `builtin:<name>`.
    pub source: String,
}

/// Default LLM turns per task when a role does not say.
pub const DEFAULT_MAX_TURNS: u32 = 12;

/// The most agents of one role (`count:`): each is a concurrent conversation with its own
/// context, so a typo such as `count: 1000` would multiply the cost of a run.
pub const MAX_AGENT_COUNT: u32 = 64;

/// The most agents in a roster, all roles together.
pub const MAX_AGENTS: u32 = 256;

/// The most tasks a session holds, from the swarm file and `create_task` together: enough for
/// the largest workloads the runtime is measured on, small enough that a runaway planner stops.
pub const MAX_TASKS: usize = 10_000;

/// Which LLM API the agents call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Simulated,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Simulated => "simulated",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "openai" => Ok(ProviderKind::Openai),
            "anthropic" => Ok(ProviderKind::Anthropic),
            "simulated" => Ok(ProviderKind::Simulated),
            other => Err(format!(
                "unknown provider `{other}`: use openai, anthropic or simulated"
            )),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prices in US dollars per million tokens.
///
/// The cache prices are optional: left out, they follow from the input price at the provider's
/// own ratios (see `llm::pricing`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Prices {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Input written to the prompt cache (Anthropic bills it above the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// Input read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
}

/// The `llm:` section. `None` fields fall back to the command line, the environment, or defaults
/// (see `llm::resolve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmSettings {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Stream responses (SSE); on by default.
    pub stream: bool,
    /// Requests in flight to this provider; `None`: limited only by `max_agents`.
    pub max_concurrency: Option<u32>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub prices: Option<Prices>,
    /// Mark the stable prefix of each request for the provider's prompt cache; on by default.
    /// Plans stored before the setting existed load with it on.
    #[serde(default = "prompt_cache_default")]
    pub prompt_cache: bool,
    /// Attempts after the first for retryable faults.
    pub max_retries: u32,
    /// Deadline for one request, including the whole streamed body.
    #[serde(with = "duration::as_ms")]
    pub timeout: Duration,
    /// `max_tokens` sent with every request.
    pub max_tokens: u32,
    /// The field an OpenAI-protocol request carries the limit in; `None`: by endpoint
    /// (`max_completion_tokens` at api.openai.com, `max_tokens` elsewhere).
    #[serde(default)]
    pub max_tokens_field: Option<MaxTokensField>,
    /// Anthropic extended thinking's `budget_tokens`; `None`: off.
    #[serde(default)]
    pub thinking: Option<u32>,
    /// What Claude Code model aliases in role files (`sonnet`, `opus`...) mean for this swarm.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, String>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            provider: None,
            model: None,
            base_url: None,
            stream: true,
            max_concurrency: None,
            requests_per_minute: None,
            tokens_per_minute: None,
            prices: None,
            prompt_cache: true,
            max_retries: 4,
            timeout: Duration::from_secs(120),
            max_tokens: 4096,
            max_tokens_field: None,
            thinking: None,
            model_aliases: BTreeMap::new(),
        }
    }
}

/// The name of the output-token limit in an OpenAI chat completions request: OpenAI's own
/// reasoning models reject `max_tokens` and want `max_completion_tokens`, while most compatible
/// servers know only `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub const ALL: [MaxTokensField; 2] = [Self::MaxTokens, Self::MaxCompletionTokens];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

fn prompt_cache_default() -> bool {
    true
}

/// The `memory:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySettings {
    pub namespace: String,
    #[serde(with = "duration::opt_as_ms")]
    pub ttl: Option<Duration>,
    /// Namespaces shared live with the project memory of the state dir (`memory.project`).
    #[serde(default)]
    pub project: Vec<String>,
}

/// The `checkpoint:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSettings {
    #[serde(with = "duration::as_ms")]
    pub interval: Duration,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
        }
    }
}

/// The `budget:` section. Limits are optional; thresholds are fractions of each limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetSettings {
    pub tokens: Option<u64>,
    pub llm_calls: Option<u64>,
    #[serde(with = "duration::opt_as_ms")]
    pub time: Option<Duration>,
    pub usd: Option<f64>,
    pub warn_at: f64,
    pub stop_at: f64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            tokens: None,
            llm_calls: None,
            time: None,
            usd: None,
            warn_at: 0.7,
            stop_at: 0.9,
        }
    }
}

/// The events a swarm file may attach shell hooks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookEvent {
    SessionStart,
    PreTask,
    PostTask,
    TaskFailed,
    Checkpoint,
    BudgetWarning,
    SessionEnd,
}

impl HookEvent {
    pub const ALL: [HookEvent; 7] = [
        HookEvent::SessionStart,
        HookEvent::PreTask,
        HookEvent::PostTask,
        HookEvent::TaskFailed,
        HookEvent::Checkpoint,
        HookEvent::BudgetWarning,
        HookEvent::SessionEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::SessionStart => "session-start",
            HookEvent::PreTask => "pre-task",
            HookEvent::PostTask => "post-task",
            HookEvent::TaskFailed => "task-failed",
            HookEvent::Checkpoint => "checkpoint",
            HookEvent::BudgetWarning => "budget-warning",
            HookEvent::SessionEnd => "session-end",
        }
    }
}

impl FromStr for HookEvent {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        HookEvent::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or(())
    }
}

/// The `hooks:` section: shell commands per event, and how long each may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSettings {
    pub commands: BTreeMap<HookEvent, String>,
    #[serde(with = "duration::as_ms")]
    pub timeout: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            commands: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A validated swarm: the roster with its resolved roles, the task graph, and every setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmPlan {
    pub name: String,
    pub description: String,
    pub topology: Topology,
    pub max_agents: u32,
    /// The coordinator role (hierarchical swarms only). It is also in `roles`.
    pub coordinator: Option<String>,
    pub agents: Vec<AgentSlot>,
    /// Every role the roster or the coordinator names, resolved.
    pub roles: BTreeMap<String, Role>,
    /// Predefined tasks in file order, `{goal}` still unfilled: the runtime fills it at start.
    pub tasks: Vec<TaskSpec>,
    pub memory: MemorySettings,
    pub checkpoint: CheckpointSettings,
    pub budget: BudgetSettings,
    pub llm: LlmSettings,
    /// As written (relative paths are relative to the directory `swarm run` is started in);
    /// absolute once the run's options are resolved.
    pub workspace: PathBuf,
    /// Neither the swarm file nor `--workspace` named a workspace: each session works in its own
    /// subfolder `<workspace>/<session id>`, so sessions of one state dir never share files by
    /// accident.
    #[serde(default)]
    pub workspace_per_session: bool,
    pub allow_commands: bool,
    /// Confine `run_command` to the workspace (Landlock); the run refuses to start without it.
    #[serde(default)]
    pub sandbox: bool,
    pub hooks: HookSettings,
    /// `mcp_servers:` (and `--mcp-config`), by server name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp_servers: BTreeMap<String, McpServerSpec>,
    /// The file the plan was loaded from, and a hash of its bytes (to warn on resume when it changed).
    pub source_path: PathBuf,
    pub source_hash: String,
    /// The session this one continues (`swarm run --continue-from`), with its handoff.
    #[serde(default)]
    pub continues_from: Option<Continuation>,
}

/// A handoff from an earlier session that a new session's agents start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Continuation {
    pub session: String,
    /// The earlier session's handoff report (goal, done, in progress, blockers, decisions, next).
    pub handoff: String,
}

impl SwarmPlan {
    /// The folder the file tools of `session` may touch.
    pub fn session_workspace(&self, session: &str) -> PathBuf {
        if self.workspace_per_session {
            self.workspace.join(session)
        } else {
            self.workspace.clone()
        }
    }
}

/// How to reach an MCP server. Strings are kept as written, `${VAR}` unexpanded: the plan is
/// stored in the state dir, the environment's values never are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Relative to the directory `swarm run` is started in; `None`: that directory.
        #[serde(default)]
        cwd: Option<String>,
    },
    /// A streamable HTTP endpoint.
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

/// One MCP server of a swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerSpec {
    pub transport: McpTransport,
    /// Deadline of one tool call (and of the start-up handshake).
    #[serde(with = "duration::as_ms")]
    pub timeout: Duration,
    /// Tools of this server the swarm file declares safe to run again after a crash.
    #[serde(default)]
    pub safe_to_repeat: Vec<String>,
    /// Where it was defined: `<file>` of the swarm file or of an `--mcp-config` file.
    #[serde(default)]
    pub source: String,
}

/// Deadline of one MCP tool call when the server's `timeout` is not set.
pub const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to look for role files besides the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--roles-dir`: searched first.
    pub roles_dir: Option<PathBuf>,
}
