//! The workspace tools (`read_file`, `write_file`, `list_files`, `edit_file`, `search_files`,
//! `glob_files`) and the `run_command` glue: their schemas and the parsing of their arguments,
//! over the confined [`Workspace`].

use super::coding::{edit_file, glob_files, search_files};
use super::command::{run_command, CommandPolicy};
use super::workspace::{Workspace, READ_FILE_MAX_BYTES};
use super::{from_output, Tool, ToolFuture};
use crate::llm::{ToolOutput, ToolSchema};
use crate::spec::ToolName;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The schema offered to the model for a workspace tool; `None` for other tools.
pub fn schema(tool: ToolName) -> Option<ToolSchema> {
    let (description, parameters) = match tool {
        ToolName::ReadFile => (
            "Read a UTF-8 text file from the workspace. Long files are truncated with a note.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace root"}
                },
                "required": ["path"]
            }),
        ),
        ToolName::WriteFile => (
            "Create or replace a file in the workspace with the given text; missing folders are created.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace root"},
                    "content": {"type": "string", "description": "The complete new content of the file"}
                },
                "required": ["path", "content"]
            }),
        ),
        ToolName::ListFiles => (
            "List files and folders in the workspace (folders end with /), as paths relative to the workspace root.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Folder relative to the workspace root; omit for the root"},
                    "recursive": {"type": "boolean", "description": "Include everything below the folder; default false"}
                }
            }),
        ),
        ToolName::EditFile => (
            "Replace an exact piece of text in a workspace file. `old_string` must occur exactly once (include enough surrounding lines to make it unique), or set `replace_all` to replace every occurrence.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace root"},
                    "old_string": {"type": "string", "description": "The exact text to replace, whitespace included"},
                    "new_string": {"type": "string", "description": "The text to put in its place"},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence; default false"}
                },
                "required": ["path", "old_string", "new_string"]
            }),
        ),
        ToolName::SearchFiles => (
            "Search the contents of the workspace's files with a regular expression (Rust regex syntax), skipping what .gitignore excludes. Returns `path:line:text` for each matching line, capped.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression, e.g. `fn\\s+main` or `TODO`"},
                    "path": {"type": "string", "description": "Folder or file to search, relative to the workspace root; omit for everything"},
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. `*.rs` or `src/**/*.ts`"},
                    "case_insensitive": {"type": "boolean", "description": "Ignore case; default false"}
                },
                "required": ["pattern"]
            }),
        ),
        ToolName::GlobFiles => (
            "Find files by name with a glob such as `**/*.rs` or `src/*/mod.rs` (`*` stays within a folder, `**` crosses folders), skipping what .gitignore excludes. Returns paths relative to the workspace root, sorted.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob matched against paths relative to the workspace root"},
                    "path": {"type": "string", "description": "Folder to look in; omit for the whole workspace"}
                },
                "required": ["pattern"]
            }),
        ),
        ToolName::RunCommand => (
            "Run a shell command (sh -c) in the workspace root. Returns the exit code and the combined output; long output is cut in the middle, and the command is killed after a timeout.",
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command line to run"}
                },
                "required": ["command"]
            }),
        ),
        _ => return None,
    };
    Some(ToolSchema {
        name: tool.as_str().to_string(),
        description: description.to_string(),
        parameters,
    })
}

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct ListArgs {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    recursive: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    #[serde(alias = "file_path")]
    path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobArgs {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct CommandArgs {
    command: String,
}

/// Parses tool arguments, or says what shape was expected.
fn parse_args<T: serde::de::DeserializeOwned>(
    tool: ToolName,
    args: &serde_json::Value,
    shape: &str,
) -> Result<T, ToolOutput> {
    let problem = match args.get("_raw") {
        Some(_) => "the arguments were not valid JSON".to_string(),
        None => match serde_json::from_value(args.clone()) {
            Ok(parsed) => return Ok(parsed),
            Err(err) => err.to_string(),
        },
    };
    Err(ToolOutput::error(format!(
        "bad arguments for {tool}: {problem}; expected {shape}"
    )))
}

/// Runs a workspace tool call. `commands` is the command policy when the swarm allows
/// `run_command`, `None` when it does not.
pub async fn execute(
    ws: &Workspace,
    tool: ToolName,
    args: &serde_json::Value,
    commands: Option<&CommandPolicy>,
) -> ToolOutput {
    let result = match tool {
        ToolName::ReadFile => {
            let args: PathArgs = match parse_args(tool, args, r#"{"path": string}"#) {
                Ok(args) => args,
                Err(out) => return out,
            };
            ws.read_file(&args.path, READ_FILE_MAX_BYTES)
        }
        ToolName::WriteFile => {
            let shape = r#"{"path": string, "content": string}"#;
            let args: WriteArgs = match parse_args(tool, args, shape) {
                Ok(args) => args,
                Err(out) => return out,
            };
            ws.write_file(&args.path, &args.content)
                .map(|bytes| json!({"path": args.path, "bytes_written": bytes}).to_string())
        }
        ToolName::ListFiles => {
            let shape = r#"{"path"?: string, "recursive"?: boolean}"#;
            // Models often send `{}` or nothing at all for "list the root".
            let args: ListArgs = if args.is_null() {
                ListArgs {
                    path: None,
                    recursive: None,
                }
            } else {
                match parse_args(tool, args, shape) {
                    Ok(args) => args,
                    Err(out) => return out,
                }
            };
            ws.list_files(args.path.as_deref(), args.recursive.unwrap_or(false))
                .map(|entries| {
                    if entries.is_empty() {
                        "(empty folder)".to_string()
                    } else {
                        entries.join("\n")
                    }
                })
        }
        ToolName::EditFile => {
            let shape = r#"{"path": string, "old_string": string, "new_string": string, "replace_all"?: boolean}"#;
            let args: EditArgs = match parse_args(tool, args, shape) {
                Ok(args) => args,
                Err(out) => return out,
            };
            return match edit_file(
                ws,
                &args.path,
                &args.old_string,
                &args.new_string,
                args.replace_all,
            ) {
                Ok(n) => ToolOutput::ok(json!({"path": args.path, "replacements": n}).to_string()),
                Err(why) => ToolOutput::error(format!("edit_file: {why}")),
            };
        }
        ToolName::SearchFiles => {
            let shape = r#"{"pattern": string, "path"?: string, "glob"?: string, "case_insensitive"?: boolean}"#;
            let args: SearchArgs = match parse_args(tool, args, shape) {
                Ok(args) => args,
                Err(out) => return out,
            };
            return match search_files(
                ws,
                &args.pattern,
                args.path.as_deref(),
                args.glob.as_deref(),
                args.case_insensitive,
            ) {
                Ok(text) => ToolOutput::ok(text),
                Err(why) => ToolOutput::error(format!("search_files: {why}")),
            };
        }
        ToolName::GlobFiles => {
            let shape = r#"{"pattern": string, "path"?: string}"#;
            let args: GlobArgs = match parse_args(tool, args, shape) {
                Ok(args) => args,
                Err(out) => return out,
            };
            return match glob_files(ws, &args.pattern, args.path.as_deref()) {
                Ok(text) => ToolOutput::ok(text),
                Err(why) => ToolOutput::error(format!("glob_files: {why}")),
            };
        }
        ToolName::RunCommand => {
            let Some(policy) = commands else {
                return ToolOutput::error(
                    "commands are not allowed in this swarm (allow_commands: false)",
                );
            };
            let args: CommandArgs = match parse_args(tool, args, r#"{"command": string}"#) {
                Ok(args) => args,
                Err(out) => return out,
            };
            return run_command(ws, &args.command, policy).await;
        }
        other => {
            return ToolOutput::error(format!("{other} is not a workspace tool"));
        }
    };
    match result {
        Ok(text) => ToolOutput::ok(text),
        Err(err) => ToolOutput::error(err.to_string()),
    }
}

/// A workspace tool or `run_command`, bound to the workspace. Reads, searches, listings and
/// writes are safe to repeat (a write puts the same content again); an edit is not (replacing
/// `a` by `ab` twice gives `abb`), and a command may do anything.
pub struct FileTool {
    tool: ToolName,
    schema: ToolSchema,
    workspace: Arc<Workspace>,
    commands: Option<CommandPolicy>,
}

impl FileTool {
    /// `None` when `tool` is not a workspace tool.
    pub fn new(
        tool: ToolName,
        workspace: Arc<Workspace>,
        commands: Option<CommandPolicy>,
    ) -> Option<Self> {
        Some(Self {
            schema: schema(tool)?,
            tool,
            workspace,
            commands,
        })
    }
}

impl Tool for FileTool {
    fn schema(&self) -> &ToolSchema {
        &self.schema
    }

    fn repeat_safe(&self) -> bool {
        !matches!(self.tool, ToolName::RunCommand | ToolName::EditFile)
    }

    /// Reads change nothing; a write waits for the turn that asked for it to be durable.
    fn effects_journaled(&self) -> bool {
        matches!(
            self.tool,
            ToolName::ReadFile | ToolName::ListFiles | ToolName::SearchFiles | ToolName::GlobFiles
        )
    }

    fn call<'a>(&'a self, args: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            from_output(execute(&self.workspace, self.tool, args, self.commands.as_ref()).await)
        })
    }
}
