//! Numbers a business calls out from: an inbound call from one of them is the business
//! itself (a transfer, a test call), not a customer. The link stage asks for every call.

use super::{Ctx, Result, Store};
use std::collections::HashSet;
use std::sync::Arc;

/// A business with more distinct outbound numbers than this is asked per call instead of
/// held in memory.
const HELD_NUMBERS: i64 = 1000;

/// A business's outbound numbers as read in the last second; `None`: too many to hold.
pub(crate) type OutboundNumbers = Option<Arc<HashSet<String>>>;

impl Store {
    /// Whether the business has placed an outbound call from `e164`. The business's
    /// numbers are read at most once a second (as `business_recent`); a number first used
    /// for an outbound call shows within that second.
    pub async fn dials_out_from(&self, business_id: i64, e164: &str) -> Result<bool> {
        let numbers = match self.outbound_numbers_cache.get(business_id) {
            Some(n) => n,
            None => {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT from_e164 FROM calls WHERE business_id = $1 \
                     AND direction = 'outbound' AND from_e164 IS NOT NULL LIMIT $2",
                )
                .bind(business_id)
                .bind(HELD_NUMBERS + 1)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("listing the outbound numbers of business {business_id}"))?;
                let n: OutboundNumbers = (rows.len() as i64 <= HELD_NUMBERS)
                    .then(|| Arc::new(rows.into_iter().collect()));
                self.outbound_numbers_cache.put(business_id, &n);
                n
            }
        };
        if let Some(held) = numbers {
            return Ok(held.contains(e164));
        }
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM calls WHERE business_id = $1 AND direction = 'outbound' AND from_e164 = $2 LIMIT 1",
        )
        .bind(business_id)
        .bind(e164)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("checking whether business {business_id} calls out from {e164}"))?;
        Ok(hit.is_some())
    }
}
