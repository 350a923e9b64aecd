//! Glob patterns over keys, as `memory_search` and `swarm memory search` take them.
//!
//! `*`, `?` and `[...]` stay within one `/`-separated segment, `**` spans segments, `{a,b}`
//! alternates and `\` escapes. The literal text before the first special character is kept apart:
//! the store looks only at keys starting with it in its sorted index, so `session/42/*` costs a
//! range lookup instead of a scan of every key.

use super::MemoryError;
use globset::{GlobBuilder, GlobMatcher};

/// A compiled key glob.
#[derive(Debug, Clone)]
pub(crate) struct KeyPattern {
    /// Every matching key starts with this.
    prefix: String,
    /// The glob has no special characters: it matches exactly `prefix`.
    literal: bool,
    matcher: GlobMatcher,
}

const SPECIAL: [char; 5] = ['*', '?', '[', '{', '\\'];

impl KeyPattern {
    pub(crate) fn new(glob: &str) -> Result<Self, MemoryError> {
        let invalid = |reason: String| MemoryError::InvalidGlob {
            glob: glob.to_owned(),
            reason,
        };
        if glob.is_empty() {
            return Err(invalid(
                "it is empty; use `*` for every top-level key or `**` for every key".into(),
            ));
        }
        let matcher = GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?
            .compile_matcher();
        let prefix_end = glob.find(SPECIAL).unwrap_or(glob.len());
        Ok(Self {
            prefix: glob[..prefix_end].to_owned(),
            literal: prefix_end == glob.len(),
            matcher,
        })
    }

    pub(crate) fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn matches(&self, key: &str) -> bool {
        if self.literal {
            key == self.prefix
        } else {
            self.matcher.is_match(key)
        }
    }
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
        assert_eq!(
            KeyPattern::new("session/4*/x").unwrap().literal_prefix(),
            "session/4"
        );
        assert_eq!(KeyPattern::new("**/x").unwrap().literal_prefix(), "");
        assert_eq!(KeyPattern::new("a/\\*").unwrap().literal_prefix(), "a/");
        assert_eq!(KeyPattern::new("s/{a,b}").unwrap().literal_prefix(), "s/");
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
