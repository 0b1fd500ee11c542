//! `callops bench broker`: publish, consume and round-trip rates of one backend.

use crate::config::Config;
use crate::domain::stage::Stage;
use crate::queue::{self, Broker, ConsumeSpec, Job};
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const BATCH: usize = 500;
const PUBLISHERS: usize = 4;
const ACKERS: usize = 512;

pub async fn run(config: &Config, backend: &str, messages: u64, raw: bool) -> anyhow::Result<()> {
    let store =
        Store::connect_and_migrate(&config.database.url, config.database.max_connections.max(8))
            .await?;
    let mut settings = config.broker_settings();
    settings.prefix = format!("callops_bench_{}", std::process::id());
    settings.poll_interval = Duration::from_millis(20);
    // A business id no real tenant uses, so the bench never touches live queues.
    let business_id = 900_000_000 + (std::process::id() as i64 % 1_000_000);
    let broker = queue::connect(backend, settings.clone(), store.clone()).await?;
    println!(
        "bench broker: backend={backend} database={} messages={messages}",
        crate::store::redact_url(store.url())
    );

    let publish = publish_all(&*broker, business_id, messages).await?;
    println!(
        "  publish:    {:>9.0} msg/s  ({messages} in {:.2}s)",
        messages as f64 / publish,
        publish
    );
    let consume = consume_all(broker.clone(), business_id, messages).await?;
    println!(
        "  consume:    {:>9.0} msg/s  ({messages} in {:.2}s)",
        messages as f64 / consume,
        consume
    );
    let round = round_trip(broker.clone(), business_id, messages).await?;
    println!(
        "  round trip: {:>9.0} msg/s  (publish+consume concurrently, {messages} in {:.2}s)",
        messages as f64 / round,
        round
    );

    if backend == "rabbitmq" {
        broker.delete_topology().await?;
        if raw {
            let (p, c) =
                queue::rabbitmq::raw_lapin_bench(&settings.amqp_url, &settings.prefix, messages)
                    .await?;
            println!("  raw lapin baseline: publish {p:.0} msg/s, consume {c:.0} msg/s");
        }
    }
    broker.close().await;
    Ok(())
}

fn jobs(business_id: i64, n: usize) -> Vec<Job> {
    (0..n)
        .map(|i| {
            Job::new(
                business_id,
                Stage::Transcribe,
                Some(i as i64),
                serde_json::json!({"i": i, "audio_url": "https://example.invalid/a.wav"}),
            )
        })
        .collect()
}

/// Seconds to publish `n` jobs with a few concurrent batch publishers.
async fn publish_all(broker: &dyn Broker, business_id: i64, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut left = n as usize;
    while left > 0 {
        let mut round = Vec::new();
        for _ in 0..PUBLISHERS {
            if left == 0 {
                break;
            }
            let k = left.min(BATCH);
            left -= k;
            round.push(jobs(business_id, k));
        }
        let futs = round.iter().map(|b| broker.publish_many(b));
        for r in futures_util::future::join_all(futs).await {
            r?;
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Seconds to consume and ack `n` jobs (acks run concurrently so they can group-commit).
async fn consume_all(broker: Arc<dyn Broker>, business_id: i64, n: u64) -> anyhow::Result<f64> {
    let mut consumer = broker
        .consume(ConsumeSpec {
            max_in_flight: 0,
            stage: Stage::Transcribe,
            businesses: vec![business_id],
            prefetch: 1000,
        })
        .await?;
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(ACKERS));
    let mut tasks = tokio::task::JoinSet::new();
    let mut got = 0u64;
    while got < n {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no delivery for 60 s after {got} of {n}"))?
            .ok_or_else(|| anyhow::anyhow!("consumer closed after {got} of {n}"))?;
        got += 1;
        let permit = sem.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let r = d.ack().await;
            drop(permit);
            r
        });
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    consumer.stop().await;
    Ok(start.elapsed().as_secs_f64())
}

async fn round_trip(broker: Arc<dyn Broker>, business_id: i64, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let b2 = broker.clone();
    let consumer = tokio::spawn(async move { consume_all(b2, business_id, n).await });
    publish_all(&*broker, business_id, n).await?;
    consumer.await??;
    Ok(start.elapsed().as_secs_f64())
}
