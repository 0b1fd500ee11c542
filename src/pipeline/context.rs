//! What every stage handler needs: store, broker, providers, settings.

use crate::pipeline::providers::crm::CrmAdapter;
use crate::pipeline::providers::llm::LlmProvider;
use crate::pipeline::providers::stt::SttProvider;
use crate::queue::DynBroker;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;

/// Providers by kind name; each business picks its kinds (businesses.stt_provider, …).
#[derive(Clone, Default)]
pub struct Providers {
    pub stt: HashMap<String, Arc<dyn SttProvider>>,
    pub llm: HashMap<String, Arc<dyn LlmProvider>>,
    pub crm: HashMap<String, Arc<dyn CrmAdapter>>,
    /// Clients per business from its own settings (issue 11); when set, stages use it
    /// (`Providers::stt_for` …) instead of the by-kind maps above.
    pub registry: Option<Arc<crate::pipeline::providers::registry::ProviderRegistry>>,
}

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub llm_model: String,
    /// QC does not run on transcripts shorter than this (reason in the trace).
    pub min_qc_chars: usize,
    /// Candidates scoring below this are not offered in review.
    pub review_floor: f64,
    /// A stage run holds its call under a lease this long, renewed every third of it while
    /// it runs; a run whose worker died is taken over once it runs out.
    pub lease: std::time::Duration,
    /// The longest retry delay (the orphan sweep gives retrying calls this long).
    pub longest_retry_delay: std::time::Duration,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            llm_model: "llama3.1".into(),
            min_qc_chars: 40,
            review_floor: 0.70,
            lease: std::time::Duration::from_secs(30),
            longest_retry_delay: std::time::Duration::from_secs(64),
        }
    }
}

#[derive(Clone)]
pub struct PipelineCtx {
    pub store: Store,
    pub broker: DynBroker,
    pub providers: Providers,
    pub settings: PipelineSettings,
}
