//! A batch of stage starts (the group commit's start lane, see `group_commit.rs`): each
//! call moves to running under its own run's lease when it waits at the stage (or its
//! lease ran out), with its `started` trace row and what its run reads first. A call in
//! the batch twice (a redelivery beside the delivery) starts once: the row that comes
//! back carries the winning run's token, and the other run is told "not started".

use super::calls::{row_to_call, CallRecord, StartedRun, CALL_COLUMNS, START_SET, START_WAITING};
use super::group_commit::{StartRequest, Started};
use super::stage_commit_batch::row;
use super::transcripts::{transcript_columns_as, transcript_row, AnyQuery};
use super::{col, Ctx, Result, Store};
use std::collections::HashMap;

impl Store {
    /// Postgres: one statement (data-modifying CTEs), transcripts joined in.
    pub(super) async fn start_calls_pg(&self, reqs: &[StartRequest]) -> Result<Vec<Started>> {
        let now = crate::now_ms();
        let types = [
            "BIGINT", "BIGINT", "TEXT", "BIGINT", "BIGINT", "TEXT", "BOOLEAN", "BOOLEAN",
        ];
        let values: Vec<String> = (0..reqs.len()).map(|i| row(1, i, &types)).collect();
        let sql = format!(
            "WITH v (v_id, v_business, v_stage, v_token, v_until, v_reason, v_transcript, v_record) AS (VALUES {}), \
             started AS (UPDATE calls SET {START_SET}, lease_token = v_token, lease_until = v_until \
               FROM v WHERE id = v_id AND business_id = v_business AND stage = v_stage AND {START_WAITING} \
               RETURNING {CALL_COLUMNS}, lease_token AS run_token, intent AS r_intent, raw AS r_raw), \
             won AS (SELECT {CALL_COLUMNS}, run_token, CASE WHEN v_record THEN r_intent END AS r_intent, \
               CASE WHEN v_record THEN r_raw END AS r_raw, v_stage, v_reason, v_transcript, v_record FROM started \
               JOIN v ON v_id = started.id AND v_token = started.run_token), \
             ev AS (INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
               SELECT id, business_id, $1, v_stage, 'started', v_reason, NULL, 'pipeline' FROM won ORDER BY id) \
             SELECT won.*, {} FROM won LEFT JOIN transcripts t ON v_transcript AND t.call_id = won.id",
            values.join(", "),
            transcript_columns_as("t", "t_"),
        );
        let mut q = sqlx::query(&sql).bind(now);
        for r in reqs {
            q = bind_start(q, r)
                .bind(r.reason.as_str())
                .bind(r.with_transcript)
                .bind(r.with_record);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("starting {} stage runs together", reqs.len()))?;
        let mut by_run = HashMap::with_capacity(rows.len());
        for r in &rows {
            let call = row_to_call(r)?;
            let token: Option<i64> = col(r, "run_token")?;
            let read: bool = col(r, "v_transcript")?;
            let transcript = if read {
                let has: Option<i64> = col(r, "t_call_id")?;
                Some(has.map(|_| transcript_row(r, "t_")).transpose()?)
            } else {
                None
            };
            let record = if col::<bool>(r, "v_record")? {
                Some(CallRecord {
                    intent: col(r, "r_intent")?,
                    raw: col(r, "r_raw")?,
                })
            } else {
                None
            };
            by_run.insert(
                (call.id, token),
                StartedRun {
                    call,
                    transcript,
                    record,
                },
            );
        }
        Ok(reqs
            .iter()
            .map(|r| by_run.remove(&(r.call_id, Some(r.token))))
            .collect())
    }
}

impl Store {
    /// SQLite (no data-modifying CTEs): the moves in one `UPDATE … FROM`, the trace rows
    /// of the runs that started in one insert, their transcripts in one read. As for a
    /// lone start, a lost trace row does not undo a start that committed.
    pub(super) async fn start_calls_sqlite(&self, reqs: &[StartRequest]) -> Result<Vec<Started>> {
        let now = crate::now_ms();
        let types = ["BIGINT", "BIGINT", "TEXT", "BIGINT", "BIGINT"];
        let values: Vec<String> = (0..reqs.len()).map(|i| row(1, i, &types)).collect();
        let sql = format!(
            "WITH v (v_id, v_business, v_stage, v_token, v_until) AS (VALUES {}) \
             UPDATE calls SET {START_SET}, lease_token = v_token, lease_until = v_until \
             FROM v WHERE id = v_id AND business_id = v_business AND stage = v_stage AND {START_WAITING} \
             RETURNING {CALL_COLUMNS}, lease_token AS run_token, intent AS r_intent, raw AS r_raw",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now);
        for r in reqs {
            q = bind_start(q, r);
        }
        // The moves and their trace rows are this process's writes in turn (write_tx.rs).
        let turn = self.write_turn().await?;
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("starting {} stage runs together", reqs.len()))?;
        let mut by_run: HashMap<(i64, i64), StartedRun> = HashMap::with_capacity(rows.len());
        let mut records: HashMap<(i64, i64), CallRecord> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let call = row_to_call(r)?;
            let token: i64 = col(r, "run_token")?;
            records.insert(
                (call.id, token),
                CallRecord {
                    intent: col(r, "r_intent")?,
                    raw: col(r, "r_raw")?,
                },
            );
            by_run.insert(
                (call.id, token),
                StartedRun {
                    call,
                    transcript: None,
                    record: None,
                },
            );
        }
        let won: Vec<&StartRequest> = reqs
            .iter()
            .filter(|r| by_run.contains_key(&(r.call_id, r.token)))
            .collect();
        if !won.is_empty() {
            let rows: Vec<String> = (0..won.len())
                .map(|i| {
                    let b = 1 + i * 4;
                    format!(
                        "(${}, ${}, $1, ${}, 'started', ${}, NULL, 'pipeline')",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(now);
            for r in &won {
                q = q
                    .bind(r.call_id)
                    .bind(r.business_id)
                    .bind(r.stage.as_str())
                    .bind(r.reason.as_str());
            }
            if let Err(e) = q.execute(&self.pool).await {
                tracing::warn!(error = %e, n = won.len(), "tracing a batch of stage starts failed (the starts stand)");
            }
        }
        drop(turn);
        let readers: Vec<i64> = won
            .iter()
            .filter(|r| r.with_transcript)
            .map(|r| r.call_id)
            .collect();
        // A failed read leaves the transcripts unread (the runs read them themselves): the
        // starts have committed, so this batch must not fail now.
        let mut transcripts: Option<HashMap<i64, _>> = Some(HashMap::new());
        if !readers.is_empty() {
            let read = sqlx::query(&format!(
                "SELECT {} FROM transcripts t WHERE call_id IN ({})",
                transcript_columns_as("t", "t_"),
                super::id_list(&readers)
            ))
            .fetch_all(&self.pool)
            .await;
            match read {
                Ok(rows) => {
                    let read: Result<Vec<_>> =
                        rows.iter().map(|r| transcript_row(r, "t_")).collect();
                    match read {
                        Ok(ts) => {
                            transcripts = Some(ts.into_iter().map(|t| (t.call_id, t)).collect())
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "a transcript of a started run cannot be read (the run reads its own)");
                            transcripts = None;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, n = readers.len(), "reading the transcripts of started runs failed (each run reads its own)");
                    transcripts = None;
                }
            }
        }
        Ok(reqs
            .iter()
            .map(|r| {
                let key = (r.call_id, r.token);
                let mut run = by_run.remove(&key)?;
                if r.with_transcript {
                    run.transcript = transcripts.as_ref().map(|t| t.get(&r.call_id).cloned());
                }
                if r.with_record {
                    run.record = records.remove(&key);
                }
                Some(run)
            })
            .collect())
    }
}

/// Bind a start's row of `v` as both stores' batches name it first: call, business, stage,
/// lease token, lease end.
fn bind_start<'q>(q: AnyQuery<'q>, r: &'q StartRequest) -> AnyQuery<'q> {
    q.bind(r.call_id)
        .bind(r.business_id)
        .bind(r.stage.as_str())
        .bind(r.token)
        .bind(r.lease_until)
}
