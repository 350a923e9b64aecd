//! The memory store: TTLs on a manual clock, compare-and-swap under parallel writers, size limits,
//! replay and snapshot round trips, export / import, and the order the change sink sees.

use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;
use swarm_runtime::clock::{ManualClock, SharedClock};
use swarm_runtime::memory::{
    MemoryChange, MemoryError, MemoryLimits, MemoryRecord, MemoryStore, Ttl,
};

const START_MS: u64 = 1_000_000;

fn store_with_clock() -> (MemoryStore, Arc<ManualClock>) {
    let clock = ManualClock::new(START_MS);
    let shared: SharedClock = clock.clone();
    (MemoryStore::new(shared, MemoryLimits::default()), clock)
}

/// Runs `work(thread_index)` on `threads` threads released at once; returns their results.
fn in_parallel<T: Send>(threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn recording_sink(store: &MemoryStore) -> Arc<Mutex<Vec<MemoryChange>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink_seen = Arc::clone(&seen);
    store.set_sink(Arc::new(move |change| {
        sink_seen.lock().unwrap().push(change);
    }));
    seen
}

#[test]
fn put_get_versions_and_access_counts() {
    let (store, clock) = store_with_clock();
    let first = store
        .put("dev", "api/plan", json!({"step": 1}), Ttl::Never)
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.created_ms, START_MS);
    clock.advance(5);
    let second = store
        .put("dev", "api/plan", json!({"step": 2}), Ttl::Never)
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.created_ms, START_MS);
    assert_eq!(second.updated_ms, START_MS + 5);

    assert_eq!(store.get("dev", "api/plan").unwrap().access_count, 1);
    let read = store.get("dev", "api/plan").unwrap();
    assert_eq!(read.value, json!({"step": 2}));
    assert_eq!(read.access_count, 2);
    assert_eq!(store.get("other", "api/plan"), None);
}

#[test]
fn an_entry_is_gone_once_its_ttl_has_passed() {
    let (store, clock) = store_with_clock();
    let entry = store
        .put(
            "dev",
            "lease",
            json!("mine"),
            Ttl::After(Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(entry.expires_ms, Some(START_MS + 10_000));
    clock.advance(9_999);
    assert!(store.get("dev", "lease").is_some());
    clock.advance(1);
    assert_eq!(store.get("dev", "lease"), None);
    assert!(store.list(None, None).is_empty());
    assert!(store.search(None, "*").unwrap().is_empty());
    // Expired counts as absent for a write too: it starts again at version 1.
    let again = store
        .put("dev", "lease", json!("yours"), Ttl::Never)
        .unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(again.created_ms, START_MS + 10_000);
}

#[test]
fn sweeping_removes_only_expired_entries() {
    let (store, clock) = store_with_clock();
    store
        .put("dev", "short", json!(1), Ttl::After(Duration::from_secs(1)))
        .unwrap();
    store
        .put("dev", "long", json!(2), Ttl::After(Duration::from_secs(60)))
        .unwrap();
    store.put("dev", "forever", json!(3), Ttl::Never).unwrap();
    assert_eq!(store.sweep_expired(), 0);
    clock.advance(1_000);
    assert_eq!(store.len(), 3);
    assert_eq!(store.sweep_expired(), 1);
    assert_eq!(store.len(), 2);
    let keys: Vec<_> = store.list(None, None).into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["forever", "long"]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_background_sweeper_removes_expired_entries() {
    let (store, clock) = store_with_clock();
    store
        .put("dev", "k", json!(1), Ttl::After(Duration::from_millis(100)))
        .unwrap();
    let sweeper = store.spawn_sweeper(Duration::from_secs(1));
    clock.advance(100);
    assert_eq!(store.len(), 1);
    // Paused time: each advance fires the sweeper's timer deterministically, and yielding lets the
    // sweeper task run. A few periods allow for the task's start.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
        if store.is_empty() {
            break;
        }
    }
    assert!(store.is_empty());
    sweeper.abort();
}

#[test]
fn the_namespace_default_ttl_applies_to_default_writes_only() {
    let (store, clock) = store_with_clock();
    store.set_default_ttl("dev", Some(Duration::from_secs(60)));
    let defaulted = store.put("dev", "a", json!(1), Ttl::Default).unwrap();
    assert_eq!(defaulted.expires_ms, Some(START_MS + 60_000));
    let explicit = store
        .put("dev", "b", json!(1), Ttl::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(explicit.expires_ms, Some(START_MS + 5_000));
    assert_eq!(
        store
            .put("dev", "c", json!(1), Ttl::Never)
            .unwrap()
            .expires_ms,
        None
    );
    assert_eq!(
        store
            .put("ops", "d", json!(1), Ttl::Default)
            .unwrap()
            .expires_ms,
        None
    );
    // `None` from callers that resolved the default themselves means no expiry.
    assert_eq!(Ttl::from(None), Ttl::Never);

    clock.advance(60_000);
    assert_eq!(store.get("dev", "a"), None);
    assert!(store.get("dev", "c").is_some());

    store.set_default_ttl("dev", None);
    assert_eq!(
        store
            .put("dev", "e", json!(1), Ttl::Default)
            .unwrap()
            .expires_ms,
        None
    );
}

#[test]
fn compare_and_swap_checks_the_version() {
    let (store, _clock) = store_with_clock();
    assert_eq!(
        store.compare_and_swap("dev", "k", 1, json!(0), Ttl::Never),
        Err(MemoryError::Conflict { current: 0 })
    );
    let created = store
        .compare_and_swap("dev", "k", 0, json!(1), Ttl::Never)
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(
        store.compare_and_swap("dev", "k", 0, json!(2), Ttl::Never),
        Err(MemoryError::Conflict { current: 1 })
    );
    let swapped = store
        .compare_and_swap("dev", "k", 1, json!(2), Ttl::Never)
        .unwrap();
    assert_eq!(swapped.version, 2);
    assert_eq!(store.get("dev", "k").unwrap().value, json!(2));
}

#[test]
fn parallel_compare_and_swap_loses_no_update() {
    let (store, _clock) = store_with_clock();
    store.put("dev", "counter", json!(0), Ttl::Never).unwrap();
    let threads = 4;
    let increments_per_thread = 500;
    let swaps: u64 = in_parallel(threads, |_| {
        let mut swaps = 0;
        while swaps < increments_per_thread {
            let current = store.get("dev", "counter").unwrap();
            let next = json!(current.value.as_u64().unwrap() + 1);
            match store.compare_and_swap("dev", "counter", current.version, next, Ttl::Never) {
                Ok(_) => swaps += 1,
                Err(MemoryError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        swaps
    })
    .into_iter()
    .sum();
    let last = store.get("dev", "counter").unwrap();
    assert_eq!(swaps, threads as u64 * increments_per_thread);
    assert_eq!(last.value, json!(swaps), "an increment was lost");
    assert_eq!(last.version, swaps + 1, "the initial put is version 1");
}

#[test]
fn keys_and_values_over_the_limits_are_clear_errors() {
    let clock: SharedClock = ManualClock::new(START_MS);
    let store = MemoryStore::new(
        clock,
        MemoryLimits {
            max_key_bytes: 8,
            max_value_bytes: 10,
        },
    );
    let err = store
        .put("dev", "123456789", json!(1), Ttl::Never)
        .unwrap_err();
    assert_eq!(
        err,
        MemoryError::PathTooLong {
            what: "key",
            len: 9,
            max: 8
        }
    );
    assert!(err.to_string().contains("limit is 8 bytes"), "{err}");

    // `"12345678"` is exactly 10 bytes of JSON; one more character is over.
    assert!(store
        .put("dev", "ok", json!("12345678"), Ttl::Never)
        .is_ok());
    let err = store
        .put("dev", "big", json!("123456789"), Ttl::Never)
        .unwrap_err();
    assert_eq!(err, MemoryError::ValueTooLarge { max: 10 });
    assert!(err.to_string().contains("10 bytes"), "{err}");
    assert_eq!(store.get("dev", "big"), None);

    for bad in ["", "/a", "a//b", "a/"] {
        assert!(matches!(
            store.put("dev", bad, json!(1), Ttl::Never),
            Err(MemoryError::InvalidPath { what: "key", .. })
        ));
    }
    assert!(matches!(
        store.put("", "k", json!(1), Ttl::Never),
        Err(MemoryError::InvalidPath {
            what: "namespace",
            ..
        })
    ));
}

#[test]
fn delete_reports_whether_a_live_entry_was_removed() {
    let (store, clock) = store_with_clock();
    let seen = recording_sink(&store);
    store.put("dev", "k", json!(1), Ttl::Never).unwrap();
    assert!(store.delete("dev", "k"));
    assert!(!store.delete("dev", "k"));
    store
        .put("dev", "t", json!(1), Ttl::After(Duration::from_millis(1)))
        .unwrap();
    clock.advance(1);
    assert!(
        !store.delete("dev", "t"),
        "an expired entry is already gone"
    );
    assert!(store.is_empty());
    let deletes = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| matches!(c, MemoryChange::Delete { .. }))
        .count();
    assert_eq!(deletes, 1);
}

#[test]
fn list_is_sorted_and_filters_by_namespace_and_prefix() {
    let (store, _clock) = store_with_clock();
    for (ns, key) in [
        ("b", "z"),
        ("a", "x/2"),
        ("a", "x/1"),
        ("a", "y"),
        ("b", "x/1"),
    ] {
        store.put(ns, key, json!(key), Ttl::Never).unwrap();
    }
    let addresses = |records: Vec<MemoryRecord>| {
        records
            .into_iter()
            .map(|r| format!("{}:{}", r.namespace, r.key))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        addresses(store.list(None, None)),
        ["a:x/1", "a:x/2", "a:y", "b:x/1", "b:z"]
    );
    assert_eq!(
        addresses(store.list(Some("a"), Some("x/"))),
        ["a:x/1", "a:x/2"]
    );
    assert_eq!(
        addresses(store.list(None, Some("x/"))),
        ["a:x/1", "a:x/2", "b:x/1"]
    );
    assert!(store.list(Some("c"), None).is_empty());
}

/// A store with a mix of entries: plain, nested, with and without deadlines, read and rewritten.
fn populated() -> (MemoryStore, Arc<ManualClock>) {
    let (store, clock) = store_with_clock();
    store
        .put("dev", "plan", json!({"steps": [1, 2]}), Ttl::Never)
        .unwrap();
    store
        .put("dev", "plan", json!({"steps": [1, 2, 3]}), Ttl::Never)
        .unwrap();
    store
        .put(
            "dev",
            "session/1/blockers",
            json!(["db"]),
            Ttl::After(Duration::from_secs(60)),
        )
        .unwrap();
    store
        .put("agent/tester", "notes", json!("flaky"), Ttl::Never)
        .unwrap();
    store.get("dev", "plan");
    clock.advance(10);
    (store, clock)
}

#[test]
fn dump_and_restore_round_trip() {
    let (original, clock) = populated();
    let snapshot = original.dump();
    assert_eq!(snapshot.len(), 3);

    let restored = MemoryStore::new(clock.clone(), MemoryLimits::default());
    let seen = recording_sink(&restored);
    restored.put("dev", "stale", json!(0), Ttl::Never).unwrap();
    seen.lock().unwrap().clear();
    restored.restore(snapshot.clone());
    assert_eq!(restored.dump(), snapshot);
    assert!(seen.lock().unwrap().is_empty(), "restore is not reported");
    // The restored index works: search and list find the entries.
    assert_eq!(
        restored
            .search(Some("dev"), "session/*/blockers")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn replaying_the_journal_rebuilds_the_same_store() {
    let (store, clock) = store_with_clock();
    let journal = recording_sink(&store);
    store.put("dev", "a", json!(1), Ttl::Never).unwrap();
    store
        .put("dev", "b", json!(2), Ttl::After(Duration::from_secs(5)))
        .unwrap();
    store.put("dev", "a", json!(3), Ttl::Never).unwrap();
    store
        .compare_and_swap("dev", "c", 0, json!(4), Ttl::Never)
        .unwrap();
    store.delete("dev", "c");
    store
        .put("ops", "x/y", json!({"deep": true}), Ttl::Never)
        .unwrap();
    let changes = journal.lock().unwrap().clone();
    assert_eq!(changes.len(), 6);

    let replica = MemoryStore::new(clock.clone(), MemoryLimits::default());
    let replica_sink = recording_sink(&replica);
    for change in &changes {
        replica.apply(change);
    }
    assert_eq!(replica.dump(), store.dump());
    // Idempotent: applying everything again changes nothing.
    for change in &changes {
        replica.apply(change);
    }
    assert_eq!(replica.dump(), store.dump());
    assert!(
        replica_sink.lock().unwrap().is_empty(),
        "apply is not reported"
    );

    // Replayed after the deadline, the entry with a TTL is dropped.
    clock.advance(5_000);
    let late = MemoryStore::new(clock.clone(), MemoryLimits::default());
    for change in &changes {
        late.apply(change);
    }
    assert_eq!(late.get("dev", "b"), None);
    assert_eq!(late.len(), 2);
}

#[test]
fn export_then_import_keeps_values_and_absolute_deadlines() {
    let (source, clock) = populated();
    let exported = source.export_json(None);
    assert_eq!(exported.as_array().unwrap().len(), 3);
    let text = exported.to_string();

    let target = MemoryStore::new(clock.clone(), MemoryLimits::default());
    let seen = recording_sink(&target);
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(target.import_json(&document).unwrap(), 3);
    assert_eq!(target.dump(), source.dump());
    assert_eq!(seen.lock().unwrap().len(), 3, "import is reported");

    let blockers = target.get("dev", "session/1/blockers").unwrap();
    assert_eq!(blockers.expires_ms, Some(START_MS + 60_000));
    // The deadline is absolute: importing after it imports nothing of that entry.
    clock.set(START_MS + 60_000);
    let late = MemoryStore::new(clock.clone(), MemoryLimits::default());
    assert_eq!(late.import_json(&document).unwrap(), 2);
    assert_eq!(late.get("dev", "session/1/blockers"), None);
}

#[test]
fn export_of_one_namespace_and_import_over_existing_keys() {
    let (source, clock) = populated();
    let exported = source.export_json(Some("agent/tester"));
    assert_eq!(exported.as_array().unwrap().len(), 1);

    let target = MemoryStore::new(clock.clone(), MemoryLimits::default());
    for _ in 0..3 {
        target
            .put("agent/tester", "notes", json!("old"), Ttl::Never)
            .unwrap();
    }
    target.import_json(&exported).unwrap();
    let notes = target.get("agent/tester", "notes").unwrap();
    assert_eq!(notes.value, json!("flaky"));
    assert_eq!(
        notes.version, 4,
        "the version continues from the live entry"
    );
}

#[test]
fn a_bad_import_writes_nothing_and_says_why() {
    let (store, _clock) = store_with_clock();
    let err = store.import_json(&json!({"not": "an array"})).unwrap_err();
    assert!(matches!(err, MemoryError::InvalidImport(_)));
    assert!(err.to_string().contains("swarm memory export"), "{err}");

    let good = json!({"namespace": "dev", "key": "ok", "value": 1, "created_ms": 1,
                      "updated_ms": 1, "expires_ms": null, "version": 1});
    let bad = json!({"namespace": "dev", "key": "/bad", "value": 1, "created_ms": 1,
                     "updated_ms": 1, "expires_ms": null, "version": 1});
    let err = store.import_json(&json!([good, bad])).unwrap_err();
    assert!(err.to_string().contains("record 1"), "{err}");
    assert!(store.is_empty());
}

#[test]
fn the_sink_sees_each_keys_changes_in_applied_order() {
    let (store, _clock) = store_with_clock();
    let seen = recording_sink(&store);
    let threads = 4;
    let keys = 8;
    let writes_per_thread = 400;
    in_parallel(threads, |t| {
        for i in 0..writes_per_thread {
            let key = format!("k/{}", (i * 7 + t) % keys);
            store.put("dev", &key, json!(i), Ttl::Never).unwrap();
        }
    });
    let changes = seen.lock().unwrap();
    assert_eq!(changes.len(), threads * writes_per_thread);
    let mut last_version: HashMap<&str, u64> = HashMap::new();
    for change in changes.iter() {
        let MemoryChange::Put { key, entry, .. } = change else {
            panic!("only puts were made");
        };
        let last = last_version.entry(key.as_str()).or_insert(0);
        assert_eq!(entry.version, *last + 1, "key {key}: out of order");
        *last = entry.version;
    }
    // And the final state is what the sink's last change per key says.
    for (key, version) in last_version {
        assert_eq!(store.get("dev", key).unwrap().version, version);
    }
}
