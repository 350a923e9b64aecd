//! Where roles come from: the role search order and the definitions built into the binary.
//!
//! A role named `NAME` is the file `NAME.md`, or the file whose frontmatter says `name: NAME`, in
//! the first of: `--roles-dir`, the `agents/` folder beside the swarm file, `./agents`,
//! `./.claude/agents` (Claude Code's project agents), and finally the repository's `agents/`
//! embedded in the binary, so a swarm file works from any folder and a local file overrides a
//! built-in role. Folders are searched with their subfolders, as Claude Code does.

use super::check::did_you_mean;
use super::role::{is_role_id, load_role_file, parse_role};
use super::{Diagnostic, LoadOptions, Loaded, Role, Severity, SpecError};
use std::collections::{BTreeMap, BTreeSet};
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

/// Where a listed role came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleOrigin {
    /// A file in one of the search folders; `replaces_builtin` when a built-in has the same name.
    File {
        path: PathBuf,
        replaces_builtin: bool,
    },
    Builtin,
}

impl std::fmt::Display for RoleOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleOrigin::File {
                path,
                replaces_builtin: false,
            } => write!(f, "{}", path.display()),
            RoleOrigin::File {
                path,
                replaces_builtin: true,
            } => write!(f, "{} (replaces the built-in)", path.display()),
            RoleOrigin::Builtin => f.write_str("built-in"),
        }
    }
}

/// A role found by [`RoleCatalog::scan`], with where it came from.
#[derive(Debug, Clone)]
pub struct ListedRole {
    pub role: Role,
    pub origin: RoleOrigin,
    pub warnings: Vec<Diagnostic>,
}

/// Role files nest in folders (`.claude/agents/core/coder.md`); deeper trees are not role folders.
const MAX_DEPTH: usize = 4;

impl RoleCatalog {
    /// The search path for a swarm file in `swarm_dir` (or none, for `swarm roles`).
    pub fn new(opts: &LoadOptions, swarm_dir: Option<&Path>) -> Self {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let candidates = opts
            .roles_dir
            .clone()
            .into_iter()
            .chain(swarm_dir.map(|d| d.join("agents")))
            .chain(std::iter::once(PathBuf::from("agents")))
            // Claude Code's project agents, so a project's sub-agents are roles as they are.
            .chain(std::iter::once(PathBuf::from(".claude").join("agents")));
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

    /// Loads the role called `name`, or `None` when no folder and no built-in has it. In each
    /// folder, in order, a file `NAME.md` is taken first, then a file whose frontmatter says
    /// `name: NAME`. The role is named as it was asked for, since that is how the swarm knows it.
    pub(crate) fn lookup(&self, name: &str) -> Option<Result<Loaded<Role>, SpecError>> {
        if !is_role_id(name) {
            return None;
        }
        for dir in &self.dirs {
            let files = role_files(dir);
            let by_stem = files.iter().find(|p| stem(p) == Some(name));
            let found = by_stem.or_else(|| {
                files
                    .iter()
                    .find(|p| declared_name(p).as_deref() == Some(name))
            });
            if let Some(path) = found {
                return Some(load_role_file(path).map(|mut loaded| {
                    loaded.value.name = name.to_owned();
                    loaded
                }));
            }
        }
        let file_name = format!("{name}.md");
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

    /// Every role name the catalog can find (file names and frontmatter names), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for dir in &self.dirs {
            for path in role_files(dir) {
                if let Some(stem) = stem(&path) {
                    names.insert(stem.to_owned());
                }
                if let Some(declared) = declared_name(&path).filter(|n| is_role_id(n)) {
                    names.insert(declared);
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
        self.scan().0.into_iter().map(|l| l.role).collect()
    }

    /// Every role with where it came from, each file once under the name swarm files can use
    /// (its frontmatter `name`, else its file name; the first in search order wins), sorted by
    /// name, and the errors of role files that could not be loaded.
    pub fn scan(&self) -> (Vec<ListedRole>, Vec<Diagnostic>) {
        let mut found: BTreeMap<String, ListedRole> = BTreeMap::new();
        let mut problems = Vec::new();
        for dir in &self.dirs {
            for path in role_files(dir) {
                match load_role_file(&path) {
                    Ok(loaded) => {
                        let name = loaded.value.name.clone();
                        found.entry(name).or_insert(ListedRole {
                            role: loaded.value,
                            origin: RoleOrigin::File {
                                path,
                                replaces_builtin: false,
                            },
                            warnings: loaded.warnings,
                        });
                    }
                    Err(e) => problems.extend(e.diagnostics),
                }
            }
        }
        for (file, text) in builtin_roles() {
            let name = file.trim_end_matches(".md");
            if let Some(listed) = found.get_mut(name) {
                if let RoleOrigin::File {
                    replaces_builtin, ..
                } = &mut listed.origin
                {
                    *replaces_builtin = true;
                }
                continue;
            }
            match parse_role(
                text,
                &builtin_path(file),
                format!("builtin:{name}"),
                Some(name),
            ) {
                Ok(loaded) => {
                    found.insert(
                        name.to_owned(),
                        ListedRole {
                            role: loaded.value,
                            origin: RoleOrigin::Builtin,
                            warnings: loaded.warnings,
                        },
                    );
                }
                Err(e) => problems.extend(e.diagnostics),
            }
        }
        (found.into_values().collect(), problems)
    }
}

fn builtin_path(file_name: &str) -> PathBuf {
    PathBuf::from(format!("builtin:agents/{file_name}"))
}

fn stem(path: &Path) -> Option<&str> {
    path.file_stem().and_then(|s| s.to_str())
}

/// The `name:` of a role file's frontmatter, read without parsing the whole file: it decides only
/// which file to load, and the load then checks everything.
fn declared_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.strip_prefix('\u{feff}').unwrap_or(&text).lines();
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    lines
        .take_while(|l| l.trim_end() != "---")
        .find_map(|l| l.strip_prefix("name:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|v| !v.is_empty())
}

/// The role files of a folder and its subfolders (not hidden ones), sorted by path.
fn role_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_role_files(dir, 0, &mut files);
    files.sort();
    files
}

fn collect_role_files(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Some(file_name) = path.file_name().and_then(|s| s.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth + 1 < MAX_DEPTH {
                collect_role_files(&path, depth + 1, files);
            }
        } else if path.extension().is_some_and(|e| e == "md")
            && path.is_file()
            && stem(&path).is_some_and(is_role_id)
            && !file_name.eq_ignore_ascii_case("README.md")
        {
            files.push(path);
        }
    }
}
