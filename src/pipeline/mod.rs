//! The running system: stage workers, the providers they call, ingestion, load generation.

pub mod context;
pub mod ingest;
pub mod lead_sync;
pub mod orphans;
pub mod outbound;
pub mod providers;
pub mod simulate;
pub mod source_sync;
pub mod stages;
pub mod worker;

use crate::config::Config;
use crate::store::Store;
use context::{PipelineCtx, PipelineSettings, Providers};
use providers::sim::SimSettings;
use std::time::Duration;

/// Store, broker and providers opened from config: what every command that runs or feeds
/// the pipeline needs.
pub struct Runtime {
    pub ctx: PipelineCtx,
}

impl Runtime {
    pub async fn open(config: &Config) -> anyhow::Result<Runtime> {
        let store =
            Store::open_migrated(&config.database.url, config.database.max_connections).await?;
        Runtime::with_store(config, store).await
    }

    /// `console.readonly`: a store whose sessions cannot write (and so a broker that runs
    /// no dead-letter drainer).
    pub async fn open_readonly(config: &Config) -> anyhow::Result<Runtime> {
        let store =
            Store::open_readonly(&config.database.url, config.database.max_connections).await?;
        Runtime::with_store(config, store).await
    }

    async fn with_store(config: &Config, store: Store) -> anyhow::Result<Runtime> {
        let broker =
            crate::queue::connect(&config.broker.kind, config.broker_settings(), store.clone())
                .await?;
        Ok(Runtime {
            ctx: PipelineCtx {
                store,
                broker,
                providers: build_providers(config)?,
                settings: PipelineSettings {
                    llm_model: config.pipeline.llm_model.clone(),
                    min_qc_chars: config.pipeline.min_qc_chars as usize,
                    review_floor: config.pipeline.review_floor,
                    lease: std::time::Duration::from_millis(config.broker.visibility_timeout_ms),
                    longest_retry_delay: *config
                        .broker_settings()
                        .policy
                        .tier_delays()
                        .last()
                        .expect("at least one tier"),
                },
            },
        })
    }
}

pub fn sim_settings(config: &Config, latency_ms: u64) -> SimSettings {
    let s = &config.simulated;
    SimSettings {
        latency: Duration::from_millis(latency_ms),
        jitter: s.jitter,
        transient_rate: s.transient_rate,
        permanent_rate: s.permanent_rate,
        malformed_rate: s.malformed_rate,
        seed: s.seed,
    }
}

/// The providers a worker can use; each business picks among them by kind name.
/// "simulated" is always there (demo businesses use it); the kinds named in `[providers]`
/// are built from their settings, and a bad one fails here, naming the key to fix.
pub fn build_providers(config: &Config) -> anyhow::Result<Providers> {
    use providers::{build_crm, build_llm, build_stt, ProviderSettings};
    let pc = &config.providers;
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let base = ProviderSettings {
        timeout: Duration::from_secs(pc.timeout_s.max(1)),
        poll_interval: Duration::from_millis(pc.poll_interval_ms),
        max_polls: pc.max_polls,
        audio: providers::audio::AudioPolicy::from_config(&config.audio),
        ..Default::default()
    };
    let stt_cfg = ProviderSettings {
        base_url: opt(&pc.stt_base_url),
        api_key: opt(&pc.stt_api_key),
        model: opt(&pc.stt_model),
        path: opt(&pc.stt_path),
        sim: sim_settings(config, config.simulated.stt_latency_ms),
        ..base.clone()
    };
    let llm_cfg = ProviderSettings {
        base_url: opt(&pc.llm_base_url),
        api_key: opt(&pc.llm_api_key),
        model: opt(&pc.llm_model),
        sim: sim_settings(config, config.simulated.llm_latency_ms),
        ..base.clone()
    };
    let crm_cfg = ProviderSettings {
        base_url: opt(&pc.crm_base_url),
        api_key: opt(&pc.crm_api_key),
        api_secret: opt(&pc.crm_api_secret),
        sim: sim_settings(config, 0),
        ..base
    };
    let fix = |key: &str, kind: &str, why: String| {
        anyhow::anyhow!(
            "config providers.{key} = {kind:?}: {why}. Set the [providers] {key}_* keys \
             (or CALLOPS_PROVIDERS_{}_* env vars), or pick another kind",
            key.to_ascii_uppercase()
        )
    };
    let mut p = Providers {
        // Per-business clients from each business's own settings (over `[providers]`).
        registry: Some(std::sync::Arc::new(
            providers::registry::ProviderRegistry::new(providers::registry::RegistryDefaults {
                stt: ProviderSettings {
                    base_url: None,
                    api_key: None,
                    model: None,
                    path: None,
                    ..stt_cfg.clone()
                },
                llm: ProviderSettings {
                    base_url: None,
                    api_key: None,
                    model: None,
                    ..llm_cfg.clone()
                },
                crm: ProviderSettings {
                    base_url: None,
                    api_key: None,
                    api_secret: None,
                    ..crm_cfg.clone()
                },
                global: Some(pc.clone()),
            }),
        )),
        ..Default::default()
    };
    for kind in ["simulated", pc.stt.trim()] {
        if !p.stt.contains_key(kind) {
            let built = build_stt(kind, &stt_cfg).map_err(|e| fix("stt", kind, e))?;
            p.stt.insert(kind.to_string(), built);
        }
    }
    for kind in ["simulated", pc.llm.trim()] {
        if !p.llm.contains_key(kind) {
            let built = build_llm(kind, &llm_cfg).map_err(|e| fix("llm", kind, e))?;
            p.llm.insert(kind.to_string(), built);
        }
    }
    // "builtin" = the leads table only: the notify stage needs no adapter for it.
    for kind in ["simulated", pc.crm.trim()] {
        if kind != "builtin" && !p.crm.contains_key(kind) {
            let built = build_crm(kind, &crm_cfg).map_err(|e| fix("crm", kind, e))?;
            p.crm.insert(kind.to_string(), built);
        }
    }
    Ok(p)
}

/// Agents every new business starts with: a QC scorecard (auto-QC on) and call insights.
pub async fn ensure_default_agents(store: &Store, business_id: i64) -> crate::store::Result<()> {
    if !store.agents(business_id).await?.is_empty() {
        return Ok(());
    }
    store
        .upsert_agent(
            business_id,
            "QC scorecard",
            "qc",
            "Score the agent on greeting, needs analysis, solution, closing (0-10 each). Return JSON.",
            &["scores", "qc_score"],
            true,
        )
        .await?;
    store
        .upsert_agent(
            business_id,
            "Call insights",
            "insights",
            "Summarize the call, rate the caller's sentiment, extract BANT, the caller's name with a quote as evidence, and whether they want an appointment or to buy. Return JSON.",
            &[
                "summary",
                "sentiment",
                "bant",
                "caller_name",
                "caller_name_evidence",
                "appointment_intent",
                "purchase_intent",
            ],
            false,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_kinds_are_built_and_a_missing_key_is_named() {
        let mut c = Config::defaults();
        let p = build_providers(&c).unwrap();
        assert!(p.stt.contains_key("simulated") && p.llm.contains_key("simulated"));
        assert!(p.crm.contains_key("simulated") && !p.crm.contains_key("builtin"));

        c.providers.stt = "deepgram".into();
        let err = build_providers(&c).err().unwrap().to_string();
        assert!(err.contains("providers.stt = \"deepgram\""), "{err}");
        assert!(
            err.contains("api_key") && err.contains("CALLOPS_PROVIDERS_STT_"),
            "{err}"
        );

        c.providers.stt_api_key = "dg-key".into();
        c.providers.llm = "ollama".into();
        c.providers.llm_base_url = "http://127.0.0.1:11434".into();
        c.providers.crm = "leadsquared".into();
        let err = build_providers(&c).err().unwrap().to_string();
        assert!(
            err.contains("providers.crm = \"leadsquared\"") && err.contains("base_url"),
            "{err}"
        );

        c.providers.crm_base_url = "http://127.0.0.1:9".into();
        c.providers.crm_api_key = "ak".into();
        c.providers.crm_api_secret = "sk".into();
        let p = build_providers(&c).unwrap();
        for k in ["simulated", "deepgram"] {
            assert!(p.stt.contains_key(k), "{k}");
        }
        assert!(p.llm.contains_key("ollama") && p.crm.contains_key("leadsquared"));

        c.providers.llm = "gpt".into();
        let err = build_providers(&c).err().unwrap().to_string();
        assert!(err.contains("providers.llm = \"gpt\""), "{err}");
    }
}
