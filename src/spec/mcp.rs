//! The `mcp_servers:` section of a swarm file: one entry per MCP server, stdio (`command`,
//! `args`, `env`, `cwd`) or streamable HTTP (`url`, `headers`), with `timeout` and
//! `safe_to_repeat`. Values are kept as written; `${VAR}` is expanded when a server starts.

use super::check::Checker;
use super::yaml::{Node, Value};
use super::{McpServerSpec, McpTransport, DEFAULT_MCP_TIMEOUT};
use std::collections::BTreeMap;

const SERVER_KEYS: [&str; 9] = [
    "type",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "timeout",
    "safe_to_repeat",
];

/// Whether `name` can be a server name in `mcp__<server>__<tool>`.
pub fn is_server_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn check_mcp_servers(
    check: &mut Checker,
    node: Option<&Node>,
    source: &str,
) -> Option<BTreeMap<String, McpServerSpec>> {
    let mut servers = BTreeMap::new();
    let Some(node) = node else {
        return Some(servers);
    };
    if matches!(node.value, Value::Null) {
        return Some(servers);
    }
    let Value::Map(pairs) = &node.value else {
        check.error(
            node,
            format!(
                "`mcp_servers` must map server names to settings, found {}",
                node.value.kind()
            ),
            "write `mcp_servers:` then lines such as `git: {command: uvx, args: [mcp-server-git]}`",
        );
        return None;
    };
    let mut ok = true;
    for (key, value) in pairs {
        let Value::Str(name) = &key.value else {
            check.error(
                key,
                "an MCP server name must be text",
                "write a name such as `git`",
            );
            ok = false;
            continue;
        };
        if !is_server_name(name) {
            check.error(
                key,
                format!("`{name}` is not a valid MCP server name"),
                "use letters, digits, `-` and single `_`: roles name its tools `mcp__<server>__<tool>`",
            );
            ok = false;
            continue;
        }
        if servers.contains_key(name) {
            check.error(
                key,
                format!("MCP server `{name}` appears twice"),
                "keep one of them",
            );
            ok = false;
            continue;
        }
        match check_server(check, value, name, source) {
            Some(spec) => {
                servers.insert(name.clone(), spec);
            }
            None => ok = false,
        }
    }
    ok.then_some(servers)
}

fn check_server(
    check: &mut Checker,
    node: &Node,
    name: &str,
    source: &str,
) -> Option<McpServerSpec> {
    let what = format!("MCP server `{name}`");
    let f = check.fields(node, &what, &SERVER_KEYS, false)?;
    let mut ok = true;
    let string = |check: &mut Checker, key: &str, ok: &mut bool| -> Option<String> {
        let n = f.get(key)?;
        let value = check.string(n, &format!("`{key}` of {what}"));
        if value.is_none() {
            *ok = false;
        }
        value
    };
    let kind = string(check, "type", &mut ok);
    let command = string(check, "command", &mut ok);
    let cwd = string(check, "cwd", &mut ok);
    let url = string(check, "url", &mut ok);
    let args: Vec<String> = f.get("args").map_or_else(Vec::new, |n| {
        check
            .string_list(n, &format!("`args` of {what}"))
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    });
    let env = string_map(check, f.get("env"), &format!("`env` of {what}"), &mut ok);
    let headers = string_map(
        check,
        f.get("headers"),
        &format!("`headers` of {what}"),
        &mut ok,
    );
    let timeout = match f.get("timeout") {
        Some(n) => match check.positive_duration(n, &format!("`timeout` of {what}")) {
            Some(t) => t,
            None => {
                ok = false;
                DEFAULT_MCP_TIMEOUT
            }
        },
        None => DEFAULT_MCP_TIMEOUT,
    };
    let safe_to_repeat = f.get("safe_to_repeat").map_or_else(Vec::new, |n| {
        check
            .string_list(n, &format!("`safe_to_repeat` of {what}"))
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    });
    if let Some(kind) = &kind {
        if !matches!(kind.as_str(), "stdio" | "http" | "streamable-http") {
            check.error(
                f.get("type").unwrap_or(node),
                format!("{what} has `type: {kind}`, which is not supported"),
                "use `stdio` (with `command`) or `http` (with `url`, streamable HTTP); the old SSE transport is not supported",
            );
            ok = false;
        }
    }
    let transport = match (command, url) {
        (Some(command), None) => {
            if f.get("headers").is_some() {
                check.error(
                    f.get("headers").unwrap_or(node),
                    format!("{what} runs a command; `headers` only apply to `url` servers"),
                    "remove `headers`, or give `url` instead of `command`",
                );
                ok = false;
            }
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            }
        }
        (None, Some(url)) => {
            for key in ["args", "env", "cwd"] {
                if let Some(n) = f.get(key) {
                    check.error(
                        n,
                        format!(
                            "{what} is reached by `url`; `{key}` only applies to `command` servers"
                        ),
                        format!("remove `{key}`"),
                    );
                    ok = false;
                }
            }
            McpTransport::Http { url, headers }
        }
        (Some(_), Some(_)) => {
            check.error(
                node,
                format!("{what} has both `command` and `url`"),
                "give `command` for a server started as a process, or `url` for one reached over HTTP",
            );
            return None;
        }
        (None, None) => {
            if ok {
                check.error(
                    node,
                    format!("{what} has neither `command` nor `url`"),
                    "give `command` (and `args`) for a server started as a process, or `url` for one reached over HTTP",
                );
            }
            return None;
        }
    };
    ok.then(|| McpServerSpec {
        transport,
        timeout,
        safe_to_repeat,
        source: source.to_string(),
    })
}

fn string_map(
    check: &mut Checker,
    node: Option<&Node>,
    what: &str,
    ok: &mut bool,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Some(node) = node else { return map };
    let Value::Map(pairs) = &node.value else {
        check.error(
            node,
            format!("{what} must be a mapping, found {}", node.value.kind()),
            "write `NAME: value` lines",
        );
        *ok = false;
        return map;
    };
    for (key, value) in pairs {
        let Value::Str(name) = &key.value else {
            check.error(
                key,
                format!("a name in {what} must be text"),
                "write `NAME: value`",
            );
            *ok = false;
            continue;
        };
        let text = match &value.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                check.error(
                    value,
                    format!("`{name}` in {what} must be text, found {}", other.kind()),
                    "quote the value",
                );
                *ok = false;
                continue;
            }
        };
        map.insert(name.clone(), text);
    }
    map
}
