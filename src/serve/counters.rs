//! Per-process counters of webhook requests by (business, provider, result), for the
//! Prometheus exporter: [`webhook_counts_snapshot`]. Labels stay bounded: the business is
//! one that exists (unknown names count as "(unknown)") and the provider one with a
//! handler (others count as "(unknown)").

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

/// One counter: requests of a business's provider endpoint answered with `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookCount {
    pub business: String,
    pub provider: String,
    /// created, waiting, duplicate, ignored, bad_signature, stale, not_configured,
    /// malformed, too_large, rate_limited, unknown_business, unknown_provider, error.
    pub result: &'static str,
    pub count: u64,
}

type Key = (String, String, &'static str);

static COUNTS: LazyLock<Mutex<BTreeMap<Key, u64>>> = LazyLock::new(Default::default);

pub(crate) fn count(business: &str, provider: &str, result: &'static str) {
    crate::metrics::webhook_request(business, provider, result);
    let mut m = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry((business.to_string(), provider.to_string(), result))
        .or_insert(0) += 1;
}

/// Every counter of this process so far (monotonic), sorted by business, provider, result.
pub fn webhook_counts_snapshot() -> Vec<WebhookCount> {
    let m = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    m.iter()
        .map(|((business, provider, result), count)| WebhookCount {
            business: business.clone(),
            provider: provider.clone(),
            result,
            count: *count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_by_business_provider_and_result() {
        super::count("Unit Biz", "telnyx", "created");
        super::count("Unit Biz", "telnyx", "created");
        super::count("Unit Biz", "telnyx", "bad_signature");
        let snap = super::webhook_counts_snapshot();
        let get = |r: &str| {
            snap.iter()
                .find(|c| c.business == "Unit Biz" && c.provider == "telnyx" && c.result == r)
                .map(|c| c.count)
        };
        assert_eq!(get("created"), Some(2));
        assert_eq!(get("bad_signature"), Some(1));
        assert_eq!(get("stale"), None);
    }
}
