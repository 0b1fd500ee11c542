//! Many stage results in one transaction and a fixed handful of statements, whatever the
//! batch's size (the group commit's result lane, see `group_commit.rs`): the moves (one
//! multi-row `UPDATE … FROM` per set of call columns the runs set), then for the calls
//! that moved: every trace row in one insert, every agent result in one upsert, the
//! throughput buckets summed per (business, stage), the next jobs in one insert per table,
//! and the database broker's acks in one delete. The same SQL runs on both stores.

use super::stage_commit::{JobTable, StageCommitOwned, StageCommitted};
use super::throughput::minute_of;
use super::{Ctx, Result, Store};
use std::collections::{BTreeMap, HashSet};

/// Rows per multi-row insert, so a batch stays far below either store's bind limit.
const ROWS_PER_INSERT: usize = 500;

/// `($b+1, …, $b+n)` with `CAST`s, for row `i` of `n` columns starting after `first`.
pub(super) fn row(first: usize, i: usize, types: &[&str]) -> String {
    let b = first + i * types.len();
    let cells: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(k, t)| format!("CAST(${} AS {t})", b + k + 1))
        .collect();
    format!("({})", cells.join(", "))
}

/// A trace row of a batch: (whose result, at, stage, kind, reason, detail).
type TraceRow<'a> = (
    &'a StageCommitOwned,
    i64,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
);

impl Store {
    /// Commit the results `cs` (each call at most once) in one transaction. Per member:
    /// what committed, or `Conflict` when its run no longer held the call (nothing of it
    /// was written). `Err` when the transaction failed: nothing was written.
    pub(super) async fn commit_stage_batch(
        &self,
        cs: &[&StageCommitOwned],
    ) -> Result<Vec<Result<StageCommitted>>> {
        let now = crate::now_ms();
        let mut tx = self.begin_write().await?;
        let mut moved: HashSet<i64> = HashSet::new();
        // 1. The moves, fenced by each run's lease, one statement per set of columns.
        let mut by_fields: BTreeMap<Vec<&'static str>, Vec<&StageCommitOwned>> = BTreeMap::new();
        for c in cs {
            by_fields
                .entry(c.call_fields.iter().map(|(col, _)| *col).collect())
                .or_default()
                .push(c);
        }
        for (fields, group) in &by_fields {
            let mut types = vec!["BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT"];
            types.extend(fields.iter().map(|_| "TEXT"));
            let values: Vec<String> = (0..group.len()).map(|i| row(1, i, &types)).collect();
            let field_names: String = (0..fields.len()).map(|k| format!(", v_f{k}")).collect();
            let sets: String = fields
                .iter()
                .enumerate()
                .map(|(k, col)| {
                    debug_assert!(col
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
                    format!(
                        ", {col} = CAST(v_f{k} AS {})",
                        super::stage_commit::field_type(col)
                    )
                })
                .collect();
            let sql = format!(
                "WITH v (v_id, v_token, v_stage, v_to_stage, v_to_state{field_names}) AS (VALUES {}) \
                 UPDATE calls SET stage = v_to_stage, state = v_to_state, state_since = $1, \
                   attempts = CASE WHEN stage = v_to_stage THEN attempts ELSE 0 END, last_error = NULL, \
                   updated_at = $1, version = version + 1, lease_token = NULL, lease_until = NULL{sets} \
                 FROM v WHERE id = v_id AND lease_token = v_token AND stage = v_stage AND state = 'running' \
                 RETURNING id",
                values.join(", ")
            );
            let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(now);
            for c in group {
                q = q
                    .bind(c.call_id)
                    .bind(c.token)
                    .bind(c.stage.as_str())
                    .bind(c.to.stage.as_str())
                    .bind(c.to.state.as_str());
                for (_, v) in &c.call_fields {
                    q = q.bind(v.as_deref());
                }
            }
            let ids = q
                .fetch_all(&mut *tx)
                .await
                .ctx(|| format!("moving {} calls on with their stage results", group.len()))?;
            moved.extend(ids);
        }
        let done: Vec<&StageCommitOwned> = cs
            .iter()
            .copied()
            .filter(|c| moved.contains(&c.call_id))
            .collect();

        // 2. Trace rows: what each run noted, then its result row (the highest id).
        let mut events: Vec<TraceRow> = Vec::new();
        for c in &done {
            for e in &c.events {
                events.push((
                    c,
                    e.at,
                    e.stage.as_str(),
                    e.kind.as_str(),
                    e.reason.as_str(),
                    e.detail.as_deref(),
                ));
            }
            events.push((c, now, c.stage.as_str(), c.kind, c.reason.as_str(), None));
        }
        let types = ["BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"];
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len()).map(|i| row(0, i, &types)).collect();
            let sql = format!(
                "WITH v (v_call, v_business, v_at, v_stage, v_kind, v_reason, v_detail) AS (VALUES {}) \
                 INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
                 SELECT v_call, v_business, v_at, v_stage, v_kind, v_reason, v_detail, 'pipeline' FROM v",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (c, at, stage, kind, reason, detail) in chunk {
                q = q
                    .bind(c.call_id)
                    .bind(c.business_id)
                    .bind(*at)
                    .bind(*stage)
                    .bind(*kind)
                    .bind(*reason)
                    .bind(*detail);
            }
            q.execute(&mut *tx)
                .await
                .ctx(|| format!("tracing {} stage results", done.len()))?;
        }

        // 3. Agent results.
        let analyses: Vec<(i64, &super::transcripts::StoredAnalysis)> = done
            .iter()
            .flat_map(|c| c.analyses.iter().map(move |a| (c.call_id, a)))
            .collect();
        for chunk in analyses.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    row(
                        1,
                        i,
                        &["BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"],
                    )
                })
                .collect();
            let sql = format!(
                "WITH v (v_call, v_agent, v_version, v_kind, v_key, v_result, v_raw) AS (VALUES {}) \
                 INSERT INTO analyses (call_id, agent_id, agent_version, kind, cache_key, result, raw_output, created_at) \
                 SELECT v_call, v_agent, v_version, v_kind, v_key, v_result, v_raw, $1 FROM v WHERE true {}",
                values.join(", "),
                super::transcripts::ANALYSIS_UPSERT
            );
            let mut q = sqlx::query(&sql).bind(now);
            for (call_id, a) in chunk {
                q = q
                    .bind(*call_id)
                    .bind(a.agent_id)
                    .bind(a.agent_version)
                    .bind(a.kind.as_str())
                    .bind(a.cache_key.as_str())
                    .bind(a.result.as_str())
                    .bind(a.raw_output.as_deref());
            }
            q.execute(&mut *tx)
                .await
                .ctx(|| format!("saving the agent results of {} calls", done.len()))?;
        }

        // 3b. Transcripts the runs made.
        let transcripts: Vec<&super::transcripts::StoredTranscript> =
            done.iter().filter_map(|c| c.transcript.as_ref()).collect();
        for chunk in transcripts.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    row(
                        0,
                        i,
                        &["BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT"],
                    )
                })
                .collect();
            let sql = format!(
                "WITH v (v_call, v_provider, v_language, v_text, v_segments, v_skipped, v_at) AS (VALUES {}) \
                 INSERT INTO transcripts (call_id, provider, language, text, segments, stt_skipped, created_at) \
                 SELECT v_call, v_provider, v_language, v_text, v_segments, v_skipped, v_at FROM v WHERE true {}",
                values.join(", "),
                super::transcripts::TRANSCRIPT_UPSERT
            );
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = super::transcripts::bind_transcript(q.bind(t.call_id), t);
            }
            q.execute(&mut *tx)
                .await
                .ctx(|| format!("saving the transcripts of {} calls", chunk.len()))?;
        }

        // 4. Throughput, summed per (business, stage) in key order (the lock order).
        let mut buckets: BTreeMap<(i64, &str), (i64, i64)> = BTreeMap::new();
        for c in &done {
            let b = buckets
                .entry((c.business_id, c.stage.as_str()))
                .or_default();
            b.0 += 1;
            b.1 += c.audio_seconds;
        }
        if !buckets.is_empty() {
            let values: Vec<String> = (0..buckets.len())
                .map(|i| row(1, i, &["BIGINT", "TEXT", "BIGINT", "BIGINT"]))
                .collect();
            let sql = format!(
                "WITH v (v_business, v_stage, v_calls, v_audio) AS (VALUES {}) \
                 INSERT INTO throughput (minute, business_id, stage, calls, audio_seconds, failures) \
                 SELECT $1, v_business, v_stage, v_calls, v_audio, 0 FROM v WHERE true \
                 ON CONFLICT (minute, business_id, stage) DO UPDATE SET calls = throughput.calls + excluded.calls, \
                 audio_seconds = throughput.audio_seconds + excluded.audio_seconds",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(minute_of(now));
            for ((business, stage), (calls, audio)) in &buckets {
                q = q.bind(*business).bind(*stage).bind(*calls).bind(*audio);
            }
            q.execute(&mut *tx)
                .await
                .ctx(|| format!("counting throughput of {} stage results", done.len()))?;
        }

        // 5. The next stages' jobs.
        for table in [JobTable::Jobs, JobTable::Outbox] {
            let jobs: Vec<&crate::domain::job::Job> = done
                .iter()
                .filter(|c| c.job_table == table)
                .filter_map(|c| c.next_job.as_ref())
                .collect();
            for chunk in jobs.chunks(ROWS_PER_INSERT) {
                let (cols, sql, types): (&str, &str, &[&str]) = match table {
                    JobTable::Jobs => (
                        "v_id, v_queue, v_business, v_stage, v_call, v_body, v_first",
                        "INSERT INTO jobs (job_id, queue, business_id, stage, call_id, payload, attempts, \
                         errors, first_enqueued_at, enqueued_at, run_at) \
                         SELECT v_id, v_queue, v_business, v_stage, v_call, v_body, 0, '[]', v_first, $1, $1 FROM v",
                        &["TEXT", "TEXT", "BIGINT", "TEXT", "BIGINT", "TEXT", "BIGINT"],
                    ),
                    JobTable::Outbox => (
                        "v_id, v_queue, v_business, v_stage, v_call, v_body",
                        "INSERT INTO outbox (job_id, queue, business_id, stage, call_id, body, created_at) \
                         SELECT v_id, v_queue, v_business, v_stage, v_call, v_body, $1 FROM v",
                        &["TEXT", "TEXT", "BIGINT", "TEXT", "BIGINT", "TEXT"],
                    ),
                };
                let values: Vec<String> = (0..chunk.len()).map(|i| row(1, i, types)).collect();
                let sql = format!("WITH v ({cols}) AS (VALUES {}) {sql}", values.join(", "));
                let mut q = sqlx::query(&sql).bind(now);
                for job in chunk {
                    q = q
                        .bind(job.id.clone())
                        .bind(job.queue())
                        .bind(job.business_id)
                        .bind(job.stage.as_str())
                        .bind(job.call_id);
                    q = match table {
                        JobTable::Jobs => {
                            q.bind(job.payload.to_string()).bind(job.first_enqueued_at)
                        }
                        JobTable::Outbox => {
                            q.bind(serde_json::to_string(job).expect("a job serializes"))
                        }
                    };
                }
                q.execute(&mut *tx)
                    .await
                    .ctx(|| format!("enqueueing the next jobs of {} calls", done.len()))?;
            }
        }

        // 6. The database broker's acks. Claim tokens are random 63-bit values, so the two
        // lists cannot pair one row with another's token.
        let claims: Vec<(i64, i64)> = done.iter().filter_map(|c| c.ack).collect();
        let mut acked: HashSet<i64> = HashSet::new();
        for chunk in claims.chunks(ROWS_PER_INSERT) {
            let rows = super::id_list(&chunk.iter().map(|(r, _)| *r).collect::<Vec<_>>());
            let tokens = super::id_list(&chunk.iter().map(|(_, t)| *t).collect::<Vec<_>>());
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "DELETE FROM jobs WHERE id IN ({rows}) AND claim_token IN ({tokens}) RETURNING id"
            ))
            .fetch_all(&mut *tx)
            .await
            .ctx(|| format!("acking {} job rows", chunk.len()))?;
            acked.extend(ids);
        }
        tx.commit()
            .await
            .ctx(|| format!("committing {} stage results together", cs.len()))?;
        Ok(cs
            .iter()
            .map(|c| {
                if moved.contains(&c.call_id) {
                    Ok(StageCommitted {
                        acked: c.ack.is_some_and(|(r, _)| acked.contains(&r)),
                    })
                } else {
                    Err(super::stage_commit::lease_lost(c.call_id, c.stage))
                }
            })
            .collect())
    }
}
