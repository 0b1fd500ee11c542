//! The orphan alarm: a sweep for live calls that nothing will move on (no job, no outbox
//! row, no live lease). Delivery does not depend on it — the outbox commits every job
//! with the change that implies it — so each orphan found is a bug: it gets an `orphan`
//! trace row and a counted alarm, and its stage job is published once so the call is not
//! stuck while someone investigates.

use super::context::PipelineCtx;
use crate::store::orphans::Orphan;
use crate::store::StoreError;
use std::collections::HashSet;
use std::time::Duration;

/// What one sweep found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sweep {
    /// Orphans seen (alarmed now or before).
    pub found: u64,
    /// Alarms raised (and jobs republished) by this sweep.
    pub raised: u64,
}

/// One sweep. `grace` keeps calls whose state changed moments ago out of it.
pub async fn sweep(ctx: &PipelineCtx, grace: Duration) -> Result<Sweep, String> {
    let mut candidates = ctx
        .store
        .orphan_candidates(grace.as_millis() as i64, 500)
        .await
        .map_err(|e| e.to_string())?;
    if ctx.broker.kind() != "database" && !candidates.is_empty() {
        // RabbitMQ's queued jobs are not rows here: a call whose stage queue still holds
        // messages (ready or unacked) may be waiting its turn, so only calls of empty
        // queues count. Retrying calls wait in shared delay queues: give them the longest
        // delay tier on top of the grace.
        let businesses: Vec<i64> = candidates
            .iter()
            .map(|o| o.business_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let stats = ctx
            .broker
            .queue_stats(&businesses)
            .await
            .map_err(|e| e.to_string())?;
        let busy: HashSet<String> = stats
            .iter()
            .filter(|q| q.depth > 0 || q.in_flight.unwrap_or(0) > 0)
            .map(|q| q.queue.clone())
            .collect();
        let longest = ctx.settings.longest_retry_delay.as_millis() as i64;
        let now = crate::now_ms();
        candidates.retain(|o| {
            !busy.contains(&o.stage.queue_for(o.business_id))
                && (o.state != "retrying"
                    || now - o.state_since > longest + grace.as_millis() as i64)
        });
    }
    let mut out = Sweep {
        found: candidates.len() as u64,
        raised: 0,
    };
    for o in &candidates {
        match raise(ctx, o).await {
            Ok(true) => {
                out.raised += 1;
                tracing::error!(call = o.call_id, stage = %o.stage, state = %o.state, "ORPHAN: live call with no job, outbox row or lease; its job was published again");
            }
            Ok(false) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if out.raised > 0 {
        ctx.broker.enqueued();
    }
    Ok(out)
}

async fn raise(ctx: &PipelineCtx, o: &Orphan) -> Result<bool, StoreError> {
    let mut tx = ctx.store.begin_write().await?;
    if !ctx.store.claim_orphan_alarm_in(&mut tx, o).await? {
        return Ok(false);
    }
    let secs = (crate::now_ms() - o.state_since) / 1000;
    ctx.store
        .append_event(
            &mut *tx,
            &crate::store::events::NewEvent {
                call_id: o.call_id,
                business_id: o.business_id,
                stage: o.stage,
                kind: "orphan",
                reason: format!(
                    "ORPHAN: {}/{} for {secs} s with no job, no outbox row and no live lease (a delivery bug: please report it); its job is published again once",
                    o.stage, o.state
                ),
                detail: None,
                actor: "pipeline",
            },
        )
        .await?;
    let job = crate::queue::Job::new(
        o.business_id,
        o.stage,
        Some(o.call_id),
        serde_json::json!({ "call_id": o.call_id }),
    );
    crate::queue::outbox::enqueue_in(&mut tx, ctx.broker.kind(), std::slice::from_ref(&job))
        .await?;
    tx.commit().await.map_err(|e| StoreError::Db {
        context: format!("committing the orphan alarm of call {}", o.call_id),
        source: e,
    })?;
    Ok(true)
}
