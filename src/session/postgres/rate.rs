//! Provider rate limits held in the database, so that every worker of one database stays under
//! them together. Each admission is one statement: the row of the provider's endpoint and model
//! counts the current minute (by the server's clock, so workers on machines whose clocks differ
//! agree on the window), and the update only happens when both limits leave room. A refused
//! admission learns how long the minute still runs and waits that long.

use super::PgStore;
use crate::llm::RateBudget;
use std::time::Duration;

/// The window the per-minute limits count.
const WINDOW_MS: i64 = 60_000;

/// Counts one request of `$2` tokens in the current window of `$1` when the request limit `$3`
/// and the token limit `$4` allow it; a new window starts from zero. A request larger than a
/// whole window's tokens goes through as the first of a fresh window rather than never.
const TAKE: &str = "
WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
INSERT INTO rate_windows AS w (key, window_start, requests, tokens)
SELECT $1, ms - ms % $5, 1, $2 FROM now
ON CONFLICT (key) DO UPDATE SET
    requests = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.requests + 1 ELSE 1 END,
    tokens = CASE WHEN w.window_start = EXCLUDED.window_start
                  THEN w.tokens + EXCLUDED.tokens ELSE EXCLUDED.tokens END,
    window_start = EXCLUDED.window_start
WHERE w.window_start <> EXCLUDED.window_start
   OR (w.requests + 1 <= $3 AND w.tokens + EXCLUDED.tokens <= $4)
RETURNING requests";

/// How long the window of `$1` still runs, by the server's clock.
const REMAINING: &str = "
SELECT window_start + $2 - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM rate_windows WHERE key = $1";

impl RateBudget for PgStore {
    fn take(
        &self,
        key: &str,
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u32>,
        tokens: u32,
    ) -> Result<Option<Duration>, String> {
        let key = key.to_string();
        let limit = |n: Option<u32>| n.map_or(i64::MAX, i64::from);
        let (rpm, tpm, tokens) = (
            limit(requests_per_minute),
            limit(tokens_per_minute),
            i64::from(tokens),
        );
        let remaining = self
            .run(
                "counting a request against the rate limit",
                move |client, _| {
                    let key = key.clone();
                    async move {
                        let taken = client
                            .query_opt(TAKE, &[&key, &tokens, &rpm, &tpm, &WINDOW_MS])
                            .await?;
                        if taken.is_some() {
                            return Ok(None);
                        }
                        let row = client.query_opt(REMAINING, &[&key, &WINDOW_MS]).await?;
                        Ok(Some(row.map_or(0, |r| r.get::<_, i64>(0))))
                    }
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(remaining.map(|ms| {
            // A little past the window's end, spread by process, so that the waiting workers
            // do not all ask in the same millisecond.
            let spread = u64::from(std::process::id() % 50);
            Duration::from_millis(ms.clamp(0, WINDOW_MS) as u64 + 10 + spread)
        }))
    }
}
