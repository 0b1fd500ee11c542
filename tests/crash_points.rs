//! Crash points: the real `callops worker` binary is `kill -9`ed at a chosen point (armed
//! with `CALLOPS_FAILPOINT`: the process says `FAILPOINT name` and hangs there), then a
//! fresh worker finishes the run. On SQLite + database broker and Postgres + RabbitMQ:
//! every call is accounted for, each stage's effect happened once per call (one
//! transcript, one analysis per agent, one lead increment), no outbox row or job is left,
//! and no orphan alarm was raised.
//!
//! Also: a provider call longer than the lease runs once, and two workers racing on
//! duplicate jobs of one call run its stage once (the other is fenced off).

mod common;

use callops::pipeline::simulate::{self, SimulateOptions};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::Store;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: u64 = 40;

struct Backend {
    url: String,
    broker: &'static str,
    amqp: String,
    prefix: String,
    dir: tempfile::TempDir,
    store: Store,
    _pg: Option<common::PgDb>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("crash.db").display());
    let store = Store::open_migrated(&url, 4).await.unwrap();
    Backend {
        url,
        broker: "database",
        amqp: String::new(),
        prefix: common::unique("crash"),
        dir,
        store,
        _pg: None,
    }
}

async fn postgres_rabbitmq() -> Option<Backend> {
    let (Some(pg), Some(amqp)) = (common::postgres_url(), common::amqp_url()) else {
        return None;
    };
    let db = common::PgDb::create(&pg).await;
    Some(Backend {
        url: db.url.clone(),
        broker: "rabbitmq",
        amqp,
        prefix: common::unique("crash"),
        dir: tempfile::tempdir().unwrap(),
        store: db.store.clone(),
        _pg: Some(db),
    })
}

impl Backend {
    fn settings(&self) -> BrokerSettings {
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(100),
                tiers: 2,
            },
            prefix: self.prefix.clone(),
            amqp_url: self.amqp.clone(),
            management_url: None,
            visibility_timeout: Duration::from_secs(3),
            poll_interval: Duration::from_millis(50),
        }
    }

    /// The real worker binary on this backend, reaching RabbitMQ at `amqp` (a proxy).
    fn worker_via(&self, amqp: &str, lease_ms: u64, stt_ms: u64) -> Child {
        self.spawn_worker(None, lease_ms, stt_ms, amqp)
    }

    /// The real worker binary on this backend. `lease_ms` is the stage lease (and the
    /// database broker's claim), `stt_ms` the simulated provider's latency.
    fn worker(&self, failpoint: Option<&str>, lease_ms: u64, stt_ms: u64) -> Child {
        self.spawn_worker(failpoint, lease_ms, stt_ms, &self.amqp)
    }

    fn spawn_worker(
        &self,
        failpoint: Option<&str>,
        lease_ms: u64,
        stt_ms: u64,
        amqp: &str,
    ) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callops"));
        cmd.args([
            "--database-url",
            &self.url,
            "--data-dir",
            &self.dir.path().display().to_string(),
            "worker",
            "--concurrency",
            "8",
        ])
        .env_remove("CALLOPS_DATABASE_URL")
        .env("CALLOPS_BROKER", self.broker)
        .env("CALLOPS_AMQP_URL", amqp)
        .env("CALLOPS_BROKER_PREFIX", &self.prefix)
        .env("CALLOPS_BROKER_VISIBILITY_TIMEOUT_MS", lease_ms.to_string())
        .env("CALLOPS_BROKER_POLL_INTERVAL_MS", "50")
        .env("CALLOPS_BROKER_RETRY_BASE_MS", "100")
        .env("CALLOPS_BROKER_RETRY_TIERS", "2")
        .env("CALLOPS_SIMULATED_STT_LATENCY_MS", stt_ms.to_string())
        .env("CALLOPS_SIMULATED_LLM_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_JITTER", "0")
        .env("CALLOPS_SIMULATED_TRANSIENT_RATE", "0")
        .env("CALLOPS_SIMULATED_PERMANENT_RATE", "0")
        .env("CALLOPS_SIMULATED_MALFORMED_RATE", "0")
        .env("CALLOPS_PIPELINE_ORPHAN_AFTER_S", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        match failpoint {
            Some(f) => cmd.env("CALLOPS_FAILPOINT", f),
            None => cmd.env_remove("CALLOPS_FAILPOINT"),
        };
        cmd.spawn().expect("starting callops worker")
    }

    async fn seed(&self, calls: u64) -> HashMap<i64, i64> {
        let broker = queue::connect(self.broker, self.settings(), self.store.clone())
            .await
            .unwrap();
        let (_never_tx, never) = tokio::sync::watch::channel(false);
        let report = simulate::run(
            &self.store,
            &*broker,
            SimulateOptions {
                businesses: 2,
                calls_per_minute: 600_000.0,
                total_calls: Some(calls),
                seed: 7,
                customers_per_business: 10,
            },
            never,
        )
        .await
        .unwrap();
        assert_eq!(report.ingested, calls);
        // Jobs of RabbitMQ go out through the outbox: publish them now.
        queue::outbox::flush(&self.store, &*broker, Duration::from_secs(30))
            .await
            .unwrap();
        broker.close().await;
        sqlx::query_as::<_, (i64, i64)>("SELECT id, call_count FROM leads")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn finished(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM calls WHERE state IN ('done', 'review', 'dead')")
            .await
    }

    async fn wait_all_finished(&self, calls: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.finished().await < calls as i64 {
            if Instant::now() > deadline {
                let open: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT id, stage, state FROM calls WHERE state NOT IN ('done', 'review', 'dead') LIMIT 10",
                )
                .fetch_all(self.store.pool())
                .await
                .unwrap();
                panic!("calls not finished after 120 s: {open:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every call accounted for, each effect once, nothing left behind, no orphan.
    async fn assert_exactly_once(&self, calls: u64, leads_before: &HashMap<i64, i64>) {
        assert_eq!(self.count("SELECT COUNT(*) FROM calls").await, calls as i64);
        assert_eq!(self.finished().await, calls as i64, "every call settled");
        assert_eq!(
            self.count("SELECT COUNT(*) FROM calls WHERE state = 'dead'")
                .await,
            0,
            "no failure was injected: nothing may die"
        );
        assert_eq!(
            self.count(
                "SELECT COUNT(*) FROM (SELECT call_id FROM transcripts GROUP BY call_id HAVING COUNT(*) > 1) t"
            )
            .await,
            0,
            "one transcript per call"
        );
        assert_eq!(
            self.count(
                "SELECT COUNT(*) FROM (SELECT call_id FROM analyses GROUP BY call_id, agent_id HAVING COUNT(*) > 1) t"
            )
            .await,
            0,
            "one analysis per call and agent"
        );
        let leads: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT l.id, l.call_count, (SELECT COUNT(*) FROM calls c WHERE c.lead_id = l.id) FROM leads l",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        for (id, count, linked) in leads {
            let before = leads_before.get(&id).copied().unwrap_or(0);
            assert_eq!(
                count - before,
                linked,
                "lead {id}: call_count went from {before} to {count} for {linked} calls"
            );
        }
        // A relay killed after claiming rows leaves them until its claim runs out; then
        // another relay publishes them (their deliveries are skipped as duplicates).
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count("SELECT COUNT(*) FROM outbox").await > 0 {
            assert!(Instant::now() < deadline, "outbox not drained within 60 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            self.count("SELECT COUNT(*) FROM jobs").await,
            0,
            "no job left"
        );
        assert_eq!(
            self.count("SELECT COUNT(*) FROM orphan_alarms").await,
            0,
            "no orphan: no job was lost at the crash"
        );
        assert_eq!(
            self.count(
                "SELECT COUNT(*) FROM dead_jobs d JOIN calls c ON c.id = d.call_id \
                 WHERE d.status = 'dead' AND c.state <> 'dead'"
            )
            .await,
            0,
            "no dead-job row for a call that is not dead"
        );
        assert_eq!(
            self.count(
                "SELECT COUNT(*) FROM (SELECT business_id, phone FROM customers WHERE phone IS NOT NULL \
                 GROUP BY business_id, phone HAVING COUNT(*) > 1) t"
            )
            .await,
            0,
            "no duplicate customer for one number"
        );
    }

    async fn cleanup(&self) {
        if self.broker == "rabbitmq" {
            let b = queue::connect(self.broker, self.settings(), self.store.clone())
                .await
                .unwrap();
            b.delete_topology().await.unwrap();
            b.close().await;
        }
    }
}

/// Wait for the child to announce the crash point, then kill -9 it.
fn kill_at(mut child: Child, point: &str) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // "name:N" arms the N-th hit of "name"; the process announces the name.
    let want = format!("FAILPOINT {}", point.split(':').next().unwrap());
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&want) {
                let _ = tx.send(Ok(()));
                return;
            }
            log.push(line);
        }
        let _ = tx.send(Err(log.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(Ok(())) => {}
        Ok(Err(log)) => panic!("worker exited before reaching {point}:\n{log}"),
        Err(_) => {
            let _ = child.kill();
            panic!("worker never reached {point} within 90 s");
        }
    }
    child.kill().expect("kill -9 of the worker"); // SIGKILL on unix
    child.wait().unwrap();
}

/// A worker process that is killed when the test ends, even when it panics (a failed
/// assertion must not leave workers running on the machine).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stop(w: Running) {
    drop(w);
}

async fn crash_then_recover(b: Backend, point: &str) {
    let leads = b.seed(CALLS).await;
    kill_at(b.worker(Some(point), 3000, 10), point);
    let w = Running(b.worker(None, 3000, 10));
    b.wait_all_finished(CALLS).await;
    // Let the relay and a sweep run after the last move before checking the leftovers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.assert_exactly_once(CALLS, &leads).await;
    stop(w);
    b.cleanup().await;
}

macro_rules! crash_tests {
    ($($name:ident: $point:expr;)*) => {
        mod sqlite_database_broker {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crash_then_recover(sqlite().await, $point).await;
                }
            )*
        }
        mod postgres_rabbitmq {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    any(callops_no_postgres, callops_no_rabbitmq),
                    ignore = "CALLOPS_TEST_POSTGRES_URL or CALLOPS_TEST_AMQP_URL not set"
                )]
                async fn $name() {
                    let Some(b) = postgres_rabbitmq().await else { return };
                    crash_then_recover(b, $point).await;
                }
            )*
        }
    };
}

crash_tests! {
    // Mid-stage: the provider answered, nothing committed yet.
    killed_before_the_transcribe_commit: "before_commit.transcribe:3";
    // The stage's move and its next job committed, the delivery not yet acked.
    killed_after_the_analyze_commit_before_the_ack: "after_commit.analyze:5";
    // The lead was written and counted, the notify result committed, not acked.
    killed_after_the_notify_commit_before_the_ack: "after_commit.notify:2";
}

/// RabbitMQ only: the relay published a batch with confirms and died before deleting
/// the outbox rows. The rows are published again; the duplicate deliveries are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(callops_no_postgres, callops_no_rabbitmq),
    ignore = "CALLOPS_TEST_POSTGRES_URL or CALLOPS_TEST_AMQP_URL not set"
)]
async fn postgres_rabbitmq_killed_between_relay_publish_and_outbox_delete() {
    let Some(b) = postgres_rabbitmq().await else {
        return;
    };
    // Seed without publishing: the worker's relay takes the rows.
    let broker = queue::connect(b.broker, b.settings(), b.store.clone())
        .await
        .unwrap();
    let (_never_tx, never) = tokio::sync::watch::channel(false);
    simulate::run(
        &b.store,
        &*broker,
        SimulateOptions {
            businesses: 2,
            calls_per_minute: 600_000.0,
            total_calls: Some(CALLS),
            seed: 9,
            customers_per_business: 10,
        },
        never,
    )
    .await
    .unwrap();
    broker.close().await;
    let leads: HashMap<i64, i64> =
        sqlx::query_as::<_, (i64, i64)>("SELECT id, call_count FROM leads")
            .fetch_all(b.store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(b.count("SELECT COUNT(*) FROM outbox").await > 0);
    kill_at(
        b.worker(Some("relay_after_publish"), 3000, 10),
        "relay_after_publish",
    );
    let w = Running(b.worker(None, 3000, 10));
    b.wait_all_finished(CALLS).await;
    // The dead relay's rows come back once its claim (30 s) runs out and are published
    // again: wait for that, so their duplicate deliveries are part of the check.
    let deadline = Instant::now() + Duration::from_secs(90);
    while b.count("SELECT COUNT(*) FROM outbox").await > 0 {
        assert!(
            Instant::now() < deadline,
            "outbox not drained after the relay crash"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(w);
    b.assert_exactly_once(CALLS, &leads).await;
    let skipped = b
        .count("SELECT COUNT(*) FROM call_events WHERE kind = 'duplicate'")
        .await;
    eprintln!("duplicate deliveries skipped after the relay crash: {skipped}");
    b.cleanup().await;
}

/// A provider call of twice the lease runs once per call, with two workers racing on a
/// duplicate job of every call: the lease heartbeat keeps the call (and the database
/// broker's claim) alive, and the second delivery is fenced off (deferred, then skipped).
async fn long_call_runs_once(b: Backend) {
    const N: u64 = 6;
    let leads = b.seed(N).await;
    // A second sync job for every call, as a duplicate publish would make.
    let calls: Vec<(i64, i64)> = sqlx::query_as("SELECT id, business_id FROM calls")
        .fetch_all(b.store.pool())
        .await
        .unwrap();
    let dupes: Vec<callops::queue::Job> = calls
        .iter()
        .map(|(id, biz)| {
            callops::queue::Job::new(
                *biz,
                callops::domain::stage::Stage::Sync,
                Some(*id),
                serde_json::json!({ "call_id": id }),
            )
        })
        .collect();
    let mut tx = b.store.begin_write().await.unwrap();
    queue::outbox::enqueue_in(&mut tx, b.broker, &dupes)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    if b.broker == "rabbitmq" {
        let broker = queue::connect(b.broker, b.settings(), b.store.clone())
            .await
            .unwrap();
        queue::outbox::flush(&b.store, &*broker, Duration::from_secs(30))
            .await
            .unwrap();
        broker.close().await;
    }
    // Lease 3 s, transcription 7 s: the provider call outlives the lease more than twice.
    let w1 = Running(b.worker(None, 3000, 7000));
    let w2 = Running(b.worker(None, 3000, 7000));
    b.wait_all_finished(N).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let starts: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT call_id, COUNT(*) FROM call_events WHERE kind = 'started' AND stage = 'transcribe' \
         GROUP BY call_id, stage HAVING COUNT(*) > 1",
    )
    .fetch_all(b.store.pool())
    .await
    .unwrap();
    if !starts.is_empty() {
        let events: Vec<(i64, String, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT call_id, stage, kind, reason, at FROM call_events WHERE call_id IN ({}) ORDER BY id",
            starts.iter().map(|s| s.0.to_string()).collect::<Vec<_>>().join(",")
        ))
        .fetch_all(b.store.pool())
        .await
        .unwrap();
        panic!("a stage started twice for these calls: {starts:?}\n{events:#?}");
    }
    b.assert_exactly_once(N, &leads).await;
    stop(w1);
    stop(w2);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_provider_call_longer_than_the_lease_runs_once() {
    long_call_runs_once(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(callops_no_postgres, callops_no_rabbitmq),
    ignore = "CALLOPS_TEST_POSTGRES_URL or CALLOPS_TEST_AMQP_URL not set"
)]
async fn postgres_rabbitmq_provider_call_longer_than_the_lease_runs_once() {
    let Some(b) = postgres_rabbitmq().await else {
        return;
    };
    long_call_runs_once(b).await;
}

/// A bad night on Postgres + RabbitMQ with a worker process running: its RabbitMQ
/// connection is cut twice (through a proxy) and every Postgres connection of the database
/// is terminated twice (`pg_terminate_backend`). The worker recovers by itself; nothing is
/// lost, nothing runs twice, no duplicate customer, no dead row for a live call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(callops_no_postgres, callops_no_rabbitmq),
    ignore = "CALLOPS_TEST_POSTGRES_URL or CALLOPS_TEST_AMQP_URL not set"
)]
async fn postgres_rabbitmq_broker_cut_and_database_connections_terminated_mid_run() {
    let Some(b) = postgres_rabbitmq().await else {
        return;
    };
    const N: u64 = 120;
    let leads = b.seed(N).await;
    let (proxy, via) = common::proxy::amqp_via_proxy(&b.amqp).await;
    let w = Running(b.worker_via(&via, 3000, 30));
    let terminate = "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let admin = sqlx::PgPool::connect(&b.url).await.unwrap();
    for round in 0..2 {
        // Wait for progress, then fail something.
        let target = (round as i64 + 1) * N as i64 / 4;
        let deadline = Instant::now() + Duration::from_secs(60);
        while b.finished().await < target {
            assert!(
                Instant::now() < deadline,
                "no progress before outage {round}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cut = proxy.cut();
        eprintln!("round {round}: cut {cut} RabbitMQ connections");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed: i64 = sqlx::query_scalar(terminate)
            .fetch_one(&admin)
            .await
            .unwrap();
        eprintln!("round {round}: terminated {killed} Postgres connections");
    }
    admin.close().await;
    b.wait_all_finished(N).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.assert_exactly_once(N, &leads).await;
    let twice: i64 = b
        .count(
            "SELECT COUNT(*) FROM (SELECT call_id, stage FROM call_events WHERE kind IN ('completed', 'done', 'review') \
             GROUP BY call_id, stage HAVING COUNT(*) > 1) t",
        )
        .await;
    assert_eq!(twice, 0, "a stage completed twice for some call");
    stop(w);
    b.cleanup().await;
}
