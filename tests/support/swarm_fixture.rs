//! A swarm in a temp dir, run through the real `swarm` binary: role and swarm files, a state dir,
//! a workspace, and an environment without API keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use swarm_runtime::llm::Message;

pub struct SwarmFixture {
    pub dir: tempfile::TempDir,
    /// The state store its commands use (`SWARM_STATE_DIR`); `None`: `.swarm` in `dir`.
    pub state_store: Option<String>,
}

impl Default for SwarmFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl SwarmFixture {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            state_store: None,
        }
    }

    /// A fixture whose commands use a fresh PostgreSQL database; `None` where there is no
    /// server (see `postgres::fresh_database`).
    pub fn on_postgres() -> Option<Self> {
        Some(Self {
            state_store: Some(super::postgres::fresh_database()?),
            ..Self::new()
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes `agents/<name>.md` with the given tools.
    pub fn role(&self, name: &str, tools: &[&str]) {
        self.write(
            &format!("agents/{name}.md"),
            &format!(
                "---\nname: {name}\ndescription: {name} for tests\ntools: [{}]\nmax_turns: 8\n---\nYou are {name}. Do the task and finish.\n",
                tools.join(", ")
            ),
        );
    }

    /// Writes `swarm.yaml`.
    pub fn swarm(&self, yaml: &str) -> PathBuf {
        self.write("swarm.yaml", yaml)
    }

    /// The binary, started in the fixture's folder with its own state dir and no API keys.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
        cmd.current_dir(self.dir.path())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("SWARM_STATE_DIR")
            .env("NO_COLOR", "1");
        if let Some(store) = &self.state_store {
            cmd.env("SWARM_STATE_DIR", store);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run swarm")
    }
}

/// The `## Context` lines of the first user message of a request.
pub fn context(messages: &[Message]) -> BTreeMap<String, String> {
    messages
        .iter()
        .find_map(|m| match m {
            Message::User { content } => {
                Some(swarm_runtime::runtime::prompt::parse_context(content))
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// The text of the first user message (the task brief).
pub fn brief(messages: &[Message]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            Message::User { content } => Some(content.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Tool results in a conversation: (tool name, content, is_error).
pub fn tool_results(messages: &[Message]) -> Vec<(String, String, bool)> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Tool {
                name,
                content,
                is_error,
                ..
            } => Some((name.clone(), content.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
