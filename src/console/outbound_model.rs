//! The `:outbound` view model, built from the store for `views::outbound` (which sees no
//! store types).

use crate::store::{Result, Store};
use crate::views::outbound::{OutboundData, OutboundItem, OutboundSummary};
use std::collections::BTreeMap;

/// Today (UTC) per business, and the latest 200 outbound calls.
pub async fn fetch(store: &Store, now: i64) -> Result<OutboundData> {
    let day_start = now - now.rem_euclid(86_400_000);
    let names = store.business_names().await?;
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let mut by_biz: BTreeMap<i64, OutboundSummary> = BTreeMap::new();
    for b in store.businesses().await? {
        let s = store.outbound_settings(b.id).await?;
        by_biz.insert(
            b.id,
            OutboundSummary {
                business_id: b.id,
                business: b.name.clone(),
                auto_call: s.auto_call,
                ..Default::default()
            },
        );
    }
    for (bid, status, n) in store.outbound_counts(day_start).await? {
        let row = by_biz.entry(bid).or_insert_with(|| OutboundSummary {
            business_id: bid,
            business: name(bid),
            ..Default::default()
        });
        match status.as_str() {
            // "initiated" counts every call placed today, whatever came of it since.
            "initiated" | "dialing" => row.initiated += n,
            "connected" | "completed" => {
                row.initiated += n;
                row.connected += n
            }
            "failed" => row.failed += n,
            "no_answer" => {
                row.initiated += n;
                row.no_answer += n
            }
            "scheduled" => row.scheduled += n,
            "unmapped" => row.unmapped += n,
            _ => {}
        }
    }
    let items = store
        .outbound_calls(None, 200)
        .await?
        .into_iter()
        .map(|o| OutboundItem {
            id: o.id,
            business_id: o.business_id,
            business: name(o.business_id),
            lead_id: o.lead_id,
            to_number: o.to_number.unwrap_or_default(),
            form: o.form.unwrap_or_default(),
            status: o.status,
            reason: o.reason,
            updated_at: o.updated_at,
        })
        .collect();
    Ok(OutboundData {
        summary: by_biz.into_values().collect(),
        items,
    })
}
