//! Events as the journal stores them: JSON written straight into the caller's buffer, the same
//! bytes `serde_json` writes for [`Event`]'s derived `Serialize` (compact, fields in declaration
//! order, the tag first, its escapes), for less work per event.
//!
//! Every event of a run is encoded once for the journal, so the per-event cost of the generic
//! serializer (a state machine per field, one check per byte of each string) is paid on every
//! turn, tool result and memory write. The tests compare the two encodings byte for byte, for
//! every kind of event.

use super::event::{BudgetResource, Event, SessionStatus};
use crate::llm::encode::{write_str, write_u64, write_value};
use crate::llm::{FinishReason, ToolCall, Usage};
use crate::memory::{Entry, MemoryChange};
use crate::spec::TaskSpec;

/// Appends the journal encoding of `event` to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let mut w = Obj::open(out);
    match event {
        Event::SessionStarted {
            session,
            swarm,
            goal,
            provider,
            model,
            base_url,
            at_ms,
        } => {
            w.tag("session_started");
            w.str("session", session);
            w.str("swarm", swarm);
            w.opt_str("goal", goal.as_deref());
            w.str("provider", provider);
            w.str("model", model);
            w.str("base_url", base_url);
            w.u64("at_ms", *at_ms);
        }
        Event::SessionResumed {
            provider,
            model,
            base_url,
            at_ms,
        } => {
            w.tag("session_resumed");
            w.str("provider", provider);
            w.str("model", model);
            w.str("base_url", base_url);
            w.u64("at_ms", *at_ms);
        }
        Event::TaskCreated {
            task,
            created_by,
            at_ms,
        } => {
            w.tag("task_created");
            w.key("task");
            write_spec(w.out, task);
            w.opt_str("created_by", created_by.as_deref());
            w.u64("at_ms", *at_ms);
        }
        Event::TaskStarted {
            task,
            agent,
            prompt,
            system,
            at_ms,
        } => {
            w.tag("task_started");
            w.str("task", task);
            w.str("agent", agent);
            w.str("prompt", prompt);
            if let Some(system) = system {
                w.str("system", system);
            }
            w.u64("at_ms", *at_ms);
        }
        Event::TurnCompleted {
            task,
            agent,
            turn,
            text,
            tool_calls,
            blocks,
            finish,
            usage,
            usd,
            usd_saved,
            latency_ms,
            retries,
            at_ms,
        } => {
            w.tag("turn_completed");
            w.str("task", task);
            w.str("agent", agent);
            w.u64("turn", u64::from(*turn));
            w.opt_str("text", text.as_deref());
            w.key("tool_calls");
            write_tool_calls(w.out, tool_calls);
            if !blocks.is_empty() {
                w.key("blocks");
                write_values(w.out, blocks);
            }
            w.key("finish");
            write_finish(w.out, finish);
            w.key("usage");
            write_usage(w.out, usage);
            w.f64("usd", *usd)?;
            if *usd_saved != 0.0 {
                w.f64("usd_saved", *usd_saved)?;
            }
            w.u64("latency_ms", *latency_ms);
            w.u64("retries", u64::from(*retries));
            w.u64("at_ms", *at_ms);
        }
        Event::LlmCallFailed {
            task,
            agent,
            error,
            retries,
            latency_ms,
            at_ms,
        } => {
            w.tag("llm_call_failed");
            w.str("task", task);
            w.str("agent", agent);
            w.str("error", error);
            w.u64("retries", u64::from(*retries));
            w.u64("latency_ms", *latency_ms);
            w.u64("at_ms", *at_ms);
        }
        Event::ToolStarted {
            task,
            agent,
            call_id,
            name,
            at_ms,
        } => {
            w.tag("tool_started");
            w.str("task", task);
            w.str("agent", agent);
            w.str("call_id", call_id);
            w.str("name", name);
            w.u64("at_ms", *at_ms);
        }
        Event::ToolCompleted {
            task,
            agent,
            call_id,
            name,
            content,
            is_error,
            duration_ms,
            at_ms,
        } => {
            w.tag("tool_completed");
            w.str("task", task);
            w.str("agent", agent);
            w.str("call_id", call_id);
            w.str("name", name);
            w.str("content", content);
            w.bool("is_error", *is_error);
            w.u64("duration_ms", *duration_ms);
            w.u64("at_ms", *at_ms);
        }
        Event::TaskCompleted {
            task,
            agent,
            result,
            at_ms,
        } => {
            w.tag("task_completed");
            w.str("task", task);
            w.str("agent", agent);
            w.str("result", result);
            w.u64("at_ms", *at_ms);
        }
        Event::TaskFailed {
            task,
            agent,
            error,
            at_ms,
        } => {
            w.tag("task_failed");
            w.str("task", task);
            w.opt_str("agent", agent.as_deref());
            w.str("error", error);
            w.u64("at_ms", *at_ms);
        }
        Event::TaskRetried { task, at_ms } => {
            w.tag("task_retried");
            w.str("task", task);
            w.u64("at_ms", *at_ms);
        }
        Event::MemoryChanged { change } => {
            w.tag("memory_changed");
            w.key("change");
            write_change(w.out, change);
        }
        Event::MessageSent {
            id,
            from,
            to,
            body,
            at_ms,
        } => {
            w.tag("message_sent");
            w.u64("id", *id);
            w.str("from", from);
            w.str("to", to);
            w.str("body", body);
            w.u64("at_ms", *at_ms);
        }
        Event::MessagesRead { agent, up_to } => {
            w.tag("messages_read");
            w.str("agent", agent);
            w.u64("up_to", *up_to);
        }
        Event::BudgetWarning {
            resource,
            used,
            limit,
            at_ms,
        } => {
            w.tag("budget_warning");
            write_budget(&mut w, *resource, *used, *limit, *at_ms)?;
        }
        Event::BudgetExceeded {
            resource,
            used,
            limit,
            at_ms,
        } => {
            w.tag("budget_exceeded");
            write_budget(&mut w, *resource, *used, *limit, *at_ms)?;
        }
        Event::BudgetExtended { base, at_ms } => {
            w.tag("budget_extended");
            w.key("base");
            let mut b = Obj::open(w.out);
            b.u64("tokens", base.tokens);
            b.u64("llm_calls", base.llm_calls);
            b.u64("elapsed_ms", base.elapsed_ms);
            b.f64("usd", base.usd)?;
            b.close();
            w.u64("at_ms", *at_ms);
        }
        Event::HookFailed { hook, error, at_ms } => {
            w.tag("hook_failed");
            w.str("hook", hook);
            w.str("error", error);
            w.u64("at_ms", *at_ms);
        }
        Event::Checkpoint { at_ms } => {
            w.tag("checkpoint");
            w.u64("at_ms", *at_ms);
        }
        Event::SessionEnded {
            status,
            reason,
            at_ms,
        } => {
            w.tag("session_ended");
            w.key("status");
            write_str(w.out, SessionStatus::as_str(*status));
            w.str("reason", reason);
            w.u64("at_ms", *at_ms);
        }
    }
    w.close();
    Ok(())
}

/// A JSON object being written: puts the commas between its fields.
pub(super) struct Obj<'a> {
    pub(super) out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    #[inline]
    pub(super) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Starts field `name`; names are plain ASCII identifiers that need no escape.
    #[inline]
    pub(super) fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline]
    fn tag(&mut self, kind: &str) {
        self.key("type");
        self.out.push(b'"');
        self.out.extend_from_slice(kind.as_bytes());
        self.out.push(b'"');
    }

    #[inline]
    pub(super) fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        write_str(self.out, value);
    }

    #[inline]
    pub(super) fn opt_str(&mut self, name: &str, value: Option<&str>) {
        self.key(name);
        match value {
            Some(value) => write_str(self.out, value),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    #[inline]
    pub(super) fn u64(&mut self, name: &str, value: u64) {
        self.key(name);
        write_u64(self.out, value);
    }

    #[inline]
    pub(super) fn opt_u64(&mut self, name: &str, value: Option<u64>) {
        self.key(name);
        match value {
            Some(value) => write_u64(self.out, value),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    #[inline]
    pub(super) fn bool(&mut self, name: &str, value: bool) {
        self.key(name);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// As `serde_json` writes a float: shortest round-trip digits, `null` when not finite.
    pub(super) fn f64(&mut self, name: &str, value: f64) -> serde_json::Result<()> {
        self.key(name);
        serde_json::to_writer(&mut *self.out, &value)
    }

    #[inline]
    pub(super) fn close(self) {
        self.out.push(b'}');
    }
}

/// A task's spec, as `TaskCreated` and a snapshot's tasks hold it.
pub(super) fn write_spec(out: &mut Vec<u8>, task: &TaskSpec) {
    let mut t = Obj::open(out);
    t.str("id", &task.id);
    t.str("role", &task.role);
    t.str("description", &task.description);
    t.key("depends_on");
    write_strs(t.out, &task.depends_on);
    t.close();
}

/// A JSON array of `items`, each written by `write`.
pub(super) fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// An array of strings.
pub(super) fn write_strs(out: &mut Vec<u8>, items: &[String]) {
    write_array(out, items, |out, item| write_str(out, item));
}

/// An array of JSON values (a turn's content blocks).
pub(super) fn write_values(out: &mut Vec<u8>, items: &[serde_json::Value]) {
    write_array(out, items, write_value);
}

pub(super) fn write_tool_calls(out: &mut Vec<u8>, calls: &[ToolCall]) {
    write_array(out, calls, |out, call| {
        let mut w = Obj::open(out);
        w.str("id", &call.id);
        w.str("name", &call.name);
        w.key("arguments");
        write_value(w.out, &call.arguments);
        w.close();
    });
}

pub(super) fn write_finish(out: &mut Vec<u8>, finish: &FinishReason) {
    let unit = match finish {
        FinishReason::Stop => "stop",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Length => "length",
        FinishReason::Refusal => "refusal",
        FinishReason::Other(other) => {
            let mut w = Obj::open(out);
            w.str("other", other);
            w.close();
            return;
        }
    };
    write_str(out, unit);
}

pub(super) fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    let mut w = Obj::open(out);
    w.u64("input_tokens", usage.input_tokens);
    w.u64("output_tokens", usage.output_tokens);
    if usage.cache_write_tokens != 0 {
        w.u64("cache_write_tokens", usage.cache_write_tokens);
    }
    if usage.cache_read_tokens != 0 {
        w.u64("cache_read_tokens", usage.cache_read_tokens);
    }
    w.close();
}

fn write_change(out: &mut Vec<u8>, change: &MemoryChange) {
    let mut w = Obj::open(out);
    match change {
        MemoryChange::Put {
            namespace,
            key,
            entry,
        } => {
            w.str("op", "put");
            w.str("namespace", namespace);
            w.str("key", key);
            w.key("entry");
            write_entry(w.out, entry);
        }
        MemoryChange::Delete { namespace, key } => {
            w.str("op", "delete");
            w.str("namespace", namespace);
            w.str("key", key);
        }
    }
    w.close();
}

fn write_entry(out: &mut Vec<u8>, entry: &Entry) {
    let mut w = Obj::open(out);
    w.key("value");
    write_value(w.out, &entry.value);
    w.u64("created_ms", entry.created_ms);
    w.u64("updated_ms", entry.updated_ms);
    w.opt_u64("expires_ms", entry.expires_ms);
    w.u64("version", entry.version);
    w.u64("access_count", entry.access_count);
    w.close();
}

fn write_budget(
    w: &mut Obj<'_>,
    resource: BudgetResource,
    used: f64,
    limit: f64,
    at_ms: u64,
) -> serde_json::Result<()> {
    w.key("resource");
    write_str(w.out, resource.as_str());
    w.f64("used", used)?;
    w.f64("limit", limit)?;
    w.u64("at_ms", at_ms);
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::session::SpendBase;
    use serde_json::json;

    /// Strings that exercise every escape and non-ASCII text, at every position relative to
    /// the eight-byte words the string writer scans.
    pub(in crate::session) fn tricky() -> Vec<String> {
        let mut all: Vec<String> = [
            "",
            "plain",
            "exactly8",
            "quote \" and backslash \\ and slash /",
            "new\nline\r\ttab\u{8}\u{c}",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "é ü 日本語 🦀 \u{2028}\u{2029} \u{feff}",
            "</script><!-- & ' `",
            "\\u0041 looks like an escape",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for c in 0u8..0x20 {
            for pad in 0..9 {
                all.push(format!("{}{}x", "a".repeat(pad), c as char));
            }
        }
        all
    }

    pub(in crate::session) fn floats() -> Vec<f64> {
        vec![
            0.0,
            -0.0,
            1.0,
            0.1 + 0.2,
            1e-7,
            123456789.125,
            1e300,
            -2.5e-300,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]
    }

    pub(in crate::session) fn values(s: &str) -> Vec<serde_json::Value> {
        vec![
            json!(null),
            json!(s),
            json!({"path": s, "n": 3, "f": 0.5, "neg": -7, "big": u64::MAX, "list": [true, false, null, s]}),
            json!([]),
            json!({}),
            json!(1.0e-9),
        ]
    }

    fn every_event(s: &str, f: f64, v: serde_json::Value) -> Vec<Event> {
        let task = crate::spec::TaskSpec {
            id: s.into(),
            role: "dev".into(),
            description: s.into(),
            depends_on: vec![s.into(), "b".into()],
        };
        let entry = Entry {
            value: v.clone(),
            created_ms: 1,
            updated_ms: u64::MAX,
            expires_ms: Some(7),
            version: 2,
            access_count: 0,
        };
        vec![
            Event::SessionStarted {
                session: s.into(),
                swarm: "sw".into(),
                goal: Some(s.into()),
                provider: "openai".into(),
                model: s.into(),
                base_url: String::new(),
                at_ms: 5,
            },
            Event::SessionStarted {
                session: "x".into(),
                swarm: s.into(),
                goal: None,
                provider: s.into(),
                model: "m".into(),
                base_url: s.into(),
                at_ms: 0,
            },
            Event::SessionResumed {
                provider: s.into(),
                model: s.into(),
                base_url: s.into(),
                at_ms: 9,
            },
            Event::TaskCreated {
                task,
                created_by: Some(s.into()),
                at_ms: 3,
            },
            Event::TaskCreated {
                task: crate::spec::TaskSpec {
                    id: "t".into(),
                    role: s.into(),
                    description: String::new(),
                    depends_on: Vec::new(),
                },
                created_by: None,
                at_ms: 0,
            },
            Event::TaskStarted {
                task: s.into(),
                agent: "a".into(),
                prompt: s.into(),
                system: Some(s.into()),
                at_ms: 1,
            },
            Event::TaskStarted {
                task: "t".into(),
                agent: s.into(),
                prompt: String::new(),
                system: None,
                at_ms: u64::MAX,
            },
            Event::TurnCompleted {
                task: s.into(),
                agent: s.into(),
                turn: u32::MAX,
                text: Some(s.into()),
                tool_calls: vec![
                    ToolCall {
                        id: s.into(),
                        name: "memory_put".into(),
                        arguments: v.clone(),
                    },
                    ToolCall {
                        id: "c2".into(),
                        name: s.into(),
                        arguments: json!({"_raw": s}),
                    },
                ],
                blocks: vec![
                    json!({"type": "thinking", "thinking": s, "signature": "x"}),
                    v.clone(),
                ],
                finish: FinishReason::Other(s.into()),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 0,
                    cache_write_tokens: 3,
                    cache_read_tokens: 0,
                },
                usd: f,
                usd_saved: f,
                latency_ms: 100,
                retries: 2,
                at_ms: 4,
            },
            Event::TurnCompleted {
                task: "t".into(),
                agent: "a".into(),
                turn: 0,
                text: None,
                tool_calls: Vec::new(),
                blocks: Vec::new(),
                finish: FinishReason::ToolCalls,
                usage: Usage {
                    input_tokens: 0,
                    output_tokens: 5,
                    cache_write_tokens: 0,
                    cache_read_tokens: 8,
                },
                usd: 0.0,
                usd_saved: 0.0,
                latency_ms: 0,
                retries: 0,
                at_ms: 0,
            },
            Event::TurnCompleted {
                task: "t".into(),
                agent: "a".into(),
                turn: 1,
                text: Some(String::new()),
                tool_calls: Vec::new(),
                blocks: Vec::new(),
                finish: FinishReason::Stop,
                usage: Usage::new(1, 2),
                usd: f,
                usd_saved: -0.0,
                latency_ms: 1,
                retries: 0,
                at_ms: 2,
            },
            Event::LlmCallFailed {
                task: s.into(),
                agent: "a".into(),
                error: s.into(),
                retries: 3,
                latency_ms: 40,
                at_ms: 8,
            },
            Event::ToolStarted {
                task: "t".into(),
                agent: s.into(),
                call_id: s.into(),
                name: "run_command".into(),
                at_ms: 6,
            },
            Event::ToolCompleted {
                task: "t".into(),
                agent: "a".into(),
                call_id: s.into(),
                name: s.into(),
                content: s.into(),
                is_error: true,
                duration_ms: 12,
                at_ms: 13,
            },
            Event::ToolCompleted {
                task: "t".into(),
                agent: "a".into(),
                call_id: "c".into(),
                name: "n".into(),
                content: String::new(),
                is_error: false,
                duration_ms: 0,
                at_ms: 0,
            },
            Event::TaskCompleted {
                task: s.into(),
                agent: "a".into(),
                result: s.into(),
                at_ms: 14,
            },
            Event::TaskFailed {
                task: "t".into(),
                agent: Some(s.into()),
                error: s.into(),
                at_ms: 15,
            },
            Event::TaskFailed {
                task: s.into(),
                agent: None,
                error: "e".into(),
                at_ms: 15,
            },
            Event::TaskRetried {
                task: s.into(),
                at_ms: 16,
            },
            Event::MemoryChanged {
                change: MemoryChange::Put {
                    namespace: s.into(),
                    key: s.into(),
                    entry: entry.clone(),
                },
            },
            Event::MemoryChanged {
                change: MemoryChange::Put {
                    namespace: "ns".into(),
                    key: "k".into(),
                    entry: Entry {
                        expires_ms: None,
                        access_count: 9,
                        ..entry
                    },
                },
            },
            Event::MemoryChanged {
                change: MemoryChange::Delete {
                    namespace: s.into(),
                    key: s.into(),
                },
            },
            Event::MessageSent {
                id: 42,
                from: s.into(),
                to: "b".into(),
                body: s.into(),
                at_ms: 17,
            },
            Event::MessagesRead {
                agent: s.into(),
                up_to: 42,
            },
            Event::BudgetWarning {
                resource: BudgetResource::Usd,
                used: f,
                limit: 1.0,
                at_ms: 18,
            },
            Event::BudgetExceeded {
                resource: BudgetResource::LlmCalls,
                used: 3.0,
                limit: f,
                at_ms: 19,
            },
            Event::BudgetExtended {
                base: SpendBase {
                    tokens: 1,
                    llm_calls: 2,
                    elapsed_ms: 3,
                    usd: f,
                },
                at_ms: 20,
            },
            Event::HookFailed {
                hook: s.into(),
                error: s.into(),
                at_ms: 21,
            },
            Event::Checkpoint { at_ms: 22 },
            Event::SessionEnded {
                status: SessionStatus::BudgetStopped,
                reason: s.into(),
                at_ms: 23,
            },
        ]
    }

    #[test]
    fn every_event_encodes_as_serde_json_does() {
        let mut out = Vec::new();
        let mut kinds = std::collections::BTreeSet::new();
        for (i, s) in tricky().iter().enumerate() {
            let f = floats()[i % floats().len()];
            for v in values(s) {
                for event in every_event(s, f, v) {
                    let expected = serde_json::to_vec(&event).unwrap();
                    out.clear();
                    // Something before it in the buffer, as in a batch.
                    out.extend_from_slice(b"xy");
                    encode_event(&mut out, &event).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&out[2..]),
                        String::from_utf8_lossy(&expected),
                        "{event:?}"
                    );
                    assert_eq!(&out[..2], b"xy");
                    // A float that is not finite is written as `null`, which reads back as
                    // nothing: only finite ones make the round trip.
                    if f.is_finite() {
                        let back: Event = serde_json::from_slice(&out[2..]).unwrap();
                        assert_eq!(
                            serde_json::to_vec(&back).unwrap(),
                            expected,
                            "round trip of {event:?}"
                        );
                    }
                    let json: serde_json::Value = serde_json::from_slice(&expected).unwrap();
                    kinds.insert(json["type"].as_str().unwrap().to_string());
                }
            }
        }
        // Every kind of event was compared: a new variant must be added above.
        assert_eq!(kinds.len(), 20, "{kinds:?}");
    }

    #[test]
    fn integers_encode_as_serde_json_does() {
        let mut edges: Vec<u64> = (0..12_000).collect();
        for p in 1..20 {
            let n = 10u64.pow(p);
            edges.extend([n - 1, n, n + 1]);
        }
        edges.extend([u64::MAX, u64::MAX - 1, 1_764_648_000_123]);
        for n in edges {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap(), "{n}");
        }
    }

    #[test]
    fn every_finish_reason_and_status_encodes_as_serde_json_does() {
        for finish in [
            FinishReason::Stop,
            FinishReason::ToolCalls,
            FinishReason::Length,
            FinishReason::Refusal,
            FinishReason::Other("weird \"one\"".into()),
        ] {
            let mut out = Vec::new();
            write_finish(&mut out, &finish);
            assert_eq!(out, serde_json::to_vec(&finish).unwrap());
        }
        for status in [
            SessionStatus::Running,
            SessionStatus::Completed,
            SessionStatus::Failed,
            SessionStatus::Interrupted,
            SessionStatus::BudgetStopped,
            SessionStatus::Queued,
        ] {
            let event = Event::SessionEnded {
                status,
                reason: String::new(),
                at_ms: 1,
            };
            let mut out = Vec::new();
            encode_event(&mut out, &event).unwrap();
            assert_eq!(out, serde_json::to_vec(&event).unwrap());
        }
        for resource in BudgetResource::ALL {
            let event = Event::BudgetWarning {
                resource,
                used: 0.5,
                limit: 1.0,
                at_ms: 1,
            };
            let mut out = Vec::new();
            encode_event(&mut out, &event).unwrap();
            assert_eq!(out, serde_json::to_vec(&event).unwrap());
        }
    }
}
