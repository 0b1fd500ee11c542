//! Outbound AI calls for new leads (issue 16).
//!
//! - notify decides, for the lead it created or updated, whether an outbound call is wanted
//!   (`after_lead`); the row in `outbound_calls` is written by `settle_success` in the same
//!   transaction as notify's result (`FollowUp::Outbound`), and its UNIQUE (business, lead)
//!   key is the dedup;
//! - the dispatcher (`dispatch`) claims due rows, decides (mapping, agent, phone, hours,
//!   rate limit: `domain::outbound::dial_decision`), dials with an idempotency key, and
//!   polls the provider for the outcome;
//! - `apply_status` records an outcome — from a poll, or from a provider webhook
//!   (`callops serve`) — and brings the ended call into the pipeline as an outbound call of
//!   the business, linked to the lead, through the ordinary ingest path.
//!
//! Every lead that is not called gets a trace row (`call_events`, kind `outbound`) on the
//! call that created it, with the reason.

pub mod dispatch;
mod status;

pub use dispatch::{run_loop, DispatchReport, Dispatcher};
pub use status::{apply_status, Applied};

use crate::domain::stage::Stage;
use crate::store::customers::Lead;
use crate::store::events::NewEvent;
use crate::store::outbound::NewOutbound;
use crate::store::{Call, Store, StoreError};

/// A write a stage's result implies beyond the next stage's job, committed by
/// `settle_success` in the same transaction as the result.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowUp {
    /// Queue the outbound AI call of a new lead (dedup: unique (business, lead)).
    Outbound(NewOutbound),
    /// A trace row about outbound calling (why a lead is not called).
    Trace(String),
}

/// Write `f` on the settling transaction of `call`'s stage result.
pub async fn write_follow_up_in(
    store: &Store,
    tx: &mut sqlx::AnyConnection,
    call: &Call,
    f: &FollowUp,
) -> Result<(), StoreError> {
    let reason = match f {
        FollowUp::Trace(reason) => reason.clone(),
        FollowUp::Outbound(n) => match crate::store::outbound::insert_outbound_in(tx, n).await? {
            Some(id) => format!(
                "outbound call #{id} queued for new lead #{} (form {:?})",
                n.lead_id,
                n.form.as_deref().unwrap_or("")
            ),
            None => {
                let r = sqlx::query(&format!(
                    "SELECT {} FROM outbound_calls WHERE business_id = $1 AND lead_id = $2",
                    crate::store::outbound::OUTBOUND_COLUMNS
                ))
                .bind(n.business_id)
                .bind(n.lead_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::Db {
                    context: format!("reading the outbound call of lead {}", n.lead_id),
                    source: e,
                })?;
                already_called(&crate::store::outbound::outbound_row(&r)?)
            }
        },
    };
    store
        .append_event(
            &mut *tx,
            &NewEvent {
                call_id: call.id,
                business_id: call.business_id,
                stage: Stage::Notify,
                kind: "outbound",
                reason,
                detail: None,
                actor: "pipeline",
            },
        )
        .await
}

/// What notify asks for after creating (`is_new`) or updating `lead` for `call`.
pub async fn after_lead(
    store: &Store,
    business_name: &str,
    call: &Call,
    lead: &Lead,
    is_new: bool,
) -> Result<FollowUp, StoreError> {
    let form = lead_form(call, lead);
    if !is_new {
        return Ok(FollowUp::Trace(
            match store.outbound_for_lead(call.business_id, lead.id).await? {
                Some(o) => already_called(&o),
                None => format!("lead #{} updated, not new: no outbound call", lead.id),
            },
        ));
    }
    let settings = store.outbound_settings_recent(call.business_id).await?;
    if !settings.auto_call {
        return Ok(FollowUp::Trace(format!(
            "not called: auto-call is off for business {business_name:?} (new lead #{}, form {:?}); turn it on with callops outbound config",
            lead.id,
            form.as_deref().unwrap_or("")
        )));
    }
    Ok(FollowUp::Outbound(NewOutbound {
        business_id: call.business_id,
        lead_id: lead.id,
        origin_call_id: Some(call.id),
        form,
        to_number: Some(lead.phone.clone()),
        lead_name: lead.name.clone().or_else(|| call.extracted_name.clone()),
        requested_by: "pipeline".into(),
        due_at: crate::now_ms(),
    }))
}

/// The form/source/campaign a lead came from: the call's campaign, else the lead's source.
pub fn lead_form(call: &Call, lead: &Lead) -> Option<String> {
    call.campaign
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| Some(lead.source.clone()).filter(|s| !s.trim().is_empty()))
}

/// "already called" in words: when and which call.
pub fn already_called(o: &crate::store::outbound::OutboundCall) -> String {
    let when = o
        .dialed_at
        .map(|t| {
            chrono::DateTime::from_timestamp_millis(t)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "not yet dialled".into());
    format!(
        "not called again: lead #{} already has outbound call #{} ({}, {when}, provider call {})",
        o.lead_id,
        o.id,
        o.status,
        o.provider_call_id.as_deref().unwrap_or("none")
    )
}

/// Forms the simulator's leads come from (`simulate::make_record`), some deliberately
/// without a mapping in the demo.
pub const DEMO_FORMS: [&str; 6] = [
    "Spring Promo – Website",
    "Gaur Yamuna Expressway",
    "Google Ads – Villas",
    "Facebook Lead Form",
    "spring-newsletter",
    "Referral",
];

/// The demo's outbound setup for every existing business: the first has auto-call off;
/// the others call new leads with the simulated provider (agents Maya and Priya, an
/// inactive "Old Villas Bot"; "Facebook Lead Form" and "Referral" unmapped on purpose),
/// in always-open hours, at most 40 calls an hour. Idempotent.
pub async fn demo_setup(store: &Store) -> Result<usize, StoreError> {
    let businesses = store.businesses().await?;
    for (i, b) in businesses.iter().enumerate() {
        let mut s = store.outbound_settings(b.id).await?;
        if s.updated_at > 0 {
            continue;
        }
        s.auto_call = i > 0;
        s.provider = "simulated".into();
        s.from_number = Some("+4930555000".into());
        s.rate_per_hour = 40;
        store.save_outbound_settings(&s).await?;
        for (name, id, active) in [
            ("Maya", "agent_maya_v2", true),
            ("Priya", "agent_priya", true),
            ("Old Villas Bot", "agent_villas_v0", false),
        ] {
            let _ = store.add_voice_agent(b.id, name, id, active).await;
        }
        use crate::domain::outbound::MatchKind;
        for (kind, pattern, agent) in [
            (MatchKind::Prefix, "spring", "Maya"),
            (MatchKind::Exact, "Gaur Yamuna Expressway", "Priya"),
            (MatchKind::Keyword, "villas", "Old Villas Bot"),
        ] {
            store
                .add_lead_mapping(b.id, kind, pattern, agent, "demo")
                .await?;
        }
    }
    Ok(businesses.len())
}
