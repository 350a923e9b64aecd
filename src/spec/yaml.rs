//! Reading definition files into a generic YAML tree where every node knows its line and column.
//!
//! Swarm and role files are first read into this tree rather than straight into typed structs, so
//! that the validation pass can report every problem of a file at once (a typed deserializer stops
//! at the first), point at the exact key or value, and suggest the key the user meant.
//!
//! Hostile input is bounded here: the size is checked before reading, invalid UTF-8 and tab
//! indentation get their own messages, and the parser's budget caps nesting depth, alias
//! expansion and event counts so that no file can hang the process or overflow the stack.

mod plain;

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
    // Most files are plain block YAML, read directly; the rest, and every error, take the full
    // parser.
    let limits = plain::Limits {
        max_depth: MAX_DEPTH,
        max_nodes: MAX_NODES,
        max_events: MAX_EVENTS,
    };
    if let Some(node) = plain::parse(text, &limits) {
        return Ok(node);
    }
    parse_full(text).map_err(|e| {
        // YAML forbids tabs in indentation; the parser's own message for them is obscure.
        if let Some((line, column)) = first_tab_indent(text) {
            return at(
                line,
                column,
                "a tab is used for indentation".into(),
                "YAML indents with spaces only: replace the tab with spaces",
            );
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
        at(line.max(1), column, message, help)
    })
}

/// Parser events and nodes a definition file may hold.
const MAX_EVENTS: usize = 200_000;
const MAX_NODES: usize = 100_000;

/// The full YAML parser (through serde), with the budget that bounds hostile input.
fn parse_full(text: &str) -> Result<Node, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_events: MAX_EVENTS,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: MAX_NODES,
            max_documents: 1,
        },
        alias_limits: alias_limits(),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // YAML 1.2: `y`, `yes`, `on` are text, so `description: y` stays a string.
        strict_booleans: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Node>(text, options)
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

    /// The direct reader either declines or builds the full parser's tree, positions included.
    fn same_as_full(text: &str) -> bool {
        let limits = plain::Limits {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: MAX_EVENTS,
        };
        let Some(fast) = plain::parse(text, &limits) else {
            return false;
        };
        match parse_full(text) {
            Ok(full) => assert_eq!(fast, full, "different trees for:\n{text}"),
            Err(e) => panic!("the full parser refuses what the direct reader read: {e}\n{text}"),
        }
        true
    }

    /// The YAML of a definition file: a role file's frontmatter, a swarm file whole.
    fn yaml_of(path: &Path, text: &str) -> Option<String> {
        if path.extension().is_some_and(|e| e == "md") {
            let body = text.strip_prefix("---\n")?;
            let end = body.find("\n---")?;
            Some(body[..=end].to_owned())
        } else {
            Some(text.to_owned())
        }
    }

    fn definition_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                definition_files(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "md")
            {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_direct_reader_builds_the_full_parsers_tree_for_every_definition_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["tests/fixtures", "swarms", "agents"] {
            definition_files(&root.join(dir), &mut files);
        }
        let mut read = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            if let Some(yaml) = yaml_of(file, &text) {
                if same_as_full(&yaml) {
                    read += 1;
                }
            }
        }
        // Most real files are in the subset (so the fast path is what runs).
        assert!(read * 2 > files.len(), "{read} of {}", files.len());
    }

    #[test]
    fn the_direct_reader_agrees_on_scalars_and_layouts() {
        let read = [
            "name: x\nagents:\n  - role: tester\n    count: 3\n",
            "a:\n- 1\n- -2\n- b\nc: d\n",
            "a: [x, \"y z\", 'q''s', 7]\nb: []\nc: {}\n",
            "# head\na: 1 # one\nb: \"t\\\"x\\n\" # two\n\n  # indented comment\nc: http://h:1/v1\n",
            "- a\n- b: 1\n  c:\n    - d\n- e: f\n",
            "k: C# and c++, {braces} [brackets] ok\n",
            "k: ./workspace\nl: ../up\nm: /abs\nn: _x\n",
            "a: é\nb: [é, ü]\nc: \"ünï\"\n",
            "a:\n  b:\n    c: 1\n  d: 2\n",
            "tasks:\n  -   id: t1\n      role: w\n",
            "a: 'x' # c\n",
            "a: 0\nb: -0\nc: 9223372036854775807\nd: -9223372036854775808\n",
            "x: y\n   \n",
            "llm:\n  stream: true\n  base_url: http://127.0.0.1:1/v1\nmemory:\n  ttl: none\ntasks:\n  - id: t00000\n    role: worker\n    description: \"Store one note, then report (item 0).\"\n",
            "a: tRue\n",
            "a: 500 independent tasks\nb: [2 turns, 3]\n",
            "a: true\nb: False\nc: TRUE\nd: null\ne: ~\nf: [true, ~, Null]\ng: yes\nh: on\n",
            "-\n  a: 1\n-\n  - b\n",
            "a:\n  -\n    - 1\n",
            "a:\n-\n  b: 1\nc:\n-\n  - d\n",
            "a:\n-   x\n- y\nb:\n-   k: v\n",
        ];
        for text in read {
            assert!(same_as_full(text), "declined:\n{text}");
        }
        let declined = [
            "a:\n",
            "a: 1.5\n",
            "a: 1_000\n",
            "a: 12:30\n",
            "a: 012\n",
            "a: 0x1f\n",
            "a: inf\n",
            "a: NaN\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |\n  text\n",
            "a: >\n  text\n",
            "a: two\n  lines\n",
            "a: \"open\n  quote\"\n",
            "---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: b: c\n",
            "\"a\": 1\n",
            "a: [x,]\n",
            "a: [b: c]\n",
            "a: {b: c}\n",
            "<<: {}\n",
            "a:\tb\n",
            "a: 1\r\n",
            "? a\n: b\n",
            "a: -x\n",
            "a: 9223372036854775808\n",
            "- - a\n",
            "a: 1\n b: 2\n",
            "a: x\n- b\n",
            "plain\n",
            "",
            "# only\n",
            "a: ${X}\n",
            "True: 1\n",
            "a: \"\\x41\"\n",
            "a: [1, [2]]\n",
            "é: 1\n",
            "a: 'unclosed\n",
        ];
        for text in declined {
            assert!(
                !same_as_full(text),
                "read, but should be left to the full parser:\n{text}"
            );
        }
    }

    #[test]
    fn the_direct_reader_leaves_files_near_the_budget_to_the_full_parser() {
        let limits = plain::Limits {
            max_depth: 4,
            max_nodes: 100,
            max_events: 200,
        };
        assert!(plain::parse("a:\n  b:\n    c:\n      d: 1\n", &limits).is_none());
        let many: String = (0..60).map(|i| format!("k{i}: v\n")).collect();
        assert!(plain::parse(&many, &limits).is_none());
    }

    #[test]
    fn position_counts_characters() {
        assert_eq!(position_of(b"ab\ncd"), (2, 3));
        assert_eq!(position_of(b""), (1, 1));
    }
}
