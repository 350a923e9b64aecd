//! Building a [`ChatResponse`] from what a protocol sends: tool-call arguments that arrive as JSON
//! text (whole or in streamed pieces), and the normalisation both protocols share.

use super::{ChatResponse, FinishReason, ToolCall, Usage};
use serde_json::Value;

/// Parses tool-call arguments. Empty text means no arguments; text that is not JSON is kept as
/// `{"_raw": text}` so the tool can tell the model what went wrong.
pub(crate) fn parse_arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| {
        let mut raw = serde_json::Map::with_capacity(1);
        raw.insert("_raw".to_string(), Value::String(text.to_string()));
        Value::Object(raw)
    })
}

/// Tool calls being streamed: pieces arrive tagged with an index (OpenAI: the tool call's index;
/// Anthropic: the content block's index).
#[derive(Debug, Default)]
pub(crate) struct PartialToolCalls {
    // A short list searched linearly: indices come from the server, so they must not size
    // anything, and a turn rarely has more than a few calls.
    calls: Vec<PartialCall>,
}

#[derive(Debug)]
struct PartialCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
    /// Arguments given whole instead of streamed (an Anthropic block start with a full input).
    initial: Option<Value>,
}

impl PartialToolCalls {
    /// Whether a call with this index has started.
    pub(crate) fn contains(&self, index: u32) -> bool {
        self.calls.iter().any(|c| c.index == index)
    }

    /// Starts a call or fills in its id and name when they arrive.
    pub(crate) fn start(&mut self, index: u32, id: Option<String>, name: Option<String>) {
        let call = self.entry(index);
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            call.id = id;
        }
        if let Some(name) = name.filter(|s| !s.is_empty()) {
            call.name.push_str(&name);
        }
    }

    /// Arguments given whole, used when no pieces follow.
    pub(crate) fn set_initial(&mut self, index: u32, input: Value) {
        self.entry(index).initial = Some(input);
    }

    pub(crate) fn push_arguments(&mut self, index: u32, piece: &str) {
        self.entry(index).arguments.push_str(piece);
    }

    fn entry(&mut self, index: u32) -> &mut PartialCall {
        let position = match self.calls.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.calls.push(PartialCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                    initial: None,
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[position]
    }

    /// The finished calls in index order; calls without an id get one.
    pub(crate) fn finish(mut self) -> Vec<ToolCall> {
        self.calls.sort_by_key(|c| c.index);
        self.calls
            .into_iter()
            .map(|c| {
                let arguments = match c.initial {
                    Some(value) if c.arguments.trim().is_empty() => value,
                    _ => parse_arguments(&c.arguments),
                };
                ToolCall {
                    id: if c.id.is_empty() {
                        format!("call_{}", c.index)
                    } else {
                        c.id
                    },
                    name: c.name,
                    arguments,
                }
            })
            .collect()
    }
}

/// The turn both protocols return: empty text is no text, and a turn with tool calls finishes
/// with [`FinishReason::ToolCalls`] even when a server reports a plain stop.
pub(crate) fn response(
    text: Option<String>,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    finish: FinishReason,
) -> ChatResponse {
    let finish = match finish {
        FinishReason::Stop if !tool_calls.is_empty() => FinishReason::ToolCalls,
        other => other,
    };
    ChatResponse {
        text: text.filter(|t| !t.is_empty()),
        tool_calls,
        usage,
        finish,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_that_are_not_json_are_kept_raw() {
        assert_eq!(parse_arguments(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_arguments(""), json!({}));
        assert_eq!(parse_arguments("{oops"), json!({"_raw": "{oops"}));
    }

    #[test]
    fn pieces_are_joined_per_index_in_index_order() {
        let mut calls = PartialToolCalls::default();
        calls.start(1, Some("b".into()), Some("second".into()));
        calls.start(0, Some("a".into()), Some("first".into()));
        calls.push_arguments(1, r#"{"x":"#);
        calls.push_arguments(0, r#"{"y":2}"#);
        calls.push_arguments(1, "1}");
        let done = calls.finish();
        assert_eq!(done.len(), 2);
        assert_eq!(
            (done[0].id.as_str(), &done[0].arguments),
            ("a", &json!({"y": 2}))
        );
        assert_eq!(
            (done[1].name.as_str(), &done[1].arguments),
            ("second", &json!({"x": 1}))
        );
    }
}
