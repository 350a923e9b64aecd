//! Budget health: how much of each configured limit has been spent since the budget was last
//! renewed, and whether that is green, yellow (warn) or red (stop). The runtime's monitor asks
//! before every LLM call; `sessions show` and the handoff report print the same numbers.

use super::event::BudgetResource;
use super::state::SessionState;
use crate::spec::BudgetSettings;
use serde::Serialize;

/// Where spend stands against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below `warn_at`.
    Green,
    /// At or above `warn_at`, below `stop_at`.
    Yellow,
    /// At or above `stop_at`: the swarm stops and hands off.
    Red,
}

impl Level {
    pub fn emoji(self) -> &'static str {
        match self {
            Level::Green => "🟢",
            Level::Yellow => "🟡",
            Level::Red => "🔴",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Green => "green",
            Level::Yellow => "yellow",
            Level::Red => "red",
        }
    }
}

/// One configured budget resource. `used` and `limit` are in the resource's unit: tokens, calls,
/// seconds or US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetHealth {
    pub resource: BudgetResource,
    pub used: f64,
    pub limit: f64,
    pub ratio: f64,
    pub level: Level,
}

impl BudgetHealth {
    /// `used/limit (ratio%)` in the resource's unit, e.g. `26500/200000 tokens (13%)`.
    pub fn describe(&self) -> String {
        let pct = self.ratio * 100.0;
        match self.resource {
            BudgetResource::Tokens => {
                format!("{:.0}/{:.0} tokens ({pct:.0}%)", self.used, self.limit)
            }
            BudgetResource::LlmCalls => {
                format!("{:.0}/{:.0} LLM calls ({pct:.0}%)", self.used, self.limit)
            }
            BudgetResource::Time => format!("{:.0}/{:.0} s ({pct:.0}%)", self.used, self.limit),
            BudgetResource::Usd => format!("${:.4}/${:.2} ({pct:.0}%)", self.used, self.limit),
        }
    }
}

/// Health of every resource the budget limits, in [`BudgetResource::ALL`] order, counting spend
/// from `state.budget_base` (the spend at the last `--extend-budget`).
pub fn health(state: &SessionState, budget: &BudgetSettings) -> Vec<BudgetHealth> {
    let spend = state.spend();
    let base = state.budget_base;
    BudgetResource::ALL
        .into_iter()
        .filter_map(|resource| {
            let (used, limit) = match resource {
                BudgetResource::Tokens => (
                    spend.tokens.saturating_sub(base.tokens) as f64,
                    budget.tokens? as f64,
                ),
                BudgetResource::LlmCalls => (
                    spend.llm_calls.saturating_sub(base.llm_calls) as f64,
                    budget.llm_calls? as f64,
                ),
                BudgetResource::Time => (
                    spend.elapsed_ms.saturating_sub(base.elapsed_ms) as f64 / 1000.0,
                    budget.time?.as_secs_f64(),
                ),
                BudgetResource::Usd => ((spend.usd - base.usd).max(0.0), budget.usd?),
            };
            // A zero limit allows nothing: any configured zero budget is spent at once.
            let ratio = if limit > 0.0 { used / limit } else { 1.0 };
            let level = if ratio >= budget.stop_at {
                Level::Red
            } else if ratio >= budget.warn_at {
                Level::Yellow
            } else {
                Level::Green
            };
            Some(BudgetHealth {
                resource,
                used,
                limit,
                ratio,
                level,
            })
        })
        .collect()
}

/// The worst level among `health`, green when no budget is configured.
pub fn overall(health: &[BudgetHealth]) -> Level {
    health.iter().map(|h| h.level).max().unwrap_or(Level::Green)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Event, SpendBase};
    use std::time::Duration;

    fn turn(tokens: u64, usd: f64, at_ms: u64) -> Event {
        Event::TurnCompleted {
            blocks: Vec::new(),
            task: "t".into(),
            agent: "a".into(),
            turn: 0,
            text: None,
            tool_calls: Vec::new(),
            finish: crate::llm::FinishReason::Stop,
            usage: crate::llm::Usage::new(tokens, 0),
            usd,
            usd_saved: 0.0,
            latency_ms: 1,
            retries: 0,
            at_ms,
        }
    }

    fn started() -> Event {
        Event::SessionStarted {
            session: "s".into(),
            swarm: "w".into(),
            goal: None,
            provider: "simulated".into(),
            model: "m".into(),
            base_url: String::new(),
            at_ms: 0,
        }
    }

    #[test]
    fn levels_follow_the_thresholds_and_only_configured_resources_appear() {
        let mut state = SessionState::default();
        state.apply(&started());
        state.apply(&turn(700, 0.95, 10_000));
        let budget = BudgetSettings {
            tokens: Some(1000),
            usd: Some(1.0),
            time: Some(Duration::from_secs(100)),
            ..BudgetSettings::default()
        };
        let h = health(&state, &budget);
        let by = |r| h.iter().find(|x| x.resource == r).copied();
        assert_eq!(h.len(), 3);
        assert_eq!(by(BudgetResource::LlmCalls), None);
        let tokens = by(BudgetResource::Tokens).unwrap();
        assert_eq!((tokens.used, tokens.level), (700.0, Level::Yellow));
        assert_eq!(by(BudgetResource::Usd).unwrap().level, Level::Red);
        let time = by(BudgetResource::Time).unwrap();
        assert_eq!((time.used, time.level), (10.0, Level::Green));
        assert_eq!(overall(&h), Level::Red);
    }

    #[test]
    fn an_extended_budget_counts_from_its_base() {
        let mut state = SessionState::default();
        state.apply(&started());
        state.apply(&turn(950, 0.0, 1));
        state.apply(&Event::BudgetExtended {
            base: SpendBase {
                tokens: 950,
                llm_calls: 1,
                elapsed_ms: 1,
                usd: 0.0,
            },
            at_ms: 2,
        });
        state.apply(&turn(100, 0.0, 3));
        let budget = BudgetSettings {
            tokens: Some(1000),
            ..BudgetSettings::default()
        };
        let h = health(&state, &budget);
        assert_eq!(h[0].used, 100.0);
        assert_eq!(h[0].level, Level::Green);
    }
}
