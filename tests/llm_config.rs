//! Provider resolution: command line > swarm file > environment > default, the choice of
//! provider when none is named, keys, and the one-line reason; plus the simulated provider
//! answering through the client with no network.

use std::collections::HashMap;
use swarm_runtime::llm::{
    resolve, ChatRequest, LlmClient, LlmError, Message, Overrides, Resolved,
    ANTHROPIC_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL,
};
use swarm_runtime::spec::{LlmSettings, ProviderKind};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn resolved(settings: &LlmSettings, overrides: &Overrides, vars: &[(&str, &str)]) -> Resolved {
    resolve(settings, overrides, &env(vars)).unwrap_or_else(|e| panic!("resolves: {e}"))
}

#[test]
fn with_nothing_named_and_no_keys_the_provider_is_simulated() {
    let r = resolved(&LlmSettings::default(), &Overrides::default(), &[]);
    assert_eq!(r.config.kind, ProviderKind::Simulated);
    assert_eq!(r.config.model, "simulated");
    assert_eq!(r.config.api_key, None);
    assert!(
        r.reason.starts_with(
            "provider: simulated (no provider named and neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set)"
        ),
        "{}",
        r.reason
    );
}

#[test]
fn with_nothing_named_a_key_in_the_environment_picks_the_provider() {
    let both = [("OPENAI_API_KEY", "sk-o"), ("ANTHROPIC_API_KEY", "sk-a")];
    let r = resolved(&LlmSettings::default(), &Overrides::default(), &both);
    assert_eq!(r.config.kind, ProviderKind::Openai);
    assert_eq!(r.config.model, "gpt-4o-mini");
    assert_eq!(r.config.base_url, OPENAI_DEFAULT_BASE_URL);
    assert_eq!(r.config.api_key.as_ref().map(|k| k.expose()), Some("sk-o"));
    assert!(r.reason.contains("OPENAI_API_KEY is set"), "{}", r.reason);

    let r = resolved(
        &LlmSettings::default(),
        &Overrides::default(),
        &[("ANTHROPIC_API_KEY", "sk-a"), ("OPENAI_API_KEY", "")],
    );
    assert_eq!(r.config.kind, ProviderKind::Anthropic);
    assert_eq!(r.config.model, "claude-sonnet-4-5");
    assert_eq!(r.config.base_url, ANTHROPIC_DEFAULT_BASE_URL);
    assert!(r.reason.contains("ANTHROPIC_API_KEY is"), "{}", r.reason);
    assert!(!r.reason.contains("sk-a"), "{}", r.reason);
}

#[test]
fn the_command_line_beats_the_swarm_file_which_beats_the_environment() {
    let file = LlmSettings {
        provider: Some(ProviderKind::Openai),
        model: Some("llama3.1".into()),
        base_url: Some("http://localhost:11434/v1".into()),
        ..LlmSettings::default()
    };
    let vars = [
        ("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1"),
        ("ANTHROPIC_API_KEY", "sk-a"),
    ];

    // The swarm file over the environment.
    let r = resolved(&file, &Overrides::default(), &vars);
    assert_eq!(r.config.kind, ProviderKind::Openai);
    assert_eq!(r.config.model, "llama3.1");
    assert_eq!(r.config.base_url, "http://localhost:11434/v1");
    assert_eq!(r.config.api_key, None, "a local base URL needs no key");
    assert_eq!(
        r.reason,
        "provider: openai (swarm file), model: llama3.1 (swarm file), \
         base URL: http://localhost:11434/v1 (swarm file), no key (local address)"
    );

    // The environment over the default.
    let no_url = LlmSettings {
        base_url: None,
        ..file.clone()
    };
    let r = resolved(&no_url, &Overrides::default(), &vars);
    assert_eq!(r.config.base_url, "http://127.0.0.1:9999/v1");
    assert!(r.reason.contains("(OPENAI_BASE_URL)"), "{}", r.reason);

    // The command line over the swarm file.
    let flags = Overrides {
        provider: None,
        model: Some("qwen2.5".into()),
        base_url: Some("http://[::1]:8000/v1/".into()),
    };
    let r = resolved(&file, &flags, &vars);
    assert_eq!(r.config.model, "qwen2.5");
    assert_eq!(r.config.base_url, "http://[::1]:8000/v1");
    assert!(
        r.reason.contains("model: qwen2.5 (command line)"),
        "{}",
        r.reason
    );

    // Another provider on the command line: the file's OpenAI model and URL do not follow it.
    let flags = Overrides {
        provider: Some(ProviderKind::Anthropic),
        ..Overrides::default()
    };
    let r = resolved(&file, &flags, &vars);
    assert_eq!(r.config.kind, ProviderKind::Anthropic);
    assert_eq!(r.config.model, "claude-sonnet-4-5");
    assert_eq!(r.config.base_url, ANTHROPIC_DEFAULT_BASE_URL);
    assert!(
        r.reason.starts_with("provider: anthropic (command line)"),
        "{}",
        r.reason
    );
}

#[test]
fn the_swarm_files_limits_reach_the_config() {
    let file = LlmSettings {
        provider: Some(ProviderKind::Simulated),
        stream: false,
        max_concurrency: Some(3),
        requests_per_minute: Some(60),
        tokens_per_minute: Some(9000),
        max_retries: 7,
        max_tokens: 1000,
        ..LlmSettings::default()
    };
    let c = resolved(&file, &Overrides::default(), &[]).config;
    assert_eq!(
        (
            c.stream,
            c.max_concurrency,
            c.requests_per_minute,
            c.tokens_per_minute,
            c.max_retries,
            c.max_tokens
        ),
        (false, Some(3), Some(60), Some(9000), 7, 1000)
    );
}

#[test]
fn a_missing_key_for_a_remote_base_url_is_a_clear_error() {
    let flags = Overrides {
        provider: Some(ProviderKind::Openai),
        ..Overrides::default()
    };
    let err = resolve(&LlmSettings::default(), &flags, &env(&[])).expect_err("no key");
    assert!(matches!(err, LlmError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("OPENAI_API_KEY is not set"), "{text}");
    assert!(text.contains("https://api.openai.com/v1"), "{text}");

    let flags = Overrides {
        provider: Some(ProviderKind::Anthropic),
        base_url: Some("https://llm.example.com".into()),
        ..Overrides::default()
    };
    let err = resolve(&LlmSettings::default(), &flags, &env(&[])).expect_err("no key");
    assert!(
        err.to_string().starts_with("ANTHROPIC_API_KEY is not set"),
        "{err}"
    );

    let flags = Overrides {
        provider: Some(ProviderKind::Openai),
        base_url: Some("localhost:11434".into()),
        ..Overrides::default()
    };
    let err = resolve(&LlmSettings::default(), &flags, &env(&[])).expect_err("bad URL");
    assert!(
        err.to_string()
            .contains("invalid base URL `localhost:11434` (command line)"),
        "{err}"
    );
}

#[tokio::test]
async fn the_simulated_provider_answers_through_the_client() {
    let config = resolved(&LlmSettings::default(), &Overrides::default(), &[]).config;
    // Only network providers are the llm module's; the simulated one is the runtime's.
    assert!(matches!(
        LlmClient::new(config.clone()),
        Err(LlmError::Config(_))
    ));
    let client = swarm_runtime::runtime::simulated::client(config);
    let request = ChatRequest {
        model: String::new(),
        system: "sys".into(),
        messages: vec![Message::User {
            content: "hi".into(),
        }],
        tools: Vec::new().into(),
        max_tokens: 0,
        cache_key: None,
    };
    let outcome = client.complete(&request).await.expect("offline answer");
    assert_eq!(outcome.retries, 0);
    let text = outcome.response.text.expect("text");
    assert!(text.contains("simulated"), "{text}");
}
