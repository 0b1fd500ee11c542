//! DLQ operations shared by both brokers: retry marks the dead row retried and writes the
//! fresh job (transactional outbox) and the audit row in one transaction per batch; the
//! row stays as history.

use super::{Broker, Job, Result};
use crate::store::{DeadJobFilter, Store};

/// Outcome of a bulk retry.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RetryReport {
    pub retried: u64,
    /// Rows that could not become a job again (undecodable payload, unknown stage):
    /// left `dead` so an operator can read or discard them.
    pub skipped_undecodable: Vec<i64>,
}

/// Who retries, for the audit row each batch writes in its own transaction.
#[derive(Debug, Clone)]
pub struct RetryBy<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    /// What the operator selected, in words (the audit row's target).
    pub target: String,
}

impl<'a> RetryBy<'a> {
    /// A retry by `actor` with the admin role (CLI tools and tests).
    pub fn admin(actor: &'a str) -> Self {
        RetryBy {
            actor,
            role: "admin",
            target: "dead jobs".into(),
        }
    }
}

/// Retry these dead rows. Rows no longer `dead` (retried meanwhile) are skipped. Each batch
/// of up to 500 commits its rows' status, their new jobs (outbox), a trace row per call and
/// one audit row naming the rows together: an action killed midway leaves audit rows for
/// exactly what it changed.
pub async fn retry_dead_jobs(
    store: &Store,
    broker: &dyn Broker,
    ids: &[i64],
    by: &RetryBy<'_>,
) -> Result<RetryReport> {
    let mut report = RetryReport::default();
    for chunk in ids.chunks(500) {
        let rows = store.dead_jobs_by_ids(chunk).await?;
        let mut tx = store.begin_write().await?;
        let mut jobs: Vec<Job> = Vec::new();
        let mut retried = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.status == crate::store::DeadJobStatus::Dead)
        {
            let Some(job) = row.to_retry_job() else {
                report.skipped_undecodable.push(row.id);
                continue;
            };
            if !store
                .mark_dead_job_retried_in(&mut tx, row.id, &job.id, by.actor)
                .await?
            {
                continue;
            }
            if let (Some(call_id), Some(business_id), Some(stage)) = (
                row.call_id,
                row.business_id,
                row.stage.as_deref().and_then(|s| s.parse().ok()),
            ) {
                store
                    .append_event(
                        &mut *tx,
                        &crate::store::events::NewEvent {
                            call_id,
                            business_id,
                            stage,
                            kind: "dlq.retry",
                            reason: format!(
                                "dead job #{} retried by {} ({}) as job {}",
                                row.id, by.actor, by.role, job.id
                            ),
                            detail: None,
                            actor: by.actor,
                        },
                    )
                    .await?;
            }
            retried.push(row.id);
            jobs.push(job);
        }
        if !jobs.is_empty() {
            super::outbox::enqueue_in(&mut tx, broker.kind(), &jobs).await?;
            store
                .append_audit(
                    &mut *tx,
                    &crate::store::audit::NewAudit {
                        actor: by.actor,
                        role: by.role,
                        action: "dlq.retry",
                        target: by.target.clone(),
                        before: Some(format!("{} dead", retried.len())),
                        after: Some(format!(
                            "retried dead jobs #{}",
                            retried
                                .iter()
                                .map(|i| i.to_string())
                                .collect::<Vec<_>>()
                                .join(", #")
                        )),
                        detail: None,
                    },
                )
                .await?;
        }
        tx.commit()
            .await
            .map_err(|e| super::QueueError::Other(format!("committing a DLQ retry batch: {e}")))?;
        broker.enqueued();
        report.retried += jobs.len() as u64;
    }
    // Out now when we can; a worker's relay publishes whatever this cannot.
    let _ = super::outbox::flush(store, broker, std::time::Duration::from_secs(10)).await;
    Ok(report)
}

/// Retry everything matching `filter` (not just a page), in batches, oldest first.
/// Safe to run again after a crash: it continues with the rows still `dead`.
pub async fn retry_matching(
    store: &Store,
    broker: &dyn Broker,
    filter: &DeadJobFilter,
    by: &RetryBy<'_>,
) -> Result<RetryReport> {
    let mut report = RetryReport::default();
    let mut after = 0i64;
    loop {
        let ids = store.dead_job_ids(filter, after, 500).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        let r = retry_dead_jobs(store, broker, &ids, by).await?;
        report.retried += r.retried;
        report.skipped_undecodable.extend(r.skipped_undecodable);
    }
    Ok(report)
}
