//! `callops bench idle`: SQL statements per second one idle worker issues with many
//! businesses and nothing to do (issue 14: claims must cost O(work), not O(businesses)).

use crate::config::Config;
use crate::pipeline::context::{PipelineCtx, PipelineSettings};
use crate::pipeline::worker::{self, WorkerOptions, WorkerStats};
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct IdleBench {
    pub backend: String,
    pub businesses: u32,
    pub seconds: u64,
}

pub async fn run(config: &Config, b: IdleBench) -> anyhow::Result<()> {
    let url = if config.database.url.starts_with("sqlite:") {
        format!(
            "sqlite:{}",
            config
                .data_dir
                .join(format!("bench-idle-{}.db", std::process::id()))
                .display()
        )
    } else {
        config.database.url.clone()
    };
    let store = Store::connect_and_migrate(&url, config.database.max_connections.max(8)).await?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM businesses")
        .fetch_one(store.pool())
        .await?;
    for i in have..b.businesses as i64 {
        store.ensure_business(&format!("idle-{i:04}")).await?;
    }
    let mut settings = config.broker_settings();
    settings.prefix = format!("callops_bench_idle_{}", std::process::id());
    let broker = crate::queue::connect(&b.backend, settings, store.clone()).await?;
    let ctx = Arc::new(PipelineCtx {
        store: store.clone(),
        broker: broker.clone(),
        providers: crate::pipeline::build_providers(config)?,
        settings: PipelineSettings::default(),
    });
    let businesses = store.runnable_business_ids().await?.len();
    println!(
        "bench idle: backend={} database={} businesses={businesses} stages=5 (one worker, defaults: concurrency 16, orphan sweep every 30 s)",
        b.backend,
        crate::store::redact_url(&url),
    );
    let stats = Arc::new(WorkerStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(worker::run(
        ctx.clone(),
        WorkerOptions::default(),
        stats.clone(),
        stop_rx,
    ));
    // Startup (consumers subscribing, first claims) is not idling.
    tokio::time::sleep(Duration::from_secs(5)).await;
    crate::logging::count_statements(true);
    let s0 = crate::logging::statements();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(b.seconds)).await;
    let n = crate::logging::statements() - s0;
    let secs = t.elapsed().as_secs_f64();
    crate::logging::count_statements(false);
    println!(
        "  idle worker: {:.2} statements/s ({n} in {secs:.0} s) over {businesses} businesses × 5 stages",
        n as f64 / secs
    );
    let _ = stop_tx.send(true);
    workers.await??;
    broker.delete_topology().await?;
    broker.close().await;
    Ok(())
}
