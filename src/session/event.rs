//! The events of a session. Each is applied to [`super::SessionState`] and appended to the journal.

use crate::llm::{FinishReason, ToolCall, Usage};
use crate::memory::MemoryChange;
use crate::spec::TaskSpec;
use serde::{Deserialize, Serialize};

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// How a session ended, or that it is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Running,
    Completed,
    Failed,
    Interrupted,
    BudgetStopped,
    /// Submitted to a run queue; no runner has taken it yet.
    Queued,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Interrupted => "interrupted",
            SessionStatus::BudgetStopped => "budget_stopped",
            SessionStatus::Queued => "queued",
        }
    }
}

/// The budget resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetResource {
    Tokens,
    LlmCalls,
    Time,
    Usd,
}

impl BudgetResource {
    pub const ALL: [BudgetResource; 4] = [
        BudgetResource::Tokens,
        BudgetResource::LlmCalls,
        BudgetResource::Time,
        BudgetResource::Usd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetResource::Tokens => "tokens",
            BudgetResource::LlmCalls => "llm_calls",
            BudgetResource::Time => "time",
            BudgetResource::Usd => "usd",
        }
    }
}

/// Spend at the moment a budget was renewed; later ratios count from here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendBase {
    pub tokens: u64,
    pub llm_calls: u64,
    pub elapsed_ms: u64,
    pub usd: f64,
}

/// One change of a session's state. `at_ms` is wall-clock milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The first event of a session.
    SessionStarted {
        session: String,
        swarm: String,
        goal: Option<String>,
        provider: String,
        model: String,
        /// The endpoint called; empty for the simulated provider.
        #[serde(default)]
        base_url: String,
        at_ms: u64,
    },
    /// A runner took the session up again: a new run, possibly with another provider, model or
    /// endpoint.
    SessionResumed {
        provider: String,
        model: String,
        #[serde(default)]
        base_url: String,
        at_ms: u64,
    },
    /// A task joined the graph: predefined at start, or created by a coordinator.
    TaskCreated {
        task: TaskSpec,
        created_by: Option<String>,
        at_ms: u64,
    },
    /// An agent took a task; `prompt` is the first user message of its transcript.
    TaskStarted {
        task: String,
        agent: String,
        prompt: String,
        /// The system prompt the agent works under, when its transcript starts here (absent in
        /// journals written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
        at_ms: u64,
    },
    /// An LLM turn completed. Durable before any of its tool calls run.
    TurnCompleted {
        task: String,
        agent: String,
        /// 0-based turn number within the task.
        turn: u32,
        text: Option<String>,
        tool_calls: Vec<ToolCall>,
        /// Content blocks to send back as received (thinking with its signature); journaled so
        /// a resumed task sends them too. Absent in older journals.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<serde_json::Value>,
        finish: FinishReason,
        usage: Usage,
        usd: f64,
        /// What the prompt cache saved on this call against the same tokens uncached, in USD
        /// (negative when it wrote more than it read). Zero in journals from before caching.
        #[serde(default, skip_serializing_if = "is_zero")]
        usd_saved: f64,
        latency_ms: u64,
        retries: u32,
        at_ms: u64,
    },
    /// A call to the LLM failed for good (after its retries).
    LlmCallFailed {
        task: String,
        agent: String,
        error: String,
        retries: u32,
        /// Time spent on the call and its retries (0 in older journals).
        #[serde(default)]
        latency_ms: u64,
        at_ms: u64,
    },
    /// A call of a tool that is not safe to repeat is about to run; durable before it runs. On
    /// resume, a started call with no `ToolCompleted` is not run again: its outcome is unknown.
    ToolStarted {
        task: String,
        agent: String,
        call_id: String,
        name: String,
        at_ms: u64,
    },
    /// A tool call finished. Durable before the next turn.
    ToolCompleted {
        task: String,
        agent: String,
        call_id: String,
        name: String,
        content: String,
        is_error: bool,
        /// How long the tool ran (0 in older journals).
        #[serde(default)]
        duration_ms: u64,
        at_ms: u64,
    },
    TaskCompleted {
        task: String,
        agent: String,
        result: String,
        at_ms: u64,
    },
    /// A task failed; `agent` is `None` when it never ran (a dependency failed).
    TaskFailed {
        task: String,
        agent: Option<String>,
        error: String,
        at_ms: u64,
    },
    /// A failed task goes back to the queue with a fresh transcript (resuming a failed session).
    TaskRetried {
        task: String,
        at_ms: u64,
    },
    MemoryChanged {
        change: MemoryChange,
    },
    MessageSent {
        id: u64,
        from: String,
        to: String,
        body: String,
        at_ms: u64,
    },
    /// An agent read its inbox up to and including message `up_to`.
    MessagesRead {
        agent: String,
        up_to: u64,
    },
    BudgetWarning {
        resource: BudgetResource,
        used: f64,
        limit: f64,
        at_ms: u64,
    },
    BudgetExceeded {
        resource: BudgetResource,
        used: f64,
        limit: f64,
        at_ms: u64,
    },
    /// `resume --extend-budget`: the budget counts again from this spend.
    BudgetExtended {
        base: SpendBase,
        at_ms: u64,
    },
    HookFailed {
        hook: String,
        error: String,
        at_ms: u64,
    },
    Checkpoint {
        at_ms: u64,
    },
    SessionEnded {
        status: SessionStatus,
        reason: String,
        at_ms: u64,
    },
}

impl Event {
    /// A `TaskCreated` of task `id` for `role`, as tests need one.
    #[cfg(test)]
    pub(crate) fn task_created(id: &str, role: &str) -> Event {
        Event::TaskCreated {
            task: crate::spec::TaskSpec {
                id: id.into(),
                role: role.into(),
                description: "d".into(),
                depends_on: Vec::new(),
            },
            created_by: None,
            at_ms: 1,
        }
    }

    /// The wall-clock time of the event, where it has one.
    pub fn at_ms(&self) -> Option<u64> {
        match self {
            Event::SessionStarted { at_ms, .. }
            | Event::SessionResumed { at_ms, .. }
            | Event::TaskCreated { at_ms, .. }
            | Event::TaskStarted { at_ms, .. }
            | Event::TurnCompleted { at_ms, .. }
            | Event::LlmCallFailed { at_ms, .. }
            | Event::ToolStarted { at_ms, .. }
            | Event::ToolCompleted { at_ms, .. }
            | Event::TaskCompleted { at_ms, .. }
            | Event::TaskFailed { at_ms, .. }
            | Event::TaskRetried { at_ms, .. }
            | Event::MessageSent { at_ms, .. }
            | Event::BudgetWarning { at_ms, .. }
            | Event::BudgetExceeded { at_ms, .. }
            | Event::BudgetExtended { at_ms, .. }
            | Event::HookFailed { at_ms, .. }
            | Event::Checkpoint { at_ms }
            | Event::SessionEnded { at_ms, .. } => Some(*at_ms),
            Event::MemoryChanged { .. } | Event::MessagesRead { .. } => None,
        }
    }
}

/// A journaled event and its place in the session's journal: `seq` grows with every event of
/// the session, so whoever reads the stream (observers, `--json` lines, followers of the state
/// store) can say where they are and ask for what came after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub seq: u64,
    #[serde(flatten)]
    pub event: std::sync::Arc<Event>,
}

impl std::ops::Deref for Envelope {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}
