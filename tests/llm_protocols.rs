//! Both protocols over real HTTP against the mock server, streamed and not: text, tool calls
//! whose arguments arrive in pieces, usage, and tool results sent back in each protocol's shape.

mod support;

use serde_json::json;
use support::*;
use swarm_runtime::llm::{
    ChatRequest, ChatResponse, FinishReason, LlmClient, Message, ToolCall, ToolSchema, Usage,
};
use swarm_runtime::spec::ProviderKind;

fn client(mock: &MockLlm, kind: ProviderKind, stream: bool) -> LlmClient {
    let mut config = mock.config(kind);
    config.stream = stream;
    config.max_retries = 0;
    LlmClient::new(config).expect("client")
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "mock-model".into(),
        system: "You are terse.".into(),
        messages,
        tools: vec![ToolSchema {
            name: "write_file".into(),
            description: "Writes a file in the workspace".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }]
        .into(),
        max_tokens: 256,
        cache_key: None,
    }
}

fn user(text: &str) -> Message {
    Message::User {
        content: text.into(),
    }
}

async fn complete(client: &LlmClient, request: &ChatRequest) -> ChatResponse {
    client
        .complete(request)
        .await
        .expect("call succeeds")
        .response
}

#[tokio::test]
async fn text_turns_come_back_whole_with_usage_in_every_mode() {
    let text = "Héllo wörld — a reply long enough to be cut into pieces ✓";
    let mock = MockLlm::start(Script::from_fn(move |r| {
        MockReply::text(format!("{text} [{}]", r.last_user_text().unwrap_or("?")))
            .with_usage(123, 45)
    }))
    .await;
    for (kind, stream) in MODES {
        let response = complete(&client(&mock, kind, stream), &request(vec![user("hi")])).await;
        let mode = format!("{kind} stream={stream}");
        assert_eq!(
            response.text.as_deref(),
            Some(&*format!("{text} [hi]")),
            "{mode}"
        );
        assert!(response.tool_calls.is_empty(), "{mode}");
        assert_eq!(response.finish, FinishReason::Stop, "{mode}");
        assert_eq!(response.usage, Usage::new(123, 45), "{mode}");
    }
    let seen: Vec<(Protocol, bool)> = (0..4)
        .map(|i| {
            let body = mock.request_json(i);
            (mock.requests()[i].protocol, body["stream"] == json!(true))
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Protocol::OpenAi, false),
            (Protocol::OpenAi, true),
            (Protocol::Anthropic, false),
            (Protocol::Anthropic, true)
        ]
    );
}

#[tokio::test]
async fn tool_calls_are_assembled_from_argument_pieces_in_every_mode() {
    let args_a =
        json!({"path": "notes/résumé.md", "content": "line one\nline \"two\"", "n": [1, 2, 3]});
    let args_b = json!({"path": "b.txt"});
    let (a, b) = (args_a.clone(), args_b.clone());
    let mock = MockLlm::start(Script::from_fn(move |_| {
        MockReply::tool("write_file", a.clone())
            .with_tool("write_file", b.clone())
            .with_text("Writing two files.")
    }))
    .await;
    for (kind, stream) in MODES {
        let mode = format!("{kind} stream={stream}");
        let response = complete(&client(&mock, kind, stream), &request(vec![user("go")])).await;
        assert_eq!(response.finish, FinishReason::ToolCalls, "{mode}");
        assert_eq!(
            response.text.as_deref(),
            Some("Writing two files."),
            "{mode}"
        );
        let calls: Vec<(&str, &serde_json::Value)> = response
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), &c.arguments))
            .collect();
        assert_eq!(
            calls,
            [("write_file", &args_a), ("write_file", &args_b)],
            "{mode}"
        );
        let ids: Vec<&str> = response.tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert!(
            ids[0] != ids[1] && ids.iter().all(|id| !id.is_empty()),
            "{mode}: {ids:?}"
        );
    }
}

#[tokio::test]
async fn arguments_that_are_not_json_arrive_raw() {
    let mock = MockLlm::start(Script::from_fn(|_| {
        MockReply::text("").with_raw_tool("write_file", "{\"path\": \"a.txt\", oops")
    }))
    .await;
    for (kind, stream) in [
        (ProviderKind::Openai, false),
        (ProviderKind::Openai, true),
        (ProviderKind::Anthropic, true),
    ] {
        let response = complete(&client(&mock, kind, stream), &request(vec![user("go")])).await;
        assert_eq!(
            response.tool_calls[0].arguments,
            json!({"_raw": "{\"path\": \"a.txt\", oops"}),
            "{kind} stream={stream}"
        );
    }
}

/// A full round: the model calls two tools, the results go back, the model answers.
#[tokio::test]
async fn tool_results_go_back_in_each_protocols_shape() {
    let mock = MockLlm::start(Script::from_fn(|r| {
        if r.has_tool_result() {
            let summary: Vec<String> = r
                .tool_results()
                .map(|m| match m {
                    Message::Tool {
                        name,
                        content,
                        is_error,
                        ..
                    } => format!("{name}:{content}:{is_error}"),
                    _ => unreachable!(),
                })
                .collect();
            MockReply::text(summary.join(","))
        } else {
            MockReply::tool("write_file", json!({"path": "a"}))
                .with_tool("read_file", json!({"path": "b"}))
        }
    }))
    .await;
    for (kind, stream) in MODES {
        let mode = format!("{kind} stream={stream}");
        let client = client(&mock, kind, stream);
        let mut transcript = vec![user("go")];
        let first = complete(&client, &request(transcript.clone())).await;
        let calls: Vec<ToolCall> = first.tool_calls.clone();
        assert_eq!(calls.len(), 2, "{mode}");
        transcript.push(Message::Assistant {
            blocks: Vec::new(),
            text: first.text,
            tool_calls: calls.clone(),
        });
        transcript.push(Message::Tool {
            call_id: calls[0].id.clone(),
            name: calls[0].name.clone(),
            content: "written".into(),
            is_error: false,
        });
        transcript.push(Message::Tool {
            call_id: calls[1].id.clone(),
            name: calls[1].name.clone(),
            content: "no such file".into(),
            is_error: true,
        });
        let before = mock.request_count();
        let second = complete(&client, &request(transcript)).await;
        let expected_error_flag = kind == ProviderKind::Anthropic;
        assert_eq!(
            second.text.as_deref(),
            Some(&*format!(
                "write_file:written:false,read_file:no such file:{expected_error_flag}"
            )),
            "{mode}"
        );

        let body = mock.request_json(before);
        let messages = body["messages"].as_array().expect("messages");
        match kind {
            ProviderKind::Openai => {
                let n = messages.len();
                assert_eq!(
                    messages[n - 3]["tool_calls"][1]["function"]["arguments"],
                    json!("{\"path\":\"b\"}"),
                    "{mode}"
                );
                assert_eq!(
                    messages[n - 2],
                    json!({"role": "tool", "tool_call_id": calls[0].id, "content": "written"}),
                    "{mode}"
                );
                assert_eq!(
                    messages[n - 1],
                    json!({"role": "tool", "tool_call_id": calls[1].id, "content": "no such file"}),
                    "{mode}"
                );
            }
            _ => {
                // Prompt caching is on by default: the system prompt and the newest message
                // carry breakpoints.
                assert_eq!(
                    body["system"],
                    json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]),
                    "{mode}"
                );
                let last = messages.last().expect("a last message");
                assert_eq!(
                    last,
                    &json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": calls[0].id, "content": "written"},
                        {"type": "tool_result", "tool_use_id": calls[1].id, "content": "no such file", "is_error": true,
                         "cache_control": {"type": "ephemeral"}}
                    ]}),
                    "{mode}"
                );
                assert_eq!(
                    messages[0],
                    json!({"role": "user", "content": [
                        {"type": "text", "text": "go", "cache_control": {"type": "ephemeral"}}
                    ]}),
                    "the newest message of the turn before keeps its breakpoint: {mode}"
                );
            }
        }
    }
}

/// The OpenAI protocol names the output limit as the endpoint knows it: `max_tokens` for a
/// compatible server unless `llm.max_tokens_field` says `max_completion_tokens` (OpenAI's own
/// reasoning models reject `max_tokens`; api.openai.com gets it by default).
#[tokio::test]
async fn the_output_limit_goes_in_the_field_the_endpoint_wants() {
    let mock = MockLlm::start(Script::text("ok")).await;
    for (field, stream) in [
        (None, false),
        (
            Some(swarm_runtime::spec::MaxTokensField::MaxCompletionTokens),
            true,
        ),
        (
            Some(swarm_runtime::spec::MaxTokensField::MaxCompletionTokens),
            false,
        ),
        (Some(swarm_runtime::spec::MaxTokensField::MaxTokens), true),
    ] {
        let mut config = mock.config(ProviderKind::Openai);
        config.stream = stream;
        config.max_retries = 0;
        config.max_tokens_field = field;
        let client = LlmClient::new(config).expect("client");
        complete(&client, &request(vec![user("hi")])).await;
        let body = mock.request_json(mock.request_count() - 1);
        let (sent, absent) = match field {
            Some(swarm_runtime::spec::MaxTokensField::MaxCompletionTokens) => {
                ("max_completion_tokens", "max_tokens")
            }
            _ => ("max_tokens", "max_completion_tokens"),
        };
        assert_eq!(body[sent], 256, "{field:?} stream={stream}: {body}");
        assert!(body.get(absent).is_none(), "{field:?}: {body}");
    }
}

/// With `llm.thinking`, Anthropic requests ask for extended thinking; the answer's thinking
/// block comes back on the next request exactly as received, signature and all (the API
/// requires it when thinking is used with tools), and its text is never the answer's text.
#[tokio::test]
async fn thinking_blocks_go_back_with_their_signature_unchanged() {
    const THINKING: &str = "The user wants a file; I should write it first.";
    const SIGNATURE: &str = "EqQBCkgIARABGAIiQL+sig/with+slashes==";
    let mock = MockLlm::start(Script::from_fn(|r| {
        if r.has_tool_result() {
            MockReply::text("written")
        } else {
            MockReply::tool("write_file", json!({"path": "a"})).with_thinking(THINKING, SIGNATURE)
        }
    }))
    .await;
    for stream in [false, true] {
        let mut config = mock.config(ProviderKind::Anthropic);
        config.stream = stream;
        config.max_retries = 0;
        config.thinking = Some(2048);
        let client = LlmClient::new(config).expect("client");
        let mut transcript = vec![user("go")];
        let first = complete(&client, &request(transcript.clone())).await;
        let asked = mock.request_json(mock.request_count() - 1);
        assert_eq!(
            asked["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048}),
            "stream={stream}: {asked}"
        );
        assert_eq!(first.text, None, "thinking is not the answer's text");
        assert_eq!(first.tool_calls.len(), 1);
        let thinking_block =
            json!({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE});
        assert_eq!(
            first.blocks.first(),
            Some(&thinking_block),
            "stream={stream}"
        );
        transcript.push(Message::Assistant {
            text: first.text.clone(),
            tool_calls: first.tool_calls.clone(),
            blocks: first.blocks.clone(),
        });
        transcript.push(Message::Tool {
            call_id: first.tool_calls[0].id.clone(),
            name: "write_file".into(),
            content: "ok".into(),
            is_error: false,
        });
        let second = complete(&client, &request(transcript)).await;
        assert_eq!(second.text.as_deref(), Some("written"));
        assert!(second.blocks.is_empty(), "plain answers keep no blocks");
        let sent = mock.request_json(mock.request_count() - 1);
        let assistant = &sent["messages"][1];
        assert_eq!(assistant["role"], "assistant");
        assert_eq!(assistant["content"][0], thinking_block, "stream={stream}");
        assert_eq!(assistant["content"][1]["type"], "tool_use");
        assert_eq!(assistant["content"][1]["id"], json!(first.tool_calls[0].id));
    }
}
