//! Read models for the console: the few aggregate queries one refresh runs, each shaped so
//! it stays an index range scan (or a scan of the last hour of throughput) at 1,000
//! businesses and millions of calls. Every query takes `now` explicitly so the
//! screenshots and snapshot tests can render a fixed moment.

use super::audit::AuditEntry;
use super::businesses::Business;
use super::calls::{row_to_call, stuck_sql, Call};
use super::customers::{Customer, Lead};
use super::events::CallEvent;
use super::transcripts::{StoredAnalysis, StoredTranscript};
use super::{col, Ctx, DeadJob, DeadJobFilter, Result, Store, StoreError};
use crate::domain::signature::error_signature;
use crate::domain::stage::{CallState, Stage};
use crate::queue::QueueStat;
use serde::Serialize;
use std::collections::HashMap;

pub mod metrics;
pub mod review;
mod throughput_agg;

pub use throughput_agg::MinuteCache;
use throughput_agg::ThroughputAgg;

/// Dead jobs still dead per business (NULL: jobs of no business), for the overview and
/// the header; an index-only scan of `dead_jobs_dead_by_business`.
pub const DEAD_COUNTS_SQL: &str =
    "SELECT business_id, COUNT(*) AS n FROM dead_jobs WHERE status = 'dead' GROUP BY business_id";

/// The overview's rate windows, in minutes.
pub const WINDOWS_MIN: [i64; 4] = [1, 5, 15, 60];

/// Index of a stage in `Stage::ALL` (the per-stage arrays below use it).
pub fn stage_index(s: Stage) -> usize {
    Stage::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// One business in the overview.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BizRow {
    pub id: i64,
    pub name: String,
    pub active: bool,
    /// Calls per minute completed by each stage (`Stage::ALL` order) over each window of
    /// `WINDOWS_MIN`.
    pub rates: [[f64; 4]; 5],
    /// Completions and failed attempts per stage over the last 60 minutes.
    pub calls_60: [i64; 5],
    pub failures_60: [i64; 5],
    /// Minutes of audio transcribed in the last hour.
    pub audio_min_per_hour: f64,
    /// Failed attempts / (completions + failed attempts), all stages, last 60 minutes.
    pub error_rate: f64,
    pub dlq: i64,
    pub review: i64,
    /// Calls finished (notify completions) per minute, oldest first, 60 values.
    pub spark: Vec<u64>,
    /// From the broker: jobs per stage queue, and the oldest waiting job.
    pub backlog: [u64; 5],
    pub oldest_job_age_ms: Option<i64>,
    /// When the broker figures above were read (epoch ms); `None`: never read, so
    /// `backlog` and `oldest_job_age_ms` are unknown, not zero.
    pub queues_at: Option<i64>,
}

impl BizRow {
    pub fn backlog_total(&self) -> u64 {
        self.backlog.iter().sum()
    }
    pub fn failures_total(&self) -> i64 {
        self.failures_60.iter().sum()
    }
}

/// Calls older than their stage's SLA.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StuckData {
    /// The oldest `limit` stuck calls (per stage, then merged), oldest first.
    pub calls: Vec<Call>,
    /// How many are stuck in all, per stage (`Stage::ALL` order): may exceed `calls.len()`.
    pub by_stage: [i64; 5],
    pub limit: u32,
    /// SLA per stage in ms, as queried.
    pub slas_ms: [i64; 5],
}

impl StuckData {
    pub fn total(&self) -> i64 {
        self.by_stage.iter().sum()
    }
}

/// Stuck calls folded by error signature (over the rows fetched).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StuckGroup {
    pub signature: String,
    pub count: usize,
    pub stages: Vec<Stage>,
    pub oldest_since: i64,
}

/// Group calls by the signature of their last error; calls without an error group as
/// "waiting (no error)": a call that sits without failing is a different problem (no
/// worker, or a lost job) and must not hide among failures.
pub fn stuck_groups(calls: &[Call]) -> Vec<StuckGroup> {
    let mut map: HashMap<String, StuckGroup> = HashMap::new();
    for c in calls {
        let sig = signature_of(c);
        let g = map.entry(sig.clone()).or_insert_with(|| StuckGroup {
            signature: sig,
            count: 0,
            stages: vec![],
            oldest_since: c.state_since,
        });
        g.count += 1;
        if !g.stages.contains(&c.stage) {
            g.stages.push(c.stage);
            g.stages.sort();
        }
        g.oldest_since = g.oldest_since.min(c.state_since);
    }
    let mut v: Vec<StuckGroup> = map.into_values().collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.oldest_since.cmp(&b.oldest_since))
    });
    v
}

/// The group key of a stuck call.
pub fn signature_of(c: &Call) -> String {
    match c.last_error.as_deref() {
        Some(e) if !e.trim().is_empty() => error_signature(e),
        _ => "waiting (no error): no worker took it, or its job was lost".into(),
    }
}

/// One business up close: per-stage series for charts, states, settings.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BusinessDetail {
    pub business: Business,
    /// Per stage: (completions, failures) per minute, oldest first, 60 values.
    pub series: Vec<Vec<(u64, u64)>>,
    pub rates: [[f64; 4]; 5],
    /// Calls of this business per (stage, state).
    pub states: Vec<(Stage, CallState, i64)>,
    /// Calls the lead filter kept out of the CRM (visible so a filter that blocks
    /// everything cannot hide).
    pub lead_filtered: i64,
    pub dlq: i64,
    /// Its provider webhook endpoints and when each last received an event (issue 15).
    pub webhooks: Vec<super::webhooks::WebhookEndpoint>,
}

/// Everything about one call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallDetail {
    pub call: Call,
    pub business_name: Option<String>,
    pub transcript: Option<StoredTranscript>,
    pub analyses: Vec<StoredAnalysis>,
    pub events: Vec<CallEvent>,
    pub customer: Option<Customer>,
    pub lead: Option<Lead>,
    /// Dead jobs of this call (any status), newest first.
    pub dead_jobs: Vec<DeadJob>,
}

/// The DLQ list: newest dead jobs and how many there are.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DlqData {
    pub rows: Vec<DeadJob>,
    pub total: i64,
}

/// Per-minute rate over a window of `window_min` complete minutes plus the part of the
/// current minute that has passed: dividing a partly filled bucket by a whole minute would
/// under-report the rate for most of every minute, and leaving it out would lag a minute.
fn per_minute(sum: i64, window_min: i64, now: i64) -> f64 {
    let elapsed_min = window_min as f64 + (now.rem_euclid(60_000) as f64 / 60_000.0);
    sum as f64 / elapsed_min
}

/// First bucket (minute start) of each window of `WINDOWS_MIN`.
fn window_starts(now: i64) -> [i64; 4] {
    let this_minute = super::throughput::minute_of(now);
    WINDOWS_MIN.map(|w| this_minute - w * 60_000)
}

/// First bucket of the 60-slot series (the last slot is the current minute).
fn series_start(now: i64) -> i64 {
    super::throughput::minute_of(now) - 59 * 60_000
}

impl Store {
    /// Calls waiting in review, per business.
    pub async fn review_counts_by_business(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(super::calls::REVIEW_COUNTS_SQL)
            .fetch_all(&self.pool)
            .await
            .ctx(|| "counting review calls by business".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "business_id")?, col(r, "n")?)))
            .collect()
    }

    /// The overview's rows (broker columns empty: the caller merges queue stats in).
    /// Four queries, run concurrently: businesses, one aggregate over the last hour of
    /// throughput (rates, failures, audio and the notify sparkline folded into a string per
    /// business so 60 rows per business do not cross the wire), dead jobs and review counts.
    pub async fn overview_rows_at(&self, now: i64) -> Result<Vec<BizRow>> {
        Ok(self.overview_at(now).await?.0)
    }

    /// The overview's rows and the header's counters (dead jobs still dead, calls in
    /// review), the latter summed from the rows' own per-business counts instead of
    /// counting the same index entries a second time.
    pub async fn overview_at(&self, now: i64) -> Result<(Vec<BizRow>, (i64, i64))> {
        let dead_counts = async {
            // Grouped with the jobs of no business, so the total is every dead job.
            let rows = sqlx::query(DEAD_COUNTS_SQL)
                .fetch_all(&self.pool)
                .await
                .ctx(|| "counting dead jobs by business".into())?;
            rows.iter()
                .map(|r| Ok((col::<Option<i64>>(r, "business_id")?, col::<i64>(r, "n")?)))
                .collect::<Result<Vec<_>>>()
        };
        // Only what a row shows of a business (its settings are the business view's).
        let businesses = async {
            let rows = sqlx::query("SELECT id, name, active FROM businesses ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .ctx(|| "listing businesses".into())?;
            rows.iter()
                .map(|r| {
                    Ok((
                        col::<i64>(r, "id")?,
                        col::<String>(r, "name")?,
                        col::<i64>(r, "active")? != 0,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        };
        let (businesses, throughput, dead, review) = tokio::try_join!(
            businesses,
            self.throughput_aggregate_cached(now),
            dead_counts,
            self.review_counts_by_business(),
        )?;
        let counters = (
            dead.iter().map(|(_, n)| n).sum::<i64>(),
            // calls.business_id is never NULL: every review call is in a group.
            review.iter().map(|(_, n)| n).sum::<i64>(),
        );
        let dead: HashMap<i64, i64> = dead
            .into_iter()
            .filter_map(|(b, n)| Some((b?, n)))
            .collect();
        let review: HashMap<i64, i64> = review.into_iter().collect();
        let mut by_biz: HashMap<i64, Vec<ThroughputAgg>> = HashMap::new();
        for t in throughput {
            by_biz.entry(t.business_id).or_default().push(t);
        }
        let mut out = Vec::with_capacity(businesses.len());
        for (id, name, active) in businesses {
            let mut row = BizRow {
                id,
                name,
                active,
                dlq: *dead.get(&id).unwrap_or(&0),
                review: *review.get(&id).unwrap_or(&0),
                spark: vec![0; 60],
                ..Default::default()
            };
            let (mut calls, mut fails) = (0i64, 0i64);
            for t in by_biz.remove(&id).unwrap_or_default() {
                let Ok(stage) = t.stage.parse::<Stage>() else {
                    continue;
                };
                let i = stage_index(stage);
                for (w, sum) in t.sums.iter().enumerate() {
                    row.rates[i][w] = per_minute(*sum, WINDOWS_MIN[w], now);
                }
                row.calls_60[i] = t.sums[3];
                row.failures_60[i] = t.failures;
                calls += t.sums[3];
                fails += t.failures;
                if stage == Stage::Transcribe {
                    row.audio_min_per_hour = t.audio_seconds as f64 / 60.0;
                }
                if stage == Stage::Notify {
                    // 61 buckets since the window start; the sparkline shows the last 60.
                    row.spark = t.series.iter().copied().skip(1).map(|(c, _)| c).collect();
                }
            }
            row.error_rate = if calls + fails > 0 {
                fails as f64 / (calls + fails) as f64
            } else {
                0.0
            };
            out.push(row);
        }
        Ok((out, counters))
    }

    /// Stuck calls at `now`: per stage, the oldest `limit` in flight past the SLA (one
    /// range scan of `calls_in_flight_by_age` each) and how many there are in all. The
    /// stages are asked concurrently: one after the other, ten round trips and the decoding
    /// of up to 5 × `limit` rows added up to over 100 ms at 10M calls.
    pub async fn stuck_at(&self, slas: &[(Stage, i64)], now: i64, limit: u32) -> Result<StuckData> {
        let mut data = StuckData {
            limit,
            ..Default::default()
        };
        let sql = stuck_sql(limit);
        let per_stage = slas.iter().map(|(stage, sla_ms)| {
            let (stage, cutoff, sql) = (*stage, now - sla_ms, &sql);
            async move {
                let (rows, count) = tokio::try_join!(
                    async {
                        sqlx::query(sql)
                            .bind(stage.as_str())
                            .bind(cutoff)
                            .fetch_all(&self.pool)
                            .await
                            .ctx(|| format!("listing stuck calls of stage {stage}"))
                    },
                    async {
                        sqlx::query(
                            "SELECT COUNT(*) AS n FROM calls WHERE stage = $1 \
                             AND state IN ('pending', 'running', 'retrying') AND state_since < $2",
                        )
                        .bind(stage.as_str())
                        .bind(cutoff)
                        .fetch_one(&self.pool)
                        .await
                        .ctx(|| format!("counting stuck calls of stage {stage}"))
                    }
                )?;
                let calls = rows.iter().map(row_to_call).collect::<Result<Vec<_>>>()?;
                Ok::<_, StoreError>((col::<i64>(&count, "n")?, calls))
            }
        });
        let answers = futures_util::future::try_join_all(per_stage).await?;
        for ((stage, sla_ms), (count, calls)) in slas.iter().zip(answers) {
            let i = stage_index(*stage);
            data.slas_ms[i] = *sla_ms;
            data.by_stage[i] = count;
            data.calls.extend(calls);
        }
        data.calls.sort_by_key(|c| (c.state_since, c.id));
        data.calls.truncate(limit as usize);
        Ok(data)
    }

    /// One business: settings, per-stage per-minute series of the last hour, calls per
    /// stage and state, lead-filtered and dead counts.
    pub async fn business_detail_at(&self, id: i64, now: i64) -> Result<BusinessDetail> {
        let start = window_starts(now)[3];
        let first_slot = series_start(now);
        let business = self.business(id).await?;
        let dead_filter = DeadJobFilter {
            business_id: Some(id),
            ..Default::default()
        };
        let (series_rows, state_rows, filtered, dlq) = tokio::try_join!(
            async {
                sqlx::query(
                    "SELECT minute, stage, calls, failures FROM throughput \
                     WHERE business_id = $1 AND minute >= $2",
                )
                .bind(id)
                .bind(start)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("reading the throughput of business {id}"))
            },
            async {
                sqlx::query(
                    "SELECT stage, state, COUNT(*) AS n FROM calls WHERE business_id = $1 GROUP BY stage, state",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("counting the calls of business {id} by stage and state"))
            },
            async {
                sqlx::query(
                    "SELECT COUNT(*) AS n FROM calls WHERE business_id = $1 AND lead_filter_skipped = 1",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .ctx(|| format!("counting lead-filtered calls of business {id}"))
            },
            self.count_dead_jobs(&dead_filter),
        )?;
        let mut series = vec![vec![(0u64, 0u64); 60]; 5];
        let mut sums = [[0i64; 4]; 5];
        let starts = window_starts(now);
        for r in &series_rows {
            let minute: i64 = col(r, "minute")?;
            let stage: String = col(r, "stage")?;
            let Ok(stage) = stage.parse::<Stage>() else {
                continue;
            };
            let calls: i64 = col(r, "calls")?;
            let failures: i64 = col(r, "failures")?;
            let i = stage_index(stage);
            let slot = (minute - first_slot).div_euclid(60_000);
            if (0..60).contains(&slot) {
                let slot = slot as usize;
                series[i][slot].0 += calls.max(0) as u64;
                series[i][slot].1 += failures.max(0) as u64;
            }
            for (w, s) in starts.iter().enumerate() {
                if minute >= *s {
                    sums[i][w] += calls;
                }
            }
        }
        let mut rates = [[0.0; 4]; 5];
        for i in 0..5 {
            for w in 0..4 {
                rates[i][w] = per_minute(sums[i][w], WINDOWS_MIN[w], now);
            }
        }
        let mut states = Vec::new();
        for r in &state_rows {
            let stage: String = col(r, "stage")?;
            let state: String = col(r, "state")?;
            if let (Ok(st), Ok(s)) = (stage.parse(), state.parse()) {
                states.push((st, s, col(r, "n")?));
            }
        }
        states.sort_by_key(|(st, s, _)| (*st, CallState::ALL.iter().position(|x| x == s)));
        let webhooks = self.webhook_endpoints(id).await?;
        Ok(BusinessDetail {
            business,
            series,
            rates,
            states,
            lead_filtered: col(&filtered, "n")?,
            dlq,
            webhooks,
        })
    }

    /// Everything about one call; `None` when there is no such call.
    pub async fn call_detail(&self, id: i64) -> Result<Option<CallDetail>> {
        let call = match self.call(id).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (business, transcript, analyses, events, dead) = tokio::try_join!(
            self.business(call.business_id),
            self.transcript(id),
            self.analyses(id),
            self.call_events(id),
            self.dead_jobs_of_call(id),
        )?;
        let customer = match call.customer_id {
            Some(c) => Some(self.customer(c).await?),
            None => None,
        };
        let lead = match call.lead_id {
            Some(l) => self.lead_by_id(l).await?,
            None => None,
        };
        Ok(Some(CallDetail {
            call,
            business_name: Some(business.name),
            transcript,
            analyses,
            events,
            customer,
            lead,
            dead_jobs: dead,
        }))
    }

    async fn dead_jobs_of_call(&self, call_id: i64) -> Result<Vec<DeadJob>> {
        let mut out = Vec::new();
        for status in [
            super::DeadJobStatus::Dead,
            super::DeadJobStatus::Retried,
            super::DeadJobStatus::Discarded,
        ] {
            out.extend(
                self.list_dead_jobs(
                    &DeadJobFilter {
                        status: Some(status),
                        call_id: Some(call_id),
                        ..Default::default()
                    },
                    None,
                    20,
                )
                .await?,
            );
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.dead_at));
        Ok(out)
    }

    pub async fn lead_by_id(&self, id: i64) -> Result<Option<Lead>> {
        let r = sqlx::query(
            "SELECT id, business_id, customer_id, phone, name, status, source, call_count, crm_id, external_id \
             FROM leads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading lead {id}"))?;
        let Some(r) = r else { return Ok(None) };
        Ok(Some(Lead {
            id: col(&r, "id")?,
            business_id: col(&r, "business_id")?,
            customer_id: col(&r, "customer_id")?,
            phone: col(&r, "phone")?,
            name: col(&r, "name")?,
            status: col(&r, "status")?,
            source: col(&r, "source")?,
            call_count: col(&r, "call_count")?,
            crm_id: col(&r, "crm_id")?,
            external_id: col(&r, "external_id")?,
        }))
    }

    /// The DLQ list view: newest dead jobs and the total.
    pub async fn dlq_page(&self, limit: u32) -> Result<DlqData> {
        self.dlq_page_filtered(&DeadJobFilter::default(), limit)
            .await
    }

    /// The newest `limit` dead jobs matching `f`, and how many match in all.
    pub async fn dlq_page_filtered(&self, f: &DeadJobFilter, limit: u32) -> Result<DlqData> {
        let (rows, total) =
            tokio::try_join!(self.list_dead_jobs(f, None, limit), self.count_dead_jobs(f))?;
        Ok(DlqData { rows, total })
    }

    /// Calls in flight longer than their stage's SLA (every stage), for the header: one
    /// statement, an index range count per stage on `calls_in_flight_by_age` (one round
    /// trip instead of one per stage).
    pub async fn stuck_count_at(&self, slas: &[(Stage, i64)], now: i64) -> Result<i64> {
        if slas.is_empty() {
            return Ok(0);
        }
        let per_stage: Vec<String> = (0..slas.len())
            .map(|i| {
                format!(
                    "SELECT COUNT(*) AS n FROM calls WHERE stage = ${} \
                     AND state IN ('pending', 'running', 'retrying') AND state_since < ${}",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect();
        let sql = format!(
            "SELECT CAST(SUM(n) AS BIGINT) FROM ({}) AS per_stage",
            per_stage.join(" UNION ALL ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for (stage, sla) in slas {
            query = query.bind(stage.as_str()).bind(now - sla);
        }
        query
            .fetch_one(&self.pool)
            .await
            .ctx(|| "counting stuck calls".into())
    }

    /// (dead jobs still dead, calls in review): the console header's counts, in one
    /// statement.
    pub async fn header_counters(&self) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead') AS dead, \
             (SELECT COUNT(*) FROM calls WHERE state = 'review') AS review",
        )
        .fetch_one(&self.pool)
        .await
        .ctx(|| "counting dead jobs and calls in review".into())?;
        Ok((col(&r, "dead")?, col(&r, "review")?))
    }

    /// The audit log, newest first.
    pub async fn audit_page(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_log(limit).await
    }

    /// Business id → name, for list views that show business names.
    pub async fn business_names(&self) -> Result<HashMap<i64, String>> {
        let rows = sqlx::query("SELECT id, name FROM businesses")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing business names".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "id")?, col(r, "name")?)))
            .collect()
    }

    /// Queue depths of the database broker's jobs table as seen at `now` (the broker's own
    /// `queue_stats` reads the clock; screenshots and snapshot tests need a fixed moment).
    pub async fn job_queue_stats_at(&self, now: i64) -> Result<Vec<QueueStat>> {
        let rows = sqlx::query(
            "SELECT queue, business_id, stage, COUNT(*) AS n, \
             SUM(CASE WHEN claim_token IS NOT NULL AND run_at > $1 THEN 1 ELSE 0 END) AS inflight, \
             MIN(CASE WHEN run_at <= $1 THEN enqueued_at END) AS oldest_ready \
             FROM jobs GROUP BY queue, business_id, stage ORDER BY queue",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "reading job queue depths".into())?;
        rows.iter()
            .map(|r| {
                let stage: String = col(r, "stage")?;
                let n: i64 = col(r, "n")?;
                let inflight: Option<i64> = col(r, "inflight")?;
                let oldest: Option<i64> = col(r, "oldest_ready")?;
                Ok(QueueStat {
                    queue: col(r, "queue")?,
                    business_id: Some(col(r, "business_id")?),
                    stage: stage.parse().ok(),
                    depth: n.max(0) as u64,
                    in_flight: Some(inflight.unwrap_or(0).max(0) as u64),
                    oldest_age_ms: oldest.map(|t| now - t),
                    publish_rate: None,
                    deliver_rate: None,
                    consumers: None,
                    read_at: Some(now),
                })
            })
            .collect()
    }
}

/// Merge broker queue stats into overview rows: backlog per stage and the oldest job.
pub fn merge_queue_stats(rows: &mut [BizRow], queues: &[QueueStat]) {
    let index: HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for q in queues {
        let (Some(b), Some(stage)) = (q.business_id, q.stage) else {
            continue;
        };
        let Some(&i) = index.get(&b) else { continue };
        let row = &mut rows[i];
        row.backlog[stage_index(stage)] += q.depth;
        if let Some(a) = q.oldest_age_ms {
            row.oldest_job_age_ms = Some(row.oldest_job_age_ms.unwrap_or(0).max(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_minute_rate_counts_the_elapsed_part_of_this_minute() {
        // 30 s into the minute: the last full minute and half of this one → 1.5 min.
        assert!((per_minute(15, 1, 30_000) - 10.0).abs() < 1e-9);
        assert!((per_minute(605, 60, 30_000) - 10.0).abs() < 1e-9);
    }
}
