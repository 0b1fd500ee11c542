//! Outbound AI calls (migration 0011): per-business outbound settings, voice agents, lead
//! mappings, and the `outbound_calls` rows — one per lead, unique per (business, lead), that
//! the dispatcher claims like jobs (`FOR UPDATE SKIP LOCKED` on Postgres).

use super::{col, Ctx, Dialect, Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// How a business calls its new leads. A business without a row has the defaults: off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboundSettings {
    pub business_id: i64,
    pub auto_call: bool,
    /// simulated | retell | http
    pub provider: String,
    pub base_url: Option<String>,
    /// `env:NAME` or `file:/path`.
    pub key_ref: Option<String>,
    /// Generic HTTP provider: `Header-Name: value with {key}` (default `Authorization: Bearer {key}`).
    pub auth_header: Option<String>,
    /// Generic HTTP provider: the JSON body with `{{to}}`, `{{from}}`, `{{agent_id}}`,
    /// `{{name}}`, `{{form}}`, `{{idempotency_key}}` placeholders.
    pub body_template: Option<String>,
    /// Generic HTTP provider: the status path, `{id}` = the provider's call id.
    pub status_path: Option<String>,
    pub from_number: Option<String>,
    pub time_zone: String,
    /// See `domain::hours` ("" = always open).
    pub hours: String,
    /// 0 = unlimited.
    pub rate_per_hour: i64,
    pub updated_at: i64,
}

impl OutboundSettings {
    pub fn off(business_id: i64) -> OutboundSettings {
        OutboundSettings {
            business_id,
            auto_call: false,
            provider: "simulated".into(),
            base_url: None,
            key_ref: None,
            auth_header: None,
            body_template: None,
            status_path: None,
            from_number: None,
            time_zone: "UTC".into(),
            hours: String::new(),
            rate_per_hour: 0,
            updated_at: 0,
        }
    }
}

const SETTINGS_COLUMNS: &str =
    "business_id, auto_call, provider, base_url, key_ref, auth_header, body_template, \
    status_path, from_number, time_zone, hours, rate_per_hour, updated_at";

fn settings_row(r: &AnyRow) -> Result<OutboundSettings> {
    Ok(OutboundSettings {
        business_id: col(r, "business_id")?,
        auto_call: col::<i64>(r, "auto_call")? != 0,
        provider: col(r, "provider")?,
        base_url: col(r, "base_url")?,
        key_ref: col(r, "key_ref")?,
        auth_header: col(r, "auth_header")?,
        body_template: col(r, "body_template")?,
        status_path: col(r, "status_path")?,
        from_number: col(r, "from_number")?,
        time_zone: col(r, "time_zone")?,
        hours: col(r, "hours")?,
        rate_per_hour: col(r, "rate_per_hour")?,
        updated_at: col(r, "updated_at")?,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VoiceAgent {
    pub id: i64,
    pub business_id: i64,
    pub name: String,
    pub provider_agent_id: String,
    pub active: bool,
}

fn agent_row(r: &AnyRow) -> Result<VoiceAgent> {
    Ok(VoiceAgent {
        id: col(r, "id")?,
        business_id: col(r, "business_id")?,
        name: col(r, "name")?,
        provider_agent_id: col(r, "provider_agent_id")?,
        active: col::<i64>(r, "active")? != 0,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeadMapping {
    pub id: i64,
    pub business_id: i64,
    pub match_kind: String,
    pub pattern: String,
    pub voice_agent_id: i64,
    pub voice_agent: String,
    pub created_by: String,
    pub created_at: i64,
}

/// One outbound call (or a lead that was meant to be called and why it was not).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboundCall {
    pub id: i64,
    pub business_id: i64,
    pub lead_id: i64,
    pub origin_call_id: Option<i64>,
    pub form: Option<String>,
    pub to_number: Option<String>,
    pub lead_name: Option<String>,
    pub voice_agent_id: Option<i64>,
    pub provider: Option<String>,
    /// pending | scheduled | dialing | initiated | connected | completed | no_answer |
    /// failed | unmapped | skipped
    pub status: String,
    pub reason: String,
    pub due_at: i64,
    pub claimed_until: i64,
    pub claim_token: i64,
    pub attempts: i64,
    pub idempotency_key: String,
    pub provider_call_id: Option<String>,
    pub error: Option<String>,
    pub requested_by: String,
    pub dialed_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub result_call_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const OUTBOUND_COLUMNS: &str = "id, business_id, lead_id, origin_call_id, form, to_number, lead_name, voice_agent_id, \
    provider, status, reason, due_at, claimed_until, claim_token, attempts, idempotency_key, provider_call_id, error, \
    requested_by, dialed_at, ended_at, result_call_id, created_at, updated_at";

pub fn outbound_row(r: &AnyRow) -> Result<OutboundCall> {
    Ok(OutboundCall {
        id: col(r, "id")?,
        business_id: col(r, "business_id")?,
        lead_id: col(r, "lead_id")?,
        origin_call_id: col(r, "origin_call_id")?,
        form: col(r, "form")?,
        to_number: col(r, "to_number")?,
        lead_name: col(r, "lead_name")?,
        voice_agent_id: col(r, "voice_agent_id")?,
        provider: col(r, "provider")?,
        status: col(r, "status")?,
        reason: col(r, "reason")?,
        due_at: col(r, "due_at")?,
        claimed_until: col(r, "claimed_until")?,
        claim_token: col(r, "claim_token")?,
        attempts: col(r, "attempts")?,
        idempotency_key: col(r, "idempotency_key")?,
        provider_call_id: col(r, "provider_call_id")?,
        error: col(r, "error")?,
        requested_by: col(r, "requested_by")?,
        dialed_at: col(r, "dialed_at")?,
        ended_at: col(r, "ended_at")?,
        result_call_id: col(r, "result_call_id")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

/// A lead to call, as notify (or an operator) asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutbound {
    pub business_id: i64,
    pub lead_id: i64,
    pub origin_call_id: Option<i64>,
    pub form: Option<String>,
    pub to_number: Option<String>,
    pub lead_name: Option<String>,
    pub requested_by: String,
    pub due_at: i64,
}

/// Statuses a dispatcher works on when due: to dial, to dial again after a crash, to poll.
pub const ACTIVE_STATUSES: &str = "'pending','scheduled','dialing','initiated','connected'";

impl Store {
    pub async fn outbound_settings(&self, business_id: i64) -> Result<OutboundSettings> {
        let r = sqlx::query(&format!(
            "SELECT {SETTINGS_COLUMNS} FROM outbound_settings WHERE business_id = $1"
        ))
        .bind(business_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading the outbound settings of business {business_id}"))?;
        match r {
            Some(r) => settings_row(&r),
            None => Ok(OutboundSettings::off(business_id)),
        }
    }

    /// [`Store::outbound_settings`] as read in the last second (as `business_recent`): the
    /// pipeline asks it for every new lead, and a change made elsewhere shows within a
    /// second (at once when made through this store).
    pub async fn outbound_settings_recent(&self, business_id: i64) -> Result<OutboundSettings> {
        if let Some(s) = self.outbound_cache.get(business_id) {
            return Ok(s);
        }
        let s = self.outbound_settings(business_id).await?;
        self.outbound_cache.put(business_id, &s);
        Ok(s)
    }

    pub async fn save_outbound_settings(&self, s: &OutboundSettings) -> Result<()> {
        if let Some(k) = s.key_ref.as_deref().filter(|k| !k.trim().is_empty()) {
            if !crate::redact::is_reference(k) {
                return Err(StoreError::Conflict(
                    "voice key: credentials are stored as references, not values: env:NAME or file:/path".into(),
                ));
            }
        }
        sqlx::query(
            "INSERT INTO outbound_settings (business_id, auto_call, provider, base_url, key_ref, auth_header, \
             body_template, status_path, from_number, time_zone, hours, rate_per_hour, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT (business_id) DO UPDATE SET \
             auto_call = excluded.auto_call, provider = excluded.provider, base_url = excluded.base_url, \
             key_ref = excluded.key_ref, auth_header = excluded.auth_header, body_template = excluded.body_template, \
             status_path = excluded.status_path, from_number = excluded.from_number, time_zone = excluded.time_zone, \
             hours = excluded.hours, rate_per_hour = excluded.rate_per_hour, updated_at = excluded.updated_at",
        )
        .bind(s.business_id)
        .bind(s.auto_call as i64)
        .bind(&s.provider)
        .bind(s.base_url.as_deref())
        .bind(s.key_ref.as_deref())
        .bind(s.auth_header.as_deref())
        .bind(s.body_template.as_deref())
        .bind(s.status_path.as_deref())
        .bind(s.from_number.as_deref())
        .bind(&s.time_zone)
        .bind(&s.hours)
        .bind(s.rate_per_hour)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .ctx(|| format!("saving the outbound settings of business {}", s.business_id))?;
        self.outbound_cache.forget(Some(s.business_id));
        Ok(())
    }

    pub async fn add_voice_agent(
        &self,
        business_id: i64,
        name: &str,
        provider_agent_id: &str,
        active: bool,
    ) -> Result<VoiceAgent> {
        let now = crate::now_ms();
        let r = sqlx::query(
            "INSERT INTO voice_agents (business_id, name, provider_agent_id, active, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$5) ON CONFLICT (business_id, name) DO NOTHING \
             RETURNING id, business_id, name, provider_agent_id, active",
        )
        .bind(business_id)
        .bind(name)
        .bind(provider_agent_id)
        .bind(active as i64)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("adding voice agent {name:?}"))?;
        match r {
            Some(r) => agent_row(&r),
            None => Err(StoreError::Conflict(format!(
                "voice agent {name:?} exists already in this business: change it with `callops agents voice set`"
            ))),
        }
    }

    /// Change an agent's provider id and/or active flag.
    pub async fn set_voice_agent(
        &self,
        business_id: i64,
        name: &str,
        provider_agent_id: Option<&str>,
        active: Option<bool>,
    ) -> Result<VoiceAgent> {
        let r = sqlx::query(
            "UPDATE voice_agents SET provider_agent_id = COALESCE($1, provider_agent_id), \
             active = COALESCE($2, active), updated_at = $3 WHERE business_id = $4 AND name = $5 \
             RETURNING id, business_id, name, provider_agent_id, active",
        )
        .bind(provider_agent_id)
        .bind(active.map(|a| a as i64))
        .bind(crate::now_ms())
        .bind(business_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("changing voice agent {name:?}"))?;
        match r {
            Some(r) => agent_row(&r),
            None => Err(StoreError::NotFound(format!(
                "voice agent {name:?} of business {business_id} (list them: callops agents voice list)"
            ))),
        }
    }

    pub async fn voice_agents(&self, business_id: Option<i64>) -> Result<Vec<VoiceAgent>> {
        let rows = sqlx::query(
            "SELECT id, business_id, name, provider_agent_id, active FROM voice_agents \
             WHERE ($1 < 0 OR business_id = $1) ORDER BY business_id, name",
        )
        .bind(business_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing voice agents".into())?;
        rows.iter().map(agent_row).collect()
    }

    pub async fn add_lead_mapping(
        &self,
        business_id: i64,
        kind: crate::domain::outbound::MatchKind,
        pattern: &str,
        agent_name: &str,
        by: &str,
    ) -> Result<i64> {
        if pattern.trim().is_empty() {
            return Err(StoreError::Conflict(
                "a mapping needs a non-empty pattern".into(),
            ));
        }
        let agent = self
            .voice_agents(Some(business_id))
            .await?
            .into_iter()
            .find(|a| a.name == agent_name)
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "voice agent {agent_name:?} in this business (add it first: callops agents voice add)"
                ))
            })?;
        let r = sqlx::query(
            "INSERT INTO lead_mappings (business_id, match_kind, pattern, voice_agent_id, created_by, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (business_id, match_kind, pattern) DO UPDATE SET \
             voice_agent_id = excluded.voice_agent_id RETURNING id",
        )
        .bind(business_id)
        .bind(kind.as_str())
        .bind(pattern.trim())
        .bind(agent.id)
        .bind(by)
        .bind(crate::now_ms())
        .fetch_one(&self.pool)
        .await
        .ctx(|| format!("adding mapping {pattern:?}"))?;
        col(&r, "id")
    }

    pub async fn lead_mappings(&self, business_id: Option<i64>) -> Result<Vec<LeadMapping>> {
        let rows = sqlx::query(
            "SELECT m.id, m.business_id, m.match_kind, m.pattern, m.voice_agent_id, a.name AS agent, \
             m.created_by, m.created_at FROM lead_mappings m JOIN voice_agents a ON a.id = m.voice_agent_id \
             WHERE ($1 < 0 OR m.business_id = $1) ORDER BY m.business_id, m.id",
        )
        .bind(business_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing lead mappings".into())?;
        rows.iter()
            .map(|r| {
                Ok(LeadMapping {
                    id: col(r, "id")?,
                    business_id: col(r, "business_id")?,
                    match_kind: col(r, "match_kind")?,
                    pattern: col(r, "pattern")?,
                    voice_agent_id: col(r, "voice_agent_id")?,
                    voice_agent: col(r, "agent")?,
                    created_by: col(r, "created_by")?,
                    created_at: col(r, "created_at")?,
                })
            })
            .collect()
    }

    pub async fn outbound_call(&self, id: i64) -> Result<OutboundCall> {
        let r = sqlx::query(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_calls WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading outbound call {id}"))?;
        r.as_ref()
            .map(outbound_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("outbound call {id}")))
    }

    pub async fn outbound_for_lead(
        &self,
        business_id: i64,
        lead_id: i64,
    ) -> Result<Option<OutboundCall>> {
        let r = sqlx::query(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_calls WHERE business_id = $1 AND lead_id = $2"
        ))
        .bind(business_id)
        .bind(lead_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading the outbound call of lead {lead_id}"))?;
        r.as_ref().map(outbound_row).transpose()
    }

    pub async fn outbound_by_provider_id(
        &self,
        business_id: i64,
        provider_call_id: &str,
    ) -> Result<Option<OutboundCall>> {
        let r = sqlx::query(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_calls WHERE business_id = $1 AND provider_call_id = $2"
        ))
        .bind(business_id)
        .bind(provider_call_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("finding outbound call {provider_call_id:?}"))?;
        r.as_ref().map(outbound_row).transpose()
    }

    /// Outbound calls, newest first (`business` None = all).
    pub async fn outbound_calls(
        &self,
        business_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboundCall>> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_calls WHERE ($1 < 0 OR business_id = $1) \
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        ))
        .bind(business_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing outbound calls".into())?;
        rows.iter().map(outbound_row).collect()
    }

    /// Per business: (business_id, status, count) of rows created or updated since `since`,
    /// and the unmapped rows of any age.
    pub async fn outbound_counts(&self, since: i64) -> Result<Vec<(i64, String, i64)>> {
        let rows = sqlx::query(
            "SELECT business_id, status, COUNT(*) AS n FROM outbound_calls \
             WHERE updated_at >= $1 OR status = 'unmapped' GROUP BY business_id, status",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "counting outbound calls".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "business_id")?, col(r, "status")?, col(r, "n")?)))
            .collect()
    }

    /// Claim up to `limit` due rows for this dispatcher until `until`; `token` fences
    /// every later write of this claim.
    pub async fn claim_due_outbound(
        &self,
        now: i64,
        until: i64,
        token: i64,
        limit: i64,
    ) -> Result<Vec<OutboundCall>> {
        // Read first: an idle dispatcher must not take SQLite's write lock every second.
        let due: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM outbound_calls WHERE status IN ({ACTIVE_STATUSES}) AND due_at <= $1 \
             AND claimed_until <= $1 LIMIT 1"
        ))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| "looking for due outbound calls".into())?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            // One writer at a time on SQLite: the UPDATE itself is the lock.
            Dialect::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE outbound_calls SET claimed_until = $1, claim_token = $2 WHERE id IN (\
             SELECT id FROM outbound_calls WHERE status IN ({ACTIVE_STATUSES}) AND due_at <= $3 \
             AND claimed_until <= $3 ORDER BY due_at, id LIMIT $4{lock}) RETURNING {OUTBOUND_COLUMNS}"
        ))
        .bind(until)
        .bind(token)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "claiming due outbound calls".into())?;
        rows.iter().map(outbound_row).collect()
    }

    /// Calls of a business dialled since `since`, and the oldest of them (rate limit).
    pub async fn outbound_dialled_since(
        &self,
        business_id: i64,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(dialed_at) AS oldest FROM outbound_calls \
             WHERE business_id = $1 AND dialed_at >= $2",
        )
        .bind(business_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .ctx(|| format!("counting recent outbound calls of business {business_id}"))?;
        Ok((col(&r, "n")?, col(&r, "oldest")?))
    }
}

/// Insert the row for a lead; `None` when the lead already has one (the dedup).
pub async fn insert_outbound_in(
    conn: &mut sqlx::AnyConnection,
    n: &NewOutbound,
) -> Result<Option<i64>> {
    let now = crate::now_ms();
    let r = sqlx::query(
        "INSERT INTO outbound_calls (business_id, lead_id, origin_call_id, form, to_number, lead_name, status, \
         reason, due_at, idempotency_key, requested_by, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,'pending',$7,$8,$9,$10,$11,$11) \
         ON CONFLICT (business_id, lead_id) DO NOTHING RETURNING id",
    )
    .bind(n.business_id)
    .bind(n.lead_id)
    .bind(n.origin_call_id)
    .bind(n.form.as_deref())
    .bind(n.to_number.as_deref())
    .bind(n.lead_name.as_deref())
    .bind(format!("queued by {}", n.requested_by))
    .bind(n.due_at)
    // Stable per (business, lead): a retry after a crash asks the provider with the same key.
    .bind(format!("callops-{}-{}", n.business_id, n.lead_id))
    .bind(&n.requested_by)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .ctx(|| format!("queueing the outbound call of lead {}", n.lead_id))?;
    r.map(|r| col(&r, "id")).transpose()
}

/// Write back a claimed row's state, fenced by its claim token. `false` = the claim was
/// lost (another dispatcher took the row over): nothing was written.
pub async fn save_claimed_in(
    conn: &mut sqlx::AnyConnection,
    c: &OutboundCall,
    release: bool,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE outbound_calls SET status = $1, reason = $2, due_at = $3, attempts = $4, voice_agent_id = $5, \
         provider = $6, provider_call_id = $7, error = $8, dialed_at = $9, ended_at = $10, result_call_id = $11, \
         idempotency_key = $12, updated_at = $13, claimed_until = CASE WHEN $14 = 1 THEN 0 ELSE claimed_until END \
         WHERE id = $15 AND claim_token = $16",
    )
    .bind(&c.status)
    .bind(&c.reason)
    .bind(c.due_at)
    .bind(c.attempts)
    .bind(c.voice_agent_id)
    .bind(c.provider.as_deref())
    .bind(c.provider_call_id.as_deref())
    .bind(c.error.as_deref())
    .bind(c.dialed_at)
    .bind(c.ended_at)
    .bind(c.result_call_id)
    .bind(&c.idempotency_key)
    .bind(crate::now_ms())
    .bind(release as i64)
    .bind(c.id)
    .bind(c.claim_token)
    .execute(&mut *conn)
    .await
    .ctx(|| format!("saving outbound call {}", c.id))?;
    Ok(sqlx::any::AnyQueryResult::rows_affected(&r) == 1)
}
