//! link: find the customer. Normalized phone → lead id → name match with a confidence.
//! At or above the business's threshold: linked. Below: the review queue with ranked
//! candidates. A withheld number with no usable name gets a temporary customer so leads
//! and appointments are never blocked.

use super::{Outcome, StageError};
use crate::domain::decisions::review_priority;
use crate::domain::names::{link_decision, normalize_name, rank_candidates, LinkDecision};
use crate::pipeline::context::PipelineCtx;
use crate::queue::Job;
use crate::store::customers::{LinkUpdate, NewCustomer};
use crate::store::Call;
use std::collections::HashMap;

/// How many named customers are considered for a name match.
const NAME_CANDIDATES: u32 = 20_000;

pub async fn run(ctx: &PipelineCtx, call: &Call, _job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    let call = store.call(call.id).await?; // fresh: sync and analyze wrote number and name
    let business = store.business(call.business_id).await?;
    if let (Some(cid), Some("linked" | "new_customer" | "temporary")) =
        (call.customer_id, call.link_status.as_deref())
    {
        return Ok(Outcome::Next {
            reason: format!(
                "link: already linked to customer #{cid} ({}), kept",
                call.link_method.as_deref().unwrap_or("?")
            ),
        });
    }
    let name = call.extracted_name.clone();
    let intent: Option<String> =
        sqlx::query_scalar::<_, Option<String>>("SELECT intent FROM calls WHERE id = $1")
            .bind(call.id)
            .fetch_one(store.pool())
            .await
            .map_err(|e| {
                StageError::Transient(format!("reading intent of call {}: {e}", call.id))
            })?;

    // 1. Phone.
    if let (Some("valid"), Some(e164)) = (call.number_status.as_deref(), call.from_e164.as_deref())
    {
        let found = store.customers_by_phone(call.business_id, e164).await?;
        if found.len() == 1 {
            let c = &found[0];
            let reason = format!("link: phone {e164} matched customer #{}", c.id);
            store
                .set_call_link(call.id, &linked(c.id, "phone", 1.0, name.clone()))
                .await?;
            return Ok(Outcome::Next { reason });
        }
        if found.len() > 1 {
            let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
            let candidates = serde_json::json!(found
                .iter()
                .map(|c| serde_json::json!({"customer_id": c.id, "name": c.name, "confidence": 0.9, "why": format!("same phone {e164}")}))
                .collect::<Vec<_>>());
            let reason = format!(
                "link: phone {e164} matched {} customers {ids:?} → review",
                found.len()
            );
            store
                .set_call_link(
                    call.id,
                    &review(
                        name.clone(),
                        &reason,
                        candidates.to_string(),
                        priority(&intent, &call),
                    ),
                )
                .await?;
            return Ok(Outcome::Review { reason });
        }
    }
    // 2. Lead id from the record.
    let raw: serde_json::Value =
        sqlx::query_scalar::<_, String>("SELECT raw FROM calls WHERE id = $1")
            .bind(call.id)
            .fetch_one(store.pool())
            .await
            .map(|s| serde_json::from_str(&s).unwrap_or_default())
            .map_err(|e| {
                StageError::Transient(format!("reading record of call {}: {e}", call.id))
            })?;
    if let Some(lead_ext) = raw["lead_id"].as_str() {
        if let Some(lead) = store.lead_by_external(call.business_id, lead_ext).await? {
            if let Some(cid) = lead.customer_id {
                let reason = format!("link: lead {lead_ext} belongs to customer #{cid}");
                store
                    .set_call_link(call.id, &linked(cid, "lead_id", 1.0, name.clone()))
                    .await?;
                return Ok(Outcome::Next { reason });
            }
        }
    }
    // 3. Name.
    if let Some(n) = &name {
        let customers = store
            .named_customers(call.business_id, NAME_CANDIDATES)
            .await?;
        let freq = surname_frequencies(customers.iter().filter_map(|c| c.name.as_deref()));
        let pool: Vec<(i64, String, f64)> = customers
            .iter()
            .filter_map(|c| {
                let cn = c.name.clone()?;
                let f = surname(&cn)
                    .and_then(|s| freq.get(&s).copied())
                    .unwrap_or(0.0);
                Some((c.id, cn, f))
            })
            .collect();
        let ranked = rank_candidates(n, &pool, business.link_threshold, ctx.settings.review_floor);
        match link_decision(&ranked, business.link_threshold) {
            LinkDecision::Link {
                customer_id,
                confidence,
                reason,
            } => {
                store
                    .set_call_link(
                        call.id,
                        &linked(customer_id, "name", confidence, name.clone()),
                    )
                    .await?;
                return Ok(Outcome::Next {
                    reason: format!("link: {reason}"),
                });
            }
            LinkDecision::Review { reason } => {
                let candidates = serde_json::to_string(&ranked.iter().take(5).collect::<Vec<_>>())
                    .unwrap_or_default();
                let reason = format!("link: {reason}");
                store
                    .set_call_link(
                        call.id,
                        &review(name.clone(), &reason, candidates, priority(&intent, &call)),
                    )
                    .await?;
                return Ok(Outcome::Review { reason });
            }
            LinkDecision::NoCandidates { reason } => {
                if call.number_status.as_deref() != Some("valid") {
                    let reason = format!(
                        "link: {reason}; number {} → review",
                        call.number_status.as_deref().unwrap_or("unknown")
                    );
                    store
                        .set_call_link(
                            call.id,
                            &review(name.clone(), &reason, "[]".into(), priority(&intent, &call)),
                        )
                        .await?;
                    return Ok(Outcome::Review { reason });
                }
            }
        }
    }
    // 4. A valid number nobody has: a new customer. A withheld one with no usable name:
    //    a temporary customer, so the lead and any appointment are not blocked.
    let valid = call.number_status.as_deref() == Some("valid");
    let (id, _) = store
        .upsert_customer(&NewCustomer {
            business_id: call.business_id,
            external_id: None,
            name: name.clone(),
            name_normalized: name.as_deref().map(normalize_name),
            phone: if valid { call.from_e164.clone() } else { None },
            email: None,
            is_temporary: !valid,
        })
        .await?;
    let (method, reason) = if valid {
        (
            "new_customer",
            format!(
                "link: no customer with {} → created customer #{id}",
                call.from_e164.as_deref().unwrap_or("")
            ),
        )
    } else {
        (
            "temporary",
            format!(
                "link: number {} and no usable name → temporary customer #{id} (merge it in review when the caller is known)",
                call.number_status.as_deref().unwrap_or("unknown")
            ),
        )
    };
    let mut u = linked(id, method, if valid { 1.0 } else { 0.0 }, name);
    u.link_status = method.into();
    store.set_call_link(call.id, &u).await?;
    Ok(Outcome::Next { reason })
}

fn linked(customer_id: i64, method: &str, confidence: f64, name: Option<String>) -> LinkUpdate {
    LinkUpdate {
        customer_id: Some(customer_id),
        link_status: "linked".into(),
        link_method: Some(method.into()),
        link_confidence: Some(confidence),
        extracted_name: name,
        ..Default::default()
    }
}

fn review(name: Option<String>, reason: &str, candidates: String, priority: i64) -> LinkUpdate {
    LinkUpdate {
        customer_id: None,
        link_status: "review".into(),
        link_method: None,
        link_confidence: None,
        extracted_name: name,
        review_priority: Some(priority),
        review_reason: Some(reason.into()),
        review_candidates: Some(candidates),
    }
}

fn priority(intent: &Option<String>, call: &Call) -> i64 {
    review_priority(
        intent.as_deref() == Some("appointment"),
        intent.as_deref() == Some("purchase"),
        crate::now_ms() - call.created_at,
    )
}

fn surname(name: &str) -> Option<String> {
    normalize_name(name)
        .split_whitespace()
        .last()
        .map(str::to_string)
}

/// Share of customers carrying each surname: common names weigh less in a match.
fn surname_frequencies<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, f64> {
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut total = 0.0;
    for n in names {
        if let Some(s) = surname(n) {
            *counts.entry(s).or_default() += 1.0;
            total += 1.0;
        }
    }
    if total > 0.0 {
        for v in counts.values_mut() {
            *v /= total;
        }
    }
    counts
}
