//! Agent instances and the topology's rules about who may talk to whom.
//!
//! Each roster line `role: R, count: n` yields agents `R-1` .. `R-n`. A hierarchical swarm's
//! coordinator is the first instance of its role, added to the roster if the roster lacks it.

use crate::spec::{SwarmPlan, Topology};

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
        Self {
            agents,
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
        self.agents.iter().find(|a| a.id == agent)
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

    /// Resolves a message recipient given as an agent id or a role name (the role's first agent).
    pub fn resolve_recipient(&self, to: &str) -> Option<&AgentInfo> {
        self.get(to)
            .or_else(|| self.agents.iter().find(|a| a.role == to))
    }

    /// Whether `from` may message `to`; the error says why not, in words an agent can act on.
    pub fn may_message(&self, from: &str, to: &str) -> Result<(), String> {
        if from == to {
            return Err("an agent cannot message itself".to_string());
        }
        match (self.topology, self.coordinator.as_deref()) {
            (Topology::Hierarchical, Some(coordinator)) => {
                if from == coordinator || to == coordinator {
                    Ok(())
                } else {
                    Err(format!(
                        "this swarm is hierarchical: workers message only the coordinator \
                         ({coordinator}); send your message to {coordinator} instead of {to}"
                    ))
                }
            }
            _ => Ok(()),
        }
    }
}
