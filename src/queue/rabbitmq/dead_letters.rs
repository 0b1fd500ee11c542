//! Dead letters: what the broker dead-lettered to `{p}.dlx` (undecodable messages, rejects,
//! expiries) becomes a `dead_jobs` row; a background drainer archives it and acks only after
//! the commit.

use super::consume::{decode, header_int, header_str};
use super::publish::{H_ATTEMPTS, H_CALL, H_JOB};
use super::{e, Inner, RECONNECT_WAIT};
use crate::domain::stage::Stage;
use crate::queue::{AttemptError, QueueError, Result};
use crate::store::DeadJobInsert;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const DRAIN_EVERY: Duration = Duration::from_secs(3);

/// Every `DRAIN_EVERY`, archive what reached the dead-letter queues into `dead_jobs`.
pub(super) fn spawn_drainer(inner: &Arc<Inner>) {
    let drainer = inner.clone();
    // A read-only store (--readonly) means nothing is written: no archiving drainer.
    let readonly = inner.store.is_readonly();
    tokio::spawn(async move {
        if readonly {
            return;
        }
        loop {
            tokio::time::sleep(DRAIN_EVERY).await;
            if drainer.closed.load(Ordering::Relaxed) {
                return;
            }
            if let Err(err) = drainer.drain_dead_letters().await {
                tracing::warn!(error = %err, "archiving RabbitMQ dead letters failed; will retry");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Dead letters.

fn amqp_to_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::json;
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(x) => json!(x),
        AMQPValue::ShortShortUInt(x) => json!(x),
        AMQPValue::ShortInt(x) => json!(x),
        AMQPValue::ShortUInt(x) => json!(x),
        AMQPValue::LongInt(x) => json!(x),
        AMQPValue::LongUInt(x) => json!(x),
        AMQPValue::LongLongInt(x) => json!(x),
        AMQPValue::Float(x) => json!(x),
        AMQPValue::Double(x) => json!(x),
        AMQPValue::DecimalValue(d) => json!({"scale": d.scale, "value": d.value}),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => {
            serde_json::Value::Array(a.as_slice().iter().map(amqp_to_json).collect())
        }
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => table_to_json(t),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::Void => serde_json::Value::Null,
    }
}

fn table_to_json(t: &FieldTable) -> serde_json::Value {
    serde_json::Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), amqp_to_json(v)))
            .collect(),
    )
}

/// The first (most recent) `x-death` entry the broker added.
fn first_death(h: &FieldTable) -> Option<&FieldTable> {
    match h.inner().get("x-death")? {
        AMQPValue::FieldArray(arr) => match arr.as_slice().first()? {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// FNV-1a: a stable id for a dead letter that carries none (same message, same id, so a
/// re-drain after a crash stays idempotent).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(std::iter::once(&0xffu8)) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// What a message found in `{p}.dlq.{stage}` becomes in `dead_jobs`.
pub(super) fn dead_letter_record(d: &lapin::message::Delivery, dlq_stage: Stage) -> DeadJobInsert {
    let headers = d.properties.headers().clone().unwrap_or_default();
    let death = first_death(&headers);
    let reason = death
        .and_then(|t| header_str(t, "reason"))
        .or_else(|| header_str(&headers, "x-first-death-reason"))
        .unwrap_or_else(|| "unknown".into());
    // The original routing key, `{stage}.{business}` (dead-lettering keeps it).
    let mut rk = d.routing_key.as_str().to_string();
    if rk.is_empty() {
        if let Some(AMQPValue::FieldArray(keys)) = death.and_then(|t| t.inner().get("routing-keys"))
        {
            if let Some(AMQPValue::LongString(k)) = keys.as_slice().first() {
                rk = String::from_utf8_lossy(k.as_bytes()).into_owned();
            }
        }
    }
    let (st, biz) = rk.split_once('.').unwrap_or((rk.as_str(), ""));
    let headers_json = serde_json::json!({
        "exchange": d.exchange.as_str(),
        "routing_key": d.routing_key.as_str(),
        "properties": {
            "message_id": d.properties.message_id().as_ref().map(|m| m.as_str()),
            "timestamp": d.properties.timestamp(),
            "content_type": d.properties.content_type().as_ref().map(|m| m.as_str()),
            "delivery_mode": d.properties.delivery_mode(),
        },
        "headers": table_to_json(&headers),
    })
    .to_string();
    // Postgres TEXT refuses NUL: keep the body readable, not byte-exact.
    let body = String::from_utf8_lossy(&d.data).replace('\0', "\u{FFFD}");
    let now = crate::now_ms();
    let broker_says = format!("dead-lettered by RabbitMQ ({reason}) from queue {rk}");
    match decode(d) {
        Ok(job) => {
            let attempts = job.attempts + 1;
            let mut errors = job.errors.clone();
            errors.push(AttemptError {
                attempt: attempts,
                at: now,
                error: broker_says,
            });
            DeadJobInsert {
                job_id: job.id.clone(),
                business_id: Some(job.business_id),
                stage: Some(job.stage),
                call_id: job.call_id,
                queue: job.queue(),
                payload: job.payload.to_string(),
                headers: headers_json,
                attempts,
                errors,
                reason,
                source: "dlx".into(),
            }
        }
        Err(why) => {
            let job_id = d
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| header_str(&headers, H_JOB).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| format!("dlx-{:016x}", fnv1a(&[rk.as_bytes(), &d.data])));
            let attempts = header_int(&headers, H_ATTEMPTS)
                .ok()
                .flatten()
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0)
                .saturating_add(1);
            DeadJobInsert {
                job_id,
                business_id: biz.parse().ok(),
                stage: st.parse().ok().or(Some(dlq_stage)),
                call_id: header_int(&headers, H_CALL).ok().flatten(),
                queue: rk.clone(),
                payload: body,
                headers: headers_json,
                attempts,
                errors: vec![AttemptError {
                    attempt: attempts,
                    at: now,
                    error: format!("undecodable message: {why}; {broker_says}"),
                }],
                reason,
                source: "dlx".into(),
            }
        }
    }
}

impl Inner {
    /// Archive every message of every `{p}.dlq.{stage}` into `dead_jobs`, acking each only
    /// after its row is committed.
    pub(super) async fn drain_dead_letters(&self) -> Result<u64> {
        if self.store.is_readonly() {
            // --readonly: taking messages off the DLX queues would be a write.
            return Ok(0);
        }
        let _one_at_a_time = self.drain_lock.lock().await;
        let conn = self.live_conn(Instant::now() + RECONNECT_WAIT).await?;
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a dead-letter drain channel", err))?;
        let r = self.drain_on(&ch).await;
        // Also on error: closing hands a fetched but unarchived message back to its DLQ.
        let _ = ch.close(200, "drained".into()).await;
        r
    }

    async fn drain_on(&self, ch: &Channel) -> Result<u64> {
        let mut n = 0;
        for stage in Stage::ALL {
            let q = self.dlq(stage);
            loop {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .map_err(|err| e(format!("reading dead-letter queue {q}"), err))?;
                let Some(msg) = got else { break };
                let record = dead_letter_record(&msg.delivery, stage);
                let id = self.store.insert_dead_job(&record).await?;
                match msg.delivery.acker.ack(BasicAckOptions::default()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(QueueError::Unavailable(format!(
                            "acking archived dead letter {} of {q} failed: channel closed (it stays in the queue; archiving again is idempotent)",
                            record.job_id
                        )))
                    }
                    Err(err) => {
                        return Err(e(
                            format!("acking archived dead letter {} of {q}", record.job_id),
                            err,
                        ))
                    }
                }
                tracing::warn!(queue = %q, job_id = %record.job_id, dead_job = id, reason = %record.reason, "archived a broker dead letter");
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_id_is_stable() {
        assert_eq!(fnv1a(&[b"sync.1", b"x"]), fnv1a(&[b"sync.1", b"x"]));
        assert_ne!(fnv1a(&[b"sync.1", b"x"]), fnv1a(&[b"sync.1x", b""]));
    }
}
