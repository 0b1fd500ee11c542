//! Reads for the Prometheus gauges that the console's read models do not already answer.

use super::super::{col, Ctx, Result, Store};

/// Calls waiting in review for one business.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewBacklog {
    pub business_id: i64,
    pub calls: i64,
    /// When the call that has waited longest entered review (epoch ms).
    pub oldest_since: i64,
}

impl Store {
    /// Review backlog per business with the age of its oldest call (a range of the
    /// partial index `calls_review_by_business`: proportional to the backlog, not to calls).
    pub async fn review_backlog_by_business(&self) -> Result<Vec<ReviewBacklog>> {
        let rows = sqlx::query(
            "SELECT business_id, COUNT(*) AS n, MIN(state_since) AS oldest FROM calls \
             WHERE state = 'review' GROUP BY business_id",
        )
        .fetch_all(self.pool())
        .await
        .ctx(|| "reading the review backlog by business".into())?;
        rows.iter()
            .map(|r| {
                Ok(ReviewBacklog {
                    business_id: col(r, "business_id")?,
                    calls: col(r, "n")?,
                    oldest_since: col(r, "oldest")?,
                })
            })
            .collect()
    }
}
