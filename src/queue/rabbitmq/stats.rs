//! Queue statistics: exact ready counts from passive declares, in-flight counts, rates and
//! head age from the management HTTP API when it is enabled; AMQP URL helpers for it.

use super::passive::StatsConn;
use super::Inner;
use crate::domain::stage::Stage;
use crate::queue::{QueueStat, Result};
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long one management API answer is reused: every console and the orphan check of this
/// process share it. Shorter than the console's broker feed period (1 s), so each of the
/// feed's polls makes its own request and the age it shows is the age of what it read.
/// (The API itself samples queue figures every 5 s, `collect_statistics_interval`.)
const MGMT_TTL: Duration = Duration::from_millis(500);
/// The management API's largest page.
const MGMT_PAGE: usize = 500;
/// Up to this many businesses are named in the filter (one short URL, usually one page);
/// more are matched by the prefix alone.
const MGMT_NAMED: usize = 100;
/// The management API's last answer per filter, fetched by one caller at a time (the
/// others wait for it rather than asking again).
/// Queue name → the management API's figures for it.
type Listing = Arc<HashMap<String, serde_json::Value>>;

#[derive(Default)]
pub(super) struct MgmtCache {
    /// (fetched at, the request's start in epoch ms, filter, listing)
    slot: tokio::sync::Mutex<Option<(Instant, i64, String, Listing)>>,
    /// HTTP requests made to the management API (benchmarks and tests count them).
    requests: AtomicU64,
    /// Passive declares made (benchmarks and tests count them).
    pub(super) declares: AtomicU64,
    /// The statistics connection (see [`StatsConn`]), opened on first use.
    pub(super) conn: tokio::sync::Mutex<Option<Arc<StatsConn>>>,
    /// Statistics connections opened so far.
    pub(super) connections: AtomicU64,
}

/// Counters of what statistics cost this broker so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsCost {
    pub management_requests: u64,
    pub passive_declares: u64,
    /// Connections opened for passive declares (each replaces a spent one).
    pub connections: u64,
}

const COLUMNS: &str = "name,messages,messages_ready,messages_unacknowledged,consumers,head_message_timestamp,message_stats.publish_details.rate,message_stats.deliver_get_details.rate";

/// A regex literal for `s` (PCRE, as the management API reads it).
fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for ch in s.chars() {
        if !ch.is_ascii_alphanumeric() && ch != '_' {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The management API filter for the work queues of these businesses (all of the prefix's
/// when there are many: the URL stays short and the answer is paged).
pub fn management_filter(prefix: &str, businesses: &[i64]) -> String {
    work_queue_filter(prefix, businesses)
}

/// The queue-listing URL of the management API at `base` for the vhost of `amqp_url`, the
/// query pairs of page `page` under `filter`, and the credentials to send (benchmarks make
/// the same request by hand as the raw ceiling).
pub fn management_query(
    base: &str,
    amqp_url: &str,
    filter: &str,
    page: usize,
) -> (String, Vec<(&'static str, String)>, (String, String)) {
    (
        format!(
            "{}/api/queues/{}",
            base.trim_end_matches('/'),
            amqp_vhost(amqp_url)
        ),
        vec![
            ("page", page.to_string()),
            ("page_size", MGMT_PAGE.to_string()),
            ("name", filter.to_string()),
            ("use_regex", "true".into()),
            ("columns", COLUMNS.into()),
        ],
        amqp_credentials(amqp_url),
    )
}

fn work_queue_filter(prefix: &str, businesses: &[i64]) -> String {
    let stages: Vec<String> = Stage::ALL.iter().map(|s| s.to_string()).collect();
    let ids = if businesses.len() <= MGMT_NAMED {
        let mut ids: Vec<i64> = businesses.to_vec();
        ids.sort_unstable();
        ids.dedup();
        format!(
            "({})",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("|")
        )
    } else {
        "[0-9]+".into()
    };
    format!(
        "^{}\\.({})\\.{ids}$",
        regex_literal(prefix),
        stages.join("|")
    )
}

impl Inner {
    pub(super) fn stats_cost(&self) -> StatsCost {
        StatsCost {
            management_requests: self.stats_cache.requests.load(Ordering::Relaxed),
            passive_declares: self.stats_cache.declares.load(Ordering::Relaxed),
            connections: self.stats_cache.connections.load(Ordering::Relaxed),
        }
    }

    /// Depth per work queue of these businesses. With the management API: one filtered,
    /// paged listing (ready + unacknowledged, consumers, rates, head age), shared for
    /// [`MGMT_TTL`]; without it, or when it fails: ready counts by passive declares, at most
    /// [`super::passive::DECLARE_PARALLEL`] at once. Jobs waiting in a delay tier are not counted: those
    /// queues are shared by every business.
    pub(super) async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        let businesses: Vec<i64> = if businesses.is_empty() {
            self.store.active_business_ids().await?
        } else {
            businesses.to_vec()
        };
        let mut keys = Vec::new();
        for b in &businesses {
            for stage in Stage::ALL {
                keys.push((*b, stage, stage.queue_for(*b)));
            }
        }
        let names: Vec<String> = keys.iter().map(|k| self.work_queue(&k.2)).collect();
        let now = crate::now_ms();
        if let Some((mgmt, read_at)) = self.management_stats(&businesses).await {
            let mut out: Vec<QueueStat> = keys
                .into_iter()
                .zip(&names)
                .map(|((b, stage, rk), name)| match mgmt.get(name) {
                    // Not listed: never declared (queues are declared on first publish).
                    None => QueueStat {
                        queue: rk,
                        business_id: Some(b),
                        stage: Some(stage),
                        depth: 0,
                        in_flight: Some(0),
                        oldest_age_ms: None,
                        publish_rate: None,
                        deliver_rate: None,
                        consumers: Some(0),
                        read_at: Some(read_at),
                    },
                    Some(q) => {
                        let ready = q["messages_ready"].as_u64().unwrap_or(0);
                        let in_flight = q["messages_unacknowledged"].as_u64();
                        QueueStat {
                            queue: rk,
                            business_id: Some(b),
                            stage: Some(stage),
                            depth: ready + in_flight.unwrap_or(0),
                            in_flight,
                            oldest_age_ms: q["head_message_timestamp"]
                                .as_i64()
                                .map(|t| (now - t * 1000).max(0)),
                            publish_rate: q["message_stats"]["publish_details"]["rate"].as_f64(),
                            deliver_rate: q["message_stats"]["deliver_get_details"]["rate"]
                                .as_f64(),
                            consumers: q["consumers"].as_u64(),
                            read_at: Some(read_at),
                        }
                    }
                })
                .collect();
            out.sort_by(|a, b| a.queue.cmp(&b.queue));
            return Ok(out);
        }
        let passive = self.passive_counts(&names).await?;
        let mut out: Vec<QueueStat> = keys
            .into_iter()
            .zip(passive)
            .map(|((b, stage, rk), counts)| {
                let (ready, consumers) = counts.unwrap_or((0, 0));
                QueueStat {
                    queue: rk,
                    business_id: Some(b),
                    stage: Some(stage),
                    depth: ready,
                    in_flight: None,
                    oldest_age_ms: None,
                    publish_rate: None,
                    deliver_rate: None,
                    consumers: Some(consumers),
                    read_at: Some(now),
                }
            })
            .collect();
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(out)
    }

    pub(super) async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        let names: Vec<String> = Stage::ALL.iter().map(|s| self.dlq(*s)).collect();
        let counts = self.passive_counts(&names).await?;
        Ok(Stage::ALL
            .iter()
            .zip(counts)
            .map(|(stage, c)| {
                let (depth, consumers) = c.unwrap_or((0, 0));
                QueueStat {
                    queue: format!("dlq.{stage}"),
                    business_id: None,
                    stage: Some(*stage),
                    depth,
                    in_flight: None,
                    oldest_age_ms: None,
                    publish_rate: None,
                    deliver_rate: None,
                    consumers: Some(consumers),
                    read_at: None,
                }
            })
            .collect())
    }

    /// Per queue name, the management API's view of these businesses' work queues; None
    /// when the API is not configured or failed (stats then come from passive declares).
    async fn management_stats(&self, businesses: &[i64]) -> Option<(Listing, i64)> {
        let base = self.settings.management_url.as_ref()?;
        let filter = work_queue_filter(&self.settings.prefix, businesses);
        let mut slot = self.stats_cache.slot.lock().await;
        if let Some((at, read_at, f, map)) = slot.as_ref() {
            // A listing of all the prefix's queues answers any subset too.
            let covers = *f == filter || f.ends_with("\\.[0-9]+$");
            if at.elapsed() < MGMT_TTL && covers {
                return Some((map.clone(), *read_at));
            }
        }
        let read_at = crate::now_ms();
        let url = format!(
            "{}/api/queues/{}",
            base.trim_end_matches('/'),
            amqp_vhost(&self.settings.amqp_url)
        );
        let mut first = self.management_page(base, &url, &filter, 1).await?;
        let pages = first["page_count"].as_u64().unwrap_or(1) as usize;
        let mut items: Vec<serde_json::Value> = match first["items"].take() {
            serde_json::Value::Array(v) => v,
            _ => vec![],
        };
        if pages > 1 {
            let rest =
                join_all((2..=pages).map(|p| self.management_page(base, &url, &filter, p))).await;
            for page in rest {
                match page?["items"].take() {
                    serde_json::Value::Array(v) => items.extend(v),
                    _ => return None,
                }
            }
        }
        let map: Listing = Arc::new(
            items
                .into_iter()
                .filter_map(|q| Some((q["name"].as_str()?.to_string(), q)))
                .collect(),
        );
        *slot = Some((Instant::now(), read_at, filter, map.clone()));
        Some((map, read_at))
    }

    /// One page of the filtered queue listing (`{"items": […], "page_count": n, …}`).
    async fn management_page(
        &self,
        base: &str,
        url: &str,
        filter: &str,
        page: usize,
    ) -> Option<serde_json::Value> {
        let (user, pass) = amqp_credentials(&self.settings.amqp_url);
        let mut req = self.http.get(url).query(&[
            ("page", page.to_string().as_str()),
            ("page_size", MGMT_PAGE.to_string().as_str()),
            ("name", filter),
            ("use_regex", "true"),
            ("columns", COLUMNS),
        ]);
        if !base.contains('@') {
            req = req.basic_auth(user, Some(pass));
        }
        self.stats_cache.requests.fetch_add(1, Ordering::Relaxed);
        let shown = crate::store::redact_url(url);
        match req.send().await {
            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                Ok(v) if v["items"].is_array() => Some(v),
                Ok(_) => {
                    tracing::debug!(url = %shown, "management API answered something other than a queue page");
                    None
                }
                Err(err) => {
                    tracing::debug!(url = %shown, error = %err, "management API answered something other than JSON");
                    None
                }
            },
            Ok(r) => {
                tracing::debug!(url = %shown, status = %r.status(), "management API refused the queue listing");
                None
            }
            Err(err) => {
                tracing::debug!(url = %shown, error = %err, "management API unreachable");
                None
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `amqp://user:pass@host:port/vhost` → (user, pass), percent-decoded; guest/guest when absent.
fn amqp_credentials(url: &str) -> (String, String) {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((creds, _)) => match creds.split_once(':') {
            Some((u, p)) => (percent_decode(u), percent_decode(p)),
            None => (percent_decode(creds), String::new()),
        },
        None => ("guest".into(), "guest".into()),
    }
}

/// The vhost of an AMQP URL, percent-encoded for a management API path (`%2F` for `/`).
fn amqp_vhost(url: &str) -> String {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or("");
    match rest.split_once('/') {
        Some((_, v)) if !v.is_empty() => v.to_string(),
        _ => "%2F".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_vhost_come_from_the_amqp_url() {
        assert_eq!(
            amqp_credentials("amqp://guest:guest@127.0.0.1:5672/%2f"),
            ("guest".into(), "guest".into())
        );
        assert_eq!(
            amqp_credentials("amqp://u%40x:p%3Aw@h/vh"),
            ("u@x".into(), "p:w".into())
        );
        assert_eq!(
            amqp_credentials("amqp://127.0.0.1"),
            ("guest".into(), "guest".into())
        );
        assert_eq!(amqp_vhost("amqp://guest:guest@127.0.0.1:5672/%2f"), "%2f");
        assert_eq!(amqp_vhost("amqp://127.0.0.1:5672"), "%2F");
        assert_eq!(amqp_vhost("amqp://h/prod?heartbeat=10"), "prod");
    }

    #[test]
    fn the_management_filter_names_few_businesses_and_escapes_the_prefix() {
        assert_eq!(
            work_queue_filter("t-1.x", &[3, 1, 3]),
            "^t\\-1\\.x\\.(sync|transcribe|analyze|link|notify)\\.(1|3)$"
        );
        let many: Vec<i64> = (1..=500).collect();
        assert_eq!(
            work_queue_filter("p", &many),
            "^p\\.(sync|transcribe|analyze|link|notify)\\.[0-9]+$"
        );
    }
}
