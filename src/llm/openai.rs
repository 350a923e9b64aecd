//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`): OpenAI itself, and
//! Ollama, vLLM, llama.cpp server, LM Studio or OpenRouter through their base URL.
//!
//! Requests are written straight from the borrowed [`ChatRequest`] into one buffer (see
//! [`super::encode`]); nothing of the transcript is copied on the way to the socket.

use super::assemble::{self, PartialToolCalls};
use super::encode::{self, EncodedTexts, EncodedTools};
use super::http::{self, Endpoint};
use super::scan::{self, Scanner};
use super::{
    ApiKey, ChatRequest, ChatResponse, FinishReason, LlmError, Message, ToolCall, ToolSchema, Usage,
};
use crate::spec::MaxTokensField;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// A client of one OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    endpoint: Endpoint,
    /// Send `prompt_cache_key`: only OpenAI itself knows it, other servers may reject it.
    cache_key: bool,
    /// The name the output limit goes by in requests.
    max_tokens_field: MaxTokensField,
    /// Each agent's tools, encoded on its first request.
    tools: Arc<EncodedTools>,
    /// Each role's system prompt, encoded on its first request.
    system: Arc<EncodedTexts>,
}

impl OpenAiProvider {
    pub(crate) fn new(
        http: http::HttpClient,
        base_url: &str,
        key: Option<ApiKey>,
        stream: bool,
    ) -> Self {
        Self {
            endpoint: Endpoint::new(
                http,
                format!("{}/chat/completions", base_url.trim_end_matches('/')),
                key,
                stream,
                |headers, key| {
                    if let Some(key) = key {
                        let value = http::sensitive(&format!("Bearer {}", key.expose()))?;
                        headers.insert(reqwest::header::AUTHORIZATION, value);
                    }
                    Ok(())
                },
            ),
            cache_key: false,
            max_tokens_field: default_max_tokens_field(base_url),
            tools: Arc::default(),
            system: Arc::default(),
        }
    }

    /// Names the output limit `field` in requests; `None` keeps the endpoint's default.
    pub(crate) fn with_max_tokens_field(mut self, field: Option<MaxTokensField>) -> Self {
        if let Some(field) = field {
            self.max_tokens_field = field;
        }
        self
    }

    /// With `on` and the endpoint at OpenAI itself, requests carry their `cache_key` as
    /// `prompt_cache_key`, so requests of one role reach the same prompt cache. (Caching of
    /// the prefix itself is automatic; it needs only the prefix to be byte-stable.)
    pub(crate) fn with_prompt_cache(mut self, on: bool) -> Self {
        self.cache_key = on && is_openai(&self.endpoint.url);
        self
    }

    /// One assistant turn for `request`.
    pub async fn respond(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let endpoint = &self.endpoint;
        let stream = endpoint.stream;
        let cache_key = request.cache_key.as_deref().filter(|_| self.cache_key);
        endpoint
            .redacted(async {
                let body = self.body(request, stream, cache_key);
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

impl super::Provider for OpenAiProvider {
    fn respond<'a>(&'a self, request: &'a ChatRequest) -> super::ProviderFuture<'a> {
        Box::pin(OpenAiProvider::respond(self, request))
    }
}

/// OpenAI's reasoning models refuse `max_tokens`; compatible servers (Ollama, vLLM, llama.cpp,
/// older proxies) mostly know only `max_tokens`.
fn default_max_tokens_field(base_url: &str) -> MaxTokensField {
    if is_openai(base_url) {
        MaxTokensField::MaxCompletionTokens
    } else {
        MaxTokensField::MaxTokens
    }
}

/// Whether `url` is OpenAI's own API.
fn is_openai(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.host_str() == Some("api.openai.com"))
}

impl OpenAiProvider {
    /// The request body: the same bytes as `serde_json` would write for it, keys in this order
    /// (the prefix up to the conversation is byte-stable, for the prompt cache).
    fn body(&self, r: &ChatRequest, stream: bool, cache_key: Option<&str>) -> Vec<u8> {
        let tools = (!r.tools.is_empty()).then(|| self.tools.get(&r.tools, encode_tools));
        let mut out =
            Vec::with_capacity(encode::body_size(r) + tools.as_ref().map_or(0, |t| t.len()));
        out.extend_from_slice(b"{\"model\":");
        encode::write_str(&mut out, &r.model);
        out.extend_from_slice(b",\"messages\":[");
        let mut first = true;
        let mut open = |out: &mut Vec<u8>, role: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"role\":\"");
            out.extend_from_slice(role.as_bytes());
            out.push(b'"');
        };
        if !r.system.is_empty() {
            open(&mut out, "system");
            out.extend_from_slice(b",\"content\":");
            self.system.write(&mut out, &r.system);
            out.push(b'}');
        }
        for message in &r.messages {
            match message {
                Message::User { content } => {
                    open(&mut out, "user");
                    out.extend_from_slice(b",\"content\":");
                    encode::write_str(&mut out, content);
                }
                Message::Assistant {
                    text, tool_calls, ..
                } => {
                    open(&mut out, "assistant");
                    out.extend_from_slice(b",\"content\":");
                    match text {
                        Some(text) => encode::write_str(&mut out, text),
                        None => out.extend_from_slice(b"null"),
                    }
                    if !tool_calls.is_empty() {
                        encode_calls(&mut out, tool_calls);
                    }
                }
                Message::Tool {
                    call_id, content, ..
                } => {
                    open(&mut out, "tool");
                    out.extend_from_slice(b",\"tool_call_id\":");
                    encode::write_str(&mut out, call_id);
                    out.extend_from_slice(b",\"content\":");
                    encode::write_str(&mut out, content);
                }
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(tools) = tools {
            out.extend_from_slice(b",\"tools\":");
            out.extend_from_slice(&tools);
        }
        out.extend_from_slice(b",\"");
        out.extend_from_slice(self.max_tokens_field.as_str().as_bytes());
        out.extend_from_slice(b"\":");
        encode::write_u64(&mut out, u64::from(r.max_tokens));
        if let Some(key) = cache_key {
            out.extend_from_slice(b",\"prompt_cache_key\":");
            encode::write_str(&mut out, key);
        }
        if stream {
            out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        } else {
            out.extend_from_slice(b",\"stream\":false}");
        }
        out
    }
}

fn encode_calls(out: &mut Vec<u8>, calls: &[ToolCall]) {
    out.extend_from_slice(b",\"tool_calls\":[");
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        encode::write_str(out, &call.id);
        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        encode::write_str(out, &call.name);
        out.extend_from_slice(b",\"arguments\":");
        write_arguments(out, &call.arguments);
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

/// The protocol carries arguments as JSON text; arguments the model garbled go back as it wrote
/// them.
fn write_arguments(out: &mut Vec<u8>, arguments: &Value) {
    if let Value::Object(map) = arguments {
        if let (1, Some(Value::String(raw))) = (map.len(), map.get("_raw")) {
            return encode::write_str(out, raw);
        }
    }
    encode::write_value_str(out, arguments);
}

fn encode_tools(tools: &[ToolSchema], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, tool) in tools.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
        encode::write_str(out, &tool.name);
        out.extend_from_slice(b",\"description\":");
        encode::write_str(out, &tool.description);
        out.extend_from_slice(b",\"parameters\":");
        encode::write_value(out, &tool.parameters);
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    /// `prompt_tokens` includes the cached ones; [`Usage`] counts them apart.
    fn from(u: WireUsage) -> Self {
        let cached = u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .min(u.prompt_tokens);
        Usage {
            input_tokens: u.prompt_tokens - cached,
            output_tokens: u.completion_tokens,
            cache_write_tokens: 0,
            cache_read_tokens: cached,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    /// A 200 whose body is an error (vLLM's `"object": "error"`, or an `error` field).
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    /// Set instead of `content` when the model declines.
    #[serde(default)]
    refusal: Option<String>,
    tool_calls: Option<Vec<WholeCall>>,
}

#[derive(Deserialize)]
struct WholeCall {
    id: Option<String>,
    function: WholeFunction,
}

#[derive(Deserialize)]
struct WholeFunction {
    name: String,
    /// JSON text per the protocol; some compatible servers send the object itself.
    #[serde(default)]
    arguments: Value,
}

impl WireResponse {
    fn into_response(self) -> Result<ChatResponse, LlmError> {
        if self.error.is_some() || self.object.as_deref() == Some("error") {
            let body = serde_json::json!({"object": self.object, "error": self.error});
            return Err(http::stream_error(&body.to_string()));
        }
        let usage = self.usage.map(Usage::from).unwrap_or_default();
        let choice = self
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::InvalidResponse("the answer has no choices".into()))?;
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(assemble::fresh_call_id),
                name: call.function.name,
                arguments: match call.function.arguments {
                    Value::String(text) => assemble::parse_arguments(&text),
                    Value::Null => Value::Object(Default::default()),
                    other => other,
                },
            })
            .collect();
        if let Some(words) = choice.message.refusal.filter(|r| !r.is_empty()) {
            return Ok(refused(words, usage));
        }
        Ok(assemble::response(
            choice.message.content,
            tool_calls,
            usage,
            finish_reason(choice.finish_reason.as_deref()),
        ))
    }
}

/// A turn the model declined: its words are the text, and nothing else counts.
fn refused(words: String, usage: Usage) -> ChatResponse {
    ChatResponse {
        text: Some(words),
        tool_calls: Vec::new(),
        usage,
        finish: FinishReason::Refusal,
        blocks: Vec::new(),
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("stop") => FinishReason::Stop,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::Refusal,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

// The chunks borrow their text from the event where it has no escapes: most pieces are
// copied once, into the answer.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<WireUsage>,
    /// `{"error": ...}`, with or without a `finish_reason: "error"` choice.
    #[serde(default)]
    error: Option<IgnoredAny>,
    /// vLLM sends `"object": "error"` with the message at the top level.
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Delta<'a>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<DeltaCall<'a>>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct DeltaCall<'a> {
    index: Option<u32>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<DeltaFunction<'a>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct DeltaFunction<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// A chunk as [`scan`] reads it, else as `serde_json` does: the same value or the same error.
fn parse_chunk(data: &str) -> Result<Chunk<'_>, LlmError> {
    match Chunk::scan(data) {
        Some(chunk) => Ok(chunk),
        None => http::parse_event(data),
    }
}

// The fields each struct's `Deserialize` reads, with the same types; `None` for anything else
// (see `scan`). Unknown fields are skipped, as the derived code skips them.
impl<'a> Chunk<'a> {
    fn scan(data: &'a str) -> Option<Self> {
        let mut s = Scanner::new(data);
        let mut chunk = Chunk {
            choices: Vec::new(),
            usage: None,
            error: None,
            object: None,
        };
        let mut seen = [false; 4];
        s.object(|s, key| match key {
            "choices" => {
                scan::once(&mut seen[0])?;
                s.array(|s| {
                    chunk.choices.push(ChunkChoice::scan(s)?);
                    Some(())
                })
            }
            "usage" => {
                scan::once(&mut seen[1])?;
                chunk.usage = s.nullable(WireUsage::scan)?;
                Some(())
            }
            "error" => {
                scan::once(&mut seen[2])?;
                if !s.null() {
                    s.skip()?;
                    chunk.error = Some(IgnoredAny);
                }
                Some(())
            }
            "object" => {
                scan::once(&mut seen[3])?;
                chunk.object = s.nullable(Scanner::string)?;
                Some(())
            }
            _ => s.skip(),
        })?;
        s.end()?;
        Some(chunk)
    }
}

impl<'a> ChunkChoice<'a> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        let mut choice = ChunkChoice {
            delta: Delta::default(),
            finish_reason: None,
        };
        let mut seen = [false; 2];
        s.object(|s, key| match key {
            "delta" => {
                scan::once(&mut seen[0])?;
                choice.delta = Delta::scan(s)?;
                Some(())
            }
            "finish_reason" => {
                scan::once(&mut seen[1])?;
                choice.finish_reason = s.nullable(Scanner::string)?;
                Some(())
            }
            _ => s.skip(),
        })?;
        Some(choice)
    }
}

impl<'a> Delta<'a> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        let mut delta = Delta::default();
        let mut seen = [false; 3];
        s.object(|s, key| match key {
            "content" => {
                scan::once(&mut seen[0])?;
                delta.content = s.nullable(Scanner::string)?;
                Some(())
            }
            "refusal" => {
                scan::once(&mut seen[1])?;
                delta.refusal = s.nullable(Scanner::string)?;
                Some(())
            }
            "tool_calls" => {
                scan::once(&mut seen[2])?;
                delta.tool_calls = s.nullable(|s| {
                    let mut calls = Vec::new();
                    s.array(|s| {
                        calls.push(DeltaCall::scan(s)?);
                        Some(())
                    })?;
                    Some(calls)
                })?;
                Some(())
            }
            _ => s.skip(),
        })?;
        Some(delta)
    }
}

impl<'a> DeltaCall<'a> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        let mut call = DeltaCall {
            index: None,
            id: None,
            function: None,
        };
        let mut seen = [false; 3];
        s.object(|s, key| match key {
            "index" => {
                scan::once(&mut seen[0])?;
                call.index = s.nullable(Scanner::u32)?;
                Some(())
            }
            "id" => {
                scan::once(&mut seen[1])?;
                call.id = s.nullable(Scanner::string)?;
                Some(())
            }
            "function" => {
                scan::once(&mut seen[2])?;
                call.function = s.nullable(|s| {
                    let mut function = DeltaFunction {
                        name: None,
                        arguments: None,
                    };
                    let mut seen = [false; 2];
                    s.object(|s, key| match key {
                        "name" => {
                            scan::once(&mut seen[0])?;
                            function.name = s.nullable(Scanner::string)?;
                            Some(())
                        }
                        "arguments" => {
                            scan::once(&mut seen[1])?;
                            function.arguments = s.nullable(Scanner::string)?;
                            Some(())
                        }
                        _ => s.skip(),
                    })?;
                    Some(function)
                })?;
                Some(())
            }
            _ => s.skip(),
        })?;
        Some(call)
    }
}

impl WireUsage {
    fn scan(s: &mut Scanner<'_>) -> Option<Self> {
        let mut usage = WireUsage::default();
        let mut seen = [false; 3];
        s.object(|s, key| match key {
            "prompt_tokens" => {
                scan::once(&mut seen[0])?;
                usage.prompt_tokens = s.u64()?;
                Some(())
            }
            "completion_tokens" => {
                scan::once(&mut seen[1])?;
                usage.completion_tokens = s.u64()?;
                Some(())
            }
            "prompt_tokens_details" => {
                scan::once(&mut seen[2])?;
                usage.prompt_tokens_details = s.nullable(|s| {
                    let mut details = PromptDetails::default();
                    let mut seen = false;
                    s.object(|s, key| match key {
                        "cached_tokens" => {
                            scan::once(&mut seen)?;
                            details.cached_tokens = s.nullable(Scanner::u64)?;
                            Some(())
                        }
                        _ => s.skip(),
                    })?;
                    Some(details)
                })?;
                Some(())
            }
            _ => s.skip(),
        })?;
        Some(usage)
    }
}

/// Reads `data:` chunks until `[DONE]`. A stream that ends before `[DONE]` and before any
/// finish reason was cut short, and is an error (retryable) rather than a partial turn. An
/// error inside the stream, in whichever shape the server uses, is the API's error.
async fn read_stream(response: http::Response, limit: usize) -> Result<ChatResponse, LlmError> {
    let mut events = http::events(response, limit);
    let mut text = String::new();
    let mut refusal = String::new();
    let mut calls = PartialToolCalls::default();
    let mut usage = Usage::default();
    let mut finish = None;
    let mut done = false;
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some(error) = &event.error {
            // llama.cpp: `error: {"code":500,"message":...}` as its own SSE field.
            return Err(http::stream_error(error));
        }
        let data = event.data.trim();
        if event.event == "error" {
            return Err(http::stream_error(data));
        }
        if data == "[DONE]" {
            done = true;
            break;
        }
        if data.is_empty() {
            continue;
        }
        let chunk = parse_chunk(data)?;
        if chunk.error.is_some() || chunk.object.as_deref() == Some("error") {
            return Err(http::stream_error(data));
        }
        if let Some(u) = chunk.usage {
            usage = u.into();
        }
        for choice in chunk.choices {
            if let Some(piece) = choice.delta.content {
                text.push_str(&piece);
            }
            if let Some(piece) = choice.delta.refusal {
                refusal.push_str(&piece);
            }
            for (position, call) in choice.delta.tool_calls.into_iter().flatten().enumerate() {
                let index = call.index.unwrap_or(position as u32);
                let (name, arguments) = match call.function {
                    Some(f) => (f.name, f.arguments),
                    None => (None, None),
                };
                calls.start(
                    index,
                    call.id.map(Cow::into_owned),
                    name.map(Cow::into_owned),
                );
                if let Some(piece) = arguments {
                    calls.push_arguments(index, &piece);
                }
            }
            if choice.finish_reason.as_deref() == Some("error") {
                return Err(http::stream_error(data));
            }
            if let Some(reason) = choice.finish_reason {
                finish = Some(reason.into_owned());
            }
        }
    }
    if !done && finish.is_none() {
        return Err(LlmError::InvalidResponse(
            "the stream ended before the answer was complete".into(),
        ));
    }
    if !refusal.is_empty() {
        return Ok(refused(refusal, usage));
    }
    Ok(assemble::response(
        Some(text),
        calls.finish(),
        usage,
        finish_reason(finish.as_deref()),
    ))
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
            pub(super) cache_key: Option<&'a str>,
            pub(super) max_tokens_field: MaxTokensField,
        }

        impl Serialize for WireRequest<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let r = self.request;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("model", &r.model)?;
                map.serialize_entry("messages", &WireMessages(r))?;
                if !r.tools.is_empty() {
                    map.serialize_entry("tools", &WireTools(r))?;
                }
                map.serialize_entry(self.max_tokens_field.as_str(), &r.max_tokens)?;
                if let Some(key) = self.cache_key {
                    map.serialize_entry("prompt_cache_key", key)?;
                }
                map.serialize_entry("stream", &self.stream)?;
                if self.stream {
                    map.serialize_entry(
                        "stream_options",
                        &StreamOptions {
                            include_usage: true,
                        },
                    )?;
                }
                map.end()
            }
        }

        #[derive(Serialize)]
        struct StreamOptions {
            include_usage: bool,
        }

        struct WireMessages<'a>(&'a ChatRequest);

        impl Serialize for WireMessages<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(None)?;
                if !self.0.system.is_empty() {
                    seq.serialize_element(&Plain {
                        role: "system",
                        content: &self.0.system,
                    })?;
                }
                for message in &self.0.messages {
                    match message {
                        Message::User { content } => seq.serialize_element(&Plain {
                            role: "user",
                            content,
                        })?,
                        Message::Assistant {
                            text, tool_calls, ..
                        } => seq.serialize_element(&Assistant {
                            role: "assistant",
                            content: text.as_deref(),
                            tool_calls: WireCalls(tool_calls),
                        })?,
                        Message::Tool {
                            call_id, content, ..
                        } => seq.serialize_element(&ToolResult {
                            role: "tool",
                            tool_call_id: call_id,
                            content,
                        })?,
                    }
                }
                seq.end()
            }
        }

        #[derive(Serialize)]
        struct Plain<'a> {
            role: &'static str,
            content: &'a str,
        }

        #[derive(Serialize)]
        struct Assistant<'a> {
            role: &'static str,
            content: Option<&'a str>,
            #[serde(skip_serializing_if = "WireCalls::is_empty")]
            tool_calls: WireCalls<'a>,
        }

        #[derive(Serialize)]
        struct ToolResult<'a> {
            role: &'static str,
            tool_call_id: &'a str,
            content: &'a str,
        }

        struct WireCalls<'a>(&'a [ToolCall]);

        impl WireCalls<'_> {
            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl Serialize for WireCalls<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Call<'a> {
                    id: &'a str,
                    r#type: &'static str,
                    function: Function<'a>,
                }
                #[derive(Serialize)]
                struct Function<'a> {
                    name: &'a str,
                    arguments: String,
                }
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for call in self.0 {
                    seq.serialize_element(&Call {
                        id: &call.id,
                        r#type: "function",
                        function: Function {
                            name: &call.name,
                            arguments: arguments_text(&call.arguments),
                        },
                    })?;
                }
                seq.end()
            }
        }

        fn arguments_text(arguments: &Value) -> String {
            if let Value::Object(map) = arguments {
                if let (1, Some(Value::String(raw))) = (map.len(), map.get("_raw")) {
                    return raw.clone();
                }
            }
            arguments.to_string()
        }

        struct WireTools<'a>(&'a ChatRequest);

        impl Serialize for WireTools<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Tool<'a> {
                    r#type: &'static str,
                    function: Function<'a>,
                }
                #[derive(Serialize)]
                struct Function<'a> {
                    name: &'a str,
                    description: &'a str,
                    parameters: &'a Value,
                }
                let tools = &self.0.tools;
                let mut seq = serializer.serialize_seq(Some(tools.len()))?;
                for tool in tools.iter() {
                    seq.serialize_element(&Tool {
                        r#type: "function",
                        function: Function {
                            name: &tool.name,
                            description: &tool.description,
                            parameters: &tool.parameters,
                        },
                    })?;
                }
                seq.end()
            }
        }
    }

    /// Stream chunks as the test mock, OpenAI, vLLM, Ollama and llama.cpp send them, and
    /// awkward ones.
    const CHUNKS: &[&str] = &[
        r#"{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0}],"created":0,"id":"chatcmpl-mock-1","model":"m","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"delta":{"content":"Hello, wor"},"finish_reason":null,"index":0}],"created":0,"id":"chatcmpl-mock-1","model":"m","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"","name":"memory_store"},"id":"call_1_0","index":0,"type":"function"}]},"finish_reason":null,"index":0}],"created":0,"id":"x","model":"m","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"key\": \"a\\nb\""},"index":0}]},"finish_reason":null,"index":0}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls","index":0}],"object":"chat.completion.chunk"}"#,
        r#"{"choices":[],"created":0,"id":"x","model":"m","object":"chat.completion.chunk","usage":{"completion_tokens":12,"prompt_tokens":345,"total_tokens":357}}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
        r#"{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."},"logprobs":{"content":[{"token":"I","logprob":-0.0001,"bytes":[73],"top_logprobs":[]}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83e\udd80 \"q\" \\ \/ \b\f\n\r\t \u0000"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"é 日本 🦀"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":null,"function":{"name":null,"arguments":"}"}},{"index":2,"function":null}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":null,"content":null}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"no-index","function":{"name":"f"}}]}}]}"#,
        r#"{"choices":[{"index":0,"finish_reason":"error","delta":{}}],"error":{"message":"boom","code":500}}"#,
        r#"{"object":"error","message":"vLLM says no","type":"BadRequestError","code":400}"#,
        r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
        r#"{"error":"text"}"#,
        r#"{"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":null}}"#,
        r#"{"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":null}}}"#,
        r#"{"usage":{"prompt_tokens":0,"completion_tokens":18446744073709551615}}"#,
        r#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"length"}]}"#,
        r#"{"extra":{"nested":[1,-2.5e3,true,false,null,{"a":"\u1234"}]},"choices":[]}"#,
        "  {\"choices\" : [ { \"delta\" : { \"content\" : \"spaced\" } } ] }\n",
        r#"{}"#,
        r#"{"choices":[],"ignored":[1e400,"\ud800",123456789012345678901234567890]}"#,
        // Left to serde_json: errors, or shapes the scanner does not read.
        r#"{"choices":[{"delta":{"content":"dup"},"delta":{}}]}"#,
        r#"{"choices":[],"choices":[]}"#,
        r#"{"usage":{"prompt_tokens":1.0}}"#,
        r#"{"usage":{"prompt_tokens":-1}}"#,
        r#"{"usage":{"prompt_tokens":null}}"#,
        r#"{"usage":{"prompt_tokens":"7"}}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":4294967296}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1e0}]}}]}"#,
        r#"{"choices":[{"delta":null}]}"#,
        r#"{"choices":null}"#,
        r#"{"choices":[{"delta":{"content":"\ud83e"}}]}"#,
        r#"{"choices":[{"delta":{"content":"\udd80 low"}}]}"#,
        r#"{"cho\u0069ces":[{"delta":{"content":"escaped key"}}]}"#,
        r#"{"choices":[{"delta":{"content":7}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#,
        r#"{"choices":[{"delta":{"content":"x"}}],}"#,
        r#"[[{"delta":{"content":"as a sequence"}}]]"#,
        r#"{"choices": [ this is not json"#,
        r#"{"object":5}"#,
        r#"{"error":undefined}"#,
    ];

    #[test]
    fn chunks_are_read_as_serde_json_reads_them() {
        // Of the samples, the well-formed ones the scanner reads itself; cut short or with any
        // character changed, whatever it reads it reads as serde_json does.
        let read = equivalence::check_samples(CHUNKS, |data| {
            equivalence::assert_same(data, Chunk::scan(data), serde_json::from_str::<Chunk>(data))
        });
        assert_eq!(read, 26);
    }

    #[test]
    fn a_chunk_is_parsed_the_same_either_way_or_fails_the_same() {
        for data in CHUNKS {
            let ours = parse_chunk(data).map_err(|e| e.to_string());
            let theirs = http::parse_event::<Chunk>(data).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{data}");
        }
    }

    fn provider(field: MaxTokensField) -> OpenAiProvider {
        OpenAiProvider::new(
            http::HttpClient::new(false).expect("client"),
            "http://localhost:1/v1",
            None,
            true,
        )
        .with_max_tokens_field(Some(field))
    }

    #[test]
    fn the_limit_goes_by_the_name_the_endpoint_knows() {
        let field = |url: &str| default_max_tokens_field(url);
        assert_eq!(
            field("https://api.openai.com/v1"),
            MaxTokensField::MaxCompletionTokens
        );
        assert_eq!(
            field("http://localhost:11434/v1"),
            MaxTokensField::MaxTokens
        );
        assert_eq!(
            field("https://api.openai.com.example.net/v1"),
            MaxTokensField::MaxTokens
        );
    }

    #[test]
    fn request_wire_shape() {
        let request = ChatRequest {
            model: "m".into(),
            system: "be brief".into(),
            messages: vec![
                Message::User {
                    content: "hi".into(),
                },
                Message::Assistant {
                    blocks: Vec::new(),
                    text: None,
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "read_file".into(),
                        arguments: json!({"path": "a"}),
                    }],
                },
                Message::Tool {
                    call_id: "c1".into(),
                    name: "read_file".into(),
                    content: "text".into(),
                    is_error: false,
                },
            ],
            tools: vec![ToolSchema {
                name: "read_file".into(),
                description: "reads".into(),
                parameters: json!({"type": "object"}),
            }]
            .into(),
            max_tokens: 10,
            cache_key: None,
        };
        let bytes = provider(MaxTokensField::MaxTokens).body(&request, true, None);
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function",
                         "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "text"}
                ],
                "tools": [{"type": "function", "function": {
                    "name": "read_file", "description": "reads", "parameters": {"type": "object"}}}],
                "max_tokens": 10,
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn bodies_are_the_bytes_serde_json_wrote() {
        let messages = vec![
            Message::User {
                content: "a task with \"quotes\", a\ttab, a\nline, \u{1} and é 日本".into(),
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: Some("thinking \\ aloud".into()),
                tool_calls: vec![
                    ToolCall {
                        id: "c1".into(),
                        name: "memory_store".into(),
                        arguments: json!({"key": "k\n", "value": {"n": [1, 2.5, null]}}),
                    },
                    ToolCall {
                        id: "c2".into(),
                        name: "broken".into(),
                        arguments: json!({"_raw": "{not json"}),
                    },
                ],
            },
            Message::Tool {
                call_id: "c1".into(),
                name: "memory_store".into(),
                content: "{\"ok\":true}".into(),
                is_error: false,
            },
            Message::Tool {
                call_id: "c2".into(),
                name: "broken".into(),
                content: "bad arguments".into(),
                is_error: true,
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: None,
                tool_calls: Vec::new(),
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
        for system in ["", "You are a \"reviewer\".\nBe brief."] {
            for tools in [Arc::clone(&tools), Vec::new().into()] {
                let request = ChatRequest {
                    model: "gpt-x".into(),
                    system: system.into(),
                    messages: messages.clone(),
                    tools,
                    max_tokens: 4096,
                    cache_key: Some("swarm/role".into()),
                };
                for field in [
                    MaxTokensField::MaxTokens,
                    MaxTokensField::MaxCompletionTokens,
                ] {
                    let provider = provider(field);
                    for stream in [false, true] {
                        for cache_key in [None, Some("swarm/role")] {
                            let expected = serde_json::to_vec(&serde_body::WireRequest {
                                request: &request,
                                stream,
                                cache_key,
                                max_tokens_field: field,
                            })
                            .expect("serializes");
                            // Twice: the second time with the tools already encoded.
                            for _ in 0..2 {
                                let body = provider.body(&request, stream, cache_key);
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
