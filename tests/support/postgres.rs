//! A fresh PostgreSQL database per test, on the server `SWARM_TEST_POSTGRES_URL` names
//! (`eval "$(bash .ci/services)"` starts one). Without it the test fails in CI (`CI=true`) and
//! is skipped, saying so, elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The URL of a new, empty database, or `None` (skip) outside CI when no server is configured.
pub fn fresh_database() -> Option<String> {
    let Ok(server) = std::env::var("SWARM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "SWARM_TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI (eval \"$(bash .ci/services)\")"
        );
        eprintln!("skipped: SWARM_TEST_POSTGRES_URL is not set");
        return None;
    };
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "swarm_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        swarm_runtime::clock::now_ms() % 1_000_000
    );
    // On a thread of its own: the caller may itself be inside an async runtime.
    let (server_url, db) = (server.clone(), name.clone());
    std::thread::spawn(move || create(&server_url, &db))
        .join()
        .expect("create the test database");
    let mut url = url::Url::parse(&server).expect("SWARM_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

fn create(server: &str, name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .expect("connect to SWARM_TEST_POSTGRES_URL");
        let pump = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        drop(client);
        let _ = pump.await;
    });
}
