//! Provider clients per business, built lazily from the business's own settings (kind,
//! base URL, model, credentials by reference) over the deployment's `[providers]`
//! defaults, cached by (business, settings version) and rebuilt when the version moves:
//! `callops business set` takes effect in running workers without a restart.
//!
//! A business whose clients cannot be built (unknown kind, missing base URL, an `env:`
//! variable this worker does not have, an unreadable `file:`) is misconfigured: the error
//! says which setting of which business and how to fix it, never a secret; the worker
//! records it on the business (the overview shows it) and pauses the business, so its
//! calls wait instead of dying one by one.

use super::crm::CrmAdapter;
use super::llm::LlmProvider;
use super::stt::SttProvider;
use super::{build_crm, build_llm, build_stt, ProviderSettings};
use crate::config::ProvidersConfig;
use crate::pipeline::context::Providers;
use crate::store::businesses::Business;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The deployment-wide part: timeouts, simulated settings, audio bounds, and the
/// `[providers]` values a business inherits for the kind configured there.
#[derive(Clone, Debug)]
pub struct RegistryDefaults {
    pub stt: ProviderSettings,
    pub llm: ProviderSettings,
    pub crm: ProviderSettings,
    /// `[providers]` (kinds and their URLs, models, keys): inherited by a business using
    /// the same kind, for settings it does not have itself.
    pub global: Option<ProvidersConfig>,
}

/// One business's clients at one settings version. An `Err` is the reason it is
/// misconfigured for that kind of provider.
pub struct BusinessClients {
    pub version: i64,
    built_at: std::time::Instant,
    pub stt: Result<Arc<dyn SttProvider>, String>,
    pub llm: Result<Arc<dyn LlmProvider>, String>,
    /// `None`: the built-in leads table is the CRM.
    pub crm: Option<Result<Arc<dyn CrmAdapter>, String>>,
}

impl BusinessClients {
    /// Every reason this business cannot run, joined (None = fine).
    pub fn problem(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Err(e) = &self.stt {
            why.push(e.clone());
        }
        if let Err(e) = &self.llm {
            why.push(e.clone());
        }
        if let Some(Err(e)) = &self.crm {
            why.push(e.clone());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

pub struct ProviderRegistry {
    defaults: RegistryDefaults,
    cache: Mutex<HashMap<i64, Arc<BusinessClients>>>,
    /// How many times clients were built (tests check the cache and the rebuilds).
    builds: std::sync::atomic::AtomicU64,
}

/// `env:NAME` or `file:/path` → the secret. Errors name the reference and the setting,
/// never a value.
pub fn resolve_secret(reference: &str, what: &str) -> Result<String, String> {
    let r = reference.trim();
    if let Some(var) = r.strip_prefix("env:") {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            Ok(_) => Err(format!(
                "{what} = env:{var}: the variable is empty in this worker"
            )),
            Err(_) => Err(format!(
                "{what} = env:{var}: the variable is not set in this worker's environment"
            )),
        }
    } else if let Some(path) = r.strip_prefix("file:") {
        match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            Ok(_) => Err(format!("{what} = file:{path}: the file is empty")),
            Err(e) => Err(format!("{what} = file:{path}: cannot read it: {e}")),
        }
    } else {
        Err(format!(
            "{what} is not a reference (env:NAME or file:/path); credentials are never stored in clear"
        ))
    }
}

impl ProviderRegistry {
    pub fn new(defaults: RegistryDefaults) -> ProviderRegistry {
        ProviderRegistry {
            defaults,
            cache: Mutex::new(HashMap::new()),
            builds: Default::default(),
        }
    }

    pub fn builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The clients of `b` at its current settings version (built now if the cache has an
    /// older version or none).
    pub fn clients(&self, b: &Business) -> Arc<BusinessClients> {
        // Built under the lock: builds are rare (once per business and settings version)
        // and short (no network), and concurrent deliveries of a new version must not
        // each build their own clients.
        let mut cache = self.cache.lock().unwrap();
        if let Some(c) = cache.get(&b.id) {
            // A failed build is tried again after a while: an `env:` variable cannot
            // appear in a running process, but a `file:` can.
            let stale_failure = c.problem().is_some()
                && c.built_at.elapsed().as_millis() as i64
                    > crate::store::business_settings::MISCONFIGURED_RECHECK_MS;
            // Newer than this snapshot of the business: newer settings, keep them.
            if c.version >= b.settings_version && !stale_failure {
                return c.clone();
            }
        }
        let built = Arc::new(self.build(b));
        self.builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        cache.insert(b.id, built.clone());
        built
    }

    fn build(&self, b: &Business) -> BusinessClients {
        let s = &b.settings;
        let g = self.defaults.global.as_ref();
        let opt = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        // The business's own value, else `[providers]`'s when it configures the same kind.
        let inherit = |own: &Option<String>, same_kind: bool, global: Option<&String>| {
            own.clone()
                .or_else(|| same_kind.then(|| global.and_then(|v| opt(v))).flatten())
        };
        let key = |own: &Option<String>,
                   same_kind: bool,
                   global: Option<&String>,
                   what: &str|
         -> Result<Option<String>, String> {
            match own {
                Some(r) => resolve_secret(r, what).map(Some),
                None => Ok(same_kind.then(|| global.and_then(|v| opt(v))).flatten()),
            }
        };
        let name = crate::domain::text::sanitize(&b.name);
        let fix = |part: &str, kind: &str, why: String| {
            format!(
                "business '{name}' {part} provider {kind:?}: {why} (fix: callops business set \"{name}\" --{part}-…)"
            )
        };

        let same = g.is_some_and(|g| g.stt.trim() == b.stt_provider);
        let stt = (|| {
            let cfg = ProviderSettings {
                base_url: inherit(&s.stt_base_url, same, g.map(|g| &g.stt_base_url)),
                model: inherit(&s.stt_model, same, g.map(|g| &g.stt_model)),
                path: if same {
                    g.and_then(|g| opt(&g.stt_path))
                } else {
                    None
                },
                api_key: key(&s.stt_key_ref, same, g.map(|g| &g.stt_api_key), "stt_key")?,
                ..self.defaults.stt.clone()
            };
            build_stt(&b.stt_provider, &cfg)
        })()
        .map_err(|e| fix("stt", &b.stt_provider, e));

        let same = g.is_some_and(|g| g.llm.trim() == b.llm_provider);
        let llm = (|| {
            let cfg = ProviderSettings {
                base_url: inherit(&s.llm_base_url, same, g.map(|g| &g.llm_base_url)),
                model: inherit(&s.llm_model, same, g.map(|g| &g.llm_model)),
                api_key: key(&s.llm_key_ref, same, g.map(|g| &g.llm_api_key), "llm_key")?,
                ..self.defaults.llm.clone()
            };
            build_llm(&b.llm_provider, &cfg)
        })()
        .map_err(|e| fix("llm", &b.llm_provider, e));

        let crm = (b.crm_provider != "builtin").then(|| {
            let same = g.is_some_and(|g| g.crm.trim() == b.crm_provider);
            (|| {
                let cfg = ProviderSettings {
                    base_url: inherit(&s.crm_base_url, same, g.map(|g| &g.crm_base_url)),
                    api_key: key(&s.crm_key_ref, same, g.map(|g| &g.crm_api_key), "crm_key")?,
                    api_secret: key(
                        &s.crm_secret_ref,
                        same,
                        g.map(|g| &g.crm_api_secret),
                        "crm_secret",
                    )?,
                    ..self.defaults.crm.clone()
                };
                build_crm(&b.crm_provider, &cfg)
            })()
            .map_err(|e| fix("crm", &b.crm_provider, e))
        });
        BusinessClients {
            version: b.settings_version,
            built_at: std::time::Instant::now(),
            stt,
            llm,
            crm,
        }
    }

    /// Record what was found on the business: a misconfiguration (once per reason; the
    /// business is paused and its calls' traces say why) or, after one, that it is fine
    /// again. Errors only log: the stage reports the problem anyway.
    pub async fn record(&self, store: &Store, b: &Business, clients: &BusinessClients) {
        let r = match clients.problem() {
            Some(why) => store
                .mark_misconfigured(b.id, b.settings_version, &why)
                .await
                .map(|news| {
                    if news {
                        tracing::warn!(business = b.id, %why, "business misconfigured: its calls wait");
                    }
                }),
            None if b.config_error.is_some() => {
                store.clear_misconfigured(b.id, b.settings_version).await
            }
            None => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(business = b.id, error = %e, "could not record the business's configuration state");
        }
    }
}

/// What a stage gets when the business cannot run: the reason, for the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Misconfigured(pub String);

impl std::fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; the business is paused and its calls wait until its settings are fixed",
            self.0
        )
    }
}

impl Providers {
    async fn clients_for(&self, store: &Store, b: &Business) -> Option<Arc<BusinessClients>> {
        let reg = self.registry.as_ref()?;
        let c = reg.clients(b);
        if c.problem().is_some() || b.config_error.is_some() {
            reg.record(store, b, &c).await;
        }
        Some(c)
    }

    /// The business's STT client: from the registry (its own settings) when this worker
    /// has one, else the client of its kind (tests that build providers by kind).
    pub async fn stt_for(
        &self,
        store: &Store,
        b: &Business,
    ) -> Result<Arc<dyn SttProvider>, Misconfigured> {
        match self.clients_for(store, b).await {
            Some(c) => c.stt.clone().map_err(Misconfigured),
            None => self.stt.get(&b.stt_provider).cloned().ok_or_else(|| {
                Misconfigured(format!(
                    "business '{}' uses STT provider '{}', which is not configured in this worker",
                    b.name, b.stt_provider
                ))
            }),
        }
        .map(|p| super::timed::stt(p, b.id))
    }

    pub async fn llm_for(
        &self,
        store: &Store,
        b: &Business,
    ) -> Result<Arc<dyn LlmProvider>, Misconfigured> {
        match self.clients_for(store, b).await {
            Some(c) => c.llm.clone().map_err(Misconfigured),
            None => self.llm.get(&b.llm_provider).cloned().ok_or_else(|| {
                Misconfigured(format!(
                    "business '{}' uses LLM provider '{}', which is not configured in this worker",
                    b.name, b.llm_provider
                ))
            }),
        }
        .map(|p| super::timed::llm(p, b.id))
    }

    /// `Ok(None)`: the business's CRM is the built-in leads table.
    pub async fn crm_for(
        &self,
        store: &Store,
        b: &Business,
    ) -> Result<Option<Arc<dyn CrmAdapter>>, Misconfigured> {
        if b.crm_provider == "builtin" {
            return Ok(None);
        }
        match self.clients_for(store, b).await {
            Some(c) => match &c.crm {
                Some(r) => r.clone().map(Some).map_err(Misconfigured),
                None => Ok(None),
            },
            None => self
                .crm
                .get(&b.crm_provider)
                .cloned()
                .map(Some)
                .ok_or_else(|| {
                    Misconfigured(format!(
                        "CRM '{}' of business '{}' is not configured in this worker",
                        b.crm_provider, b.name
                    ))
                }),
        }
        .map(|o| o.map(|p| super::timed::crm(p, b.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_resolve_without_echoing_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "sk-file-value\n").unwrap();
        let r = format!("file:{}", f.display());
        assert_eq!(resolve_secret(&r, "stt_key").unwrap(), "sk-file-value");
        let e = resolve_secret("env:CALLOPS_UNIT_SURELY_UNSET", "llm_key").unwrap_err();
        assert!(
            e.contains("llm_key = env:CALLOPS_UNIT_SURELY_UNSET") && e.contains("not set"),
            "{e}"
        );
        let e = resolve_secret("sk-live-abc", "crm_key").unwrap_err();
        assert!(
            !e.contains("sk-live-abc") && e.contains("not a reference"),
            "{e}"
        );
        let e = resolve_secret("file:/nonexistent/x", "crm_secret").unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn clients_are_cached_per_settings_version_and_problems_named() {
        let reg = ProviderRegistry::new(RegistryDefaults {
            stt: ProviderSettings::default(),
            llm: ProviderSettings::default(),
            crm: ProviderSettings::default(),
            global: None,
        });
        let mut b = Business {
            id: 7,
            name: "Acme".into(),
            default_region: "DE".into(),
            stt_provider: "simulated".into(),
            llm_provider: "simulated".into(),
            crm_provider: "builtin".into(),
            auto_qc: true,
            auto_create_leads: true,
            lead_filter: false,
            link_threshold: 0.85,
            active: true,
            own_numbers: vec![],
            created_at: 0,
            settings: Default::default(),
            settings_version: 1,
            config_error: None,
        };
        assert!(reg.clients(&b).problem().is_none());
        reg.clients(&b);
        assert_eq!(reg.builds(), 1);
        b.settings_version = 2;
        b.stt_provider = "deepgram".into();
        b.settings.stt_key_ref = Some("env:CALLOPS_UNIT_SURELY_UNSET".into());
        let c = reg.clients(&b);
        assert_eq!(reg.builds(), 2);
        let why = c.problem().unwrap();
        assert!(
            why.contains("business 'Acme' stt provider \"deepgram\"")
                && why.contains("CALLOPS_UNIT_SURELY_UNSET"),
            "{why}"
        );
        // An older snapshot keeps the newer clients.
        b.settings_version = 1;
        reg.clients(&b);
        assert_eq!(reg.builds(), 2);
    }
}
