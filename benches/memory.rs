//! Memory store throughput: mixed get/put on one and two threads, and glob search over 100k keys.
//!
//! `cargo bench --bench memory`; criterion reports elements per second, one element per operation
//! for the mixed workload and one per search for the searches.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};
use swarm_runtime::clock;
use swarm_runtime::memory::{MemoryLimits, MemoryStore, Ttl};

const MIXED_KEYS: usize = 10_000;
/// One operation in this many is a put; the rest are gets (80/20).
const PUT_EVERY: u64 = 5;

fn store() -> MemoryStore {
    MemoryStore::new(clock::system(), MemoryLimits::default())
}

/// A fast, seedable sequence of key indices so that threads do not walk the keys in lockstep.
struct KeyPicker(u64);

impl KeyPicker {
    fn next(&mut self) -> usize {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % MIXED_KEYS as u64) as usize
    }
}

fn run_mixed(store: &MemoryStore, keys: &[String], ops: u64, seed: u64) {
    let mut picker = KeyPicker(seed);
    for op in 0..ops {
        let key = &keys[picker.next()];
        if op % PUT_EVERY == 0 {
            let entry = store.put("bench", key, json!({"n": op}), Ttl::Never);
            black_box(entry.is_ok());
        } else {
            black_box(store.get("bench", key));
        }
    }
}

fn mixed(c: &mut Criterion) {
    let store = store();
    let keys: Vec<String> = (0..MIXED_KEYS)
        .map(|i| format!("agent/{i}/state"))
        .collect();
    for key in &keys {
        store
            .put("bench", key, json!({"n": 0}), Ttl::Never)
            .expect("bench keys are valid");
    }
    let mut group = c.benchmark_group("mixed_80_get_20_put");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    if threads == 1 {
                        let start = Instant::now();
                        run_mixed(&store, &keys, iters, 0x9E37_79B9_7F4A_7C15);
                        return start.elapsed();
                    }
                    // Iterations are operations in all: each thread does its share, and the time is
                    // from the common start until the last thread is done.
                    let barrier = Barrier::new(threads as usize + 1);
                    thread::scope(|scope| {
                        for t in 0..threads {
                            let (store, keys, barrier) = (&store, &keys, &barrier);
                            scope.spawn(move || {
                                barrier.wait();
                                run_mixed(store, keys, iters / threads, 0x9E37_79B9_7F4A_7C15 + t);
                            });
                        }
                        barrier.wait();
                        Instant::now()
                    })
                    .elapsed()
                });
            },
        );
    }
    group.finish();
}

const SESSIONS: usize = 10_000;
const KINDS: [&str; 10] = [
    "blockers",
    "notes",
    "decisions",
    "plan",
    "status",
    "tests",
    "review",
    "api",
    "schema",
    "todo",
];

fn search(c: &mut Criterion) {
    let store = store();
    for session in 0..SESSIONS {
        for kind in KINDS {
            store
                .put(
                    "dev",
                    &format!("session/{session:05}/{kind}"),
                    json!(session),
                    Ttl::Never,
                )
                .expect("bench keys are valid");
        }
    }
    assert_eq!(store.len(), SESSIONS * KINDS.len());
    let mut group = c.benchmark_group("search_100k_keys");
    group.throughput(Throughput::Elements(1));
    // (glob, expected matches): a literal prefix, a prefix covering every key, no prefix at all.
    for (glob, matches) in [
        ("session/00042/*", KINDS.len()),
        ("session/*/blockers", SESSIONS),
        ("**/blockers", SESSIONS),
        ("*/blockers", 0),
    ] {
        assert_eq!(
            store.search(None, glob).map(|r| r.len()),
            Ok(matches),
            "{glob}"
        );
        group.bench_function(glob, |b| {
            b.iter(|| black_box(store.search(None, black_box(glob))));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = mixed, search
}
criterion_main!(benches);
