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

/// A lead as the CRM holds it (lead sync reads these into the built-in leads table).
#[derive(Debug, Clone, PartialEq)]
pub struct CrmLead {
    pub crm_id: String,
    /// As the CRM stores it: normalized (and possibly rejected) by the sync.
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub stage: Option<String>,
    /// The CRM's modification time as it sorts ("yyyy-MM-dd HH:mm:ss" for LeadSquared):
    /// the sync's watermark.
    pub modified_on: String,
}

#[async_trait]
pub trait CrmAdapter: Send + Sync {
    fn name(&self) -> &str;
    async fn upsert_lead(&self, lead: &LeadUpsert) -> Result<CrmLeadRef, ProviderError>;

    /// Leads modified at or after `since` (all when `None`), oldest first, one page
    /// (1-based) of `page_size`. At-or-after, not after: leads sharing the watermark's
    /// second are read again rather than skipped; importing them again changes nothing.
    async fn leads_modified_since(
        &self,
        since: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<Vec<CrmLead>, ProviderError> {
        let _ = (since, page, page_size);
        Err(ProviderError::Permanent {
            provider: self.name().to_string(),
            message: format!(
                "the {} CRM adapter cannot list leads, so there is nothing to sync from it",
                self.name()
            ),
        })
    }
}

pub mod leadsquared;
pub mod simulated;
