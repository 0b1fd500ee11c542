//! Twilio: form-encoded status and recording callbacks.

use super::{Action, CallParts, Incoming, ProviderEvent, WebhookProvider};
use crate::serve::signature::{self, Refused};

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
