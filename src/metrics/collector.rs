//! Gauges that live in the database and broker, read with the console's own queries
//! (`overview_rows_at`, the broker's `queue_stats`, the outbox depth) plus the review
//! backlog's age, and cached: a scrape within `refresh` of the last read reads nothing,
//! concurrent scrapes share one read, and a worker refreshes in the background so the
//! business labels follow volume even when nobody scrapes.

use super::labels::{BusinessLabels, Ranked, OTHER};
use super::{Biz, BizStage, StageOnly};
use crate::domain::stage::Stage;
use crate::queue::DynBroker;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Businesses with their own label (config `metrics.top_businesses`).
    pub top_businesses: usize,
    /// Gauge cache lifetime (config `metrics.refresh_ms`).
    pub refresh: Duration,
    /// Stage SLAs in ms (config `console.sla_*_s`), exported for alert rules.
    pub slas: Vec<(Stage, i64)>,
}

impl CollectorSettings {
    pub fn from_config(c: &crate::config::Config) -> CollectorSettings {
        CollectorSettings {
            top_businesses: c.metrics.top_businesses as usize,
            refresh: Duration::from_millis(c.metrics.refresh_ms.max(100)),
            slas: c.console.stage_slas_ms(),
        }
    }
}

pub struct Collector {
    store: Store,
    broker: DynBroker,
    settings: CollectorSettings,
    /// When the gauges were last read (successfully or not); held across a read so
    /// concurrent scrapes wait for it instead of each running the queries.
    last: tokio::sync::Mutex<Option<Instant>>,
}

/// One read of everything, aggregated per label.
#[derive(Default)]
struct Snapshot {
    labels: BusinessLabels,
    queue_depth: HashMap<(String, Stage), f64>,
    queue_oldest: HashMap<(String, Stage), f64>,
    dlq: HashMap<String, f64>,
    review: HashMap<String, f64>,
    review_oldest: HashMap<String, f64>,
    outbox_depth: f64,
    outbox_oldest: f64,
}

fn max_into<K: std::hash::Hash + Eq>(m: &mut HashMap<K, f64>, k: K, v: f64) {
    let e = m.entry(k).or_insert(0.0);
    *e = e.max(v);
}

impl Collector {
    pub fn new(store: Store, broker: DynBroker, settings: CollectorSettings) -> Arc<Collector> {
        Arc::new(Collector {
            store,
            broker,
            settings,
            last: tokio::sync::Mutex::new(None),
        })
    }

    /// Read again when the cached values are older than `refresh` (what a scrape calls).
    pub async fn refresh_if_stale(&self) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.settings.refresh) {
            return;
        }
        // A failure is counted and logged; the scrape still answers with the last values.
        let _ = self.refresh_locked().await;
        *last = Some(Instant::now());
    }

    /// Read now, whatever the cache holds. A failure keeps the previous values, sets
    /// `callops_metrics_collect_ok` to 0 and counts `callops_metrics_collect_errors_total`.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let mut last = self.last.lock().await;
        let r = self.refresh_locked().await;
        *last = Some(Instant::now());
        r
    }

    async fn refresh_locked(&self) -> anyhow::Result<()> {
        let m = super::global();
        // Bounded: a hung database shows as collect_ok 0, not as a scrape that never answers.
        let read = tokio::time::timeout(Duration::from_secs(10), self.read()).await;
        let read = match read {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "reading metrics gauges took over 10 s (database or broker not answering)"
            )),
        };
        match read {
            Ok(s) => {
                self.apply(s);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "metrics: reading gauges failed; keeping the last values");
                m.gauges.collect_ok.set(0.0);
                m.gauges.collect_errors.inc();
                Err(e)
            }
        }
    }

    async fn read(&self) -> anyhow::Result<Snapshot> {
        let now = crate::now_ms();
        let rows = self.store.overview_rows_at(now).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let (queues, review, outbox) = tokio::join!(
            self.broker.queue_stats(&ids),
            self.store.review_backlog_by_business(),
            crate::queue::outbox::depth(&self.store),
        );
        let (queues, review, (outbox_n, outbox_age)) = (queues?, review?, outbox?);
        let mut backlog: HashMap<i64, u64> = HashMap::new();
        for q in &queues {
            if let Some(b) = q.business_id {
                *backlog.entry(b).or_default() += q.depth;
            }
        }
        let ranked = rows
            .iter()
            .map(|r| Ranked {
                id: r.id,
                name: r.name.clone(),
                volume: r.calls_60.iter().sum::<i64>().max(0) as u64
                    + backlog.get(&r.id).copied().unwrap_or(0)
                    + r.dlq.max(0) as u64
                    + r.review.max(0) as u64,
            })
            .collect();
        let labels = BusinessLabels::rank(ranked, self.settings.top_businesses);
        let mut s = Snapshot {
            outbox_depth: outbox_n as f64,
            outbox_oldest: outbox_age.unwrap_or(0).max(0) as f64 / 1000.0,
            ..Default::default()
        };
        // Every labelled business (and "other") has a value for each stage, 0 included, so
        // alert expressions compare numbers instead of meeting absent series.
        let mut names: Vec<String> = rows.iter().map(|r| labels.for_id(r.id)).collect();
        names.push(OTHER.into());
        for name in &names {
            for stage in Stage::ALL {
                s.queue_depth.insert((name.clone(), stage), 0.0);
                s.queue_oldest.insert((name.clone(), stage), 0.0);
            }
            s.dlq.insert(name.clone(), 0.0);
            s.review.insert(name.clone(), 0.0);
            s.review_oldest.insert(name.clone(), 0.0);
        }
        for q in &queues {
            let (Some(b), Some(stage)) = (q.business_id, q.stage) else {
                continue;
            };
            let key = (labels.for_id(b), stage);
            *s.queue_depth.entry(key.clone()).or_default() += q.depth as f64;
            if let Some(age) = q.oldest_age_ms {
                max_into(&mut s.queue_oldest, key, age.max(0) as f64 / 1000.0);
            }
        }
        for r in &rows {
            *s.dlq.entry(labels.for_id(r.id)).or_default() += r.dlq as f64;
        }
        for r in &review {
            let name = labels.for_id(r.business_id);
            *s.review.entry(name.clone()).or_default() += r.calls as f64;
            max_into(
                &mut s.review_oldest,
                name,
                (now - r.oldest_since).max(0) as f64 / 1000.0,
            );
        }
        s.labels = labels;
        Ok(s)
    }

    fn apply(&self, s: Snapshot) {
        let m = super::global();
        let g = &m.gauges;
        let _swap = m.swap.lock().unwrap_or_else(|p| p.into_inner());
        // Businesses that left the top N (or were deleted) must not keep stale series.
        g.queue_depth.clear();
        g.queue_oldest_age.clear();
        g.dlq_size.clear();
        g.review_backlog.clear();
        g.review_oldest_age.clear();
        for ((business, stage), v) in s.queue_depth {
            let l = BizStage {
                business,
                stage: stage.as_str().into(),
            };
            g.queue_depth.get_or_create(&l).set(v);
        }
        for ((business, stage), v) in s.queue_oldest {
            let l = BizStage {
                business,
                stage: stage.as_str().into(),
            };
            g.queue_oldest_age.get_or_create(&l).set(v);
        }
        for (business, v) in s.dlq {
            g.dlq_size.get_or_create(&Biz { business }).set(v);
        }
        for (business, v) in s.review {
            g.review_backlog.get_or_create(&Biz { business }).set(v);
        }
        for (business, v) in s.review_oldest {
            g.review_oldest_age.get_or_create(&Biz { business }).set(v);
        }
        g.outbox_depth.set(s.outbox_depth);
        g.outbox_oldest_age.set(s.outbox_oldest);
        for (stage, ms) in &self.settings.slas {
            g.stage_sla
                .get_or_create(&StageOnly {
                    stage: stage.as_str().into(),
                })
                .set(*ms as f64 / 1000.0);
        }
        g.collect_ok.set(1.0);
        g.last_collect.set(crate::now_ms() as f64 / 1000.0);
        *m.labels.write().unwrap_or_else(|p| p.into_inner()) = s.labels;
    }

    /// Refresh every `refresh` until `shutdown` turns true (a worker runs this so the
    /// business labels are current when its counters are recorded).
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        loop {
            let _ = self.refresh().await;
            tokio::select! {
                _ = tokio::time::sleep(self.settings.refresh) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            if *shutdown.borrow() {
                return Ok(());
            }
        }
    }
}
