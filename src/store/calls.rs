//! Calls: idempotent ingest, and stage/state moves checked by the domain state machine.

use super::{col, Ctx, Dialect, Result, Store, StoreError};
use crate::domain::stage::{check_transition, CallState, Position, Stage};
use crate::store::events::NewEvent;
use crate::store::transcripts::{transcript_columns_as, transcript_row, StoredTranscript};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// A call record as ingested.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NewCall {
    pub business_id: i64,
    pub external_id: String,
    pub direction: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub agent_name: Option<String>,
    pub campaign: Option<String>,
    pub language: Option<String>,
    pub started_at: Option<i64>,
    pub duration_ms: i64,
    pub audio_url: Option<String>,
    /// The source record as received, kept for the call view.
    pub raw: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    pub id: i64,
    pub business_id: i64,
    pub external_id: String,
    pub direction: String,
    pub from_number: Option<String>,
    pub from_e164: Option<String>,
    pub number_status: Option<String>,
    pub to_number: Option<String>,
    pub agent_name: Option<String>,
    pub campaign: Option<String>,
    pub language: Option<String>,
    pub started_at: Option<i64>,
    pub duration_ms: i64,
    pub audio_url: Option<String>,
    pub stage: Stage,
    pub state: CallState,
    pub state_since: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub customer_id: Option<i64>,
    pub lead_id: Option<i64>,
    pub link_status: Option<String>,
    pub link_method: Option<String>,
    pub link_confidence: Option<f64>,
    pub extracted_name: Option<String>,
    pub review_priority: Option<i64>,
    pub review_reason: Option<String>,
    /// Ranked candidate customers (JSON) while in review.
    pub review_candidates: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl Call {
    pub fn position(&self) -> Position {
        Position::new(self.stage, self.state)
    }
}

/// What the pipeline ingested for a call beside its columns: the intent and the record as
/// it came (sync and link read them first).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub intent: Option<String>,
    pub raw: String,
}

/// A started stage run: the call as the start left it, and what the start read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedRun {
    pub call: Call,
    /// The transcript when the start read it (`Some(None)`: the call has none).
    pub transcript: Option<Option<StoredTranscript>>,
    /// The record when the start read it.
    pub record: Option<CallRecord>,
}

pub use super::group_commit::StartRequest;

/// What a stage start sets ($1 = now), beside the run's lease.
pub(super) const START_SET: &str = "state = 'running', \
    state_since = CASE WHEN state = 'running' THEN state_since ELSE $1 END, \
    attempts = attempts + 1, updated_at = $1, version = version + 1";

/// A call a start may take ($1 = now): waiting, or running under a lease that ran out.
pub(super) const START_WAITING: &str = "(state IN ('pending', 'retrying') \
    OR (state = 'running' AND (lease_until IS NULL OR lease_until < $1)))";

pub const CALL_COLUMNS: &str = "id, business_id, external_id, direction, from_number, from_e164, number_status, \
    to_number, agent_name, campaign, language, started_at, duration_ms, audio_url, stage, state, state_since, \
    attempts, last_error, customer_id, lead_id, link_status, link_method, link_confidence, extracted_name, \
    review_priority, review_reason, review_candidates, created_at, updated_at, version";

pub fn row_to_call(r: &AnyRow) -> Result<Call> {
    let stage: String = col(r, "stage")?;
    let state: String = col(r, "state")?;
    Ok(Call {
        id: col(r, "id")?,
        business_id: col(r, "business_id")?,
        external_id: col(r, "external_id")?,
        direction: col(r, "direction")?,
        from_number: col(r, "from_number")?,
        from_e164: col(r, "from_e164")?,
        number_status: col(r, "number_status")?,
        to_number: col(r, "to_number")?,
        agent_name: col(r, "agent_name")?,
        campaign: col(r, "campaign")?,
        language: col(r, "language")?,
        started_at: col(r, "started_at")?,
        duration_ms: col(r, "duration_ms")?,
        audio_url: col(r, "audio_url")?,
        stage: stage.parse().map_err(StoreError::Corrupt)?,
        state: state.parse().map_err(StoreError::Corrupt)?,
        state_since: col(r, "state_since")?,
        attempts: col(r, "attempts")?,
        last_error: col(r, "last_error")?,
        customer_id: col(r, "customer_id")?,
        lead_id: col(r, "lead_id")?,
        link_status: col(r, "link_status")?,
        link_method: col(r, "link_method")?,
        link_confidence: col(r, "link_confidence")?,
        extracted_name: col(r, "extracted_name")?,
        review_priority: col(r, "review_priority")?,
        review_reason: col(r, "review_reason")?,
        review_candidates: col(r, "review_candidates")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

/// A requested move of a call, with the reason that goes into its trace.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub to: Position,
    /// The position the caller believes the call is in; a mismatch is a conflict.
    pub expect: Option<Position>,
    pub kind: &'a str,
    pub reason: String,
    pub error: Option<String>,
    pub actor: &'a str,
}

impl Store {
    /// Insert a call at `sync/pending`. A duplicate `(business_id, external_id)` returns
    /// the existing call unchanged and `false`.
    pub async fn ingest_call(&self, c: &NewCall) -> Result<(Call, bool)> {
        let mut tx = self.begin_write().await?;
        let (_, created) = self.ingest_call_in(&mut tx, c).await?;
        tx.commit().await.ctx(|| "committing ingest".into())?;
        let call = self.call_by_external(c.business_id, &c.external_id).await?;
        Ok((call, created))
    }

    /// `ingest_call` on the caller's transaction, so the call and its sync job commit
    /// together. Returns the call's id and whether it was created now.
    pub async fn ingest_call_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        c: &NewCall,
    ) -> Result<(i64, bool)> {
        let now = crate::now_ms();
        let inserted = sqlx::query(
            "INSERT INTO calls (business_id, external_id, direction, from_number, to_number, agent_name, campaign, \
             language, started_at, duration_ms, audio_url, stage, state, state_since, raw, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,'sync','pending',$12,$13,$12,$12) \
             ON CONFLICT (business_id, external_id) DO NOTHING RETURNING id",
        )
        .bind(c.business_id)
        .bind(&c.external_id)
        .bind(&c.direction)
        .bind(c.from_number.as_deref())
        .bind(c.to_number.as_deref())
        .bind(c.agent_name.as_deref())
        .bind(c.campaign.as_deref())
        .bind(c.language.as_deref())
        .bind(c.started_at)
        .bind(c.duration_ms)
        .bind(c.audio_url.as_deref())
        .bind(now)
        .bind(&c.raw)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("ingesting call {:?} of business {}", c.external_id, c.business_id))?;
        let created = inserted.is_some();
        if let Some(r) = &inserted {
            let id: i64 = col(r, "id")?;
            self.append_event(
                &mut *tx,
                &NewEvent {
                    call_id: id,
                    business_id: c.business_id,
                    stage: Stage::Sync,
                    kind: "ingested",
                    reason: format!("call record {:?} received", c.external_id),
                    detail: None,
                    actor: "pipeline",
                },
            )
            .await?;
            return Ok((id, true));
        }
        let r = sqlx::query("SELECT id FROM calls WHERE business_id = $1 AND external_id = $2")
            .bind(c.business_id)
            .bind(&c.external_id)
            .fetch_one(&mut *tx)
            .await
            .ctx(|| {
                format!(
                    "reading call {:?} of business {}",
                    c.external_id, c.business_id
                )
            })?;
        Ok((col(&r, "id")?, created))
    }

    /// A call that waits at sync with nothing to move it on: no job row and no outbox row
    /// (a call saved before the outbox existed, by a crash between insert and publish).
    /// On RabbitMQ its job may sit in the broker's queue instead, which this cannot see.
    pub async fn sync_pending_without_job_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        call_id: i64,
    ) -> Result<Option<i64>> {
        let r = sqlx::query(
            "SELECT c.state_since FROM calls c WHERE c.id = $1 AND c.stage = 'sync' AND c.state = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.call_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.call_id = c.id)",
        )
        .bind(call_id)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("checking the sync job of call {call_id}"))?;
        r.map(|r| col(&r, "state_since")).transpose()
    }

    pub async fn call(&self, id: i64) -> Result<Call> {
        row_to_call(&self.call_row(id, "").await?)
    }

    /// The call's row: its columns and `extra` (", col, …").
    async fn call_row(&self, id: i64, extra: &str) -> Result<AnyRow> {
        sqlx::query(&format!(
            "SELECT {CALL_COLUMNS}{extra} FROM calls WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading call {id}"))?
        .ok_or_else(|| StoreError::NotFound(format!("call {id}")))
    }

    /// The call with its intent and its record as ingested (the link stage's inputs), in
    /// one read.
    pub async fn call_with_record(&self, id: i64) -> Result<(Call, Option<String>, String)> {
        let r = self.call_row(id, ", intent, raw").await?;
        Ok((row_to_call(&r)?, col(&r, "intent")?, col(&r, "raw")?))
    }

    pub async fn call_by_external(&self, business_id: i64, external_id: &str) -> Result<Call> {
        let r = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE business_id = $1 AND external_id = $2"
        ))
        .bind(business_id)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading call {external_id:?} of business {business_id}"))?
        .ok_or_else(|| {
            StoreError::NotFound(format!("call {external_id:?} of business {business_id}"))
        })?;
        row_to_call(&r)
    }

    /// Move a call, enforcing the state machine, and append the trace row in the same
    /// transaction. Optimistic: a concurrent move in between is a `Conflict`.
    pub async fn move_call(&self, call_id: i64, m: &Move<'_>) -> Result<Call> {
        let mut tx = self.begin_write().await?;
        let call = self.move_call_in(&mut tx, call_id, m).await?;
        tx.commit()
            .await
            .ctx(|| format!("committing move of call {call_id}"))?;
        Ok(call)
    }

    /// `move_call` inside the caller's transaction (operator actions add their audit row
    /// to the same commit).
    pub async fn move_call_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        call_id: i64,
        m: &Move<'_>,
    ) -> Result<Call> {
        let r = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"))
            .bind(call_id)
            .fetch_optional(&mut *conn)
            .await
            .ctx(|| format!("reading call {call_id}"))?
            .ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))?;
        let cur = row_to_call(&r)?;
        if let Some(expect) = m.expect {
            if expect != cur.position() {
                return Err(StoreError::Conflict(format!(
                    "call {call_id} is at {} now, not {expect}: someone else moved it; reload and try again",
                    cur.position()
                )));
            }
        }
        check_transition(call_id, cur.position(), m.to)?;
        let now = crate::now_ms();
        let attempts = if m.to.stage != cur.stage {
            0
        } else if m.to.state == CallState::Running {
            cur.attempts + 1
        } else {
            cur.attempts
        };
        let last_error = match (&m.error, m.to.state) {
            (Some(e), _) => Some(e.clone()),
            (None, CallState::Retrying | CallState::Dead) => cur.last_error.clone(),
            (None, CallState::Running) if m.to.stage == cur.stage => cur.last_error.clone(),
            (None, _) => None,
        };
        let state_since = if m.to == cur.position() {
            cur.state_since
        } else {
            now
        };
        let n = sqlx::query(
            "UPDATE calls SET stage = $1, state = $2, state_since = $3, attempts = $4, last_error = $5, \
             updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8",
        )
        .bind(m.to.stage.as_str())
        .bind(m.to.state.as_str())
        .bind(state_since)
        .bind(attempts)
        .bind(last_error.as_deref())
        .bind(now)
        .bind(call_id)
        .bind(cur.version)
        .execute(&mut *conn)
        .await
        .ctx(|| format!("moving call {call_id} to {}", m.to))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "call {call_id} was changed by someone else while moving it from {} to {}; reload and try again",
                cur.position(),
                m.to
            )));
        }
        self.append_event(
            &mut *conn,
            &NewEvent {
                call_id,
                business_id: cur.business_id,
                // The stage the decision was made in (a completion belongs to the stage it completes).
                stage: cur.stage,
                kind: m.kind,
                reason: m.reason.clone(),
                detail: m.error.clone(),
                actor: m.actor,
            },
        )
        .await?;
        // The row as just written (no re-read: the version check above proves nobody else
        // wrote it in between).
        Ok(Call {
            stage: m.to.stage,
            state: m.to.state,
            state_since,
            attempts,
            last_error,
            updated_at: now,
            version: cur.version + 1,
            ..cur
        })
    }

    /// The common start of a stage job in one statement: the call is at `stage`, belongs to
    /// `business_id` and waits (pending / retrying, or running under a lease that ran out:
    /// its worker died) → running, one more attempt, under the lease `token` until
    /// `lease_until`. `None` when it is anywhere else — including running under another
    /// run's live lease; the caller then takes the careful path.
    pub async fn start_call(
        &self,
        call_id: i64,
        business_id: i64,
        stage: Stage,
        token: i64,
        lease_until: i64,
        reason: &str,
    ) -> Result<Option<Call>> {
        Ok(self
            .start_call_reading(
                call_id,
                business_id,
                stage,
                token,
                lease_until,
                reason,
                false,
            )
            .await?
            .map(|(call, _)| call))
    }

    /// [`Store::start_call`], and with `with_transcript` on Postgres the call's transcript
    /// in the same statement (transcribe, analyze and link read it first): `Some(t)`
    /// when it was read (`t` None: the call has none), None when it was not (SQLite, where
    /// a statement is no round trip, or not asked).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_call_reading(
        &self,
        call_id: i64,
        business_id: i64,
        stage: Stage,
        token: i64,
        lease_until: i64,
        reason: &str,
        with_transcript: bool,
    ) -> Result<Option<(Call, Option<Option<StoredTranscript>>)>> {
        let run = self
            .start_run(&StartRequest {
                call_id,
                business_id,
                stage,
                token,
                lease_until,
                reason: reason.to_string(),
                with_transcript,
                with_record: false,
            })
            .await?;
        Ok(run.map(|r| (r.call, r.transcript)))
    }

    /// A stage start and what the run reads first, in one statement (see [`StartRequest`]).
    pub async fn start_run(&self, req: &StartRequest) -> Result<Option<StartedRun>> {
        let StartRequest {
            call_id,
            business_id,
            stage,
            token,
            lease_until,
            ref reason,
            with_transcript,
            with_record,
        } = *req;
        let read_transcript = with_transcript && self.dialect == Dialect::Postgres;
        let now = crate::now_ms();
        let record_cols = if with_record { ", intent, raw" } else { "" };
        let update = format!(
            "UPDATE calls SET {START_SET}, lease_token = $5, lease_until = $6 \
             WHERE id = $2 AND business_id = $3 AND stage = $4 AND {START_WAITING}"
        );
        // The start and its trace row: one statement on Postgres (a round trip saved per
        // stage); SQLite has no data-modifying CTEs, and a statement there is no round trip.
        let (transcript_cols, join) = if read_transcript {
            (
                format!(", {}", transcript_columns_as("t", "t_")),
                " LEFT JOIN transcripts t ON t.call_id = started.id",
            )
        } else {
            (String::new(), "")
        };
        let sql = match self.dialect {
            Dialect::Postgres => format!(
                "WITH started AS ({update} RETURNING {CALL_COLUMNS}{record_cols}), \
                 ev AS (INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
                        SELECT id, business_id, $1, $4, 'started', $7, NULL, 'pipeline' FROM started) \
                 SELECT started.*{transcript_cols} FROM started{join}",
            ),
            Dialect::Sqlite => format!("{update} RETURNING {CALL_COLUMNS}{record_cols}"),
        };
        let mut q = sqlx::query(&sql)
            .bind(now)
            .bind(call_id)
            .bind(business_id)
            .bind(stage.as_str())
            .bind(token)
            .bind(lease_until);
        if self.dialect == Dialect::Postgres {
            q = q.bind(reason.as_str());
        }
        // On SQLite the move and its trace row are this process's writes in turn.
        let turn = self.write_turn().await?;
        let r = q
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("starting {stage} of call {call_id}"))?;
        let Some(r) = r else { return Ok(None) };
        let call = row_to_call(&r)?;
        let transcript = if read_transcript {
            let has: Option<i64> = col(&r, "t_call_id")?;
            Some(has.map(|_| transcript_row(&r, "t_")).transpose()?)
        } else {
            None
        };
        let record = if with_record {
            Some(CallRecord {
                intent: col(&r, "intent")?,
                raw: col(&r, "raw")?,
            })
        } else {
            None
        };
        if self.dialect == Dialect::Sqlite {
            // As before the fold: a lost trace row must not undo a start that committed.
            let _ = self
                .append_event(
                    &self.pool,
                    &NewEvent {
                        call_id,
                        business_id: call.business_id,
                        stage,
                        kind: "started",
                        reason: reason.to_string(),
                        detail: None,
                        actor: "pipeline",
                    },
                )
                .await;
        }
        drop(turn);
        Ok(Some(StartedRun {
            call,
            transcript,
            record,
        }))
    }

    /// The lease of a running call: (token, until), when it has one.
    pub async fn call_lease(&self, call_id: i64) -> Result<Option<(i64, i64)>> {
        let r = sqlx::query("SELECT lease_token, lease_until FROM calls WHERE id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading the lease of call {call_id}"))?;
        let Some(r) = r else { return Ok(None) };
        let token: Option<i64> = col(&r, "lease_token")?;
        let until: Option<i64> = col(&r, "lease_until")?;
        Ok(token.zip(until))
    }

    /// The fence of a stage result, inside its transaction: release the lease `token`.
    /// `Conflict` when the run no longer holds it (its lease ran out and another run took the
    /// call): nothing of this run may then commit.
    pub async fn release_lease_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        call_id: i64,
        token: i64,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE calls SET lease_token = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2",
        )
        .bind(call_id)
        .bind(token)
        .execute(&mut *conn)
        .await
        .ctx(|| format!("checking the lease of call {call_id}"))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "call {call_id}: this run's lease was lost (it ran out and another run took the call); its result is discarded"
            )));
        }
        Ok(())
    }

    /// Calls in flight longer than their stage's SLA, oldest first. One index range
    /// scan per stage on `calls_in_flight_by_age`.
    pub async fn stuck_calls(&self, slas: &[(Stage, i64)], limit: u32) -> Result<Vec<Call>> {
        let now = crate::now_ms();
        let mut out = Vec::new();
        for (stage, sla_ms) in slas {
            let rows = sqlx::query(&stuck_sql(limit))
                .bind(stage.as_str())
                .bind(now - sla_ms)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("listing stuck calls of stage {stage}"))?;
            for r in &rows {
                out.push(row_to_call(r)?);
            }
        }
        out.sort_by_key(|c| c.state_since);
        out.truncate(limit as usize);
        Ok(out)
    }

    /// The manual-review queue: priority first, then oldest.
    pub async fn review_queue(&self, limit: u32) -> Result<Vec<Call>> {
        let rows = sqlx::query(&review_sql(limit))
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing the review queue".into())?;
        rows.iter().map(row_to_call).collect()
    }

    /// Calls per state, for accounting (done + dead + review + in flight = ingested).
    pub async fn call_counts_by_state(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM calls GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await
                .ctx(|| "counting calls by state".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "state")?, col(r, "n")?)))
            .collect()
    }
}

pub fn stuck_sql(limit: u32) -> String {
    format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE stage = $1 AND state IN ('pending', 'running', 'retrying') \
         AND state_since < $2 ORDER BY state_since LIMIT {limit}"
    )
}

pub fn review_sql(limit: u32) -> String {
    format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE state = 'review' \
         ORDER BY review_priority DESC, state_since LIMIT {limit}"
    )
}

/// The overview's calls waiting in review per business (an index of the review calls only, see migration 0004).
pub const REVIEW_COUNTS_SQL: &str =
    "SELECT business_id, COUNT(*) AS n FROM calls WHERE state = 'review' GROUP BY business_id";

/// The overview's throughput query (per business and stage over the last hour).
pub const THROUGHPUT_SQL: &str = "SELECT business_id, stage, CAST(SUM(calls) AS BIGINT) AS calls, \
    CAST(SUM(audio_seconds) AS BIGINT) AS audio_seconds, CAST(SUM(failures) AS BIGINT) AS failures \
    FROM throughput WHERE minute >= $1 GROUP BY business_id, stage";
