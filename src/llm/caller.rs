//! Whom an LLM call is made for (agent and task), for the client's log lines: set around the
//! call as a task-local and read only when a line is written, so that a call that logs nothing
//! makes no span (a span costs its formatted fields at creation, and an enter and exit on every
//! poll of the call).

use std::future::Future;
use std::sync::Arc;

/// The agent and task an LLM call works for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: Arc<str>,
    pub task: Arc<str>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// Runs `call` on behalf of `caller`: the client's log lines during it name agent and task.
pub async fn on_behalf<F: Future>(caller: Caller, call: F) -> F::Output {
    CALLER.scope(caller, call).await
}

/// Runs `log` inside the span `llm{agent=… task=…}` of the call's caller, when it has one.
pub(crate) fn in_span(log: impl FnOnce()) {
    match CALLER.try_with(|c| tracing::warn_span!("llm", agent = %c.agent, task = %c.task)) {
        Ok(span) => span.in_scope(log),
        Err(_) => log(),
    }
}
