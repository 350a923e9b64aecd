//! The visual report: one self-contained HTML page (inline CSS, SVG and a little script, nothing
//! fetched) with the task graph, a timeline of the agents, budget health bars, the per-agent
//! metrics and every task's transcript folded under it. Built from the plan, the state and the
//! journal's events; every text that came from a user or a model is escaped.

use super::budget::{self, Level};
use super::event::{Envelope, Event, SessionStatus};
use super::rows::format_utc;
use super::state::{Counters, SessionState, TaskStatus};
use crate::spec::SwarmPlan;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 38.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 18.0;
const LANE_H: f64 = 30.0;
const LABEL_W: f64 = 170.0;
const CHART_W: f64 = 860.0;
/// How much of a long text the page shows before a "show all" fold.
const PREVIEW_CHARS: usize = 600;

/// Renders the report of a session: `events` are its journal in order (with their seqs).
pub fn render(plan: &SwarmPlan, state: &SessionState, events: &[Envelope]) -> String {
    let facts = Facts::gather(events);
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Session {} ({})", state.session, state.swarm);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style><script>{ERROR_TRAP}</script></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", esc(&title));
    summary(&mut out, plan, state);
    health(&mut out, plan, state);
    graph(&mut out, state, &facts);
    timeline(&mut out, state, &facts);
    metrics(&mut out, state);
    transcripts(&mut out, state, &facts);
    let _ = write!(
        out,
        "<div id=\"selfcheck\" data-expected-nodes=\"{}\"></div>\n<script>{SCRIPT}</script>\n</body></html>\n",
        state.tasks.len()
    );
    out
}

/// What the page draws, gathered from the events in one pass.
#[derive(Default)]
struct Facts {
    /// Each run: its start and its last event.
    runs: Vec<(u64, u64)>,
    /// Per agent, in order of first appearance: the spans it worked on tasks.
    spans: Vec<(String, Vec<Span>)>,
    calls: Vec<Call>,
    /// (creating task, created task): the task the creating agent was working on.
    created: Vec<(String, String)>,
    /// Per task: its transcript entries in journal order.
    transcript: HashMap<String, Vec<Entry>>,
}

struct Span {
    task: String,
    start: u64,
    end: u64,
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Open,
    Done,
    Failed,
    Stopped,
}

struct Call {
    agent: String,
    task: String,
    at: u64,
    latency: u64,
    retries: u32,
    failed: bool,
    tokens: u64,
    usd: f64,
}

enum Entry {
    System(String),
    User(String),
    Resumed,
    Turn {
        n: u32,
        text: Option<String>,
        calls: Vec<(String, String, String)>,
        meta: String,
    },
    Tool {
        name: String,
        id: String,
        content: String,
        is_error: bool,
        meta: String,
    },
    LlmFailed(String),
    Done(String),
    Failed(String),
    Retried,
}

impl Facts {
    fn gather(events: &[Envelope]) -> Self {
        let mut f = Facts::default();
        let mut current: HashMap<String, String> = HashMap::new();
        let mut last_at = 0u64;
        let mut systems = super::history::SystemPrompts::default();
        for envelope in events {
            let resolved = systems.resolve(envelope);
            let event: &Event = &resolved;
            if let Some(at) = event.at_ms() {
                last_at = last_at.max(at);
                if let Some(run) = f.runs.last_mut() {
                    run.1 = run.1.max(at);
                }
            }
            match event {
                Event::SessionStarted { at_ms, .. } => f.runs.push((*at_ms, *at_ms)),
                Event::SessionResumed { at_ms, .. } => {
                    f.close_open(Outcome::Stopped);
                    current.clear();
                    f.runs.push((*at_ms, *at_ms));
                }
                Event::SessionEnded { at_ms, .. } => {
                    f.close_open_at(Outcome::Stopped, *at_ms);
                    current.clear();
                }
                Event::TaskCreated {
                    task, created_by, ..
                } => {
                    if let Some(parent) = created_by.as_ref().and_then(|a| current.get(a)) {
                        f.created.push((parent.clone(), task.id.clone()));
                    }
                }
                Event::TaskStarted {
                    task,
                    agent,
                    prompt,
                    system,
                    at_ms,
                } => {
                    current.insert(agent.clone(), task.clone());
                    f.lane(agent).push(Span {
                        task: task.clone(),
                        start: *at_ms,
                        end: *at_ms,
                        outcome: Outcome::Open,
                    });
                    let entries = f.transcript.entry(task.clone()).or_default();
                    if prompt.is_empty() {
                        entries.push(Entry::Resumed);
                    } else {
                        if let Some(system) = system {
                            entries.push(Entry::System(system.clone()));
                        }
                        entries.push(Entry::User(prompt.clone()));
                    }
                }
                Event::TurnCompleted {
                    task,
                    agent,
                    turn,
                    text,
                    tool_calls,
                    usage,
                    usd,
                    latency_ms,
                    retries,
                    at_ms,
                    ..
                } => {
                    f.extend(agent, *at_ms);
                    f.calls.push(Call {
                        agent: agent.clone(),
                        task: task.clone(),
                        at: *at_ms,
                        latency: *latency_ms,
                        retries: *retries,
                        failed: false,
                        tokens: usage.total_tokens(),
                        usd: *usd,
                    });
                    f.transcript
                        .entry(task.clone())
                        .or_default()
                        .push(Entry::Turn {
                            n: turn + 1,
                            text: text.clone(),
                            calls: tool_calls
                                .iter()
                                .map(|c| (c.name.clone(), c.id.clone(), pretty_json(&c.arguments)))
                                .collect(),
                            meta: format!(
                                "{} in ({} read from cache) / {} out tokens · ${usd:.4} · {} · {retries} retries",
                                usage.prompt_tokens(),
                                usage.cache_read_tokens,
                                usage.output_tokens,
                                millis(*latency_ms)
                            ),
                        });
                }
                Event::LlmCallFailed {
                    task,
                    agent,
                    error,
                    retries,
                    latency_ms,
                    at_ms,
                } => {
                    f.extend(agent, *at_ms);
                    f.calls.push(Call {
                        agent: agent.clone(),
                        task: task.clone(),
                        at: *at_ms,
                        latency: *latency_ms,
                        retries: *retries,
                        failed: true,
                        tokens: 0,
                        usd: 0.0,
                    });
                    f.transcript
                        .entry(task.clone())
                        .or_default()
                        .push(Entry::LlmFailed(format!(
                            "after {retries} retries: {error}"
                        )));
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
                    f.extend(agent, *at_ms);
                    f.transcript
                        .entry(task.clone())
                        .or_default()
                        .push(Entry::Tool {
                            name: name.clone(),
                            id: call_id.clone(),
                            content: content.clone(),
                            is_error: *is_error,
                            meta: millis(*duration_ms),
                        });
                }
                Event::TaskCompleted {
                    task,
                    agent,
                    result,
                    at_ms,
                } => {
                    f.finish(agent, *at_ms, Outcome::Done);
                    current.remove(agent);
                    f.transcript
                        .entry(task.clone())
                        .or_default()
                        .push(Entry::Done(result.clone()));
                }
                Event::TaskFailed {
                    task,
                    agent,
                    error,
                    at_ms,
                } => {
                    if let Some(agent) = agent {
                        f.finish(agent, *at_ms, Outcome::Failed);
                        current.remove(agent);
                    }
                    f.transcript
                        .entry(task.clone())
                        .or_default()
                        .push(Entry::Failed(error.clone()));
                }
                Event::TaskRetried { task, .. } => f
                    .transcript
                    .entry(task.clone())
                    .or_default()
                    .push(Entry::Retried),
                _ => {}
            }
        }
        // Work still going when the journal ends is drawn up to its last event.
        for (_, lane) in &mut f.spans {
            for span in lane.iter_mut().filter(|s| s.outcome == Outcome::Open) {
                span.end = span.end.max(last_at);
            }
        }
        f
    }

    fn lane(&mut self, agent: &str) -> &mut Vec<Span> {
        let index = match self.spans.iter().position(|(a, _)| a == agent) {
            Some(i) => i,
            None => {
                self.spans.push((agent.to_string(), Vec::new()));
                self.spans.len() - 1
            }
        };
        &mut self.spans[index].1
    }

    fn open(&mut self, agent: &str) -> Option<&mut Span> {
        self.lane(agent)
            .last_mut()
            .filter(|s| s.outcome == Outcome::Open)
    }

    fn extend(&mut self, agent: &str, at: u64) {
        if let Some(span) = self.open(agent) {
            span.end = span.end.max(at);
        }
    }

    fn finish(&mut self, agent: &str, at: u64, outcome: Outcome) {
        if let Some(span) = self.open(agent) {
            span.end = span.end.max(at);
            span.outcome = outcome;
        }
    }

    fn close_open(&mut self, outcome: Outcome) {
        for (_, lane) in &mut self.spans {
            for span in lane.iter_mut().filter(|s| s.outcome == Outcome::Open) {
                span.outcome = outcome;
            }
        }
    }

    fn close_open_at(&mut self, outcome: Outcome, at: u64) {
        for (_, lane) in &mut self.spans {
            for span in lane.iter_mut().filter(|s| s.outcome == Outcome::Open) {
                span.end = span.end.max(at);
                span.outcome = outcome;
            }
        }
    }

    /// Active milliseconds before `at`: pauses between runs are left out, so the timeline shows
    /// work, not the night between an interruption and a resume.
    fn active_before(&self, at: u64) -> u64 {
        let mut total = 0;
        for &(start, end) in &self.runs {
            if at <= start {
                break;
            }
            total += at.min(end) - start;
        }
        total
    }

    fn active_total(&self) -> u64 {
        self.runs.iter().map(|(s, e)| e - s).sum()
    }
}

fn summary(out: &mut String, plan: &SwarmPlan, state: &SessionState) {
    let status = state.status.unwrap_or(SessionStatus::Running);
    out.push_str("<section id=\"summary\"><h2>Summary</h2><dl>");
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    row(
        "Swarm",
        format!("{} ({})", esc(&plan.name), esc(&plan.description)),
    );
    if let Some(goal) = &state.goal {
        row("Goal", esc(goal));
    }
    let reason = state
        .end_reason
        .as_deref()
        .filter(|r| *r != status.as_str())
        .map(|r| format!(": {}", esc(r)))
        .unwrap_or_default();
    row(
        "Status",
        format!(
            "<span class=\"status {}\">{}</span>{reason}",
            status.as_str(),
            status.as_str()
        ),
    );
    row(
        "Tasks",
        format!(
            "{} done, {} failed, {} running, {} pending, of {}",
            state.count(TaskStatus::Done),
            state.count(TaskStatus::Failed),
            state.count(TaskStatus::Running),
            state.count(TaskStatus::Pending),
            state.tasks.len()
        ),
    );
    row(
        "Provider",
        format!("{} / {}", esc(&state.provider), esc(&state.model)),
    );
    row("Runs", state.runs.to_string());
    row("Active time", millis(state.elapsed_ms()));
    row(
        "Wall-clock span",
        format!(
            "{} (from {} to {} UTC)",
            millis(state.wall_span_ms()),
            format_utc(state.started_at_ms),
            format_utc(state.last_event_at_ms)
        ),
    );
    let t = &state.totals;
    row(
        "Spend",
        format!(
            "{} tokens ({} in, {} out) · ${:.4} · {} LLM calls · {} retries · {} failed calls",
            t.tokens(),
            t.tokens_in,
            t.tokens_out,
            t.usd,
            t.llm_calls,
            t.retries,
            t.failed_calls
        ),
    );
    out.push_str("</dl></section>\n");
}

fn health(out: &mut String, plan: &SwarmPlan, state: &SessionState) {
    out.push_str("<section id=\"health\"><h2>Budget health</h2>");
    let health = budget::health(state, &plan.budget);
    if health.is_empty() {
        out.push_str("<p>No budget configured.</p></section>\n");
        return;
    }
    let _ = write!(
        out,
        "<p>Warn at {:.0}%, stop at {:.0}%.</p>",
        plan.budget.warn_at * 100.0,
        plan.budget.stop_at * 100.0
    );
    for h in &health {
        let _ = write!(
            out,
            "<div class=\"budget\"><span class=\"res\">{}</span>\
             <span class=\"bar\"><span class=\"fill {}\" style=\"width:{:.1}%\"></span></span>\
             <span class=\"desc\">{} {}</span></div>",
            h.resource.as_str(),
            level_class(h.level),
            (h.ratio * 100.0).clamp(0.0, 100.0),
            esc(&h.describe()),
            h.level.as_str()
        );
    }
    out.push_str("</section>\n");
}

fn level_class(level: Level) -> &'static str {
    match level {
        Level::Green => "green",
        Level::Yellow => "yellow",
        Level::Red => "red",
    }
}

/// The column of each task: one past the deepest of the tasks it depends on or was created from.
fn columns(state: &SessionState, created: &[(String, String)]) -> HashMap<String, usize> {
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in state.tasks_in_order() {
        let entry = parents.entry(t.spec.id.as_str()).or_default();
        entry.extend(t.spec.depends_on.iter().map(String::as_str));
    }
    for (from, to) in created {
        parents.entry(to.as_str()).or_default().push(from.as_str());
    }
    fn depth<'a>(
        id: &'a str,
        parents: &HashMap<&'a str, Vec<&'a str>>,
        memo: &mut HashMap<&'a str, usize>,
        visiting: &mut HashSet<&'a str>,
    ) -> usize {
        if let Some(d) = memo.get(id) {
            return *d;
        }
        // A cycle (never valid, but the page must still draw) counts as no parent.
        if !visiting.insert(id) {
            return 0;
        }
        let d = parents
            .get(id)
            .map(|ps| {
                ps.iter()
                    .map(|p| depth(p, parents, memo, visiting) + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        visiting.remove(id);
        memo.insert(id, d);
        d
    }
    let mut memo = HashMap::new();
    let mut visiting = HashSet::new();
    let mut out = HashMap::new();
    for t in state.tasks_in_order() {
        let d = depth(&t.spec.id, &parents, &mut memo, &mut visiting);
        out.insert(t.spec.id.clone(), d);
    }
    out
}

fn graph(out: &mut String, state: &SessionState, facts: &Facts) {
    out.push_str("<section id=\"graph\"><h2>Task graph</h2>");
    out.push_str(
        "<p class=\"legend\"><span class=\"chip pending\"></span>pending \
         <span class=\"chip running\"></span>running <span class=\"chip done\"></span>done \
         <span class=\"chip failed\"></span>failed · solid arrow: depends on · dashed arrow: \
         created while working on</p>",
    );
    if state.tasks.is_empty() {
        out.push_str("<p>No tasks.</p></section>\n");
        return;
    }
    let columns = columns(state, &facts.created);
    let mut rows_used: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pos: HashMap<&str, (f64, f64)> = HashMap::new();
    for t in state.tasks_in_order() {
        let col = columns.get(&t.spec.id).copied().unwrap_or(0);
        let row = rows_used.entry(col).or_insert(0);
        let x = 10.0 + col as f64 * (NODE_W + GAP_X);
        let y = 10.0 + *row as f64 * (NODE_H + GAP_Y);
        *row += 1;
        pos.insert(t.spec.id.as_str(), (x, y));
    }
    let width = pos.values().map(|p| p.0).fold(0.0, f64::max) + NODE_W + 20.0;
    let height = pos.values().map(|p| p.1).fold(0.0, f64::max) + NODE_H + 20.0;
    let _ = write!(
        out,
        "<svg class=\"graph\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>"
    );
    let mut edge = |from: &str, to: &str, class: &str| {
        if let (Some(a), Some(b)) = (pos.get(from), pos.get(to)) {
            let (x1, y1) = (a.0 + NODE_W, a.1 + NODE_H / 2.0);
            let (x2, y2) = (b.0, b.1 + NODE_H / 2.0);
            let mid = (x1 + x2) / 2.0;
            let _ = write!(
                out,
                "<path class=\"edge {class}\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}\" marker-end=\"url(#arrow)\"/>",
                esc(from),
                esc(to)
            );
        }
    };
    for t in state.tasks_in_order() {
        for dep in &t.spec.depends_on {
            edge(dep, &t.spec.id, "dep");
        }
    }
    for (from, to) in &facts.created {
        edge(from, to, "created");
    }
    for (i, t) in state.tasks_in_order().enumerate() {
        let Some(&(x, y)) = pos.get(t.spec.id.as_str()) else {
            continue;
        };
        let status = t.status.as_str();
        let _ = write!(
            out,
            "<g class=\"node {status}\" data-task=\"{id}\" data-index=\"{i}\" tabindex=\"0\">\
             <title>{id} ({role}, {status}){agent}</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"/>\
             <text x=\"{tx:.1}\" y=\"{ty1:.1}\" class=\"id\">{short}</text>\
             <text x=\"{tx:.1}\" y=\"{ty2:.1}\" class=\"role\">{role_short}</text></g>",
            id = esc(&t.spec.id),
            role = esc(&t.spec.role),
            agent = t
                .agent
                .as_deref()
                .map(|a| format!(", by {}", esc(a)))
                .unwrap_or_default(),
            tx = x + 8.0,
            ty1 = y + 16.0,
            ty2 = y + 31.0,
            short = esc(&shorten(&t.spec.id, 22)),
            role_short = esc(&shorten(&format!("{} · {status}", t.spec.role), 26)),
        );
    }
    out.push_str("</svg></section>\n");
}

fn timeline(out: &mut String, state: &SessionState, facts: &Facts) {
    out.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    let total = facts.active_total().max(1);
    if facts.spans.is_empty() {
        out.push_str("<p>No agent has worked yet.</p></section>\n");
        return;
    }
    let _ = write!(
        out,
        "<p class=\"legend\">Active time only ({} over {} run(s)); a dashed line marks a resume. \
         Bars: an agent on a task (green done, red failed, blue still open, grey stopped). \
         Ticks: LLM calls (orange: retried, red: failed).</p>",
        millis(state.elapsed_ms()),
        facts.runs.len()
    );
    let lanes = facts.spans.len() as f64;
    let height = 30.0 + lanes * LANE_H;
    let width = LABEL_W + CHART_W + 20.0;
    let x = |at: u64| LABEL_W + facts.active_before(at) as f64 / total as f64 * CHART_W;
    let _ = write!(
        out,
        "<svg class=\"timeline\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
    // Axis: five ticks of active time.
    for i in 0..=5 {
        let px = LABEL_W + CHART_W * i as f64 / 5.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{px:.1}\" y1=\"14\" x2=\"{px:.1}\" y2=\"{height:.0}\"/>\
             <text class=\"axis\" x=\"{px:.1}\" y=\"11\">{}</text>",
            millis(total * i / 5)
        );
    }
    for (i, &(start, _)) in facts.runs.iter().enumerate().skip(1) {
        let px = x(start);
        let pause = start.saturating_sub(facts.runs[i - 1].1);
        let _ = write!(
            out,
            "<line class=\"resume\" x1=\"{px:.1}\" y1=\"14\" x2=\"{px:.1}\" y2=\"{height:.0}\">\
             <title>run {} began {} UTC after a pause of {}</title></line>",
            i + 1,
            format_utc(start),
            millis(pause)
        );
    }
    let lane_of: HashMap<&str, usize> = facts
        .spans
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (a.as_str(), i))
        .collect();
    for (i, (agent, spans)) in facts.spans.iter().enumerate() {
        let y = 20.0 + i as f64 * LANE_H;
        let _ = write!(
            out,
            "<text class=\"lane\" x=\"4\" y=\"{:.1}\">{}</text>",
            y + 16.0,
            esc(&shorten(agent, 22))
        );
        for span in spans {
            let (x1, x2) = (x(span.start), x(span.end));
            let class = match span.outcome {
                Outcome::Open => "open",
                Outcome::Done => "done",
                Outcome::Failed => "failed",
                Outcome::Stopped => "stopped",
            };
            let _ = write!(
                out,
                "<rect class=\"span {class}\" data-task=\"{task}\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"20\" rx=\"3\">\
                 <title>{agent} on {task}: {} to {} UTC ({class})</title></rect>",
                format_utc(span.start),
                format_utc(span.end),
                task = esc(&span.task),
                agent = esc(agent),
                w = (x2 - x1).max(2.0),
            );
        }
    }
    for call in &facts.calls {
        let Some(&lane) = lane_of.get(call.agent.as_str()) else {
            continue;
        };
        let y = 20.0 + lane as f64 * LANE_H;
        let class = if call.failed {
            "call failed"
        } else if call.retries > 0 {
            "call retried"
        } else {
            "call"
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"2.5\" height=\"26\">\
             <title>LLM call for {}: {} · {} tokens · ${:.4} · {} retries{}</title></rect>",
            x(call.at) - 1.0,
            y - 3.0,
            esc(&call.task),
            millis(call.latency),
            call.tokens,
            call.usd,
            call.retries,
            if call.failed { " · failed" } else { "" }
        );
    }
    out.push_str("</svg></section>\n");
}

fn metrics(out: &mut String, state: &SessionState) {
    out.push_str(
        "<section id=\"metrics\"><h2>Agents</h2><table><thead><tr><th>agent</th><th>LLM calls</th>\
         <th>tokens in</th><th>cache read</th><th>tokens out</th><th>cost (USD)</th><th>cache saved (USD)</th><th>LLM time</th><th>retries</th>\
         <th>failed calls</th><th>tool calls</th><th>tasks done</th><th>tasks failed</th></tr></thead><tbody>",
    );
    for (agent, c) in &state.per_agent {
        metrics_row(out, &esc(agent), c);
    }
    metrics_row(out, "<b>total</b>", &state.totals);
    out.push_str("</tbody></table></section>\n");
}

fn metrics_row(out: &mut String, name: &str, c: &Counters) {
    let _ = write!(
        out,
        "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        c.llm_calls,
        c.tokens_in,
        c.cache_read_tokens,
        c.tokens_out,
        c.usd,
        c.usd_saved,
        millis(c.llm_ms),
        c.retries,
        c.failed_calls,
        c.tool_calls,
        c.tasks_done,
        c.tasks_failed
    );
}

fn transcripts(out: &mut String, state: &SessionState, facts: &Facts) {
    out.push_str("<section id=\"tasks\"><h2>Tasks and transcripts</h2>");
    for t in state.tasks_in_order() {
        let status = t.status.as_str();
        let _ = write!(
            out,
            "<details class=\"task\" id=\"task-{}\"><summary><span class=\"chip {status}\"></span>\
             <b>{}</b> · {} · {status}{} · {} turns</summary><div class=\"body\">\
             <p class=\"desc\">{}</p>",
            attr_id(&t.spec.id),
            esc(&t.spec.id),
            esc(&t.spec.role),
            t.agent
                .as_deref()
                .map(|a| format!(" · {}", esc(a)))
                .unwrap_or_default(),
            t.turns,
            esc(&t.spec.description)
        );
        if !t.spec.depends_on.is_empty() {
            let _ = write!(
                out,
                "<p>Depends on: {}</p>",
                esc(&t.spec.depends_on.join(", "))
            );
        }
        if let Some(by) = &t.created_by {
            let _ = write!(out, "<p>Created by: {}</p>", esc(by));
        }
        match facts.transcript.get(&t.spec.id) {
            None => out.push_str("<p>Not started.</p>"),
            Some(entries) => {
                for entry in entries {
                    entry_html(out, entry);
                }
            }
        }
        out.push_str("</div></details>");
    }
    out.push_str("</section>\n");
}

fn entry_html(out: &mut String, entry: &Entry) {
    match entry {
        Entry::System(text) => block(out, "system", "system prompt", text),
        Entry::User(text) => block(out, "user", "task brief", text),
        Entry::Resumed => {
            out.push_str("<p class=\"note\">Resumed: the agent continues this transcript.</p>")
        }
        Entry::Turn {
            n,
            text,
            calls,
            meta,
        } => {
            let _ = write!(
                out,
                "<div class=\"turn\"><div class=\"meta\">turn {n} · {}</div>",
                esc(meta)
            );
            if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                block(out, "assistant", "assistant", text);
            }
            for (name, id, args) in calls {
                block(out, "call", &format!("tool call {name} [{id}]"), args);
            }
            out.push_str("</div>");
        }
        Entry::Tool {
            name,
            id,
            content,
            is_error,
            meta,
        } => block(
            out,
            if *is_error { "tool error" } else { "tool" },
            &format!(
                "{} {name} [{id}] · {meta}",
                if *is_error {
                    "tool error"
                } else {
                    "tool result"
                }
            ),
            content,
        ),
        Entry::LlmFailed(text) => block(out, "error", "LLM call failed", text),
        Entry::Done(text) => block(out, "done", "result", text),
        Entry::Failed(text) => block(out, "error", "task failed", text),
        Entry::Retried => out
            .push_str("<p class=\"note\">Retried: back in the queue with a fresh transcript.</p>"),
    }
}

/// A labelled text; a long one shows its start with the rest folded.
fn block(out: &mut String, class: &str, label: &str, text: &str) {
    let _ = write!(
        out,
        "<div class=\"msg {class}\"><div class=\"label\">{}</div>",
        esc(label)
    );
    match text.char_indices().nth(PREVIEW_CHARS) {
        None => {
            let _ = write!(out, "<pre>{}</pre>", esc(text));
        }
        Some((cut, _)) => {
            let _ = write!(
                out,
                "<pre>{}…</pre><details class=\"more\"><summary>show all ({} chars)</summary><pre>{}</pre></details>",
                esc(&text[..cut]),
                text.chars().count(),
                esc(text)
            );
        }
    }
    out.push_str("</div>");
}

fn pretty_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A task id as an element id: letters, digits, `-` and `_` kept, anything else as `_XX`.
fn attr_id(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "_{b:02x}");
            }
        }
    }
    out
}

fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 7_200_000 {
        format!("{:.1} min", ms as f64 / 60_000.0)
    } else {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    }
}

/// Records any script error in the page itself, so that a headless browser's DOM shows it.
const ERROR_TRAP: &str = "window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message));var b=document.body;if(b){b.setAttribute('data-errors',window.__errors.join(' | '));}});";

/// Clicking a graph node or a timeline bar opens that task's transcript; then a self-check
/// records what the page holds (graph nodes against tasks) for tests and curious readers.
const SCRIPT: &str = r#"(function(){
  function open(id){
    var el=document.getElementById('task-'+id.replace(/[^A-Za-z0-9_-]/gu,function(c){
      return Array.from(new TextEncoder().encode(c)).map(function(b){return '_'+b.toString(16).padStart(2,'0');}).join('');
    }));
    if(el){el.open=true;el.scrollIntoView({behavior:'smooth',block:'start'});}
  }
  document.querySelectorAll('[data-task]').forEach(function(n){
    n.addEventListener('click',function(){open(n.getAttribute('data-task'));});
    n.addEventListener('keydown',function(e){if(e.key==='Enter'){open(n.getAttribute('data-task'));}});
  });
  var check=document.getElementById('selfcheck');
  var nodes=document.querySelectorAll('svg.graph g.node').length;
  var expected=Number(check.getAttribute('data-expected-nodes'));
  var details=document.querySelectorAll('details.task').length;
  var ok=nodes===expected&&details===expected&&window.__errors.length===0;
  check.setAttribute('data-nodes',String(nodes));
  check.setAttribute('data-result',ok?'ok':'mismatch');
  check.textContent='self-check: '+nodes+' graph nodes, '+details+' transcripts, '+expected+' tasks: '+(ok?'ok':'MISMATCH');
})();"#;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1f2937;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{color:#6b7280}dd{margin:0}
.status.completed{color:#15803d}.status.failed{color:#b91c1c}.status.budget_stopped,.status.interrupted{color:#b45309}.status.running{color:#1d4ed8}
.budget{display:flex;align-items:center;gap:10px;margin:4px 0}.budget .res{width:80px;color:#6b7280}
.bar{display:inline-block;width:320px;height:14px;background:#f3f4f6;border-radius:7px;overflow:hidden}
.fill{display:block;height:100%}.fill.green{background:#22c55e}.fill.yellow{background:#eab308}.fill.red{background:#ef4444}
.legend{color:#6b7280;font-size:12px}.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 8px;vertical-align:middle}
.chip.pending{background:#9ca3af}.chip.running{background:#3b82f6}.chip.done{background:#22c55e}.chip.failed{background:#ef4444}
svg{display:block;max-width:100%;height:auto;overflow:visible}
.node rect{stroke:#374151;stroke-width:1}.node{cursor:pointer}.node text{font-size:12px;fill:#111827}.node text.role{font-size:10px;fill:#374151}
.node.pending rect{fill:#e5e7eb}.node.running rect{fill:#bfdbfe}.node.done rect{fill:#bbf7d0}.node.failed rect{fill:#fecaca}
.edge{fill:none;stroke:#555;stroke-width:1.3}.edge.created{stroke-dasharray:5 4;stroke:#7c3aed}
.grid{stroke:#e5e7eb}.axis{font-size:10px;fill:#6b7280;text-anchor:middle}.lane{font-size:12px;fill:#111827}
.resume{stroke:#7c3aed;stroke-dasharray:4 3;stroke-width:1.5}
.span{cursor:pointer}.span.done{fill:#86efac}.span.failed{fill:#fca5a5}.span.open{fill:#93c5fd}.span.stopped{fill:#d1d5db}
.call{fill:#111827}.call.retried{fill:#f97316}.call.failed{fill:#dc2626}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
details.task{border:1px solid #e5e7eb;border-radius:6px;margin:6px 0;padding:4px 10px}details.task>summary{cursor:pointer}
.body{margin:6px 0 6px 8px}.desc{white-space:pre-wrap}
.msg{margin:6px 0;border-left:3px solid #d1d5db;padding-left:8px}.msg .label{font-size:11px;color:#6b7280;text-transform:uppercase}
.msg.assistant{border-color:#3b82f6}.msg.call{border-color:#7c3aed}.msg.tool{border-color:#22c55e}.msg.error{border-color:#ef4444}.msg.done{border-color:#15803d}
pre{white-space:pre-wrap;word-break:break-word;margin:2px 0;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#f9fafb;padding:4px 6px;border-radius:4px}
.turn .meta{font-size:11px;color:#6b7280;margin-top:8px}.note{color:#6b7280;font-style:italic}
#selfcheck{margin-top:30px;color:#9ca3af;font-size:11px}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<img src=x onerror=\"a('b')\">&"),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(attr_id("a b/é"), "a_20b_2f_c3_a9");
    }

    fn spec(id: &str, deps: &[&str]) -> crate::spec::TaskSpec {
        crate::spec::TaskSpec {
            id: id.into(),
            role: "dev".into(),
            description: format!("do {id}"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn failures_retries_and_created_tasks_are_drawn() {
        use crate::llm::{FinishReason, Usage};
        let turn = |task: &str, at_ms, retries| Event::TurnCompleted {
            blocks: Vec::new(),
            task: task.into(),
            agent: "lead-1".into(),
            turn: 0,
            text: Some("<b>hi</b>".into()),
            tool_calls: Vec::new(),
            finish: FinishReason::Stop,
            usage: Usage::new(10, 5),
            usd: 0.0,
            usd_saved: 0.0,
            latency_ms: 5,
            retries,
            at_ms,
        };
        let events = [
            Event::SessionStarted {
                session: "s".into(),
                swarm: "w".into(),
                goal: None,
                provider: "p".into(),
                model: "m".into(),
                base_url: String::new(),
                at_ms: 1_000,
            },
            Event::TaskCreated {
                task: spec("plan", &[]),
                created_by: None,
                at_ms: 1_000,
            },
            Event::TaskStarted {
                task: "plan".into(),
                agent: "lead-1".into(),
                prompt: "plan it".into(),
                system: Some("you lead".into()),
                at_ms: 1_100,
            },
            turn("plan", 1_200, 2),
            Event::TaskCreated {
                task: spec("api", &[]),
                created_by: Some("lead-1".into()),
                at_ms: 1_300,
            },
            Event::TaskCreated {
                task: spec("tests", &["api"]),
                created_by: Some("lead-1".into()),
                at_ms: 1_300,
            },
            Event::TaskCompleted {
                task: "plan".into(),
                agent: "lead-1".into(),
                result: "planned".into(),
                at_ms: 1_400,
            },
            Event::TaskStarted {
                task: "api".into(),
                agent: "lead-1".into(),
                prompt: "build".into(),
                system: None,
                at_ms: 1_500,
            },
            Event::LlmCallFailed {
                task: "api".into(),
                agent: "lead-1".into(),
                error: "503 <overloaded>".into(),
                retries: 3,
                latency_ms: 40,
                at_ms: 1_600,
            },
            Event::TaskFailed {
                task: "api".into(),
                agent: Some("lead-1".into()),
                error: "the LLM call failed".into(),
                at_ms: 1_600,
            },
        ];
        let events: Vec<Envelope> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| Envelope {
                seq: i as u64 + 1,
                event: std::sync::Arc::new(e),
            })
            .collect();
        let mut state = SessionState::default();
        for e in &events {
            state.apply(&e.event);
        }
        let plan: SwarmPlan = serde_json::from_value(serde_json::json!({
            "name": "w", "description": "d", "topology": "mesh", "max_agents": 1,
            "coordinator": null, "agents": [], "roles": {}, "tasks": [],
            "memory": {"namespace": "w", "ttl": null}, "checkpoint": {"interval": 1000},
            "budget": {"tokens": 100, "llm_calls": null, "time": null, "usd": null,
                       "warn_at": 0.1, "stop_at": 0.9},
            "llm": serde_json::to_value(crate::spec::LlmSettings::default()).unwrap(),
            "workspace": "ws", "allow_commands": false,
            "hooks": serde_json::to_value(crate::spec::HookSettings::default()).unwrap(),
            "source_path": "swarm.yaml", "source_hash": "h"
        }))
        .expect("a plan");
        let page = render(&plan, &state, &events);
        assert_eq!(page.matches("<g class=\"node ").count(), 3);
        assert!(page.contains("<g class=\"node failed\" data-task=\"api\""));
        assert!(page.contains("<g class=\"node pending\" data-task=\"tests\""));
        assert!(page.contains("class=\"edge created\" data-from=\"plan\" data-to=\"api\""));
        assert!(page.contains("class=\"edge dep\" data-from=\"api\" data-to=\"tests\""));
        assert_eq!(page.matches("class=\"call retried\"").count(), 1);
        assert_eq!(page.matches("class=\"call failed\"").count(), 1);
        assert!(page.contains("class=\"span failed\""));
        assert!(page.contains("class=\"span done\""));
        assert!(
            page.contains("class=\"fill yellow\""),
            "15 of 100 tokens, warn at 10%"
        );
        assert!(page.contains("503 &lt;overloaded&gt;") && !page.contains("<b>hi</b>"));
    }

    #[test]
    fn pauses_between_runs_are_not_on_the_timeline() {
        let f = Facts {
            runs: vec![(1_000, 2_000), (100_000, 100_500)],
            ..Facts::default()
        };
        assert_eq!(f.active_total(), 1_500);
        assert_eq!(f.active_before(1_500), 500);
        assert_eq!(f.active_before(50_000), 1_000);
        assert_eq!(f.active_before(100_250), 1_250);
    }
}
