//! The demo's voice provider: no network. The call id is derived from the idempotency key,
//! so asking twice (a retry after a crash) is the same call, as with a real provider that
//! honours idempotency keys. Outcomes are deterministic per number.

use super::{CallReport, DialRequest, Dialled, Progress, VoiceProvider};
use crate::pipeline::providers::sim::{hash, unit};
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct SimulatedVoice {
    /// Call id → (number, polls so far).
    calls: Mutex<HashMap<String, (String, u32)>>,
}

#[async_trait]
impl VoiceProvider for SimulatedVoice {
    fn name(&self) -> &str {
        "simulated"
    }

    async fn create_call(&self, req: &DialRequest) -> Result<Dialled, ProviderError> {
        let id = format!("sim_{:016x}", hash(&[&req.idempotency_key]));
        self.calls
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_insert((req.to_number.clone(), 0));
        Ok(Dialled {
            provider_call_id: id,
            status: "registered".into(),
        })
    }

    async fn find_call(&self, req: &DialRequest) -> Result<Option<Dialled>, ProviderError> {
        let id = format!("sim_{:016x}", hash(&[&req.idempotency_key]));
        Ok(self
            .calls
            .lock()
            .unwrap()
            .contains_key(&id)
            .then(|| Dialled {
                provider_call_id: id,
                status: "registered".into(),
            }))
    }

    async fn call_status(&self, id: &str) -> Result<CallReport, ProviderError> {
        let mut calls = self.calls.lock().unwrap();
        let entry = calls.entry(id.to_string()).or_insert((String::new(), 0));
        entry.1 += 1;
        let polls = entry.1;
        let roll = unit(hash(&[id, "outcome"]));
        let (progress, detail) = match polls {
            1 => (Progress::Connected, "ongoing"),
            _ if roll < 0.65 => (Progress::Completed, "user_hangup"),
            _ if roll < 0.85 => (Progress::NoAnswer, "dial_no_answer"),
            _ => (Progress::Failed, "dial_failed"),
        };
        let turns = if progress == Progress::Completed {
            vec![
                (
                    "agent".to_string(),
                    "Hello, this is the assistant calling about your enquiry. Is now a good time?"
                        .to_string(),
                ),
                (
                    "caller".to_string(),
                    "Yes, go ahead. I filled in the form yesterday.".to_string(),
                ),
                (
                    "agent".to_string(),
                    "Great. Would you like to book a visit this week?".to_string(),
                ),
                (
                    "caller".to_string(),
                    if roll < 0.35 {
                        "Yes, Thursday afternoon works for me."
                    } else {
                        "Not yet, please send me the brochure first."
                    }
                    .to_string(),
                ),
            ]
        } else {
            Vec::new()
        };
        Ok(CallReport {
            progress,
            detail: detail.into(),
            started_at: None,
            duration_ms: if progress == Progress::Completed {
                45_000 + (roll * 90_000.0) as i64
            } else {
                0
            },
            recording_url: None,
            turns,
        })
    }
}
