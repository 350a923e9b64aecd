//! The mock's prompt cache and bill: it counts a request's input the way the APIs document it,
//! so a test or a benchmark can compare what a swarm would be billed with and without caching.
//!
//! A request is a sequence of blocks: each tool, each system block, each content block of each
//! message (string content counts as one text block). A block costs ceil(characters / 4) tokens
//! of its text (the tool's name, description and schema; a tool call's name and input). Prefixes
//! are compared by a hash of the blocks before them, `cache_control` markers left out (moving a
//! breakpoint does not change the content).
//!
//! Anthropic (explicit): at most 4 blocks carry `cache_control`. A request reads the longest
//! cached prefix that ends at one of its breakpoints or up to 20 blocks before one; it writes the
//! prefix up to each later breakpoint whose prefix holds at least 1024 tokens. An entry lives 5
//! minutes from its last use. Usage: `cache_read_input_tokens` (the prefix read),
//! `cache_creation_input_tokens` (from there to the last breakpoint written) and `input_tokens`
//! (the rest: input_tokens excludes the cached ones).
//!
//! OpenAI (automatic): every request's prefix of at least 1024 tokens is cached; a later request
//! reads the longest cached prefix of its blocks (tools, then one block per message), counted in
//! steps of 128 tokens after the first 1024, and reports it as `cached_tokens`, a part of
//! `prompt_tokens`. Writes cost nothing extra.

use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use swarm_runtime::llm::Usage;

/// The smallest prefix either API caches.
pub const MIN_CACHEABLE_TOKENS: u64 = 1024;
/// How far before a breakpoint Anthropic looks for a cached prefix.
pub const LOOKBACK_BLOCKS: usize = 20;
/// Anthropic's (default) and OpenAI's cache lifetime since last use.
pub const CACHE_LIFETIME: Duration = Duration::from_secs(5 * 60);
const MAX_BREAKPOINTS: usize = 4;
const OPENAI_STEP: u64 = 128;

/// Tokens of a text, as this mock counts them.
pub fn tokens_of(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// A request's blocks: for each, the tokens of the prefix that ends with it, the prefix's hash,
/// and whether it carries a breakpoint.
struct Blocks {
    prefix_tokens: Vec<u64>,
    prefix_hash: Vec<u64>,
    breakpoint: Vec<bool>,
}

impl Blocks {
    fn new() -> Self {
        Self {
            prefix_tokens: Vec::new(),
            prefix_hash: Vec::new(),
            breakpoint: Vec::new(),
        }
    }

    fn push(&mut self, role: &str, block: &Value, text_tokens: u64) {
        let mut hasher = DefaultHasher::new();
        self.prefix_hash
            .last()
            .copied()
            .unwrap_or(0)
            .hash(&mut hasher);
        role.hash(&mut hasher);
        let marked = block.get("cache_control").is_some();
        let mut plain = block.clone();
        if let Value::Object(map) = &mut plain {
            map.remove("cache_control");
        }
        plain.to_string().hash(&mut hasher);
        self.prefix_hash.push(hasher.finish());
        let before = self.prefix_tokens.last().copied().unwrap_or(0);
        self.prefix_tokens.push(before + text_tokens);
        self.breakpoint.push(marked);
    }

    fn total(&self) -> u64 {
        self.prefix_tokens.last().copied().unwrap_or(0)
    }
}

fn block_tokens(block: &Value) -> u64 {
    match block["type"].as_str() {
        Some("text") => tokens_of(block["text"].as_str().unwrap_or("")),
        Some("tool_use") => {
            tokens_of(block["name"].as_str().unwrap_or("")) + tokens_of(&block["input"].to_string())
        }
        Some("tool_result") => match &block["content"] {
            Value::String(s) => tokens_of(s),
            other => tokens_of(&other.to_string()),
        },
        _ => tokens_of(&block.to_string()),
    }
}

fn tool_tokens(tool: &Value) -> u64 {
    let schema = if tool["input_schema"].is_null() {
        &tool["function"]
    } else {
        &tool["input_schema"]
    };
    let name = tool["name"].as_str().or(tool["function"]["name"].as_str());
    let description = tool["description"]
        .as_str()
        .or(tool["function"]["description"].as_str());
    tokens_of(name.unwrap_or(""))
        + tokens_of(description.unwrap_or(""))
        + tokens_of(&schema.to_string())
}

/// Blocks of an Anthropic Messages request: tools, system, then every content block.
fn anthropic_blocks(body: &Value) -> Blocks {
    let mut blocks = Blocks::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        blocks.push("tool", tool, tool_tokens(tool));
    }
    match &body["system"] {
        Value::String(s) => {
            let block = serde_json::json!({"type": "text", "text": s});
            blocks.push("system", &block, tokens_of(s));
        }
        Value::Array(parts) => {
            for part in parts {
                blocks.push("system", part, block_tokens(part));
            }
        }
        _ => {}
    }
    for message in body["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or("");
        match &message["content"] {
            Value::String(s) => {
                let block = serde_json::json!({"type": "text", "text": s});
                blocks.push(role, &block, tokens_of(s));
            }
            Value::Array(parts) => {
                for part in parts {
                    blocks.push(role, part, block_tokens(part));
                }
            }
            _ => {}
        }
    }
    blocks
}

/// Blocks of an OpenAI chat request: the tools, then one block per message.
fn openai_blocks(body: &Value) -> Blocks {
    let mut blocks = Blocks::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        blocks.push("tool", tool, tool_tokens(tool));
    }
    for message in body["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or("");
        let mut tokens = match &message["content"] {
            Value::String(s) => tokens_of(s),
            Value::Null => 0,
            other => tokens_of(&other.to_string()),
        };
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            tokens += tokens_of(call["function"]["name"].as_str().unwrap_or(""))
                + tokens_of(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        blocks.push(role, message, tokens);
    }
    blocks
}

/// Cached prefixes by hash, each with the time it expires.
#[derive(Debug, Default)]
pub struct PromptCache {
    entries: HashMap<u64, Instant>,
    /// Everything billed so far, over every successful request.
    pub bill: Usage,
    /// Lifetime of an entry since its last use.
    pub lifetime: Option<Duration>,
}

impl PromptCache {
    fn lifetime(&self) -> Duration {
        self.lifetime.unwrap_or(CACHE_LIFETIME)
    }

    fn live(&self, hash: u64, now: Instant) -> bool {
        self.entries
            .get(&hash)
            .is_some_and(|expires| *expires > now)
    }

    /// Checks an Anthropic request's breakpoints: an error message as the API would give it.
    pub fn check_anthropic(body: &Value) -> Result<(), String> {
        let blocks = anthropic_blocks(body);
        let marks = blocks.breakpoint.iter().filter(|b| **b).count();
        if marks > MAX_BREAKPOINTS {
            return Err(format!(
                "A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {marks}."
            ));
        }
        Ok(())
    }

    /// The input usage of `body` on `anthropic` or OpenAI, updating the cache at `now`.
    pub fn input_usage(&mut self, anthropic: bool, body: &Value, now: Instant) -> Usage {
        if anthropic {
            self.anthropic(body, now)
        } else {
            self.openai(body, now)
        }
    }

    fn anthropic(&mut self, body: &Value, now: Instant) -> Usage {
        let blocks = anthropic_blocks(body);
        let marks: Vec<usize> = (0..blocks.breakpoint.len())
            .filter(|i| blocks.breakpoint[*i])
            .collect();
        // The longest cached prefix within the lookback of a breakpoint, latest breakpoint first.
        let mut read_at = None;
        'search: for &mark in marks.iter().rev() {
            for at in (mark.saturating_sub(LOOKBACK_BLOCKS)..=mark).rev() {
                if self.live(blocks.prefix_hash[at], now) {
                    read_at = Some(at);
                    break 'search;
                }
            }
        }
        let read = read_at.map_or(0, |at| blocks.prefix_tokens[at]);
        let expires = now + self.lifetime();
        if let Some(at) = read_at {
            self.entries.insert(blocks.prefix_hash[at], expires);
        }
        let mut written_to = read;
        for &mark in &marks {
            if read_at.is_some_and(|at| mark <= at) {
                continue;
            }
            if blocks.prefix_tokens[mark] >= MIN_CACHEABLE_TOKENS {
                self.entries.insert(blocks.prefix_hash[mark], expires);
                written_to = written_to.max(blocks.prefix_tokens[mark]);
            }
        }
        Usage {
            input_tokens: blocks.total() - written_to,
            output_tokens: 0,
            cache_write_tokens: written_to - read,
            cache_read_tokens: read,
        }
    }

    fn openai(&mut self, body: &Value, now: Instant) -> Usage {
        let blocks = openai_blocks(body);
        let hit = (0..blocks.prefix_hash.len())
            .rev()
            .find(|at| self.live(blocks.prefix_hash[*at], now));
        let cached = hit.map_or(0, |at| {
            let t = blocks.prefix_tokens[at];
            MIN_CACHEABLE_TOKENS + (t - MIN_CACHEABLE_TOKENS) / OPENAI_STEP * OPENAI_STEP
        });
        let expires = now + self.lifetime();
        for at in 0..blocks.prefix_hash.len() {
            if blocks.prefix_tokens[at] >= MIN_CACHEABLE_TOKENS {
                self.entries.insert(blocks.prefix_hash[at], expires);
            }
        }
        Usage {
            input_tokens: blocks.total() - cached,
            output_tokens: 0,
            cache_write_tokens: 0,
            cache_read_tokens: cached,
        }
    }
}
