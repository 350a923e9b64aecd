//! Glob search over keys: segment rules, `**`, literal prefixes, namespaces, special characters.

use serde_json::json;
use swarm_runtime::clock::{ManualClock, SharedClock};
use swarm_runtime::memory::{MemoryError, MemoryLimits, MemoryStore, Ttl};

fn store_with(keys: &[(&str, &str)]) -> MemoryStore {
    let clock: SharedClock = ManualClock::new(1_000);
    let store = MemoryStore::new(clock, MemoryLimits::default());
    for (ns, key) in keys {
        store.put(ns, key, json!(key), Ttl::Never).unwrap();
    }
    store
}

fn found(store: &MemoryStore, ns: Option<&str>, glob: &str) -> Vec<String> {
    store
        .search(ns, glob)
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.namespace, r.key))
        .collect()
}

const KEYS: &[(&str, &str)] = &[
    ("dev", "session/1/blockers"),
    ("dev", "session/2/blockers"),
    ("dev", "session/2/sub/blockers"),
    ("dev", "session/10/notes"),
    ("dev", "api/blockers"),
    ("dev", "blockers"),
    ("dev", "decisions"),
    ("dev", "a/b/decisions"),
    ("ops", "session/3/blockers"),
];

#[test]
fn a_star_does_not_cross_a_slash() {
    let store = store_with(KEYS);
    assert_eq!(
        found(&store, Some("dev"), "session/*/blockers"),
        ["dev:session/1/blockers", "dev:session/2/blockers"]
    );
    assert_eq!(
        found(&store, None, "*/blockers"),
        ["dev:api/blockers"],
        "`*/blockers` is exactly two segments"
    );
    assert_eq!(
        found(&store, Some("dev"), "*"),
        ["dev:blockers", "dev:decisions"]
    );
}

#[test]
fn a_double_star_spans_any_number_of_segments() {
    let store = store_with(KEYS);
    assert_eq!(
        found(&store, None, "**/decisions"),
        ["dev:a/b/decisions", "dev:decisions"]
    );
    assert_eq!(
        found(&store, Some("dev"), "session/**/blockers"),
        [
            "dev:session/1/blockers",
            "dev:session/2/blockers",
            "dev:session/2/sub/blockers"
        ]
    );
    assert_eq!(found(&store, None, "**").len(), KEYS.len());
}

#[test]
fn without_a_namespace_every_namespace_is_searched() {
    let store = store_with(KEYS);
    assert_eq!(
        found(&store, None, "session/*/blockers"),
        [
            "dev:session/1/blockers",
            "dev:session/2/blockers",
            "ops:session/3/blockers"
        ]
    );
    assert!(found(&store, Some("nowhere"), "**").is_empty());
}

#[test]
fn a_literal_prefix_is_a_prefix_of_the_text_not_of_segments() {
    let store = store_with(KEYS);
    // `session/1*` covers `session/1` and `session/10`, and nothing of `session/2`.
    assert_eq!(
        found(&store, Some("dev"), "session/1*/*"),
        ["dev:session/1/blockers", "dev:session/10/notes"]
    );
    assert_eq!(found(&store, Some("dev"), "decisions"), ["dev:decisions"]);
    assert_eq!(
        found(&store, Some("dev"), "session/2/blockers"),
        ["dev:session/2/blockers"]
    );
}

#[test]
fn no_match_is_an_empty_result() {
    let store = store_with(KEYS);
    assert!(found(&store, None, "nothing/*").is_empty());
    assert!(found(&store, None, "session/*/nothing").is_empty());
    assert!(found(&store, None, "zzz").is_empty());
}

#[test]
fn an_invalid_glob_is_a_clear_error() {
    let store = store_with(KEYS);
    for bad in ["session/[", "{a,b", "a}", ""] {
        let err = store.search(None, bad).unwrap_err();
        assert!(
            matches!(&err, MemoryError::InvalidGlob { glob, .. } if glob == bad),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("invalid glob"), "{err}");
    }
}

#[test]
fn special_characters_in_keys_are_found_by_escaping_them() {
    let store = store_with(&[
        ("dev", "q/what?"),
        ("dev", "q/whatX"),
        ("dev", "notes/[draft]"),
        ("dev", "notes/*"),
        ("dev", "notes/star"),
        ("dev", "weird/a b{c}"),
        ("dev", "ünï/cödé"),
    ]);
    assert_eq!(found(&store, None, "q/what\\?"), ["dev:q/what?"]);
    assert_eq!(
        found(&store, None, "q/what?"),
        ["dev:q/what?", "dev:q/whatX"]
    );
    assert_eq!(found(&store, None, "notes/\\*"), ["dev:notes/*"]);
    assert_eq!(found(&store, None, "notes/[[]*"), ["dev:notes/[draft]"]);
    assert_eq!(
        found(&store, None, "weird/a b\\{c\\}"),
        ["dev:weird/a b{c}"]
    );
    assert_eq!(found(&store, None, "ünï/*"), ["dev:ünï/cödé"]);
}

#[test]
fn expired_and_deleted_entries_are_not_found() {
    let clock = ManualClock::new(1_000);
    let shared: SharedClock = clock.clone();
    let store = MemoryStore::new(shared, MemoryLimits::default());
    store
        .put(
            "dev",
            "s/1",
            json!(1),
            Ttl::After(std::time::Duration::from_millis(5)),
        )
        .unwrap();
    store.put("dev", "s/2", json!(2), Ttl::Never).unwrap();
    store.put("dev", "s/3", json!(3), Ttl::Never).unwrap();
    store.delete("dev", "s/3");
    clock.advance(5);
    assert_eq!(found(&store, None, "s/*"), ["dev:s/2"]);
}
