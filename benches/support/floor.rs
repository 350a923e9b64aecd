//! The floor: a bare HTTP client that sends the bodies a swarm run sent, to the same mock, as
//! many at once as the swarm had agents, and reads each answer to its end without parsing it.
//! What it spends per call is what any client of the API spends; the swarm's CPU per call is
//! reported as a ratio to it.
//!
//! The bench runs it as a child process (the bench binary itself with `--floor-client`), so its
//! CPU is measured by the same `wait4` rusage as the swarm's.

use axum::body::Bytes;
use futures_util::StreamExt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Writes `bodies` as length-prefixed records.
pub fn write_bodies(path: &Path, bodies: &[Bytes]) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    for body in bodies {
        let len = u32::try_from(body.len()).map_err(|_| io::Error::other("a body over 4 GiB"))?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(body)?;
    }
    out.flush()
}

fn read_bodies(path: &Path) -> io::Result<Vec<Bytes>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut data)?;
    let mut bodies = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let end = 4 + len;
        if rest.len() < end {
            return Err(io::Error::other("a truncated body record"));
        }
        bodies.push(Bytes::copy_from_slice(&rest[4..end]));
        rest = &rest[end..];
    }
    Ok(bodies)
}

/// Sends every body in `path` to `url`, `concurrency` at once; an error unless every answer
/// was a success read to its end.
pub fn run(path: &Path, url: &str, concurrency: usize) -> Result<(), String> {
    let bodies = Arc::new(read_bodies(path).map_err(|e| format!("{}: {e}", path.display()))?);
    // The same runtime `swarm run` runs its agents on: one thread (`cli::run::tokio_runtime`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        let url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (client, url, bodies, next) = (
                client.clone(),
                url.clone(),
                Arc::clone(&bodies),
                Arc::clone(&next),
            );
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<(), String>(());
                    };
                    let response = client
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !response.status().is_success() {
                        return Err(format!("status {}", response.status()));
                    }
                    let mut stream = response.bytes_stream();
                    while let Some(chunk) = stream.next().await {
                        chunk.map_err(|e| e.to_string())?;
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}
