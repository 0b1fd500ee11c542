//! Businesses (tenants) and their pipeline settings.

use super::{col, Ctx, Result, Store};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Business {
    pub id: i64,
    pub name: String,
    pub default_region: String,
    pub stt_provider: String,
    pub llm_provider: String,
    pub crm_provider: String,
    pub auto_qc: bool,
    pub auto_create_leads: bool,
    pub lead_filter: bool,
    pub link_threshold: f64,
    pub active: bool,
    pub created_at: i64,
    /// Per-business provider settings (migration 0006); credentials are references.
    #[serde(default)]
    pub settings: BusinessSettings,
    /// Bumped by every settings change: workers key their cached clients by it.
    #[serde(default)]
    pub settings_version: i64,
    /// What the last worker to build this business's clients found wrong (None = fine).
    #[serde(default)]
    pub config_error: Option<String>,
    /// The business's own numbers as configured (`own_numbers` in the `settings` column):
    /// a call from one of them is not a customer's.
    #[serde(default)]
    pub own_numbers: Vec<String>,
}

/// Provider settings of one business beyond the kinds: service roots, models, default
/// language and credentials. Credentials are references (`env:NAME`, `file:/path`) that
/// only the worker resolves; the database refuses anything else (CHECK constraints).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BusinessSettings {
    pub language: Option<String>,
    pub stt_base_url: Option<String>,
    pub stt_model: Option<String>,
    pub stt_key_ref: Option<String>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_key_ref: Option<String>,
    pub crm_base_url: Option<String>,
    pub crm_key_ref: Option<String>,
    pub crm_secret_ref: Option<String>,
}

const COLUMNS: &str =
    "id, name, default_region, stt_provider, llm_provider, crm_provider, auto_qc, \
    auto_create_leads, lead_filter, link_threshold, active, created_at, language, \
    stt_base_url, stt_model, stt_key_ref, llm_base_url, llm_model, llm_key_ref, crm_base_url, \
    crm_key_ref, crm_secret_ref, settings_version, config_error, settings";

fn row(r: &AnyRow) -> Result<Business> {
    Ok(Business {
        id: col(r, "id")?,
        name: col(r, "name")?,
        default_region: col(r, "default_region")?,
        stt_provider: col(r, "stt_provider")?,
        llm_provider: col(r, "llm_provider")?,
        crm_provider: col(r, "crm_provider")?,
        auto_qc: col::<i64>(r, "auto_qc")? != 0,
        auto_create_leads: col::<i64>(r, "auto_create_leads")? != 0,
        lead_filter: col::<i64>(r, "lead_filter")? != 0,
        link_threshold: col(r, "link_threshold")?,
        active: col::<i64>(r, "active")? != 0,
        created_at: col(r, "created_at")?,
        settings: BusinessSettings {
            language: col(r, "language")?,
            stt_base_url: col(r, "stt_base_url")?,
            stt_model: col(r, "stt_model")?,
            stt_key_ref: col(r, "stt_key_ref")?,
            llm_base_url: col(r, "llm_base_url")?,
            llm_model: col(r, "llm_model")?,
            llm_key_ref: col(r, "llm_key_ref")?,
            crm_base_url: col(r, "crm_base_url")?,
            crm_key_ref: col(r, "crm_key_ref")?,
            crm_secret_ref: col(r, "crm_secret_ref")?,
        },
        settings_version: col(r, "settings_version")?,
        config_error: col(r, "config_error")?,
        own_numbers: own_numbers(&col::<String>(r, "settings")?),
    })
}

/// `own_numbers` of a `settings` JSON object, as written (an unreadable one has none).
fn own_numbers(settings: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(settings).unwrap_or_default();
    v["own_numbers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// Which provider kinds a new business gets (an existing one keeps its own).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderKinds {
    pub stt: String,
    pub llm: String,
    pub crm: String,
}

impl Default for ProviderKinds {
    fn default() -> Self {
        ProviderKinds {
            stt: "simulated".into(),
            llm: "simulated".into(),
            crm: "builtin".into(),
        }
    }
}

impl Store {
    /// Create the business if its name is new; return it either way.
    pub async fn ensure_business(&self, name: &str) -> Result<Business> {
        self.ensure_business_with(name, &ProviderKinds::default())
            .await
    }

    /// `ensure_business`, giving a new business these provider kinds.
    pub async fn ensure_business_with(
        &self,
        name: &str,
        kinds: &ProviderKinds,
    ) -> Result<Business> {
        sqlx::query(
            "INSERT INTO businesses (name, created_at, stt_provider, llm_provider, crm_provider) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(crate::now_ms())
        .bind(&kinds.stt)
        .bind(&kinds.llm)
        .bind(&kinds.crm)
        .execute(&self.pool)
        .await
        .ctx(|| format!("creating business {name:?}"))?;
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM businesses WHERE name = $1"))
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .ctx(|| format!("reading business {name:?}"))?;
        row(&r)
    }

    /// The business as a stage run acts on it: a row this process read at most
    /// [`BUSINESS_CACHE_TTL`] ago, or a fresh read. Five stages per call each read their
    /// business; at hundreds of calls a second those reads were a tenth of all statements
    /// (issue 14). A change made through this store applies at once; one made by another
    /// process (`callops business set`) applies to stages starting a second later.
    pub async fn business_recent(&self, id: i64) -> Result<Business> {
        if let Some(b) = self.business_cache.get(id) {
            return Ok(b);
        }
        let b = self.business(id).await?;
        self.business_cache.put(b.id, &b);
        Ok(b)
    }

    /// Drop cached business rows after a change (`id`, or all with `None`).
    pub(crate) fn forget_cached_business(&self, id: Option<i64>) {
        self.business_cache.forget(id);
    }

    pub async fn business(&self, id: i64) -> Result<Business> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM businesses WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading business {id}"))?
            .ok_or_else(|| super::StoreError::NotFound(format!("business {id}")))?;
        row(&r)
    }

    pub async fn businesses(&self) -> Result<Vec<Business>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM businesses ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing businesses".into())?;
        rows.iter().map(row).collect()
    }

    pub async fn active_business_ids(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM businesses WHERE active = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing active businesses".into())?;
        rows.iter().map(|r| col(r, "id")).collect()
    }
}

/// How old a business row [`Store::business_recent`] (or its agents,
/// [`Store::agents_recent`]) may be when handed out.
pub const BUSINESS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Rows keyed by id with the time they were read; shared by the clones of a store.
#[derive(Clone)]
pub(crate) struct RecentCache<V>(
    std::sync::Arc<std::sync::Mutex<HashMap<i64, (std::time::Instant, V)>>>,
);

impl<V> Default for RecentCache<V> {
    fn default() -> Self {
        RecentCache(Default::default())
    }
}

impl<V: Clone> RecentCache<V> {
    pub(crate) fn get(&self, id: i64) -> Option<V> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(at, _)| at.elapsed() < BUSINESS_CACHE_TTL)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn put(&self, id: i64, v: &V) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: rows past their age are dropped whenever the map grows large.
        if map.len() >= 4096 {
            map.retain(|_, (at, _)| at.elapsed() < BUSINESS_CACHE_TTL);
        }
        map.insert(id, (std::time::Instant::now(), v.clone()));
    }

    pub(crate) fn forget(&self, id: Option<i64>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match id {
            Some(id) => {
                map.remove(&id);
            }
            None => map.clear(),
        }
    }
}
