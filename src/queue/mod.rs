//! Job transport. One `Broker` trait, two backends (`rabbitmq`, `database`), one test suite.
//!
//! Shared semantics, whatever the backend:
//! - `publish` returns only once the job is durable (publisher confirm / committed row).
//! - Deliveries are at-least-once: handlers must be idempotent.
//! - `Delivery::fail` schedules a delayed retry with exponential backoff, or, after the
//!   last attempt, writes the job into `dead_jobs` (the DLQ is a table for both backends)
//!   and only then acks it.

pub mod database;
pub mod dlq;
pub mod outbox;
pub mod pg_notify;
pub mod rabbitmq;

pub use crate::domain::job::{new_job_id, AttemptError, Job};

use crate::domain::stage::Stage;
use crate::store::{DeadJobInsert, Store};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("publish of job {job_id} to {queue} was not confirmed: {reason}")]
    NotConfirmed {
        job_id: String,
        queue: String,
        reason: String,
    },
    #[error("store error: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// Retry policy shared by both backends.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// Number of delay tiers: base, base*4, base*16, … (RabbitMQ has one TTL queue per tier).
    pub tiers: u32,
}

impl RetryPolicy {
    /// The delay tiers in ascending order.
    pub fn tier_delays(&self) -> Vec<Duration> {
        (0..self.tiers.max(1))
            .map(|k| self.base_delay * 4u32.saturating_pow(k))
            .collect()
    }

    /// Delay before attempt `attempts + 1`, after `attempts` failures (>= 1):
    /// exponential, snapped to a tier so RabbitMQ never holds a short TTL behind a long one.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let tiers = self.tier_delays();
        let idx = (attempts.saturating_sub(1) as usize).min(tiers.len() - 1);
        tiers[idx]
    }

    /// The shortest tier not shorter than `d` (the longest tier if none is).
    pub fn tier_at_least(&self, d: Duration) -> Duration {
        let tiers = self.tier_delays();
        tiers
            .iter()
            .copied()
            .find(|t| *t >= d)
            .unwrap_or(*tiers.last().expect("at least one tier"))
    }

    /// `delay_after` with jitter, for backends that can delay by any amount (the database
    /// broker): uniform between half the tier and the tier, so workers that failed together
    /// do not all come back in the same instant. A server's `Retry-After` wins when given.
    pub fn jittered_delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(Duration::from_secs(3600));
        }
        jitter(self.delay_after(attempts))
    }

    /// Refuse settings that cannot work, naming the config key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err(format!(
                "broker.max_attempts = {} is out of range: use 1..=100",
                self.max_attempts
            ));
        }
        if self.base_delay < Duration::from_millis(10)
            || self.base_delay > Duration::from_secs(3600)
        {
            return Err(format!(
                "broker.retry_base_ms = {} is out of range: use 10..=3600000 (ms)",
                self.base_delay.as_millis()
            ));
        }
        if self.tiers == 0 || self.tiers > 8 {
            return Err(format!(
                "broker.retry_tiers = {} is out of range: use 1..=8",
                self.tiers
            ));
        }
        let longest = self.base_delay.as_secs_f64() * 4f64.powi(self.tiers as i32 - 1);
        if longest > 7.0 * 86400.0 {
            return Err(format!(
                "broker.retry_base_ms × 4^(retry_tiers-1) = {longest:.0} s exceeds 7 days: lower one of them"
            ));
        }
        Ok(())
    }
}

/// Uniform in [d/2, d]: spreads reconnects, claims and retries of many workers apart.
pub fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let ms = d.as_millis() as u64;
    if ms < 2 {
        return d;
    }
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
}

/// What a consumer reads: one stage, these businesses' queues, at most `prefetch`
/// unacknowledged deliveries per business queue (so a loud business cannot starve others).
#[derive(Debug, Clone)]
pub struct ConsumeSpec {
    pub stage: Stage,
    pub businesses: Vec<i64>,
    pub prefetch: u16,
    /// Unacknowledged deliveries over all business queues together (the worker's handler
    /// slots for the stage): what it cannot run stays in the queue, visible as backlog.
    /// 0 = no limit beyond `prefetch` per queue.
    pub max_in_flight: u32,
}

/// Depth of one queue as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStat {
    pub queue: String,
    pub business_id: Option<i64>,
    pub stage: Option<Stage>,
    /// Ready + delayed-retry + in-flight jobs.
    pub depth: u64,
    pub in_flight: Option<u64>,
    /// Age of the oldest ready job in ms, when the backend can tell.
    pub oldest_age_ms: Option<i64>,
    pub publish_rate: Option<f64>,
    pub deliver_rate: Option<f64>,
    pub consumers: Option<u64>,
    /// When the broker's figures were read (epoch ms), when not just now: the management
    /// API's shared answer may be older than the call that returned it.
    #[serde(default)]
    pub read_at: Option<i64>,
}

/// Backend side of one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// The job is done: remove it for good.
    async fn ack(&self) -> Result<()>;
    /// Put `job` (with its updated attempts/errors) back after `delay`, then drop this delivery.
    async fn retry_later(&self, job: &Job, delay: Duration) -> Result<()>;
    /// Settle inside the caller's transaction when the backend keeps its jobs in that
    /// database: `ack` (job = None) or reschedule. `Ok(false)`: this backend cannot, settle
    /// after the commit instead. `Err(Conflict)`: the claim was lost to another worker.
    async fn settle_in(
        &self,
        _conn: &mut sqlx::AnyConnection,
        _retry: Option<(&Job, Duration)>,
    ) -> Result<bool> {
        Ok(false)
    }
    /// The transaction that `settle_in` wrote into has committed.
    fn settled_in_tx(&self) {}
    /// The database broker's claimed row (row id, claim token), so a caller can delete it
    /// in its own statement (`store::stage_commit`); `None` for other backends.
    fn claim_row(&self) -> Option<(i64, i64)> {
        None
    }
    /// False when the delivery came over a channel that has since died: the broker has
    /// handed (or will hand) the message to someone else, so it must not be processed.
    fn is_live(&self) -> bool {
        true
    }
}

pub struct Delivery {
    pub job: Job,
    /// True when the broker says this delivery was handed out before (consumer crash,
    /// connection loss, visibility timeout).
    pub redelivered: bool,
    acker: Box<dyn Acker>,
    store: Store,
    policy: RetryPolicy,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    Retrying { attempt: u32, delay: Duration },
    Dead { dead_job_id: i64 },
}

impl Delivery {
    pub fn new(
        job: Job,
        redelivered: bool,
        acker: Box<dyn Acker>,
        store: Store,
        policy: RetryPolicy,
    ) -> Self {
        Delivery {
            job,
            redelivered,
            acker,
            store,
            policy,
        }
    }

    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// See [`Acker::settle_in`].
    pub async fn settle_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        retry: Option<(&Job, Duration)>,
    ) -> Result<bool> {
        self.acker.settle_in(conn, retry).await
    }

    pub fn settled_in_tx(&self) {
        self.acker.settled_in_tx()
    }

    /// See [`Acker::claim_row`].
    pub fn claim_row(&self) -> Option<(i64, i64)> {
        self.acker.claim_row()
    }

    pub fn is_live(&self) -> bool {
        self.acker.is_live()
    }

    /// Put `job` (this delivery's job with its attempts and errors updated) back after `delay`.
    pub async fn retry_with(self, job: &Job, delay: Duration) -> Result<()> {
        self.acker.retry_later(job, delay).await
    }

    /// Put the job back unchanged after `delay` (not an attempt: the stage is busy elsewhere).
    pub async fn defer(self, delay: Duration) -> Result<()> {
        self.acker.retry_later(&self.job, delay).await
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Record a failed attempt: retry later with backoff, or — out of attempts —
    /// write the dead job (with every attempt's error) and ack, in that order.
    pub async fn fail(self, error: &str) -> Result<FailOutcome> {
        let mut job = self.job.clone();
        job.attempts += 1;
        job.errors.push(AttemptError {
            attempt: job.attempts,
            at: crate::now_ms(),
            error: error.to_string(),
        });
        if job.attempts >= self.policy.max_attempts {
            let dead_job_id = self
                .store
                .insert_dead_job(&DeadJobInsert::from_job(&job, "max attempts reached"))
                .await?;
            self.acker.ack().await?;
            Ok(FailOutcome::Dead { dead_job_id })
        } else {
            let delay = self.policy.delay_after(job.attempts);
            self.acker.retry_later(&job, delay).await?;
            Ok(FailOutcome::Retrying {
                attempt: job.attempts,
                delay,
            })
        }
    }

    /// Dead-letter at once, whatever the attempt count (permanent errors such as a 4xx).
    pub async fn dead(self, error: &str) -> Result<i64> {
        let mut job = self.job.clone();
        job.attempts += 1;
        job.errors.push(AttemptError {
            attempt: job.attempts,
            at: crate::now_ms(),
            error: error.to_string(),
        });
        let id = self
            .store
            .insert_dead_job(&DeadJobInsert::from_job(&job, "permanent error"))
            .await?;
        self.acker.ack().await?;
        Ok(id)
    }
}

/// A running consumer: deliveries arrive on `rx`; `set_businesses` grows or shrinks the
/// set of business queues it reads (new businesses are picked up without a restart).
pub struct Consumer {
    pub rx: mpsc::Receiver<Delivery>,
    control: Box<dyn ConsumerControl>,
}

#[async_trait]
pub trait ConsumerControl: Send + Sync {
    async fn set_businesses(&self, businesses: &[i64]) -> Result<()>;
    /// Stop fetching new deliveries; deliveries already handed out may still be acked.
    async fn stop(&self);
}

impl Consumer {
    pub fn new(rx: mpsc::Receiver<Delivery>, control: Box<dyn ConsumerControl>) -> Self {
        Consumer { rx, control }
    }
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
    pub async fn set_businesses(&self, businesses: &[i64]) -> Result<()> {
        self.control.set_businesses(businesses).await
    }
    pub async fn stop(&self) {
        self.control.stop().await
    }
}

#[async_trait]
pub trait Broker: Send + Sync {
    /// "rabbitmq" or "database".
    fn kind(&self) -> &'static str;
    /// Durable once this returns Ok.
    async fn publish(&self, job: &Job) -> Result<()>;
    /// Durable once this returns Ok; confirms are pipelined, not awaited one by one.
    async fn publish_many(&self, jobs: &[Job]) -> Result<()>;
    async fn consume(&self, spec: ConsumeSpec) -> Result<Consumer>;
    /// Depth per queue for these businesses and all stages.
    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>>;
    /// Messages dead-lettered by the broker itself and not yet archived into `dead_jobs`
    /// (RabbitMQ DLX queues); always empty for the database backend.
    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>>;
    /// Archive broker-side dead letters into `dead_jobs` (ack after commit). Returns how many.
    async fn drain_dead_letters(&self) -> Result<u64>;
    /// Connection state for the console header.
    fn is_connected(&self) -> bool;
    /// Jobs were committed with [`outbox::enqueue_in`]: wake local consumers (database) or
    /// the relay (RabbitMQ) now rather than at their next poll.
    fn enqueued(&self) {}
    /// What the outbox relay of this process waits on between polls.
    fn relay_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// Close connections; jobs not acked are redelivered later.
    async fn close(&self);
    /// Remove every exchange and queue this broker's prefix owns (tests and benches
    /// clean up after themselves). Nothing to do for the database backend.
    async fn delete_topology(&self) -> Result<()> {
        Ok(())
    }
}

pub type DynBroker = Arc<dyn Broker>;

/// Settings both backends read; filled from `config::BrokerConfig`.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub policy: RetryPolicy,
    /// Name prefix for exchanges/queues (RabbitMQ) — unique per test run.
    pub prefix: String,
    pub amqp_url: String,
    pub management_url: Option<String>,
    /// Database backend: how long a claimed job stays invisible before redelivery.
    pub visibility_timeout: Duration,
    /// Database backend: how often an idle consumer polls.
    pub poll_interval: Duration,
}

/// Open the configured backend.
pub async fn connect(kind: &str, settings: BrokerSettings, store: Store) -> Result<DynBroker> {
    match kind {
        "database" => Ok(Arc::new(database::DatabaseBroker::new(store, settings))),
        "rabbitmq" => Ok(Arc::new(rabbitmq::RabbitBroker::connect(store, settings).await?)),
        other => Err(QueueError::Other(format!(
            "unknown broker {other:?}: expected \"database\" or \"rabbitmq\" (config key broker.kind, env CALLOPS_BROKER)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_and_capped_at_last_tier() {
        let p = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            tiers: 3,
        };
        assert_eq!(p.delay_after(1), Duration::from_millis(100));
        assert_eq!(p.delay_after(2), Duration::from_millis(400));
        assert_eq!(p.delay_after(3), Duration::from_millis(1600));
        assert_eq!(p.delay_after(9), Duration::from_millis(1600));
    }

    #[test]
    fn retry_after_wins_over_the_tier_and_jitter_stays_within_the_tier() {
        let p = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            tiers: 3,
        };
        // A server's Retry-After: 7 delays by 7 s, not by the 100 ms tier.
        assert_eq!(
            p.jittered_delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.jittered_delay(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600),
            "capped at an hour"
        );
        for _ in 0..200 {
            let d = p.jittered_delay(2, None);
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
                "{d:?}"
            );
        }
        // RabbitMQ: the nearest tier at or above it.
        assert_eq!(
            p.tier_at_least(Duration::from_millis(350)),
            Duration::from_millis(400)
        );
        assert_eq!(
            p.tier_at_least(Duration::from_secs(7)),
            Duration::from_millis(1600)
        );
    }

    #[test]
    fn absurd_retry_settings_are_refused_with_the_key() {
        let bad = |max_attempts, base_ms, tiers| {
            RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(base_ms),
                tiers,
            }
            .validate()
            .unwrap_err()
        };
        assert!(bad(0, 1000, 4).contains("broker.max_attempts"));
        assert!(bad(5, 0, 4).contains("broker.retry_base_ms"));
        assert!(bad(5, 1000, 40).contains("broker.retry_tiers"));
        assert!(bad(5, 3_600_000, 8).contains("exceeds 7 days"));
        assert!(RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1000),
            tiers: 4
        }
        .validate()
        .is_ok());
    }
}
