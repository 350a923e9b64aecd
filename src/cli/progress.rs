//! What the user watches while a swarm runs: a progress bar on stderr (tasks done/total, agents
//! busy, tokens, cost) with a line per finished or failed task, or, with `--json`, every event as
//! one JSON object per line on stdout.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use swarm_runtime::runtime::recorder::Observer;
use swarm_runtime::runtime::SwarmContext;
use swarm_runtime::session::{Event, TaskStatus};

pub struct Display {
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    pub fn start(ctx: &Arc<SwarmContext>, events: Observer, json: bool) -> Self {
        let task = if json {
            tokio::spawn(print_json(events))
        } else {
            tokio::spawn(show_progress(Progress::new(ctx), events))
        };
        Self { task }
    }

    /// Waits until the last event (the session's end) has been shown.
    pub async fn finish(self) {
        let _ = self.task.await;
    }

    /// Stops showing progress without waiting for the end of the session (which will not come).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn print_json(mut events: Observer) {
    while let Some(event) = events.recv().await {
        // The envelope: the event's fields and its `seq`.
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        if matches!(*event, Event::SessionEnded { .. }) {
            let _ = std::io::stdout().flush();
            return;
        }
    }
}

struct Progress {
    bar: ProgressBar,
    total: u64,
    finished: u64,
    running: HashSet<String>,
    max_agents: u32,
    /// Whether the bar draws nowhere (stderr is not a terminal); fixed when it is made.
    hidden: bool,
    /// What the message shows now (agents busy, tokens, cost), so it is formatted on change.
    shown: Option<(usize, u64, u64)>,
    /// Lines not written yet (stderr not a terminal): what arrived together is written with
    /// one system call, once no further event is waiting.
    scratch: String,
    tokens: u64,
    usd: f64,
    /// Failures per hook: the first is shown, the count at the end (a hook on every task
    /// failing the same way would otherwise print a line per task).
    hook_failures: BTreeMap<String, u32>,
}

impl Progress {
    fn new(ctx: &SwarmContext) -> Self {
        let (total, finished, tokens, usd) = ctx.recorder.read(|s| {
            (
                s.tasks.len() as u64,
                (s.count(TaskStatus::Done) + s.count(TaskStatus::Failed)) as u64,
                s.totals.tokens(),
                s.totals.usd,
            )
        });
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:24} {pos}/{len} tasks · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(finished);
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let mut progress = Self {
            hidden: bar.is_hidden(),
            shown: None,
            scratch: String::new(),
            bar,
            total,
            finished,
            running: HashSet::new(),
            max_agents: ctx.plan.max_agents,
            tokens,
            usd,
            hook_failures: BTreeMap::new(),
        };
        progress.refresh();
        progress
    }

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        if self.hidden {
            let _ = std::fmt::Write::write_fmt(&mut self.scratch, text);
            self.scratch.push('\n');
        } else {
            self.bar.println(text.to_string());
        }
    }

    /// Writes the lines put together so far.
    fn flush(&mut self) {
        if !self.scratch.is_empty() {
            let _ = std::io::stderr().lock().write_all(self.scratch.as_bytes());
            self.scratch.clear();
        }
    }

    fn refresh(&mut self) {
        // With stderr not a terminal nothing is drawn: formatting the line for every event
        // would cost more than the rest of the display.
        if self.hidden {
            return;
        }
        self.bar.set_length(self.total);
        self.bar.set_position(self.finished);
        let shown = (self.running.len(), self.tokens, self.usd.to_bits());
        if self.shown == Some(shown) {
            return;
        }
        self.shown = Some(shown);
        self.bar.set_message(format!(
            "agents busy {}/{} · tokens {} · ${:.4}",
            self.running.len(),
            self.max_agents,
            human_count(self.tokens),
            self.usd
        ));
    }

    fn on(&mut self, event: &Event) {
        match event {
            Event::TaskCreated {
                task, created_by, ..
            } => {
                self.total += 1;
                if created_by.as_deref().is_some_and(|c| c != "runtime") {
                    self.line(format_args!("+ task {} ({}) planned", task.id, task.role));
                }
            }
            Event::TaskStarted { task, agent, .. } => {
                self.running.insert(task.clone());
                self.line(format_args!("▶ {task} started by {agent}"));
            }
            Event::TurnCompleted { usage, usd, .. } => {
                self.tokens += usage.input_tokens + usage.output_tokens;
                self.usd += usd;
            }
            Event::TaskCompleted { task, agent, .. } => {
                self.running.remove(task);
                self.finished += 1;
                self.line(format_args!("✓ {task} done by {agent}"));
            }
            Event::TaskFailed { task, error, .. } => {
                self.running.remove(task);
                self.finished += 1;
                self.line(format_args!("✗ {task} failed: {error}"));
            }
            Event::TaskRetried { task, .. } => {
                self.finished = self.finished.saturating_sub(1);
                self.line(format_args!("↻ {task} will be tried again"));
            }
            Event::LlmCallFailed { agent, error, .. } => {
                self.line(format_args!("! {agent}: LLM call failed: {error}"));
            }
            Event::BudgetWarning {
                resource,
                used,
                limit,
                ..
            } => self.line(format_args!(
                "! budget warning: {} at {:.0}% ({} of {})",
                resource.as_str(),
                used / limit * 100.0,
                used,
                limit
            )),
            Event::BudgetExceeded { resource, .. } => self.line(format_args!(
                "! budget: {} reached its stop threshold; finishing the calls in flight",
                resource.as_str()
            )),
            Event::HookFailed { hook, error, .. } => {
                let seen = self.hook_failures.entry(hook.clone()).or_insert(0);
                *seen += 1;
                if *seen == 1 {
                    self.line(format_args!("! hook {hook} failed: {error}"));
                }
            }
            _ => return,
        }
        self.refresh();
    }
}

async fn show_progress(mut progress: Progress, mut events: Observer) {
    while let Some(event) = events.recv().await {
        if matches!(*event, Event::SessionEnded { .. }) {
            break;
        }
        progress.on(&event);
        if events.is_empty() {
            progress.flush();
        }
    }
    progress.flush();
    progress.bar.finish_and_clear();
    for (hook, times) in progress.hook_failures.iter().filter(|(_, n)| **n > 1) {
        eprintln!("! hook {hook} failed {times} times in all (`swarm sessions log` has each)");
    }
}

fn human_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=9_999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}
