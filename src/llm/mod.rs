//! The LLM client layer: one request (system prompt, messages, tool schemas) in, one assistant
//! turn (text and/or tool calls, usage, finish reason) out.
//!
//! Providers sit behind one seam ([`Provider`], [`connect`]): OpenAI-compatible chat
//! completions and the Anthropic Messages API here, the offline simulated model in the runtime
//! (it reads the runtime's prompt format). [`LlmClient`] stacks the layers
//! retry -> rate limit -> timeout -> provider and is shared by every agent of a swarm.
//! [`resolve`] decides which provider, model and endpoint a run uses.

mod aliases;
mod anthropic;
mod assemble;
pub mod caller;
mod client;
mod config;
pub(crate) mod encode;
mod http;
mod limit;
mod openai;
pub mod price_table;
pub mod pricing;
mod provider;
mod retry;
mod scan;
mod transport;
mod types;

pub use aliases::{is_model_alias, resolve_model, ModelAlias, ANTHROPIC_MODEL_ALIASES};
pub use anthropic::{AnthropicProvider, ANTHROPIC_VERSION};
pub use client::LlmClient;
pub use config::{
    process_env, resolve, Overrides, ProviderConfig, Resolved, ANTHROPIC_DEFAULT_BASE_URL,
    DEFAULT_RETRY_BASE_DELAY, DEFAULT_RETRY_MAX_DELAY, OPENAI_DEFAULT_BASE_URL, SIMULATED_MODEL,
};
pub use limit::{estimate_tokens, Admission, Limiter, RateBudget};
pub use openai::OpenAiProvider;
pub use provider::{connect, Provider, ProviderFuture};
pub use retry::RetryPolicy;
pub use transport::TransportError;
pub use types::*;
