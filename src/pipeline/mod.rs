//! The running system: stage workers, the providers they call, ingestion, load generation.

pub mod context;
pub mod ingest;
pub mod providers;
pub mod simulate;
pub mod stages;
pub mod worker;

use crate::config::Config;
use crate::store::Store;
use context::{PipelineCtx, PipelineSettings, Providers};
use providers::sim::SimSettings;
use std::sync::Arc;
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

/// The providers a worker can use; each business picks among them by name.
pub fn build_providers(config: &Config) -> anyhow::Result<Providers> {
    let mut p = Providers::default();
    p.stt.insert(
        "simulated".into(),
        Arc::new(providers::stt::simulated::SimulatedStt {
            sim: sim_settings(config, config.simulated.stt_latency_ms),
        }),
    );
    p.llm.insert(
        "simulated".into(),
        Arc::new(providers::llm::simulated::SimulatedLlm {
            sim: sim_settings(config, config.simulated.llm_latency_ms),
        }),
    );
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
