//! Retell: one signed event carries the whole call, transcript included.

use super::{
    json_body, opt_text, text, Action, CallParts, Incoming, ProviderEvent, WebhookProvider,
};
use crate::pipeline::providers::Segment;
use crate::serve::signature::{self, Refused};

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
