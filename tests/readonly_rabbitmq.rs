//! `--readonly` writes nothing, whatever the broker: a RabbitMQ broker opened over a
//! read-only store neither runs the background dead-letter drainer nor archives on an
//! explicit drain — the dead letter stays in its DLX queue and `dead_jobs` is untouched
//! until a normal broker drains it.

mod common;

use callops::domain::stage::Stage;
use callops::queue::{self, BrokerSettings, ConsumeSpec, Job, RetryPolicy};
use callops::store::{DeadJobFilter, Store};
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
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
async fn readonly_broker_does_not_drain_dead_letters() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (store, dir) = common::sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    let prefix = common::unique("coro");
    let biz = store.ensure_business("ro").await.unwrap().id;

    // A dead letter in the DLX queue: an undecodable message the consumer rejects.
    let broker = queue::connect("rabbitmq", settings(&prefix, &amqp), store.clone())
        .await
        .unwrap();
    broker
        .publish(&Job::new(biz, Stage::Sync, None, serde_json::json!({})))
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
    let conn = Connection::connect(&amqp, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        format!("{prefix}.work").as_str().into(),
        Stage::Sync.queue_for(biz).as_str().into(),
        BasicPublishOptions::default(),
        b"\x00not json",
        BasicProperties::default().with_headers(FieldTable::default()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(800), consumer.recv())
            .await
            .is_err()
    );
    consumer.stop().await;
    drop(consumer);
    // Closed before its drainer's first round (every 3 s): the letter stays in the DLX.
    broker.close().await;

    let ro_store = Store::open_readonly(&url, 2).await.unwrap();
    let ro = queue::connect("rabbitmq", settings(&prefix, &amqp), ro_store.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(ro.drain_dead_letters().await.unwrap(), 0);
    let n = store
        .count_dead_jobs(&DeadJobFilter::default())
        .await
        .unwrap();
    assert_eq!(n, 0, "a read-only broker archived dead letters");
    ro.close().await;

    // The letter was there all along: a normal broker archives it.
    let rw = queue::connect("rabbitmq", settings(&prefix, &amqp), store.clone())
        .await
        .unwrap();
    let mut archived = 0;
    for _ in 0..50 {
        archived += rw.drain_dead_letters().await.unwrap();
        if archived > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(archived, 1);
    rw.delete_topology().await.unwrap();
    rw.close().await;
    let _ = conn.close(200, "done".into()).await;
}
