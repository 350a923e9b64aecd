//! What a call costs in US dollars: the `llm.prices` of the swarm file, with the prompt-cache
//! prices each provider bills filled in where the file leaves them out.
//!
//! The cache ratios live here and nowhere else: Anthropic bills a cache write at 1.25x and a
//! cache read at 0.1x the input price (5-minute cache); OpenAI does not bill writes and bills
//! cached input at the rate it lists per model family.

use super::Usage;
use crate::spec::{Prices, ProviderKind};

/// Cache prices as multiples of the input price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheRatios {
    pub write: f64,
    pub read: f64,
}

/// The ratios `kind` bills for `model`.
pub fn cache_ratios(kind: ProviderKind, model: &str) -> CacheRatios {
    match kind {
        ProviderKind::Anthropic => CacheRatios {
            write: 1.25,
            read: 0.1,
        },
        ProviderKind::Openai => CacheRatios {
            write: 1.0,
            read: openai_cached_ratio(model),
        },
        ProviderKind::Simulated => CacheRatios {
            write: 1.0,
            read: 1.0,
        },
    }
}

/// OpenAI's listed cached-input price over its input price, by model family.
fn openai_cached_ratio(model: &str) -> f64 {
    let model = model.rsplit('/').next().unwrap_or(model);
    if model.starts_with("gpt-5") {
        0.1
    } else if model.starts_with("gpt-4.1") || model.starts_with("o3") || model.starts_with("o4") {
        0.25
    } else {
        0.5
    }
}

/// Every price of one model, per million tokens, the cache prices resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Rates {
    /// `prices` for `model` of `kind`; cache prices the file leaves out follow the ratios.
    pub fn new(prices: &Prices, kind: ProviderKind, model: &str) -> Self {
        let ratios = cache_ratios(kind, model);
        Self {
            input: prices.input_per_mtok,
            output: prices.output_per_mtok,
            cache_write: prices
                .cache_write_per_mtok
                .unwrap_or(prices.input_per_mtok * ratios.write),
            cache_read: prices
                .cache_read_per_mtok
                .unwrap_or(prices.input_per_mtok * ratios.read),
        }
    }

    /// What `usage` costs.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.cache_write_tokens as f64 * self.cache_write
            + usage.cache_read_tokens as f64 * self.cache_read
            + usage.output_tokens as f64 * self.output)
            / 1_000_000.0
    }

    /// What `usage` would have cost with no prompt cache, minus what it cost: negative when a
    /// cache write was not read back.
    pub fn saving(&self, usage: &Usage) -> f64 {
        (usage.cache_write_tokens as f64 * (self.input - self.cache_write)
            + usage.cache_read_tokens as f64 * (self.input - self.cache_read))
            / 1_000_000.0
    }

    /// The most `prompt_tokens` of input and `max_tokens` of output can cost: every input
    /// token at the dearer of the input and cache-write prices, the whole output allowance.
    pub fn worst_case(&self, prompt_tokens: u64, max_tokens: u64) -> f64 {
        (prompt_tokens as f64 * self.input.max(self.cache_write) + max_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(input: f64, output: f64) -> Prices {
        Prices {
            input_per_mtok: input,
            output_per_mtok: output,
            ..Prices::default()
        }
    }

    #[test]
    fn anthropic_cache_prices_follow_the_input_price() {
        let rates = Rates::new(&prices(3.0, 15.0), ProviderKind::Anthropic, "claude-x");
        assert!((rates.cache_write - 3.75).abs() < 1e-12);
        assert!((rates.cache_read - 0.3).abs() < 1e-12);
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cache_write_tokens: 1_000_000,
            cache_read_tokens: 1_000_000,
        };
        assert!((rates.cost(&usage) - (3.0 + 15.0 + 3.75 + 0.3)).abs() < 1e-9);
        assert!((rates.saving(&usage) - (-0.75 + 2.7)).abs() < 1e-9);
    }

    #[test]
    fn explicit_cache_prices_win_and_openai_reads_at_its_listed_rate() {
        let mut p = prices(2.0, 8.0);
        assert_eq!(
            Rates::new(&p, ProviderKind::Openai, "gpt-4o").cache_read,
            1.0
        );
        assert_eq!(
            Rates::new(&p, ProviderKind::Openai, "gpt-4.1-mini").cache_read,
            0.5
        );
        assert_eq!(
            Rates::new(&p, ProviderKind::Openai, "gpt-4o").cache_write,
            2.0
        );
        p.cache_read_per_mtok = Some(0.7);
        p.cache_write_per_mtok = Some(2.2);
        let rates = Rates::new(&p, ProviderKind::Openai, "gpt-4o");
        assert_eq!((rates.cache_write, rates.cache_read), (2.2, 0.7));
        assert!((rates.worst_case(1_000_000, 1_000_000) - (2.2 + 8.0)).abs() < 1e-9);
    }
}
