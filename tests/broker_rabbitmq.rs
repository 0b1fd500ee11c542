//! RabbitMQ-only behaviour: what the broker dead-letters by itself reaches `dead_jobs`
//! through the DLX and the drainer, and a connection killed mid-consume loses nothing.

mod common;

use callops::domain::stage::Stage;
use callops::queue::{self, BrokerSettings, ConsumeSpec, Job, RetryPolicy};
use callops::store::DeadJobFilter;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::collections::HashSet;
use std::time::Duration;

fn settings(prefix: &str, amqp_url: &str) -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: prefix.into(),
        amqp_url: amqp_url.into(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn undecodable_and_misrouted_messages_are_dead_at_once_with_the_reason_in_words() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (store, _dir) = common::sqlite_store().await;
    let prefix = common::unique("cotest");
    let broker = queue::connect("rabbitmq", settings(&prefix, &amqp), store.clone())
        .await
        .unwrap();
    let biz = store.ensure_business("dlx").await.unwrap().id;
    // Declare the work queue by publishing and consuming one good job.
    broker
        .publish(&Job::new(
            biz,
            Stage::Sync,
            None,
            serde_json::json!({"ok": 1}),
        ))
        .await
        .unwrap();
    let mut consumer = broker
        .consume(ConsumeSpec {
            max_in_flight: 0,
            stage: Stage::Sync,
            businesses: vec![biz],
            prefetch: 5,
        })
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    d.ack().await.unwrap();

    // A hand-made message: garbage body, no headers of ours, the right routing key.
    let conn = Connection::connect(&amqp, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut h = FieldTable::default();
    h.insert(
        "origin".into(),
        AMQPValue::LongString(LongString::from("a test, by hand".to_string())),
    );
    ch.basic_publish(
        format!("{prefix}.work").as_str().into(),
        Stage::Sync.queue_for(biz).as_str().into(),
        BasicPublishOptions::default(),
        b"\x00not json at all",
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // A message of ours for another business, in this business's queue, with a garbled
    // attempt count: its headers disagree with its queue.
    let mut h = FieldTable::default();
    h.insert(
        "x-callops-job-id".into(),
        AMQPValue::LongString(LongString::from("misrouted-1".to_string())),
    );
    h.insert(
        "x-callops-business".into(),
        AMQPValue::LongLongInt(biz + 1000),
    );
    h.insert(
        "x-callops-stage".into(),
        AMQPValue::LongString(LongString::from("sync".to_string())),
    );
    ch.basic_publish(
        format!("{prefix}.work").as_str().into(),
        Stage::Sync.queue_for(biz).as_str().into(),
        BasicPublishOptions::default(),
        b"{\"call_id\": 1}",
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let mut h = FieldTable::default();
    h.insert(
        "x-callops-job-id".into(),
        AMQPValue::LongString(LongString::from("garbled-1".to_string())),
    );
    h.insert("x-callops-business".into(), AMQPValue::LongLongInt(biz));
    h.insert(
        "x-callops-stage".into(),
        AMQPValue::LongString(LongString::from("sync".to_string())),
    );
    h.insert(
        "x-callops-attempts".into(),
        AMQPValue::LongString(LongString::from("lots".to_string())),
    );
    ch.basic_publish(
        format!("{prefix}.work").as_str().into(),
        Stage::Sync.queue_for(biz).as_str().into(),
        BasicPublishOptions::default(),
        b"{\"call_id\": 2}",
        BasicProperties::default().with_headers(h),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // The consumer archives them (nothing to retry) and nothing reaches the handler.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), consumer.recv())
            .await
            .is_err()
    );
    consumer.stop().await;

    let mut dead = Vec::new();
    for _ in 0..50 {
        dead = store
            .list_dead_jobs(&DeadJobFilter::default(), None, 10)
            .await
            .unwrap();
        if dead.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 3, "{dead:?}");
    for d in &dead {
        assert_eq!(d.source, "worker", "{d:?}");
        assert_eq!(d.reason, "undecodable", "{d:?}");
        assert_eq!(d.stage.as_deref(), Some("sync"));
        assert!(
            d.last_error.contains("refused by the worker"),
            "{}",
            d.last_error
        );
    }
    let by_job = |id: &str| dead.iter().find(|d| d.job_id == id).unwrap();
    let garbage = dead
        .iter()
        .find(|d| d.payload.contains("not json at all"))
        .expect("the garbage message is archived with its body");
    assert!(
        garbage.last_error.contains("undecodable")
            || garbage.last_error.contains("no headers")
            || garbage.last_error.contains("no x-callops"),
        "{}",
        garbage.last_error
    );
    let misrouted = by_job("misrouted-1");
    assert!(
        misrouted
            .last_error
            .contains("but the message sits in queue"),
        "{}",
        misrouted.last_error
    );
    let garbled = by_job("garbled-1");
    assert!(
        garbled.last_error.contains("is not an integer: \"lots\""),
        "the header value in words, not bytes: {}",
        garbled.last_error
    );
    let left: u64 = broker
        .unarchived_dead_letters()
        .await
        .unwrap()
        .iter()
        .map(|q| q.depth)
        .sum();
    assert_eq!(left, 0, "the DLQ is empty once archived");
    let _ = conn.close(200, "".into()).await;
    broker.delete_topology().await.unwrap();
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn connection_killed_mid_consume_loses_nothing() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (proxy, via_proxy) = common::proxy::amqp_via_proxy(&amqp).await;
    let (store, _dir) = common::sqlite_store().await;
    let prefix = common::unique("cotest");
    let broker = queue::connect("rabbitmq", settings(&prefix, &via_proxy), store.clone())
        .await
        .unwrap();
    let biz = store.ensure_business("kill").await.unwrap().id;
    const N: usize = 500;
    let jobs: Vec<Job> = (0..N)
        .map(|i| Job::new(biz, Stage::Transcribe, None, serde_json::json!({ "i": i })))
        .collect();
    broker.publish_many(&jobs).await.unwrap();
    let want: HashSet<String> = jobs.iter().map(|j| j.id.clone()).collect();

    let mut consumer = broker
        .consume(ConsumeSpec {
            max_in_flight: 0,
            stage: Stage::Transcribe,
            businesses: vec![biz],
            prefetch: 50,
        })
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let mut acked = 0;
    let mut cut = false;
    let mut redelivered = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {N} jobs seen after the cut",
            seen.len()
        );
        let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await
        else {
            panic!("consuming stalled at {} of {N} (cut: {cut})", seen.len());
        };
        redelivered += d.redelivered as usize;
        seen.insert(d.job.id.clone());
        // An ack on a dead channel fails; the job comes back (handlers are idempotent).
        if d.ack().await.is_ok() {
            acked += 1;
        }
        if !cut && acked == 150 {
            assert!(proxy.cut() > 0, "no proxied connection to cut");
            cut = true;
        }
    }
    assert!(cut);
    assert_eq!(seen, want, "every job delivered at least once");
    // Everything ends acked: the queue drains to zero.
    let mut depth = u64::MAX;
    for _ in 0..100 {
        while let Ok(Some(d)) =
            tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        {
            redelivered += 1;
            let _ = d.ack().await;
        }
        depth = broker
            .queue_stats(&[biz])
            .await
            .unwrap()
            .iter()
            .map(|q| q.depth)
            .sum();
        if depth == 0 {
            break;
        }
    }
    assert_eq!(depth, 0, "queue drained after reconnect");
    assert!(broker.is_connected());
    eprintln!("cut after 150 acks; {redelivered} redeliveries; all {N} jobs consumed");
    consumer.stop().await;
    broker.delete_topology().await.unwrap();
    broker.close().await;
}
