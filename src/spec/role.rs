//! Role files: Markdown with YAML frontmatter, the format of Claude Code sub-agent files.
//!
//! The frontmatter says who the agent is (`name`, `description`), what it may do (`tools`,
//! `memory`) and how (`model`, `max_turns`); the body is its system prompt.
//!
//! Compatibility with Claude Code agent files is deliberate:
//! - frontmatter keys the runtime does not use (`color`, `capabilities`, `hooks`, `priority`...)
//!   are warnings, so such a file loads as a role;
//! - `tools` may be a list or a comma-separated string;
//! - Claude Code's own tool names are mapped to the equivalent tool of this runtime with a warning
//!   naming it (`Read` -> `read_file`, `Bash` -> `run_command`...), and those without an
//!   equivalent (`WebSearch`, `Task`, MCP tools...) are dropped with a warning, so the role keeps
//!   the abilities it can have here instead of failing to load;
//! - any other unknown tool name is an error with a did-you-mean, since it is most likely a typo
//!   of one of ours.
//!
//! Without `tools`, a role gets every tool except `create_task`, which a coordinator must ask
//! for explicitly (Claude Code likewise gives all tools when `tools` is omitted).

use super::check::{did_you_mean, Checker};
use super::yaml::{self, Node, Value};
use super::{
    Diagnostic, Loaded, MemoryAccessSpec, Role, Severity, SpecError, ToolName, DEFAULT_MAX_TURNS,
};
use std::path::Path;

/// The keys this runtime reads.
const KNOWN_KEYS: [&str; 7] = [
    "name",
    "description",
    "tools",
    "model",
    "max_turns",
    "memory",
    "metadata",
];

/// Keys Claude Code, claude-flow and the published collections use that mean nothing here. They
/// are ignored with a plain note (no "did you mean": `mode` is not a typo of `model`).
const FOREIGN_KEYS: &[&str] = &[
    "color",
    "mode",
    "type",
    "capabilities",
    "hooks",
    "priority",
    "permissionMode",
    "skills",
    "mcpServers",
    "disallowedTools",
    "version",
    "author",
    "tags",
    "category",
    "examples",
    "triggers",
    "dependencies",
    "sparc_phase",
    "expertise_level",
    "maxTurns",
];

/// Claude Code's tool names and the tools they become here; an empty list means Claude Code has
/// the tool but this runtime has no equivalent, so it is ignored with a warning. One row per
/// name, so a new Claude Code tool or a new tool of ours is a one-line change.
const CLAUDE_CODE_TOOLS: &[(&str, &[ToolName])] = &[
    ("Read", &[ToolName::ReadFile]),
    ("Write", &[ToolName::WriteFile]),
    ("Edit", &[ToolName::EditFile]),
    ("MultiEdit", &[ToolName::EditFile]),
    ("NotebookEdit", &[ToolName::WriteFile]),
    ("NotebookRead", &[ToolName::ReadFile]),
    ("Glob", &[ToolName::GlobFiles]),
    ("LS", &[ToolName::ListFiles]),
    ("Grep", &[ToolName::SearchFiles]),
    ("Bash", &[ToolName::RunCommand]),
    ("BashOutput", &[]),
    ("KillShell", &[]),
    ("KillBash", &[]),
    ("WebFetch", &[]),
    ("WebSearch", &[]),
    ("Task", &[]),
    ("Agent", &[]),
    ("TodoWrite", &[]),
    ("TodoRead", &[]),
    ("TaskCreate", &[ToolName::CreateTask]),
    ("TaskUpdate", &[ToolName::CompleteTask]),
    ("TaskList", &[]),
    ("TaskGet", &[]),
    ("TaskOutput", &[]),
    ("TaskStop", &[]),
    (
        "SendMessage",
        &[ToolName::SendMessage, ToolName::ReadMessages],
    ),
    ("TeamCreate", &[]),
    ("TeamDelete", &[]),
    ("ExitPlanMode", &[]),
    ("EnterPlanMode", &[]),
    ("AskUserQuestion", &[]),
    ("SlashCommand", &[]),
    ("Skill", &[]),
    ("ListMcpResourcesTool", &[]),
    ("ReadMcpResourceTool", &[]),
    ("ToolSearch", &[]),
    ("LSP", &[]),
    ("EnterWorktree", &[]),
    ("ExitWorktree", &[]),
    ("CronCreate", &[]),
    ("CronDelete", &[]),
    ("CronList", &[]),
    ("Monitor", &[]),
];

/// What a Claude Code tool name becomes here, or `None` when Claude Code has no such tool.
pub fn claude_code_tool(name: &str) -> Option<&'static [ToolName]> {
    CLAUDE_CODE_TOOLS
        .iter()
        .find(|(cc, _)| *cc == name)
        .map(|(_, ours)| *ours)
}

/// Loads and validates one role file.
pub fn load_role_file(path: &Path) -> Result<Loaded<Role>, SpecError> {
    let text = yaml::read_text(path).map_err(|d| SpecError {
        diagnostics: vec![d],
    })?;
    let stem = path.file_stem().and_then(|s| s.to_str());
    parse_role(&text, path, path.display().to_string(), stem)
}

/// Validates the text of a role file. `file` is where diagnostics point; `source` is recorded in
/// [`Role::source`]; `file_name` is the name swarm files find the role by, when it has one.
pub(crate) fn parse_role(
    text: &str,
    file: &Path,
    source: String,
    file_name: Option<&str>,
) -> Result<Loaded<Role>, SpecError> {
    let fail = |d: Diagnostic| SpecError {
        diagnostics: vec![d],
    };
    let whole = |line: usize, message: &str, help: &str| Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line,
        column: 1,
        message: message.to_owned(),
        help: Some(help.to_owned()),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(fail(whole(
            1,
            "the role file is empty",
            "start with frontmatter between `---` lines (name, description, tools), then the system prompt",
        )));
    }
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(fail(whole(
            1,
            "a role file starts with YAML frontmatter: the first line must be `---`",
            "add `---`, then `name:` and `description:` lines, then `---`, then the system prompt",
        )));
    }
    let mut frontmatter_len = 0;
    let mut closing_line = None;
    for (i, line) in lines.enumerate() {
        if line.trim_end() == "---" {
            closing_line = Some(i + 2);
            break;
        }
        frontmatter_len += line.len();
    }
    let Some(closing_line) = closing_line else {
        return Err(fail(whole(
            1,
            "the frontmatter is not closed",
            "end the frontmatter with a line holding only `---`, then write the system prompt",
        )));
    };
    let start = text.find('\n').map_or(text.len(), |i| i + 1);
    let frontmatter = &text[start..start + frontmatter_len];
    let body_start = text
        .split_inclusive('\n')
        .take(closing_line)
        .map(str::len)
        .sum::<usize>();
    let prompt = text[body_start..].trim();

    let mut repaired_lines: Vec<(usize, String)> = Vec::new();
    let root = if frontmatter.trim().is_empty() {
        Node {
            value: Value::Null,
            line: 1,
            column: 1,
        }
    } else {
        match yaml::parse(frontmatter, file, 2) {
            Ok(root) => root,
            Err(error) => match quote_plain_values(frontmatter) {
                // Published files often hold `description: Use when: ...`, which strict YAML
                // rejects but Claude Code reads as text; do the same, and say so.
                Some((repaired, lines)) => match yaml::parse(&repaired, file, 2) {
                    Ok(root) => {
                        repaired_lines = lines;
                        root
                    }
                    Err(_) => return Err(fail(error)),
                },
                None => return Err(fail(error)),
            },
        }
    };
    // Positions in the parsed frontmatter count from its own first line, the file's second.
    let mut check =
        Checker::with_line_offset(file, if frontmatter.trim().is_empty() { 0 } else { 1 });
    for (line, key) in repaired_lines {
        check.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            file: file.to_path_buf(),
            line: line + 1,
            column: 1,
            message: format!(
                "`{key}` holds `: ` without quotes, which strict YAML rejects; it was read as plain text"
            ),
            help: Some(
                "putting the value in double quotes makes it valid YAML for every reader, Claude Code included"
                    .into(),
            ),
        });
    }
    let role = check_role(&mut check, &root, prompt, source, closing_line, file_name);
    if check.has_errors() {
        return Err(SpecError {
            diagnostics: check.diagnostics,
        });
    }
    match role {
        Some(role) => Ok(Loaded {
            value: role,
            warnings: check.diagnostics,
        }),
        None => Err(SpecError {
            diagnostics: check.diagnostics,
        }),
    }
}

/// The frontmatter with every top-level one-line plain value that holds `: ` turned into a
/// double-quoted string, and the (1-based, frontmatter-relative) lines and keys changed; `None`
/// when no line needed it.
fn quote_plain_values(frontmatter: &str) -> Option<(String, Vec<(usize, String)>)> {
    let lines: Vec<&str> = frontmatter.split_inclusive('\n').collect();
    let mut out = String::with_capacity(frontmatter.len() + 16);
    let mut changed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let key_len = body
            .find(':')
            .filter(|&k| {
                k > 0
                    && body[..k]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .unwrap_or(0);
        let value = body.get(key_len + 1..).unwrap_or("");
        let next_is_continuation = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with([' ', '\t']) && !next.trim().is_empty());
        let plain = value.starts_with(' ')
            && !value
                .trim_start()
                .starts_with(['"', '\'', '[', '{', '|', '>', '&', '*', '!', '#']);
        if key_len == 0 || !plain || next_is_continuation || !value.trim().contains(": ") {
            out.push_str(line);
            continue;
        }
        let text = value.trim();
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&body[..key_len]);
        out.push_str(": \"");
        out.push_str(&escaped);
        out.push_str("\"\n");
        changed.push((i + 1, body[..key_len].to_owned()));
    }
    (!changed.is_empty()).then_some((out, changed))
}

fn check_role(
    check: &mut Checker,
    root: &Node,
    prompt: &str,
    source: String,
    closing_line: usize,
    file_name: Option<&str>,
) -> Option<Role> {
    if prompt.is_empty() {
        check.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            file: check.file.clone(),
            line: closing_line,
            column: 1,
            message: "the role has no system prompt: the body after the frontmatter is empty".into(),
            help: Some(
                "below the closing `---`, describe how the agent does its job and when its task is done"
                    .into(),
            ),
        });
    }
    let accepted: Vec<&'static str> = KNOWN_KEYS
        .iter()
        .chain(FOREIGN_KEYS.iter())
        .copied()
        .collect();
    let fields = check.fields(root, "the frontmatter", &accepted, true)?;
    if let Value::Map(pairs) = &root.value {
        for (key, _) in pairs {
            if let Value::Str(k) = &key.value {
                if FOREIGN_KEYS.contains(&k.as_str()) {
                    check.warning(
                        key,
                        format!("`{k}` is not used by this runtime; it is ignored"),
                        "nothing to change: the file stays as Claude Code reads it",
                    );
                }
            }
        }
    }
    let name = match fields.get("name") {
        Some(node) => check.string(node, "`name`").and_then(|name| {
            if is_role_id(&name) {
                return Some(name);
            }
            // Some published files name the role in words (`name: Load Balancer`); the file name
            // is then the role's name, as it is for Claude Code's agent list.
            match file_name.filter(|stem| is_role_id(stem)) {
                Some(stem) => {
                    check.warning(
                        node,
                        format!("`{name}` is not a role id; the role is known by its file name `{stem}`"),
                        "nothing to change: swarm files name this role by its file name",
                    );
                    Some(stem.to_owned())
                }
                None => {
                    check.error(
                        node,
                        format!(
                            "role name `{name}` has characters other than letters, digits, `-`, `_` and `.`"
                        ),
                        "use a name such as `backend-dev`",
                    );
                    None
                }
            }
        }),
        None => match file_name.filter(|stem| is_role_id(stem)) {
            Some(stem) => {
                check.warning(
                    fields.at,
                    format!("the frontmatter has no `name`; the role is known by its file name `{stem}`"),
                    "add `name: {stem}` to make the name explicit",
                );
                Some(stem.to_owned())
            }
            None => {
                check.missing(
                    &fields,
                    "name",
                    "the frontmatter",
                    "add `name: my-role` (the file's name without .md)",
                );
                None
            }
        },
    };
    // claude-flow puts the description under `metadata:`.
    let metadata_description = fields.get("metadata").and_then(|node| match &node.value {
        Value::Map(pairs) => pairs.iter().find_map(|(k, v)| match (&k.value, &v.value) {
            (Value::Str(k), Value::Str(text)) if k == "description" && !text.trim().is_empty() => {
                Some(text.clone())
            }
            _ => None,
        }),
        _ => None,
    });
    let description = match (fields.get("description"), metadata_description) {
        (Some(node), _) => check.string(node, "`description`"),
        (None, Some(text)) => Some(text),
        (None, None) => {
            check.missing(
                &fields,
                "description",
                "the frontmatter",
                "add `description:` with one line saying what the role does",
            );
            None
        }
    };
    let (tools, mcp_tools) = match fields.get("tools") {
        Some(node) => check_tools(check, node),
        None => (
            ToolName::ALL
                .into_iter()
                .filter(|t| *t != ToolName::CreateTask)
                .collect(),
            Vec::new(),
        ),
    };
    let model = fields.get("model").and_then(|n| check.string(n, "`model`"));
    let max_turns = fields
        .get("max_turns")
        .map_or(Some(DEFAULT_MAX_TURNS), |n| {
            check.integer_u32(n, "`max_turns`", 1)
        });
    let memory = fields.get("memory").and_then(|node| {
        let memory = check.fields(node, "`memory`", &["read", "write"], false)?;
        let list = |check: &mut Checker, key: &str| {
            memory.get(key).map_or_else(Vec::new, |n| {
                check
                    .string_list(n, &format!("`memory.{key}`"))
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            })
        };
        let read = list(check, "read");
        let write = list(check, "write");
        Some(MemoryAccessSpec { read, write })
    });
    Some(Role {
        name: name?,
        description: description?,
        tools,
        mcp_tools,
        model,
        max_turns: max_turns?,
        memory,
        prompt: prompt.to_owned(),
        source,
    })
}

/// Whether `name` can name a role: it doubles as a file name, so no separators and no leading dot.
pub(crate) fn is_role_id(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The built-in tools a role lists, and its MCP tools as written.
fn check_tools(check: &mut Checker, node: &Node) -> (Vec<ToolName>, Vec<String>) {
    let names: Vec<(String, &Node)> = match &node.value {
        // Claude Code writes `tools: Read, Write, Bash`.
        Value::Str(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_owned(), node))
            .collect(),
        _ => check.string_list(node, "`tools`"),
    };
    let ours: Vec<&str> = ToolName::ALL.iter().map(|t| t.as_str()).collect();
    let theirs: Vec<&str> = CLAUDE_CODE_TOOLS.iter().map(|(name, _)| *name).collect();
    let mut tools = Vec::new();
    let mut mcp_tools: Vec<String> = Vec::new();
    for (name, at) in names {
        let name = name.trim();
        if let Ok(tool) = name.parse::<ToolName>() {
            tools.push(tool);
            continue;
        }
        if let Some(equivalent) = claude_code_tool(name) {
            if equivalent.is_empty() {
                check.warning(
                    at,
                    format!(
                        "`{name}` is a Claude Code tool with no equivalent here; it is ignored"
                    ),
                    "nothing to change: the role runs without it here",
                );
            } else {
                let list: Vec<&str> = equivalent.iter().map(|t| t.as_str()).collect();
                check.warning(
                    at,
                    format!(
                        "`{name}` is a Claude Code tool; this role gets `{}` here",
                        list.join("`, `")
                    ),
                    "nothing to change: the file stays as Claude Code reads it",
                );
                tools.extend_from_slice(equivalent);
            }
            continue;
        }
        if let Some(rest) = name.strip_prefix("mcp__") {
            let server = rest.split_once("__").map_or(rest, |(server, _)| server);
            let tool = rest.split_once("__").map(|(_, tool)| tool);
            if server.is_empty() || tool.is_some_and(str::is_empty) {
                check.error(
                    at,
                    format!("`{name}` is not an MCP tool name"),
                    "write `mcp__<server>__<tool>` for one tool or `mcp__<server>` for all of a server's tools",
                );
            } else if !mcp_tools.iter().any(|t| t == name) {
                mcp_tools.push(name.to_owned());
            }
            continue;
        }
        // A near miss of a tool name is a typo worth stopping for; a name like no tool at all
        // (a program, another agent, a plugin's `server:tool`) is ignored, as Claude Code does.
        match did_you_mean(name, ours.iter().chain(theirs.iter()).copied()) {
            Some(best) => check.error(
                at,
                format!("unknown tool `{name}`"),
                format!("did you mean `{best}`?"),
            ),
            None => check.warning(
                at,
                format!("`{name}` is not a tool of this runtime or of Claude Code; it is ignored"),
                format!("tools available here: {}", ours.join(", ")),
            ),
        }
    }
    tools.sort();
    tools.dedup();
    (tools, mcp_tools)
}

/// The warnings of loaded definitions as printed by `run` and `roles`: a swarm file's warnings
/// in full, a role file's as one line with counts (published role files carry many harmless
/// ones; `swarm validate FILE` lists them).
pub fn summarize_warnings(warnings: &[Diagnostic]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut by_role: Vec<(&Path, [usize; 4])> = Vec::new();
    for w in warnings {
        if w.file.extension().is_none_or(|e| e != "md") {
            lines.push(w.to_string());
            continue;
        }
        let m = w.message.as_str();
        let kind = if m.contains("is a Claude Code tool; this role gets") {
            0
        } else if m.contains("no equivalent here")
            || m.starts_with("MCP tool")
            || m.contains("is not a tool of this runtime")
        {
            1
        } else if m.contains("is not used by this runtime") || m.starts_with("unknown key") {
            2
        } else {
            3
        };
        match by_role.iter_mut().find(|(f, _)| *f == w.file.as_path()) {
            Some((_, counts)) => counts[kind] += 1,
            None => {
                let mut counts = [0; 4];
                counts[kind] = 1;
                by_role.push((w.file.as_path(), counts));
            }
        }
    }
    for (file, counts) in by_role {
        let labels = [
            "Claude Code tools mapped",
            "tools ignored",
            "keys ignored",
            "other",
        ];
        let parts: Vec<String> = counts
            .iter()
            .zip(labels)
            .filter(|(n, _)| **n > 0)
            .map(|(n, label)| format!("{n} {label}"))
            .collect();
        let total: usize = counts.iter().sum();
        let shown = file.display().to_string();
        let hint = if shown.starts_with("builtin:") {
            String::new()
        } else {
            format!("; `swarm validate {shown}` lists them")
        };
        lines.push(format!(
            "{shown}: warning: {total} warning{} ({}){hint}",
            if total == 1 { "" } else { "s" },
            parts.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded<Role>, SpecError> {
        parse_role(text, Path::new("r.md"), "test".into(), None)
    }

    #[test]
    fn reads_frontmatter_and_body() {
        let loaded = parse("---\nname: a\ndescription: does a\ntools: [memory_store, complete_task]\nmax_turns: 3\n---\n\nYou do a.\n").unwrap();
        let role = loaded.value;
        assert_eq!(role.name, "a");
        assert_eq!(
            role.tools,
            vec![ToolName::MemoryStore, ToolName::CompleteTask]
        );
        assert_eq!(role.max_turns, 3);
        assert_eq!(role.prompt, "You do a.");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn positions_point_into_the_file() {
        let err =
            parse("---\nname: a\ndescription: d\ntools: [memory_stor]\n---\nbody\n").unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!((d.line, d.column), (4, 9), "{d}");
        assert!(d.help.as_deref().unwrap_or("").contains("memory_store"));
    }

    #[test]
    fn claude_code_tools_map_with_warnings() {
        let loaded = parse(
            "---\nname: a\ndescription: d\ntools: Read, Write, WebSearch\ncolor: blue\n---\nbody\n",
        )
        .unwrap();
        assert_eq!(
            loaded.value.tools,
            vec![ToolName::ReadFile, ToolName::WriteFile]
        );
        assert_eq!(loaded.warnings.len(), 4);
    }

    #[test]
    fn a_name_in_words_falls_back_to_the_file_name_or_fails() {
        let text = "---\nname: my role\ndescription: d\n---\nbody\n";
        let err = parse(text).unwrap_err();
        assert!(err.to_string().contains("r.md:2:7"), "{err}");
        let loaded = parse_role(text, Path::new("mine.md"), "t".into(), Some("mine")).unwrap();
        assert_eq!(loaded.value.name, "mine");
        assert_eq!(loaded.warnings.len(), 1);
    }
}
