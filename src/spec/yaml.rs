//! Reading definition files into a generic YAML tree where every node knows its line and column.
//!
//! Swarm and role files are first read into this tree rather than straight into typed structs, so
//! that the validation pass can report every problem of a file at once (a typed deserializer stops
//! at the first), point at the exact key or value, and suggest the key the user meant.
//!
//! Hostile input is bounded here: the size is checked before reading, invalid UTF-8 and tab
//! indentation get their own messages, and the parser's budget caps nesting depth, alias
//! expansion and event counts so that no file can hang the process or overflow the stack.

use super::{Diagnostic, Severity};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Definition files larger than this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Deeper nesting than this is refused; real definitions need fewer than ten levels.
const MAX_DEPTH: usize = 64;

/// A YAML value with the position (1-based) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// In file order; duplicate keys are kept so that validation can report them.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What kind of value this is, in the words an error message uses.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

fn whole_file_error(file: &Path, message: String, help: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message,
        help: Some(help.to_owned()),
    }
}

/// Reads a definition file as UTF-8 text, refusing files that are too large or not text.
pub(crate) fn read_text(file: &Path) -> Result<String, Diagnostic> {
    let open_error = |e: std::io::Error| {
        whole_file_error(
            file,
            format!("cannot read the file: {e}"),
            "check the path and that the file is readable",
        )
    };
    // Opening a FIFO for reading waits for a writer: refuse anything but a regular file before
    // opening it, and open without blocking in case it was swapped in between.
    let not_regular = |meta: &std::fs::Metadata| {
        let what = if meta.is_dir() {
            "a directory"
        } else if meta.file_type().is_fifo() {
            "a named pipe (FIFO)"
        } else if meta.file_type().is_socket() {
            "a socket"
        } else {
            "a device or other special file"
        };
        whole_file_error(
            file,
            format!("this is {what}, not a regular definition file"),
            "name a .yaml swarm file or a .md role file",
        )
    };
    let meta = std::fs::metadata(file).map_err(open_error)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .map_err(open_error)?;
    let meta = f.metadata().map_err(open_error)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let too_large = || {
        whole_file_error(
            file,
            format!("the file is larger than {MAX_FILE_BYTES} bytes"),
            "a swarm or role definition is a few kilobytes; check that this is the right file",
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    // The size can change between the check and the read (or the file is a device): read at
    // most one byte more than allowed.
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(open_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let (line, column) = position_of(&bytes[..valid]);
            Err(Diagnostic {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line,
                column,
                message: "the file is not valid UTF-8 text".into(),
                help: Some("save the file as UTF-8; definition files are text".into()),
            })
        }
    }
}

/// The 1-based line and column just after `prefix`.
fn position_of(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&prefix[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Parses one YAML document. `first_line` is the line of the file the text starts on (role
/// frontmatter starts after the `---` line), so positions point into the file.
pub(crate) fn parse(text: &str, file: &Path, first_line: usize) -> Result<Node, Diagnostic> {
    let at = |line: usize, column: usize, message: String, help: &str| Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: line + first_line - 1,
        column,
        message,
        help: Some(help.to_owned()),
    };
    if text.contains('\0') {
        let offset = text.find('\0').unwrap_or(0);
        let (line, column) = position_of(&text.as_bytes()[..offset]);
        return Err(at(
            line,
            column,
            "the file contains NUL bytes: it is binary, not YAML text".into(),
            "check that this is the right file",
        ));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 100_000,
            max_documents: 1,
        },
        alias_limits: alias_limits(),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // YAML 1.2: `y`, `yes`, `on` are text, so `description: y` stays a string.
        strict_booleans: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Node>(text, options) {
        Ok(node) => Ok(node),
        Err(e) => {
            // YAML forbids tabs in indentation; the parser's own message for them is obscure.
            if let Some((line, column)) = first_tab_indent(text) {
                return Err(at(
                    line,
                    column,
                    "a tab is used for indentation".into(),
                    "YAML indents with spaces only: replace the tab with spaces",
                ));
            }
            let (line, column) = e
                .location()
                .map_or((1, 0), |l| (l.line() as usize, l.column() as usize));
            let message = first_line_of(&e.to_string());
            let (message, help) = if message.contains("Documents") {
                (
                    "the file holds more than one YAML document".to_owned(),
                    "a definition is one document: remove the `---` separator lines",
                )
            } else if ["budget breached", "limit exceeded", "recursion limit"]
                .iter()
                .any(|m| message.contains(m))
            {
                (
                    format!("the file exceeds the limits for definition files: {message}"),
                    "definitions need no deep nesting or mass alias expansion: simplify the file (at most 64 levels)",
                )
            } else {
                (
                    format!("not valid YAML: {message}"),
                    "fix the YAML syntax at this position (indentation, quotes, a missing `:`)",
                )
            };
            Err(at(line.max(1), column, message, help))
        }
    }
}

fn first_tab_indent(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        line[..indent].find('\t').map(|c| (i + 1, c + 1))
    })
}

fn alias_limits() -> serde_saphyr::options::AliasLimits {
    let mut limits = serde_saphyr::options::AliasLimits::default();
    limits.max_total_replayed_events = 20_000;
    limits.max_replay_stack_depth = 16;
    limits.max_alias_expansions_per_anchor = 100;
    limits
}

/// The parser's messages can carry a rendered snippet; the diagnostic has its own position.
/// Its "at line N, column M" counts from the start of the parsed text, which for role
/// frontmatter is not the file's first line, so it is cut off.
fn first_line_of(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let line = line.find(" at line ").map_or(line, |i| &line[..i]);
    line.trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        match parse(text, Path::new("t.yaml"), 1) {
            Ok(n) => n,
            Err(d) => panic!("{d}"),
        }
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = parse_ok("name: x\nagents:\n  - role: tester\n");
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!((entries[1].0.line, entries[1].0.column), (2, 1));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        let Value::Map(inner) = &items[0].value else {
            panic!("not a map")
        };
        assert_eq!((inner[0].1.line, inner[0].1.column), (3, 11));
    }

    #[test]
    fn keeps_duplicate_keys() {
        let node = parse_ok("a: 1\na: 2\n");
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn offsets_lines_by_first_line() {
        let err = parse("a: [1, 2\n", Path::new("r.md"), 2).unwrap_err();
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn position_counts_characters() {
        assert_eq!(position_of(b"ab\ncd"), (2, 3));
        assert_eq!(position_of(b""), (1, 1));
    }
}
