//! The rate-limit layer: one [`Limiter`] per client (one provider and model), shared by every
//! clone, bounds requests in flight, requests per minute and tokens per minute.
//!
//! Tokens are estimated before the call and not reconciled afterwards: the estimate is the
//! request's characters / 4 plus its `max_tokens`. Counting the output at its ceiling keeps a
//! swarm under the provider's limit without waiting for usage that arrives only at the end of a
//! stream; the price is some unused headroom when answers are short.
//!
//! The per-minute limits can also be held by a [`RateBudget`] that several processes share (the
//! PostgreSQL state store is one): then every worker of one database stays under the provider's
//! limit together, and a worker that finds the shared budget spent waits for the next window.

use super::ChatRequest;
use governor::{DefaultDirectRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests and tokens per minute counted where several processes see them.
pub trait RateBudget: std::fmt::Debug + Send + Sync {
    /// Takes one request of `tokens` from the current minute of `key` when both limits allow it
    /// (`None` means no limit of that kind): `None` when taken, else how long to wait before
    /// asking again. A request larger than a whole minute's tokens is taken in a fresh minute.
    fn take(
        &self,
        key: &str,
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u32>,
        tokens: u32,
    ) -> Result<Option<Duration>, String>;
}

/// A shared budget and the name this client's limits have in it.
#[derive(Debug, Clone)]
struct Shared {
    budget: Arc<dyn RateBudget>,
    key: Arc<str>,
}

/// Limits shared by all clones of one client.
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    in_flight: Option<Arc<Semaphore>>,
    requests: Option<Arc<DefaultDirectRateLimiter>>,
    tokens: Option<Arc<DefaultDirectRateLimiter>>,
    tokens_per_minute: u32,
    requests_per_minute: u32,
    shared: Option<Shared>,
}

/// Held for the duration of one attempt; dropping it frees the in-flight slot.
#[derive(Debug)]
pub struct Admission {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// `None` or zero means no limit of that kind.
    pub fn new(
        max_concurrency: Option<u32>,
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u32>,
    ) -> Self {
        let per_minute = |n: Option<u32>| {
            n.and_then(NonZeroU32::new)
                .map(|n| Arc::new(DefaultDirectRateLimiter::direct(Quota::per_minute(n))))
        };
        Self {
            in_flight: max_concurrency
                .filter(|n| *n > 0)
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            requests: per_minute(requests_per_minute),
            tokens: per_minute(tokens_per_minute),
            tokens_per_minute: tokens_per_minute.unwrap_or(0),
            requests_per_minute: requests_per_minute.unwrap_or(0),
            shared: None,
        }
    }

    /// Holds the per-minute limits in `budget` as well, under `key` (provider, endpoint and
    /// model; never a key). Without per-minute limits there is nothing to share.
    pub fn share(&mut self, budget: Arc<dyn RateBudget>, key: String) {
        if self.requests_per_minute > 0 || self.tokens_per_minute > 0 {
            self.shared = Some(Shared {
                budget,
                key: key.into(),
            });
        }
    }

    /// Waits until the shared budget grants this request. A budget that cannot be reached
    /// leaves the request to the local limits alone: the call goes on rather than fails.
    async fn shared_admit(&self, shared: &Shared, tokens: u32) {
        let nonzero = |n: u32| (n > 0).then_some(n);
        let (rpm, tpm) = (
            nonzero(self.requests_per_minute),
            nonzero(self.tokens_per_minute),
        );
        let mut waited = false;
        loop {
            let (budget, key) = (Arc::clone(&shared.budget), Arc::clone(&shared.key));
            let answer =
                tokio::task::spawn_blocking(move || budget.take(&key, rpm, tpm, tokens)).await;
            match answer {
                Ok(Ok(None)) => return,
                Ok(Ok(Some(wait))) => {
                    if !waited {
                        super::caller::in_span(|| {
                            tracing::info!(
                                "waiting {} ms for the shared rate limit of {} (requests_per_minute {}, tokens_per_minute {})",
                                wait.as_millis(),
                                shared.key,
                                self.requests_per_minute,
                                self.tokens_per_minute
                            )
                        });
                        waited = true;
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(Err(reason)) => {
                    super::caller::in_span(|| {
                        tracing::warn!(
                            "the shared rate limit could not be read ({reason}); this call counts against the local limits only"
                        )
                    });
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Waits until a request estimated at `tokens` may be sent.
    ///
    /// The in-flight slot is taken first, so that the per-minute waits happen right before the
    /// request goes out and the pace the server sees is the pace that was allowed.
    pub async fn admit(&self, tokens: u32) -> Admission {
        let slot = match &self.in_flight {
            // The semaphore is never closed, so acquiring fails only in theory; going ahead
            // without a slot then is better than failing the call.
            Some(semaphore) => semaphore.clone().acquire_owned().await.ok(),
            None => None,
        };
        if let Some(requests) = &self.requests {
            requests.until_ready().await;
        }
        if let Some(limiter) = &self.tokens {
            // A request larger than a whole minute's budget waits for a full bucket instead of
            // failing: the provider may still accept it.
            let n = tokens.clamp(1, self.tokens_per_minute.max(1));
            if let Some(n) = NonZeroU32::new(n) {
                // Capacity errors cannot happen after the clamp above.
                let _ = limiter.until_n_ready(n).await;
            }
        }
        if let Some(shared) = &self.shared {
            self.shared_admit(shared, tokens).await;
        }
        Admission { _slot: slot }
    }
}

/// Tokens a request may use: its characters / 4 plus `max_tokens`.
pub fn estimate_tokens(request: &ChatRequest) -> u32 {
    use super::Message;
    let mut chars = request.system.len();
    for message in &request.messages {
        chars += match message {
            Message::User { content } | Message::Tool { content, .. } => content.len(),
            // Arguments are counted at a flat size: measuring them would mean serializing them.
            Message::Assistant {
                text, tool_calls, ..
            } => {
                text.as_ref().map_or(0, String::len)
                    + tool_calls.iter().map(|c| c.name.len() + 16).sum::<usize>()
            }
        };
    }
    for tool in request.tools.iter() {
        chars += tool.name.len() + tool.description.len();
    }
    u32::try_from(chars / 4)
        .unwrap_or(u32::MAX)
        .saturating_add(request.max_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    #[test]
    fn estimate_counts_characters_and_the_output_ceiling() {
        let request = ChatRequest {
            model: "m".into(),
            system: "x".repeat(40),
            messages: vec![Message::User {
                content: "y".repeat(40),
            }],
            tools: Vec::new().into(),
            max_tokens: 100,
            cache_key: None,
        };
        assert_eq!(estimate_tokens(&request), 120);
    }
}
