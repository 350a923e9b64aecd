//! What durability costs: journal throughput with group commit (concurrent appenders awaiting
//! their acks, and a burst), against a disabled journal; and snapshot write, load and resume
//! (load plus filling the memory store) time for a large session (100k memory entries, 1000
//! tasks).

mod shared;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;
use swarm_runtime::memory::{Entry, MemoryImage, MemoryLimits, MemoryRecord, MemoryStore};
use swarm_runtime::session::{Event, Journal, SessionState, StateDir};
use swarm_runtime::spec::TaskSpec;

struct Open {
    _dir: Option<tempfile::TempDir>,
    state_dir: StateDir,
    id: String,
    journal: Journal,
    _lock: swarm_runtime::session::SessionLock,
}

fn open_at(dir: Option<tempfile::TempDir>, location: &std::path::Path) -> Open {
    let state_dir = StateDir::open(location).expect("state dir");
    let id = state_dir
        .create_session(&shared::plan("journal benchmark"), None)
        .expect("session");
    let lock = state_dir.lock(&id).expect("lock");
    let journal = state_dir.open_journal(&id, &lock).expect("journal");
    Open {
        _dir: dir,
        state_dir,
        id,
        journal,
        _lock: lock,
    }
}

fn open() -> Open {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    open_at(Some(dir), &path)
}

/// A fresh database on the server `SWARM_TEST_POSTGRES_URL` names, when it is set.
fn postgres() -> Option<Open> {
    let server = std::env::var("SWARM_TEST_POSTGRES_URL").ok()?;
    let name = format!("swarm_bench_{}", std::process::id());
    std::thread::spawn({
        let (server, name) = (server.clone(), name.clone());
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                let pump = tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                drop(client);
                let _ = pump.await;
            })
        }
    })
    .join()
    .expect("create the bench database");
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_path(&format!("/{name}"));
    Some(open_at(None, std::path::Path::new(url.as_str())))
}

/// A durable journal on SQLite, one on PostgreSQL (with `SWARM_TEST_POSTGRES_URL`) and a
/// disabled one, by name; each store lives as long as its tuple.
fn journals() -> Vec<(&'static str, Journal, Option<Open>)> {
    let durable = open();
    let mut all = vec![("journal", durable.journal.clone(), Some(durable))];
    if let Some(pg) = postgres() {
        all.push(("postgres", pg.journal.clone(), Some(pg)));
    }
    all.push(("disabled", Journal::disabled(), None));
    all
}

fn appends(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("journal");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));

    const APPENDERS: usize = 8;
    const PER_APPENDER: usize = 100;
    group.throughput(Throughput::Elements((APPENDERS * PER_APPENDER) as u64));
    for (name, journal, _open) in journals() {
        group.bench_function(BenchmarkId::new("8_appenders_awaiting_acks", name), |b| {
            b.to_async(&rt).iter(|| {
                let journal = journal.clone();
                async move {
                    let tasks: Vec<_> = (0..APPENDERS)
                        .map(|a| {
                            let journal = journal.clone();
                            tokio::spawn(async move {
                                for n in 0..PER_APPENDER {
                                    journal
                                        .append(shared::turn(a, n as u32))
                                        .await
                                        .expect("ack");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("appender");
                    }
                }
            })
        });
    }

    const BURST: usize = 10_000;
    group.throughput(Throughput::Elements(BURST as u64));
    let events: Vec<Arc<Event>> = (0..BURST).map(|i| shared::turn(i, 0)).collect();
    for (name, journal, _open) in journals() {
        group.bench_function(BenchmarkId::new("burst_10k", name), |b| {
            b.to_async(&rt).iter(|| async {
                let acks: Vec<_> = events.iter().map(|e| journal.append(e.clone())).collect();
                for ack in acks {
                    ack.await.expect("ack");
                }
            })
        });
    }
    group.finish();
}

fn big_session() -> (SessionState, MemoryImage) {
    let mut state = SessionState::default();
    state.apply(&Event::SessionStarted {
        session: "bench".into(),
        swarm: "bench".into(),
        goal: None,
        provider: "simulated".into(),
        model: "sim".into(),
        base_url: String::new(),
        at_ms: 0,
    });
    for t in 0..1000 {
        let id = format!("task-{t}");
        state.apply(&Event::TaskCreated {
            task: TaskSpec {
                id: id.clone(),
                role: "backend-dev".into(),
                description: "Implement the endpoint and its tests".into(),
                depends_on: Vec::new(),
            },
            created_by: None,
            at_ms: 1,
        });
        state.apply(&Event::TaskStarted {
            task: id.clone(),
            agent: "backend-dev-1".into(),
            prompt: "Implement the endpoint and its tests".into(),
            system: None,
            at_ms: 2,
        });
        state.apply(&shared::turn(t, 0));
    }
    let records: Vec<MemoryRecord> = (0..100_000)
        .map(|i| MemoryRecord {
            namespace: "bench".into(),
            key: format!("agent/backend-dev-{}/notes/{i}", i % 8),
            entry: Entry {
                value: serde_json::json!({"note": "remember the login flow", "n": i}),
                created_ms: 1,
                updated_ms: 1,
                expires_ms: None,
                version: 1,
                access_count: 0,
            },
        })
        .collect();
    // What a checkpoint writes: the store's image, sorted and freshly allocated.
    let store = MemoryStore::new(swarm_runtime::clock::system(), MemoryLimits::default());
    store.restore(records);
    (state, store.image())
}

fn snapshots(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("snapshot_100k_memory_1000_tasks");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let (state, memory) = big_session();
    let o = open();
    group.bench_function("write", |b| {
        b.to_async(&rt).iter(|| async {
            let covers = o.journal.mark().await.expect("mark");
            o.journal
                .write_snapshot(covers, &state, &memory)
                .await
                .expect("snapshot");
        })
    });
    group.bench_function("load", |b| {
        // Freeing 100k JSON values is the caller's business, not part of loading.
        b.iter_with_large_drop(|| {
            let restored = o.state_dir.load(&o.id).expect("load");
            assert_eq!(restored.memory.len(), memory.len());
            restored
        })
    });
    group.bench_function("resume", |b| {
        // What `swarm resume` does before agents run: load, then fill the memory store.
        b.iter_with_large_drop(|| {
            let restored = o.state_dir.load(&o.id).expect("load");
            let store = MemoryStore::new(swarm_runtime::clock::system(), MemoryLimits::default());
            store.restore(restored.memory);
            assert_eq!(store.len(), memory.len());
            (store, restored.state)
        })
    });
    group.finish();
}

criterion_group!(benches, appends, snapshots);
criterion_main!(benches);
