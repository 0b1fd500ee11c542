//! Two businesses on different providers and keys, each provider an in-test HTTP server
//! that checks its key: A on whisper + OpenAI chat + LeadSquared (its own account), B on
//! Deepgram + Ollama + LeadSquared (another account). Every call reaches its own business's
//! servers with its own keys; changing A's STT key (`set_business`, as `callops business
//! set` does) takes effect in the running worker without a restart, and B's clients are
//! not rebuilt. A third business whose key reference does not resolve is shown as
//! misconfigured and its calls wait (traced) instead of dying; fixed, they finish.

mod common;

use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::ingest::Ingestor;
use callops::pipeline::providers::audio::AudioPolicy;
use callops::pipeline::providers::registry::{ProviderRegistry, RegistryDefaults};
use callops::pipeline::providers::ProviderSettings;
use callops::pipeline::worker::{self, WorkerOptions, WorkerStats};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::business_settings::BusinessPatch;
use callops::store::Store;
use common::http_server::{Req, Resp, Server};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Key = Arc<Mutex<String>>;

fn key(k: &str) -> Key {
    Arc::new(Mutex::new(k.to_string()))
}

fn unauthorized() -> Resp {
    Resp::json(
        401,
        json!({"error": {"message": "invalid key", "code": "invalid_api_key"}}),
    )
}

/// Both agents' fields in one object: the analyze stage takes the fields it asked for.
fn analysis() -> String {
    json!({
        "scores": {"greeting": 8, "needs": 7, "solution": 8, "closing": 9}, "qc_score": 80,
        "summary": "Caller asks about an appointment.", "sentiment": "positive",
        "bant": {"budget": null, "authority": null, "need": "appointment", "timeline": null},
        "caller_name": null, "caller_name_evidence": null,
        "appointment_intent": true, "purchase_intent": false
    })
    .to_string()
}

fn whisper(k: Key) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    // A different transcript per call: analyses are cached by transcript text.
    let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
    move |req, _| {
        if req.header("authorization") != Some(&format!("Bearer {}", k.lock().unwrap())) {
            return unauthorized();
        }
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Resp::json(
            200,
            json!({"text": format!("Thanks for calling, this is Sarah. Hello, I would like appointment number {i} next week please."), "language": "en", "segments": [
                {"start": 0.0, "end": 2.0, "text": "Thanks for calling, this is Sarah."},
                {"start": 2.0, "end": 5.0, "text": format!("Hello, I would like appointment number {i} next week please.")}]}),
        )
    }
}

fn deepgram(k: Key) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    move |req, _| {
        if req.header("authorization") != Some(&format!("Token {}", k.lock().unwrap())) {
            return Resp::json(
                401,
                json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}),
            );
        }
        let url = req
            .json()
            .and_then(|v| v["url"].as_str().map(str::to_string))
            .unwrap_or_default();
        let file = url.rsplit('/').next().unwrap_or("").to_string();
        Resp::json(
            200,
            json!({"results": {"channels": [{"alternatives": [{"transcript": format!("Guten Tag, Praxis Weber. Guten Tag, ich brauche bitte einen Termin naechste Woche ({file})."), "words": []}]}],
                "utterances": [
                    {"start": 0.0, "end": 1.0, "transcript": "Guten Tag, Praxis Weber.", "speaker": 0},
                    {"start": 1.0, "end": 4.0, "transcript": format!("Guten Tag, ich brauche bitte einen Termin naechste Woche ({file})."), "speaker": 1}]}}),
        )
    }
}

fn openai(k: Key) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    move |req, _| {
        if req.header("authorization") != Some(&format!("Bearer {}", k.lock().unwrap())) {
            return unauthorized();
        }
        Resp::json(
            200,
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": analysis()}, "finish_reason": "stop"}]}),
        )
    }
}

fn ollama(req: &Req, _: &str) -> Resp {
    if req.path != "/api/chat" {
        return Resp::raw(404, "text/plain", "404 page not found");
    }
    Resp::json(
        200,
        json!({"message": {"role": "assistant", "content": analysis()}, "done_reason": "stop", "done": true}),
    )
}

fn leadsquared(access: Key, secret: &'static str) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    let n = Arc::new(Mutex::new(0u32));
    move |req, _| {
        if req.header("x-lsq-accesskey") != Some(access.lock().unwrap().as_str())
            || req.header("x-lsq-secretkey") != Some(secret)
        {
            return Resp::json(
                401,
                json!({"Status": "Error", "ExceptionType": "MXUnAuthorizedException", "ExceptionMessage": "Access key or secret key is invalid."}),
            );
        }
        let mut n = n.lock().unwrap();
        *n += 1;
        Resp::json(
            200,
            json!({"Status": "Success", "Message": {"Id": format!("p-{n}"), "AffectedRows": 1, "IsCreated": true}}),
        )
    }
}

fn write(dir: &std::path::Path, name: &str, secret: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    format!("file:{}", p.display())
}

fn records(business: &str, prefix: &str, n: usize, audio: &Server) -> String {
    (0..n)
        .map(|i| {
            json!({"business": business, "external_id": format!("{prefix}-{i}"),
                "from": format!("+4930123456{i:02}"), "duration_s": 5,
                "audio_url": audio.url(&format!("/{prefix}-{i}.wav"))})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn states(store: &Store, prefix: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM calls WHERE external_id LIKE $1 ORDER BY id")
        .bind(format!("{prefix}-%"))
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn wait_finished(store: &Store, prefix: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = states(store, prefix).await;
        if s.len() == n && s.iter().all(|s| s == "done" || s == "review") {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let errs: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT state, last_error FROM calls WHERE external_id LIKE $1")
                    .bind(format!("{prefix}-%"))
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            panic!("{prefix}: calls did not finish: {errs:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn keys_seen(server: &Server, header: &str) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.header(header).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_business_reaches_its_own_providers_with_its_own_keys() {
    let (store, dir) = common::sqlite_store().await;
    let audio =
        Server::start(|_, _| Resp::raw(200, "audio/wav", b"RIFF fake audio".to_vec())).await;
    let (a_stt_key, a_llm_key, a_crm_key) = (key("sk-a-stt"), key("sk-a-llm"), key("a-access"));
    let (b_stt_key, b_crm_key) = (key("dg-b"), key("b-access"));
    let a_stt = Server::start(whisper(a_stt_key.clone())).await;
    let a_llm = Server::start(openai(a_llm_key.clone())).await;
    let a_crm = Server::start(leadsquared(a_crm_key.clone(), "a-secret")).await;
    let b_stt = Server::start(deepgram(b_stt_key.clone())).await;
    let b_llm = Server::start(ollama).await;
    let b_crm = Server::start(leadsquared(b_crm_key.clone(), "b-secret")).await;
    let d = dir.path();

    let a = store
        .add_business(
            "Acme",
            &BusinessPatch {
                stt: Some("whisper".into()),
                stt_base_url: Some(a_stt.base.clone()),
                stt_key: Some(write(d, "a_stt", "sk-a-stt")),
                llm: Some("openai".into()),
                llm_base_url: Some(a_llm.base.clone()),
                llm_model: Some("gpt-4o-mini".into()),
                llm_key: Some(write(d, "a_llm", "sk-a-llm")),
                crm: Some("leadsquared".into()),
                crm_base_url: Some(a_crm.base.clone()),
                crm_key: Some(write(d, "a_crm", "a-access")),
                crm_secret: Some(write(d, "a_crm_s", "a-secret")),
                region: Some("DE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = store
        .add_business(
            "Praxis Weber",
            &BusinessPatch {
                stt: Some("deepgram".into()),
                stt_base_url: Some(b_stt.base.clone()),
                stt_key: Some(write(d, "b_stt", "dg-b")),
                llm: Some("ollama".into()),
                llm_base_url: Some(b_llm.base.clone()),
                crm: Some("leadsquared".into()),
                crm_base_url: Some(b_crm.base.clone()),
                crm_key: Some(write(d, "b_crm", "b-access")),
                crm_secret: Some(write(d, "b_crm_s", "b-secret")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for id in [a.id, b.id] {
        callops::pipeline::ensure_default_agents(&store, id)
            .await
            .unwrap();
    }
    // Nothing secret is stored: only references.
    let stored: String = sqlx::query_scalar("SELECT stt_key_ref FROM businesses WHERE id = $1")
        .bind(a.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("file:"), "{stored}");
    let view = format!("{:?}", store.business(a.id).await.unwrap().settings_view());
    assert!(!view.contains("sk-a-") && view.contains("file:"), "{view}");
    // The database itself refuses a key in clear.
    let e = sqlx::query("UPDATE businesses SET stt_key_ref = 'sk-live-123' WHERE id = $1")
        .bind(a.id)
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("check"), "{e}");

    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(300),
                tiers: 3,
            },
            prefix: common::unique("tenancy"),
            amqp_url: String::new(),
            management_url: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        },
        store.clone(),
    )
    .await
    .unwrap();
    let base = ProviderSettings {
        timeout: Duration::from_secs(5),
        audio: AudioPolicy::allowing_loopback(),
        ..Default::default()
    };
    let registry = Arc::new(ProviderRegistry::new(RegistryDefaults {
        stt: base.clone(),
        llm: base.clone(),
        crm: base,
        global: None,
    }));
    let ctx = Arc::new(PipelineCtx {
        store: store.clone(),
        broker: broker.clone(),
        providers: Providers {
            registry: Some(registry.clone()),
            ..Default::default()
        },
        settings: PipelineSettings::default(),
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let w = tokio::spawn(worker::run(
        ctx,
        WorkerOptions {
            business_refresh: Duration::from_millis(100),
            orphan_after: None,
            ..Default::default()
        },
        Arc::new(WorkerStats::default()),
        rx,
    ));

    let text = format!(
        "{}\n{}",
        records("Acme", "a1", 3, &audio),
        records("Praxis Weber", "b1", 3, &audio)
    );
    let report = Ingestor::new(&store, &*broker)
        .ingest_jsonl(&text)
        .await
        .unwrap();
    assert_eq!(report.ingested, 6, "{report:?}");
    wait_finished(&store, "a1", 3).await;
    wait_finished(&store, "b1", 3).await;

    // Every call reached its own business's servers, with that business's keys.
    assert_eq!(a_stt.requests().len(), 3);
    assert_eq!(b_stt.requests().len(), 3);
    assert!(keys_seen(&a_stt, "authorization")
        .iter()
        .all(|k| k == "Bearer sk-a-stt"));
    assert!(keys_seen(&b_stt, "authorization")
        .iter()
        .all(|k| k == "Token dg-b"));
    assert_eq!(a_llm.requests().len(), 6, "two agents per call");
    assert_eq!(b_llm.requests().len(), 6, "two agents per call");
    assert!(keys_seen(&a_llm, "authorization")
        .iter()
        .all(|k| k == "Bearer sk-a-llm"));
    let a_leads = keys_seen(&a_crm, "x-lsq-accesskey");
    let b_leads = keys_seen(&b_crm, "x-lsq-accesskey");
    assert!(
        !a_leads.is_empty() && a_leads.iter().all(|k| k == "a-access"),
        "{a_leads:?}"
    );
    assert!(
        !b_leads.is_empty() && b_leads.iter().all(|k| k == "b-access"),
        "{b_leads:?}"
    );
    assert_eq!(registry.builds(), 2, "one build per business, then cached");

    // A's STT key changes (the provider rotates it): one `business set`, no restart.
    *a_stt_key.lock().unwrap() = "sk-a-stt-2".into();
    let v_before = store.business(a.id).await.unwrap().settings_version;
    let a2 = store
        .set_business(
            "Acme",
            &BusinessPatch {
                stt_key: Some(write(d, "a_stt2", "sk-a-stt-2")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(a2.settings_version > v_before);
    let text = format!(
        "{}\n{}",
        records("Acme", "a2", 2, &audio),
        records("Praxis Weber", "b2", 2, &audio)
    );
    Ingestor::new(&store, &*broker)
        .ingest_jsonl(&text)
        .await
        .unwrap();
    wait_finished(&store, "a2", 2).await;
    wait_finished(&store, "b2", 2).await;
    let a_keys = keys_seen(&a_stt, "authorization");
    assert_eq!(a_keys.len(), 5, "{a_keys:?}");
    assert!(
        a_keys[3..].iter().all(|k| k == "Bearer sk-a-stt-2"),
        "{a_keys:?}"
    );
    assert_eq!(registry.builds(), 3, "only Acme's clients were rebuilt");

    // A business whose key reference does not resolve: misconfigured, its calls wait.
    let c = store
        .add_business(
            "Broken Ltd",
            &BusinessPatch {
                stt: Some("deepgram".into()),
                stt_base_url: Some(b_stt.base.clone()),
                stt_key: Some("env:CALLOPS_TEST_TENANCY_UNSET_KEY".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    callops::pipeline::ensure_default_agents(&store, c.id)
        .await
        .unwrap();
    Ingestor::new(&store, &*broker)
        .ingest_jsonl(&records("Broken Ltd", "c1", 3, &audio))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let b = store.business(c.id).await.unwrap();
        if b.config_error.is_some() || tokio::time::Instant::now() > deadline {
            let e = b.config_error.unwrap_or_default();
            assert!(
                e.contains("CALLOPS_TEST_TENANCY_UNSET_KEY") && e.contains("not set"),
                "{e}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several retry periods later, nothing died: the business is paused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = states(&store, "c1").await;
    assert!(s.iter().all(|s| s != "dead" && s != "done"), "{s:?}");
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT call_id) FROM call_events WHERE business_id = $1 AND kind = 'waiting' \
         AND reason LIKE '%misconfigured%'",
    )
    .bind(c.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(waiting, 3, "each waiting call says why in its trace");
    let most_retries: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM call_events \
         WHERE business_id = $1 AND kind = 'retry' GROUP BY call_id) t",
    )
    .bind(c.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        most_retries <= 1,
        "paused calls kept failing: {most_retries} attempts"
    );
    let listed = store.misconfigured_businesses().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, c.id);
    let shown = store.business_settings_masked(c.id).await.unwrap();
    assert!(shown
        .iter()
        .any(|(k, v)| *k == "status" && v.starts_with("MISCONFIGURED")));

    // Fixed: the calls continue without a restart.
    store
        .set_business(
            "Broken Ltd",
            &BusinessPatch {
                stt_key: Some(write(d, "c_stt", "dg-b")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_finished(&store, "c1", 3).await;
    assert!(store.business(c.id).await.unwrap().config_error.is_none());

    tx.send(true).unwrap();
    w.await.unwrap().unwrap();
    broker.close().await;
}
