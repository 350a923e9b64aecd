//! Claude Code's model aliases in role files (`model: sonnet`, `opus`, `haiku`, `inherit`).
//!
//! An alias is never sent to an API as a model name: `inherit` (and Claude Code's `default`) is
//! the swarm's model; the others become the current model ids of [`ANTHROPIC_MODEL_ALIASES`] on
//! the anthropic provider, or what the swarm file's `llm.model_aliases` says on any provider.
//! On another provider without such an entry the role uses the swarm's model, and the caller is
//! told so it can warn once per role.

use crate::spec::ProviderKind;
use std::collections::BTreeMap;

/// The one table of what Claude Code's aliases mean on the Anthropic API. Update it here when
/// Anthropic ships new models; `llm.model_aliases` overrides it per swarm.
pub const ANTHROPIC_MODEL_ALIASES: &[(&str, &str)] = &[
    ("sonnet", "claude-sonnet-4-5"),
    ("opus", "claude-opus-4-5"),
    ("haiku", "claude-haiku-4-5"),
    ("opusplan", "claude-opus-4-5"),
    ("sonnet[1m]", "claude-sonnet-4-5"),
];

/// Aliases that mean "the model of whoever runs the agent".
const INHERIT: &[&str] = &["inherit", "default"];

/// What a role's `model:` becomes on one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelAlias {
    /// The swarm's model (no `model:`, or `inherit`).
    Swarm,
    /// This model id.
    Named(String),
    /// A Claude alias on a provider that has no such model: the swarm's model is used instead.
    AliasFallback { alias: String },
}

/// Whether `name` is one of Claude Code's model aliases.
pub fn is_model_alias(name: &str) -> bool {
    INHERIT.contains(&name) || ANTHROPIC_MODEL_ALIASES.iter().any(|(a, _)| *a == name)
}

/// Resolves a role's `model:` for `provider`, with the swarm file's `llm.model_aliases`.
pub fn resolve_model(
    requested: Option<&str>,
    provider: ProviderKind,
    overrides: &BTreeMap<String, String>,
) -> ModelAlias {
    let Some(name) = requested.map(str::trim).filter(|n| !n.is_empty()) else {
        return ModelAlias::Swarm;
    };
    if let Some(id) = overrides.get(name) {
        return ModelAlias::Named(id.clone());
    }
    if INHERIT.contains(&name) {
        return ModelAlias::Swarm;
    }
    match ANTHROPIC_MODEL_ALIASES.iter().find(|(a, _)| *a == name) {
        Some((_, id)) if provider == ProviderKind::Anthropic => ModelAlias::Named((*id).into()),
        Some(_) => ModelAlias::AliasFallback { alias: name.into() },
        None => ModelAlias::Named(name.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_by_provider() {
        let none = BTreeMap::new();
        let a = ProviderKind::Anthropic;
        let o = ProviderKind::Openai;
        assert_eq!(resolve_model(None, a, &none), ModelAlias::Swarm);
        assert_eq!(resolve_model(Some("inherit"), o, &none), ModelAlias::Swarm);
        assert_eq!(
            resolve_model(Some("sonnet"), a, &none),
            ModelAlias::Named("claude-sonnet-4-5".into())
        );
        assert_eq!(
            resolve_model(Some("opus"), o, &none),
            ModelAlias::AliasFallback {
                alias: "opus".into()
            }
        );
        assert_eq!(
            resolve_model(Some("gpt-4o"), o, &none),
            ModelAlias::Named("gpt-4o".into())
        );
        let ours = BTreeMap::from([("haiku".to_string(), "llama3.2".to_string())]);
        assert_eq!(
            resolve_model(Some("haiku"), o, &ours),
            ModelAlias::Named("llama3.2".into())
        );
    }
}
