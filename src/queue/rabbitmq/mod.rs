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

mod consume;
mod dead_letters;
mod passive;
mod publish;
mod stats;
mod topology;

pub use stats::{management_filter, management_query, StatsCost};

use publish::PublishRound;
pub(crate) use publish::MAX_ROUND;

use super::{Broker, BrokerSettings, ConsumeSpec, Consumer, Job, QueueError, QueueStat, Result};
use crate::store::Store;
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::types::{AMQPValue, LongString};
use lapin::{Connection, ConnectionProperties};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, RwLock as StdRwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::time::Instant;

/// How long a publish (or any call needing the connection) waits for a reconnect.
const RECONNECT_WAIT: Duration = Duration::from_secs(10);

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

fn e(what: impl std::fmt::Display, err: lapin::Error) -> QueueError {
    QueueError::Unavailable(format!("{what}: {err}"))
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
    /// The management API's last queue listing and what statistics cost so far.
    stats_cache: stats::MgmtCache,
}

pub struct RabbitBroker {
    inner: Arc<Inner>,
    /// Wakes this process's outbox relay after a local commit wrote outbox rows.
    relay_wake: Arc<tokio::sync::Notify>,
}

impl Inner {
    fn redacted_url(&self) -> String {
        crate::store::redact_url(&self.settings.amqp_url)
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
        let publishers = publish::open_publishers(&connection).await?;
        Ok(Arc::new(Conn {
            connection,
            publishers,
            next: AtomicUsize::new(0),
            declared: StdMutex::new(known.into_iter().collect()),
        }))
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
            stats_cache: Default::default(),
        });
        let c = inner.connect_once().await?;
        *inner.conn.write().unwrap() = Some(c);
        tokio::spawn(supervise(inner.clone()));
        dead_letters::spawn_drainer(&inner);
        Ok(RabbitBroker {
            inner,
            relay_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

impl RabbitBroker {
    /// Management API requests and passive declares made for statistics so far.
    pub fn stats_cost(&self) -> StatsCost {
        self.inner.stats_cost()
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
        consume::start(&self.inner, spec)
    }

    /// With the management API: ready + unacknowledged from one filtered listing (shared
    /// for a second); without it: ready messages by passive declares, 16 at a time. Jobs
    /// waiting in a delay tier are not counted: those queues are shared by every business.
    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        self.inner.queue_stats(businesses).await
    }

    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        self.inner.unarchived_dead_letters().await
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
        self.inner.close_stats_conn().await;
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
        self.inner.delete_topology().await
    }
}
