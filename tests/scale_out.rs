//! Scale-out (issue 14): three real `callops worker` processes and the console's data path
//! (`callops overview --json`) on Postgres + RabbitMQ. Every call settles once, the work is
//! shared, and the per-process counters add up to what the database and the console say.

mod common;

use callops::pipeline::simulate::{self, SimulateOptions};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: u64 = 150;

struct Env {
    url: String,
    amqp: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Env {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callops"));
        cmd.args([
            "--database-url",
            &self.url,
            "--data-dir",
            &self.dir.path().display().to_string(),
        ])
        .env_remove("CALLOPS_DATABASE_URL")
        .env_remove("CALLOPS_FAILPOINT")
        .env("CALLOPS_BROKER", "rabbitmq")
        .env("CALLOPS_AMQP_URL", &self.amqp)
        .env("CALLOPS_BROKER_PREFIX", &self.prefix)
        .env("CALLOPS_SIMULATED_STT_LATENCY_MS", "20")
        .env("CALLOPS_SIMULATED_LLM_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_JITTER", "0")
        .env("CALLOPS_SIMULATED_TRANSIENT_RATE", "0")
        .env("CALLOPS_SIMULATED_PERMANENT_RATE", "0")
        .env("CALLOPS_SIMULATED_MALFORMED_RATE", "0");
        cmd
    }

    fn worker(&self) -> Child {
        self.cmd()
            .args(["worker", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting callops worker")
    }
}

/// `worker stopped: N advanced, N retrying, N dead, N duplicates skipped, N deferred …`
fn counter(summary: &str, name: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with("worker stopped:"))
        .unwrap_or_else(|| panic!("no stop summary in the worker's output:\n{summary}"));
    line.trim_start_matches("worker stopped:")
        .split(',')
        .find_map(|part| {
            let part = part.trim();
            let (n, rest) = part.split_once(' ')?;
            rest.starts_with(name).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {name:?} counter in {line:?}"))
}

#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_and_a_console_account_for_every_call() {
    let (Some(pg), Some(amqp)) = (common::postgres_url(), common::amqp_url()) else {
        return;
    };
    let db = common::PgDb::create(&pg).await;
    let env = Env {
        url: db.url.clone(),
        amqp: amqp.clone(),
        prefix: common::unique("scale"),
        dir: tempfile::tempdir().unwrap(),
    };
    let settings = BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            tiers: 2,
        },
        prefix: env.prefix.clone(),
        amqp_url: amqp,
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(50),
    };
    let broker = queue::connect("rabbitmq", settings, db.store.clone())
        .await
        .unwrap();
    let mut workers: Vec<Child> = (0..3).map(|_| env.worker()).collect();
    let (_never_tx, never) = tokio::sync::watch::channel(false);
    let report = simulate::run(
        &db.store,
        &*broker,
        SimulateOptions {
            businesses: 6,
            calls_per_minute: 600_000.0,
            total_calls: Some(CALLS),
            seed: 14,
            customers_per_business: 20,
        },
        never,
    )
    .await
    .unwrap();
    assert_eq!(report.ingested, CALLS);
    queue::outbox::flush(&db.store, &*broker, Duration::from_secs(30))
        .await
        .unwrap();

    let count = |sql: &'static str| {
        let store = db.store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(store.pool())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while count("SELECT COUNT(*) FROM calls WHERE state IN ('done', 'review', 'dead')").await
        < CALLS as i64
    {
        assert!(
            Instant::now() < deadline,
            "calls not settled after 180 s by three workers"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The console's data path, while the workers still run.
    let out = env.cmd().args(["overview", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "callops overview failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let console_completions: i64 = rows
        .iter()
        .flat_map(|b| {
            b["calls_60"]
                .as_object()
                .unwrap_or_else(|| panic!("no calls_60 per stage in {b}"))
                .values()
                .map(|v| v.as_i64().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .sum();

    // Stop the workers (SIGTERM: in-flight jobs finish) and read their counters.
    let mut summaries = Vec::new();
    for w in &mut workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
    }
    for mut w in workers {
        let status = w.wait().unwrap();
        let mut err = String::new();
        w.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "worker exited with {status}:\n{err}");
        summaries.push(err);
    }
    let advanced: Vec<u64> = summaries.iter().map(|s| counter(s, "advanced")).collect();
    let total: u64 = advanced.iter().sum();

    let events = count(
        "SELECT COUNT(*) FROM call_events WHERE kind IN ('completed', 'review', 'done') AND actor = 'pipeline'",
    )
    .await;
    let buckets = count("SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM throughput").await;
    assert_eq!(
        total as i64, events,
        "the workers' advanced counters {advanced:?} must add up to the stage results in the trace"
    );
    assert_eq!(buckets, events, "throughput buckets and the trace disagree");
    assert_eq!(
        console_completions, events,
        "the console's per-stage completions (calls_60) disagree with the trace"
    );
    assert!(
        advanced.iter().all(|n| *n > 0),
        "every worker process took part: {advanced:?}"
    );
    for (s, name) in [
        ("dead", "dead"),
        ("orphan", "orphan alarms"),
        ("unsettled", "unsettled"),
    ] {
        let n: u64 = summaries.iter().map(|x| counter(x, name)).sum();
        assert_eq!(n, 0, "{s}: {summaries:?}");
    }
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE state = 'dead'").await,
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM outbox").await, 0);
    // Each call completed each stage once: no stage ran twice anywhere.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM (SELECT call_id, stage FROM call_events WHERE kind IN ('completed', 'review', 'done') \
             GROUP BY call_id, stage HAVING COUNT(*) > 1) x"
        )
        .await,
        0
    );
    broker.delete_topology().await.unwrap();
    broker.close().await;
}
