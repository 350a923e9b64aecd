//! A strict reader of JSON text for the few small shapes a stream event has, cheaper than
//! `serde_json`'s derived deserializers (which showed as the largest part of the client's own
//! work per call).
//!
//! It only ever answers for input it is sure of: every method returns `None` where the text is
//! not what the caller expects or not plainly valid JSON (an escaped key, a float where an
//! integer goes, a lone surrogate, a duplicate field, deep nesting, a syntax error). Callers then
//! hand the same text to `serde_json`, so what is accepted, what is produced and every error
//! message stay exactly as they were; this reader is a shortcut, never a second opinion.

use std::borrow::Cow;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` that a JSON string cannot hold as they are (control characters, `"`, `\`),
/// as the high bit of each byte. The lowest flagged byte is always exact; bytes above a flagged
/// one may be flagged in error, so only the lowest is used.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn specials(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = (w ^ (ONES * b'"' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'"' as u64));
    let slash = (w ^ (ONES * b'\\' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'\\' as u64));
    (control | quote | slash) & HIGHS
}

/// Where the first `"`, `\` or control character at or after `from` is: sixteen bytes at a
/// time with SSE2 (which every x86_64 has), a text shorter than that in one block padded with
/// spaces; elsewhere eight bytes at a time.
#[inline]
pub(crate) fn find_special(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let sixteen = |at: usize| {
            bytes
                .get(at..at + 16)
                .and_then(|c| <&[u8; 16]>::try_from(c).ok())
        };
        let mut i = from;
        while let Some(chunk) = sixteen(i) {
            let hits = sse2::specials(chunk);
            if hits != 0 {
                return Some(i + hits.trailing_zeros() as usize);
            }
            i += 16;
        }
        if i >= bytes.len() {
            return None;
        }
        match bytes
            .len()
            .checked_sub(16)
            .and_then(|last| Some((last, sixteen(last)?)))
        {
            // The last sixteen bytes, of which those before `i` were seen already.
            Some((last, chunk)) => {
                let seen = (1u32 << (i - last)) - 1;
                let hits = sse2::specials(chunk) & !seen;
                (hits != 0).then(|| last + hits.trailing_zeros() as usize)
            }
            // Fewer than sixteen bytes in all: the rest, padded with spaces (never flagged).
            None => {
                let rest = &bytes[i..];
                let mut block = [b' '; 16];
                block[..rest.len()].copy_from_slice(rest);
                let hits = sse2::specials(&block);
                (hits != 0).then(|| i + hits.trailing_zeros() as usize)
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    find_special_words(bytes, from)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// A bit for each byte of `chunk` that a JSON string cannot hold as it is (control
    /// characters, `"`, `\`), the first byte's the lowest.
    #[inline]
    pub(super) fn specials(chunk: &[u8; 16]) -> u32 {
        // SAFETY: this build has SSE2 (the cfg above), and the load reads the sixteen bytes
        // of `chunk`, an unaligned load being allowed.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // A byte is at most 0x1f exactly when the smaller of it and 0x1f is itself.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), control)) as u32
        }
    }
}

/// [`find_special`] eight bytes at a time.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn find_special_words(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let hits = specials(u64::from_le_bytes(word));
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i >= bytes.len() {
        return None;
    }
    match bytes.len().checked_sub(8) {
        // The last eight bytes, of which those before `i` were seen already.
        Some(last) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[last..]);
            // Those become spaces, which are never flagged and flag nothing above them.
            let seen = (1u64 << ((i - last) * 8)) - 1;
            let word = (u64::from_le_bytes(word) & !seen) | ((ONES * u64::from(b' ')) & seen);
            let hits = specials(word);
            (hits != 0).then(|| last + (hits.trailing_zeros() / 8) as usize)
        }
        None => (i..bytes.len()).find(|&j| matches!(bytes[j], 0..=0x1f | b'"' | b'\\')),
    }
}

/// Nesting beyond this is left to `serde_json` (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// A position in one JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
    /// Skipped values are checked as values read, not ignored (see [`Scanner::buffered`]).
    buffered: bool,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth: 0,
            buffered: false,
        }
    }

    /// For text that `serde_json` reads whole before it looks at it (an internally tagged
    /// enum): there, the values of unknown fields are read too, so a string must be a valid
    /// one (no lone surrogate) and a number must fit a float. Skipping takes only what is
    /// certainly valid then: strings [`Scanner::string`] reads, and integers of at most 18
    /// digits.
    pub(crate) fn buffered(text: &'a str) -> Self {
        Self {
            buffered: true,
            ..Self::new(text)
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn ws(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        let b = *self.bytes().get(self.pos)?;
        if b > b' ' {
            return Some(b);
        }
        self.ws();
        self.bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes().get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> Option<()> {
        self.ws();
        (self.pos == self.text.len()).then_some(())
    }

    /// Consumes a `null` if one comes next.
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// `null` as `None`, anything else as `read` reads it.
    pub(crate) fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        read(self).map(Some)
    }

    fn enter(&mut self, open: u8) -> Option<()> {
        self.eat(open)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// An object: `member` is called with each key (keys with escapes are not read here) and
    /// must consume the value.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.enter(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `item` is called for each element and must consume it.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.enter(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key without escapes.
    #[inline]
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let at = find_special(self.bytes(), start)?;
        if self.bytes()[at] != b'"' {
            return None;
        }
        self.pos = at + 1;
        self.text.get(start..at)
    }

    /// A string, borrowed from the text unless it has escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut at = find_special(bytes, start)?;
        // The usual string has no escape: borrow it.
        if bytes[at] == b'"' {
            self.pos = at + 1;
            return Some(Cow::Borrowed(&self.text[start..at]));
        }
        // Unescaping never lengthens a text: the rest of the event is room enough, so a string
        // of a stream event grows no more (a long document's still may, past 4 KiB).
        let room = (bytes.len() - start).min(4096).max(at - start + 16);
        let mut out = String::with_capacity(room);
        let mut run = start;
        loop {
            out.push_str(&self.text[run..at]);
            match bytes[at] {
                b'"' => {
                    self.pos = at + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {}
                _ => return None,
            }
            let mut i = at + 2;
            let c = match *bytes.get(at + 1)? {
                // The escaped byte itself starts the next run.
                b'"' | b'\\' | b'/' => {
                    run = at + 1;
                    at = find_special(bytes, i)?;
                    continue;
                }
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let unit = hex4(bytes.get(i..i + 4)?)?;
                    i += 4;
                    match unit {
                        0xD800..=0xDBFF => {
                            // Only a high surrogate followed by a low one is a char.
                            if bytes.get(i..i + 2)? != b"\\u" {
                                return None;
                            }
                            let low = hex4(bytes.get(i + 2..i + 6)?)?;
                            if !(0xDC00..=0xDFFF).contains(&low) {
                                return None;
                            }
                            i += 6;
                            let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            char::from_u32(code)?
                        }
                        0xDC00..=0xDFFF => return None,
                        unit => char::from_u32(unit)?,
                    }
                }
                _ => return None,
            };
            out.push(c);
            run = i;
            at = find_special(bytes, i)?;
        }
    }

    /// A non-negative integer that fits `u64`, written without fraction or exponent.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.ws();
        let bytes = self.bytes();
        let first = *bytes.get(self.pos)?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut n = u64::from(first - b'0');
        self.pos += 1;
        while let Some(&b) = bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            if first == b'0' {
                // A leading zero is not JSON.
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        match bytes.get(self.pos) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// A `u64` that fits `u32`.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    /// Any value, checked as strictly as `serde_json` checks what it ignores.
    pub(crate) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(|s, _| s.skip()),
            b'[' => self.array(Self::skip),
            b'"' => self.skip_string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// Any value, as the text it takes.
    pub(crate) fn raw(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        Some(&self.text[start..self.pos])
    }

    fn skip_string(&mut self) -> Option<()> {
        if self.buffered {
            return self.string().map(drop);
        }
        self.eat(b'"')?;
        let bytes = self.bytes();
        let mut i = self.pos;
        loop {
            let at = find_special(bytes, i)?;
            match bytes[at] {
                b'"' => {
                    self.pos = at + 1;
                    return Some(());
                }
                b'\\' => match *bytes.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i = at + 2,
                    // An ignored string's escapes need only be well formed.
                    b'u' => {
                        hex4(bytes.get(at + 2..at + 6)?)?;
                        i = at + 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn skip_number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let mut i = self.pos;
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        if self.buffered {
            let start = i;
            if !digits(&mut i) || i - start > 18 || (bytes[start] == b'0' && i - start > 1) {
                return None;
            }
            if let Some(b'.' | b'e' | b'E') = bytes.get(i) {
                return None;
            }
            self.pos = i;
            return Some(());
        }
        if bytes.get(i) == Some(&b'0') {
            i += 1;
            if bytes.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        } else if !digits(&mut i) {
            return None;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.pos = i;
        Some(())
    }
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        Some(n << 4 | u32::from(v))
    })
}

/// Marks a field as read, `None` if it was already: a duplicate field is `serde_json`'s to
/// report.
pub(crate) fn once(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

/// The check the protocols' scanners are held to: on every sample, every prefix of it and every
/// sample with one character replaced, whatever a scanner reads, it reads as serde_json does.
#[cfg(test)]
pub(crate) mod equivalence {
    use std::fmt::{Debug, Display};

    /// Whether the scanner read `data` (`ours`); when it did, serde_json (`theirs`) must have
    /// read the same.
    pub(crate) fn assert_same<T, E>(data: &str, ours: Option<T>, theirs: Result<T, E>) -> bool
    where
        T: PartialEq + Debug,
        E: Display,
    {
        match ours {
            Some(ours) => {
                let theirs = theirs.unwrap_or_else(|e| panic!("{data}: accepted, serde: {e}"));
                assert_eq!(ours, theirs, "{data}");
                true
            }
            None => false,
        }
    }

    /// Runs `same` (an [`assert_same`]) on each sample, cut short and with each character
    /// changed; returns how many of the samples themselves the scanner read.
    pub(crate) fn check_samples(samples: &[&str], same: impl Fn(&str) -> bool) -> usize {
        let read = samples.iter().filter(|data| same(data)).count();
        let replacements = [
            "", " ", "\"", "\\", ",", ":", "{", "}", "[", "]", "0", "-", ".", "e", "n", "x", "\t",
            "\u{1}", "é",
        ];
        for data in samples {
            for (at, _) in data.char_indices() {
                same(&data[..at]);
                let next = data[at..].chars().next().map_or(0, char::len_utf8);
                for with in replacements {
                    same(&format!("{}{with}{}", &data[..at], &data[at + next..]));
                }
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn string(text: &str) -> Option<String> {
        let mut s = Scanner::new(text);
        let out = s.string()?.into_owned();
        s.end()?;
        Some(out)
    }

    #[test]
    fn strings_unescape_as_serde_json_does() {
        let cases = [
            r#""""#,
            r#""plain""#,
            r#""a \"quote\" and \\ and \/""#,
            r#""\b\f\n\r\t""#,
            r#""\u0000\u001f\u0041\u00e9\u65e5""#,
            r#""\uD83E\uDD80 crab, \ud83d\ude00 lower-case""#,
            r#""é 日本 🦀 raw""#,
            r#""mixed \n then text after""#,
        ];
        for case in cases {
            let expected: String = serde_json::from_str(case).expect("valid");
            assert_eq!(string(case), Some(expected), "{case}");
        }
    }

    #[test]
    fn strings_it_is_not_sure_of_are_left_to_serde_json() {
        for case in [
            r#""\uD83E""#,
            r#""\uD83E\u0041""#,
            r#""\uDD80""#,
            r#""\uD83Ex""#,
            r#""\x""#,
            r#""\u12G4""#,
            r#""\u12""#,
            "\"tab\tinside\"",
            r#""unterminated"#,
            r#""trailing \"#,
        ] {
            assert_eq!(string(case), None, "{case}");
        }
    }

    #[test]
    fn skipping_accepts_exactly_what_serde_json_accepts() {
        let cases = [
            "0",
            "-0",
            "12",
            "-12.5e+3",
            "1E9",
            "0.0",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "+1",
            "true",
            "tru",
            "nul",
            "false",
            "[]",
            "[1,2,]",
            "[,]",
            "{}",
            r#"{"a":1,}"#,
            r#"{"a":[{"b":null}],"c":"\u00e9"}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#""\uD800 lone is fine when ignored""#,
            r#""bad \q escape""#,
            " [ 1 , { \"x\" : [ ] } ] ",
            "[1] 2",
        ];
        for case in cases {
            let ours = {
                let mut s = Scanner::new(case);
                s.skip().and_then(|()| s.end()).is_some()
            };
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(case).is_ok();
            assert_eq!(ours, theirs, "{case}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Scanner::new(&deep).skip().is_none());
        assert!(serde_json::from_str::<Value>(&deep).is_ok());
    }

    #[test]
    fn the_first_special_byte_is_found_wherever_it_is() {
        let naive = |bytes: &[u8], from: usize| {
            (from..bytes.len()).find(|&j| matches!(bytes[j], 0..=0x1f | b'"' | b'\\'))
        };
        for special in [0u8, b'\n', 0x1f, b'"', b'\\'] {
            for len in 0..40 {
                for at in 0..=len {
                    // Specials before `from` too, and ordinary bytes around them.
                    let mut bytes: Vec<u8> = (0..len).map(|j| b" ~a!\x7f\xc3\xff"[j % 7]).collect();
                    if at < len {
                        bytes[at] = special;
                    }
                    if len > 2 {
                        bytes[0] = b'"';
                    }
                    for from in 0..=len {
                        let expected = naive(&bytes, from);
                        assert_eq!(
                            find_special(&bytes, from),
                            expected,
                            "{bytes:?} from {from}"
                        );
                        assert_eq!(
                            find_special_words(&bytes, from),
                            expected,
                            "{bytes:?} from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn integers_are_only_plain_ones() {
        let read = |text: &str| {
            let mut s = Scanner::new(text);
            s.u64().filter(|_| s.end().is_some())
        };
        assert_eq!(read("0"), Some(0));
        assert_eq!(read(" 42 "), Some(42));
        assert_eq!(read("18446744073709551615"), Some(u64::MAX));
        for bad in ["18446744073709551616", "01", "1.0", "1e3", "-1", "", "x"] {
            assert_eq!(read(bad), None, "{bad}");
        }
        assert_eq!(Scanner::new("4294967296").u32(), None);
    }
}
