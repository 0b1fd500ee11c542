//! Prometheus metrics: one process-wide registry (prometheus-client, the official Rust
//! client) that the pipeline records into and `/metrics` encodes.
//!
//! - Counters and histograms are recorded where things happen: stage runs (worker),
//!   provider requests (`pipeline::providers::timed`), linking outcomes (link stage),
//!   webhook requests (`callops serve`, through [`webhook_request`]).
//! - Gauges that live in the database or broker (queue depth and oldest age, DLQ, review
//!   backlog, outbox) are read by [`collector::Collector`] from the console's own read
//!   queries, cached for `metrics.refresh_ms`.
//!
//! Cardinality: the `business` label is the business's name for the top
//! `metrics.top_businesses` businesses by volume and `"other"` for every other one, so the
//! number of series is bounded by N + 1 per metric and label combination whatever the
//! number of businesses (or the names an unauthenticated webhook URL carries).

pub mod collector;
pub mod http;
mod labels;

pub use collector::{Collector, CollectorSettings};
pub use http::{metrics_router, serve};
pub use labels::OTHER;

use crate::domain::stage::Stage;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type F64Gauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BizStageOutcome {
    business: String,
    stage: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BizStage {
    business: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProviderLabels {
    business: String,
    kind: String,
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WebhookLabels {
    business: String,
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LinkLabels {
    business: String,
    method: String,
    anonymous: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Biz {
    business: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StageOnly {
    stage: String,
}

/// Seconds, 5 ms to ~20 min: provider calls and stage runs span that whole range.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.5, 12))
}

/// Gauges the collector sets from the database and broker.
pub(crate) struct Gauges {
    pub queue_depth: Family<BizStage, F64Gauge>,
    pub queue_oldest_age: Family<BizStage, F64Gauge>,
    pub dlq_size: Family<Biz, F64Gauge>,
    pub review_backlog: Family<Biz, F64Gauge>,
    pub review_oldest_age: Family<Biz, F64Gauge>,
    pub outbox_depth: F64Gauge,
    pub outbox_oldest_age: F64Gauge,
    pub stage_sla: Family<StageOnly, F64Gauge>,
    pub collect_ok: F64Gauge,
    pub last_collect: F64Gauge,
    pub collect_errors: Counter,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    stage_runs: Family<BizStageOutcome, Counter>,
    stage_seconds: HistogramFamily<BizStage>,
    provider_seconds: HistogramFamily<ProviderLabels>,
    webhook_requests: Family<WebhookLabels, Counter>,
    link_outcomes: Family<LinkLabels, Counter>,
    pub(crate) gauges: Gauges,
    pub(crate) labels: RwLock<labels::BusinessLabels>,
    /// Held while the collector swaps gauge values and while a scrape encodes, so a scrape
    /// never sees a half-refreshed set of gauges.
    pub(crate) swap: Mutex<()>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics (created on first use).
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("callops");
        let stage_runs = Family::<BizStageOutcome, Counter>::default();
        r.register(
            "stage_runs",
            "Stage runs finished, by business, stage and outcome (completed, review, done, retrying, dead, duplicate, deferred, unsettled)",
            stage_runs.clone(),
        );
        let stage_seconds: HistogramFamily<BizStage> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        r.register(
            "stage_duration_seconds",
            "Time from taking a delivery to settling it, by business and stage",
            stage_seconds.clone(),
        );
        let provider_seconds: HistogramFamily<ProviderLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        r.register(
            "provider_request_duration_seconds",
            "Provider requests (kind stt, llm or crm) by business, provider and result (ok, transient, permanent, malformed)",
            provider_seconds.clone(),
        );
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        r.register(
            "webhook_requests",
            "Provider webhook requests by business, provider and result (e.g. accepted, duplicate, bad_signature, stale, malformed, rate_limited)",
            webhook_requests.clone(),
        );
        let link_outcomes = Family::<LinkLabels, Counter>::default();
        r.register(
            "link_outcomes",
            "Link stage outcomes by business, method (phone, lead_id, name, spoken_phone, new_customer, temporary, review, kept) and whether the caller's number was withheld",
            link_outcomes.clone(),
        );
        let gauges = Gauges {
            queue_depth: Default::default(),
            queue_oldest_age: Default::default(),
            dlq_size: Default::default(),
            review_backlog: Default::default(),
            review_oldest_age: Default::default(),
            outbox_depth: Default::default(),
            outbox_oldest_age: Default::default(),
            stage_sla: Default::default(),
            collect_ok: Default::default(),
            last_collect: Default::default(),
            collect_errors: Default::default(),
        };
        r.register(
            "queue_depth",
            "Jobs queued (ready, delayed and in flight) per business and stage",
            gauges.queue_depth.clone(),
        );
        r.register(
            "queue_oldest_age_seconds",
            "Age of the oldest ready job per business and stage",
            gauges.queue_oldest_age.clone(),
        );
        r.register(
            "dlq_size",
            "Dead jobs not yet retried or discarded, per business",
            gauges.dlq_size.clone(),
        );
        r.register(
            "review_backlog",
            "Calls waiting in manual review, per business",
            gauges.review_backlog.clone(),
        );
        r.register(
            "review_oldest_age_seconds",
            "How long the oldest call in review has waited, per business",
            gauges.review_oldest_age.clone(),
        );
        r.register(
            "outbox_depth",
            "Committed jobs not yet published to RabbitMQ (always 0 on the database broker)",
            gauges.outbox_depth.clone(),
        );
        r.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest outbox row",
            gauges.outbox_oldest_age.clone(),
        );
        r.register(
            "stage_sla_seconds",
            "The stage SLA (config console.sla_*_s), for alert rules to compare ages with",
            gauges.stage_sla.clone(),
        );
        r.register(
            "metrics_collect_ok",
            "1 when the last read of database/broker gauges succeeded, 0 when it failed (the gauges then keep their last values)",
            gauges.collect_ok.clone(),
        );
        r.register(
            "metrics_last_collect_timestamp_seconds",
            "When database/broker gauges were last read successfully (Unix seconds)",
            gauges.last_collect.clone(),
        );
        r.register(
            "metrics_collect_errors",
            "Failed reads of database/broker gauges",
            gauges.collect_errors.clone(),
        );
        Metrics {
            registry: r,
            stage_runs,
            stage_seconds,
            provider_seconds,
            webhook_requests,
            link_outcomes,
            gauges,
            labels: RwLock::new(labels::BusinessLabels::default()),
            swap: Mutex::new(()),
        }
    }

    fn business_by_id(&self, id: i64) -> String {
        self.labels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .for_id(id)
    }

    fn business_by_name(&self, name: &str) -> String {
        self.labels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .for_name(name)
    }

    /// The registry in the OpenMetrics text format (what `/metrics` answers).
    pub fn encode(&self) -> String {
        let _swap = self.swap.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A stage run finished: `outcome` is what the worker did with the delivery.
pub fn stage_finished(business_id: i64, stage: Stage, outcome: &str, took: Duration) {
    let m = global();
    let business = m.business_by_id(business_id);
    m.stage_runs
        .get_or_create(&BizStageOutcome {
            business: business.clone(),
            stage: stage.as_str().into(),
            outcome: outcome.into(),
        })
        .inc();
    m.stage_seconds
        .get_or_create(&BizStage {
            business,
            stage: stage.as_str().into(),
        })
        .observe(took.as_secs_f64());
}

/// One provider request: `kind` is stt, llm or crm; `provider` the client's name;
/// `result` ok, transient, permanent or malformed.
pub fn provider_request(
    business_id: i64,
    kind: &str,
    provider: &str,
    result: &str,
    took: Duration,
) {
    let m = global();
    m.provider_seconds
        .get_or_create(&ProviderLabels {
            business: m.business_by_id(business_id),
            kind: kind.into(),
            provider: labels::bounded_value(provider),
            result: result.into(),
        })
        .observe(took.as_secs_f64());
}

/// One webhook request answered by `callops serve`. `business` is the name in the URL
/// (bounded: a business outside the top N, or one that does not exist, counts as "other");
/// `result` is a short word such as accepted, duplicate, bad_signature, stale, malformed,
/// unknown_business or rate_limited.
pub fn webhook_request(business: &str, provider: &str, result: &str) {
    let m = global();
    m.webhook_requests
        .get_or_create(&WebhookLabels {
            business: m.business_by_name(business),
            provider: labels::bounded_value(provider),
            result: labels::bounded_value(result),
        })
        .inc();
}

/// The link stage decided: `method` is how the customer was found (or "review").
pub fn link_outcome(business_id: i64, method: &str, anonymous: bool) {
    let m = global();
    m.link_outcomes
        .get_or_create(&LinkLabels {
            business: m.business_by_id(business_id),
            method: labels::bounded_value(method),
            anonymous: if anonymous { "true" } else { "false" }.into(),
        })
        .inc();
}
