//! The call trace: one row per decision, with its reason.

use super::{col, Ctx, Result, Store};
use crate::domain::stage::Stage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallEvent {
    pub id: i64,
    pub call_id: i64,
    pub business_id: i64,
    pub at: i64,
    pub stage: String,
    pub kind: String,
    pub reason: String,
    pub detail: Option<String>,
    pub actor: String,
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub call_id: i64,
    pub business_id: i64,
    pub stage: Stage,
    pub kind: &'a str,
    pub reason: String,
    pub detail: Option<String>,
    pub actor: &'a str,
}

/// A trace row a stage run noted while it ran: written with the run's result (the same
/// statement as its `completed` row), so a call costs no round trip per note.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub at: i64,
    pub stage: Stage,
    pub kind: String,
    pub reason: String,
    pub detail: Option<String>,
}

impl PendingEvent {
    pub fn of(ev: &NewEvent<'_>) -> PendingEvent {
        PendingEvent {
            at: crate::now_ms(),
            stage: ev.stage,
            kind: ev.kind.to_string(),
            reason: ev.reason.clone(),
            detail: ev.detail.clone(),
        }
    }
}

impl Store {
    /// Several noted rows of one call in one statement, in order (a run that did not commit
    /// its result still leaves what it noted).
    pub async fn append_pending_events<'e, E>(
        &self,
        exec: E,
        call_id: i64,
        business_id: i64,
        events: &[PendingEvent],
    ) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        if events.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) VALUES ",
        );
        for i in 0..events.len() {
            let b = 2 + i * 5;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, $2, ${}, ${}, ${}, ${}, ${}, 'pipeline')",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        let mut q = sqlx::query(&sql).bind(call_id).bind(business_id);
        for e in events {
            q = q
                .bind(e.at)
                .bind(e.stage.as_str())
                .bind(e.kind.as_str())
                .bind(e.reason.as_str())
                .bind(e.detail.as_deref());
        }
        q.execute(exec)
            .await
            .ctx(|| format!("appending {} trace rows for call {call_id}", events.len()))?;
        Ok(())
    }

    pub async fn append_event<'e, E>(&self, exec: E, ev: &NewEvent<'_>) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        sqlx::query(
            "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(ev.call_id)
        .bind(ev.business_id)
        .bind(crate::now_ms())
        .bind(ev.stage.as_str())
        .bind(ev.kind)
        .bind(&ev.reason)
        .bind(ev.detail.as_deref())
        .bind(ev.actor)
        .execute(exec)
        .await
        .ctx(|| format!("appending {} event for call {}", ev.kind, ev.call_id))?;
        Ok(())
    }

    /// The trace of one call in time order.
    pub async fn call_events(&self, call_id: i64) -> Result<Vec<CallEvent>> {
        let rows = sqlx::query(
            "SELECT id, call_id, business_id, at, stage, kind, reason, detail, actor FROM call_events \
             WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the trace of call {call_id}"))?;
        rows.iter()
            .map(|r| {
                Ok(CallEvent {
                    id: col(r, "id")?,
                    call_id: col(r, "call_id")?,
                    business_id: col(r, "business_id")?,
                    at: col(r, "at")?,
                    stage: col(r, "stage")?,
                    kind: col(r, "kind")?,
                    reason: col(r, "reason")?,
                    detail: col(r, "detail")?,
                    actor: col(r, "actor")?,
                })
            })
            .collect()
    }
}
