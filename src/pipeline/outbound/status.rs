//! Outcomes of outbound calls: the one writer of status changes, for polls and webhooks.

use crate::domain::stage::Stage;
use crate::pipeline::ingest::{CallRecord, IngestReport, Ingestor, RecordTranscript};
use crate::pipeline::providers::voice::{CallReport, Progress};
use crate::pipeline::providers::Segment;
use crate::queue::Broker;
use crate::store::events::NewEvent;
use crate::store::{Ctx, Store};

/// What `apply_status` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// No outbound call of this business has that provider call id.
    Unknown,
    /// Already recorded (a duplicate or late webhook, or a poll that saw nothing new).
    Unchanged,
    /// Still going; now in this state.
    Progressed(Progress),
    /// Ended; the conversation entered the pipeline as call `result_call_id` (None when
    /// there was nothing to analyse: no answer, failed, no transcript or recording).
    Ended {
        status: Progress,
        result_call_id: Option<i64>,
    },
}

/// Record the provider's status of outbound call `provider_call_id` of `business_id`.
/// Idempotent: a repeated or late report changes nothing. When the call has ended with a
/// transcript or a recording, it is ingested (direction outbound, from the business's
/// number to the lead, campaign = the lead's form) like any other call, so the AI's own
/// call gets QC and analysis, and it is linked to the lead.
///
/// Webhook handlers (`callops serve`: Retell `call_ended`/`call_analyzed`) call this with
/// `voice::retell::report_of(&body["call"])`.
pub async fn apply_status(
    store: &Store,
    broker: &dyn Broker,
    business_id: i64,
    provider_call_id: &str,
    report: &CallReport,
) -> anyhow::Result<Applied> {
    let Some(row) = store
        .outbound_by_provider_id(business_id, provider_call_id)
        .await?
    else {
        return Ok(Applied::Unknown);
    };
    let was_final = Progress::parse(&row.status).is_some_and(|p| p.is_final());
    let has_content = !report.turns.is_empty() || report.recording_url.is_some();
    if !report.progress.is_final() {
        if was_final || row.status == report.progress.as_str() {
            return Ok(Applied::Unchanged);
        }
        let reason = format!(
            "{} reports call {provider_call_id} {} ({})",
            row.provider.as_deref().unwrap_or("provider"),
            report.progress.as_str(),
            report.detail
        );
        let changed = update(
            store,
            row.id,
            &row.status,
            report.progress.as_str(),
            &reason,
            None,
            None,
        )
        .await?;
        if changed {
            trace(store, &row, &reason).await?;
            return Ok(Applied::Progressed(report.progress));
        }
        return Ok(Applied::Unchanged);
    }
    if was_final && (row.result_call_id.is_some() || !has_content) {
        return Ok(Applied::Unchanged);
    }
    // Ingest first (idempotent by external id): a crash after it and before the update
    // finds the same call again on the next report.
    let result_call_id = if has_content && report.progress == Progress::Completed {
        Some(ingest_result(store, broker, &row, provider_call_id, report).await?)
    } else {
        None
    };
    let reason = format!(
        "call {provider_call_id} ended: {} ({}, {} s){}",
        report.progress.as_str(),
        report.detail,
        report.duration_ms / 1000,
        result_call_id
            .map(|c| format!("; conversation ingested as call {c} for QC and analysis"))
            .unwrap_or_default()
    );
    let from = row.status.clone();
    let changed = update(
        store,
        row.id,
        &from,
        report.progress.as_str(),
        &reason,
        Some(crate::now_ms()),
        result_call_id,
    )
    .await?;
    if changed {
        trace(store, &row, &reason).await?;
        Ok(Applied::Ended {
            status: report.progress,
            result_call_id,
        })
    } else {
        Ok(Applied::Unchanged)
    }
}

async fn update(
    store: &Store,
    id: i64,
    from: &str,
    to: &str,
    reason: &str,
    ended_at: Option<i64>,
    result_call_id: Option<i64>,
) -> crate::store::Result<bool> {
    // Fenced by the status it was read in: a concurrent poll and webhook write it once.
    let r = sqlx::query(
        "UPDATE outbound_calls SET status = $1, reason = $2, ended_at = COALESCE($3, ended_at), \
         result_call_id = COALESCE($4, result_call_id), updated_at = $5 WHERE id = $6 AND status = $7",
    )
    .bind(to)
    .bind(reason)
    .bind(ended_at)
    .bind(result_call_id)
    .bind(crate::now_ms())
    .bind(id)
    .bind(from)
    .execute(store.pool())
    .await
    .ctx(|| format!("recording the status of outbound call {id}"))?;
    Ok(r.rows_affected() == 1)
}

async fn trace(
    store: &Store,
    row: &crate::store::outbound::OutboundCall,
    reason: &str,
) -> crate::store::Result<()> {
    let Some(call_id) = row.origin_call_id else {
        return Ok(());
    };
    store
        .append_event(
            store.pool(),
            &NewEvent {
                call_id,
                business_id: row.business_id,
                stage: Stage::Notify,
                kind: "outbound",
                reason: format!("outbound #{}: {reason}", row.id),
                detail: None,
                actor: "outbound",
            },
        )
        .await
}

/// The ended call as a call record of the business, through the ordinary ingest path.
async fn ingest_result(
    store: &Store,
    broker: &dyn Broker,
    row: &crate::store::outbound::OutboundCall,
    provider_call_id: &str,
    report: &CallReport,
) -> anyhow::Result<i64> {
    let business = store.business(row.business_id).await?;
    let settings = store.outbound_settings(row.business_id).await?;
    let agent = match row.voice_agent_id {
        Some(id) => store
            .voice_agents(Some(row.business_id))
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .map(|a| a.name),
        None => None,
    };
    let segments: Vec<Segment> = report
        .turns
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| Segment {
            speaker: speaker.clone(),
            start: i as f64 * 5.0,
            end: i as f64 * 5.0 + 4.5,
            text: text.clone(),
        })
        .collect();
    let provider = row.provider.clone().unwrap_or_else(|| "voice".into());
    let record = CallRecord {
        business: business.name.clone(),
        external_id: format!("outbound:{provider}:{provider_call_id}"),
        direction: Some("outbound".into()),
        from: settings.from_number.clone(),
        to: row.to_number.clone(),
        started_at: report
            .started_at
            .or(row.dialed_at)
            .map(serde_json::Value::from),
        duration_s: Some(report.duration_ms as f64 / 1000.0),
        audio_url: report.recording_url.clone(),
        language: None,
        agent,
        campaign: row.form.clone(),
        lead_id: Some(row.lead_id.to_string()),
        source: Some(provider),
        transcript: (!segments.is_empty()).then_some(RecordTranscript { segments }),
    };
    let mut rep = IngestReport::default();
    let call_id = Ingestor::new(store, broker)
        .ingest(&record, &mut rep)
        .await?;
    sqlx::query("UPDATE calls SET lead_id = $1 WHERE id = $2 AND lead_id IS NULL")
        .bind(row.lead_id)
        .bind(call_id)
        .execute(store.pool())
        .await
        .ctx(|| format!("linking call {call_id} to lead {}", row.lead_id))?;
    Ok(call_id)
}
