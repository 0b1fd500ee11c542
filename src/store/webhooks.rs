//! Provider webhooks (`callops serve`, migration 0009): each business's endpoints with their
//! verification secret (a reference) and health, the per-event dedup rows, and the merged
//! state of each provider call until it becomes a call.

use super::{col, Ctx, Dialect, Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// The providers `callops serve` has a handler for.
pub const WEBHOOK_PROVIDERS: [&str; 3] = ["retell", "telnyx", "twilio"];

/// One business's endpoint for one provider, as the console and `business show` see it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookEndpoint {
    pub business_id: i64,
    pub provider: String,
    /// `env:NAME` / `file:/path`: where the verification secret is, never the secret.
    pub secret_ref: Option<String>,
    /// Last request that passed its signature check, and its event type.
    pub last_event_at: Option<i64>,
    pub last_event_type: Option<String>,
    /// Last request of any kind, what it was answered, and why when it was refused.
    pub last_result: Option<String>,
    pub last_result_at: Option<i64>,
    pub last_reason: Option<String>,
    pub accepted: i64,
    pub rejected: i64,
    /// Provider calls heard of but not yet a call (e.g. a hangup whose recording is due).
    pub waiting: i64,
    pub oldest_waiting_at: Option<i64>,
}

/// What one request did to an endpoint's health row.
#[derive(Debug, Clone, Default)]
pub struct EndpointHit<'a> {
    /// The request passed its signature check (it counts as "an event received").
    pub verified: bool,
    pub event_type: Option<&'a str>,
    pub result: &'a str,
    pub reason: Option<&'a str>,
}

fn endpoint_row(r: &AnyRow) -> Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        business_id: col(r, "business_id")?,
        provider: col(r, "provider")?,
        secret_ref: col(r, "secret_ref")?,
        last_event_at: col(r, "last_event_at")?,
        last_event_type: col(r, "last_event_type")?,
        last_result: col(r, "last_result")?,
        last_result_at: col(r, "last_result_at")?,
        last_reason: col(r, "last_reason")?,
        accepted: col(r, "accepted")?,
        rejected: col(r, "rejected")?,
        waiting: col(r, "waiting")?,
        oldest_waiting_at: col(r, "oldest_waiting_at")?,
    })
}

impl Store {
    /// The endpoints of a business that were configured or have been called, by provider.
    pub async fn webhook_endpoints(&self, business_id: i64) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(
            "SELECT e.business_id, e.provider, e.secret_ref, e.last_event_at, e.last_event_type, \
             e.last_result, e.last_result_at, e.last_reason, e.accepted, e.rejected, \
             (SELECT COUNT(*) FROM webhook_calls w WHERE w.business_id = e.business_id \
              AND w.provider = e.provider AND w.call_id IS NULL) AS waiting, \
             (SELECT MIN(w.first_at) FROM webhook_calls w WHERE w.business_id = e.business_id \
              AND w.provider = e.provider AND w.call_id IS NULL) AS oldest_waiting_at \
             FROM webhook_endpoints e WHERE e.business_id = $1 ORDER BY e.provider",
        )
        .bind(business_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the webhook endpoints of business {business_id}"))?;
        rows.iter().map(endpoint_row).collect()
    }

    /// The reference to the secret that verifies `provider`'s requests for this business.
    pub async fn webhook_secret_ref(
        &self,
        business_id: i64,
        provider: &str,
    ) -> Result<Option<String>> {
        let r: Option<Option<String>> = sqlx::query_scalar(
            "SELECT secret_ref FROM webhook_endpoints WHERE business_id = $1 AND provider = $2",
        )
        .bind(business_id)
        .bind(provider)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| {
            format!("reading the {provider} webhook secret reference of business {business_id}")
        })?;
        Ok(r.flatten())
    }

    /// Set (or clear with `None`) the secret reference of an endpoint. The value must be a
    /// reference; the error never echoes it.
    pub async fn set_webhook_secret(
        &self,
        business_id: i64,
        provider: &str,
        secret_ref: Option<&str>,
    ) -> Result<()> {
        if !WEBHOOK_PROVIDERS.contains(&provider) {
            return Err(StoreError::Conflict(format!(
                "unknown webhook provider {provider:?}; known: {}",
                WEBHOOK_PROVIDERS.join(", ")
            )));
        }
        if secret_ref.is_some_and(|v| !crate::redact::is_reference(v)) {
            return Err(StoreError::Conflict(format!(
                "the {provider} webhook secret is stored as a reference, not a value: env:NAME or file:/path"
            )));
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (business_id, provider, secret_ref) VALUES ($1, $2, $3) \
             ON CONFLICT (business_id, provider) DO UPDATE SET secret_ref = excluded.secret_ref",
        )
        .bind(business_id)
        .bind(provider)
        .bind(secret_ref)
        .execute(&self.pool)
        .await
        .ctx(|| format!("setting the {provider} webhook secret reference of business {business_id}"))?;
        Ok(())
    }

    /// Record one request's outcome on the endpoint's health row (created on first use).
    pub async fn record_webhook_hit(
        &self,
        business_id: i64,
        provider: &str,
        hit: &EndpointHit<'_>,
    ) -> Result<()> {
        let now = crate::now_ms();
        sqlx::query(
            "INSERT INTO webhook_endpoints (business_id, provider, last_event_at, last_event_type, \
             last_result, last_result_at, last_reason, accepted, rejected) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (business_id, provider) DO UPDATE SET \
             last_event_at = COALESCE(excluded.last_event_at, webhook_endpoints.last_event_at), \
             last_event_type = COALESCE(excluded.last_event_type, webhook_endpoints.last_event_type), \
             last_result = excluded.last_result, last_result_at = excluded.last_result_at, \
             last_reason = excluded.last_reason, \
             accepted = webhook_endpoints.accepted + excluded.accepted, \
             rejected = webhook_endpoints.rejected + excluded.rejected",
        )
        .bind(business_id)
        .bind(provider)
        .bind(hit.verified.then_some(now))
        .bind(hit.event_type.filter(|_| hit.verified))
        .bind(hit.result)
        .bind(now)
        .bind(hit.reason)
        .bind(hit.verified as i64)
        .bind(!hit.verified as i64)
        .execute(&self.pool)
        .await
        .ctx(|| format!("recording a {provider} webhook request of business {business_id}"))?;
        Ok(())
    }

    /// Claim an event's dedup key on the caller's transaction. `None`: the event was
    /// received before (or is being received right now by a transaction that commits).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_webhook_event_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        business_id: i64,
        provider: &str,
        event_key: &str,
        event_type: &str,
        provider_call_id: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO webhook_events (business_id, provider, event_key, event_type, \
             provider_call_id, received_at, result) VALUES ($1, $2, $3, $4, $5, $6, 'received') \
             ON CONFLICT (business_id, provider, event_key) DO NOTHING RETURNING id",
        )
        .bind(business_id)
        .bind(provider)
        .bind(event_key)
        .bind(event_type)
        .bind(provider_call_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("recording {provider} event {event_key:?} of business {business_id}"))?;
        Ok(id)
    }

    pub async fn finish_webhook_event_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        id: i64,
        result: &str,
        call_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query("UPDATE webhook_events SET result = $1, call_id = $2 WHERE id = $3")
            .bind(result)
            .bind(call_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("recording the outcome of webhook event {id}"))?;
        Ok(())
    }

    /// The merged record of a provider call and the call it became, locked for the rest of
    /// the caller's transaction (created empty on first sight), so two events of one call
    /// are merged one after the other.
    pub async fn lock_webhook_call_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        business_id: i64,
        provider: &str,
        provider_call_id: &str,
        now: i64,
    ) -> Result<(String, Option<i64>)> {
        let what =
            || format!("reading {provider} call {provider_call_id:?} of business {business_id}");
        sqlx::query(
            "INSERT INTO webhook_calls (business_id, provider, provider_call_id, record, first_at, updated_at) \
             VALUES ($1, $2, $3, '{}', $4, $4) \
             ON CONFLICT (business_id, provider, provider_call_id) DO NOTHING",
        )
        .bind(business_id)
        .bind(provider)
        .bind(provider_call_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .ctx(what)?;
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE",
            // SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other writers.
            Dialect::Sqlite => "",
        };
        let r = sqlx::query(&format!(
            "SELECT record, call_id FROM webhook_calls \
             WHERE business_id = $1 AND provider = $2 AND provider_call_id = $3{lock}"
        ))
        .bind(business_id)
        .bind(provider)
        .bind(provider_call_id)
        .fetch_one(&mut *tx)
        .await
        .ctx(what)?;
        Ok((col(&r, "record")?, col(&r, "call_id")?))
    }

    pub async fn save_webhook_call_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        business_id: i64,
        provider: &str,
        provider_call_id: &str,
        record: &str,
        call_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_calls SET record = $1, call_id = $2, updated_at = $3 \
             WHERE business_id = $4 AND provider = $5 AND provider_call_id = $6",
        )
        .bind(record)
        .bind(call_id)
        .bind(crate::now_ms())
        .bind(business_id)
        .bind(provider)
        .bind(provider_call_id)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("saving {provider} call {provider_call_id:?} of business {business_id}"))?;
        Ok(())
    }
}
