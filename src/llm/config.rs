//! Which provider, model and endpoint a swarm talks to, resolved once from the command line, the
//! swarm file and the environment (in that order of precedence), with the reason spelled out so
//! the user can see why a run went where it went.

use super::{ApiKey, LlmError};
use crate::spec::{LlmSettings, ProviderKind};
use std::fmt;
use std::time::Duration;
use url::{Host, Url};

/// Default OpenAI-compatible endpoint.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Default Anthropic endpoint. The base URL does not include `/v1`: the client appends
/// `/v1/messages`, as Anthropic's own SDKs do with `ANTHROPIC_BASE_URL`. A base URL that already
/// ends in `/v1` is accepted too.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Values given on the command line; each wins over the swarm file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
}

/// Everything a client needs to call one model of one provider.
///
/// `Debug` is safe to print: [`ApiKey`] redacts itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Used when a request does not name a model of its own.
    pub model: String,
    /// Without a trailing `/`. Empty for the simulated provider, which needs no network.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    /// Ask for server-sent events instead of one JSON body.
    pub stream: bool,
    /// Deadline of one attempt, including the whole streamed body.
    pub timeout: Duration,
    /// Attempts after the first for retryable faults.
    pub max_retries: u32,
    /// Ceiling of the first backoff; doubles per attempt up to `retry_max_delay` (full jitter).
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// Requests in flight at once; `None`: no limit here.
    pub max_concurrency: Option<u32>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    /// Used when a request does not set `max_tokens`.
    pub max_tokens: u32,
    /// Mark requests for the provider's prompt cache (`llm.prompt_cache`).
    pub prompt_cache: bool,
    /// The OpenAI protocol's name for the output limit; `None`: chosen by endpoint.
    pub max_tokens_field: Option<crate::spec::MaxTokensField>,
    /// Anthropic extended thinking's token budget; `None`: off (`llm.thinking`).
    pub thinking: Option<u32>,
}

impl ProviderConfig {
    /// A configuration for `kind` at `base_url` with the default limits and retry policy and no
    /// key; set the public fields to adjust it.
    pub fn new(kind: ProviderKind, model: impl Into<String>, base_url: impl Into<String>) -> Self {
        let defaults = LlmSettings::default();
        Self {
            kind,
            model: model.into(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: None,
            stream: defaults.stream,
            timeout: defaults.timeout,
            max_retries: defaults.max_retries,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            retry_max_delay: DEFAULT_RETRY_MAX_DELAY,
            max_concurrency: defaults.max_concurrency,
            requests_per_minute: defaults.requests_per_minute,
            tokens_per_minute: defaults.tokens_per_minute,
            max_tokens: defaults.max_tokens,
            prompt_cache: defaults.prompt_cache,
            max_tokens_field: defaults.max_tokens_field,
            thinking: defaults.thinking,
        }
    }
}

/// First backoff ceiling when the swarm file does not say.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest backoff between two attempts (a server's `Retry-After` may ask for more).
pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(30);

/// A resolved configuration and the one line that tells the user which provider, model and base
/// URL were chosen and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub config: ProviderConfig,
    pub reason: String,
}

/// The process environment, for [`resolve`].
pub fn process_env(name: &str) -> Option<String> {
    crate::secrets::var(name)
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    CommandLine,
    SwarmFile,
    Env(&'static str),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine => f.write_str("command line"),
            Source::SwarmFile => f.write_str("swarm file"),
            Source::Env(name) => f.write_str(name),
            Source::Default => f.write_str("default"),
        }
    }
}

struct ProviderEnv {
    key_var: &'static str,
    base_url_var: &'static str,
    default_base_url: &'static str,
    default_model: &'static str,
}

fn provider_env(kind: ProviderKind) -> Option<ProviderEnv> {
    match kind {
        ProviderKind::Openai => Some(ProviderEnv {
            key_var: "OPENAI_API_KEY",
            base_url_var: "OPENAI_BASE_URL",
            default_base_url: OPENAI_DEFAULT_BASE_URL,
            default_model: "gpt-4o-mini",
        }),
        ProviderKind::Anthropic => Some(ProviderEnv {
            key_var: "ANTHROPIC_API_KEY",
            base_url_var: "ANTHROPIC_BASE_URL",
            default_base_url: ANTHROPIC_DEFAULT_BASE_URL,
            default_model: "claude-sonnet-4-5",
        }),
        ProviderKind::Simulated => None,
    }
}

/// The model name the simulated provider reports.
pub const SIMULATED_MODEL: &str = "simulated";

/// Resolves the provider configuration: command-line flag > swarm file > environment > default.
///
/// With no provider named anywhere: `openai` if `OPENAI_API_KEY` is set, else `anthropic` if
/// `ANTHROPIC_API_KEY` is set, else `simulated`. The swarm file's `model` and `base_url` apply only
/// when the file names no provider or the same one that was chosen, so `--provider anthropic` on a
/// file written for OpenAI does not send an OpenAI model name to Anthropic. Keys come from the
/// environment only, and are optional when the base URL is a local address.
pub fn resolve(
    settings: &LlmSettings,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, LlmError> {
    let env_value = |name: &str| env(name).filter(|v| !v.trim().is_empty());

    let (kind, kind_reason) = if let Some(kind) = overrides.provider {
        (kind, Source::CommandLine.to_string())
    } else if let Some(kind) = settings.provider {
        (kind, Source::SwarmFile.to_string())
    } else if env_value("OPENAI_API_KEY").is_some() {
        (
            ProviderKind::Openai,
            "no provider named and OPENAI_API_KEY is set".to_string(),
        )
    } else if env_value("ANTHROPIC_API_KEY").is_some() {
        (
            ProviderKind::Anthropic,
            "no provider named, OPENAI_API_KEY is not set and ANTHROPIC_API_KEY is".to_string(),
        )
    } else {
        (
            ProviderKind::Simulated,
            "no provider named and neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set".to_string(),
        )
    };

    let file_applies = settings.provider.is_none_or(|p| p == kind);
    let file_model = settings.model.as_ref().filter(|_| file_applies);
    let file_base_url = settings.base_url.as_ref().filter(|_| file_applies);

    let mut config = ProviderConfig::new(kind, "", "");
    config.stream = settings.stream;
    config.timeout = settings.timeout;
    config.max_retries = settings.max_retries;
    config.max_concurrency = settings.max_concurrency;
    config.requests_per_minute = settings.requests_per_minute;
    config.tokens_per_minute = settings.tokens_per_minute;
    config.max_tokens = settings.max_tokens;
    config.prompt_cache = settings.prompt_cache;
    config.max_tokens_field = settings.max_tokens_field;
    config.thinking = settings.thinking;

    let Some(penv) = provider_env(kind) else {
        config.model = SIMULATED_MODEL.to_string();
        let reason = format!("provider: simulated ({kind_reason}); offline, no network");
        return Ok(Resolved { config, reason });
    };

    let (model, model_source) = if let Some(m) = &overrides.model {
        (m.clone(), Source::CommandLine)
    } else if let Some(m) = file_model {
        (m.clone(), Source::SwarmFile)
    } else {
        (penv.default_model.to_string(), Source::Default)
    };

    let (base_url, url_source) = if let Some(u) = &overrides.base_url {
        (u.clone(), Source::CommandLine)
    } else if let Some(u) = file_base_url {
        (u.clone(), Source::SwarmFile)
    } else if let Some(u) = env_value(penv.base_url_var) {
        (u, Source::Env(penv.base_url_var))
    } else {
        (penv.default_base_url.to_string(), Source::Default)
    };
    let url = parse_base_url(&base_url, url_source)?;
    let local = is_local(&url);

    config.api_key = env_value(penv.key_var).map(ApiKey::new);
    if config.api_key.is_none() && !local {
        return Err(LlmError::Config(format!(
            "{} is not set: {kind} at {base_url} needs an API key \
             (a key is optional only for a local base URL such as http://localhost:11434/v1)",
            penv.key_var
        )));
    }
    config.model = model;
    config.base_url = base_url.trim_end_matches('/').to_string();

    let key_note = match &config.api_key {
        Some(_) => format!("key from {}", penv.key_var),
        None => "no key (local address)".to_string(),
    };
    let reason = format!(
        "provider: {kind} ({kind_reason}), model: {} ({model_source}), base URL: {} ({url_source}), {key_note}",
        config.model, config.base_url
    );
    Ok(Resolved { config, reason })
}

fn parse_base_url(text: &str, source: Source) -> Result<Url, LlmError> {
    let url = Url::parse(text)
        .map_err(|e| LlmError::Config(format!("invalid base URL `{text}` ({source}): {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(LlmError::Config(format!(
            "invalid base URL `{text}` ({source}): scheme `{other}` is not http or https"
        ))),
    }
}

/// Whether `url` points at this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn local_addresses_are_recognised() {
        assert!(is_local(&url("http://localhost:11434/v1")));
        assert!(is_local(&url("http://127.0.0.1:8080")));
        assert!(is_local(&url("http://127.42.0.9")));
        assert!(is_local(&url("http://[::1]:8000/v1")));
        assert!(!is_local(&url("https://api.openai.com/v1")));
        assert!(!is_local(&url("http://10.0.0.5:11434/v1")));
        assert!(!is_local(&url("http://localhost.example.com/v1")));
    }
}
