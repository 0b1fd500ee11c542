//! Voice-agent providers that place outbound AI calls: Retell (`create-phone-call`), a
//! generic HTTP voice-agent API (URL, auth header and JSON body template configured per
//! business) and `simulated` for the demo. One trait, so the dispatcher does not care.
//!
//! Errors follow the shared HTTP policy (`providers::http`): 429/5xx/timeouts are
//! `Transient` (the dispatcher retries with backoff), other 4xx `Permanent` with the
//! provider's own message (the call is marked failed with it).

pub mod http_api;
pub mod retell;
pub mod simulated;

use super::ProviderError;
use crate::store::outbound::OutboundSettings;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One call to place.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    /// Stable per lead: the provider is asked with it (header `Idempotency-Key`, and in the
    /// call's metadata), so asking again after a crash finds the same call.
    pub idempotency_key: String,
    pub from_number: Option<String>,
    pub to_number: String,
    /// The provider's agent id (voice_agents.provider_agent_id).
    pub agent_id: String,
    /// Dynamic variables for the agent's prompt: lead_name, form, lead_id, business.
    pub variables: BTreeMap<String, String>,
}

/// The provider accepted the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialled {
    pub provider_call_id: String,
    /// The provider's own status word ("registered", "queued", …), for the trace.
    pub status: String,
}

/// Where a call is, in our words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Accepted, not yet answered.
    Initiated,
    /// Answered, still going.
    Connected,
    /// Ended after a conversation.
    Completed,
    NoAnswer,
    Failed,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Initiated => "initiated",
            Progress::Connected => "connected",
            Progress::Completed => "completed",
            Progress::NoAnswer => "no_answer",
            Progress::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Progress> {
        Some(match s {
            "initiated" => Progress::Initiated,
            "connected" => Progress::Connected,
            "completed" => Progress::Completed,
            "no_answer" => Progress::NoAnswer,
            "failed" => Progress::Failed,
            _ => return None,
        })
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Progress::Completed | Progress::NoAnswer | Progress::Failed
        )
    }
}

/// A call's status as the provider reports it (poll, or a webhook through `apply_status`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    pub progress: Progress,
    /// The provider's reason words ("user_hangup", "dial_no_answer", …).
    pub detail: String,
    pub started_at: Option<i64>,
    pub duration_ms: i64,
    pub recording_url: Option<String>,
    /// Turns of the conversation: (speaker "agent"/"caller", text).
    pub turns: Vec<(String, String)>,
}

#[async_trait]
pub trait VoiceProvider: Send + Sync {
    fn name(&self) -> &str;
    /// Place the call.
    async fn create_call(&self, req: &DialRequest) -> Result<Dialled, ProviderError>;
    /// The call an earlier attempt with this idempotency key already placed, if the
    /// provider can tell (asked before dialling again after a crash).
    async fn find_call(&self, req: &DialRequest) -> Result<Option<Dialled>, ProviderError>;
    async fn call_status(&self, provider_call_id: &str) -> Result<CallReport, ProviderError>;
}

/// Map the Retell-style call status + disconnection reason onto our progress.
pub fn progress_of(call_status: &str, disconnection_reason: &str) -> Progress {
    let r = disconnection_reason.to_ascii_lowercase();
    match call_status.to_ascii_lowercase().as_str() {
        "registered" | "queued" | "ringing" | "initiated" | "dialing" => Progress::Initiated,
        "ongoing" | "in_progress" | "in-progress" | "connected" | "answered" => Progress::Connected,
        "not_connected" => {
            if r.contains("no_answer") || r.contains("busy") || r.contains("voicemail") {
                Progress::NoAnswer
            } else {
                Progress::Failed
            }
        }
        "ended" | "completed" | "done" => {
            if r.contains("no_answer") || r.contains("busy") || r.contains("voicemail") {
                Progress::NoAnswer
            } else if r.starts_with("dial_failed") || r.starts_with("error") {
                Progress::Failed
            } else {
                Progress::Completed
            }
        }
        "no_answer" | "no-answer" | "busy" => Progress::NoAnswer,
        _ => Progress::Failed,
    }
}

/// Build the provider a business's outbound settings name. Errors name the setting.
pub fn build_voice(
    s: &OutboundSettings,
    timeout: Duration,
) -> Result<Arc<dyn VoiceProvider>, String> {
    let key = || match s.key_ref.as_deref().filter(|k| !k.trim().is_empty()) {
        Some(r) => super::registry::resolve_secret(r, "voice key").map(Some),
        None => Ok(None),
    };
    match s.provider.as_str() {
        "simulated" => Ok(Arc::new(simulated::SimulatedVoice::default())),
        "retell" => {
            let key = key()?.ok_or_else(|| {
                "voice provider retell needs a key: callops outbound config BUSINESS --voice-key env:RETELL_API_KEY".to_string()
            })?;
            let base = s
                .base_url
                .clone()
                .unwrap_or_else(|| "https://api.retellai.com".into());
            Ok(Arc::new(retell::Retell::new(&base, key, timeout)?))
        }
        "http" => {
            let base = s.base_url.clone().ok_or_else(|| {
                "voice provider http needs --voice-url (the create-call endpoint)".to_string()
            })?;
            Ok(Arc::new(http_api::HttpVoice::new(
                &base,
                key()?,
                s.auth_header.clone(),
                s.body_template.clone(),
                s.status_path.clone(),
                timeout,
            )?))
        }
        other => Err(format!(
            "voice provider {other:?} is not one of simulated, retell, http"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_statuses_map_to_progress() {
        assert_eq!(progress_of("registered", ""), Progress::Initiated);
        assert_eq!(progress_of("ongoing", ""), Progress::Connected);
        assert_eq!(progress_of("ended", "user_hangup"), Progress::Completed);
        assert_eq!(progress_of("ended", "dial_no_answer"), Progress::NoAnswer);
        assert_eq!(
            progress_of("not_connected", "dial_busy"),
            Progress::NoAnswer
        );
        assert_eq!(
            progress_of("not_connected", "dial_failed"),
            Progress::Failed
        );
        assert_eq!(progress_of("error", ""), Progress::Failed);
    }
}
