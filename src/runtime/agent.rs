//! The agent as a step machine: build the request -> LLM turn -> tool calls -> next turn, until
//! the task is completed, fails, or the run is stopped.
//!
//! Before each LLM request every event emitted so far is durable (a barrier on the journal), so
//! an agent that resumes a task continues from its last completed step and never asks the LLM
//! again for a turn it already has: only the call in flight can repeat. A completed turn is
//! durable before any of its tool calls with an effect outside the journal runs (a file write,
//! a command, an MCP call); calls whose effects are journaled events themselves (memory,
//! messages, tasks) or that change nothing run at once, since a crash takes back their effects
//! together with the turn. A call of a tool that is not safe to repeat is journaled as started
//! (durably) before it runs; on resume such a call with no result is not run again, and the
//! model is told its outcome is unknown.

use super::budget::{admit_call, Worst};
use super::context::{StopReason, SwarmContext};
use super::hook_dispatch::{fire, task_env};
use super::prompt::{self, Phase, TaskBrief};
use super::roster::AgentInfo;
use crate::llm::pricing::Rates;
use crate::llm::{estimate_tokens, ChatRequest, FinishReason, Message, ToolCall, ToolOutput};
use crate::memory::Ttl;
use crate::session::{Event, TaskStatus, CONTINUE_PROMPT};
use crate::spec::HookEvent;
use crate::tools::ToolSet;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The durability of an event not awaited yet.
type PendingAck =
    Pin<Box<dyn Future<Output = Result<(), crate::session::SessionError>> + Send + Sync>>;

/// How an agent's work on a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    Done,
    Failed,
    /// The run is stopping; the task stays resumable from its last completed step.
    Stopped(StopReason),
}

/// Identical tool calls (same name, same arguments) a task may make before it is stopped as a loop.
pub const LOOP_LIMIT: u32 = 3;

/// Memory entries of each kind (blockers, decisions) shown in a task's first message.
/// Continuation turns an answer cut off at `max_tokens` gets before the task fails.
const MAX_CONTINUATIONS: u32 = 3;

const MEMORY_NOTES: usize = 12;
const NOTE_CHARS: usize = 400;

pub use super::topology::phase_of;

/// Works on `task_id` as `agent` until it ends.
pub async fn work_on(ctx: Arc<SwarmContext>, task_id: String, agent: AgentInfo) -> TaskEnd {
    let mut step = match Step::start(&ctx, &task_id, &agent).await {
        Ok(step) => step,
        Err(error) => return fail(&ctx, &task_id, &agent.id, error).await,
    };
    step.run().await
}

struct Step {
    ctx: Arc<SwarmContext>,
    task: String,
    agent: AgentInfo,
    tools: Arc<ToolSet>,
    system: String,
    /// Shared by the requests of every agent of the role (see `ChatRequest::cache_key`).
    cache_key: Arc<str>,
    model: Option<String>,
    max_turns: u32,
    transcript: Vec<Message>,
    turns: u32,
    /// Why the last turn ended, and how many turns in a row were cut off at `max_tokens`.
    last_finish: Option<FinishReason>,
    cut_offs: u32,
    /// Hashed on every tool call (its name and encoded arguments).
    call_counts: HashMap<(String, Vec<u8>), u32, foldhash::fast::RandomState>,
    /// The tool schemas offered in this task's phase.
    schemas: Arc<[crate::llm::ToolSchema]>,
    /// The prices of the provider and model the last turn called, looked up once for the
    /// step's turns.
    rates: Option<(crate::spec::ProviderKind, String, Option<Rates>)>,
    /// Whom the step's LLM calls are for: the client's log lines (a retry) name agent and task.
    caller: crate::llm::caller::Caller,
    /// The last turn's `TurnCompleted`, until a tool call with an outside effect needs it durable.
    turn_ack: Option<PendingAck>,
}

impl Step {
    async fn start(
        ctx: &Arc<SwarmContext>,
        task_id: &str,
        agent: &AgentInfo,
    ) -> Result<Self, String> {
        let role = ctx
            .plan
            .roles
            .get(&agent.role)
            .ok_or_else(|| format!("role `{}` is not in the plan", agent.role))?;
        let tools = ctx.tools_of(&agent.id)?;
        if ctx.hooks.has(HookEvent::PreTask) {
            fire(
                ctx,
                HookEvent::PreTask,
                task_env(ctx, task_id, &agent.id, &agent.role, "running"),
            )
            .await;
        }

        let system = prompt::system_prompt(&role.prompt);
        let prompt = match ctx
            .recorder
            .read(|s| s.task(task_id).map(|t| t.transcript.is_empty()))
        {
            Some(true) => build_first_message(ctx, task_id, agent),
            Some(false) => String::new(),
            None => return Err(format!("task `{task_id}` does not exist")),
        };
        // Durable by the barrier before the first request.
        drop(ctx.recorder.emit(Event::TaskStarted {
            task: task_id.to_string(),
            agent: agent.id.clone(),
            system: (!prompt.is_empty()).then(|| system.clone()),
            prompt,
            at_ms: ctx.now_ms(),
        }));
        let ((transcript, turns, last_finish, cut_offs), phase) = ctx
            .recorder
            .read(|s| {
                s.task(task_id).map(|t| {
                    (
                        (
                            t.transcript.clone(),
                            t.turns,
                            t.last_finish.clone(),
                            t.cut_offs,
                        ),
                        phase_of(t),
                    )
                })
            })
            .unwrap_or((Default::default(), Phase::Work));
        let schemas: Arc<[crate::llm::ToolSchema]> = if tools
            .schemas()
            .iter()
            .all(|t| super::topology::offered_in_phase(phase, &t.name))
        {
            Arc::clone(tools.schemas())
        } else {
            tools
                .schemas()
                .iter()
                .filter(|t| super::topology::offered_in_phase(phase, &t.name))
                .cloned()
                .collect()
        };
        let mut call_counts = HashMap::default();
        for message in &transcript {
            if let Message::Assistant { tool_calls, .. } = message {
                for call in tool_calls {
                    *call_counts.entry(call_key(call)).or_insert(0) += 1;
                }
            }
        }
        Ok(Self {
            ctx: Arc::clone(ctx),
            task: task_id.to_string(),
            agent: agent.clone(),
            tools,
            system,
            cache_key: format!("{}/{}", ctx.plan.name, agent.role).into(),
            model: Some(ctx.llm.model_for(role)),
            max_turns: role.max_turns,
            transcript,
            turns,
            last_finish,
            cut_offs,
            call_counts,
            schemas,
            rates: None,
            turn_ack: None,
            caller: crate::llm::caller::Caller {
                agent: agent.id.as_str().into(),
                task: task_id.into(),
            },
        })
    }

    async fn run(&mut self) -> TaskEnd {
        loop {
            match self.finish_last_turn().await {
                Ok(Some(result)) => return self.complete(result),
                Ok(None) => {}
                Err(error) => return fail(&self.ctx, &self.task, &self.agent.id, error).await,
            }
            if self.turns >= self.max_turns {
                let error = format!(
                    "reached max_turns ({}) without completing; raise max_turns in the role or narrow the task",
                    self.max_turns
                );
                return fail(&self.ctx, &self.task, &self.agent.id, error).await;
            }
            if let Err(end) = self.take_turn().await {
                return end;
            }
        }
    }

    /// Runs the tool calls of the last turn that have no result yet (all of them after a fresh
    /// turn, the missing ones after a resume). Returns the task's result when the turn ends it.
    async fn finish_last_turn(&mut self) -> Result<Option<String>, String> {
        let last_assistant = self
            .transcript
            .iter()
            .rposition(|m| matches!(m, Message::Assistant { .. }));
        let Some(index) = last_assistant else {
            return Ok(None);
        };
        let Message::Assistant {
            text, tool_calls, ..
        } = &self.transcript[index]
        else {
            return Ok(None);
        };
        if self.cut_offs > MAX_CONTINUATIONS {
            return Err(format!(
                "the answer was still cut off at max_tokens ({}) after {MAX_CONTINUATIONS} continuations; raise llm.max_tokens or narrow the task",
                self.max_tokens()
            ));
        }
        if self.last_finish == Some(FinishReason::Refusal) {
            let words = text.as_deref().map(str::trim).filter(|t| !t.is_empty());
            return Err(format!(
                "the model refused: {}",
                words.unwrap_or("(it gave no reason)")
            ));
        }
        if tool_calls.is_empty() {
            if index + 1 < self.transcript.len() {
                // A continuation prompt follows a cut-off answer: the answer goes on.
                return Ok(None);
            }
            return Ok(Some(self.continued_text(index)));
        }
        let cut_off = self.last_finish == Some(FinishReason::Length);
        let calls = tool_calls.len();
        let mut answered: HashMap<String, bool> = HashMap::new();
        for m in &self.transcript[index + 1..] {
            if let Message::Tool {
                call_id, is_error, ..
            } = m
            {
                answered.insert(call_id.clone(), *is_error);
            }
        }
        let in_flight = self
            .ctx
            .recorder
            .read(|s| s.task(&self.task).map(|t| t.calls_in_flight.clone()))
            .unwrap_or_default();
        let mut result = None;
        for at in 0..calls {
            // Borrowed from the transcript, which only grows after it: the calls are not
            // copied for the loop.
            let Some(call) = call_at(&self.transcript, index, at) else {
                break;
            };
            if let Some(is_error) = answered.get(&call.id) {
                // Done before a crash; a successful complete_task still ends the task.
                if call.name == "complete_task" && !is_error {
                    result = complete_result(call);
                }
                continue;
            }
            let started = std::time::Instant::now();
            let output = if cut_off && call.arguments.get("_raw").is_some() {
                // The answer stopped inside this call's JSON: ask for it again.
                ToolOutput::error(format!(
                    "this call to {} was cut off at max_tokens ({}) before its arguments were complete; send it again, shorter or split into several calls",
                    call.name,
                    self.max_tokens()
                ))
            } else if in_flight.contains(&call.id) {
                // Started before the run stopped, with no result: it may or may not have had
                // its effect, so it is not run a second time.
                ToolOutput::error(in_doubt_message(&call.name))
            } else {
                if !self.tools.effects_journaled(&call.name) {
                    if let Some(ack) = self.turn_ack.take() {
                        ack.await.map_err(|e| format!("the journal failed: {e}"))?;
                    }
                }
                if !self.tools.repeat_safe(&call.name) {
                    let ack = self.ctx.recorder.emit(Event::ToolStarted {
                        task: self.task.clone(),
                        agent: self.agent.id.clone(),
                        call_id: call.id.clone(),
                        name: call.name.clone(),
                        at_ms: self.ctx.now_ms(),
                    });
                    ack.await.map_err(|e| format!("the journal failed: {e}"))?;
                }
                let outcome = self.tools.call(call).await;
                if let Some(text) = outcome.completes_task {
                    result = Some(text);
                }
                outcome.output
            };
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (call_id, name) = (call.id.clone(), call.name.clone());
            self.transcript.push(Message::Tool {
                call_id: call_id.clone(),
                name: name.clone(),
                content: output.content.clone(),
                is_error: output.is_error,
            });
            drop(self.ctx.recorder.emit(Event::ToolCompleted {
                task: self.task.clone(),
                agent: self.agent.id.clone(),
                call_id,
                name,
                content: output.content,
                is_error: output.is_error,
                duration_ms,
                at_ms: self.ctx.now_ms(),
            }));
        }
        // Not awaited: the barrier before the next request covers the results, and when the
        // turn ends the task, what covers its completion covers them too (see `complete`).
        Ok(result)
    }

    /// The `max_tokens` this agent's calls use.
    fn max_tokens(&self) -> u32 {
        match self.ctx.plan.llm.max_tokens {
            0 => self
                .ctx
                .llm
                .client(self.model.as_deref())
                .map_or(0, |c| c.config().max_tokens),
            n => n,
        }
    }

    /// The text of the answer ending at `index`, joined with the cut-off answers it continues.
    fn continued_text(&self, index: usize) -> String {
        let mut parts = Vec::new();
        let mut at = index;
        loop {
            if let Message::Assistant { text, .. } = &self.transcript[at] {
                parts.push(text.clone().unwrap_or_default());
            }
            let continues = at >= 2
                && matches!(&self.transcript[at - 1], Message::User { content } if content == CONTINUE_PROMPT)
                && matches!(&self.transcript[at - 2], Message::Assistant { tool_calls, .. } if tool_calls.is_empty());
            if !continues {
                break;
            }
            at -= 2;
        }
        parts.reverse();
        parts.concat()
    }

    async fn take_turn(&mut self) -> Result<(), TaskEnd> {
        let client = match self.ctx.llm.client(self.model.as_deref()) {
            Ok(client) => client,
            Err(e) => return Err(fail(&self.ctx, &self.task, &self.agent.id, e.to_string()).await),
        };
        // The request borrows the step's system prompt and transcript for the call (instead of
        // copying them every turn) and gives them back on every way out.
        let request = ChatRequest {
            model: client.config().model.clone(),
            system: std::mem::take(&mut self.system),
            messages: std::mem::take(&mut self.transcript),
            tools: Arc::clone(&self.schemas),
            max_tokens: self.ctx.plan.llm.max_tokens,
            cache_key: Some(Arc::clone(&self.cache_key)),
        };
        let config = client.config();
        let rates = match &self.rates {
            Some((kind, model, rates)) if *kind == config.kind && *model == config.model => *rates,
            _ => {
                let rates = crate::llm::price_table::prices_for(
                    self.ctx.plan.llm.prices,
                    config.kind,
                    &config.model,
                )
                .prices()
                .map(|p| Rates::new(&p, config.kind, &config.model));
                self.rates = Some((config.kind, config.model.clone(), rates));
                rates
            }
        };
        let max_tokens = u64::from(if request.max_tokens > 0 {
            request.max_tokens
        } else {
            config.max_tokens
        });
        let estimate =
            u64::from(estimate_tokens(&request)).saturating_sub(u64::from(request.max_tokens));
        let reservations = &self.ctx.reservations;
        let input = reservations.input_tokens(estimate);
        let worst = Worst {
            tokens: input + max_tokens,
            usd: rates.map_or(0.0, |r| r.worst_case(input, max_tokens)),
        };
        let admitted = tokio::select! {
            admitted = admit_call(&self.ctx, worst) => admitted,
            reason = self.ctx.control.wait_stop() => Err(reason),
        };
        let _reservation = match admitted {
            Ok(reservation) => reservation,
            Err(reason) => {
                (self.system, self.transcript) = (request.system, request.messages);
                return Err(TaskEnd::Stopped(reason));
            }
        };
        // Everything before this request is durable before it goes out.
        self.turn_ack = None;
        if let Err(e) = self.ctx.recorder.barrier().await {
            (self.system, self.transcript) = (request.system, request.messages);
            let error = format!("the journal failed: {e}");
            return Err(fail(&self.ctx, &self.task, &self.agent.id, error).await);
        }
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            // Boxed: the client's future is large, and the task's future would copy it on
            // every move.
            outcome = Box::pin(crate::llm::caller::on_behalf(
                self.caller.clone(),
                client.complete(&request),
            )) => Some(outcome),
            _ = self.ctx.control.wait_interrupt() => None,
        };
        (self.system, self.transcript) = (request.system, request.messages);
        let Some(outcome) = outcome else {
            let reason = self
                .ctx
                .control
                .stopped()
                .unwrap_or(StopReason::Interrupted);
            return Err(TaskEnd::Stopped(reason));
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                let retries = match &error {
                    crate::llm::LlmError::RetriesExhausted { attempts, .. } => {
                        attempts.saturating_sub(1)
                    }
                    _ => 0,
                };
                drop(self.ctx.recorder.emit(Event::LlmCallFailed {
                    task: self.task.clone(),
                    agent: self.agent.id.clone(),
                    error: error.to_string(),
                    retries,
                    latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    at_ms: self.ctx.now_ms(),
                }));
                let error = format!("the LLM call failed: {error}");
                return Err(fail(&self.ctx, &self.task, &self.agent.id, error).await);
            }
        };
        let response = outcome.response;
        reservations.observe_input(estimate, response.usage.prompt_tokens());
        let usd = rates.map_or(0.0, |r| r.cost(&response.usage));
        let usd_saved = rates.map_or(0.0, |r| r.saving(&response.usage));
        let ack = self.ctx.recorder.emit(Event::TurnCompleted {
            task: self.task.clone(),
            agent: self.agent.id.clone(),
            turn: self.turns,
            text: response.text.clone(),
            tool_calls: response.tool_calls.clone(),
            blocks: response.blocks.clone(),
            finish: response.finish.clone(),
            usage: response.usage,
            usd,
            usd_saved,
            latency_ms: outcome.latency_ms,
            retries: outcome.retries,
            at_ms: self.ctx.now_ms(),
        });
        self.turns += 1;
        let mut looping = None;
        for call in &response.tool_calls {
            let count = self.call_counts.entry(call_key(call)).or_insert(0);
            *count += 1;
            if *count >= LOOP_LIMIT {
                looping = Some(call.name.clone());
                break;
            }
        }
        let continued = response.tool_calls.is_empty();
        // The event has its copy: the transcript takes the response's own.
        self.transcript.push(Message::Assistant {
            text: response.text,
            tool_calls: response.tool_calls,
            blocks: response.blocks,
        });
        if response.finish == FinishReason::Length {
            self.cut_offs += 1;
            if continued {
                // The fold adds the same message to the stored transcript.
                self.transcript.push(Message::User {
                    content: CONTINUE_PROMPT.to_string(),
                });
            }
        } else {
            self.cut_offs = 0;
        }
        self.last_finish = Some(response.finish);
        self.turn_ack = Some(Box::pin(ack));
        if let Some(name) = looping {
            let error = format!(
                "loop guard: the agent called {name} with the same arguments {LOOP_LIMIT} times"
            );
            return Err(fail(&self.ctx, &self.task, &self.agent.id, error).await);
        }
        Ok(())
    }

    fn complete(&self, result: String) -> TaskEnd {
        let ctx = &self.ctx;
        let key = prompt::result_key(&ctx.plan.name, &self.task);
        if let Err(e) = ctx.memory.put(
            &ctx.plan.memory.namespace,
            &key,
            serde_json::Value::String(result.clone()),
            Ttl::Default,
        ) {
            tracing::warn!(
                "could not store the result of task {} in memory: {e}",
                self.task
            );
        }
        // Not awaited: the journal commits in order, so whatever the scheduler does with the
        // task's end next (an agent's next request, a dependent's first) rests on a barrier
        // that covers it, and the run's closing snapshot covers the last. Waiting here would
        // put a second commit between a task's answer and the agent's next task.
        drop(ctx.recorder.emit(Event::TaskCompleted {
            task: self.task.clone(),
            agent: self.agent.id.clone(),
            result,
            at_ms: ctx.now_ms(),
        }));
        if ctx.store_failed() {
            return TaskEnd::Stopped(StopReason::StoreFailed);
        }
        TaskEnd::Done
    }
}

/// The result the model gets for a call whose outcome is unknown.
pub fn in_doubt_message(tool: &str) -> String {
    format!(
        "outcome unknown: the run stopped while this `{tool}` call was running, so it may or may not have taken effect. It was not run again. Check its effect (for example read the file, list the state or query the system) before deciding whether to repeat it."
    )
}

/// The `at`-th tool call of the assistant turn at `index` of `transcript`.
fn call_at(transcript: &[Message], index: usize, at: usize) -> Option<&ToolCall> {
    match transcript.get(index)? {
        Message::Assistant { tool_calls, .. } => tool_calls.get(at),
        _ => None,
    }
}

/// A tool call's name and its arguments as compact JSON (the bytes `to_string` gives, written
/// without the formatting machinery): equal for the same call repeated.
fn call_key(call: &ToolCall) -> (String, Vec<u8>) {
    let mut arguments = Vec::with_capacity(64);
    crate::llm::encode::write_value(&mut arguments, &call.arguments);
    (call.name.clone(), arguments)
}

fn complete_result(call: &ToolCall) -> Option<String> {
    match call.arguments.get("result")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

async fn fail(ctx: &SwarmContext, task: &str, agent: &str, error: String) -> TaskEnd {
    // A task whose step could not be recorded has not failed: the run stops, and a resume
    // takes the task up from its last recorded step.
    if ctx.store_failed() {
        return TaskEnd::Stopped(StopReason::StoreFailed);
    }
    let ack = ctx.recorder.emit(Event::TaskFailed {
        task: task.to_string(),
        agent: Some(agent.to_string()),
        error,
        at_ms: ctx.now_ms(),
    });
    if ack.await.is_err() && ctx.store_failed() {
        return TaskEnd::Stopped(StopReason::StoreFailed);
    }
    TaskEnd::Failed
}

/// The first message of a task: the task, the context, what it builds on.
fn build_first_message(ctx: &SwarmContext, task_id: &str, agent: &AgentInfo) -> String {
    let plan = &ctx.plan;
    let namespace = plan.memory.namespace.as_str();
    let mut memory_notes = Vec::new();
    for pattern in &ctx.note_patterns {
        let records = ctx.memory.search_pattern(Some(namespace), pattern);
        for record in records.into_iter().take(MEMORY_NOTES) {
            let mut value = record.entry.value.to_string();
            if value.len() > NOTE_CHARS {
                let cut = (0..=NOTE_CHARS)
                    .rev()
                    .find(|i| value.is_char_boundary(*i))
                    .unwrap_or(0);
                value.truncate(cut);
                value.push('…');
            }
            memory_notes.push((format!("{}/{}", record.namespace, record.key), value));
        }
    }
    let contacts = ctx.contacts_of(&agent.id);
    let topology = match ctx.roster.topology() {
        crate::spec::Topology::Mesh => "mesh",
        crate::spec::Topology::Hierarchical => "hierarchical",
    };
    let goal = ctx.goal.as_deref();
    let mut read_up_to = None;
    let text = ctx.recorder.read(|s| {
        let Some(task) = s.task(task_id) else {
            return String::new();
        };
        let phase = phase_of(task);
        let mut dependency_results = Vec::new();
        let mut dependency_failures = Vec::new();
        for dep in &task.spec.depends_on {
            if let Some(d) = s.task(dep) {
                match d.status {
                    TaskStatus::Done => dependency_results.push((
                        dep.clone(),
                        d.agent.clone().unwrap_or_default(),
                        d.result.clone().unwrap_or_default(),
                    )),
                    TaskStatus::Failed => {
                        dependency_failures.push((dep.clone(), d.error.clone().unwrap_or_default()))
                    }
                    _ => {}
                }
            }
        }
        let messages: Vec<(String, String)> = s
            .unread_for(&agent.id)
            .map(|m| {
                read_up_to = Some(m.id);
                (m.from.clone(), m.body.clone())
            })
            .collect();
        prompt::task_message(&TaskBrief {
            swarm: &plan.name,
            session: &ctx.session_id,
            topology,
            goal,
            task_id,
            role: &agent.role,
            agent: &agent.id,
            phase,
            description: &task.spec.description,
            namespace,
            coordinator: ctx.roster.coordinator(),
            contacts,
            assignable_roles: if phase == Phase::Plan {
                ctx.roster.worker_roles()
            } else {
                Vec::new()
            },
            dependency_results,
            dependency_failures,
            memory_notes,
            messages,
            handoff: plan
                .continues_from
                .as_ref()
                .map(|c| (c.session.as_str(), c.handoff.as_str())),
        })
    });
    if let Some(up_to) = read_up_to {
        drop(ctx.recorder.emit(Event::MessagesRead {
            agent: agent.id.clone(),
            up_to,
        }));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop guard's key holds the arguments' compact JSON text, as `to_string` writes it.
    #[test]
    fn a_call_key_holds_the_arguments_as_compact_json() {
        for arguments in [
            serde_json::json!({}),
            serde_json::json!({"key": "load/0", "value": "note \"0\"\n", "n": [1, 2.5, -3, null, true]}),
            serde_json::json!({"z": {"nested": {"ü": "日本"}}, "a": 1e300}),
            serde_json::json!({"_raw": "{not json"}),
        ] {
            let call = ToolCall {
                id: "c".into(),
                name: "memory_store".into(),
                arguments: arguments.clone(),
            };
            let (name, text) = call_key(&call);
            assert_eq!(name, "memory_store");
            assert_eq!(text, arguments.to_string().into_bytes());
        }
    }
}
