//! `swarm watch` (and `sessions show --follow`): a session seen live from any terminal, read from
//! the journal as the runner appends to it: tasks by status, busy agents and what each is doing,
//! tokens, cost, budget health and the latest events. On a terminal the screen is redrawn in
//! place; otherwise each new event is a line and a status line follows every change.

use super::exit;
use super::log::{clip, rows, seconds, subjects, POLL};
use anyhow::Result;
use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::Path;
use swarm_runtime::session::budget::{self, BudgetHealth, Level};
use swarm_runtime::session::{
    format_utc, history::Tail, Event, SessionState, SessionStatus, StateDir, TaskStatus,
};
use swarm_runtime::spec::BudgetSettings;

/// Events the screen keeps.
const RECENT: usize = 12;
/// How much of an event's text one line of the view shows.
const LINE_CHARS: usize = 110;

pub fn run(root: &Path, session: &str) -> Result<u8> {
    let dir = StateDir::open_read_only(root)?;
    let id = dir.resolve(session)?;
    let budget = dir.load(&id)?.plan.budget;
    let mut tail = Tail::new(&dir, &id);
    let mut view = View::new(budget);
    let screen = std::io::stdout().is_terminal();
    if !screen {
        println!("watching session {id}");
    }
    let mut last_status = String::new();
    loop {
        let over = tail.is_over()?;
        let events = tail.read()?;
        let mut lines = Vec::new();
        for envelope in &events {
            if let Some(line) = view.apply(&envelope.event) {
                lines.push(line);
            }
        }
        if screen {
            if !events.is_empty() || over {
                draw(&view, &id);
            }
        } else {
            let mut out = std::io::stdout().lock();
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            let status = view.status_line();
            if status != last_status {
                writeln!(out, "{status}")?;
                last_status = status;
            }
            out.flush()?;
        }
        if over {
            break;
        }
        std::thread::sleep(POLL);
    }
    let status = view.state.status.map_or("stopped", SessionStatus::as_str);
    if screen {
        println!("session {id} {status}");
    } else {
        println!("session ended: {status}");
    }
    Ok(exit::OK)
}

/// What an agent is busy with.
struct Activity {
    task: String,
    doing: String,
    since_ms: u64,
}

/// The session as the view shows it: the state folded from the journal, plus what each busy
/// agent is doing and the latest event lines.
struct View {
    state: SessionState,
    budget: BudgetSettings,
    busy: BTreeMap<String, Activity>,
    recent: VecDeque<String>,
}

impl View {
    fn new(budget: BudgetSettings) -> Self {
        Self {
            state: SessionState::default(),
            budget,
            busy: BTreeMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// Applies an event; returns its line for the event list, if it has one.
    fn apply(&mut self, event: &Event) -> Option<String> {
        self.state.apply(event);
        let at = event.at_ms().unwrap_or(self.state.last_event_at_ms);
        let mut set = |agent: &str, task: &str, doing: String| {
            self.busy.insert(
                agent.to_string(),
                Activity {
                    task: task.to_string(),
                    doing,
                    since_ms: at,
                },
            );
        };
        match event {
            Event::TaskStarted { task, agent, .. } | Event::ToolCompleted { task, agent, .. } => {
                let turn = self.state.task(task).map_or(0, |t| t.turns) + 1;
                set(agent, task, format!("waiting for the LLM (turn {turn})"));
            }
            Event::TurnCompleted {
                task,
                agent,
                tool_calls,
                ..
            } => {
                let doing = if tool_calls.is_empty() {
                    "finishing".to_string()
                } else {
                    let names: Vec<&str> = tool_calls.iter().map(|c| c.name.as_str()).collect();
                    format!("running {}", names.join(", "))
                };
                set(agent, task, doing);
            }
            Event::TaskCompleted { agent, .. } => {
                self.busy.remove(agent);
            }
            Event::TaskFailed {
                agent: Some(agent), ..
            } => {
                self.busy.remove(agent);
            }
            Event::SessionResumed { .. } | Event::SessionEnded { .. } => self.busy.clear(),
            _ => {}
        }
        let (kind, text) = rows(event, false).into_iter().next()?;
        let (task, agent) = subjects(event);
        let time = event
            .at_ms()
            .map(|ms| format_utc(ms).split_off(11))
            .unwrap_or_default();
        let line = format!(
            "{time} {} {} {kind} {}",
            task.unwrap_or("-"),
            agent.unwrap_or("-"),
            cut(&text, LINE_CHARS)
        );
        self.recent.push_back(line.clone());
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        Some(line)
    }

    fn health(&self) -> Vec<BudgetHealth> {
        budget::health(&self.state, &self.budget)
    }

    fn tasks_line(&self) -> String {
        let s = &self.state;
        format!(
            "tasks {} done, {} running, {} pending, {} failed of {}",
            s.count(TaskStatus::Done),
            s.count(TaskStatus::Running),
            s.count(TaskStatus::Pending),
            s.count(TaskStatus::Failed),
            s.tasks.len()
        )
    }

    fn spend_line(&self) -> String {
        let t = &self.state.totals;
        format!(
            "{} tokens ({} in, {} out), ${:.4}, {} LLM calls, active {}",
            t.tokens(),
            t.tokens_in,
            t.tokens_out,
            t.usd,
            t.llm_calls,
            seconds(self.state.elapsed_ms())
        )
    }

    fn health_line(&self) -> String {
        let health = self.health();
        if health.is_empty() {
            return "budget none configured".to_string();
        }
        let parts: Vec<String> = health
            .iter()
            .map(|h| format!("{} {}", h.resource.as_str(), h.level.as_str()))
            .collect();
        format!(
            "budget {} ({})",
            budget::overall(&health).as_str(),
            parts.join(", ")
        )
    }

    fn busy_line(&self) -> String {
        if self.busy.is_empty() {
            return "busy none".to_string();
        }
        let parts: Vec<String> = self
            .busy
            .iter()
            .map(|(agent, a)| format!("{agent} on {}: {}", a.task, a.doing))
            .collect();
        format!("busy {}", parts.join("; "))
    }

    /// One line for the plain output: everything but the event list.
    fn status_line(&self) -> String {
        format!(
            "== {} | {} | {} | {}",
            self.tasks_line(),
            self.busy_line(),
            self.spend_line(),
            self.health_line()
        )
    }
}

/// Redraws the whole screen from the top: cheap at this size and never leaves stale rows.
fn draw(view: &View, id: &str) {
    let color = std::env::var_os("NO_COLOR").is_none();
    let paint = |level: Level, text: &str| {
        if !color {
            return text.to_string();
        }
        let code = match level {
            Level::Green => "32",
            Level::Yellow => "33",
            Level::Red => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let s = &view.state;
    let mut out = String::from("\x1b[H\x1b[2J");
    let status = s.status.map_or("unknown", SessionStatus::as_str);
    out.push_str(&format!(
        "session {id}  swarm {}  {status}  (run {})\n",
        s.swarm, s.runs
    ));
    if let Some(goal) = &s.goal {
        out.push_str(&format!("goal    {}\n", cut(goal, LINE_CHARS)));
    }
    out.push_str(&format!("{}\n{}\n\n", view.tasks_line(), view.spend_line()));
    let health = view.health();
    if health.is_empty() {
        out.push_str("budget  none configured\n");
    }
    for h in &health {
        let filled = ((h.ratio.clamp(0.0, 1.0)) * 30.0).round() as usize;
        let bar = format!("{}{}", "█".repeat(filled), "░".repeat(30 - filled));
        out.push_str(&format!(
            "{:<10} {} {}\n",
            h.resource.as_str(),
            paint(h.level, &bar),
            h.describe()
        ));
    }
    out.push_str("\nbusy agents\n");
    if view.busy.is_empty() {
        out.push_str("  none\n");
    }
    for (agent, a) in &view.busy {
        let for_ms = s.last_event_at_ms.saturating_sub(a.since_ms);
        out.push_str(&format!(
            "  {agent:<20} {:<16} {} (since {})\n",
            a.task,
            a.doing,
            seconds(for_ms)
        ));
    }
    out.push_str("\ntasks\n");
    for t in s.tasks_in_order() {
        out.push_str(&format!(
            "  {:<20} {:<8} {}\n",
            t.spec.id,
            t.status.as_str(),
            t.agent.as_deref().unwrap_or("-")
        ));
    }
    out.push_str("\nrecent events\n");
    for line in &view.recent {
        out.push_str(&format!("  {line}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

fn cut(text: &str, chars: usize) -> String {
    let line = clip(text, false);
    match line.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}
