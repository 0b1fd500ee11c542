//! Outbound AI calls for new leads (issue 16), on SQLite and Postgres: a new lead is called
//! once whatever the redeliveries and concurrent workers; an updated lead is not called;
//! every reason not to call lands in the lead's trace; outside business hours the call is
//! scheduled and made when the hours open (the test drives the clock); a provider 500 then
//! 200 gives one call. Providers are real HTTP servers started here.

#[macro_use]
mod common;

use callops::domain::outbound::MatchKind;
use callops::domain::stage::Stage;
use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::ingest::{CallRecord, IngestReport, Ingestor};
use callops::pipeline::outbound::{Dispatcher, FollowUp};
use callops::pipeline::providers::llm::simulated::SimulatedLlm;
use callops::pipeline::providers::sim::SimSettings;
use callops::pipeline::providers::stt::simulated::SimulatedStt;
use callops::pipeline::worker::{self, WorkerOptions, WorkerStats};
use callops::queue::{self, BrokerSettings, DynBroker, Job, RetryPolicy};
use callops::store::outbound::{NewOutbound, OutboundSettings};
use callops::store::Store;
use common::http_server::Resp;
use std::sync::Arc;
use std::time::Duration;

both_stores!(
    new_lead_is_called_once_and_updated_lead_is_not,
    every_reason_not_to_call_is_in_the_trace,
    outside_hours_is_scheduled_and_called_at_opening,
    provider_500_then_200_is_one_call,
    concurrent_queueing_and_dispatchers_call_once,
    retell_interrupted_dial_is_found_not_repeated,
    operators_call_now_and_call_unmapped_with_audit,
);

fn broker_settings() -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            tiers: 2,
        },
        prefix: common::unique("ob"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

async fn broker(store: &Store) -> DynBroker {
    queue::connect("database", broker_settings(), store.clone())
        .await
        .unwrap()
}

fn ctx(store: Store, broker: DynBroker) -> Arc<PipelineCtx> {
    let sim = SimSettings::default();
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

fn record(business: &str, ext: &str, from: &str, campaign: &str) -> CallRecord {
    // A different caller each time: the same name twice would send the call to review.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    const NAMES: [&str; 8] = [
        "Anna Schmidt",
        "Boris Keller",
        "Clara Wagner",
        "David Becker",
        "Emma Hoffmann",
        "Felix Richter",
        "Greta Klein",
        "Hans Wolf",
    ];
    let name = NAMES[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % NAMES.len()];
    serde_json::from_value(serde_json::json!({
        "business": business, "external_id": ext, "from": from, "campaign": campaign,
        "duration_s": 40,
        "transcript": {"segments": [
            {"speaker": "agent", "start": 0.0, "end": 3.0, "text": "Thank you for calling, how can I help?"},
            {"speaker": "caller", "start": 3.0, "end": 9.0, "text": format!("Hello, my name is {name}, I saw your offer and want to know the price.")}
        ]}
    }))
    .unwrap()
}

/// A business with auto-call on through the generic HTTP provider at `url`, agent "Maya"
/// (active) mapped from "spring-promo" exactly, agent "Old" (inactive) from keyword "winter".
async fn business(store: &Store, name: &str, url: &str) -> i64 {
    let b = store.ensure_business(name).await.unwrap();
    callops::pipeline::ensure_default_agents(store, b.id)
        .await
        .unwrap();
    let mut s = OutboundSettings::off(b.id);
    s.auto_call = true;
    s.provider = "http".into();
    s.base_url = Some(format!("{url}/v1/calls"));
    s.status_path = Some("/v1/calls/{id}".into());
    s.from_number = Some("+4930999000".into());
    store.save_outbound_settings(&s).await.unwrap();
    store
        .add_voice_agent(b.id, "Maya", "agent_maya", true)
        .await
        .unwrap();
    store
        .add_voice_agent(b.id, "Old", "agent_old", false)
        .await
        .unwrap();
    store
        .add_lead_mapping(b.id, MatchKind::Exact, "spring-promo", "Maya", "test")
        .await
        .unwrap();
    store
        .add_lead_mapping(b.id, MatchKind::Keyword, "winter", "Old", "test")
        .await
        .unwrap();
    b.id
}

fn dispatcher(store: &Store, broker: &DynBroker) -> Dispatcher {
    let mut d = Dispatcher::new(store.clone(), broker.clone());
    d.base_delay = Duration::from_secs(2);
    d.poll_every = Duration::from_secs(5);
    d
}

async fn run_pipeline(store: &Store, broker: &DynBroker, expect_done: i64) {
    let ctx = ctx(store.clone(), broker.clone());
    let stats = Arc::new(WorkerStats::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let opts = WorkerOptions {
        concurrency: 4,
        prefetch: 8,
        business_refresh: Duration::from_millis(200),
        orphan_after: None,
        // The test drives the dispatcher itself, with its own clock.
        outbound_every: None,
        ..Default::default()
    };
    let w = tokio::spawn(worker::run(ctx, opts, stats, rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let settled: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE state IN ('done', 'dead', 'review')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if settled >= expect_done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipeline did not settle {expect_done} calls (settled {settled})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tx.send(true).unwrap();
    w.await.unwrap().unwrap();
}

async fn trace_of(store: &Store, ext: &str) -> Vec<String> {
    let id: i64 = sqlx::query_scalar("SELECT id FROM calls WHERE external_id = $1")
        .bind(ext)
        .fetch_one(store.pool())
        .await
        .unwrap();
    store
        .call_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "outbound")
        .map(|e| e.reason)
        .collect()
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Wed 2027-12-01 10:00 UTC: after every row queued "now", so the driven clock finds them due.
const T0: i64 = 1_827_655_200_000;

async fn new_lead_is_called_once_and_updated_lead_is_not(store: Store) {
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    let mut ing = Ingestor::new(&store, &*broker);
    let mut rep = IngestReport::default();
    ing.ingest(
        &record("acme", "c1", "+4930111111", "spring-promo"),
        &mut rep,
    )
    .await
    .unwrap();
    run_pipeline(&store, &broker, 1).await;
    // The same person calls again: the lead is updated, not new.
    ing.ingest(
        &record("acme", "c2", "+4930111111", "spring-promo"),
        &mut rep,
    )
    .await
    .unwrap();
    // And notify of c1 is delivered again (a redelivery after a lost ack).
    let c1: i64 = count(&store, "SELECT id FROM calls WHERE external_id = 'c1'").await;
    let mut tx = store.begin_write().await.unwrap();
    queue::outbox::enqueue_in(
        &mut tx,
        "database",
        &[Job::new(
            bid,
            Stage::Notify,
            Some(c1),
            serde_json::json!({"call_id": c1}),
        )],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    run_pipeline(&store, &broker, 2).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM outbound_calls").await,
        1,
        "one outbound row for one new lead"
    );

    let d = dispatcher(&store, &broker);
    let r = d.dispatch_once(callops::now_ms()).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    // A second pass dials nothing more (the call is now being polled).
    let r = d.dispatch_once(callops::now_ms()).await.unwrap();
    assert_eq!(r.dialled, 0, "{r:?}");
    assert_eq!(calls.created(), 1);
    assert_eq!(calls.to_numbers(), vec!["+4930111111".to_string()]);
    let body = &calls.placed.lock().unwrap()[0].3.clone();
    assert_eq!(body["agent_id"], "agent_maya");
    assert_eq!(body["from"], "+4930999000");

    let t1 = trace_of(&store, "c1").await;
    assert!(
        t1.iter().any(|r| r.contains("queued for new lead")),
        "{t1:?}"
    );
    assert!(
        t1.iter().any(|r| r.contains("accepted call call_1")),
        "{t1:?}"
    );
    let t2 = trace_of(&store, "c2").await;
    assert!(
        t2.iter()
            .any(|r| r.contains("not called again") && r.contains("outbound call #")),
        "updated lead says it was already called: {t2:?}"
    );

    // The ended call comes back into the pipeline as an outbound call linked to the lead.
    let later = callops::now_ms() + 10_000;
    let r = d.dispatch_once(later).await.unwrap();
    assert_eq!(r.ended, 1, "{r:?}");
    let (dir, lead_id, ext): (String, Option<i64>, String) = sqlx::query_as(
        "SELECT direction, lead_id, external_id FROM calls WHERE external_id LIKE 'outbound:%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(dir, "outbound");
    assert_eq!(ext, "outbound:http:call_1");
    let lead: i64 = count(&store, "SELECT lead_id FROM outbound_calls").await;
    assert_eq!(lead_id, Some(lead));
    // It runs through the pipeline without calling anyone again.
    run_pipeline(&store, &broker, 3).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM outbound_calls").await,
        1
    );
    let status: String = sqlx::query_scalar("SELECT status FROM outbound_calls")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(status, "completed");
    let r = d.dispatch_once(later + 60_000).await.unwrap();
    assert_eq!(r.dialled, 0);
    assert_eq!(calls.created(), 1);
}

async fn every_reason_not_to_call_is_in_the_trace(store: Store) {
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    business(&store, "acme", &server.base).await;
    // A second business with auto-call off.
    let off = store.ensure_business("quiet").await.unwrap();
    callops::pipeline::ensure_default_agents(&store, off.id)
        .await
        .unwrap();
    let mut ing = Ingestor::new(&store, &*broker);
    let mut rep = IngestReport::default();
    for r in [
        record("acme", "unmapped", "+4930222222", "summer-sale"),
        record("acme", "inactive", "+4930333333", "winter deals"),
        record("quiet", "off", "+4930444444", "spring-promo"),
    ] {
        ing.ingest(&r, &mut rep).await.unwrap();
    }
    run_pipeline(&store, &broker, 3).await;
    // A withheld caller's lead is keyed by its customer (notify): no number to dial.
    let bid = store.business_by_name("acme").await.unwrap().unwrap().id;
    let (withheld_call,): (i64,) =
        sqlx::query_as("SELECT id FROM calls WHERE external_id = 'unmapped'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let lead = queue_lead(&store, bid, "customer:77", "spring-promo").await;
    sqlx::query("UPDATE outbound_calls SET origin_call_id = $1 WHERE lead_id = $2")
        .bind(withheld_call)
        .bind(lead)
        .execute(store.pool())
        .await
        .unwrap();
    let d = dispatcher(&store, &broker);
    d.dispatch_once(T0).await.unwrap();
    assert_eq!(calls.created(), 0, "nobody is called");

    let has = |t: &[String], what: &str| t.iter().any(|r| r.contains(what));
    let t = trace_of(&store, "unmapped").await;
    assert!(has(&t, "no mapping for form \"summer-sale\""), "{t:?}");
    assert!(has(&t, "invalid or withheld phone"), "{t:?}");
    let t = trace_of(&store, "inactive").await;
    assert!(
        has(&t, "voice agent \"Old\"") && has(&t, "inactive"),
        "{t:?}"
    );
    let t = trace_of(&store, "off").await;
    assert!(has(&t, "auto-call is off"), "{t:?}");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM outbound_calls WHERE status = 'unmapped'"
        )
        .await,
        1
    );

    // Rate limit: 1 call an hour; two new mapped leads → one called, one rate limited.
    let mut s = store.outbound_settings(bid).await.unwrap();
    s.rate_per_hour = 1;
    store.save_outbound_settings(&s).await.unwrap();
    for (ext, from) in [("r1", "+4930555551"), ("r2", "+4930555552")] {
        ing.ingest(&record("acme", ext, from, "spring-promo"), &mut rep)
            .await
            .unwrap();
    }
    run_pipeline(&store, &broker, 5).await;
    let r = d.dispatch_once(T0).await.unwrap();
    let states: Vec<(String, String, String)> =
        sqlx::query_as("SELECT external_id, stage, state FROM calls ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let rows = store.outbound_calls(None, 20).await.unwrap();
    assert_eq!(
        (r.dialled, r.scheduled),
        (1, 1),
        "{r:?} {states:?} {rows:#?}"
    );
    let limited = [trace_of(&store, "r1").await, trace_of(&store, "r2").await].concat();
    assert!(
        has(&limited, "rate limited: 1 calls in the last hour"),
        "{limited:?}"
    );
}

async fn outside_hours_is_scheduled_and_called_at_opening(store: Store) {
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    let mut s = store.outbound_settings(bid).await.unwrap();
    s.hours = "mon-fri 09:00-18:00".into();
    s.time_zone = "Europe/Berlin".into();
    store.save_outbound_settings(&s).await.unwrap();
    let mut ing = Ingestor::new(&store, &*broker);
    let mut rep = IngestReport::default();
    ing.ingest(
        &record("acme", "night", "+4930666666", "spring-promo"),
        &mut rep,
    )
    .await
    .unwrap();
    run_pipeline(&store, &broker, 1).await;
    // Wed 2027-12-01 05:00 UTC = 06:00 in Berlin: closed until 09:00 Berlin = 08:00 UTC.
    let night = T0 - 5 * 3_600_000;
    let d = dispatcher(&store, &broker);
    let r = d.dispatch_once(night).await.unwrap();
    assert_eq!((r.scheduled, r.dialled), (1, 0), "{r:?}");
    let t = trace_of(&store, "night").await;
    assert!(
        t.iter()
            .any(|r| r.contains("outside business hours") && r.contains("09:00 Europe/Berlin")),
        "{t:?}"
    );
    // Before the opening nothing is due; at the opening the call is made.
    let r = d.dispatch_once(T0 - 2 * 3_600_000 - 60_000).await.unwrap();
    assert_eq!(r.claimed, 0, "{r:?}");
    assert_eq!(calls.created(), 0);
    let r = d.dispatch_once(T0 - 2 * 3_600_000).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    assert_eq!(calls.created(), 1);
}

async fn provider_500_then_200_is_one_call(store: Store) {
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    server.inject(
        "POST",
        "/v1/calls",
        Resp::json(
            500,
            serde_json::json!({"error": "upstream telephony hiccup"}),
        ),
    );
    queue_lead(&store, bid, "+4930777777", "spring-promo").await;
    let d = dispatcher(&store, &broker);
    let r = d.dispatch_once(T0).await.unwrap();
    assert_eq!((r.retrying, r.dialled), (1, 0), "{r:?}");
    let row = store.outbound_calls(None, 10).await.unwrap().remove(0);
    assert_eq!(row.status, "pending");
    assert!(
        row.reason.contains("upstream telephony hiccup"),
        "{}",
        row.reason
    );
    assert_eq!(row.due_at, T0 + 2_000, "backoff 2 s");
    assert_eq!(d.dispatch_once(T0 + 1_000).await.unwrap().claimed, 0);
    let r = d.dispatch_once(T0 + 2_000).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    assert_eq!(calls.created(), 1);
    let keys: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.method == "POST")
        .map(|q| q.header("idempotency-key").unwrap_or("").to_string())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the retry asks with the same key");

    // A 4xx is final, with the provider's message.
    server.inject(
        "POST",
        "/v1/calls",
        Resp::json(422, serde_json::json!({"error": "to: number not allowed"})),
    );
    queue_lead(&store, bid, "+4930777778", "spring-promo").await;
    let r = d.dispatch_once(T0 + 10_000).await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    let row = store
        .outbound_calls(None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.to_number.as_deref() == Some("+4930777778"))
        .unwrap();
    assert_eq!(row.status, "failed");
    assert!(row.error.unwrap().contains("number not allowed"));
}

/// A lead and its outbound row, as notify would queue it (no pipeline run).
async fn queue_lead(store: &Store, bid: i64, phone: &str, form: &str) -> i64 {
    let (lead_id,): (i64,) = sqlx::query_as(
        "INSERT INTO leads (business_id, phone, name, source, call_count, created_at, updated_at) \
         VALUES ($1, $2, 'Test Lead', 'call', 1, 0, 0) RETURNING id",
    )
    .bind(bid)
    .bind(phone)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    callops::store::outbound::insert_outbound_in(
        &mut tx,
        &NewOutbound {
            business_id: bid,
            lead_id,
            origin_call_id: None,
            form: Some(form.into()),
            to_number: Some(phone.into()),
            lead_name: Some("Test Lead".into()),
            requested_by: "pipeline".into(),
            due_at: 0,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    lead_id
}

async fn concurrent_queueing_and_dispatchers_call_once(store: Store) {
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    let mut leads = Vec::new();
    for i in 0..6 {
        leads.push(queue_lead(&store, bid, &format!("+49301234{i:03}"), "spring-promo").await);
    }
    // Eight concurrent attempts to queue each lead again: the unique key refuses them all.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        for &lead_id in &leads {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin_write().await.unwrap();
                let n = NewOutbound {
                    business_id: bid,
                    lead_id,
                    origin_call_id: None,
                    form: Some("spring-promo".into()),
                    to_number: None,
                    lead_name: None,
                    requested_by: "pipeline".into(),
                    due_at: 0,
                };
                let id = callops::store::outbound::insert_outbound_in(&mut tx, &n)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let _ = FollowUp::Outbound(n);
                id
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), None);
    }
    // Four dispatchers at once.
    let mut passes = Vec::new();
    for _ in 0..4 {
        let d = dispatcher(&store, &broker);
        passes.push(tokio::spawn(
            async move { d.dispatch_once(T0).await.unwrap() },
        ));
    }
    let mut dialled = 0;
    for p in passes {
        dialled += p.await.unwrap().dialled;
    }
    assert_eq!(dialled, 6);
    assert_eq!(calls.created(), 6, "each person once");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM outbound_calls WHERE status = 'initiated'"
        )
        .await,
        6
    );
}

async fn retell_interrupted_dial_is_found_not_repeated(store: Store) {
    let (server, calls) = common::voice::retell().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    std::env::set_var("CALLOPS_TEST_RETELL_KEY", "test-retell-key");
    let mut s = store.outbound_settings(bid).await.unwrap();
    s.provider = "retell".into();
    s.base_url = Some(server.base.clone());
    s.key_ref = Some("env:CALLOPS_TEST_RETELL_KEY".into());
    store.save_outbound_settings(&s).await.unwrap();
    queue_lead(&store, bid, "+4930888888", "spring-promo").await;
    let d = dispatcher(&store, &broker);
    let r = d.dispatch_once(T0).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    let body = calls.placed.lock().unwrap()[0].3.clone();
    assert_eq!(body["override_agent_id"], "agent_maya");
    assert_eq!(body["from_number"], "+4930999000");
    assert_eq!(
        body["retell_llm_dynamic_variables"]["lead_name"],
        "Test Lead"
    );
    // Simulate the crash: the provider placed the call but the commit never happened.
    sqlx::query(
        "UPDATE outbound_calls SET status = 'dialing', provider_call_id = NULL, claimed_until = 0",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let r = d.dispatch_once(T0 + 70_000).await.unwrap();
    assert_eq!((r.recovered, r.dialled), (1, 1), "{r:?}");
    assert_eq!(calls.created(), 1, "found by its key, not dialled again");
    let row = store.outbound_calls(None, 1).await.unwrap().remove(0);
    assert_eq!(row.provider_call_id.as_deref(), Some("Jabr0001"));
    assert!(row.reason.contains("not dialled twice"), "{}", row.reason);
}

async fn operators_call_now_and_call_unmapped_with_audit(store: Store) {
    use callops::ops::{Actor, Ops, OpsError, Role};
    let (server, calls) = common::voice::generic().await;
    let broker = broker(&store).await;
    let bid = business(&store, "acme", &server.base).await;
    let unmapped = queue_lead(&store, bid, "+4930900001", "Referral").await;
    let d = dispatcher(&store, &broker);
    d.dispatch_once(T0).await.unwrap();
    assert_eq!(
        store
            .outbound_for_lead(bid, unmapped)
            .await
            .unwrap()
            .unwrap()
            .status,
        "unmapped"
    );
    let ops = |role: Role| Ops {
        store: store.clone(),
        broker: broker.clone(),
        actor: Actor {
            name: format!("{role}-user"),
            role,
        },
        readonly: false,
    };
    // Bulk is admin's; the scope count comes first.
    assert!(matches!(
        ops(Role::Support).outbound_call_unmapped(bid, false).await,
        Err(OpsError::Forbidden { .. })
    ));
    let dry = ops(Role::Admin)
        .outbound_call_unmapped(bid, true)
        .await
        .unwrap();
    assert_eq!(dry.count, 1);
    store
        .add_lead_mapping(bid, MatchKind::Exact, "referral", "Maya", "test")
        .await
        .unwrap();
    let done = ops(Role::Admin)
        .outbound_call_unmapped(bid, false)
        .await
        .unwrap();
    assert_eq!(done.count, 1);
    let r = d.dispatch_once(T0 + 1_000).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    assert_eq!(calls.created(), 1);

    // Call now: a lead whose row was skipped goes back to the dialler; a called lead is
    // refused with when and which call; a viewer may not.
    let called = store
        .outbound_for_lead(bid, unmapped)
        .await
        .unwrap()
        .unwrap();
    let e = ops(Role::Support)
        .outbound_call_now(unmapped, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not called again") && e.contains(&format!("#{}", called.id)),
        "{e}"
    );
    assert!(matches!(
        ops(Role::Viewer).outbound_call_now(unmapped, false).await,
        Err(OpsError::Forbidden { .. })
    ));
    let withheld = queue_lead(&store, bid, "customer:5", "spring-promo").await;
    d.dispatch_once(T0 + 2_000).await.unwrap();
    let (phone_fixed,): (i64,) = sqlx::query_as(
        "UPDATE outbound_calls SET to_number = '+4930900002' WHERE lead_id = $1 RETURNING id",
    )
    .bind(withheld)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(phone_fixed > 0);
    ops(Role::Support)
        .outbound_call_now(withheld, false)
        .await
        .unwrap();
    let r = d.dispatch_once(T0 + 3_000).await.unwrap();
    assert_eq!(r.dialled, 1, "{r:?}");
    assert_eq!(calls.created(), 2);
    let audits: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for want in ["outbound.call_unmapped", "outbound.call_now"] {
        assert!(
            audits.iter().any(|a| a == want),
            "{want} audited: {audits:?}"
        );
    }
}
