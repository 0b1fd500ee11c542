//! Incremental lead sync from a business's CRM into the built-in leads table, with a
//! watermark per (CRM, business): each run reads the leads modified since the last one,
//! page by page, and moves the watermark only after a page's leads are written. A run cut
//! short is simply run again (imports are upserts by (business, phone)). A lead whose
//! phone does not normalize is reported with its CRM id and reason and nothing of it is
//! written — it is not silently dropped.

use super::providers::crm::CrmAdapter;
use crate::domain::phone::normalize_phone;
use crate::store::businesses::Business;
use crate::store::Store;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LeadSyncReport {
    pub business: String,
    pub crm: String,
    pub pages: u32,
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    /// (CRM id, why it was not imported)
    pub rejected: Vec<(String, String)>,
    pub watermark_before: Option<String>,
    pub watermark_after: Option<String>,
}

/// The watermark's key in the `watermarks` table.
pub fn watermark_source(crm: &dyn CrmAdapter) -> String {
    format!("crm-leads:{}", crm.name())
}

/// A bound on pages per run, so a CRM that ignores paging cannot loop forever.
const MAX_PAGES: u32 = 100_000;

pub async fn sync_leads(
    store: &Store,
    crm: &dyn CrmAdapter,
    business: &Business,
    page_size: u32,
) -> anyhow::Result<LeadSyncReport> {
    let source = watermark_source(crm);
    let before = store.watermark(&source, business.id).await?;
    let mut r = LeadSyncReport {
        business: business.name.clone(),
        crm: crm.name().to_string(),
        watermark_before: before.clone(),
        watermark_after: before.clone(),
        ..Default::default()
    };
    let page_size = page_size.max(1);
    for page in 1..=MAX_PAGES {
        let leads = crm
            .leads_modified_since(before.as_deref(), page, page_size)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "lead sync of {:?} from {} stopped at page {page} ({} leads written so far; the watermark is {:?}, so a rerun continues from there): {e}",
                    business.name,
                    crm.name(),
                    r.created + r.updated,
                    r.watermark_after
                )
            })?;
        r.pages = page;
        r.fetched += leads.len() as u64;
        let mut newest = r.watermark_after.clone();
        for lead in &leads {
            let phone = normalize_phone(lead.phone.as_deref(), &business.default_region);
            let Some(e164) = phone.e164 else {
                r.rejected.push((
                    lead.crm_id.clone(),
                    format!(
                        "phone {:?}: {}",
                        lead.phone.as_deref().unwrap_or(""),
                        phone.reason
                    ),
                ));
                continue;
            };
            let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let created = store
                .import_lead(
                    business.id,
                    &e164,
                    (!name.is_empty()).then_some(name.as_str()),
                    Some(&lead.crm_id),
                    lead.stage.as_deref().unwrap_or("new"),
                )
                .await?;
            if created {
                r.created += 1;
            } else {
                r.updated += 1;
            }
            if !lead.modified_on.is_empty()
                && newest
                    .as_deref()
                    .is_none_or(|w| lead.modified_on.as_str() > w)
            {
                newest = Some(lead.modified_on.clone());
            }
        }
        if newest != r.watermark_after {
            if let Some(w) = &newest {
                store.set_watermark(&source, business.id, w).await?;
            }
            r.watermark_after = newest;
        }
        if (leads.len() as u32) < page_size {
            break;
        }
    }
    Ok(r)
}
