//! The console reads the broker in the background (issue 14): a refresh merges the feed's
//! latest figures, each stamped with when it was read, instead of waiting on RabbitMQ; rows
//! never read are unknown, not zero; a dead broker never holds the database's data back.

mod common;

use callops::console::broker_feed::BrokerFeed;
use callops::console::late_broker::LateBroker;
use callops::console::refresher::{fetch_filtered, Answer, Queries, Queues};
use callops::console::settings::ConsoleSettings;
use callops::domain::stage::Stage;
use callops::queue::rabbitmq::RabbitBroker;
use callops::queue::{Broker, BrokerSettings, Job, RetryPolicy};
use callops::store::read::{stage_index, BizRow};
use callops::views::Route;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn settings(prefix: &str, amqp: &str) -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: prefix.into(),
        amqp_url: amqp.into(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

fn row(rows: &[BizRow], id: i64) -> &BizRow {
    rows.iter().find(|r| r.id == id).expect("row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn refresh_merges_the_feeds_figures_with_their_age() {
    let Some(amqp) = common::amqp_url() else {
        return;
    };
    let (store, _dir) = common::sqlite_store().await;
    let prefix = common::unique("feed");
    let broker = Arc::new(
        RabbitBroker::connect(store.clone(), settings(&prefix, &amqp))
            .await
            .unwrap(),
    );
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(
            store
                .ensure_business(&format!("feed {i}"))
                .await
                .unwrap()
                .id,
        );
    }
    let (a, b, off) = (ids[0], ids[1], ids[2]);
    let job = |biz, stage| Job::new(biz, stage, None, serde_json::Value::Null);
    broker
        .publish_many(&[
            job(a, Stage::Transcribe),
            job(a, Stage::Transcribe),
            job(b, Stage::Link),
        ])
        .await
        .unwrap();
    let cost_before = broker.stats_cost();
    let feed = BrokerFeed::spawn(
        broker.clone() as Arc<dyn Broker>,
        Duration::from_millis(200),
        Duration::from_secs(5),
    );
    let console = ConsoleSettings::default();
    let q = Queries {
        known_businesses: ids.clone(),
        on_screen: Some(vec![a, b]),
        ..Default::default()
    };
    let now = callops::now_ms();
    let t0 = callops::now_ms();
    let snap = fetch_filtered(
        &store,
        Queues::Feed(&feed),
        Route::Overview,
        &console,
        now,
        &q,
    )
    .await;
    assert!(snap.ok(), "{:?} {:?}", snap.db, snap.broker);
    let rows = snap.parts.overview.clone().unwrap();
    // The first refresh waited for the first read of the rows on screen.
    assert_eq!(row(&rows, a).backlog[stage_index(Stage::Transcribe)], 2);
    assert_eq!(row(&rows, b).backlog[stage_index(Stage::Link)], 1);
    for id in [a, b] {
        let at = row(&rows, id).queues_at.expect("read");
        assert!(at >= t0 && at <= snap.finished_at, "{at} {t0}");
    }
    // Never asked (off screen): unknown, not an empty queue.
    assert_eq!(row(&rows, off).queues_at, None);

    // A job published now shows within a poll or two, with a later read time.
    broker.publish(&job(a, Stage::Transcribe)).await.unwrap();
    let first_at = row(&rows, a).queues_at.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        let snap = fetch_filtered(
            &store,
            Queues::Feed(&feed),
            Route::Overview,
            &console,
            now,
            &q,
        )
        .await;
        assert!(
            t.elapsed() < Duration::from_millis(1000),
            "a refresh with every row read waits for no broker read: {:?}",
            t.elapsed()
        );
        let rows = snap.parts.overview.unwrap();
        let r = row(&rows, a);
        if r.backlog[stage_index(Stage::Transcribe)] == 3 {
            assert!(r.queues_at.unwrap() > first_at);
            break;
        }
        assert!(Instant::now() < deadline, "the new job never showed: {r:?}");
    }
    // Each poll reads the wanted queues and the dead-letter queues, nothing else.
    let state = feed.stop().await;
    let declares = broker.stats_cost().passive_declares - cost_before.passive_declares;
    assert!(state.polls >= 2);
    assert_eq!(declares, state.polls * (2 * 5 + 5), "{} polls", state.polls);

    // The first refresh, before the database has listed any business: every active
    // business is read (and waited for), none shows as unknown.
    let first = BrokerFeed::spawn(
        broker.clone() as Arc<dyn Broker>,
        Duration::from_millis(200),
        Duration::from_secs(5),
    );
    let snap = fetch_filtered(
        &store,
        Queues::Feed(&first),
        Route::Overview,
        &console,
        now,
        &Queries::default(),
    )
    .await;
    assert!(snap.ok(), "{:?} {:?}", snap.db, snap.broker);
    let rows = snap.parts.overview.unwrap();
    assert!(rows.iter().all(|r| r.queues_at.is_some()), "{rows:?}");
    assert_eq!(row(&rows, a).backlog[stage_index(Stage::Transcribe)], 3);
    first.stop().await;
    broker.delete_topology().await.unwrap();
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_does_not_hold_the_database_back() {
    let (store, _dir) = common::sqlite_store().await;
    let id = store.ensure_business("alone").await.unwrap().id;
    // Nothing listens on port 1: the broker never connects.
    let broker = LateBroker::connect(
        "rabbitmq",
        settings("dead", "amqp://guest:guest@127.0.0.1:1/%2f"),
        store.clone(),
        Duration::from_secs(60),
    );
    let feed = BrokerFeed::spawn(
        broker as Arc<dyn Broker>,
        Duration::from_millis(200),
        Duration::from_secs(5),
    );
    let console = ConsoleSettings {
        timeout_ms: 5_000,
        ..Default::default()
    };
    let q = Queries {
        known_businesses: vec![id],
        ..Default::default()
    };
    for _ in 0..3 {
        let t = Instant::now();
        let snap = fetch_filtered(
            &store,
            Queues::Feed(&feed),
            Route::Overview,
            &console,
            callops::now_ms(),
            &q,
        )
        .await;
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the refresh waited on a dead broker: {:?}",
            t.elapsed()
        );
        assert!(matches!(snap.db, Answer::Ok { .. }), "{:?}", snap.db);
        assert!(
            matches!(snap.broker, Answer::Failed(_)),
            "{:?}",
            snap.broker
        );
        let rows = snap.parts.overview.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].queues_at, None, "no figures were ever read");
    }
}
