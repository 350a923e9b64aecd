//! The provider seam: one wire protocol behind one trait. A protocol is one file implementing
//! [`Provider`] plus one arm in [`connect`]; retries, limits, deadlines and the checks that keep
//! a bad answer from passing as a good one are the client's, above this seam, and every
//! provider gets them.

use super::anthropic::AnthropicProvider;
use super::http;
use super::openai::OpenAiProvider;
use super::{ChatRequest, ChatResponse, LlmError, ProviderConfig};
use crate::spec::ProviderKind;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What one attempt at an assistant turn returns.
pub type ProviderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>>;

/// One model API: a request in, one assistant turn out, exactly as the API answered it (one
/// attempt, no retries, no limits).
pub trait Provider: Send + Sync + fmt::Debug {
    fn respond<'a>(&'a self, request: &'a ChatRequest) -> ProviderFuture<'a>;
}

/// The network provider `config` names, with its own HTTP connection pool. The simulated model
/// reads the runtime's prompt format and so lives in the runtime
/// (`runtime::simulated`), which hands it to [`super::LlmClient::with_provider`].
pub fn connect(config: &ProviderConfig) -> Result<Arc<dyn Provider>, LlmError> {
    Ok(match config.kind {
        ProviderKind::Openai => Arc::new(
            OpenAiProvider::new(
                http::http_client()?,
                &config.base_url,
                config.api_key.clone(),
                config.stream,
            )
            .with_prompt_cache(config.prompt_cache)
            .with_max_tokens_field(config.max_tokens_field),
        ),
        ProviderKind::Anthropic => Arc::new(
            AnthropicProvider::new(
                http::http_client()?,
                &config.base_url,
                config.api_key.clone(),
                config.stream,
            )
            .with_prompt_cache(config.prompt_cache)
            .with_thinking(config.thinking),
        ),
        ProviderKind::Simulated => {
            return Err(LlmError::Config(
                "the simulated provider is built by the runtime: use runtime::simulated::client"
                    .into(),
            ))
        }
    })
}
