//! The `memory_*` agent tools: schemas, results, argument errors, access denial and caps.

use serde_json::{json, Value};
use std::time::Duration;
use swarm_runtime::clock::{ManualClock, SharedClock};
use swarm_runtime::llm::ToolOutput;
use swarm_runtime::memory::{AccessPolicy, MemoryLimits, MemoryStore, Ttl};
use swarm_runtime::spec::{MemoryAccessSpec, ToolName};
use swarm_runtime::tools::memory::{self as tools, ToolContext, LIST_LIMIT, SEARCH_LIMIT};

struct Fixture {
    store: MemoryStore,
    clock: std::sync::Arc<ManualClock>,
    policy: AccessPolicy,
}

impl Fixture {
    fn new(spec: Option<MemoryAccessSpec>) -> Self {
        let clock = ManualClock::new(1_000);
        let shared: SharedClock = clock.clone();
        let store = MemoryStore::new(shared, MemoryLimits::default());
        let policy = AccessPolicy::for_role(spec.as_ref(), "dev", "tester").unwrap();
        Self {
            store,
            clock,
            policy,
        }
    }

    fn call(&self, tool: ToolName, args: Value) -> ToolOutput {
        let ctx = ToolContext {
            store: &self.store,
            policy: &self.policy,
            default_namespace: "dev",
        };
        tools::execute(&ctx, tool, &args)
    }

    /// The JSON of a successful call.
    fn ok(&self, tool: ToolName, args: Value) -> Value {
        let out = self.call(tool, args);
        assert!(!out.is_error, "{tool} failed: {}", out.content);
        serde_json::from_str(&out.content).expect("tool results are JSON")
    }

    /// The message of a failed call.
    fn err(&self, tool: ToolName, args: Value) -> String {
        let out = self.call(tool, args);
        assert!(out.is_error, "{tool} should fail, got {}", out.content);
        out.content
    }
}

#[test]
fn every_memory_tool_has_an_object_schema_and_others_have_none() {
    for tool in tools::TOOLS {
        let schema = tools::schema(tool).unwrap();
        assert_eq!(schema.name, tool.as_str());
        assert_eq!(schema.parameters["type"], "object");
        assert!(schema.parameters["properties"].is_object());
    }
    assert_eq!(tools::schema(ToolName::ReadFile), None);
    let store = tools::schema(ToolName::MemoryStore).unwrap();
    assert_eq!(store.parameters["required"], json!(["key", "value"]));
}

#[test]
fn store_then_retrieve_in_the_default_namespace() {
    let f = Fixture::new(None);
    let stored = f.ok(
        ToolName::MemoryStore,
        json!({"key": "api/decision", "value": {"db": "postgres"}}),
    );
    assert_eq!(
        stored,
        json!({"stored": "api/decision", "namespace": "dev", "version": 1})
    );
    let again = f.ok(
        ToolName::MemoryStore,
        json!({"key": "api/decision", "value": [1]}),
    );
    assert_eq!(again["version"], 2);
    let read = f.ok(ToolName::MemoryRetrieve, json!({"key": "api/decision"}));
    assert_eq!(read["found"], true);
    assert_eq!(read["value"], json!([1]));
    assert_eq!(
        f.store.get("dev", "api/decision").unwrap().value,
        json!([1])
    );
}

#[test]
fn a_missing_key_is_a_normal_result() {
    let f = Fixture::new(None);
    let out = f.call(ToolName::MemoryRetrieve, json!({"key": "nope"}));
    assert!(!out.is_error);
    assert_eq!(
        serde_json::from_str::<Value>(&out.content).unwrap(),
        json!({"found": false, "key": "nope", "namespace": "dev"})
    );
    assert_eq!(
        f.ok(ToolName::MemoryDelete, json!({"key": "nope"}))["deleted"],
        false
    );
}

#[test]
fn ttl_argument_and_namespace_default() {
    let f = Fixture::new(None);
    f.store
        .set_default_ttl("dev", Some(Duration::from_secs(60)));
    f.ok(
        ToolName::MemoryStore,
        json!({"key": "short", "value": 1, "ttl": "10s"}),
    );
    f.ok(ToolName::MemoryStore, json!({"key": "default", "value": 1}));
    f.ok(
        ToolName::MemoryStore,
        json!({"key": "forever", "value": 1, "ttl": "none"}),
    );
    assert_eq!(
        f.store.get("dev", "short").unwrap().expires_ms,
        Some(11_000)
    );
    assert_eq!(
        f.store.get("dev", "default").unwrap().expires_ms,
        Some(61_000)
    );
    assert_eq!(f.store.get("dev", "forever").unwrap().expires_ms, None);
    f.clock.advance(10_000);
    assert_eq!(
        f.ok(ToolName::MemoryRetrieve, json!({"key": "short"}))["found"],
        false
    );
    let err = f.err(
        ToolName::MemoryStore,
        json!({"key": "k", "value": 1, "ttl": "soon"}),
    );
    assert!(err.contains("ttl") && err.contains("30s"), "{err}");
}

#[test]
fn writes_outside_the_roles_namespaces_are_denied_with_a_clear_error() {
    let f = Fixture::new(None);
    let err = f.err(
        ToolName::MemoryStore,
        json!({"key": "k", "value": 1, "namespace": "agent/other"}),
    );
    assert!(err.starts_with("memory_store:"), "{err}");
    assert!(
        err.contains("may not write namespace `agent/other`"),
        "{err}"
    );
    assert!(
        err.contains("`agent/tester`"),
        "the allowed namespaces are listed: {err}"
    );
    assert_eq!(f.store.get("agent/other", "k"), None);

    f.store
        .put("agent/other", "k", json!(1), Ttl::Never)
        .unwrap();
    let err = f.err(
        ToolName::MemoryDelete,
        json!({"key": "k", "namespace": "agent/other"}),
    );
    assert!(err.contains("may not write"), "{err}");
    assert!(f.store.get("agent/other", "k").is_some());

    f.ok(
        ToolName::MemoryStore,
        json!({"key": "mine", "value": 1, "namespace": "agent/tester"}),
    );
}

#[test]
fn reads_outside_the_roles_namespaces_are_denied_or_filtered() {
    let spec = MemoryAccessSpec {
        read: vec!["dev".into()],
        write: vec!["dev".into()],
    };
    let f = Fixture::new(Some(spec));
    f.store
        .put("secret", "plan", json!("hidden"), Ttl::Never)
        .unwrap();
    f.store
        .put("dev", "plan", json!("shared"), Ttl::Never)
        .unwrap();
    let err = f.err(
        ToolName::MemoryRetrieve,
        json!({"key": "plan", "namespace": "secret"}),
    );
    assert!(err.contains("may not read namespace `secret`"), "{err}");
    let err = f.err(
        ToolName::MemorySearch,
        json!({"pattern": "*", "namespace": "secret"}),
    );
    assert!(err.contains("may not read"), "{err}");
    // Without a namespace, search and list cover only what the role can read.
    let found = f.ok(ToolName::MemorySearch, json!({"pattern": "plan"}));
    assert_eq!(
        found["matches"],
        json!([{"namespace": "dev", "key": "plan", "value": "shared"}])
    );
    let listed = f.ok(ToolName::MemoryList, json!({}));
    assert_eq!(listed["total"], 1);
}

#[test]
fn bad_arguments_explain_the_expected_shape() {
    let f = Fixture::new(None);
    let cases = [
        (ToolName::MemoryStore, json!({"value": 1}), "missing `key`"),
        (
            ToolName::MemoryStore,
            json!({"key": "k"}),
            "missing `value`",
        ),
        (
            ToolName::MemoryStore,
            json!({"key": 5, "value": 1}),
            "`key` must be a string, not a number",
        ),
        (
            ToolName::MemoryRetrieve,
            json!({"name": "k"}),
            "unknown argument `name`",
        ),
        (
            ToolName::MemoryRetrieve,
            json!("k"),
            "must be a JSON object",
        ),
        (
            ToolName::MemorySearch,
            json!({"_raw": "{pattern: *"}),
            "not valid JSON",
        ),
        (
            ToolName::MemorySearch,
            json!({"pattern": "a/[b"}),
            "invalid glob `a/[b`",
        ),
        (
            ToolName::MemoryList,
            json!({"prefix": ["a"]}),
            "`prefix` must be a string",
        ),
        (
            ToolName::MemoryStore,
            json!({"key": "/abs", "value": 1}),
            "starts with `/`",
        ),
        (
            ToolName::MemoryRetrieve,
            json!({"key": "a//b"}),
            "empty segment",
        ),
    ];
    for (tool, args, expected) in cases {
        let err = f.err(tool, args);
        assert!(err.contains(expected), "{tool}: {err:?} lacks {expected:?}");
    }
    let err = f.err(ToolName::MemoryStore, json!({"value": 1}));
    assert!(err.contains(r#""key": string"#), "{err}");
    let err = f.err(ToolName::ReadFile, json!({}));
    assert!(err.contains("not a memory tool"), "{err}");
}

#[test]
fn a_value_over_the_limit_is_a_tool_error() {
    let clock: SharedClock = ManualClock::new(0);
    let store = MemoryStore::new(
        clock,
        MemoryLimits {
            max_key_bytes: 64,
            max_value_bytes: 16,
        },
    );
    let policy = AccessPolicy::for_role(None, "dev", "tester").unwrap();
    let ctx = ToolContext {
        store: &store,
        policy: &policy,
        default_namespace: "dev",
    };
    let out = tools::execute(
        &ctx,
        ToolName::MemoryStore,
        &json!({"key": "k", "value": "x".repeat(100)}),
    );
    assert!(out.is_error);
    assert!(
        out.content.contains("larger than the limit of 16 bytes"),
        "{}",
        out.content
    );
}

#[test]
fn search_and_list_are_capped_and_say_how_many_were_left_out() {
    let f = Fixture::new(None);
    let entries = LIST_LIMIT + 20;
    for i in 0..entries {
        f.store
            .put("dev", &format!("notes/{i:04}"), json!(i), Ttl::Never)
            .unwrap();
    }
    let found = f.ok(ToolName::MemorySearch, json!({"pattern": "notes/*"}));
    assert_eq!(found["matches"].as_array().unwrap().len(), SEARCH_LIMIT);
    assert_eq!(found["total"], entries);
    assert_eq!(found["omitted"], entries - SEARCH_LIMIT);
    assert_eq!(found["matches"][0]["key"], "notes/0000");

    let listed = f.ok(ToolName::MemoryList, json!({"prefix": "notes/"}));
    assert_eq!(listed["keys"].as_array().unwrap().len(), LIST_LIMIT);
    assert_eq!(listed["omitted"], 20);
    assert_eq!(
        listed["keys"][0],
        json!({"namespace": "dev", "key": "notes/0000", "version": 1})
    );
}

#[test]
fn search_replaces_values_past_the_budget_by_their_size() {
    let f = Fixture::new(None);
    let big = "x".repeat(6 * 1024);
    for i in 0..5 {
        f.store
            .put("dev", &format!("big/{i}"), json!(big), Ttl::Never)
            .unwrap();
    }
    let out = f.call(ToolName::MemorySearch, json!({"pattern": "big/*"}));
    assert!(!out.is_error);
    assert!(out.content.len() < 20 * 1024, "{} bytes", out.content.len());
    let found: Value = serde_json::from_str(&out.content).unwrap();
    let matches = found["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 5, "every match is listed");
    assert_eq!(found["omitted"], 0);
    let with_value = matches.iter().filter(|m| m.get("value").is_some()).count();
    assert!(
        (1..5).contains(&with_value),
        "{with_value} of 5 with a value"
    );
    let without = matches.iter().find(|m| m.get("value").is_none()).unwrap();
    assert_eq!(
        without["value_bytes"],
        big.len() + 2,
        "the size of the JSON string"
    );
}
