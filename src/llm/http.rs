//! The HTTP plumbing both protocols share: sending a JSON body, turning error statuses into
//! [`LlmError::Api`] with the API's own message and its `Retry-After`, reading bodies and event
//! streams, and keeping the API key out of every error.

use super::{ApiKey, LlmError};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::error::Error as _;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// The HTTP client of one [`super::LlmClient`]; its connection pool is shared by all clones.
pub(crate) fn http_client() -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Where one provider sends its requests, and how.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    /// `url` parsed once: parsing it on every request showed in the per-call profile.
    parsed: Option<reqwest::Url>,
    pub(crate) key: Option<ApiKey>,
    pub(crate) stream: bool,
}

impl Endpoint {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        key: Option<ApiKey>,
        stream: bool,
    ) -> Self {
        // A URL that does not parse is left to reqwest, which reports it on the first request.
        let parsed = reqwest::Url::parse(&url).ok();
        Self {
            http,
            url,
            parsed,
            key,
            stream,
        }
    }

    /// Posts `body` as JSON; `authorize` adds the protocol's headers and key.
    pub(crate) async fn post<B: Serialize>(
        &self,
        body: &B,
        authorize: impl FnOnce(RequestBuilder, Option<&ApiKey>) -> RequestBuilder,
    ) -> Result<Response, LlmError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| LlmError::InvalidResponse(format!("cannot encode the request: {e}")))?;
        let builder = match &self.parsed {
            Some(url) => self.http.post(url.clone()),
            None => self.http.post(&self.url),
        };
        let builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        send(authorize(builder, self.key.as_ref())).await
    }

    /// The outcome of `call` with this endpoint's key taken out of any error.
    pub(crate) async fn redacted<T>(
        &self,
        call: impl Future<Output = Result<T, LlmError>>,
    ) -> Result<T, LlmError> {
        call.await.map_err(|e| redact(e, self.key.as_ref()))
    }
}

/// Sends `request` and returns the response if its status is a success; otherwise the API's
/// error as [`LlmError::Api`].
pub(crate) async fn send(request: RequestBuilder) -> Result<Response, LlmError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after_ms = retry_after_ms(response.headers(), SystemTime::now());
    // The body of an error is only needed for its message; a broken one still leaves the status.
    let body = response.bytes().await.unwrap_or_default();
    Err(LlmError::Api {
        status: status.as_u16(),
        message: api_error_message(&body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
        retry_after_ms,
    })
}

/// Reads the whole body and parses it as `T`.
pub(crate) async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, LlmError> {
    let body = response.bytes().await.map_err(transport_error)?;
    serde_json::from_slice(&body).map_err(|e| LlmError::InvalidResponse(e.to_string()))
}

/// The server-sent events of a streamed response.
pub(crate) fn events(response: Response) -> impl Stream<Item = Result<Event, LlmError>> {
    response
        .bytes_stream()
        .eventsource()
        .map(|item| item.map_err(event_stream_error))
}

/// Parses the JSON payload of one event.
pub(crate) fn parse_event<T: DeserializeOwned>(data: &str) -> Result<T, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::InvalidResponse(format!("stream event: {e}")))
}

fn event_stream_error(err: EventStreamError<reqwest::Error>) -> LlmError {
    match err {
        EventStreamError::Transport(e) => transport_error(e),
        other => LlmError::InvalidResponse(format!("event stream: {other}")),
    }
}

/// A failure below HTTP: refused or reset connections, bodies cut short.
pub(crate) fn transport_error(err: reqwest::Error) -> LlmError {
    // reqwest's own message is generic ("error sending request"); the cause is in the chain.
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    LlmError::Connection {
        message: text,
        source: Some(std::sync::Arc::new(err)),
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
            // The key travels in a header, which reqwest's errors never show.
            source,
        },
        LlmError::InvalidResponse(m) => LlmError::InvalidResponse(clean(m)),
        LlmError::Config(m) => LlmError::Config(clean(m)),
        LlmError::RetriesExhausted { attempts, last } => LlmError::RetriesExhausted {
            attempts,
            last: Box::new(redact_text(*last, key)),
        },
        timeout @ LlmError::Timeout { .. } => timeout,
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
