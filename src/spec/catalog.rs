//! Where roles come from: the role search order and the definitions built into the binary.
//!
//! A role named `NAME` is the file `NAME.md` in the first of: `--roles-dir`, the `agents/` folder
//! beside the swarm file, `./agents`, and finally the repository's `agents/` embedded in the
//! binary, so a swarm file works from any folder and a local file overrides a built-in role.

use super::check::did_you_mean;
use super::role::{load_role_file, parse_role};
use super::{Diagnostic, LoadOptions, Loaded, Role, Severity, SpecError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// The predefined swarm files built into the binary: (file name, text).
pub fn builtin_swarms() -> impl Iterator<Item = (&'static str, &'static str)> {
    embedded::BUILTIN_SWARMS.iter().copied()
}

/// The predefined swarm called `name` (its file name without `.yaml`): (file name, text).
pub fn builtin_swarm(name: &str) -> Option<(&'static str, &'static str)> {
    builtin_swarms().find(|(file, _)| swarm_name_of(file) == name)
}

/// A built-in swarm's name: its file name without the extension.
pub fn swarm_name_of(file: &str) -> &str {
    file.trim_end_matches(".yaml").trim_end_matches(".yml")
}

/// Where diagnostics of a built-in swarm point.
pub(crate) fn builtin_swarm_path(file_name: &str) -> PathBuf {
    PathBuf::from(format!("builtin:swarms/{file_name}"))
}

/// The role files built into the binary: (file name, text).
pub fn builtin_roles() -> impl Iterator<Item = (&'static str, &'static str)> {
    embedded::BUILTIN_ROLES.iter().copied()
}

/// The role search path.
#[derive(Debug, Clone)]
pub struct RoleCatalog {
    dirs: Vec<PathBuf>,
}

/// Role names double as file names: anything else cannot name a role and must not reach a path.
fn is_role_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl RoleCatalog {
    /// The search path for a swarm file in `swarm_dir` (or none, for `swarm roles`).
    pub fn new(opts: &LoadOptions, swarm_dir: Option<&Path>) -> Self {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let candidates = opts
            .roles_dir
            .clone()
            .into_iter()
            .chain(swarm_dir.map(|d| d.join("agents")))
            .chain(std::iter::once(PathBuf::from("agents")));
        for dir in candidates {
            let same = |d: &PathBuf| match (d.canonicalize(), dir.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => *d == dir,
            };
            if !dirs.iter().any(same) {
                dirs.push(dir);
            }
        }
        Self { dirs }
    }

    /// The folders searched before the built-in roles, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Loads the role called `name`, or `None` when no folder and no built-in has it.
    pub(crate) fn lookup(&self, name: &str) -> Option<Result<Loaded<Role>, SpecError>> {
        if !is_role_name(name) {
            return None;
        }
        let file_name = format!("{name}.md");
        for dir in &self.dirs {
            let path = dir.join(&file_name);
            if path.is_file() {
                return Some(load_role_file(&path));
            }
        }
        builtin_roles()
            .find(|(f, _)| *f == file_name)
            .map(|(f, text)| {
                parse_role(
                    text,
                    &builtin_path(f),
                    format!("builtin:{name}"),
                    Some(name),
                )
            })
    }

    /// Loads the role called `name`; an unknown name is an error suggesting the closest known one.
    pub fn find(&self, name: &str) -> Result<Loaded<Role>, SpecError> {
        self.lookup(name).unwrap_or_else(|| {
            let names = self.names();
            let help = match did_you_mean(name, names.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? (`swarm roles list` shows every role)"),
                None => "`swarm roles list` shows every role; add a role file NAME.md to an agents/ folder"
                    .to_owned(),
            };
            Err(SpecError {
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    file: self.dirs.first().cloned().unwrap_or_else(|| PathBuf::from("agents")),
                    line: 0,
                    column: 0,
                    message: format!("unknown role `{name}`"),
                    help: Some(help),
                }],
            })
        })
    }

    /// Every role name the catalog can find, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for dir in &self.dirs {
            for path in role_files(dir) {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.insert(stem.to_owned());
                }
            }
        }
        for (file, _) in builtin_roles() {
            names.insert(file.trim_end_matches(".md").to_owned());
        }
        names.into_iter().collect()
    }

    /// Every role, each name once (the first in search order wins), sorted by name.
    pub fn list(&self) -> Vec<Role> {
        self.scan().0
    }

    /// [`RoleCatalog::list`] and the errors of role files that could not be loaded.
    pub fn scan(&self) -> (Vec<Role>, Vec<Diagnostic>) {
        let mut roles = Vec::new();
        let mut problems = Vec::new();
        for name in self.names() {
            match self.lookup(&name) {
                Some(Ok(loaded)) => roles.push(loaded.value),
                Some(Err(e)) => problems.extend(e.diagnostics),
                None => {}
            }
        }
        (roles, problems)
    }
}

fn builtin_path(file_name: &str) -> PathBuf {
    PathBuf::from(format!("builtin:agents/{file_name}"))
}

fn role_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(is_role_name)
        })
        .collect();
    files.sort();
    files
}
