//! `callops serve`, the real binary, over real HTTP, on SQLite + database broker and on
//! Postgres + RabbitMQ. Fixtures are signed in the test with each provider's documented
//! scheme (Retell HMAC-SHA256 over body + ms, Telnyx Ed25519 over `ts|body`, Twilio
//! HMAC-SHA1 over URL + sorted params), independently of the server's own code.
//!
//! Asserted: exactly one call per provider call id (replays, duplicates, concurrent
//! duplicates, out-of-order events), nothing written for a refused request (bad key,
//! stale, malformed, unknown business, over-size, rate-limited), and the calls then go
//! through the pipeline with a real worker (Retell's transcript skips STT).

mod common;

mod webhooks_support;

use std::process::Stdio;
use std::time::{Duration, Instant};
use webhooks_support::*;

async fn scenario(be: &Backend) {
    let store = &be.store;
    setup(store).await;
    let (_serve, base) = be.serve(&["serve.max_body_bytes=65536"]);
    let c = Client {
        http: reqwest::Client::new(),
        base,
    };

    // ---- Retell ----
    let ended = retell_body("call_ended", "retell_A");
    let (s, v) = c.retell("Acme", &ended, RETELL_KEY, now_ms()).await;
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    assert_eq!(calls_with_id(store, "retell_A").await, 1);
    let traced: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM call_events e JOIN calls c ON c.id = e.call_id \
         WHERE c.external_id = 'retell_A' AND e.kind = 'webhook'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(traced, 1, "the trace says which webhook made the call");
    let after_a = written(store).await;

    // Replay of the same signed event, and the same event re-signed (a redelivery).
    let ts = now_ms();
    for _ in 0..2 {
        let (s, v) = c.retell("Acme", &ended, RETELL_KEY, ts).await;
        assert_eq!((s, v["result"].as_str()), (200, Some("duplicate")), "{v}");
    }
    assert_eq!(written(store).await, after_a, "a duplicate writes nothing");

    // call_analyzed after call_ended: 2xx, still one call.
    let analyzed = retell_body("call_analyzed", "retell_A");
    let (s, v) = c.retell("Acme", &analyzed, RETELL_KEY, now_ms()).await;
    assert_eq!((s, v["result"].as_str()), (200, Some("duplicate")), "{v}");
    assert_eq!(calls_with_id(store, "retell_A").await, 1);

    // Out of order: call_analyzed first creates the call, the late call_ended changes nothing.
    let (s, v) = c
        .retell(
            "Acme",
            &retell_body("call_analyzed", "retell_B"),
            RETELL_KEY,
            now_ms(),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    let (s, v) = c
        .retell(
            "Acme",
            &retell_body("call_ended", "retell_B"),
            RETELL_KEY,
            now_ms(),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("duplicate")), "{v}");
    assert_eq!(calls_with_id(store, "retell_B").await, 1);

    // Refused: nothing written.
    let before = written(store).await;
    let fresh = retell_body("call_ended", "retell_C");
    let (s, v) = c.retell("Acme", &fresh, "wrong key", now_ms()).await;
    assert_eq!(
        (s, v["result"].as_str()),
        (401, Some("bad_signature")),
        "{v}"
    );
    let (s, v) = c
        .retell("Acme", &fresh, RETELL_KEY, now_ms() - 6 * 60 * 1000)
        .await;
    assert_eq!((s, v["result"].as_str()), (401, Some("stale")), "{v}");
    let (s, _) = c
        .post("/hooks/Acme/retell", &fresh, "application/json", &[])
        .await;
    assert_eq!(s, 401, "no signature header");
    let (s, v) = c
        .retell(
            "Acme",
            "{\"event\": \"call_ended\", \"call\": ",
            RETELL_KEY,
            now_ms(),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (400, Some("malformed")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("not JSON"), "{v}");
    let (s, v) = c
        .retell(
            "Acme",
            r#"{"event":"call_ended","call":{"from_number":"+1"}}"#,
            RETELL_KEY,
            now_ms(),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("call.call_id is missing"),
        "{v}"
    );
    let (s, v) = c.retell("Nobody", &fresh, RETELL_KEY, now_ms()).await;
    assert_eq!(
        (s, v["result"].as_str()),
        (404, Some("unknown_business")),
        "{v}"
    );
    let (s, v) = c.retell("Bare", &fresh, RETELL_KEY, now_ms()).await;
    assert_eq!(
        (s, v["result"].as_str()),
        (401, Some("not_configured")),
        "{v}"
    );
    let (s, v) = c
        .post("/hooks/Acme/vonage", &fresh, "application/json", &[])
        .await;
    assert_eq!(
        (s, v["result"].as_str()),
        (404, Some("unknown_provider")),
        "{v}"
    );
    let huge = format!(
        "{{\"event\":\"call_ended\",\"call\":{{\"call_id\":\"retell_C\",\"transcript\":\"{}\"}}}}",
        "x".repeat(70_000)
    );
    let (s, v) = c.retell("Acme", &huge, RETELL_KEY, now_ms()).await;
    assert_eq!((s, v["result"].as_str()), (413, Some("too_large")), "{v}");
    assert_eq!(
        written(store).await,
        before,
        "refused requests write nothing"
    );

    // ---- Telnyx ----
    let key = telnyx_key();
    let now_s = now_ms() / 1000;
    let (s, v) = c
        .telnyx(&telnyx_hangup("ev-h1", "sess-1"), &key, now_s)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("waiting")), "{v}");
    assert_eq!(
        calls_with_id(store, "sess-1").await,
        0,
        "no audio yet: no call"
    );
    let (s, v) = c
        .telnyx(&telnyx_recording("ev-r1", "sess-1"), &key, now_s)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    assert_eq!(calls_with_id(store, "sess-1").await, 1);
    let dup_before = written(store).await;
    let (s, v) = c
        .telnyx(&telnyx_hangup("ev-h1", "sess-1"), &key, now_s)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("duplicate")), "{v}");
    assert_eq!(written(store).await, dup_before);

    // Out of order: the recording before the hangup.
    let (s, v) = c
        .telnyx(&telnyx_recording("ev-r2", "sess-2"), &key, now_s)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("waiting")), "{v}");
    let (s, v) = c
        .telnyx(&telnyx_hangup("ev-h2", "sess-2"), &key, now_s)
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    let from: Option<String> =
        sqlx::query_scalar("SELECT from_number FROM calls WHERE external_id = 'sess-2'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        from.as_deref(),
        Some("+35319605860"),
        "the hangup's numbers are on the call"
    );

    // Concurrent duplicate delivery of both events of one call.
    let mut tasks = vec![];
    for i in 0..16 {
        let body = if i % 2 == 0 {
            telnyx_hangup("ev-h3", "sess-3")
        } else {
            telnyx_recording("ev-r3", "sess-3")
        };
        let (http, base, key) = (c.http.clone(), c.base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let c = Client { http, base };
            c.telnyx(&body, &key, now_s).await
        }));
    }
    let mut results = vec![];
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
        results.push(v["result"].as_str().unwrap().to_string());
    }
    assert_eq!(
        results.iter().filter(|r| *r == "created").count(),
        1,
        "{results:?}"
    );
    assert_eq!(calls_with_id(store, "sess-3").await, 1);
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events WHERE provider_call_id = 'sess-3'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(events, 2, "one row per distinct event");

    let before = written(store).await;
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let (s, v) = c
        .telnyx(&telnyx_hangup("ev-h4", "sess-4"), &other, now_s)
        .await;
    assert_eq!(
        (s, v["result"].as_str()),
        (401, Some("bad_signature")),
        "{v}"
    );
    let (s, v) = c
        .telnyx(&telnyx_hangup("ev-h4", "sess-4"), &key, now_s - 600)
        .await;
    assert_eq!((s, v["result"].as_str()), (401, Some("stale")), "{v}");
    let (s, v) = c
        .telnyx(
            r#"{"data":{"id":"x","event_type":"call.hangup"}}"#,
            &key,
            now_s,
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (400, Some("malformed")), "{v}");
    assert_eq!(written(store).await, before);

    // ---- Twilio ----
    let status = [
        ("CallSid", "CA111"),
        ("AccountSid", "AC1"),
        ("From", "+4915112345678"),
        ("To", "+4930999999"),
        ("CallStatus", "completed"),
        ("Direction", "inbound"),
        ("CallDuration", "45"),
        ("Timestamp", "Tue, 02 Dec 2025 10:00:45 +0000"),
    ];
    let (s, v) = c.twilio(&status, TWILIO_TOKEN, "idem-1").await;
    assert_eq!((s, v["result"].as_str()), (200, Some("waiting")), "{v}");
    let recording = [
        ("CallSid", "CA111"),
        ("AccountSid", "AC1"),
        ("RecordingSid", "RE111"),
        (
            "RecordingUrl",
            "https://api.twilio.example/Recordings/RE111",
        ),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "44"),
    ];
    let (s, v) = c.twilio(&recording, TWILIO_TOKEN, "idem-2").await;
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    let before = written(store).await;
    let (s, v) = c.twilio(&status, TWILIO_TOKEN, "idem-1").await;
    assert_eq!((s, v["result"].as_str()), (200, Some("duplicate")), "{v}");
    let (s, v) = c.twilio(&status, "not the token", "idem-9").await;
    assert_eq!(
        (s, v["result"].as_str()),
        (401, Some("bad_signature")),
        "{v}"
    );
    let ringing = [("CallSid", "CA222"), ("CallStatus", "ringing")];
    let (s, v) = c.twilio(&ringing, TWILIO_TOKEN, "idem-3").await;
    assert_eq!((s, v["result"].as_str()), (200, Some("ignored")), "{v}");
    let (s, v) = c.twilio(&[("From", "+1")], TWILIO_TOKEN, "idem-4").await;
    assert_eq!((s, v["result"].as_str()), (400, Some("malformed")), "{v}");
    assert_eq!(written(store).await, before);
    assert_eq!(calls_with_id(store, "CA111").await, 1);

    // ---- endpoint health, as the console shows it ----
    let acme = store.business_by_name("Acme").await.unwrap().unwrap();
    let eps = store.webhook_endpoints(acme.id).await.unwrap();
    assert_eq!(
        eps.iter().map(|e| e.provider.as_str()).collect::<Vec<_>>(),
        ["retell", "telnyx", "twilio"]
    );
    for e in &eps {
        assert!(e.last_event_at.is_some(), "{e:?}");
        assert!(e.rejected > 0 && e.accepted > 0, "{e:?}");
        assert_eq!(e.waiting, 0, "{e:?}");
    }

    // ---- the calls go through the pipeline ----
    let ids = [
        "retell_A", "retell_B", "sess-1", "sess-2", "sess-3", "CA111",
    ];
    let _worker = Proc(
        be.command(&["worker", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM calls WHERE external_id IN ({}) AND state NOT IN ('done', 'review')",
            ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",")
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} webhook calls did not finish the pipeline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (provider, skipped): (String, Option<String>) = sqlx::query_as(
        "SELECT t.provider, t.stt_skipped FROM transcripts t JOIN calls c ON c.id = t.call_id WHERE c.external_id = 'retell_A'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(provider, "record:retell");
    assert!(
        skipped.is_some_and(|s| s.contains("retell")),
        "STT skipped for Retell's transcript"
    );
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 0, "every job was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_sqlite_database_broker() {
    let be = sqlite().await;
    scenario(&be).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    any(callops_no_postgres, callops_no_rabbitmq),
    ignore = "CALLOPS_TEST_POSTGRES_URL or CALLOPS_TEST_AMQP_URL not set"
)]
async fn webhooks_postgres_rabbitmq() {
    let Some(be) = postgres_rabbitmq().await else {
        return;
    };
    scenario(&be).await;
}

/// Over the per-business limit: 429 with Retry-After, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let be = sqlite().await;
    setup(&be.store).await;
    let (_serve, base) = be.serve(&["serve.burst=3", "serve.rate_per_minute=1"]);
    let c = Client {
        http: reqwest::Client::new(),
        base,
    };
    let mut statuses = vec![];
    for i in 0..5 {
        let (s, _) = c
            .retell(
                "Acme",
                &retell_body("call_ended", &format!("rl_{i}")),
                RETELL_KEY,
                now_ms(),
            )
            .await;
        statuses.push(s);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let r = c
        .http
        .post(format!("{}/hooks/Acme/retell", c.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "Retry-After {wait}");
    assert_eq!(
        written(&be.store).await[0],
        3,
        "only the admitted calls exist"
    );
}

/// `callops business add|set|show` keeps webhook secrets as references: a value is refused
/// and never echoed; `show` lists each endpoint with its reference and flags one that never
/// received an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_cli_keeps_webhook_secrets_as_references() {
    let be = sqlite().await;
    let run = |args: &[&str]| {
        let out = be.command(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "business",
        "add",
        "Hooks",
        "--retell-key",
        "key_live_SECRET123",
    ]);
    assert!(!ok, "a secret value is refused: {out}");
    assert!(
        err.contains("retell_key") && err.contains("env:NAME"),
        "{err}"
    );
    assert!(
        !err.contains("SECRET123") && !out.contains("SECRET123"),
        "{err}{out}"
    );
    assert!(be.store.business_by_name("Hooks").await.unwrap().is_none());

    let (ok, out, err) = run(&[
        "business",
        "add",
        "Hooks",
        "--twilio-auth-token",
        "env:HOOKS_TWILIO",
        "--telnyx-public-key",
        "file:/run/secrets/hooks-telnyx.pub",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("webhook twilio") && out.contains("env:HOOKS_TWILIO"),
        "{out}"
    );
    assert!(out.contains("NEVER received"), "{out}");
    let (ok, out, err) = run(&["business", "set", "Hooks", "--twilio-auth-token", ""]);
    assert!(ok, "{err}");
    assert!(out.contains("NO SECRET"), "cleared: {out}");
    let (ok, out, _) = run(&["business", "show", "Hooks", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["webhooks"][0]["provider"], "telnyx", "{v}");
    assert_eq!(
        v["webhooks"][0]["secret_ref"],
        "file:/run/secrets/hooks-telnyx.pub"
    );
}

/// `kill -9` of the real serve inside the request, before and after the commit: before,
/// nothing is written and the redelivery creates the call; after, the call and its job are
/// both there and the redelivery (the provider saw no 2xx) is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_serve_loses_nothing_and_creates_nothing_twice() {
    let be = sqlite().await;
    setup(&be.store).await;
    for (point, call) in [
        ("webhook_before_commit", "kill_before"),
        ("webhook_after_commit", "kill_after"),
    ] {
        let (mut serve, base, lines) = be.serve_armed(&[], Some(point));
        let body = retell_body("call_ended", call);
        let c = Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base,
        };
        let pending =
            tokio::spawn(async move { c.retell("Acme", &body, RETELL_KEY, now_ms()).await });
        let want = format!("FAILPOINT {point}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains(&want) => break,
                _ => assert!(Instant::now() < deadline, "serve never reached {point}"),
            }
        }
        // SIGKILL: no destructor, no graceful shutdown.
        serve.0.kill().unwrap();
        serve.0.wait().unwrap();
        assert!(
            pending.await.is_err(),
            "the provider saw no 2xx (its request failed)"
        );
        let calls = calls_with_id(&be.store, call).await;
        let jobs: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs j JOIN calls c ON c.id = j.call_id WHERE c.external_id = $1",
        )
        .bind(call)
        .fetch_one(be.store.pool())
        .await
        .unwrap();
        let expect = if point == "webhook_before_commit" {
            0
        } else {
            1
        };
        assert_eq!(
            (calls, jobs),
            (expect, expect),
            "{point}: the call and its job commit together"
        );

        // The provider retries: a fresh serve answers it.
        let (_serve, base) = be.serve(&[]);
        let c = Client {
            http: reqwest::Client::new(),
            base,
        };
        let (s, v) = c
            .retell(
                "Acme",
                &retell_body("call_ended", call),
                RETELL_KEY,
                now_ms(),
            )
            .await;
        let want = if expect == 0 { "created" } else { "duplicate" };
        assert_eq!((s, v["result"].as_str()), (200, Some(want)), "{point}: {v}");
        assert_eq!(calls_with_id(&be.store, call).await, 1);
    }
}

/// A Retell event about one of our own AI calls (issue 16) updates that outbound call and
/// brings its conversation in as an outbound call linked to the lead; it is not taken for a
/// new inbound call, and a replay changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retell_event_of_an_outbound_ai_call_updates_it_not_a_new_inbound_call() {
    let be = sqlite().await;
    setup(&be.store).await;
    let store = &be.store;
    let bid: i64 = sqlx::query_scalar("SELECT id FROM businesses WHERE name = 'Acme'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (lead_id,): (i64,) = sqlx::query_as(
        "INSERT INTO leads (business_id, phone, name, source, call_count, created_at, updated_at) \
         VALUES ($1, '+4930123456', 'Anna Schreiber', 'call', 1, 0, 0) RETURNING id",
    )
    .bind(bid)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    callops::store::outbound::insert_outbound_in(
        &mut tx,
        &callops::store::outbound::NewOutbound {
            business_id: bid,
            lead_id,
            origin_call_id: None,
            form: Some("Website".into()),
            to_number: Some("+4930123456".into()),
            lead_name: Some("Anna Schreiber".into()),
            requested_by: "pipeline".into(),
            due_at: 0,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // The dispatcher dialled it and Retell named the call retell_OUT.
    sqlx::query(
        "UPDATE outbound_calls SET status = 'initiated', provider = 'retell', provider_call_id = 'retell_OUT' \
         WHERE lead_id = $1",
    )
    .bind(lead_id)
    .execute(store.pool())
    .await
    .unwrap();

    let (_serve, base) = be.serve(&[]);
    let c = Client {
        http: reqwest::Client::new(),
        base,
    };
    let body = retell_body("call_ended", "retell_OUT").replace("\"inbound\"", "\"outbound\"");
    let (s, v) = c.retell("Acme", &body, RETELL_KEY, now_ms()).await;
    assert_eq!((s, v["result"].as_str()), (200, Some("outbound")), "{v}");
    let (status, result_call): (String, Option<i64>) =
        sqlx::query_as("SELECT status, result_call_id FROM outbound_calls WHERE lead_id = $1")
            .bind(lead_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_ne!(
        status, "initiated",
        "the webhook did not update the outbound call"
    );
    let result_call = result_call.expect("the ended AI call entered the pipeline");
    let direction: String = sqlx::query_scalar("SELECT direction FROM calls WHERE id = $1")
        .bind(result_call)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(direction, "outbound");
    assert_eq!(
        calls_with_id(store, "retell_OUT").await,
        0,
        "not an inbound call"
    );
    let calls_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // A replay changes nothing.
    let (s, v) = c.retell("Acme", &body, RETELL_KEY, now_ms()).await;
    assert_eq!(s, 200, "{v}");
    let calls_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(calls_before, calls_after);
}
