//! Per-business analysis agents: prompt template plus the JSON fields they must return.

use super::{col, Ctx, Result, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Agent {
    pub id: i64,
    pub business_id: i64,
    pub name: String,
    /// "qc" (scorecard), "summary", "sentiment", "bant", "caller_name", "intent" — or a
    /// combined agent whose fields cover several.
    pub kind: String,
    pub prompt: String,
    /// JSON array of field names the model must return.
    pub fields: String,
    pub version: i64,
    pub auto_qc: bool,
    pub campaign: Option<String>,
    pub enabled: bool,
}

impl Agent {
    pub fn field_names(&self) -> Vec<String> {
        serde_json::from_str(&self.fields).unwrap_or_default()
    }
}

impl Store {
    /// Create or update an agent by (business, name); a changed prompt or field list bumps the version.
    pub async fn upsert_agent(
        &self,
        business_id: i64,
        name: &str,
        kind: &str,
        prompt: &str,
        fields: &[&str],
        auto_qc: bool,
    ) -> Result<Agent> {
        let fields_json = serde_json::to_string(fields).expect("fields serialize");
        sqlx::query(
            "INSERT INTO agents (business_id, name, kind, prompt, fields, auto_qc, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) \
             ON CONFLICT (business_id, name) DO UPDATE SET kind = excluded.kind, auto_qc = excluded.auto_qc, \
             version = CASE WHEN agents.prompt <> excluded.prompt OR agents.fields <> excluded.fields THEN agents.version + 1 ELSE agents.version END, \
             prompt = excluded.prompt, fields = excluded.fields",
        )
        .bind(business_id)
        .bind(name)
        .bind(kind)
        .bind(prompt)
        .bind(&fields_json)
        .bind(auto_qc as i64)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .ctx(|| format!("saving agent {name:?} of business {business_id}"))?;
        self.agents_cache.forget(Some(business_id));
        Ok(self
            .agents(business_id)
            .await?
            .into_iter()
            .find(|a| a.name == name)
            .expect("agent just saved"))
    }

    /// The agents as a stage run uses them: read at most a second ago by this process (as
    /// `business_recent`); a change made through this store applies at once.
    pub async fn agents_recent(&self, business_id: i64) -> Result<Vec<Agent>> {
        if let Some(a) = self.agents_cache.get(business_id) {
            return Ok(a);
        }
        let a = self.agents(business_id).await?;
        self.agents_cache.put(business_id, &a);
        Ok(a)
    }

    pub async fn agents(&self, business_id: i64) -> Result<Vec<Agent>> {
        let rows = sqlx::query(
            "SELECT id, business_id, name, kind, prompt, fields, version, auto_qc, campaign, enabled FROM agents \
             WHERE business_id = $1 ORDER BY id",
        )
        .bind(business_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("listing agents of business {business_id}"))?;
        rows.iter()
            .map(|r| {
                Ok(Agent {
                    id: col(r, "id")?,
                    business_id: col(r, "business_id")?,
                    name: col(r, "name")?,
                    kind: col(r, "kind")?,
                    prompt: col(r, "prompt")?,
                    fields: col(r, "fields")?,
                    version: col(r, "version")?,
                    auto_qc: col::<i64>(r, "auto_qc")? != 0,
                    campaign: col(r, "campaign")?,
                    enabled: col::<i64>(r, "enabled")? != 0,
                })
            })
            .collect()
    }
}
