//! Swarm and role definitions: YAML swarm files and Markdown role files are parsed into raw
//! structs, then validated in one pass into a [`SwarmPlan`] the runtime can trust.
//!
//! Every problem found is a [`Diagnostic`] naming the file, line and column and saying how to fix
//! it; all problems of a file are reported together.
//!
//! - [`load_swarm`]: a swarm file, with every role it names resolved through a [`RoleCatalog`];
//! - [`load_swarm_or_builtin`]: a swarm file, or the name of a swarm built into the binary;
//! - [`load_role_file`]: one role file (Markdown with YAML frontmatter);
//! - [`validate_path`]: either, by extension, for `swarm validate`;
//! - [`builtin_swarms`] / [`builtin_roles`]: the definitions built into the binary.

pub mod duration;

mod catalog;
mod check;
mod mcp;
mod plan;
mod role;
mod swarm;
mod yaml;

pub use catalog::{
    builtin_roles, builtin_swarm, builtin_swarms, swarm_name_of, ListedRole, RoleCatalog,
    RoleOrigin,
};
pub use check::did_you_mean;
pub use mcp::is_server_name;
pub use plan::*;
pub use role::{claude_code_tool, load_role_file, summarize_warnings};
pub use swarm::{load_builtin_swarm, load_swarm, load_swarm_or_builtin, source_hash};
pub use yaml::MAX_FILE_BYTES;

use std::fmt;
use std::path::{Path, PathBuf};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a definition file, with its location and a hint on how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // A problem of the whole file has no position: `file: error: ...`, never `file:0:0`.
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: ", self.file.display())?,
            (line, 0) => write!(f, "{}:{line}: ", self.file.display())?,
            (line, column) => write!(f, "{}:{line}:{column}: ", self.file.display())?,
        }
        write!(f, "{kind}: {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// All the errors found in one or more definition files.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SpecError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A successfully loaded definition and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub value: T,
    pub warnings: Vec<Diagnostic>,
}

/// Checks a swarm file (`.yaml`, `.yml`) or a role file (`.md`) and returns its warnings.
pub fn validate_path(path: &Path, opts: &LoadOptions) -> Result<Vec<Diagnostic>, SpecError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => load_swarm(path, opts).map(|l| l.warnings),
        Some("md") => load_role_file(path).map(|l| l.warnings),
        _ => Err(SpecError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: "not a definition file: the name must end in .yaml or .yml (swarm) or .md (role)"
                    .into(),
                help: Some("rename the file, or name the right one".into()),
            }],
        }),
    }
}
