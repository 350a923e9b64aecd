//! Provider-neutral request and response types. Each provider maps these to and from its own
//! wire format.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The parsed JSON arguments (an object). Arguments that are not valid JSON arrive as
    /// `{"_raw": "<text>"}` so the tool can report the problem to the model.
    pub arguments: serde_json::Value,
}

/// A message of the conversation after the system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        content: String,
    },
    Assistant {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        /// The turn's content blocks exactly as the API sent them, when they hold blocks the
        /// runtime does not model (Anthropic `thinking` with its `signature`,
        /// `redacted_thinking`, server tool blocks): the API wants them back unchanged on the
        /// next request. Empty: the turn is rebuilt from `text` and `tool_calls`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<serde_json::Value>,
    },
    Tool {
        call_id: String,
        name: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

/// A tool offered to the model: its name, what it does, and a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSchema {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// One request to the model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    /// Shared: an agent offers the same tools on every turn.
    pub tools: Arc<[ToolSchema]>,
    pub max_tokens: u32,
    /// Requests with the same key share a long prefix (one role's system prompt and tools);
    /// OpenAI routes them to the same cache with it (`prompt_cache_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<Arc<str>>,
}

/// Tokens counted by the API's usage field.
///
/// The three input counts do not overlap: `input_tokens` are billed at the full input price,
/// `cache_write_tokens` were written to the prompt cache by this request and
/// `cache_read_tokens` read from it (Anthropic's `input_tokens`, `cache_creation_input_tokens`
/// and `cache_read_input_tokens`; OpenAI's `prompt_tokens` minus its `cached_tokens`, nothing,
/// and `cached_tokens`). The whole prompt is their sum, [`Usage::prompt_tokens`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Absent from journals written before prompt caching: zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Usage without any prompt caching.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        }
    }

    /// Every token of the prompt, cached or not.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_write_tokens + self.cache_read_tokens
    }

    /// Every token of the call, prompt and answer.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens() + self.output_tokens
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    /// The model declined; its words, if any, are the turn's text.
    Refusal,
    Other(String),
}

/// One assistant turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish: FinishReason,
    /// The content blocks as received, when the answer has blocks to send back unchanged
    /// (see [`Message::Assistant`]); thinking is never part of `text`.
    pub blocks: Vec<serde_json::Value>,
}

/// A response and what it took to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub response: ChatResponse,
    /// Attempts after the first that were needed.
    pub retries: u32,
    pub latency_ms: u64,
}

/// An API key. It is never shown by `Debug` or `Display`, and never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What went wrong with a call to the model.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The API answered with an error status; `message` is the API's own.
    #[error("the API answered {status}: {message}")]
    Api {
        status: u16,
        message: String,
        /// From a `Retry-After` header, when the API sent one.
        retry_after_ms: Option<u64>,
    },
    #[error("no answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// Below HTTP: refused or reset connections, bodies cut short. `message` carries the whole
    /// cause chain for people; `source` keeps the error itself for code that inspects it.
    #[error("connection failed: {message}")]
    Connection {
        message: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the API's answer could not be understood: {0}")]
    InvalidResponse(String),
    /// The body or stream passed the bound derived from `max_tokens`; it was cut there.
    #[error(
        "the answer passed {limit_bytes} bytes, more than max_tokens allows; it was cut off there"
    )]
    TooLarge { limit_bytes: u64 },
    /// Twice an answer with neither text nor tool calls.
    #[error("the model answered with neither text nor tool calls, twice")]
    EmptyAnswer,
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
    #[error("{0}")]
    Config(String),
}

impl LlmError {
    /// The transport's own error behind a connection failure, to downcast (its cause chain is
    /// also this error's [`std::error::Error::source`] chain).
    pub fn transport_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            LlmError::Connection { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// A connection failure with no underlying error value (e.g. one a test builds).
    pub fn connection(message: impl Into<String>) -> Self {
        LlmError::Connection {
            message: message.into(),
            source: None,
        }
    }

    /// Whether trying again may help: 429, 5xx, timeouts, broken connections, garbled bodies.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Api { status, .. } => *status == 429 || *status >= 500,
            LlmError::Timeout { .. }
            | LlmError::Connection { .. }
            | LlmError::InvalidResponse(_) => true,
            LlmError::RetriesExhausted { .. }
            | LlmError::Config(_)
            | LlmError::TooLarge { .. }
            | LlmError::EmptyAnswer => false,
        }
    }
}

/// What a tool call returns to the model: compact text (usually JSON) and whether it failed.
/// A failed tool call is reported to the model, never a crash of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
        }
    }
}
