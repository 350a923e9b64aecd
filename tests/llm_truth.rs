//! Answers that must never pass as good ones, over real HTTP to the mock, both protocols,
//! streamed and not: refusals, cut-off answers, empty answers, errors inside a stream in each
//! shape servers use, a body without `content`, tool-call indices that restart, calls without
//! ids, and an endless stream (which must cost bounded memory).

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;
use swarm_runtime::llm::{ChatRequest, FinishReason, LlmClient, LlmError, Message, ProviderConfig};
use swarm_runtime::spec::ProviderKind;

fn config(mock: &MockLlm, kind: ProviderKind, stream: bool) -> ProviderConfig {
    let mut config = mock.config(kind);
    config.stream = stream;
    config.max_retries = 2;
    config.retry_base_delay = Duration::from_millis(1);
    config.retry_max_delay = Duration::from_millis(5);
    config.timeout = Duration::from_secs(10);
    config
}

fn client(mock: &MockLlm, kind: ProviderKind, stream: bool) -> LlmClient {
    LlmClient::new(config(mock, kind, stream)).expect("client")
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "mock-model".into(),
        system: "sys".into(),
        messages: vec![Message::User {
            content: "hello".into(),
        }],
        tools: Vec::new().into(),
        max_tokens: 64,
        cache_key: None,
    }
}

/// An OpenAI stream of `chunks` (each a JSON value), ended by `[DONE]`.
fn openai_stream(chunks: &[serde_json::Value]) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

/// An Anthropic stream of `(event, data)` pairs.
fn anthropic_stream(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

fn anthropic_message(content: serde_json::Value, stop: &str) -> serde_json::Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
           "content": content, "stop_reason": stop,
           "usage": {"input_tokens": 5, "output_tokens": 3}})
}

/// The body that says `text` and stops for `openai_reason` / `anthropic_reason`.
fn text_body(kind: ProviderKind, stream: bool, text: &str, reason: &str) -> String {
    match (kind, stream) {
        (ProviderKind::Openai, false) => json!({"choices": [{"index": 0,
            "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
        .to_string(),
        (ProviderKind::Openai, true) => openai_stream(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}),
        ]),
        (_, false) => {
            anthropic_message(json!([{"type": "text", "text": text}]), reason).to_string()
        }
        (_, true) => anthropic_stream(&[
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": 3}}),
            json!({"type": "message_stop"}),
        ]),
    }
}

const MODES: [(ProviderKind, bool); 4] = [
    (ProviderKind::Openai, false),
    (ProviderKind::Openai, true),
    (ProviderKind::Anthropic, false),
    (ProviderKind::Anthropic, true),
];

#[tokio::test]
async fn refusals_come_back_as_refusals_with_the_models_words() {
    let mock = MockLlm::start(Script::text("unused")).await;
    for (kind, stream) in MODES {
        let body = match (kind, stream) {
            (ProviderKind::Openai, false) => json!({"choices": [{"index": 0,
                "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."},
                "finish_reason": "stop"}]})
            .to_string(),
            (ProviderKind::Openai, true) => openai_stream(&[
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "refusal": "I can't "}, "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "delta": {"refusal": "help with that."}, "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            ]),
            _ => text_body(kind, stream, "I can't help with that.", "refusal"),
        };
        mock.push_fault(Fault::Raw(body));
        let outcome = client(&mock, kind, stream)
            .complete(&request())
            .await
            .expect("a refusal is an answer the runtime judges");
        assert_eq!(
            outcome.response.finish,
            FinishReason::Refusal,
            "{kind} {stream}"
        );
        assert_eq!(
            outcome.response.text.as_deref(),
            Some("I can't help with that."),
            "{kind} {stream}"
        );
    }
}

#[tokio::test]
async fn cut_off_answers_say_so() {
    let mock = MockLlm::start(Script::text("unused")).await;
    for (kind, stream) in MODES {
        let reason = if kind == ProviderKind::Openai {
            "length"
        } else {
            "max_tokens"
        };
        mock.push_fault(Fault::Raw(text_body(kind, stream, "half an ans", reason)));
        let outcome = client(&mock, kind, stream)
            .complete(&request())
            .await
            .expect("answer");
        assert_eq!(
            outcome.response.finish,
            FinishReason::Length,
            "{kind} {stream}"
        );
    }
}

#[tokio::test]
async fn an_empty_answer_is_asked_again_once_then_fails() {
    let mock = MockLlm::start(Script::text("second time lucky")).await;
    for (kind, stream) in MODES {
        let reason = if kind == ProviderKind::Openai {
            "stop"
        } else {
            "end_turn"
        };
        // Once empty, then the script's answer.
        mock.push_fault(Fault::Raw(text_body(kind, stream, "", reason)));
        let outcome = client(&mock, kind, stream)
            .complete(&request())
            .await
            .expect("answer");
        assert_eq!(
            outcome.response.text.as_deref(),
            Some("second time lucky"),
            "{kind} {stream}"
        );
        // Twice empty: a failure, not an empty result.
        let before = mock.request_count();
        mock.push_faults([
            Fault::Raw(text_body(kind, stream, "", reason)),
            Fault::Raw(text_body(kind, stream, "", reason)),
        ]);
        let err = client(&mock, kind, stream)
            .complete(&request())
            .await
            .expect_err("empty twice");
        assert!(
            matches!(err, LlmError::EmptyAnswer),
            "{kind} {stream}: {err}"
        );
        assert_eq!(mock.request_count() - before, 2, "{kind} {stream}");
    }
}

/// Errors inside a stream that started with 200: (what, body, retryable, message).
fn stream_errors(kind: ProviderKind) -> Vec<(&'static str, String, bool, &'static str)> {
    let start = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}]});
    match kind {
        ProviderKind::Openai => vec![
            (
                "llama.cpp error field",
                format!(
                    "data: {start}\n\nerror: {}\n\n",
                    json!({"code": 500, "message": "slot unavailable", "type": "server_error"})
                ),
                true,
                "slot unavailable",
            ),
            (
                "vLLM error object",
                format!(
                    "data: {start}\n\ndata: {}\n\n",
                    json!({"object": "error", "message": "context too long", "type": "BadRequestError", "code": 400})
                ),
                false,
                "context too long",
            ),
            (
                "error with finish_reason error",
                format!(
                    "data: {start}\n\ndata: {}\n\n",
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}], "error": {"message": "engine crashed", "code": 503}})
                ),
                true,
                "engine crashed",
            ),
            (
                "error without finish_reason",
                format!(
                    "data: {start}\n\ndata: {}\n\n",
                    json!({"error": {"message": "bad tool schema", "type": "invalid_request_error"}})
                ),
                false,
                "bad tool schema",
            ),
        ],
        _ => vec![
            (
                "Anthropic overloaded event",
                anthropic_stream(&[
                    json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ]),
                true,
                "Overloaded",
            ),
            (
                "Anthropic invalid request event",
                anthropic_stream(&[
                    json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
                    json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}),
                ]),
                false,
                "prompt is too long",
            ),
        ],
    }
}

#[tokio::test]
async fn errors_inside_a_stream_are_retried_when_retryable_else_fail_with_the_servers_words() {
    let mock = MockLlm::start(Script::text("recovered")).await;
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        for (what, body, retryable, words) in stream_errors(kind) {
            mock.push_fault(Fault::Raw(body));
            let result = client(&mock, kind, true).complete(&request()).await;
            if retryable {
                let outcome = result.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    outcome.response.text.as_deref(),
                    Some("recovered"),
                    "{what}"
                );
                assert_eq!(outcome.retries, 1, "{what}");
            } else {
                let err = result.expect_err(what);
                assert!(!err.is_retryable(), "{what}: {err}");
                assert!(err.to_string().contains(words), "{what}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn a_body_without_content_is_a_protocol_fault() {
    let mock = MockLlm::start(Script::text("with content")).await;
    mock.push_fault(Fault::Raw(
        json!({"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "end_turn"})
            .to_string(),
    ));
    let outcome = client(&mock, ProviderKind::Anthropic, false)
        .complete(&request())
        .await
        .expect("retried");
    assert_eq!(outcome.retries, 1);
    assert_eq!(outcome.response.text.as_deref(), Some("with content"));
}

#[tokio::test]
async fn a_call_restarting_at_index_zero_is_a_second_call_and_missing_ids_are_unique() {
    let mock = MockLlm::start(Script::text("unused")).await;
    let call = |id: Option<&str>, name: &str, args: &str| {
        let mut call =
            json!({"index": 0, "type": "function", "function": {"name": name, "arguments": args}});
        if let Some(id) = id {
            call["id"] = json!(id);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]})
    };
    let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]});
    mock.push_fault(Fault::Raw(openai_stream(&[
        call(Some("call_a"), "read_file", r#"{"path":"a"}"#),
        call(Some("call_b"), "read_file", r#"{"path":"b"}"#),
        end.clone(),
    ])));
    let outcome = client(&mock, ProviderKind::Openai, true)
        .complete(&request())
        .await
        .expect("answer");
    let calls = &outcome.response.tool_calls;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].arguments, json!({"path": "a"}));
    assert_eq!(calls[1].arguments, json!({"path": "b"}));

    // Without ids, in two answers: never the same id twice.
    let mut ids = Vec::new();
    for stream in [true, false] {
        let body = if stream {
            openai_stream(&[call(None, "list_files", "{}"), end.clone()])
        } else {
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"type": "function", "function": {"name": "list_files", "arguments": "{}"}}]},
                "finish_reason": "tool_calls"}]})
            .to_string()
        };
        mock.push_fault(Fault::Raw(body));
        let outcome = client(&mock, ProviderKind::Openai, stream)
            .complete(&request())
            .await
            .expect("answer");
        ids.push(outcome.response.tool_calls[0].id.clone());
    }
    assert_ne!(ids[0], ids[1], "{ids:?}");
    assert!(
        ids.iter().all(|id| !id.is_empty() && id != "call_0"),
        "{ids:?}"
    );
}

/// The peak resident set of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_a_bound_and_costs_bounded_memory() {
    let mock = MockLlm::start(Script::text("unused")).await;
    let before = peak_rss_kib();
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        mock.push_fault(Fault::Endless);
        let mut config = config(&mock, kind, true);
        config.max_retries = 0;
        config.timeout = Duration::from_secs(60);
        let err = LlmClient::new(config)
            .expect("client")
            .complete(&request())
            .await
            .expect_err("endless");
        let inner = match &err {
            LlmError::RetriesExhausted { last, .. } => &**last,
            other => other,
        };
        assert!(matches!(inner, LlmError::TooLarge { .. }), "{kind}: {err}");
    }
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    // 64 max_tokens allow about 1 MiB; the reading buffers are a few times that at most.
    assert!(grown_mib < 48, "peak RSS grew by {grown_mib} MiB");
}
