//! The tools that act on the session (`send_message`, `read_messages`, `create_task`,
//! `complete_task`), and the building of each agent's [`ToolSet`] from its role: these session
//! tools plus the memory and workspace tools of [`crate::tools`].

use super::recorder::Recorder;
use super::roster::Roster;
use crate::clock::SharedClock;
use crate::llm::{ToolOutput, ToolSchema};
use crate::memory::{AccessPolicy, MemoryStore};
use crate::session::Event;
use crate::spec::{Role, SwarmPlan, TaskSpec, ToolName, MAX_TASKS};
use crate::tools::command::CommandPolicy;
use crate::tools::files::FileTool;
use crate::tools::mcp::McpHub;
use crate::tools::memory::MemoryTool;
use crate::tools::workspace::Workspace;
use crate::tools::{from_output, Tool, ToolError, ToolFuture, ToolReply, ToolSet};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// What the session tools act on, shared by every agent of a run.
pub struct SessionHandles {
    pub recorder: Arc<Recorder>,
    pub roster: Arc<Roster>,
    pub clock: SharedClock,
    /// Tells the scheduler the task graph changed.
    pub wake: Arc<Notify>,
}

impl SessionHandles {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// What the built-in tools of a run are built from.
pub struct ToolDeps {
    pub session: Arc<SessionHandles>,
    pub memory: MemoryStore,
    pub workspace: Arc<Workspace>,
    pub commands: Option<CommandPolicy>,
    pub mcp: Arc<McpHub>,
}

/// The memory policy of each role, compiled once for all the role's agents (a role of 64
/// agents would otherwise compile its globs 64 times).
#[derive(Default)]
pub struct RolePolicies(HashMap<String, Arc<AccessPolicy>>);

impl RolePolicies {
    fn of(
        &mut self,
        plan: &SwarmPlan,
        name: &str,
        role: &Role,
    ) -> Result<Arc<AccessPolicy>, String> {
        if let Some(policy) = self.0.get(name) {
            return Ok(Arc::clone(policy));
        }
        let policy = Arc::new(
            AccessPolicy::for_role_sharing(
                role.memory.as_ref(),
                &plan.memory.namespace,
                &plan.memory.project,
                name,
            )
            .map_err(|e| e.to_string())?,
        );
        self.0.insert(name.to_owned(), Arc::clone(&policy));
        Ok(policy)
    }
}

/// The tool sets of a run's agents. Agents of one role share one set unless a tool of it acts
/// as its holder (a session tool): it is built, and its schemas encoded for requests, once.
#[derive(Default)]
pub struct ToolSets {
    policies: RolePolicies,
    /// By role name and whether the agent is the coordinator (which decides `create_task`).
    shared: HashMap<(String, bool), Arc<ToolSet>>,
}

impl ToolSets {
    /// The tools of `agent` (of `role_name`), as [`build_tool_set`] builds them.
    pub fn of(
        &mut self,
        plan: &SwarmPlan,
        deps: &ToolDeps,
        agent: &str,
        role_name: &str,
    ) -> Result<Arc<ToolSet>, String> {
        let key = (
            role_name.to_owned(),
            deps.session.roster.is_coordinator(agent),
        );
        if let Some(set) = self.shared.get(&key) {
            return Ok(Arc::clone(set));
        }
        let set = Arc::new(build_tool_set(
            plan,
            deps,
            &mut self.policies,
            agent,
            role_name,
        )?);
        if set.shareable() {
            self.shared.insert(key, Arc::clone(&set));
        }
        Ok(set)
    }
}

/// The tools `agent` (of `role_name`) holds for the whole run: the tools its role lists, minus
/// `run_command` when the swarm does not allow commands and `create_task` for anyone but the
/// coordinator. An invalid memory rule is the agent's error.
pub fn build_tool_set(
    plan: &SwarmPlan,
    deps: &ToolDeps,
    policies: &mut RolePolicies,
    agent: &str,
    role_name: &str,
) -> Result<ToolSet, String> {
    let role = plan
        .roles
        .get(role_name)
        .ok_or_else(|| format!("role `{role_name}` is not in the plan"))?;
    let roster = &deps.session.roster;
    let is_coordinator = roster.is_coordinator(agent);
    let policy = policies.of(plan, role_name, role)?;
    let namespace: Arc<str> = Arc::from(plan.memory.namespace.as_str());
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    for &name in &role.tools {
        let tool: Option<Arc<dyn Tool>> = match name {
            name if !super::topology::holds_tool(plan, name, is_coordinator) => None,
            ToolName::MemoryStore
            | ToolName::MemoryRetrieve
            | ToolName::MemorySearch
            | ToolName::MemoryList
            | ToolName::MemoryDelete => MemoryTool::new(
                name,
                deps.memory.clone(),
                Arc::clone(&policy),
                Arc::clone(&namespace),
            )
            .map(|t| Arc::new(t) as Arc<dyn Tool>),
            ToolName::ReadFile
            | ToolName::WriteFile
            | ToolName::ListFiles
            | ToolName::EditFile
            | ToolName::SearchFiles
            | ToolName::GlobFiles
            | ToolName::RunCommand => {
                FileTool::new(name, Arc::clone(&deps.workspace), deps.commands.clone())
                    .map(|t| Arc::new(t) as Arc<dyn Tool>)
            }
            ToolName::SendMessage
            | ToolName::ReadMessages
            | ToolName::CreateTask
            | ToolName::CompleteTask => session_schema(roster, name).map(|schema| {
                Arc::new(SessionTool {
                    tool: name,
                    schema,
                    agent: agent.to_string(),
                    session: Arc::clone(&deps.session),
                }) as Arc<dyn Tool>
            }),
        };
        tools.extend(tool);
    }
    tools.extend(deps.mcp.tools_for(&role.mcp_tools));
    Ok(ToolSet::new(tools))
}

/// A tool that acts on the session as one agent.
struct SessionTool {
    tool: ToolName,
    schema: ToolSchema,
    agent: String,
    session: Arc<SessionHandles>,
}

impl Tool for SessionTool {
    fn schema(&self) -> &ToolSchema {
        &self.schema
    }

    /// They act only on the session: `create_task` finds the task its first run created, and
    /// a message sent twice is a repeated message, nothing outside the run.
    fn repeat_safe(&self) -> bool {
        true
    }

    /// Tasks and messages are events of the session.
    fn effects_journaled(&self) -> bool {
        true
    }

    /// It sends, reads and creates as `agent`.
    fn bound_to_holder(&self) -> bool {
        true
    }

    fn call<'a>(&'a self, args: &'a Value) -> ToolFuture<'a> {
        let ctx = &*self.session;
        let result = match self.tool {
            ToolName::SendMessage => from_output(self.send_message(ctx, args)),
            ToolName::ReadMessages => from_output(self.read_messages(ctx)),
            ToolName::CreateTask => from_output(self.create_task(ctx, args)),
            ToolName::CompleteTask => complete_task(args),
            other => Err(ToolError(format!("`{other}` is not a session tool"))),
        };
        Box::pin(std::future::ready(result))
    }
}

fn complete_task(args: &Value) -> Result<ToolReply, ToolError> {
    let result = match args.get("result") {
        Some(Value::String(result)) if !result.trim().is_empty() => result.clone(),
        Some(value) if !value.is_null() && !value.is_string() => value.to_string(),
        _ => {
            return Err(ToolError(
                r#"complete_task needs {"result": "<what you did and where it is>"}"#.into(),
            ))
        }
    };
    Ok(ToolReply {
        content: r#"{"completed":true}"#.into(),
        completes_task: Some(result),
    })
}

impl SessionTool {
    fn send_message(&self, ctx: &SessionHandles, args: &Value) -> ToolOutput {
        let (Some(to), Some(body)) = (
            args.get("to").and_then(Value::as_str),
            args.get("body").and_then(Value::as_str),
        ) else {
            return ToolOutput::error(
                r#"send_message needs {"to": "<agent id or role>", "body": "<text>"}"#,
            );
        };
        let Some(recipient) = ctx.roster.resolve_recipient(to) else {
            let contacts = ctx.roster.contacts_summary(&self.agent);
            return ToolOutput::error(format!(
                "no agent or role `{to}` in this swarm; you may message: {contacts}"
            ));
        };
        if let Err(why) = ctx.roster.may_message(&self.agent, &recipient.id) {
            return ToolOutput::error(why);
        }
        let to = recipient.id.clone();
        let at_ms = ctx.now_ms();
        let mut id = 0;
        drop(ctx.recorder.emit_with(|state| {
            id = state.next_message_id();
            Event::MessageSent {
                id,
                from: self.agent.clone(),
                to: to.clone(),
                body: body.to_string(),
                at_ms,
            }
        }));
        ToolOutput::ok(json!({ "sent": true, "to": to, "id": id }).to_string())
    }

    fn read_messages(&self, ctx: &SessionHandles) -> ToolOutput {
        let messages: Vec<Value> = ctx.recorder.read(|s| {
            s.unread_for(&self.agent)
                .map(|m| json!({ "id": m.id, "from": m.from, "body": m.body }))
                .collect()
        });
        if let Some(up_to) = messages.last().and_then(|m| m["id"].as_u64()) {
            drop(ctx.recorder.emit(Event::MessagesRead {
                agent: self.agent.clone(),
                up_to,
            }));
        }
        ToolOutput::ok(json!({ "messages": messages }).to_string())
    }

    fn create_task(&self, ctx: &SessionHandles, args: &Value) -> ToolOutput {
        let usage = r#"create_task needs {"role": "<role>", "description": "<one deliverable>", "id": "<optional id>", "depends_on": ["<task id>", ...]}"#;
        let (Some(role), Some(description)) = (
            args.get("role").and_then(Value::as_str),
            args.get("description").and_then(Value::as_str),
        ) else {
            return ToolOutput::error(usage);
        };
        let roles = ctx.roster.worker_roles();
        if !roles.iter().any(|r| r == role) {
            return ToolOutput::error(format!(
                "no role `{role}` in this swarm's roster; choose one of: {}",
                roles.join(", ")
            ));
        }
        let depends_on: Vec<String> = match args.get("depends_on") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                match items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect()
                {
                    Some(ids) => ids,
                    None => return ToolOutput::error(usage),
                }
            }
            Some(_) => return ToolOutput::error(usage),
        };
        let requested_id = args.get("id").and_then(Value::as_str).map(str::to_string);
        if let Some(id) = &requested_id {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return ToolOutput::error(format!(
                    "task id `{id}` is not valid: use lowercase letters, digits, `-` and `_`"
                ));
            }
        }
        let outcome = ctx.recorder.read(|s| {
            super::topology::may_create_task(s)?;
            // The same call replayed after a crash finds the task it created the first time.
            if let Some(existing) = s.tasks.values().find(|t| {
                t.created_by.as_deref() == Some(self.agent.as_str())
                    && t.spec.role == role
                    && t.spec.description == description
                    && t.spec.depends_on == depends_on
                    && requested_id.as_ref().is_none_or(|id| *id == t.spec.id)
            }) {
                return Ok((existing.spec.id.clone(), false));
            }
            if s.tasks.len() >= MAX_TASKS {
                return Err(format!(
                    "this session already has {MAX_TASKS} tasks; no more can be created"
                ));
            }
            if let Some(missing) = depends_on.iter().find(|d| !s.tasks.contains_key(*d)) {
                let known: Vec<&str> = s.task_order.iter().map(String::as_str).collect();
                return Err(format!(
                    "depends_on names `{missing}`, which is not a task; existing tasks: {}",
                    known.join(", ")
                ));
            }
            let id = match &requested_id {
                Some(id) if s.tasks.contains_key(id) => {
                    return Err(format!("a task `{id}` already exists; choose another id"))
                }
                Some(id) => id.clone(),
                None => (1..)
                    .map(|n| format!("{role}-{n}"))
                    .find(|id| !s.tasks.contains_key(id))
                    .unwrap_or_else(|| role.to_string()),
            };
            Ok((id, true))
        });
        match outcome {
            Err(why) => ToolOutput::error(why),
            Ok((id, created)) => {
                if created {
                    drop(ctx.recorder.emit(Event::TaskCreated {
                        task: TaskSpec {
                            id: id.clone(),
                            role: role.to_string(),
                            description: description.to_string(),
                            depends_on: depends_on.clone(),
                        },
                        created_by: Some(self.agent.clone()),
                        at_ms: ctx.now_ms(),
                    }));
                    ctx.wake.notify_one();
                }
                ToolOutput::ok(
                    json!({ "created": id, "role": role, "depends_on": depends_on }).to_string(),
                )
            }
        }
    }
}

/// The schema an agent of `roster` is offered for `tool`, whichever module implements it.
pub fn schema_of(roster: &Roster, tool: ToolName) -> Option<ToolSchema> {
    crate::tools::files::schema(tool)
        .or_else(|| crate::tools::memory::schema(tool))
        .or_else(|| session_schema(roster, tool))
}

/// The schema of a session tool; `None` for other tools.
fn session_schema(roster: &Roster, tool: ToolName) -> Option<ToolSchema> {
    let object = |properties: Value, required: &[&str]| json!({ "type": "object", "properties": properties, "required": required });
    match tool {
        ToolName::SendMessage => Some(ToolSchema {
            name: tool.as_str().into(),
            // The same for every agent of a role, so it stays in the prompt-cache prefix the
            // role's agents share; who this agent may message is in its task's context block.
            description: "Send a message to another agent of the swarm: one listed under \
                          `contacts` in your task's context."
                .into(),
            parameters: object(
                json!({
                    "to": { "type": "string", "description": "an agent id (e.g. tester-1) or a role name" },
                    "body": { "type": "string" }
                }),
                &["to", "body"],
            ),
        }),
        ToolName::ReadMessages => Some(ToolSchema {
            name: tool.as_str().into(),
            description: "Read the messages other agents sent you that you have not read yet.".into(),
            parameters: object(json!({}), &[]),
        }),
        ToolName::CreateTask => Some(ToolSchema {
            name: tool.as_str().into(),
            description: "Add a task to the swarm's task graph. It runs as soon as the tasks it depends on are done.".into(),
            parameters: object(
                json!({
                    "id": { "type": "string", "description": "optional short id: lowercase letters, digits, - and _" },
                    "role": { "type": "string", "enum": roster.worker_roles() },
                    "description": { "type": "string", "description": "one clear deliverable for that role" },
                    "depends_on": { "type": "array", "items": { "type": "string" }, "description": "ids of tasks that must be done first" }
                }),
                &["role", "description"],
            ),
        }),
        ToolName::CompleteTask => Some(ToolSchema {
            name: tool.as_str().into(),
            description: "Finish your task with its result: what you did, where it is, anything left open.".into(),
            parameters: object(json!({ "result": { "type": "string" } }), &["result"]),
        }),
        _ => None,
    }
}
