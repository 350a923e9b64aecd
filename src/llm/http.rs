//! The HTTP plumbing both protocols share: sending a JSON body, turning error statuses into
//! [`LlmError::Api`] with the API's own message and its `Retry-After`, reading bodies and event
//! streams, and keeping the API key out of every error.

pub(crate) use super::transport::HttpClient;
pub(crate) use super::transport::Response;
use super::transport::{error_chain, Target, TransportError};
use super::{ApiKey, LlmError};
use reqwest::header::{HeaderMap, HeaderValue, InvalidHeaderValue, ACCEPT, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The HTTP client of one [`super::LlmClient`]; its connection pool is shared by all clones.
/// hyper directly, unless a proxy may apply: only reqwest implements proxies (tunnels,
/// `NO_PROXY`), and where the environment names none they would match nothing.
pub(crate) fn http_client() -> Result<HttpClient, LlmError> {
    HttpClient::new(system_proxy_possible(|name| {
        std::env::var_os(name).is_some()
    }))
}

/// The variables reqwest reads its system proxy from on every platform.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether reqwest's system proxy may route a request: some proxy variable is set (even empty:
/// reqwest then reads that one), or the platform has proxy settings of its own (macOS, Windows).
fn system_proxy_possible(is_set: impl Fn(&str) -> bool) -> bool {
    cfg!(any(target_os = "macos", windows)) || PROXY_VARIABLES.into_iter().any(is_set)
}

/// Adds a protocol's headers and key to the headers of every request; the key marked
/// sensitive.
pub(crate) type Authorize = fn(&mut HeaderMap, Option<&ApiKey>) -> Result<(), InvalidHeaderValue>;

/// `value` as a header value kept out of logs and HTTP/2 header compression.
pub(crate) fn sensitive(value: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(value)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Where one provider sends its requests, and how.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) http: HttpClient,
    pub(crate) url: String,
    pub(crate) key: Option<ApiKey>,
    pub(crate) stream: bool,
    /// The parsed URL and the headers of every request (content type, the protocol's, the
    /// key), built once and copied into each request; the error when they do not build (a key
    /// that is no valid header value, a URL that does not parse), and each request then fails
    /// with it.
    target: Result<Target, Arc<TransportError>>,
}

impl std::fmt::Debug for Endpoint {
    // Not the headers: they hold the key, and not every protocol's key header is marked
    // sensitive.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub(crate) fn new(
        http: HttpClient,
        url: String,
        key: Option<ApiKey>,
        stream: bool,
        authorize: Authorize,
    ) -> Self {
        let target = Target::new(&url, HeaderMap::new()).and_then(|mut target| {
            // In the order reqwest sends them: the request's own, then its default `accept`.
            let headers = &mut target.headers;
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            authorize(headers, key.as_ref()).map_err(|e| TransportError::Builder(Box::new(e)))?;
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
            Ok(target)
        });
        Self {
            http,
            url,
            key,
            stream,
            target: target.map_err(Arc::new),
        }
    }

    /// Posts `body`, JSON text.
    pub(crate) async fn post(&self, body: Vec<u8>) -> Result<Response, LlmError> {
        match &self.target {
            Ok(target) => send(self.http.post(target, body)).await,
            Err(err) => Err(LlmError::Connection {
                message: error_chain(&**err),
                source: Some(Arc::clone(err) as _),
            }),
        }
    }

    /// The outcome of `call` with this endpoint's key taken out of any error.
    pub(crate) async fn redacted<T>(
        &self,
        call: impl Future<Output = Result<T, LlmError>>,
    ) -> Result<T, LlmError> {
        call.await.map_err(|e| redact(e, self.key.as_ref()))
    }
}

/// Awaits the response to a request sent and returns it if its status is a success; otherwise
/// the API's error as [`LlmError::Api`].
async fn send(
    pending: impl Future<Output = Result<Response, LlmError>>,
) -> Result<Response, LlmError> {
    let mut response = pending.await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after_ms = retry_after_ms(response.headers(), SystemTime::now());
    // The body of an error is only needed for its message, so its first 64 KiB do; a broken
    // one still leaves the status.
    const ERROR_BODY_LIMIT: usize = 64 << 10;
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(_) => {
                body.clear();
                break;
            }
        }
    }
    Err(LlmError::Api {
        status: status.as_u16(),
        message: api_error_message(&body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
        retry_after_ms,
    })
}

/// The most bytes one answer may take, body or stream: room for `max_tokens` tokens with a
/// generous allowance for each streamed chunk's JSON around its token, within a hard cap. An
/// answer past it is cut and the attempt fails, so an endless stream costs bounded memory.
pub(crate) fn body_limit(max_tokens: u32) -> usize {
    const BASE: usize = 1 << 20;
    const PER_TOKEN: usize = 1024;
    const HARD_CAP: usize = 64 << 20;
    (BASE + PER_TOKEN * max_tokens as usize).min(HARD_CAP)
}

fn too_large(limit: usize) -> LlmError {
    LlmError::TooLarge {
        limit_bytes: limit as u64,
    }
}

/// Reads the whole body, at most `limit` bytes, and parses it as `T`.
pub(crate) async fn read_json<T: DeserializeOwned>(
    mut response: Response,
    limit: usize,
) -> Result<T, LlmError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| LlmError::InvalidResponse(e.to_string()))
}

/// One server-sent event.
#[derive(Debug, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty for the default event type.
    pub(crate) event: String,
    pub(crate) data: String,
    /// A non-standard `error:` field, as llama.cpp's server sends a failure mid-stream.
    pub(crate) error: Option<String>,
}

/// The server-sent events of a streamed response, read within a byte limit. A small parser of
/// its own rather than a general one, because servers put errors in a field the standard does
/// not have (llama.cpp's `error:`), which general parsers drop.
pub(crate) struct SseReader {
    body: Response,
    buf: Vec<u8>,
    /// Where the lines not read yet start in `buf`; the bytes before are dropped when more
    /// arrive, not after every line.
    pos: usize,
    read: usize,
    limit: usize,
    ended: bool,
    pending: SseEvent,
    has_fields: bool,
    /// The event [`SseReader::next`] returned last. The two events swap places and are
    /// cleared, not dropped, so their buffers serve the whole stream.
    ready: SseEvent,
}

pub(crate) fn events(response: Response, limit: usize) -> SseReader {
    SseReader {
        body: response,
        buf: Vec::new(),
        pos: 0,
        read: 0,
        limit,
        ended: false,
        pending: SseEvent::default(),
        has_fields: false,
        ready: SseEvent::default(),
    }
}

impl SseReader {
    /// The next event, `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Option<Result<&SseEvent, LlmError>> {
        loop {
            if self.take_event() {
                return Some(Ok(&self.ready));
            }
            if self.ended {
                // A last event without its blank line still counts.
                if !self.has_fields {
                    return None;
                }
                self.dispatch();
                return Some(Ok(&self.ready));
            }
            match self.body.chunk().await.transpose() {
                Some(Ok(chunk)) => {
                    self.read += chunk.len();
                    if self.read > self.limit {
                        return Some(Err(too_large(self.limit)));
                    }
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.ended = true;
                    if self.pos < self.buf.len() {
                        // The last line had no line break.
                        self.buf.push(b'\n');
                    }
                }
            }
        }
    }

    /// Consumes the complete lines in the buffer up to the first finished event, which is then
    /// `ready`.
    fn take_event(&mut self) -> bool {
        while let Some(at) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
            let mut line = &self.buf[self.pos..self.pos + at];
            self.pos += at + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if self.has_fields {
                    self.dispatch();
                    return true;
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            let pending = &mut self.pending;
            match field {
                b"data" => {
                    if !pending.data.is_empty() {
                        pending.data.push('\n');
                    }
                    // `from_utf8` checks ASCII a word at a time, `from_utf8_lossy` a byte.
                    match std::str::from_utf8(value) {
                        Ok(text) => pending.data.push_str(text),
                        Err(_) => pending.data.push_str(&String::from_utf8_lossy(value)),
                    }
                }
                b"event" => {
                    pending.event.clear();
                    pending.event.push_str(&String::from_utf8_lossy(value));
                }
                b"error" => pending.error = Some(String::from_utf8_lossy(value).into_owned()),
                _ => continue,
            }
            self.has_fields = true;
        }
        false
    }

    fn dispatch(&mut self) {
        self.has_fields = false;
        std::mem::swap(&mut self.pending, &mut self.ready);
        let next = &mut self.pending;
        next.event.clear();
        next.data.clear();
        next.error = None;
    }
}

/// Parses the JSON payload of one event.
pub(crate) fn parse_event<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::InvalidResponse(format!("stream event: {e}")))
}

/// An error a server sent inside a stream that had started with 200, in any of the shapes in
/// use: `{"error": {"message", "code"|"type"}}`, `{"error": "text"}`, vLLM's
/// `{"object": "error", "message", "code"}`, or llama.cpp's `{"code", "message", "type"}`.
/// The status is the code it names, else one inferred from its type, else 500: retried like a
/// 5xx when that is what it is, failed at once with the server's message when it is not.
pub(crate) fn stream_error(payload: &str) -> LlmError {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let inner = match value.get("error") {
        Some(e @ serde_json::Value::Object(_)) => e,
        _ => &value,
    };
    let message = inner
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| value.get("error").and_then(serde_json::Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| {
            api_error_message(payload.as_bytes()).unwrap_or_else(|| "an error in the stream".into())
        });
    let code = [inner.get("code"), value.get("code"), inner.get("status")]
        .into_iter()
        .flatten()
        .find_map(|c| match c {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..600).contains(n));
    let kind = inner
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let status = code.unwrap_or_else(|| status_of_type(kind));
    LlmError::Api {
        status,
        message,
        retry_after_ms: None,
    }
}

/// The HTTP status an error type stands for, in the names OpenAI-compatible servers and
/// Anthropic use.
pub(crate) fn status_of_type(kind: &str) -> u16 {
    let kind = kind.to_ascii_lowercase();
    if kind.contains("rate_limit") || kind.contains("ratelimit") {
        429
    } else if kind.contains("overloaded") {
        529
    } else if kind.contains("auth") {
        401
    } else if kind.contains("permission") {
        403
    } else if kind.contains("not_found") || kind.contains("notfound") {
        404
    } else if kind.contains("too_large") {
        413
    } else if kind.contains("invalid_request")
        || kind.contains("badrequest")
        || kind.contains("bad_request")
    {
        400
    } else {
        500
    }
}

/// The `message` of `{"error": {"message": ...}}` (OpenAI and Anthropic), or of
/// `{"error": "..."}` (some OpenAI-compatible servers), or else the body's text, shortened.
pub(crate) fn api_error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ErrorField,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        return Some(envelope.error.into_message());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    const LIMIT: usize = 300;
    Some(match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    })
}

/// The `error` field of an API's error body.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorField {
    Object { message: String },
    Text(String),
}

impl ErrorField {
    pub(crate) fn into_message(self) -> String {
        match self {
            ErrorField::Object { message } | ErrorField::Text(message) => message,
        }
    }
}

/// How long the server asked us to wait: `retry-after-ms` (sent by OpenAI), else `Retry-After`
/// as seconds or as an HTTP date.
pub(crate) fn retry_after_ms(headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(ms as u64);
        }
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX),
    )
}

/// `err` with every occurrence of the key replaced, for APIs that echo what they were sent.
pub(crate) fn redact(err: LlmError, key: Option<&ApiKey>) -> LlmError {
    match key.map(ApiKey::expose) {
        Some(key) if !key.is_empty() => redact_text(err, key),
        _ => err,
    }
}

fn redact_text(err: LlmError, key: &str) -> LlmError {
    let clean = |text: String| {
        if text.contains(key) {
            text.replace(key, "<redacted>")
        } else {
            text
        }
    };
    match err {
        LlmError::Api {
            status,
            message,
            retry_after_ms,
        } => LlmError::Api {
            status,
            message: clean(message),
            retry_after_ms,
        },
        LlmError::Connection { message, source } => LlmError::Connection {
            message: clean(message),
            // The key travels in a header, which transport errors never show.
            source,
        },
        LlmError::InvalidResponse(m) => LlmError::InvalidResponse(clean(m)),
        LlmError::Config(m) => LlmError::Config(clean(m)),
        LlmError::RetriesExhausted { attempts, last } => LlmError::RetriesExhausted {
            attempts,
            last: Box::new(redact_text(*last, key)),
        },
        other @ (LlmError::Timeout { .. } | LlmError::TooLarge { .. } | LlmError::EmptyAnswer) => {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after_ms(&headers, now), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after_ms(&headers, now), Some(2000));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&later).expect("header"),
        );
        assert_eq!(retry_after_ms(&headers, now), Some(7000));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after_ms(&headers, now), Some(250));
    }

    #[test]
    fn the_system_proxy_stays_when_the_environment_names_one() {
        if cfg!(any(target_os = "macos", windows)) {
            assert!(system_proxy_possible(|_| false));
            return;
        }
        assert!(!system_proxy_possible(|_| false));
        for name in ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            assert!(system_proxy_possible(|n| n == name), "{name}");
        }
        // NO_PROXY alone only narrows a proxy that some other variable names.
        assert!(!system_proxy_possible(|n| n == "NO_PROXY"));
    }

    #[test]
    fn error_messages_come_from_the_envelope() {
        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#;
        assert_eq!(api_error_message(openai).as_deref(), Some("bad model"));
        let anthropic = br#"{"type":"error","error":{"type":"x","message":"too long"}}"#;
        assert_eq!(api_error_message(anthropic).as_deref(), Some("too long"));
        assert_eq!(
            api_error_message(br#"{"error":"model not found"}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(api_error_message(b"  ").as_deref(), None);
    }

    #[test]
    fn an_endpoint_shows_no_key() {
        let endpoint = Endpoint::new(
            HttpClient::new(false).expect("client"),
            "http://127.0.0.1:1/v1/messages".into(),
            Some(ApiKey::new("sk-secret")),
            true,
            |headers, key| {
                if let Some(key) = key {
                    headers.insert("x-api-key", sensitive(key.expose())?);
                }
                Ok(())
            },
        );
        assert!(endpoint.target.is_ok());
        let text = format!("{endpoint:?}");
        assert!(!text.contains("sk-secret"), "{text}");
    }

    #[test]
    fn headers_that_do_not_build_fail_each_request_as_before() {
        let endpoint = Endpoint::new(
            HttpClient::new(false).expect("client"),
            "http://127.0.0.1:1/v1/chat/completions".into(),
            Some(ApiKey::new("bad\nkey")),
            true,
            |headers, key| {
                if let Some(key) = key {
                    headers.insert("authorization", sensitive(key.expose())?);
                }
                Ok(())
            },
        );
        assert!(endpoint.target.is_err());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = runtime
            .block_on(endpoint.post(b"{}".to_vec()))
            .expect_err("an invalid header value");
        assert!(
            matches!(&err, LlmError::Connection { message, .. } if message.contains("builder error")),
            "{err:?}"
        );
    }

    #[test]
    fn redaction_reaches_nested_errors() {
        let key = ApiKey::new("sk-secret");
        let err = LlmError::RetriesExhausted {
            attempts: 2,
            last: Box::new(LlmError::connection("bad key sk-secret")),
        };
        let text = redact(err, Some(&key)).to_string();
        assert!(!text.contains("sk-secret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
