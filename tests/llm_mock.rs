//! The mock server itself, as later tests rely on it: it runs from a plain `#[test]` (as tests
//! of the `swarm` binary need), counts repeated answered requests, lets tests wait for requests
//! without sleeping, and rejects the malformed requests the real APIs reject.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;
use swarm_runtime::llm::{ChatRequest, LlmClient, LlmError, Message, ToolCall};
use swarm_runtime::spec::ProviderKind;

/// One HTTP/1.1 request with a blocking socket: no async runtime on the test's side.
fn post(mock: &MockLlm, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let mut socket = TcpStream::connect(mock.addr()).expect("connect");
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         anthropic-version: 2023-06-01\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        mock.addr(),
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head and body");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let body = String::from_utf8(body).expect("a UTF-8 body");
    (status, format!("{head}\n\n{body}"))
}

/// The payload of a chunked body (pieces may split characters, so this works on bytes).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end]).expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        let data = &rest[line_end + 2..];
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
    body
}

#[test]
fn runs_from_a_plain_test_and_counts_repeated_answers() {
    let mock = MockLlm::spawn(Script::text("plain"));
    let first = json!({"model": "m", "messages": [{"role": "user", "content": "one"}]});
    let second = json!({"model": "m", "messages": [{"role": "user", "content": "two"}]});

    let (status, response) = post(&mock, "/v1/chat/completions", &first);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("\"content\":\"plain\""), "{response}");
    assert!(mock.wait_for_requests_blocking(1, Duration::from_secs(5)));
    assert_eq!(mock.repeated_successful_requests(), 0);

    post(&mock, "/v1/chat/completions", &second);
    // A fault does not count as an answer, so the retry after it is no repetition.
    mock.push_fault(Fault::server_error());
    let (status, _) = post(&mock, "/v1/chat/completions", &first);
    assert_eq!(status, 500);
    assert_eq!(mock.repeated_successful_requests(), 0);

    post(&mock, "/v1/chat/completions", &first);
    post(&mock, "/v1/chat/completions", &first);
    assert_eq!(mock.request_count(), 5);
    assert_eq!(mock.successful_requests(), 4);
    assert_eq!(mock.repeated_successful_requests(), 2);
    assert_eq!(mock.requests()[2].fault, Some(Fault::server_error()));
}

#[test]
fn streams_frames_by_protocol() {
    let mock = MockLlm::spawn(Script::tool_then_text(
        "list_files",
        json!({"dir": "."}),
        "done",
    ));
    let openai = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                        "messages": [{"role": "user", "content": "go"}]});
    let (_, response) = post(&mock, "/v1/chat/completions", &openai);
    assert!(response.contains("text/event-stream"), "{response}");
    assert!(
        response.contains("\"finish_reason\":\"tool_calls\""),
        "{response}"
    );
    assert!(response.contains("\"prompt_tokens\":10"), "{response}");
    assert!(
        response.trim_end().ends_with("data: [DONE]") || response.contains("data: [DONE]"),
        "{response}"
    );

    let anthropic = json!({"model": "m", "max_tokens": 10, "stream": true,
                           "messages": [{"role": "user", "content": "go"}]});
    let (_, response) = post(&mock, "/v1/messages", &anthropic);
    for event in [
        "message_start",
        "content_block_start",
        "input_json_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(response.contains(event), "{event} missing: {response}");
    }
}

#[tokio::test]
async fn rejects_tool_results_that_answer_no_call() {
    let mock = MockLlm::start(Script::text("unreachable")).await;
    let call = ToolCall {
        id: "call_1".into(),
        name: "read_file".into(),
        arguments: json!({}),
    };
    let result = |id: &str| Message::Tool {
        call_id: id.into(),
        name: "read_file".into(),
        content: "x".into(),
        is_error: false,
    };
    let cases = [
        // A result for a call nobody made.
        vec![
            Message::User {
                content: "go".into(),
            },
            result("call_9"),
        ],
        // A call whose result never comes.
        vec![
            Message::User {
                content: "go".into(),
            },
            Message::Assistant {
                blocks: Vec::new(),
                text: None,
                tool_calls: vec![call.clone()],
            },
            Message::User {
                content: "and?".into(),
            },
        ],
    ];
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let mut config = mock.config(kind);
        config.max_retries = 0;
        let client = LlmClient::new(config).expect("client");
        for messages in cases.clone() {
            let request = ChatRequest {
                model: "m".into(),
                system: String::new(),
                messages,
                tools: Vec::new().into(),
                max_tokens: 10,
                cache_key: None,
            };
            let err = client.complete(&request).await.expect_err("malformed");
            assert!(
                matches!(err, LlmError::Api { status: 400, .. }),
                "{kind}: {err:?}"
            );
        }
    }
    assert_eq!(mock.successful_requests(), 0);
}

#[tokio::test]
async fn waiting_for_requests_needs_no_sleep() {
    let mock = MockLlm::start(Script::text("ok")).await;
    mock.push_fault(Fault::Hang);
    let client = LlmClient::new(mock.config(ProviderKind::Openai)).expect("client");
    let request = ChatRequest {
        model: "m".into(),
        system: String::new(),
        messages: vec![Message::User {
            content: "hi".into(),
        }],
        tools: Vec::new().into(),
        max_tokens: 10,
        cache_key: None,
    };
    let call = tokio::spawn(async move { client.complete(&request).await });
    mock.wait_for_requests(1).await;
    assert_eq!(mock.in_flight(), 1, "the hung request is in flight");
    call.abort();
}
