//! Per-minute throughput buckets per business and stage.

use super::{col, Ctx, Result, Store};
use crate::domain::stage::Stage;
use serde::{Deserialize, Serialize};

/// Start of the minute containing `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    pub minute: i64,
    pub business_id: i64,
    pub stage: String,
    pub calls: i64,
    pub audio_seconds: i64,
    pub failures: i64,
}

impl Store {
    /// Add to the bucket of the current minute (upsert; both dialects).
    pub async fn bump_throughput<'e, E>(
        &self,
        exec: E,
        business_id: i64,
        stage: Stage,
        calls: i64,
        audio_seconds: i64,
        failures: i64,
    ) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        sqlx::query(
            "INSERT INTO throughput (minute, business_id, stage, calls, audio_seconds, failures) VALUES ($1,$2,$3,$4,$5,$6) \
             ON CONFLICT (minute, business_id, stage) DO UPDATE SET calls = throughput.calls + excluded.calls, \
             audio_seconds = throughput.audio_seconds + excluded.audio_seconds, failures = throughput.failures + excluded.failures",
        )
        .bind(minute_of(crate::now_ms()))
        .bind(business_id)
        .bind(stage.as_str())
        .bind(calls)
        .bind(audio_seconds)
        .bind(failures)
        .execute(exec)
        .await
        .ctx(|| format!("updating throughput of business {business_id} stage {stage}"))?;
        Ok(())
    }

    /// Buckets since `since_ms` (all businesses), oldest first.
    pub async fn throughput_since(&self, since_ms: i64) -> Result<Vec<Bucket>> {
        let rows = sqlx::query(
            "SELECT minute, business_id, stage, calls, audio_seconds, failures FROM throughput \
             WHERE minute >= $1 ORDER BY minute",
        )
        .bind(minute_of(since_ms))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "reading throughput".into())?;
        rows.iter()
            .map(|r| {
                Ok(Bucket {
                    minute: col(r, "minute")?,
                    business_id: col(r, "business_id")?,
                    stage: col(r, "stage")?,
                    calls: col(r, "calls")?,
                    audio_seconds: col(r, "audio_seconds")?,
                    failures: col(r, "failures")?,
                })
            })
            .collect()
    }
}
