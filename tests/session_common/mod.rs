//! Builders shared by the session tests: a plan, and events as a runner would journal them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use swarm_runtime::llm::{FinishReason, ToolCall, Usage};
use swarm_runtime::memory::{Entry, MemoryChange};
use swarm_runtime::session::Event;
use swarm_runtime::spec::{
    AgentSlot, BudgetSettings, CheckpointSettings, HookSettings, LlmSettings, MemorySettings,
    SwarmPlan, TaskSpec, Topology,
};

pub fn plan() -> SwarmPlan {
    SwarmPlan {
        name: "development".into(),
        description: "Backend feature work".into(),
        topology: Topology::Mesh,
        max_agents: 2,
        coordinator: None,
        agents: vec![AgentSlot {
            role: "backend-dev".into(),
            count: 2,
        }],
        roles: BTreeMap::new(),
        tasks: vec![task("api", &[]), task("tests", &["api"])],
        memory: MemorySettings {
            namespace: "development".into(),
            ttl: Some(Duration::from_secs(24 * 3600)),
            project: Vec::new(),
        },
        checkpoint: CheckpointSettings::default(),
        budget: BudgetSettings {
            tokens: Some(1000),
            llm_calls: Some(10),
            ..BudgetSettings::default()
        },
        llm: LlmSettings::default(),
        workspace: PathBuf::from("./workspace"),
        workspace_per_session: false,
        allow_commands: false,
        hooks: HookSettings::default(),
        mcp_servers: Default::default(),
        sandbox: false,
        source_path: PathBuf::from("swarm.yaml"),
        source_hash: "abc123".into(),
        continues_from: None,
    }
}

pub fn task(id: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        role: "backend-dev".into(),
        description: format!("Do {id}"),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

pub fn started(session: &str) -> Event {
    Event::SessionStarted {
        session: session.into(),
        swarm: "development".into(),
        goal: Some("user login API".into()),
        provider: "simulated".into(),
        model: "sim".into(),
        base_url: String::new(),
        at_ms: 1_000,
    }
}

pub fn created(id: &str, deps: &[&str], at_ms: u64) -> Event {
    Event::TaskCreated {
        task: task(id, deps),
        created_by: None,
        at_ms,
    }
}

pub fn task_started(id: &str, agent: &str, at_ms: u64) -> Event {
    Event::TaskStarted {
        task: id.into(),
        agent: agent.into(),
        prompt: format!("Do {id}"),
        system: None,
        at_ms,
    }
}

pub fn turn(id: &str, agent: &str, n: u32, tokens: u64, at_ms: u64) -> Event {
    Event::TurnCompleted {
        blocks: Vec::new(),
        task: id.into(),
        agent: agent.into(),
        turn: n,
        text: Some(format!("turn {n} of {id}")),
        tool_calls: vec![ToolCall {
            id: format!("call-{id}-{n}"),
            name: "write_file".into(),
            arguments: serde_json::json!({"path": "a.rs"}),
        }],
        finish: FinishReason::ToolCalls,
        usage: Usage::new(tokens, tokens / 2),
        usd: 0.001,
        usd_saved: 0.0,
        latency_ms: 250,
        retries: 1,
        at_ms,
    }
}

pub fn completed(id: &str, agent: &str, at_ms: u64) -> Event {
    Event::TaskCompleted {
        task: id.into(),
        agent: agent.into(),
        result: format!("{id} finished"),
        at_ms,
    }
}

pub fn put(namespace: &str, key: &str, value: serde_json::Value, version: u64) -> Event {
    Event::MemoryChanged {
        change: MemoryChange::Put {
            namespace: namespace.into(),
            key: key.into(),
            entry: Entry {
                value,
                created_ms: 1_000,
                updated_ms: 1_000,
                expires_ms: None,
                version,
                access_count: 0,
            },
        },
    }
}

/// A session's worth of varied events: `n` tasks, each created, started, one turn, completed,
/// with a memory write.
pub fn workload(session: &str, n: usize) -> Vec<Event> {
    let mut events = vec![started(session)];
    for i in 0..n {
        let id = format!("t{i}");
        let at = 2_000 + i as u64 * 10;
        events.push(created(&id, &[], at));
        events.push(task_started(&id, "backend-dev-1", at + 1));
        events.push(turn(&id, "backend-dev-1", 0, 10, at + 2));
        events.push(put(
            "development",
            &format!("development/{id}/result"),
            serde_json::json!(i),
            1,
        ));
        events.push(completed(&id, "backend-dev-1", at + 3));
    }
    events
}

/// A state dir in a temp dir with one session whose run lock is held.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub state_dir: swarm_runtime::session::StateDir,
    pub id: String,
    pub lock: swarm_runtime::session::SessionLock,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_dir = swarm_runtime::session::StateDir::open(dir.path()).expect("state dir");
        let id = state_dir
            .create_session(&plan(), Some("user login API"))
            .expect("session");
        let lock = state_dir.lock(&id).expect("lock");
        Self {
            dir,
            state_dir,
            id,
            lock,
        }
    }

    pub fn journal(&self) -> swarm_runtime::session::Journal {
        self.state_dir
            .open_journal(&self.id, &self.lock)
            .expect("journal")
    }
}
