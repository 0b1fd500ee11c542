//! Transcripts and analysis results of calls.

use super::{col, Ctx, Result, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredTranscript {
    pub call_id: i64,
    pub provider: String,
    pub language: Option<String>,
    pub text: String,
    /// JSON array of {speaker, start, end, text}.
    pub segments: String,
    /// Why STT did not run (transcript delivered with the call record), if it did not.
    pub stt_skipped: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredAnalysis {
    pub id: i64,
    pub call_id: i64,
    pub agent_id: Option<i64>,
    pub agent_version: i64,
    pub kind: String,
    pub cache_key: String,
    pub result: String,
    pub raw_output: Option<String>,
    pub created_at: i64,
}

/// A rerun of an agent (same call, agent and version) replaces its result.
/// A redelivered transcribe job rewrites the same row.
pub(crate) const TRANSCRIPT_UPSERT: &str =
    "ON CONFLICT (call_id) DO UPDATE SET provider = excluded.provider, \
     language = excluded.language, text = excluded.text, segments = excluded.segments, \
     stt_skipped = excluded.stt_skipped";

pub(crate) const ANALYSIS_UPSERT: &str =
    "ON CONFLICT (call_id, agent_id, agent_version) DO UPDATE SET \
     result = excluded.result, raw_output = excluded.raw_output, cache_key = excluded.cache_key, \
     created_at = excluded.created_at";

/// A query of `sqlx::Any` with its arguments so far.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Bind a transcript's columns after its call id, in the order every insert names them:
/// provider, language, text, segments, stt_skipped, created_at.
pub(crate) fn bind_transcript<'q>(q: AnyQuery<'q>, t: &'q StoredTranscript) -> AnyQuery<'q> {
    q.bind(t.provider.as_str())
        .bind(t.language.as_deref())
        .bind(t.text.as_str())
        .bind(t.segments.as_str())
        .bind(t.stt_skipped.as_deref())
        .bind(t.created_at)
}

impl Store {
    /// Insert or replace the call's transcript (a redelivered transcribe job rewrites the same row).
    pub async fn save_transcript(&self, t: &StoredTranscript) -> Result<()> {
        self.save_transcript_in(&self.pool, t).await
    }

    /// Insert or replace the call's transcript on a connection or inside a transaction.
    pub async fn save_transcript_in<'e, E>(&self, exec: E, t: &StoredTranscript) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = format!(
            "INSERT INTO transcripts (call_id, provider, language, text, segments, stt_skipped, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7) {TRANSCRIPT_UPSERT}"
        );
        bind_transcript(sqlx::query(&sql).bind(t.call_id), t)
            .execute(exec)
            .await
            .ctx(|| format!("saving the transcript of call {}", t.call_id))?;
        Ok(())
    }

    pub async fn transcript(&self, call_id: i64) -> Result<Option<StoredTranscript>> {
        let r = sqlx::query(&format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts WHERE call_id = $1"
        ))
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading the transcript of call {call_id}"))?;
        r.map(|r| transcript_row(&r, "")).transpose()
    }

    /// Several agent results of one call in one statement (their `call_id` is `call_id`).
    pub async fn save_analyses_in<'e, E>(
        &self,
        exec: E,
        call_id: i64,
        all: &[StoredAnalysis],
    ) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        if all.is_empty() {
            return Ok(());
        }
        let rows: Vec<String> = (0..all.len())
            .map(|i| {
                let b = 1 + i * 7;
                format!(
                    "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO analyses (call_id, agent_id, agent_version, kind, cache_key, result, raw_output, created_at) \
             VALUES {} {ANALYSIS_UPSERT}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(call_id);
        for a in all {
            q = q
                .bind(a.agent_id)
                .bind(a.agent_version)
                .bind(a.kind.as_str())
                .bind(a.cache_key.as_str())
                .bind(a.result.as_str())
                .bind(a.raw_output.as_deref())
                .bind(a.created_at);
        }
        q.execute(exec)
            .await
            .ctx(|| format!("saving {} analyses of call {call_id}", all.len()))?;
        Ok(())
    }

    /// Earlier results for these cache keys (same transcript and agent version), by key.
    pub async fn cached_analyses(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let marks: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT cache_key, MIN(result) AS result FROM analyses WHERE cache_key IN ({}) GROUP BY cache_key",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for k in keys {
            q = q.bind(k.as_str());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| "reading the analysis cache".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "cache_key")?, col(r, "result")?)))
            .collect()
    }

    pub async fn analyses(&self, call_id: i64) -> Result<Vec<StoredAnalysis>> {
        let rows = sqlx::query(
            "SELECT id, call_id, agent_id, agent_version, kind, cache_key, result, raw_output, created_at \
             FROM analyses WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading analyses of call {call_id}"))?;
        rows.iter()
            .map(|r| {
                Ok(StoredAnalysis {
                    id: col(r, "id")?,
                    call_id: col(r, "call_id")?,
                    agent_id: col(r, "agent_id")?,
                    agent_version: col(r, "agent_version")?,
                    kind: col(r, "kind")?,
                    cache_key: col(r, "cache_key")?,
                    result: col(r, "result")?,
                    raw_output: col(r, "raw_output")?,
                    created_at: col(r, "created_at")?,
                })
            })
            .collect()
    }
}

const TRANSCRIPT_COLUMNS: &str =
    "call_id, provider, language, text, segments, stt_skipped, created_at";

/// The transcript columns of the table aliased `table`, each named `{prefix}{column}` (for
/// a join beside columns of the same name; read back with [`transcript_row`]).
pub(crate) fn transcript_columns_as(table: &str, prefix: &str) -> String {
    TRANSCRIPT_COLUMNS
        .split(", ")
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A transcript from a row whose transcript columns are named `{prefix}{column}`.
pub(crate) fn transcript_row(r: &sqlx::any::AnyRow, prefix: &str) -> Result<StoredTranscript> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(StoredTranscript {
        call_id: col(r, &c("call_id"))?,
        provider: col(r, &c("provider"))?,
        language: col(r, &c("language"))?,
        text: col(r, &c("text"))?,
        segments: col(r, &c("segments"))?,
        stt_skipped: col(r, &c("stt_skipped"))?,
        created_at: col(r, &c("created_at"))?,
    })
}
