//! The budget monitor, asked before every LLM call.
//!
//! At `warn_at` it records a warning (once per resource until the budget is renewed); at
//! `stop_at` it stops the run cleanly. And it holds the limits themselves with calls in flight:
//! a call is admitted only with a [`Reservation`] of its worst case (every input token at the
//! dearest input price plus its whole `max_tokens` at the output price, one call) that fits
//! under each limit next to what is spent and what the calls in flight hold. When the call
//! returns its real cost is recorded and the reservation released, so spend never passes a
//! limit however many calls run at once. A call that does not fit waits for calls in flight to
//! return; when none is left to return, the run stops on that budget.

use super::context::{StopReason, SwarmContext};
use crate::session::budget::{health, Level};
use crate::session::{BudgetResource, Event};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// The most one call can spend.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Worst {
    pub tokens: u64,
    pub usd: f64,
}

/// Input tokens are estimated from characters before the call; the provider's count is known
/// only after. The estimate is scaled by the largest ratio seen so far (with a margin), and
/// never by less than this, so that the first calls of a run are not under-reserved.
const MIN_INPUT_SCALE: f64 = 1.25;
const SCALE_MARGIN: f64 = 1.1;

/// What the calls in flight hold against the limits.
#[derive(Debug, Default)]
pub struct Reservations {
    held: Mutex<Held>,
    released: Notify,
}

#[derive(Debug, Default)]
struct Held {
    calls: u64,
    tokens: u64,
    usd: f64,
    /// Provider-counted prompt tokens over estimated ones, the largest seen.
    input_scale: f64,
}

impl Reservations {
    /// How many input tokens to reserve for a prompt estimated at `estimate`.
    pub fn input_tokens(&self, estimate: u64) -> u64 {
        let scale = self.held.lock().input_scale.max(MIN_INPUT_SCALE);
        (estimate as f64 * scale).ceil() as u64
    }

    /// Learns how far the estimate was from the provider's count.
    pub fn observe_input(&self, estimate: u64, counted: u64) {
        if estimate == 0 {
            return;
        }
        let ratio = counted as f64 / estimate as f64 * SCALE_MARGIN;
        let mut held = self.held.lock();
        if ratio > held.input_scale {
            held.input_scale = ratio;
        }
    }
}

/// A call's hold on the budget; dropping it releases the hold (after the call's real cost is
/// in the session state).
#[derive(Debug)]
pub struct Reservation<'a> {
    reservations: &'a Reservations,
    worst: Worst,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        {
            let mut held = self.reservations.held.lock();
            held.calls = held.calls.saturating_sub(1);
            held.tokens = held.tokens.saturating_sub(self.worst.tokens);
            held.usd = (held.usd - self.worst.usd).max(0.0);
        }
        self.reservations.released.notify_waiters();
    }
}

/// Whether another LLM call costing at most `worst` may start: waits while it fits only once
/// calls in flight return, and stops the run when it cannot fit.
pub async fn admit_call<'a>(
    ctx: &'a SwarmContext,
    worst: Worst,
) -> Result<Reservation<'a>, StopReason> {
    let reservations = &ctx.reservations;
    loop {
        if let Some(reason) = ctx.control.stopped() {
            return Err(reason);
        }
        // Registered before the check, so a release between the check and the wait is seen.
        let released = reservations.released.notified();
        let mut released = std::pin::pin!(released);
        released.as_mut().enable();
        // One read of the state with the reservations locked inside it: the check and the
        // reservation are one step, so two calls cannot both take the last room.
        let verdict = ctx.recorder.read(|state| {
            let mut warn = Vec::new();
            let mut red = None;
            let mut no_room = None;
            let mut held = reservations.held.lock();
            for h in health(state, &ctx.plan.budget) {
                match h.level {
                    Level::Red => {
                        red.get_or_insert((h.resource, h.used, h.limit));
                    }
                    Level::Yellow if !state.budget_warned.contains(&h.resource) => {
                        warn.push((h.resource, h.used, h.limit));
                    }
                    _ => {}
                }
                let (held_now, this_call) = match h.resource {
                    BudgetResource::Tokens => (held.tokens as f64, worst.tokens as f64),
                    BudgetResource::LlmCalls => (held.calls as f64, 1.0),
                    BudgetResource::Usd => (held.usd, worst.usd),
                    BudgetResource::Time => continue,
                };
                if h.used + held_now + this_call > h.limit {
                    no_room.get_or_insert((h.resource, h.used, h.limit));
                }
            }
            let reserved = red.is_none() && no_room.is_none();
            if reserved {
                held.calls += 1;
                held.tokens += worst.tokens;
                held.usd += worst.usd;
            }
            (warn, red, no_room, held.calls, reserved)
        });
        let (warn, red, no_room, in_flight, reserved) = verdict;
        for (resource, used, limit) in warn {
            warn_once(ctx, resource, used, limit);
        }
        if reserved {
            return Ok(Reservation {
                reservations,
                worst,
            });
        }
        let exceeded = match (red, no_room) {
            (Some(red), _) => red,
            (None, Some(_)) if in_flight > 0 => {
                released.await;
                continue;
            }
            (None, Some(no_room)) => no_room,
            (None, None) => continue,
        };
        let (resource, used, limit) = exceeded;
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
