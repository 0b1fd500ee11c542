//! The DLQ as a table, for both brokers: browse, search, group, retry, discard in SQL.

use super::{col, id_list, Ctx, Result, Store};
use crate::domain::signature::error_signature;
use crate::domain::stage::Stage;
use crate::queue::{AttemptError, Job};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadJobStatus {
    Dead,
    Retried,
    Discarded,
}

impl DeadJobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadJobStatus::Dead => "dead",
            DeadJobStatus::Retried => "retried",
            DeadJobStatus::Discarded => "discarded",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "dead" => Ok(Self::Dead),
            "retried" => Ok(Self::Retried),
            "discarded" => Ok(Self::Discarded),
            other => Err(super::StoreError::Corrupt(format!(
                "dead_jobs.status {other:?}"
            ))),
        }
    }
}

/// A dead job about to be written.
#[derive(Debug, Clone)]
pub struct DeadJobInsert {
    pub job_id: String,
    pub business_id: Option<i64>,
    pub stage: Option<Stage>,
    pub call_id: Option<i64>,
    pub queue: String,
    /// The message body as received (JSON when decodable, else the raw text, lossily).
    pub payload: String,
    /// Broker headers/properties as JSON (DLX arrivals keep `x-death` etc. here).
    pub headers: String,
    pub attempts: u32,
    pub errors: Vec<AttemptError>,
    pub reason: String,
    /// "worker" (a worker gave up) or "dlx" (the broker dead-lettered it).
    pub source: String,
}

impl DeadJobInsert {
    pub fn from_job(job: &Job, reason: &str) -> DeadJobInsert {
        DeadJobInsert {
            job_id: job.id.clone(),
            business_id: Some(job.business_id),
            stage: Some(job.stage),
            call_id: job.call_id,
            queue: job.queue(),
            payload: job.payload.to_string(),
            headers: serde_json::json!({ "first_enqueued_at": job.first_enqueued_at }).to_string(),
            attempts: job.attempts,
            errors: job.errors.clone(),
            reason: reason.to_string(),
            source: "worker".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadJob {
    pub id: i64,
    pub job_id: String,
    pub business_id: Option<i64>,
    pub stage: Option<String>,
    pub call_id: Option<i64>,
    pub queue: String,
    pub payload: String,
    pub headers: String,
    pub attempts: i64,
    pub errors: Vec<AttemptError>,
    pub first_error: String,
    pub last_error: String,
    pub error_signature: String,
    pub first_failed_at: i64,
    pub last_failed_at: i64,
    pub dead_at: i64,
    pub reason: String,
    pub source: String,
    pub status: DeadJobStatus,
    pub status_at: Option<i64>,
    pub status_by: Option<String>,
    pub retried_as: Option<String>,
}

impl DeadJob {
    /// The job to publish when an operator retries this one: same call and payload, a
    /// fresh job id (so a second death is a new history row) and a clean attempt count.
    pub fn to_retry_job(&self) -> Option<Job> {
        let business_id = self.business_id?;
        let stage: Stage = self.stage.as_deref()?.parse().ok()?;
        let payload = serde_json::from_str(&self.payload).ok()?;
        Some(Job::new(business_id, stage, self.call_id, payload))
    }
}

/// Filters for browsing; every field narrows. `after_id` pages backwards in time (keyset).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeadJobFilter {
    /// `None` = dead only, unless `with_history`.
    pub status: Option<DeadJobStatus>,
    /// With `status: None`: retried and discarded rows too (browsing history; actions
    /// still only touch rows that are dead).
    #[serde(default)]
    pub with_history: bool,
    pub business_id: Option<i64>,
    pub stage: Option<Stage>,
    /// Case-insensitive substring of the last error.
    pub error_contains: Option<String>,
    pub signature: Option<String>,
    pub dead_since: Option<i64>,
    pub dead_before: Option<i64>,
    pub call_id: Option<i64>,
}

const COLUMNS: &str = "id, job_id, business_id, stage, call_id, queue, payload, headers, attempts, errors, \
    first_error, last_error, error_signature, first_failed_at, last_failed_at, dead_at, reason, source, \
    status, status_at, status_by, retried_as";

fn row_to_dead_job(r: &AnyRow) -> Result<DeadJob> {
    let errors: String = col(r, "errors")?;
    let status: String = col(r, "status")?;
    Ok(DeadJob {
        id: col(r, "id")?,
        job_id: col(r, "job_id")?,
        business_id: col(r, "business_id")?,
        stage: col(r, "stage")?,
        call_id: col(r, "call_id")?,
        queue: col(r, "queue")?,
        payload: col(r, "payload")?,
        headers: col(r, "headers")?,
        attempts: col(r, "attempts")?,
        errors: serde_json::from_str(&errors)
            .map_err(|e| super::StoreError::Corrupt(format!("dead_jobs.errors: {e}")))?,
        first_error: col(r, "first_error")?,
        last_error: col(r, "last_error")?,
        error_signature: col(r, "error_signature")?,
        first_failed_at: col(r, "first_failed_at")?,
        last_failed_at: col(r, "last_failed_at")?,
        dead_at: col(r, "dead_at")?,
        reason: col(r, "reason")?,
        source: col(r, "source")?,
        status: DeadJobStatus::parse(&status)?,
        status_at: col(r, "status_at")?,
        status_by: col(r, "status_by")?,
        retried_as: col(r, "retried_as")?,
    })
}

/// WHERE clause and its binds, shared by list/count/group/bulk operations so
/// "everything matching the filter" means the same rows everywhere.
struct Where {
    sql: String,
    strings: Vec<(usize, String)>,
    ints: Vec<(usize, i64)>,
    n: usize,
}

impl Where {
    fn build(f: &DeadJobFilter) -> Where {
        let mut w = Where {
            sql: String::from("1=1"),
            strings: vec![],
            ints: vec![],
            n: 0,
        };
        if !(f.with_history && f.status.is_none()) {
            let status = f.status.unwrap_or(DeadJobStatus::Dead);
            w.push_str("status = ", status.as_str().to_string());
        }
        if let Some(b) = f.business_id {
            w.push_int("business_id = ", b);
        }
        if let Some(s) = f.stage {
            w.push_str("stage = ", s.as_str().to_string());
        }
        if let Some(t) = &f.error_contains {
            w.push_str("LOWER(last_error) LIKE ", format!("%{}%", t.to_lowercase()));
        }
        if let Some(s) = &f.signature {
            w.push_str("error_signature = ", s.clone());
        }
        if let Some(t) = f.dead_since {
            w.push_int("dead_at >= ", t);
        }
        if let Some(t) = f.dead_before {
            w.push_int("dead_at < ", t);
        }
        if let Some(c) = f.call_id {
            w.push_int("call_id = ", c);
        }
        w
    }
    fn push_str(&mut self, lhs: &str, v: String) {
        self.n += 1;
        self.sql.push_str(&format!(" AND {lhs}${}", self.n));
        self.strings.push((self.n, v));
    }
    fn push_int(&mut self, lhs: &str, v: i64) {
        self.n += 1;
        self.sql.push_str(&format!(" AND {lhs}${}", self.n));
        self.ints.push((self.n, v));
    }
    /// Bind in placeholder order.
    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for i in 1..=self.n {
            if let Some((_, s)) = self.strings.iter().find(|(k, _)| *k == i) {
                q = q.bind(s.as_str());
            } else if let Some((_, v)) = self.ints.iter().find(|(k, _)| *k == i) {
                q = q.bind(*v);
            }
        }
        q
    }
}

/// One group of dead jobs sharing an error signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignatureGroup {
    pub signature: String,
    pub count: i64,
    pub sample_error: String,
    pub last_dead_at: i64,
}

impl Store {
    /// Write a dead job. A second write of the same (job, attempt) — a redelivered job
    /// that dies again before its ack landed — returns the existing row instead.
    pub async fn insert_dead_job(&self, d: &DeadJobInsert) -> Result<i64> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("writing dead job {} of queue {}", d.job_id, d.queue))?;
        self.insert_dead_job_in(&mut conn, d).await
    }

    /// `insert_dead_job` on the caller's transaction (the dead row and the call's move to
    /// dead commit together: the DLQ never holds a call that is not dead).
    pub async fn insert_dead_job_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        d: &DeadJobInsert,
    ) -> Result<i64> {
        let now = crate::now_ms();
        let first = d.errors.first();
        let last = d.errors.last();
        let first_error = first
            .map(|e| e.error.clone())
            .unwrap_or_else(|| d.reason.clone());
        let last_error = last
            .map(|e| e.error.clone())
            .unwrap_or_else(|| d.reason.clone());
        let errors = serde_json::to_string(&d.errors).expect("errors serialize");
        let row = sqlx::query(
            "INSERT INTO dead_jobs (job_id, business_id, stage, call_id, queue, payload, headers, attempts, errors, \
             first_error, last_error, error_signature, first_failed_at, last_failed_at, dead_at, reason, source, status) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,'dead') \
             ON CONFLICT (job_id, attempts) DO NOTHING RETURNING id",
        )
        .bind(&d.job_id)
        .bind(d.business_id)
        .bind(d.stage.map(|s| s.as_str()))
        .bind(d.call_id)
        .bind(&d.queue)
        .bind(&d.payload)
        .bind(&d.headers)
        .bind(d.attempts as i64)
        .bind(&errors)
        .bind(&first_error)
        .bind(&last_error)
        .bind(error_signature(&last_error))
        .bind(first.map(|e| e.at).unwrap_or(now))
        .bind(last.map(|e| e.at).unwrap_or(now))
        .bind(now)
        .bind(&d.reason)
        .bind(&d.source)
        .fetch_optional(&mut *conn)
        .await
        .ctx(|| format!("writing dead job {} of queue {}", d.job_id, d.queue))?;
        match row {
            Some(r) => col(&r, "id"),
            None => {
                let r = sqlx::query("SELECT id FROM dead_jobs WHERE job_id = $1 AND attempts = $2")
                    .bind(&d.job_id)
                    .bind(d.attempts as i64)
                    .fetch_one(&mut *conn)
                    .await
                    .ctx(|| format!("reading existing dead job {}", d.job_id))?;
                col(&r, "id")
            }
        }
    }

    /// The newest dead row of job `job_id` that is still dead (not retried or discarded):
    /// a redelivery of a job that already died is a duplicate, not an operator's retry.
    pub async fn live_dead_row_of_job(&self, job_id: &str) -> Result<Option<i64>> {
        let r = sqlx::query(
            "SELECT id FROM dead_jobs WHERE job_id = $1 AND status = 'dead' ORDER BY id DESC LIMIT 1",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("looking up dead rows of job {job_id}"))?;
        r.map(|r| col(&r, "id")).transpose()
    }

    pub async fn dead_job(&self, id: i64) -> Result<DeadJob> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM dead_jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading dead job {id}"))?
            .ok_or_else(|| super::StoreError::NotFound(format!("dead job {id}")))?;
        row_to_dead_job(&r)
    }

    /// A page of dead jobs, newest first. `before_id` continues after the last row shown.
    pub async fn list_dead_jobs(
        &self,
        f: &DeadJobFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeadJob>> {
        let mut w = Where::build(f);
        if let Some(b) = before_id {
            w.push_int("id < ", b);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_jobs WHERE {} ORDER BY id DESC LIMIT {}",
            w.sql,
            limit.min(10_000)
        );
        let rows = w
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing dead jobs".into())?;
        rows.iter().map(row_to_dead_job).collect()
    }

    /// Ids of every row matching the filter, oldest first, from `after_id` on: the cursor
    /// for bulk retry/discard of everything matching, not just a page.
    pub async fn dead_job_ids(
        &self,
        f: &DeadJobFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        let mut w = Where::build(f);
        w.push_int("id > ", after_id);
        let sql = format!(
            "SELECT id FROM dead_jobs WHERE {} ORDER BY id LIMIT {}",
            w.sql, limit
        );
        let rows = w
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing dead job ids".into())?;
        rows.iter().map(|r| col(r, "id")).collect()
    }

    pub async fn count_dead_jobs(&self, f: &DeadJobFilter) -> Result<i64> {
        let w = Where::build(f);
        let sql = format!("SELECT COUNT(*) AS n FROM dead_jobs WHERE {}", w.sql);
        let r = w
            .bind(sqlx::query(&sql))
            .fetch_one(&self.pool)
            .await
            .ctx(|| "counting dead jobs".into())?;
        col(&r, "n")
    }

    /// Dead jobs grouped by error signature, largest group first.
    pub async fn dead_job_groups(
        &self,
        f: &DeadJobFilter,
        limit: u32,
    ) -> Result<Vec<SignatureGroup>> {
        let w = Where::build(f);
        let sql = format!(
            "SELECT error_signature, COUNT(*) AS n, MAX(last_error) AS sample, MAX(dead_at) AS last_dead \
             FROM dead_jobs WHERE {} GROUP BY error_signature ORDER BY n DESC, error_signature LIMIT {limit}",
            w.sql
        );
        let rows = w
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| "grouping dead jobs".into())?;
        rows.iter()
            .map(|r| {
                Ok(SignatureGroup {
                    signature: col(r, "error_signature")?,
                    count: col(r, "n")?,
                    sample_error: col(r, "sample")?,
                    last_dead_at: col(r, "last_dead")?,
                })
            })
            .collect()
    }

    /// Dead jobs per business (status dead), for the overview.
    pub async fn dead_job_counts_by_business(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT business_id, COUNT(*) AS n FROM dead_jobs WHERE status = 'dead' AND business_id IS NOT NULL GROUP BY business_id",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| "counting dead jobs by business".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "business_id")?, col(r, "n")?)))
            .collect()
    }

    /// Mark dead rows retried (after their new jobs were confirmed). Only rows still
    /// `dead` change; returns how many did. `retried_as` maps row id → new job id.
    pub async fn mark_dead_jobs_retried(
        &self,
        retried_as: &[(i64, String)],
        by: &str,
    ) -> Result<u64> {
        if retried_as.is_empty() {
            return Ok(0);
        }
        let now = crate::now_ms();
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (id, job_id) in retried_as {
            n += sqlx::query(
                "UPDATE dead_jobs SET status = 'retried', status_at = $1, status_by = $2, retried_as = $3 \
                 WHERE id = $4 AND status = 'dead'",
            )
            .bind(now)
            .bind(by)
            .bind(job_id)
            .bind(*id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("marking dead job {id} retried"))?
            .rows_affected();
        }
        tx.commit()
            .await
            .ctx(|| "committing retry bookkeeping".into())?;
        Ok(n)
    }

    /// Mark one dead row retried as job `job_id`, on the caller's transaction. `false` when
    /// the row is no longer `dead` (someone retried or discarded it meanwhile).
    pub async fn mark_dead_job_retried_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
        job_id: &str,
        by: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE dead_jobs SET status = 'retried', status_at = $1, status_by = $2, retried_as = $3 \
             WHERE id = $4 AND status = 'dead'",
        )
        .bind(crate::now_ms())
        .bind(by)
        .bind(job_id)
        .bind(id)
        .execute(&mut *conn)
        .await
        .ctx(|| format!("marking dead job {id} retried"))?
        .rows_affected();
        Ok(n > 0)
    }

    /// Discard dead rows (payload kept as history). Returns how many changed.
    pub async fn discard_dead_jobs(&self, ids: &[i64], by: &str) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE dead_jobs SET status = 'discarded', status_at = $1, status_by = $2 WHERE status = 'dead' AND id IN ({})",
            id_list(ids)
        );
        Ok(sqlx::query(&sql)
            .bind(crate::now_ms())
            .bind(by)
            .execute(&self.pool)
            .await
            .ctx(|| format!("discarding {} dead jobs", ids.len()))?
            .rows_affected())
    }

    /// `discard_dead_jobs` on the caller's transaction; returns the rows it changed as
    /// (id, call_id, business_id, stage), so the caller can audit and trace exactly those.
    pub async fn discard_dead_jobs_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        ids: &[i64],
        by: &str,
    ) -> Result<Vec<(i64, Option<i64>, Option<i64>, Option<String>)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!(
            "UPDATE dead_jobs SET status = 'discarded', status_at = $1, status_by = $2 WHERE status = 'dead' AND id IN ({}) \
             RETURNING id, call_id, business_id, stage",
            id_list(ids)
        );
        let rows = sqlx::query(&sql)
            .bind(crate::now_ms())
            .bind(by)
            .fetch_all(&mut *conn)
            .await
            .ctx(|| format!("discarding {} dead jobs", ids.len()))?;
        let mut out: Vec<_> = rows
            .iter()
            .map(|r| {
                Ok((
                    col(r, "id")?,
                    col(r, "call_id")?,
                    col(r, "business_id")?,
                    col(r, "stage")?,
                ))
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|r: &(i64, Option<i64>, Option<i64>, Option<String>)| r.0);
        Ok(out)
    }

    pub async fn dead_jobs_by_ids(&self, ids: &[i64]) -> Result<Vec<DeadJob>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_jobs WHERE id IN ({}) ORDER BY id",
            id_list(ids)
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("reading {} dead jobs", ids.len()))?;
        rows.iter().map(row_to_dead_job).collect()
    }
}
