//! Glob patterns over keys, as `memory_search` and `swarm memory search` take them.
//!
//! `*`, `?` and `[...]` stay within one `/`-separated segment, `**` spans segments, `{a,b}`
//! alternates and `\` escapes. The literal text before the first special character is kept apart:
//! the store looks only at keys starting with it in its sorted index, so `session/42/*` costs a
//! range lookup instead of a scan of every key.

use super::index::Scan;
use super::MemoryError;
use globset::{Glob, GlobBuilder, GlobMatcher};
use std::sync::OnceLock;

/// A compiled key glob.
#[derive(Debug, Clone)]
pub struct KeyPattern {
    /// Every matching key starts with this.
    prefix: String,
    /// Every matching key ends with this. Checking it first spares the regex most non-matching
    /// keys when the index cannot narrow the scan (`**/decisions`, `*/blockers`).
    suffix: String,
    /// The last segment, when it is literal: only keys ending in that segment can match.
    leaf: Option<String>,
    /// The glob has no special characters: it matches exactly `prefix`.
    literal: bool,
    glob: Glob,
    /// Compiled on the first key that needs it: the index often leaves none (a run compiles
    /// `**/blockers` and `**/decisions` for every task brief, and most runs store neither).
    matcher: OnceLock<GlobMatcher>,
}

const SPECIAL: [char; 5] = ['*', '?', '[', '{', '\\'];

impl KeyPattern {
    pub fn new(glob: &str) -> Result<Self, MemoryError> {
        let invalid = |reason: String| MemoryError::InvalidGlob {
            glob: glob.to_owned(),
            reason,
        };
        if glob.is_empty() {
            return Err(invalid(
                "it is empty; use `*` for every top-level key or `**` for every key".into(),
            ));
        }
        let compiled = GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?;
        let prefix_end = glob.find(SPECIAL).unwrap_or(glob.len());
        Ok(Self {
            prefix: glob[..prefix_end].to_owned(),
            suffix: literal_suffix(glob).to_owned(),
            leaf: literal_leaf(glob).map(str::to_owned),
            literal: prefix_end == glob.len(),
            glob: compiled,
            matcher: OnceLock::new(),
        })
    }

    /// The index scan that finds this pattern's candidates; `matches` then decides.
    pub(crate) fn scan<'a>(
        &'a self,
        namespace: Option<&'a str>,
        include_namespace: &'a dyn Fn(&str) -> bool,
    ) -> Scan<'a> {
        Scan {
            namespace,
            include_namespace,
            key_prefix: &self.prefix,
            leaf: self.leaf.as_deref(),
            pattern: Some(self),
        }
    }

    pub(crate) fn matches(&self, key: &str) -> bool {
        if self.literal {
            key == self.prefix
        } else {
            key.ends_with(&self.suffix)
                && self
                    .matcher
                    .get_or_init(|| self.glob.compile_matcher())
                    .is_match(key)
        }
    }
}

/// The last `/`-separated segment of the glob when it has no special character. A `/` inside a
/// class or an alternation leaves a special character after it, so it is never mistaken for one.
fn literal_leaf(glob: &str) -> Option<&str> {
    let leaf = glob.rsplit('/').next().unwrap_or(glob);
    (!leaf.is_empty() && !leaf.contains(['*', '?', '[', ']', '{', '}', '\\'])).then_some(leaf)
}

/// The literal text every match ends with: what follows the last wildcard, class or alternation,
/// unless it holds an escape or an opening bracket (then nothing is assumed). A leading `/` is
/// left out because `**/x` also matches a plain `x`.
fn literal_suffix(glob: &str) -> &str {
    let start = glob
        .rfind(['*', '?', ']', '}'])
        .map_or(0, |special| special + 1);
    let suffix = &glob[start..];
    if suffix.contains(['[', '{', '\\']) {
        return "";
    }
    suffix.strip_prefix('/').unwrap_or(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(glob: &str, key: &str) -> bool {
        KeyPattern::new(glob).unwrap().matches(key)
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(matches("session/*/blockers", "session/7/blockers"));
        assert!(!matches("session/*/blockers", "session/7/x/blockers"));
        assert!(matches("*/blockers", "api/blockers"));
        assert!(!matches("*/blockers", "a/b/blockers"));
        assert!(!matches("*", "a/b"));
    }

    #[test]
    fn double_star_spans_segments_and_none() {
        assert!(matches("**/decisions", "decisions"));
        assert!(matches("**/decisions", "a/b/c/decisions"));
        assert!(matches("a/**", "a/b/c"));
        assert!(!matches("a/**", "ab/c"));
        assert!(matches("a/**/z", "a/z"));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_special_character() {
        assert_eq!(KeyPattern::new("session/4*/x").unwrap().prefix, "session/4");
        assert_eq!(KeyPattern::new("**/x").unwrap().prefix, "");
        assert_eq!(KeyPattern::new("a/\\*").unwrap().prefix, "a/");
        assert_eq!(KeyPattern::new("s/{a,b}").unwrap().prefix, "s/");
    }

    #[test]
    fn literal_suffix_is_what_follows_the_last_special_character() {
        assert_eq!(literal_suffix("**/decisions"), "decisions");
        assert_eq!(literal_suffix("session/*/blockers"), "blockers");
        assert_eq!(literal_suffix("s/{a,b}.md"), ".md");
        assert_eq!(literal_suffix("a/**"), "");
        assert_eq!(literal_suffix("a/*x\\.y"), "");
        assert_eq!(literal_suffix("a/[bc]d"), "d");
        assert!(matches("**/decisions", "decisions"));
        assert!(!matches("**/decisions", "indecisions"));
    }

    #[test]
    fn literal_leaf_is_a_last_segment_without_special_characters() {
        assert_eq!(literal_leaf("**/decisions"), Some("decisions"));
        assert_eq!(literal_leaf("session/*/blockers"), Some("blockers"));
        assert_eq!(literal_leaf("session/42/*"), None);
        assert_eq!(literal_leaf("{a,b/c}"), None);
        assert_eq!(literal_leaf("x[/]y"), None);
        assert_eq!(literal_leaf("a/"), None);
    }

    #[test]
    fn a_glob_without_special_characters_matches_only_itself() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/bc"));
    }

    #[test]
    fn escapes_and_classes_match_special_characters_in_keys() {
        assert!(matches("notes/\\*", "notes/*"));
        assert!(!matches("notes/\\*", "notes/x"));
        assert!(matches("notes/[[]draft]", "notes/[draft]"));
        assert!(matches("q/what\\?", "q/what?"));
        assert!(matches("{x,y}/ünïcode *", "y/ünïcode 1"));
    }

    #[test]
    fn invalid_globs_are_clear_errors() {
        for bad in ["a/[b", "a/{b", ""] {
            let err = KeyPattern::new(bad).unwrap_err();
            assert!(
                matches!(&err, MemoryError::InvalidGlob { glob, .. } if glob == bad),
                "{bad:?}: {err}"
            );
        }
    }
}
