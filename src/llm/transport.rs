//! The HTTP transport of the LLM client: hyper's pooled client directly, or reqwest when a
//! proxy may apply.
//!
//! reqwest's layers above hyper (its request and response types, the redirect layer turning
//! every URI back into a URL) cost more per call than hyper itself, and an LLM client needs
//! none of them: one POST to one URL. reqwest stays where it does what hyper does not: proxy
//! tunnels and `NO_PROXY`, whenever the environment may name a proxy.

use super::LlmError;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, AUTHORIZATION, LOCATION};
use hyper::{Method, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

type Direct = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP client of one [`super::LlmClient`], chosen once when it is built; its connection
/// pool is shared by all clones.
#[derive(Clone, Debug)]
pub(crate) enum HttpClient {
    /// Shared: the client is many times the size of reqwest's handle.
    Direct(std::sync::Arc<Direct>),
    Reqwest(reqwest::Client),
}

/// A failure of the direct transport, worded as reqwest words its own.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request could not be made: a header value or URL that is not valid.
    #[error("builder error")]
    Builder(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("error sending request for url ({url})")]
    Send {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("error following redirect for url ({url})")]
    Redirect {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response body broken off.
    #[error("error decoding response body")]
    Body(#[source] hyper::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

/// The most redirects followed, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

impl HttpClient {
    /// reqwest when `proxy` (a proxy may apply), else hyper directly.
    pub(crate) fn new(proxy: bool) -> Result<Self, LlmError> {
        if proxy {
            return reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .map(HttpClient::Reqwest)
                .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")));
        }
        // What reqwest's `rustls-tls` builds on: ring, webpki roots, ALPN h2 and http/1.1.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http_connector());
        let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        // reqwest's pool settings.
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90));
        Ok(HttpClient::Direct(std::sync::Arc::new(
            builder.build(https),
        )))
    }

    /// Posts `body` to `target`.
    pub(crate) async fn post(&self, target: &Target, body: Vec<u8>) -> Result<Response, LlmError> {
        match self {
            HttpClient::Direct(client) => post_direct(client, target, Bytes::from(body))
                .await
                .map(Response::Direct)
                .map_err(connection_error),
            HttpClient::Reqwest(client) => {
                let mut request = reqwest::Request::new(Method::POST, target.url.clone());
                *request.headers_mut() = target.headers.clone();
                *request.body_mut() = Some(body.into());
                client
                    .execute(request)
                    .await
                    .map(Response::Reqwest)
                    .map_err(connection_error)
            }
        }
    }
}

/// An HTTP connector with reqwest's socket settings.
fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    // TLS is the outer connector's: this one connects https URLs too.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(15)));
    http.set_keepalive_interval(Some(Duration::from_secs(15)));
    http.set_keepalive_retries(Some(3));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    http.set_tcp_user_timeout(Some(Duration::from_secs(30)));
    http
}

/// Sends the request, following 307 and 308 redirects (the ones that keep a POST and its
/// body) as reqwest does: at most ten, the credentials dropped when the host changes.
async fn post_direct(
    client: &Direct,
    target: &Target,
    body: Bytes,
) -> Result<hyper::Response<Incoming>, TransportError> {
    let mut url = target.url.clone();
    let mut uri = target.uri.clone();
    let mut headers = target.headers.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = hyper::Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers.clone();
        let response = client
            .request(request)
            .await
            .map_err(|source| TransportError::Send {
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT {
            return Ok(response);
        }
        let Some(next) = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| url.join(location).ok())
        else {
            return Ok(response);
        };
        if next.scheme() != "http" && next.scheme() != "https" {
            return Err(TransportError::Builder("URL scheme is not allowed".into()));
        }
        if next.host_str() != url.host_str()
            || next.port_or_known_default() != url.port_or_known_default()
        {
            headers.remove(AUTHORIZATION);
        }
        uri = next
            .as_str()
            .parse()
            .map_err(|e| TransportError::Builder(Box::new(e)))?;
        url = next;
    }
    Err(TransportError::Redirect {
        url: url.to_string(),
        source: Box::new(TooManyRedirects),
    })
}

/// Where requests go and with which headers, prepared once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: reqwest::Url,
    uri: Uri,
    pub(crate) headers: HeaderMap,
}

impl Target {
    /// `url` with `headers`, or the reason reqwest would have refused it.
    pub(crate) fn new(url: &str, headers: HeaderMap) -> Result<Self, TransportError> {
        let url = reqwest::Url::parse(url).map_err(|e| TransportError::Builder(Box::new(e)))?;
        if !url.has_host() {
            return Err(TransportError::Builder("URL scheme is not allowed".into()));
        }
        let uri = url
            .as_str()
            .parse()
            .map_err(|e| TransportError::Builder(Box::new(e)))?;
        Ok(Self { url, uri, headers })
    }
}

/// A response whose status was read, its body still to come.
#[derive(Debug)]
pub(crate) enum Response {
    Direct(hyper::Response<Incoming>),
    Reqwest(reqwest::Response),
}

impl Response {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Response::Direct(r) => r.status(),
            Response::Reqwest(r) => r.status(),
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            Response::Direct(r) => r.headers(),
            Response::Reqwest(r) => r.headers(),
        }
    }

    /// The body's length, when the server declared it.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            Response::Direct(r) => hyper::body::Body::size_hint(r.body()).exact(),
            Response::Reqwest(r) => r.content_length(),
        }
    }

    /// The next piece of the body, `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, LlmError> {
        match self {
            Response::Direct(r) => loop {
                let Some(frame) = r.body_mut().frame().await else {
                    return Ok(None);
                };
                let frame = frame.map_err(|e| connection_error(TransportError::Body(e)))?;
                // Trailers are no data.
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            },
            Response::Reqwest(r) => r.chunk().await.map_err(connection_error),
        }
    }
}

/// A failure below HTTP: refused or reset connections, bodies cut short.
pub(crate) fn connection_error(err: impl std::error::Error + Send + Sync + 'static) -> LlmError {
    LlmError::Connection {
        message: error_chain(&err),
        source: Some(std::sync::Arc::new(err)),
    }
}

/// `err`'s message and those of its causes: the top one is generic ("error sending request"),
/// the cause is in the chain.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::http::{self, Endpoint};
    use super::super::ApiKey;
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers the next request on `listener` with `reply` and closes; the request's bytes.
    async fn answer(listener: &TcpListener, reply: &[u8]) -> Vec<u8> {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
            let Some(end) = memchr::memmem::find(&request, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
        socket.write_all(reply).await.expect("write");
        socket.shutdown().await.ok();
        request
    }

    /// A loopback listener and the chat-completions URL on it with `scheme`.
    async fn listen(scheme: &str) -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        (listener, format!("{scheme}://{addr}/v1/chat/completions"))
    }

    fn both() -> [HttpClient; 2] {
        let direct = HttpClient::new(false).expect("client");
        let reqwest = HttpClient::new(true).expect("client");
        assert!(matches!(direct, HttpClient::Direct(_)));
        assert!(matches!(reqwest, HttpClient::Reqwest(_)));
        [direct, reqwest]
    }

    fn endpoint(http: HttpClient, url: String) -> Endpoint {
        Endpoint::new(
            http,
            url,
            Some(ApiKey::new("sk-x")),
            true,
            |headers, key| {
                if let Some(key) = key {
                    let value = http::sensitive(&format!("Bearer {}", key.expose()))?;
                    headers.insert(AUTHORIZATION, value);
                }
                headers.insert("anthropic-version", "1".parse()?);
                Ok(())
            },
        )
    }

    /// Posts one body with each transport to a server answering `reply`; what each sent and
    /// got.
    async fn exchange(reply: &'static [u8]) -> Vec<(Vec<u8>, Result<Response, LlmError>)> {
        let mut out = Vec::new();
        // One listener: the `host` header is the same for both.
        let (listener, url) = listen("http").await;
        for http in both() {
            let endpoint = endpoint(http, url.clone());
            let (sent, got) = tokio::join!(
                answer(&listener, reply),
                endpoint.post(br#"{"model":"m"}"#.to_vec())
            );
            out.push((sent, got));
        }
        out
    }

    #[tokio::test]
    async fn both_transports_send_the_same_bytes_and_read_the_same_answer() {
        let reply =
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";
        let [(direct_sent, direct), (reqwest_sent, reqwest)] =
            <[_; 2]>::try_from(exchange(reply).await).expect("two");
        let text = String::from_utf8_lossy(&direct_sent);
        assert_eq!(text, String::from_utf8_lossy(&reqwest_sent));
        assert!(
            text.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("authorization: Bearer sk-x\r\n"), "{text}");
        assert!(
            text.contains("content-type: application/json\r\n"),
            "{text}"
        );
        for response in [direct, reqwest] {
            let response = response.expect("a success");
            assert_eq!(response.content_length(), Some(11));
            let value: serde_json::Value = http::read_json(response, 100).await.expect("json");
            assert_eq!(value, serde_json::json!({"ok": true}));
        }
    }

    #[tokio::test]
    async fn an_error_status_is_the_apis_message_and_retry_after_on_both() {
        let reply = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 33\r\nconnection: close\r\n\r\n{\"error\":{\"message\":\"slow down\"}}";
        for (_, got) in exchange(reply).await {
            match got {
                Err(LlmError::Api {
                    status: 429,
                    message,
                    retry_after_ms: Some(3000),
                }) => assert_eq!(message, "slow down"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_the_same_connection_error_on_both() {
        let reply = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 500\r\n\r\ndata: {\"a\":1}\n\ndata: {\"b\"";
        let mut messages = Vec::new();
        for (_, got) in exchange(reply).await {
            let mut events = http::events(got.expect("a 200"), 10_000);
            let first = events.next().await.expect("an event").expect("whole");
            assert_eq!(first.data, r#"{"a":1}"#);
            match events.next().await {
                Some(Err(LlmError::Connection { message, source })) => {
                    assert!(source.is_some());
                    messages.push(message);
                }
                other => panic!("{:?}", other.map(|r| r.map(|e| e.data.clone()))),
            }
        }
        assert_eq!(messages[0], messages[1]);
        assert!(
            messages[0].starts_with("error decoding response body"),
            "{messages:?}"
        );
    }

    #[tokio::test]
    async fn an_error_status_with_an_endless_body_is_answered_from_its_start() {
        let (listener, url) = listen("http").await;
        for http in both() {
            let endpoint = endpoint(http, url.clone());
            // The server never finishes the body it announces: the error must not wait for it.
            let server = async {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await.expect("read");
                let head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100000000\r\n\r\n";
                socket.write_all(head).await.expect("write");
                socket.write_all(&[b'x'; 128 << 10]).await.expect("write");
                socket
            };
            let call = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                endpoint.post(b"{}".to_vec()),
            );
            let (_socket, got) = tokio::join!(server, call);
            match got.expect("answered without the rest of the body") {
                Err(LlmError::Api {
                    status: 503,
                    message,
                    ..
                }) => assert!(
                    message.starts_with("xxx") && message.len() < 1000,
                    "{message}"
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_the_same_error_on_both() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let mut messages = Vec::new();
        for http in both() {
            match endpoint(http, url.clone()).post(b"{}".to_vec()).await {
                Err(LlmError::Connection {
                    message,
                    source: Some(_),
                }) => messages.push(message),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(messages[0], messages[1]);
        assert!(
            messages[0].starts_with(&format!("error sending request for url ({url})")),
            "{messages:?}"
        );
    }

    #[tokio::test]
    async fn a_temporary_redirect_is_followed_with_the_body() {
        let (listener, url) = listen("http").await;
        let endpoint = endpoint(HttpClient::new(false).expect("client"), url);
        let server = async {
            let redirect = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /v2/next\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            answer(&listener, redirect).await;
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
            answer(&listener, ok).await
        };
        let (second, got) = tokio::join!(server, endpoint.post(b"{\"n\":1}".to_vec()));
        assert_eq!(got.expect("the redirect's answer").status(), StatusCode::OK);
        let text = String::from_utf8_lossy(&second);
        assert!(text.starts_with("POST /v2/next HTTP/1.1\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"n\":1}"), "{text}");
        assert!(text.contains("authorization: Bearer sk-x\r\n"), "{text}");
    }

    #[tokio::test]
    async fn https_urls_are_spoken_to_in_tls() {
        // A plain HTTP server behind an https URL: the TLS handshake fails, no request is sent.
        let (listener, url) = listen("https").await;
        let endpoint = endpoint(HttpClient::new(false).expect("client"), url);
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        let server = async {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut hello = vec![0; 4096];
            let n = socket.read(&mut hello).await.expect("read");
            hello.truncate(n);
            socket.write_all(reply).await.expect("write");
            socket.shutdown().await.ok();
            hello
        };
        let (sent, got) = tokio::join!(server, endpoint.post(b"{}".to_vec()));
        // A TLS record of type handshake (a ClientHello), not a request.
        assert_eq!(
            sent.first(),
            Some(&0x16),
            "{}",
            String::from_utf8_lossy(&sent)
        );
        assert!(
            matches!(&got, Err(LlmError::Connection { message, .. }) if message.starts_with("error sending request")),
            "{got:?}"
        );
    }
}
