//! CRM adapters: where leads are created or updated.

use super::ProviderError;
use async_trait::async_trait;

#[derive(Debug, Clone)]
pub struct LeadUpsert {
    pub business_id: i64,
    /// E.164; the dedup key (business, phone).
    pub phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrmLeadRef {
    /// The CRM's id for the lead (LeadSquared ProspectID).
    pub crm_id: String,
    /// True when the CRM created it now, false when it existed.
    pub created: bool,
}

#[async_trait]
pub trait CrmAdapter: Send + Sync {
    fn name(&self) -> &str;
    async fn upsert_lead(&self, lead: &LeadUpsert) -> Result<CrmLeadRef, ProviderError>;
}

pub mod leadsquared;
pub mod simulated;
