//! One handler per provider: verify the request's signature, then read its payload into a
//! [`ProviderEvent`]. Adding a provider is one type implementing [`WebhookProvider`] and one
//! match arm in [`provider`].

use super::signature::{self, Refused};
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

fn json_body(body: &[u8]) -> Result<serde_json::Value, String> {
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

fn text<'a>(v: &'a serde_json::Value, path: &str) -> Result<&'a str, String> {
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

fn opt_text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn rfc3339_ms(v: &serde_json::Value, key: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| format!("{key} is not an RFC 3339 time")),
        Some(_) => Err(format!("{key} must be an RFC 3339 string")),
    }
}

/// Retell `call_ended` / `call_analyzed`: everything in one event, transcript included.
pub struct Retell;

impl WebhookProvider for Retell {
    fn name(&self) -> &'static str {
        "retell"
    }

    fn verify(&self, req: &Incoming<'_>, secret: &str) -> Result<(), Refused> {
        signature::verify_retell(
            req.header("x-retell-signature"),
            req.body,
            secret,
            req.now_ms,
        )
    }

    fn parse(&self, req: &Incoming<'_>) -> Result<ProviderEvent, String> {
        let v = json_body(req.body)?;
        let event = text(&v, "event")?.to_string();
        let call = v
            .get("call")
            .filter(|c| c.is_object())
            .ok_or("call object is missing")?;
        let call_id = text(call, "call_id")
            .map_err(|e| format!("call.{e}"))?
            .to_string();
        let ev = |action| ProviderEvent {
            event_key: format!("{call_id}:{event}"),
            event_type: event.clone(),
            provider_call_id: call_id.clone(),
            action,
        };
        if !matches!(event.as_str(), "call_ended" | "call_analyzed") {
            return Ok(ev(Action::Ignore(format!(
                "event {event:?} is not used (call_ended and call_analyzed are)"
            ))));
        }
        let ms = |k: &str| -> Result<Option<i64>, String> {
            match call.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| format!("call.{k} must be epoch milliseconds")),
            }
        };
        let start = ms("start_timestamp")?;
        let duration = match ms("duration_ms")? {
            Some(d) => Some(d),
            None => match (start, ms("end_timestamp")?) {
                (Some(s), Some(e)) if e >= s => Some(e - s),
                _ => None,
            },
        };
        let direction = match opt_text(call, "direction").as_deref() {
            None => None,
            Some(d @ ("inbound" | "outbound")) => Some(d.to_string()),
            Some(_) => return Err("call.direction must be \"inbound\" or \"outbound\"".into()),
        };
        Ok(ev(Action::Merge(CallParts {
            ended: true,
            direction,
            from: opt_text(call, "from_number"),
            to: opt_text(call, "to_number"),
            started_at: start,
            duration_ms: duration,
            audio_url: opt_text(call, "recording_url"),
            segments: retell_segments(call)?,
        })))
    }
}

/// `transcript_object` (roles, optional word timings), else the `Agent: …` / `User: …` text.
fn retell_segments(call: &serde_json::Value) -> Result<Option<Vec<Segment>>, String> {
    let role = |r: &str| if r == "agent" { "agent" } else { "caller" }.to_string();
    let mut out = Vec::new();
    match call.get("transcript_object") {
        Some(serde_json::Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                let content = it.get("content").and_then(|c| c.as_str()).ok_or_else(|| {
                    format!("call.transcript_object[{i}].content must be a string")
                })?;
                if content.trim().is_empty() {
                    continue;
                }
                let words = it.get("words").and_then(|w| w.as_array());
                let t = |w: Option<&serde_json::Value>, k: &str| {
                    w.and_then(|w| w.get(k)).and_then(|x| x.as_f64())
                };
                let start = t(words.and_then(|w| w.first()), "start").unwrap_or(0.0);
                let end = t(words.and_then(|w| w.last()), "end")
                    .unwrap_or(start)
                    .max(start);
                out.push(Segment {
                    speaker: role(it.get("role").and_then(|r| r.as_str()).unwrap_or("user")),
                    start,
                    end,
                    text: content.trim().to_string(),
                });
            }
        }
        Some(serde_json::Value::Null) | None => {
            for line in call
                .get("transcript")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .lines()
            {
                let (speaker, said) = match line.split_once(':') {
                    Some((who, said)) if who.trim().eq_ignore_ascii_case("agent") => {
                        ("agent", said)
                    }
                    Some((who, said)) if who.trim().eq_ignore_ascii_case("user") => ("user", said),
                    _ => ("user", line),
                };
                if !said.trim().is_empty() {
                    out.push(Segment {
                        speaker: role(speaker),
                        start: 0.0,
                        end: 0.0,
                        text: said.trim().to_string(),
                    });
                }
            }
        }
        Some(_) => return Err("call.transcript_object must be an array".into()),
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Telnyx `call.hangup` (numbers, times) and `call.recording.saved` (audio), deduplicated
/// on `data.id`, keyed by `call_session_id`.
pub struct Telnyx;

impl WebhookProvider for Telnyx {
    fn name(&self) -> &'static str {
        "telnyx"
    }

    fn verify(&self, req: &Incoming<'_>, secret: &str) -> Result<(), Refused> {
        signature::verify_telnyx(
            req.header("telnyx-signature-ed25519"),
            req.header("telnyx-timestamp"),
            req.body,
            secret,
            req.now_ms,
        )
    }

    fn parse(&self, req: &Incoming<'_>) -> Result<ProviderEvent, String> {
        let v = json_body(req.body)?;
        let data = v
            .get("data")
            .filter(|d| d.is_object())
            .ok_or("data object is missing")?;
        let id = text(data, "id")
            .map_err(|e| format!("data.{e}"))?
            .to_string();
        let event_type = text(data, "event_type")
            .map_err(|e| format!("data.{e}"))?
            .to_string();
        let payload = data
            .get("payload")
            .filter(|p| p.is_object())
            .ok_or("data.payload object is missing")?;
        let call_id = text(payload, "call_session_id")
            .or_else(|_| text(payload, "call_control_id"))
            .map_err(|_| "data.payload.call_session_id is missing".to_string())?
            .to_string();
        let action = match event_type.as_str() {
            "call.hangup" => {
                let occurred = rfc3339_ms(data, "occurred_at").map_err(|e| format!("data.{e}"))?;
                let start =
                    rfc3339_ms(payload, "start_time").map_err(|e| format!("data.payload.{e}"))?;
                let direction = match opt_text(payload, "direction").as_deref() {
                    Some("outgoing") | Some("outbound") => Some("outbound".to_string()),
                    Some(_) | None => Some("inbound".to_string()),
                };
                Action::Merge(CallParts {
                    ended: true,
                    direction,
                    from: opt_text(payload, "from"),
                    to: opt_text(payload, "to"),
                    started_at: start,
                    // Telnyx sends no duration: the hangup's time minus the call's start.
                    duration_ms: match (start, occurred) {
                        (Some(s), Some(e)) if e >= s => Some(e - s),
                        _ => None,
                    },
                    ..Default::default()
                })
            }
            "call.recording.saved" => {
                let url = ["recording_urls", "public_recording_urls"]
                    .iter()
                    .filter_map(|k| payload.get(*k))
                    .find_map(|u| opt_text(u, "mp3").or_else(|| opt_text(u, "wav")))
                    .ok_or("data.payload.recording_urls has no mp3 or wav URL")?;
                Action::Merge(CallParts {
                    audio_url: Some(url),
                    ..Default::default()
                })
            }
            other => Action::Ignore(format!(
                "event type {other:?} is not used (call.hangup and call.recording.saved are)"
            )),
        };
        Ok(ProviderEvent {
            event_key: id,
            event_type,
            provider_call_id: call_id,
            action,
        })
    }
}

/// Twilio status callbacks (`CallStatus=completed`: numbers, duration) and recording
/// callbacks (`RecordingUrl`), form-encoded, keyed by `CallSid`.
pub struct Twilio;

pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

impl WebhookProvider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn verify(&self, req: &Incoming<'_>, secret: &str) -> Result<(), Refused> {
        signature::verify_twilio(
            req.header("x-twilio-signature"),
            &req.url,
            &form_params(req.body),
            secret,
        )
    }

    fn parse(&self, req: &Incoming<'_>) -> Result<ProviderEvent, String> {
        if std::str::from_utf8(req.body).is_err() {
            return Err("body is not UTF-8 form data".into());
        }
        let params = form_params(req.body);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let call_sid = get("CallSid").ok_or("CallSid is missing (not a Twilio call callback)")?;
        let token = req.header("i-twilio-idempotency-token").map(str::to_string);
        if let Some(rec_sid) = get("RecordingSid") {
            let status = get("RecordingStatus").unwrap_or_else(|| "completed".into());
            let key = token.unwrap_or_else(|| format!("recording:{rec_sid}:{status}"));
            let action = if status != "completed" {
                Action::Ignore(format!(
                    "recording status {status:?}: only completed recordings are used"
                ))
            } else {
                let url = get("RecordingUrl").ok_or("RecordingUrl is missing")?;
                Action::Merge(CallParts {
                    audio_url: Some(url),
                    ..Default::default()
                })
            };
            return Ok(ProviderEvent {
                event_key: key,
                event_type: "recording".into(),
                provider_call_id: call_sid,
                action,
            });
        }
        let status = get("CallStatus")
            .ok_or("CallStatus is missing (neither a status nor a recording callback)")?;
        let key = token.unwrap_or_else(|| format!("status:{call_sid}:{status}"));
        let action = if status != "completed" {
            Action::Ignore(format!(
                "call status {status:?}: only completed calls are analyzed"
            ))
        } else {
            let duration_ms = match get("CallDuration") {
                None => None,
                Some(d) => Some(
                    d.parse::<i64>()
                        .ok()
                        .filter(|d| *d >= 0)
                        .ok_or("CallDuration must be whole seconds")?
                        * 1000,
                ),
            };
            // `Timestamp` is when the callback fired (the end): the start is before it.
            let ended = get("Timestamp")
                .and_then(|t| chrono::DateTime::parse_from_rfc2822(&t).ok())
                .map(|t| t.timestamp_millis());
            Action::Merge(CallParts {
                ended: true,
                direction: Some(
                    if get("Direction").is_some_and(|d| d.starts_with("outbound")) {
                        "outbound"
                    } else {
                        "inbound"
                    }
                    .into(),
                ),
                from: get("From"),
                to: get("To"),
                started_at: ended.map(|e| e - duration_ms.unwrap_or(0)),
                duration_ms,
                ..Default::default()
            })
        };
        Ok(ProviderEvent {
            event_key: key,
            event_type: format!("status:{status}"),
            provider_call_id: call_sid,
            action,
        })
    }
}
