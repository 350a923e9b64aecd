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

/// An id for a tool call the server sent without one: unique within the session (and beyond),
/// so that two calls of one conversation never share an id.
pub(crate) fn fresh_call_id() -> String {
    format!("call_{:016x}", rand::random::<u64>())
}

/// Tool calls being streamed: pieces arrive tagged with an index (OpenAI: the tool call's index;
/// Anthropic: the content block's index). A call that arrives with a new id at an index already
/// in use is a new call (some servers number every call 0), and pieces go to the newest call of
/// their index.
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
        let id = id.filter(|s| !s.is_empty());
        let restarted = match (&id, self.newest(index)) {
            (Some(id), Some(call)) => !call.id.is_empty() && call.id != *id,
            _ => false,
        };
        if restarted {
            self.push(index);
        }
        let call = self.entry(index);
        if let Some(id) = id {
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

    fn newest(&self, index: u32) -> Option<&PartialCall> {
        self.calls.iter().rev().find(|c| c.index == index)
    }

    fn push(&mut self, index: u32) {
        self.calls.push(PartialCall {
            index,
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
            initial: None,
        });
    }

    fn entry(&mut self, index: u32) -> &mut PartialCall {
        let position = match self.calls.iter().rposition(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.push(index);
                self.calls.len() - 1
            }
        };
        &mut self.calls[position]
    }

    /// The finished calls in index order, or in order of arrival when a server restarted an
    /// index (its indices then say nothing about order); calls without an id get a fresh one.
    pub(crate) fn finish(mut self) -> Vec<ToolCall> {
        let restarted = self
            .calls
            .iter()
            .enumerate()
            .any(|(i, c)| self.calls[..i].iter().any(|b| b.index == c.index));
        if !restarted {
            self.calls.sort_by_key(|c| c.index);
        }
        self.calls
            .into_iter()
            .map(|c| {
                let arguments = match c.initial {
                    Some(value) if c.arguments.trim().is_empty() => value,
                    _ => parse_arguments(&c.arguments),
                };
                ToolCall {
                    id: if c.id.is_empty() {
                        fresh_call_id()
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
        blocks: Vec::new(),
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

    #[test]
    fn a_new_id_at_a_used_index_is_a_second_call_and_missing_ids_are_unique() {
        let mut calls = PartialToolCalls::default();
        calls.start(0, Some("a".into()), Some("first".into()));
        calls.push_arguments(0, r#"{"n":1}"#);
        calls.start(0, Some("b".into()), Some("second".into()));
        calls.push_arguments(0, r#"{"n":2}"#);
        calls.start(1, None, Some("third".into()));
        calls.start(2, None, Some("fourth".into()));
        let done = calls.finish();
        let names: Vec<_> = done.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["first", "second", "third", "fourth"]);
        assert_eq!(done[1].arguments, json!({"n": 2}));
        assert_ne!(done[2].id, done[3].id);
        assert!(done[2].id.starts_with("call_"));
    }
}
