//! Memory store throughput: mixed get/put on one and two threads, and glob search over 100k keys.
//!
//! `cargo bench --bench memory`; criterion reports elements per second, one element per operation
//! for the mixed workload and one per search for the searches. The mixed workload is timed twice:
//! by the wall clock, and by the busiest thread's CPU time (see [`Clock`]).

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

/// What a run's duration is.
#[derive(Clone, Copy)]
enum Clock {
    /// Wall time from the common start until the last thread is done: ops/s as observed.
    Wall,
    /// The largest CPU time any one thread used: ops/s as they would be with a core per thread,
    /// which keeps the figure meaningful when other processes share the cores.
    ThreadCpu,
}

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec and the clock id is a constant of the platform.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "CLOCK_THREAD_CPUTIME_ID is available");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Runs `ops` operations split over `threads` threads and returns their duration.
fn timed_mixed(
    store: &MemoryStore,
    keys: &[String],
    ops: u64,
    threads: u64,
    clock: Clock,
) -> Duration {
    let barrier = Barrier::new(threads as usize + 1);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let cpu_start = thread_cpu_time();
                    run_mixed(store, keys, ops / threads, 0x9E37_79B9_7F4A_7C15 + t);
                    thread_cpu_time() - cpu_start
                })
            })
            .collect();
        barrier.wait();
        let wall_start = Instant::now();
        let cpu_times: Vec<Duration> = workers
            .into_iter()
            .map(|w| w.join().expect("bench threads do not panic"))
            .collect();
        match clock {
            Clock::Wall => wall_start.elapsed(),
            Clock::ThreadCpu => cpu_times.into_iter().max().unwrap_or_default(),
        }
    })
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
    for (name, clock) in [("wall", Clock::Wall), ("thread_cpu", Clock::ThreadCpu)] {
        for threads in [1u64, 2] {
            group.bench_with_input(
                BenchmarkId::new(name, format!("{threads}_threads")),
                &threads,
                |b, &threads| b.iter_custom(|ops| timed_mixed(&store, &keys, ops, threads, clock)),
            );
        }
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
        group.bench_function(BenchmarkId::new("wall", glob), |b| {
            b.iter(|| black_box(store.search(None, black_box(glob))));
        });
        group.bench_function(BenchmarkId::new("thread_cpu", glob), |b| {
            b.iter_custom(|searches| {
                let start = thread_cpu_time();
                for _ in 0..searches {
                    black_box(store.search(None, black_box(glob)).map(|r| r.len()).ok());
                }
                thread_cpu_time() - start
            });
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
