//! The offline, deterministic model: it behaves like a cooperative model driving the runtime's
//! tools, and marks everything it writes as simulated.

use super::{ChatRequest, ChatResponse, FinishReason, Usage};

/// A model that needs no network and answers the same request the same way every time.
#[derive(Debug, Clone, Default)]
pub struct SimulatedProvider;

impl SimulatedProvider {
    pub fn new() -> Self {
        Self
    }

    /// One assistant turn for `request`.
    pub fn respond(&self, request: &ChatRequest) -> ChatResponse {
        let _ = request;
        ChatResponse {
            text: Some("[simulated] done".to_string()),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            finish: FinishReason::Stop,
        }
    }
}
