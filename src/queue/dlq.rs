//! DLQ operations shared by both brokers: retry publishes a fresh job and waits for the
//! confirm *before* marking the dead row retried (a crash in between may duplicate a
//! job, never lose one); the row stays as history.

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

/// Retry these dead rows. Rows no longer `dead` (retried meanwhile) are skipped.
pub async fn retry_dead_jobs(
    store: &Store,
    broker: &dyn Broker,
    ids: &[i64],
    by: &str,
) -> Result<RetryReport> {
    let mut report = RetryReport::default();
    for chunk in ids.chunks(500) {
        let rows = store.dead_jobs_by_ids(chunk).await?;
        let mut jobs: Vec<Job> = Vec::new();
        let mut mapping = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.status == crate::store::DeadJobStatus::Dead)
        {
            match row.to_retry_job() {
                Some(job) => {
                    mapping.push((row.id, job.id.clone()));
                    jobs.push(job);
                }
                None => report.skipped_undecodable.push(row.id),
            }
        }
        broker.publish_many(&jobs).await?;
        report.retried += store.mark_dead_jobs_retried(&mapping, by).await?;
    }
    Ok(report)
}

/// Retry everything matching `filter` (not just a page), in batches, oldest first.
/// Safe to run again after a crash: it continues with the rows still `dead`.
pub async fn retry_matching(
    store: &Store,
    broker: &dyn Broker,
    filter: &DeadJobFilter,
    by: &str,
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
