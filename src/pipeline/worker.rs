//! Worker runtime: one consumer per stage over every active business's queue (fair by
//! construction: per-business prefetch), a bounded number of handlers in flight per stage
//! (backpressure: no unbounded buffer), new businesses picked up on a timer, and a
//! graceful stop that lets in-flight jobs finish and returns the rest to the queue.

use super::context::PipelineCtx;
use super::stages::{self, Handled};
use crate::domain::stage::Stage;
use crate::queue::ConsumeSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub stages: Vec<Stage>,
    /// Handlers in flight per stage.
    pub concurrency: usize,
    /// Unacked deliveries per business queue.
    pub prefetch: u16,
    pub business_refresh: Duration,
    /// How long a stop waits for in-flight handlers.
    pub drain_timeout: Duration,
    /// A call waiting or running at a stage this long without a transition gets its stage
    /// job published again (`None` = never). A backstop for a job lost anywhere — broker,
    /// crash, bug: handlers are idempotent, so a needless duplicate is only skipped. Keep
    /// it well above the slowest provider call, the longest retry delay and the database
    /// broker's visibility timeout.
    pub reconcile_after: Option<Duration>,
    /// How often to look for such calls.
    pub reconcile_every: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            stages: Stage::ALL.to_vec(),
            concurrency: 16,
            prefetch: 20,
            business_refresh: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            reconcile_after: Some(Duration::from_secs(15 * 60)),
            reconcile_every: Duration::from_secs(60),
        }
    }
}

/// Counters a worker process keeps (the demo summary and tests read them).
#[derive(Default, Debug)]
pub struct WorkerStats {
    pub advanced: AtomicU64,
    pub retrying: AtomicU64,
    pub dead: AtomicU64,
    pub duplicates: AtomicU64,
    pub unsettled: AtomicU64,
}

impl WorkerStats {
    fn count(&self, h: &Handled) {
        let c = match h {
            Handled::Advanced(_) => &self.advanced,
            Handled::Retrying => &self.retrying,
            Handled::Dead => &self.dead,
            Handled::Duplicate(_) => &self.duplicates,
            Handled::Unsettled(_) => &self.unsettled,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Run workers until `shutdown` turns true. Returns after in-flight jobs finished (or the
/// drain timeout passed: those jobs are redelivered later, never lost).
pub async fn run(
    ctx: Arc<PipelineCtx>,
    opts: WorkerOptions,
    stats: Arc<WorkerStats>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    if let Some(after) = opts.reconcile_after {
        tasks.spawn(reconcile_loop(
            ctx.clone(),
            opts.stages.clone(),
            after,
            opts.reconcile_every,
            shutdown.clone(),
        ));
    }
    for stage in opts.stages.clone() {
        tasks.spawn(run_stage(
            ctx.clone(),
            stage,
            opts.clone(),
            stats.clone(),
            shutdown.clone(),
        ));
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// Republish the stage job of calls that made no transition for `after`.
async fn reconcile_loop(
    ctx: Arc<PipelineCtx>,
    stages: Vec<Stage>,
    after: Duration,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut sent: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    let after_ms = after.as_millis() as i64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = crate::now_ms();
        let slas: Vec<(Stage, i64)> = stages.iter().map(|s| (*s, after_ms)).collect();
        // Errors (database down) just wait for the next round.
        let Ok(calls) = ctx.store.stuck_calls(&slas, 500).await else {
            continue;
        };
        sent.retain(|_, at| now - *at < after_ms);
        for c in calls {
            if sent.contains_key(&c.id) {
                continue;
            }
            let job = crate::queue::Job::new(
                c.business_id,
                c.stage,
                Some(c.id),
                serde_json::json!({ "call_id": c.id }),
            );
            if ctx.broker.publish(&job).await.is_err() {
                break;
            }
            sent.insert(c.id, now);
            tracing::warn!(call = c.id, stage = %c.stage, state = %c.state, "no progress; stage job republished");
            let _ = ctx
                .store
                .append_event(
                    ctx.store.pool(),
                    &crate::store::events::NewEvent {
                        call_id: c.id,
                        business_id: c.business_id,
                        stage: c.stage,
                        kind: "reconciled",
                        reason: format!(
                            "no transition at {}/{} for {}: its job is published again (a lost job is re-sent; a duplicate is skipped)",
                            c.stage,
                            c.state,
                            crate::views::age(now - c.state_since)
                        ),
                        detail: None,
                        actor: "pipeline",
                    },
                )
                .await;
        }
    }
}

async fn run_stage(
    ctx: Arc<PipelineCtx>,
    stage: Stage,
    opts: WorkerOptions,
    stats: Arc<WorkerStats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut businesses = ctx.store.runnable_business_ids().await?;
    let mut consumer = ctx
        .broker
        .consume(ConsumeSpec {
            stage,
            businesses: businesses.clone(),
            prefetch: opts.prefetch,
        })
        .await?;
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut inflight = JoinSet::new();
    let mut refresh = tokio::time::interval(opts.business_refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // Take a permit before taking a delivery: a full worker leaves jobs in the queue
        // (visible as backlog) instead of buffering them in memory.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p?,
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            d = consumer.recv() => {
                let Some(d) = d else { break };
                let ctx = ctx.clone();
                let stats = stats.clone();
                inflight.spawn(async move {
                    let h = stages::handle(&ctx, d).await;
                    if let Handled::Unsettled(why) = &h {
                        tracing::warn!(stage = %stage, %why, "job left unsettled; it will be redelivered");
                    }
                    stats.count(&h);
                    drop(permit);
                });
            }
            _ = refresh.tick() => {
                drop(permit);
                match ctx.store.runnable_business_ids().await {
                    Ok(now) if now != businesses => {
                        tracing::info!(stage = %stage, before = businesses.len(), after = now.len(), "business set changed");
                        if consumer.set_businesses(&now).await.is_ok() {
                            businesses = now;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(stage = %stage, error = %e, "could not refresh businesses"),
                }
            }
            _ = shutdown.changed() => { drop(permit); break }
        }
        while inflight.try_join_next().is_some() {}
    }
    consumer.stop().await;
    // Deliveries still buffered go back to the queue when the consumer drops.
    drop(consumer);
    let drained = tokio::time::timeout(opts.drain_timeout, async {
        while inflight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(stage = %stage, "in-flight jobs did not finish in time; they will be redelivered");
        inflight.abort_all();
    }
    Ok(())
}
