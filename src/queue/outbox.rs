//! The transactional outbox: a change that implies a job writes the job in the change's own
//! transaction, so a crash can never leave one without the other.
//!
//! - database broker: the `jobs` row itself is inserted in that transaction;
//! - RabbitMQ: an `outbox` row is inserted, and a relay (in every worker process, and
//!   after their own commits in `ingest` and operator actions) publishes it with publisher
//!   confirms and deletes it after the confirm. A relay that dies mid-way leaves its rows
//!   claimed until `claimed_until`; they are published again (at-least-once; the stage start
//!   is fenced, so a duplicate delivery is skipped).

use super::{Broker, Job, QueueError, Result};
use crate::store::{col, Ctx, Dialect, Store, StoreError};
use std::time::Duration;

/// How long a relay owns the rows it claimed before another relay may take them.
const RELAY_CLAIM: Duration = Duration::from_secs(30);

/// Write `jobs` on the caller's transaction. Call [`Broker::enqueued`] after the commit to
/// wake local consumers / the relay at once (otherwise they find the jobs on their next poll).
pub async fn enqueue_in(
    conn: &mut sqlx::AnyConnection,
    broker_kind: &str,
    jobs: &[Job],
) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let now = crate::now_ms();
    if broker_kind == "database" {
        let refs: Vec<&Job> = jobs.iter().collect();
        return super::database::insert_jobs(conn, &refs, now).await;
    }
    for chunk in jobs.chunks(400) {
        let mut sql = String::from(
            "INSERT INTO outbox (job_id, queue, business_id, stage, call_id, body, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 7;
            if i > 0 {
                sql.push(',');
            }
            let ps: Vec<String> = (1..=7).map(|k| format!("${}", b + k)).collect();
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
                .bind(serde_json::to_string(j).expect("a job serializes"))
                .bind(now);
        }
        q.execute(&mut *conn)
            .await
            .ctx(|| format!("writing {} jobs to the outbox", chunk.len()))?;
    }
    Ok(())
}

fn claim_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE claimed_until <= $2 ORDER BY id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) RETURNING id, job_id, body"
        }
        // One writer at a time on SQLite: the UPDATE itself is the lock.
        Dialect::Sqlite => {
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE claimed_until <= $2 ORDER BY id LIMIT $3) \
             RETURNING id, job_id, body"
        }
    }
}

/// Publish up to `batch` outbox rows with confirms and delete them. Returns how many were
/// published. Nothing to do for the database broker (its jobs never pass the outbox).
pub async fn relay_once(store: &Store, broker: &dyn Broker, batch: u32) -> Result<u64> {
    if broker.kind() == "database" {
        return Ok(0);
    }
    let now = crate::now_ms();
    let rows = sqlx::query(claim_sql(store.dialect()))
        .bind(now + RELAY_CLAIM.as_millis() as i64)
        .bind(now)
        .bind(batch as i64)
        .fetch_all(store.pool())
        .await
        .ctx(|| "claiming outbox rows to publish".into())?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut jobs = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for r in &rows {
        let id: i64 = col(r, "id")?;
        let body: String = col(r, "body")?;
        match serde_json::from_str::<Job>(&body) {
            Ok(j) => {
                ids.push(id);
                jobs.push(j);
            }
            Err(e) => bad.push((id, col::<String>(r, "job_id")?, body, e.to_string())),
        }
    }
    for (id, job_id, body, why) in bad {
        // Cannot happen short of a hand-edited row; kept visible in the DLQ, not retried forever.
        let insert = crate::store::DeadJobInsert {
            job_id,
            business_id: None,
            stage: None,
            call_id: None,
            queue: "outbox".into(),
            payload: body,
            headers: "{}".into(),
            attempts: 1,
            errors: vec![super::AttemptError {
                attempt: 1,
                at: now,
                error: format!("outbox row {id} is not a job: {why}"),
            }],
            reason: "undecodable".into(),
            source: "outbox".into(),
        };
        store.insert_dead_job(&insert).await?;
        delete(store, &[id]).await?;
    }
    if jobs.is_empty() {
        return Ok(0);
    }
    match broker.publish_many(&jobs).await {
        Ok(()) => {
            crate::failpoint::hit("relay_after_publish").await;
            delete(store, &ids).await?;
            Ok(jobs.len() as u64)
        }
        Err(e) => {
            // Hand the rows back after a short pause instead of waiting out the claim.
            let retry_at = crate::now_ms() + 1000;
            let _ = sqlx::query(&format!(
                "UPDATE outbox SET claimed_until = $1, last_error = $2 WHERE id IN ({})",
                crate::store::id_list(&ids)
            ))
            .bind(retry_at)
            .bind(e.to_string().chars().take(500).collect::<String>())
            .execute(store.pool())
            .await;
            Err(e)
        }
    }
}

async fn delete(store: &Store, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "DELETE FROM outbox WHERE id IN ({})",
        crate::store::id_list(ids)
    ))
    .execute(store.pool())
    .await
    .ctx(|| format!("deleting {} published outbox rows", ids.len()))?;
    Ok(())
}

/// Relay until the outbox is empty or `deadline` passes (ingest and operator actions call
/// this after their commit so their jobs go out at once; a worker relays the rest).
pub async fn flush(store: &Store, broker: &dyn Broker, deadline: Duration) -> Result<u64> {
    if broker.kind() == "database" {
        return Ok(0);
    }
    let until = std::time::Instant::now() + deadline;
    let mut total = 0;
    loop {
        let n = relay_once(store, broker, 500).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
        if std::time::Instant::now() >= until {
            return Err(QueueError::Unavailable(format!(
                "outbox not drained within {deadline:?} ({total} published so far); a worker relays the rest"
            )));
        }
    }
}

/// Outbox depth and the age of its oldest row (ms), for the console header and alerts.
pub async fn depth(store: &Store) -> Result<(i64, Option<i64>), StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox")
        .fetch_one(store.pool())
        .await
        .ctx(|| "reading the outbox depth".into())?;
    let n: i64 = col(&r, "n")?;
    let oldest: Option<i64> = col(&r, "oldest")?;
    Ok((n, oldest.map(|t| crate::now_ms() - t)))
}
