//! RabbitMQ backend (lapin 4, tokio).
//!
//! Topology, every name under `settings.prefix` (`{p}` below):
//! - `{p}.work` topic exchange; durable queues `{p}.{stage}.{business}` bound with
//!   `{stage}.{business}` (= `Job::queue()`), declared on demand before the first publish to
//!   them (and again after every reconnect); each dead-letters (reject, expiry) to `{p}.dlx`.
//! - `{p}.dlx` topic exchange → `{p}.dlq.{stage}` (bound `{stage}.*`): what no worker could
//!   dead-letter itself (undecodable messages). A drainer archives them into `dead_jobs`
//!   and acks only after the commit.
//! - Delayed retry: one queue per delay tier, `{p}.delay.{ms}` with a queue-level TTL that
//!   dead-letters back to `{p}.work` keeping the routing key (per-message TTLs would block
//!   behind longer ones). A fanout exchange of the same name feeds each.
//!
//! The attempt count and error history travel in our own headers (RabbitMQ 3.13+ ignores
//! client-set `x-death`). Publishes are persistent, `mandatory` and confirmed; confirms are
//! pipelined per channel (group commit: whatever is queued goes out in one round). A
//! supervisor reconnects with backoff and consumers re-subscribe by themselves; acks on a
//! dead channel fail and the job is redelivered (handlers are idempotent).

use super::*;
use crate::domain::stage::Stage;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex as StdMutex, RwLock as StdRwLock};
use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio::time::Instant;

/// Confirm channels per connection; publishes round-robin over them.
const PUBLISH_CHANNELS: usize = 4;
/// Messages one publish round may carry on one channel before its confirms are awaited.
const MAX_ROUND: usize = 2000;
/// Jobs of one `publish_many` handed to one channel at a time (spreads big batches).
const CHUNK: usize = 1000;
/// How long a publish (or any call needing the connection) waits for a reconnect.
const RECONNECT_WAIT: Duration = Duration::from_secs(10);
/// A confirm that has not arrived by then is reported as not confirmed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_EVERY: Duration = Duration::from_secs(3);
/// An ack not sent by then counts as refused (the job is redelivered).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn long_string(s: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.into()))
}

/// One live AMQP connection and what hangs off it. Replaced wholesale on reconnect, so
/// per-connection state (declared queues, publisher channels) can never outlive it.
struct Conn {
    connection: Arc<Connection>,
    /// One group-commit task per confirm channel.
    publishers: Vec<mpsc::Sender<PublishRound>>,
    next: AtomicUsize,
    /// Routing keys whose work queue is declared and bound on this connection.
    declared: StdMutex<HashSet<String>>,
}

impl Conn {
    fn alive(&self) -> bool {
        self.connection.status().connected()
    }
}

struct Inner {
    store: Store,
    settings: BrokerSettings,
    conn: StdRwLock<Option<Arc<Conn>>>,
    /// Bumped on every reconnect (consumers re-subscribe) and on close (waiters wake up).
    generation: watch::Sender<u64>,
    /// Routing keys of every work queue this process declared: re-declared after a reconnect
    /// and deleted by `delete_topology`.
    known_queues: StdMutex<BTreeSet<String>>,
    closed: AtomicBool,
    /// One drain at a time (the background drainer and an explicit call).
    drain_lock: Mutex<()>,
    http: reqwest::Client,
}

pub struct RabbitBroker {
    inner: Arc<Inner>,
    /// Wakes this process's outbox relay after a local commit wrote outbox rows.
    relay_wake: Arc<tokio::sync::Notify>,
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
    fn redacted_url(&self) -> String {
        crate::store::redact_url(&self.settings.amqp_url)
    }

    /// The delay tier for `delay`: the shortest tier at least that long (else the longest),
    /// since only the tiers' exchanges exist.
    fn delay_exchange_for(&self, delay: Duration) -> String {
        let tiers = self.settings.policy.tier_delays();
        let tier = tiers
            .iter()
            .copied()
            .find(|t| *t >= delay)
            .unwrap_or_else(|| *tiers.last().expect("at least one tier"));
        self.delay_name(tier)
    }

    fn current(&self) -> Option<Arc<Conn>> {
        self.conn.read().unwrap().clone()
    }

    /// Connect, declare the fixed topology and every work queue known so far, open the
    /// publisher channels.
    async fn connect_once(&self) -> Result<Arc<Conn>> {
        let url = &self.settings.amqp_url;
        let props = ConnectionProperties::default()
            .with_connection_name(format!("callops {}", self.settings.prefix).into());
        let connection = Connection::connect(url, props).await.map_err(|err| {
            e(
                format!("connecting to RabbitMQ at {}", self.redacted_url()),
                err,
            )
        })?;
        let connection = Arc::new(connection);
        let ch = connection
            .create_channel()
            .await
            .map_err(|err| e("opening a topology channel", err))?;
        self.declare_topology(&ch).await?;
        let known: Vec<String> = self.known_queues.lock().unwrap().iter().cloned().collect();
        for rk in &known {
            self.declare_work_queue(&ch, rk).await?;
        }
        let _ = ch.close(200, "topology declared".into()).await;
        let mut publishers = Vec::with_capacity(PUBLISH_CHANNELS);
        for _ in 0..PUBLISH_CHANNELS {
            let ch = open_confirm_channel(&connection).await?;
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(publisher_task(connection.clone(), ch, rx));
            publishers.push(tx);
        }
        Ok(Arc::new(Conn {
            connection,
            publishers,
            next: AtomicUsize::new(0),
            declared: StdMutex::new(known.into_iter().collect()),
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
            ch.queue_declare(q.as_str().into(), durable_queue(), FieldTable::default())
                .await
                .map_err(|err| e(format!("declaring dead-letter queue {q}"), err))?;
            ch.queue_bind(
                q.as_str().into(),
                self.dlx().into(),
                format!("{stage}.*").into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("binding dead-letter queue {q}"), err))?;
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
            .map_err(|err| e(format!("declaring delay exchange {name}"), err))?;
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(d.as_millis() as i64),
            );
            // No x-dead-letter-routing-key: expired messages keep `{stage}.{business}`.
            args.insert(
                "x-dead-letter-exchange".into(),
                long_string(self.work_exchange()),
            );
            ch.queue_declare(name.as_str().into(), durable_queue(), args)
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
        args.insert("x-dead-letter-exchange".into(), long_string(self.dlx()));
        ch.queue_declare(q.as_str().into(), durable_queue(), args)
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
        .map_err(|err| {
            e(
                format!("binding queue {q} to {}", self.work_exchange()),
                err,
            )
        })?;
        self.known_queues
            .lock()
            .unwrap()
            .insert(routing_key.to_string());
        Ok(())
    }

    /// Declare the work queues of `routing_keys` not yet declared on `conn`. Uses a channel
    /// of its own: a failed declare closes its channel, which must not be a publisher's.
    async fn ensure_declared(&self, conn: &Conn, routing_keys: &BTreeSet<String>) -> Result<()> {
        let missing: Vec<&String> = {
            let declared = conn.declared.lock().unwrap();
            routing_keys
                .iter()
                .filter(|rk| !declared.contains(*rk))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a channel to declare queues", err))?;
        for rk in missing {
            self.declare_work_queue(&ch, rk).await?;
            conn.declared.lock().unwrap().insert(rk.clone());
        }
        let _ = ch.close(200, "queues declared".into()).await;
        Ok(())
    }

    /// The live connection, waiting until `deadline` for the supervisor to reconnect.
    async fn live_conn(&self, deadline: Instant) -> Result<Arc<Conn>> {
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return Err(QueueError::Unavailable(format!(
                    "the RabbitMQ broker at {} was closed",
                    self.redacted_url()
                )));
            }
            if let Some(c) = self.current() {
                if c.alive() {
                    return Ok(c);
                }
            }
            if Instant::now() >= deadline {
                return Err(QueueError::Unavailable(format!(
                    "RabbitMQ at {} is unreachable: no connection after waiting {} s for a reconnect",
                    self.redacted_url(),
                    RECONNECT_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publish `jobs` to `exchange` with their own routing keys; Ok once every one is confirmed.
    /// Jobs left unconfirmed by a lost connection are published again on the next one
    /// (a duplicate is possible, a loss is not).
    async fn publish(&self, exchange: &str, jobs: &[Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + RECONNECT_WAIT;
        let mut pending: Vec<&Job> = jobs.iter().collect();
        loop {
            let conn = self.live_conn(deadline).await?;
            let keys: BTreeSet<String> = pending.iter().map(|j| j.queue()).collect();
            if let Err(err) = self.ensure_declared(&conn, &keys).await {
                if !conn.alive() && Instant::now() < deadline {
                    continue;
                }
                return Err(err);
            }
            let results = conn.publish(exchange, &pending).await;
            let failed: Vec<(&Job, PublishFail)> = pending
                .iter()
                .zip(results)
                .filter_map(|(j, r)| r.err().map(|f| (*j, f)))
                .collect();
            if failed.is_empty() {
                return Ok(());
            }
            for (job, fail) in &failed {
                if let PublishFail::Unroutable(_) = fail {
                    // Its queue vanished behind our back: declare it again next time.
                    conn.declared.lock().unwrap().remove(&job.queue());
                }
            }
            if !conn.alive() && Instant::now() < deadline && !self.closed.load(Ordering::Relaxed) {
                tracing::warn!(
                    unconfirmed = failed.len(),
                    "RabbitMQ connection lost mid-publish; publishing the unconfirmed jobs again after the reconnect"
                );
                pending = failed.into_iter().map(|(j, _)| j).collect();
                continue;
            }
            let (job, fail) = &failed[0];
            let more = if failed.len() > 1 {
                format!(
                    " ({} more of {} jobs not confirmed)",
                    failed.len() - 1,
                    jobs.len()
                )
            } else {
                String::new()
            };
            return Err(QueueError::NotConfirmed {
                job_id: job.id.clone(),
                queue: format!("{exchange} → {}", job.queue()),
                reason: format!("{fail}{more}"),
            });
        }
    }
}

fn properties(job: &Job) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(H_JOB.into(), long_string(job.id.clone()));
    h.insert(H_BUSINESS.into(), AMQPValue::LongLongInt(job.business_id));
    h.insert(H_STAGE.into(), long_string(job.stage.as_str()));
    if let Some(c) = job.call_id {
        h.insert(H_CALL.into(), AMQPValue::LongLongInt(c));
    }
    h.insert(
        H_ATTEMPTS.into(),
        AMQPValue::LongLongInt(job.attempts as i64),
    );
    h.insert(
        H_ERRORS.into(),
        long_string(serde_json::to_string(&job.errors).expect("errors serialize")),
    );
    h.insert(
        H_FIRST.into(),
        AMQPValue::LongLongInt(job.first_enqueued_at),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(job.id.as_str().into())
        // Seconds: the management API's head_message_timestamp reads this.
        .with_timestamp((crate::now_ms() / 1000) as u64)
        .with_headers(h)
}

// ---------------------------------------------------------------------------------------
// Publishing: one group-commit task per confirm channel.
//
// Why a task owns each channel: lapin hands a `basic.return` (unroutable mandatory
// message) to whichever confirm of the channel completes next, not to the message's own
// confirm (and with `multiple` acks the order is a HashMap's). So returns are attributed
// by message id, and only the owner of *every* pending confirm of a channel can do that
// reliably: the task publishes a round, awaits all of its confirms, then matches returns.

struct OutMsg {
    routing_key: String,
    job_id: String,
    body: Vec<u8>,
    props: BasicProperties,
}

struct PublishRound {
    exchange: String,
    msgs: Vec<OutMsg>,
    reply: oneshot::Sender<Vec<Result<(), PublishFail>>>,
}

#[derive(Debug, Clone)]
enum PublishFail {
    /// Returned by the broker: no queue is bound for the routing key.
    Unroutable(String),
    Failed(String),
}

impl std::fmt::Display for PublishFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishFail::Unroutable(why) => write!(f, "unroutable, returned by the broker: {why}"),
            PublishFail::Failed(why) => f.write_str(why),
        }
    }
}

impl Conn {
    /// Hand `jobs` to the publisher channels (in chunks, round-robin) and wait for every
    /// outcome, in the order of `jobs`.
    async fn publish(&self, exchange: &str, jobs: &[&Job]) -> Vec<Result<(), PublishFail>> {
        let mut waits = Vec::new();
        for chunk in jobs.chunks(CHUNK) {
            let msgs = chunk
                .iter()
                .map(|j| OutMsg {
                    routing_key: j.queue(),
                    job_id: j.id.clone(),
                    body: j.payload.to_string().into_bytes(),
                    props: properties(j),
                })
                .collect();
            let (reply, rx) = oneshot::channel();
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.publishers.len();
            let sent = self.publishers[i]
                .send(PublishRound {
                    exchange: exchange.to_string(),
                    msgs,
                    reply,
                })
                .await
                .is_ok();
            waits.push((chunk.len(), sent, rx));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for (n, sent, rx) in waits {
            let res = if sent { rx.await.ok() } else { None };
            match res {
                Some(r) => out.extend(r),
                None => out.extend((0..n).map(|_| {
                    Err(PublishFail::Failed(
                        "the publisher channel stopped (connection lost)".into(),
                    ))
                })),
            }
        }
        out
    }
}

async fn open_confirm_channel(connection: &Connection) -> Result<Channel> {
    let ch = connection
        .create_channel()
        .await
        .map_err(|err| e("opening a publisher channel", err))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|err| e("enabling publisher confirms", err))?;
    Ok(ch)
}

async fn publisher_task(
    connection: Arc<Connection>,
    mut ch: Channel,
    mut rx: mpsc::Receiver<PublishRound>,
) {
    while let Some(first) = rx.recv().await {
        let mut rounds = vec![first];
        let mut n = rounds[0].msgs.len();
        while n < MAX_ROUND {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.msgs.len();
                    rounds.push(r);
                }
                Err(_) => break,
            }
        }
        // A channel-level error (say a publish to a missing exchange) closes only this
        // channel: open a fresh one instead of failing every later publish.
        if !ch.status().connected() && connection.status().connected() {
            match open_confirm_channel(&connection).await {
                Ok(c) => ch = c,
                Err(err) => tracing::warn!(error = %err, "reopening a publisher channel failed"),
            }
        }
        let results = publish_round(&ch, &rounds).await;
        for (round, res) in rounds.into_iter().zip(results) {
            let _ = round.reply.send(res);
        }
    }
    let _ = ch.close(200, "publisher done".into()).await;
}

/// Publish every message of `rounds`, then await all their confirms together.
async fn publish_round(ch: &Channel, rounds: &[PublishRound]) -> Vec<Vec<Result<(), PublishFail>>> {
    let mut sent = Vec::new();
    let mut broken: Option<String> = None;
    for (r, round) in rounds.iter().enumerate() {
        for m in &round.msgs {
            let confirm = match &broken {
                Some(why) => Err(why.clone()),
                None => ch
                    .basic_publish(
                        round.exchange.as_str().into(),
                        m.routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &m.body,
                        m.props.clone(),
                    )
                    .await
                    .map_err(|err| {
                        let why = format!("sending on the publisher channel failed: {err}");
                        broken = Some(why.clone());
                        why
                    }),
            };
            sent.push((r, confirm));
        }
    }
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    let outcomes = futures_util::future::join_all(sent.into_iter().map(|(r, c)| async move {
        let outcome = match c {
            Err(why) => Err(why),
            Ok(c) => match tokio::time::timeout_at(deadline, c).await {
                Err(_) => Err(format!("no confirm within {} s", CONFIRM_TIMEOUT.as_secs())),
                Ok(Err(err)) => Err(format!("confirm failed: {err}")),
                Ok(Ok(conf)) => Ok(conf),
            },
        };
        (r, outcome)
    }))
    .await;

    // Returns ride on arbitrary confirms of the round: collect them all first.
    let mut returned_ids: HashMap<String, String> = HashMap::new();
    let mut returned_keys: HashMap<(String, String), String> = HashMap::new();
    let mut verdicts = Vec::with_capacity(outcomes.len());
    for (r, outcome) in outcomes {
        let verdict = match outcome {
            Err(why) => Err(PublishFail::Failed(why)),
            Ok(conf) => {
                let acked = conf.is_ack();
                let not_requested = matches!(conf, Confirmation::NotRequested);
                if let Some(ret) = conf.take_message() {
                    let why = format!("{} {}", ret.reply_code, ret.reply_text.as_str());
                    match ret.delivery.properties.message_id() {
                        Some(id) => {
                            returned_ids.insert(id.as_str().to_string(), why);
                        }
                        None => {
                            returned_keys.insert(
                                (
                                    ret.delivery.exchange.as_str().to_string(),
                                    ret.delivery.routing_key.as_str().to_string(),
                                ),
                                why,
                            );
                        }
                    }
                }
                if acked {
                    Ok(())
                } else if not_requested {
                    Err(PublishFail::Failed(
                        "publisher confirms are not enabled on the channel".into(),
                    ))
                } else {
                    Err(PublishFail::Failed("the broker nacked it".into()))
                }
            }
        };
        verdicts.push((r, verdict));
    }
    let mut out: Vec<Vec<Result<(), PublishFail>>> = rounds
        .iter()
        .map(|r| Vec::with_capacity(r.msgs.len()))
        .collect();
    let mut msgs = rounds
        .iter()
        .flat_map(|r| r.msgs.iter().map(move |m| (r, m)));
    for (r, verdict) in verdicts {
        let (round, m) = msgs.next().expect("one verdict per message");
        let returned = returned_ids
            .get(&m.job_id)
            .or_else(|| returned_keys.get(&(round.exchange.clone(), m.routing_key.clone())));
        out[r].push(match (verdict, returned) {
            (Ok(()), Some(why)) => Err(PublishFail::Unroutable(why.clone())),
            (v, _) => v,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Connection supervision.

/// Keeps a connection alive: watches the current one (lapin's event stream wakes it at
/// once on an error, a periodic check catches the rest), reconnects with exponential
/// backoff, re-declares the topology and bumps the generation so consumers re-subscribe.
async fn supervise(inner: Arc<Inner>) {
    loop {
        if let Some(c) = inner.current() {
            let mut events = c.connection.events_listener();
            while c.alive() && !inner.closed.load(Ordering::Relaxed) {
                tokio::select! {
                    ev = events.next() => {
                        if ev.is_none() {
                            // The connection is gone: fall back to the periodic check.
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
        if inner.closed.load(Ordering::Relaxed) {
            return;
        }
        tracing::warn!(url = %inner.redacted_url(), "RabbitMQ connection lost; reconnecting");
        let mut backoff = BACKOFF_MIN;
        loop {
            if inner.closed.load(Ordering::Relaxed) {
                return;
            }
            match inner.connect_once().await {
                Ok(c) => {
                    *inner.conn.write().unwrap() = Some(c);
                    inner.generation.send_modify(|g| *g += 1);
                    tracing::info!(url = %inner.redacted_url(), "reconnected to RabbitMQ");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "RabbitMQ reconnect failed; retrying in {backoff:?}");
                    tokio::time::sleep(super::jitter(backoff)).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Decoding.

fn header_str(h: &FieldTable, k: &str) -> Option<String> {
    match h.inner().get(k)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// An integer header: Ok(None) when absent, Err when present but not an integer.
fn header_int(h: &FieldTable, k: &str) -> std::result::Result<Option<i64>, String> {
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
fn decode(d: &lapin::message::Delivery) -> std::result::Result<Job, String> {
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
                tokio::time::sleep(super::jitter(Duration::from_millis(400))).await;
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
fn dead_letter_record(d: &lapin::message::Delivery, dlq_stage: Stage) -> DeadJobInsert {
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
    async fn drain_dead_letters(&self) -> Result<u64> {
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

impl RabbitBroker {
    /// Connect (failing at once on a bad URL or refused connection), declare the topology,
    /// and start the supervisor and the dead-letter drainer.
    pub async fn connect(store: Store, settings: BrokerSettings) -> Result<RabbitBroker> {
        let (generation, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            store,
            settings,
            conn: StdRwLock::new(None),
            generation,
            known_queues: StdMutex::new(BTreeSet::new()),
            closed: AtomicBool::new(false),
            drain_lock: Mutex::new(()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .map_err(|err| {
                    QueueError::Other(format!("building the management API client: {err}"))
                })?,
        });
        let c = inner.connect_once().await?;
        *inner.conn.write().unwrap() = Some(c);
        tokio::spawn(supervise(inner.clone()));
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
        Ok(RabbitBroker {
            inner,
            relay_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

impl Drop for RabbitBroker {
    /// Dropped without `close()`: stop the background tasks and close the connection.
    fn drop(&mut self) {
        if self.inner.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.inner.generation.send_modify(|g| *g += 1);
        if let Some(c) = self.inner.conn.write().unwrap().take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = c
                        .connection
                        .close(200, "callops broker dropped".into())
                        .await;
                });
            }
        }
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn enqueued(&self) {
        self.relay_wake.notify_one();
    }

    fn relay_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.relay_wake.clone())
    }

    async fn publish(&self, job: &Job) -> Result<()> {
        self.inner
            .publish(&self.inner.work_exchange(), std::slice::from_ref(job))
            .await
    }

    async fn publish_many(&self, jobs: &[Job]) -> Result<()> {
        self.inner.publish(&self.inner.work_exchange(), jobs).await
    }

    async fn consume(&self, spec: ConsumeSpec) -> Result<Consumer> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(QueueError::Unavailable(format!(
                "the RabbitMQ broker at {} was closed",
                self.inner.redacted_url()
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
        tokio::spawn(consume_loop(self.inner.clone(), shared.clone()));
        Ok(Consumer::new(
            rx,
            Box::new(RabbitConsumerControl { shared }),
        ))
    }

    /// Depth = ready messages (passive declare, exact) + unacknowledged ones (management
    /// API, when enabled). Jobs waiting in a delay tier are not counted: those queues are
    /// shared by every business.
    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        let businesses: Vec<i64> = if businesses.is_empty() {
            self.inner.store.active_business_ids().await?
        } else {
            businesses.to_vec()
        };
        let conn = self
            .inner
            .live_conn(Instant::now() + RECONNECT_WAIT)
            .await?;
        let mut keys = Vec::new();
        for b in &businesses {
            for stage in Stage::ALL {
                keys.push((*b, stage, stage.queue_for(*b)));
            }
        }
        let names: Vec<String> = keys.iter().map(|k| self.inner.work_queue(&k.2)).collect();
        let (passive, mgmt) = tokio::join!(
            self.inner.passive_counts(&conn, &names),
            self.inner.management_stats()
        );
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

    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        let conn = self
            .inner
            .live_conn(Instant::now() + RECONNECT_WAIT)
            .await?;
        let names: Vec<String> = Stage::ALL.iter().map(|s| self.inner.dlq(*s)).collect();
        let counts = self.inner.passive_counts(&conn, &names).await?;
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

    async fn drain_dead_letters(&self) -> Result<u64> {
        self.inner.drain_dead_letters().await
    }

    fn is_connected(&self) -> bool {
        !self.inner.closed.load(Ordering::Relaxed)
            && self.inner.current().is_some_and(|c| c.alive())
    }

    async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.inner.generation.send_modify(|g| *g += 1);
        let conn = self.inner.conn.write().unwrap().take();
        if let Some(c) = conn {
            // Bounded: after a cut connection lapin's close can wait for a reply that
            // never comes, and shutdown must not hang on it.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                c.connection.close(200, "callops closing".into()),
            )
            .await;
        }
    }

    async fn delete_topology(&self) -> Result<()> {
        let inner = &self.inner;
        let conn = inner.live_conn(Instant::now() + RECONNECT_WAIT).await?;
        let delays: Vec<String> = inner
            .settings
            .policy
            .tier_delays()
            .into_iter()
            .map(|d| inner.delay_name(d))
            .collect();
        let mut queues: Vec<String> = inner
            .known_queues
            .lock()
            .unwrap()
            .iter()
            .map(|rk| inner.work_queue(rk))
            .collect();
        queues.extend(Stage::ALL.iter().map(|s| inner.dlq(*s)));
        queues.extend(delays.iter().cloned());
        let mut exchanges = vec![inner.work_exchange(), inner.dlx()];
        exchanges.extend(delays);
        // A failed delete (already gone on an older broker) closes the channel: reopen it.
        let mut ch: Option<Channel> = None;
        for (is_queue, name) in queues
            .iter()
            .map(|q| (true, q))
            .chain(exchanges.iter().map(|x| (false, x)))
        {
            let c = match &ch {
                Some(c) if c.status().connected() => c.clone(),
                _ => {
                    let c = conn
                        .connection
                        .create_channel()
                        .await
                        .map_err(|err| e("opening a channel to delete the topology", err))?;
                    ch = Some(c.clone());
                    c
                }
            };
            let r = if is_queue {
                c.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map(|_| ())
            } else {
                c.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await
            };
            if let Err(err) = r {
                if !conn.alive() {
                    return Err(e(format!("deleting {name}"), err));
                }
                tracing::debug!(%name, error = %err, "delete failed (already gone?)");
            }
        }
        if let Some(c) = ch {
            let _ = c.close(200, "topology deleted".into()).await;
        }
        inner.known_queues.lock().unwrap().clear();
        conn.declared.lock().unwrap().clear();
        Ok(())
    }
}

/// The baseline: a plain lapin loop — persistent publishes with confirms (pipelined in
/// windows, as the broker does) and a manual-ack consumer with prefetch 500 — on one
/// durable queue, deleted afterwards. Returns (publish msg/s, consume msg/s).
pub async fn raw_lapin_bench(
    amqp_url: &str,
    queue_prefix: &str,
    messages: u64,
) -> anyhow::Result<(f64, f64)> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "connecting to RabbitMQ at {}: {err}",
                crate::store::redact_url(amqp_url)
            )
        })?;
    let ch = conn.create_channel().await?;
    let q = format!("{queue_prefix}.raw");
    ch.queue_declare(q.as_str().into(), durable_queue(), FieldTable::default())
        .await?;
    let result = raw_loop(&conn, &ch, &q, messages).await;
    let _ = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "bench done".into()).await;
    result
}

async fn raw_loop(
    conn: &Connection,
    ch: &Channel,
    q: &str,
    messages: u64,
) -> anyhow::Result<(f64, f64)> {
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = br#"{"i":0,"audio_url":"https://example.invalid/a.wav"}"#;
    let start = std::time::Instant::now();
    let mut sent = 0;
    while sent < messages {
        let window = (messages - sent).min(MAX_ROUND as u64);
        let mut confirms = Vec::with_capacity(window as usize);
        for _ in 0..window {
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    q.into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
            );
        }
        for c in futures_util::future::join_all(confirms).await {
            anyhow::ensure!(c?.is_ack(), "raw bench publish was nacked");
        }
        sent += window;
    }
    let publish = messages as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let cch = conn.create_channel().await?;
    cch.basic_qos(500, BasicQosOptions::default()).await?;
    let mut consumer = cch
        .basic_consume(
            q.into(),
            "raw-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let start = std::time::Instant::now();
    let mut got = 0;
    while got < messages {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!("raw bench: no delivery for 30 s after {got} of {messages}")
            })?;
        let Some(d) = next else {
            anyhow::bail!("raw bench: consumer cancelled after {got} of {messages}");
        };
        d?.acker.ack(BasicAckOptions::default()).await?;
        got += 1;
    }
    let consume = got as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let _ = cch.close(200, "bench done".into()).await;
    Ok((publish, consume))
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
    fn dead_letter_id_is_stable() {
        assert_eq!(fnv1a(&[b"sync.1", b"x"]), fnv1a(&[b"sync.1", b"x"]));
        assert_ne!(fnv1a(&[b"sync.1", b"x"]), fnv1a(&[b"sync.1x", b""]));
    }
}
