//! The offline, deterministic model. It needs no network and no key, answers the same request
//! the same way every time, and behaves like a cooperative model driving the runtime's tools:
//! a coordinator plans with `create_task`, workers store notes with `memory_store`, write a file,
//! message a peer where the topology lets them, then finish with `complete_task`. Everything it
//! writes starts with `[simulated]`. Its token counts are estimates (4 characters a token), since
//! there is no API usage field to read.

use super::prompt::{parse_context, Phase};
use crate::llm::{
    ChatRequest, ChatResponse, FinishReason, LlmClient, Message, Provider, ProviderConfig,
    ProviderFuture, ToolCall, Usage,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A client of the simulated model with the layers (limits, deadline) `config` sets.
pub fn client(config: ProviderConfig) -> LlmClient {
    shared_client(config, None)
}

/// [`client`], with its per-minute limits held in `budget` with other processes.
pub fn shared_client(
    config: ProviderConfig,
    budget: Option<Arc<dyn crate::llm::RateBudget>>,
) -> LlmClient {
    LlmClient::shared(config, Arc::new(SimulatedProvider), budget)
}

/// A model that needs no network and answers the same request the same way every time.
#[derive(Debug, Clone, Default)]
pub struct SimulatedProvider;

impl SimulatedProvider {
    pub fn new() -> Self {
        Self
    }

    /// One assistant turn for `request`.
    pub fn respond(&self, request: &ChatRequest) -> ChatResponse {
        let turn = Turn::read(request);
        let (text, tool_calls) = turn.decide();
        let output_chars = text.as_ref().map_or(0, String::len)
            + tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.to_string().len())
                .sum::<usize>();
        let finish = if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        ChatResponse {
            text,
            tool_calls,
            usage: Usage::new(estimate_tokens(request), (output_chars as u64).div_ceil(4)),
            finish,
            blocks: Vec::new(),
        }
    }
}

impl Provider for SimulatedProvider {
    fn respond<'a>(&'a self, request: &'a ChatRequest) -> ProviderFuture<'a> {
        let response = SimulatedProvider::respond(self, request);
        Box::pin(async move { Ok(response) })
    }
}

fn estimate_tokens(request: &ChatRequest) -> u64 {
    let chars: usize = request.system.len()
        + request
            .messages
            .iter()
            .map(|m| match m {
                Message::User { content } => content.len(),
                Message::Assistant {
                    text, tool_calls, ..
                } => {
                    text.as_ref().map_or(0, String::len)
                        + tool_calls
                            .iter()
                            .map(|c| c.arguments.to_string().len())
                            .sum::<usize>()
                }
                Message::Tool { content, .. } => content.len(),
            })
            .sum::<usize>();
    (chars as u64).div_ceil(4)
}

/// What the simulated model knows when it answers.
struct Turn<'a> {
    context: BTreeMap<String, String>,
    offered: Vec<&'a str>,
    called: Vec<&'a str>,
    turn: usize,
    first_message: &'a str,
}

impl<'a> Turn<'a> {
    fn read(request: &'a ChatRequest) -> Self {
        let first_message = request
            .messages
            .iter()
            .find_map(|m| match m {
                Message::User { content } => Some(content.as_str()),
                _ => None,
            })
            .unwrap_or("");
        let mut called = Vec::new();
        let mut turn = 0;
        for m in &request.messages {
            if let Message::Assistant { tool_calls, .. } = m {
                turn += 1;
                called.extend(tool_calls.iter().map(|c| c.name.as_str()));
            }
        }
        Self {
            context: parse_context(first_message),
            offered: request.tools.iter().map(|t| t.name.as_str()).collect(),
            called,
            turn,
            first_message,
        }
    }

    fn ctx(&self, key: &str) -> &str {
        self.context.get(key).map_or("", String::as_str)
    }

    fn can(&self, tool: &str) -> bool {
        self.offered.contains(&tool) && !self.called.contains(&tool)
    }

    fn call(&self, i: usize, name: &str, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            id: format!("sim-{}-{i}", self.turn),
            name: name.to_string(),
            arguments,
        }
    }

    fn decide(&self) -> (Option<String>, Vec<ToolCall>) {
        let phase = Phase::parse(self.ctx("phase")).unwrap_or(Phase::Work);
        let calls = match phase {
            Phase::Plan => self.plan(),
            Phase::Work => self.work(),
            Phase::Synthesize => self.synthesize(),
        };
        if !calls.is_empty() {
            return (None, calls);
        }
        let result = self.result(phase);
        if self.offered.contains(&"complete_task") {
            (
                None,
                vec![self.call(0, "complete_task", json!({ "result": result }))],
            )
        } else {
            (Some(result), Vec::new())
        }
    }

    fn plan(&self) -> Vec<ToolCall> {
        if !self.can("create_task") {
            return Vec::new();
        }
        let goal = self.ctx("goal");
        let roles: Vec<&str> = self
            .ctx("roles")
            .split(", ")
            .filter(|r| !r.is_empty())
            .collect();
        let is_checker = |role: &str| ["test", "review", "qa"].iter().any(|w| role.contains(w));
        let builders: Vec<String> = roles
            .iter()
            .filter(|r| !is_checker(r))
            .map(|r| format!("{r}-task"))
            .collect();
        roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let depends_on: Vec<&String> = if is_checker(role) {
                    builders.iter().collect()
                } else {
                    Vec::new()
                };
                self.call(
                    i,
                    "create_task",
                    json!({
                        "id": format!("{role}-task"),
                        "role": role,
                        "description": format!("[simulated plan] As {role}, contribute your part to: {goal}"),
                        "depends_on": depends_on,
                    }),
                )
            })
            .collect()
    }

    fn work(&self) -> Vec<ToolCall> {
        let (swarm, task, agent) = (self.ctx("swarm"), self.ctx("task"), self.ctx("agent"));
        let mut calls = Vec::new();
        if self.turn == 0 {
            if self.can("memory_store") {
                calls.push(self.call(
                    calls.len(),
                    "memory_store",
                    json!({
                        "key": format!("{swarm}/{task}/notes"),
                        "value": format!("[simulated] working notes of {agent} on task {task}"),
                    }),
                ));
            }
            if self.can("write_file") {
                calls.push(self.call(
                    calls.len(),
                    "write_file",
                    json!({
                        "path": format!("{task}.md"),
                        "content": format!("# {task}\n\n[simulated] output of {agent}.\n"),
                    }),
                ));
            }
            if !calls.is_empty() {
                return calls;
            }
        }
        if self.can("send_message") {
            let to = match self.ctx("coordinator") {
                "" => self
                    .ctx("contacts")
                    .split([',', '.'])
                    .next()
                    .unwrap_or("")
                    .trim(),
                coordinator => coordinator,
            };
            if !to.is_empty() && to != agent {
                calls.push(self.call(
                    0,
                    "send_message",
                    json!({ "to": to, "body": format!("[simulated] {agent} finished its part of task {task}") }),
                ));
            }
        }
        calls
    }

    fn synthesize(&self) -> Vec<ToolCall> {
        if self.can("read_messages") {
            return vec![self.call(0, "read_messages", json!({}))];
        }
        Vec::new()
    }

    fn result(&self, phase: Phase) -> String {
        let (task, agent) = (self.ctx("task"), self.ctx("agent"));
        match phase {
            Phase::Plan => format!(
                "[simulated] {agent} planned the work for: {}",
                self.ctx("goal")
            ),
            Phase::Synthesize => format!(
                "[simulated] {agent} synthesised {} task results for: {}",
                self.first_message.matches("\n### ").count(),
                self.ctx("goal")
            ),
            Phase::Work => {
                let summary = self
                    .first_message
                    .lines()
                    .nth(2)
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect::<String>();
                format!("[simulated] {agent} completed task {task}: {summary}")
            }
        }
    }
}
