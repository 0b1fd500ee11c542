//! A stage's successful result in one round trip (issue 14): the move out of running
//! (fenced by the run's lease, which it releases), its trace row, the throughput bucket,
//! the next stage's job (the `jobs` row or the `outbox` row: the transactional outbox) and
//! the database broker's ack. Postgres does all of it in one statement (data-modifying
//! CTEs, one implicit transaction); SQLite, where a statement is a function call and not a
//! round trip, in one `BEGIN IMMEDIATE` transaction.

use super::throughput::minute_of;
use super::{Ctx, Dialect, Result, Store, StoreError};
use crate::domain::job::Job;
use crate::domain::stage::{Position, Stage};

/// Where the next stage's job goes: the database broker's `jobs` table, or the `outbox`
/// a relay publishes to RabbitMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTable {
    Jobs,
    Outbox,
}

pub struct StageCommit<'a> {
    pub call_id: i64,
    /// The run's lease token: nothing commits unless the run still holds it.
    pub token: i64,
    pub stage: Stage,
    pub to: Position,
    /// Trace kind: completed / review / done.
    pub kind: &'a str,
    pub reason: &'a str,
    pub audio_seconds: i64,
    pub next_job: Option<&'a Job>,
    pub job_table: JobTable,
    /// The database broker's claim of the job being settled: (row id, claim token).
    pub ack: Option<(i64, i64)>,
    /// What the run noted while it ran, written before its result row.
    pub events: &'a [super::events::PendingEvent],
    /// Columns of the call the run set (the caller's number, the extracted name), written
    /// by the same UPDATE that moves the call. Names come from code, never from input.
    pub call_fields: &'a [CallField],
    /// Agent results of the run.
    pub analyses: &'a [super::transcripts::StoredAnalysis],
    /// The transcript the run made (transcribe, or sync from the record).
    pub transcript: Option<&'a super::transcripts::StoredTranscript>,
}

/// A stage result that can cross to the group commit's task (`Store::commit_stage_result_grouped`).
#[derive(Debug, Clone)]
pub struct StageCommitOwned {
    pub call_id: i64,
    /// The call's business: batches are written in (business, stage) order.
    pub business_id: i64,
    pub token: i64,
    pub stage: Stage,
    pub to: Position,
    pub kind: &'static str,
    pub reason: String,
    pub audio_seconds: i64,
    pub next_job: Option<Job>,
    pub job_table: JobTable,
    pub ack: Option<(i64, i64)>,
    pub events: Vec<super::events::PendingEvent>,
    pub call_fields: Vec<CallField>,
    pub analyses: Vec<super::transcripts::StoredAnalysis>,
    pub transcript: Option<super::transcripts::StoredTranscript>,
}

impl StageCommitOwned {
    pub fn as_commit(&self) -> StageCommit<'_> {
        StageCommit {
            call_id: self.call_id,
            token: self.token,
            stage: self.stage,
            to: self.to,
            kind: self.kind,
            reason: &self.reason,
            audio_seconds: self.audio_seconds,
            next_job: self.next_job.as_ref(),
            job_table: self.job_table,
            ack: self.ack,
            events: &self.events,
            call_fields: &self.call_fields,
            analyses: &self.analyses,
            transcript: self.transcript.as_ref(),
        }
    }
}

/// One of the call's columns (named in code, never from input) and its new value as text
/// (numbers in Rust's own formatting; `field_type` says what it is cast to).
pub type CallField = (&'static str, Option<String>);

impl Store {
    /// Set columns of a call outside a stage result (what a failed run had set).
    pub async fn set_call_fields(&self, call_id: i64, fields: &[CallField]) -> Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE calls SET updated_at = $1{} WHERE id = $2",
            field_sets(fields, 3)
        );
        let mut q = sqlx::query(&sql).bind(crate::now_ms()).bind(call_id);
        for (_, v) in fields {
            q = q.bind(v.as_deref());
        }
        q.execute(&self.pool)
            .await
            .ctx(|| format!("updating call {call_id}"))?;
        Ok(())
    }
}

/// `, col = $n` for each field, numbered from `first`.
fn field_sets(fields: &[CallField], first: usize) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, (col, _))| {
            debug_assert!(col
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
            format!(", {col} = CAST(${} AS {})", first + i, field_type(col))
        })
        .collect()
}

/// The SQL type a call column's value (carried as text) is cast to: the numeric columns a
/// stage sets, text for the rest.
pub(super) fn field_type(col: &str) -> &'static str {
    match col {
        "customer_id" | "lead_id" | "review_priority" => "BIGINT",
        "link_confidence" => "DOUBLE PRECISION",
        _ => "TEXT",
    }
}

/// What committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageCommitted {
    /// The claimed job row was deleted in the same commit.
    pub acked: bool,
}

impl Store {
    /// Commit a stage's result. `Conflict` when the run no longer holds the call (its lease
    /// ran out and another run took over, or an operator moved the call): nothing is written.
    pub async fn commit_stage_result(&self, c: &StageCommit<'_>) -> Result<StageCommitted> {
        match self.dialect {
            Dialect::Postgres => {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .ctx(|| "acquiring a connection".into())?;
                self.commit_stage_pg(&mut conn, c).await
            }
            Dialect::Sqlite => {
                let mut tx = self.begin_write().await?;
                let done = self.commit_stage_sqlite(&mut tx, c).await?;
                tx.commit()
                    .await
                    .ctx(|| format!("committing the {} result of call {}", c.stage, c.call_id))?;
                Ok(done)
            }
        }
    }

    /// The same inside the caller's transaction, which may add more (the outbound call a
    /// new lead implies) before it commits.
    pub async fn commit_stage_result_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        c: &StageCommit<'_>,
    ) -> Result<StageCommitted> {
        match self.dialect {
            Dialect::Postgres => self.commit_stage_pg(conn, c).await,
            Dialect::Sqlite => self.commit_stage_sqlite(conn, c).await,
        }
    }

    async fn commit_stage_pg(
        &self,
        conn: &mut sqlx::AnyConnection,
        c: &StageCommit<'_>,
    ) -> Result<StageCommitted> {
        let now = crate::now_ms();
        // $1..$10 always; the job and the ack take the numbers after them.
        // The noted rows take $11.. (five each) and negative `ord`s, so the result row (ord
        // 0) gets the highest trace id.
        let k = c.events.len();
        let noted: String = (0..k)
            .map(|i| {
                let b = 10 + i * 5;
                format!(
                    "({}, CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT)), ",
                    i as i64 - k as i64,
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let fields = field_sets(c.call_fields, 11 + 5 * k);
        let mut n = 10 + 5 * k + c.call_fields.len();
        let analyses: String = (0..c.analyses.len())
            .map(|i| {
                let b = n + i * 6;
                format!(
                    "{}(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT))",
                    if i == 0 { "" } else { ", " },
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                )
            })
            .collect();
        n += 6 * c.analyses.len();
        let mut sql = format!(
            "WITH moved AS ( \
               UPDATE calls SET stage = $1, state = $2, state_since = $3, \
                 attempts = CASE WHEN stage = $1 THEN attempts ELSE 0 END, last_error = NULL, \
                 updated_at = $3, version = version + 1, lease_token = NULL, lease_until = NULL{fields} \
               WHERE id = $4 AND lease_token = $5 AND stage = $6 AND state = 'running' \
               RETURNING id, business_id), \
             ev AS (INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
               SELECT id, business_id, e.at, e.stage, e.kind, e.reason, e.detail, 'pipeline' \
               FROM moved, (VALUES {noted}(0, $3, $6, $7, $8, CAST(NULL AS TEXT))) \
                 AS e(ord, at, stage, kind, reason, detail) ORDER BY e.ord), \
             tp AS (INSERT INTO throughput (minute, business_id, stage, calls, audio_seconds, failures) \
               SELECT $9, business_id, $6, 1, $10, 0 FROM moved \
               ON CONFLICT (minute, business_id, stage) DO UPDATE SET calls = throughput.calls + 1, \
               audio_seconds = throughput.audio_seconds + excluded.audio_seconds)",
        );
        if !c.analyses.is_empty() {
            sql.push_str(&format!(
                ", an AS (INSERT INTO analyses (call_id, agent_id, agent_version, kind, cache_key, result, raw_output, created_at) \
                 SELECT moved.id, a.agent_id, a.agent_version, a.kind, a.cache_key, a.result, a.raw_output, $3 \
                 FROM moved, (VALUES {analyses}) AS a(agent_id, agent_version, kind, cache_key, result, raw_output) \
                 {})",
                super::transcripts::ANALYSIS_UPSERT
            ));
        }
        if c.next_job.is_some() {
            let p = |k: usize| format!("${}", n + k);
            match c.job_table {
                JobTable::Jobs => sql.push_str(&format!(
                    ", nj AS (INSERT INTO jobs (job_id, queue, business_id, stage, call_id, payload, attempts, \
                     errors, first_enqueued_at, enqueued_at, run_at) \
                     SELECT {}, {}, business_id, {}, id, {}, 0, '[]', {}, $3, $3 FROM moved)",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5)
                )),
                JobTable::Outbox => sql.push_str(&format!(
                    ", nj AS (INSERT INTO outbox (job_id, queue, business_id, stage, call_id, body, created_at) \
                     SELECT {}, {}, business_id, {}, id, {}, $3 FROM moved)",
                    p(1),
                    p(2),
                    p(3),
                    p(4)
                )),
            }
            n += match c.job_table {
                JobTable::Jobs => 5,
                JobTable::Outbox => 4,
            };
        }
        if c.transcript.is_some() {
            sql.push_str(&format!(
                ", tr AS (INSERT INTO transcripts (call_id, provider, language, text, segments, stt_skipped, created_at) \
                 SELECT id, ${}, ${}, ${}, ${}, ${}, ${} FROM moved {})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                super::transcripts::TRANSCRIPT_UPSERT
            ));
            n += 6;
        }
        if c.ack.is_some() {
            sql.push_str(&format!(
                ", ack AS (DELETE FROM jobs WHERE id = ${} AND claim_token = ${} \
                 AND EXISTS (SELECT 1 FROM moved) RETURNING 1) \
                 SELECT (SELECT COUNT(*) FROM moved) AS moved, (SELECT COUNT(*) FROM ack) AS acked",
                n + 1,
                n + 2
            ));
        } else {
            sql.push_str(" SELECT (SELECT COUNT(*) FROM moved) AS moved, 0 AS acked");
        }
        let mut q = sqlx::query_as::<_, (i64, i64)>(&sql)
            .bind(c.to.stage.as_str())
            .bind(c.to.state.as_str())
            .bind(now)
            .bind(c.call_id)
            .bind(c.token)
            .bind(c.stage.as_str())
            .bind(c.kind)
            .bind(c.reason)
            .bind(minute_of(now))
            .bind(c.audio_seconds);
        for e in c.events {
            q = q
                .bind(e.at)
                .bind(e.stage.as_str())
                .bind(e.kind.as_str())
                .bind(e.reason.as_str())
                .bind(e.detail.as_deref());
        }
        for (_, v) in c.call_fields {
            q = q.bind(v.as_deref());
        }
        for a in c.analyses {
            q = q
                .bind(a.agent_id)
                .bind(a.agent_version)
                .bind(a.kind.as_str())
                .bind(a.cache_key.as_str())
                .bind(a.result.as_str())
                .bind(a.raw_output.as_deref());
        }
        if let Some(job) = c.next_job {
            q = q
                .bind(job.id.clone())
                .bind(job.queue())
                .bind(job.stage.as_str());
            q = match c.job_table {
                JobTable::Jobs => q.bind(job.payload.to_string()).bind(job.first_enqueued_at),
                JobTable::Outbox => q.bind(serde_json::to_string(job).expect("a job serializes")),
            };
        }
        if let Some(t) = c.transcript {
            // The same columns as `transcripts::bind_transcript`, on a typed query.
            q = q
                .bind(t.provider.as_str())
                .bind(t.language.as_deref())
                .bind(t.text.as_str())
                .bind(t.segments.as_str())
                .bind(t.stt_skipped.as_deref())
                .bind(t.created_at);
        }
        if let Some((row, claim)) = c.ack {
            q = q.bind(row).bind(claim);
        }
        let (moved, acked) = q
            .fetch_one(&mut *conn)
            .await
            .ctx(|| format!("committing the {} result of call {}", c.stage, c.call_id))?;
        if moved == 0 {
            return Err(lost(c));
        }
        Ok(StageCommitted { acked: acked > 0 })
    }

    async fn commit_stage_sqlite(
        &self,
        tx: &mut sqlx::AnyConnection,
        c: &StageCommit<'_>,
    ) -> Result<StageCommitted> {
        let now = crate::now_ms();
        let sql = format!(
            "UPDATE calls SET stage = $1, state = $2, state_since = $3, \
               attempts = CASE WHEN stage = $1 THEN attempts ELSE 0 END, last_error = NULL, \
               updated_at = $3, version = version + 1, lease_token = NULL, lease_until = NULL{} \
             WHERE id = $4 AND lease_token = $5 AND stage = $6 AND state = 'running' \
             RETURNING business_id",
            field_sets(c.call_fields, 7)
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql)
            .bind(c.to.stage.as_str())
            .bind(c.to.state.as_str())
            .bind(now)
            .bind(c.call_id)
            .bind(c.token)
            .bind(c.stage.as_str());
        for (_, v) in c.call_fields {
            q = q.bind(v.as_deref());
        }
        let business_id: Option<i64> = q
            .fetch_optional(&mut *tx)
            .await
            .ctx(|| format!("moving call {} to {}", c.call_id, c.to))?;
        let Some(business_id) = business_id else {
            return Err(lost(c));
        };
        self.append_pending_events(&mut *tx, c.call_id, business_id, c.events)
            .await?;
        self.save_analyses_in(&mut *tx, c.call_id, c.analyses)
            .await?;
        if let Some(t) = c.transcript {
            self.save_transcript_in(&mut *tx, t).await?;
        }
        sqlx::query(
            "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, 'pipeline')",
        )
        .bind(c.call_id)
        .bind(business_id)
        .bind(now)
        .bind(c.stage.as_str())
        .bind(c.kind)
        .bind(c.reason)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("tracing the {} result of call {}", c.stage, c.call_id))?;
        self.bump_throughput(&mut *tx, business_id, c.stage, 1, c.audio_seconds, 0)
            .await?;
        if let Some(job) = c.next_job {
            let q = match c.job_table {
                JobTable::Jobs => sqlx::query(
                    "INSERT INTO jobs (job_id, queue, business_id, stage, call_id, payload, attempts, errors, \
                     first_enqueued_at, enqueued_at, run_at) VALUES ($1, $2, $3, $4, $5, $6, 0, '[]', $7, $8, $8)",
                )
                .bind(job.id.clone())
                .bind(job.queue())
                .bind(job.business_id)
                .bind(job.stage.as_str())
                .bind(job.call_id)
                .bind(job.payload.to_string())
                .bind(job.first_enqueued_at)
                .bind(now),
                JobTable::Outbox => sqlx::query(
                    "INSERT INTO outbox (job_id, queue, business_id, stage, call_id, body, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(job.id.clone())
                .bind(job.queue())
                .bind(job.business_id)
                .bind(job.stage.as_str())
                .bind(job.call_id)
                .bind(serde_json::to_string(job).expect("a job serializes"))
                .bind(now),
            };
            q.execute(&mut *tx)
                .await
                .ctx(|| format!("enqueueing job {} for call {}", job.id, c.call_id))?;
        }
        let mut acked = false;
        if let Some((row, claim)) = c.ack {
            let n = sqlx::query("DELETE FROM jobs WHERE id = $1 AND claim_token = $2")
                .bind(row)
                .bind(claim)
                .execute(&mut *tx)
                .await
                .ctx(|| format!("acking job row {row}"))?
                .rows_affected();
            acked = n > 0;
        }
        Ok(StageCommitted { acked })
    }
}

fn lost(c: &StageCommit<'_>) -> StoreError {
    lease_lost(c.call_id, c.stage)
}

/// The `Conflict` of a result whose run no longer held the call.
pub(super) fn lease_lost(call_id: i64, stage: Stage) -> StoreError {
    StoreError::Conflict(format!(
        "call {call_id}: this run's lease of {stage} was lost (it ran out and another run took the call, or an operator moved it); its result is discarded"
    ))
}
