//! Call actions: retry the failed stage, trigger QC, create the lead.

use super::{Action, Ops, OpsError, Result};
use crate::domain::stage::{CallState, Position, Stage};
use crate::queue::Job;
use crate::store::audit::NewAudit;
use crate::store::calls::Move;
use crate::store::{DeadJobFilter, DeadJobStatus};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallActionOutcome {
    pub dry_run: bool,
    pub call_id: i64,
    /// What was (or would be) done, in words.
    pub did: String,
}

impl Ops {
    /// Retry a dead or stuck call at its current stage: a dead job is retried from the DLQ
    /// (so its row becomes history); a call stuck without a job gets a new one.
    pub async fn call_retry(&self, call_id: i64, dry_run: bool) -> Result<CallActionOutcome> {
        self.permit(Action::CallRetry).await?;
        let call = self.store.call(call_id).await?;
        if !matches!(
            call.state,
            CallState::Dead | CallState::Pending | CallState::Retrying
        ) {
            return Err(OpsError::Invalid(format!(
                "call {call_id} is {}: only dead, pending or retrying calls can be retried",
                call.position()
            )));
        }
        let dead = self
            .store
            .list_dead_jobs(
                &DeadJobFilter {
                    status: Some(DeadJobStatus::Dead),
                    call_id: Some(call_id),
                    stage: Some(call.stage),
                    ..Default::default()
                },
                None,
                10,
            )
            .await?;
        let did = match dead.first() {
            Some(d) => format!("retry dead job #{} at {}", d.id, call.stage),
            None => format!("publish a new {} job", call.stage),
        };
        if dry_run {
            return Ok(CallActionOutcome {
                dry_run,
                call_id,
                did,
            });
        }
        match dead.first() {
            Some(d) => {
                // The dead row, the new job and the audit row commit together.
                crate::queue::dlq::retry_dead_jobs(
                    &self.store,
                    &*self.broker,
                    &[d.id],
                    &crate::queue::dlq::RetryBy {
                        actor: &self.actor.name,
                        role: self.actor.role.as_str(),
                        target: format!("call {call_id}"),
                    },
                )
                .await?;
            }
            None => {
                let job = Job::new(
                    call.business_id,
                    call.stage,
                    Some(call.id),
                    serde_json::json!({ "call_id": call.id }),
                );
                let mut tx = self.store.begin_write().await?;
                crate::queue::outbox::enqueue_in(&mut tx, self.broker.kind(), &[job]).await?;
                self.store
                    .append_audit(
                        &mut *tx,
                        &NewAudit {
                            actor: &self.actor.name,
                            role: self.actor.role.as_str(),
                            action: Action::CallRetry.name(),
                            target: format!("call {call_id}"),
                            before: Some(call.position().to_string()),
                            after: Some(did.clone()),
                            detail: None,
                        },
                    )
                    .await?;
                self.store
                    .append_event(
                        &mut *tx,
                        &crate::store::events::NewEvent {
                            call_id,
                            business_id: call.business_id,
                            stage: call.stage,
                            kind: Action::CallRetry.name(),
                            reason: format!("{did} — by {} ({})", self.actor.name, self.actor.role),
                            detail: None,
                            actor: &self.actor.name,
                        },
                    )
                    .await?;
                tx.commit().await.map_err(|e| {
                    OpsError::Invalid(format!("committing the retry of call {call_id}: {e}"))
                })?;
                self.jobs_committed().await;
            }
        }
        Ok(CallActionOutcome {
            dry_run,
            call_id,
            did,
        })
    }

    /// Run the business's QC agents on a finished call now, whatever auto-QC says; the
    /// result and its reason appear in the trace.
    pub async fn call_qc(&self, call_id: i64, dry_run: bool) -> Result<CallActionOutcome> {
        self.permit(Action::CallQc).await?;
        let payload = serde_json::json!({ "call_id": call_id, "qc_requested_by": self.actor.name });
        self.rerun(Action::CallQc, call_id, Stage::Analyze, payload, dry_run)
            .await
    }

    /// Create or update the call's lead now (the notify rules; a duplicate updates).
    pub async fn call_lead(&self, call_id: i64, dry_run: bool) -> Result<CallActionOutcome> {
        self.permit(Action::CallLead).await?;
        let payload =
            serde_json::json!({ "call_id": call_id, "lead_requested_by": self.actor.name });
        self.rerun(Action::CallLead, call_id, Stage::Notify, payload, dry_run)
            .await
    }

    async fn rerun(
        &self,
        action: Action,
        call_id: i64,
        stage: Stage,
        payload: serde_json::Value,
        dry_run: bool,
    ) -> Result<CallActionOutcome> {
        let call = self.store.call(call_id).await?;
        if call.state != CallState::Done {
            return Err(OpsError::Invalid(format!(
                "call {call_id} is at {}: {} runs on finished calls; wait until the pipeline is done with it",
                call.position(),
                action.name()
            )));
        }
        let did = format!(
            "send call {call_id} to {stage} ({} by {})",
            action.name(),
            self.actor.name
        );
        if dry_run {
            return Ok(CallActionOutcome {
                dry_run,
                call_id,
                did,
            });
        }
        let mut tx = self.store.begin_write().await?;
        self.store
            .move_call_in(
                &mut tx,
                call_id,
                &Move {
                    to: Position::new(stage, CallState::Pending),
                    expect: Some(call.position()),
                    kind: action.name(),
                    reason: format!(
                        "{} requested by {} ({})",
                        action.name(),
                        self.actor.name,
                        self.actor.role
                    ),
                    error: None,
                    actor: &self.actor.name,
                },
            )
            .await?;
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: action.name(),
                    target: format!("call {call_id}"),
                    before: Some(call.position().to_string()),
                    after: Some(Position::new(stage, CallState::Pending).to_string()),
                    detail: None,
                },
            )
            .await?;
        // The job commits with the move and the audit row (transactional outbox).
        crate::queue::outbox::enqueue_in(
            &mut tx,
            self.broker.kind(),
            &[Job::new(call.business_id, stage, Some(call_id), payload)],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        self.jobs_committed().await;
        Ok(CallActionOutcome {
            dry_run,
            call_id,
            did,
        })
    }
}
