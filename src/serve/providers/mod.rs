//! One handler per provider: verify the request's signature, then read its payload into a
//! [`ProviderEvent`]. Adding a provider is one type implementing [`WebhookProvider`] and one
//! match arm in [`provider`].

mod retell;
mod telnyx;
mod twilio;

pub use retell::Retell;
pub use telnyx::Telnyx;
pub use twilio::{form_params, Twilio};

use super::signature::Refused;
use crate::pipeline::ingest::{CallRecord, RecordTranscript};
use crate::pipeline::providers::Segment;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// A request as the handlers see it.
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The full URL the provider called (scheme, host, path, query): Twilio signs it.
    pub url: String,
    pub now_ms: i64,
}

impl Incoming<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What one verified event means.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// Dedup key of the event (Telnyx `data.id`, Twilio idempotency token, …).
    pub event_key: String,
    pub event_type: String,
    /// The provider's id of the call the event is about (the call's external id).
    pub provider_call_id: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing callops uses (a ringing status, a call that was never answered): 2xx, no change.
    Ignore(String),
    /// Facts about the call, merged with what earlier events of the same call said.
    Merge(CallParts),
}

/// What the events of one provider call said so far. A call is created once it has its
/// end-of-call facts and something to analyze (audio or a transcript).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallParts {
    /// The event that closes the call (numbers, times) is in.
    #[serde(default)]
    pub ended: bool,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub audio_url: Option<String>,
    pub segments: Option<Vec<Segment>>,
}

impl CallParts {
    /// Fill what `self` lacks from `other` (events arrive in any order; none overwrites a
    /// fact an earlier one gave).
    pub fn merge(mut self, other: &CallParts) -> CallParts {
        self.ended |= other.ended;
        fn fill<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if a.is_none() {
                a.clone_from(b);
            }
        }
        fill(&mut self.direction, &other.direction);
        fill(&mut self.from, &other.from);
        fill(&mut self.to, &other.to);
        fill(&mut self.started_at, &other.started_at);
        fill(&mut self.duration_ms, &other.duration_ms);
        fill(&mut self.audio_url, &other.audio_url);
        fill(&mut self.segments, &other.segments);
        self
    }

    pub fn ready(&self) -> bool {
        self.ended && (self.audio_url.is_some() || self.segments.is_some())
    }

    /// What a call still waits for, for the trace and the answer.
    pub fn missing(&self) -> &'static str {
        match (
            self.ended,
            self.audio_url.is_some() || self.segments.is_some(),
        ) {
            (false, _) => "waiting for the call's end event (hangup / completed status)",
            (true, false) => "waiting for the recording (or transcript) of the call",
            (true, true) => "complete",
        }
    }

    pub fn to_record(&self, business: &str, provider: &str, call_id: &str) -> CallRecord {
        CallRecord {
            business: business.to_string(),
            external_id: call_id.to_string(),
            direction: self.direction.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            started_at: self.started_at.map(serde_json::Value::from),
            duration_s: self.duration_ms.map(|ms| ms.max(0) as f64 / 1000.0),
            audio_url: self.audio_url.clone(),
            source: Some(provider.to_string()),
            transcript: self
                .segments
                .clone()
                .map(|segments| RecordTranscript { segments }),
            ..Default::default()
        }
    }
}

/// A provider's webhook handler.
pub trait WebhookProvider: Sync {
    fn name(&self) -> &'static str;
    /// Check the signature with the business's resolved secret.
    fn verify(&self, req: &Incoming<'_>, secret: &str) -> Result<(), Refused>;
    /// Read a verified payload; `Err` is a 400 with this reason.
    fn parse(&self, req: &Incoming<'_>) -> Result<ProviderEvent, String>;
}

/// The handler for a provider name in the URL.
pub fn provider(name: &str) -> Option<&'static dyn WebhookProvider> {
    match name {
        "retell" => Some(&Retell),
        "telnyx" => Some(&Telnyx),
        "twilio" => Some(&Twilio),
        _ => None,
    }
}

pub(super) fn json_body(body: &[u8]) -> Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON: {}",
            crate::pipeline::ingest::validate::sanitize_message(&e.to_string())
        )
    })?;
    if !v.is_object() {
        return Err("body must be a JSON object".into());
    }
    Ok(v)
}

pub(super) fn text<'a>(v: &'a serde_json::Value, path: &str) -> Result<&'a str, String> {
    let mut cur = v;
    for k in path.split('.') {
        cur = cur.get(k).ok_or_else(|| format!("{path} is missing"))?;
    }
    match cur.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(format!("{path} is empty")),
        None => Err(format!("{path} must be a string")),
    }
}

pub(super) fn opt_text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(super) fn rfc3339_ms(v: &serde_json::Value, key: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| format!("{key} is not an RFC 3339 time")),
        Some(_) => Err(format!("{key} must be an RFC 3339 string")),
    }
}
