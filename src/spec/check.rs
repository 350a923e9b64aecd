//! The validation toolkit shared by swarm and role files: typed reads of YAML nodes that record a
//! located diagnostic instead of stopping, so one pass reports every problem of a file.

use super::yaml::{Node, Value};
use super::{duration, Diagnostic, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The closest of `candidates` to `word`, when one is close enough to be what was meant.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&word_lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or a list of what is allowed.
pub fn suggestion(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

/// The keys of one mapping, by name, and where the mapping starts.
pub struct Fields<'a> {
    pub at: &'a Node,
    entries: BTreeMap<&'a str, &'a Node>,
    /// Known keys that an unknown key was reported as a likely misspelling of.
    misspelled: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.get(key).copied()
    }
}

/// Collects the diagnostics of one file.
pub struct Checker {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
    /// Added to every line: role frontmatter starts below the file's first line.
    line_offset: usize,
}

impl Checker {
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            diagnostics: Vec::new(),
            line_offset: 0,
        }
    }

    pub fn with_line_offset(file: &Path, line_offset: usize) -> Self {
        Self {
            line_offset,
            ..Self::new(file)
        }
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    fn push(&mut self, severity: Severity, at: &Node, message: String, help: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: at.line + self.line_offset,
            column: at.column,
            message,
            help: Some(help),
        });
    }

    pub fn error(&mut self, at: &Node, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, at, message.into(), help.into());
    }

    pub fn warning(&mut self, at: &Node, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Warning, at, message.into(), help.into());
    }

    /// The entries of a mapping. Keys not in `known` are errors (warnings when `lenient`) with a
    /// did-you-mean; duplicate and non-string keys are errors.
    pub fn fields<'a>(
        &mut self,
        node: &'a Node,
        what: &str,
        known: &[&'static str],
        lenient: bool,
    ) -> Option<Fields<'a>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node,
                format!(
                    "{what} must be a mapping of `key: value` lines, found {}",
                    node.value.kind()
                ),
                format!(
                    "write {what} as `key: value` lines; known keys: {}",
                    known.join(", ")
                ),
            );
            return None;
        };
        let mut entries = BTreeMap::new();
        let mut misspelled = Vec::new();
        for (key, value) in pairs {
            let Value::Str(name) = &key.value else {
                self.error(
                    key,
                    format!("a key in {what} is {}, not a name", key.value.kind()),
                    format!("known keys: {}", known.join(", ")),
                );
                continue;
            };
            if entries.contains_key(name.as_str()) {
                self.error(
                    key,
                    format!("`{name}` appears twice in {what}"),
                    "keep one of them: a later value would silently replace the earlier",
                );
                continue;
            }
            if !known.contains(&name.as_str()) {
                misspelled.extend(did_you_mean(name, known.iter().copied()));
                let message = format!("unknown key `{name}` in {what}");
                let help = suggestion(name, known);
                if lenient {
                    self.warning(key, format!("{message}; it is ignored"), help);
                } else {
                    self.error(key, message, help);
                }
                continue;
            }
            entries.insert(name.as_str(), value);
        }
        Some(Fields {
            at: node,
            entries,
            misspelled,
        })
    }

    /// A required key that is missing, reported at the start of its mapping; not reported again
    /// when a misspelling of it was.
    pub fn missing(&mut self, fields: &Fields<'_>, key: &str, what: &str, help: &str) {
        if fields.misspelled.contains(&key) {
            return;
        }
        self.error(fields.at, format!("{what} has no `{key}`"), help);
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => {
                self.error(node, format!("{what} is empty"), format!("write {what}"));
                None
            }
            Value::Str(s) => Some(s.clone()),
            other => {
                self.error(
                    node,
                    format!("{what} must be a string, found {}", other.kind()),
                    "quote the value if it is meant as text",
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    node,
                    format!("{what} must be true or false, found {}", other.kind()),
                    "write true or false",
                );
                None
            }
        }
    }

    /// An integer of at least `min`.
    pub fn integer(&mut self, node: &Node, what: &str, min: i64) -> Option<u64> {
        match &node.value {
            Value::Int(n) if *n >= min => u64::try_from(*n).ok(),
            Value::Int(n) => {
                self.error(
                    node,
                    format!("{what} is {n}, it must be at least {min}"),
                    format!("write a whole number of at least {min}"),
                );
                None
            }
            other => {
                self.error(
                    node,
                    format!("{what} must be a whole number, found {}", other.kind()),
                    format!("write a whole number of at least {min}"),
                );
                None
            }
        }
    }

    /// [`Checker::integer`] for settings stored as `u32`.
    pub fn integer_u32(&mut self, node: &Node, what: &str, min: i64) -> Option<u32> {
        let n = self.integer(node, what, min)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    node,
                    format!("{what} is too large"),
                    format!("write a number up to {}", u32::MAX),
                );
                None
            }
        }
    }

    /// Any number, integer or not.
    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match &node.value {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) if x.is_finite() => Some(*x),
            other => {
                self.error(
                    node,
                    format!("{what} must be a number, found {}", other.kind()),
                    "write a number such as 0.5 or 5",
                );
                None
            }
        }
    }

    /// A duration such as `30s`; with `allow_none`, the string `none` is `Ok(None)`.
    pub fn duration(
        &mut self,
        node: &Node,
        what: &str,
        allow_none: bool,
    ) -> Option<Option<Duration>> {
        let text = match &node.value {
            Value::Str(s) => s.as_str(),
            Value::Null if allow_none => return Some(None),
            other => {
                self.error(
                    node,
                    format!("{what} must be a duration, found {}", other.kind()),
                    "write a duration with its unit: 500ms, 30s, 5m, 2h or 1d",
                );
                return None;
            }
        };
        if allow_none && text == "none" {
            return Some(None);
        }
        match duration::parse(text) {
            Ok(d) if d.is_zero() => {
                self.error(
                    node,
                    format!("{what} is zero"),
                    if allow_none {
                        "write a positive duration, or `none` for no limit"
                    } else {
                        "write a positive duration such as 30s"
                    },
                );
                None
            }
            Ok(d) => Some(Some(d)),
            Err(message) => {
                let help = if allow_none {
                    "write a duration (500ms, 30s, 5m, 2h, 1d) or `none`"
                } else {
                    "write a duration: 500ms, 30s, 5m, 2h or 1d"
                };
                self.error(node, format!("{what}: {message}"), help);
                None
            }
        }
    }

    /// A required duration.
    pub fn positive_duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        self.duration(node, what, false).flatten()
    }

    /// A list of strings, each with its node.
    pub fn string_list<'a>(&mut self, node: &'a Node, what: &str) -> Vec<(String, &'a Node)> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node,
                format!("{what} must be a list, found {}", node.value.kind()),
                "write a list such as [a, b]",
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                self.string(item, &format!("an entry of {what}"))
                    .map(|s| (s, item))
            })
            .collect()
    }
}
