//! The live state of a session: the events applied in order. Memory is not here: it lives in the
//! [`crate::memory::MemoryStore`], which applies the `MemoryChanged` events itself.

use super::event::{BudgetResource, Event, SessionStatus, SpendBase};
use crate::llm::{FinishReason, Message, Usage};
use crate::spec::TaskSpec;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// Where a task is. A task whose dependency failed is `Failed` with an error that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
        }
    }
}

/// A task and everything done on it so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub spec: TaskSpec,
    pub status: TaskStatus,
    pub created_by: Option<String>,
    /// The agent working on it, or that did.
    pub agent: Option<String>,
    /// The conversation after the system prompt: the first user message, then turns and tool results.
    pub transcript: Vec<Message>,
    /// Completed LLM turns.
    pub turns: u32,
    pub result: Option<String>,
    pub error: Option<String>,
    pub usage: Usage,
    pub usd: f64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// Why the last turn ended: a refusal or a cut-off is never a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_finish: Option<FinishReason>,
    /// Turns in a row cut off at `max_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut_offs: u32,
    /// Calls of tools not safe to repeat that started and have no result yet (by call id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls_in_flight: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The user message that follows an answer cut off at `max_tokens`, so the next turn continues
/// it. Part of the fold, so a resumed task sees the same conversation.
pub const CONTINUE_PROMPT: &str =
    "Your answer was cut off at the output token limit. Continue exactly where it stopped, without repeating anything.";

/// Counters of one agent, or of the whole swarm. Every number comes from the API's usage field or
/// a clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub llm_calls: u64,
    pub failed_calls: u64,
    /// The whole prompt of every call, cached or not.
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The parts of `tokens_in` written to and read from the prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    pub usd: f64,
    /// What the prompt cache saved, in USD (see `Event::TurnCompleted`).
    #[serde(default)]
    pub usd_saved: f64,
    pub retries: u64,
    pub tool_calls: u64,
    /// Milliseconds spent waiting for the LLM.
    pub llm_ms: u64,
    pub tasks_done: u64,
    pub tasks_failed: u64,
}

impl Counters {
    pub fn tokens(&self) -> u64 {
        self.tokens_in + self.tokens_out
    }
}

/// A message between agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMessage {
    pub id: u64,
    pub from: String,
    pub to: String,
    pub body: String,
    pub at_ms: u64,
}

/// One run of a session: the first `swarm run`, or a `swarm resume`, with what it called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started_at_ms: u64,
    pub provider: String,
    pub model: String,
    /// The endpoint called; empty for the simulated provider.
    pub base_url: String,
    /// When the run ended and how; `None` while it runs, or when its process was killed.
    pub ended_at_ms: Option<u64>,
    pub status: Option<SessionStatus>,
}

impl RunRecord {
    /// `openai, model gpt-4o-mini at https://api.openai.com/v1`: what the run called.
    pub fn describe(&self) -> String {
        if self.base_url.is_empty() {
            format!("{}, model {}", self.provider, self.model)
        } else {
            format!(
                "{}, model {} at {}",
                self.provider, self.model, self.base_url
            )
        }
    }
}

/// The live state of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionState {
    pub session: String,
    pub swarm: String,
    pub goal: Option<String>,
    pub provider: String,
    pub model: String,
    pub status: Option<SessionStatus>,
    pub end_reason: Option<String>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, TaskState>,
    /// Task ids in the order they were created.
    pub task_order: Vec<String>,
    pub messages: Vec<AgentMessage>,
    /// Per agent: the id of the last message it has read.
    pub read_up_to: BTreeMap<String, u64>,
    pub totals: Counters,
    pub per_agent: BTreeMap<String, Counters>,
    pub started_at_ms: u64,
    /// Active time of earlier runs of this session.
    pub prior_elapsed_ms: u64,
    /// When the current run began, and the last event seen in it.
    pub run_started_at_ms: u64,
    pub last_event_at_ms: u64,
    /// Resources whose warning has been given since the budget was last renewed.
    pub budget_warned: BTreeSet<BudgetResource>,
    pub budget_base: SpendBase,
    pub runs: u32,
    /// Every run of the session, oldest first.
    #[serde(default)]
    pub run_history: Vec<RunRecord>,
    /// Per role, the system prompt last journaled with a `TaskStarted`: a task of that role
    /// starting under the same prompt does not journal it again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_prompts: BTreeMap<String, String>,
}

impl SessionState {
    /// Active time across every run of the session.
    pub fn elapsed_ms(&self) -> u64 {
        self.prior_elapsed_ms + self.last_event_at_ms.saturating_sub(self.run_started_at_ms)
    }

    /// Wall-clock time from the session's start to its last event, pauses between runs included.
    pub fn wall_span_ms(&self) -> u64 {
        self.last_event_at_ms.saturating_sub(self.started_at_ms)
    }

    /// Spend so far, on the same scale as [`SpendBase`].
    pub fn spend(&self) -> SpendBase {
        SpendBase {
            tokens: self.totals.tokens(),
            llm_calls: self.totals.llm_calls,
            elapsed_ms: self.elapsed_ms(),
            usd: self.totals.usd,
        }
    }

    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.tasks.get(id)
    }

    /// Tasks in creation order.
    pub fn tasks_in_order(&self) -> impl Iterator<Item = &TaskState> {
        self.task_order.iter().filter_map(|id| self.tasks.get(id))
    }

    pub fn count(&self, status: TaskStatus) -> usize {
        self.tasks.values().filter(|t| t.status == status).count()
    }

    /// Applies an event about to be journaled: a `TaskStarted` whose system prompt is the one
    /// last journaled for its task's role loses it (readers of the journal put it back, see
    /// `history::SystemPrompts`); then it is applied as [`SessionState::apply`] does, with one
    /// look-up of the task for both.
    pub fn apply_new(&mut self, event: &mut Event) {
        let Event::TaskStarted {
            task,
            agent,
            prompt,
            system,
            at_ms,
        } = event
        else {
            return self.apply(event);
        };
        self.note_time(*at_ms);
        if self.start_task(task, agent, prompt, system.as_ref(), *at_ms) {
            *system = None;
        }
    }

    /// Applies `add` to the totals and to the counters of `agent`.
    fn add_counts(&mut self, agent: &str, add: impl Fn(&mut Counters)) {
        add(&mut self.totals);
        add_to_agent(&mut self.per_agent, agent, add);
    }

    /// Moves the last event's time to `at_ms` if later.
    fn note_time(&mut self, at_ms: u64) {
        self.last_event_at_ms = self.last_event_at_ms.max(at_ms);
    }

    /// Applies a `TaskStarted`; returns whether `system` is the prompt already known for the
    /// task's role.
    fn start_task(
        &mut self,
        task: &str,
        agent: &str,
        prompt: &str,
        system: Option<&String>,
        at_ms: u64,
    ) -> bool {
        let Some(t) = self.tasks.get_mut(task) else {
            return false;
        };
        let mut known = false;
        if let Some(system) = system {
            match self.system_prompts.get_mut(&t.spec.role) {
                Some(current) if current == system => known = true,
                Some(current) => current.clone_from(system),
                None => {
                    self.system_prompts
                        .insert(t.spec.role.clone(), system.clone());
                }
            }
        }
        t.status = TaskStatus::Running;
        t.agent = Some(agent.to_string());
        if t.transcript.is_empty() {
            t.transcript.push(Message::User {
                content: prompt.to_string(),
            });
            t.started_at_ms = Some(at_ms);
        }
        known
    }

    /// Applies one event. Memory events are ignored here (the memory store applies them).
    pub fn apply(&mut self, event: &Event) {
        // The previous run's last event, read before this event moves it: a resume counts the
        // earlier run up to there, never the pause between the runs.
        let previous_event_at_ms = self.last_event_at_ms;
        if let Some(at) = event.at_ms() {
            self.note_time(at);
        }
        match event {
            Event::SessionStarted {
                session,
                swarm,
                goal,
                provider,
                model,
                base_url,
                at_ms,
            } => {
                self.run_history = vec![RunRecord {
                    started_at_ms: *at_ms,
                    provider: provider.clone(),
                    model: model.clone(),
                    base_url: base_url.clone(),
                    ended_at_ms: None,
                    status: None,
                }];
                self.session = session.clone();
                self.swarm = swarm.clone();
                self.goal = goal.clone();
                self.provider = provider.clone();
                self.model = model.clone();
                self.status = Some(SessionStatus::Running);
                self.started_at_ms = *at_ms;
                self.run_started_at_ms = *at_ms;
                self.last_event_at_ms = *at_ms;
                self.runs = 1;
            }
            Event::SessionResumed {
                provider,
                model,
                base_url,
                at_ms,
            } => {
                self.run_history.push(RunRecord {
                    started_at_ms: *at_ms,
                    provider: provider.clone(),
                    model: model.clone(),
                    base_url: base_url.clone(),
                    ended_at_ms: None,
                    status: None,
                });
                // The previous run ended at its last event (a killed process writes no end event).
                self.prior_elapsed_ms += previous_event_at_ms
                    .min(*at_ms)
                    .saturating_sub(self.run_started_at_ms);
                self.run_started_at_ms = *at_ms;
                self.last_event_at_ms = *at_ms;
                self.provider = provider.clone();
                self.model = model.clone();
                self.status = Some(SessionStatus::Running);
                self.end_reason = None;
                self.runs += 1;
                // Work that was in flight goes back to the queue; its transcript is kept.
                for task in self.tasks.values_mut() {
                    if task.status == TaskStatus::Running {
                        task.status = TaskStatus::Pending;
                    }
                }
            }
            Event::TaskCreated {
                task,
                created_by,
                at_ms: _,
            } => {
                // One search of the map (creation order is often key order: each search
                // walks to the far end).
                if let Entry::Vacant(slot) = self.tasks.entry(task.id.clone()) {
                    self.task_order.push(task.id.clone());
                    slot.insert(TaskState {
                        spec: task.clone(),
                        status: TaskStatus::Pending,
                        created_by: created_by.clone(),
                        agent: None,
                        transcript: Vec::new(),
                        turns: 0,
                        result: None,
                        error: None,
                        usage: Usage::default(),
                        usd: 0.0,
                        started_at_ms: None,
                        finished_at_ms: None,
                        last_finish: None,
                        cut_offs: 0,
                        calls_in_flight: Vec::new(),
                    });
                }
            }
            Event::TaskStarted {
                task,
                agent,
                prompt,
                system,
                at_ms,
            } => {
                self.start_task(task, agent, prompt, system.as_ref(), *at_ms);
            }
            Event::TurnCompleted {
                task,
                agent,
                text,
                tool_calls,
                blocks,
                finish,
                usage,
                usd,
                usd_saved,
                latency_ms,
                retries,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.transcript.push(Message::Assistant {
                        text: text.clone(),
                        tool_calls: tool_calls.clone(),
                        blocks: blocks.clone(),
                    });
                    if *finish == FinishReason::Length {
                        t.cut_offs += 1;
                        if tool_calls.is_empty() {
                            t.transcript.push(Message::User {
                                content: CONTINUE_PROMPT.to_string(),
                            });
                        }
                    } else {
                        t.cut_offs = 0;
                    }
                    t.last_finish = Some(finish.clone());
                    t.turns += 1;
                    t.usage.add(usage);
                    t.usd += usd;
                }
                self.add_counts(agent, |c| {
                    c.llm_calls += 1;
                    c.tokens_in += usage.prompt_tokens();
                    c.tokens_out += usage.output_tokens;
                    c.cache_write_tokens += usage.cache_write_tokens;
                    c.cache_read_tokens += usage.cache_read_tokens;
                    c.usd += usd;
                    c.usd_saved += usd_saved;
                    c.retries += u64::from(*retries);
                    c.llm_ms += latency_ms;
                });
            }
            Event::LlmCallFailed { agent, retries, .. } => {
                self.add_counts(agent, |c| {
                    c.failed_calls += 1;
                    c.retries += u64::from(*retries);
                });
            }
            Event::ToolStarted { task, call_id, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    if !t.calls_in_flight.contains(call_id) {
                        t.calls_in_flight.push(call_id.clone());
                    }
                }
            }
            Event::ToolCompleted {
                task,
                agent,
                call_id,
                name,
                content,
                is_error,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.calls_in_flight.retain(|id| id != call_id);
                    t.transcript.push(Message::Tool {
                        call_id: call_id.clone(),
                        name: name.clone(),
                        content: content.clone(),
                        is_error: *is_error,
                    });
                }
                self.add_counts(agent, |c| c.tool_calls += 1);
            }
            Event::TaskCompleted {
                task,
                agent,
                result,
                at_ms,
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.status = TaskStatus::Done;
                    t.result = Some(result.clone());
                    t.finished_at_ms = Some(*at_ms);
                }
                self.add_counts(agent, |c| c.tasks_done += 1);
            }
            Event::TaskFailed {
                task,
                agent,
                error,
                at_ms,
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.status = TaskStatus::Failed;
                    t.error = Some(error.clone());
                    t.finished_at_ms = Some(*at_ms);
                }
                self.totals.tasks_failed += 1;
                if let Some(agent) = agent {
                    add_to_agent(&mut self.per_agent, agent, |c| c.tasks_failed += 1);
                }
            }
            Event::TaskRetried { task, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    if t.status == TaskStatus::Failed {
                        t.status = TaskStatus::Pending;
                        t.error = None;
                        t.finished_at_ms = None;
                        t.transcript.clear();
                        t.turns = 0;
                        t.last_finish = None;
                        t.cut_offs = 0;
                        // The calls of the failed attempt belong to its conversation, which is
                        // gone: a call of the new one with a reused id is not in doubt.
                        t.calls_in_flight.clear();
                    }
                }
            }
            Event::MemoryChanged { .. } => {}
            Event::MessageSent {
                id,
                from,
                to,
                body,
                at_ms,
            } => self.messages.push(AgentMessage {
                id: *id,
                from: from.clone(),
                to: to.clone(),
                body: body.clone(),
                at_ms: *at_ms,
            }),
            Event::MessagesRead { agent, up_to } => {
                let cursor = self.read_up_to.entry(agent.clone()).or_default();
                *cursor = (*cursor).max(*up_to);
            }
            Event::BudgetWarning { resource, .. } => {
                self.budget_warned.insert(*resource);
            }
            Event::BudgetExceeded { .. } => {}
            Event::BudgetExtended { base, .. } => {
                self.budget_base = *base;
                self.budget_warned.clear();
            }
            Event::HookFailed { .. } | Event::Checkpoint { .. } => {}
            Event::SessionEnded {
                status,
                reason,
                at_ms,
            } => {
                if let Some(run) = self.run_history.last_mut() {
                    run.ended_at_ms = Some(*at_ms);
                    run.status = Some(*status);
                }
                self.status = Some(*status);
                self.end_reason = Some(reason.clone());
            }
        }
    }

    /// Messages addressed to `agent` that it has not read yet.
    pub fn unread_for<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a AgentMessage> {
        let cursor = self.read_up_to.get(agent).copied().unwrap_or(0);
        self.messages
            .iter()
            .filter(move |m| m.to == agent && m.id > cursor)
    }

    /// The id the next message will get.
    pub fn next_message_id(&self) -> u64 {
        self.messages.last().map_or(1, |m| m.id + 1)
    }
}

/// Applies `add` to the counters of `agent`, new ones if it has none yet: its id is copied only
/// then, not on every event.
fn add_to_agent(
    per_agent: &mut BTreeMap<String, Counters>,
    agent: &str,
    add: impl Fn(&mut Counters),
) {
    match per_agent.get_mut(agent) {
        Some(counters) => add(counters),
        None => add(per_agent.entry(agent.to_string()).or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(at_ms: u64) -> Event {
        Event::SessionStarted {
            session: "s".into(),
            swarm: "w".into(),
            goal: None,
            provider: "p".into(),
            model: "m".into(),
            base_url: String::new(),
            at_ms,
        }
    }

    #[test]
    fn the_pause_between_runs_is_not_active_time() {
        let mut state = SessionState::default();
        state.apply(&started(1_000));
        state.apply(&Event::Checkpoint { at_ms: 61_000 });
        state.apply(&Event::SessionEnded {
            status: SessionStatus::Interrupted,
            reason: "interrupted".into(),
            at_ms: 61_000,
        });
        // Resumed twelve hours later, then ten more seconds of work.
        let morning = 61_000 + 12 * 3_600_000;
        state.apply(&Event::SessionResumed {
            provider: "p".into(),
            model: "m".into(),
            base_url: String::new(),
            at_ms: morning,
        });
        assert_eq!(state.elapsed_ms(), 60_000);
        state.apply(&Event::Checkpoint {
            at_ms: morning + 10_000,
        });
        assert_eq!(state.elapsed_ms(), 70_000);
        assert_eq!(state.wall_span_ms(), morning + 10_000 - 1_000);
    }

    #[test]
    fn a_retried_task_has_no_calls_in_flight_from_its_failed_attempt() {
        let mut state = SessionState::default();
        state.apply(&Event::task_created("t", "r"));
        state.apply(&Event::ToolStarted {
            task: "t".into(),
            agent: "a".into(),
            call_id: "call_0".into(),
            name: "write_file".into(),
            at_ms: 2,
        });
        state.apply(&Event::TaskFailed {
            task: "t".into(),
            agent: Some("a".into()),
            error: "stopped".into(),
            at_ms: 3,
        });
        assert_eq!(state.tasks["t"].calls_in_flight, ["call_0"]);
        state.apply(&Event::TaskRetried {
            task: "t".into(),
            at_ms: 4,
        });
        assert!(state.tasks["t"].calls_in_flight.is_empty());
        assert_eq!(state.tasks["t"].status, TaskStatus::Pending);
    }

    /// `apply_new` drops a system prompt already journaled for the role, keeps a new or changed
    /// one, and leaves the state as `apply` of the event as journaled does.
    #[test]
    fn a_known_system_prompt_is_dropped_from_a_new_task_started() {
        let started = |id: &str, system: &str, at_ms: u64| Event::TaskStarted {
            task: id.into(),
            agent: format!("agent-{id}"),
            prompt: format!("do {id}"),
            system: Some(system.into()),
            at_ms,
        };
        let mut live = SessionState::default();
        let mut replayed = SessionState::default();
        let mut journaled = Vec::new();
        let mut events = vec![started("missing", "s", 2)];
        events.extend(
            ["a", "b", "c", "d", "e"]
                .map(|id| Event::task_created(id, if id == "e" { "other" } else { "r" })),
        );
        events.extend([
            started("a", "s1", 3),
            started("b", "s1", 4),
            started("c", "s2", 5),
            started("d", "s2", 6),
            started("e", "s2", 7),
            started("a", "s2", 8),
        ]);
        for mut event in events {
            live.apply_new(&mut event);
            replayed.apply(&event);
            journaled.push(event);
        }
        let systems: Vec<Option<&str>> = journaled
            .iter()
            .filter_map(|e| match e {
                Event::TaskStarted { system, .. } => Some(system.as_deref()),
                _ => None,
            })
            .collect();
        assert_eq!(
            systems,
            [
                Some("s"),
                Some("s1"),
                None,
                Some("s2"),
                None,
                Some("s2"),
                None
            ]
        );
        assert_eq!(live, replayed);
        assert_eq!(live.last_event_at_ms, 8);
        assert_eq!(live.system_prompts["r"], "s2");
        assert_eq!(live.system_prompts["other"], "s2");
        assert_eq!(live.tasks["a"].agent.as_deref(), Some("agent-a"));
        assert_eq!(
            live.tasks["a"].transcript,
            [Message::User {
                content: "do a".into()
            }]
        );
        assert_eq!(live.tasks["a"].started_at_ms, Some(3));
    }

    /// A resumed task's transcript holds the thinking blocks its turns received, so its next
    /// request sends them back as the API requires: they survive the journal's encoding and
    /// the fold.
    #[test]
    fn thinking_blocks_survive_the_journal_into_the_transcript() {
        let block = serde_json::json!({"type": "thinking", "thinking": "hm", "signature": "c2ln"});
        let turn = Event::TurnCompleted {
            task: "t".into(),
            agent: "a".into(),
            turn: 0,
            text: None,
            tool_calls: Vec::new(),
            blocks: vec![block.clone()],
            finish: FinishReason::Stop,
            usage: crate::llm::Usage::new(1, 1),
            usd: 0.0,
            usd_saved: 0.0,
            latency_ms: 1,
            retries: 0,
            at_ms: 2,
        };
        let stored: Event = serde_json::from_str(&serde_json::to_string(&turn).unwrap()).unwrap();
        let mut state = SessionState::default();
        state.apply(&started(1));
        state.apply(&Event::task_created("t", "r"));
        state.apply(&stored);
        let transcript = &state.tasks["t"].transcript;
        assert!(
            matches!(transcript.last(), Some(Message::Assistant { blocks, .. }) if blocks == &vec![block]),
            "{transcript:?}"
        );
    }
}
