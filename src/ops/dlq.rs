//! DLQ actions: retry or discard one, several, a signature group, or everything matching a
//! filter (not just the page shown). Retry publishes and waits for the confirm before the
//! row is marked retried; a run killed midway is simply run again.

use super::{Action, Ops, Result};
use crate::domain::stage::Stage;
use crate::queue::dlq as qdlq;
use crate::store::audit::NewAudit;
use crate::store::events::NewEvent;
use crate::store::DeadJobFilter;
use serde::Serialize;

/// Which dead jobs an action is about.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Selection {
    Ids(Vec<i64>),
    /// Everything matching, across all pages.
    Matching(DeadJobFilter),
}

impl Selection {
    /// Actions only ever touch rows still dead, whatever the browsing filter showed.
    fn dead_only(&self) -> Selection {
        match self {
            Selection::Matching(f) => Selection::Matching(DeadJobFilter {
                status: Some(crate::store::DeadJobStatus::Dead),
                with_history: false,
                ..f.clone()
            }),
            ids => ids.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Selection::Ids(ids) if ids.len() <= 10 => format!("dead jobs {ids:?}"),
            Selection::Ids(ids) => format!("{} marked dead jobs", ids.len()),
            Selection::Matching(f) => format!(
                "dead jobs matching {}",
                serde_json::to_string(f).unwrap_or_default()
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DlqOutcome {
    pub dry_run: bool,
    /// How many rows the action applies to (the count preview of a confirmation).
    pub matched: i64,
    pub changed: u64,
    pub skipped_undecodable: Vec<i64>,
}

impl Ops {
    /// Count what a selection covers (still-dead rows only).
    pub async fn dlq_count(&self, sel: &Selection) -> Result<i64> {
        Ok(match &sel.dead_only() {
            Selection::Ids(ids) => self
                .store
                .dead_jobs_by_ids(ids)
                .await?
                .iter()
                .filter(|d| d.status == crate::store::DeadJobStatus::Dead)
                .count() as i64,
            Selection::Matching(f) => self.store.count_dead_jobs(f).await?,
        })
    }

    pub async fn dlq_retry(&self, sel: &Selection, dry_run: bool) -> Result<DlqOutcome> {
        self.permit(Action::DlqRetry).await?;
        let sel = &sel.dead_only();
        let matched = self.dlq_count(sel).await?;
        if dry_run {
            return Ok(DlqOutcome {
                dry_run,
                matched,
                ..Default::default()
            });
        }
        // Each batch writes its own audit row and trace rows with its change.
        let by = qdlq::RetryBy {
            actor: &self.actor.name,
            role: self.actor.role.as_str(),
            target: sel.describe(),
        };
        let report = match sel {
            Selection::Ids(ids) => {
                qdlq::retry_dead_jobs(&self.store, &*self.broker, ids, &by).await?
            }
            Selection::Matching(f) => {
                qdlq::retry_matching(&self.store, &*self.broker, f, &by).await?
            }
        };
        Ok(DlqOutcome {
            dry_run,
            matched,
            changed: report.retried,
            skipped_undecodable: report.skipped_undecodable,
        })
    }

    pub async fn dlq_discard(&self, sel: &Selection, dry_run: bool) -> Result<DlqOutcome> {
        self.permit(Action::DlqDiscard).await?;
        let sel = &sel.dead_only();
        let matched = self.dlq_count(sel).await?;
        if dry_run {
            return Ok(DlqOutcome {
                dry_run,
                matched,
                ..Default::default()
            });
        }
        let mut changed = 0;
        match sel {
            Selection::Ids(ids) => {
                for chunk in ids.chunks(1000) {
                    changed += self.discard_batch(chunk, sel).await?;
                }
            }
            Selection::Matching(f) => {
                let mut after = 0;
                loop {
                    let ids = self.store.dead_job_ids(f, after, 1000).await?;
                    let Some(&last) = ids.last() else { break };
                    after = last;
                    changed += self.discard_batch(&ids, sel).await?;
                }
            }
        }
        Ok(DlqOutcome {
            dry_run,
            matched,
            changed,
            skipped_undecodable: vec![],
        })
    }

    /// Discard one batch: the rows, a trace row on each call and one audit row naming the
    /// rows commit together (a bulk discard killed midway is audited for exactly what it did).
    async fn discard_batch(&self, ids: &[i64], sel: &Selection) -> Result<u64> {
        let mut tx = self.store.begin_write().await?;
        let done = self
            .store
            .discard_dead_jobs_in(&mut tx, ids, &self.actor.name)
            .await?;
        if done.is_empty() {
            return Ok(0);
        }
        for (id, call_id, business_id, stage) in &done {
            if let (Some(call_id), Some(business_id)) = (call_id, business_id) {
                self.store
                    .append_event(
                        &mut *tx,
                        &NewEvent {
                            call_id: *call_id,
                            business_id: *business_id,
                            stage: stage
                                .as_deref()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(Stage::Sync),
                            kind: Action::DlqDiscard.name(),
                            reason: format!(
                                "dead job #{id} discarded by {} ({})",
                                self.actor.name, self.actor.role
                            ),
                            detail: None,
                            actor: &self.actor.name,
                        },
                    )
                    .await?;
            }
        }
        let names: Vec<String> = done.iter().map(|d| d.0.to_string()).collect();
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: Action::DlqDiscard.name(),
                    target: sel.describe(),
                    before: Some(format!("{} dead", done.len())),
                    after: Some(format!("discarded dead jobs #{}", names.join(", #"))),
                    detail: None,
                },
            )
            .await?;
        tx.commit().await.map_err(|e| {
            super::OpsError::Invalid(format!("committing a DLQ discard batch: {e}"))
        })?;
        Ok(done.len() as u64)
    }
}
