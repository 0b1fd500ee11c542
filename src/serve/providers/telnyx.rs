//! Telnyx Call Control: the hangup and the recording arrive as separate events.

use super::{
    json_body, opt_text, rfc3339_ms, text, Action, CallParts, Incoming, ProviderEvent,
    WebhookProvider,
};
use crate::serve::signature::{self, Refused};

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
