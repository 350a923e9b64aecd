//! Which namespaces a role may read and write.
//!
//! Rules are globs over namespace names. Unlike key globs, `*` here also spans `/`, so the common
//! `read: ["*"]` means every namespace, `agent/*` included.

use super::MemoryError;
use crate::spec::MemoryAccessSpec;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The namespaces one role may read and write.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    read: Rules,
    write: Rules,
}

#[derive(Debug, Clone)]
struct Rules {
    /// As written, for error messages that tell the agent what it may use instead.
    patterns: Vec<String>,
    set: GlobSet,
}

impl Rules {
    fn new(patterns: Vec<String>) -> Result<Self, MemoryError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = GlobBuilder::new(pattern)
                .build()
                .map_err(|e| MemoryError::InvalidGlob {
                    glob: pattern.clone(),
                    reason: e.kind().to_string(),
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| MemoryError::InvalidGlob {
            glob: patterns.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Self { patterns, set })
    }
}

impl AccessPolicy {
    /// The policy of `role`: its own `memory:` rules when it has them, otherwise read every
    /// namespace and write `swarm_namespace` and `agent/<role>`.
    pub fn for_role(
        spec: Option<&MemoryAccessSpec>,
        swarm_namespace: &str,
        role: &str,
    ) -> Result<Self, MemoryError> {
        Self::for_role_sharing(spec, swarm_namespace, &[], role)
    }

    /// [`for_role`](Self::for_role) in a swarm that shares `project` namespaces with the
    /// project: the default rule writes those too, since sharing them is their point.
    pub fn for_role_sharing(
        spec: Option<&MemoryAccessSpec>,
        swarm_namespace: &str,
        project: &[String],
        role: &str,
    ) -> Result<Self, MemoryError> {
        let (read, write) = match spec {
            Some(spec) => (spec.read.clone(), spec.write.clone()),
            None => (
                vec!["*".to_owned()],
                [escape(swarm_namespace), format!("agent/{}", escape(role))]
                    .into_iter()
                    .chain(project.iter().map(|ns| escape(ns)))
                    .collect(),
            ),
        };
        Ok(Self {
            read: Rules::new(read)?,
            write: Rules::new(write)?,
        })
    }

    pub fn can_read(&self, namespace: &str) -> bool {
        self.read.set.is_match(namespace)
    }

    pub fn can_write(&self, namespace: &str) -> bool {
        self.write.set.is_match(namespace)
    }

    /// The read rules as written, e.g. for a denial message.
    pub fn readable(&self) -> &[String] {
        &self.read.patterns
    }

    /// The write rules as written.
    pub fn writable(&self) -> &[String] {
        &self.write.patterns
    }
}

/// A name as a glob that matches only itself.
fn escape(name: &str) -> String {
    let mut glob = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            glob.push('[');
            glob.push(c);
            glob.push(']');
        } else {
            glob.push(c);
        }
    }
    glob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reads_everything_and_writes_the_swarm_and_own_namespaces() {
        let policy = AccessPolicy::for_role(None, "dev", "tester").unwrap();
        assert!(policy.can_read("dev"));
        assert!(policy.can_read("agent/other"));
        assert!(policy.can_write("dev"));
        assert!(policy.can_write("agent/tester"));
        assert!(!policy.can_write("agent/other"));
        assert!(!policy.can_write("dev2"));
    }

    #[test]
    fn explicit_rules_are_globs_over_namespace_names() {
        let spec = MemoryAccessSpec {
            read: vec!["dev".into(), "agent/*".into()],
            write: vec!["agent/backend-*".into()],
        };
        let policy = AccessPolicy::for_role(Some(&spec), "dev", "backend-dev").unwrap();
        assert!(policy.can_read("agent/x"));
        assert!(!policy.can_read("ops"));
        assert!(policy.can_write("agent/backend-dev"));
        assert!(!policy.can_write("dev"));
        assert_eq!(policy.writable(), ["agent/backend-*"]);
    }

    #[test]
    fn empty_rules_deny_everything() {
        let spec = MemoryAccessSpec::default();
        let policy = AccessPolicy::for_role(Some(&spec), "dev", "r").unwrap();
        assert!(!policy.can_read("dev"));
        assert!(!policy.can_write("dev"));
    }

    #[test]
    fn an_invalid_rule_is_an_error_naming_it() {
        let spec = MemoryAccessSpec {
            read: vec!["dev[".into()],
            write: vec![],
        };
        let err = AccessPolicy::for_role(Some(&spec), "dev", "r").unwrap_err();
        assert!(matches!(err, MemoryError::InvalidGlob { ref glob, .. } if glob == "dev["));
    }

    #[test]
    fn default_rules_treat_names_literally() {
        let policy = AccessPolicy::for_role(None, "team[1]", "a*").unwrap();
        assert!(policy.can_write("team[1]"));
        assert!(!policy.can_write("team1"));
        assert!(policy.can_write("agent/a*"));
        assert!(!policy.can_write("agent/ab"));
    }
}
