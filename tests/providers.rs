//! The provider clients against HTTP servers started in the test that answer like the real
//! services (PROTOCOLS.md), error shapes included: Deepgram, OpenAI-compatible Whisper
//! (speaches and whisper.cpp), Sarvam (sync and the 7-step batch job flow), Ollama,
//! OpenAI-compatible chat, LeadSquared. Every client is checked for its success shape and
//! for 429 / 5xx / timeouts → Transient, 4xx → Permanent with the provider's own message,
//! and unparseable 2xx → Malformed with the body kept. Then the simulated providers:
//! deterministic, scenario content, failure rates, and the factory.

mod common;

use callops::pipeline::providers::crm::{CrmAdapter, LeadUpsert};
use callops::pipeline::providers::llm::simulated::simulated_agent_output;
use callops::pipeline::providers::llm::LlmRequest;
use callops::pipeline::providers::stt::simulated::{script, sim_audio_url, SCENARIOS};
use callops::pipeline::providers::stt::SttRequest;
use callops::pipeline::providers::{
    build_crm, build_llm, build_stt, ProviderError, ProviderSettings, SimSettings,
};
use common::http_server::{Req, Resp, Server};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ───────────────────────────── helpers ─────────────────────────────

const AUDIO: &[u8] = b"RIFF\x24\x00\x00\x00WAVEfmt fake audio bytes for the test";

fn settings(base: &str, key: &str) -> ProviderSettings {
    ProviderSettings {
        base_url: Some(base.to_string()),
        api_key: Some(key.to_string()),
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        max_polls: 20,
        // The in-test servers listen on 127.0.0.1 (refused by default: issue 11).
        audio: callops::pipeline::providers::audio::AudioPolicy::allowing_loopback(),
        ..Default::default()
    }
}

fn stt_req(url: &str, duration_ms: i64) -> SttRequest {
    SttRequest {
        audio_url: url.to_string(),
        language: None,
        duration_ms,
    }
}

fn llm_req(model: &str) -> LlmRequest {
    LlmRequest {
        model: model.into(),
        system: "Score the agent. Return JSON.".into(),
        user: "[0.0s] agent: Hello\n[2.0s] caller: Hi, my name is John Carter.".into(),
        schema_name: "QC scorecard".into(),
        schema: json!({"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}),
    }
}

#[track_caller]
fn transient(r: Result<impl std::fmt::Debug, ProviderError>, needles: &[&str]) -> ProviderError {
    match r {
        Err(e @ ProviderError::Transient { .. }) => {
            for n in needles {
                assert!(e.to_string().contains(n), "{n:?} missing in {e}");
            }
            e
        }
        other => panic!("expected Transient containing {needles:?}, got {other:?}"),
    }
}

#[track_caller]
fn permanent(r: Result<impl std::fmt::Debug, ProviderError>, needles: &[&str]) -> ProviderError {
    match r {
        Err(e @ ProviderError::Permanent { .. }) => {
            for n in needles {
                assert!(e.to_string().contains(n), "{n:?} missing in {e}");
            }
            e
        }
        other => panic!("expected Permanent containing {needles:?}, got {other:?}"),
    }
}

#[track_caller]
fn malformed(r: Result<impl std::fmt::Debug, ProviderError>, why: &str, raw: &str) {
    match r {
        Err(ProviderError::Malformed { why: w, raw: r, .. }) => {
            assert!(w.contains(why), "{why:?} missing in why {w:?}");
            assert!(r.contains(raw), "{raw:?} missing in raw {r:?}");
        }
        other => panic!("expected Malformed ({why}), got {other:?}"),
    }
}

/// The failures every HTTP provider must classify the same way. `call` runs one request
/// with the provider; the reply of its `method path` request is replaced by each
/// injected one in turn.
async fn common_failures<T, F, Fut>(
    server: &Server,
    (method, path): (&str, &str),
    forbidden: Resp,
    forbidden_msg: &str,
    call: F,
) where
    T: std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let inject = |r: Resp| server.inject(method, path, r);
    inject(
        Resp::json(
            429,
            json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}),
        )
        .header("Retry-After", "7"),
    );
    let e = transient(
        call().await,
        &["HTTP 429", "Rate limit reached", "Retry-After: 7"],
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    inject(Resp::raw(500, "text/plain", "upstream exploded"));
    transient(call().await, &["HTTP 500", "upstream exploded"]);
    inject(Resp::raw(
        503,
        "text/html",
        "<html><body>Service Unavailable</body></html>",
    ));
    transient(call().await, &["HTTP 503"]);

    inject(forbidden);
    permanent(call().await, &[forbidden_msg]);

    inject(Resp::raw(
        200,
        "application/json",
        "<html>captive portal</html>",
    ));
    malformed(call().await, "not the expected JSON", "captive portal");
    inject(Resp::raw(200, "application/json", "{\"results\": {\"chan"));
    malformed(
        call().await,
        "not the expected JSON",
        "{\"results\": {\"chan",
    );
}

// ───────────────────────────── Deepgram ─────────────────────────────

fn fake_deepgram(req: &Req, _base: &str) -> Resp {
    let rid = "c2d8a8a2-5d7f-4d6e-9c5b-1f2e3d4c5b6a";
    if req.method != "POST" || req.path != "/v1/listen" {
        return Resp::json(
            404,
            json!({"err_code": "NOT_FOUND", "err_msg": "Not found", "request_id": rid}),
        );
    }
    if req.header("authorization") != Some("Token dg-key") {
        return Resp::json(
            401,
            json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": rid}),
        );
    }
    // Deepgram reads a body without the JSON content type as raw audio.
    if req.header("content-type") != Some("application/json") {
        return Resp::json(
            400,
            json!({"err_code": "Bad Request", "err_msg": "Bad Request: failed to process audio: corrupt or unsupported data", "request_id": rid}),
        );
    }
    let Some(url) = req
        .json()
        .and_then(|v| v["url"].as_str().map(str::to_string))
    else {
        return Resp::json(
            400,
            json!({"category": "INVALID_JSON", "message": "Invalid JSON submitted.", "details": "Json deserialize error: missing field `url`", "request_id": rid}),
        );
    };
    if url.contains("unreachable") {
        return Resp::json(
            400,
            json!({"err_code": "REMOTE_CONTENT_ERROR", "err_msg": "The remote server hosting the media returned a client error: 404 Not Found.", "request_id": rid}),
        );
    }
    let diarize = req.query("diarize") == Some("true");
    let utterances = req.query("utterances") == Some("true");
    let words = json!([
        {"word": "guten", "start": 0.4, "end": 0.7, "confidence": 0.99, "speaker": 0, "speaker_confidence": 0.8, "punctuated_word": "Guten"},
        {"word": "tag", "start": 0.7, "end": 1.0, "confidence": 0.99, "speaker": 0, "speaker_confidence": 0.8, "punctuated_word": "Tag,"},
        {"word": "hier", "start": 2.1, "end": 2.3, "confidence": 0.98, "speaker": 1, "speaker_confidence": 0.7, "punctuated_word": "hier"},
        {"word": "ist", "start": 2.3, "end": 2.5, "confidence": 0.98, "speaker": 1, "speaker_confidence": 0.7, "punctuated_word": "ist"},
        {"word": "schreiber", "start": 2.5, "end": 3.1, "confidence": 0.95, "speaker": 1, "speaker_confidence": 0.7, "punctuated_word": "Schreiber."}
    ]);
    let mut results = json!({"channels": [{"alternatives": [{"transcript": "Guten Tag, hier ist Schreiber.", "confidence": 0.98, "words": words}]}]});
    if utterances {
        results["utterances"] = json!([
            {"start": 0.4, "end": 1.0, "confidence": 0.99, "channel": 0, "transcript": "Guten Tag,", "words": [], "speaker": 0, "id": "u1"},
            {"start": 2.1, "end": 3.1, "confidence": 0.97, "channel": 0, "transcript": "hier ist Schreiber.", "words": [], "speaker": 1, "id": "u2"}
        ]);
        if !diarize {
            for u in results["utterances"].as_array_mut().unwrap() {
                u.as_object_mut().unwrap().remove("speaker");
            }
        }
    }
    if let Some(lang) = req.query("language") {
        results["channels"][0]["detected_language"] = json!(lang);
    }
    Resp::json(
        200,
        json!({"metadata": {"request_id": rid, "created": "2024-05-01T10:00:00.000Z", "duration": 3.2, "channels": 1}, "results": results}),
    )
}

#[tokio::test]
async fn deepgram_transcribes_with_utterances_as_segments() {
    let server = Server::start(fake_deepgram).await;
    let dg = build_stt("deepgram", &settings(&server.base, "dg-key")).unwrap();
    let mut req = stt_req("https://media.example.com/calls/1.wav?sig=SECRET", 3_200);
    req.language = Some("de".into());
    let t = dg.transcribe(&req).await.unwrap();
    assert_eq!(t.provider, "deepgram");
    assert_eq!(t.language.as_deref(), Some("de"));
    assert_eq!(t.text, "Guten Tag, hier ist Schreiber.");
    let speakers: Vec<&str> = t.segments.iter().map(|s| s.speaker.as_str()).collect();
    assert_eq!(speakers, ["0", "1"]);
    assert_eq!(t.segments[1].text, "hier ist Schreiber.");
    assert_eq!((t.segments[1].start, t.segments[1].end), (2.1, 3.1));

    let sent = &server.requests()[0];
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), Some("Token dg-key"));
    for (k, v) in [
        ("model", "nova-3"),
        ("smart_format", "true"),
        ("diarize", "true"),
        ("utterances", "true"),
        ("language", "de"),
    ] {
        assert_eq!(sent.query(k), Some(v), "query {k}");
    }
    assert_eq!(sent.json().unwrap()["url"], req.audio_url);
}

#[tokio::test]
async fn fake_deepgram_rejects_what_deepgram_rejects() {
    // The fake must be strict for the client test above to mean anything.
    let server = Server::start(fake_deepgram).await;
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/v1/listen?diarize=true"))
        .header("Authorization", "Token dg-key")
        .body(r#"{"url":"https://x/1.wav"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("failed to process audio"));
}

#[tokio::test]
async fn deepgram_errors() {
    let server = Server::start(fake_deepgram).await;
    let dg = build_stt("deepgram", &settings(&server.base, "dg-key")).unwrap();
    let req = stt_req("https://media.example.com/1.wav", 10_000);
    common_failures(
        &server,
        ("POST", "/v1/listen"),
        Resp::json(403, json!({"err_code": "INSUFFICIENT_PERMISSIONS", "err_msg": "Project does not have access to model nova-3", "request_id": "r"})),
        "Project does not have access to model nova-3",
        || dg.transcribe(&req),
    )
    .await;

    let bad_key = build_stt("deepgram", &settings(&server.base, "wrong")).unwrap();
    let e = permanent(
        bad_key.transcribe(&req).await,
        &[
            "HTTP 401",
            "INVALID_AUTH: Invalid credentials.",
            "/v1/listen",
        ],
    );
    assert!(!e.to_string().contains("wrong"), "the key leaked: {e}");

    permanent(
        dg.transcribe(&stt_req(
            "https://media.example.com/unreachable.wav?token=abc",
            1,
        ))
        .await,
        &[
            "HTTP 400",
            "REMOTE_CONTENT_ERROR",
            "unreachable.wav?token=REDACTED",
        ],
    );
}

#[tokio::test]
async fn deepgram_falls_back_to_words_without_utterances() {
    let server = Server::start(|req: &Req, base: &str| {
        let mut r = fake_deepgram(req, base);
        let mut v: Value = serde_json::from_slice(&r.body).unwrap();
        v["results"].as_object_mut().unwrap().remove("utterances");
        r.body = v.to_string().into_bytes();
        r
    })
    .await;
    let dg = build_stt("deepgram", &settings(&server.base, "dg-key")).unwrap();
    let t = dg
        .transcribe(&stt_req("https://m/1.wav", 3_000))
        .await
        .unwrap();
    assert_eq!(t.segments.len(), 2);
    assert_eq!(t.segments[0].text, "Guten Tag,");
    assert_eq!(t.segments[1].speaker, "1");
    assert_eq!(t.segments[1].text, "hier ist Schreiber.");
}

#[tokio::test]
async fn timeouts_and_dead_hosts_are_transient() {
    let slow = Server::start(|req: &Req, base: &str| {
        fake_deepgram(req, base).after(Duration::from_secs(3))
    })
    .await;
    let mut s = settings(&slow.base, "dg-key");
    s.timeout = Duration::from_millis(300);
    let dg = build_stt("deepgram", &s).unwrap();
    let started = Instant::now();
    transient(
        dg.transcribe(&stt_req("https://m/1.wav", 1_000)).await,
        &["timeout", "300 ms", "/v1/listen"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout did not cut the request short"
    );

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ollama = build_llm("ollama", &settings(&format!("http://127.0.0.1:{port}"), "")).unwrap();
    transient(
        ollama.complete_json(&llm_req("llama3.1")).await,
        &["cannot connect", "/api/chat"],
    );
}

// ───────────────────────────── Whisper (OpenAI-compatible) ─────────────────────────────

/// Audio files (`/audio/…`) and a transcription endpoint at `/v1/audio/transcriptions`
/// (speaches: ISO language) and `/inference` (whisper.cpp: full language name).
fn fake_whisper(req: &Req, _base: &str) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/audio/call.mp3") => Resp::raw(200, "audio/mpeg", AUDIO),
        ("GET", "/audio/blob") => Resp::raw(200, "application/octet-stream", AUDIO),
        ("GET", p) if p.starts_with("/audio/") => Resp::raw(
            404,
            "application/xml",
            "<Error><Code>NoSuchKey</Code></Error>",
        ),
        ("POST", "/v1/audio/transcriptions") | ("POST", "/inference") => {
            let parts = req.multipart();
            let Some(file) = parts.iter().find(|p| p.name == "file") else {
                return Resp::json(
                    422,
                    json!({"detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": null}]}),
                );
            };
            if file.data != AUDIO {
                return Resp::json(400, json!({"detail": "Invalid audio file"}));
            }
            if req.field("response_format").as_deref() != Some("verbose_json") {
                return Resp::json(200, json!({"text": "only text"}));
            }
            let language = if req.path == "/inference" {
                "english"
            } else {
                "en"
            };
            Resp::json(
                200,
                json!({
                    "task": "transcribe", "language": language, "duration": 6.5,
                    "text": " Thanks for calling Acme, this is Sarah. Hi, my name is John Carter.",
                    "words": null,
                    "segments": [
                        {"id": 0, "seek": 0, "start": 0.0, "end": 2.8, "text": " Thanks for calling Acme, this is Sarah.", "tokens": [50364], "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.3, "no_speech_prob": 0.01, "words": null},
                        {"id": 1, "seek": 0, "start": 3.1, "end": 6.5, "text": " Hi, my name is John Carter.", "tokens": [50364], "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.3, "no_speech_prob": 0.01, "words": null}
                    ]
                }),
            )
        }
        _ => Resp::json(404, json!({"detail": "Not Found"})),
    }
}

#[tokio::test]
async fn whisper_downloads_uploads_and_maps_segments() {
    let server = Server::start(fake_whisper).await;
    let w = build_stt("whisper", &settings(&server.base, "sk-local")).unwrap();
    let mut req = stt_req(&server.url("/audio/call.mp3"), 6_500);
    req.language = Some("en-US".into());
    let t = w.transcribe(&req).await.unwrap();
    assert_eq!(t.language.as_deref(), Some("en"));
    assert_eq!(t.segments.len(), 2);
    assert!(t.segments.iter().all(|s| s.speaker == "0"));
    assert_eq!(t.segments[1].text, "Hi, my name is John Carter.");
    assert!(t.text.starts_with("Thanks for calling"));

    let upload = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(upload.header("authorization"), Some("Bearer sk-local"));
    let file = upload
        .multipart()
        .into_iter()
        .find(|p| p.name == "file")
        .unwrap();
    assert_eq!(file.file_name.as_deref(), Some("call.mp3"));
    assert_eq!(file.content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(upload.field("language").as_deref(), Some("en"));
    assert_eq!(upload.field("model").as_deref(), Some("whisper-1"));
}

#[tokio::test]
async fn whisper_cpp_path_and_language_names() {
    let server = Server::start(fake_whisper).await;
    let mut s = settings(&server.base, "");
    s.api_key = None;
    let w = build_stt("whisper.cpp", &s).unwrap();
    let t = w
        .transcribe(&stt_req(&server.url("/audio/blob"), 6_500))
        .await
        .unwrap();
    assert_eq!(
        t.language.as_deref(),
        Some("en"),
        "whisper.cpp's 'english' is normalized"
    );
    let upload = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(upload.path, "/inference");
    assert_eq!(upload.header("authorization"), None);
    // octet-stream from the blob store: the type comes from the (missing) extension.
    let file = upload
        .multipart()
        .into_iter()
        .find(|p| p.name == "file")
        .unwrap();
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));

    // The path is configurable for servers started with --inference-path.
    let mut s = settings(&server.base, "");
    s.path = Some("inference".into());
    let w = build_stt("whisper", &s).unwrap();
    w.transcribe(&stt_req(&server.url("/audio/call.mp3"), 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn whisper_errors() {
    let server = Server::start(fake_whisper).await;
    let w = build_stt("whisper", &settings(&server.base, "k")).unwrap();

    // The audio download fails: missing audio cannot come back, a hiccup can.
    permanent(
        w.transcribe(&stt_req(
            &server.url("/audio/missing.wav?X-Amz-Signature=s3cr3t"),
            1,
        ))
        .await,
        &[
            "downloading audio",
            "HTTP 404",
            "NoSuchKey",
            "X-Amz-Signature=REDACTED",
        ],
    );
    permanent(
        w.transcribe(&stt_req("sim://audio/1?lang=de", 1)).await,
        &["sim://audio/1", "only fetches http:// and https://"],
    );
    let req = stt_req(&server.url("/audio/call.mp3"), 6_500);
    server.inject(
        "GET",
        "/audio/call.mp3",
        Resp::raw(502, "text/plain", "bad gateway"),
    );
    transient(w.transcribe(&req).await, &["downloading audio", "HTTP 502"]);

    // The transcription server's own errors: OpenAI and FastAPI (speaches) shapes.
    server.inject(
        "POST",
        "/v1/audio/transcriptions",
        Resp::json(
            422,
            json!({"detail": [{"loc": ["body", "model"], "msg": "Model 'x' is not installed"}]}),
        ),
    );
    permanent(
        w.transcribe(&req).await,
        &["HTTP 422", "body.model: Model 'x' is not installed"],
    );
    common_failures(
        &server,
        ("POST", "/v1/audio/transcriptions"),
        Resp::json(401, json!({"error": {"message": "Incorrect API key provided: k.", "type": "invalid_request_error", "code": "invalid_api_key"}})),
        "invalid_api_key: Incorrect API key provided",
        || w.transcribe(&req),
    )
    .await;
}

// ───────────────────────────── Sarvam ─────────────────────────────

/// Sarvam's API plus the blob store its presigned URLs point at. Job state lives in the
/// closure: created → uploaded → started → polled `running_polls` times → Completed.
#[derive(Default)]
struct SarvamJob {
    id: String,
    uploaded: Option<(String, Vec<u8>)>,
    started: bool,
    polls: u32,
}

fn fake_sarvam(
    running_polls: u32,
    final_state: &'static str,
) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    let job: Arc<Mutex<SarvamJob>> = Arc::default();
    move |req: &Req, base: &str| {
        let err = |status: u16, code: &str, msg: &str| {
            Resp::json(
                status,
                json!({"error": {"message": msg, "code": code, "request_id": "20240501_abc"}}),
            )
        };
        let blob = req.path.starts_with("/blob/");
        if !blob
            && req.path.starts_with("/speech-to-text")
            && req.header("api-subscription-key") != Some("sv-key")
        {
            return err(403, "invalid_api_key_error", "Invalid API key");
        }
        if blob && req.header("api-subscription-key").is_some() {
            return Resp::raw(
                400,
                "application/xml",
                "<Error><Code>UnexpectedHeader</Code></Error>",
            );
        }
        let mut j = job.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/audio/long.wav") | ("GET", "/audio/short.wav") => {
                Resp::raw(200, "audio/wav", AUDIO)
            }
            ("POST", "/speech-to-text") => {
                if req.field("model").is_none() || req.multipart().iter().all(|p| p.name != "file")
                {
                    return err(400, "invalid_request_error", "file and model are required");
                }
                Resp::json(
                    200,
                    json!({
                        "request_id": "20240501_sync",
                        "transcript": "नमस्ते, मेरा नाम प्रिया है।",
                        "timestamps": {"words": ["नमस्ते,", "मेरा नाम प्रिया है।"], "start_time_seconds": [0.1, 1.2], "end_time_seconds": [0.9, 2.8]},
                        "diarized_transcript": null,
                        "language_code": "hi-IN",
                        "language_probability": 0.99
                    }),
                )
            }
            ("POST", "/speech-to-text/job/v1") => {
                let p = &req.json().unwrap_or_default()["job_parameters"];
                if p["with_diarization"] != json!(true) || p["model"].as_str().is_none() {
                    return err(
                        422,
                        "invalid_request_error",
                        "job_parameters.with_diarization must be true for this test",
                    );
                }
                j.id = "job-7f3a".into();
                Resp::json(
                    202,
                    json!({"job_id": j.id, "job_state": "Accepted", "job_parameters": p, "storage_container_type": "Azure"}),
                )
            }
            ("POST", "/speech-to-text/job/v1/upload-files") => {
                let b = req.json().unwrap_or_default();
                if b["job_id"] != json!(j.id) {
                    return err(404, "not_found_error", "Job not found");
                }
                let name = b["files"][0].as_str().unwrap_or("").to_string();
                Resp::json(
                    200,
                    json!({"job_id": j.id, "upload_urls": {name.clone(): {"file_url": format!("{base}/blob/in/{}/{name}?sv=2023-11-03&sig=SAS%2Bsecret", j.id), "file_metadata": null}}, "storage_container_type": "Azure"}),
                )
            }
            ("PUT", p) if p.starts_with("/blob/in/") => {
                if req.header("x-ms-blob-type") != Some("BlockBlob") {
                    return Resp::raw(
                        400,
                        "application/xml",
                        "<Error><Code>MissingRequiredHeader</Code></Error>",
                    );
                }
                if req.query("sig") != Some("SAS+secret") {
                    return Resp::raw(
                        403,
                        "application/xml",
                        "<Error><Code>AuthenticationFailed</Code></Error>",
                    );
                }
                j.uploaded = Some((
                    req.header("content-type").unwrap_or("").to_string(),
                    req.body.clone(),
                ));
                Resp::raw(201, "text/plain", "")
            }
            ("POST", p) if p == format!("/speech-to-text/job/v1/{}/start", j.id) => {
                if j.uploaded.is_none() {
                    return err(
                        400,
                        "invalid_request_error",
                        "No files uploaded for this job",
                    );
                }
                j.started = true;
                Resp::json(200, json!({"job_id": j.id, "job_state": "Pending"}))
            }
            ("GET", p) if p == format!("/speech-to-text/job/v1/{}/status", j.id) => {
                if !j.started {
                    return err(400, "invalid_request_error", "Job not started");
                }
                j.polls += 1;
                if j.polls <= running_polls {
                    return Resp::json(
                        200,
                        json!({"job_id": j.id, "job_state": "Running", "error_message": null, "job_details": []}),
                    );
                }
                if final_state == "Failed" {
                    return Resp::json(
                        200,
                        json!({"job_id": j.id, "job_state": "Failed", "error_message": "Audio could not be decoded", "successful_files_count": 0, "failed_files_count": 1, "job_details": [{"state": "Failed", "inputs": [{"file_name": "call.wav"}], "outputs": [], "error_message": "Unsupported codec"}]}),
                    );
                }
                Resp::json(
                    200,
                    json!({"job_id": j.id, "job_state": final_state, "error_message": null, "successful_files_count": 1, "failed_files_count": 0, "job_details": [{"state": "Success", "inputs": [{"file_name": "call.wav"}], "outputs": [{"file_name": "0.json"}]}]}),
                )
            }
            ("POST", "/speech-to-text/job/v1/download-files") => {
                let b = req.json().unwrap_or_default();
                if b["files"] != json!(["0.json"]) {
                    return err(400, "invalid_request_error", "unknown output file");
                }
                Resp::json(
                    200,
                    json!({"job_id": j.id, "download_urls": {"0.json": {"file_url": format!("{base}/blob/out/{}/0.json?sig=out", j.id)}}}),
                )
            }
            ("GET", p) if p.starts_with("/blob/out/") => Resp::json(
                200,
                json!({
                    "request_id": "20240501_batch",
                    "transcript": "नमस्ते, शर्मा मोटर्स। जी, मेरा नाम राहुल वर्मा है।",
                    "language_code": "hi-IN",
                    "diarized_transcript": {"entries": [
                        {"transcript": "नमस्ते, शर्मा मोटर्स।", "start_time_seconds": 0.01, "end_time_seconds": 3.29, "speaker_id": "0"},
                        {"transcript": "जी, मेरा नाम राहुल वर्मा है।", "start_time_seconds": 3.6, "end_time_seconds": 7.9, "speaker_id": "1"}
                    ]}
                }),
            ),
            _ => err(
                404,
                "not_found_error",
                &format!("{} {} not found", req.method, req.path),
            ),
        }
    }
}

#[tokio::test]
async fn sarvam_batch_flow_end_to_end() {
    let server = Server::start(fake_sarvam(2, "Completed")).await;
    let sv = build_stt("sarvam", &settings(&server.base, "sv-key")).unwrap();
    let t = sv
        .transcribe(&stt_req(&server.url("/audio/long.wav"), 240_000))
        .await
        .unwrap();
    assert_eq!(t.provider, "sarvam");
    assert_eq!(t.language.as_deref(), Some("hi"));
    assert_eq!(t.segments.len(), 2);
    assert_eq!(
        (
            t.segments[0].speaker.as_str(),
            t.segments[1].speaker.as_str()
        ),
        ("0", "1")
    );
    assert_eq!(t.segments[1].text, "जी, मेरा नाम राहुल वर्मा है।");
    assert_eq!(t.segments[1].end, 7.9);

    let steps: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        steps,
        [
            "GET /audio/long.wav",
            "POST /speech-to-text/job/v1",
            "POST /speech-to-text/job/v1/upload-files",
            "PUT /blob/in/job-7f3a/call.wav",
            "POST /speech-to-text/job/v1/job-7f3a/start",
            "GET /speech-to-text/job/v1/job-7f3a/status",
            "GET /speech-to-text/job/v1/job-7f3a/status",
            "GET /speech-to-text/job/v1/job-7f3a/status",
            "POST /speech-to-text/job/v1/download-files",
            "GET /blob/out/job-7f3a/0.json",
        ]
    );
    let put = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(put.body, AUDIO);
    assert_eq!(put.header("content-type"), Some("audio/wav"));
    let create = server.requests()[1].json().unwrap();
    assert_eq!(create["job_parameters"]["num_speakers"], 2);
    assert_eq!(create["job_parameters"]["language_code"], "unknown");
}

#[tokio::test]
async fn sarvam_short_audio_uses_the_sync_api() {
    let server = Server::start(fake_sarvam(0, "Completed")).await;
    let sv = build_stt("sarvam", &settings(&server.base, "sv-key")).unwrap();
    let mut req = stt_req(&server.url("/audio/short.wav"), 20_000);
    req.language = Some("hi".into());
    let t = sv.transcribe(&req).await.unwrap();
    assert_eq!(t.text, "नमस्ते, मेरा नाम प्रिया है।");
    assert_eq!(t.segments.len(), 2);
    assert_eq!(t.segments[1].start, 1.2);
    let sync = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(sync.path, "/speech-to-text");
    assert_eq!(sync.field("language_code").as_deref(), Some("hi-IN"));
    assert_eq!(sync.field("model").as_deref(), Some("saaras:v3"));
}

#[tokio::test]
async fn sarvam_errors() {
    let server = Server::start(fake_sarvam(0, "Completed")).await;
    let bad = build_stt("sarvam", &settings(&server.base, "nope")).unwrap();
    permanent(
        bad.transcribe(&stt_req(&server.url("/audio/short.wav"), 20_000))
            .await,
        &[
            "HTTP 403",
            "invalid_api_key_error: Invalid API key",
            "[request_id 20240501_abc]",
        ],
    );

    // Polls are bounded: a job that never finishes is a transient failure naming the job.
    let stuck = Server::start(fake_sarvam(1_000, "Completed")).await;
    let mut s = settings(&stuck.base, "sv-key");
    s.max_polls = 3;
    let sv = build_stt("sarvam", &s).unwrap();
    transient(
        sv.transcribe(&stt_req(&stuck.url("/audio/long.wav"), 0))
            .await,
        &["job job-7f3a", "still Running after 3 status polls"],
    );
    let polls = stuck
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/status"))
        .count();
    assert_eq!(polls, 3);

    let failed = Server::start(fake_sarvam(0, "Failed")).await;
    let sv = build_stt("sarvam", &settings(&failed.base, "sv-key")).unwrap();
    transient(
        sv.transcribe(&stt_req(&failed.url("/audio/long.wav"), 90_000))
            .await,
        &[
            "ended Failed",
            "Audio could not be decoded",
            "Unsupported codec",
        ],
    );

    let partial = Server::start(fake_sarvam(0, "PartiallyCompleted")).await;
    let sv = build_stt("sarvam", &settings(&partial.base, "sv-key")).unwrap();
    sv.transcribe(&stt_req(&partial.url("/audio/long.wav"), 90_000))
        .await
        .unwrap();

    // Shared failures on the sync endpoint, and the batch steps failing midway.
    let server = Server::start(fake_sarvam(0, "Completed")).await;
    let sv = build_stt("sarvam", &settings(&server.base, "sv-key")).unwrap();
    let req = stt_req(&server.url("/audio/short.wav"), 10_000);
    common_failures(
        &server,
        ("POST", "/speech-to-text"),
        Resp::json(400, json!({"error": {"message": "Audio longer than 30 seconds", "code": "invalid_request_error"}})),
        "invalid_request_error: Audio longer than 30 seconds",
        || sv.transcribe(&req),
    )
    .await;
    let long = stt_req(&server.url("/audio/long.wav"), 120_000);
    server.inject(
        "PUT",
        "/blob/in/job-7f3a/call.wav",
        Resp::raw(
            503,
            "application/xml",
            "<Error><Code>ServerBusy</Code></Error>",
        ),
    );
    let e = transient(
        sv.transcribe(&long).await,
        &["job job-7f3a", "uploading audio PUT", "ServerBusy"],
    );
    assert!(
        e.to_string().contains("sig=REDACTED") && !e.to_string().contains("SAS"),
        "{e}"
    );
    server.inject(
        "POST",
        "/speech-to-text/job/v1/download-files",
        Resp::json(200, json!({"download_urls": {}})),
    );
    malformed(
        sv.transcribe(&long).await,
        "no download URL for 0.json",
        "download_urls",
    );
}

// ───────────────────────────── Ollama ─────────────────────────────

fn fake_ollama(
    content: &'static str,
    done_reason: &'static str,
) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    move |req: &Req, _| {
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/api/chat") {
            return Resp::raw(404, "text/plain", "404 page not found");
        }
        let Some(b) = req.json() else {
            return Resp::json(
                400,
                json!({"error": "invalid character 'x' looking for beginning of value"}),
            );
        };
        let model = b["model"].as_str().unwrap_or("");
        if model != "llama3.1" {
            return Resp::json(
                404,
                json!({"error": format!("model \"{model}\" not found, try pulling it first")}),
            );
        }
        if b["stream"] != json!(false)
            || !b["format"].is_object()
            || b["options"]["temperature"] != json!(0)
        {
            return Resp::json(
                400,
                json!({"error": "test fake: expected stream false, a schema format and temperature 0"}),
            );
        }
        Resp::json(
            200,
            json!({
                "model": model, "created_at": "2024-12-06T00:46:58.265747Z",
                "message": {"role": "assistant", "content": content},
                "done_reason": done_reason, "done": true,
                "total_duration": 2254970291u64, "prompt_eval_count": 34, "eval_count": 12
            }),
        )
    }
}

#[tokio::test]
async fn ollama_parses_the_content_string() {
    let server = Server::start(fake_ollama("{\"score\": 7}", "stop")).await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    let out = o.complete_json(&llm_req("llama3.1")).await.unwrap();
    assert_eq!(out.json, json!({"score": 7}));
    assert_eq!(out.raw, "{\"score\": 7}");
    let sent = server.requests()[0].json().unwrap();
    assert_eq!(sent["format"]["required"], json!(["score"]));
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["role"], "user");
}

#[tokio::test]
async fn ollama_invalid_content_is_malformed_with_raw() {
    let server = Server::start(fake_ollama(
        "{\"score\": 7, \"summary\": \"The caller wa",
        "stop",
    ))
    .await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    malformed(
        o.complete_json(&llm_req("llama3.1")).await,
        "cut off",
        "{\"score\": 7, \"summary\": \"The caller wa",
    );

    let server = Server::start(fake_ollama("Sure! Here is the JSON you asked for.", "stop")).await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    malformed(
        o.complete_json(&llm_req("llama3.1")).await,
        "not valid JSON",
        "Sure! Here is the JSON",
    );

    let server = Server::start(fake_ollama("{\"score\": 7", "length")).await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    malformed(
        o.complete_json(&llm_req("llama3.1")).await,
        "done_reason \"length\"",
        "{\"score\": 7",
    );

    let server = Server::start(fake_ollama("[1, 2]", "stop")).await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    malformed(
        o.complete_json(&llm_req("llama3.1")).await,
        "not an object",
        "[1, 2]",
    );
}

#[tokio::test]
async fn ollama_errors() {
    let server = Server::start(fake_ollama("{\"score\": 7}", "stop")).await;
    let o = build_llm("ollama", &settings(&server.base, "")).unwrap();
    permanent(
        o.complete_json(&llm_req("llama9")).await,
        &[
            "HTTP 404",
            "model \"llama9\" not found, try pulling it first",
            "model llama9",
        ],
    );
    // The configured model overrides the request's.
    let mut s = settings(&server.base, "");
    s.model = Some("llama3.1".into());
    let pinned = build_llm("ollama", &s).unwrap();
    pinned.complete_json(&llm_req("gpt-4o")).await.unwrap();

    let req = llm_req("llama3.1");
    common_failures(
        &server,
        ("POST", "/api/chat"),
        Resp::json(
            400,
            json!({"error": "invalid format: expected \"json\" or a JSON schema"}),
        ),
        "invalid format: expected \"json\" or a JSON schema",
        || o.complete_json(&req),
    )
    .await;
}

// ───────────────────────────── OpenAI-compatible chat ─────────────────────────────

fn fake_openai(
    content: Option<&'static str>,
    refusal: Option<&'static str>,
    finish: &'static str,
) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    move |req: &Req, _| {
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/v1/chat/completions") {
            return Resp::json(
                404,
                json!({"error": {"message": "Invalid URL", "type": "invalid_request_error", "param": null, "code": null}}),
            );
        }
        if req.header("authorization") != Some("Bearer sk-test") {
            return Resp::json(
                401,
                json!({"error": {"message": "Incorrect API key provided: sk-bad. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
            );
        }
        let b = req.json().unwrap_or_default();
        let name = b["response_format"]["json_schema"]["name"]
            .as_str()
            .unwrap_or("");
        if b["response_format"]["type"] != "json_schema"
            || name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Resp::json(
                400,
                json!({"error": {"message": format!("Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'. Got {name:?}"), "type": "invalid_request_error", "param": "response_format.json_schema.name", "code": "invalid_value"}}),
            );
        }
        Resp::json(
            200,
            json!({
                "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": b["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 812, "completion_tokens": 9, "total_tokens": 821}
            }),
        )
    }
}

#[tokio::test]
async fn openai_chat_success_and_request_shape() {
    let server = Server::start(fake_openai(Some("{\"score\":7}"), None, "stop")).await;
    let o = build_llm("openai", &settings(&server.base, "sk-test")).unwrap();
    let out = o.complete_json(&llm_req("gpt-4o-mini")).await.unwrap();
    assert_eq!(out.json, json!({"score": 7}));
    let sent = server.requests()[0].json().unwrap();
    let rf = &sent["response_format"]["json_schema"];
    assert_eq!(rf["name"], "QC_scorecard");
    assert_eq!(rf["strict"], true);
    assert_eq!(rf["schema"]["additionalProperties"], false);
    assert_eq!(sent["temperature"], 0);
    assert_eq!(sent["model"], "gpt-4o-mini");

    // A free-form object (scores without properties) cannot be strict without being
    // forced to `{}`: sent non-strict.
    let mut req = llm_req("gpt-4o-mini");
    req.schema = json!({"type": "object", "properties": {"scores": {"type": "object"}, "qc_score": {"type": "integer"}}, "required": ["scores", "qc_score"]});
    o.complete_json(&req).await.unwrap();
    let sent = server.requests()[1].json().unwrap();
    assert_eq!(sent["response_format"]["json_schema"]["strict"], false);
}

#[tokio::test]
async fn openai_chat_cut_off_refusal_and_errors() {
    let server = Server::start(fake_openai(Some("{\"score\":"), None, "length")).await;
    let o = build_llm("openai", &settings(&server.base, "sk-test")).unwrap();
    malformed(
        o.complete_json(&llm_req("m")).await,
        "cut off",
        "{\"score\":",
    );

    let server = Server::start(fake_openai(
        None,
        Some("I can't help with that request."),
        "stop",
    ))
    .await;
    let o = build_llm("openai", &settings(&server.base, "sk-test")).unwrap();
    permanent(
        o.complete_json(&llm_req("m")).await,
        &["refused", "I can't help with that request."],
    );

    let server = Server::start(fake_openai(Some("no json here"), None, "stop")).await;
    let o = build_llm("openai", &settings(&server.base, "sk-test")).unwrap();
    malformed(
        o.complete_json(&llm_req("m")).await,
        "not valid JSON",
        "no json here",
    );

    let server = Server::start(fake_openai(Some("{\"score\":7}"), None, "stop")).await;
    let bad = build_llm("openai", &settings(&server.base, "sk-bad")).unwrap();
    permanent(
        bad.complete_json(&llm_req("m")).await,
        &["HTTP 401", "invalid_api_key: Incorrect API key provided"],
    );

    let o = build_llm("openai", &settings(&server.base, "sk-test")).unwrap();
    let req = llm_req("m");
    common_failures(
        &server,
        ("POST", "/v1/chat/completions"),
        Resp::json(400, json!({"error": {"message": "Invalid schema for response_format 'QC_scorecard'", "type": "invalid_request_error", "param": "response_format", "code": null}})),
        "Invalid schema for response_format 'QC_scorecard'",
        || o.complete_json(&req),
    )
    .await;
}

// ───────────────────────────── LeadSquared ─────────────────────────────

/// Leads by phone; `race_phone` answers its first create with the duplicate exception,
/// as LeadSquared does when a retried create races the first.
fn fake_leadsquared(race_phone: &'static str) -> impl Fn(&Req, &str) -> Resp + Send + Sync {
    let leads: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(vec![(
        race_phone.to_string(),
        "existing-prospect-1".to_string(),
    )]));
    move |req: &Req, _| {
        if req.header("x-lsq-accesskey") != Some("u$access")
            || req.header("x-lsq-secretkey") != Some("secret")
        {
            return Resp::json(
                401,
                json!({"Status": "Error", "ExceptionType": "MXUnAuthorizedException", "ExceptionMessage": "Access key or secret key is invalid."}),
            );
        }
        let mut leads = leads.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v2/LeadManagement.svc/Lead.CreateOrUpdate") => {
                if req.query("postUpdatedLead") != Some("false") {
                    return Resp::json(
                        400,
                        json!({"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "postUpdatedLead missing"}),
                    );
                }
                let attrs = req.json().unwrap_or_default();
                let get = |name: &str| {
                    attrs
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["Attribute"] == name)
                        .and_then(|a| a["Value"].as_str())
                        .map(str::to_string)
                };
                if get("SearchBy").as_deref() != Some("Phone") {
                    return Resp::json(
                        400,
                        json!({"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "SearchBy missing"}),
                    );
                }
                let phone = get("Phone").unwrap_or_default();
                if phone == race_phone {
                    return Resp::json(
                        500,
                        json!({"Status": "Error", "ExceptionType": "MXDuplicateEntryException", "ExceptionMessage": "A Lead with same Phone Number already exists."}),
                    );
                }
                if let Some((_, id)) = leads.iter().find(|(p, _)| *p == phone) {
                    return Resp::json(
                        200,
                        json!({"Status": "Success", "Message": {"Id": id, "AffectedRows": 1, "IsCreated": false}}),
                    );
                }
                let id = format!("prospect-{}", leads.len() + 1);
                leads.push((phone, id.clone()));
                Resp::json(
                    200,
                    json!({"Status": "Success", "Message": {"Id": id, "AffectedRows": 1, "IsCreated": true}}),
                )
            }
            ("GET", "/v2/LeadManagement.svc/RetrieveLeadByPhoneNumber") => {
                let q = req.query("phone").unwrap_or("");
                if !q.chars().all(|c| c.is_ascii_digit()) {
                    return Resp::json(
                        400,
                        json!({"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "phone must contain digits only"}),
                    );
                }
                let found: Vec<Value> = leads
                    .iter()
                    .filter(|(p, _)| p.chars().filter(char::is_ascii_digit).collect::<String>() == q)
                    .flat_map(|(p, id)| [
                        json!({"ProspectID": "older-duplicate", "FirstName": "Anna", "Phone": p, "ModifiedOn": "2023-01-01 09:00:00"}),
                        json!({"ProspectID": id, "FirstName": "Anna", "LastName": "Schreiber", "Phone": p, "ProspectStage": "Prospect", "ModifiedOn": "2024-05-01 10:00:00"}),
                    ])
                    .collect();
                Resp::json(200, Value::Array(found))
            }
            _ => Resp::json(
                404,
                json!({"Status": "Error", "ExceptionType": "MXAPIException", "ExceptionMessage": "Not found"}),
            ),
        }
    }
}

fn lsq(server: &Server, access: &str) -> Arc<dyn CrmAdapter> {
    let mut s = settings(&server.base, access);
    s.api_secret = Some("secret".into());
    build_crm("leadsquared", &s).unwrap()
}

fn lead(phone: &str) -> LeadUpsert {
    LeadUpsert {
        business_id: 3,
        phone: phone.into(),
        first_name: Some("Anna".into()),
        last_name: Some("Schreiber".into()),
        source: "callops".into(),
    }
}

#[tokio::test]
async fn leadsquared_upsert_is_idempotent() {
    let server = Server::start(fake_leadsquared("+4930999")).await;
    let crm = lsq(&server, "u$access");
    let first = crm.upsert_lead(&lead("+4930123456")).await.unwrap();
    assert!(first.created);
    let again = crm.upsert_lead(&lead("+4930123456")).await.unwrap();
    assert_eq!(again.crm_id, first.crm_id);
    assert!(!again.created);
    let attrs = server.requests()[0].json().unwrap();
    assert!(attrs
        .as_array()
        .unwrap()
        .contains(&json!({"Attribute": "FirstName", "Value": "Anna"})));
    assert!(attrs
        .as_array()
        .unwrap()
        .contains(&json!({"Attribute": "Phone", "Value": "+4930123456"})));
}

#[tokio::test]
async fn leadsquared_duplicate_is_looked_up_by_phone() {
    let server = Server::start(fake_leadsquared("+919845098450")).await;
    let crm = lsq(&server, "u$access");
    let r = crm.upsert_lead(&lead("+919845098450")).await.unwrap();
    assert_eq!(
        r.crm_id, "existing-prospect-1",
        "the most recently modified lead wins"
    );
    assert!(!r.created);
    let lookup = &server.requests()[1];
    assert_eq!(
        lookup.path,
        "/v2/LeadManagement.svc/RetrieveLeadByPhoneNumber"
    );
    assert_eq!(lookup.query("phone"), Some("919845098450"));
}

#[tokio::test]
async fn leadsquared_errors() {
    let server = Server::start(fake_leadsquared("+4930999")).await;
    let bad = lsq(&server, "wrong");
    permanent(
        bad.upsert_lead(&lead("+4930123456")).await,
        &[
            "HTTP 401",
            "MXUnAuthorizedException: Access key or secret key is invalid.",
        ],
    );

    let crm = lsq(&server, "u$access");
    permanent(
        crm.upsert_lead(&lead("customer:12")).await,
        &["customer:12", "not a phone number"],
    );

    // A duplicate whose phone finds nothing (duplicate on another field): a person must act.
    let empty = Server::start(|req: &Req, b: &str| {
        if req.path.ends_with("RetrieveLeadByPhoneNumber") {
            return Resp::json(200, json!([]));
        }
        fake_leadsquared("+4930777")(req, b)
    })
    .await;
    permanent(
        lsq(&empty, "u$access").upsert_lead(&lead("+4930777")).await,
        &["duplicate", "no lead has phone 4930777"],
    );

    // HTTP 200 with Status Error.
    server.inject(
        "POST",
        "/v2/LeadManagement.svc/Lead.CreateOrUpdate",
        Resp::json(200, json!({"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "Phone number is invalid"})),
    );
    permanent(
        crm.upsert_lead(&lead("+4930123456")).await,
        &["Phone number is invalid"],
    );

    let l = lead("+4930123456");
    common_failures(
        &server,
        ("POST", "/v2/LeadManagement.svc/Lead.CreateOrUpdate"),
        Resp::json(400, json!({"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "Invalid value for field Phone"})),
        "MXInvalidInputException: Invalid value for field Phone",
        || crm.upsert_lead(&l),
    )
    .await;
}

// ───────────────────────────── simulated providers ─────────────────────────────

fn transcript_lines(segs: &[callops::pipeline::providers::Segment]) -> String {
    segs.iter()
        .map(|s| format!("[{:.1}s] {}: {}", s.start, s.speaker, s.text))
        .collect::<Vec<_>>()
        .join("\n")
}

fn insights_schema() -> Value {
    let mut props = serde_json::Map::new();
    for f in [
        "summary",
        "sentiment",
        "caller_name",
        "caller_name_evidence",
        "appointment_intent",
        "purchase_intent",
        "bant",
        "scores",
        "qc_score",
    ] {
        props.insert(f.into(), json!({"type": "string"}));
    }
    json!({"type": "object", "properties": props})
}

#[tokio::test]
async fn simulated_stt_is_deterministic_per_url() {
    let stt = build_stt("simulated", &ProviderSettings::default()).unwrap();
    let url = sim_audio_url("call-42", "de", Some("Anna Schreiber"), "appointment");
    let a = stt.transcribe(&stt_req(&url, 95_000)).await.unwrap();
    let b = stt.transcribe(&stt_req(&url, 95_000)).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.language.as_deref(), Some("de"));
    assert!(
        a.segments.iter().any(|s| s.speaker == "agent")
            && a.segments.iter().any(|s| s.speaker == "caller")
    );
    assert!(a.segments.last().unwrap().end <= 95.0);
    let other = stt
        .transcribe(&stt_req(
            &sim_audio_url("call-43", "de", Some("Anna Schreiber"), "purchase"),
            95_000,
        ))
        .await
        .unwrap();
    assert_ne!(a.text, other.text);
}

#[test]
fn simulated_scenarios_say_what_they_promise() {
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "de",
            Some("Anna Schreiber"),
            "named",
            "hier ist Frau Schreiber",
        ),
        ("en", Some("John Carter"), "named", "my name is John Carter"),
        (
            "hi",
            Some("Priya Sharma"),
            "named",
            "mera naam Priya Sharma hai",
        ),
        ("he", Some("נועה לוי"), "named", "קוראים לי נועה לוי"),
        ("de", Some("Hans Müller"), "surname_only", "Müller."),
        ("de", None, "greeting_only", "Guten Tag."),
        ("en", None, "greeting_only", "yes speaking"),
        ("hi", None, "greeting_only", "Haan ji, namaste."),
        ("he", None, "greeting_only", "שלום, כן."),
        ("de", None, "anonymous", "lieber nicht sagen"),
        ("de", Some("Anna Schreiber"), "appointment", "Termin"),
        ("en", Some("John Carter"), "appointment", "appointment"),
        ("en", Some("John Carter"), "purchase", "buy"),
        ("de", Some("Anna Schreiber"), "purchase", "kaufen"),
    ];
    for (lang, caller, scenario, expect) in cases {
        let (_, segs) = script(&sim_audio_url("x", lang, *caller, scenario), 60_000);
        let caller_text: Vec<&str> = segs
            .iter()
            .filter(|s| s.speaker == "caller")
            .map(|s| s.text.as_str())
            .collect();
        assert!(
            caller_text.iter().any(|t| t.contains(expect)),
            "{lang}/{scenario}: {expect:?} not said by the caller in {caller_text:?}"
        );
        assert_eq!(segs[0].speaker, "agent", "the agent opens the call");
    }
    let (text, _) = script(
        &sim_audio_url("x", "de", Some("Anna Schreiber"), "anonymous"),
        60_000,
    );
    assert!(
        !text.contains("Schreiber"),
        "anonymous callers never say a name: {text}"
    );
    for s in SCENARIOS {
        let (_, segs) = script(&sim_audio_url("x", "en", Some("John Carter"), s), 60_000);
        assert!(segs.len() >= 4, "{s}");
    }
}

#[test]
fn simulated_llm_reads_the_simulated_calls() {
    // Names with a cue phrase are found (never the agent's), everything else is null;
    // intents follow the scenario.
    let cases: &[(&str, Option<&str>, &str, Option<&str>)] = &[
        ("de", Some("Anna Schreiber"), "named", Some("Schreiber")),
        ("en", Some("John Carter"), "named", Some("John Carter")),
        (
            "hi",
            Some("Priya Sharma"),
            "appointment",
            Some("Priya Sharma"),
        ),
        ("he", Some("נועה לוי"), "purchase", Some("נועה לוי")),
        ("de", Some("Hans Müller"), "surname_only", None),
        ("de", None, "greeting_only", None),
        ("en", None, "greeting_only", None),
        ("hi", None, "greeting_only", None),
        ("he", None, "greeting_only", None),
        ("en", None, "anonymous", None),
    ];
    let mut misses = Vec::new();
    for (lang, caller, scenario, expect) in cases {
        let (_, segs) = script(&sim_audio_url("x", lang, *caller, scenario), 60_000);
        let t = transcript_lines(&segs);
        let v = simulated_agent_output(&insights_schema(), &t);
        if v["caller_name"].as_str() != *expect {
            misses.push(format!(
                "{lang}/{scenario}: expected {expect:?}, got {} from\n{t}",
                v["caller_name"]
            ));
        }
        if let Some(ev) = v["caller_name_evidence"].as_str() {
            assert!(t.contains(ev), "evidence {ev:?} is not a quote");
        }
        assert_eq!(
            v["appointment_intent"],
            json!(*scenario == "appointment"),
            "{lang}/{scenario}"
        );
        assert_eq!(
            v["purchase_intent"],
            json!(*scenario == "purchase"),
            "{lang}/{scenario}"
        );
        assert!(["positive", "neutral", "negative"].contains(&v["sentiment"].as_str().unwrap()));
        let scores = v["scores"].as_object().unwrap();
        assert!(scores.values().all(|s| s.as_u64().is_some_and(|n| n <= 10)));
        assert!(v["qc_score"].as_u64().unwrap() <= 100);
        assert!(v["bant"].is_object());
    }
    assert!(misses.is_empty(), "{}", misses.join("\n\n"));
}

#[tokio::test]
async fn simulated_failure_rates_hold_over_1000_calls() {
    let s = ProviderSettings {
        sim: SimSettings {
            transient_rate: 0.10,
            permanent_rate: 0.05,
            malformed_rate: 0.10,
            seed: 42,
            ..Default::default()
        },
        ..Default::default()
    };
    let stt = build_stt("simulated", &s).unwrap();
    let llm = build_llm("simulated", &s).unwrap();
    let (mut t, mut p, mut ok) = (0, 0, 0);
    let (mut lt, mut lp, mut lm, mut lok) = (0, 0, 0, 0);
    for i in 0..1000 {
        let url = sim_audio_url(&format!("c{i}"), "en", Some("John Carter"), "named");
        match stt.transcribe(&stt_req(&url, 30_000)).await {
            Ok(_) => ok += 1,
            Err(ProviderError::Transient { .. }) => t += 1,
            Err(ProviderError::Permanent { .. }) => p += 1,
            Err(e) => panic!("{e}"),
        }
        let mut req = llm_req("sim");
        req.user = format!("[0.0s] caller: call {i}, my name is John Carter.");
        match llm.complete_json(&req).await {
            Ok(out) => {
                assert_eq!(serde_json::from_str::<Value>(&out.raw).unwrap(), out.json);
                lok += 1
            }
            Err(ProviderError::Transient { .. }) => lt += 1,
            Err(ProviderError::Permanent { .. }) => lp += 1,
            Err(ProviderError::Malformed { raw, .. }) => {
                assert!(
                    serde_json::from_str::<Value>(&raw).is_err(),
                    "malformed output must not parse: {raw}"
                );
                lm += 1
            }
        }
    }
    let near = |n: i32, expect: i32, what: &str| {
        assert!(
            (n - expect).abs() <= expect / 2 + 10,
            "{what}: {n}, expected about {expect}"
        )
    };
    near(t, 100, "stt transient");
    near(p, 50, "stt permanent");
    near(ok, 850, "stt ok");
    near(lt, 100, "llm transient");
    near(lp, 50, "llm permanent");
    // Malformed is drawn among the calls that did not fail: 10% of ~850.
    near(lm, 85, "llm malformed");
    assert_eq!(lt + lp + lm + lok, 1000);
}

#[tokio::test]
async fn simulated_latency_with_jitter() {
    let mut s = ProviderSettings::default();
    s.sim.latency = Duration::from_millis(40);
    s.sim.jitter = 0.5;
    let stt = build_stt("simulated", &s).unwrap();
    let started = Instant::now();
    for i in 0..5 {
        stt.transcribe(&stt_req(
            &sim_audio_url(&format!("l{i}"), "de", None, "anonymous"),
            20_000,
        ))
        .await
        .unwrap();
    }
    let per_call = started.elapsed() / 5;
    assert!(
        per_call >= Duration::from_millis(20) && per_call < Duration::from_millis(200),
        "{per_call:?}"
    );
}

#[tokio::test]
async fn simulated_crm_is_idempotent() {
    let crm = build_crm("simulated", &ProviderSettings::default()).unwrap();
    let a = crm.upsert_lead(&lead("+4930123")).await.unwrap();
    let b = crm.upsert_lead(&lead("+4930123")).await.unwrap();
    assert_eq!(a.crm_id, b.crm_id);
    assert!(a.created && !b.created);
}

// ───────────────────────────── factory ─────────────────────────────

#[test]
fn factory_names_kinds_and_missing_settings() {
    let s = ProviderSettings::default();
    let e = build_stt("assemblyai", &s).err().unwrap();
    assert!(
        e.contains("\"assemblyai\"") && e.contains("deepgram") && e.contains("sarvam"),
        "{e}"
    );
    let e = build_llm("claude", &s).err().unwrap();
    assert!(
        e.contains("\"claude\"") && e.contains("ollama") && e.contains("openai"),
        "{e}"
    );
    let e = build_crm("salesforce", &s).err().unwrap();
    assert!(
        e.contains("\"salesforce\"") && e.contains("leadsquared"),
        "{e}"
    );
    assert!(build_crm("builtin", &s)
        .err()
        .unwrap()
        .contains("built-in leads table"));

    assert!(build_stt("deepgram", &s).err().unwrap().contains("api_key"));
    assert!(build_stt("whisper", &s).err().unwrap().contains("base_url"));
    assert!(build_crm(
        "leadsquared",
        &settings("https://api-in21.leadsquared.com", "a")
    )
    .err()
    .unwrap()
    .contains("api_secret"));
    for kind in ["simulated", "Deepgram", "sarvam", "openai"] {
        let mut k = s.clone();
        k.api_key = Some("k".into());
        assert!(build_stt(kind, &k).is_ok(), "{kind}");
    }
    for kind in ["simulated", "ollama", "openai"] {
        assert!(build_llm(kind, &s).is_ok(), "{kind}");
    }

    let mut secret = s.clone();
    secret.api_key = Some("sk-very-secret".into());
    assert!(!format!("{secret:?}").contains("sk-very-secret"));
}
