//! The LLM client layer: one request (system prompt, messages, tool schemas) in, one assistant
//! turn (text and/or tool calls, usage, finish reason) out.
//!
//! Providers are a closed set ([`ProviderImpl`]): OpenAI-compatible chat completions, the
//! Anthropic Messages API, and an offline simulated model. [`LlmClient`] stacks the layers
//! timeout -> retry -> rate limit -> provider and is shared by every agent of a swarm.

pub mod simulated;
mod types;

pub use types::*;
