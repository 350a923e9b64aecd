//! A snapshot's state as JSON written straight into one buffer: the same bytes `serde_json`
//! writes for [`SessionState`]'s derived `Serialize` (compact, fields in declaration order, maps
//! in key order, its escapes and `skip_serializing_if` rules).
//!
//! Every checkpoint and the end of every run write the whole state, each task with its
//! transcript, so the generic serializer's cost per field and per byte of text is paid on all of
//! it. The tests compare the two encodings byte for byte.

use super::encode::{
    write_array, write_finish, write_spec, write_strs, write_tool_calls, write_usage, write_values,
    Obj,
};
use super::event::SessionStatus;
use super::state::{Counters, SessionState, TaskState};
use crate::llm::encode::{write_str, write_u64};
use crate::llm::Message;

/// The JSON of `state` as a snapshot stores it.
pub(crate) fn encode_state(state: &SessionState) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size_hint(state));
    let mut w = Obj::open(&mut out);
    w.str("session", &state.session);
    w.str("swarm", &state.swarm);
    w.opt_str("goal", state.goal.as_deref());
    w.str("provider", &state.provider);
    w.str("model", &state.model);
    w.opt_str("status", state.status.map(SessionStatus::as_str));
    w.opt_str("end_reason", state.end_reason.as_deref());
    w.key("tasks");
    w.out.push(b'{');
    for (i, (id, task)) in state.tasks.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        write_str(w.out, id);
        w.out.push(b':');
        write_task(w.out, task)?;
    }
    w.out.push(b'}');
    w.key("task_order");
    write_strs(w.out, &state.task_order);
    w.key("messages");
    write_array(w.out, &state.messages, |out, m| {
        let mut o = Obj::open(out);
        o.u64("id", m.id);
        o.str("from", &m.from);
        o.str("to", &m.to);
        o.str("body", &m.body);
        o.u64("at_ms", m.at_ms);
        o.close();
    });
    w.key("read_up_to");
    write_map(w.out, &state.read_up_to, |out, n| {
        write_u64(out, *n);
        Ok(())
    })?;
    w.key("totals");
    write_counters(w.out, &state.totals)?;
    w.key("per_agent");
    write_map(w.out, &state.per_agent, write_counters)?;
    w.u64("started_at_ms", state.started_at_ms);
    w.u64("prior_elapsed_ms", state.prior_elapsed_ms);
    w.u64("run_started_at_ms", state.run_started_at_ms);
    w.u64("last_event_at_ms", state.last_event_at_ms);
    w.key("budget_warned");
    write_array(w.out, &state.budget_warned, |out, resource| {
        write_str(out, resource.as_str());
    });
    w.key("budget_base");
    let mut b = Obj::open(w.out);
    let base = &state.budget_base;
    b.u64("tokens", base.tokens);
    b.u64("llm_calls", base.llm_calls);
    b.u64("elapsed_ms", base.elapsed_ms);
    b.f64("usd", base.usd)?;
    b.close();
    w.u64("runs", u64::from(state.runs));
    w.key("run_history");
    write_array(w.out, &state.run_history, |out, run| {
        let mut r = Obj::open(out);
        r.u64("started_at_ms", run.started_at_ms);
        r.str("provider", &run.provider);
        r.str("model", &run.model);
        r.str("base_url", &run.base_url);
        r.opt_u64("ended_at_ms", run.ended_at_ms);
        r.opt_str("status", run.status.map(SessionStatus::as_str));
        r.close();
    });
    if !state.system_prompts.is_empty() {
        w.key("system_prompts");
        write_map(w.out, &state.system_prompts, |out, s| {
            write_str(out, s);
            Ok(())
        })?;
    }
    w.close();
    Ok(out)
}

/// Room for the state's text and the JSON around it, so the buffer seldom grows.
fn size_hint(state: &SessionState) -> usize {
    let tasks: usize = state
        .tasks
        .values()
        .map(|t| {
            let transcript: usize = t
                .transcript
                .iter()
                .map(|m| match m {
                    Message::User { content } => content.len() + 32,
                    Message::Assistant {
                        text, tool_calls, ..
                    } => text.as_ref().map_or(0, String::len) + 64 + tool_calls.len() * 192,
                    Message::Tool {
                        call_id,
                        name,
                        content,
                        ..
                    } => call_id.len() + name.len() + content.len() + 64,
                })
                .sum();
            2 * t.spec.id.len()
                + t.spec.description.len()
                + t.result.as_ref().map_or(0, String::len)
                + t.error.as_ref().map_or(0, String::len)
                + transcript
                + 384
        })
        .sum();
    let messages: usize = state.messages.iter().map(|m| m.body.len() + 96).sum();
    tasks + messages + state.per_agent.len() * 320 + 1024
}

/// A map with string keys, in its own (sorted) order.
fn write_map<V>(
    out: &mut Vec<u8>,
    map: &std::collections::BTreeMap<String, V>,
    value: impl Fn(&mut Vec<u8>, &V) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, (key, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        value(out, v)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_task(out: &mut Vec<u8>, t: &TaskState) -> serde_json::Result<()> {
    let mut w = Obj::open(out);
    w.key("spec");
    write_spec(w.out, &t.spec);
    w.key("status");
    write_str(w.out, t.status.as_str());
    w.opt_str("created_by", t.created_by.as_deref());
    w.opt_str("agent", t.agent.as_deref());
    w.key("transcript");
    write_array(w.out, &t.transcript, write_message);
    w.u64("turns", u64::from(t.turns));
    w.opt_str("result", t.result.as_deref());
    w.opt_str("error", t.error.as_deref());
    w.key("usage");
    write_usage(w.out, &t.usage);
    w.f64("usd", t.usd)?;
    w.opt_u64("started_at_ms", t.started_at_ms);
    w.opt_u64("finished_at_ms", t.finished_at_ms);
    if let Some(finish) = &t.last_finish {
        w.key("last_finish");
        write_finish(w.out, finish);
    }
    if t.cut_offs != 0 {
        w.u64("cut_offs", u64::from(t.cut_offs));
    }
    if !t.calls_in_flight.is_empty() {
        w.key("calls_in_flight");
        write_strs(w.out, &t.calls_in_flight);
    }
    w.close();
    Ok(())
}

fn write_message(out: &mut Vec<u8>, m: &Message) {
    let mut w = Obj::open(out);
    match m {
        Message::User { content } => {
            w.str("role", "user");
            w.str("content", content);
        }
        Message::Assistant {
            text,
            tool_calls,
            blocks,
        } => {
            w.str("role", "assistant");
            if let Some(text) = text {
                w.str("text", text);
            }
            if !tool_calls.is_empty() {
                w.key("tool_calls");
                write_tool_calls(w.out, tool_calls);
            }
            if !blocks.is_empty() {
                w.key("blocks");
                write_values(w.out, blocks);
            }
        }
        Message::Tool {
            call_id,
            name,
            content,
            is_error,
        } => {
            w.str("role", "tool");
            w.str("call_id", call_id);
            w.str("name", name);
            w.str("content", content);
            w.bool("is_error", *is_error);
        }
    }
    w.close();
}

fn write_counters(out: &mut Vec<u8>, c: &Counters) -> serde_json::Result<()> {
    let mut w = Obj::open(out);
    w.u64("llm_calls", c.llm_calls);
    w.u64("failed_calls", c.failed_calls);
    w.u64("tokens_in", c.tokens_in);
    w.u64("tokens_out", c.tokens_out);
    w.u64("cache_write_tokens", c.cache_write_tokens);
    w.u64("cache_read_tokens", c.cache_read_tokens);
    w.f64("usd", c.usd)?;
    w.f64("usd_saved", c.usd_saved)?;
    w.u64("retries", c.retries);
    w.u64("tool_calls", c.tool_calls);
    w.u64("llm_ms", c.llm_ms);
    w.u64("tasks_done", c.tasks_done);
    w.u64("tasks_failed", c.tasks_failed);
    w.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{FinishReason, ToolCall, Usage};
    use crate::session::encode::tests::{floats, tricky, values};
    use crate::session::event::{BudgetResource, SpendBase};
    use crate::session::state::{AgentMessage, RunRecord, TaskStatus};
    use crate::spec::TaskSpec;

    fn task(s: &str, f: f64, v: serde_json::Value, i: usize) -> TaskState {
        let finishes = [
            None,
            Some(FinishReason::Stop),
            Some(FinishReason::ToolCalls),
            Some(FinishReason::Length),
            Some(FinishReason::Refusal),
            Some(FinishReason::Other(s.into())),
        ];
        let statuses = [
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Done,
            TaskStatus::Failed,
        ];
        let call = ToolCall {
            id: s.into(),
            name: "memory".into(),
            arguments: v.clone(),
        };
        TaskState {
            spec: TaskSpec {
                id: s.into(),
                role: s.into(),
                description: s.into(),
                depends_on: if i.is_multiple_of(2) {
                    Vec::new()
                } else {
                    vec![s.into(), "b".into()]
                },
            },
            status: statuses[i % statuses.len()],
            created_by: i.is_multiple_of(2).then(|| s.into()),
            agent: (!i.is_multiple_of(3)).then(|| s.into()),
            transcript: vec![
                Message::User { content: s.into() },
                Message::Assistant {
                    text: None,
                    tool_calls: Vec::new(),
                    blocks: Vec::new(),
                },
                Message::Assistant {
                    text: Some(s.into()),
                    tool_calls: vec![call.clone(), call],
                    blocks: vec![v.clone(), serde_json::json!({"type": "thinking"})],
                },
                Message::Tool {
                    call_id: s.into(),
                    name: s.into(),
                    content: s.into(),
                    is_error: i.is_multiple_of(2),
                },
            ][..(i % 5)]
                .to_vec(),
            turns: i as u32,
            result: (i % 2 == 1).then(|| s.into()),
            error: (i % 3 == 1).then(|| s.into()),
            usage: Usage {
                input_tokens: i as u64,
                output_tokens: u64::MAX,
                cache_write_tokens: (i % 2) as u64,
                cache_read_tokens: (i % 3) as u64,
            },
            usd: f,
            started_at_ms: i.is_multiple_of(2).then_some(17),
            finished_at_ms: i.is_multiple_of(3).then_some(u64::MAX),
            last_finish: finishes[i % finishes.len()].clone(),
            cut_offs: (i % 3) as u32,
            calls_in_flight: (0..i % 3).map(|n| format!("{s}{n}")).collect(),
        }
    }

    fn counters(n: u64, f: f64) -> Counters {
        Counters {
            llm_calls: n,
            failed_calls: n + 1,
            tokens_in: u64::MAX,
            tokens_out: 0,
            cache_write_tokens: 3,
            cache_read_tokens: 4,
            usd: f,
            usd_saved: -f,
            retries: 5,
            tool_calls: 6,
            llm_ms: 7,
            tasks_done: 8,
            tasks_failed: 9,
        }
    }

    fn state(s: &str, f: f64, v: serde_json::Value, i: usize) -> SessionState {
        let statuses = [
            None,
            Some(SessionStatus::Running),
            Some(SessionStatus::Completed),
            Some(SessionStatus::Failed),
            Some(SessionStatus::Interrupted),
            Some(SessionStatus::BudgetStopped),
            Some(SessionStatus::Queued),
        ];
        let mut state = SessionState {
            session: s.into(),
            swarm: s.into(),
            goal: i.is_multiple_of(2).then(|| s.into()),
            provider: s.into(),
            model: s.into(),
            status: statuses[i % statuses.len()],
            end_reason: (i % 2 == 1).then(|| s.into()),
            started_at_ms: 1,
            prior_elapsed_ms: 2,
            run_started_at_ms: 3,
            last_event_at_ms: u64::MAX,
            totals: counters(i as u64, f),
            budget_base: SpendBase {
                tokens: 1,
                llm_calls: 2,
                elapsed_ms: 3,
                usd: f,
            },
            runs: i as u32,
            ..SessionState::default()
        };
        if i % 4 != 3 {
            for n in 0..(i % 4 + 1) * 3 {
                let id = format!("{n}{s}");
                state.task_order.push(id.clone());
                state.tasks.insert(id, task(s, f, v.clone(), i + n));
            }
            state.messages = vec![
                AgentMessage {
                    id: 1,
                    from: s.into(),
                    to: "b".into(),
                    body: s.into(),
                    at_ms: 2,
                },
                AgentMessage {
                    id: u64::MAX,
                    from: "a".into(),
                    to: s.into(),
                    body: String::new(),
                    at_ms: 0,
                },
            ];
            state.read_up_to = [(s.to_string(), 3), ("z".to_string(), u64::MAX)].into();
            state.per_agent = [
                (s.to_string(), counters(1, f)),
                ("a".to_string(), counters(2, 0.5)),
            ]
            .into();
            state.budget_warned = BudgetResource::ALL[..i % 5].iter().copied().collect();
            state.run_history = vec![
                RunRecord {
                    started_at_ms: 1,
                    provider: s.into(),
                    model: s.into(),
                    base_url: s.into(),
                    ended_at_ms: Some(2),
                    status: statuses[(i + 1) % statuses.len()],
                },
                RunRecord {
                    started_at_ms: 3,
                    provider: "p".into(),
                    model: "m".into(),
                    base_url: String::new(),
                    ended_at_ms: None,
                    status: None,
                },
            ];
            if i.is_multiple_of(2) {
                state.system_prompts = [(s.to_string(), s.to_string()), ("r".into(), "".into())]
                    .into_iter()
                    .collect();
            }
        }
        state
    }

    #[test]
    fn the_state_encodes_as_serde_json_does() {
        let mut checked = 0;
        for (i, s) in tricky().iter().enumerate() {
            let f = floats()[i % floats().len()];
            for (j, v) in values(s).into_iter().enumerate() {
                let state = state(s, f, v, i + j);
                let expected = serde_json::to_vec(&state).unwrap();
                let out = encode_state(&state).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&expected),
                    "{state:?}"
                );
                if f.is_finite() {
                    let back: SessionState = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, state);
                }
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn an_empty_state_encodes_as_serde_json_does() {
        let state = SessionState::default();
        assert_eq!(
            encode_state(&state).unwrap(),
            serde_json::to_vec(&state).unwrap()
        );
    }
}
