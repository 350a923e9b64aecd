//! A direct reader for the plain block YAML that definition files are nearly always written in:
//! block mappings and sequences, one-line plain, single- and double-quoted scalars, one-line flow
//! lists, empty `{}`, comments.
//!
//! It builds exactly the tree the full parser (`super::parse`, through serde) builds, or declines
//! with `None` at the first thing outside that subset (anchors, tags, block or multi-line
//! scalars, explicit documents, tabs, anything unusual or invalid), and the full parser then
//! reads the file and reports its errors. The full path costs about 60 K instructions per task
//! of a generated swarm file; this one a small fraction of it.

use super::{Node, Value};

/// The full parser's budget, so that a file near it is left to the full parser to refuse.
pub(super) struct Limits {
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_events: usize,
}

/// The tree of `text`, or `None` when `text` is not in the plain subset.
pub(super) fn parse(text: &str, limits: &Limits) -> Option<Node> {
    if text.starts_with('\u{feff}') || text.contains(['\t', '\r']) {
        return None;
    }
    let mut lines = Vec::new();
    let mut comments = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let content = raw.trim_start_matches(' ');
        if content.trim_end_matches(' ').is_empty() {
            continue;
        }
        if content.starts_with('#') {
            comments += 1;
            continue;
        }
        let indent = raw.len() - content.len();
        if indent == 0 && ["---", "...", "%"].iter().any(|m| raw.starts_with(m)) {
            return None;
        }
        if raw.contains('#') {
            comments += 1;
        }
        lines.push(Line {
            no: i + 1,
            indent,
            text: raw.trim_end_matches(' '),
            ascii: raw.is_ascii(),
        });
    }
    let first = lines.first()?;
    let mut reader = Reader {
        lines: &lines,
        at: 0,
        nodes: 0,
        containers: 0,
        depth: 0,
        max_depth: limits.max_depth.saturating_sub(2),
    };
    let root = reader.block(first.indent, false)?;
    if reader.at != lines.len() {
        return None;
    }
    // The full parser counts stream and document events, and comments, as events.
    let events = reader.nodes + reader.containers + comments + 4;
    (reader.nodes + 8 <= limits.max_nodes && events + 16 <= limits.max_events).then_some(root)
}

struct Line<'a> {
    /// 1-based.
    no: usize,
    indent: usize,
    /// Without trailing spaces.
    text: &'a str,
    ascii: bool,
}

impl Line<'_> {
    /// The 1-based column (in characters) of byte offset `at`.
    fn column(&self, at: usize) -> usize {
        if self.ascii {
            at + 1
        } else {
            self.text[..at].chars().count() + 1
        }
    }

    /// Whether a block sequence item (`-` then a space or the line's end) starts at `at`.
    fn is_item(&self, at: usize) -> bool {
        let rest = &self.text.as_bytes()[at.min(self.text.len())..];
        rest.first() == Some(&b'-') && rest.get(1).is_none_or(|&b| b == b' ')
    }
}

struct Reader<'l, 'a> {
    lines: &'l [Line<'a>],
    /// The line being read.
    at: usize,
    nodes: usize,
    containers: usize,
    depth: usize,
    max_depth: usize,
}

impl Reader<'_, '_> {
    /// The block collection whose first line is the current one, starting at `indent`
    /// (`indentless`: see [`Self::sequence`]).
    fn block(&mut self, indent: usize, indentless: bool) -> Option<Node> {
        if self.lines[self.at].is_item(indent) {
            self.sequence(indent, indentless)
        } else {
            self.mapping(indent)
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.nodes += 1;
        self.containers += 1;
        (self.depth <= self.max_depth).then_some(())
    }

    /// A nested block value on the lines after the current one: more indented than `indent`,
    /// or (`same_indent_list`) a list at the same indentation, as a mapping value may be.
    fn nested(&mut self, indent: usize, same_indent_list: bool) -> Option<Node> {
        self.at += 1;
        let next = self.lines.get(self.at)?;
        if next.indent > indent {
            self.block(next.indent, false)
        } else if same_indent_list && next.indent == indent && next.is_item(indent) {
            self.block(indent, true)
        } else {
            // An empty value (null): its position is the full parser's business.
            None
        }
    }

    /// A block mapping whose first key starts at byte `indent` of the current line (later keys
    /// start lines indented by `indent`).
    fn mapping(&mut self, indent: usize) -> Option<Node> {
        self.enter()?;
        let line = &self.lines[self.at];
        let (no, column) = (line.no, line.column(indent));
        let mut entries = Vec::new();
        loop {
            let line = &self.lines[self.at];
            let (key, after) = key_of(&line.text[indent..])?;
            self.nodes += 1;
            let key = Node {
                value: Value::Str(key.to_owned()),
                line: line.no,
                column: line.column(indent),
            };
            let rest = after.trim_start_matches(' ');
            let value = if rest.is_empty() || (rest.starts_with('#') && rest.len() < after.len()) {
                self.nested(indent, true)?
            } else {
                let value = self.inline(line, line.text.len() - rest.len())?;
                self.at += 1;
                value
            };
            entries.push((key, value));
            match self.lines.get(self.at) {
                Some(next) if next.indent == indent && !next.is_item(indent) => {}
                Some(next) if next.indent > indent => return None,
                Some(next) if next.indent == indent => return None,
                _ => break,
            }
        }
        self.depth -= 1;
        Some(Node {
            value: Value::Map(entries),
            line: no,
            column,
        })
    }

    /// A block sequence whose `-` lines start at `indent`; `indentless` when it is a mapping
    /// value as indented as its key.
    fn sequence(&mut self, indent: usize, indentless: bool) -> Option<Node> {
        self.enter()?;
        let line = &self.lines[self.at];
        let (no, column) = (line.no, line.column(indent));
        let mut items: Vec<Node> = Vec::new();
        let mut first_at = None;
        loop {
            let line = &self.lines[self.at];
            let after = &line.text[indent + 1..];
            let rest = after.trim_start_matches(' ');
            let at = line.text.len() - rest.len();
            let item = if rest.is_empty() || (rest.starts_with('#') && rest.len() < after.len()) {
                if items.is_empty() && indentless {
                    if !rest.is_empty() {
                        return None;
                    }
                    first_at = Some((line.no, line.column(indent + 1)));
                }
                self.nested(indent, false)?
            } else if line.is_item(at) {
                return None;
            } else if key_of(rest).is_some() {
                self.mapping(at)?
            } else {
                let value = self.inline(line, at)?;
                self.at += 1;
                value
            };
            items.push(item);
            match self.lines.get(self.at) {
                Some(next) if next.indent == indent && next.is_item(indent) => {}
                Some(next) if next.indent > indent => return None,
                // Less indented, or the next key of a mapping this list is the value of.
                _ => break,
            }
        }
        self.depth -= 1;
        // The full parser places a list at its first `-`, but a list indented no further than
        // the key it is the value of after that `-` (where its first item starts, when on the
        // same line).
        let (line, column) = match (indentless, first_at) {
            (false, _) => (no, column),
            (true, Some(at)) => at,
            (true, None) => (items[0].line, items[0].column),
        };
        Some(Node {
            value: Value::Seq(items),
            line,
            column,
        })
    }

    /// The one-line value starting at byte `at` of `line`, which must end the line (but for a
    /// comment).
    fn inline(&mut self, line: &Line, at: usize) -> Option<Node> {
        let text = &line.text[at..];
        let node = |value| Node {
            value,
            line: line.no,
            column: line.column(at),
        };
        let (value, rest) = match text.as_bytes()[0] {
            b'"' | b'\'' => quoted(text)?,
            b'[' => {
                self.enter()?;
                self.depth -= 1;
                let (items, rest) = self.flow_list(line, at)?;
                (Value::Seq(items), rest)
            }
            b'{' => {
                self.enter()?;
                self.depth -= 1;
                (Value::Map(Vec::new()), text.strip_prefix("{}")?)
            }
            _ => {
                let end = text.find(" #").unwrap_or(text.len());
                let plain = text[..end].trim_end_matches(' ');
                if plain.contains(": ") || plain.ends_with(':') {
                    return None;
                }
                self.nodes += 1;
                return Some(node(resolve(plain)?));
            }
        };
        if !ends_line(rest) {
            return None;
        }
        if !matches!(value, Value::Seq(_) | Value::Map(_)) {
            self.nodes += 1;
        }
        Some(node(value))
    }

    /// The items of the one-line flow list `[a, "b", 3]` at byte `at` of `line`, and what
    /// follows its `]`.
    fn flow_list<'t>(&mut self, line: &Line<'t>, at: usize) -> Option<(Vec<Node>, &'t str)> {
        let text = line.text;
        let mut i = at + 1;
        let mut items = Vec::new();
        loop {
            i += text[i..].len() - text[i..].trim_start_matches(' ').len();
            let rest = &text[i..];
            if rest.starts_with(']') {
                // `[a,]` is valid YAML but unusual: leave it to the full parser.
                if !items.is_empty() {
                    return None;
                }
                return Some((items, &text[i + 1..]));
            }
            let (value, after) = match rest.as_bytes().first()? {
                b'"' | b'\'' => quoted(rest)?,
                _ => {
                    let end = rest.find([',', ']'])?;
                    let plain = rest[..end].trim_end_matches(' ');
                    if plain.contains(['[', '{', '}', '#', ':']) {
                        return None;
                    }
                    (resolve(plain)?, &rest[end..])
                }
            };
            self.nodes += 1;
            items.push(Node {
                value,
                line: line.no,
                column: line.column(i),
            });
            let after = after.trim_start_matches(' ');
            i = text.len() - after.len();
            match after.as_bytes().first()? {
                b',' => i += 1,
                b']' => return Some((items, &text[i + 1..])),
                _ => return None,
            }
        }
    }
}

/// Whether only spaces and a comment are left.
fn ends_line(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// A plain key (`name`, `max_agents`, `x-y.z/w`) followed by `:` and a space or the line's end,
/// and what follows the `:`.
fn key_of(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() && bytes[0] != b'_' {
        return None;
    }
    let len = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/')))?;
    if bytes[len] != b':' || bytes.get(len + 1).is_some_and(|&b| b != b' ') || len > 1000 {
        return None;
    }
    let key = &text[..len];
    if reserved(key) {
        return None;
    }
    Some((key, &text[len + 1..]))
}

/// Words a plain scalar does not read as text (booleans, null, and what a float parser might
/// take): left to the full parser's resolution.
fn reserved(word: &str) -> bool {
    matches!(
        word,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "null" | "Null" | "NULL"
    ) || ["inf", "infinity", "nan"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// The value of a plain scalar when it is plainly text or a decimal integer.
fn resolve(plain: &str) -> Option<Value> {
    let bytes = plain.as_bytes();
    let first = *bytes.first()?;
    let digits = plain.strip_prefix('-').unwrap_or(plain);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        return plain.parse::<i64>().ok().map(Value::Int);
    }
    // No number has a space inside: `500 independent tasks` is text.
    let texty = (first.is_ascii_digit() && plain.contains(' '))
        || first.is_ascii_alphabetic()
        || plain
            .chars()
            .next()
            .is_some_and(|c| !c.is_ascii() && c.is_alphabetic())
        || first == b'_'
        || first == b'/'
        || plain.starts_with("./")
        || plain.starts_with("../");
    // YAML 1.2 core schema words (`yes`, `on` are text, as the full parser is told).
    match plain {
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        "null" | "Null" | "NULL" | "~" => return Some(Value::Null),
        _ => {}
    }
    if !texty || reserved(plain) || plain.contains('$') {
        return None;
    }
    Some(Value::Str(plain.to_owned()))
}

/// A one-line quoted scalar at the start of `text`, and what follows its closing quote.
fn quoted(text: &str) -> Option<(Value, &str)> {
    let quote = text.as_bytes()[0];
    let body = &text[1..];
    let mut out = String::new();
    let mut start = 0;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b == quote && quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => {
                out.push_str(&body[start..=i]);
                i += 2;
                start = i;
            }
            b if b == quote => {
                out.push_str(&body[start..i]);
                return Some((Value::Str(out), &body[i + 1..]));
            }
            b'\\' if quote == b'"' => {
                out.push_str(&body[start..i]);
                out.push(match bytes.get(i + 1)? {
                    b'\\' => '\\',
                    b'"' => '"',
                    b'/' => '/',
                    b'n' => '\n',
                    b't' => '\t',
                    _ => return None,
                });
                i += 2;
                start = i;
            }
            _ => i += 1,
        }
    }
    None
}
