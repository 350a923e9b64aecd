//! The budget monitor, asked before every LLM call: at `warn_at` it records a warning (once per
//! resource until the budget is renewed); at `stop_at` it stops the run cleanly.

use super::context::{StopReason, SwarmContext};
use crate::session::budget::{health, Level};
use crate::session::{BudgetResource, Event};

/// Whether another LLM call may start.
pub fn admit_call(ctx: &SwarmContext) -> Result<(), StopReason> {
    if let Some(reason) = ctx.control.stopped() {
        return Err(reason);
    }
    let (warn, exceeded) = ctx.recorder.read(|state| {
        let mut warn = Vec::new();
        let mut exceeded = None;
        for h in health(state, &ctx.plan.budget) {
            match h.level {
                Level::Red => {
                    exceeded.get_or_insert((h.resource, h.used, h.limit));
                }
                Level::Yellow if !state.budget_warned.contains(&h.resource) => {
                    warn.push((h.resource, h.used, h.limit));
                }
                _ => {}
            }
        }
        (warn, exceeded)
    });
    for (resource, used, limit) in warn {
        warn_once(ctx, resource, used, limit);
    }
    if let Some((resource, used, limit)) = exceeded {
        warn_once(ctx, resource, used, limit);
        if ctx.control.stopped().is_none() {
            drop(ctx.recorder.emit(Event::BudgetExceeded {
                resource,
                used,
                limit,
                at_ms: ctx.now_ms(),
            }));
            ctx.control.stop(StopReason::Budget(resource));
        }
        return Err(StopReason::Budget(resource));
    }
    Ok(())
}

fn warn_once(ctx: &SwarmContext, resource: BudgetResource, used: f64, limit: f64) {
    let at_ms = ctx.now_ms();
    drop(ctx.recorder.emit_if(|state| {
        (!state.budget_warned.contains(&resource)).then_some(Event::BudgetWarning {
            resource,
            used,
            limit,
            at_ms,
        })
    }));
}
