//! The tools of one agent on one task: their schemas (only the tools its role lists) and their
//! execution. Memory and workspace tools are delegated to their modules; messaging and the task
//! graph tools (`send_message`, `read_messages`, `create_task`, `complete_task`) live here
//! because they act on the session.

use super::context::SwarmContext;
use super::roster::Roster;
use crate::llm::{ToolCall, ToolOutput, ToolSchema};
use crate::memory::{self, AccessPolicy};
use crate::session::Event;
use crate::spec::{SwarmPlan, TaskSpec, ToolName};
use serde_json::{json, Value};
use std::sync::Arc;

/// What a tool call means for the task beyond its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    None,
    /// `complete_task` succeeded with this result.
    Complete(String),
}

/// Most tasks a coordinator may create in one session; a runaway planner is stopped here.
const MAX_CREATED_TASKS: usize = 500;

/// The tools one agent holds: built once per agent for the whole run.
pub struct AgentTools {
    agent: String,
    tools: Vec<ToolName>,
    policy: AccessPolicy,
    schemas: Arc<[ToolSchema]>,
}

impl AgentTools {
    pub fn new(
        plan: &SwarmPlan,
        roster: &Roster,
        agent: &str,
        role_name: &str,
    ) -> Result<Self, String> {
        let role = plan
            .roles
            .get(role_name)
            .ok_or_else(|| format!("role `{role_name}` is not in the plan"))?;
        let is_coordinator = roster.is_coordinator(agent);
        let tools: Vec<ToolName> = role
            .tools
            .iter()
            .copied()
            .filter(|t| match t {
                ToolName::RunCommand => plan.allow_commands,
                ToolName::CreateTask => is_coordinator,
                _ => true,
            })
            .collect();
        let policy =
            AccessPolicy::for_role(role.memory.as_ref(), &plan.memory.namespace, role_name)
                .map_err(|e| e.to_string())?;
        let schemas = tools.iter().filter_map(|t| schema(roster, *t)).collect();
        Ok(Self {
            agent: agent.to_string(),
            tools,
            policy,
            schemas,
        })
    }

    pub fn schemas(&self) -> &Arc<[ToolSchema]> {
        &self.schemas
    }

    pub fn has(&self, tool: ToolName) -> bool {
        self.tools.contains(&tool)
    }

    /// Runs one tool call. Every failure is a tool error for the model, never a crash.
    pub async fn execute(&self, ctx: &SwarmContext, call: &ToolCall) -> (ToolOutput, Effect) {
        let Some(tool) = call.name.parse::<ToolName>().ok().filter(|t| self.has(*t)) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.as_str()).collect();
            return (
                ToolOutput::error(format!(
                    "unknown tool `{}`: you have {}",
                    call.name,
                    names.join(", ")
                )),
                Effect::None,
            );
        };
        let args = &call.arguments;
        match tool {
            ToolName::MemoryStore
            | ToolName::MemoryRetrieve
            | ToolName::MemorySearch
            | ToolName::MemoryList
            | ToolName::MemoryDelete => {
                let mctx = memory::tools::ToolContext {
                    store: &ctx.memory,
                    policy: &self.policy,
                    default_namespace: &ctx.plan.memory.namespace,
                };
                (memory::tools::execute(&mctx, tool, args), Effect::None)
            }
            ToolName::ReadFile
            | ToolName::WriteFile
            | ToolName::ListFiles
            | ToolName::RunCommand => (
                super::workspace::execute(&ctx.workspace, tool, args, ctx.commands.as_ref()).await,
                Effect::None,
            ),
            ToolName::SendMessage => (self.send_message(ctx, args), Effect::None),
            ToolName::ReadMessages => (self.read_messages(ctx), Effect::None),
            ToolName::CreateTask => (self.create_task(ctx, args), Effect::None),
            ToolName::CompleteTask => match args.get("result") {
                Some(Value::String(result)) if !result.trim().is_empty() => (
                    ToolOutput::ok(r#"{"completed":true}"#),
                    Effect::Complete(result.clone()),
                ),
                Some(value) if !value.is_null() && !value.is_string() => (
                    ToolOutput::ok(r#"{"completed":true}"#),
                    Effect::Complete(value.to_string()),
                ),
                _ => (
                    ToolOutput::error(
                        r#"complete_task needs {"result": "<what you did and where it is>"}"#,
                    ),
                    Effect::None,
                ),
            },
        }
    }

    fn send_message(&self, ctx: &SwarmContext, args: &Value) -> ToolOutput {
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

    fn read_messages(&self, ctx: &SwarmContext) -> ToolOutput {
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

    fn create_task(&self, ctx: &SwarmContext, args: &Value) -> ToolOutput {
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
            if s.tasks.len() >= MAX_CREATED_TASKS {
                return Err(format!(
                    "this session already has {MAX_CREATED_TASKS} tasks; no more can be created"
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
                    ctx.wake_scheduler();
                }
                ToolOutput::ok(
                    json!({ "created": id, "role": role, "depends_on": depends_on }).to_string(),
                )
            }
        }
    }
}

/// The schema of `tool` as `agent` sees it.
fn schema(roster: &Roster, tool: ToolName) -> Option<ToolSchema> {
    let object = |properties: Value, required: &[&str]| json!({ "type": "object", "properties": properties, "required": required });
    match tool {
        ToolName::MemoryStore
        | ToolName::MemoryRetrieve
        | ToolName::MemorySearch
        | ToolName::MemoryList
        | ToolName::MemoryDelete => memory::tools::schema(tool),
        ToolName::ReadFile | ToolName::WriteFile | ToolName::ListFiles | ToolName::RunCommand => {
            super::workspace::schema(tool)
        }
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
    }
}
