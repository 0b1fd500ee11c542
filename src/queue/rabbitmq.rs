//! RabbitMQ backend (lapin 4, tokio).
//!
//! Topology, every name under `settings.prefix`:
//! - `{p}.work` topic exchange; durable queues `{p}.{stage}.{business}` bound with
//!   `{stage}.{business}`, declared on demand before the first publish to them;
//!   each dead-letters (reject, expiry) to `{p}.dlx`.
//! - `{p}.dlx` topic exchange → `{p}.dlq.{stage}` (bound `{stage}.*`): what no worker could
//!   dead-letter itself (undecodable messages). A drainer archives them into `dead_jobs`
//!   and acks only after the commit.
//! - Delayed retry: one queue per delay tier, `{p}.delay.{ms}` with a queue-level TTL that
//!   dead-letters back to `{p}.work` keeping the routing key (per-message TTLs would block
//!   behind longer ones). A fanout exchange of the same name feeds each.
//!
//! The attempt count and error history travel in our own headers (RabbitMQ 3.13+ ignores
//! client-set `x-death`). A supervisor reconnects with backoff and consumers resume by
//! themselves; acks on a dead channel fail and the job is redelivered (handlers are idempotent).

use super::*;
use crate::domain::stage::Stage;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use tokio::sync::{watch, Mutex, Notify, RwLock};

const PUBLISH_CHANNELS: usize = 4;
const H_JOB: &str = "x-callops-job-id";
const H_BUSINESS: &str = "x-callops-business";
const H_STAGE: &str = "x-callops-stage";
const H_CALL: &str = "x-callops-call";
const H_ATTEMPTS: &str = "x-callops-attempts";
const H_ERRORS: &str = "x-callops-errors";
const H_FIRST: &str = "x-callops-first-enqueued";

fn e(what: impl std::fmt::Display, err: lapin::Error) -> QueueError {
    QueueError::Unavailable(format!("{what}: {err}"))
}

struct Conn {
    connection: Connection,
    publishers: Vec<Channel>,
    next: AtomicUsize,
}

struct Inner {
    store: Store,
    settings: BrokerSettings,
    conn: RwLock<Option<Arc<Conn>>>,
    connected: AtomicBool,
    /// Bumped on every (re)connect; consumers watch it to resume.
    generation: watch::Sender<u64>,
    /// Work queues declared on the current connection.
    declared: Mutex<HashSet<String>>,
    /// Every work queue ever declared by this process (for delete_topology).
    known_queues: StdMutex<HashSet<String>>,
    closed: AtomicBool,
    http: reqwest::Client,
}

pub struct RabbitBroker {
    inner: Arc<Inner>,
}

impl Inner {
    fn n(&self, s: &str) -> String {
        format!("{}.{s}", self.settings.prefix)
    }
    fn work_exchange(&self) -> String {
        self.n("work")
    }
    fn dlx(&self) -> String {
        self.n("dlx")
    }
    fn dlq(&self, stage: Stage) -> String {
        self.n(&format!("dlq.{stage}"))
    }
    fn delay_name(&self, d: Duration) -> String {
        self.n(&format!("delay.{}", d.as_millis()))
    }
    fn work_queue(&self, routing_key: &str) -> String {
        self.n(routing_key)
    }

    async fn connect_once(&self) -> Result<Arc<Conn>> {
        let url = &self.settings.amqp_url;
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|err| {
                e(
                    format!(
                        "connecting to RabbitMQ at {}",
                        crate::store::redact_url(url)
                    ),
                    err,
                )
            })?;
        let ch = connection
            .create_channel()
            .await
            .map_err(|err| e("opening a channel", err))?;
        self.declare_topology(&ch).await?;
        let _ = ch.close(200, "topology declared".into()).await;
        let mut publishers = Vec::new();
        for _ in 0..PUBLISH_CHANNELS {
            let p = connection
                .create_channel()
                .await
                .map_err(|err| e("opening a publisher channel", err))?;
            p.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|err| e("enabling publisher confirms", err))?;
            publishers.push(p);
        }
        Ok(Arc::new(Conn {
            connection,
            publishers,
            next: AtomicUsize::new(0),
        }))
    }

    async fn declare_topology(&self, ch: &Channel) -> Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for x in [self.work_exchange(), self.dlx()] {
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("declaring exchange {x}"), err))?;
        }
        for stage in Stage::ALL {
            let q = self.dlq(stage);
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("declaring {q}"), err))?;
            ch.queue_bind(
                q.as_str().into(),
                self.dlx().into(),
                format!("{stage}.*").into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("binding {q}"), err))?;
        }
        for d in self.settings.policy.tier_delays() {
            let name = self.delay_name(d);
            ch.exchange_declare(
                name.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("declaring exchange {name}"), err))?;
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(d.as_millis() as i64),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(LongString::from(self.work_exchange())),
            );
            ch.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .map_err(|err| e(format!("declaring delay queue {name}"), err))?;
            ch.queue_bind(
                name.as_str().into(),
                name.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("binding delay queue {name}"), err))?;
        }
        Ok(())
    }

    async fn declare_work_queue(&self, ch: &Channel, routing_key: &str) -> Result<()> {
        let q = self.work_queue(routing_key);
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(self.dlx())),
        );
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map_err(|err| e(format!("declaring queue {q}"), err))?;
        ch.queue_bind(
            q.as_str().into(),
            self.work_exchange().into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|err| e(format!("binding queue {q}"), err))?;
        self.known_queues.lock().unwrap().insert(q);
        Ok(())
    }

    /// The live connection, waiting up to 10 s for a reconnect.
    async fn conn(&self) -> Result<Arc<Conn>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = self.conn.read().await.clone() {
                if c.connection.status().connected() {
                    return Ok(c);
                }
            }
            if tokio::time::Instant::now() > deadline || self.closed.load(Ordering::Relaxed) {
                return Err(QueueError::Unavailable(format!(
                    "RabbitMQ at {} is unreachable (waited 10 s for a reconnect)",
                    crate::store::redact_url(&self.settings.amqp_url)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ensure_declared(&self, conn: &Conn, routing_key: &str) -> Result<()> {
        if self.declared.lock().await.contains(routing_key) {
            return Ok(());
        }
        let ch = &conn.publishers[0];
        self.declare_work_queue(ch, routing_key).await?;
        self.declared.lock().await.insert(routing_key.to_string());
        Ok(())
    }

    fn properties(job: &Job) -> BasicProperties {
        let mut h = FieldTable::default();
        h.insert(
            H_JOB.into(),
            AMQPValue::LongString(LongString::from(job.id.clone())),
        );
        h.insert(H_BUSINESS.into(), AMQPValue::LongLongInt(job.business_id));
        h.insert(
            H_STAGE.into(),
            AMQPValue::LongString(LongString::from(job.stage.as_str().to_string())),
        );
        if let Some(c) = job.call_id {
            h.insert(H_CALL.into(), AMQPValue::LongLongInt(c));
        }
        h.insert(
            H_ATTEMPTS.into(),
            AMQPValue::LongLongInt(job.attempts as i64),
        );
        h.insert(
            H_ERRORS.into(),
            AMQPValue::LongString(LongString::from(
                serde_json::to_string(&job.errors).expect("errors serialize"),
            )),
        );
        h.insert(
            H_FIRST.into(),
            AMQPValue::LongLongInt(job.first_enqueued_at),
        );
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(job.id.as_str().into())
            .with_timestamp((crate::now_ms() / 1000) as u64)
            .with_headers(h)
    }

    /// Publish one job to `exchange` and return the pending confirm.
    async fn start_publish(
        &self,
        conn: &Conn,
        exchange: &str,
        job: &Job,
    ) -> Result<lapin::PublisherConfirm> {
        let i = conn.next.fetch_add(1, Ordering::Relaxed) % conn.publishers.len();
        let body = job.payload.to_string();
        conn.publishers[i]
            .basic_publish(
                exchange.into(),
                job.queue().as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body.as_bytes(),
                Self::properties(job),
            )
            .await
            .map_err(|err| QueueError::NotConfirmed {
                job_id: job.id.clone(),
                queue: job.queue(),
                reason: err.to_string(),
            })
    }

    async fn finish(job: &Job, confirm: lapin::PublisherConfirm) -> Result<()> {
        let not = |reason: String| QueueError::NotConfirmed {
            job_id: job.id.clone(),
            queue: job.queue(),
            reason,
        };
        match confirm.await.map_err(|err| not(err.to_string()))? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(ret)) => Err(not(format!(
                "unroutable, returned by the broker: {:?}",
                ret.reply_text
            ))),
            Confirmation::Nack(_) => Err(not("the broker nacked it".into())),
            Confirmation::NotRequested => Err(not("confirms not enabled on the channel".into())),
        }
    }

    async fn publish_to(&self, exchange: &str, jobs: &[Job]) -> Result<()> {
        let conn = self.conn().await?;
        for j in jobs {
            self.ensure_declared(&conn, &j.queue()).await?;
        }
        let mut pending = Vec::with_capacity(jobs.len());
        for j in jobs {
            pending.push(self.start_publish(&conn, exchange, j).await?);
        }
        let results = futures_util::future::join_all(
            jobs.iter().zip(pending).map(|(j, c)| Self::finish(j, c)),
        )
        .await;
        results.into_iter().collect()
    }
}

/// Keeps a connection alive: reconnects with exponential backoff and bumps the generation
/// so consumers re-subscribe.
async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if inner.closed.load(Ordering::Relaxed) {
            return;
        }
        let alive = match inner.conn.read().await.clone() {
            Some(c) => c.connection.status().connected(),
            None => false,
        };
        if alive {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        inner.connected.store(false, Ordering::Relaxed);
        inner.declared.lock().await.clear();
        match inner.connect_once().await {
            Ok(c) => {
                *inner.conn.write().await = Some(c);
                inner.connected.store(true, Ordering::Relaxed);
                inner.generation.send_modify(|g| *g += 1);
                backoff = Duration::from_millis(100);
                tracing::info!("connected to RabbitMQ");
            }
            Err(err) => {
                tracing::warn!(error = %err, "RabbitMQ connection failed; retrying in {:?}", backoff);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn header_str(h: &FieldTable, k: &str) -> Option<String> {
    match h.inner().get(k)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn header_i64(h: &FieldTable, k: &str) -> Option<i64> {
    match h.inner().get(k)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(*v as i64),
        AMQPValue::LongUInt(v) => Some(*v as i64),
        AMQPValue::ShortInt(v) => Some(*v as i64),
        _ => None,
    }
}

/// A delivery back into a Job; Err says why it cannot be.
fn decode(d: &lapin::message::Delivery) -> std::result::Result<Job, String> {
    let h = d.properties.headers().clone().ok_or("no headers")?;
    let id = header_str(&h, H_JOB).ok_or("no job id header")?;
    let business_id = header_i64(&h, H_BUSINESS).ok_or("no business header")?;
    let stage: Stage = header_str(&h, H_STAGE).ok_or("no stage header")?.parse()?;
    let payload =
        serde_json::from_slice(&d.data).map_err(|err| format!("body is not JSON: {err}"))?;
    let errors = match header_str(&h, H_ERRORS) {
        Some(s) => {
            serde_json::from_str(&s).map_err(|err| format!("errors header is not JSON: {err}"))?
        }
        None => vec![],
    };
    Ok(Job {
        id,
        business_id,
        stage,
        call_id: header_i64(&h, H_CALL),
        payload,
        attempts: header_i64(&h, H_ATTEMPTS).unwrap_or(0).max(0) as u32,
        errors,
        first_enqueued_at: header_i64(&h, H_FIRST).unwrap_or_else(crate::now_ms),
    })
}

struct RabbitAcker {
    acker: lapin::Acker,
    inner: Arc<Inner>,
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<()> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|err| e("ack failed (the job will be redelivered)", err))
    }

    async fn retry_later(&self, job: &Job, delay: Duration) -> Result<()> {
        // Confirmed into the delay tier first, then ack: a crash in between duplicates, never loses.
        let exchange = self.inner.delay_name(delay);
        self.inner
            .publish_to(&exchange, std::slice::from_ref(job))
            .await?;
        self.ack().await
    }
}

struct ConsumerShared {
    stage: Stage,
    prefetch: u16,
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

/// One consumer per business queue on one channel (per-consumer prefetch = fairness);
/// re-subscribes after every reconnect.
async fn consume_loop(inner: Arc<Inner>, shared: Arc<ConsumerShared>) {
    let mut gen_rx = inner.generation.subscribe();
    while !shared.stopped.load(Ordering::Relaxed) && !shared.tx.is_closed() {
        let conn = match inner.conn().await {
            Ok(c) => c,
            Err(_) => continue,
        };
        let gen_now = *gen_rx.borrow_and_update();
        let session = run_session(&inner, &shared, &conn, &mut gen_rx, gen_now).await;
        if let Err(err) = session {
            tracing::warn!(stage = %shared.stage, error = %err, "consumer session ended; resuming");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn run_session(
    inner: &Arc<Inner>,
    shared: &Arc<ConsumerShared>,
    conn: &Conn,
    gen_rx: &mut watch::Receiver<u64>,
    gen_now: u64,
) -> Result<()> {
    let ch = conn
        .connection
        .create_channel()
        .await
        .map_err(|err| e("opening a consumer channel", err))?;
    ch.basic_qos(shared.prefetch, BasicQosOptions { global: false })
        .await
        .map_err(|err| e("setting prefetch", err))?;
    let (broken_tx, mut broken_rx) = mpsc::channel::<String>(1);
    let mut active: HashMap<i64, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
    let result = loop {
        if shared.stopped.load(Ordering::Relaxed) || shared.tx.is_closed() {
            break Ok(());
        }
        let want: Vec<i64> = shared.businesses.lock().unwrap().clone();
        for b in &want {
            if active.contains_key(b) {
                continue;
            }
            let rk = shared.stage.queue_for(*b);
            inner.declare_work_queue(&ch, &rk).await?;
            let tag = format!("{}-{}-{}", inner.settings.prefix, rk, new_job_id());
            let consumer = ch
                .basic_consume(
                    inner.work_queue(&rk).as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|err| e(format!("consuming {rk}"), err))?;
            let handle = tokio::spawn(forward(
                inner.clone(),
                shared.clone(),
                consumer,
                broken_tx.clone(),
            ));
            active.insert(*b, (tag, handle));
        }
        let gone: Vec<i64> = active
            .keys()
            .filter(|b| !want.contains(b))
            .copied()
            .collect();
        for b in gone {
            if let Some((tag, handle)) = active.remove(&b) {
                let _ = ch
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await;
                handle.abort();
            }
        }
        tokio::select! {
            _ = shared.changed.notified() => {}
            // The worker dropped its receiver (stopped or killed): close the channel so its
            // unacked deliveries go back to the queue instead of waiting for prefetch forever.
            _ = shared.tx.closed() => break Ok(()),
            why = broken_rx.recv() => break Err(QueueError::Unavailable(why.unwrap_or_default())),
            _ = gen_rx.changed() => if *gen_rx.borrow() != gen_now { break Err(QueueError::Unavailable("reconnected".into())) },
        }
    };
    for (_, (tag, handle)) in active {
        let _ = ch
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        handle.abort();
    }
    // Closing the channel hands every unacked delivery back to the queue.
    let _ = ch.close(200, "consumer stopped".into()).await;
    result
}

async fn forward(
    inner: Arc<Inner>,
    shared: Arc<ConsumerShared>,
    mut consumer: lapin::Consumer,
    broken: mpsc::Sender<String>,
) {
    while let Some(next) = consumer.next().await {
        match next {
            Ok(d) => match decode(&d) {
                Ok(job) => {
                    let redelivered = d.redelivered;
                    let acker = RabbitAcker {
                        acker: d.acker.clone(),
                        inner: inner.clone(),
                    };
                    let delivery = Delivery::new(
                        job,
                        redelivered,
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
                    // The broker dead-letters it into the stage's DLQ; the drainer archives it.
                    tracing::error!(routing_key = %d.routing_key, %why, "undecodable message rejected to the DLX");
                    let _ = d.acker.reject(BasicRejectOptions { requeue: false }).await;
                }
            },
            Err(err) => {
                let _ = broken.send(format!("consumer stream failed: {err}")).await;
                return;
            }
        }
    }
    let _ = broken.send("consumer stream ended".into()).await;
}

impl RabbitBroker {
    pub async fn connect(store: Store, settings: BrokerSettings) -> Result<RabbitBroker> {
        let (generation, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            store,
            settings,
            conn: RwLock::new(None),
            connected: AtomicBool::new(false),
            generation,
            declared: Mutex::new(HashSet::new()),
            known_queues: StdMutex::new(HashSet::new()),
            closed: AtomicBool::new(false),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
        });
        // The first connection is made here so a bad URL fails the command at once.
        let c = inner.connect_once().await?;
        *inner.conn.write().await = Some(c);
        inner.connected.store(true, Ordering::Relaxed);
        tokio::spawn(supervise(inner.clone()));
        let drainer = inner.clone();
        tokio::spawn(async move {
            let b = RabbitBroker { inner: drainer };
            while !b.inner.closed.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if let Err(err) = b.drain_dead_letters().await {
                    tracing::warn!(error = %err, "draining dead letters failed");
                }
            }
        });
        Ok(RabbitBroker { inner })
    }

    /// Depth of one queue by passive declare; a missing queue counts 0.
    async fn passive_depth(&self, conn: &Conn, queue: &str) -> Result<Option<(u64, u64)>> {
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a stats channel", err))?;
        let r = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let out = r
            .ok()
            .map(|q| (q.message_count() as u64, q.consumer_count() as u64));
        let _ = ch.close(200, "".into()).await;
        Ok(out)
    }

    /// Rates and head age from the management API, by queue name; empty when not configured or down.
    async fn management_stats(&self) -> HashMap<String, serde_json::Value> {
        let Some(base) = &self.inner.settings.management_url else {
            return HashMap::new();
        };
        let url = format!(
            "{}/api/queues/%2F?columns=name,messages,messages_unacknowledged,consumers,head_message_timestamp,message_stats.publish_details.rate,message_stats.deliver_get_details.rate",
            base.trim_end_matches('/')
        );
        let (user, pass) = amqp_credentials(&self.inner.settings.amqp_url);
        let mut req = self.inner.http.get(&url);
        if !base.contains('@') {
            req = req.basic_auth(user, Some(pass));
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => r
                .json::<Vec<serde_json::Value>>()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter_map(|q| Some((q["name"].as_str()?.to_string(), q)))
                .collect(),
            Ok(r) => {
                tracing::debug!(status = %r.status(), "management API refused the queue listing");
                HashMap::new()
            }
            Err(err) => {
                tracing::debug!(error = %err, "management API unreachable");
                HashMap::new()
            }
        }
    }
}

fn amqp_credentials(url: &str) -> (String, String) {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or("");
    match rest.split_once('@') {
        Some((creds, _)) => match creds.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (creds.to_string(), String::new()),
        },
        None => ("guest".into(), "guest".into()),
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    async fn publish(&self, job: &Job) -> Result<()> {
        self.inner
            .publish_to(&self.inner.work_exchange(), std::slice::from_ref(job))
            .await
    }

    async fn publish_many(&self, jobs: &[Job]) -> Result<()> {
        self.inner
            .publish_to(&self.inner.work_exchange(), jobs)
            .await
    }

    async fn consume(&self, spec: ConsumeSpec) -> Result<Consumer> {
        let cap = (spec.prefetch as usize * spec.businesses.len().max(1)).clamp(1, 4096);
        let (tx, rx) = mpsc::channel(cap);
        let shared = Arc::new(ConsumerShared {
            stage: spec.stage,
            prefetch: spec.prefetch,
            businesses: StdMutex::new(spec.businesses.clone()),
            changed: Notify::new(),
            stopped: AtomicBool::new(false),
            tx,
        });
        tokio::spawn(consume_loop(self.inner.clone(), shared.clone()));
        Ok(Consumer::new(
            rx,
            Box::new(RabbitConsumerControl { shared }),
        ))
    }

    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        let conn = self.inner.conn().await?;
        let mgmt = self.management_stats().await;
        let now = crate::now_ms();
        let mut out = Vec::new();
        let businesses: Vec<i64> = if businesses.is_empty() {
            self.inner.store.active_business_ids().await?
        } else {
            businesses.to_vec()
        };
        for b in businesses {
            for stage in Stage::ALL {
                let rk = stage.queue_for(b);
                let name = self.inner.work_queue(&rk);
                let m = mgmt.get(&name);
                let (depth, consumers) = match m {
                    Some(q) => (
                        q["messages"].as_u64().unwrap_or(0),
                        q["consumers"].as_u64().unwrap_or(0),
                    ),
                    None => self.passive_depth(&conn, &name).await?.unwrap_or((0, 0)),
                };
                out.push(QueueStat {
                    queue: rk,
                    business_id: Some(b),
                    stage: Some(stage),
                    depth,
                    in_flight: m.and_then(|q| q["messages_unacknowledged"].as_u64()),
                    oldest_age_ms: m
                        .and_then(|q| q["head_message_timestamp"].as_i64())
                        .map(|t| now - t * 1000),
                    publish_rate: m
                        .and_then(|q| q["message_stats"]["publish_details"]["rate"].as_f64()),
                    deliver_rate: m
                        .and_then(|q| q["message_stats"]["deliver_get_details"]["rate"].as_f64()),
                    consumers: Some(consumers),
                });
            }
        }
        Ok(out)
    }

    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        let conn = self.inner.conn().await?;
        let mut out = Vec::new();
        for stage in Stage::ALL {
            let q = self.inner.dlq(stage);
            let (depth, consumers) = self.passive_depth(&conn, &q).await?.unwrap_or((0, 0));
            out.push(QueueStat {
                queue: format!("dlq.{stage}"),
                business_id: None,
                stage: Some(stage),
                depth,
                in_flight: None,
                oldest_age_ms: None,
                publish_rate: None,
                deliver_rate: None,
                consumers: Some(consumers),
            });
        }
        Ok(out)
    }

    async fn drain_dead_letters(&self) -> Result<u64> {
        let conn = self.inner.conn().await?;
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a drain channel", err))?;
        let mut n = 0;
        for stage in Stage::ALL {
            let q = self.inner.dlq(stage);
            loop {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .map_err(|err| e(format!("reading {q}"), err))?;
                let Some(msg) = got else { break };
                let d = msg.delivery;
                let headers = d.properties.headers().clone().unwrap_or_default();
                let headers_json =
                    serde_json::to_string(&format!("{:?}", headers.inner())).unwrap_or_default();
                let reason = dlx_reason(&headers);
                let rk = d.routing_key.as_str().to_string();
                let (st, biz) = rk.split_once('.').unwrap_or((rk.as_str(), ""));
                let body = String::from_utf8_lossy(&d.data).into_owned();
                let job_id = header_str(&headers, H_JOB)
                    .or_else(|| {
                        d.properties
                            .message_id()
                            .as_ref()
                            .map(|m| m.as_str().to_string())
                    })
                    .unwrap_or_else(|| {
                        format!(
                            "dlx-{:016x}",
                            crate::pipeline::providers::sim::hash(&[&rk, &body, &headers_json])
                        )
                    });
                let attempts = header_i64(&headers, H_ATTEMPTS).unwrap_or(0).max(0) as u32 + 1;
                let why = match decode(&d) {
                    Ok(_) => format!("dead-lettered by the broker ({reason})"),
                    Err(w) => {
                        format!("undecodable message ({w}); dead-lettered by the broker ({reason})")
                    }
                };
                self.inner
                    .store
                    .insert_dead_job(&DeadJobInsert {
                        job_id,
                        business_id: biz.parse().ok(),
                        stage: st.parse().ok(),
                        call_id: header_i64(&headers, H_CALL),
                        queue: rk.clone(),
                        payload: body,
                        headers: headers_json,
                        attempts,
                        errors: vec![AttemptError {
                            attempt: attempts,
                            at: crate::now_ms(),
                            error: why,
                        }],
                        reason,
                        source: "dlx".into(),
                    })
                    .await?;
                // Ack only after the dead row is committed.
                d.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|err| e("acking an archived dead letter", err))?;
                n += 1;
            }
        }
        let _ = ch.close(200, "".into()).await;
        Ok(n)
    }

    fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        if let Some(c) = self.inner.conn.write().await.take() {
            let _ = c.connection.close(200, "callops closing".into()).await;
        }
        self.inner.connected.store(false, Ordering::Relaxed);
    }

    async fn delete_topology(&self) -> Result<()> {
        let conn = self.inner.conn().await?;
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a channel", err))?;
        let mut queues: Vec<String> = self
            .inner
            .known_queues
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect();
        queues.extend(Stage::ALL.iter().map(|s| self.inner.dlq(*s)));
        queues.extend(
            self.inner
                .settings
                .policy
                .tier_delays()
                .into_iter()
                .map(|d| self.inner.delay_name(d)),
        );
        for q in &queues {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let mut exchanges = vec![self.inner.work_exchange(), self.inner.dlx()];
        exchanges.extend(
            self.inner
                .settings
                .policy
                .tier_delays()
                .into_iter()
                .map(|d| self.inner.delay_name(d)),
        );
        for x in &exchanges {
            let _ = ch
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = ch.close(200, "".into()).await;
        Ok(())
    }
}

fn dlx_reason(h: &FieldTable) -> String {
    if let Some(AMQPValue::FieldArray(arr)) = h.inner().get("x-death") {
        if let Some(AMQPValue::FieldTable(first)) = arr.as_slice().first() {
            if let Some(r) = header_str(first, "reason") {
                return r;
            }
        }
    }
    header_str(h, "x-first-death-reason").unwrap_or_else(|| "rejected".into())
}

/// The baseline: a plain lapin loop — persistent publishes with confirms (pipelined in
/// windows) and a manual-ack consumer — on one durable queue. Returns (publish/s, consume/s).
pub async fn raw_lapin_bench(
    amqp_url: &str,
    queue_prefix: &str,
    messages: u64,
) -> anyhow::Result<(f64, f64)> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let q = format!("{queue_prefix}.raw");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = br#"{"i":0,"audio_url":"https://example.invalid/a.wav"}"#;
    let start = std::time::Instant::now();
    let mut sent = 0;
    while sent < messages {
        let window = (messages - sent).min(1000);
        let mut confirms = Vec::with_capacity(window as usize);
        for _ in 0..window {
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
            );
        }
        for c in futures_util::future::join_all(confirms).await {
            c?;
        }
        sent += window;
    }
    let publish = messages as f64 / start.elapsed().as_secs_f64();
    let cch = conn.create_channel().await?;
    cch.basic_qos(500, BasicQosOptions::default()).await?;
    let mut consumer = cch
        .basic_consume(
            q.as_str().into(),
            "raw-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let start = std::time::Instant::now();
    let mut got = 0;
    while got < messages {
        let Some(d) = consumer.next().await else {
            break;
        };
        d?.acker.ack(BasicAckOptions::default()).await?;
        got += 1;
    }
    let consume = got as f64 / start.elapsed().as_secs_f64();
    let _ = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "".into()).await;
    Ok((publish, consume))
}
