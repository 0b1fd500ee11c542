//! Per-business pipeline settings: `callops business add|set|show`, `[businesses."NAME"]`
//! in config, and the workers' record of a business they could not build clients for.
//!
//! Credentials are references (`env:NAME`, `file:/path`): checked here and by the
//! database's CHECK constraints, resolved only by the worker that uses them, never shown
//! resolved. Every change bumps `settings_version`, which workers key their cached provider
//! clients by, so a new key takes effect without restarting them.

use super::businesses::{Business, BusinessSettings};
use super::{Ctx, Result, Store, StoreError};

/// A misconfigured business is paused (its queues are not consumed, its calls wait) and
/// looked at again after this long, or at once when its settings change.
pub const MISCONFIGURED_RECHECK_MS: i64 = 60_000;

/// Changes to a business. `None` = keep; `Some("")` = clear (for optional settings).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusinessPatch {
    pub stt: Option<String>,
    pub llm: Option<String>,
    pub crm: Option<String>,
    /// ISO 3166 country national numbers are parsed with ("DE", "IN", "US", …).
    pub region: Option<String>,
    pub language: Option<String>,
    pub stt_base_url: Option<String>,
    pub stt_model: Option<String>,
    pub stt_key: Option<String>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_key: Option<String>,
    pub crm_base_url: Option<String>,
    pub crm_key: Option<String>,
    pub crm_secret: Option<String>,
    /// Webhook verification secrets of `callops serve` (references; kept per endpoint in
    /// `webhook_endpoints`, not on the business row).
    pub retell_key: Option<String>,
    pub telnyx_public_key: Option<String>,
    pub twilio_auth_token: Option<String>,
}

impl BusinessPatch {
    pub fn from_config(c: &crate::config::BusinessConfig) -> BusinessPatch {
        BusinessPatch {
            stt: c.stt.clone(),
            llm: c.llm.clone(),
            crm: c.crm.clone(),
            region: c.region.clone(),
            language: c.language.clone(),
            stt_base_url: c.stt_base_url.clone(),
            stt_model: c.stt_model.clone(),
            stt_key: c.stt_key.clone(),
            llm_base_url: c.llm_base_url.clone(),
            llm_model: c.llm_model.clone(),
            llm_key: c.llm_key.clone(),
            crm_base_url: c.crm_base_url.clone(),
            crm_key: c.crm_key.clone(),
            crm_secret: c.crm_secret.clone(),
            retell_key: c.retell_key.clone(),
            telnyx_public_key: c.telnyx_public_key.clone(),
            twilio_auth_token: c.twilio_auth_token.clone(),
        }
    }

    /// Credentials must be references; the region a country code. The error names the
    /// setting, never the value of a credential.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("stt_key", &self.stt_key),
            ("llm_key", &self.llm_key),
            ("crm_key", &self.crm_key),
            ("crm_secret", &self.crm_secret),
            ("retell_key", &self.retell_key),
            ("telnyx_public_key", &self.telnyx_public_key),
            ("twilio_auth_token", &self.twilio_auth_token),
        ] {
            if let Some(v) = v {
                let v = v.trim();
                if !v.is_empty() && !crate::redact::is_reference(v) {
                    return Err(StoreError::Conflict(format!(
                        "{name}: credentials are stored as references, not values: env:NAME (an environment variable of the workers) or file:/path (a file the workers can read)"
                    )));
                }
                if let Some(var) = v.strip_prefix("env:") {
                    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(StoreError::Conflict(format!(
                            "{name}: env:NAME needs a variable name of letters, digits and _"
                        )));
                    }
                }
                if let Some(path) = v.strip_prefix("file:") {
                    if !path.starts_with('/') {
                        return Err(StoreError::Conflict(format!(
                            "{name}: file: needs an absolute path (file:/run/secrets/…)"
                        )));
                    }
                }
            }
        }
        if let Some(r) = &self.region {
            let r = r.trim();
            if r.len() != 2 || !r.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(StoreError::Conflict(format!(
                    "region {:?}: expected a two-letter ISO 3166 country code such as DE, IN or US",
                    crate::redact::redact_text(r)
                )));
            }
        }
        Ok(())
    }

    /// The columns this patch sets, and their new values (NULL for "").
    fn assignments(&self) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        let norm = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_string())
        };
        for (col, v) in [
            ("stt_provider", &self.stt),
            ("llm_provider", &self.llm),
            ("crm_provider", &self.crm),
        ] {
            if let Some(v) = v {
                out.push((col, Some(v.trim().to_ascii_lowercase())));
            }
        }
        if let Some(r) = &self.region {
            out.push(("default_region", Some(r.trim().to_ascii_uppercase())));
        }
        for (col, v) in [
            ("language", &self.language),
            ("stt_base_url", &self.stt_base_url),
            ("stt_model", &self.stt_model),
            ("stt_key_ref", &self.stt_key),
            ("llm_base_url", &self.llm_base_url),
            ("llm_model", &self.llm_model),
            ("llm_key_ref", &self.llm_key),
            ("crm_base_url", &self.crm_base_url),
            ("crm_key_ref", &self.crm_key),
            ("crm_secret_ref", &self.crm_secret),
        ] {
            if let Some(v) = v {
                out.push((col, norm(v)));
            }
        }
        out
    }
}

impl Business {
    /// The settings as an operator may see them: kinds, URLs (passwords and credential
    /// parameters masked), models, region, and credentials as their references — which
    /// name where a secret is, never the secret. The console's business view and
    /// `callops business show` render this.
    pub fn settings_view(&self) -> Vec<(&'static str, String)> {
        let s: &BusinessSettings = &self.settings;
        let shown = |v: &Option<String>| match v {
            Some(v) if crate::redact::is_reference(v) => v.clone(),
            Some(_) => crate::redact::MASK.to_string(),
            None => "-".to_string(),
        };
        let url = |v: &Option<String>| {
            v.as_deref()
                .map(crate::redact::redact_url)
                .unwrap_or_else(|| "(kind's default / [providers])".into())
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        vec![
            ("region", self.default_region.clone()),
            ("language", opt(&s.language)),
            ("stt", self.stt_provider.clone()),
            ("stt_base_url", url(&s.stt_base_url)),
            ("stt_model", opt(&s.stt_model)),
            ("stt_key", shown(&s.stt_key_ref)),
            ("llm", self.llm_provider.clone()),
            ("llm_base_url", url(&s.llm_base_url)),
            ("llm_model", opt(&s.llm_model)),
            ("llm_key", shown(&s.llm_key_ref)),
            ("crm", self.crm_provider.clone()),
            ("crm_base_url", url(&s.crm_base_url)),
            ("crm_key", shown(&s.crm_key_ref)),
            ("crm_secret", shown(&s.crm_secret_ref)),
            ("settings_version", self.settings_version.to_string()),
            (
                "status",
                match &self.config_error {
                    Some(e) => format!("MISCONFIGURED: {e}"),
                    None => "ok".into(),
                },
            ),
        ]
    }
}

impl Store {
    pub async fn business_by_name(&self, name: &str) -> Result<Option<Business>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM businesses WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("looking up business {name:?}"))?;
        match id {
            Some(id) => Ok(Some(self.business(id).await?)),
            None => Ok(None),
        }
    }

    /// A new business with these settings; a conflict when the name is taken.
    pub async fn add_business(&self, name: &str, patch: &BusinessPatch) -> Result<Business> {
        patch.validate()?;
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 200 {
            return Err(StoreError::Conflict(
                "a business name is 1-200 characters without control characters".into(),
            ));
        }
        if self.business_by_name(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "business {name:?} exists: change it with `callops business set`"
            )));
        }
        sqlx::query("INSERT INTO businesses (name, created_at, updated_at) VALUES ($1, $2, $2)")
            .bind(name)
            .bind(crate::now_ms())
            .execute(&self.pool)
            .await
            .ctx(|| format!("creating business {name:?}"))?;
        self.set_business(name, patch).await
    }

    /// Apply `patch` to the business. The settings version moves only when a value
    /// changed (so re-applying the same config does not make workers rebuild), and a
    /// change clears the recorded misconfiguration: workers look again at once.
    pub async fn set_business(&self, name: &str, patch: &BusinessPatch) -> Result<Business> {
        self.forget_cached_business(None);
        patch.validate()?;
        let b = self
            .business_by_name(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("business {name:?}")))?;
        self.apply_webhook_secrets(b.id, patch).await?;
        let assignments = patch.assignments();
        if assignments.is_empty() {
            return Ok(b);
        }
        let mut sets = Vec::new();
        let mut changed_checks = Vec::new();
        for (i, (col, _)) in assignments.iter().enumerate() {
            sets.push(format!("{col} = ${}", i + 1));
            // NULL-safe "differs" in both dialects.
            changed_checks.push(format!(
                "NOT (({col} IS NULL AND ${n} IS NULL) OR {col} = ${n})",
                n = i + 1
            ));
        }
        let n = assignments.len();
        let sql = format!(
            "UPDATE businesses SET {}, settings_version = settings_version + 1, updated_at = ${}, \
             config_error = NULL, config_error_at = NULL WHERE id = ${} AND ({})",
            sets.join(", "),
            n + 1,
            n + 2,
            changed_checks.join(" OR ")
        );
        let mut q = sqlx::query(&sql);
        for (_, v) in &assignments {
            q = q.bind(v.clone());
        }
        q.bind(crate::now_ms())
            .bind(b.id)
            .execute(&self.pool)
            .await
            .ctx(|| format!("updating the settings of business {name:?}"))?;
        self.business(b.id).await
    }

    /// The patch's webhook secret references → `webhook_endpoints` ("" clears).
    async fn apply_webhook_secrets(&self, id: i64, patch: &BusinessPatch) -> Result<()> {
        for (provider, v) in [
            ("retell", &patch.retell_key),
            ("telnyx", &patch.telnyx_public_key),
            ("twilio", &patch.twilio_auth_token),
        ] {
            if let Some(v) = v {
                let v = v.trim();
                self.set_webhook_secret(id, provider, (!v.is_empty()).then_some(v))
                    .await?;
            }
        }
        Ok(())
    }

    /// A worker could not build this business's clients (settings version `version`):
    /// record why and tell each of its calls in flight that it waits. Returns true when
    /// this is news (the reason changed), so the trace gets one event per call, not one
    /// per delivery.
    pub async fn mark_misconfigured(&self, id: i64, version: i64, reason: &str) -> Result<bool> {
        self.forget_cached_business(Some(id));
        let now = crate::now_ms();
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE businesses SET config_error = $1, config_error_at = $2 \
             WHERE id = $3 AND settings_version = $4 \
             AND (config_error IS NULL OR config_error <> $1 OR config_error_at < $5)",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .bind(version)
        .bind(now - MISCONFIGURED_RECHECK_MS)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("recording the misconfiguration of business {id}"))?
        .rows_affected()
            > 0;
        if changed {
            sqlx::query(
                "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, actor) \
                 SELECT id, business_id, $1, stage, 'waiting', $2, 'pipeline' FROM calls \
                 WHERE business_id = $3 AND state IN ('pending', 'running', 'retrying')",
            )
            .bind(now)
            .bind(format!(
                "waiting: business is misconfigured, its calls are paused until its settings are fixed ({reason})"
            ))
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("tracing the wait of business {id}'s calls"))?;
        }
        tx.commit()
            .await
            .ctx(|| format!("committing the misconfiguration of business {id}"))?;
        Ok(changed)
    }

    /// The clients of this settings version build: the business runs again.
    pub async fn clear_misconfigured(&self, id: i64, version: i64) -> Result<()> {
        self.forget_cached_business(Some(id));
        sqlx::query(
            "UPDATE businesses SET config_error = NULL, config_error_at = NULL \
             WHERE id = $1 AND settings_version = $2 AND config_error IS NOT NULL",
        )
        .bind(id)
        .bind(version)
        .execute(&self.pool)
        .await
        .ctx(|| format!("clearing the misconfiguration of business {id}"))?;
        Ok(())
    }

    /// For the console's business view: the business's settings as an operator may see
    /// them (`Business::settings_view`: credentials as references, URL secrets masked).
    pub async fn business_settings_masked(&self, id: i64) -> Result<Vec<(&'static str, String)>> {
        Ok(self.business(id).await?.settings_view())
    }

    /// For the overview: businesses a worker found misconfigured, and why (their calls
    /// wait until the settings are fixed).
    pub async fn misconfigured_businesses(&self) -> Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, config_error FROM businesses WHERE config_error IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing misconfigured businesses".into())?;
        Ok(rows)
    }

    /// Businesses whose queues workers consume: active and not paused as misconfigured
    /// (a paused one is tried again after `MISCONFIGURED_RECHECK_MS`, or at once when its
    /// settings change).
    pub async fn runnable_business_ids(&self) -> Result<Vec<i64>> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM businesses WHERE active = 1 \
             AND (config_error IS NULL OR config_error_at IS NULL OR config_error_at < $1) \
             ORDER BY id",
        )
        .bind(crate::now_ms() - MISCONFIGURED_RECHECK_MS)
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing runnable businesses".into())?;
        Ok(rows)
    }
}
