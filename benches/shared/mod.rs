//! What the journal and state store benchmarks both build: an empty swarm plan to open sessions
//! with, and a typical journaled step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use swarm_runtime::llm::{FinishReason, ToolCall, Usage};
use swarm_runtime::session::Event;
use swarm_runtime::spec::{
    BudgetSettings, CheckpointSettings, HookSettings, LlmSettings, MemorySettings, SwarmPlan,
    Topology,
};

/// A plan with no agents or tasks, enough to create a session.
pub fn plan(description: &str) -> SwarmPlan {
    SwarmPlan {
        name: "bench".into(),
        description: description.into(),
        topology: Topology::Mesh,
        max_agents: 8,
        coordinator: None,
        agents: Vec::new(),
        roles: BTreeMap::new(),
        tasks: Vec::new(),
        memory: MemorySettings {
            namespace: "bench".into(),
            ttl: None,
            project: Vec::new(),
        },
        checkpoint: CheckpointSettings::default(),
        budget: BudgetSettings::default(),
        llm: LlmSettings::default(),
        workspace: PathBuf::from("."),
        workspace_per_session: false,
        allow_commands: false,
        hooks: HookSettings::default(),
        mcp_servers: Default::default(),
        sandbox: false,
        source_path: PathBuf::from("bench.yaml"),
        source_hash: String::new(),
        continues_from: None,
    }
}

/// A typical journaled step: an LLM turn with one tool call (~400 bytes of JSON).
pub fn turn(task: usize, n: u32) -> Arc<Event> {
    Arc::new(Event::TurnCompleted {
        task: format!("task-{task}"),
        agent: format!("backend-dev-{}", task % 8),
        turn: n,
        blocks: Vec::new(),
        text: Some("I will write the handler and its unit tests next.".into()),
        tool_calls: vec![ToolCall {
            id: format!("call-{task}-{n}"),
            name: "write_file".into(),
            arguments: serde_json::json!({"path": "src/handlers/login.rs", "content": "fn login() {}"}),
        }],
        finish: FinishReason::ToolCalls,
        usage: Usage::new(1200, 300),
        usd: 0.0004,
        usd_saved: 0.0,
        latency_ms: 900,
        retries: 0,
        at_ms: 1_795_278_330_000,
    })
}
