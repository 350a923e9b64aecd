//! The command-line surface: argument definitions and dispatch. Each command lives in its own
//! file and returns the process exit code.

mod init;
mod log;
mod mcp;
mod memory;
mod plan;
mod progress;
mod roles;
mod run;
mod sessions;
mod summary;
mod swarms;
mod table;
mod validate;
mod watch;
mod worker;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes of the contract.
#[allow(dead_code)]
pub mod exit {
    /// All tasks done.
    pub const OK: u8 = 0;
    /// The swarm finished with failed tasks (or, for `memory get`, the key was not found).
    pub const FAILED: u8 = 1;
    /// Bad usage or invalid definition; nothing started.
    pub const USAGE: u8 = 2;
    /// Stopped by a budget; checkpoint and handoff report written.
    pub const BUDGET: u8 = 3;
    /// Stopped by an error after work started (disk full, the state store failing); the
    /// session is saved as of its last commit and resumable.
    pub const ERROR: u8 = 4;
    /// Interrupted by Ctrl-C / SIGTERM; checkpoint written.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "swarm",
    version,
    about = "Run teams of LLM agents that coordinate through shared memory, with durable sessions you can resume",
    long_about = "Run teams of LLM agents that coordinate through shared memory, with durable sessions you can resume.\n\n\
Describe a swarm in YAML (topology, roster of roles, optional task graph), then `swarm run` it. Every step is \
journaled in the state dir (.swarm/ by default), so `swarm resume latest` continues an interrupted swarm \
without repeating finished work.\n\n\
Without an API key the `simulated` provider runs the swarm offline.",
    after_help = "Examples:\n  swarm init my-swarm && swarm run my-swarm/swarm.yaml --goal \"add a health endpoint\"\n  swarm run swarms/development.yaml --goal \"user login API\"\n  swarm resume latest\n  swarm sessions report latest"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a swarm: launch its agents and work through its tasks
    Run(RunArgs),
    /// Show what a run would do and roughly cost, without calling any LLM
    Plan(PlanArgs),
    /// Continue an interrupted or budget-stopped session where it stopped
    Resume(ResumeArgs),
    /// Queue a run in a PostgreSQL state store for a worker to take; prints its session id
    Submit(SubmitArgs),
    /// Take queued runs from a PostgreSQL state store and run them, taking over those of dead workers
    Worker(WorkerArgs),
    /// Check swarm and role files; exit 0 only if all are valid
    Validate(ValidateArgs),
    /// List or show the roles agents can take
    #[command(subcommand)]
    Roles(RolesCommand),
    /// List or show the swarms built into the binary (run one by name: `swarm run NAME`)
    #[command(subcommand)]
    Swarms(SwarmsCommand),
    /// Inspect sessions in the state dir
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read and change a session's shared memory
    Memory(MemoryArgs),
    /// Scaffold a swarm file and a custom role to edit
    Init(InitArgs),
    /// Watch a session live: tasks, busy agents, tokens, cost, budget health, recent events
    Watch(WatchArgs),
    /// Serve sessions and memory as MCP tools (swarm_init, task_orchestrate, swarm_status,
    /// memory_usage ...) over stdio, or streamable HTTP with --http
    Mcp(McpArgs),
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Serve streamable HTTP at this address (path /mcp) instead of stdio, e.g. 127.0.0.1:8765;
    /// an address beyond loopback needs --token-env
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// The environment variable holding the bearer token every HTTP request must carry
    /// (`Authorization: Bearer <token>`)
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    #[command(flatten)]
    pub options: RunOptionArgs,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A session id, or `latest`
    #[arg(default_value = "latest")]
    pub session: String,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct StateDirArg {
    /// The state dir holding sessions
    #[arg(long, env = "SWARM_STATE_DIR", default_value = ".swarm", global = true)]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The swarm file (YAML), or the name of a built-in swarm (`swarm swarms list`)
    pub swarm: PathBuf,
    /// The objective: fills {goal} in task descriptions; a coordinator plans from it
    #[arg(long)]
    pub goal: Option<String>,
    #[command(flatten)]
    pub options: RunOptionArgs,
    /// Print one JSON event per line on stdout instead of progress and a summary
    #[arg(long)]
    pub json: bool,
    /// Start from the handoff of an earlier session (an id, or `latest`): its goal, results,
    /// blockers, decisions and next steps reach every agent's first message
    #[arg(long, value_name = "SESSION")]
    pub continue_from: Option<String>,
    /// Do not journal events (faster, not resumable); for measuring what durability costs
    #[arg(long, hide = true)]
    pub no_journal: bool,
    /// How long the run's lease lasts unless renewed (renewed three times per lease); another
    /// worker or `resume` may take the run over after this long without renewals (default 30s)
    #[arg(long, value_parser = parse_lease)]
    pub lease: Option<std::time::Duration>,
    /// MCP servers from a Claude Code `.mcp.json` file (repeatable); they replace swarm-file servers of the same name
    #[arg(long = "mcp-config", value_name = "FILE")]
    pub mcp_config: Vec<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The swarm file (YAML), or the name of a built-in swarm (`swarm swarms list`)
    pub swarm: PathBuf,
    /// The objective: fills {goal} in task descriptions; a coordinator plans from it
    #[arg(long)]
    pub goal: Option<String>,
    #[command(flatten)]
    pub options: RunOptionArgs,
    /// Print the plan as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// Which provider, model and endpoint to call; each wins over the swarm file and the environment.
#[derive(Debug, Clone, Args)]
pub struct ProviderArgs {
    /// openai, anthropic or simulated (default: from the swarm file, else by which API key is set)
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<swarm_runtime::spec::ProviderKind>,
    /// The model to call (roles that name their own model keep it)
    #[arg(long)]
    pub model: Option<String>,
    /// The API's base URL (e.g. http://localhost:11434/v1 for Ollama)
    #[arg(long)]
    pub base_url: Option<String>,
}

/// The options of `swarm run` that change the plan, shared by every command that starts a run
/// or shows one.
#[derive(Debug, Clone, Args)]
pub struct RunOptionArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// At most this many agents at once (overrides the swarm file)
    #[arg(long)]
    pub max_agents: Option<u32>,
    /// The only folder file tools may touch (default: the swarm file's `workspace`, else
    /// ./workspace/<session id>)
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Look for role files here first
    #[arg(long)]
    pub roles_dir: Option<PathBuf>,
}

fn parse_provider(text: &str) -> Result<swarm_runtime::spec::ProviderKind, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The swarm file (YAML), or the name of a built-in swarm (`swarm swarms list`)
    pub swarm: PathBuf,
    /// The objective: fills {goal} in task descriptions; a coordinator plans from it
    #[arg(long)]
    pub goal: Option<String>,
    #[command(flatten)]
    pub options: RunOptionArgs,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// At most this many runs at once
    #[arg(long, default_value_t = 4)]
    pub max_runs: usize,
    /// How long a run's lease lasts unless renewed (renewed three times per lease); a worker
    /// that stops renewing loses its runs to other workers after this long
    #[arg(long, default_value = "30s", value_parser = parse_lease)]
    pub lease: std::time::Duration,
    /// Exit 0 once no run is queued, leased or in progress anywhere
    #[arg(long)]
    pub until_idle: bool,
    #[command(flatten)]
    pub state: StateDirArg,
}

fn parse_lease(text: &str) -> Result<std::time::Duration, String> {
    let lease = swarm_runtime::spec::duration::parse(text)?;
    if lease < std::time::Duration::from_millis(300) {
        return Err("a lease must last at least 300ms".to_string());
    }
    Ok(lease)
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    swarm_runtime::spec::duration::parse(text)
}

fn parse_status(text: &str) -> Result<swarm_runtime::session::SessionStatus, String> {
    use swarm_runtime::session::SessionStatus as S;
    let known = [
        S::Completed,
        S::Failed,
        S::Interrupted,
        S::BudgetStopped,
        S::Queued,
    ];
    known
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<_> = known.iter().map(|s| s.as_str()).collect();
            format!(
                "`{text}` is not a status to prune: use one of {}",
                names.join(", ")
            )
        })
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// A session id, or `latest`
    pub session: String,
    /// Renew the budget: count it again from what has been spent so far
    #[arg(long)]
    pub extend_budget: bool,
    /// Switch provider, model or endpoint for this run (default: what the last run called)
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// Print one JSON event per line on stdout instead of progress and a summary
    #[arg(long)]
    pub json: bool,
    /// MCP servers from a Claude Code `.mcp.json` file (repeatable); they replace the session's servers of the same name
    #[arg(long = "mcp-config", value_name = "FILE")]
    pub mcp_config: Vec<PathBuf>,
    /// How long the run's lease lasts unless renewed (renewed three times per lease); another
    /// worker or `resume` may take the run over after this long without renewals (default 30s)
    #[arg(long, value_parser = parse_lease)]
    pub lease: Option<std::time::Duration>,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Swarm files (.yaml, .yml) or role files (.md)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Look for role files here first
    #[arg(long)]
    pub roles_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// One role a line: name and description
    List {
        /// Look for role files here first
        #[arg(long)]
        roles_dir: Option<PathBuf>,
    },
    /// A role's settings and system prompt
    Show {
        /// The role's name, as `swarm roles list` prints it
        name: String,
        /// Look for role files here first
        #[arg(long)]
        roles_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SwarmsCommand {
    /// One built-in swarm a line: name, topology and description
    List,
    /// A built-in swarm's file, as `swarm init --from NAME` would copy it
    Show {
        /// The swarm's name, as `swarm swarms list` prints it
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions in the state dir, newest first
    List {
        /// One JSON array of sessions: id, swarm, status, goal, tasks, times, runner
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Status, budget health, per-agent metrics and tasks of a session
    Show {
        /// A session id, or `latest`
        session: String,
        /// One JSON object: status, runs, tasks, metrics, per-agent counters, budget health
        #[arg(long)]
        json: bool,
        /// Keep showing the session live until it ends (as `swarm watch`)
        #[arg(long, conflicts_with = "json")]
        follow: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Every turn of every agent: prompts, model text, tool calls and results, tokens, cost, time
    Log {
        /// A session id, or `latest`
        session: String,
        /// Only this task's lines
        #[arg(long)]
        task: Option<String>,
        /// Only this agent's lines (and messages sent to it)
        #[arg(long)]
        agent: Option<String>,
        /// Keep printing while the session runs; exit when it ends
        #[arg(long)]
        follow: bool,
        /// One JSON object per line: the journaled event with its seq and time, never shortened
        #[arg(long)]
        json: bool,
        /// Print long texts, arguments and results in full instead of shortened
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Delete sessions from the state store (their plan, journal and snapshot; workspace folders
    /// and written reports stay). A session a live process runs is refused.
    Delete {
        /// Session ids, or `latest`
        #[arg(required = true, value_name = "SESSION")]
        sessions: Vec<String>,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Delete sessions not updated for a while (running ones never; workspaces stay)
    Prune {
        /// Delete sessions whose last activity is older than this, e.g. 7d, 12h
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Only sessions with this status (repeatable): completed, failed, interrupted,
        /// budget_stopped or queued (default: all but running and queued)
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Vec<swarm_runtime::session::SessionStatus>,
        /// Print what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// The handoff report (Markdown): completed and in-progress work, blockers, decisions, metrics;
    /// with --html a self-contained page with the task graph, a timeline and the transcripts
    Report {
        /// A session id, or `latest`
        session: String,
        /// Write an HTML report to FILE (`-` for stdout; default: <state-dir>/reports/<session>.html)
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        html: Option<Option<PathBuf>>,
        #[command(flatten)]
        state: StateDirArg,
    },
}

#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(subcommand)]
    pub command: MemoryCommand,
    /// A session id, or `latest`; without it, the project memory of the state dir
    #[arg(long, global = true)]
    pub session: Option<String>,
    /// The namespace (default: the swarm's, or `default` in project memory, for set/get/delete;
    /// every namespace for list/search)
    #[arg(long, global = true)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Store a value (JSON if it parses as JSON, else a string)
    Set {
        /// The key, e.g. `sprint/blockers`
        key: String,
        /// The value: JSON if it parses as JSON, else stored as a string
        value: String,
        /// Time to live, e.g. 10m
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Print a value; exit 1 if it is missing or expired
    Get {
        /// The key to read
        key: String,
    },
    /// List keys
    List,
    /// Keys matching a glob: `*` within a segment, `**` across (e.g. `*/blockers`)
    Search {
        /// The pattern, e.g. `*/blockers` or `development/**`
        glob: String,
    },
    /// Remove a key
    Delete {
        /// The key to remove
        key: String,
    },
    /// Write every entry as JSON (to FILE, or stdout)
    Export {
        /// Where to write the JSON (default: stdout)
        file: Option<PathBuf>,
    },
    /// Read entries written by export
    Import {
        /// A file written by `swarm memory export`
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the files (default: the current directory)
    pub dir: Option<PathBuf>,
    /// Copy this built-in swarm (`swarm swarms list`) instead of the starter template
    #[arg(long, value_name = "NAME")]
    pub from: Option<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Resume(_) | Command::Worker(_) | Command::Submit(_)
    ) {
        quiet_on_closed_stdout();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Resume(args) => run::resume(args),
        Command::Submit(args) => worker::submit(args),
        Command::Worker(args) => worker::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Roles(cmd) => roles::run(cmd),
        Command::Swarms(cmd) => swarms::run(cmd),
        Command::Sessions(cmd) => sessions::run(cmd),
        Command::Memory(args) => memory::run(args),
        Command::Init(args) => init::run(args),
        Command::Watch(args) => watch::run(&args.state.state_dir, &args.session),
        Command::Mcp(args) => mcp::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!(
                "error: {}",
                swarm_runtime::secrets::redact(&format!("{err:#}"))
            );
            ExitCode::from(exit::USAGE)
        }
    }
}

/// A loaded definition with its warnings printed, or its errors printed and the usage exit code.
fn print_loaded<T>(
    result: Result<swarm_runtime::spec::Loaded<T>, swarm_runtime::spec::SpecError>,
) -> Result<T, u8> {
    match result {
        Ok(loaded) => {
            for line in swarm_runtime::spec::summarize_warnings(&loaded.warnings) {
                eprintln!("{line}");
            }
            Ok(loaded.value)
        }
        Err(err) => {
            eprintln!("{err}");
            Err(exit::USAGE)
        }
    }
}

/// Lets a listing piped into `head` end quietly when the reader goes away, as other command-line
/// tools do, instead of panicking on the failed write. Only for commands that merely print: a
/// runner keeps SIGPIPE ignored, so a child (MCP server, hook) closing its pipe is an error it
/// handles, not its death.
fn quiet_on_closed_stdout() {
    // SAFETY: restores the default disposition of one signal before any thread writes output.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(swarm_runtime::secrets::RedactingStderr)
        .with_ansi(color_on_stderr())
        .with_target(false)
        .without_time()
        .try_init();
}

/// Whether stderr may carry ANSI colour: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>: any non-empty value).
pub(crate) fn color_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (the command itself)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "swarm", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
