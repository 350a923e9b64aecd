//! Addresses of entries: validation of namespaces and keys, and the map key type.
//!
//! The map is keyed by an owned `(namespace, key)` pair, but every lookup comes with two borrowed
//! `&str`. Building an owned pair per lookup would cost two allocations on the hottest path, so
//! both forms are viewed through one trait object that hashes and compares the same way.

use super::MemoryError;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Checks a `/`-separated path: non-empty, no leading `/`, no empty segment, at most `max_bytes`.
/// `what` names the kind of path ("key", "namespace") in the error.
pub(crate) fn validate_path(
    what: &'static str,
    path: &str,
    max_bytes: usize,
) -> Result<(), MemoryError> {
    let invalid = |reason: String| MemoryError::InvalidPath {
        what,
        path: shorten(path),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if path.len() > max_bytes {
        return Err(MemoryError::PathTooLong {
            what,
            len: path.len(),
            max: max_bytes,
        });
    }
    if path.starts_with('/') {
        return Err(invalid("it starts with `/`".into()));
    }
    if path.split('/').any(str::is_empty) {
        return Err(invalid(
            "it has an empty segment (`//` or a trailing `/`)".into(),
        ));
    }
    Ok(())
}

/// Cuts a path for an error message so that a huge rejected key does not flood a prompt.
fn shorten(path: &str) -> String {
    const SHOWN: usize = 80;
    let shown = clip(path, SHOWN);
    if shown.len() == path.len() {
        path.to_owned()
    } else {
        format!("{shown}…")
    }
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The owned address an entry is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotKey {
    pub(crate) namespace: Arc<str>,
    pub(crate) key: Arc<str>,
}

impl SlotKey {
    pub(crate) fn new(namespace: &str, key: &str) -> Self {
        Self {
            namespace: Arc::from(namespace),
            key: Arc::from(key),
        }
    }
}

/// An address, owned or borrowed.
pub(crate) trait Address {
    fn namespace(&self) -> &str;
    fn key(&self) -> &str;
}

impl Address for SlotKey {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn key(&self) -> &str {
        &self.key
    }
}

impl Address for (&str, &str) {
    fn namespace(&self) -> &str {
        self.0
    }
    fn key(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn Address + 'a> for SlotKey {
    fn borrow(&self) -> &(dyn Address + 'a) {
        self
    }
}

fn hash_address<H: Hasher>(address: &dyn Address, state: &mut H) {
    address.namespace().hash(state);
    address.key().hash(state);
}

impl Hash for SlotKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_address(self, state);
    }
}

impl Hash for dyn Address + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_address(self, state);
    }
}

impl PartialEq for dyn Address + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.namespace() == other.namespace() && self.key() == other.key()
    }
}

impl Eq for dyn Address + '_ {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Result<(), MemoryError> {
        validate_path("key", path, 16)
    }

    #[test]
    fn accepts_plain_and_nested_paths() {
        assert!(check("a").is_ok());
        assert!(check("session/1/notes").is_ok());
        assert!(check("weird key*?[]{}").is_ok());
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", "/a", "a/", "a//b", "/"] {
            assert!(
                matches!(check(bad), Err(MemoryError::InvalidPath { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_long_paths_with_their_length() {
        let err = check("abcdefghijklmnopq").unwrap_err();
        assert!(matches!(
            err,
            MemoryError::PathTooLong {
                len: 17,
                max: 16,
                ..
            }
        ));
    }

    #[test]
    fn shortens_long_paths_on_a_char_boundary() {
        let long = "é".repeat(100);
        let short = shorten(&long);
        assert!(short.len() < long.len());
        assert!(short.ends_with('…'));
    }

    #[test]
    fn borrowed_and_owned_addresses_agree() {
        use std::collections::hash_map::DefaultHasher;
        let owned = SlotKey::new("ns", "k");
        let borrowed: &dyn Address = &("ns", "k");
        let hash = |a: &dyn Address| {
            let mut h = DefaultHasher::new();
            a.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&owned), hash(borrowed));
        assert!(<SlotKey as Borrow<dyn Address>>::borrow(&owned) == borrowed);
        // A pair split differently must not collide: ("ab","c") vs ("a","bc").
        assert!(hash(&("ab", "c")) != hash(&("a", "bc")));
    }
}
