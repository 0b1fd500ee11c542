//! End to end: 1,000 simulated calls across 10 businesses through all five stages, with
//! injected provider failures, and a worker killed mid-run and replaced. Every call is
//! accounted for (done + dead + review = ingested), throughput buckets sum to the calls
//! that went through each stage, and every skipped QC/lead/link has a reason in its trace.
//! Runs on SQLite + database broker and on Postgres + RabbitMQ.

mod common;

use callops::domain::stage::Stage;
use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::providers::llm::simulated::SimulatedLlm;
use callops::pipeline::providers::sim::SimSettings;
use callops::pipeline::providers::stt::simulated::SimulatedStt;
use callops::pipeline::simulate::{self, SimulateOptions};
use callops::pipeline::worker::{self, WorkerOptions, WorkerStats};
use callops::queue::{self, BrokerSettings, DynBroker, RetryPolicy};
use callops::store::{DeadJobFilter, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const CALLS: u64 = 1000;

fn settings(prefix: String, amqp: String) -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            tiers: 2,
        },
        prefix,
        amqp_url: amqp,
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

fn ctx(store: Store, broker: DynBroker) -> Arc<PipelineCtx> {
    let sim = SimSettings {
        transient_rate: 0.05,
        permanent_rate: 0.01,
        malformed_rate: 0.05,
        seed: 42,
        ..Default::default()
    };
    let mut providers = Providers::default();
    providers.stt.insert(
        "simulated".into(),
        Arc::new(SimulatedStt { sim: sim.clone() }),
    );
    providers
        .llm
        .insert("simulated".into(), Arc::new(SimulatedLlm { sim }));
    Arc::new(PipelineCtx {
        store,
        broker,
        providers,
        settings: PipelineSettings::default(),
    })
}

async fn settled(store: &Store) -> HashMap<String, i64> {
    store
        .call_counts_by_state()
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn wait_until(store: &Store, what: &str, done: impl Fn(&HashMap<String, i64>) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let c = settled(store).await;
        if done(&c) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let groups = store
                .dead_job_groups(&DeadJobFilter::default(), 10)
                .await
                .unwrap();
            let stuck: Vec<(i64, String, String, Option<String>)> =
                sqlx::query_as("SELECT id, stage, state, last_error FROM calls WHERE state IN ('pending', 'running', 'retrying') LIMIT 10")
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            // The database broker's jobs of the stuck calls (absent on RabbitMQ).
            let ids: Vec<String> = stuck.iter().map(|s| s.0.to_string()).collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let jobs: Vec<(i64, String, i64, i64, i64)> = if ids.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as(&format!(
                    "SELECT call_id, stage, attempts, run_at, deliveries FROM jobs WHERE call_id IN ({})",
                    ids.join(",")
                ))
                .fetch_all(store.pool())
                .await
                .unwrap_or_default()
            };
            panic!("timed out waiting for {what}: {c:?}\ndead job groups: {groups:#?}\nstuck: {stuck:#?}\njobs (call, stage, attempts, run_at, deliveries): {jobs:?} at {now}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(c: &HashMap<String, i64>) -> i64 {
    ["done", "dead", "review"]
        .iter()
        .map(|s| c.get(*s).copied().unwrap_or(0))
        .sum()
}

async fn run(store: Store, broker: DynBroker) {
    let (_never_tx, never) = tokio::sync::watch::channel(false);
    let report = simulate::run(
        &store,
        &*broker,
        SimulateOptions {
            businesses: 10,
            calls_per_minute: 600_000.0,
            total_calls: Some(CALLS),
            seed: 42,
            customers_per_business: 30,
        },
        never,
    )
    .await
    .unwrap();
    assert_eq!(report.ingested, CALLS);
    assert_eq!(store.businesses().await.unwrap().len(), 10);
    let ctx = ctx(store.clone(), broker.clone());
    let opts = WorkerOptions {
        concurrency: 8,
        prefetch: 10,
        business_refresh: Duration::from_millis(500),
        // The orphan alarm must stay silent: every job travels with its change.
        orphan_after: Some(Duration::from_secs(20)),
        orphan_every: Duration::from_secs(2),
        ..Default::default()
    };

    // First worker: killed (task aborted) a third of the way through.
    let stats1 = Arc::new(WorkerStats::default());
    let (_tx1, rx1) = tokio::sync::watch::channel(false);
    let w1 = tokio::spawn(worker::run(ctx.clone(), opts.clone(), stats1.clone(), rx1));
    wait_until(&store, "a third of the calls", |c| {
        finished(c) >= CALLS as i64 / 3
    })
    .await;
    w1.abort();
    let _ = w1.await;

    // Its replacement finishes the job.
    let stats2 = Arc::new(WorkerStats::default());
    let (tx2, rx2) = tokio::sync::watch::channel(false);
    let w2 = tokio::spawn(worker::run(ctx.clone(), opts, stats2.clone(), rx2));
    wait_until(&store, "every call settled", |c| {
        finished(c) == CALLS as i64
    })
    .await;
    tx2.send(true).unwrap();
    w2.await.unwrap().unwrap();

    // Every call accounted for.
    let c = settled(&store).await;
    assert_eq!(finished(&c), CALLS as i64, "{c:?}");
    assert_eq!(
        c.values().sum::<i64>(),
        CALLS as i64,
        "nothing left in flight: {c:?}"
    );
    let dead_calls = c.get("dead").copied().unwrap_or(0);
    let dead_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT call_id) FROM dead_jobs WHERE status = 'dead'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(dead_rows, dead_calls, "every dead call has its dead job");
    assert!(
        dead_calls > 0
            && c.get("review").copied().unwrap_or(0) > 0
            && c.get("done").copied().unwrap_or(0) > 0,
        "{c:?}"
    );

    // Throughput buckets sum to the calls that completed each stage.
    let buckets = store.throughput_since(0).await.unwrap();
    for (i, stage) in Stage::ALL.iter().enumerate() {
        let counted: i64 = buckets
            .iter()
            .filter(|b| b.stage == stage.as_str())
            .map(|b| b.calls)
            .sum();
        let later: Vec<String> = Stage::ALL[i + 1..]
            .iter()
            .map(|s| format!("'{s}'"))
            .collect();
        let later = if later.is_empty() {
            "''".to_string()
        } else {
            later.join(",")
        };
        let expected: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM calls WHERE stage IN ({later}) OR (stage = '{stage}' AND state IN ('done', 'review'))"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(counted, expected, "throughput of {stage}");
    }

    // Every skipped QC / lead / link has its reason in the trace.
    let missing_qc: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls c WHERE c.stage IN ('link', 'notify') AND NOT EXISTS \
         (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind IN ('qc', 'qc_skipped'))",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        missing_qc, 0,
        "calls past analysis without a QC decision in their trace"
    );
    let missing_lead: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls c WHERE c.state = 'done' AND NOT EXISTS \
         (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind = 'done' AND e.reason LIKE '%lead%')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        missing_lead, 0,
        "finished calls without a lead decision in their trace"
    );
    // What a stage run noted (its trace rows, the caller's number, the agents' results)
    // committed with its result: before the result row, and on the call.
    for (stage, noted) in [
        ("sync", "'number'"),
        (
            "analyze",
            "'analysis', 'name', 'qc', 'qc_skipped', 'agent_skipped', 'agents'",
        ),
    ] {
        let misordered: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM calls c WHERE \
             (SELECT MAX(id) FROM call_events e WHERE e.call_id = c.id AND e.stage = '{stage}' AND e.kind IN ({noted})) > \
             (SELECT MAX(id) FROM call_events r WHERE r.call_id = c.id AND r.stage = '{stage}' AND r.kind IN ('completed', 'done', 'review'))"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(
            misordered, 0,
            "{stage} rows written after the stage's result row"
        );
    }
    let unnoted: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls c WHERE c.stage <> 'sync' AND (c.number_status IS NULL OR NOT EXISTS \
         (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind = 'number'))",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        unnoted, 0,
        "calls past sync without their number and its trace row"
    );
    let unanalyzed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls c WHERE c.stage IN ('link', 'notify') \
         AND NOT EXISTS (SELECT 1 FROM analyses a WHERE a.call_id = c.id)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        unanalyzed, 0,
        "calls past analysis without the agents' results"
    );
    let unexplained_review: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE state = 'review' AND (review_reason IS NULL OR review_reason = '')")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(unexplained_review, 0);
    let unlinked_done: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls WHERE state = 'done' AND customer_id IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        unlinked_done, 0,
        "withheld numbers get temporary customers: no finished call is unlinked"
    );
    let dj = store
        .count_dead_jobs(&DeadJobFilter::default())
        .await
        .unwrap();
    eprintln!("settled {c:?}; dead jobs {dj}; worker 1 {stats1:?}; worker 2 {stats2:?}");
    // No call was ever found without a job, an outbox row or a live lease.
    let alarms: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orphan_alarms")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(alarms, 0, "orphan alarms raised: a job was lost somewhere");
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 0, "every outbox row was relayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_database_broker() {
    let (store, _dir) = common::sqlite_store().await;
    let broker = queue::connect(
        "database",
        settings(common::unique("e2e"), String::new()),
        store.clone(),
    )
    .await
    .unwrap();
    run(store, broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(callops_no_postgres, callops_no_rabbitmq),
    ignore = "CALLOPS_TEST_POSTGRES_URL and CALLOPS_TEST_AMQP_URL not both set"
)]
async fn postgres_with_rabbitmq() {
    let (Some(pg), Some(amqp)) = (common::postgres_url(), common::amqp_url()) else {
        return;
    };
    let db = common::PgDb::create(&pg).await;
    let broker = queue::connect(
        "rabbitmq",
        settings(common::unique("cotest"), amqp),
        db.store.clone(),
    )
    .await
    .unwrap();
    run(db.store.clone(), broker.clone()).await;
    broker.delete_topology().await.unwrap();
    broker.close().await;
}

/// The orphan alarm: a call whose job vanished (deleted here by hand, as a bug would lose
/// it) is found, reported once with the reason in its trace, its job published again, and
/// it finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_job_is_republished_and_the_call_finishes() {
    let (store, _dir) = common::sqlite_store().await;
    let broker = queue::connect(
        "database",
        settings(common::unique("lost"), String::new()),
        store.clone(),
    )
    .await
    .unwrap();
    let (_never_tx, never) = tokio::sync::watch::channel(false);
    simulate::run(
        &store,
        &*broker,
        SimulateOptions {
            businesses: 1,
            calls_per_minute: 600_000.0,
            total_calls: Some(3),
            seed: 5,
            customers_per_business: 5,
        },
        never,
    )
    .await
    .unwrap();
    // Lose every job.
    sqlx::query("DELETE FROM jobs")
        .execute(store.pool())
        .await
        .unwrap();
    let ctx = ctx(store.clone(), broker.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let w = tokio::spawn(worker::run(
        ctx,
        WorkerOptions {
            business_refresh: Duration::from_millis(200),
            orphan_after: Some(Duration::from_secs(1)),
            orphan_every: Duration::from_millis(200),
            ..Default::default()
        },
        Arc::new(WorkerStats::default()),
        rx,
    ));
    wait_until(&store, "the lost calls finished", |c| finished(c) == 3).await;
    tx.send(true).unwrap();
    w.await.unwrap().unwrap();
    let reported: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT call_id) FROM call_events WHERE kind = 'orphan'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(reported, 3, "each lost call has the alarm in its trace");
    let alarms: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orphan_alarms")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(alarms, 3, "one alarm per lost call, not one per sweep");
    broker.close().await;
}
