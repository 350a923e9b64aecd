//! The floor: a bare HTTP client that sends the bodies a swarm run sent, to the same mock, as
//! many at once as the swarm had agents, and reads each answer to its end without parsing it.
//! What it spends per call is what any client of the API spends; the swarm's CPU per call is
//! reported as a ratio to it.
//!
//! The bench runs it as a child process (the bench binary itself with `--floor-client`), so its
//! CPU is measured by the same `wait4` rusage as the swarm's.
//!
//! Two stacks: reqwest (what the bench reports), and hyper's own pooled client beneath it
//! (`--floor-transport hyper`), which shows what reqwest's layers above hyper cost.

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

/// The HTTP stack of the floor client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Reqwest,
    Hyper,
}

/// Sends every body in `path` to `url`, `concurrency` at once; an error unless every answer
/// was a success read to its end.
pub fn run(path: &Path, url: &str, concurrency: usize, transport: Transport) -> Result<(), String> {
    let bodies = Arc::new(read_bodies(path).map_err(|e| format!("{}: {e}", path.display()))?);
    // The same runtime `swarm run` runs its agents on: one thread (`cli::run::tokio_runtime`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        match transport {
            Transport::Reqwest => send_all_reqwest(bodies, url, concurrency).await,
            Transport::Hyper => send_all_hyper(bodies, url, concurrency).await,
        }
    })
}

/// Sends every body by `call`, `concurrency` at once.
async fn send_all<F, Fut>(
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    call: F,
) -> Result<(), String>
where
    F: Fn(Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (call, bodies, next) = (call.clone(), Arc::clone(&bodies), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), String>(());
                };
                call(body.clone()).await?;
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn send_all_reqwest(
    bodies: Arc<Vec<Bytes>>,
    url: &str,
    concurrency: usize,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    send_all(bodies, concurrency, move |body| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
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
            Ok(())
        }
    })
    .await
}

/// The same calls on hyper's pooled client, without reqwest.
async fn send_all_hyper(
    bodies: Arc<Vec<Bytes>>,
    url: &str,
    concurrency: usize,
) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, Full<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    send_all(bodies, concurrency, move |body| {
        let (client, uri) = (client.clone(), uri.clone());
        async move {
            let request = hyper::Request::post(uri)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body))
                .map_err(|e| e.to_string())?;
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()));
            }
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    })
    .await
}
