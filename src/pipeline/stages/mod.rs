//! Stage handlers. `handle` is the one entry point: it checks that the delivery is still
//! wanted (idempotency), moves the call, runs the stage, and settles the job — in the
//! order that can duplicate work after a crash but never lose a call.

pub mod analyze;
pub mod link;
pub mod notify;
pub mod sync;
pub mod transcribe;

use super::context::PipelineCtx;
use crate::domain::stage::{CallState, Position, Stage};
use crate::queue::{Delivery, FailOutcome, Job};
use crate::store::calls::Move;
use crate::store::{Call, StoreError};

/// What a stage decided for the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// On to the next stage.
    Next { reason: String },
    /// The link stage wants a person.
    Review { reason: String },
    /// Finished (after notify, or stopped by a rule — the reason says which).
    Done { reason: String },
}

/// Why a stage failed.
#[derive(Debug, Clone, PartialEq)]
pub enum StageError {
    /// Retry with backoff (timeouts, 429/5xx, malformed model output, database hiccups).
    Transient(String),
    /// Retrying cannot help (4xx from a provider, a record without audio or transcript).
    Permanent(String),
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        StageError::Transient(e.to_string())
    }
}

impl From<crate::pipeline::providers::ProviderError> for StageError {
    fn from(e: crate::pipeline::providers::ProviderError) -> Self {
        if e.is_permanent() {
            StageError::Permanent(e.to_string())
        } else {
            StageError::Transient(e.to_string())
        }
    }
}

/// What `handle` did with a delivery (for tests and counters).
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Advanced(Position),
    Retrying,
    Dead,
    /// A redelivery for a call that already moved on: acked without doing anything again.
    Duplicate(String),
    /// Could not even settle the job (broker or database down): it will come back.
    Unsettled(String),
}

fn mv<'a>(
    to: Position,
    expect: Option<Position>,
    kind: &'a str,
    reason: String,
    error: Option<String>,
) -> Move<'a> {
    Move {
        to,
        expect,
        kind,
        reason,
        error,
        actor: "pipeline",
    }
}

pub async fn handle(ctx: &PipelineCtx, d: Delivery) -> Handled {
    let job = d.job.clone();
    let Some(call_id) = job.call_id else {
        return settle_dead(ctx, d, None, "job has no call_id: nothing to work on").await;
    };
    let attempt = job.attempts + 1;
    let start_reason = if d.redelivered {
        format!("{} started (attempt {attempt}, redelivered)", job.stage)
    } else {
        format!("{} started (attempt {attempt})", job.stage)
    };
    // Fast path: one statement moves a waiting call to running.
    let started = match ctx
        .store
        .start_call(call_id, job.business_id, job.stage)
        .await
    {
        Ok(c) => c,
        Err(e) => return settle_fail(ctx, d, None, &e.to_string()).await,
    };
    let call = match started {
        Some(call) => {
            let _ = ctx
                .store
                .append_event(
                    ctx.store.pool(),
                    &crate::store::events::NewEvent {
                        call_id,
                        business_id: call.business_id,
                        stage: job.stage,
                        kind: "started",
                        reason: start_reason,
                        detail: None,
                        actor: "pipeline",
                    },
                )
                .await;
            call
        }
        None => match start_slow(ctx, &job, call_id, start_reason).await {
            Start::Run(call) => call,
            Start::Dead(why) => return settle_dead(ctx, d, None, &why).await,
            Start::Fail(call, why) => return settle_fail(ctx, d, call.as_ref(), &why).await,
            Start::Duplicate(call, why) => return settle_duplicate(ctx, d, &call, why).await,
        },
    };
    let result = match job.stage {
        Stage::Sync => sync::run(ctx, &call, &job).await,
        Stage::Transcribe => transcribe::run(ctx, &call, &job).await,
        Stage::Analyze => analyze::run(ctx, &call, &job).await,
        Stage::Link => link::run(ctx, &call, &job).await,
        Stage::Notify => notify::run(ctx, &call, &job).await,
    };
    let audio_s = call.duration_ms / 1000;
    match result {
        Ok(outcome) => settle_success(ctx, d, &call, outcome, audio_s).await,
        Err(StageError::Permanent(msg)) => {
            let _ = ctx
                .store
                .bump_throughput(ctx.store.pool(), call.business_id, job.stage, 0, 0, 1)
                .await;
            settle_dead(ctx, d, Some(&call), &msg).await
        }
        Err(StageError::Transient(msg)) => {
            let _ = ctx
                .store
                .bump_throughput(ctx.store.pool(), call.business_id, job.stage, 0, 0, 1)
                .await;
            settle_fail(ctx, d, Some(&call), &msg).await
        }
    }
}

/// How a careful start ended: run the stage, or settle the delivery instead.
enum Start {
    Run(Call),
    Dead(String),
    Fail(Option<Call>, String),
    Duplicate(Call, String),
}

/// The careful start, when the call is not simply waiting at the job's stage: a stale or
/// misrouted delivery, an operator's retry of a dead job, a call that does not exist.
async fn start_slow(ctx: &PipelineCtx, job: &Job, call_id: i64, start_reason: String) -> Start {
    let call = match ctx.store.call(call_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => {
            return Start::Dead(format!("call {call_id} does not exist (job {})", job.id))
        }
        Err(e) => return Start::Fail(None, e.to_string()),
    };
    if let Some(why) = stale(&call, job) {
        return Start::Duplicate(call, why);
    }
    let running = Position::new(job.stage, CallState::Running);
    if call.state == CallState::Dead {
        let reason = format!("dead {} job retried as job {}", job.stage, job.id);
        let to = Position::new(job.stage, CallState::Pending);
        if let Err(e) = ctx
            .store
            .move_call(
                call_id,
                &mv(to, Some(call.position()), "retried", reason, None),
            )
            .await
        {
            return Start::Fail(Some(call), e.to_string());
        }
    }
    match ctx
        .store
        .move_call(call_id, &mv(running, None, "started", start_reason, None))
        .await
    {
        Ok(c) => Start::Run(c),
        Err(StoreError::IllegalTransition(t)) => {
            Start::Duplicate(call, format!("not runnable: {t}"))
        }
        Err(e) => Start::Fail(Some(call), e.to_string()),
    }
}

/// Is this delivery for work already done (or not ours to do)? Returns why.
fn stale(call: &Call, job: &Job) -> Option<String> {
    if call.business_id != job.business_id {
        return Some(format!(
            "job is for business {} but call {} belongs to {}",
            job.business_id, call.id, call.business_id
        ));
    }
    if call.stage != job.stage {
        return Some(format!(
            "call is at {} now, job is for {}",
            call.position(),
            job.stage
        ));
    }
    match call.state {
        // Dead at this stage + a job for it = an operator retried the dead job.
        CallState::Pending | CallState::Running | CallState::Retrying | CallState::Dead => None,
        other => Some(format!("call is {} at {}", other, call.stage)),
    }
}

async fn settle_success(
    ctx: &PipelineCtx,
    d: Delivery,
    call: &Call,
    outcome: Outcome,
    audio_s: i64,
) -> Handled {
    let stage = d.job.stage;
    let running = Position::new(stage, CallState::Running);
    let (to, reason, next_job) = match outcome {
        Outcome::Next { reason } => match stage.next() {
            Some(next) => (
                Position::new(next, CallState::Pending),
                reason,
                Some(Job::new(
                    call.business_id,
                    next,
                    Some(call.id),
                    serde_json::json!({ "call_id": call.id }),
                )),
            ),
            None => (Position::new(stage, CallState::Done), reason, None),
        },
        Outcome::Review { reason } => (Position::new(stage, CallState::Review), reason, None),
        Outcome::Done { reason } => (Position::new(stage, CallState::Done), reason, None),
    };
    let kind = match to.state {
        CallState::Review => "review",
        CallState::Done => "done",
        _ => "completed",
    };
    // The move and its throughput count commit together, so buckets always sum to the
    // calls that went through (a crash cannot count a call twice or not at all).
    let moved = async {
        let mut tx = ctx.store.begin_write().await?;
        ctx.store
            .move_call_in(&mut tx, call.id, &mv(to, Some(running), kind, reason, None))
            .await?;
        ctx.store
            .bump_throughput(&mut *tx, call.business_id, stage, 1, audio_s, 0)
            .await?;
        tx.commit().await.map_err(|e| StoreError::Db {
            context: format!("committing the {stage} result of call {}", call.id),
            source: e,
        })
    }
    .await;
    match moved {
        Ok(()) => {}
        // Someone else (a concurrent redelivery, an operator) moved it: their move stands.
        Err(StoreError::Conflict(why)) => {
            return ack_or_unsettled(d, Handled::Duplicate(why)).await
        }
        Err(e) => return settle_fail(ctx, d, Some(call), &e.to_string()).await,
    }
    if let Some(job) = next_job {
        // Publish before ack: a crash here leaves the call pending at the next stage and
        // this job unacked; its redelivery republishes (see settle_duplicate).
        if let Err(e) = ctx.broker.publish(&job).await {
            return Handled::Unsettled(format!("publishing the {} job failed: {e}", job.stage));
        }
    }
    ack_or_unsettled(d, Handled::Advanced(to)).await
}

async fn ack_or_unsettled(d: Delivery, then: Handled) -> Handled {
    match d.ack().await {
        Ok(()) => then,
        Err(e) => Handled::Unsettled(format!("ack failed (the job will be redelivered): {e}")),
    }
}

/// A redelivery for a call that moved on. If the call waits at the next stage, its job may
/// have been lost in a crash between commit and publish: publish it again (the next stage
/// is idempotent, so a duplicate costs only a skipped delivery).
async fn settle_duplicate(ctx: &PipelineCtx, d: Delivery, call: &Call, why: String) -> Handled {
    let stage = d.job.stage;
    if stage.next() == Some(call.stage) && call.state == CallState::Pending {
        let job = Job::new(
            call.business_id,
            call.stage,
            Some(call.id),
            serde_json::json!({ "call_id": call.id }),
        );
        if let Err(e) = ctx.broker.publish(&job).await {
            return Handled::Unsettled(format!("republishing the {} job failed: {e}", call.stage));
        }
    }
    let _ = ctx
        .store
        .append_event(
            ctx.store.pool(),
            &crate::store::events::NewEvent {
                call_id: call.id,
                business_id: call.business_id,
                stage,
                kind: "duplicate",
                reason: format!("duplicate {stage} delivery ignored: {why}"),
                detail: None,
                actor: "pipeline",
            },
        )
        .await;
    ack_or_unsettled(d, Handled::Duplicate(why)).await
}

async fn settle_fail(ctx: &PipelineCtx, d: Delivery, call: Option<&Call>, error: &str) -> Handled {
    let stage = d.job.stage;
    let attempt = d.job.attempts + 1;
    match d.fail(error).await {
        Ok(FailOutcome::Retrying { attempt, delay }) => {
            if let Some(c) = call {
                let reason = format!(
                    "{stage} failed (attempt {attempt}), retrying in {} ms",
                    delay.as_millis()
                );
                let _ = ctx
                    .store
                    .move_call(
                        c.id,
                        &mv(
                            Position::new(stage, CallState::Retrying),
                            None,
                            "retry",
                            reason,
                            Some(error.into()),
                        ),
                    )
                    .await;
            }
            Handled::Retrying
        }
        Ok(FailOutcome::Dead { dead_job_id }) => {
            if let Some(c) = call {
                let reason = format!("{stage} failed {attempt} times: dead job #{dead_job_id}");
                let _ = ctx
                    .store
                    .move_call(
                        c.id,
                        &mv(
                            Position::new(stage, CallState::Dead),
                            None,
                            "dead",
                            reason,
                            Some(error.into()),
                        ),
                    )
                    .await;
            }
            Handled::Dead
        }
        Err(e) => Handled::Unsettled(format!("could not record the failure ({error}): {e}")),
    }
}

async fn settle_dead(ctx: &PipelineCtx, d: Delivery, call: Option<&Call>, error: &str) -> Handled {
    let stage = d.job.stage;
    match d.dead(error).await {
        Ok(dead_job_id) => {
            if let Some(c) = call {
                let reason = format!("{stage} failed permanently: dead job #{dead_job_id}");
                let _ = ctx
                    .store
                    .move_call(
                        c.id,
                        &mv(
                            Position::new(stage, CallState::Dead),
                            None,
                            "dead",
                            reason,
                            Some(error.into()),
                        ),
                    )
                    .await;
            }
            Handled::Dead
        }
        Err(e) => Handled::Unsettled(format!("could not dead-letter ({error}): {e}")),
    }
}
