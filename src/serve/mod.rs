//! `callops serve`: provider webhooks at `POST /hooks/{business}/{provider}`.
//!
//! Order of checks, cheapest first, nothing written before the signature holds:
//! known provider (404) → existing business (404) → per-business rate limit (429 +
//! Retry-After) → body size (413) → the business's secret for the provider (401 when none
//! is configured) → signature and freshness (401) → payload (400) → one transaction
//! (`accept`), then 2xx. A database that fails answers 503 so the provider retries.
//!
//! axum (tokio-native, hyper-based, from the tokio project): routing, extractors and a body
//! cap in a few lines, with default features off.

pub mod accept;
pub mod counters;
pub mod limit;
pub mod providers;
pub mod signature;

pub use counters::{webhook_counts_snapshot, WebhookCount};

use crate::config::Config;
use crate::pipeline::ingest::validate::Limits;
use crate::queue::Broker;
use crate::store::webhooks::EndpointHit;
use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;

/// What `serve` needs, shared by every request.
pub struct ServeState {
    pub store: Store,
    pub broker: Arc<dyn Broker>,
    pub limiter: limit::RateLimiter,
    pub limits: Limits,
    /// Scheme and host providers call (e.g. `https://hooks.example.com`): Twilio signs the
    /// full URL, which a proxy in front of serve changes. None: `http://` + the Host header.
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
}

/// The router, for `run` and for tests that bind their own listener.
pub fn router(state: Arc<ServeState>) -> Router {
    let cap = state.max_body_bytes;
    Router::new()
        .route("/hooks/{business}/{provider}", post(hook))
        .layer(DefaultBodyLimit::max(cap))
        .with_state(state)
}

struct Answer {
    status: StatusCode,
    result: &'static str,
    reason: String,
    call_id: Option<i64>,
    retry_after: Option<u64>,
    /// The verified event's type, kept on the endpoint's health row.
    event_type: Option<String>,
}

impl Answer {
    fn new(status: StatusCode, result: &'static str, reason: impl Into<String>) -> Answer {
        Answer {
            status,
            result,
            reason: reason.into(),
            call_id: None,
            retry_after: None,
            event_type: None,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({
            "result": self.result,
            "reason": self.reason,
            "call_id": self.call_id,
        }));
        let mut r = (self.status, body).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

async fn hook(
    State(st): State<Arc<ServeState>>,
    Path((business, provider_name)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(provider) = providers::provider(&provider_name) else {
        counters::count("(unknown)", "(unknown)", "unknown_provider");
        return Answer::new(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            format!(
                "no webhook handler for provider {:?}; known: {}",
                crate::pipeline::ingest::validate::shown(&provider_name),
                crate::store::webhooks::WEBHOOK_PROVIDERS.join(", ")
            ),
        )
        .into_response();
    };
    let pname = provider.name();
    let b = match st.store.business_by_name(&business).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            counters::count("(unknown)", pname, "unknown_business");
            return Answer::new(
                StatusCode::NOT_FOUND,
                "unknown_business",
                format!(
                    "no business named {:?} (callops business add NAME)",
                    crate::pipeline::ingest::validate::shown(&business)
                ),
            )
            .into_response();
        }
        Err(e) => return unavailable(pname, &e.to_string()),
    };
    let answer = handle(&st, &b, provider, &uri, &headers, body).await;
    counters::count(&b.name, pname, answer.result);
    // The endpoint's health row: best effort, after the answer's own commit.
    let verified = matches!(
        answer.result,
        "created" | "waiting" | "duplicate" | "ignored" | "outbound"
    );
    let hit = EndpointHit {
        verified,
        event_type: answer.event_type.as_deref(),
        result: answer.result,
        reason: (!verified).then_some(answer.reason.as_str()),
    };
    if answer.result != "error" {
        if let Err(e) = st.store.record_webhook_hit(b.id, pname, &hit).await {
            tracing::warn!(error = %e, "webhook: could not record the endpoint's last result");
        }
    }
    tracing::info!(
        business = %b.name,
        provider = pname,
        result = answer.result,
        status = answer.status.as_u16(),
        call_id = answer.call_id,
        reason = %answer.reason,
        "webhook"
    );
    answer.into_response()
}

fn unavailable(provider: &str, why: &str) -> Response {
    counters::count("(unknown)", provider, "error");
    tracing::error!(error = %why, "webhook: database unavailable");
    Answer::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "error",
        "the database is unavailable; nothing was written, the provider retries",
    )
    .into_response()
}

async fn handle(
    st: &ServeState,
    b: &crate::store::businesses::Business,
    provider: &'static dyn providers::WebhookProvider,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer {
    let pname = provider.name();
    if let Err(wait) = st.limiter.take(b.id) {
        let mut a = Answer::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("business {:?} is over its webhook rate limit ([serve] rate_per_minute); retry in {wait}s", b.name),
        );
        a.retry_after = Some(wait);
        return a;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Answer::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "body over {} bytes ([serve] max_body_bytes)",
                    st.max_body_bytes
                ),
            )
        }
        Err(e) => {
            return Answer::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("cannot read the body: {e}"),
            )
        }
    };
    let secret_ref = match st.store.webhook_secret_ref(b.id, pname).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Answer::new(
                StatusCode::UNAUTHORIZED,
                "not_configured",
                format!(
                    "business {:?} has no {pname} webhook secret: callops business set NAME --{pname}-{}",
                    b.name,
                    secret_flag(pname)
                ),
            )
        }
        Err(e) => return error(&e.to_string()),
    };
    let secret = match crate::pipeline::providers::registry::resolve_secret(
        &secret_ref,
        &format!("{pname} webhook secret"),
    ) {
        Ok(s) => s,
        Err(why) => {
            // Our misconfiguration, not the caller's: 500 so the provider retries later.
            tracing::error!(business = %b.name, provider = pname, error = %why, "webhook secret unavailable");
            return Answer::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not_configured",
                format!(
                    "the {pname} webhook secret of this business cannot be read by serve: {why}"
                ),
            );
        }
    };
    let req = providers::Incoming {
        headers,
        body: &body,
        url: full_url(st.public_url.as_deref(), headers, uri),
        now_ms: crate::now_ms(),
    };
    if let Err(refused) = provider.verify(&req, &secret) {
        let result = match refused {
            signature::Refused::Signature(_) => "bad_signature",
            signature::Refused::Stale(_) => "stale",
        };
        return Answer::new(StatusCode::UNAUTHORIZED, result, refused.reason());
    }
    if pname == "retell" {
        if let Some(a) = outbound_status(st, b, &body).await {
            return a;
        }
    }
    let ev = match provider
        .parse(&req)
        .and_then(|ev| accept::check(b, pname, &ev, &st.limits).map(|()| ev))
    {
        Ok(ev) => ev,
        Err(why) => return Answer::new(StatusCode::BAD_REQUEST, "malformed", why),
    };
    match accept::accept(&st.store, st.broker.as_ref(), b, pname, &ev).await {
        Ok(done) => {
            let (reason, call_id) = match &done {
                accept::Accepted::Created { call_id } => {
                    ("call created with its sync job".to_string(), Some(*call_id))
                }
                accept::Accepted::Waiting(why) => (why.to_string(), None),
                accept::Accepted::Duplicate { call_id } => {
                    ("already received: no change".to_string(), *call_id)
                }
                accept::Accepted::Ignored(why) => (why.clone(), None),
            };
            let mut a = Answer::new(StatusCode::OK, done.result(), reason);
            a.call_id = call_id;
            a.event_type = Some(ev.event_type.clone());
            a
        }
        Err(e) => error(&format!("{e:#}")),
    }
}

/// A verified Retell event about one of our own AI calls (issue 16): its status updates the
/// outbound call, and when it ended its conversation enters the pipeline as an outbound
/// call linked to the lead (`apply_status`, idempotent). `None`: not an outbound call of
/// this business, handled as an inbound call.
async fn outbound_status(
    st: &ServeState,
    b: &crate::store::businesses::Business,
    body: &[u8],
) -> Option<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let call = &v["call"];
    let provider_call_id = call["call_id"].as_str()?;
    match st
        .store
        .outbound_by_provider_id(b.id, provider_call_id)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return None,
        Err(e) => return Some(error(&e.to_string())),
    }
    let report = crate::pipeline::providers::voice::retell::report_of(call);
    let applied = crate::pipeline::outbound::apply_status(
        &st.store,
        st.broker.as_ref(),
        b.id,
        provider_call_id,
        &report,
    )
    .await;
    Some(match applied {
        Ok(applied) => {
            let mut a = Answer::new(
                StatusCode::OK,
                "outbound",
                format!("outbound call {provider_call_id}: {applied:?}"),
            );
            a.event_type = v["event"].as_str().map(str::to_string);
            a
        }
        Err(e) => error(&format!("{e:#}")),
    })
}

fn secret_flag(provider: &str) -> &'static str {
    match provider {
        "telnyx" => "public-key env:NAME",
        "twilio" => "auth-token env:NAME",
        _ => "key env:NAME",
    }
}

fn error(why: &str) -> Answer {
    tracing::error!(error = %crate::redact::redact_text(why), "webhook: not committed");
    Answer::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "error",
        "the event could not be committed; nothing was written, the provider retries",
    )
}

/// The URL the provider called: `[serve] public_url` (behind a proxy) or the Host header.
fn full_url(public_url: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        }
    }
}

/// `callops serve`: open the store and broker, bind, serve until Ctrl-C / SIGTERM. Prints
/// `listening on http://ADDR` on stdout once bound (port 0 picks a free port).
pub async fn run(config: &Config, listen: Option<&str>) -> anyhow::Result<()> {
    let rt = crate::pipeline::Runtime::open(config).await?;
    let c = &config.serve;
    let addr = listen.unwrap_or(&c.listen).to_string();
    let state = Arc::new(ServeState {
        store: rt.ctx.store.clone(),
        broker: rt.ctx.broker.clone(),
        limiter: limit::RateLimiter::new(c.rate_per_minute as u32, c.burst as u32),
        limits: Limits::from_config(&config.ingest),
        public_url: Some(c.public_url.trim().to_string()).filter(|u| !u.is_empty()),
        max_body_bytes: c.max_body_bytes as usize,
    });
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e} (set --listen or [serve] listen)")
    })?;
    let bound = listener.local_addr()?;
    println!("listening on http://{bound}");
    eprintln!(
        "serve: webhooks at http://{bound}/hooks/{{business}}/{{retell|telnyx|twilio}}, broker {}, database {} (Ctrl-C to stop)",
        rt.ctx.broker.kind(),
        crate::store::redact_url(rt.ctx.store.url())
    );
    // /metrics beside the hooks (issue 15): webhook counters, queue depths, DLQ, review.
    let collector = crate::metrics::Collector::new(
        rt.ctx.store.clone(),
        rt.ctx.broker.clone(),
        crate::metrics::CollectorSettings::from_config(config),
    );
    let (_collector_stop, collector_shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(collector.clone().run(collector_shutdown));
    let app = router(state).merge(crate::metrics::metrics_router(Some(collector)));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        })
        .await?;
    rt.ctx.broker.close().await;
    Ok(())
}
