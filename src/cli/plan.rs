//! `swarm plan`: what a run would do, without calling any LLM: roles and where their files came
//! from, the model each calls, their tools, the task graph, budgets, the provider and endpoint
//! and why, and an estimate of the first wave's input tokens and cost.

use super::{exit, PlanArgs};
use anyhow::Context;
use serde_json::json;
use std::fmt::Write;
use swarm_runtime::llm::price_table::{self, PriceSource};
use swarm_runtime::runtime::prompt::system_prompt;
use swarm_runtime::runtime::resolve::role_model;
use swarm_runtime::runtime::roster::Roster;
use swarm_runtime::runtime::tools::schema_of;
use swarm_runtime::runtime::{topology, Start};
use swarm_runtime::session::Event;
use swarm_runtime::spec::{duration, SwarmPlan, TaskSpec, Topology};

/// Characters of the `## Context` block and the closing line of a task brief, besides its
/// description: measured on briefs of the built-in swarms.
const BRIEF_OVERHEAD_CHARS: usize = 700;

struct RoleRow {
    name: String,
    agents: u32,
    model: String,
    why: String,
    tools: Vec<String>,
    source: String,
}

struct WaveTask {
    id: String,
    role: String,
    input_tokens: u64,
    usd: Option<f64>,
}

pub fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let plan = match super::run::load_plan(&args.swarm, &args.options) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    super::run::warn_missing_goal(&plan, args.goal.as_deref());
    let resolved = super::run::resolve(plan, Start::New, &args.options.overrides(), &cwd)?;
    let plan = &resolved.plan;
    let provider = &resolved.provider;
    let roster = Roster::new(plan);

    let mut roles = Vec::new();
    for (name, role) in &plan.roles {
        let choice = role_model(role, provider, &plan.llm.model_aliases);
        let agents = roster.of_role(name).count() as u32;
        let is_coordinator = plan.coordinator.as_deref() == Some(name.as_str());
        let tools = role
            .tools
            .iter()
            .filter(|t| topology::holds_tool(plan, **t, is_coordinator))
            .map(|t| t.as_str().to_string())
            .collect();
        roles.push(RoleRow {
            name: name.clone(),
            agents,
            model: choice.model,
            why: choice.why.to_string(),
            tools,
            source: role.source.clone(),
        });
    }

    let tasks: Vec<(TaskSpec, Option<String>)> =
        topology::initial_tasks(plan, args.goal.as_deref(), 0)
            .into_iter()
            .filter_map(|e| match e {
                Event::TaskCreated {
                    task, created_by, ..
                } => Some((task, created_by)),
                _ => None,
            })
            .collect();
    let wave = first_wave(plan, &roster, provider, &tasks);

    if args.json {
        println!("{}", to_json(plan, &resolved.reason, &roles, &tasks, &wave));
    } else {
        print!(
            "{}",
            to_text(plan, provider, &resolved.reason, &roles, &tasks, &wave)
        );
    }
    Ok(exit::OK)
}

/// The tasks that start at once (no dependencies, at most `max_agents`), each with its
/// estimated input tokens (characters / 4 of the system prompt, the brief and the tool
/// schemas) and cost where a price is known.
fn first_wave(
    plan: &SwarmPlan,
    roster: &Roster,
    provider: &swarm_runtime::llm::ProviderConfig,
    tasks: &[(TaskSpec, Option<String>)],
) -> Vec<WaveTask> {
    tasks
        .iter()
        .filter(|(t, _)| t.depends_on.is_empty())
        .take(plan.max_agents as usize)
        .filter_map(|(task, _)| {
            let role = plan.roles.get(&task.role)?;
            let is_coordinator = plan.coordinator.as_deref() == Some(task.role.as_str());
            let schema_chars: usize = role
                .tools
                .iter()
                .filter(|t| topology::holds_tool(plan, **t, is_coordinator))
                .filter_map(|t| schema_of(roster, *t))
                .map(|s| s.name.len() + s.description.len() + s.parameters.to_string().len())
                .sum();
            let chars = system_prompt(&role.prompt).len()
                + task.description.len()
                + BRIEF_OVERHEAD_CHARS
                + schema_chars;
            let input_tokens = (chars / 4) as u64;
            let model = role_model(role, provider, &plan.llm.model_aliases).model;
            let usd = price_table::prices_for(plan.llm.prices, provider.kind, &model)
                .prices()
                .map(|p| input_tokens as f64 * p.input_per_mtok / 1_000_000.0);
            Some(WaveTask {
                id: task.id.clone(),
                role: task.role.clone(),
                input_tokens,
                usd,
            })
        })
        .collect()
}

fn price_note(plan: &SwarmPlan, provider: &swarm_runtime::llm::ProviderConfig) -> String {
    match price_table::prices_for(plan.llm.prices, provider.kind, &provider.model) {
        PriceSource::SwarmFile(p) => format!(
            "${}/${} per Mtok in/out (swarm file)",
            p.input_per_mtok, p.output_per_mtok
        ),
        PriceSource::ListPrice(p) => format!(
            "${}/${} per Mtok in/out (list price, {})",
            p.input_per_mtok,
            p.output_per_mtok,
            price_table::AS_OF
        ),
        PriceSource::Unknown => "unknown (set llm.prices to count cost)".to_string(),
    }
}

fn budget_line(plan: &SwarmPlan) -> String {
    let b = &plan.budget;
    let mut parts = Vec::new();
    if let Some(t) = b.tokens {
        parts.push(format!("tokens {t}"));
    }
    if let Some(c) = b.llm_calls {
        parts.push(format!("llm_calls {c}"));
    }
    if let Some(t) = b.time {
        parts.push(format!("time {}", duration::format(t)));
    }
    if let Some(u) = b.usd {
        parts.push(format!("usd {u:.2}"));
    }
    if parts.is_empty() {
        return "none".to_string();
    }
    format!(
        "{}; warn at {:.0}%, stop at {:.0}%",
        parts.join(", "),
        b.warn_at * 100.0,
        b.stop_at * 100.0
    )
}

fn to_text(
    plan: &SwarmPlan,
    provider: &swarm_runtime::llm::ProviderConfig,
    reason: &str,
    roles: &[RoleRow],
    tasks: &[(TaskSpec, Option<String>)],
    wave: &[WaveTask],
) -> String {
    let mut out = String::new();
    let topology = match plan.topology {
        Topology::Mesh => "mesh".to_string(),
        Topology::Hierarchical => format!(
            "hierarchical, coordinator {}",
            plan.coordinator.as_deref().unwrap_or("-")
        ),
    };
    let _ = writeln!(
        out,
        "swarm      {} ({})",
        plan.name,
        plan.source_path.display()
    );
    let _ = writeln!(
        out,
        "topology   {topology}, at most {} agents at once",
        plan.max_agents
    );
    let _ = writeln!(
        out,
        "provider   {}",
        reason.strip_prefix("provider: ").unwrap_or(reason)
    );
    let workspace = if plan.workspace_per_session {
        format!(
            "{}/<session id> (one per session)",
            plan.workspace.display()
        )
    } else {
        plan.workspace.display().to_string()
    };
    let _ = writeln!(out, "workspace  {workspace}");
    let _ = writeln!(out, "budget     {}", budget_line(plan));
    let _ = writeln!(
        out,
        "commands   {}",
        if plan.allow_commands {
            "allowed"
        } else {
            "not allowed"
        }
    );

    let w_name = roles.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let w_model = roles
        .iter()
        .map(|r| r.model.len() + r.why.len() + 3)
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(out, "\nroles");
    let _ = writeln!(
        out,
        "  {:<w_name$}  AGENTS  {:<w_model$}  FILE",
        "ROLE", "MODEL"
    );
    for r in roles {
        let model = format!("{} ({})", r.model, r.why);
        let _ = writeln!(
            out,
            "  {:<w_name$}  {:>6}  {:<w_model$}  {}",
            r.name, r.agents, model, r.source
        );
        let _ = writeln!(out, "  {:<w_name$}  tools: {}", "", r.tools.join(", "));
    }

    let _ = writeln!(out, "\ntasks");
    for (task, created_by) in tasks {
        let origin = if created_by.is_some() {
            " (added by the runtime)"
        } else {
            ""
        };
        let deps = if task.depends_on.is_empty() {
            String::new()
        } else {
            format!(" after {}", task.depends_on.join(", "))
        };
        let _ = writeln!(out, "  {} [{}]{deps}{origin}", task.id, task.role);
        let first = task.description.lines().next().unwrap_or("");
        let _ = writeln!(out, "      {}", shorten(first, 100));
    }
    if plan.topology == Topology::Hierarchical {
        let _ = writeln!(
            out,
            "  then: the tasks the coordinator creates, and a final synthesis after all of them"
        );
    }

    let tokens: u64 = wave.iter().map(|w| w.input_tokens).sum();
    let _ = writeln!(out, "\nfirst wave ({} task(s) start at once)", wave.len());
    for w in wave {
        let usd = w
            .usd
            .map_or("cost unknown".to_string(), |u| format!("≈ ${u:.4}"));
        let _ = writeln!(
            out,
            "  {} [{}]  ≈ {} input tokens, {usd}",
            w.id, w.role, w.input_tokens
        );
    }
    let total_usd: Option<f64> = wave.iter().map(|w| w.usd).sum();
    let usd = total_usd.map_or("cost unknown".to_string(), |u| format!("≈ ${u:.4}"));
    let _ = writeln!(
        out,
        "  total ≈ {tokens} input tokens for the first calls, {usd}"
    );
    let _ = writeln!(out, "prices     {}", price_note(plan, provider));
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

fn to_json(
    plan: &SwarmPlan,
    reason: &str,
    roles: &[RoleRow],
    tasks: &[(TaskSpec, Option<String>)],
    wave: &[WaveTask],
) -> serde_json::Value {
    json!({
        "swarm": plan.name,
        "source": plan.source_path,
        "topology": match plan.topology { Topology::Mesh => "mesh", Topology::Hierarchical => "hierarchical" },
        "coordinator": plan.coordinator,
        "max_agents": plan.max_agents,
        "provider": {
            "kind": plan.llm.provider.map(|p| p.as_str()),
            "model": plan.llm.model,
            "base_url": plan.llm.base_url,
            "why": reason,
        },
        "workspace": plan.workspace,
        "workspace_per_session": plan.workspace_per_session,
        "budget": plan.budget,
        "roles": roles.iter().map(|r| json!({
            "name": r.name,
            "agents": r.agents,
            "model": r.model,
            "model_from": r.why,
            "tools": r.tools,
            "source": r.source,
        })).collect::<Vec<_>>(),
        "tasks": tasks.iter().map(|(t, by)| json!({
            "id": t.id,
            "role": t.role,
            "description": t.description,
            "depends_on": t.depends_on,
            "added_by_runtime": by.is_some(),
        })).collect::<Vec<_>>(),
        "first_wave": wave.iter().map(|w| json!({
            "task": w.id,
            "role": w.role,
            "input_tokens": w.input_tokens,
            "usd": w.usd,
        })).collect::<Vec<_>>(),
        "first_wave_input_tokens": wave.iter().map(|w| w.input_tokens).sum::<u64>(),
        "first_wave_usd": wave.iter().map(|w| w.usd).sum::<Option<f64>>(),
    })
}
