//! transcribe: speech to text with the business's STT provider — unless the record
//! brought its own transcript, in which case the trace says STT was skipped and why.

use super::{Outcome, StageError};
use crate::pipeline::context::PipelineCtx;
use crate::pipeline::providers::stt::SttRequest;
use crate::queue::Job;
use crate::store::transcripts::StoredTranscript;
use crate::store::Call;

pub async fn run(ctx: &PipelineCtx, call: &Call, _job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    if let Some(t) = super::run_scope::transcript(store, call.id).await? {
        let why = t
            .stt_skipped
            .unwrap_or_else(|| format!("already transcribed by {}", t.provider));
        return Ok(Outcome::Next {
            reason: format!("stt skipped: {why}"),
        });
    }
    let business = store.business_recent(call.business_id).await?;
    // The business's own client (registry); a misconfigured business waits (issue 11).
    let provider = ctx
        .providers
        .stt_for(store, &business)
        .await
        .map_err(|m| StageError::Transient(m.to_string()))?;
    let audio_url = call
        .audio_url
        .clone()
        .ok_or_else(|| StageError::Permanent(format!("call {} has no audio_url", call.id)))?;
    let t = provider
        .transcribe(&SttRequest {
            audio_url,
            language: call.language.clone(),
            duration_ms: call.duration_ms,
        })
        .await?;
    let n = t.segments.len();
    let speakers: std::collections::BTreeSet<_> =
        t.segments.iter().map(|s| s.speaker.clone()).collect();
    super::run_scope::save_transcript(
        store,
        StoredTranscript {
            call_id: call.id,
            provider: t.provider.clone(),
            language: t.language.clone().or(call.language.clone()),
            text: t.text.clone(),
            segments: serde_json::to_string(&t.segments).expect("segments serialize"),
            stt_skipped: None,
            created_at: crate::now_ms(),
        },
    )
    .await?;
    Ok(Outcome::Next {
        reason: format!(
            "transcribed by {}: {n} segments, {} speakers, {} s, language {}",
            t.provider,
            speakers.len(),
            call.duration_ms / 1000,
            t.language.as_deref().unwrap_or("unknown")
        ),
    })
}
