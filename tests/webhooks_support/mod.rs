//! Fixtures of tests/webhooks.rs: the real binary on each backend, and provider requests
//! signed as each provider documents (independently of the server's own code).
#![allow(dead_code)]

use base64::Engine;
use callops::store::business_settings::BusinessPatch;
use callops::store::Store;
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const RETELL_KEY: &str = "key_retell_test_0123456789";
pub const TWILIO_TOKEN: &str = "twilio_auth_token_test";
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn telnyx_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
}

pub struct Backend {
    pub url: String,
    pub broker: &'static str,
    pub amqp: String,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub _pg: Option<crate::common::PgDb>,
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Backend {
    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn serve(&self, sets: &[&str]) -> (Proc, String) {
        let (p, base, _) = self.serve_armed(sets, None);
        (p, base)
    }

    /// `serve` with a crash point armed; its stderr lines arrive on the channel.
    pub fn serve_armed(
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

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hooks.db").display());
    let store = Store::open_migrated(&url, 4).await.unwrap();
    Backend {
        url,
        broker: "database",
        amqp: "amqp://127.0.0.1:5672/%2f".into(),
        prefix: crate::common::unique("hooks"),
        dir,
        store,
        _pg: None,
    }
}

pub async fn postgres_rabbitmq() -> Option<Backend> {
    let (Some(pg), Some(amqp)) = (crate::common::postgres_url(), crate::common::amqp_url()) else {
        return None;
    };
    let db = crate::common::PgDb::create(&pg).await;
    Some(Backend {
        url: db.url.clone(),
        broker: "rabbitmq",
        amqp,
        prefix: crate::common::unique("hooks"),
        dir: tempfile::tempdir().unwrap(),
        store: db.store.clone(),
        _pg: Some(db),
    })
}

// ---- fixtures, signed as each provider documents ----

pub fn retell_body(event: &str, call_id: &str) -> String {
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

pub fn retell_sig(body: &str, key: &str, ts_ms: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.update(ts_ms.to_string().as_bytes());
    format!("v={ts_ms},d={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn telnyx_hangup(id: &str, session: &str) -> String {
    serde_json::json!({"data": {
        "record_type": "event", "event_type": "call.hangup", "id": id,
        "occurred_at": "2018-02-02T22:25:27.521992Z",
        "payload": {"call_control_id": format!("v3:{session}"), "call_session_id": session,
                    "from": "+35319605860", "to": "+35319605861",
                    "start_time": "2018-02-02T22:20:27.521992Z", "state": "hangup",
                    "hangup_cause": "normal_clearing", "hangup_source": "caller"}}})
    .to_string()
}

pub fn telnyx_recording(id: &str, session: &str) -> String {
    serde_json::json!({"data": {
        "record_type": "event", "event_type": "call.recording.saved", "id": id,
        "occurred_at": "2018-02-02T22:25:30.000000Z",
        "payload": {"call_control_id": format!("v3:{session}"), "call_session_id": session,
                    "channels": "single",
                    "recording_urls": {"mp3": format!("https://telnyx.example/{session}.mp3")}}}})
    .to_string()
}

pub fn telnyx_headers(
    body: &str,
    key: &ed25519_dalek::SigningKey,
    ts_s: i64,
) -> Vec<(String, String)> {
    let sig = key.sign(format!("{ts_s}|{body}").as_bytes());
    vec![
        (
            "telnyx-signature-ed25519".into(),
            B64.encode(sig.to_bytes()),
        ),
        ("telnyx-timestamp".into(), ts_s.to_string()),
    ]
}

pub fn twilio_sig(url: &str, params: &[(&str, &str)], token: &str) -> String {
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

pub fn now_ms() -> i64 {
    callops::now_ms()
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub async fn post(
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

    pub async fn retell(
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

    pub async fn telnyx(
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

    pub async fn twilio(
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
pub async fn written(store: &Store) -> [i64; 6] {
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

pub async fn calls_with_id(store: &Store, external_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

pub async fn setup(store: &Store) {
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
