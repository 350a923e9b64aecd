//! The one step from a validated plan and a run's options to the plan the runtime trusts.
//!
//! `swarm run`, `swarm resume` and `swarm plan` all go through [`resolve`]: command-line
//! overrides are applied here and nowhere else, the provider is chosen (flag > swarm file >
//! environment > default, see [`crate::llm::resolve`]), the workspace is made absolute, and the
//! choices are written back into the plan, so that what the runtime runs is exactly what the
//! plan says. A resumed session starts from the plan it was stored with and the provider, model
//! and endpoint of its last run, so a resume without flags calls what the last run called.

use crate::llm::{self, LlmError, Overrides, ProviderConfig};
use crate::session::RunRecord;
use crate::spec::{ProviderKind, Role, SwarmPlan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a user may override on the command line, for a new run and a resume alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub max_agents: Option<u32>,
    pub workspace: Option<PathBuf>,
    // Further options that change the plan (e.g. MCP server configuration files) are applied in
    // `resolve` beside these, so every entry point gets them the same way.
}

/// Where a run starts: a fresh plan from a file, or a stored session taken up again.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    New,
    /// The last run of the session, if any was recorded.
    Resume(Option<&'a RunRecord>),
}

/// The world outside the plan that resolution reads.
pub struct ResolveEnv<'a> {
    /// Relative workspace paths are relative to this folder.
    pub cwd: &'a Path,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A plan ready to run, with the provider it calls and why that one.
#[derive(Debug, Clone)]
pub struct ResolvedRun {
    pub plan: SwarmPlan,
    pub provider: ProviderConfig,
    /// One line: provider, model, endpoint and where each came from.
    pub reason: String,
    /// Things the user should know before paying, e.g. a `usd` budget no price can count.
    pub warnings: Vec<String>,
}

/// Why the options cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("--max-agents must be at least 1")]
    MaxAgents,
    #[error(transparent)]
    Provider(#[from] LlmError),
}

/// Applies `overrides` to `plan` and chooses the provider.
pub fn resolve(
    mut plan: SwarmPlan,
    start: Start<'_>,
    overrides: &RunOverrides,
    env: &ResolveEnv<'_>,
) -> Result<ResolvedRun, ResolveError> {
    if let Some(max_agents) = overrides.max_agents {
        if max_agents == 0 {
            return Err(ResolveError::MaxAgents);
        }
        plan.max_agents = max_agents;
    }
    if let Some(workspace) = &overrides.workspace {
        plan.workspace = workspace.clone();
        plan.workspace_per_session = false;
    }
    // A resume may start from another folder: the workspace is kept as an absolute path.
    plan.workspace = env
        .cwd
        .join(&plan.workspace)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();

    if let Start::Resume(Some(last)) = start {
        // Start from what the last run called; a flag still wins.
        if let Ok(kind) = last.provider.parse::<ProviderKind>() {
            if plan.llm.provider != Some(kind) {
                plan.llm.provider = Some(kind);
                plan.llm.model = None;
                plan.llm.base_url = None;
            }
            if kind != ProviderKind::Simulated {
                plan.llm.model = Some(last.model.clone()).filter(|m| !m.is_empty());
                plan.llm.base_url = Some(last.base_url.clone()).filter(|u| !u.is_empty());
            }
        }
    }
    let llm_overrides = Overrides {
        provider: overrides.provider,
        model: overrides.model.clone(),
        base_url: overrides.base_url.clone(),
    };
    let resolved = llm::resolve(&plan.llm, &llm_overrides, env.env)?;
    // The session keeps the provider it runs with, so a later resume calls the same one.
    plan.llm.provider = Some(resolved.config.kind);
    plan.llm.model = Some(resolved.config.model.clone());
    plan.llm.base_url = Some(resolved.config.base_url.clone()).filter(|u| !u.is_empty());
    let warnings = price_warnings(&plan, &resolved.config);
    Ok(ResolvedRun {
        plan,
        provider: resolved.config,
        reason: resolved.reason,
        warnings,
    })
}

/// A `usd` budget counts only what has a price: say which models have none.
fn price_warnings(plan: &SwarmPlan, provider: &ProviderConfig) -> Vec<String> {
    if plan.budget.usd.is_none() || provider.kind == ProviderKind::Simulated {
        return Vec::new();
    }
    let mut unpriced: Vec<String> = plan
        .roles
        .values()
        .map(|role| role_model(role, provider, &plan.llm.model_aliases).model)
        .filter(|model| {
            llm::price_table::prices_for(plan.llm.prices, provider.kind, model)
                .prices()
                .is_none()
        })
        .collect();
    unpriced.sort();
    unpriced.dedup();
    if unpriced.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "warning: the usd budget cannot count calls to {}: no price is known for {} (add `llm.prices: {{ input_per_mtok: …, output_per_mtok: … }}` to the swarm file)",
        unpriced.join(", "),
        if unpriced.len() == 1 { "it" } else { "them" }
    )]
}

/// The model an agent of `role` calls, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub model: String,
    pub why: &'static str,
}

/// The model agents of `role` call with `provider`: the role's own `model:` if it names one,
/// else the run's model. Aliases a role file may use are mapped here, so the plan, the run and
/// the dry run agree.
pub fn role_model(
    role: &Role,
    provider: &ProviderConfig,
    aliases: &BTreeMap<String, String>,
) -> ModelChoice {
    match llm::resolve_model(role.model.as_deref(), provider.kind, aliases) {
        llm::ModelAlias::Named(model) => ModelChoice {
            why: if role.model.as_deref() == Some(model.as_str()) {
                "role file"
            } else {
                "role file, alias"
            },
            model,
        },
        llm::ModelAlias::Swarm => ModelChoice {
            model: provider.model.clone(),
            why: "run",
        },
        llm::ModelAlias::AliasFallback { .. } => ModelChoice {
            model: provider.model.clone(),
            why: ALIAS_FALLBACK,
        },
    }
}

/// Why a role whose Claude alias this provider lacks calls the run's model.
pub const ALIAS_FALLBACK: &str =
    "run (the role's Claude model alias has no model on this provider)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionStatus;

    fn plan() -> SwarmPlan {
        let text = "name: t\ntopology: mesh\nagents: [backend-dev]\ntasks:\n  - id: a\n    role: backend-dev\n    description: do\nllm:\n  provider: openai\n  model: file-model\n  base_url: http://127.0.0.1:9/v1\n";
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("swarm.yaml");
        std::fs::write(&path, text).expect("write");
        crate::spec::load_swarm(&path, &Default::default())
            .expect("valid")
            .value
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env() -> ResolveEnv<'static> {
        ResolveEnv {
            cwd: Path::new("/work/here"),
            env: &no_env,
        }
    }

    #[test]
    fn overrides_are_written_into_the_plan() {
        let overrides = RunOverrides {
            model: Some("flag-model".into()),
            max_agents: Some(7),
            ..Default::default()
        };
        let run = resolve(plan(), Start::New, &overrides, &env()).expect("resolves");
        assert_eq!(run.plan.max_agents, 7);
        assert_eq!(run.plan.llm.model.as_deref(), Some("flag-model"));
        assert_eq!(run.provider.model, "flag-model");
        assert_eq!(run.plan.workspace, Path::new("/work/here/workspace"));
        assert!(run.plan.workspace_per_session);
        let zero = RunOverrides {
            max_agents: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            resolve(plan(), Start::New, &zero, &env()),
            Err(ResolveError::MaxAgents)
        ));
    }

    #[test]
    fn a_resume_starts_from_the_last_run_and_flags_still_win() {
        let last = RunRecord {
            started_at_ms: 1,
            provider: "openai".into(),
            model: "last-model".into(),
            base_url: "http://127.0.0.1:10/v1".into(),
            ended_at_ms: Some(2),
            status: Some(SessionStatus::Interrupted),
        };
        let run = resolve(
            plan(),
            Start::Resume(Some(&last)),
            &RunOverrides::default(),
            &env(),
        )
        .expect("resolves");
        assert_eq!(run.provider.model, "last-model");
        assert_eq!(run.provider.base_url, "http://127.0.0.1:10/v1");
        let switch = RunOverrides {
            provider: Some(ProviderKind::Simulated),
            ..Default::default()
        };
        let run = resolve(plan(), Start::Resume(Some(&last)), &switch, &env()).expect("resolves");
        assert_eq!(run.provider.kind, ProviderKind::Simulated);
        assert_eq!(run.plan.llm.base_url, None);
    }
}
