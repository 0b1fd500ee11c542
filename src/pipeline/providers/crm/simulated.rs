//! Simulated CRM: a lead id derived from (business, phone), so an upsert is idempotent as
//! with a real CRM, with the configured latency and failure rates — for demos of
//! businesses whose leads go to an external CRM, including its outages.

use super::{CrmAdapter, CrmLeadRef, LeadUpsert};
use crate::pipeline::providers::sim::{hash, SimSettings};
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Mutex;

pub struct SimulatedCrm {
    pub sim: SimSettings,
    /// Leads this process has "created", to report created vs updated.
    seen: Mutex<HashSet<String>>,
}

impl SimulatedCrm {
    pub fn new(sim: SimSettings) -> Self {
        SimulatedCrm {
            sim,
            seen: Mutex::new(HashSet::new()),
        }
    }
}

#[async_trait]
impl CrmAdapter for SimulatedCrm {
    fn name(&self) -> &str {
        "simulated"
    }

    async fn upsert_lead(&self, lead: &LeadUpsert) -> Result<CrmLeadRef, ProviderError> {
        let business = lead.business_id.to_string();
        let key = hash(&[&business, &lead.phone]);
        self.sim.wait(key).await;
        if let Some(e) = self.sim.failure("simulated-crm", key) {
            return Err(e);
        }
        let crm_id = format!("SIM-{:016x}", key);
        let created = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(crm_id.clone());
        Ok(CrmLeadRef { crm_id, created })
    }
}
