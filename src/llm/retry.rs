//! The retry layer: retryable faults (429, 5xx, timeouts, broken connections, garbled answers)
//! are tried again after an exponential backoff with full jitter, or after the delay the server
//! asked for with `Retry-After`, up to a bounded number of attempts.

use super::LlmError;
use backon::Retryable;
use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Ceiling of the first delay; the ceiling doubles per attempt.
    pub base_delay: Duration,
    /// Largest ceiling.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails in a way retrying cannot help, or the retries run
    /// out. Returns the value and the number of retries it took; when the retries run out the
    /// error is [`LlmError::RetriesExhausted`] holding the last fault.
    pub async fn run<T, F, Fut>(&self, attempt: F) -> Result<(T, u32), LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let mut retries = 0u32;
        let result = attempt
            .retry(FullJitter::new(*self))
            .sleep(tokio::time::sleep)
            .when(LlmError::is_retryable)
            .adjust(|err, planned| {
                // A server that says when to come back knows better than our guess; when no
                // retry is planned (the bound is reached) the answer stays no.
                planned.map(|jittered| server_delay(err).unwrap_or(jittered))
            })
            .notify(|err, delay| {
                retries += 1;
                super::caller::in_span(|| {
                    tracing::warn!(
                        retry = retries,
                        delay_ms = delay.as_millis() as u64,
                        error = %err,
                        "LLM call failed; trying again"
                    )
                });
            })
            .await;
        match result {
            Ok(value) => Ok((value, retries)),
            Err(err) if err.is_retryable() => Err(LlmError::RetriesExhausted {
                attempts: retries + 1,
                last: Box::new(err),
            }),
            Err(err) => Err(err),
        }
    }
}

/// The longest wait a `Retry-After` is honoured for: past it an agent waits this long, so a
/// server that answers "come back in an hour" cannot park the whole swarm.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

fn server_delay(err: &LlmError) -> Option<Duration> {
    match err {
        LlmError::Api {
            retry_after_ms: Some(ms),
            ..
        } => Some(Duration::from_millis(*ms).min(MAX_SERVER_DELAY)),
        _ => None,
    }
}

/// Delays drawn uniformly from `[0, min(max, base * 2^n)]`: "full jitter", which spreads the
/// retries of many agents hitting the same limit instead of having them return in step.
#[derive(Debug)]
struct FullJitter {
    policy: RetryPolicy,
    attempt: u32,
}

impl FullJitter {
    fn new(policy: RetryPolicy) -> Self {
        Self { policy, attempt: 0 }
    }
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.attempt >= self.policy.max_retries {
            return None;
        }
        let ceiling = self
            .policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(self.policy.max_delay);
        self.attempt += 1;
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(rand::rng().random_range(0..=nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_delay_is_honoured_up_to_a_bound() {
        let asked = |ms| LlmError::Api {
            status: 429,
            message: String::new(),
            retry_after_ms: Some(ms),
        };
        assert_eq!(
            server_delay(&asked(1500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(server_delay(&asked(3_600_000)), Some(MAX_SERVER_DELAY));
        assert_eq!(server_delay(&LlmError::Timeout { timeout_ms: 5 }), None);
    }

    #[test]
    fn delays_stay_under_a_doubling_ceiling_and_stop_at_the_bound() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let delays: Vec<Duration> = FullJitter::new(policy).collect();
        assert_eq!(delays.len(), 5);
        let ceilings = [100, 200, 350, 350, 350];
        for (delay, ceiling) in delays.iter().zip(ceilings) {
            assert!(
                *delay <= Duration::from_millis(ceiling),
                "{delay:?} > {ceiling}ms"
            );
        }
    }

    #[tokio::test]
    async fn non_retryable_errors_are_returned_at_once() {
        let policy = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let mut calls = 0;
        let result: Result<((), u32), LlmError> = policy
            .run(|| {
                calls += 1;
                async { Err(LlmError::Config("no".into())) }
            })
            .await;
        assert!(matches!(result, Err(LlmError::Config(_))));
        assert_eq!(calls, 1);
    }
}
