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

const KNOWN_KEYS: [&str; 6] = [
    "name",
    "description",
    "tools",
    "model",
    "max_turns",
    "memory",
];

/// Claude Code's tool names and what they become here.
const CLAUDE_CODE_TOOLS: [(&str, Option<ToolName>); 18] = [
    ("Read", Some(ToolName::ReadFile)),
    ("Write", Some(ToolName::WriteFile)),
    ("Edit", Some(ToolName::WriteFile)),
    ("MultiEdit", Some(ToolName::WriteFile)),
    ("NotebookEdit", Some(ToolName::WriteFile)),
    ("NotebookRead", Some(ToolName::ReadFile)),
    ("Glob", Some(ToolName::ListFiles)),
    ("LS", Some(ToolName::ListFiles)),
    ("Bash", Some(ToolName::RunCommand)),
    ("Grep", None),
    ("WebFetch", None),
    ("WebSearch", None),
    ("Task", None),
    ("TodoWrite", None),
    ("TodoRead", None),
    ("BashOutput", None),
    ("KillShell", None),
    ("ExitPlanMode", None),
];

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

    let root = if frontmatter.trim().is_empty() {
        Node {
            value: Value::Null,
            line: 1,
            column: 1,
        }
    } else {
        yaml::parse(frontmatter, file, 2).map_err(fail)?
    };
    // Positions in the parsed frontmatter count from its own first line, the file's second.
    let mut check =
        Checker::with_line_offset(file, if frontmatter.trim().is_empty() { 0 } else { 1 });
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
    let fields = check.fields(root, "the frontmatter", &KNOWN_KEYS, true)?;
    let name = match fields.get("name") {
        Some(node) => check.string(node, "`name`").filter(|name| {
            let ok = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                check.error(
                    node,
                    format!(
                        "role name `{name}` has characters other than letters, digits, `-` and `_`"
                    ),
                    "use a name such as `backend-dev`",
                );
            }
            // Swarm files name roles by file name; a different `name` would be invisible there.
            if let Some(stem) = file_name.filter(|stem| ok && stem != name) {
                check.warning(
                    node,
                    format!("the role is named `{name}` but its file is {stem}.md: swarm files find it as `{stem}`"),
                    format!("rename the file to {name}.md, or set `name: {stem}`"),
                );
            }
            ok
        }),
        None => {
            check.missing(
                &fields,
                "name",
                "the frontmatter",
                "add `name: my-role` (the file's name without .md)",
            );
            None
        }
    };
    let description = match fields.get("description") {
        Some(node) => check.string(node, "`description`"),
        None => {
            check.missing(
                &fields,
                "description",
                "the frontmatter",
                "add `description:` with one line saying what the role does",
            );
            None
        }
    };
    let tools = match fields.get("tools") {
        Some(node) => check_tools(check, node),
        None => ToolName::ALL
            .into_iter()
            .filter(|t| *t != ToolName::CreateTask)
            .collect(),
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
        model,
        max_turns: max_turns?,
        memory,
        prompt: prompt.to_owned(),
        source,
    })
}

fn check_tools(check: &mut Checker, node: &Node) -> Vec<ToolName> {
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
    let mut tools = Vec::new();
    for (name, at) in names {
        let name = name.trim();
        if let Ok(tool) = name.parse::<ToolName>() {
            tools.push(tool);
            continue;
        }
        if let Some((_, equivalent)) = CLAUDE_CODE_TOOLS.iter().find(|(cc, _)| *cc == name) {
            match equivalent {
                Some(tool) => {
                    check.warning(
                        at,
                        format!("`{name}` is a Claude Code tool; this role gets `{tool}` instead"),
                        format!("write `{tool}` to silence this warning"),
                    );
                    tools.push(*tool);
                }
                None => check.warning(
                    at,
                    format!(
                        "`{name}` is a Claude Code tool with no equivalent here; it is ignored"
                    ),
                    format!("tools available here: {}", ours.join(", ")),
                ),
            }
            continue;
        }
        if name.starts_with("mcp__") {
            check.warning(
                at,
                format!("MCP tool `{name}` is not available here; it is ignored"),
                format!("tools available here: {}", ours.join(", ")),
            );
            continue;
        }
        let help = match did_you_mean(name, ours.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("tools available here: {}", ours.join(", ")),
        };
        check.error(at, format!("unknown tool `{name}`"), help);
    }
    tools.sort();
    tools.dedup();
    tools
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
}
