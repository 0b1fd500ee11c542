//! sync: the call record is in; normalize the caller's number, apply the lead filter, and
//! keep a transcript that came with the record (voice-agent webhooks deliver one).

use super::{Outcome, StageError};
use crate::domain::phone::{normalize_phone, NumberStatus};
use crate::pipeline::context::PipelineCtx;
use crate::queue::Job;
use crate::store::events::NewEvent;
use crate::store::transcripts::StoredTranscript;
use crate::store::Call;

pub async fn run(ctx: &PipelineCtx, call: &Call, _job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    let business = store.business_recent(call.business_id).await?;
    let phone = normalize_phone(call.from_number.as_deref(), &business.default_region);
    super::run_scope::set_call(
        store,
        call.id,
        vec![
            ("from_e164", phone.e164.clone()),
            ("number_status", Some(phone.status.as_str().into())),
        ],
    )
    .await?;
    super::run_scope::note(
        store,
        &NewEvent {
            call_id: call.id,
            business_id: call.business_id,
            stage: crate::domain::stage::Stage::Sync,
            kind: "number",
            reason: format!("caller number {}: {}", phone.status.as_str(), phone.reason),
            detail: None,
            actor: "pipeline",
        },
    )
    .await?;

    if business.lead_filter {
        let known = match (&phone.status, &phone.e164) {
            (NumberStatus::Valid, Some(e164)) => {
                store.lead_by_phone(call.business_id, e164).await?.is_some()
            }
            _ => false,
        };
        if !known {
            sqlx::query("UPDATE calls SET lead_filter_skipped = 1 WHERE id = $1")
                .bind(call.id)
                .execute(store.pool())
                .await
                .map_err(|e| {
                    StageError::Transient(format!("marking call {} lead-filtered: {e}", call.id))
                })?;
            return Ok(Outcome::Done {
                reason: format!(
                    "lead filter on for business '{}': caller {} is not a known lead phone → call skipped (turn the filter off or import leads if this is wrong)",
                    business.name,
                    phone.e164.as_deref().unwrap_or(phone.status.as_str())
                ),
            });
        }
    }

    let raw: serde_json::Value = super::run_scope::record(store, call.id)
        .await
        .map(|r| serde_json::from_str(&r.raw).unwrap_or(serde_json::Value::Null))
        .map_err(|e| {
            StageError::Transient(format!("reading the record of call {}: {e}", call.id))
        })?;
    if let Some(t) = crate::pipeline::ingest::transcript_from_record(&raw) {
        let source = raw["source"]
            .as_str()
            .unwrap_or("the call record")
            .to_string();
        super::run_scope::save_transcript(
            store,
            StoredTranscript {
                call_id: call.id,
                provider: format!("record:{source}"),
                language: call.language.clone(),
                text: t.text.clone(),
                segments: serde_json::to_string(&t.segments).expect("segments serialize"),
                stt_skipped: Some(format!(
                    "transcript delivered with the call record by {source}"
                )),
                created_at: crate::now_ms(),
            },
        )
        .await?;
        return Ok(Outcome::Next {
            reason: format!(
                "synced; transcript with {} segments came with the record from {source}",
                t.segments.len()
            ),
        });
    }
    if call.audio_url.is_none() {
        return Err(StageError::Permanent(format!(
            "call {} ({:?}) has neither audio_url nor transcript: nothing to transcribe",
            call.id, call.external_id
        )));
    }
    Ok(Outcome::Next {
        reason: "synced; audio to transcribe".into(),
    })
}
