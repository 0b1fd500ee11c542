//! `callops demo`: the whole system on embedded defaults — SQLite, the database broker,
//! simulated providers, the load generator and the workers in one process — under the
//! console (or, with --headless, a one-screen summary printed every second).

use crate::config::Config;
use crate::pipeline::worker::{self, WorkerOptions, WorkerStats};
use crate::pipeline::{simulate, Runtime};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(
    config: Config,
    seconds: u64,
    headless: bool,
    calls_per_minute: f64,
) -> anyhow::Result<()> {
    let rt = Runtime::open(&config).await?;
    let ctx = Arc::new(rt.ctx.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(WorkerStats::default());

    let sim = {
        let (store, broker, rx) = (ctx.store.clone(), ctx.broker.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let opts = simulate::SimulateOptions {
                calls_per_minute,
                ..Default::default()
            };
            // Issue 16: once the simulator has created its businesses, they call new leads.
            let s2 = store.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = crate::pipeline::outbound::demo_setup(&s2).await {
                    tracing::warn!(error = %e, "demo outbound setup failed");
                }
            });
            if let Err(e) = simulate::run(&store, &*broker, opts, rx).await {
                tracing::error!(error = %e, "load generator stopped");
            }
        })
    };
    let workers = tokio::spawn(worker::run(
        ctx.clone(),
        WorkerOptions {
            prefetch: config.broker.prefetch,
            orphan_after: config.pipeline.orphan_after(),
            ..Default::default()
        },
        stats.clone(),
        stop_rx.clone(),
    ));
    let signal = crate::cli::pipeline_cmds::shutdown_signal();
    if headless {
        summary_loop(&ctx, &stats, seconds, signal).await?;
    } else {
        crate::console::run_console_with(
            ctx.store.clone(),
            ctx.broker.clone(),
            &config,
            false,
            signal,
        )
        .await?;
    }
    let _ = stop_tx.send(true);
    let _ = sim.await;
    workers.await??;
    ctx.broker.close().await;
    Ok(())
}

async fn summary_loop(
    ctx: &crate::pipeline::context::PipelineCtx,
    stats: &WorkerStats,
    seconds: u64,
    mut signal: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = signal.changed() => break,
        }
        let counts = ctx.store.call_counts_by_state().await?;
        let dead = ctx.store.count_dead_jobs(&Default::default()).await?;
        let depth: u64 = ctx
            .broker
            .queue_stats(&[])
            .await?
            .iter()
            .map(|q| q.depth)
            .sum();
        println!(
            "[{:>4}s] calls {:?} | queued jobs {depth} | dead jobs {dead} | worker {:?}",
            start.elapsed().as_secs(),
            counts,
            stats
        );
        if seconds > 0 && start.elapsed().as_secs() >= seconds {
            break;
        }
    }
    Ok(())
}
