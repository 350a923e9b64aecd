//! List prices of current OpenAI and Anthropic models, used when a swarm file has no
//! `llm.prices`. US dollars per million tokens, standard (non-batch) tier, as listed on
//! openai.com/api/pricing and anthropic.com/pricing in October 2025. Cache prices are left to
//! [`super::pricing`], which derives them from the input price per provider.
//!
//! A model is matched by the longest listed name its own name starts with (after any
//! `vendor/` prefix, as OpenRouter writes them), so dated snapshots such as
//! `gpt-4o-mini-2024-07-18` find their family.

use crate::spec::{Prices, ProviderKind};

/// When the prices below were read from the providers' price pages.
pub const AS_OF: &str = "2025-10";

/// (model name prefix, input, output).
const OPENAI: &[(&str, f64, f64)] = &[
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("o1-mini", 1.10, 4.40),
    ("o1", 15.00, 60.00),
];

const ANTHROPIC: &[(&str, f64, f64)] = &[
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-haiku-4", 1.00, 5.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-haiku", 0.25, 1.25),
];

/// The list price of `model` at `kind`, if the table knows it.
pub fn list_price(kind: ProviderKind, model: &str) -> Option<Prices> {
    let table = match kind {
        ProviderKind::Openai => OPENAI,
        ProviderKind::Anthropic => ANTHROPIC,
        ProviderKind::Simulated => return None,
    };
    let name = model.rsplit('/').next().unwrap_or(model);
    table
        .iter()
        .filter(|(prefix, _, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, input, output)| Prices {
            input_per_mtok: input,
            output_per_mtok: output,
            cache_write_per_mtok: None,
            cache_read_per_mtok: None,
        })
}

/// Where a model's prices come from, for a run or a dry run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriceSource {
    /// `llm.prices` in the swarm file.
    SwarmFile(Prices),
    /// The built-in list prices.
    ListPrice(Prices),
    Unknown,
}

impl PriceSource {
    pub fn prices(self) -> Option<Prices> {
        match self {
            PriceSource::SwarmFile(p) | PriceSource::ListPrice(p) => Some(p),
            PriceSource::Unknown => None,
        }
    }
}

/// The prices `model` is billed at: the swarm file's, else the list price.
pub fn prices_for(file: Option<Prices>, kind: ProviderKind, model: &str) -> PriceSource {
    match file {
        Some(p) => PriceSource::SwarmFile(p),
        None => list_price(kind, model).map_or(PriceSource::Unknown, PriceSource::ListPrice),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_listed_prefix_wins() {
        let mini = list_price(ProviderKind::Openai, "gpt-4o-mini-2024-07-18").expect("known");
        assert_eq!(mini.input_per_mtok, 0.15);
        let full = list_price(ProviderKind::Openai, "openai/gpt-4o").expect("known");
        assert_eq!(full.input_per_mtok, 2.50);
        let sonnet = list_price(ProviderKind::Anthropic, "claude-sonnet-4-5").expect("known");
        assert_eq!(sonnet.output_per_mtok, 15.0);
        assert!(list_price(ProviderKind::Openai, "qwen2.5-coder").is_none());
        assert!(list_price(ProviderKind::Simulated, "gpt-4o").is_none());
    }
}
