//! The Anthropic Messages API (`POST {base_url}/v1/messages`).
//!
//! The base URL is the host without `/v1` (as with Anthropic's SDKs and `ANTHROPIC_BASE_URL`);
//! one that ends in `/v1` is accepted as well. The system prompt is a top-level field, tool calls
//! and results are `tool_use` / `tool_result` content blocks, and the results of one turn's tool
//! calls travel together in one user message.

use super::assemble::{self, PartialToolCalls};
use super::encode::{self, EncodedTexts, EncodedTools};
use super::http::{self, Endpoint};
use super::scan::{self, Scanner};
use super::{
    ApiKey, ChatRequest, ChatResponse, FinishReason, LlmError, Message, ToolCall, ToolSchema, Usage,
};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client of the Messages API at one base URL.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    endpoint: Endpoint,
    /// Mark cache breakpoints on every request.
    prompt_cache: bool,
    /// Extended thinking's token budget, when it is on (`llm.thinking`).
    thinking: Option<u32>,
    /// Each agent's tools, encoded on its first request.
    tools: Arc<EncodedTools>,
    /// Each role's system prompt, encoded on its first request.
    system: Arc<EncodedTexts>,
}

impl AnthropicProvider {
    pub(crate) fn new(
        http: http::HttpClient,
        base_url: &str,
        key: Option<ApiKey>,
        stream: bool,
    ) -> Self {
        let base = base_url.trim_end_matches('/');
        let url = if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        Self {
            endpoint: Endpoint::new(http, url, key, stream, |headers, key| {
                headers.insert(
                    "anthropic-version",
                    reqwest::header::HeaderValue::from_static(ANTHROPIC_VERSION),
                );
                if let Some(key) = key {
                    headers.insert("x-api-key", http::sensitive(key.expose())?);
                }
                Ok(())
            }),
            prompt_cache: false,
            thinking: None,
            tools: Arc::default(),
            system: Arc::default(),
        }
    }

    /// With a budget, every request asks for extended thinking of at most that many tokens.
    pub(crate) fn with_thinking(mut self, budget_tokens: Option<u32>) -> Self {
        self.thinking = budget_tokens;
        self
    }

    /// With `on`, every request marks its stable prefix and newest messages for the cache.
    pub(crate) fn with_prompt_cache(mut self, on: bool) -> Self {
        self.prompt_cache = on;
        // The tools' encoding has the breakpoint or not.
        self.tools = Arc::default();
        self
    }

    /// One assistant turn for `request`.
    pub async fn respond(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let endpoint = &self.endpoint;
        let stream = endpoint.stream;
        endpoint
            .redacted(async {
                let body = self.body(request, stream);
                let response = endpoint.post(body).await?;
                let limit = http::body_limit(request.max_tokens);
                if stream {
                    read_stream(response, limit).await
                } else {
                    let wire: WireResponse = http::read_json(response, limit).await?;
                    wire.into_response()
                }
            })
            .await
    }
}

impl super::Provider for AnthropicProvider {
    fn respond<'a>(&'a self, request: &'a ChatRequest) -> super::ProviderFuture<'a> {
        Box::pin(AnthropicProvider::respond(self, request))
    }
}

impl AnthropicProvider {
    /// The request body: the same bytes as `serde_json` would write for it, keys in this order
    /// (the prefix up to the conversation is byte-stable, for the prompt cache).
    fn body(&self, r: &ChatRequest, stream: bool) -> Vec<u8> {
        let cache = self.prompt_cache;
        let turns = wire_turns(&r.messages);
        let marks = Breakpoints {
            on: cache,
            turns: turns.len(),
        };
        let tools = (!r.tools.is_empty()).then(|| {
            self.tools
                .get(&r.tools, |tools, out| encode_tools(tools, cache, out))
        });
        let mut out =
            Vec::with_capacity(encode::body_size(r) + tools.as_ref().map_or(0, |t| t.len()));
        out.extend_from_slice(b"{\"model\":");
        encode::write_str(&mut out, &r.model);
        out.extend_from_slice(b",\"max_tokens\":");
        encode::write_u64(&mut out, u64::from(r.max_tokens));
        if !r.system.is_empty() {
            out.extend_from_slice(b",\"system\":");
            if cache {
                out.extend_from_slice(b"[{\"type\":\"text\",\"text\":");
                self.system.write(&mut out, &r.system);
                out.extend_from_slice(EPHEMERAL);
                out.extend_from_slice(b"}]");
            } else {
                self.system.write(&mut out, &r.system);
            }
        }
        out.extend_from_slice(b",\"messages\":[");
        for (index, turn) in turns.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let mark = marks.marks_turn(index);
            match turn {
                WireTurn::User(content) => {
                    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                    if cache {
                        out.extend_from_slice(b"[{\"type\":\"text\",\"text\":");
                        encode::write_str(&mut out, content);
                        if mark {
                            out.extend_from_slice(EPHEMERAL);
                        }
                        out.extend_from_slice(b"}]");
                    } else {
                        encode::write_str(&mut out, content);
                    }
                }
                WireTurn::Assistant {
                    text,
                    tool_calls,
                    blocks,
                } => {
                    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
                    encode_assistant(&mut out, *text, tool_calls, blocks, mark);
                }
                WireTurn::Results(results) => {
                    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                    encode_results(&mut out, results, mark);
                }
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(tools) = tools {
            out.extend_from_slice(b",\"tools\":");
            out.extend_from_slice(&tools);
        }
        if let Some(budget_tokens) = self.thinking {
            out.extend_from_slice(b",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
            encode::write_u64(&mut out, u64::from(budget_tokens));
            out.push(b'}');
        }
        out.extend_from_slice(if stream {
            b",\"stream\":true}"
        } else {
            b",\"stream\":false}"
        });
        out
    }
}

/// Where the cache breakpoints of a request go, at most the API's four: the last tool (the tools
/// alone are shared by every role with the same tools), the system prompt (tools and system are
/// shared by every agent of a role), the newest message (the next turn of this conversation reads
/// everything up to it) and the newest message of the turn before (which that turn wrote, so a
/// turn that added more than the API's 20-block lookback still reads it).
///
/// With caching on, every message's content is sent as blocks, so that a message is the same
/// bytes whether or not it carries a breakpoint.
#[derive(Clone, Copy)]
struct Breakpoints {
    on: bool,
    /// Wire turns of the request.
    turns: usize,
}

impl Breakpoints {
    fn marks_turn(&self, index: usize) -> bool {
        self.on && (index + 1 == self.turns || index + 3 == self.turns)
    }
}

/// A cache breakpoint, as the field that closes a block.
const EPHEMERAL: &[u8] = b",\"cache_control\":{\"type\":\"ephemeral\"}";

fn encode_tool_use(out: &mut Vec<u8>, call: &ToolCall, mark: bool) {
    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
    encode::write_str(out, &call.id);
    out.extend_from_slice(b",\"name\":");
    encode::write_str(out, &call.name);
    out.extend_from_slice(b",\"input\":");
    encode::write_value(out, &call.arguments);
    if mark {
        out.extend_from_slice(EPHEMERAL);
    }
    out.push(b'}');
}

/// An assistant turn's content blocks.
fn encode_assistant(
    out: &mut Vec<u8>,
    text: Option<&str>,
    tool_calls: &[ToolCall],
    blocks: &[Value],
    mark: bool,
) {
    out.push(b'[');
    if !blocks.is_empty() {
        // As received, in order: thinking blocks keep their signature byte for byte. A
        // `tool_use` block is the runtime's call of that id (its arguments as the tool got
        // them); a breakpoint goes only on a last tool_use (thinking blocks take none).
        let last = blocks.len() - 1;
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let call = (block["type"] == "tool_use")
                .then(|| tool_calls.iter().find(|c| block["id"] == *c.id))
                .flatten();
            match call {
                Some(call) => encode_tool_use(out, call, mark && i == last),
                None => encode::write_value(out, block),
            }
        }
        out.push(b']');
        return;
    }
    let mut first = true;
    if let Some(text) = text {
        first = false;
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        encode::write_str(out, text);
        if mark && tool_calls.is_empty() {
            out.extend_from_slice(EPHEMERAL);
        }
        out.push(b'}');
    }
    let last = tool_calls.len().wrapping_sub(1);
    for (i, call) in tool_calls.iter().enumerate() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        encode_tool_use(out, call, mark && i == last);
    }
    out.push(b']');
}

/// The results of one turn's tool calls, as the blocks of one user message.
fn encode_results(out: &mut Vec<u8>, results: &[Message], mark: bool) {
    out.push(b'[');
    let last = results.len().wrapping_sub(1);
    let mut first = true;
    for (i, message) in results.iter().enumerate() {
        if let Message::Tool {
            call_id,
            content,
            is_error,
            ..
        } = message
        {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
            encode::write_str(out, call_id);
            out.extend_from_slice(b",\"content\":");
            encode::write_str(out, content);
            if *is_error {
                out.extend_from_slice(b",\"is_error\":true");
            }
            if mark && i == last {
                out.extend_from_slice(EPHEMERAL);
            }
            out.push(b'}');
        }
    }
    out.push(b']');
}

/// The tools, with a breakpoint on the last one when `cache` is on (the tools alone are shared
/// by every role with the same tools).
fn encode_tools(tools: &[ToolSchema], cache: bool, out: &mut Vec<u8>) {
    out.push(b'[');
    let last = tools.len().wrapping_sub(1);
    for (i, tool) in tools.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        encode::write_str(out, &tool.name);
        out.extend_from_slice(b",\"description\":");
        encode::write_str(out, &tool.description);
        out.extend_from_slice(b",\"input_schema\":");
        encode::write_value(out, &tool.parameters);
        if cache && i == last {
            out.extend_from_slice(EPHEMERAL);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// One message as the API sees it.
enum WireTurn<'a> {
    User(&'a str),
    Assistant {
        text: Option<&'a str>,
        tool_calls: &'a [ToolCall],
        blocks: &'a [Value],
    },
    /// The results of one turn's tool calls, together in one user message.
    Results(&'a [Message]),
}

fn wire_turns(messages: &[Message]) -> Vec<WireTurn<'_>> {
    let mut turns = Vec::with_capacity(messages.len());
    let mut rest = messages;
    while let Some((first, tail)) = rest.split_first() {
        match first {
            Message::User { content } => {
                turns.push(WireTurn::User(content));
                rest = tail;
            }
            Message::Assistant {
                text,
                tool_calls,
                blocks,
            } => {
                let text = text.as_deref().filter(|t| !t.is_empty());
                // The API rejects an empty assistant turn; one with nothing to say is left out.
                if text.is_some() || !tool_calls.is_empty() || !blocks.is_empty() {
                    turns.push(WireTurn::Assistant {
                        text,
                        tool_calls,
                        blocks,
                    });
                }
                rest = tail;
            }
            Message::Tool { .. } => {
                let run = rest
                    .iter()
                    .take_while(|m| matches!(m, Message::Tool { .. }))
                    .count();
                let (results, tail) = rest.split_at(run);
                turns.push(WireTurn::Results(results));
                rest = tail;
            }
        }
    }
    turns
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Sets the counts this usage carries; the API's counts are cumulative, so a later one
    /// replaces an earlier one and an absent one leaves it.
    fn update(&self, usage: &mut Usage) {
        let pairs = [
            (self.input_tokens, &mut usage.input_tokens),
            (self.output_tokens, &mut usage.output_tokens),
            (
                self.cache_creation_input_tokens,
                &mut usage.cache_write_tokens,
            ),
            (self.cache_read_input_tokens, &mut usage.cache_read_tokens),
        ];
        for (value, slot) in pairs {
            if let Some(n) = value {
                *slot = n;
            }
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    /// Absent means the body is not a message (a proxy's error page, a truncated answer): a
    /// protocol fault, not an empty answer.
    content: Option<Vec<Value>>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Blocks this client does not use (thinking and the like).
    #[serde(other)]
    Other,
}

impl WireResponse {
    fn into_response(self) -> Result<ChatResponse, LlmError> {
        if self.kind.as_deref() == Some("error") || self.error.is_some() {
            let body = serde_json::json!({"error": self.error});
            return Err(http::stream_error(&body.to_string()));
        }
        let Some(content) = self.content else {
            return Err(LlmError::InvalidResponse(
                "the answer has no `content`".into(),
            ));
        };
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let blocks = kept_blocks(&content);
        for raw in content {
            let block = serde_json::from_value::<Block>(raw).map_err(|e| {
                LlmError::InvalidResponse(format!("a content block is malformed: {e}"))
            })?;
            match block {
                Block::Text { text: piece } => text.push_str(&piece),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: match input {
                        Value::Null => Value::Object(Default::default()),
                        other => other,
                    },
                }),
                Block::Other => {}
            }
        }
        let mut usage = Usage::default();
        self.usage.update(&mut usage);
        let mut response = assemble::response(
            Some(text),
            tool_calls,
            usage,
            stop_reason(self.stop_reason.as_deref()),
        );
        response.blocks = blocks;
        Ok(response)
    }
}

/// The blocks to keep as received: all of them when any is of a kind the runtime does not
/// model (thinking, redacted thinking, server tools), which the API wants back unchanged and in
/// order; none otherwise (text and tool calls are rebuilt from the transcript).
fn kept_blocks(content: &[Value]) -> Vec<Value> {
    let modelled = |b: &Value| matches!(b["type"].as_str(), Some("text" | "tool_use"));
    if content.iter().all(modelled) {
        Vec::new()
    } else {
        content.to_vec()
    }
}

fn stop_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("end_turn") | Some("stop_sequence") => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("refusal") => FinishReason::Refusal,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: Value,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        error: StreamError,
    },
    /// `ping`, `content_block_stop` and event types added later.
    #[serde(other)]
    Other,
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    #[serde(other)]
    Other,
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize, Default)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Deserialize)]
struct StreamError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

impl StreamError {
    /// The status the same error has when it is not streamed, so retry decisions match.
    fn status(&self) -> u16 {
        match self.kind.as_str() {
            "invalid_request_error" => 400,
            "authentication_error" => 401,
            "permission_error" => 403,
            "not_found_error" => 404,
            "request_too_large" => 413,
            "rate_limit_error" => 429,
            "overloaded_error" => 529,
            _ => 500,
        }
    }
}

/// An event as [`scan`] reads it, else as `serde_json` does: the same value or the same error.
fn parse_stream_event(data: &str) -> Result<StreamEvent, LlmError> {
    match StreamEvent::scan(data) {
        Some(event) => Ok(event),
        None => http::parse_event(data),
    }
}

/// The whole of `raw`, one JSON value, as `read` reads it.
fn scan_whole<'a, T>(raw: &'a str, read: impl FnOnce(&mut Scanner<'a>) -> Option<T>) -> Option<T> {
    let mut s = Scanner::buffered(raw);
    let value = read(&mut s)?;
    s.end()?;
    Some(value)
}

// The fields each variant's `Deserialize` reads, with the same types; `None` for anything else
// (see `scan`), errors included. The tag may come after the fields, so the fields are first
// taken as raw text, then read once the type is known.
impl StreamEvent {
    fn scan(data: &str) -> Option<Self> {
        let mut s = Scanner::buffered(data);
        let mut kind = None;
        let mut fields: [Option<&str>; 5] = [None; 5];
        s.object(|s, key| {
            let slot = match key {
                "type" if kind.is_none() => {
                    kind = Some(s.string()?);
                    return Some(());
                }
                "type" => return None,
                "index" => 0,
                "content_block" => 1,
                "delta" => 2,
                "usage" => 3,
                "message" => 4,
                _ => return s.skip(),
            };
            if fields[slot].is_some() {
                return None;
            }
            fields[slot] = Some(s.raw()?);
            Some(())
        })?;
        s.end()?;
        let [index, content_block, delta, usage, message] = fields;
        let index = || scan_whole(index?, Scanner::u32);
        Some(match kind?.as_ref() {
            "message_start" => {
                let usage = scan_whole(message?, |s| {
                    let mut usage = None;
                    s.object(|s, key| match key {
                        "usage" if usage.is_none() => {
                            usage = Some(WireUsage::scan(s)?);
                            Some(())
                        }
                        "usage" => None,
                        _ => s.skip(),
                    })?;
                    Some(usage.unwrap_or_default())
                })?;
                StreamEvent::MessageStart {
                    message: StartedMessage { usage },
                }
            }
            "content_block_start" => StreamEvent::ContentBlockStart {
                index: index()?,
                content_block: serde_json::from_str(content_block?).ok()?,
            },
            "content_block_delta" => StreamEvent::ContentBlockDelta {
                index: index()?,
                delta: scan_whole(delta?, BlockDelta::scan)?,
            },
            "message_delta" => StreamEvent::MessageDelta {
                delta: match delta {
                    Some(raw) => scan_whole(raw, MessageDelta::scan)?,
                    None => MessageDelta::default(),
                },
                usage: match usage {
                    Some(raw) => scan_whole(raw, WireUsage::scan)?,
                    None => WireUsage::default(),
                },
            },
            "message_stop" => StreamEvent::MessageStop,
            // Rare, and worth its exact error: `serde_json` reads it.
            "error" => return None,
            _ => StreamEvent::Other,
        })
    }
}

impl BlockDelta {
    fn scan(s: &mut Scanner<'_>) -> Option<Self> {
        let mut kind = None;
        let mut fields: [Option<String>; 4] = Default::default();
        s.object(|s, key| {
            let slot = match key {
                "type" if kind.is_none() => {
                    kind = Some(s.string()?);
                    return Some(());
                }
                "type" => return None,
                "text" => 0,
                "partial_json" => 1,
                "thinking" => 2,
                "signature" => 3,
                _ => return s.skip(),
            };
            if fields[slot].is_some() {
                return None;
            }
            fields[slot] = Some(s.string()?.into_owned());
            Some(())
        })?;
        let [text, partial_json, thinking, signature] = fields;
        Some(match kind?.as_ref() {
            "text_delta" => BlockDelta::TextDelta { text: text? },
            "input_json_delta" => BlockDelta::InputJsonDelta {
                partial_json: partial_json?,
            },
            "thinking_delta" => BlockDelta::ThinkingDelta {
                thinking: thinking?,
            },
            "signature_delta" => BlockDelta::SignatureDelta {
                signature: signature?,
            },
            _ => BlockDelta::Other,
        })
    }
}

impl MessageDelta {
    fn scan(s: &mut Scanner<'_>) -> Option<Self> {
        let mut delta = MessageDelta::default();
        let mut seen = false;
        s.object(|s, key| match key {
            "stop_reason" => {
                scan::once(&mut seen)?;
                delta.stop_reason = s.nullable(Scanner::string)?.map(Into::into);
                Some(())
            }
            _ => s.skip(),
        })?;
        Some(delta)
    }
}

impl WireUsage {
    fn scan(s: &mut Scanner<'_>) -> Option<Self> {
        let mut usage = WireUsage::default();
        let mut seen = [false; 4];
        s.object(|s, key| {
            let (seen, slot) = match key {
                "input_tokens" => (&mut seen[0], &mut usage.input_tokens),
                "output_tokens" => (&mut seen[1], &mut usage.output_tokens),
                "cache_creation_input_tokens" => {
                    (&mut seen[2], &mut usage.cache_creation_input_tokens)
                }
                "cache_read_input_tokens" => (&mut seen[3], &mut usage.cache_read_input_tokens),
                _ => return s.skip(),
            };
            scan::once(seen)?;
            *slot = s.nullable(Scanner::u64)?;
            Some(())
        })?;
        Some(usage)
    }
}

/// Reads events until `message_stop`; a stream that ends before it was cut short.
async fn read_stream(response: http::Response, limit: usize) -> Result<ChatResponse, LlmError> {
    let mut events = http::events(response, limit);
    let mut text = String::new();
    let mut calls = PartialToolCalls::default();
    let mut usage = Usage::default();
    let mut stop = None;
    let mut complete = false;
    // Every block by index as it streams in, and the JSON input of server tool blocks.
    let mut raw: std::collections::BTreeMap<u32, Value> = Default::default();
    let mut inputs: std::collections::BTreeMap<u32, String> = Default::default();
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some(error) = &event.error {
            return Err(http::stream_error(error));
        }
        if event.data.trim().is_empty() {
            continue;
        }
        match parse_stream_event(&event.data)? {
            StreamEvent::MessageStart { message } => message.usage.update(&mut usage),
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block =
                    serde_json::from_value::<Block>(content_block.clone()).map_err(|e| {
                        LlmError::InvalidResponse(format!("a content block is malformed: {e}"))
                    })?;
                raw.insert(index, content_block);
                match block {
                    Block::Text { text: piece } => text.push_str(&piece),
                    Block::ToolUse { id, name, input } => {
                        calls.start(index, Some(id), Some(name));
                        if matches!(&input, Value::Object(m) if !m.is_empty()) {
                            calls.set_initial(index, input);
                        }
                    }
                    Block::Other => {}
                }
            }
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text: piece } => {
                    append(raw.get_mut(&index), "text", &piece);
                    text.push_str(&piece)
                }
                BlockDelta::InputJsonDelta { partial_json } if calls.contains(index) => {
                    calls.push_arguments(index, &partial_json)
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    inputs.entry(index).or_default().push_str(&partial_json)
                }
                BlockDelta::ThinkingDelta { thinking } => {
                    append(raw.get_mut(&index), "thinking", &thinking)
                }
                BlockDelta::SignatureDelta { signature } => {
                    append(raw.get_mut(&index), "signature", &signature)
                }
                BlockDelta::Other => {}
            },
            StreamEvent::MessageDelta {
                delta,
                usage: delta_usage,
            } => {
                delta_usage.update(&mut usage);
                if delta.stop_reason.is_some() {
                    stop = delta.stop_reason;
                }
            }
            StreamEvent::MessageStop => {
                complete = true;
                break;
            }
            StreamEvent::Error { error } => {
                return Err(LlmError::Api {
                    status: error.status(),
                    message: error.message,
                    retry_after_ms: None,
                })
            }
            StreamEvent::Other => {}
        }
    }
    if !complete {
        return Err(LlmError::InvalidResponse(
            "the stream ended before message_stop".into(),
        ));
    }
    for (index, json) in inputs {
        if let (Some(block), Ok(input)) = (raw.get_mut(&index), serde_json::from_str(&json)) {
            block["input"] = input;
        }
    }
    let content: Vec<Value> = raw.into_values().collect();
    let mut response = assemble::response(
        Some(text),
        calls.finish(),
        usage,
        stop_reason(stop.as_deref()),
    );
    response.blocks = kept_blocks(&content);
    Ok(response)
}

/// Appends a streamed piece to a string field of a block (`thinking`, `signature`, `text`).
fn append(block: Option<&mut Value>, field: &str, piece: &str) {
    let Some(Value::Object(block)) = block else {
        return;
    };
    let slot = block
        .entry(field)
        .or_insert_with(|| Value::String(String::new()));
    match slot {
        Value::String(s) => s.push_str(piece),
        other => *other = Value::String(piece.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::scan::equivalence;
    use serde_json::json;

    /// The request as `serde_json` wrote it before bodies were written by hand: the bytes must
    /// not change (prompt caches key on them).
    mod serde_body {
        use super::super::*;
        use serde::ser::{SerializeMap, SerializeSeq};
        use serde::{Serialize, Serializer};

        pub(super) struct WireRequest<'a> {
            pub(super) request: &'a ChatRequest,
            pub(super) stream: bool,
            /// Mark cache breakpoints (see [`Breakpoints`]).
            pub(super) cache: bool,
            pub(super) thinking: Option<u32>,
        }

        #[derive(Serialize)]
        struct CacheControl {
            r#type: &'static str,
        }

        const EPHEMERAL: CacheControl = CacheControl {
            r#type: "ephemeral",
        };

        impl Serialize for WireRequest<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let r = self.request;
                let turns = wire_turns(&r.messages);
                let marks = Breakpoints {
                    on: self.cache,
                    turns: turns.len(),
                };
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("model", &r.model)?;
                map.serialize_entry("max_tokens", &r.max_tokens)?;
                if !r.system.is_empty() {
                    if self.cache {
                        #[derive(Serialize)]
                        struct SystemBlock<'a> {
                            r#type: &'static str,
                            text: &'a str,
                            cache_control: CacheControl,
                        }
                        map.serialize_entry(
                            "system",
                            &[SystemBlock {
                                r#type: "text",
                                text: &r.system,
                                cache_control: EPHEMERAL,
                            }],
                        )?;
                    } else {
                        map.serialize_entry("system", &r.system)?;
                    }
                }
                map.serialize_entry("messages", &WireMessages { turns, marks })?;
                if !r.tools.is_empty() {
                    map.serialize_entry(
                        "tools",
                        &WireTools {
                            request: r,
                            cache: self.cache,
                        },
                    )?;
                }
                if let Some(budget_tokens) = self.thinking {
                    #[derive(Serialize)]
                    struct Thinking {
                        r#type: &'static str,
                        budget_tokens: u32,
                    }
                    map.serialize_entry(
                        "thinking",
                        &Thinking {
                            r#type: "enabled",
                            budget_tokens,
                        },
                    )?;
                }
                map.serialize_entry("stream", &self.stream)?;
                map.end()
            }
        }

        struct WireMessages<'a> {
            turns: Vec<WireTurn<'a>>,
            marks: Breakpoints,
        }

        impl Serialize for WireMessages<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Turn<C: Serialize> {
                    role: &'static str,
                    content: C,
                }
                let mut seq = serializer.serialize_seq(Some(self.turns.len()))?;
                for (index, turn) in self.turns.iter().enumerate() {
                    let mark = self.marks.marks_turn(index);
                    match turn {
                        WireTurn::User(content) if self.marks.on => {
                            seq.serialize_element(&Turn {
                                role: "user",
                                content: [TextBlock {
                                    r#type: "text",
                                    text: content,
                                    cache_control: mark.then_some(EPHEMERAL),
                                }],
                            })?
                        }
                        WireTurn::User(content) => seq.serialize_element(&Turn {
                            role: "user",
                            content,
                        })?,
                        WireTurn::Assistant {
                            text,
                            tool_calls,
                            blocks,
                        } => seq.serialize_element(&Turn {
                            role: "assistant",
                            content: AssistantBlocks {
                                text: *text,
                                tool_calls,
                                blocks,
                                mark,
                            },
                        })?,
                        WireTurn::Results(results) => seq.serialize_element(&Turn {
                            role: "user",
                            content: ToolResults { results, mark },
                        })?,
                    }
                }
                seq.end()
            }
        }

        #[derive(Serialize)]
        struct TextBlock<'a> {
            r#type: &'static str,
            text: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            cache_control: Option<CacheControl>,
        }

        struct AssistantBlocks<'a> {
            text: Option<&'a str>,
            tool_calls: &'a [ToolCall],
            /// The blocks as received, when the turn has some to send back unchanged.
            blocks: &'a [Value],
            /// A breakpoint on the last block.
            mark: bool,
        }

        impl Serialize for AssistantBlocks<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct ToolUse<'a> {
                    r#type: &'static str,
                    id: &'a str,
                    name: &'a str,
                    input: &'a Value,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    cache_control: Option<CacheControl>,
                }
                let mut seq = serializer.serialize_seq(None)?;
                if !self.blocks.is_empty() {
                    // As received, in order: thinking blocks keep their signature byte for byte. A
                    // `tool_use` block is the runtime's call of that id (its arguments as the tool got
                    // them); a breakpoint goes only on a last tool_use (thinking blocks take none).
                    let last = self.blocks.len() - 1;
                    for (i, block) in self.blocks.iter().enumerate() {
                        let call = (block["type"] == "tool_use")
                            .then(|| self.tool_calls.iter().find(|c| block["id"] == *c.id))
                            .flatten();
                        match call {
                            Some(call) => seq.serialize_element(&ToolUse {
                                r#type: "tool_use",
                                id: &call.id,
                                name: &call.name,
                                input: &call.arguments,
                                cache_control: (self.mark && i == last).then_some(EPHEMERAL),
                            })?,
                            None => seq.serialize_element(block)?,
                        }
                    }
                    return seq.end();
                }
                if let Some(text) = self.text {
                    seq.serialize_element(&TextBlock {
                        r#type: "text",
                        text,
                        cache_control: (self.mark && self.tool_calls.is_empty())
                            .then_some(EPHEMERAL),
                    })?;
                }
                let last = self.tool_calls.len().wrapping_sub(1);
                for (i, call) in self.tool_calls.iter().enumerate() {
                    seq.serialize_element(&ToolUse {
                        r#type: "tool_use",
                        id: &call.id,
                        name: &call.name,
                        input: &call.arguments,
                        cache_control: (self.mark && i == last).then_some(EPHEMERAL),
                    })?;
                }
                seq.end()
            }
        }

        struct ToolResults<'a> {
            results: &'a [Message],
            /// A breakpoint on the last block.
            mark: bool,
        }

        impl Serialize for ToolResults<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Block<'a> {
                    r#type: &'static str,
                    tool_use_id: &'a str,
                    content: &'a str,
                    #[serde(skip_serializing_if = "std::ops::Not::not")]
                    is_error: bool,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    cache_control: Option<CacheControl>,
                }
                let mut seq = serializer.serialize_seq(Some(self.results.len()))?;
                let last = self.results.len().wrapping_sub(1);
                for (i, message) in self.results.iter().enumerate() {
                    if let Message::Tool {
                        call_id,
                        content,
                        is_error,
                        ..
                    } = message
                    {
                        seq.serialize_element(&Block {
                            r#type: "tool_result",
                            tool_use_id: call_id,
                            content,
                            is_error: *is_error,
                            cache_control: (self.mark && i == last).then_some(EPHEMERAL),
                        })?;
                    }
                }
                seq.end()
            }
        }

        struct WireTools<'a> {
            request: &'a ChatRequest,
            /// A breakpoint on the last tool.
            cache: bool,
        }

        impl Serialize for WireTools<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Tool<'a> {
                    name: &'a str,
                    description: &'a str,
                    input_schema: &'a Value,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    cache_control: Option<CacheControl>,
                }
                let tools = &self.request.tools;
                let mut seq = serializer.serialize_seq(Some(tools.len()))?;
                let last = tools.len().wrapping_sub(1);
                for (i, tool) in tools.iter().enumerate() {
                    seq.serialize_element(&Tool {
                        name: &tool.name,
                        description: &tool.description,
                        input_schema: &tool.parameters,
                        cache_control: (self.cache && i == last).then_some(EPHEMERAL),
                    })?;
                }
                seq.end()
            }
        }
    }

    /// Stream events as the test mock and the Messages API send them, and awkward ones.
    const EVENTS: &[&str] = &[
        r#"{"message":{"content":[],"id":"msg_mock_1","model":"m","role":"assistant","stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"input_tokens":25,"output_tokens":1}},"type":"message_start"}"#,
        r#"{"type":"ping"}"#,
        r#"{"content_block":{"text":"","type":"text"},"index":0,"type":"content_block_start"}"#,
        r#"{"delta":{"text":"Hello","type":"text_delta"},"index":0,"type":"content_block_delta"}"#,
        r#"{"index":0,"type":"content_block_stop"}"#,
        r#"{"content_block":{"id":"toolu_01","input":{},"name":"memory_store","type":"tool_use"},"index":1,"type":"content_block_start"}"#,
        r#"{"delta":{"partial_json":"{\"key\": \"a\\nb\"","type":"input_json_delta"},"index":1,"type":"content_block_delta"}"#,
        r#"{"delta":{"stop_reason":"tool_use","stop_sequence":null},"type":"message_delta","usage":{"output_tokens":42}}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2679,"cache_creation_input_tokens":1500,"cache_read_input_tokens":30000,"cache_creation":{"ephemeral_5m_input_tokens":1500,"ephemeral_1h_input_tokens":0},"output_tokens":3,"service_tier":"standard"}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think \u2014 step \"one\"\n"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x","start_char_index":0,"end_char_index":1}}}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":null,"output_tokens":15,"cache_read_input_tokens":30000}}"#,
        r#"{"type":"message_delta","usage":{"output_tokens":1}}"#,
        r#"{"type":"message_delta"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"caf\u00e9 \ud83e\udd80 é 日本 \\ \/ \t"}}"#,
        r#"{"type":"some_future_event","payload":[1,25,-3,true,null,{"deep":{"er":[]}}]}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"future_delta","text":"x"}}"#,
        "  {\"type\" : \"message_stop\" }  ",
        // Left to serde_json: errors, or shapes the scanner does not read.
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"type":"error","error":{"message":"no type"}}"#,
        r#"{"type":"message_start"}"#,
        r#"{"type":"message_start","message":{"usage":null}}"#,
        r#"{"type":"content_block_delta","index":0}"#,
        r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"no index"}}"#,
        r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"b"}}"#,
        r#"{"type":"content_block_start","index":0}"#,
        r#"{"type":"message_delta","usage":{"output_tokens":1.5}}"#,
        r#"{"type":"message_delta","usage":null}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":7}}"#,
        r#"{"type":"message_stop","type":"ping"}"#,
        r#"{"index":0}"#,
        r#"{"type":7}"#,
        r#"{"ty\u0070e":"message_stop"}"#,
        r#"["message_stop"]"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\udd80"}}"#,
        r#"{"type":"message_stop"} {}"#,
        r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn""#,
        r#"{"type":"ping","ignored":1e400}"#,
        r#"{"type":"ping","ignored":"\ud800"}"#,
        r#"{"type":"ping","ignored":123456789012345678901234567890}"#,
        r#"{"type":"ping","ignored":-2.5e-3}"#,
    ];

    #[test]
    fn stream_events_are_read_as_serde_json_reads_them() {
        // Of the samples, the well-formed ones the scanner reads itself; cut short or with any
        // character changed, whatever it reads it reads as serde_json does.
        let read = equivalence::check_samples(EVENTS, |data| {
            equivalence::assert_same(
                data,
                StreamEvent::scan(data),
                serde_json::from_str::<StreamEvent>(data),
            )
        });
        assert_eq!(read, 23);
    }

    #[test]
    fn an_event_is_parsed_the_same_either_way_or_fails_the_same() {
        for data in EVENTS {
            let ours = parse_stream_event(data).map_err(|e| e.to_string());
            let theirs = http::parse_event::<StreamEvent>(data).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{data}");
        }
    }

    fn provider(cache: bool, thinking: Option<u32>) -> AnthropicProvider {
        AnthropicProvider::new(
            http::HttpClient::new(false).expect("client"),
            "http://localhost:1",
            None,
            true,
        )
        .with_prompt_cache(cache)
        .with_thinking(thinking)
    }

    fn tool(id: &str, content: &str) -> Message {
        Message::Tool {
            call_id: id.into(),
            name: "t".into(),
            content: content.into(),
            is_error: id == "b",
        }
    }

    #[test]
    fn consecutive_tool_results_share_one_user_turn() {
        let request = ChatRequest {
            model: "m".into(),
            system: "sys".into(),
            messages: vec![
                Message::User {
                    content: "go".into(),
                },
                Message::Assistant {
                    blocks: Vec::new(),
                    text: Some("calling".into()),
                    tool_calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "t".into(),
                            arguments: json!({"x": 1}),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "t".into(),
                            arguments: json!({}),
                        },
                    ],
                },
                tool("a", "one"),
                tool("b", "two"),
            ],
            tools: Vec::new().into(),
            max_tokens: 5,
            cache_key: None,
        };
        let bytes = provider(false, None).body(&request, false);
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            body,
            json!({
                "model": "m",
                "max_tokens": 5,
                "system": "sys",
                "messages": [
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "a", "name": "t", "input": {"x": 1}},
                        {"type": "tool_use", "id": "b", "name": "t", "input": {}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "a", "content": "one"},
                        {"type": "tool_result", "tool_use_id": "b", "content": "two", "is_error": true}
                    ]}
                ],
                "stream": false
            })
        );
    }

    #[test]
    fn endpoint_accepts_base_urls_with_and_without_v1() {
        let http = http::HttpClient::new(false).expect("client");
        let plain = AnthropicProvider::new(http.clone(), "http://h:1/", None, false);
        let v1 = AnthropicProvider::new(http, "http://h:1/v1", None, false);
        assert_eq!(plain.endpoint.url, "http://h:1/v1/messages");
        assert_eq!(v1.endpoint.url, "http://h:1/v1/messages");
    }

    #[test]
    fn bodies_are_the_bytes_serde_json_wrote() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "memory_store".into(),
            arguments: json!({"key": "k\n\"", "value": [1, 2.5, null, {"z": true}]}),
        };
        let conversation = vec![
            Message::User {
                content: "a task with \"quotes\", a\ttab, a\nline, \u{1} and é 日本".into(),
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: Some("calling \\ two".into()),
                tool_calls: vec![call("a"), call("b")],
            },
            tool("a", "one"),
            tool("b", "two"),
            Message::Assistant {
                blocks: vec![
                    json!({"type": "thinking", "thinking": "hmm\n", "signature": "c2ln+/="}),
                    json!({"type": "redacted_thinking", "data": "opaque"}),
                    json!({"type": "tool_use", "id": "c", "name": "memory_store", "input": {}}),
                ],
                text: None,
                tool_calls: vec![call("c")],
            },
            tool("c", "three"),
            Message::Assistant {
                blocks: Vec::new(),
                text: Some(String::new()),
                tool_calls: Vec::new(),
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: Some("only text".into()),
                tool_calls: Vec::new(),
            },
            Message::User {
                content: "continue".into(),
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: None,
                tool_calls: vec![call("d")],
            },
        ];
        let tools: Arc<[ToolSchema]> = vec![
            ToolSchema {
                name: "memory_store".into(),
                description: "Stores a \"value\".".into(),
                parameters: json!({"type": "object", "properties": {"key": {"type": "string"}},
                                   "required": ["key"]}),
            },
            ToolSchema {
                name: "finish".into(),
                description: String::new(),
                parameters: json!({}),
            },
        ]
        .into();
        // Every length of the conversation, so that breakpoints land on every kind of turn.
        for len in 0..=conversation.len() {
            for system in ["", "You are a \"reviewer\".\nBe brief."] {
                for tools in [Arc::clone(&tools), Vec::new().into()] {
                    let request = ChatRequest {
                        model: "claude-x".into(),
                        system: system.into(),
                        messages: conversation[..len].to_vec(),
                        tools,
                        max_tokens: 4096,
                        cache_key: Some("swarm/role".into()),
                    };
                    for cache in [false, true] {
                        for thinking in [None, Some(2048)] {
                            let provider = provider(cache, thinking);
                            for stream in [false, true] {
                                let expected = serde_json::to_vec(&serde_body::WireRequest {
                                    request: &request,
                                    stream,
                                    cache,
                                    thinking,
                                })
                                .expect("serializes");
                                // Twice: the second time with the tools already encoded.
                                for _ in 0..2 {
                                    let body = provider.body(&request, stream);
                                    assert_eq!(
                                        String::from_utf8_lossy(&body),
                                        String::from_utf8_lossy(&expected)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
