//! A verified provider event → the database, in ONE transaction: its dedup row, the merged
//! state of its provider call, and — once the call is complete — the call and its sync job
//! (through `ingest::commit_call_in`, the same path as `callops ingest`). The caller
//! answers 2xx only after this returns Ok, i.e. after the commit.
//!
//! Exactly one call per provider call id, under any concurrency: the event's dedup key, the
//! provider call's row and the call's (business, external id) are unique keys, and the
//! provider call's row is locked while its events are merged.

use super::providers::{Action, CallParts, ProviderEvent};
use crate::domain::stage::Stage;
use crate::pipeline::ingest::{commit_call_in, validate};
use crate::queue::Broker;
use crate::store::businesses::Business;
use crate::store::events::NewEvent;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// The event completed the call: it is created with its sync job.
    Created { call_id: i64 },
    /// Stored; the call waits for its other event (e.g. the recording after the hangup).
    Waiting(&'static str),
    /// This event was received before, or the call exists already: no change.
    Duplicate { call_id: Option<i64> },
    /// An event callops does not use.
    Ignored(String),
}

impl Accepted {
    pub fn result(&self) -> &'static str {
        match self {
            Accepted::Created { .. } => "created",
            Accepted::Waiting(_) => "waiting",
            Accepted::Duplicate { .. } => "duplicate",
            Accepted::Ignored(_) => "ignored",
        }
    }
}

/// Bounds the event's facts before anything is written; `Err` is a 400.
pub fn check(
    business: &Business,
    provider: &str,
    ev: &ProviderEvent,
    limits: &validate::Limits,
) -> Result<(), String> {
    for (field, v) in [
        ("event id", &ev.event_key),
        ("event type", &ev.event_type),
        ("call id", &ev.provider_call_id),
    ] {
        validate::check_text(field, v, limits.max_field_chars, false)?;
    }
    if let Action::Merge(parts) = &ev.action {
        validate::check_record(
            &parts.to_record(&business.name, provider, &ev.provider_call_id),
            limits,
        )?;
    }
    Ok(())
}

pub async fn accept(
    store: &Store,
    broker: &dyn Broker,
    business: &Business,
    provider: &str,
    ev: &ProviderEvent,
) -> anyhow::Result<Accepted> {
    let parts = match &ev.action {
        Action::Ignore(why) => return Ok(Accepted::Ignored(why.clone())),
        Action::Merge(p) => p,
    };
    let now = crate::now_ms();
    let mut tx = store.begin_write().await?;
    let Some(event_row) = store
        .insert_webhook_event_in(
            &mut tx,
            business.id,
            provider,
            &ev.event_key,
            &ev.event_type,
            &ev.provider_call_id,
            now,
        )
        .await?
    else {
        // Redelivered or replayed: nothing of it is written (the transaction is dropped).
        return Ok(Accepted::Duplicate { call_id: None });
    };
    let (record, call_id) = store
        .lock_webhook_call_in(&mut tx, business.id, provider, &ev.provider_call_id, now)
        .await?;
    let before: CallParts = serde_json::from_str(&record).unwrap_or_default();
    let merged = before.merge(parts);
    let outcome = match call_id {
        Some(id) => Accepted::Duplicate { call_id: Some(id) },
        None if merged.ready() => {
            let r = merged.to_record(&business.name, provider, &ev.provider_call_id);
            let c = commit_call_in(store, &mut tx, broker.kind(), business.id, &r).await?;
            if c.created {
                // The trace says which webhook made the call (and that it waited for it).
                store
                    .append_event(
                        &mut *tx,
                        &NewEvent {
                            call_id: c.call_id,
                            business_id: business.id,
                            stage: Stage::Sync,
                            kind: "webhook",
                            reason: format!(
                                "{provider} webhook {} completed call {:?} ({})",
                                ev.event_type,
                                ev.provider_call_id,
                                if merged.segments.is_some() {
                                    "transcript delivered: STT will be skipped"
                                } else {
                                    "recording to transcribe"
                                }
                            ),
                            detail: None,
                            actor: "serve",
                        },
                    )
                    .await?;
                Accepted::Created { call_id: c.call_id }
            } else {
                // A call with this id came in by another way (a JSONL ingest, a source sync).
                Accepted::Duplicate {
                    call_id: Some(c.call_id),
                }
            }
        }
        None => Accepted::Waiting(merged.missing()),
    };
    let linked = match &outcome {
        Accepted::Created { call_id } => Some(*call_id),
        Accepted::Duplicate { call_id } => *call_id,
        _ => None,
    };
    store
        .save_webhook_call_in(
            &mut tx,
            business.id,
            provider,
            &ev.provider_call_id,
            &serde_json::to_string(&merged)?,
            linked,
        )
        .await?;
    store
        .finish_webhook_event_in(&mut tx, event_row, outcome.result(), linked)
        .await?;
    crate::failpoint::hit("webhook_before_commit").await;
    tx.commit().await.map_err(|e| {
        anyhow::anyhow!(
            "committing {provider} event {:?} of business {:?}: {e}",
            ev.event_key,
            business.name
        )
    })?;
    // Committed but not yet answered: the provider retries and gets `duplicate`.
    crate::failpoint::hit("webhook_after_commit").await;
    if matches!(outcome, Accepted::Created { .. }) {
        broker.enqueued();
        // RabbitMQ: publish the job now; a worker's relay publishes it if this fails.
        if let Err(e) =
            crate::queue::outbox::flush(store, broker, std::time::Duration::from_secs(5)).await
        {
            tracing::warn!(error = %e, "webhook: job left in the outbox for a worker's relay");
        }
    }
    Ok(outcome)
}
