//! Stage handlers. `handle` is the one entry point: it checks that the delivery is still
//! wanted (idempotency), moves the call, runs the stage, and settles the job — in the
//! order that can duplicate work after a crash but never lose a call.

pub mod analyze;
pub mod link;
pub mod notify;
pub mod run_scope;
pub mod sync;
pub mod transcribe;

use super::context::PipelineCtx;
use crate::domain::stage::{CallState, Position, Stage};
use crate::queue::{Delivery, Job, QueueError};
use crate::store::calls::Move;
use crate::store::stage_commit::{JobTable, StageCommitOwned};
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
    /// `then`, plus writes it implies (an outbound call for a new lead, issue 16) that
    /// `settle_success` commits in the same transaction as the result.
    With {
        then: Box<Outcome>,
        follow_ups: Vec<crate::pipeline::outbound::FollowUp>,
    },
}

impl Outcome {
    /// The plain outcome and its follow-up writes.
    pub fn into_parts(self) -> (Outcome, Vec<crate::pipeline::outbound::FollowUp>) {
        match self {
            Outcome::With { then, follow_ups } => {
                let (o, mut more) = then.into_parts();
                more.extend(follow_ups);
                (o, more)
            }
            o => (o, Vec::new()),
        }
    }
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
    /// The stage runs elsewhere under a live lease: put back until that lease would end.
    Deferred(String),
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
    if !d.is_live() {
        // Buffered before its channel died: the broker hands the message out again, so
        // running it here as well would run the stage twice.
        return Handled::Unsettled(format!(
            "delivery of job {} came over a channel that has closed since: skipped (the broker redelivers it)",
            job.id
        ));
    }
    let Some(call_id) = job.call_id else {
        return settle_dead(ctx, d, None, None, "job has no call_id: nothing to work on").await;
    };
    let attempt = job.attempts + 1;
    let start_reason = if d.redelivered {
        format!("{} started (attempt {attempt}, redelivered)", job.stage)
    } else {
        format!("{} started (attempt {attempt})", job.stage)
    };
    let token: i64 = rand::Rng::gen_range(&mut rand::thread_rng(), 1..i64::MAX);
    let lease_until = || crate::now_ms() + ctx.settings.lease.as_millis() as i64;
    // Fast path: one statement moves a waiting call to running under this run's lease.
    // What the stage reads first comes with the start: the transcript (the stages after
    // sync), the intent and record (sync, link).
    let reads_transcript = matches!(job.stage, Stage::Transcribe | Stage::Analyze | Stage::Link);
    let reads_record = matches!(job.stage, Stage::Sync | Stage::Link);
    let started = match ctx
        .store
        .start_call_grouped(crate::store::group_commit::StartRequest {
            call_id,
            business_id: job.business_id,
            stage: job.stage,
            token,
            lease_until: lease_until(),
            reason: start_reason,
            with_transcript: reads_transcript,
            with_record: reads_record,
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return settle_fail(ctx, d, None, None, &e.to_string(), None).await,
    };
    let (call, transcript, record) = match started {
        Some(s) => (s.call, s.transcript, s.record),
        None => match start_slow(ctx, &job, call_id, token, lease_until()).await {
            Start::Run(call) => (call, None, None),
            Start::Dead(why) => return settle_dead(ctx, d, None, None, &why).await,
            Start::Fail(why) => return settle_fail(ctx, d, None, None, &why, None).await,
            Start::Duplicate(call, why) => return settle_duplicate(ctx, d, &call, why).await,
            Start::Busy(call, left_ms) => return settle_busy(d, &call, left_ms).await,
        },
    };
    let scope = run_scope::RunScope::with_start(call.id, transcript, record);
    let result = match run_leased(ctx, &d, &call, &job, token, &scope).await {
        Ok(r) => r,
        Err(lost) => {
            // Another run owns the call now; it does the work. Nothing of ours commits.
            return ack_or_unsettled(d, Handled::Duplicate(lost)).await;
        }
    };
    let audio_s = call.duration_ms / 1000;
    if crate::failpoint::enabled() {
        crate::failpoint::hit(&format!("before_commit.{}", job.stage)).await;
    }
    match result {
        Ok(outcome) => settle_success(ctx, d, &call, outcome, audio_s, token, scope.take()).await,
        Err(e) => {
            // What the failed attempt found still belongs in the trace, before its failure.
            scope
                .take()
                .write_now(&ctx.store, call.id, call.business_id)
                .await;
            let _ = ctx
                .store
                .bump_throughput(ctx.store.pool(), call.business_id, job.stage, 0, 0, 1)
                .await;
            match e {
                StageError::Permanent(msg) => {
                    settle_dead(ctx, d, Some(&call), Some(token), &msg).await
                }
                StageError::Transient(msg) => {
                    let after = retry_after_of(&msg);
                    settle_fail(ctx, d, Some(&call), Some(token), &msg, after).await
                }
            }
        }
    }
}

/// The `Retry-After` a provider sent, carried in the error text by the HTTP clients.
fn retry_after_of(msg: &str) -> Option<std::time::Duration> {
    crate::pipeline::providers::ProviderError::Transient {
        provider: String::new(),
        message: msg.to_string(),
    }
    .retry_after()
}

/// Run the stage while the process's lease keeper renews its lease (every third of it,
/// in one statement for all runs), so a provider call longer than the lease still runs
/// exactly once; the broker keeps its claim alive the same way. `Err` when the lease was
/// lost: another run took the call over, and this run must not commit anything.
async fn run_leased(
    ctx: &PipelineCtx,
    d: &Delivery,
    call: &Call,
    job: &Job,
    token: i64,
    scope: &run_scope::RunScope,
) -> Result<Result<Outcome, StageError>, String> {
    let hold = ctx
        .store
        .lease_keeper(ctx.settings.lease)
        .hold(call.id, token, d.claim_row());
    let run = scope.scope(async {
        match job.stage {
            Stage::Sync => sync::run(ctx, call, job).await,
            Stage::Transcribe => transcribe::run(ctx, call, job).await,
            Stage::Analyze => analyze::run(ctx, call, job).await,
            Stage::Link => link::run(ctx, call, job).await,
            Stage::Notify => notify::run(ctx, call, job).await,
        }
    });
    tokio::select! {
        r = run => Ok(r),
        _ = hold.lost() => Err(format!(
            "{} of call {}: lease lost while running (another run took over)",
            job.stage, call.id
        )),
    }
}

/// How a careful start ended: run the stage, or settle the delivery instead.
enum Start {
    Run(Call),
    Dead(String),
    Fail(String),
    Duplicate(Call, String),
    /// Running under another run's live lease, for this many more ms.
    Busy(Call, i64),
}

/// The careful start, when the call is not simply waiting at the job's stage: a stale or
/// misrouted delivery, an operator's retry of a dead job, a call another run holds, a call
/// that does not exist or whose row is corrupt.
async fn start_slow(
    ctx: &PipelineCtx,
    job: &Job,
    call_id: i64,
    token: i64,
    lease_until: i64,
) -> Start {
    let call = match ctx.store.call(call_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => {
            return Start::Dead(format!("call {call_id} does not exist (job {})", job.id))
        }
        Err(StoreError::Corrupt(why)) => {
            return Start::Dead(format!(
                "call {call_id} cannot be read: {why}; fix the row, then retry this dead job"
            ))
        }
        Err(e) => return Start::Fail(e.to_string()),
    };
    if let Some(why) = stale(&call, job) {
        return Start::Duplicate(call, why);
    }
    match call.state {
        CallState::Running => {
            let now = crate::now_ms();
            match ctx.store.call_lease(call_id).await {
                Ok(Some((_, until))) if until >= now => return Start::Busy(call, until - now),
                Ok(_) => {}
                Err(e) => return Start::Fail(e.to_string()),
            }
        }
        CallState::Dead => {
            match ctx.store.live_dead_row_of_job(&job.id).await {
                Ok(Some(dead_id)) => {
                    return Start::Duplicate(
                        call,
                        format!("job {} already died as dead job #{dead_id}", job.id),
                    )
                }
                Ok(None) => {}
                Err(e) => return Start::Fail(e.to_string()),
            }
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
                return Start::Fail(e.to_string());
            }
        }
        _ => {}
    }
    let reason = format!("{} started (attempt {})", job.stage, job.attempts + 1);
    match ctx
        .store
        .start_call(
            call_id,
            job.business_id,
            job.stage,
            token,
            lease_until,
            &reason,
        )
        .await
    {
        Ok(Some(c)) => Start::Run(c),
        Ok(None) => Start::Duplicate(call, "moved by someone else while starting".into()),
        Err(e) => Start::Fail(e.to_string()),
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

/// A failure inside a settling transaction: someone else owns the call now, or not.
enum TxError {
    Conflict(String),
    Other(String),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(why) => TxError::Conflict(why),
            e => TxError::Other(e.to_string()),
        }
    }
}

impl From<QueueError> for TxError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Store(StoreError::Conflict(why)) => TxError::Conflict(why),
            e => TxError::Other(e.to_string()),
        }
    }
}

fn commit_err(what: String) -> impl FnOnce(sqlx::Error) -> TxError {
    move |e| TxError::Other(format!("committing {what}: {e}"))
}

/// The stage's result in one transaction (one statement on Postgres), fenced by the lease:
/// the move, its trace row, the throughput count, the next stage's job (outbox) and — on
/// the database broker — the ack. A crash anywhere leaves either all of it or none of it.
async fn settle_success(
    ctx: &PipelineCtx,
    d: Delivery,
    call: &Call,
    outcome: Outcome,
    audio_s: i64,
    token: i64,
    kept: run_scope::Kept,
) -> Handled {
    let stage = d.job.stage;
    let (outcome, follow_ups) = outcome.into_parts();
    // A follow-up that is only a trace row ("why this lead is not called") is noted with
    // the result, so the result still commits with the others finishing now.
    let mut kept = kept;
    let follow_ups: Vec<_> = follow_ups
        .into_iter()
        .filter_map(|f| match f {
            crate::pipeline::outbound::FollowUp::Trace(reason) => {
                kept.events.push(crate::store::events::PendingEvent {
                    at: crate::now_ms(),
                    stage,
                    kind: "outbound".into(),
                    reason,
                    detail: None,
                });
                None
            }
            f => Some(f),
        })
        .collect();
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
        Outcome::With { .. } => unreachable!("into_parts unwraps With"),
    };
    let kind = match to.state {
        CallState::Review => "review",
        CallState::Done => "done",
        _ => "completed",
    };
    let job_table = if ctx.broker.kind() == "database" {
        JobTable::Jobs
    } else {
        JobTable::Outbox
    };
    let commit = StageCommitOwned {
        call_id: call.id,
        business_id: call.business_id,
        token,
        stage,
        to,
        kind,
        reason,
        audio_seconds: audio_s,
        next_job: next_job.clone(),
        job_table,
        ack: d.claim_row(),
        events: kept.events,
        call_fields: kept.call_fields,
        analyses: kept.analyses,
        transcript: kept.transcript,
    };
    let moved: Result<bool, TxError> = if follow_ups.is_empty() {
        ctx.store
            .commit_stage_result_grouped(commit)
            .await
            .map(|c| c.acked)
            .map_err(TxError::from)
    } else {
        // An outbound call a new lead implies commits with the result (issue 16).
        async {
            let mut tx = ctx.store.begin_write().await?;
            let c = ctx
                .store
                .commit_stage_result_in(&mut tx, &commit.as_commit())
                .await?;
            for f in &follow_ups {
                crate::pipeline::outbound::write_follow_up_in(&ctx.store, &mut tx, call, f).await?;
            }
            tx.commit().await.map_err(commit_err(format!(
                "the {stage} result of call {}",
                call.id
            )))?;
            Ok(c.acked)
        }
        .await
    };
    match moved {
        Ok(acked) => {
            if crate::failpoint::enabled() {
                crate::failpoint::hit(&format!("after_commit.{stage}")).await;
            }
            if next_job.is_some() {
                ctx.broker.enqueued();
            }
            if acked {
                d.settled_in_tx();
                return Handled::Advanced(to);
            }
            // A failed ack only means a redelivery, which finds the call moved on.
            ack_or_unsettled(d, Handled::Advanced(to)).await
        }
        // The lease ran out and another run took over, or an operator moved the call:
        // their move stands, ours is discarded.
        Err(TxError::Conflict(why)) => ack_or_unsettled(d, Handled::Duplicate(why)).await,
        Err(TxError::Other(e)) => settle_fail(ctx, d, Some(call), Some(token), &e, None).await,
    }
}

async fn ack_or_unsettled(d: Delivery, then: Handled) -> Handled {
    match d.ack().await {
        Ok(()) => then,
        Err(e) => Handled::Unsettled(format!("ack failed (the job will be redelivered): {e}")),
    }
}

/// A redelivery for a call that moved on (or whose job already died): acked, with the
/// reason in the trace. Nothing is republished: the move that passed this stage committed
/// the next stage's job with it.
async fn settle_duplicate(ctx: &PipelineCtx, d: Delivery, call: &Call, why: String) -> Handled {
    let stage = d.job.stage;
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

/// The stage runs elsewhere under a live lease: put this delivery back until the lease
/// would have run out (not an attempt). If that run finishes, the delivery is a duplicate
/// then; if its worker died, the lease has run out and this delivery takes over.
async fn settle_busy(d: Delivery, call: &Call, left_ms: i64) -> Handled {
    let stage = d.job.stage;
    let delay = std::time::Duration::from_millis(left_ms.max(0) as u64 + 500);
    let delay = delay + crate::queue::jitter(std::time::Duration::from_millis(1000));
    // Logged, not traced: a busy call can be met by many deliveries (a redelivery storm after a
    // broker restart), and one trace row each would bury the call's real history.
    tracing::debug!(call = call.id, %stage, delay_ms = delay.as_millis() as u64, "delivery deferred: the stage runs under another worker's lease");
    let why = format!("call {} busy at {stage} for {left_ms} ms more", call.id);
    match d.defer(delay).await {
        Ok(()) => Handled::Deferred(why),
        Err(e) => Handled::Unsettled(format!("deferring failed ({why}): {e}")),
    }
}

/// A failed attempt: the retry is scheduled and the call moves to retrying in one
/// transaction (database broker), or the move commits first and the delayed job is
/// published after it (RabbitMQ: a crash in between redelivers the original). Out of
/// attempts, the job dies (`settle_dead_job`).
async fn settle_fail(
    ctx: &PipelineCtx,
    d: Delivery,
    call: Option<&Call>,
    token: Option<i64>,
    error: &str,
    retry_after: Option<std::time::Duration>,
) -> Handled {
    let stage = d.job.stage;
    let mut job = d.job.clone();
    job.attempts += 1;
    job.errors.push(crate::queue::AttemptError {
        attempt: job.attempts,
        at: crate::now_ms(),
        error: error.to_string(),
    });
    if job.attempts >= d.policy().max_attempts {
        return settle_dead_job(ctx, d, call, token, job, "max attempts reached").await;
    }
    let attempt = job.attempts;
    let delay = match (ctx.broker.kind(), retry_after) {
        ("database", after) => d.policy().jittered_delay(attempt, after),
        // RabbitMQ delays by tier queues: the nearest tier at or above Retry-After.
        (_, Some(after)) => d.policy().tier_at_least(after),
        (_, None) => d.policy().delay_after(attempt),
    };
    if call.is_none() && ctx.broker.kind() != "database" {
        // Nothing to move (the call could not even be read): no database needed to retry.
        return match d.retry_with(&job, delay).await {
            Ok(()) => Handled::Retrying,
            Err(e) => Handled::Unsettled(format!("could not schedule the retry ({error}): {e}")),
        };
    }
    let res: Result<bool, TxError> = async {
        let mut tx = ctx.store.begin_write().await?;
        if let (Some(c), Some(t)) = (call, token) {
            ctx.store.release_lease_in(&mut tx, c.id, t).await?;
        }
        if let Some(c) = call {
            let reason = format!(
                "{stage} failed (attempt {attempt}), retrying in {} ms{}",
                delay.as_millis(),
                if retry_after.is_some() {
                    " (the provider's Retry-After)"
                } else {
                    ""
                }
            );
            ctx.store
                .move_call_in(
                    &mut tx,
                    c.id,
                    &mv(
                        Position::new(stage, CallState::Retrying),
                        None,
                        "retry",
                        reason,
                        Some(error.into()),
                    ),
                )
                .await?;
        }
        let in_tx = d.settle_in(&mut tx, Some((&job, delay))).await?;
        tx.commit()
            .await
            .map_err(commit_err(format!("the retry of job {}", job.id)))?;
        Ok(in_tx)
    }
    .await;
    match res {
        Ok(true) => {
            d.settled_in_tx();
            Handled::Retrying
        }
        Ok(false) => match d.retry_with(&job, delay).await {
            Ok(()) => Handled::Retrying,
            Err(e) => Handled::Unsettled(format!("could not schedule the retry ({error}): {e}")),
        },
        Err(TxError::Conflict(why)) => ack_or_unsettled(d, Handled::Duplicate(why)).await,
        Err(TxError::Other(e)) => {
            Handled::Unsettled(format!("could not record the failure ({error}): {e}"))
        }
    }
}

/// Dead at once, whatever the attempt count (permanent errors: a 4xx, a corrupt row).
async fn settle_dead(
    ctx: &PipelineCtx,
    d: Delivery,
    call: Option<&Call>,
    token: Option<i64>,
    error: &str,
) -> Handled {
    let mut job = d.job.clone();
    job.attempts += 1;
    job.errors.push(crate::queue::AttemptError {
        attempt: job.attempts,
        at: crate::now_ms(),
        error: error.to_string(),
    });
    settle_dead_job(ctx, d, call, token, job, "permanent error").await
}

/// The dead-job row and the call's move to dead commit together (and the ack too on the
/// database broker), so the DLQ never holds a call that is not dead. A redelivery after a
/// lost ack finds the job's dead row and is skipped.
async fn settle_dead_job(
    ctx: &PipelineCtx,
    d: Delivery,
    call: Option<&Call>,
    token: Option<i64>,
    job: Job,
    reason: &str,
) -> Handled {
    let stage = job.stage;
    let attempts = job.attempts;
    let error = job
        .errors
        .last()
        .map(|e| e.error.clone())
        .unwrap_or_default();
    let res: Result<bool, TxError> = async {
        let mut tx = ctx.store.begin_write().await?;
        if let (Some(c), Some(t)) = (call, token) {
            ctx.store.release_lease_in(&mut tx, c.id, t).await?;
        }
        let dead_job_id = ctx
            .store
            .insert_dead_job_in(
                &mut tx,
                &crate::store::DeadJobInsert::from_job(&job, reason),
            )
            .await?;
        if let Some(c) = call {
            let why = if reason == "permanent error" {
                format!("{stage} failed permanently: dead job #{dead_job_id}")
            } else {
                format!("{stage} failed {attempts} times: dead job #{dead_job_id}")
            };
            ctx.store
                .move_call_in(
                    &mut tx,
                    c.id,
                    &mv(
                        Position::new(stage, CallState::Dead),
                        None,
                        "dead",
                        why,
                        Some(error.clone()),
                    ),
                )
                .await?;
        }
        let in_tx = d.settle_in(&mut tx, None).await?;
        tx.commit()
            .await
            .map_err(commit_err(format!("dead job {}", job.id)))?;
        Ok(in_tx)
    }
    .await;
    match res {
        Ok(true) => {
            d.settled_in_tx();
            Handled::Dead
        }
        Ok(false) => ack_or_unsettled(d, Handled::Dead).await,
        Err(TxError::Conflict(why)) => ack_or_unsettled(d, Handled::Duplicate(why)).await,
        Err(TxError::Other(e)) => {
            Handled::Unsettled(format!("could not dead-letter ({error}): {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_is_read_from_the_provider_error_text() {
        let msg = "openai: transient: HTTP 429: Rate limit reached (Retry-After: 7)";
        assert_eq!(
            super::retry_after_of(msg),
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(super::retry_after_of("HTTP 500: upstream exploded"), None);
    }
}
