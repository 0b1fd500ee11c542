//! Consuming: per-stage consumers with one AMQP consumer per business queue, re-subscribing
//! after every reconnect; acks and delayed retries; decoding deliveries back into jobs.

use super::dead_letters::dead_letter_record;
use super::publish::{H_ATTEMPTS, H_BUSINESS, H_CALL, H_ERRORS, H_FIRST, H_JOB, H_STAGE};
use super::{e, Conn, Inner, RECONNECT_WAIT};
use crate::domain::stage::Stage;
use crate::queue::{
    jitter, new_job_id, Acker, AttemptError, ConsumeSpec, Consumer, ConsumerControl, Delivery, Job,
    QueueError, Result,
};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

/// An ack not sent by then counts as refused (the job is redelivered).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Decoding.

pub(super) fn header_str(h: &FieldTable, k: &str) -> Option<String> {
    match h.inner().get(k)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// An integer header: Ok(None) when absent, Err when present but not an integer.
pub(super) fn header_int(h: &FieldTable, k: &str) -> std::result::Result<Option<i64>, String> {
    let Some(v) = h.inner().get(k) else {
        return Ok(None);
    };
    let n = match v {
        AMQPValue::ShortShortInt(x) => Some(*x as i64),
        AMQPValue::ShortShortUInt(x) => Some(*x as i64),
        AMQPValue::ShortInt(x) => Some(*x as i64),
        AMQPValue::ShortUInt(x) => Some(*x as i64),
        AMQPValue::LongInt(x) => Some(*x as i64),
        AMQPValue::LongUInt(x) => Some(*x as i64),
        AMQPValue::LongLongInt(x) => Some(*x),
        AMQPValue::Timestamp(x) => i64::try_from(*x).ok(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).trim().parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().trim().parse().ok(),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| format!("header {k} is not an integer: {}", show_value(v)))
}

/// A header value in words: strings as text (lapin's Debug prints their bytes).
fn show_value(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => format!("{:?}", String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ShortString(s) => format!("{:?}", s.as_str()),
        other => format!("{other:?}"),
    }
}

/// A delivery back into a Job; Err says why it cannot be. Optional headers may be missing
/// (a hand-published job), but none may be garbled: a garbled attempt count could loop a
/// job forever, so such a message is dead-lettered instead.
pub(super) fn decode(d: &lapin::message::Delivery) -> std::result::Result<Job, String> {
    let h = d
        .properties
        .headers()
        .clone()
        .ok_or("no headers (expected x-callops-*)")?;
    let id = header_str(&h, H_JOB)
        .filter(|s| !s.is_empty())
        .or_else(|| d.properties.message_id().as_ref().map(|m| m.to_string()))
        .ok_or("no x-callops-job-id header and no message_id")?;
    let business_id = header_int(&h, H_BUSINESS)?.ok_or("no x-callops-business header")?;
    let stage: Stage = header_str(&h, H_STAGE)
        .ok_or("no x-callops-stage header")?
        .parse()?;
    let attempts = header_int(&h, H_ATTEMPTS)?.unwrap_or(0);
    let attempts = u32::try_from(attempts)
        .map_err(|_| format!("header {H_ATTEMPTS} out of range: {attempts}"))?;
    let errors = match h.inner().get(H_ERRORS) {
        None => vec![],
        Some(_) => {
            let s = header_str(&h, H_ERRORS).ok_or("header x-callops-errors is not a string")?;
            serde_json::from_str(&s)
                .map_err(|err| format!("header x-callops-errors is not a JSON error list: {err}"))?
        }
    };
    let first_enqueued_at = match header_int(&h, H_FIRST)? {
        Some(t) => t,
        None => d
            .properties
            .timestamp()
            .map(|s| s as i64 * 1000)
            .unwrap_or_else(crate::now_ms),
    };
    let payload = serde_json::from_slice(&d.data)
        .map_err(|err| format!("body is not JSON ({} bytes): {err}", d.data.len()))?;
    Ok(Job {
        id,
        business_id,
        stage,
        call_id: header_int(&h, H_CALL)?,
        payload,
        attempts,
        errors,
        first_enqueued_at,
    })
}

/// `decode`, plus: the job must belong to the queue it came from (a job of another stage
/// or business would run the wrong handler).
fn decode_for(
    d: &lapin::message::Delivery,
    stage: Stage,
    business_id: i64,
) -> std::result::Result<Job, String> {
    let job = decode(d)?;
    if job.stage != stage || job.business_id != business_id {
        return Err(format!(
            "headers say {} but the message sits in queue {}",
            job.queue(),
            stage.queue_for(business_id)
        ));
    }
    Ok(job)
}

// ---------------------------------------------------------------------------------------
// Consuming.

struct RabbitAcker {
    acker: lapin::Acker,
    inner: Arc<Inner>,
    job_id: String,
    queue: String,
    settled: AtomicBool,
}

impl RabbitAcker {
    fn refused(&self, what: &str) -> QueueError {
        QueueError::Unavailable(format!(
            "{what} of job {} from queue {} not sent: its channel is closed (connection lost?); the job will be redelivered",
            self.job_id, self.queue
        ))
    }
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<()> {
        // lapin 4 answers Ok(false), not an error, when the channel is gone; and an ack
        // on a channel whose socket died can wait forever, so it is bounded.
        let acked = tokio::time::timeout(ACK_TIMEOUT, self.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap_or(Ok(false));
        match acked {
            Ok(true) => {
                self.settled.store(true, Ordering::Relaxed);
                Ok(())
            }
            Ok(false) => Err(self.refused("ack")),
            Err(err) => Err(e(
                format!(
                    "ack of job {} from queue {} failed (it will be redelivered)",
                    self.job_id, self.queue
                ),
                err,
            )),
        }
    }

    async fn retry_later(&self, job: &Job, delay: Duration) -> Result<()> {
        // Confirmed into the delay tier first, then ack: a crash in between duplicates, never loses.
        let exchange = self.inner.delay_exchange_for(delay);
        self.inner
            .publish(&exchange, std::slice::from_ref(job))
            .await?;
        self.ack().await
    }

    fn is_live(&self) -> bool {
        self.acker.usable()
    }
}

impl Drop for RabbitAcker {
    /// A delivery dropped without ack or retry (handler panic, shutdown) goes back to its
    /// queue now; otherwise it would hold a prefetch slot until the channel closes.
    fn drop(&mut self) {
        if self.settled.load(Ordering::Relaxed) || !self.acker.usable() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let acker = self.acker.clone();
            rt.spawn(async move {
                let _ = acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await;
            });
        }
    }
}

struct ConsumerShared {
    stage: Stage,
    prefetch: u16,
    max_in_flight: u32,
    businesses: StdMutex<Vec<i64>>,
    changed: Notify,
    stopped: AtomicBool,
    tx: mpsc::Sender<Delivery>,
}

struct RabbitConsumerControl {
    shared: Arc<ConsumerShared>,
}

#[async_trait]
impl ConsumerControl for RabbitConsumerControl {
    async fn set_businesses(&self, businesses: &[i64]) -> Result<()> {
        *self.shared.businesses.lock().unwrap() = businesses.to_vec();
        self.shared.changed.notify_one();
        Ok(())
    }
    async fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared.changed.notify_one();
    }
}

/// One AMQP consumer on one business queue.
struct Sub {
    tag: String,
    /// Set before `basic.cancel`: deliveries still buffered go back to the queue.
    cancelled: Arc<AtomicBool>,
}

/// Runs sessions until the consumer stops: a session is one channel with one consumer per
/// business queue; a new session starts after every reconnect or channel failure.
async fn consume_loop(inner: Arc<Inner>, shared: Arc<ConsumerShared>) {
    let mut gen_rx = inner.generation.subscribe();
    loop {
        if shared.stopped.load(Ordering::Relaxed)
            || shared.tx.is_closed()
            || inner.closed.load(Ordering::Relaxed)
        {
            return;
        }
        let gen_now = *gen_rx.borrow_and_update();
        let conn = match inner.live_conn(Instant::now() + RECONNECT_WAIT).await {
            Ok(c) => c,
            Err(_) => continue,
        };
        if let Err(err) = run_session(&inner, &shared, &conn, &mut gen_rx, gen_now).await {
            if !inner.closed.load(Ordering::Relaxed) {
                tracing::warn!(stage = %shared.stage, error = %err, "consumer session ended; resuming");
                tokio::time::sleep(jitter(Duration::from_millis(400))).await;
            }
        }
    }
}

async fn run_session(
    inner: &Arc<Inner>,
    shared: &Arc<ConsumerShared>,
    conn: &Arc<Conn>,
    gen_rx: &mut watch::Receiver<u64>,
    gen_now: u64,
) -> Result<()> {
    let ch = conn
        .connection
        .create_channel()
        .await
        .map_err(|err| e("opening a consumer channel", err))?;
    // global = false: the limit applies to each consumer, i.e. to each business queue.
    ch.basic_qos(shared.prefetch.max(1), BasicQosOptions { global: false })
        .await
        .map_err(|err| e("setting prefetch", err))?;
    if shared.max_in_flight > 0 {
        // RabbitMQ: global = true is a limit shared by every consumer of the channel, i.e.
        // by all business queues of this stage together (the worker's handler slots).
        let total = u16::try_from(shared.max_in_flight).unwrap_or(u16::MAX);
        ch.basic_qos(total, BasicQosOptions { global: true })
            .await
            .map_err(|err| e("setting the channel-wide prefetch", err))?;
    }
    let (broken_tx, mut broken_rx) = mpsc::channel::<String>(16);
    let mut subs: HashMap<i64, Sub> = HashMap::new();
    let result: Result<()> = async {
        loop {
            if shared.stopped.load(Ordering::Relaxed)
                || shared.tx.is_closed()
                || inner.closed.load(Ordering::Relaxed)
            {
                return Ok(());
            }
            let want: Vec<i64> = shared.businesses.lock().unwrap().clone();
            let new: Vec<i64> = want
                .iter()
                .filter(|b| !subs.contains_key(b))
                .copied()
                .collect();
            if !new.is_empty() {
                let keys = new.iter().map(|b| shared.stage.queue_for(*b)).collect();
                inner.ensure_declared(conn, &keys).await?;
            }
            for b in new {
                let rk = shared.stage.queue_for(b);
                let queue = inner.work_queue(&rk);
                let tag = format!("{queue}-{}", new_job_id());
                let consumer = ch
                    .basic_consume(
                        queue.as_str().into(),
                        tag.as_str().into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|err| e(format!("consuming {queue}"), err))?;
                let cancelled = Arc::new(AtomicBool::new(false));
                tokio::spawn(forward(
                    inner.clone(),
                    shared.clone(),
                    consumer,
                    b,
                    cancelled.clone(),
                    broken_tx.clone(),
                ));
                subs.insert(b, Sub { tag, cancelled });
            }
            let gone: Vec<i64> = subs.keys().filter(|b| !want.contains(b)).copied().collect();
            for b in gone {
                if let Some(sub) = subs.remove(&b) {
                    cancel(&ch, &sub).await;
                }
            }
            tokio::select! {
                _ = shared.changed.notified() => {}
                // The worker dropped its receiver: end the session (see below).
                _ = shared.tx.closed() => return Ok(()),
                why = broken_rx.recv() => {
                    return Err(QueueError::Unavailable(why.unwrap_or_default()));
                }
                r = gen_rx.changed() => {
                    if r.is_err() || *gen_rx.borrow() != gen_now {
                        return Err(QueueError::Unavailable("reconnected; subscribing again".into()));
                    }
                }
            }
        }
    }
    .await;
    for sub in subs.values() {
        cancel(&ch, sub).await;
    }
    if result.is_ok() && !shared.tx.is_closed() && !inner.closed.load(Ordering::Relaxed) {
        // stop(): no new deliveries, but those already handed out may still be acked on
        // this channel. Keep it open until the worker drops the consumer or the connection goes.
        loop {
            tokio::select! {
                _ = shared.tx.closed() => break,
                _ = gen_rx.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if inner.closed.load(Ordering::Relaxed) || !conn.alive() {
                        break;
                    }
                }
            }
        }
    }
    // Closing the channel hands every unacked delivery back to its queue.
    let _ = ch.close(200, "consumer stopped".into()).await;
    result
}

async fn cancel(ch: &Channel, sub: &Sub) {
    sub.cancelled.store(true, Ordering::Relaxed);
    if let Err(err) = ch
        .basic_cancel(sub.tag.as_str().into(), BasicCancelOptions::default())
        .await
    {
        tracing::debug!(tag = %sub.tag, error = %err, "basic.cancel failed (channel already closed?)");
    }
}

/// Moves deliveries of one business queue into the consumer's channel.
async fn forward(
    inner: Arc<Inner>,
    shared: Arc<ConsumerShared>,
    mut consumer: lapin::Consumer,
    business_id: i64,
    cancelled: Arc<AtomicBool>,
    broken: mpsc::Sender<String>,
) {
    let queue = shared.stage.queue_for(business_id);
    while let Some(next) = consumer.next().await {
        let d = match next {
            Ok(d) => d,
            Err(err) => {
                if !cancelled.load(Ordering::Relaxed) {
                    let _ = broken.try_send(format!("consumer of {queue} failed: {err}"));
                }
                return;
            }
        };
        if cancelled.load(Ordering::Relaxed) || shared.stopped.load(Ordering::Relaxed) {
            // Dropped business or stopped consumer: back to the queue for the next reader.
            let _ = d
                .acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await;
            continue;
        }
        match decode_for(&d, shared.stage, business_id) {
            Ok(job) => {
                let acker = RabbitAcker {
                    acker: d.acker.clone(),
                    inner: inner.clone(),
                    job_id: job.id.clone(),
                    queue: queue.clone(),
                    settled: AtomicBool::new(false),
                };
                let delivery = Delivery::new(
                    job,
                    d.redelivered,
                    Box::new(acker),
                    inner.store.clone(),
                    inner.settings.policy.clone(),
                );
                if shared.tx.send(delivery).await.is_err() {
                    // The worker is gone: end the session so its channel closes.
                    shared.changed.notify_one();
                    return;
                }
            }
            Err(why) => {
                // Permanent: no retry can fix it. Archive it with the reason in words, then
                // ack; if the database cannot take it, reject it to the dead-letter exchange
                // (the drainer archives it later, with the broker's reason).
                tracing::error!(queue = %queue, %why, "undecodable message archived to dead_jobs");
                let mut rec = dead_letter_record(&d, shared.stage);
                let attempt = rec.attempts;
                rec.errors = vec![AttemptError {
                    attempt,
                    at: crate::now_ms(),
                    error: format!("refused by the worker reading {queue}: {why}"),
                }];
                rec.reason = "undecodable".into();
                rec.source = "worker".into();
                let archived = inner.store.insert_dead_job(&rec).await;
                let settled = match archived {
                    Ok(_) => d.acker.ack(BasicAckOptions::default()).await.map(|_| ()),
                    Err(err) => {
                        tracing::warn!(queue = %queue, error = %err, "archiving an undecodable message failed; rejecting it to the dead-letter exchange");
                        d.acker
                            .reject(BasicRejectOptions { requeue: false })
                            .await
                            .map(|_| ())
                    }
                };
                if let Err(err) = settled {
                    tracing::warn!(queue = %queue, error = %err, "settling an undecodable message failed; it will be redelivered");
                }
            }
        }
    }
    if !cancelled.load(Ordering::Relaxed) && !shared.stopped.load(Ordering::Relaxed) {
        let _ = broken.try_send(format!(
            "the broker cancelled the consumer of {queue} (queue deleted?)"
        ));
    }
}

/// Start a consumer: a task that runs sessions until it is stopped or dropped.
pub(super) fn start(inner: &Arc<Inner>, spec: ConsumeSpec) -> Result<Consumer> {
    if inner.closed.load(Ordering::Relaxed) {
        return Err(QueueError::Unavailable(format!(
            "the RabbitMQ broker at {} was closed",
            inner.redacted_url()
        )));
    }
    let cap = (spec.prefetch as usize * spec.businesses.len().max(1)).clamp(1, 4096);
    let (tx, rx) = mpsc::channel(cap);
    let shared = Arc::new(ConsumerShared {
        stage: spec.stage,
        prefetch: spec.prefetch,
        max_in_flight: spec.max_in_flight,
        businesses: StdMutex::new(spec.businesses.clone()),
        changed: Notify::new(),
        stopped: AtomicBool::new(false),
        tx,
    });
    tokio::spawn(consume_loop(inner.clone(), shared.clone()));
    Ok(Consumer::new(
        rx,
        Box::new(RabbitConsumerControl { shared }),
    ))
}
