//! Queue statistics: exact ready counts from passive declares, in-flight counts, rates and
//! head age from the management HTTP API when it is enabled; AMQP URL helpers for it.

use super::{e, Conn, Inner, RECONNECT_WAIT};
use crate::domain::stage::Stage;
use crate::queue::{QueueStat, Result};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::Channel;
use std::collections::HashMap;
use tokio::time::Instant;

impl Inner {
    /// Depth = ready messages (passive declare, exact) + unacknowledged ones (management
    /// API, when enabled). Jobs waiting in a delay tier are not counted: those queues are
    /// shared by every business.
    pub(super) async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        let businesses: Vec<i64> = if businesses.is_empty() {
            self.store.active_business_ids().await?
        } else {
            businesses.to_vec()
        };
        let conn = self.live_conn(Instant::now() + RECONNECT_WAIT).await?;
        let mut keys = Vec::new();
        for b in &businesses {
            for stage in Stage::ALL {
                keys.push((*b, stage, stage.queue_for(*b)));
            }
        }
        let names: Vec<String> = keys.iter().map(|k| self.work_queue(&k.2)).collect();
        let (passive, mgmt) =
            tokio::join!(self.passive_counts(&conn, &names), self.management_stats());
        let passive = passive?;
        let now = crate::now_ms();
        let mut out: Vec<QueueStat> = keys
            .into_iter()
            .zip(names.iter().zip(passive))
            .map(|((b, stage, rk), (name, counts))| {
                let (ready, consumers) = counts.unwrap_or((0, 0));
                let m = mgmt.get(name);
                let in_flight = m.and_then(|q| q["messages_unacknowledged"].as_u64());
                QueueStat {
                    queue: rk,
                    business_id: Some(b),
                    stage: Some(stage),
                    depth: ready + in_flight.unwrap_or(0),
                    in_flight,
                    oldest_age_ms: m
                        .and_then(|q| q["head_message_timestamp"].as_i64())
                        .map(|t| (now - t * 1000).max(0)),
                    publish_rate: m
                        .and_then(|q| q["message_stats"]["publish_details"]["rate"].as_f64()),
                    deliver_rate: m
                        .and_then(|q| q["message_stats"]["deliver_get_details"]["rate"].as_f64()),
                    consumers: Some(consumers),
                }
            })
            .collect();
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(out)
    }

    pub(super) async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        let conn = self.live_conn(Instant::now() + RECONNECT_WAIT).await?;
        let names: Vec<String> = Stage::ALL.iter().map(|s| self.dlq(*s)).collect();
        let counts = self.passive_counts(&conn, &names).await?;
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
                }
            })
            .collect())
    }

    /// (ready messages, consumers) of each queue by passive declare; None for a queue that
    /// does not exist. A missing queue closes the channel (404), so open another for the next.
    async fn passive_counts(
        &self,
        conn: &Conn,
        queues: &[String],
    ) -> Result<Vec<Option<(u64, u64)>>> {
        let mut out = Vec::with_capacity(queues.len());
        let mut ch: Option<Channel> = None;
        for q in queues {
            let c = match &ch {
                Some(c) if c.status().connected() => c.clone(),
                _ => {
                    let c = conn
                        .connection
                        .create_channel()
                        .await
                        .map_err(|err| e("opening a stats channel", err))?;
                    ch = Some(c.clone());
                    c
                }
            };
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            match c
                .queue_declare(q.as_str().into(), passive, FieldTable::default())
                .await
            {
                Ok(info) => out.push(Some((
                    info.message_count() as u64,
                    info.consumer_count() as u64,
                ))),
                Err(err) if !conn.alive() => {
                    return Err(e(format!("reading the depth of {q}"), err));
                }
                Err(_) => out.push(None),
            }
        }
        if let Some(c) = ch {
            let _ = c.close(200, "stats read".into()).await;
        }
        Ok(out)
    }

    /// Per queue name, the management API's view; empty when not configured or failing
    /// (stats then come from passive declares alone).
    async fn management_stats(&self) -> HashMap<String, serde_json::Value> {
        let Some(base) = &self.settings.management_url else {
            return HashMap::new();
        };
        let url = format!(
            "{}/api/queues/{}?columns=name,messages,messages_ready,messages_unacknowledged,consumers,head_message_timestamp,message_stats.publish_details.rate,message_stats.deliver_get_details.rate",
            base.trim_end_matches('/'),
            amqp_vhost(&self.settings.amqp_url)
        );
        let (user, pass) = amqp_credentials(&self.settings.amqp_url);
        let mut req = self.http.get(&url);
        if !base.contains('@') {
            req = req.basic_auth(user, Some(pass));
        }
        let shown = crate::store::redact_url(&url);
        match req.send().await {
            Ok(r) if r.status().is_success() => match r.json::<Vec<serde_json::Value>>().await {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|q| Some((q["name"].as_str()?.to_string(), q)))
                    .collect(),
                Err(err) => {
                    tracing::debug!(url = %shown, error = %err, "management API answered something other than a queue list");
                    HashMap::new()
                }
            },
            Ok(r) => {
                tracing::debug!(url = %shown, status = %r.status(), "management API refused the queue listing");
                HashMap::new()
            }
            Err(err) => {
                tracing::debug!(url = %shown, error = %err, "management API unreachable");
                HashMap::new()
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
}
