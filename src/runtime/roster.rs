//! Agent instances and the topology's rules about who may talk to whom.
//!
//! Each roster line `role: R, count: n` yields agents `R-1` .. `R-n`. A hierarchical swarm's
//! coordinator is the first instance of its role, added to the roster if the roster lacks it.

use crate::spec::{SwarmPlan, Topology};
use std::collections::HashMap;

/// One agent instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub id: String,
    pub role: String,
}

/// The agents of a swarm and the messaging rules between them.
#[derive(Debug, Clone)]
pub struct Roster {
    agents: Vec<AgentInfo>,
    /// Position of each agent id in `agents`.
    by_id: HashMap<String, usize>,
    coordinator: Option<String>,
    topology: Topology,
}

impl Roster {
    pub fn new(plan: &SwarmPlan) -> Self {
        let mut agents = Vec::new();
        for slot in &plan.agents {
            for n in 1..=slot.count.max(1) {
                agents.push(AgentInfo {
                    id: format!("{}-{n}", slot.role),
                    role: slot.role.clone(),
                });
            }
        }
        let coordinator = match (plan.topology, &plan.coordinator) {
            (Topology::Hierarchical, Some(role)) => {
                let id = format!("{role}-1");
                if !agents.iter().any(|a| a.id == id) {
                    agents.insert(
                        0,
                        AgentInfo {
                            id: id.clone(),
                            role: role.clone(),
                        },
                    );
                }
                Some(id)
            }
            _ => None,
        };
        let by_id = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        Self {
            agents,
            by_id,
            coordinator,
            topology: plan.topology,
        }
    }

    pub fn agents(&self) -> &[AgentInfo] {
        &self.agents
    }

    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// The coordinator's agent id (hierarchical swarms only).
    pub fn coordinator(&self) -> Option<&str> {
        self.coordinator.as_deref()
    }

    pub fn is_coordinator(&self, agent: &str) -> bool {
        self.coordinator.as_deref() == Some(agent)
    }

    pub fn get(&self, agent: &str) -> Option<&AgentInfo> {
        self.position(agent).and_then(|i| self.agents.get(i))
    }

    /// Where an agent is in [`Roster::agents`].
    pub fn position(&self, agent: &str) -> Option<usize> {
        self.by_id.get(agent).copied()
    }

    /// Agents of a role, in roster order.
    pub fn of_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a AgentInfo> + 'a {
        self.agents.iter().filter(move |a| a.role == role)
    }

    /// The roles workers can be given tasks in (every roster role but the coordinator's
    /// own instance), in roster order, without repeats.
    pub fn worker_roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for a in &self.agents {
            if self.is_coordinator(&a.id) && self.of_role(&a.role).count() == 1 {
                continue;
            }
            if !roles.contains(&a.role) {
                roles.push(a.role.clone());
            }
        }
        roles
    }

    /// Who `agent` may send messages to.
    pub fn contacts(&self, agent: &str) -> Vec<&str> {
        self.agents
            .iter()
            .map(|a| a.id.as_str())
            .filter(|other| *other != agent && self.may_message(agent, other).is_ok())
            .collect()
    }

    /// Who `agent` may message, for a prompt: ids, with a role's many instances written as a range
    /// so that a large mesh does not put hundreds of names in every request.
    pub fn contacts_summary(&self, agent: &str) -> String {
        // Contacts grouped by role, roles in roster order.
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for a in &self.agents {
            if a.id == agent || self.may_message(agent, &a.id).is_err() {
                continue;
            }
            match groups.iter_mut().find(|(role, _)| *role == a.role) {
                Some((_, ids)) => ids.push(&a.id),
                None => groups.push((&a.role, vec![&a.id])),
            }
        }
        let mut parts: Vec<String> = Vec::new();
        for (role, ids) in groups {
            if ids.len() >= 4 {
                let count = self.of_role(role).count();
                parts.push(format!("{role}-1..{role}-{count}"));
            } else {
                parts.extend(ids.iter().map(|id| id.to_string()));
            }
        }
        parts.join(", ")
    }

    /// Resolves a message recipient given as an agent id or a role name (the role's first agent).
    pub fn resolve_recipient(&self, to: &str) -> Option<&AgentInfo> {
        self.get(to)
            .or_else(|| self.agents.iter().find(|a| a.role == to))
    }

    /// Whether `from` may message `to`; the error says why not, in words an agent can act on.
    pub fn may_message(&self, from: &str, to: &str) -> Result<(), String> {
        super::topology::may_message(self.topology, self.coordinator.as_deref(), from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AgentSlot, SwarmPlan};

    fn plan(topology: Topology, coordinator: Option<&str>, slots: &[(&str, u32)]) -> SwarmPlan {
        SwarmPlan {
            name: "t".into(),
            description: String::new(),
            topology,
            max_agents: 4,
            coordinator: coordinator.map(str::to_string),
            agents: slots
                .iter()
                .map(|(role, count)| AgentSlot {
                    role: role.to_string(),
                    count: *count,
                })
                .collect(),
            roles: Default::default(),
            tasks: Vec::new(),
            memory: crate::spec::MemorySettings {
                namespace: "t".into(),
                ttl: None,
                project: Vec::new(),
            },
            checkpoint: Default::default(),
            budget: Default::default(),
            llm: Default::default(),
            workspace: "ws".into(),
            workspace_per_session: false,
            allow_commands: false,
            hooks: Default::default(),
            mcp_servers: Default::default(),
            sandbox: false,
            source_path: "swarm.yaml".into(),
            source_hash: String::new(),
            continues_from: None,
        }
    }

    #[test]
    fn hierarchical_workers_reach_only_the_coordinator() {
        let roster = Roster::new(&plan(Topology::Hierarchical, Some("lead"), &[("dev", 2)]));
        assert_eq!(roster.coordinator(), Some("lead-1"));
        assert_eq!(roster.contacts("dev-1"), ["lead-1"]);
        assert_eq!(roster.contacts("lead-1"), ["dev-1", "dev-2"]);
        assert!(roster.may_message("dev-1", "dev-2").is_err());
        assert_eq!(roster.worker_roles(), ["dev"]);
    }

    #[test]
    fn a_large_role_is_summarised_as_a_range() {
        let roster = Roster::new(&plan(
            Topology::Mesh,
            None,
            &[("worker", 200), ("tester", 2)],
        ));
        assert_eq!(
            roster.contacts_summary("tester-1"),
            "worker-1..worker-200, tester-2"
        );
        assert_eq!(
            roster.contacts_summary("worker-7"),
            "worker-1..worker-200, tester-1, tester-2"
        );
        assert_eq!(
            roster.resolve_recipient("tester").map(|a| a.id.as_str()),
            Some("tester-1")
        );
    }
}
