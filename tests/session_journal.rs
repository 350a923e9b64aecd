//! The journal against a real SQLite file: durability, snapshots (which keep the history), marks, external
//! events, and the run lock.

mod session_common;

use session_common::*;
use std::sync::Arc;
use swarm_runtime::memory::MemoryImage;
use swarm_runtime::session::{Event, Journal, SessionError, SessionState, StateDir};

fn fold(events: &[Event]) -> SessionState {
    let mut state = SessionState::default();
    for e in events {
        state.apply(e);
    }
    state
}

async fn append_all(journal: &Journal, events: &[Event]) {
    let acks: Vec<_> = events
        .iter()
        .map(|e| journal.append(Arc::new(e.clone())))
        .collect();
    for ack in acks {
        ack.await.expect("append committed");
    }
}

#[tokio::test]
async fn appended_events_load_back_as_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir
        .create_session(&plan(), Some("user login API"))
        .unwrap();
    let events = workload(&id, 50);
    {
        let lock = state_dir.lock(&id).unwrap();
        let journal = state_dir.open_journal(&id, &lock).unwrap();
        append_all(&journal, &events).await;
        journal.close().await;
    }
    // A fresh handle on the file: nothing comes from the writer's memory.
    let reopened = StateDir::open_existing(dir.path()).unwrap();
    let restored = reopened.load(&id).unwrap();
    assert_eq!(restored.state, fold(&events));
    assert_eq!(restored.events_replayed, events.len());
    assert_eq!(restored.plan, plan());
    assert_eq!(restored.memory.len(), 50);
    let summary = reopened.summary(&id).unwrap();
    assert_eq!((summary.tasks_done, summary.tasks_total), (50, 50));
}

#[tokio::test]
async fn snapshot_compacts_and_later_events_replay_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let events = workload(&id, 40);
    let (first, rest) = events.split_at(101);
    let lock = state_dir.lock(&id).unwrap();
    let journal = state_dir.open_journal(&id, &lock).unwrap();
    append_all(&journal, first).await;
    let covers = journal.mark().await.unwrap();
    let live = fold(first);
    let memory = state_dir.load(&id).unwrap().memory;
    journal
        .write_snapshot(covers, &live, &memory)
        .await
        .unwrap();
    let after_snapshot = state_dir.load(&id).unwrap();
    assert_eq!(
        after_snapshot.events_replayed, 0,
        "the snapshot covers every event"
    );
    assert_eq!(after_snapshot.state, live);
    append_all(&journal, rest).await;
    journal.close().await;
    let restored = state_dir.load(&id).unwrap();
    assert_eq!(restored.events_replayed, rest.len());
    assert_eq!(restored.state, fold(&events));
    assert_eq!(restored.memory.len(), 40);
    // The snapshot shortens replay; the history stays whole, in order.
    let history = state_dir.events_after(&id, 0, usize::MAX).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (*e.event).clone())
            .collect::<Vec<_>>(),
        events
    );
    let tail = state_dir.events_after(&id, covers, 5).unwrap();
    assert_eq!(tail.len(), 5);
    assert!(tail[0].seq > covers);
}

#[tokio::test]
async fn a_snapshot_with_damaged_memory_is_an_error_naming_it_not_wrong_values() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let events = workload(&id, 40);
    let lock = state_dir.lock(&id).unwrap();
    let journal = state_dir.open_journal(&id, &lock).unwrap();
    append_all(&journal, &events).await;
    let covers = journal.mark().await.unwrap();
    let memory = state_dir.load(&id).unwrap().memory;
    journal
        .write_snapshot(covers, &fold(&events), &memory)
        .await
        .unwrap();
    journal.close().await;
    assert_eq!(state_dir.load(&id).unwrap().memory, memory);
    // One digit of a stored value changed: still JSON, but not what was written.
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    let mut blob: Vec<u8> = conn
        .query_row(
            "SELECT memory FROM snapshots WHERE session = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    // The last digit is in the last value (the fields after it are small varints).
    let digit = blob.iter().rposition(u8::is_ascii_digit).unwrap();
    blob[digit] = if blob[digit] == b'7' { b'8' } else { b'7' };
    conn.execute(
        "UPDATE snapshots SET memory = ?1 WHERE session = ?2",
        rusqlite::params![blob, id],
    )
    .unwrap();
    match state_dir.load(&id) {
        Err(e @ SessionError::Decode { what, .. }) => {
            assert_eq!(what, "snapshot memory");
            let message = e.to_string();
            assert!(message.contains(&id), "{message}");
            assert!(message.contains("damaged"), "{message}");
        }
        other => panic!(
            "a damaged snapshot loaded: {:?}",
            other.map(|r| r.memory.len())
        ),
    }
}

#[tokio::test]
async fn mark_covers_exactly_what_was_appended_before_it() {
    let f = Fixture::new();
    let (state_dir, id, journal) = (&f.state_dir, f.id.clone(), f.journal());
    let events = workload(&id, 10);
    // Not awaited: the mark must wait for these itself.
    let acks: Vec<_> = events[..20]
        .iter()
        .map(|e| journal.append(Arc::new(e.clone())))
        .collect();
    let covers = journal.mark().await.unwrap();
    let later: Vec<_> = events[20..]
        .iter()
        .map(|e| journal.append(Arc::new(e.clone())))
        .collect();
    for ack in acks.into_iter().chain(later) {
        ack.await.unwrap();
    }
    // A snapshot at the mark deletes exactly the first 20 events: the rest still replay.
    journal
        .write_snapshot(covers, &fold(&events[..20]), &MemoryImage::default())
        .await
        .unwrap();
    journal.close().await;
    let restored = state_dir.load(&id).unwrap();
    assert_eq!(restored.events_replayed, events.len() - 20);
    assert_eq!(restored.state, fold(&events));
}

#[tokio::test]
async fn external_events_survive_a_snapshot_until_the_runner_has_seen_them() {
    let f = Fixture::new();
    let (state_dir, id, journal) = (&f.state_dir, f.id.clone(), f.journal());
    append_all(&journal, &[started(&id)]).await;
    // The memory CLI writes while the runner is live.
    let cli = StateDir::open_existing(f.dir.path()).unwrap();
    cli.append_external(
        &id,
        &[put("development", "notes/blockers", "db down".into(), 1)],
    )
    .unwrap();
    append_all(&journal, &[created("api", &[], 2_000)]).await;
    let covers = journal.mark().await.unwrap();
    // The runner has not polled: its memory lacks the CLI's entry, so the entry must survive.
    journal
        .write_snapshot(
            covers,
            &fold(&[started(&id), created("api", &[], 2_000)]),
            &MemoryImage::default(),
        )
        .await
        .unwrap();
    let restored = state_dir.load(&id).unwrap();
    assert_eq!(restored.memory.len(), 1, "the external put is replayed");
    assert_eq!(restored.memory[0].key, "notes/blockers");

    let polled = journal.poll_external().unwrap();
    assert_eq!(polled.len(), 1);
    assert!(
        journal.poll_external().unwrap().is_empty(),
        "a poll returns each event once"
    );
    let memory = restored.memory.clone();
    journal
        .write_snapshot(covers, &restored.state, &memory)
        .await
        .unwrap();
    journal.close().await;
    let after = state_dir.load(&id).unwrap();
    assert_eq!(
        after.events_replayed, 0,
        "seen external events are compacted"
    );
    assert_eq!(after.memory, memory);
}

#[tokio::test]
async fn a_second_runner_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let first = state_dir.lock(&id).unwrap();
    match state_dir.lock(&id) {
        Err(SessionError::Locked { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = state_dir.lock(&id).unwrap_err().to_string();
    assert!(
        message.contains(&std::process::id().to_string()),
        "{message}"
    );
    drop(first);
    state_dir.lock(&id).expect("released on drop");
}

#[tokio::test]
async fn a_lock_left_by_a_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    conn.execute(
        "UPDATE sessions SET lock_pid = ?1, lock_start = 12345, status = 'running' WHERE id = ?2",
        rusqlite::params![pid, id],
    )
    .unwrap();
    assert_eq!(
        state_dir.summary(&id).unwrap().status.as_str(),
        "interrupted",
        "a running session without a live runner shows as interrupted"
    );
    let lock = state_dir.lock(&id).expect("stale lock taken over");
    assert_eq!(lock.session(), id);
    assert_eq!(
        state_dir.summary(&id).unwrap().runner_pid,
        Some(std::process::id())
    );
}

#[tokio::test]
async fn a_live_pid_with_another_start_time_is_a_reused_pid() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    // Our own pid is alive, but the lock says it started at another time.
    conn.execute(
        "UPDATE sessions SET lock_pid = ?1, lock_start = 1 WHERE id = ?2",
        rusqlite::params![std::process::id(), id],
    )
    .unwrap();
    state_dir.lock(&id).expect("the recorded process is gone");
}

#[tokio::test]
async fn a_disabled_journal_acks_at_once_and_writes_nothing() {
    let journal = Journal::disabled();
    journal.append(Arc::new(started("x"))).await.unwrap();
    assert_eq!(journal.mark().await.unwrap(), 0);
    assert!(journal.poll_external().unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_appenders_all_land() {
    let f = Fixture::new();
    let (state_dir, id, journal) = (&f.state_dir, f.id.clone(), f.journal());
    append_all(&journal, &[started(&id)]).await;
    let mut handles = Vec::new();
    for w in 0..8 {
        let journal = journal.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..50 {
                let id = format!("w{w}-{i}");
                journal
                    .append(Arc::new(created(&id, &[], 2_000)))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    journal.close().await;
    let restored = state_dir.load(&id).unwrap();
    assert_eq!(restored.state.tasks.len(), 400);
    assert_eq!(restored.events_replayed, 401);
}

#[tokio::test]
async fn a_batch_of_more_events_than_one_insert_takes_is_stored_in_order_as_json() {
    let f = Fixture::new();
    let (id, journal) = (f.id.clone(), f.journal());
    // Appended before any ack is awaited: the writer takes hundreds of them in one batch.
    let events = workload(&id, 60);
    append_all(&journal, &events).await;
    journal.close().await;
    let conn = rusqlite::Connection::open(f.dir.path().join("state.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, n, body FROM events WHERE session = ?1 ORDER BY seq")
        .unwrap();
    let rows: Vec<(i64, i64, Vec<u8>)> = stmt
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // A run committed together shares a row: its events, one per line, end at the row's seq.
    assert!(rows.len() < events.len(), "{} rows", rows.len());
    let mut seqs = Vec::new();
    let mut bodies = Vec::new();
    for (seq, n, body) in &rows {
        let lines: Vec<&str> = std::str::from_utf8(body).unwrap().split('\n').collect();
        assert_eq!(lines.len() as i64, *n, "row {seq}");
        seqs.extend(seq - n + 1..=*seq);
        bodies.extend(lines.into_iter().map(str::to_string));
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // Each event is as serde_json writes it, in the order appended.
    let expected: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn resolve_finds_latest_and_lists_known_ids_for_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let a = state_dir.create_session(&plan(), None).unwrap();
    let b = state_dir.create_session(&plan(), None).unwrap();
    assert_eq!(state_dir.resolve("latest").unwrap(), b);
    assert_eq!(state_dir.resolve(&a).unwrap(), a);
    let err = state_dir.resolve("nope").unwrap_err().to_string();
    assert!(
        err.contains("nope") && err.contains(&a) && err.contains(&b),
        "{err}"
    );
    let ids: Vec<String> = state_dir
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![b, a]);
}

#[test]
fn open_existing_on_a_missing_dir_says_to_run_first() {
    let dir = tempfile::tempdir().unwrap();
    let err = StateDir::open_existing(&dir.path().join(".swarm")).unwrap_err();
    assert!(err.to_string().contains("run `swarm run` first"), "{err}");
}

#[tokio::test]
async fn observers_get_each_durable_event_with_the_seq_a_follower_reads_back() {
    let f = Fixture::new();
    let (id, journal) = (f.id.clone(), f.journal());
    let mut observer = journal.subscribe();
    let events = workload(&id, 5);
    append_all(&journal, &events).await;
    let mut seen = Vec::new();
    while seen.len() < events.len() {
        seen.push(observer.recv().await.expect("an envelope per event"));
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {seqs:?}"
    );
    let observed: Vec<Event> = seen.iter().map(|e| (*e.event).clone()).collect();
    assert_eq!(observed, events);
    // A follower in another process reads the same places from the store.
    let follower = StateDir::open_read_only(f.dir.path()).unwrap();
    let stored = follower.events_after(&id, seqs[1], 100).unwrap();
    assert_eq!(stored, seen[2..].to_vec());
    let page = follower.events_after(&id, 0, 2).unwrap();
    assert_eq!(page, seen[..2].to_vec());
    let line = serde_json::to_value(&seen[0]).unwrap();
    assert_eq!(line["seq"], seqs[0]);
    assert_eq!(line["type"], "session_started");
    journal.close().await;
}

#[tokio::test]
async fn a_runner_whose_lease_was_taken_over_can_never_write_again() {
    let f = Fixture::new();
    let (state_dir, id, journal) = (&f.state_dir, f.id.clone(), f.journal());
    append_all(&journal, &[started(&id)]).await;
    // Another runner takes the session over: a new holder, a higher fencing token.
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    conn.execute(
        "UPDATE sessions SET lock_host = 'elsewhere', lock_pid = 1, lock_token = lock_token + 1,
             lock_expires_ms = ?2 WHERE id = ?1",
        rusqlite::params![id, (swarm_runtime::clock::now_ms() + 60_000) as i64],
    )
    .unwrap();
    let refused = journal.append(Arc::new(created("late", &[], 3_000))).await;
    assert!(
        matches!(refused, Err(SessionError::LeaseLost { .. })),
        "{refused:?}"
    );
    journal.close().await;
    let restored = state_dir.load(&id).unwrap();
    assert_eq!(
        restored.events_replayed, 1,
        "nothing of the fenced batch was written"
    );
    // The new holder is live (its lease has not expired): a third runner is refused, naming it.
    match state_dir.lock(&id) {
        Err(SessionError::Locked { owner, .. }) => assert!(owner.contains("elsewhere"), "{owner}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Once its lease expires it is taken over, without the holder being known to be dead.
    conn.execute(
        "UPDATE sessions SET lock_expires_ms = ?2 WHERE id = ?1",
        rusqlite::params![id, (swarm_runtime::clock::now_ms() - 1) as i64],
    )
    .unwrap();
    let lease = state_dir.lock(&id).expect("an expired lease is taken over");
    assert!(lease.token() >= 3, "tokens only go up: {}", lease.token());
}

/// Acks answer by an append's place in the queue: one whose batch committed before a later batch
/// failed still resolves as committed, however late it is awaited; the failed batch's acks and
/// every later one fail with that batch's error.
#[tokio::test]
async fn acks_awaited_late_tell_committed_from_failed_batches() {
    let f = Fixture::new();
    let (state_dir, id, journal) = (&f.state_dir, f.id.clone(), f.journal());
    let committed = journal.append(Arc::new(started(&id)));
    // Resolves once everything appended before it is committed: `committed` is, unawaited.
    journal.mark().await.expect("mark");
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    conn.execute(
        "UPDATE sessions SET lock_token = lock_token + 1 WHERE id = ?1",
        rusqlite::params![id],
    )
    .unwrap();
    let fenced = journal.append(Arc::new(created("fenced", &[], 3_000)));
    let later = journal.append(Arc::new(created("later", &[], 4_000)));
    assert!(
        matches!(fenced.await, Err(SessionError::LeaseLost { .. })),
        "the fenced batch fails"
    );
    assert!(
        matches!(later.await, Err(SessionError::LeaseLost { .. })),
        "nothing after a failed batch is durable"
    );
    committed
        .await
        .expect("an append committed before the failure stays committed");
}

/// After the close an append is refused, whether it reached the writer's queue before the
/// writer let go of it or not.
#[tokio::test]
async fn an_append_after_the_close_is_refused() {
    let f = Fixture::new();
    let journal = f.journal();
    append_all(&journal, &[started(&f.id)]).await;
    journal.clone().close().await;
    // Bounded: an ack nobody answers would hang here rather than fail.
    let late = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        journal.append(Arc::new(created("late", &[], 3_000))),
    )
    .await
    .expect("the ack of an append after the close is answered");
    assert!(
        matches!(late, Err(SessionError::JournalClosed { .. })),
        "{late:?}"
    );
}

#[tokio::test]
async fn a_held_lease_is_renewed_by_its_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut state_dir = StateDir::open(dir.path()).unwrap();
    state_dir.set_lease(std::time::Duration::from_millis(300));
    let id = state_dir.create_session(&plan(), None).unwrap();
    let lease = state_dir.lock(&id).unwrap();
    let conn =
        rusqlite::Connection::open(state_dir.db_path().expect("an SQLite state dir")).unwrap();
    let expiry = || -> i64 {
        conn.query_row(
            "SELECT lock_expires_ms FROM sessions WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap()
    };
    let first = expiry();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while expiry() == first {
        assert!(std::time::Instant::now() < deadline, "never renewed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!lease.lost().is_lost());
    drop(lease);
    let released: Option<i64> = conn
        .query_row("SELECT lock_pid FROM sessions WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(released, None, "dropping the lease gives it back");
}

/// A journal opened on one runtime hands its answers to a task there; once that runtime is gone,
/// appends made from another one are still answered (by the writer itself) and durable.
#[test]
fn a_journal_outliving_the_runtime_it_was_opened_on_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = StateDir::open(dir.path()).unwrap();
    let id = state_dir.create_session(&plan(), None).unwrap();
    let events = workload(&id, 10);
    let lock = state_dir.lock(&id).unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let journal = first.block_on(async {
        let journal = state_dir.open_journal(&id, &lock).unwrap();
        append_all(&journal, &events[..5]).await;
        journal
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        append_all(&journal, &events[5..]).await;
        journal.close().await;
    });
    assert_eq!(state_dir.load(&id).unwrap().state, fold(&events));
}
