//! Audio URLs come from call records: untrusted. Through the real whisper client and the
//! real pipeline: audio on 127.0.0.1 and at the cloud metadata address is refused with the
//! reason in the call's trace (and the audio server sees no request); a body 10× over
//! `audio.max_bytes` is refused without reading past the cap, with or without a
//! Content-Length; a slow server hits `audio.timeout_s`; a redirect to a private address
//! is checked like the first hop; an allowed local host still works.

mod common;

use callops::domain::stage::Stage;
use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::ingest::Ingestor;
use callops::pipeline::providers::audio::AudioPolicy;
use callops::pipeline::providers::stt::SttRequest;
use callops::pipeline::providers::{build_stt, ProviderSettings};
use callops::pipeline::worker::{self, WorkerOptions, WorkerStats};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::businesses::ProviderKinds;
use common::http_server::{Resp, Server};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn whisper_server() -> Server {
    Server::start(|_req, _| {
        Resp::json(
            200,
            serde_json::json!({"text": "hello", "language": "en", "segments": [
                {"start": 0.0, "end": 1.0, "text": "hello"}]}),
        )
    })
    .await
}

fn whisper(
    base: &str,
    audio: AudioPolicy,
) -> Arc<dyn callops::pipeline::providers::stt::SttProvider> {
    build_stt(
        "whisper",
        &ProviderSettings {
            base_url: Some(base.into()),
            timeout: Duration::from_secs(5),
            audio,
            ..Default::default()
        },
    )
    .unwrap()
}

fn req(url: &str) -> SttRequest {
    SttRequest {
        audio_url: url.into(),
        language: None,
        duration_ms: 1000,
    }
}

/// A server that answers every connection with `body_len` bytes in 8 KiB writes and no
/// Content-Length (read to EOF), counting what it managed to write.
async fn streaming_server(body_len: usize, written: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let written = written.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                let chunk = vec![b'a'; 8192];
                let mut sent = 0;
                while sent < body_len {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                    written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
    });
    base
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_before_connecting() {
    let stt = whisper_server().await;
    let audio = Server::start(|_, _| Resp::raw(200, "audio/wav", b"RIFFdata".to_vec())).await;
    let strict = whisper(&stt.base, AudioPolicy::default());
    for (url, why) in [
        (audio.url("/a.wav"), "127.0.0.1 (loopback)"),
        (
            "http://169.254.169.254/latest/meta-data/iam".to_string(),
            "169.254.169.254 (the cloud metadata address)",
        ),
        ("http://localhost:9/a.wav".to_string(), "(loopback)"),
        ("http://[::1]:9/a.wav".to_string(), "::1 (loopback)"),
        ("http://10.0.0.8/a.wav".to_string(), "10.0.0.8 (private)"),
    ] {
        let e = strict.transcribe(&req(&url)).await.unwrap_err();
        assert!(e.is_permanent(), "{url}: {e}");
        let e = e.to_string();
        assert!(
            e.contains(why) && e.contains("audio.allow_private"),
            "{url}: {e}"
        );
    }
    let e = strict
        .transcribe(&req("file:///etc/passwd"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("scheme file:// is not allowed"), "{e}");
    let only = whisper(
        &stt.base,
        AudioPolicy {
            allowed_hosts: vec!["media.example.com".into()],
            ..AudioPolicy::allowing_loopback()
        },
    );
    let e = only
        .transcribe(&req(&audio.url("/a.wav")))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not in audio.allowed_hosts"), "{e}");
    assert!(
        audio.requests().is_empty(),
        "nothing may reach the audio host"
    );
    assert!(stt.requests().is_empty(), "nothing is sent to STT");

    // Allowed in config: the same local recording is downloaded and transcribed.
    let local = whisper(&stt.base, AudioPolicy::allowing_loopback());
    let t = local.transcribe(&req(&audio.url("/a.wav"))).await.unwrap();
    assert_eq!(t.text, "hello");
    assert_eq!(audio.requests().len(), 1);

    // A redirect from an allowed host to a private address is checked like the first hop.
    let redirector = Server::start(|_, _| {
        Resp::raw(302, "text/plain", Vec::new())
            .header("Location", "http://169.254.169.254/latest/meta-data/")
    })
    .await;
    let e = local
        .transcribe(&req(&redirector.url("/r.wav")))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cloud metadata address"), "{e}");
}

#[tokio::test]
async fn oversized_audio_is_cut_at_the_cap() {
    let stt = whisper_server().await;
    let cap: u64 = 256 * 1024;
    let policy = AudioPolicy {
        max_bytes: cap,
        ..AudioPolicy::allowing_loopback()
    };
    let client = whisper(&stt.base, policy.clone());

    // With a Content-Length: refused before reading the body.
    let big =
        Server::start(move |_, _| Resp::raw(200, "audio/wav", vec![b'a'; 10 * cap as usize])).await;
    let e = client
        .transcribe(&req(&big.url("/big.wav")))
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string().contains("over audio.max_bytes")
            && e.to_string().contains("nothing downloaded"),
        "{e}"
    );

    // Streamed without a length: reading stops at the cap.
    let written = Arc::new(AtomicU64::new(0));
    let base = streaming_server(10 * cap as usize, written.clone()).await;
    let e = client
        .transcribe(&req(&format!("{base}/stream.wav")))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("download stopped after"), "{e}");
    let read: u64 = e
        .split("download stopped after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(read <= cap, "read {read} bytes past the cap {cap}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        written.load(Ordering::Relaxed) < 10 * cap,
        "the server could send the whole 10x body: the client kept reading"
    );
    assert!(stt.requests().is_empty());

    // Too slow: the whole download has a deadline.
    let slow = Server::start(|_, _| {
        Resp::raw(200, "audio/wav", b"RIFF".to_vec()).after(Duration::from_secs(5))
    })
    .await;
    let quick = whisper(
        &stt.base,
        AudioPolicy {
            timeout: Duration::from_millis(300),
            ..AudioPolicy::allowing_loopback()
        },
    );
    let e = quick
        .transcribe(&req(&slow.url("/slow.wav")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("audio.timeout_s") || e.contains("timed out"),
        "{e}"
    );
}

/// Through the pipeline: the refusal is the call's trace, and the call is dead at once
/// (retrying cannot make the address public) instead of retried five times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_in_the_calls_trace() {
    let (store, _dir) = common::sqlite_store().await;
    let stt = whisper_server().await;
    let audio = Server::start(|_, _| Resp::raw(200, "audio/wav", b"RIFFdata".to_vec())).await;
    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                tiers: 1,
            },
            prefix: common::unique("audio"),
            amqp_url: String::new(),
            management_url: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        },
        store.clone(),
    )
    .await
    .unwrap();
    let b = store
        .ensure_business_with(
            "Audio GmbH",
            &ProviderKinds {
                stt: "whisper".into(),
                llm: "simulated".into(),
                crm: "builtin".into(),
            },
        )
        .await
        .unwrap();
    callops::pipeline::ensure_default_agents(&store, b.id)
        .await
        .unwrap();
    let lines = [
        format!(r#"{{"business":"Audio GmbH","external_id":"loop","audio_url":"{}"}}"#, audio.url("/a.wav")),
        r#"{"business":"Audio GmbH","external_id":"meta","audio_url":"http://169.254.169.254/latest/meta-data/"}"#.to_string(),
    ];
    let report = Ingestor::new(&store, &*broker)
        .ingest_jsonl(&lines.join("\n"))
        .await
        .unwrap();
    assert_eq!(report.ingested, 2, "{report:?}");
    let mut providers = Providers::default();
    providers
        .stt
        .insert("whisper".into(), whisper(&stt.base, AudioPolicy::default()));
    let ctx = Arc::new(PipelineCtx {
        store: store.clone(),
        broker: broker.clone(),
        providers,
        settings: PipelineSettings::default(),
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let w = tokio::spawn(worker::run(
        ctx,
        WorkerOptions {
            stages: vec![Stage::Sync, Stage::Transcribe],
            business_refresh: Duration::from_millis(100),
            orphan_after: None,
            ..Default::default()
        },
        Arc::new(WorkerStats::default()),
        rx,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let rows: Vec<(String, String, Option<String>)> = loop {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT external_id, state, last_error FROM calls ORDER BY external_id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        if rows.iter().all(|r| r.1 == "dead") || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tx.send(true).unwrap();
    w.await.unwrap().unwrap();
    assert!(rows.iter().all(|r| r.1 == "dead"), "{rows:?}");
    for (ext, why) in [
        ("loop", "(loopback)"),
        ("meta", "(the cloud metadata address)"),
    ] {
        let errors: Vec<String> = sqlx::query_scalar(
            "SELECT e.detail FROM call_events e JOIN calls c ON c.id = e.call_id \
             WHERE c.external_id = $1 AND e.kind = 'dead'",
        )
        .bind(ext)
        .fetch_all(store.pool())
        .await
        .unwrap_or_default();
        let last_error = rows
            .iter()
            .find(|r| r.0 == ext)
            .unwrap()
            .2
            .clone()
            .unwrap_or_default();
        assert!(
            last_error.contains(why) || errors.iter().any(|e| e.contains(why)),
            "{ext}: {last_error} / {errors:?}"
        );
    }
    assert!(audio.requests().is_empty() && stt.requests().is_empty());
    broker.close().await;
}
