//! A mock OpenAI-compatible chat-completions server with a fixed latency, run on its own thread
//! and tokio runtime so that its CPU is never counted as the child's.
//!
//! It is stateless across requests: the number of `tool` messages already in the conversation
//! tells it which turn it is answering, so every task takes exactly `turns` calls: a
//! `memory_store` call on each turn but the last, then a final text answer (which ends the task).
//! Both plain JSON and SSE streaming (`"stream": true`) are answered, whichever the client asks.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the mock saw; read by the bench after the child exits.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub streamed: AtomicU64,
    pub tool_answers: AtomicU64,
    pub final_answers: AtomicU64,
    pub bad_requests: AtomicU64,
    pub request_bytes: AtomicU64,
    in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
}

/// A snapshot of [`Counters`], so one run's figures can be subtracted from the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub streamed: u64,
    pub tool_answers: u64,
    pub final_answers: u64,
    pub bad_requests: u64,
    pub request_bytes: u64,
    pub peak_in_flight: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::SeqCst),
            streamed: self.streamed.load(Ordering::SeqCst),
            tool_answers: self.tool_answers.load(Ordering::SeqCst),
            final_answers: self.final_answers.load(Ordering::SeqCst),
            bad_requests: self.bad_requests.load(Ordering::SeqCst),
            request_bytes: self.request_bytes.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
        }
    }

    /// Starts a new measurement window for the peak (the other counters are diffed instead).
    pub fn reset_peak(&self) {
        self.peak_in_flight.store(0, Ordering::SeqCst);
    }
}

impl Counts {
    /// What happened between `earlier` and `self`; the peak is the window's own.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            requests: self.requests - earlier.requests,
            streamed: self.streamed - earlier.streamed,
            tool_answers: self.tool_answers - earlier.tool_answers,
            final_answers: self.final_answers - earlier.final_answers,
            bad_requests: self.bad_requests - earlier.bad_requests,
            request_bytes: self.request_bytes - earlier.request_bytes,
            peak_in_flight: self.peak_in_flight,
        }
    }
}

struct Shared {
    latency: Duration,
    turns: u32,
    counters: Arc<Counters>,
    capture: Arc<Capture>,
}

/// The request bodies of one run, kept while capturing so the floor client can send the same.
#[derive(Debug, Default)]
pub struct Capture {
    bodies: parking_lot::Mutex<Option<Vec<Bytes>>>,
}

impl Capture {
    /// Keeps every body from now on (forgetting any kept before).
    pub fn start(&self) {
        *self.bodies.lock() = Some(Vec::new());
    }

    /// The bodies kept since [`Capture::start`]; stops keeping them.
    pub fn take(&self) -> Vec<Bytes> {
        self.bodies.lock().take().unwrap_or_default()
    }
}

/// A running mock; it lives until the bench process exits.
pub struct MockLlm {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    pub capture: Arc<Capture>,
}

impl MockLlm {
    /// Binds 127.0.0.1 (`port` 0: any free port) and serves on a dedicated thread.
    pub fn start(latency: Duration, turns: u32, port: u16) -> std::io::Result<MockLlm> {
        let counters = Arc::new(Counters::default());
        let capture = Arc::new(Capture::default());
        let shared = Arc::new(Shared {
            latency,
            turns,
            counters: Arc::clone(&counters),
            capture: Arc::clone(&capture),
        });
        // One thread is plenty for sleeping and a few thousand small bodies a second, and it
        // leaves the other core to the child being measured.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(shared);
        std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || {
                if let Err(err) = runtime.block_on(async { axum::serve(listener, app).await }) {
                    eprintln!("mock LLM server stopped: {err}");
                }
            })?;
        Ok(MockLlm {
            addr,
            counters,
            capture,
        })
    }

    /// The `base_url` a swarm file should name.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// Decrements the in-flight gauge however the handler ends (including a dropped connection).
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let counters = &shared.counters;
    let seq = counters.requests.fetch_add(1, Ordering::SeqCst);
    counters
        .request_bytes
        .fetch_add(body.len() as u64, Ordering::SeqCst);
    let _in_flight = InFlight::enter(counters);
    if let Some(bodies) = shared.capture.bodies.lock().as_mut() {
        bodies.push(body.clone());
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => {
            counters.bad_requests.fetch_add(1, Ordering::SeqCst);
            return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {err}"));
        }
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        counters.bad_requests.fetch_add(1, Ordering::SeqCst);
        return error(StatusCode::BAD_REQUEST, "no messages");
    };
    let tool_results = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .count();
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let answer = if tool_results + 1 < shared.turns as usize {
        counters.tool_answers.fetch_add(1, Ordering::SeqCst);
        Answer::Tool {
            id: format!("call_{seq}"),
            arguments: json!({"key": format!("load/{seq}"), "value": format!("note {seq}")})
                .to_string(),
        }
    } else {
        counters.final_answers.fetch_add(1, Ordering::SeqCst);
        Answer::Text(format!("Done ({seq})."))
    };
    let usage = json!({
        "prompt_tokens": body.len() / 4,
        "completion_tokens": 12,
        "total_tokens": body.len() / 4 + 12,
    });

    tokio::time::sleep(shared.latency).await;

    if stream {
        counters.streamed.fetch_add(1, Ordering::SeqCst);
        let body = sse_body(seq, &model, &answer, include_usage.then_some(&usage));
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    } else {
        let (message, finish) = match &answer {
            Answer::Tool { id, arguments } => (
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function",
                     "function": {"name": "memory_store", "arguments": arguments}}
                ]}),
                "tool_calls",
            ),
            Answer::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        };
        let body = json!({
            "id": format!("chatcmpl-{seq}"),
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        });
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

enum Answer {
    Tool { id: String, arguments: String },
    Text(String),
}

/// The chunks a real server sends: the role and the start of the answer, the rest of it, the
/// finish reason, usage when asked for, then `[DONE]`.
fn sse_body(seq: u64, model: &str, answer: &Answer, usage: Option<&Value>) -> String {
    let chunk = |choices: Value| {
        json!({
            "id": format!("chatcmpl-{seq}"),
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": choices,
        })
    };
    let mut chunks = Vec::with_capacity(5);
    let finish = match answer {
        Answer::Tool { id, arguments } => {
            chunks.push(chunk(json!([{"index": 0, "delta": {
                "role": "assistant", "content": null,
                "tool_calls": [{"index": 0, "id": id, "type": "function",
                                "function": {"name": "memory_store", "arguments": ""}}]
            }, "finish_reason": null}])));
            chunks.push(chunk(json!([{"index": 0, "delta": {
                "tool_calls": [{"index": 0, "function": {"arguments": arguments}}]
            }, "finish_reason": null}])));
            "tool_calls"
        }
        Answer::Text(text) => {
            let split = text.len() / 2;
            let (head, tail) = text.split_at(split);
            chunks.push(chunk(json!([{"index": 0, "delta": {
                "role": "assistant", "content": head
            }, "finish_reason": null}])));
            chunks.push(chunk(
                json!([{"index": 0, "delta": {"content": tail}, "finish_reason": null}]),
            ));
            "stop"
        }
    };
    chunks.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
    ));
    if let Some(usage) = usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage.clone();
        chunks.push(last);
    }
    let mut out = String::new();
    for c in chunks {
        out.push_str("data: ");
        out.push_str(&c.to_string());
        out.push_str("\n\n");
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
