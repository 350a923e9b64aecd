//! What every agent of a run shares: the plan, the roster, the recorder, memory, the workspace,
//! the LLM clients, and the controls that stop a run (Ctrl-C, budgets).

use super::budget::Reservations;
use super::hooks::HookRunner;
use super::recorder::Recorder;
use super::roster::Roster;
use super::tools::{SessionHandles, ToolDeps, ToolSets};
use crate::clock::SharedClock;
use crate::llm::{resolve_model, LlmClient, LlmError, ModelAlias, ProviderConfig};
use crate::memory::{KeyPattern, MemoryStore};
use crate::session::BudgetResource;
use crate::spec::{ProviderKind, Role, SwarmPlan};
use crate::tools::command::CommandPolicy;
use crate::tools::mcp::McpHub;
use crate::tools::workspace::Workspace;
use crate::tools::ToolSet;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Why a run stops before its work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A budget reached its `stop_at` threshold.
    Budget(BudgetResource),
    /// The state store failed (disk full, database gone): nothing more can be recorded, so the
    /// run stops as it is, resumable from its last commit.
    StoreFailed,
}

/// Stop signals shared by the scheduler and the agents.
#[derive(Debug)]
pub struct Control {
    stop: watch::Sender<Option<StopReason>>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            stop: watch::channel(None).0,
        }
    }
}

impl Control {
    /// Asks the run to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        self.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn stopped(&self) -> Option<StopReason> {
        *self.stop.borrow()
    }

    /// Resolves when a stop is requested (at once if it already was).
    pub async fn wait_stop(&self) -> StopReason {
        let mut rx = self.stop.subscribe();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; this is unreachable in practice.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves when the run is interrupted or its store failed (not on budget stops, which let
    /// calls in flight finish): a call in flight is abandoned.
    pub async fn wait_interrupt(&self) {
        let mut rx = self.stop.subscribe();
        loop {
            if matches!(
                *rx.borrow_and_update(),
                Some(StopReason::Interrupted | StopReason::StoreFailed)
            ) {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// One LLM client per model: roles may override the swarm's model, and each model has its own
/// limiter shared by every agent that uses it.
pub struct LlmPool {
    base: ProviderConfig,
    clients: Mutex<HashMap<String, LlmClient>>,
    /// The swarm file's `llm.model_aliases`.
    aliases: BTreeMap<String, String>,
    /// Roles already warned about an alias this provider lacks: one warning per role and run.
    warned: Mutex<HashSet<String>>,
    /// Where the per-minute limits are counted with other processes (a shared state store).
    budget: Option<Arc<dyn crate::llm::RateBudget>>,
}

impl LlmPool {
    pub fn new(base: ProviderConfig) -> Self {
        Self::with_aliases(base, BTreeMap::new())
    }

    pub fn with_aliases(mut base: ProviderConfig, aliases: BTreeMap<String, String>) -> Self {
        // The swarm's own model may be written as an alias too.
        if let ModelAlias::Named(id) = resolve_model(Some(&base.model), base.kind, &aliases) {
            base.model = id;
        }
        Self {
            base,
            clients: Mutex::new(HashMap::new()),
            aliases,
            warned: Mutex::new(HashSet::new()),
            budget: None,
        }
    }

    /// Counts the per-minute limits of every client in `budget`, with the other processes that
    /// share it.
    pub fn with_budget(mut self, budget: Option<Arc<dyn crate::llm::RateBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// The model agents of `role` call, so that a Claude Code alias is never sent as a model
    /// name; an alias this provider lacks is warned about once per role.
    pub fn model_for(&self, role: &Role) -> String {
        let choice = super::resolve::role_model(role, &self.base, &self.aliases);
        if choice.why == super::resolve::ALIAS_FALLBACK
            && self.warned.lock().insert(role.name.clone())
        {
            tracing::warn!(
                "role `{}` asks for model `{}`, a Claude model alias the {} provider does not have; it uses the swarm's model `{}` (map it with `llm.model_aliases`)",
                role.name,
                role.model.as_deref().unwrap_or(""),
                self.base.kind,
                self.base.model
            );
        }
        choice.model
    }

    /// The configuration every model's client starts from.
    pub fn base(&self) -> &ProviderConfig {
        &self.base
    }

    pub fn client(&self, model: Option<&str>) -> Result<LlmClient, LlmError> {
        let model = model.unwrap_or(&self.base.model);
        let mut clients = self.clients.lock();
        if let Some(client) = clients.get(model) {
            return Ok(client.clone());
        }
        let mut config = self.base.clone();
        config.model = model.to_string();
        let client = match config.kind {
            ProviderKind::Simulated => super::simulated::shared_client(config, self.budget.clone()),
            _ => LlmClient::connect_shared(config, self.budget.clone())?,
        };
        clients.insert(model.to_string(), client.clone());
        Ok(client)
    }
}

/// Everything the agents of one run share.
pub struct SwarmContext {
    pub plan: Arc<SwarmPlan>,
    pub session_id: String,
    pub goal: Option<String>,
    pub roster: Arc<Roster>,
    pub recorder: Arc<Recorder>,
    pub memory: MemoryStore,
    pub workspace: Arc<Workspace>,
    /// The run's MCP servers, shut down when the run ends.
    pub mcp: Arc<McpHub>,
    pub llm: LlmPool,
    pub hooks: HookRunner,
    pub control: Control,
    /// What the LLM calls in flight hold against the budget.
    pub reservations: Reservations,
    pub clock: SharedClock,
    /// Memory every task's brief shows: blockers and decisions, compiled once.
    pub note_patterns: Vec<KeyPattern>,
    /// Each agent's tools, built once (an invalid memory rule is the agent's error).
    tool_sets: HashMap<String, Result<Arc<ToolSet>, String>>,
    /// Each agent's contacts line, built on its first task: the roster does not change during a
    /// run, and building it looks at every other agent.
    contacts: Mutex<HashMap<String, String>>,
    wake: Arc<Notify>,
}

impl SwarmContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Arc<SwarmPlan>,
        session_id: String,
        goal: Option<String>,
        recorder: Arc<Recorder>,
        memory: MemoryStore,
        workspace: Workspace,
        sandbox: Option<Arc<crate::tools::sandbox::Sandbox>>,
        mcp: Arc<McpHub>,
        llm: LlmPool,
        hooks: HookRunner,
        clock: SharedClock,
    ) -> Self {
        let roster = Arc::new(Roster::new(&plan));
        let workspace = Arc::new(workspace);
        let wake = Arc::new(Notify::new());
        let deps = ToolDeps {
            session: Arc::new(SessionHandles {
                recorder: Arc::clone(&recorder),
                roster: Arc::clone(&roster),
                clock: Arc::clone(&clock),
                wake: Arc::clone(&wake),
            }),
            memory: memory.clone(),
            workspace: Arc::clone(&workspace),
            commands: plan.allow_commands.then(|| CommandPolicy {
                sandbox,
                ..CommandPolicy::default()
            }),
            mcp: Arc::clone(&mcp),
        };
        let mut sets = ToolSets::default();
        let tool_sets = roster
            .agents()
            .iter()
            .map(|a| (a.id.clone(), sets.of(&plan, &deps, &a.id, &a.role)))
            .collect();
        let note_patterns = ["**/blockers", "**/decisions"]
            .into_iter()
            .filter_map(|glob| KeyPattern::new(glob).ok())
            .collect();
        Self {
            roster,
            plan,
            session_id,
            goal,
            recorder,
            memory,
            workspace,
            mcp,
            llm,
            hooks,
            control: Control::default(),
            reservations: Reservations::default(),
            clock,
            note_patterns,
            tool_sets,
            contacts: Mutex::new(HashMap::new()),
            wake,
        }
    }

    /// The tools of `agent`.
    /// Whether the state store has failed; if so the run is told to stop (the first time).
    pub fn store_failed(&self) -> bool {
        if self.recorder.journal().failure().is_some() {
            self.control.stop(StopReason::StoreFailed);
            true
        } else {
            false
        }
    }

    pub fn tools_of(&self, agent: &str) -> Result<Arc<ToolSet>, String> {
        self.tool_sets
            .get(agent)
            .cloned()
            .unwrap_or_else(|| Err(format!("no agent `{agent}` in this swarm")))
    }

    /// Who `agent` may message, as its task brief lists them.
    pub fn contacts_of(&self, agent: &str) -> String {
        if let Some(line) = self.contacts.lock().get(agent) {
            return line.clone();
        }
        let line = self.roster.contacts_summary(agent);
        self.contacts.lock().insert(agent.to_string(), line.clone());
        line
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Tells the scheduler the task graph changed.
    pub fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{load_swarm, LoadOptions};

    /// A swarm of two roles: `noter` holds only a memory tool, `lead` a session tool too.
    fn context(dir: &std::path::Path) -> SwarmContext {
        std::fs::create_dir_all(dir.join("agents")).expect("agents dir");
        std::fs::write(
            dir.join("swarm.yaml"),
            "name: sets\ntopology: mesh\nmax_agents: 5\nagents:\n  - role: noter\n    count: 3\n  \
             - role: lead\n    count: 2\nmemory:\n  namespace: sets\nworkspace: ./ws\ntasks:\n  \
             - id: t1\n    role: noter\n    description: Note it.\n",
        )
        .expect("swarm file");
        for (role, tools) in [
            ("noter", "[memory_store]"),
            ("lead", "[memory_store, send_message]"),
        ] {
            std::fs::write(
                dir.join("agents").join(format!("{role}.md")),
                format!("---\nname: {role}\ndescription: A {role}\ntools: {tools}\n---\nWork.\n"),
            )
            .expect("role file");
        }
        let plan = load_swarm(&dir.join("swarm.yaml"), &LoadOptions::default())
            .expect("swarm loads")
            .value;
        let clock = crate::clock::system();
        let recorder = Recorder::new(
            crate::session::SessionState::default(),
            crate::session::Journal::disabled(),
        );
        SwarmContext::new(
            Arc::new(plan),
            "s".into(),
            None,
            recorder,
            MemoryStore::new(Arc::clone(&clock), Default::default()),
            Workspace::open(&dir.join("ws")).expect("workspace"),
            None,
            Arc::new(McpHub::default()),
            LlmPool::new(ProviderConfig::new(ProviderKind::Simulated, "m", "")),
            HookRunner::new(&Default::default(), dir),
            clock,
        )
    }

    #[test]
    fn agents_share_a_tool_set_unless_a_tool_acts_as_the_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = context(dir.path());
        let set = |agent: &str| ctx.tools_of(agent).expect("agent has tools");
        assert!(Arc::ptr_eq(&set("noter-1"), &set("noter-2")));
        assert!(Arc::ptr_eq(&set("noter-1"), &set("noter-3")));
        assert!(Arc::ptr_eq(
            set("noter-1").schemas(),
            set("noter-3").schemas()
        ));
        // `send_message` sends as its holder: each lead has its own.
        assert!(!Arc::ptr_eq(&set("lead-1"), &set("lead-2")));
        assert_eq!(
            set("lead-1").names().collect::<Vec<_>>(),
            ["memory_store", "send_message"]
        );
        assert_eq!(set("noter-2").names().collect::<Vec<_>>(), ["memory_store"]);
    }
}
