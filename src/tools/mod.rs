//! The tool seam: what an agent can call, whatever the tool is.
//!
//! A [`Tool`] is a name, a JSON schema and a description (its [`ToolSchema`]), an async call that
//! returns a result or a tool error, and whether it is safe to repeat after a crash. Built-in
//! tools (memory, files, commands, and the session tools the runtime adds) and the tools of MCP
//! servers all sit behind it; an agent's [`ToolSet`] is built once and the agent step machine
//! only ever sees the set.
//!
//! - [`workspace`]: the confined folder the file tools act on;
//! - [`files`], [`coding`], [`command`], [`shell`]: the file and coding tools, `run_command`
//!   and the shell runner (also used by hooks);
//! - [`memory`]: the `memory_*` tools over the shared store;
//! - [`mcp`]: the tools of MCP servers, `mcp__<server>__<tool>`.

pub mod coding;
pub mod command;
pub mod files;
pub mod mcp;
pub mod memory;
pub mod sandbox;
pub mod shell;
pub mod workspace;

use crate::llm::{ToolCall, ToolOutput, ToolSchema};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A successful tool call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolReply {
    /// What the model reads.
    pub content: String,
    /// Set by a tool that ends the agent's task with this result (`complete_task`).
    pub completes_task: Option<String>,
}

impl ToolReply {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            completes_task: None,
        }
    }
}

/// A failed tool call: a message the model reads and can act on, never a crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

pub type ToolResult = Result<ToolReply, ToolError>;

/// The future a tool call returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolResult> + Send + 'a>>;

/// Turns the `{content, is_error}` shape the built-in tool functions return into a result.
pub fn from_output(output: ToolOutput) -> ToolResult {
    if output.is_error {
        Err(ToolError(output.content))
    } else {
        Ok(ToolReply::text(output.content))
    }
}

/// One tool an agent can call.
pub trait Tool: Send + Sync {
    /// Name, description and JSON schema of the arguments, as the model sees them.
    fn schema(&self) -> &ToolSchema;

    /// Whether running the call a second time after a crash does no harm (a read, a memory
    /// write that sets the same value). A call that is not safe is journaled as started before
    /// it runs, and never run again on resume.
    fn repeat_safe(&self) -> bool;

    /// Whether everything a call changes is journaled by the session itself (memory, messages,
    /// tasks) or it changes nothing at all. Such a call may run before the turn that asked for it
    /// is durable: its effects are journaled after that turn, so a crash takes back both or
    /// neither. Any other call waits for its turn to be durable first.
    fn effects_journaled(&self) -> bool {
        false
    }

    /// Whether the tool acts as the agent that holds it (sends, reads or creates as that
    /// agent), so that each agent needs its own; any other tool may be shared by agents.
    fn bound_to_holder(&self) -> bool {
        false
    }

    /// Runs one call with the model's arguments.
    fn call<'a>(&'a self, args: &'a Value) -> ToolFuture<'a>;
}

/// How a call through a [`ToolSet`] ended, in the shape the transcript keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    pub output: ToolOutput,
    pub completes_task: Option<String>,
}

/// The tools of one agent, built once for the whole run.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Arc<dyn Tool>>,
    /// Looked up on every tool call; the names come from the configuration.
    by_name: HashMap<String, usize, foldhash::fast::RandomState>,
    schemas: Arc<[ToolSchema]>,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ToolSet {
    /// A set of tools in the order they are offered. A later tool with the name of an earlier
    /// one is dropped: the first one wins.
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        let mut kept: Vec<Arc<dyn Tool>> = Vec::with_capacity(tools.len());
        let mut by_name = HashMap::default();
        for tool in tools {
            let name = tool.schema().name.clone();
            if by_name.contains_key(&name) {
                continue;
            }
            by_name.insert(name, kept.len());
            kept.push(tool);
        }
        let schemas = kept.iter().map(|t| t.schema().clone()).collect();
        Self {
            tools: kept,
            by_name,
            schemas,
        }
    }

    /// The schemas sent with every request.
    pub fn schemas(&self) -> &Arc<[ToolSchema]> {
        &self.schemas
    }

    /// Whether agents may share this set: none of its tools acts as its holder.
    pub fn shareable(&self) -> bool {
        !self.tools.iter().any(|t| t.bound_to_holder())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| t.schema().name.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Whether a call of `name` may be run again after a crash. A name the set does not hold is
    /// safe: calling it runs nothing.
    pub fn repeat_safe(&self, name: &str) -> bool {
        self.get(name).is_none_or(|t| t.repeat_safe())
    }

    /// Whether a call of `name` changes nothing outside the session's journal (see
    /// [`Tool::effects_journaled`]). A name the set does not hold changes nothing.
    pub fn effects_journaled(&self, name: &str) -> bool {
        self.get(name).is_none_or(|t| t.effects_journaled())
    }

    /// Runs one call. An unknown name is a tool error listing the tools the agent has.
    pub async fn call(&self, call: &ToolCall) -> CallOutcome {
        let Some(tool) = self.get(&call.name) else {
            let names: Vec<&str> = self.names().collect();
            return CallOutcome {
                output: ToolOutput::error(format!(
                    "unknown tool `{}`: you have {}",
                    call.name,
                    names.join(", ")
                )),
                completes_task: None,
            };
        };
        // The one way a tool's output reaches the model and the journal: a key a command
        // printed (or a server echoed) is blanked here.
        match tool.call(&call.arguments).await {
            Ok(reply) => CallOutcome {
                output: ToolOutput::ok(crate::secrets::redact(&reply.content).into_owned()),
                completes_task: reply
                    .completes_task
                    .map(|text| crate::secrets::redact(&text).into_owned()),
            },
            Err(ToolError(message)) => CallOutcome {
                output: ToolOutput::error(crate::secrets::redact(&message).into_owned()),
                completes_task: None,
            },
        }
    }
}
