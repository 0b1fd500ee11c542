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

use base64::Engine;
use callops::store::business_settings::BusinessPatch;
use callops::store::Store;
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RETELL_KEY: &str = "key_retell_test_0123456789";
const TWILIO_TOKEN: &str = "twilio_auth_token_test";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn telnyx_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
}

struct Backend {
    url: String,
    broker: &'static str,
    amqp: String,
    prefix: String,
    dir: tempfile::TempDir,
    store: Store,
    _pg: Option<common::PgDb>,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Backend {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callops"));
        cmd.args([
            "--database-url",
            &self.url,
            "--data-dir",
            &self.dir.path().display().to_string(),
        ])
        .args(args)
        .env_remove("CALLOPS_DATABASE_URL")
        .env("CALLOPS_BROKER", self.broker)
        .env("CALLOPS_AMQP_URL", &self.amqp)
        .env("CALLOPS_BROKER_PREFIX", &self.prefix)
        .env("CALLOPS_BROKER_POLL_INTERVAL_MS", "50")
        .env("CALLOPS_SIMULATED_STT_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_LLM_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_JITTER", "0")
        .env("CALLOPS_SIMULATED_TRANSIENT_RATE", "0")
        .env("CALLOPS_SIMULATED_PERMANENT_RATE", "0")
        .env("HOOK_RETELL", RETELL_KEY)
        .env(
            "HOOK_TELNYX",
            B64.encode(telnyx_key().verifying_key().to_bytes()),
        )
        .env("HOOK_TWILIO", TWILIO_TOKEN);
        cmd
    }

    /// The real `callops serve` on a free port; returns it and its base URL.
    fn serve(&self, sets: &[&str]) -> (Proc, String) {
        let (p, base, _) = self.serve_armed(sets, None);
        (p, base)
    }

    /// `serve` with a crash point armed; its stderr lines arrive on the channel.
    fn serve_armed(
        &self,
        sets: &[&str],
        failpoint: Option<&str>,
    ) -> (Proc, String, std::sync::mpsc::Receiver<String>) {
        let mut args = vec![];
        for s in sets {
            args.extend(["--set", s]);
        }
        args.extend(["serve", "--listen", "127.0.0.1:0"]);
        let mut cmd = self.command(&args);
        match failpoint {
            Some(f) => cmd.env("CALLOPS_FAILPOINT", f),
            None => cmd.env_remove("CALLOPS_FAILPOINT"),
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn callops serve");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                let _ = tx.send(line);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_string();
        (Proc(child), base, rx)
    }
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hooks.db").display());
    let store = Store::open_migrated(&url, 4).await.unwrap();
    Backend {
        url,
        broker: "database",
        amqp: "amqp://127.0.0.1:5672/%2f".into(),
        prefix: common::unique("hooks"),
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
        prefix: common::unique("hooks"),
        dir: tempfile::tempdir().unwrap(),
        store: db.store.clone(),
        _pg: Some(db),
    })
}

// ---- fixtures, signed as each provider documents ----

fn retell_body(event: &str, call_id: &str) -> String {
    serde_json::json!({
        "event": event,
        "call": {
            "call_type": "phone_call", "call_id": call_id, "agent_id": "agent_1",
            "direction": "inbound", "from_number": "+4930123456", "to_number": "+4930999999",
            "call_status": "ended", "start_timestamp": 1714608475945i64,
            "end_timestamp": 1714608491736i64, "duration_ms": 15791,
            "transcript": "Agent: Guten Tag, Praxis Weber.\nUser: Hallo, hier ist Anna Schreiber.",
            "transcript_object": [
                {"role": "agent", "content": "Guten Tag, Praxis Weber.",
                 "words": [{"word": "Guten", "start": 0.1, "end": 0.4}, {"word": "Weber.", "start": 1.0, "end": 1.6}]},
                {"role": "user", "content": "Hallo, hier ist Anna Schreiber. Ich möchte einen Termin.",
                 "words": [{"word": "Hallo,", "start": 2.0, "end": 2.3}, {"word": "Termin.", "start": 4.0, "end": 4.5}]}
            ],
            "recording_url": "https://retell.example/rec.wav",
            "call_analysis": {"call_summary": "appointment", "user_sentiment": "Neutral",
                              "call_successful": true, "in_voicemail": false}
        }
    })
    .to_string()
}

fn retell_sig(body: &str, key: &str, ts_ms: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.update(ts_ms.to_string().as_bytes());
    format!("v={ts_ms},d={}", hex::encode(mac.finalize().into_bytes()))
}

fn telnyx_hangup(id: &str, session: &str) -> String {
    serde_json::json!({"data": {
        "record_type": "event", "event_type": "call.hangup", "id": id,
        "occurred_at": "2018-02-02T22:25:27.521992Z",
        "payload": {"call_control_id": format!("v3:{session}"), "call_session_id": session,
                    "from": "+35319605860", "to": "+35319605861",
                    "start_time": "2018-02-02T22:20:27.521992Z", "state": "hangup",
                    "hangup_cause": "normal_clearing", "hangup_source": "caller"}}})
    .to_string()
}

fn telnyx_recording(id: &str, session: &str) -> String {
    serde_json::json!({"data": {
        "record_type": "event", "event_type": "call.recording.saved", "id": id,
        "occurred_at": "2018-02-02T22:25:30.000000Z",
        "payload": {"call_control_id": format!("v3:{session}"), "call_session_id": session,
                    "channels": "single",
                    "recording_urls": {"mp3": format!("https://telnyx.example/{session}.mp3")}}}})
    .to_string()
}

fn telnyx_headers(body: &str, key: &ed25519_dalek::SigningKey, ts_s: i64) -> Vec<(String, String)> {
    let sig = key.sign(format!("{ts_s}|{body}").as_bytes());
    vec![
        (
            "telnyx-signature-ed25519".into(),
            B64.encode(sig.to_bytes()),
        ),
        ("telnyx-timestamp".into(), ts_s.to_string()),
    ]
}

fn twilio_sig(url: &str, params: &[(&str, &str)], token: &str) -> String {
    let mut p: Vec<(&str, &str)> = params.to_vec();
    p.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in p {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    B64.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    callops::now_ms()
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(
        &self,
        path: &str,
        body: &str,
        ctype: &str,
        headers: &[(String, String)],
    ) -> (u16, serde_json::Value) {
        let mut rq = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", ctype)
            .body(body.to_string());
        for (k, v) in headers {
            rq = rq.header(k, v);
        }
        let r = rq.send().await.expect("request reaches serve");
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    async fn retell(
        &self,
        business: &str,
        body: &str,
        key: &str,
        ts: i64,
    ) -> (u16, serde_json::Value) {
        let h = vec![("x-retell-signature".to_string(), retell_sig(body, key, ts))];
        self.post(
            &format!("/hooks/{business}/retell"),
            body,
            "application/json",
            &h,
        )
        .await
    }

    async fn telnyx(
        &self,
        body: &str,
        key: &ed25519_dalek::SigningKey,
        ts_s: i64,
    ) -> (u16, serde_json::Value) {
        self.post(
            "/hooks/Acme/telnyx",
            body,
            "application/json",
            &telnyx_headers(body, key, ts_s),
        )
        .await
    }

    async fn twilio(
        &self,
        params: &[(&str, &str)],
        token: &str,
        idem: &str,
    ) -> (u16, serde_json::Value) {
        let path = "/hooks/Acme/twilio";
        let url = format!("{}{path}", self.base);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let h = vec![
            (
                "x-twilio-signature".to_string(),
                twilio_sig(&url, params, token),
            ),
            ("i-twilio-idempotency-token".to_string(), idem.to_string()),
        ];
        self.post(path, &body, "application/x-www-form-urlencoded", &h)
            .await
    }
}

/// Rows a request may write: calls, jobs (database broker), outbox, webhook events,
/// provider-call rows, and when those were last touched.
async fn written(store: &Store) -> [i64; 6] {
    let mut out = [0; 6];
    for (i, q) in [
        "SELECT COUNT(*) FROM calls",
        "SELECT COUNT(*) FROM jobs",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM webhook_events",
        "SELECT COUNT(*) FROM webhook_calls",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM webhook_calls",
    ]
    .iter()
    .enumerate()
    {
        out[i] = sqlx::query_scalar(q).fetch_one(store.pool()).await.unwrap();
    }
    out
}

async fn calls_with_id(store: &Store, external_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn setup(store: &Store) {
    let patch = BusinessPatch {
        stt: Some("simulated".into()),
        llm: Some("simulated".into()),
        crm: Some("builtin".into()),
        region: Some("DE".into()),
        retell_key: Some("env:HOOK_RETELL".into()),
        telnyx_public_key: Some("env:HOOK_TELNYX".into()),
        twilio_auth_token: Some("env:HOOK_TWILIO".into()),
        ..Default::default()
    };
    let b = store.add_business("Acme", &patch).await.unwrap();
    callops::pipeline::ensure_default_agents(store, b.id)
        .await
        .unwrap();
    // A business without webhook secrets: its endpoints refuse everything.
    store
        .add_business("Bare", &BusinessPatch::default())
        .await
        .unwrap();
}

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
