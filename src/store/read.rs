//! Read models for the console's refresher: per-business counts the overview needs.

use super::{col, Ctx, Result, Store};

impl Store {
    /// Calls waiting in review, per business.
    pub async fn review_counts_by_business(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT business_id, COUNT(*) AS n FROM calls WHERE state = 'review' GROUP BY business_id")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "counting review calls by business".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "business_id")?, col(r, "n")?)))
            .collect()
    }

    /// Calls skipped by a business's lead filter (made visible so a filter that blocks
    /// everything cannot hide).
    pub async fn lead_filtered_by_business(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT business_id, COUNT(*) AS n FROM calls WHERE lead_filter_skipped = 1 GROUP BY business_id")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "counting lead-filtered calls".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "business_id")?, col(r, "n")?)))
            .collect()
    }
}
