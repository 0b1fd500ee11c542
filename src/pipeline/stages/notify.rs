//! notify: create or update the lead — the built-in leads table, and the business's CRM
//! adapter when it has one. Dedup by (business, normalized phone); a repeat caller counts
//! one more call; the lead id is written back on the call.

use super::{Outcome, StageError};
use crate::domain::decisions::{lead_decision, Decision};
use crate::domain::phone::NumberStatus;
use crate::pipeline::context::PipelineCtx;
use crate::pipeline::providers::crm::LeadUpsert;
use crate::queue::Job;
use crate::store::Call;

pub async fn run(ctx: &PipelineCtx, call: &Call, job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    let business = store.business_recent(call.business_id).await?;
    let (status, from_e164) = if call.direction.eq_ignore_ascii_case("outbound") {
        // An outbound call reaches the customer at `to` (an AI call of issue 16 comes back
        // this way): its lead is the dialled number's, never the business's own number.
        let r = crate::domain::phone::normalize_phone(
            call.to_number.as_deref(),
            &business.default_region,
        );
        (r.status, r.e164)
    } else {
        let status = match call.number_status.as_deref() {
            Some("valid") => NumberStatus::Valid,
            Some("withheld") => NumberStatus::Withheld,
            _ => NumberStatus::Malformed,
        };
        (status, call.from_e164.clone())
    };
    // A withheld caller's lead is keyed by its (temporary) customer so it is never blocked.
    let key = match (&status, &from_e164, call.customer_id) {
        (NumberStatus::Valid, Some(e164), _) => Some(e164.clone()),
        (_, _, Some(cid)) => Some(format!("customer:{cid}")),
        _ => None,
    };
    let existing = match &key {
        Some(k) => store
            .lead_by_phone(call.business_id, k)
            .await?
            .map(|l| l.call_count),
        None => None,
    };
    let forced_by = job.payload["lead_requested_by"]
        .as_str()
        .or(job.payload["linked_by"].as_str());
    let decision = lead_decision(
        business.auto_create_leads,
        &status,
        from_e164.as_deref(),
        forced_by,
        existing,
    );
    let reason = match decision {
        Decision::Skip(reason) => return Ok(Outcome::Done { reason }),
        Decision::Run(reason) => reason,
    };
    let Some(key) = key else {
        return Ok(Outcome::Done {
            reason: format!("{reason}; but the call has neither a valid number nor a customer to key the lead → lead skipped"),
        });
    };
    let (lead, created) = store
        .upsert_lead_for_call(
            call.business_id,
            call.id,
            &key,
            call.extracted_name.as_deref(),
            call.customer_id,
            "call",
        )
        .await?;
    let mut outcome = format!(
        "{reason}; lead #{} {} (call_count {})",
        lead.id,
        if created { "created" } else { "updated" },
        lead.call_count
    );
    // The business's own CRM client (registry); a misconfigured business waits.
    if let Some(crm) = ctx
        .providers
        .crm_for(store, &business)
        .await
        .map_err(|m| StageError::Transient(m.to_string()))?
    {
        let (first, last) = split_name(call.extracted_name.as_deref());
        let r = crm
            .upsert_lead(&LeadUpsert {
                business_id: call.business_id,
                phone: key.clone(),
                first_name: first,
                last_name: last,
                source: "callops".into(),
            })
            .await?;
        store.set_lead_crm_id(lead.id, &r.crm_id).await?;
        outcome.push_str(&format!(
            "; {} lead {} {}",
            crm.name(),
            r.crm_id,
            if r.created { "created" } else { "updated" }
        ));
    }
    // Issue 16: a new lead of a business with auto-call on gets its AI call, queued in the
    // same transaction as this result; any other lead gets the reason it is not called.
    // "New" is read from the lead's origin call, so a redelivered notify agrees with the first.
    let is_new = created
        || (store.lead_origin_call(lead.id).await? == Some(call.id)
            && !call.direction.eq_ignore_ascii_case("outbound"));
    let follow_up =
        crate::pipeline::outbound::after_lead(store, &business.name, call, &lead, is_new).await?;
    Ok(Outcome::With {
        then: Box::new(Outcome::Next { reason: outcome }),
        follow_ups: vec![follow_up],
    })
}

fn split_name(n: Option<&str>) -> (Option<String>, Option<String>) {
    match n.map(|s| s.split_whitespace().collect::<Vec<_>>()) {
        Some(parts) if parts.len() >= 2 => (
            Some(parts[..parts.len() - 1].join(" ")),
            Some(parts[parts.len() - 1].to_string()),
        ),
        Some(parts) if parts.len() == 1 => (None, Some(parts[0].to_string())),
        _ => (None, None),
    }
}
