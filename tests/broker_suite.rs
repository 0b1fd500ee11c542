//! One broker suite, run against the database backend (on SQLite and on Postgres) and
//! against RabbitMQ (with a unique name prefix per test, deleted after).

mod common;

use callops::domain::stage::Stage;
use callops::queue::{
    self, dlq, Broker, BrokerSettings, ConsumeSpec, Delivery, FailOutcome, Job, RetryPolicy,
};
use callops::store::{DeadJobFilter, DeadJobStatus, NewCall, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A broker under test plus what must outlive it.
struct Fixture {
    broker: Arc<dyn Broker>,
    store: Store,
    _sqlite: Option<tempfile::TempDir>,
    _pg: Option<common::PgDb>,
}

impl Fixture {
    async fn cleanup(self) {
        self.broker.delete_topology().await.unwrap();
        self.broker.close().await;
    }
}

fn settings(prefix: String, amqp_url: String) -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix,
        amqp_url,
        management_url: None,
        visibility_timeout: Duration::from_millis(800),
        poll_interval: Duration::from_millis(20),
    }
}

async fn database_sqlite() -> Option<Fixture> {
    let (store, dir) = common::sqlite_store().await;
    let broker = queue::connect(
        "database",
        settings(common::unique("t"), String::new()),
        store.clone(),
    )
    .await
    .unwrap();
    Some(Fixture {
        broker,
        store,
        _sqlite: Some(dir),
        _pg: None,
    })
}

async fn database_postgres() -> Option<Fixture> {
    let url = common::postgres_url()?;
    let db = common::PgDb::create(&url).await;
    let store = db.store.clone();
    let broker = queue::connect(
        "database",
        settings(common::unique("t"), String::new()),
        store.clone(),
    )
    .await
    .unwrap();
    Some(Fixture {
        broker,
        store,
        _sqlite: None,
        _pg: Some(db),
    })
}

async fn rabbitmq() -> Option<Fixture> {
    let amqp = common::amqp_url()?;
    let (store, dir) = common::sqlite_store().await;
    let broker = queue::connect(
        "rabbitmq",
        settings(common::unique("cotest"), amqp),
        store.clone(),
    )
    .await
    .unwrap();
    Some(Fixture {
        broker,
        store,
        _sqlite: Some(dir),
        _pg: None,
    })
}

macro_rules! broker_suite {
    ($($name:ident),* $(,)?) => {
        mod database_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::database_sqlite().await else { return };
                    super::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
        mod database_postgres {
            $(
                #[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::database_postgres().await else { return };
                    super::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::rabbitmq().await else { return };
                    super::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}

broker_suite!(
    forced_redeliveries_give_exactly_once_effects,
    poison_job_is_dead_after_max_attempts_with_history,
    loud_business_does_not_starve_a_quiet_one,
    dead_job_retry_publishes_then_marks_and_never_twice,
    queue_stats_report_depth,
    new_business_is_picked_up_without_restart,
);

async fn recv(c: &mut queue::Consumer, what: &str) -> Delivery {
    tokio::time::timeout(Duration::from_secs(20), c.recv())
        .await
        .unwrap_or_else(|_| panic!("no delivery within 20 s while waiting for {what}"))
        .expect("consumer closed")
}

fn spec(stage: Stage, businesses: Vec<i64>, prefetch: u16) -> ConsumeSpec {
    ConsumeSpec {
        max_in_flight: 0,
        stage,
        businesses,
        prefetch,
    }
}

/// The idempotent effect: ingest a call keyed by the job's payload (a duplicate is a no-op).
async fn apply_effect(store: &Store, business_id: i64, job: &Job) {
    let key = job.payload["key"].as_str().unwrap().to_string();
    store
        .ingest_call(&NewCall {
            business_id,
            external_id: key,
            direction: "inbound".into(),
            raw: "{}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn forced_redeliveries_give_exactly_once_effects(f: &Fixture) {
    let biz = f.store.ensure_business("exactly-once").await.unwrap().id;
    const N: usize = 300;
    let jobs: Vec<Job> = (0..N)
        .map(|i| {
            Job::new(
                biz,
                Stage::Sync,
                None,
                serde_json::json!({ "key": format!("k{i}") }),
            )
        })
        .collect();
    f.broker.publish_many(&jobs).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Sync, vec![biz], 50))
        .await
        .unwrap();
    let mut done = HashSet::new();
    let mut deliveries = 0;
    let mut failed_once = HashSet::new();
    while done.len() < N {
        let d = recv(&mut consumer, "the next job").await;
        deliveries += 1;
        // The effect lands before the ack; every 4th job then "crashes" once after its effect.
        apply_effect(&f.store, biz, &d.job).await;
        let k = d.job.payload["key"].as_str().unwrap().to_string();
        let idx: usize = k[1..].parse().unwrap();
        if idx.is_multiple_of(4) && failed_once.insert(k.clone()) {
            assert!(matches!(
                d.fail("forced crash after effect").await.unwrap(),
                FailOutcome::Retrying { .. }
            ));
            continue;
        }
        d.ack().await.unwrap();
        done.insert(k);
    }
    consumer.stop().await;
    assert!(
        deliveries >= N + N / 4,
        "forced redeliveries happened: {deliveries}"
    );
    let calls: i64 =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM calls WHERE business_id = $1")
            .bind(biz)
            .fetch_one(f.store.pool())
            .await
            .unwrap();
    assert_eq!(calls, N as i64, "every job's effect exactly once");
    let events: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM call_events WHERE business_id = $1 AND kind = 'ingested'",
    )
    .bind(biz)
    .fetch_one(f.store.pool())
    .await
    .unwrap();
    assert_eq!(events, N as i64);
    assert_eq!(
        f.store
            .count_dead_jobs(&DeadJobFilter::default())
            .await
            .unwrap(),
        0
    );
}

async fn poison_job_is_dead_after_max_attempts_with_history(f: &Fixture) {
    let biz = f.store.ensure_business("poison").await.unwrap().id;
    let job = Job::new(
        biz,
        Stage::Analyze,
        Some(42),
        serde_json::json!({"key": "poison"}),
    );
    f.broker.publish(&job).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Analyze, vec![biz], 5))
        .await
        .unwrap();
    let mut seen_attempts = Vec::new();
    let dead_id = loop {
        let d = recv(&mut consumer, "the poison job").await;
        assert_eq!(d.job.id, job.id, "same logical job across retries");
        seen_attempts.push(d.job.attempts);
        let n = d.job.attempts + 1;
        match d
            .fail(&format!("model output not JSON at try {n}"))
            .await
            .unwrap()
        {
            FailOutcome::Retrying { .. } => continue,
            FailOutcome::Dead { dead_job_id } => break dead_job_id,
        }
    };
    consumer.stop().await;
    assert_eq!(seen_attempts, vec![0, 1, 2]);
    let dj = f.store.dead_job(dead_id).await.unwrap();
    assert_eq!(dj.attempts, 3);
    assert_eq!(dj.call_id, Some(42));
    assert_eq!(dj.stage.as_deref(), Some("analyze"));
    assert_eq!(dj.business_id, Some(biz));
    let errs: Vec<_> = dj
        .errors
        .iter()
        .map(|e| (e.attempt, e.error.clone()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (1, "model output not JSON at try 1".to_string()),
            (2, "model output not JSON at try 2".to_string()),
            (3, "model output not JSON at try 3".to_string()),
        ]
    );
    assert!(dj.errors.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(dj.first_error, "model output not JSON at try 1");
    assert_eq!(dj.last_error, "model output not JSON at try 3");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&dj.payload).unwrap(),
        job.payload
    );
    // Nothing left in the queue.
    let stats = f.broker.queue_stats(&[biz]).await.unwrap();
    assert_eq!(stats.iter().map(|s| s.depth).sum::<u64>(), 0, "{stats:?}");
}

async fn loud_business_does_not_starve_a_quiet_one(f: &Fixture) {
    let loud = f.store.ensure_business("loud").await.unwrap().id;
    let quiet = f.store.ensure_business("quiet").await.unwrap().id;
    let loud_jobs: Vec<Job> = (0..3000)
        .map(|i| {
            Job::new(
                loud,
                Stage::Transcribe,
                None,
                serde_json::json!({ "key": format!("l{i}") }),
            )
        })
        .collect();
    f.broker.publish_many(&loud_jobs).await.unwrap();
    let quiet_jobs: Vec<Job> = (0..10)
        .map(|i| {
            Job::new(
                quiet,
                Stage::Transcribe,
                None,
                serde_json::json!({ "key": format!("q{i}") }),
            )
        })
        .collect();
    f.broker.publish_many(&quiet_jobs).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Transcribe, vec![loud, quiet], 10))
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut quiet_done = 0;
    while quiet_done < 10 {
        let d = recv(&mut consumer, "the quiet business's jobs").await;
        if d.job.business_id == quiet {
            quiet_done += 1;
        }
        order.push(d.job.business_id);
        d.ack().await.unwrap();
        assert!(
            order.len() <= 200,
            "quiet business starved: only {quiet_done}/10 done after {} deliveries",
            order.len()
        );
    }
    consumer.stop().await;
}

async fn dead_job_retry_publishes_then_marks_and_never_twice(f: &Fixture) {
    let biz = f.store.ensure_business("retry").await.unwrap().id;
    let job = Job::new(biz, Stage::Link, Some(7), serde_json::json!({"key": "x"}));
    f.broker.publish(&job).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Link, vec![biz], 5))
        .await
        .unwrap();
    let d = recv(&mut consumer, "the job").await;
    let dead_id = d.dead("400 Bad Request: permanent").await.unwrap();
    let filter = DeadJobFilter {
        business_id: Some(biz),
        ..Default::default()
    };
    assert_eq!(f.store.count_dead_jobs(&filter).await.unwrap(), 1);

    let report = dlq::retry_matching(&f.store, &*f.broker, &filter, &dlq::RetryBy::admin("admin"))
        .await
        .unwrap();
    assert_eq!(report.retried, 1);
    let again = dlq::retry_dead_jobs(
        &f.store,
        &*f.broker,
        &[dead_id],
        &dlq::RetryBy::admin("admin"),
    )
    .await
    .unwrap();
    assert_eq!(again.retried, 0, "a retried row is not retried twice");

    let d = recv(&mut consumer, "the retried job").await;
    assert_eq!(d.job.attempts, 0);
    assert_eq!(d.job.call_id, Some(7));
    assert_eq!(d.job.payload, job.payload);
    let row = f.store.dead_job(dead_id).await.unwrap();
    assert_eq!(row.status, DeadJobStatus::Retried);
    assert_eq!(row.retried_as.as_deref(), Some(d.job.id.as_str()));
    assert_eq!(row.status_by.as_deref(), Some("admin"));
    d.ack().await.unwrap();
    consumer.stop().await;
}

async fn queue_stats_report_depth(f: &Fixture) {
    let biz = f.store.ensure_business("depth").await.unwrap().id;
    let jobs: Vec<Job> = (0..7)
        .map(|i| Job::new(biz, Stage::Notify, None, serde_json::json!({ "i": i })))
        .collect();
    f.broker.publish_many(&jobs).await.unwrap();
    let mut depth = 0;
    // RabbitMQ counts may lag the confirm by a moment.
    for _ in 0..50 {
        let stats = f.broker.queue_stats(&[biz]).await.unwrap();
        let by_queue: HashMap<String, u64> =
            stats.iter().map(|s| (s.queue.clone(), s.depth)).collect();
        depth = *by_queue.get(&Stage::Notify.queue_for(biz)).unwrap_or(&0);
        if depth == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, 7);
    assert!(f.broker.is_connected());
}

async fn new_business_is_picked_up_without_restart(f: &Fixture) {
    let a = f.store.ensure_business("first").await.unwrap().id;
    let mut consumer = f
        .broker
        .consume(spec(Stage::Sync, vec![a], 5))
        .await
        .unwrap();
    let b = f.store.ensure_business("second").await.unwrap().id;
    f.broker
        .publish(&Job::new(
            b,
            Stage::Sync,
            None,
            serde_json::json!({"key": "new"}),
        ))
        .await
        .unwrap();
    consumer.set_businesses(&[a, b]).await.unwrap();
    let d = recv(&mut consumer, "the new business's job").await;
    assert_eq!(d.job.business_id, b);
    d.ack().await.unwrap();
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_crashed_worker_job_is_redelivered_after_visibility_timeout() {
    let Some(f) = database_sqlite().await else {
        return;
    };
    let biz = f.store.ensure_business("crash").await.unwrap().id;
    let job = Job::new(biz, Stage::Sync, None, serde_json::json!({"key": "c"}));
    f.broker.publish(&job).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Sync, vec![biz], 5))
        .await
        .unwrap();
    let d = recv(&mut consumer, "first delivery").await;
    assert!(!d.redelivered);
    // A crashed worker neither acks nor releases: forget the delivery entirely.
    std::mem::forget(d);
    let d = recv(&mut consumer, "redelivery after the visibility timeout").await;
    assert_eq!(d.job.id, job.id);
    assert!(d.redelivered);
    d.ack().await.unwrap();
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_undecodable_row_goes_to_dead_jobs_with_reason() {
    let Some(f) = database_sqlite().await else {
        return;
    };
    let biz = f.store.ensure_business("garbage").await.unwrap().id;
    let now = callops::now_ms();
    sqlx::query(
        "INSERT INTO jobs (job_id, queue, business_id, stage, payload, first_enqueued_at, enqueued_at, run_at) \
         VALUES ('bad-1', $1, $2, 'sync', '{not json', $3, $3, $3)",
    )
    .bind(Stage::Sync.queue_for(biz))
    .bind(biz)
    .bind(now)
    .execute(f.store.pool())
    .await
    .unwrap();
    let good = Job::new(biz, Stage::Sync, None, serde_json::json!({"key": "ok"}));
    f.broker.publish(&good).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Sync, vec![biz], 5))
        .await
        .unwrap();
    let d = recv(&mut consumer, "the good job behind the bad one").await;
    assert_eq!(d.job.id, good.id);
    d.ack().await.unwrap();
    consumer.stop().await;
    let dead = f
        .store
        .list_dead_jobs(&DeadJobFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id, "bad-1");
    assert_eq!(dead[0].payload, "{not json");
    assert!(
        dead[0].last_error.contains("payload is not JSON"),
        "{}",
        dead[0].last_error
    );
}

/// A worker whose visibility timeout ran out (slow, not dead) acks after the job was
/// claimed again: its ack must not delete the row the new claim owns. It used to, and the
/// job was gone while its call sat in running/retrying (seen in the e2e under load).
async fn database_stale_ack_after_redelivery_keeps_the_job(f: &Fixture) {
    let biz = f.store.ensure_business("stale-ack").await.unwrap().id;
    let job = Job::new(biz, Stage::Sync, None, serde_json::json!({"key": "s"}));
    f.broker.publish(&job).await.unwrap();
    let mut consumer = f
        .broker
        .consume(spec(Stage::Sync, vec![biz], 5))
        .await
        .unwrap();
    let slow = recv(&mut consumer, "first delivery").await;
    let again = recv(&mut consumer, "redelivery after the visibility timeout").await;
    assert!(again.redelivered && again.job.id == job.id);
    let rows = |store: Store| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    slow.ack().await.unwrap();
    assert_eq!(
        rows(f.store.clone()).await,
        1,
        "the stale ack deleted the re-claimed job"
    );
    // The current owner fails it: it comes back for a retry, and its ack removes it.
    assert!(matches!(
        again.fail("transient").await.unwrap(),
        FailOutcome::Retrying { .. }
    ));
    let retry = recv(&mut consumer, "the retry").await;
    assert_eq!(retry.job.id, job.id);
    retry.ack().await.unwrap();
    assert_eq!(rows(f.store.clone()).await, 0);
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_sqlite_stale_ack_after_redelivery_keeps_the_job() {
    let Some(f) = database_sqlite().await else {
        return;
    };
    database_stale_ack_after_redelivery_keeps_the_job(&f).await;
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_postgres_stale_ack_after_redelivery_keeps_the_job() {
    let Some(f) = database_postgres().await else {
        return;
    };
    database_stale_ack_after_redelivery_keeps_the_job(&f).await;
    f.cleanup().await;
}
