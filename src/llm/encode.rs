//! Writing request bodies as JSON text straight into one buffer: the same bytes `serde_json`
//! writes (compact, its escapes), for less work per call.
//!
//! Every request resends the agent's system prompt, tools and whole conversation, so encoding
//! is paid on every byte of every turn. `serde_json` checks each byte of a string on its own;
//! [`write_str`] checks eight at a time and copies runs that need no escape. The tools of an
//! agent are the same on every turn, so [`EncodedTools`] encodes them once per tool set, and
//! [`EncodedTexts`] each role's system prompt once.

use super::scan::find_special;
use super::{ChatRequest, Message, ToolSchema};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Room for a request's text and the JSON either protocol puts around it, so a body is written
/// without growing its buffer in the usual case.
pub(crate) fn body_size(r: &ChatRequest) -> usize {
    let messages: usize = r
        .messages
        .iter()
        .map(|m| match m {
            Message::User { content } => content.len() + 96,
            Message::Assistant {
                text, tool_calls, ..
            } => text.as_ref().map_or(0, String::len) + 128 + tool_calls.len() * 256,
            Message::Tool {
                call_id, content, ..
            } => call_id.len() + content.len() + 128,
        })
        .sum();
    r.model.len() + r.system.len() + messages + 256
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it: `\"`, `\\`, the short
/// escapes `\b \f \n \r \t`, and `\u00xx` (lower-case hex) for other control characters.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(at) = find_special(bytes, run) {
        out.extend_from_slice(&bytes[run..at]);
        push_escape(out, bytes[at]);
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// The escape of `b` (one [`escape`] gives), in stores of a fixed size.
#[inline]
fn push_escape(out: &mut Vec<u8>, b: u8) {
    let (bytes, len) = escape(b);
    if len == 2 {
        out.extend_from_slice(&[bytes[0], bytes[1]]);
    } else {
        out.extend_from_slice(&bytes);
    }
}

/// The escape of one byte that needs one, and its length.
#[inline]
fn escape(b: u8) -> ([u8; 6], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            return ([b'\\', b'u', b'0', b'0', hex[0], hex[1]], 6);
        }
    };
    ([b'\\', short, 0, 0, 0, 0], 2)
}

/// Appends `value` as compact JSON, keys in the map's own order (as `serde_json` writes it).
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    write_value_with(out, value, write_str);
}

/// The compact JSON of `value`, its keys and strings written by `string` (quoted as JSON, or
/// escaped once more to sit inside a JSON string).
fn write_value_with(out: &mut Vec<u8>, value: &Value, string: fn(&mut Vec<u8>, &str)) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers have nothing to escape.
        Value::Number(n) => write_number(out, n),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value_with(out, item, string);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                write_value_with(out, item, string);
            }
            out.push(b'}');
        }
    }
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    // Writing into a Vec cannot fail, and a number is always valid JSON.
    let _ = serde_json::to_writer(&mut *out, n);
}

/// Appends an unsigned integer, two digits at a time (timestamps have 13).
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends the compact JSON text of `value` as a JSON string: the bytes [`write_str`] writes
/// for [`value_text`], in one pass and without the text in between (tool-call arguments go
/// back this way on every turn).
pub(crate) fn write_value_str(out: &mut Vec<u8>, value: &Value) {
    out.push(b'"');
    write_value_with(out, value, write_str_escaped);
    out.push(b'"');
}

/// `s` as a JSON string, itself escaped for the inside of a JSON string.
fn write_str_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 4);
    out.extend_from_slice(b"\\\"");
    let mut run = 0;
    while let Some(at) = find_special(bytes, run) {
        out.extend_from_slice(&bytes[run..at]);
        let (inner, len) = escape(bytes[at]);
        for &b in &inner[..len] {
            if b == b'\\' || b == b'"' {
                out.push(b'\\');
            }
            out.push(b);
        }
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.extend_from_slice(b"\\\"");
}

/// `value` as compact JSON text: what `value.to_string()` gives, without the formatter
/// machinery in between (and what [`write_value_str`] escapes).
pub(crate) fn value_text(value: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value);
    // Only valid UTF-8 is ever written: the input's own strings and ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// The encoded tools of each tool set a provider has seen, so that an agent's tools are
/// encoded on its first request only.
///
/// A tool set is known by the address of its shared slice. Each entry holds a weak reference,
/// which keeps that address from being reused by another slice while the entry exists; an
/// entry whose tools are gone is dropped when the cache grows.
#[derive(Debug, Default)]
pub(crate) struct EncodedTools {
    entries: Mutex<ToolsByAddress>,
}

/// Looked up on every request; an address is no key anyone can choose.
type ToolsByAddress = HashMap<usize, Entry, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Entry {
    _tools: Weak<[ToolSchema]>,
    bytes: Arc<[u8]>,
}

/// Entries kept before the dead ones are dropped.
const PRUNE_AT: usize = 256;

impl EncodedTools {
    /// The encoding of `tools`, by `encode` on the first request that offers them.
    pub(crate) fn get(
        &self,
        tools: &Arc<[ToolSchema]>,
        encode: impl FnOnce(&[ToolSchema], &mut Vec<u8>),
    ) -> Arc<[u8]> {
        let key = Arc::as_ptr(tools) as *const u8 as usize;
        if let Some(entry) = self.lock().get(&key) {
            return Arc::clone(&entry.bytes);
        }
        let mut out = Vec::new();
        encode(tools, &mut out);
        let bytes: Arc<[u8]> = out.into();
        let mut entries = self.lock();
        if entries.len() >= PRUNE_AT {
            entries.retain(|_, e| e._tools.strong_count() > 0);
        }
        entries.insert(
            key,
            Entry {
                _tools: Arc::downgrade(tools),
                bytes: Arc::clone(&bytes),
            },
        );
        bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ToolsByAddress> {
        // The map stays consistent whatever a panicking holder did: entries are whole.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The encoded system prompts a provider sent last: every agent of a role sends the same one
/// on every turn. Known by their text (compared, not hashed: a comparison that fails stops at
/// the first differing byte, and one that succeeds costs far less than escaping).
#[derive(Debug, Default)]
pub(crate) struct EncodedTexts {
    entries: Mutex<Vec<KnownText>>,
}

/// A text and its encoding.
type KnownText = (Arc<str>, Arc<[u8]>);

/// Texts shorter than this are escaped every time: it costs less than looking them up.
const MIN_CACHED_LEN: usize = 256;
/// Texts kept; the oldest goes first.
const TEXTS_KEPT: usize = 16;

impl EncodedTexts {
    /// Appends `text` as a JSON string, as [`write_str`] does.
    pub(crate) fn write(&self, out: &mut Vec<u8>, text: &str) {
        if text.len() < MIN_CACHED_LEN {
            return write_str(out, text);
        }
        if let Some((_, bytes)) = self.lock().iter().find(|(known, _)| **known == *text) {
            out.extend_from_slice(bytes);
            return;
        }
        let start = out.len();
        write_str(out, text);
        let bytes: Arc<[u8]> = out[start..].into();
        let mut entries = self.lock();
        if entries.len() >= TEXTS_KEPT {
            entries.remove(0);
        }
        entries.push((text.into(), bytes));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<KnownText>> {
        // Entries are whole whatever a panicking holder did.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encoded(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "a \"quoted\" word and a back\\slash, 16+ bytes long".into(),
            "tab\tnew\nline\r\u{8}\u{c}\u{1}\u{1f}\u{7f} é ü 日本 🦀".into(),
            "\"\"\"\"\"\"\"\"\\\\\\\\\\\\\\\\".into(),
        ];
        // Every byte value that can stand alone, at every position of a word.
        for b in 0u8..0x80 {
            for pad in 0..9 {
                let mut s = "x".repeat(pad);
                s.push(char::from(b));
                // At the end of the text too, where it falls in a padded tail.
                cases.push(s.clone());
                s.push_str("yyyyyyyy");
                cases.push(s);
            }
        }
        for case in &cases {
            assert_eq!(
                encoded(case),
                serde_json::to_string(case).expect("json"),
                "{case:?}"
            );
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let value = json!({
            "z": [1, -2, 3.5, 1e300, null, true, false, "s\n"],
            "a": {"nested": {"deep": [[], {}]}, "u": u64::MAX, "i": i64::MIN},
            "key \"quoted\"": "value\u{0}",
        });
        let mut out = Vec::new();
        write_value(&mut out, &value);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            serde_json::to_string(&value).expect("json")
        );
        assert_eq!(value_text(&value), value.to_string());
        for value in [
            value.clone(),
            json!({"key": "k\n\"q\" \\ \u{1} é", "value": {"n": [1, 2.5, null, true]}}),
            json!("text"),
            json!([]),
            json!({}),
            json!(null),
        ] {
            let mut one_pass = Vec::new();
            write_value_str(&mut one_pass, &value);
            let mut two_passes = Vec::new();
            write_str(&mut two_passes, &value_text(&value));
            assert_eq!(
                String::from_utf8_lossy(&one_pass),
                String::from_utf8_lossy(&two_passes)
            );
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 4096, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn a_tool_set_is_encoded_once_and_a_new_one_again() {
        let cache = EncodedTools::default();
        let tools: Arc<[ToolSchema]> = vec![ToolSchema {
            name: "t".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }]
        .into();
        let mut runs = 0;
        for _ in 0..3 {
            let bytes = cache.get(&tools, |t, out| {
                runs += 1;
                write_str(out, &t[0].name);
            });
            assert_eq!(&*bytes, b"\"t\"");
        }
        assert_eq!(runs, 1);
        let other: Arc<[ToolSchema]> = tools.to_vec().into();
        cache.get(&other, |_, _| runs += 1);
        assert_eq!(runs, 2);
    }

    #[test]
    fn long_texts_are_escaped_once_and_written_the_same() {
        let texts = EncodedTexts::default();
        let long = |c: char| format!("{c} \"role\" prompt\n").repeat(40);
        let (a, b) = (long('a'), long('b'));
        for text in [&a, &b, &a, &b, &"short\n".to_string()] {
            let mut out = b"x".to_vec();
            texts.write(&mut out, text);
            let mut expected = b"x".to_vec();
            write_str(&mut expected, text);
            assert_eq!(out, expected);
        }
        assert_eq!(texts.lock().len(), 2);
        for i in 0..TEXTS_KEPT + 4 {
            texts.write(&mut Vec::new(), &format!("{i:04}{a}"));
        }
        assert_eq!(texts.lock().len(), TEXTS_KEPT);
    }
}
