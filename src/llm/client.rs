//! [`LlmClient`]: the provider behind its layers, retry -> rate limit -> timeout -> provider.
//!
//! The timeout bounds each attempt (including its streamed body) rather than the whole call, so
//! that an attempt that hangs is retried like any other fault; time spent waiting at the limiter
//! is not part of it, because that wait is ours and not the server's.

use super::limit::{estimate_tokens, Limiter, RateBudget};
use super::provider::{self, Provider};
use super::retry::RetryPolicy;
use super::{CallOutcome, ChatRequest, ChatResponse, FinishReason, LlmError, ProviderConfig};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fails an attempt that takes longer than its deadline.
#[derive(Debug, Clone, Copy)]
struct Deadline(Duration);

impl Deadline {
    async fn run<T>(
        self,
        attempt: impl Future<Output = Result<T, LlmError>>,
    ) -> Result<T, LlmError> {
        tokio::time::timeout(self.0, attempt)
            .await
            .map_err(|_| LlmError::Timeout {
                timeout_ms: u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX),
            })?
    }
}

/// A client of one provider and model. Clones share the connection pool and the limits.
#[derive(Debug, Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ProviderConfig,
    provider: Arc<dyn Provider>,
    retry: RetryPolicy,
    limiter: Limiter,
    deadline: Deadline,
}

impl LlmClient {
    /// A client of the network provider `config` names.
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let provider = provider::connect(&config)?;
        Ok(Self::with_provider(config, provider))
    }

    /// A client of the network provider `config` names whose per-minute limits `budget` holds
    /// with every other process sharing it.
    pub fn connect_shared(
        config: ProviderConfig,
        budget: Option<Arc<dyn RateBudget>>,
    ) -> Result<Self, LlmError> {
        let provider = provider::connect(&config)?;
        Ok(Self::build(config, provider, budget))
    }

    /// A client of `provider`, with the layers `config` sets.
    pub fn with_provider(config: ProviderConfig, provider: Arc<dyn Provider>) -> Self {
        Self::build(config, provider, None)
    }

    /// A client whose per-minute limits `budget` holds with every other process sharing it.
    pub fn shared(
        config: ProviderConfig,
        provider: Arc<dyn Provider>,
        budget: Option<Arc<dyn RateBudget>>,
    ) -> Self {
        Self::build(config, provider, budget)
    }

    fn build(
        config: ProviderConfig,
        provider: Arc<dyn Provider>,
        budget: Option<Arc<dyn RateBudget>>,
    ) -> Self {
        let retry = RetryPolicy {
            max_retries: config.max_retries,
            base_delay: config.retry_base_delay,
            max_delay: config.retry_max_delay,
        };
        let mut limiter = Limiter::new(
            config.max_concurrency,
            config.requests_per_minute,
            config.tokens_per_minute,
        );
        if let Some(budget) = budget {
            // What the provider counts a limit against: its endpoint and the model.
            let key = format!("{}|{}|{}", config.kind, config.base_url, config.model);
            limiter.share(budget, key);
        }
        let deadline = Deadline(config.timeout);
        Self {
            inner: Arc::new(Inner {
                config,
                provider,
                retry,
                limiter,
                deadline,
            }),
        }
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// One assistant turn for `request`, with retries, limits and a deadline per attempt.
    ///
    /// An empty `request.model` means the configured model, and a zero `request.max_tokens` the
    /// configured `max_tokens`.
    pub async fn complete(&self, request: &ChatRequest) -> Result<CallOutcome, LlmError> {
        let started = Instant::now();
        let inner = &*self.inner;
        let request = with_defaults(request, &inner.config);
        let tokens = estimate_tokens(&request);
        let attempt = || {
            inner.retry.run(|| async {
                let _admission = inner.limiter.admit(tokens).await;
                inner.deadline.run(inner.provider.respond(&request)).await
            })
        };
        let (mut response, mut retries) = attempt().await?;
        // No text and no tool calls is a protocol fault, not an answer: asked once more, then
        // a failure, never an empty result taken as done.
        if is_empty(&response) {
            let (again, more) = attempt().await?;
            if is_empty(&again) {
                return Err(LlmError::EmptyAnswer);
            }
            response = again;
            retries += more + 1;
        }
        // An API that echoes a key in its answer must not put it in the transcript.
        if let Some(text) = &mut response.text {
            crate::secrets::redact_in_place(text);
        }
        for call in &mut response.tool_calls {
            crate::secrets::redact_json(&mut call.arguments);
        }
        Ok(CallOutcome {
            response,
            retries,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// An answer with nothing in it. A cut-off one (thinking used every token) or a refusal says
/// why it is empty, and the runtime handles those.
fn is_empty(response: &ChatResponse) -> bool {
    response.text.as_deref().is_none_or(|t| t.trim().is_empty())
        && response.tool_calls.is_empty()
        && !matches!(
            response.finish,
            FinishReason::Length | FinishReason::Refusal
        )
}

/// The request with the configured model and `max_tokens` filled in where it leaves them open;
/// borrowed as is when it names both, which is the usual case.
fn with_defaults<'a>(request: &'a ChatRequest, config: &ProviderConfig) -> Cow<'a, ChatRequest> {
    if !request.model.is_empty() && request.max_tokens > 0 {
        return Cow::Borrowed(request);
    }
    let mut owned = request.clone();
    if owned.model.is_empty() {
        owned.model = config.model.clone();
    }
    if owned.max_tokens == 0 {
        owned.max_tokens = config.max_tokens;
    }
    Cow::Owned(owned)
}
