//! The link stage's find-or-create is race-free (issue 13, family 9), on SQLite and
//! Postgres: many pairs of calls from one new number, linked at the same moment through
//! the real sync + link stages, make exactly one customer per number, and both calls of a
//! pair are linked to it. Also: an outbound call links by the number dialled and never
//! creates a customer from the business's own number; imports merge into the customer
//! holding the same number instead of duplicating it.

mod common;

use callops::domain::stage::Stage;
use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::stages::{link, sync};
use callops::queue::{self, BrokerSettings, Job, RetryPolicy};
use callops::store::customers::NewCustomer;
use callops::store::{Call, NewCall, Store};
use serde_json::Value;
use std::time::Duration;

const PAIRS: usize = 25;
const OWN: &str = "+493012340000";

async fn ctx_for(store: Store) -> PipelineCtx {
    let settings = BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: common::unique("race"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    };
    let broker = queue::connect("database", settings, store.clone())
        .await
        .expect("database broker");
    PipelineCtx {
        store,
        broker,
        providers: Providers::default(),
        settings: PipelineSettings::default(),
    }
}

async fn business(store: &Store) -> i64 {
    let b = store.ensure_business("Praxis Race").await.unwrap();
    sqlx::query("UPDATE businesses SET default_region = 'DE' WHERE id = $1")
        .bind(b.id)
        .execute(store.pool())
        .await
        .unwrap();
    b.id
}

async fn synced_call(
    ctx: &PipelineCtx,
    bid: i64,
    ext: &str,
    direction: &str,
    from: &str,
    to: &str,
    caller_says: &str,
) -> Call {
    let raw = serde_json::json!({"transcript": {"segments": [
        {"speaker": "agent", "start": 0.0, "end": 2.0, "text": "Praxis Race, guten Tag, was kann ich für Sie tun?"},
        {"speaker": "caller", "start": 2.0, "end": 5.0, "text": caller_says}]}});
    let (call, _) = ctx
        .store
        .ingest_call(&NewCall {
            business_id: bid,
            external_id: ext.into(),
            direction: direction.into(),
            from_number: Some(from.into()),
            to_number: Some(to.into()),
            agent_name: None,
            campaign: None,
            language: None,
            started_at: None,
            duration_ms: 1000,
            audio_url: None,
            raw: raw.to_string(),
        })
        .await
        .unwrap();
    sync::run(
        ctx,
        &call,
        &Job::new(bid, Stage::Sync, Some(call.id), Value::Null),
    )
    .await
    .unwrap();
    call
}

async fn link_now(ctx: &PipelineCtx, call: &Call) {
    link::run(
        ctx,
        call,
        &Job::new(call.business_id, Stage::Link, Some(call.id), Value::Null),
    )
    .await
    .expect("link stage");
}

async fn race(store: Store) {
    let ctx = ctx_for(store.clone()).await;
    let bid = business(&store).await;
    for i in 0..PAIRS {
        let number = format!("+49301110{i:03}");
        let a = synced_call(
            &ctx,
            bid,
            &format!("a{i}"),
            "inbound",
            &number,
            OWN,
            "Guten Tag, ich hätte eine Frage.",
        )
        .await;
        let b = synced_call(
            &ctx,
            bid,
            &format!("b{i}"),
            "inbound",
            &number,
            OWN,
            "Hallo, wann haben Sie offen?",
        )
        .await;
        tokio::join!(link_now(&ctx, &a), link_now(&ctx, &b));
        let holders: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM customers WHERE business_id = $1 AND phone = $2")
                .bind(bid)
                .bind(&number)
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            holders.len(),
            1,
            "pair {i}: customers holding {number}: {holders:?}"
        );
        let (a, b) = (
            store.call(a.id).await.unwrap(),
            store.call(b.id).await.unwrap(),
        );
        assert_eq!(a.customer_id, Some(holders[0]), "{a:?}");
        assert_eq!(b.customer_id, Some(holders[0]), "{b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_calls_from_one_new_number_make_one_customer() {
    let (store, _dir) = common::sqlite_store().await;
    race(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_calls_from_one_new_number_make_one_customer() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    race(db.store.clone()).await;
}

async fn outbound(store: Store) {
    let ctx = ctx_for(store.clone()).await;
    let bid = business(&store).await;
    let (known, _) = store
        .upsert_customer(&NewCustomer {
            business_id: bid,
            name: Some("Anna Weber".into()),
            phone: Some("+4930555201".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // Three outbound calls: to a customer, to a new number, to a new number again.
    for (ext, to) in [
        ("o1", "+4930555201"),
        ("o2", "+4930555999"),
        ("o3", "+4930555999"),
    ] {
        let c = synced_call(&ctx, bid, ext, "outbound", OWN, to, "Ja, hallo?").await;
        link_now(&ctx, &c).await;
    }
    let o1 = store.call_by_external(bid, "o1").await.unwrap();
    assert_eq!(o1.customer_id, Some(known), "{o1:?}");
    let o2 = store.call_by_external(bid, "o2").await.unwrap();
    let o3 = store.call_by_external(bid, "o3").await.unwrap();
    assert!(
        o2.customer_id.is_some() && o2.customer_id == o3.customer_id,
        "{o2:?} {o3:?}"
    );
    let dialled = store.customer(o2.customer_id.unwrap()).await.unwrap();
    assert_eq!(dialled.phone.as_deref(), Some("+4930555999"));
    // An inbound call from the business's own line: no customer holds that number.
    let own = synced_call(&ctx, bid, "i1", "inbound", OWN, OWN, "Ja?").await;
    link_now(&ctx, &own).await;
    let holders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE phone = $1")
        .bind(OWN)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        holders, 0,
        "a customer was created from the business's own number"
    );
    // An import with the number of an existing customer completes it, does not duplicate.
    let (again, created) = store
        .upsert_customer(&NewCustomer {
            business_id: bid,
            name: Some("Dialled Person".into()),
            phone: Some("+4930555999".into()),
            email: Some("d@example.org".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((again, created), (dialled.id, false));
}

#[tokio::test]
async fn sqlite_outbound_links_by_to_and_never_the_business_number() {
    let (store, _dir) = common::sqlite_store().await;
    outbound(store).await;
}

#[tokio::test]
async fn postgres_outbound_links_by_to_and_never_the_business_number() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    outbound(db.store.clone()).await;
}
