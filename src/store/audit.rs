//! Who did what, when, to what.

use super::{col, Ctx, Result, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    pub async fn append_audit<'e, E>(&self, exec: E, a: &NewAudit<'_>) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, role, action, target, before, after, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(crate::now_ms())
        .bind(a.actor)
        .bind(a.role)
        .bind(a.action)
        .bind(&a.target)
        .bind(a.before.as_deref())
        .bind(a.after.as_deref())
        .bind(a.detail.as_deref())
        .execute(exec)
        .await
        .ctx(|| format!("writing the audit row for {} on {}", a.action, a.target))?;
        Ok(())
    }

    /// Newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT id, at, actor, role, action, target, before, after, detail FROM audit_log ORDER BY id DESC LIMIT {limit}"
        ))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "reading the audit log".into())?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: col(r, "id")?,
                    at: col(r, "at")?,
                    actor: col(r, "actor")?,
                    role: col(r, "role")?,
                    action: col(r, "action")?,
                    target: col(r, "target")?,
                    before: col(r, "before")?,
                    after: col(r, "after")?,
                    detail: col(r, "detail")?,
                })
            })
            .collect()
    }
}
