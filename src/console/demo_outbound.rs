//! Demo data for `:outbound` (screenshots): businesses that call new leads, mappings with
//! deliberately unmapped forms, and outbound calls in every state with their reasons.

use crate::domain::outbound::MatchKind;
use crate::store::outbound::{insert_outbound_in, NewOutbound};
use crate::store::Store;

/// (business index, phone, name, form, status, reason, error, minutes ago)
type Seed = (
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    i64,
);

const SEEDS: &[Seed] = &[
    (1, "+4930111201", "Jonas Weber", "Spring Promo – Website", "completed", "call Jabr8Kx2 ended: completed (user_hangup, 94 s); conversation ingested as call for QC and analysis", None, 3),
    (1, "+4930111202", "Lea Hoffmann", "Gaur Yamuna Expressway", "connected", "retell reports call Jabr9Tq1 connected (ongoing)", None, 1),
    (1, "+4930111203", "Paul Braun", "Facebook Lead Form", "unmapped", "not called: no mapping for form \"Facebook Lead Form\" (add one: callops mappings add)", None, 6),
    (1, "+4930111204", "Mia Schulz", "Google Ads – Villas", "skipped", "not called: voice agent \"Old Villas Bot\" (mapped from form \"Google Ads – Villas\") is inactive", None, 9),
    (1, "+4930111205", "Ben Koch", "spring-newsletter", "no_answer", "call Jabr7Aa0 ended: no_answer (dial_no_answer, 0 s)", None, 14),
    (2, "+4930111206", "Sara Neumann", "Referral", "unmapped", "not called: no mapping for form \"Referral\" (add one: callops mappings add)", None, 17),
    (2, "+4930111207", "Tim Krüger", "Spring Promo – Website", "scheduled", "outside business hours: scheduled for the next opening, Mon 2026-06-01 09:00 Europe/Berlin (07:00 UTC)", None, 21),
    (2, "+4930111208", "Nina Wolf", "spring-newsletter", "failed", "not called: retell refused the call: POST https://api.retellai.com/v2/create-phone-call: HTTP 422: to_number is not a valid phone number", Some("HTTP 422"), 25),
    (2, "anonymous", "Erik Lang", "Gaur Yamuna Expressway", "skipped", "not called: invalid or withheld phone (withheld: \"anonymous\")", None, 28),
    (3, "+4930111210", "Lena Fuchs", "Spring Promo – Website", "initiated", "retell accepted call Jabr3Zz9 (registered)", None, 0),
    (3, "+4930111211", "Max Vogel", "Facebook Lead Form", "unmapped", "not called: no mapping for form \"Facebook Lead Form\" (add one: callops mappings add)", None, 33),
    (3, "+4930111212", "Emma Roth", "spring-newsletter", "scheduled", "rate limited: 30 calls in the last hour (limit 30/h); retrying at Thu 2026-05-28 11:12 Europe/Berlin (09:12 UTC)", None, 2),
];

pub async fn seed(store: &Store, biz: &[i64; 6], now: i64) -> anyhow::Result<()> {
    for (i, &b) in biz.iter().enumerate().take(4) {
        let mut s = store.outbound_settings(b).await?;
        s.auto_call = i > 0;
        s.provider = if i == 1 { "simulated" } else { "retell" }.into();
        s.key_ref = (i != 1).then(|| "env:RETELL_API_KEY".to_string());
        s.time_zone = "Europe/Berlin".into();
        s.hours = "mon-fri 09:00-18:00".into();
        s.rate_per_hour = 30;
        store.save_outbound_settings(&s).await?;
        store
            .add_voice_agent(b, "Maya", "agent_maya_v2", true)
            .await?;
        store
            .add_voice_agent(b, "Priya", "agent_priya", true)
            .await?;
        store
            .add_voice_agent(b, "Old Villas Bot", "agent_villas_v0", false)
            .await?;
        store
            .add_lead_mapping(b, MatchKind::Prefix, "spring", "Maya", "demo")
            .await?;
        store
            .add_lead_mapping(
                b,
                MatchKind::Exact,
                "Gaur Yamuna Expressway",
                "Priya",
                "demo",
            )
            .await?;
        store
            .add_lead_mapping(b, MatchKind::Keyword, "villas", "Old Villas Bot", "demo")
            .await?;
    }
    for (bi, phone, name, form, status, reason, error, ago) in SEEDS {
        let b = biz[*bi];
        let at = now - ago * 60_000;
        let lead: i64 = sqlx::query_scalar(
            "INSERT INTO leads (business_id, phone, name, source, call_count, created_at, updated_at) \
             VALUES ($1,$2,$3,'call',1,$4,$4) RETURNING id",
        )
        .bind(b)
        .bind(*phone)
        .bind(*name)
        .bind(at)
        .fetch_one(store.pool())
        .await?;
        let mut tx = store.begin_write().await?;
        let id = insert_outbound_in(
            &mut tx,
            &NewOutbound {
                business_id: b,
                lead_id: lead,
                origin_call_id: None,
                form: Some(form.to_string()),
                to_number: Some(phone.to_string()),
                lead_name: Some(name.to_string()),
                requested_by: "pipeline".into(),
                due_at: at,
            },
        )
        .await?
        .unwrap_or_default();
        sqlx::query(
            "UPDATE outbound_calls SET status = $1, reason = $2, error = $3, updated_at = $4, created_at = $4, \
             dialed_at = CASE WHEN $1 IN ('initiated','connected','completed','no_answer') THEN $4 ELSE NULL END WHERE id = $5",
        )
        .bind(*status)
        .bind(*reason)
        .bind(*error)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
