//! Queue statistics at scale on RabbitMQ (issue 14): without the management API, passive
//! declares for the businesses asked only, concurrently; with it, one filtered request per
//! refresh, shared by callers within its lifetime, with the same depths.

mod common;

use callops::domain::stage::Stage;
use callops::queue::rabbitmq::RabbitBroker;
use callops::queue::{Broker, BrokerSettings, Job, RetryPolicy};
use std::time::Duration;

/// The management API of the test RabbitMQ, when its plugin answers.
async fn management_url() -> Option<String> {
    let url = std::env::var("CALLOPS_TEST_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:15672".into());
    let ok = reqwest::Client::new()
        .get(format!("{url}/api/overview"))
        .basic_auth("guest", Some("guest"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    ok.then_some(url)
}

fn settings(prefix: &str, amqp: &str, mgmt: Option<String>) -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: prefix.into(),
        amqp_url: amqp.into(),
        management_url: mgmt,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn stats_cost_what_is_asked_and_agree_with_and_without_the_management_api() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (store, _dir) = common::sqlite_store().await;
    let prefix = common::unique("stats");
    let plain = RabbitBroker::connect(store.clone(), settings(&prefix, &amqp, None))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            store
                .ensure_business(&format!("stats {i}"))
                .await
                .unwrap()
                .id,
        );
    }
    // Business k has k jobs in its transcribe queue and one in link; its sync queue was
    // never declared (it counts as empty).
    let mut jobs = Vec::new();
    for (k, b) in ids.iter().enumerate() {
        for _ in 0..k {
            jobs.push(Job::new(
                *b,
                Stage::Transcribe,
                None,
                serde_json::Value::Null,
            ));
        }
        jobs.push(Job::new(*b, Stage::Link, None, serde_json::Value::Null));
    }
    plain.publish_many(&jobs).await.unwrap();
    let want = |stats: &[callops::queue::QueueStat]| {
        for (k, b) in ids.iter().enumerate().take(10) {
            let of = |s: Stage| {
                stats
                    .iter()
                    .find(|q| q.business_id == Some(*b) && q.stage == Some(s))
                    .map(|q| q.depth)
            };
            assert_eq!(
                of(Stage::Transcribe),
                Some(k as u64),
                "business {b}: {stats:?}"
            );
            assert_eq!(of(Stage::Link), Some(1));
            assert_eq!(of(Stage::Sync), Some(0));
        }
    };

    // Without the management API: five passive declares per business asked, no more.
    let before = plain.stats_cost();
    let stats = plain.queue_stats(&ids[..10]).await.unwrap();
    assert_eq!(stats.len(), 50);
    want(&stats);
    let cost = plain.stats_cost();
    assert_eq!(cost.passive_declares - before.passive_declares, 50);
    assert_eq!(cost.management_requests, 0);

    if let Some(mgmt) = management_url().await {
        let api = RabbitBroker::connect(store.clone(), settings(&prefix, &amqp, Some(mgmt)))
            .await
            .unwrap();
        // The API samples queues every few seconds: wait until it has seen the jobs.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let stats = loop {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let s = api.queue_stats(&ids[..10]).await.unwrap();
            let total: u64 = s.iter().map(|q| q.depth).sum();
            if total == (0..10).sum::<u64>() + 10 || std::time::Instant::now() > deadline {
                break s;
            }
        };
        want(&stats);
        assert!(
            stats.iter().all(|q| q.in_flight.is_some()),
            "the API knows unacknowledged counts: {stats:?}"
        );
        // One request per refresh, none for a second caller within the answer's lifetime,
        // no passive declares at all.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = api.stats_cost();
        api.queue_stats(&ids[..10]).await.unwrap();
        api.queue_stats(&ids[..10]).await.unwrap();
        let cost = api.stats_cost();
        assert_eq!(cost.management_requests - before.management_requests, 1);
        assert_eq!(cost.passive_declares, 0);
        // Every business (more than are named in a filter): pages of the prefix's queues.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let all = api.queue_stats(&[]).await.unwrap();
        assert_eq!(all.len(), 200);
        assert_eq!(
            all.iter().map(|q| q.depth).sum::<u64>(),
            (0..40).sum::<u64>() + 40
        );
        api.close().await;
    } else {
        eprintln!("management API not reachable: only the passive-declare path was checked");
    }
    plain.delete_topology().await.unwrap();
    plain.close().await;
}

/// A passive declare of a queue not declared yet makes the broker close the channel, and
/// lapin never frees that channel's slot: on one connection, the 2,048th miss failed and the
/// console showed the broker down for good (15 s of six quiet businesses). Misses now spend
/// slots of a statistics connection that is replaced when spent, and never the publishers'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn passive_declares_of_missing_queues_never_run_the_connection_out_of_channels() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (store, _dir) = common::sqlite_store().await;
    let prefix = common::unique("misses");
    let broker = RabbitBroker::connect(store.clone(), settings(&prefix, &amqp, None))
        .await
        .unwrap();
    let with_jobs = store.ensure_business("has jobs").await.unwrap().id;
    // 450 businesses × 5 stages whose queues were never declared: 2,250 misses a read,
    // more than a connection's 2,047 channels.
    let quiet: Vec<i64> = (1..=450).map(|i| with_jobs + i).collect();
    for round in 0..2 {
        let stats = broker
            .queue_stats(&quiet)
            .await
            .unwrap_or_else(|e| panic!("read {round} of missing queues failed: {e}"));
        assert_eq!(stats.len(), 2250);
        assert!(stats.iter().all(|q| q.depth == 0), "{stats:?}");
    }
    assert!(
        broker.stats_cost().connections >= 3,
        "4,500 misses spend at least two statistics connections: {:?}",
        broker.stats_cost()
    );
    // The publishing connection lost nothing: jobs go out and their depth reads right.
    let jobs: Vec<Job> = (0..3)
        .map(|_| Job::new(with_jobs, Stage::Analyze, None, serde_json::Value::Null))
        .collect();
    broker.publish_many(&jobs).await.unwrap();
    let stats = broker.queue_stats(&[with_jobs]).await.unwrap();
    let analyze = stats
        .iter()
        .find(|q| q.stage == Some(Stage::Analyze))
        .unwrap();
    assert_eq!(analyze.depth, 3, "{stats:?}");
    assert!(broker.is_connected());
    broker.delete_topology().await.unwrap();
    broker.close().await;
}
