//! `/metrics` over HTTP (axum): mounted by `callops worker --metrics-addr` and, at merge,
//! by `callops serve`.

use super::Collector;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// What Prometheus asks for and this answers (OpenMetrics text; Prometheus 2.x and later
/// negotiate it).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router answering `GET /metrics` with every metric of this process. With a collector,
/// a scrape first refreshes the database/broker gauges when their cache has expired.
pub fn metrics_router(collector: Option<Arc<Collector>>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(collector)
}

async fn scrape(State(collector): State<Option<Arc<Collector>>>) -> impl IntoResponse {
    if let Some(c) = &collector {
        c.refresh_if_stale().await;
    }
    (
        [(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)],
        super::global().encode(),
    )
}

/// Bind `addr` now (so a taken port fails the command at start, naming the address) and
/// serve `/metrics` until `shutdown` turns true. Returns the bound address (port 0 picks one).
pub async fn serve(
    addr: &str,
    collector: Option<Arc<Collector>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} for /metrics: {e} (use --metrics-addr HOST:PORT with a free port, e.g. 127.0.0.1:9464)"
        )
    })?;
    let bound = listener.local_addr()?;
    let app = metrics_router(collector);
    let task = tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok((bound, task))
}
