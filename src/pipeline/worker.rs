//! Worker runtime: one consumer per stage over every active business's queue (fair by
//! construction: per-business prefetch), at most `concurrency` deliveries held per stage
//! over all businesses together (what a worker cannot run stays in the queue, visible as
//! backlog), the outbox relay (RabbitMQ), the orphan alarm, new businesses picked up on a
//! timer, and a graceful stop that lets in-flight jobs finish and returns the rest.

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
    /// The orphan alarm: a live call with no job, no outbox row and no live lease for this
    /// long is reported (trace, counter, log) and its job published once (`None` = no sweep).
    pub orphan_after: Option<Duration>,
    /// How often to sweep.
    pub orphan_every: Duration,
    /// Outbound AI calls (issue 16): a dispatcher pass this often (`None` = this worker
    /// places no outbound calls).
    pub outbound_every: Option<Duration>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            stages: Stage::ALL.to_vec(),
            concurrency: 16,
            prefetch: 20,
            business_refresh: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            orphan_after: Some(Duration::from_secs(60)),
            orphan_every: Duration::from_secs(30),
            outbound_every: Some(Duration::from_secs(1)),
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
    pub deferred: AtomicU64,
    /// Orphan alarms this process raised (should stay 0: each one is a delivery bug).
    pub orphans: AtomicU64,
    /// Outbox rows this process published.
    pub relayed: AtomicU64,
}

impl WorkerStats {
    fn count(&self, h: &Handled) {
        let c = match h {
            Handled::Advanced(_) => &self.advanced,
            Handled::Retrying => &self.retrying,
            Handled::Dead => &self.dead,
            Handled::Duplicate(_) => &self.duplicates,
            Handled::Unsettled(_) => &self.unsettled,
            Handled::Deferred(_) => &self.deferred,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `outcome` label of `callops_stage_runs_total`.
pub fn outcome_label(h: &Handled) -> &'static str {
    match h {
        Handled::Advanced(p) => match p.state {
            crate::domain::stage::CallState::Review => "review",
            crate::domain::stage::CallState::Done => "done",
            _ => "completed",
        },
        Handled::Retrying => "retrying",
        Handled::Dead => "dead",
        Handled::Duplicate(_) => "duplicate",
        Handled::Unsettled(_) => "unsettled",
        Handled::Deferred(_) => "deferred",
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
    if let Some(grace) = opts.orphan_after {
        tasks.spawn(orphan_loop(
            ctx.clone(),
            grace,
            opts.orphan_every,
            stats.clone(),
            shutdown.clone(),
        ));
    }
    if ctx.broker.kind() != "database" {
        tasks.spawn(relay_loop(ctx.clone(), stats.clone(), shutdown.clone()));
    }
    // Outbound AI calls for new leads (issue 16): every worker claims due rows.
    if let Some(every) = opts.outbound_every {
        tasks.spawn(super::outbound::run_loop(
            Arc::new(super::outbound::Dispatcher::new(
                ctx.store.clone(),
                ctx.broker.clone(),
            )),
            every,
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

/// Sweep for orphans every `every` (see `pipeline::orphans`).
async fn orphan_loop(
    ctx: Arc<PipelineCtx>,
    grace: Duration,
    every: Duration,
    stats: Arc<WorkerStats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::queue::jitter(every)) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        match super::orphans::sweep(&ctx, grace).await {
            Ok(s) => {
                stats.orphans.fetch_add(s.raised, Ordering::Relaxed);
            }
            // Database or broker down: the next sweep tries again.
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
        }
    }
}

/// The outbox relay of this process (RabbitMQ): publish committed jobs with confirms,
/// woken by local commits and polling for other processes' rows.
async fn relay_loop(
    ctx: Arc<PipelineCtx>,
    stats: Arc<WorkerStats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wake = ctx.broker.relay_signal();
    // Other processes' commits (Postgres): a notification instead of a 4-per-second poll.
    let notifier = crate::queue::pg_notify::Notifier::start(&ctx.store);
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match crate::queue::outbox::relay_once(&ctx.store, ctx.broker.as_ref(), 500).await {
            Ok(n) => {
                stats.relayed.fetch_add(n, Ordering::Relaxed);
                backoff = Duration::from_millis(200);
                if n == 500 {
                    continue;
                }
                let poll = if notifier.listening() {
                    Duration::from_secs(10)
                } else {
                    Duration::from_millis(250)
                };
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = async { match &wake { Some(w) => w.notified().await, None => std::future::pending().await } } => {}
                    _ = notifier.outbox().notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(crate::queue::jitter(backoff)) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
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
            max_in_flight: opts.concurrency.max(1) as u32,
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
                    let (business, took) = (d.job.business_id, std::time::Instant::now());
                    let h = stages::handle(&ctx, d).await;
                    crate::metrics::stage_finished(business, stage, outcome_label(&h), took.elapsed());
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
