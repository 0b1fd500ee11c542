//! Orphans: live calls that nothing will move on — no job row, no outbox row, no live
//! lease. With the transactional outbox there should be none; finding one is a bug
//! report (an alarm with the call in its trace), not the way delivery works.

use super::{col, Ctx, Result, Store};
use crate::domain::stage::Stage;

/// A call found with nothing to move it on.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub call_id: i64,
    pub business_id: i64,
    pub stage: Stage,
    pub state: String,
    pub state_since: i64,
    pub version: i64,
}

impl Store {
    /// Calls waiting or running for longer than `grace_ms` with no job row, no outbox row
    /// and no live lease, oldest first. `job_rows_visible` is false for RabbitMQ, whose
    /// queued jobs are not rows here: the caller must then also check the broker's queues.
    pub async fn orphan_candidates(&self, grace_ms: i64, limit: u32) -> Result<Vec<Orphan>> {
        let now = crate::now_ms();
        let rows = sqlx::query(
            "SELECT c.id, c.business_id, c.stage, c.state, c.state_since, c.version FROM calls c \
             WHERE c.state IN ('pending', 'running', 'retrying') AND c.state_since < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.call_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.call_id = c.id) \
             AND (c.state <> 'running' OR c.lease_until IS NULL OR c.lease_until < $1) \
             ORDER BY c.state_since LIMIT $2",
        )
        .bind(now - grace_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "looking for orphaned calls".into())?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let stage: String = col(r, "stage")?;
            let Ok(stage) = stage.parse() else { continue };
            out.push(Orphan {
                call_id: col(r, "id")?,
                business_id: col(r, "business_id")?,
                stage,
                state: col(r, "state")?,
                state_since: col(r, "state_since")?,
                version: col(r, "version")?,
            });
        }
        Ok(out)
    }

    /// Record the alarm for `o` once per call version, on the caller's transaction.
    /// `false` when this version was already alarmed (by this or another worker), so its
    /// job is republished once, not on every sweep.
    pub async fn claim_orphan_alarm_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        o: &Orphan,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO orphan_alarms (call_id, version, found_at) VALUES ($1, $2, $3) \
             ON CONFLICT (call_id, version) DO NOTHING RETURNING call_id",
        )
        .bind(o.call_id)
        .bind(o.version)
        .bind(crate::now_ms())
        .fetch_optional(&mut *conn)
        .await
        .ctx(|| format!("recording the orphan alarm of call {}", o.call_id))?;
        Ok(inserted.is_some())
    }

    /// Orphan alarms raised since `since_ms` (epoch ms): the console's and `overview
    /// --json`'s "orphans" figure. Any non-zero value is a bug to report.
    pub async fn orphan_alarms_since(&self, since_ms: i64) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM orphan_alarms WHERE found_at >= $1")
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await
            .ctx(|| "counting orphan alarms".into())?;
        col(&r, "n")
    }
}
