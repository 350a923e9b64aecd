//! An in-process mock LLM server on 127.0.0.1 that speaks both the OpenAI chat-completions and
//! the Anthropic Messages protocols, streamed (hand-written SSE frames) and not, with tool calls.
//!
//! A [`Script`] decides each reply from the parsed request. Faults queued with
//! [`MockLlm::push_fault`] are consumed one per request in arrival order. Counters and a log of
//! request bodies let tests assert what the server saw, including that no request that already
//! got a complete answer was sent again ([`MockLlm::repeated_successful_requests`]).
//!
//! The server checks the wire shape the way the real APIs do (tool results must answer the tool
//! calls of the turn right before them, Anthropic needs `max_tokens` and `anthropic-version`) and
//! answers a malformed request with a 400 in the protocol's error envelope.
//!
//! [`MockLlm::bill_like_the_api`] makes the input side of every usage follow the providers'
//! documented prompt caching (see [`super::prompt_cache`]) and keeps the bill.

use super::prompt_cache::{tokens_of, PromptCache};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use futures_util::{stream, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use swarm_runtime::llm::{Message, ProviderConfig, ToolCall, Usage};
use swarm_runtime::spec::ProviderKind;
use tokio::sync::watch;

/// Every protocol in both transfer modes: (provider, stream).
pub const MODES: [(ProviderKind, bool); 4] = [
    (ProviderKind::Openai, false),
    (ProviderKind::Openai, true),
    (ProviderKind::Anthropic, false),
    (ProviderKind::Anthropic, true),
];

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
}

/// A request as the script sees it, in a protocol-neutral form.
#[derive(Debug, Clone)]
pub struct MockRequest {
    pub protocol: Protocol,
    /// 1 for the first request the server received.
    pub number: usize,
    pub model: String,
    pub system: String,
    /// Tool results carry the name of the tool whose call they answer.
    pub messages: Vec<Message>,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    pub stream: bool,
    pub max_tokens: Option<u64>,
    /// The whole body as sent.
    pub body: Value,
}

impl MockRequest {
    pub fn tool_results(&self) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .filter(|m| matches!(m, Message::Tool { .. }))
    }

    pub fn has_tool_result(&self) -> bool {
        self.tool_results().next().is_some()
    }

    /// The text of the last user message.
    pub fn last_user_text(&self) -> Option<&str> {
        self.messages.iter().rev().find_map(|m| match m {
            Message::User { content } => Some(content.as_str()),
            _ => None,
        })
    }
}

/// One tool call in a reply. `arguments` is the JSON text sent to the client, so a test can send
/// text that is not JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct MockToolCall {
    pub name: String,
    pub arguments: String,
}

/// What the server answers: text and/or tool calls, with the usage it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct MockReply {
    pub text: Option<String>,
    pub tool_calls: Vec<MockToolCall>,
    pub usage: Usage,
    /// Anthropic extended thinking: the thinking text and its signature, sent as the first
    /// block (streamed as `thinking_delta` and `signature_delta`).
    pub thinking: Option<(String, String)>,
}

/// The usage a reply reports unless the script sets one.
pub const DEFAULT_USAGE: Usage = Usage::new(10, 5);

impl MockReply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            tool_calls: Vec::new(),
            usage: DEFAULT_USAGE,
            thinking: None,
        }
    }

    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        Self {
            text: None,
            tool_calls: Vec::new(),
            usage: DEFAULT_USAGE,
            thinking: None,
        }
        .with_tool(name, arguments)
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_tool(self, name: impl Into<String>, arguments: Value) -> Self {
        self.with_raw_tool(name, arguments.to_string())
    }

    /// A tool call whose arguments are sent exactly as given, JSON or not.
    pub fn with_raw_tool(mut self, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        self.tool_calls.push(MockToolCall {
            name: name.into(),
            arguments: arguments.into(),
        });
        self
    }

    /// Starts the answer with a thinking block (Anthropic only).
    pub fn with_thinking(
        mut self,
        thinking: impl Into<String>,
        signature: impl Into<String>,
    ) -> Self {
        self.thinking = Some((thinking.into(), signature.into()));
        self
    }

    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Usage::new(input_tokens, output_tokens);
        self
    }
}

/// Decides each reply from the request.
#[derive(Clone)]
pub struct Script(Arc<dyn Fn(&MockRequest) -> MockReply + Send + Sync>);

impl Script {
    pub fn from_fn(f: impl Fn(&MockRequest) -> MockReply + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The same text for every request.
    pub fn text(text: impl Into<String>) -> Self {
        let reply = MockReply::text(text);
        Self::from_fn(move |_| reply.clone())
    }

    /// A call of `tool` with `arguments` until the conversation holds a tool result, then `text`.
    pub fn tool_then_text(
        tool: impl Into<String>,
        arguments: Value,
        text: impl Into<String>,
    ) -> Self {
        let call = MockReply::tool(tool, arguments);
        let done = MockReply::text(text);
        Self::from_fn(move |request| {
            if request.has_tool_result() {
                done.clone()
            } else {
                call.clone()
            }
        })
    }
}

/// A failure the server produces instead of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An error status with the protocol's error envelope, and `Retry-After` (as written) and
    /// `retry-after-ms` headers when set.
    Status {
        status: u16,
        message: String,
        retry_after: Option<String>,
        retry_after_ms: Option<u64>,
    },
    /// A 200 whose body (or first stream event) is not JSON.
    InvalidJson,
    /// A 200 with half of the body, then the connection is closed.
    DropConnection,
    /// Never answers; the request ends when the client gives up.
    Hang,
    /// A 200 with half of the body, then nothing more until the client gives up.
    StallMidResponse,
    /// A 200 with exactly this body: a recorded answer, or a stream as a server sent it
    /// (`text/event-stream` when the request asked for a stream).
    Raw(String),
    /// A 200 stream that never ends: text deltas of the request's protocol, forever.
    Endless,
}

impl Fault {
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        Fault::Status {
            status,
            message: message.into(),
            retry_after: None,
            retry_after_ms: None,
        }
    }

    /// 429 with `Retry-After: <retry_after>` when given.
    pub fn rate_limited(retry_after: Option<&str>) -> Self {
        Fault::Status {
            status: 429,
            message: "rate limit reached".into(),
            retry_after: retry_after.map(str::to_string),
            retry_after_ms: None,
        }
    }

    /// 429 with `retry-after-ms`, as OpenAI sends it.
    pub fn rate_limited_ms(ms: u64) -> Self {
        Fault::Status {
            status: 429,
            message: "rate limit reached".into(),
            retry_after: None,
            retry_after_ms: Some(ms),
        }
    }

    pub fn server_error() -> Self {
        Self::status(500, "internal server error")
    }

    pub fn unavailable() -> Self {
        Self::status(503, "service unavailable")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, message)
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub protocol: Protocol,
    pub body: String,
    /// From `Authorization: Bearer` or `x-api-key`.
    pub api_key: Option<String>,
    pub fault: Option<Fault>,
    /// Whether the script's reply was sent.
    pub succeeded: bool,
}

struct Shared {
    script: Mutex<Script>,
    latency: Mutex<Duration>,
    faults: Mutex<VecDeque<Fault>>,
    /// Requests received so far; a watch so tests can wait for a count without polling.
    arrived: watch::Sender<usize>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    log: Mutex<Vec<LoggedRequest>>,
    /// Set by [`MockLlm::bill_like_the_api`].
    cache: Mutex<Option<PromptCache>>,
    /// While true, requests wait before they are answered (see [`MockLlm::hold`]).
    held: watch::Sender<bool>,
}

/// Counts a request in flight for as long as its handler runs (a hung one until the client
/// disconnects and the server drops it).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Server {
    /// Runs on the caller's runtime.
    Task(tokio::task::JoinHandle<()>),
    /// Runs on its own runtime on a background thread.
    Thread {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

/// The running mock server. Dropping it stops the server.
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Server,
}

impl MockLlm {
    /// Starts the server on the current tokio runtime.
    pub async fn start(script: Script) -> Self {
        let shared = Shared::new(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server: Server::Task(task),
        }
    }

    /// Starts the server on its own runtime on a background thread, for plain `#[test]`s and
    /// tests that run the `swarm` binary.
    pub fn spawn(script: Script) -> Self {
        let shared = Shared::new(script);
        let app = router(shared.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("mock server runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind 127.0.0.1:0");
                    addr_tx
                        .send(listener.local_addr().expect("local address"))
                        .expect("report the address");
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stop_rx => {}
                    }
                });
                // Connections still open (a hung request) are dropped, not waited for.
                runtime.shutdown_background();
            })
            .expect("start the mock server thread");
        let addr = addr_rx.recv().expect("mock server address");
        Self {
            addr,
            shared,
            server: Server::Thread {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// For OpenAI-compatible clients: `http://127.0.0.1:PORT/v1`.
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// For Anthropic clients (which append `/v1/messages`): `http://127.0.0.1:PORT`.
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client configuration for `kind` pointed at this server, with retry delays of a few
    /// milliseconds so that tests with faults stay fast.
    pub fn config(&self, kind: ProviderKind) -> ProviderConfig {
        let base_url = match kind {
            ProviderKind::Anthropic => self.base_url_anthropic(),
            ProviderKind::Openai | ProviderKind::Simulated => self.base_url_openai(),
        };
        let mut config = ProviderConfig::new(kind, "mock-model", base_url);
        config.retry_base_delay = Duration::from_millis(1);
        config.retry_max_delay = Duration::from_millis(5);
        config.timeout = Duration::from_secs(10);
        config
    }

    /// A fixed delay before every answer (and every fault).
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock() = latency;
    }

    pub fn set_script(&self, script: Script) {
        *self.shared.script.lock() = script;
    }

    /// Holds every request (arrived or arriving) unanswered until [`MockLlm::release`]: a test
    /// can look at a run while a call is in flight, without timing assumptions.
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Answers the held requests, and later ones at once.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Queues a fault for the next request that arrives without one waiting before it.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.lock().push_back(fault);
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.faults.lock().extend(faults);
    }

    pub fn pending_faults(&self) -> usize {
        self.shared.faults.lock().len()
    }

    /// Requests received, faulted or not.
    pub fn request_count(&self) -> usize {
        *self.shared.arrived.borrow()
    }

    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// From now on, the input side of every usage follows the providers' prompt caching and
    /// output is counted from the reply; the bill is kept (see [`MockLlm::bill`]).
    pub fn bill_like_the_api(&self) {
        self.shared
            .cache
            .lock()
            .get_or_insert_with(PromptCache::default);
    }

    /// Cache entries expire `lifetime` after their last use (5 minutes unless set).
    pub fn set_cache_lifetime(&self, lifetime: Duration) {
        let mut cache = self.shared.cache.lock();
        cache.get_or_insert_with(PromptCache::default).lifetime = Some(lifetime);
    }

    /// The usage billed so far, summed over every successful request (zero unless billing).
    pub fn bill(&self) -> Usage {
        self.shared
            .cache
            .lock()
            .as_ref()
            .map(|c| c.bill)
            .unwrap_or_default()
    }

    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.lock().clone()
    }

    /// The parsed body of the `index`-th request (0-based).
    pub fn request_json(&self, index: usize) -> Value {
        let body = self.shared.log.lock()[index].body.clone();
        serde_json::from_str(&body).expect("request body is JSON")
    }

    /// Requests that got the script's reply.
    pub fn successful_requests(&self) -> usize {
        self.shared
            .log
            .lock()
            .iter()
            .filter(|r| r.succeeded)
            .count()
    }

    /// How many successful requests had the same body as an earlier successful one: a turn that
    /// was asked for again after it had been answered.
    pub fn repeated_successful_requests(&self) -> usize {
        let log = self.shared.log.lock();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for request in log.iter().filter(|r| r.succeeded) {
            *seen.entry(request.body.as_str()).or_default() += 1;
        }
        seen.values().map(|n| n - 1).sum()
    }

    /// Resolves once at least `count` requests have arrived.
    pub async fn wait_for_requests(&self, count: usize) {
        let mut arrived = self.shared.arrived.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = arrived.wait_for(|n| *n >= count).await;
    }

    /// Blocks until at least `count` requests have arrived or `timeout` passes; whether they did.
    /// Not for use inside a tokio runtime.
    pub fn wait_for_requests_blocking(&self, count: usize, timeout: Duration) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("waiting runtime");
        runtime.block_on(async {
            tokio::time::timeout(timeout, self.wait_for_requests(count))
                .await
                .is_ok()
        })
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Task(task) => task.abort(),
            Server::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl Shared {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script),
            latency: Mutex::new(Duration::ZERO),
            faults: Mutex::new(VecDeque::new()),
            arrived: watch::Sender::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            cache: Mutex::new(None),
            held: watch::Sender::new(false),
        })
    }

    /// Numbers the request, takes its fault and logs it, all under one lock so that arrival
    /// order, fault order and log order agree.
    fn arrive(
        &self,
        protocol: Protocol,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> (usize, usize, Option<Fault>) {
        let mut log = self.log.lock();
        let fault = self.faults.lock().pop_front();
        let index = log.len();
        log.push(LoggedRequest {
            protocol,
            body: String::from_utf8_lossy(body).into_owned(),
            api_key: api_key(headers),
            fault: fault.clone(),
            succeeded: false,
        });
        self.arrived.send_modify(|n| *n += 1);
        (index + 1, index, fault)
    }
}

fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    value("x-api-key").map(str::to_string).or_else(|| {
        value("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .with_state(shared)
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(shared, Protocol::OpenAi, headers, body).await
}

async fn anthropic(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(shared, Protocol::Anthropic, headers, body).await
}

async fn handle(
    shared: Arc<Shared>,
    protocol: Protocol,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let (number, index, fault) = shared.arrive(protocol, &headers, &body);
    let mut held = shared.held.subscribe();
    // The sender lives as long as the server, so the wait cannot fail.
    let _ = held.wait_for(|held| !*held).await;
    let latency = *shared.latency.lock();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request = match parse_request(protocol, number, &headers, &body) {
        Ok(request) => request,
        Err(message) => return error_response(protocol, 400, &message, None, None),
    };
    if let Some(fault) = fault {
        return fault_response(protocol, &request, fault).await;
    }
    if protocol == Protocol::Anthropic {
        if let Err(message) = PromptCache::check_anthropic(&request.body) {
            return error_response(protocol, 400, &message, None, None);
        }
    }
    let script = shared.script.lock().clone();
    let mut reply = (script.0)(&request);
    if let Some(cache) = shared.cache.lock().as_mut() {
        let mut usage = cache.input_usage(
            protocol == Protocol::Anthropic,
            &request.body,
            std::time::Instant::now(),
        );
        usage.output_tokens = output_tokens(&reply);
        cache.bill.add(&usage);
        reply.usage = usage;
    }
    shared.log.lock()[index].succeeded = true;
    reply_response(&request, &reply, ReplyEnd::Complete)
}

async fn fault_response(protocol: Protocol, request: &MockRequest, fault: Fault) -> Response {
    match fault {
        Fault::Status {
            status,
            message,
            retry_after,
            retry_after_ms,
        } => error_response(protocol, status, &message, retry_after, retry_after_ms),
        Fault::InvalidJson => {
            let (content_type, body) = if request.stream {
                (
                    "text/event-stream",
                    "data: {\"choices\": [ this is not json\n\n",
                )
            } else {
                ("application/json", "{\"choices\": [ this is not json")
            };
            Response::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .expect("response")
        }
        Fault::DropConnection => reply_response(request, &cut_off(), ReplyEnd::Dropped),
        Fault::StallMidResponse => reply_response(request, &cut_off(), ReplyEnd::Stalled),
        Fault::Hang => std::future::pending().await,
        Fault::Raw(body) => Response::builder()
            .header(
                header::CONTENT_TYPE,
                if request.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(Body::from(body))
            .expect("response"),
        Fault::Endless => {
            let piece = "x".repeat(512);
            let chunk = match protocol {
                Protocol::OpenAi => format!(
                    "data: {}\n\n",
                    json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})
                ),
                Protocol::Anthropic => format!(
                    "event: content_block_delta\ndata: {}\n\n",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
                ),
            };
            let chunk = Bytes::from(chunk.repeat(64));
            let stream = futures_util::stream::repeat_with(move || {
                Ok::<_, std::convert::Infallible>(chunk.clone())
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream))
                .expect("response")
        }
    }
}

fn cut_off() -> MockReply {
    MockReply::text("this answer is cut off halfway through")
}

fn error_response(
    protocol: Protocol,
    status: u16,
    message: &str,
    retry_after: Option<String>,
    retry_after_ms: Option<u64>,
) -> Response {
    let body = match protocol {
        Protocol::OpenAi => json!({"error": {
            "message": message,
            "type": match status { 429 => "rate_limit_exceeded", 400..=499 => "invalid_request_error", _ => "server_error" },
            "param": null,
            "code": null,
        }}),
        Protocol::Anthropic => json!({"type": "error", "error": {
            "type": match status { 429 => "rate_limit_error", 529 => "overloaded_error", 400..=499 => "invalid_request_error", _ => "api_error" },
            "message": message,
        }}),
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(value) = retry_after {
        response = response.header("retry-after", value);
    }
    if let Some(ms) = retry_after_ms {
        response = response.header("retry-after-ms", ms.to_string());
    }
    response
        .body(Body::from(body.to_string()))
        .expect("response")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyEnd {
    Complete,
    /// Half the body, then the connection closes.
    Dropped,
    /// Half the body, then silence.
    Stalled,
}

fn reply_response(request: &MockRequest, reply: &MockReply, end: ReplyEnd) -> Response {
    let (content_type, chunks) = if request.stream {
        let frames = match request.protocol {
            Protocol::OpenAi => openai_frames(request, reply),
            Protocol::Anthropic => anthropic_frames(request, reply),
        };
        ("text/event-stream", frames)
    } else {
        let body = match request.protocol {
            Protocol::OpenAi => openai_body(request, reply),
            Protocol::Anthropic => anthropic_body(request, reply),
        };
        ("application/json", vec![body.to_string().into_bytes()])
    };
    // Every frame goes out in two pieces cut at an arbitrary byte, so clients must reassemble
    // lines (and characters) across reads.
    let mut pieces: Vec<Bytes> = Vec::with_capacity(chunks.len() * 2);
    for chunk in chunks {
        let cut = chunk.len() / 2;
        let mut chunk = Bytes::from(chunk);
        let tail = chunk.split_off(cut);
        pieces.extend([chunk, tail].into_iter().filter(|p| !p.is_empty()));
    }
    let half = (pieces.len() / 2).max(1);
    let body = match end {
        ReplyEnd::Complete => {
            Body::from_stream(stream::iter(pieces.into_iter().map(Ok::<_, io::Error>)))
        }
        ReplyEnd::Dropped => {
            Body::from_stream(stream::iter(pieces.into_iter().take(half).map(Ok)).chain(
                stream::once(async { Err(io::Error::other("connection dropped by the mock")) }),
            ))
        }
        ReplyEnd::Stalled => Body::from_stream(
            stream::iter(pieces.into_iter().take(half).map(Ok::<_, io::Error>))
                .chain(stream::pending()),
        ),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("response")
}

/// Up to three pieces of `text`, cut at character boundaries.
fn split_in_three(text: &str) -> Vec<&str> {
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    if boundaries.len() < 3 {
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![text]
        };
    }
    let a = boundaries[boundaries.len() / 3];
    let b = boundaries[2 * boundaries.len() / 3];
    vec![&text[..a], &text[a..b], &text[b..]]
}

fn call_id(request: &MockRequest, i: usize) -> String {
    match request.protocol {
        Protocol::OpenAi => format!("call_{}_{}", request.number, i),
        Protocol::Anthropic => format!("toolu_{}_{}", request.number, i),
    }
}

fn openai_finish(reply: &MockReply) -> &'static str {
    if reply.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

/// What a reply's text and tool calls count as output, as the billing mock counts tokens.
fn output_tokens(reply: &MockReply) -> u64 {
    let calls: u64 = reply
        .tool_calls
        .iter()
        .map(|c| tokens_of(&c.name) + tokens_of(&c.arguments))
        .sum();
    (tokens_of(reply.text.as_deref().unwrap_or("")) + calls).max(1)
}

/// OpenAI counts cached tokens inside `prompt_tokens`.
fn openai_usage(usage: Usage) -> Value {
    let mut value = json!({
        "prompt_tokens": usage.prompt_tokens(),
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
    });
    if usage.cache_read_tokens > 0 {
        value["prompt_tokens_details"] = json!({"cached_tokens": usage.cache_read_tokens});
    }
    value
}

/// Anthropic counts cached tokens apart from `input_tokens`.
fn anthropic_usage(usage: Usage, output_tokens: u64) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": output_tokens,
    })
}

fn openai_body(request: &MockRequest, reply: &MockReply) -> Value {
    let mut message = json!({"role": "assistant", "content": reply.text});
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                json!({"id": call_id(request, i), "type": "function",
                       "function": {"name": call.name, "arguments": call.arguments}})
            })
            .collect();
    }
    json!({
        "id": format!("chatcmpl-mock-{}", request.number),
        "object": "chat.completion",
        "created": 0,
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": openai_finish(reply)}],
        "usage": openai_usage(reply.usage),
    })
}

fn sse_data(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

fn openai_frames(request: &MockRequest, reply: &MockReply) -> Vec<Vec<u8>> {
    let id = format!("chatcmpl-mock-{}", request.number);
    let chunk = |delta: Value, finish: Option<&str>| {
        sse_data(&json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for piece in split_in_three(reply.text.as_deref().unwrap_or("")) {
        frames.push(chunk(json!({"content": piece}), None));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{"index": i, "id": call_id(request, i), "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ));
        for piece in split_in_three(&call.arguments) {
            frames.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }
    frames.push(chunk(json!({}), Some(openai_finish(reply))));
    if request.body["stream_options"]["include_usage"] == json!(true) {
        frames.push(sse_data(&json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": request.model,
            "choices": [], "usage": openai_usage(reply.usage),
        })));
    }
    frames.push(b"data: [DONE]\n\n".to_vec());
    frames
}

fn anthropic_stop(reply: &MockReply) -> &'static str {
    if reply.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

fn anthropic_body(request: &MockRequest, reply: &MockReply) -> Value {
    let mut content = Vec::new();
    if let Some((thinking, signature)) = &reply.thinking {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": signature}));
    }
    if let Some(text) = &reply.text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        // The non-streamed protocol can only carry an object; text that is not JSON goes as a string.
        let input = serde_json::from_str::<Value>(&call.arguments)
            .unwrap_or_else(|_| json!(call.arguments));
        content.push(json!({"type": "tool_use", "id": call_id(request, i), "name": call.name, "input": input}));
    }
    json!({
        "id": format!("msg_mock_{}", request.number),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": anthropic_stop(reply),
        "stop_sequence": null,
        "usage": anthropic_usage(reply.usage, reply.usage.output_tokens),
    })
}

fn anthropic_frames(request: &MockRequest, reply: &MockReply) -> Vec<Vec<u8>> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut frames = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": format!("msg_mock_{}", request.number), "type": "message", "role": "assistant",
                "model": request.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": anthropic_usage(reply.usage, 1),
            }}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let mut blocks: Vec<(Value, Vec<Value>)> = Vec::new();
    if let Some((thinking, signature)) = &reply.thinking {
        let mut deltas: Vec<Value> = split_in_three(thinking)
            .into_iter()
            .map(|piece| json!({"type": "thinking_delta", "thinking": piece}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature}));
        blocks.push((
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        ));
    }
    if let Some(text) = &reply.text {
        let deltas = split_in_three(text)
            .into_iter()
            .map(|piece| json!({"type": "text_delta", "text": piece}));
        blocks.push((json!({"type": "text", "text": ""}), deltas.collect()));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        let start =
            json!({"type": "tool_use", "id": call_id(request, i), "name": call.name, "input": {}});
        let deltas = split_in_three(&call.arguments)
            .into_iter()
            .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}));
        blocks.push((start, deltas.collect()));
    }
    for (index, (start, deltas)) in blocks.into_iter().enumerate() {
        frames.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for delta in deltas {
            frames.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        frames.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": anthropic_stop(reply), "stop_sequence": null},
        "usage": {"output_tokens": reply.usage.output_tokens}}),
    ));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    frames
}

fn parse_request(
    protocol: Protocol,
    number: usize,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<MockRequest, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let model = body["model"]
        .as_str()
        .ok_or("model: field required")?
        .to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let max_tokens = body["max_tokens"].as_u64();
    let (system, messages, tools) = match protocol {
        Protocol::OpenAi => parse_openai(&body)?,
        Protocol::Anthropic => {
            if !headers.contains_key("anthropic-version") {
                return Err("anthropic-version: header is required".into());
            }
            if max_tokens.is_none() {
                return Err("max_tokens: Field required".into());
            }
            parse_anthropic(&body)?
        }
    };
    Ok(MockRequest {
        protocol,
        number,
        model,
        system,
        messages,
        tools,
        stream,
        max_tokens,
        body,
    })
}

type Parsed = (String, Vec<Message>, Vec<String>);

/// Text of a `content` that is a string, null, or a list of `{"type": "text", "text": ...}` parts.
fn content_text(content: &Value) -> Result<String, String> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("")),
        other => Err(format!(
            "content must be a string or a list of parts, got {other}"
        )),
    }
}

/// Tool calls of the last assistant turn that still wait for their results.
#[derive(Default)]
struct PendingCalls {
    names: HashMap<String, String>,
    waiting: Vec<String>,
}

impl PendingCalls {
    fn called(&mut self, id: &str, name: &str) {
        self.names.insert(id.to_string(), name.to_string());
        self.waiting.push(id.to_string());
    }

    /// The name of the tool the result answers; an error if it answers no waiting call.
    fn answer(&mut self, id: &str) -> Result<String, String> {
        let position = self.waiting.iter().position(|w| w == id).ok_or_else(|| {
            format!("tool result for `{id}` does not answer a tool call of the turn before it")
        })?;
        self.waiting.remove(position);
        Ok(self.names[id].clone())
    }

    fn require_answered(&self) -> Result<(), String> {
        if self.waiting.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "tool calls without results right after them: {}",
                self.waiting.join(", ")
            ))
        }
    }
}

/// The messages of `body` with their roles.
fn roles(body: &Value) -> Result<Vec<(&str, &Value)>, String> {
    let messages = body["messages"]
        .as_array()
        .ok_or("messages: must be an array")?;
    messages
        .iter()
        .map(|m| {
            let role = m["role"]
                .as_str()
                .ok_or("messages[].role: field required")?;
            Ok((role, m))
        })
        .collect()
}

fn parse_openai(body: &Value) -> Result<Parsed, String> {
    let mut system = String::new();
    let mut messages = Vec::new();
    let mut pending = PendingCalls::default();
    for (role, m) in roles(body)? {
        if role != "tool" {
            pending.require_answered()?;
        }
        match role {
            "system" | "developer" => system.push_str(&content_text(&m["content"])?),
            "user" => messages.push(Message::User {
                content: content_text(&m["content"])?,
            }),
            "assistant" => {
                let mut tool_calls = Vec::new();
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    let id = call["id"]
                        .as_str()
                        .ok_or("tool_calls[].id: field required")?;
                    let name = call["function"]["name"]
                        .as_str()
                        .ok_or("tool_calls[].function.name: field required")?;
                    let arguments = call["function"]["arguments"]
                        .as_str()
                        .ok_or("tool_calls[].function.arguments: must be a string")?;
                    pending.called(id, name);
                    tool_calls.push(ToolCall {
                        id: id.to_string(),
                        name: name.to_string(),
                        arguments: serde_json::from_str(arguments)
                            .unwrap_or_else(|_| json!({"_raw": arguments})),
                    });
                }
                let text = content_text(&m["content"])?;
                messages.push(Message::Assistant {
                    blocks: Vec::new(),
                    text: (!text.is_empty()).then_some(text),
                    tool_calls,
                });
            }
            "tool" => {
                let id = m["tool_call_id"]
                    .as_str()
                    .ok_or("tool_call_id: field required")?;
                messages.push(Message::Tool {
                    call_id: id.to_string(),
                    name: pending.answer(id)?,
                    content: content_text(&m["content"])?,
                    is_error: false,
                });
            }
            other => return Err(format!("messages[].role: unknown role `{other}`")),
        }
    }
    pending.require_answered()?;
    let mut tools = Vec::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        if tool["type"] != "function" {
            return Err("tools[].type: must be `function`".into());
        }
        tools.push(
            tool["function"]["name"]
                .as_str()
                .ok_or("tools[].function.name: field required")?
                .to_string(),
        );
    }
    Ok((system, messages, tools))
}

fn parse_anthropic(body: &Value) -> Result<Parsed, String> {
    let system = content_text(&body["system"])?;
    let mut messages = Vec::new();
    let mut pending = PendingCalls::default();
    for (role, m) in roles(body)? {
        let blocks = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(blocks) => blocks.clone(),
            _ => return Err("messages[].content: field required".into()),
        };
        match role {
            "user" => {
                let mut text = String::new();
                for block in &blocks {
                    match block["type"].as_str() {
                        Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
                        Some("tool_result") => {
                            let id = block["tool_use_id"]
                                .as_str()
                                .ok_or("tool_result.tool_use_id: field required")?;
                            messages.push(Message::Tool {
                                call_id: id.to_string(),
                                name: pending.answer(id)?,
                                content: content_text(&block["content"])?,
                                is_error: block["is_error"].as_bool().unwrap_or(false),
                            });
                        }
                        other => {
                            return Err(format!(
                                "user content block type {other:?} is not supported"
                            ))
                        }
                    }
                }
                // Results must all be in the user turn right after the calls.
                pending.require_answered()?;
                if !text.is_empty() {
                    messages.push(Message::User { content: text });
                }
            }
            "assistant" => {
                pending.require_answered()?;
                let mut text = String::new();
                let mut tool_calls = Vec::new();
                for block in &blocks {
                    match block["type"].as_str() {
                        Some("text") => {
                            let piece = block["text"].as_str().unwrap_or("");
                            if piece.is_empty() {
                                return Err("text content blocks must be non-empty".into());
                            }
                            text.push_str(piece);
                        }
                        Some("tool_use") => {
                            let id = block["id"].as_str().ok_or("tool_use.id: field required")?;
                            let name = block["name"]
                                .as_str()
                                .ok_or("tool_use.name: field required")?;
                            if !block["input"].is_object() {
                                return Err("tool_use.input: must be an object".into());
                            }
                            pending.called(id, name);
                            tool_calls.push(ToolCall {
                                id: id.to_string(),
                                name: name.to_string(),
                                arguments: block["input"].clone(),
                            });
                        }
                        // As the API: a thinking block comes back whole, signature and all.
                        Some("thinking") => {
                            if !block["thinking"].is_string() || !block["signature"].is_string() {
                                return Err(
                                    "thinking block: thinking and signature required".into()
                                );
                            }
                        }
                        Some("redacted_thinking") => {}
                        other => {
                            return Err(format!(
                                "assistant content block type {other:?} is not supported"
                            ))
                        }
                    }
                }
                messages.push(Message::Assistant {
                    blocks: Vec::new(),
                    text: (!text.is_empty()).then_some(text),
                    tool_calls,
                });
            }
            other => return Err(format!("messages[].role: unknown role `{other}`")),
        }
    }
    pending.require_answered()?;
    let mut tools = Vec::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        if !tool["input_schema"].is_object() {
            return Err("tools[].input_schema: field required".into());
        }
        tools.push(
            tool["name"]
                .as_str()
                .ok_or("tools[].name: field required")?
                .to_string(),
        );
    }
    Ok((system, messages, tools))
}
