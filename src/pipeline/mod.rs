//! The running system: stage workers, the providers they call, ingestion, load generation.

pub mod context;
// Enabled once domain::{phone, names, decisions} land (being written now).
// pub mod ingest;
pub mod providers;
// pub mod stages;
// pub mod worker;

use crate::store::Store;

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
