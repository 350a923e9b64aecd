//! `swarm sessions log`: the transcript of every agent from the journal, one event a line with
//! time, task and agent in front (or one JSON object a line), optionally following a running
//! session until it ends.

use super::exit;
use anyhow::Result;
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;
use swarm_runtime::session::history::{SystemPrompts, Tail};
use swarm_runtime::session::{format_utc, Envelope, Event, StateDir};

/// How often `--follow` looks for new events.
pub const POLL: Duration = Duration::from_millis(150);

/// How much of a text, argument list or result a line quotes without `--full`.
const SHORT_CHARS: usize = 200;

/// What to print and how.
pub struct LogOptions {
    pub task: Option<String>,
    pub agent: Option<String>,
    pub follow: bool,
    pub json: bool,
    pub full: bool,
}

pub fn run(root: &std::path::Path, session: &str, options: &LogOptions) -> Result<u8> {
    match print(root, session, options) {
        // A reader that stopped early (`| head`) is not an error of the log.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(exit::OK)
        }
        other => other,
    }
}

fn print(root: &std::path::Path, session: &str, options: &LogOptions) -> Result<u8> {
    let dir = StateDir::open_read_only(root)?;
    let id = dir.resolve(session)?;
    let mut tail = Tail::new(&dir, &id);
    let mut printer = Printer::new(options);
    loop {
        let over = options.follow && tail.is_over()?;
        let events = tail.read()?;
        if tail.is_complete() == Some(false) && printer.lines == 0 && !options.json {
            eprintln!(
                "note: this session's journal begins after a snapshot (an older version compacted it); earlier turns are not in it"
            );
        }
        printer.widen(&events);
        for envelope in &events {
            printer.event(envelope.seq, &envelope.event)?;
        }
        if !options.follow || over {
            break;
        }
        std::thread::sleep(POLL);
    }
    for (what, filter, known) in [
        ("task", &options.task, &printer.tasks),
        ("agent", &options.agent, &printer.agents),
    ] {
        if let Some(name) = filter.as_deref().filter(|n| !known.contains(*n)) {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            eprintln!(
                "error: session {id} has no {what} `{name}`; its {what}s: {}",
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                }
            );
            return Ok(exit::USAGE);
        }
    }
    Ok(exit::OK)
}

/// Formats events as log lines, keeping the columns aligned as new task and agent names appear.
struct Printer<'o> {
    options: &'o LogOptions,
    task_width: usize,
    agent_width: usize,
    lines: u64,
    /// Every task and agent the journal names, to tell a filter that matches nothing.
    tasks: BTreeSet<String>,
    agents: BTreeSet<String>,
    /// System prompts journaled once per role, put back on every task.
    systems: SystemPrompts,
}

impl<'o> Printer<'o> {
    fn new(options: &'o LogOptions) -> Self {
        Self {
            options,
            task_width: 4,
            agent_width: 5,
            lines: 0,
            tasks: BTreeSet::new(),
            agents: BTreeSet::new(),
            systems: SystemPrompts::default(),
        }
    }

    /// Makes the columns wide enough for every name in `events`, so a batch prints aligned.
    fn widen(&mut self, events: &[Envelope]) {
        for envelope in events {
            let (task, agent) = subjects(&envelope.event);
            self.tasks.extend(task.map(str::to_string));
            self.agents.extend(agent.map(str::to_string));
            self.task_width = self.task_width.max(task.map_or(1, |t| t.chars().count()));
            self.agent_width = self.agent_width.max(agent.map_or(1, |a| a.chars().count()));
        }
    }

    fn event(&mut self, seq: u64, event: &Event) -> Result<()> {
        let resolved = self.systems.resolve(event);
        let event: &Event = &resolved;
        let (task, agent) = subjects(event);
        if let Some(only) = &self.options.task {
            if task != Some(only.as_str()) {
                return Ok(());
            }
        }
        if let Some(only) = &self.options.agent {
            let to = match event {
                Event::MessageSent { to, .. } => Some(to.as_str()),
                _ => None,
            };
            if agent != Some(only.as_str()) && to != Some(only.as_str()) {
                return Ok(());
            }
        }
        let mut out = std::io::stdout().lock();
        if self.options.json {
            let Some(line) = json_line(seq, event) else {
                return Ok(());
            };
            writeln!(out, "{line}")?;
            self.lines += 1;
            return Ok(out.flush()?);
        }
        let rows = rows(event, self.options.full);
        if rows.is_empty() {
            return Ok(());
        }
        let task = task.unwrap_or("-");
        let agent = agent.unwrap_or("-");
        self.task_width = self.task_width.max(task.chars().count());
        self.agent_width = self.agent_width.max(agent.chars().count());
        let time = event
            .at_ms()
            .map(|ms| format_utc(ms).split_off(11))
            .unwrap_or_else(|| "--:--:--".to_string());
        for (kind, text) in rows {
            for line in text.split('\n') {
                writeln!(
                    out,
                    "{time} {task:<tw$} {agent:<aw$} {kind:<8} {line}",
                    tw = self.task_width,
                    aw = self.agent_width
                )?;
                self.lines += 1;
            }
        }
        Ok(out.flush()?)
    }
}

/// The task and agent an event is about.
pub fn subjects(event: &Event) -> (Option<&str>, Option<&str>) {
    match event {
        Event::TaskCreated {
            task, created_by, ..
        } => (Some(task.id.as_str()), created_by.as_deref()),
        Event::TaskStarted { task, agent, .. }
        | Event::TurnCompleted { task, agent, .. }
        | Event::LlmCallFailed { task, agent, .. }
        | Event::ToolStarted { task, agent, .. }
        | Event::ToolCompleted { task, agent, .. }
        | Event::TaskCompleted { task, agent, .. } => (Some(task), Some(agent)),
        Event::TaskFailed { task, agent, .. } => (Some(task), agent.as_deref()),
        Event::TaskRetried { task, .. } => (Some(task), None),
        Event::MessageSent { from, .. } => (None, Some(from)),
        Event::MessagesRead { agent, .. } => (None, Some(agent)),
        _ => (None, None),
    }
}

/// The event as one JSON object with its seq and UTC time; `None` for bookkeeping events
/// (memory changes, read receipts, checkpoints) that are not part of the transcript.
pub fn json_line(seq: u64, event: &Event) -> Option<String> {
    if !in_transcript(event) {
        return None;
    }
    let mut value = serde_json::to_value(event).ok()?;
    let map = value.as_object_mut()?;
    map.insert("seq".into(), seq.into());
    if let Some(ms) = event.at_ms() {
        map.insert(
            "at".into(),
            format!("{}Z", format_utc(ms).replace(' ', "T")).into(),
        );
    }
    serde_json::to_string(&value).ok()
}

fn in_transcript(event: &Event) -> bool {
    !matches!(
        event,
        Event::MemoryChanged { .. } | Event::MessagesRead { .. } | Event::Checkpoint { .. }
    )
}

/// The (kind, text) rows of an event; texts may hold newlines only with `full`.
pub fn rows(event: &Event, full: bool) -> Vec<(&'static str, String)> {
    let clip = |text: &str| clip(text, full);
    match event {
        Event::SessionStarted {
            swarm,
            goal,
            provider,
            model,
            ..
        } => {
            let goal = goal
                .as_deref()
                .map(|g| format!(", goal: {}", clip(g)))
                .unwrap_or_default();
            vec![(
                "session",
                format!("started: swarm {swarm} on {provider}/{model}{goal}"),
            )]
        }
        Event::SessionResumed {
            provider, model, ..
        } => vec![("session", format!("resumed on {provider}/{model}"))],
        Event::SessionEnded { status, reason, .. } => {
            let reason = if reason == status.as_str() {
                String::new()
            } else {
                format!(": {}", clip(reason))
            };
            vec![("session", format!("ended {}{reason}", status.as_str()))]
        }
        Event::TaskCreated { task, .. } => {
            let deps = if task.depends_on.is_empty() {
                String::new()
            } else {
                format!(", after {}", task.depends_on.join(", "))
            };
            vec![(
                "created",
                format!("for {}{deps}: {}", task.role, clip(&task.description)),
            )]
        }
        Event::TaskStarted { prompt, system, .. } => {
            if prompt.is_empty() {
                return vec![("resumed", "continues its transcript".to_string())];
            }
            let mut rows = Vec::new();
            if let Some(system) = system {
                rows.push(("system", clip(system)));
            }
            rows.push(("user", clip(prompt)));
            rows
        }
        Event::TurnCompleted {
            turn,
            text,
            tool_calls,
            usage,
            usd,
            latency_ms,
            retries,
            finish,
            ..
        } => {
            let retries = match retries {
                0 => String::new(),
                1 => ", 1 retry".to_string(),
                n => format!(", {n} retries"),
            };
            let cached = match (usage.cache_read_tokens, usage.cache_write_tokens) {
                (0, 0) => String::new(),
                (read, written) => format!(" ({read} read from cache, {written} written)"),
            };
            let mut rows = vec![(
                "turn",
                format!(
                    "{}: {} in{cached} / {} out tokens, ${usd:.4}, {}{retries}, finish {}",
                    turn + 1,
                    usage.prompt_tokens(),
                    usage.output_tokens,
                    seconds(*latency_ms),
                    finish_name(finish)
                ),
            )];
            if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                rows.push(("text", clip(text)));
            }
            for call in tool_calls {
                rows.push((
                    "call",
                    format!(
                        "{} {} [{}]",
                        call.name,
                        clip(&call.arguments.to_string()),
                        call.id
                    ),
                ));
            }
            rows
        }
        Event::ToolStarted { name, call_id, .. } => vec![(
            "started",
            format!("{name} [{call_id}] (not safe to repeat: journaled before it runs)"),
        )],
        Event::ToolCompleted {
            name,
            content,
            is_error,
            duration_ms,
            call_id,
            ..
        } => vec![(
            if *is_error { "error" } else { "result" },
            format!(
                "{name} [{call_id}] {}: {}",
                seconds(*duration_ms),
                clip(content)
            ),
        )],
        Event::LlmCallFailed {
            error,
            retries,
            latency_ms,
            ..
        } => vec![(
            "llm-fail",
            format!(
                "after {retries} retries, {}: {}",
                seconds(*latency_ms),
                clip(error)
            ),
        )],
        Event::TaskCompleted { result, .. } => vec![("done", clip(result))],
        Event::TaskFailed { error, .. } => vec![("failed", clip(error))],
        Event::TaskRetried { .. } => vec![(
            "retried",
            "back in the queue with a fresh transcript".to_string(),
        )],
        Event::MessageSent { to, body, id, .. } => {
            vec![("message", format!("#{id} to {to}: {}", clip(body)))]
        }
        Event::BudgetWarning {
            resource,
            used,
            limit,
            ..
        } => vec![(
            "budget",
            format!("warning: {} at {used:.2} of {limit:.2}", resource.as_str()),
        )],
        Event::BudgetExceeded {
            resource,
            used,
            limit,
            ..
        } => vec![(
            "budget",
            format!("exceeded: {} at {used:.2} of {limit:.2}", resource.as_str()),
        )],
        Event::BudgetExtended { .. } => vec![(
            "budget",
            "extended: counts again from the spend so far".to_string(),
        )],
        Event::HookFailed { hook, error, .. } => {
            vec![("hook", format!("{hook} failed: {}", clip(error)))]
        }
        Event::MemoryChanged { .. } | Event::MessagesRead { .. } | Event::Checkpoint { .. } => {
            Vec::new()
        }
    }
}

fn finish_name(finish: &swarm_runtime::llm::FinishReason) -> String {
    use swarm_runtime::llm::FinishReason;
    match finish {
        FinishReason::Stop => "stop".into(),
        FinishReason::ToolCalls => "tool_calls".into(),
        FinishReason::Length => "length".into(),
        FinishReason::Refusal => "refusal".into(),
        FinishReason::Other(other) => other.clone(),
    }
}

pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `text` as it is with `full` (trailing blank lines dropped), else on one line and cut at
/// [`SHORT_CHARS`] characters with a note of how much was left out.
pub fn clip(text: &str, full: bool) -> String {
    // Control characters from a model (e.g. terminal escapes) are shown, never obeyed.
    let text: String = text
        .chars()
        .flat_map(|c| match c {
            '\n' | '\t' => vec![c],
            c if c.is_control() => c.escape_unicode().collect(),
            c => vec![c],
        })
        .collect();
    if full {
        return text.trim_end().to_string();
    }
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SHORT_CHARS) {
        Some((cut, _)) => {
            let rest = line[cut..].chars().count();
            format!("{}… (+{rest} chars, --full for all)", &line[..cut])
        }
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("a\n  b", false), "a b");
        assert_eq!(clip("a\nb\n\n", true), "a\nb");
        assert_eq!(clip("\u{1b}[2Jx", true), "\\u{1b}[2Jx");
        let long = "é".repeat(SHORT_CHARS + 7);
        let cut = clip(&long, false);
        assert!(cut.starts_with(&"é".repeat(SHORT_CHARS)));
        assert!(cut.ends_with("(+7 chars, --full for all)"), "{cut}");
    }
}
