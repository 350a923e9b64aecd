//! The memory tools agents call: their JSON schemas and their execution.
//!
//! Results are compact JSON. A missing key is a normal result (`{"found":false,...}`); bad
//! arguments, a denied namespace or a rejected write are tool errors the model can read and act
//! on, never a failure of the agent. Search and list results are capped so one call cannot flood
//! a prompt; the result says how many matches were left out, and values past a byte budget are
//! replaced by their size.

use super::{from_output, Tool, ToolFuture};
use crate::llm::{ToolOutput, ToolSchema};
use crate::memory::{clip, AccessPolicy, KeyPattern, MemoryRecord, MemoryStore, Scan, Ttl};
use crate::spec::{duration, ToolName};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Most records one `memory_search` returns.
pub const SEARCH_LIMIT: usize = 50;
/// Most keys one `memory_list` returns.
pub const LIST_LIMIT: usize = 200;
/// Most bytes of values one `memory_search` returns; past it, matches come without their value.
pub const SEARCH_VALUE_BUDGET: usize = 16 * 1024;

/// The memory tools, in the order they are offered.
pub const TOOLS: [ToolName; 5] = [
    ToolName::MemoryStore,
    ToolName::MemoryRetrieve,
    ToolName::MemorySearch,
    ToolName::MemoryList,
    ToolName::MemoryDelete,
];

/// What a memory tool call runs against: the store, the calling role's rules, and the namespace
/// used when the call names none (the swarm's).
#[derive(Debug, Clone, Copy)]
pub struct ToolContext<'a> {
    pub store: &'a MemoryStore,
    pub policy: &'a AccessPolicy,
    pub default_namespace: &'a str,
}

/// The schema offered to the model for a memory tool; `None` for other tools.
pub fn schema(tool: ToolName) -> Option<ToolSchema> {
    let namespace = json!({
        "type": "string",
        "description": "Namespace; defaults to the swarm's shared namespace."
    });
    let (description, properties, required): (&str, Value, &[&str]) = match tool {
        ToolName::MemoryStore => (
            "Store a JSON value under a key in shared memory, visible to the other agents. \
             Overwrites the key and returns its new version.",
            json!({
                "key": {"type": "string", "description": "`/`-separated path, e.g. `api/decisions`."},
                "value": {"description": "Any JSON value: string, number, boolean, object or array."},
                "namespace": namespace,
                "ttl": {"type": "string", "description": "Time to live such as `30s`, `10m`, `2h`, `1d`, or `none` for no expiry; defaults to the namespace's."}
            }),
            &["key", "value"],
        ),
        ToolName::MemoryRetrieve => (
            "Read the value stored under a key in shared memory.",
            json!({
                "key": {"type": "string", "description": "The exact key."},
                "namespace": namespace
            }),
            &["key"],
        ),
        ToolName::MemorySearch => (
            "Find entries whose key matches a glob: `*` matches within one `/` segment, `**` \
             across segments, e.g. `session/*/blockers` or `**/decisions`. Returns keys and values; \
             past a size budget a match has `value_bytes` instead of its value (read it with \
             memory_retrieve).",
            json!({
                "pattern": {"type": "string", "description": "Glob over keys."},
                "namespace": {"type": "string", "description": "Only this namespace; defaults to every namespace you can read."}
            }),
            &["pattern"],
        ),
        ToolName::MemoryList => (
            "List keys in shared memory, optionally only those starting with a prefix.",
            json!({
                "prefix": {"type": "string", "description": "Plain text the keys start with, e.g. `api/`."},
                "namespace": {"type": "string", "description": "Only this namespace; defaults to every namespace you can read."}
            }),
            &[],
        ),
        ToolName::MemoryDelete => (
            "Delete a key from shared memory.",
            json!({
                "key": {"type": "string", "description": "The exact key."},
                "namespace": namespace
            }),
            &["key"],
        ),
        _ => return None,
    };
    Some(ToolSchema {
        name: tool.as_str().to_owned(),
        description: description.to_owned(),
        parameters: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false
        }),
    })
}

/// Runs a memory tool call. Every failure is returned as [`ToolOutput::error`].
pub fn execute(ctx: &ToolContext<'_>, tool: ToolName, args: &Value) -> ToolOutput {
    let result = Args::parse(tool, args).and_then(|args| match tool {
        ToolName::MemoryStore => store(ctx, &args),
        ToolName::MemoryRetrieve => retrieve(ctx, &args),
        ToolName::MemorySearch => search(ctx, &args),
        ToolName::MemoryList => list(ctx, &args),
        ToolName::MemoryDelete => delete(ctx, &args),
        _ => Err(format!("`{tool}` is not a memory tool")),
    });
    match result {
        Ok(value) => ToolOutput::ok(crate::llm::encode::value_text(&value)),
        Err(message) => ToolOutput::error(format!("{tool}: {message}")),
    }
}

/// The expected arguments, shown with every argument error.
fn usage(tool: ToolName) -> &'static str {
    match tool {
        ToolName::MemoryStore => {
            r#"{"key": string, "value": any JSON, "namespace"?: string, "ttl"?: "10m" | "none"}"#
        }
        ToolName::MemoryRetrieve | ToolName::MemoryDelete => {
            r#"{"key": string, "namespace"?: string}"#
        }
        ToolName::MemorySearch => r#"{"pattern": string, "namespace"?: string}"#,
        ToolName::MemoryList => r#"{"prefix"?: string, "namespace"?: string}"#,
        _ => "{}",
    }
}

fn known_fields(tool: ToolName) -> &'static [&'static str] {
    match tool {
        ToolName::MemoryStore => &["key", "value", "namespace", "ttl"],
        ToolName::MemoryRetrieve | ToolName::MemoryDelete => &["key", "namespace"],
        ToolName::MemorySearch => &["pattern", "namespace"],
        ToolName::MemoryList => &["prefix", "namespace"],
        _ => &[],
    }
}

/// A call's arguments, checked to be an object with only known fields.
struct Args<'a> {
    tool: ToolName,
    fields: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    fn parse(tool: ToolName, args: &'a Value) -> Result<Self, String> {
        let expected = usage(tool);
        let fields = match args {
            Value::Object(fields) => fields,
            // How the LLM layer passes arguments that were not valid JSON.
            _ => return Err(format!("arguments must be a JSON object: {expected}")),
        };
        if let Some(Value::String(raw)) = fields.get("_raw") {
            return Err(format!(
                "arguments are not valid JSON ({}); expected {expected}",
                clip(raw, 120)
            ));
        }
        let known = known_fields(tool);
        if let Some(unknown) = fields.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(format!("unknown argument `{unknown}`; expected {expected}"));
        }
        Ok(Self { tool, fields })
    }

    fn required_str(&self, name: &str) -> Result<&'a str, String> {
        self.optional_str(name)?
            .ok_or_else(|| format!("missing `{name}`; expected {}", usage(self.tool)))
    }

    /// A string argument; JSON `null` counts as absent.
    fn optional_str(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!(
                "`{name}` must be a string, not {}; expected {}",
                json_kind(other),
                usage(self.tool)
            )),
        }
    }

    fn namespace_or<'b>(&self, default: &'b str) -> Result<&'b str, String>
    where
        'a: 'b,
    {
        Ok(self.optional_str("namespace")?.unwrap_or(default))
    }
}

fn store(ctx: &ToolContext<'_>, args: &Args<'_>) -> Result<Value, String> {
    let key = args.required_str("key")?;
    let value = args
        .fields
        .get("value")
        .ok_or_else(|| format!("missing `value`; expected {}", usage(args.tool)))?;
    let namespace = args.namespace_or(ctx.default_namespace)?;
    let ttl = match args.optional_str("ttl")? {
        None => Ttl::Default,
        Some(text) if text.trim().eq_ignore_ascii_case("none") => Ttl::Never,
        Some(text) => Ttl::After(duration::parse(text).map_err(|e| format!("`ttl`: {e}"))?),
    };
    ensure_writable(ctx, namespace)?;
    let entry = ctx
        .store
        .put(namespace, key, value.clone(), ttl)
        .map_err(|e| e.to_string())?;
    Ok(json!({"stored": key, "namespace": namespace, "version": entry.version}))
}

fn retrieve(ctx: &ToolContext<'_>, args: &Args<'_>) -> Result<Value, String> {
    let key = args.required_str("key")?;
    let namespace = args.namespace_or(ctx.default_namespace)?;
    ctx.store
        .check_address(namespace, key)
        .map_err(|e| e.to_string())?;
    ensure_readable(ctx, namespace)?;
    Ok(match ctx.store.get(namespace, key) {
        Some(entry) => json!({
            "found": true,
            "key": key,
            "namespace": namespace,
            "value": entry.value,
            "version": entry.version,
        }),
        None => json!({"found": false, "key": key, "namespace": namespace}),
    })
}

fn search(ctx: &ToolContext<'_>, args: &Args<'_>) -> Result<Value, String> {
    let pattern = args.required_str("pattern")?;
    let namespace = args.optional_str("namespace")?;
    if let Some(namespace) = namespace {
        ensure_readable(ctx, namespace)?;
    }
    let pattern = KeyPattern::new(pattern).map_err(|e| e.to_string())?;
    let readable = |ns: &str| ctx.policy.can_read(ns);
    let page = ctx
        .store
        .query(&pattern.scan(namespace, &readable), SEARCH_LIMIT);
    let mut budget = SEARCH_VALUE_BUDGET;
    let mut matches = Vec::new();
    for record in page.records {
        let size = record.entry.value.to_string().len();
        // A value that no longer fits is replaced by its size: the key is still there to
        // retrieve it with memory_retrieve.
        let shown = if size <= budget {
            budget -= size;
            json!({"namespace": record.namespace, "key": record.key, "value": record.entry.value})
        } else {
            json!({"namespace": record.namespace, "key": record.key, "value_bytes": size})
        };
        matches.push(shown);
    }
    Ok(capped("matches", matches, page.total))
}

fn list(ctx: &ToolContext<'_>, args: &Args<'_>) -> Result<Value, String> {
    let prefix = args.optional_str("prefix")?;
    let namespace = args.optional_str("namespace")?;
    if let Some(namespace) = namespace {
        ensure_readable(ctx, namespace)?;
    }
    let scan = Scan {
        namespace,
        include_namespace: &|ns| ctx.policy.can_read(ns),
        key_prefix: prefix.unwrap_or(""),
        leaf: None,
        pattern: None,
    };
    let page = ctx.store.query(&scan, LIST_LIMIT);
    let keys = page
        .records
        .into_iter()
        .map(
            |MemoryRecord {
                 namespace,
                 key,
                 entry,
             }| {
                json!({"namespace": namespace, "key": key, "version": entry.version})
            },
        )
        .collect();
    Ok(capped("keys", keys, page.total))
}

fn delete(ctx: &ToolContext<'_>, args: &Args<'_>) -> Result<Value, String> {
    let key = args.required_str("key")?;
    let namespace = args.namespace_or(ctx.default_namespace)?;
    ctx.store
        .check_address(namespace, key)
        .map_err(|e| e.to_string())?;
    ensure_writable(ctx, namespace)?;
    let deleted = ctx.store.delete(namespace, key);
    Ok(json!({"deleted": deleted, "key": key, "namespace": namespace}))
}

/// `{"<field>": items, "total": n, "omitted": m}`.
fn capped(field: &str, items: Vec<Value>, total: usize) -> Value {
    let omitted = total - items.len();
    let mut result = Map::new();
    result.insert(field.to_owned(), Value::Array(items));
    result.insert("total".to_owned(), total.into());
    result.insert("omitted".to_owned(), omitted.into());
    Value::Object(result)
}

fn ensure_readable(ctx: &ToolContext<'_>, namespace: &str) -> Result<(), String> {
    let policy = ctx.policy;
    ensure(
        policy.can_read(namespace),
        "read",
        namespace,
        policy.readable(),
    )
}

fn ensure_writable(ctx: &ToolContext<'_>, namespace: &str) -> Result<(), String> {
    let policy = ctx.policy;
    ensure(
        policy.can_write(namespace),
        "write",
        namespace,
        policy.writable(),
    )
}

fn ensure(allowed: bool, verb: &str, namespace: &str, rules: &[String]) -> Result<(), String> {
    if allowed {
        return Ok(());
    }
    Err(format!(
        "this role may not {verb} namespace `{namespace}`; it may {verb}: {}",
        describe(rules)
    ))
}

fn describe(patterns: &[String]) -> String {
    if patterns.is_empty() {
        return "nothing".to_owned();
    }
    patterns
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A memory tool bound to the store and the calling role's rules. Memory calls are safe to
/// repeat: a write sets the same value again, a delete of a deleted key is a no-op.
pub struct MemoryTool {
    tool: ToolName,
    schema: ToolSchema,
    store: MemoryStore,
    policy: Arc<AccessPolicy>,
    default_namespace: Arc<str>,
}

impl MemoryTool {
    /// `None` when `tool` is not a memory tool.
    pub fn new(
        tool: ToolName,
        store: MemoryStore,
        policy: Arc<AccessPolicy>,
        default_namespace: Arc<str>,
    ) -> Option<Self> {
        Some(Self {
            schema: schema(tool)?,
            tool,
            store,
            policy,
            default_namespace,
        })
    }
}

impl Tool for MemoryTool {
    fn schema(&self) -> &ToolSchema {
        &self.schema
    }

    fn repeat_safe(&self) -> bool {
        true
    }

    /// Every change goes through the memory store's journaled change sink.
    fn effects_journaled(&self) -> bool {
        true
    }

    fn call<'a>(&'a self, args: &'a Value) -> ToolFuture<'a> {
        let ctx = ToolContext {
            store: &self.store,
            policy: &self.policy,
            default_namespace: &self.default_namespace,
        };
        let result = from_output(execute(&ctx, self.tool, args));
        Box::pin(std::future::ready(result))
    }
}
