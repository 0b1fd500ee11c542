//! Database backend: a `jobs` table in the same database. Claims use
//! `FOR UPDATE SKIP LOCKED` on Postgres and a single short write statement on SQLite.
//! A claim pushes `run_at` past the visibility timeout, so a crashed worker's job becomes
//! claimable again by itself. Publishes and acks are group-committed by one writer task:
//! each caller still waits for its own commit.

use super::pg_notify::Notifier;
use super::*;
use crate::store::{col, Ctx, Dialect, StoreError};
use rand::Rng;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex as StdMutex;
use tokio::sync::{oneshot, Notify};

enum WriteOp {
    Insert(Vec<Job>, oneshot::Sender<Result<()>>),
    /// (row id, claim token): only the claim that still owns the row may delete it.
    Ack(i64, i64, oneshot::Sender<Result<()>>),
}

pub struct DatabaseBroker {
    store: Store,
    settings: BrokerSettings,
    writer: mpsc::Sender<WriteOp>,
    connected: Arc<AtomicBool>,
    /// Wakes idle local consumers when this process publishes.
    published: Arc<Notify>,
    /// Wakes idle consumers when any process commits jobs (Postgres); started by the first
    /// consumer, so a broker that only publishes (ingest, the console) holds no listener.
    notifier: std::sync::OnceLock<Arc<Notifier>>,
}

/// With notifications, an idle consumer's safety poll: a lost notification costs at most this.
const IDLE_POLL_WITH_NOTIFY: Duration = Duration::from_secs(10);

const INSERT_COLS: &str =
    "job_id, queue, business_id, stage, call_id, payload, attempts, errors, first_enqueued_at, enqueued_at, run_at";
const INSERT_CHUNK: usize = 400;
const MAX_GROUP: usize = 2000;

impl DatabaseBroker {
    pub fn new(store: Store, settings: BrokerSettings) -> DatabaseBroker {
        let (tx, rx) = mpsc::channel(4096);
        let connected = Arc::new(AtomicBool::new(true));
        tokio::spawn(writer_loop(store.clone(), rx, connected.clone()));
        DatabaseBroker {
            store,
            settings,
            writer: tx,
            connected,
            published: Arc::new(Notify::new()),
            notifier: std::sync::OnceLock::new(),
        }
    }

    async fn write(&self, op: impl FnOnce(oneshot::Sender<Result<()>>) -> WriteOp) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(op(tx))
            .await
            .map_err(|_| QueueError::Unavailable("database broker writer stopped".into()))?;
        rx.await.map_err(|_| {
            QueueError::Unavailable("database broker writer dropped a request".into())
        })?
    }
}

async fn writer_loop(store: Store, mut rx: mpsc::Receiver<WriteOp>, connected: Arc<AtomicBool>) {
    let mut batch = Vec::new();
    while let Some(op) = rx.recv().await {
        batch.push(op);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut inserts: Vec<&Job> = Vec::new();
        let mut acks: Vec<(i64, i64)> = Vec::new();
        for op in &batch {
            match op {
                WriteOp::Insert(jobs, _) => inserts.extend(jobs.iter()),
                WriteOp::Ack(id, token, _) => acks.push((*id, *token)),
            }
        }
        let res = commit_group(&store, &inserts, &acks).await;
        connected.store(res.is_ok(), Ordering::Relaxed);
        for op in batch.drain(..) {
            let reply = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(QueueError::Unavailable(e.to_string())),
            };
            match op {
                WriteOp::Insert(_, tx) | WriteOp::Ack(_, _, tx) => {
                    let _ = tx.send(reply);
                }
            }
        }
    }
}

async fn commit_group(
    store: &Store,
    inserts: &[&Job],
    acks: &[(i64, i64)],
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    insert_jobs(&mut tx, inserts, crate::now_ms()).await?;
    for chunk in acks.chunks(500) {
        // By (id, token) pairs: a delivery whose visibility timeout expired must not delete
        // the row after someone else claimed it again (that lost the job, and its call sat
        // in running/retrying for good). The values are our own integers.
        let pairs: Vec<String> = chunk
            .iter()
            .map(|(id, token)| format!("(id = {id} AND claim_token = {token})"))
            .collect();
        sqlx::query(&format!("DELETE FROM jobs WHERE {}", pairs.join(" OR ")))
            .execute(&mut *tx)
            .await
            .ctx(|| format!("acking {} jobs", chunk.len()))?;
    }
    tx.commit().await.ctx(|| "committing job writes".into())?;
    Ok(())
}

/// Insert job rows on `conn` (the group writer's transaction, or a caller's transaction
/// that commits the change implying these jobs: the transactional outbox of this backend).
pub(crate) async fn insert_jobs(
    conn: &mut sqlx::AnyConnection,
    jobs: &[&Job],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in jobs.chunks(INSERT_CHUNK) {
        let mut sql = format!("INSERT INTO jobs ({INSERT_COLS}) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 11;
            if i > 0 {
                sql.push(',');
            }
            let ps: Vec<String> = (1..=11).map(|k| format!("${}", b + k)).collect();
            sql.push_str(&format!("({})", ps.join(",")));
        }
        let mut q = sqlx::query(&sql);
        for j in chunk {
            q = q
                .bind(j.id.clone())
                .bind(j.queue())
                .bind(j.business_id)
                .bind(j.stage.as_str())
                .bind(j.call_id)
                .bind(j.payload.to_string())
                .bind(j.attempts as i64)
                .bind(serde_json::to_string(&j.errors).expect("errors serialize"))
                .bind(j.first_enqueued_at)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn)
            .await
            .ctx(|| format!("inserting {} jobs", chunk.len()))?;
    }
    Ok(())
}

struct DbAcker {
    row_id: i64,
    token: i64,
    writer: mpsc::Sender<WriteOp>,
    store: Store,
    settled: AtomicBool,
    inflight: Arc<InFlight>,
    queue: String,
}

#[async_trait]
impl Acker for DbAcker {
    async fn ack(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteOp::Ack(self.row_id, self.token, tx))
            .await
            .map_err(|_| QueueError::Unavailable("database broker writer stopped".into()))?;
        rx.await.map_err(|_| {
            QueueError::Unavailable("database broker writer dropped an ack".into())
        })??;
        self.settled.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn retry_later(&self, job: &Job, delay: Duration) -> Result<()> {
        let now = crate::now_ms();
        sqlx::query(
            "UPDATE jobs SET attempts = $1, errors = $2, run_at = $3, enqueued_at = $4, \
             claim_token = NULL, claimed_at = NULL, deliveries = 0 WHERE id = $5 AND claim_token = $6",
        )
        .bind(job.attempts as i64)
        .bind(serde_json::to_string(&job.errors).expect("errors serialize"))
        .bind(now + delay.as_millis() as i64)
        .bind(now)
        .bind(self.row_id)
        .bind(self.token)
        .execute(self.store.pool())
        .await
        .ctx(|| format!("scheduling retry of job {}", job.id))?;
        self.settled.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn settle_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        retry: Option<(&Job, Duration)>,
    ) -> Result<bool> {
        let n = match retry {
            None => sqlx::query("DELETE FROM jobs WHERE id = $1 AND claim_token = $2")
                .bind(self.row_id)
                .bind(self.token)
                .execute(&mut *conn)
                .await
                .ctx(|| format!("acking job row {}", self.row_id))?,
            Some((job, delay)) => {
                let now = crate::now_ms();
                sqlx::query(
                    "UPDATE jobs SET attempts = $1, errors = $2, run_at = $3, enqueued_at = $4, \
                     claim_token = NULL, claimed_at = NULL, deliveries = 0 WHERE id = $5 AND claim_token = $6",
                )
                .bind(job.attempts as i64)
                .bind(serde_json::to_string(&job.errors).expect("errors serialize"))
                .bind(now + delay.as_millis() as i64)
                .bind(now)
                .bind(self.row_id)
                .bind(self.token)
                .execute(&mut *conn)
                .await
                .ctx(|| format!("scheduling retry of job {}", job.id))?
            }
        }
        .rows_affected();
        if n == 0 {
            return Err(QueueError::Store(StoreError::Conflict(format!(
                "job row {} of queue {} was claimed again by another worker (this claim's lease ran out)",
                self.row_id, self.queue
            ))));
        }
        Ok(true)
    }

    fn settled_in_tx(&self) {
        self.settled.store(true, Ordering::Relaxed);
    }

    fn claim_row(&self) -> Option<(i64, i64)> {
        Some((self.row_id, self.token))
    }

    // No per-delivery `extend`: the pipeline's lease keeper renews the claims of running
    // handlers together with their call leases (`store::leases`), one statement for many.
}

impl Drop for DbAcker {
    /// A delivery dropped without ack or retry (shutdown, handler panic) goes back to
    /// its queue now instead of waiting out the visibility timeout.
    fn drop(&mut self) {
        self.inflight.release(self.row_id);
        if self.settled.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = self.store.pool().clone();
            let (id, token) = (self.row_id, self.token);
            rt.spawn(async move {
                let _ = sqlx::query("UPDATE jobs SET run_at = $1, claim_token = NULL WHERE id = $2 AND claim_token = $3")
                    .bind(crate::now_ms())
                    .bind(id)
                    .bind(token)
                    .execute(&pool)
                    .await;
            });
        }
    }
}

/// Unacknowledged deliveries of one consumer (one stage), over all its businesses: the
/// one budget that bounds in-flight work, whatever the number of businesses.
#[derive(Default)]
struct InFlight {
    claims: StdMutex<HashMap<i64, i64>>,
    freed: Notify,
}

impl InFlight {
    fn total(&self) -> u32 {
        self.claims.lock().unwrap().len() as u32
    }
    fn add(&self, row_id: i64, token: i64) {
        self.claims.lock().unwrap().insert(row_id, token);
    }
    fn release(&self, row_id: i64) {
        self.claims.lock().unwrap().remove(&row_id);
        self.freed.notify_one();
    }
}

struct DbConsumerControl {
    businesses: Arc<StdMutex<Vec<i64>>>,
    stopped: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

#[async_trait]
impl ConsumerControl for DbConsumerControl {
    async fn set_businesses(&self, businesses: &[i64]) -> Result<()> {
        *self.businesses.lock().unwrap() = businesses.to_vec();
        self.wake.notify_one();
        Ok(())
    }
    async fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

const CLAIM_RETURNING: &str =
    "RETURNING jobs.id, jobs.job_id, jobs.business_id, jobs.stage, jobs.call_id, \
     jobs.payload, jobs.attempts, jobs.errors, jobs.first_enqueued_at, jobs.deliveries";

/// One claim per stage for every business, fair between them:
/// $1 claimed until, $2 now, $3 claim token, $4 stage, $5 how many, $6 business cursor,
/// $7 at most this many of one business, $8 the businesses this worker serves (JSON array).
///
/// Postgres walks the businesses that have jobs of the stage in id order after the cursor
/// (a loose index scan: one index probe per such business, none for idle ones) and takes
/// each one's oldest ready jobs, stopping when it has enough; the next claim starts after
/// the last business served, so businesses take turns whatever their backlog.
/// SQLite (one embedded process) ranks the stage's ready jobs per business and takes the
/// first of every business before the second of any.
fn claim_sql(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "WITH RECURSIVE lanes(b) AS ( \
                 (SELECT business_id FROM jobs WHERE stage = $4 AND business_id > $6 ORDER BY business_id LIMIT 1) \
               UNION ALL \
                 SELECT (SELECT j.business_id FROM jobs j WHERE j.stage = $4 AND j.business_id > lanes.b \
                         ORDER BY j.business_id LIMIT 1) \
                 FROM lanes WHERE lanes.b IS NOT NULL), \
             served AS (SELECT CAST(value AS BIGINT) AS b FROM json_array_elements_text(CAST($8 AS json))), \
             picked AS ( \
                 SELECT p.id FROM lanes CROSS JOIN LATERAL ( \
                     SELECT id FROM jobs WHERE stage = $4 AND business_id = lanes.b AND run_at <= $2 \
                     ORDER BY run_at, id LIMIT $7 FOR UPDATE SKIP LOCKED) p \
                 WHERE lanes.b IS NOT NULL AND lanes.b IN (SELECT b FROM served) \
                 LIMIT $5) \
             UPDATE jobs SET run_at = $1, claimed_at = $2, claim_token = $3, deliveries = deliveries + 1 \
             FROM picked WHERE jobs.id = picked.id {CLAIM_RETURNING}"
        ),
        Dialect::Sqlite => format!(
            "UPDATE jobs SET run_at = $1, claimed_at = $2, claim_token = $3, deliveries = deliveries + 1 \
             WHERE id IN ( \
                 SELECT id FROM ( \
                     SELECT id, business_id, run_at, \
                            ROW_NUMBER() OVER (PARTITION BY business_id ORDER BY run_at, id) AS rn \
                     FROM jobs WHERE stage = $4 AND run_at <= $2 \
                       AND business_id IN (SELECT value FROM json_each($8))) \
                 WHERE rn <= $7 \
                 ORDER BY rn, business_id <= $6, business_id, run_at, id LIMIT $5) \
             {CLAIM_RETURNING}"
        ),
    }
}

/// A claimed row that does not decode (hand-edited payload, unknown stage) is
/// archived straight into `dead_jobs` and removed, with the reason.
/// A row that could not be decoded: (row id, job id, raw payload, why).
type Undecodable = (i64, String, String, String);

fn decode_row(r: &AnyRow) -> std::result::Result<(i64, Job, bool), Undecodable> {
    let id: i64 = col(r, "id").map_err(|e| (0, String::new(), String::new(), e.to_string()))?;
    let raw_payload: String = col(r, "payload").unwrap_or_default();
    let job_id: String = col(r, "job_id").unwrap_or_default();
    let stage_s: String = col(r, "stage").unwrap_or_default();
    let bad = |why: String| (id, job_id.clone(), raw_payload.clone(), why);
    let stage: Stage = stage_s.parse().map_err(bad)?;
    let payload =
        serde_json::from_str(&raw_payload).map_err(|e| bad(format!("payload is not JSON: {e}")))?;
    let errors: String = col(r, "errors").map_err(|e| bad(e.to_string()))?;
    let errors = serde_json::from_str(&errors)
        .map_err(|e| bad(format!("errors column is not JSON: {e}")))?;
    let attempts: i64 = col(r, "attempts").map_err(|e| bad(e.to_string()))?;
    let deliveries: i64 = col(r, "deliveries").map_err(|e| bad(e.to_string()))?;
    let job = Job {
        id: job_id.clone(),
        business_id: col(r, "business_id").map_err(|e| bad(e.to_string()))?,
        stage,
        call_id: col(r, "call_id").map_err(|e| bad(e.to_string()))?,
        payload,
        attempts: attempts as u32,
        errors,
        first_enqueued_at: col(r, "first_enqueued_at").map_err(|e| bad(e.to_string()))?,
    };
    Ok((id, job, deliveries > 1))
}

struct ClaimLoop {
    store: Store,
    settings: BrokerSettings,
    spec: ConsumeSpec,
    businesses: Arc<StdMutex<Vec<i64>>>,
    stopped: Arc<AtomicBool>,
    wake: Arc<Notify>,
    published: Arc<Notify>,
    writer: mpsc::Sender<WriteOp>,
    connected: Arc<AtomicBool>,
    tx: mpsc::Sender<Delivery>,
    inflight: Arc<InFlight>,
    notifier: Arc<Notifier>,
}

impl ClaimLoop {
    /// How many jobs one claim may take: the free handler slots of this stage (one budget
    /// for all businesses), or, without a slot limit, `prefetch` per business.
    fn budget(&self, businesses: usize) -> u32 {
        if self.spec.max_in_flight > 0 {
            self.spec
                .max_in_flight
                .saturating_sub(self.inflight.total())
        } else {
            let cap = (self.spec.prefetch.max(1) as u32).saturating_mul(businesses.max(1) as u32);
            cap.min(4096).saturating_sub(self.inflight.total())
        }
    }

    async fn run(self) {
        let mut cursor = 0i64;
        let mut backoff = Duration::from_millis(100);
        while !self.stopped.load(Ordering::Relaxed) && !self.tx.is_closed() {
            let served: Vec<i64> = self.businesses.lock().unwrap().clone();
            let budget = self.budget(served.len());
            if served.is_empty() || budget == 0 {
                // Nothing to serve, or every slot busy: a finished job frees one.
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = self.inflight.freed.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval.max(Duration::from_millis(200))) => {}
                }
                continue;
            }
            let per_business = (self.spec.prefetch.max(1) as u32).min(budget);
            let served_json = serde_json::to_string(&served).expect("ids serialize");
            let mut claimed = self.claim(budget, cursor, per_business, &served_json).await;
            if let (Ok((n, _)), true) = (&claimed, cursor != 0) {
                if (*n as u32) < budget {
                    // The walk reached the last business: go round from the first.
                    let rest = budget - *n as u32;
                    cursor = 0;
                    let more = self
                        .claim(rest, 0, per_business.min(rest), &served_json)
                        .await;
                    claimed = match (claimed, more) {
                        (Ok((a, _)), Ok((b, last))) => Ok((a + b, last)),
                        (_, Err(e)) | (Err(e), _) => Err(e),
                    };
                }
            }
            match claimed {
                Ok((n, last)) => {
                    self.connected.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(100);
                    cursor = if (n as u32) < budget { 0 } else { last };
                    if n > 0 {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    self.idle().await;
                }
                Err(e) => {
                    tracing::warn!(stage = %self.spec.stage, error = %e, "claiming jobs failed; backing off");
                    self.connected.store(false, Ordering::Relaxed);
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Nothing ready: sleep until the stage's next job is due (a retry, a deferral, a
    /// crashed worker's claim running out), a commit wakes us, or a poll interval passes.
    /// With Postgres notifications the poll is only a safety net, so an idle worker issues
    /// a few queries a minute per stage; SQLite polls (a cheap local read).
    async fn idle(&self) {
        let now = crate::now_ms();
        let poll = if self.notifier.listening() {
            IDLE_POLL_WITH_NOTIFY
        } else {
            self.settings.poll_interval
        };
        let mut sleep = poll;
        if self.notifier.listening() {
            let next: std::result::Result<Option<i64>, _> =
                sqlx::query_scalar("SELECT MIN(run_at) FROM jobs WHERE stage = $1")
                    .bind(self.spec.stage.as_str())
                    .fetch_one(self.store.pool())
                    .await;
            if let Ok(Some(at)) = next {
                sleep = sleep.min(Duration::from_millis((at - now).max(0) as u64 + 5));
            }
        }
        let woken = self.notifier.stage(self.spec.stage);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = self.wake.notified() => {}
            _ = self.published.notified() => {}
            _ = woken.notified() => {}
            _ = self.inflight.freed.notified() => {}
        }
    }

    /// Claim up to `limit` jobs; returns how many and the last business served.
    async fn claim(
        &self,
        limit: u32,
        cursor: i64,
        per_business: u32,
        served_json: &str,
    ) -> Result<(usize, i64)> {
        let now = crate::now_ms();
        let token: i64 = rand::thread_rng().gen_range(1..i64::MAX);
        let stage = self.spec.stage;
        // A claim writes: on SQLite it takes this process's turn (store/write_tx.rs).
        let turn = self.store.write_turn().await?;
        let rows = sqlx::query(&claim_sql(self.store.dialect()))
            .bind(now + self.settings.visibility_timeout.as_millis() as i64)
            .bind(now)
            .bind(token)
            .bind(stage.as_str())
            .bind(limit as i64)
            .bind(cursor)
            .bind(per_business.max(1) as i64)
            .bind(served_json)
            .fetch_all(self.store.pool())
            .await
            .ctx(|| format!("claiming {stage} jobs"))?;
        drop(turn);
        let n = rows.len();
        let mut last = cursor;
        let mut ready = Vec::with_capacity(n);
        for r in &rows {
            match decode_row(r) {
                Ok((row_id, job, redelivered)) => {
                    last = last.max(job.business_id);
                    self.inflight.add(row_id, token);
                    ready.push((row_id, job, redelivered));
                }
                Err((row_id, job_id, payload, why)) => {
                    let business: Option<i64> = col(r, "business_id").ok();
                    self.archive_undecodable(stage, business, row_id, job_id, payload, why)
                        .await?;
                }
            }
        }
        // Oldest first within the batch (the claim's order is by business).
        ready.sort_by_key(|(row_id, _, _)| *row_id);
        for (row_id, job, redelivered) in ready {
            let queue = job.queue();
            let acker = DbAcker {
                row_id,
                token,
                writer: self.writer.clone(),
                store: self.store.clone(),
                settled: AtomicBool::new(false),
                inflight: self.inflight.clone(),
                queue,
            };
            let d = Delivery::new(
                job,
                redelivered,
                Box::new(acker),
                self.store.clone(),
                self.settings.policy.clone(),
            );
            if self.tx.send(d).await.is_err() {
                return Ok((n, last)); // consumer gone: the dropped acker releases the job
            }
        }
        Ok((n, last))
    }

    async fn archive_undecodable(
        &self,
        stage: Stage,
        business: Option<i64>,
        row_id: i64,
        job_id: String,
        payload: String,
        why: String,
    ) -> Result<()> {
        let queue = match business {
            Some(b) => stage.queue_for(b),
            None => stage.as_str().to_string(),
        };
        tracing::error!(%queue, row_id, %why, "undecodable job archived to dead_jobs");
        let now = crate::now_ms();
        let insert = DeadJobInsert {
            job_id: if job_id.is_empty() {
                format!("jobs-row-{row_id}")
            } else {
                job_id
            },
            business_id: business,
            stage: Some(stage),
            call_id: None,
            queue,
            payload,
            headers: "{}".into(),
            attempts: 1,
            errors: vec![AttemptError {
                attempt: 1,
                at: now,
                error: format!("undecodable job: {why}"),
            }],
            reason: "undecodable".into(),
            source: "worker".into(),
        };
        self.store.insert_dead_job(&insert).await?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(row_id)
            .execute(self.store.pool())
            .await
            .ctx(|| format!("removing undecodable job row {row_id}"))?;
        Ok(())
    }
}

#[async_trait]
impl Broker for DatabaseBroker {
    fn kind(&self) -> &'static str {
        "database"
    }

    fn enqueued(&self) {
        self.published.notify_waiters();
    }

    async fn publish(&self, job: &Job) -> Result<()> {
        self.publish_many(std::slice::from_ref(job)).await
    }

    async fn publish_many(&self, jobs: &[Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let jobs = jobs.to_vec();
        self.write(|tx| WriteOp::Insert(jobs, tx)).await?;
        self.published.notify_waiters();
        Ok(())
    }

    async fn consume(&self, spec: ConsumeSpec) -> Result<Consumer> {
        let cap = (spec.prefetch as usize * spec.businesses.len().max(1)).clamp(1, 4096);
        let (tx, rx) = mpsc::channel(cap);
        let businesses = Arc::new(StdMutex::new(spec.businesses.clone()));
        let stopped = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let lp = ClaimLoop {
            store: self.store.clone(),
            settings: self.settings.clone(),
            spec,
            businesses: businesses.clone(),
            stopped: stopped.clone(),
            wake: wake.clone(),
            published: self.published.clone(),
            writer: self.writer.clone(),
            connected: self.connected.clone(),
            tx,
            inflight: Arc::new(InFlight::default()),
            notifier: self
                .notifier
                .get_or_init(|| Notifier::start(&self.store))
                .clone(),
        };
        tokio::spawn(lp.run());
        Ok(Consumer::new(
            rx,
            Box::new(DbConsumerControl {
                businesses,
                stopped,
                wake,
            }),
        ))
    }

    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        let now = crate::now_ms();
        let rows = sqlx::query(
            "SELECT queue, business_id, stage, COUNT(*) AS n, \
             SUM(CASE WHEN claim_token IS NOT NULL AND run_at > $1 THEN 1 ELSE 0 END) AS inflight, \
             MIN(CASE WHEN run_at <= $1 THEN enqueued_at END) AS oldest_ready \
             FROM jobs GROUP BY queue, business_id, stage",
        )
        .bind(now)
        .fetch_all(self.store.pool())
        .await
        .ctx(|| "reading job queue depths".into())?;
        let mut out = Vec::new();
        for r in &rows {
            let business_id: i64 = col(r, "business_id")?;
            if !businesses.is_empty() && !businesses.contains(&business_id) {
                continue;
            }
            let stage: String = col(r, "stage")?;
            let n: i64 = col(r, "n")?;
            let inflight: Option<i64> = col(r, "inflight")?;
            let oldest: Option<i64> = col(r, "oldest_ready")?;
            out.push(QueueStat {
                queue: col(r, "queue")?,
                business_id: Some(business_id),
                stage: stage.parse().ok(),
                depth: n as u64,
                in_flight: Some(inflight.unwrap_or(0) as u64),
                oldest_age_ms: oldest.map(|t| now - t),
                publish_rate: None,
                deliver_rate: None,
                consumers: None,
                read_at: Some(now),
            });
        }
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(out)
    }

    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        Ok(vec![])
    }

    async fn drain_dead_letters(&self) -> Result<u64> {
        Ok(0)
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    async fn close(&self) {}
}
