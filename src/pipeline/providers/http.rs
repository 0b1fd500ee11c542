//! The HTTP policy every real provider client shares, so a 429 from Deepgram and a 429
//! from LeadSquared end up the same way in the worker:
//!
//! - every request has a timeout; a timeout, a refused or reset connection, 408, 429 and
//!   5xx are `Transient` (the worker retries with backoff), with the server's
//!   `Retry-After` in the message when it sent one;
//! - any other non-2xx is `Permanent` and carries the provider's own error message
//!   (Deepgram's `err_msg`, OpenAI's `error.message`, LeadSquared's `ExceptionMessage`, …),
//!   because that is what an operator needs to fix a bad key or a bad request;
//! - a 2xx body that does not parse is `Malformed`, with the body kept as `raw`.
//!
//! Messages name the request ("POST https://api.deepgram.com/v1/listen") with secrets in
//! URLs (presigned audio/blob URLs) redacted: they end up in the DLQ and the console.

use super::ProviderError;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Most of a provider's body that is kept in an error message.
const MESSAGE_CHARS: usize = 500;
/// Most of an unparseable body that is kept as `raw` (the DLQ shows it).
const RAW_CHARS: usize = 16_000;

/// One provider's HTTP client and the name its errors carry.
#[derive(Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub provider: String,
    pub timeout: Duration,
    /// Bounds on downloading a call's audio (`download_audio`).
    pub audio: super::audio::AudioPolicy,
}

/// A response that was read to the end.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Http {
    pub fn new(provider: &str, timeout: Duration) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A dead host should fail fast even when the request timeout is long (an
            // hour of audio may legitimately take minutes to upload).
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("callops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("{provider}: cannot build the HTTP client: {e}"))?;
        Ok(Http {
            client,
            provider: provider.to_string(),
            timeout,
            audio: Default::default(),
        })
    }

    pub fn transient(&self, message: String) -> ProviderError {
        ProviderError::Transient {
            provider: self.provider.clone(),
            message,
        }
    }

    pub fn permanent(&self, message: String) -> ProviderError {
        ProviderError::Permanent {
            provider: self.provider.clone(),
            message,
        }
    }

    pub fn malformed(&self, why: String, raw: &str) -> ProviderError {
        ProviderError::Malformed {
            provider: self.provider.clone(),
            why,
            raw: truncate(raw, RAW_CHARS),
        }
    }

    /// Send and read the whole body; any status is returned as is (for callers that
    /// treat some error statuses specially, like LeadSquared's duplicate 500).
    pub async fn send_raw(&self, what: &str, rb: RequestBuilder) -> Result<Reply, ProviderError> {
        let resp = rb.send().await.map_err(|e| self.network_error(what, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.network_error(&format!("{what} (reading the body)"), &e))?
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Send, read, and turn any non-2xx status into the matching error.
    pub async fn send(&self, what: &str, rb: RequestBuilder) -> Result<Reply, ProviderError> {
        let reply = self.send_raw(what, rb).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(self.status_error(what, &reply))
        }
    }

    /// Parse a 2xx body; anything else is `Malformed` with the body kept.
    pub fn json<T: DeserializeOwned>(&self, what: &str, reply: &Reply) -> Result<T, ProviderError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            self.malformed(
                format!(
                    "{what}: HTTP {} but the body is not the expected JSON: {e}",
                    reply.status.as_u16()
                ),
                &reply.text(),
            )
        })
    }

    /// The error for a non-2xx reply: retryable statuses are `Transient`, the rest
    /// `Permanent`; both carry the provider's own message.
    pub fn status_error(&self, what: &str, reply: &Reply) -> ProviderError {
        let status = reply.status;
        let mut message = format!(
            "{what}: HTTP {} {}: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            provider_message(&reply.body)
        );
        if is_retryable(status) {
            if let Some(after) = reply
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
            {
                // Seconds or an HTTP date; both are kept verbatim, and
                // `ProviderError::retry_after` reads the seconds form back.
                message.push_str(&format!(" (Retry-After: {})", after.trim()));
            }
            self.transient(message)
        } else {
            self.permanent(message)
        }
    }

    fn network_error(&self, what: &str, e: &reqwest::Error) -> ProviderError {
        // Not `e.to_string()`: reqwest's own text repeats the URL unredacted.
        let detail = error_chain(e);
        if e.is_timeout() {
            self.transient(format!(
                "{what}: no answer within {} ms (timeout): {detail}",
                self.timeout.as_millis()
            ))
        } else if e.is_builder() {
            // The request could not even be built (bad URL, bad header value): the
            // same input fails the same way next time.
            self.permanent(format!("{what}: invalid request: {detail}"))
        } else if e.is_connect() {
            self.transient(format!("{what}: cannot connect: {detail}"))
        } else {
            // Connection reset mid-request, truncated body, protocol errors.
            self.transient(format!("{what}: request failed: {detail}"))
        }
    }
}

/// 408 and 429 are the server asking to come back later; 5xx is the server's problem.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// An error and its sources, without the URL reqwest puts in its own text.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        return kind_of(e).into();
    }
    parts.join(": ")
}

/// What a sourceless reqwest error was about (its own Display would repeat the URL).
fn kind_of(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection error"
    } else if e.is_body() {
        "body error"
    } else if e.is_decode() {
        "decode error"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "request error"
    }
}

/// The provider's own description of what went wrong, from the error shapes of the
/// services we talk to; the raw body (shortened) when none matches.
pub(crate) fn provider_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return truncate(&one_line(text), MESSAGE_CHARS);
    };
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let with_prefix = |prefix: Option<String>, msg: String| match prefix {
        Some(p) if !p.is_empty() && !msg.starts_with(&p) => format!("{p}: {msg}"),
        _ => msg,
    };
    let mut msg = if let Some(m) = s(&v, "err_msg") {
        // Deepgram: {"err_code":"Bad Request","err_msg":"…","request_id":"…"}
        with_prefix(s(&v, "err_code"), m)
    } else if let Some(m) = s(&v, "ExceptionMessage") {
        // LeadSquared: {"Status":"Error","ExceptionType":"MX…","ExceptionMessage":"…"}
        with_prefix(s(&v, "ExceptionType"), m)
    } else if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        // OpenAI {"error":{"message","type","code"}}, Sarvam {"error":{"message","code"}}
        let m = s(e, "message").unwrap_or_else(|| e.to_string());
        with_prefix(s(e, "code").or_else(|| s(e, "type")), m)
    } else if let Some(m) = s(&v, "error") {
        // Ollama and whisper.cpp: {"error":"…"}
        m
    } else if let Some(m) = s(&v, "message") {
        // Deepgram's other shape: {"category":"INVALID_JSON","message":"…","details":"…"}
        let mut m = with_prefix(s(&v, "category"), m);
        if let Some(d) = s(&v, "details").filter(|d| !d.is_empty()) {
            m.push_str(&format!(" ({d})"));
        }
        m
    } else if let Some(d) = v.get("detail") {
        // FastAPI-based servers (speaches): {"detail":"…"} or [{"loc":[…],"msg":"…"}]
        match d {
            serde_json::Value::String(m) => m.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    let loc = i
                        .get("loc")
                        .and_then(|l| l.as_array())
                        .map(|l| {
                            l.iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let m = s(i, "msg").unwrap_or_else(|| i.to_string());
                    if loc.is_empty() {
                        m
                    } else {
                        format!("{loc}: {m}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    } else {
        one_line(text)
    };
    if let Some(id) = s(&v, "request_id").or_else(|| {
        v.get("error")
            .and_then(|e| e.get("request_id"))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    }) {
        // Support asks for it first.
        msg.push_str(&format!(" [request_id {id}]"));
    }
    truncate(&msg, MESSAGE_CHARS)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}… ({} chars in all)", &s[..i], s.chars().count()),
        None => s.to_string(),
    }
}

/// A URL fit for an error message: the crate's one redactor (`crate::redact`) masks the
/// password and the values of query parameters that look like credentials (presigned
/// S3/Azure/GCS URLs, `?token=`, `?key=`).
pub fn redact_url(url: &str) -> String {
    crate::redact::redact_url(url)
}

/// `base` without a trailing slash, so `format!("{base}/v1/…")` never doubles it.
pub(crate) fn trim_base(base: &str) -> String {
    base.trim().trim_end_matches('/').to_string()
}

/// Audio fetched from a call's `audio_url`, for providers that need the bytes.
pub(crate) struct Audio {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// A file name with the right extension: some servers pick the decoder by it.
    pub file_name: String,
}

/// Download a call's audio within `http.audio` (schemes, hosts, public addresses only,
/// size cap, deadline: see `audio.rs`). `sim://` and `file://` URLs belong to other
/// providers and retrying cannot change that.
pub(crate) async fn download_audio(http: &Http, url: &str) -> Result<Audio, ProviderError> {
    let reply = super::audio::fetch(http, &http.audio, url).await?;
    let what = format!("downloading audio GET {}", redact_url(url));
    if !reply.status.is_success() {
        return Err(http.status_error(&what, &reply));
    }
    if reply.body.is_empty() {
        return Err(http.permanent(format!(
            "{what}: HTTP {} with an empty body (0 bytes of audio)",
            reply.status.as_u16()
        )));
    }
    let ext = audio_extension(url);
    let content_type = reply
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        // Blob stores often answer octet-stream; the extension says more.
        .filter(|ct| !ct.is_empty() && ct != "application/octet-stream")
        .unwrap_or_else(|| mime_for(&ext).to_string());
    Ok(Audio {
        bytes: reply.body,
        content_type,
        file_name: format!("call.{ext}"),
    })
}

const AUDIO_EXTENSIONS: &[(&str, &str)] = &[
    ("wav", "audio/wav"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("mp4", "audio/mp4"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("flac", "audio/flac"),
    ("webm", "audio/webm"),
    ("aac", "audio/aac"),
    ("amr", "audio/amr"),
];

/// The audio file extension in a URL's path, `wav` when there is none we know.
fn audio_extension(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| AUDIO_EXTENSIONS.iter().any(|(x, _)| x == e))
        .unwrap_or_else(|| "wav".into())
}

fn mime_for(ext: &str) -> &'static str {
    AUDIO_EXTENSIONS
        .iter()
        .find(|(x, _)| *x == ext)
        .map_or("application/octet-stream", |(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_from_each_error_shape() {
        let m = |s: &str| provider_message(s.as_bytes());
        assert_eq!(
            m(
                r#"{"err_code":"Bad Request","err_msg":"Bad request: failed to process audio","request_id":"r1"}"#
            ),
            "Bad Request: Bad request: failed to process audio [request_id r1]"
        );
        assert_eq!(
            m(
                r#"{"category":"INVALID_JSON","message":"Invalid JSON submitted.","details":"Json deserialize error","request_id":"r2"}"#
            ),
            "INVALID_JSON: Invalid JSON submitted. (Json deserialize error) [request_id r2]"
        );
        assert_eq!(
            m(
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#
            ),
            "invalid_api_key: Incorrect API key provided"
        );
        assert_eq!(
            m(r#"{"error":"model 'llama9' not found"}"#),
            "model 'llama9' not found"
        );
        assert_eq!(
            m(
                r#"{"Status":"Error","ExceptionType":"MXDuplicateEntryException","ExceptionMessage":"A Lead with same Email already exists."}"#
            ),
            "MXDuplicateEntryException: A Lead with same Email already exists."
        );
        assert_eq!(
            m(r#"{"detail":[{"loc":["body","file"],"msg":"Field required"}]}"#),
            "body.file: Field required"
        );
        assert_eq!(
            m("<html>\n bad gateway </html>"),
            "<html> bad gateway </html>"
        );
        assert_eq!(m(""), "(empty body)");
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact_url("https://acct.blob.core.windows.net/c/call.mp3?sv=2023&sig=abc%2F&se=2025"),
            "https://acct.blob.core.windows.net/c/call.mp3?sv=2023&sig=REDACTED&se=2025"
        );
        assert_eq!(
            redact_url("https://u:p@host/a.wav?X-Amz-Signature=1&X-Amz-Credential=2&x=3"),
            "https://u:REDACTED@host/a.wav?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&x=3"
        );
        assert_eq!(redact_url("sim://audio/1?lang=de"), "sim://audio/1?lang=de");
    }

    #[test]
    fn audio_extension_from_the_path() {
        assert_eq!(audio_extension("https://h/x/call.MP3?sig=1"), "mp3");
        assert_eq!(audio_extension("https://h/x/recording"), "wav");
        assert_eq!(mime_for("mp3"), "audio/mpeg");
    }
}
