//! The storage seam against a real PostgreSQL: the journal round trip, snapshots and
//! compaction, seqs a follower reads back, external events woken by NOTIFY, and the fence that
//! keeps a runner that lost its lease from writing.

mod session_common;
mod support;

use session_common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
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

/// Runs `sql` on the test database.
async fn sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let pump = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = pump.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_snapshot_and_followers_on_postgres() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let store = StateDir::open(Path::new(&url)).unwrap();
    let id = store
        .create_session(&plan(), Some("user login API"))
        .unwrap();
    let lock = store.lock(&id).unwrap();
    let journal = store.open_journal(&id, &lock).unwrap();
    let mut observer = journal.subscribe();
    let events = workload(&id, 20);
    let (first, rest) = events.split_at(51);
    append_all(&journal, first).await;
    let covers = journal.mark().await.unwrap();
    let memory = store.load(&id).unwrap().memory;
    journal
        .write_snapshot(covers, &fold(first), &memory)
        .await
        .unwrap();
    append_all(&journal, rest).await;
    let mut seen = Vec::new();
    while seen.len() < events.len() {
        seen.push(observer.recv().await.unwrap());
    }
    assert!(seen.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    journal.close().await;
    let reader = StateDir::open_read_only(Path::new(&url)).unwrap();
    let restored = reader.load(&id).unwrap();
    assert_eq!(restored.state, fold(&events));
    assert_eq!(
        restored.events_replayed,
        rest.len(),
        "the snapshot compacted the rest"
    );
    assert_eq!(restored.memory.len(), 20);
    let after = reader.events_after(&id, seen[60].seq, 1000).unwrap();
    assert_eq!(after, seen[61..].to_vec());
    let summary = reader.summary(&id).unwrap();
    assert_eq!((summary.tasks_done, summary.tasks_total), (20, 20));
    assert_eq!(reader.resolve("latest").unwrap(), id);
}

#[tokio::test(flavor = "multi_thread")]
async fn external_events_wake_the_runner_through_notify() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let store = StateDir::open(Path::new(&url)).unwrap();
    let id = store.create_session(&plan(), None).unwrap();
    let lock = store.lock(&id).unwrap();
    let journal = store.open_journal(&id, &lock).unwrap();
    append_all(&journal, &[started(&id)]).await;
    // The listener's first wake-up comes once it listens; drain it.
    journal.external_changed().await;
    let _ = journal.poll_external().unwrap();
    let cli = StateDir::open_existing(Path::new(&url)).unwrap();
    let at = std::time::Instant::now();
    let waker = {
        let journal = journal.clone();
        tokio::spawn(async move { journal.external_changed().await })
    };
    cli.append_external(&id, &[put("development", "notes/x", "y".into(), 1)])
        .unwrap();
    tokio::time::timeout(Duration::from_secs(4), waker)
        .await
        .expect("notified well before the fallback poll")
        .unwrap();
    assert!(at.elapsed() < Duration::from_secs(4));
    let polled = journal.poll_external().unwrap();
    assert_eq!(polled.len(), 1);
    journal.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_that_lost_its_lease_writes_nothing_and_learns_it_lost() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let mut store = StateDir::open(Path::new(&url)).unwrap();
    store.set_lease(Duration::from_millis(600));
    let id = store.create_session(&plan(), None).unwrap();
    let lock = store.lock(&id).unwrap();
    let journal = store.open_journal(&id, &lock).unwrap();
    append_all(&journal, &[started(&id)]).await;
    match store.lock(&id) {
        Err(SessionError::Locked { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Another runner on another machine takes the session over.
    sql(
        &url,
        &format!(
            "UPDATE sessions SET lock_host = 'elsewhere', lock_pid = 1,
                 lock_token = lock_token + 1, lock_expires_ms = 99999999999999 WHERE id = '{id}'"
        ),
    )
    .await;
    let refused = journal.append(Arc::new(created("late", &[], 3_000))).await;
    assert!(
        matches!(refused, Err(SessionError::LeaseLost { .. })),
        "{refused:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), lock.lost().wait())
        .await
        .expect("the heartbeat notices the takeover");
    journal.close().await;
    assert_eq!(store.load(&id).unwrap().events_replayed, 1);
    drop(lock);
    let summary = store.summary(&id).unwrap();
    assert_eq!(
        summary.runner.map(|o| o.host),
        Some("elsewhere".to_string()),
        "the old holder's release leaves the new lease alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_run_behind_many_runs_held_elsewhere_is_still_claimed() {
    let Some(url) = support::postgres::fresh_database() else {
        return;
    };
    let store = StateDir::open(Path::new(&url)).unwrap();
    let queue = store.queue().unwrap();
    // More runs than one claim looks at per page, all held by live workers of another host.
    for i in 0..40 {
        queue.enqueue(&plan(), Some(&format!("held {i}"))).unwrap();
    }
    sql(
        &url,
        "UPDATE sessions SET status = 'running', lock_pid = 4242, lock_start = 1,
             lock_host = 'another-host', lock_token = 1,
             lock_expires_ms = 9000000000000",
    )
    .await;
    let wanted = queue.enqueue(&plan(), Some("the newest")).unwrap();
    let claimed = tokio::task::spawn_blocking(move || {
        let store = StateDir::open(Path::new(&url)).unwrap();
        store.queue().unwrap().claim().unwrap().map(|c| c.session)
    })
    .await
    .unwrap();
    assert_eq!(claimed.as_deref(), Some(wanted.as_str()));
}
