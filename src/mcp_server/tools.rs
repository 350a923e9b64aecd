//! The tools `swarm mcp` offers: their names, argument schemas and annotations (claude-flow's
//! names and camelCase arguments, so prompts written for it work), and what each call does.

use super::{RunningRun, SwarmServer, ToolError};
use crate::memory::{Entry, MemoryChange, MemoryLimits, MemoryRecord, MemoryStore};
use crate::runtime::{PreparedRun, StopReason};
use crate::session::{budget, format_utc, Event, ProjectPut, Restored, SessionStatus, StateDir};
use crate::spec::{self, LoadOptions, SwarmPlan};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long `swarm_destroy` waits for a run to write its checkpoint and stop.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// The namespace project memory uses when a call names none (as `swarm memory` does).
const PROJECT_DEFAULT_NAMESPACE: &str = "default";

/// The tool list: name, description, input schema, annotations.
pub fn list() -> Value {
    let s = |desc: &str| json!({"type": "string", "description": desc});
    let n = |desc: &str| json!({"type": "integer", "minimum": 0, "description": desc});
    let tool = |name: &str, desc: &str, props: Value, required: &[&str], ann: Value| {
        json!({
            "name": name,
            "description": desc,
            "inputSchema": {"type": "object", "properties": props, "required": required},
            "annotations": ann,
        })
    };
    let read_only = json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false});
    json!({"tools": [
        tool("swarm_init", "Create a session of a swarm, ready to run: `swarm` is a built-in swarm's name (`swarm swarms list`) or a swarm file's path. Returns its swarmId (the session id).",
            json!({"swarm": s("built-in swarm name or path of a swarm file"),
                   "topology": s("mesh or hierarchical: checked against the swarm's own"),
                   "maxAgents": n("at most this many agents at once"),
                   "strategy": s("accepted for claude-flow prompts; the swarm's file decides")}),
            &["swarm"],
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false})),
        tool("task_orchestrate", "Start the session swarm_init created, in the background, with `task` as its goal; returns at once. Follow it with swarm_status.",
            json!({"swarmId": s("the session id swarm_init returned"), "task": s("the goal"),
                   "strategy": s("accepted for claude-flow prompts"), "priority": s("accepted for claude-flow prompts")}),
            &["swarmId", "task"],
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true})),
        tool("swarm_status", "A session's status, tasks with their status, metrics and budget health (without swarmId: the latest session).",
            json!({"swarmId": s("a session id, or `latest`")}), &[], read_only.clone()),
        tool("swarm_destroy", "Stop a session this server runs, cleanly: no new work starts, a checkpoint is written, and it can be resumed (session_resume or `swarm resume`).",
            json!({"swarmId": s("the session id")}), &["swarmId"],
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false})),
        tool("memory_usage", "Store, retrieve, list, delete or search memory entries: project memory of the state dir, or a session's shared memory with swarmId.",
            json!({"action": {"type": "string", "enum": ["store", "retrieve", "list", "delete", "search"]},
                   "key": s("the key (for search: a glob, `*` within a segment, `**` across)"),
                   "value": {"description": "the value to store (any JSON)"},
                   "namespace": s("the namespace (default: `default` in project memory, the swarm's in a session)"),
                   "ttl": n("time to live in seconds"),
                   "swarmId": s("a session id: act on that session's memory instead of project memory")}),
            &["action"],
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false})),
        tool("memory_search", "Memory entries whose key matches a glob (`*` within a segment, `**` across): project memory, or a session's with swarmId.",
            json!({"pattern": s("the glob"), "namespace": s("only this namespace"),
                   "limit": n("at most this many entries"), "swarmId": s("a session id")}),
            &["pattern"], read_only.clone()),
        tool("session_list", "Sessions in the state dir, newest first.", json!({}), &[], read_only.clone()),
        tool("session_report", "A session's handoff report (Markdown): goal, completed and in-progress work, blockers, decisions, next steps.",
            json!({"sessionId": s("a session id, or `latest`")}), &["sessionId"], read_only.clone()),
        tool("session_resume", "Continue an interrupted, failed or budget-stopped session in the background; returns at once.",
            json!({"sessionId": s("a session id, or `latest`"),
                   "extendBudget": {"type": "boolean", "description": "renew the budget from what has been spent so far"}}),
            &["sessionId"],
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true})),
        tool("agent_list", "The agents of a session: role, how many, and each agent's metrics.",
            json!({"swarmId": s("a session id, or `latest`")}), &["swarmId"], read_only.clone()),
        tool("task_status", "The tasks of a session with their status (one task with taskId, with its result).",
            json!({"swarmId": s("a session id, or `latest`"), "taskId": s("one task's id")}),
            &["swarmId"], read_only),
    ]})
}

/// Runs one tool call.
pub async fn call(
    server: &SwarmServer,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    match name {
        "swarm_init" => swarm_init(server, args).await,
        "task_orchestrate" => task_orchestrate(server, args).await,
        "swarm_status" => swarm_status(server, args).await,
        "swarm_destroy" => swarm_destroy(server, args).await,
        "memory_usage" => memory_usage(server, args).await,
        "memory_search" => memory_search(server, args).await,
        "session_list" => session_list(server).await,
        "session_report" => session_report(server, args).await,
        "session_resume" => session_resume(server, args).await,
        "agent_list" => agent_list(server, args).await,
        "task_status" => task_status(server, args).await,
        other => Err(ToolError::UnknownTool(other.to_string())),
    }
}

fn string<'a>(
    args: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ToolError::Argument {
            name,
            expected: "a string",
        }),
    }
}

fn required<'a>(args: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, ToolError> {
    string(args, name)?.ok_or(ToolError::Missing(name))
}

fn integer(args: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        // claude-flow prompts sometimes pass numbers as strings.
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ToolError::Argument {
            name,
            expected: "a whole number",
        }),
        Some(v) => v.as_u64().map(Some).ok_or(ToolError::Argument {
            name,
            expected: "a whole number",
        }),
    }
}

/// Runs blocking state-store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::Internal(e.to_string()))?
}

async fn swarm_init(server: &SwarmServer, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let swarm = required(args, "swarm")?.to_string();
    let topology = string(args, "topology")?.map(str::to_string);
    let max_agents = integer(args, "maxAgents")?;
    let strategy = string(args, "strategy")?.map(str::to_string);
    let max_agents = max_agents
        .map(|m| {
            u32::try_from(m).map_err(|_| ToolError::Argument {
                name: "maxAgents",
                expected: "a number of agents",
            })
        })
        .transpose()?;
    let config = Arc::clone(&server.config);
    blocking(move || {
        let load = LoadOptions { roles_dir: config.roles_dir.clone() };
        let swarm_path = config.cwd.join(&swarm);
        let arg = if swarm_path.exists() { swarm_path } else { swarm.clone().into() };
        let loaded = spec::load_swarm_or_builtin(&arg, &load).map_err(|e| ToolError::Spec(e.to_string()))?;
        let mut warnings: Vec<String> = spec::summarize_warnings(&loaded.warnings);
        let plan = loaded.value;
        if let Some(asked) = &topology {
            let has = topology_name(&plan);
            if !asked.eq_ignore_ascii_case(has) {
                warnings.push(format!(
                    "topology `{asked}` was asked; the swarm `{}` is defined {has} and runs so (pick another swarm for another topology: `swarm swarms list`)",
                    plan.name
                ));
            }
        }
        if strategy.is_some() {
            warnings.push("`strategy` is not used: the swarm's file decides how work is shared".to_string());
        }
        let mut overrides = config.overrides.clone();
        if max_agents.is_some() {
            overrides.max_agents = max_agents;
        }
        let resolved = config.resolve(plan, crate::runtime::Start::New, &overrides)?;
        warnings.extend(resolved.warnings.iter().cloned());
        let plan = resolved.plan;
        let dir = StateDir::open(&config.state_dir)?;
        let id = dir.create_session(&plan, None)?;
        dir.set_status(&id, SessionStatus::Queued)?;
        Ok(json!({
            "swarmId": id,
            "swarm": plan.name,
            "topology": topology_name(&plan),
            "maxAgents": plan.max_agents,
            "agents": plan.agents.iter().map(|a| json!({"role": a.role, "count": a.count})).collect::<Vec<_>>(),
            "tasks": plan.tasks.len(),
            "provider": resolved.provider.kind.as_str(),
            "model": resolved.provider.model,
            "status": SessionStatus::Queued.as_str(),
            "warnings": warnings,
            "next": "task_orchestrate {swarmId, task}",
        }))
    })
    .await
}

fn topology_name(plan: &SwarmPlan) -> &'static str {
    match plan.topology {
        spec::Topology::Mesh => "mesh",
        spec::Topology::Hierarchical => "hierarchical",
    }
}

async fn task_orchestrate(
    server: &SwarmServer,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let id = required(args, "swarmId")?.to_string();
    let task = required(args, "task")?.to_string();
    let mut ignored = Vec::new();
    for name in ["strategy", "priority"] {
        if string(args, name)?.is_some() {
            ignored.push(format!("`{name}` is not used: the swarm's file decides"));
        }
    }
    let config = Arc::clone(&server.config);
    let hub_config = Arc::clone(&server.config);
    let prepared = blocking(move || {
        let cwd = config.cwd.clone();
        PreparedRun::start_created(
            &id,
            Some(task),
            config.state_dir.clone(),
            cwd,
            |plan, _| {
                config
                    .resolve(plan, crate::runtime::Start::New, &config.overrides)
                    .map_err(|e| e.to_string())
            },
            |plan| hub_config.start_hub(plan),
        )
        .map_err(ToolError::from)
    })
    .await?;
    let id = prepared.session_id().to_string();
    server.spawn_run(prepared);
    Ok(json!({
        "swarmId": id,
        "status": SessionStatus::Running.as_str(),
        "started": true,
        "warnings": ignored,
        "next": "swarm_status {swarmId} until its status is completed, failed, budget_stopped or interrupted",
    }))
}

async fn session_resume(
    server: &SwarmServer,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let id = required(args, "sessionId")?.to_string();
    let extend = match args.get("extendBudget") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ToolError::Argument {
                name: "extendBudget",
                expected: "true or false",
            })
        }
    };
    let config = Arc::clone(&server.config);
    let hub_config = Arc::clone(&server.config);
    let prepared = blocking(move || {
        let cwd = config.cwd.clone();
        PreparedRun::resume(
            &id,
            extend,
            config.state_dir.clone(),
            true,
            cwd,
            |plan, last_run| {
                let start = match last_run {
                    Some(run) => crate::runtime::Start::Resume(Some(run)),
                    None => crate::runtime::Start::New,
                };
                let overrides = crate::runtime::RunOverrides {
                    provider: config.overrides.provider,
                    model: config.overrides.model.clone(),
                    base_url: config.overrides.base_url.clone(),
                    ..Default::default()
                };
                config
                    .resolve(plan, start, &overrides)
                    .map_err(|e| e.to_string())
            },
            |plan| hub_config.start_hub(plan),
        )
        .map_err(ToolError::from)
    })
    .await?;
    let id = prepared.session_id().to_string();
    server.spawn_run(prepared);
    Ok(
        json!({"sessionId": id, "swarmId": id, "status": SessionStatus::Running.as_str(), "resumed": true}),
    )
}

async fn swarm_destroy(
    server: &SwarmServer,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let id = required(args, "swarmId")?.to_string();
    let state_dir = server.config.state_dir.clone();
    let lookup = id.clone();
    let id = blocking(move || Ok(StateDir::open_read_only(&state_dir)?.resolve(&lookup)?)).await?;
    let run = server.running(&id);
    let Some(RunningRun { ctx, mut done }) = run else {
        let status = status_of(server, &id).await?;
        return Err(ToolError::NotRunning {
            session: id,
            status,
        });
    };
    ctx.control.stop(StopReason::Interrupted);
    let stopped = tokio::time::timeout(STOP_WAIT, done.wait_for(|d| *d))
        .await
        .is_ok_and(|r| r.is_ok());
    let status = status_of(server, &id).await?;
    Ok(json!({
        "swarmId": id,
        "destroyed": stopped,
        "status": status,
        "resumable": status != SessionStatus::Completed.as_str(),
        "next": format!("session_resume {{sessionId: \"{id}\"}} or `swarm resume {id}`"),
    }))
}

async fn status_of(server: &SwarmServer, id: &str) -> Result<String, ToolError> {
    let state_dir = server.config.state_dir.clone();
    let id = id.to_string();
    blocking(move || {
        let dir = StateDir::open_read_only(&state_dir)?;
        Ok(dir.summary(&id)?.status.as_str().to_string())
    })
    .await
}

/// The session `id` names (`latest` when `None`), its summary and its restored state.
async fn load(
    server: &SwarmServer,
    id: Option<&str>,
) -> Result<(crate::session::SessionSummary, Restored), ToolError> {
    let state_dir = server.config.state_dir.clone();
    let id = id.unwrap_or("latest").to_string();
    blocking(move || {
        let dir = StateDir::open_read_only(&state_dir)?;
        let id = dir.resolve(&id)?;
        let summary = dir.summary(&id)?;
        let restored = dir.load(&id)?;
        Ok((summary, restored))
    })
    .await
}

fn tasks_json(restored: &Restored, with_results: bool) -> Vec<Value> {
    restored
        .state
        .tasks_in_order()
        .map(|t| {
            let mut task = json!({
                "taskId": t.spec.id,
                "role": t.spec.role,
                "status": t.status.as_str(),
                "agent": t.agent,
                "dependsOn": t.spec.depends_on,
                "turns": t.turns,
                "error": t.error,
            });
            if with_results {
                task["description"] = json!(t.spec.description);
                task["result"] = json!(t.result);
            }
            task
        })
        .collect()
}

fn counters_json(c: &crate::session::Counters) -> Value {
    json!({
        "llmCalls": c.llm_calls,
        "failedCalls": c.failed_calls,
        "tokensIn": c.tokens_in,
        "tokensOut": c.tokens_out,
        "usd": c.usd,
        "retries": c.retries,
        "toolCalls": c.tool_calls,
        "tasksDone": c.tasks_done,
        "tasksFailed": c.tasks_failed,
    })
}

/// The status a caller sees: a session created by swarm_init and not started yet is `queued`.
fn shown_status(summary: &crate::session::SessionSummary, restored: &Restored) -> &'static str {
    if restored.state.session.is_empty() {
        SessionStatus::Queued.as_str()
    } else {
        summary.status.as_str()
    }
}

async fn swarm_status(server: &SwarmServer, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let id = string(args, "swarmId")?.map(str::to_string);
    let (summary, restored) = load(server, id.as_deref()).await?;
    let state = &restored.state;
    let mut metrics = counters_json(&state.totals);
    metrics["elapsedS"] = json!(state.elapsed_ms() as f64 / 1000.0);
    Ok(json!({
        "swarmId": summary.id,
        "swarm": summary.swarm,
        "status": shown_status(&summary, &restored),
        "endReason": state.end_reason,
        "goal": state.goal.clone().or(summary.goal.clone()),
        "runningHere": server.running(&summary.id).is_some(),
        "created": format_utc(summary.created_ms),
        "runs": state.runs,
        "tasksDone": summary.tasks_done,
        "tasksTotal": summary.tasks_total,
        "tasks": tasks_json(&restored, false),
        "metrics": metrics,
        "health": budget::health(state, &restored.plan.budget),
    }))
}

async fn task_status(server: &SwarmServer, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let id = required(args, "swarmId")?.to_string();
    let task = string(args, "taskId")?.map(str::to_string);
    let (summary, restored) = load(server, Some(&id)).await?;
    let tasks = tasks_json(&restored, task.is_some());
    match task {
        None => Ok(json!({"swarmId": summary.id, "tasks": tasks})),
        Some(task) => match tasks.into_iter().find(|t| t["taskId"] == task.as_str()) {
            Some(found) => Ok(json!({"swarmId": summary.id, "task": found})),
            None => Err(ToolError::UnknownTask {
                session: summary.id,
                task,
            }),
        },
    }
}

async fn agent_list(server: &SwarmServer, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let id = required(args, "swarmId")?.to_string();
    let (summary, restored) = load(server, Some(&id)).await?;
    let plan = &restored.plan;
    let agents: Vec<Value> = plan
        .agents
        .iter()
        .map(|slot| {
            let working: Vec<Value> = restored
                .state
                .per_agent
                .iter()
                .filter(|(name, _)| agent_role(name) == slot.role)
                .map(|(name, c)| json!({"agentId": name, "metrics": counters_json(c)}))
                .collect();
            json!({
                "role": slot.role,
                "count": slot.count,
                "description": plan.roles.get(&slot.role).map(|r| r.description.clone()),
                "agents": working,
            })
        })
        .collect();
    Ok(json!({
        "swarmId": summary.id,
        "topology": topology_name(plan),
        "coordinator": plan.coordinator,
        "maxAgents": plan.max_agents,
        "agents": agents,
    }))
}

/// Agents are named `<role>-<n>`.
fn agent_role(agent: &str) -> &str {
    match agent.rsplit_once('-') {
        Some((role, n)) if n.chars().all(|c| c.is_ascii_digit()) => role,
        _ => agent,
    }
}

async fn session_list(server: &SwarmServer) -> Result<Value, ToolError> {
    let state_dir = server.config.state_dir.clone();
    let sessions = blocking(move || {
        let dir = match StateDir::open_read_only(&state_dir) {
            Ok(dir) => dir,
            // No state dir yet: no sessions.
            Err(crate::session::SessionError::NoStateDir { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(dir.list()?)
    })
    .await?;
    let rows: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "sessionId": s.id,
                "swarm": s.swarm,
                "status": s.status.as_str(),
                "goal": s.goal,
                "tasksDone": s.tasks_done,
                "tasksTotal": s.tasks_total,
                "created": format_utc(s.created_ms),
                "runningHere": server.running(&s.id).is_some(),
            })
        })
        .collect();
    Ok(json!({"sessions": rows}))
}

async fn session_report(
    server: &SwarmServer,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let id = required(args, "sessionId")?.to_string();
    let (_, restored) = load(server, Some(&id)).await?;
    let text = crate::session::report::handoff_markdown(
        &restored.plan,
        &restored.state,
        &restored.memory,
        &server.config.state_dir,
    );
    Ok(Value::String(text))
}

fn record_json(r: &MemoryRecord) -> Value {
    json!({
        "namespace": r.namespace,
        "key": r.key,
        "value": r.entry.value,
        "version": r.entry.version,
        "created": format_utc(r.entry.created_ms),
        "updated": format_utc(r.entry.updated_ms),
        "expires": r.entry.expires_ms.map(format_utc),
    })
}

async fn memory_usage(server: &SwarmServer, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let action = required(args, "action")?.to_string();
    let key = string(args, "key")?.map(str::to_string);
    let namespace = string(args, "namespace")?.map(str::to_string);
    let ttl_ms = integer(args, "ttl")?.map(|s| s.saturating_mul(1000));
    let value = args.get("value").cloned();
    let session = string(args, "swarmId")?.map(str::to_string);
    let state_dir = server.config.state_dir.clone();
    let need_key = |key: Option<String>| key.ok_or(ToolError::Missing("key"));
    blocking(move || match session {
        None => project_memory(&state_dir, &action, key, value, namespace, ttl_ms, need_key),
        Some(session) => session_memory(
            &state_dir, &session, &action, key, value, namespace, ttl_ms, need_key,
        ),
    })
    .await
}

fn project_memory(
    root: &Path,
    action: &str,
    key: Option<String>,
    value: Option<Value>,
    namespace: Option<String>,
    ttl_ms: Option<u64>,
    need_key: impl Fn(Option<String>) -> Result<String, ToolError>,
) -> Result<Value, ToolError> {
    let ns = namespace
        .clone()
        .unwrap_or_else(|| PROJECT_DEFAULT_NAMESPACE.to_string());
    match action {
        "store" => {
            let key = need_key(key)?;
            let value = value.ok_or(ToolError::Missing("value"))?;
            let dir = StateDir::open(root)?;
            let outcome = dir.project_put(&ProjectPut {
                namespace: ns.clone(),
                key: key.clone(),
                value,
                ttl_ms,
                expected_version: None,
            })?;
            let version = match outcome {
                crate::session::PutOutcome::Stored(entry) => Some(entry.version),
                crate::session::PutOutcome::Conflict { .. } => None,
            };
            Ok(
                json!({"stored": true, "namespace": ns, "key": key, "version": version, "ttl": ttl_ms.map(|t| t / 1000)}),
            )
        }
        "retrieve" => {
            let key = need_key(key)?;
            let dir = open_project_read(root)?;
            match dir
                .as_ref()
                .map(|d| d.project_get(&ns, &key))
                .transpose()?
                .flatten()
            {
                Some(record) => Ok(
                    json!({"found": true, "entry": record_json(&record), "value": record.entry.value}),
                ),
                None => Err(ToolError::NotFound(format!(
                    "`{key}` in project namespace `{ns}`"
                ))),
            }
        }
        "list" => {
            let records = match open_project_read(root)? {
                Some(dir) => dir.project_list(namespace.as_deref())?,
                None => Vec::new(),
            };
            Ok(json!({"entries": records.iter().map(record_json).collect::<Vec<_>>()}))
        }
        "delete" => {
            let key = need_key(key)?;
            let dir = StateDir::open(root)?;
            if dir.project_delete(&ns, &key)? {
                Ok(json!({"deleted": true, "namespace": ns, "key": key}))
            } else {
                Err(ToolError::NotFound(format!(
                    "`{key}` in project namespace `{ns}`"
                )))
            }
        }
        "search" => {
            let glob = need_key(key)?;
            let records = project_search(root, namespace.as_deref(), &glob, usize::MAX)?;
            Ok(json!({"entries": records}))
        }
        other => Err(ToolError::Action(other.to_string())),
    }
}

/// The project memory for reading: `None` when there is no state dir yet (nothing stored).
fn open_project_read(root: &Path) -> Result<Option<StateDir>, ToolError> {
    match StateDir::open_read_only(root) {
        Ok(dir) => Ok(Some(dir)),
        Err(crate::session::SessionError::NoStateDir { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn project_search(
    root: &Path,
    namespace: Option<&str>,
    glob: &str,
    limit: usize,
) -> Result<Vec<Value>, ToolError> {
    let store = MemoryStore::new(crate::clock::system(), MemoryLimits::default());
    if let Some(dir) = open_project_read(root)? {
        store.restore(dir.project_list(None)?);
    }
    let found = store
        .search(namespace, glob)
        .map_err(|e| ToolError::Pattern(e.to_string()))?;
    Ok(found.iter().take(limit).map(record_json).collect())
}

#[allow(clippy::too_many_arguments)]
fn session_memory(
    root: &Path,
    session: &str,
    action: &str,
    key: Option<String>,
    value: Option<Value>,
    namespace: Option<String>,
    ttl_ms: Option<u64>,
    need_key: impl Fn(Option<String>) -> Result<String, ToolError>,
) -> Result<Value, ToolError> {
    // As `swarm memory --session`: reads through the snapshot and journal, writes appended to the
    // journal as external events that a live run picks up and a resume replays.
    let dir = StateDir::open_existing(root)?;
    let id = dir.resolve(session)?;
    let restored = dir.load(&id)?;
    let ns = namespace
        .clone()
        .unwrap_or_else(|| restored.plan.memory.namespace.clone());
    let find = |key: &str| {
        restored
            .memory
            .iter()
            .find(|r| r.namespace == ns && r.key == key)
    };
    match action {
        "store" => {
            let key = need_key(key)?;
            let value = value.ok_or(ToolError::Missing("value"))?;
            let now = crate::clock::now_ms();
            let ttl = ttl_ms.or(restored.plan.memory.ttl.map(|d| d.as_millis() as u64));
            let previous = find(&key);
            let entry = Entry {
                value,
                created_ms: previous.map_or(now, |p| p.entry.created_ms),
                updated_ms: now,
                expires_ms: ttl.map(|t| now.saturating_add(t)),
                version: previous.map_or(1, |p| p.entry.version + 1),
                access_count: 0,
            };
            let version = entry.version;
            dir.append_external(
                &id,
                &[Event::MemoryChanged {
                    change: MemoryChange::Put {
                        namespace: ns.clone(),
                        key: key.clone(),
                        entry,
                    },
                }],
            )?;
            Ok(
                json!({"stored": true, "swarmId": id, "namespace": ns, "key": key, "version": version}),
            )
        }
        "retrieve" => {
            let key = need_key(key)?;
            match find(&key) {
                Some(record) => Ok(
                    json!({"found": true, "entry": record_json(record), "value": record.entry.value}),
                ),
                None => Err(ToolError::NotFound(format!("`{key}` in namespace `{ns}`"))),
            }
        }
        "list" => Ok(json!({"swarmId": id, "entries": restored
            .memory
            .iter()
            .filter(|r| namespace.as_deref().is_none_or(|n| r.namespace == n))
            .map(record_json)
            .collect::<Vec<_>>()})),
        "delete" => {
            let key = need_key(key)?;
            if find(&key).is_none() {
                return Err(ToolError::NotFound(format!("`{key}` in namespace `{ns}`")));
            }
            dir.append_external(
                &id,
                &[Event::MemoryChanged {
                    change: MemoryChange::Delete {
                        namespace: ns.clone(),
                        key: key.clone(),
                    },
                }],
            )?;
            Ok(json!({"deleted": true, "swarmId": id, "namespace": ns, "key": key}))
        }
        "search" => {
            let glob = need_key(key)?;
            Ok(
                json!({"swarmId": id, "entries": session_search(restored, namespace.as_deref(), &glob, usize::MAX)?}),
            )
        }
        other => Err(ToolError::Action(other.to_string())),
    }
}

fn session_search(
    restored: Restored,
    namespace: Option<&str>,
    glob: &str,
    limit: usize,
) -> Result<Vec<Value>, ToolError> {
    let store = MemoryStore::new(crate::clock::system(), MemoryLimits::default());
    store.restore(restored.memory);
    let found = store
        .search(namespace, glob)
        .map_err(|e| ToolError::Pattern(e.to_string()))?;
    Ok(found.iter().take(limit).map(record_json).collect())
}

async fn memory_search(
    server: &SwarmServer,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    let pattern = required(args, "pattern")?.to_string();
    let namespace = string(args, "namespace")?.map(str::to_string);
    let limit =
        integer(args, "limit")?.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let session = string(args, "swarmId")?.map(str::to_string);
    let state_dir = server.config.state_dir.clone();
    blocking(move || {
        let entries = match session {
            None => project_search(&state_dir, namespace.as_deref(), &pattern, limit)?,
            Some(session) => {
                let dir = StateDir::open_read_only(&state_dir)?;
                let id = dir.resolve(&session)?;
                session_search(dir.load(&id)?, namespace.as_deref(), &pattern, limit)?
            }
        };
        Ok(json!({"pattern": pattern, "count": entries.len(), "entries": entries}))
    })
    .await
}
