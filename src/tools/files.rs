//! The file tools (`read_file`, `write_file`, `list_files`) and the `run_command` glue: their
//! schemas and the parsing of their arguments, over the confined [`Workspace`].

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

/// A file tool (`read_file`, `write_file`, `list_files`) or `run_command`, bound to the
/// workspace. Reads, listings and writes are safe to repeat (a write puts the same content
/// again); a command is not: it may do anything.
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
        self.tool != ToolName::RunCommand
    }

    fn call<'a>(&'a self, args: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            from_output(execute(&self.workspace, self.tool, args, self.commands.as_ref()).await)
        })
    }
}
