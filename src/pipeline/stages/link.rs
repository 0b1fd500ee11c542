//! link: find the customer. The customer's number (the caller's on inbound calls, the
//! number dialled on outbound ones; never the business's own) → lead id → a number the
//! caller said aloud → the caller's name, scored with every piece of evidence
//! (domain::names::matching). At or above the business's threshold with no veto and a
//! clear margin: linked. Otherwise the review queue with ranked candidates (third parties
//! and names the agent said included). A valid number nobody has gets a customer
//! (race-free find-or-create on the unique (business, phone)); a withheld one with no
//! usable name a temporary customer, so leads and appointments are never blocked.
//!
//! Writes (for the stage transaction): `calls` link columns (set_call_link or, with a
//! customer to create, link_call_to_customer_by_phone: customer INSERT … ON CONFLICT + the
//! call's link in one transaction); `customer_name_keys` + `customers.name_keys_version`
//! (ensure_name_keys, idempotent backfill of unkeyed customers); one `call_events` row
//! (kind "link_evidence") with the evidence behind the decision.

use super::{Outcome, StageError};
use crate::domain::decisions::review_priority;
use crate::domain::names::spoken_phone::spoken_phones;
use crate::domain::names::{
    caller_evidence, compound_key, compound_overflow_key, fold_digraphs, fold_key,
    guard_llm_name_in, link_decision, normalize_name, rank_customers, rank_order, word_keys,
    CallerEvidence, CandidateCustomer, LinkDecision, LinkEvidence, NameContext, NameQuery,
    QuerySource, RankedCandidate, COMPOUND_ONE_WORD,
};
use crate::domain::phone::normalize_phone;
use crate::pipeline::context::PipelineCtx;
use crate::pipeline::providers::Segment;
use crate::queue::Job;
use crate::store::customers::{Customer, LinkUpdate, NameCandidate, NewCustomer};
use crate::store::events::NewEvent;
use crate::store::{Call, Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Write the call's link (with the run's result, inside a run) and note it in the run (the
/// outcome metric reads it there).
async fn set_link(store: &Store, call_id: i64, u: &LinkUpdate) -> Result<(), StoreError> {
    super::run_scope::set_call(
        store,
        call_id,
        vec![
            ("customer_id", u.customer_id.map(|v| v.to_string())),
            ("link_status", Some(u.link_status.clone())),
            ("link_method", u.link_method.clone()),
            ("link_confidence", u.link_confidence.map(|v| v.to_string())),
            ("extracted_name", u.extracted_name.clone()),
            ("review_priority", u.review_priority.map(|v| v.to_string())),
            ("review_reason", u.review_reason.clone()),
            ("review_candidates", u.review_candidates.clone()),
        ],
    )
    .await?;
    super::run_scope::note_link(call_id, &u.link_status, u.link_method.as_deref());
    Ok(())
}

/// At most this many ranked candidates are stored on a review item.
const STORED_CANDIDATES: usize = 100;
/// Customers' earlier calls are counted for this many of the best candidates.
const HISTORY_FOR: usize = 50;

pub async fn run(ctx: &PipelineCtx, call: &Call, job: &Job) -> Result<Outcome, StageError> {
    let outcome = decide(ctx, call, job).await?;
    // What was decided, for `callops_link_outcomes_total`: the link this run noted as it
    // wrote it, or else the call's as read now (a failure only loses the count).
    let written = match super::run_scope::link_written(call.id) {
        Some(w) => Some(w),
        None => ctx
            .store
            .call(call.id)
            .await
            .ok()
            .map(|c| (c.link_status.unwrap_or_default(), c.link_method)),
    };
    if let Some((status, method)) = written {
        let method = match (status.as_str(), method.as_deref()) {
            ("review", _) => "review",
            (_, Some(m)) => m,
            ("", None) => "none",
            (s, None) => s,
        };
        crate::metrics::link_outcome(call.business_id, method, call.from_e164.is_none());
    }
    Ok(outcome)
}

async fn decide(ctx: &PipelineCtx, call: &Call, _job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    // Fresh: the run's start read the call after sync and analyze wrote number, name and
    // intent; intent and record come with it (or are read now, outside a run).
    let (call, intent, raw) = super::run_scope::call_with_record(store, call).await?;
    let business = store.business_recent(call.business_id).await?;
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
    let prio = priority(&intent, &call);
    let region = business.default_region.clone();

    // 0. Whose number is whose: outbound calls reach the customer at `to`.
    let outbound = call.direction.eq_ignore_ascii_case("outbound");
    let (number_status, number) = if outbound {
        let r = normalize_phone(call.to_number.as_deref(), &region);
        (r.status.as_str().to_string(), r.e164)
    } else {
        (
            call.number_status
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            call.from_e164.clone(),
        )
    };
    let own = own_numbers(store, &call, &business.own_numbers, &region, outbound).await?;
    let mut notes: Vec<String> = Vec::new();
    if outbound {
        notes.push(format!(
            "outbound call: the customer is the number dialled ({})",
            number.as_deref().unwrap_or(&number_status)
        ));
    }
    let own_hit = number.as_ref().is_some_and(|n| own.contains(n));
    if own_hit {
        notes.push(format!(
            "{} is the business's own number: not a customer's",
            number.as_deref().unwrap_or("")
        ));
    }
    let number = number.filter(|_| number_status == "valid" && !own_hit);

    // The transcript's evidence, read with the business's and the agent's names.
    let ev = evidence(store, &call, &business.name).await?;
    let nctx = name_context(&business.name, &call);
    let model_name = call
        .extracted_name
        .clone()
        .filter(|_| ev.name.is_none() && ev.third_parties.is_empty());
    let model_ok = match &model_name {
        Some(n) => model_guard(store, call.id, n, &nctx).await?,
        None => None,
    };
    let caller_query: Option<NameQuery> = ev
        .name
        .as_ref()
        .map(|c| NameQuery {
            name: c.name.clone(),
            title: c.title.clone(),
            cue: c.cue.clone(),
            cue_confidence: c.confidence,
            source: QuerySource::Caller,
        })
        .or_else(|| {
            model_ok.as_ref().map(|n| NameQuery {
                name: n.clone(),
                title: None,
                cue: "model".into(),
                cue_confidence: 0.7,
                source: QuerySource::Model,
            })
        });
    let stored_name: Option<String> = caller_query.as_ref().map(|q| q.name.clone());
    if let (Some(n), None) = (&model_name, &model_ok) {
        notes.push(format!(
            "analyze's name '{n}' not used (guard or attribution refused it)"
        ));
    }
    let spoken: Vec<String> = spoken_phones(&ev.caller_texts, &region)
        .into_iter()
        .filter_map(|p| p.e164)
        .filter(|p| !own.contains(p))
        .collect();
    let mut pool: Vec<Customer> = Vec::new();
    for p in &spoken {
        for c in store.customers_by_phone(call.business_id, p).await? {
            if !pool.iter().any(|x| x.id == c.id) {
                pool.push(c);
            }
        }
    }
    let link_ev = LinkEvidence {
        spoken_phones: spoken.clone(),
        direction: if outbound { "outbound" } else { "inbound" }.into(),
        spoken_owners: pool.iter().map(|c| c.id).collect(),
    };
    let third = third_party_note(&ev);
    record_evidence(ctx, &call, &ev, &spoken, &notes).await?;
    let review = |reason: &str, cands: &[RankedCandidate]| {
        review_update(stored_name.clone(), reason, cands, prio)
    };

    // 1. The customer's number.
    if let Some(e164) = number.as_deref() {
        let found = store.customers_by_phone(call.business_id, e164).await?;
        if found.len() == 1 {
            let c = &found[0];
            let conflict = caller_query
                .as_ref()
                .filter(|q| q.source == QuerySource::Caller)
                .and_then(|q| name_conflict(q, c, &link_ev));
            if let Some(why) = conflict.or_else(|| third.clone()) {
                let cands = phone_candidates(caller_query.as_ref(), &found, e164, &link_ev);
                let reason = format!(
                    "link: phone {e164} matched customer #{} but {why} → review",
                    c.id
                );
                set_link(store, call.id, &review(&reason, &cands)).await?;
                return Ok(Outcome::Review { reason });
            }
            let reason = format!("link: phone {e164} matched customer #{}", c.id);
            set_link(
                store,
                call.id,
                &linked(c.id, "phone", 1.0, stored_name.clone()),
            )
            .await?;
            return Ok(Outcome::Next { reason });
        }
        if found.len() > 1 {
            let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
            let cands = phone_candidates(caller_query.as_ref(), &found, e164, &link_ev);
            let reason = format!(
                "link: phone {e164} matched {} customers {ids:?} → review",
                found.len()
            );
            set_link(store, call.id, &review(&reason, &cands)).await?;
            return Ok(Outcome::Review { reason });
        }
    }
    // 2. Lead id from the record.
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
    if let Some(lead_ext) = raw["lead_id"].as_str() {
        if let Some(lead) = store.lead_by_external(call.business_id, lead_ext).await? {
            if let Some(cid) = lead.customer_id {
                let reason = format!("link: lead {lead_ext} belongs to customer #{cid}");
                set_link(
                    store,
                    call.id,
                    &linked(cid, "lead_id", 1.0, stored_name.clone()),
                )
                .await?;
                return Ok(Outcome::Next { reason });
            }
        }
    }
    // 3. + 4. Names and spoken numbers, all evidence together.
    let mut queries: Vec<NameQuery> = caller_query.iter().cloned().collect();
    for tp in &ev.third_parties {
        if let Some(c) = &tp.name {
            queries.push(NameQuery {
                name: c.name.clone(),
                title: c.title.clone(),
                cue: tp.relation.clone(),
                cue_confidence: 0.5,
                source: QuerySource::ThirdParty,
            });
        }
    }
    for a in &ev.addressed {
        queries.push(NameQuery {
            name: a.name.clone(),
            title: a.title.clone(),
            cue: a.cue.clone(),
            cue_confidence: a.confidence,
            source: QuerySource::Addressed,
        });
    }
    let spoken_hits = pool.len();
    if !queries.is_empty() {
        store.ensure_name_keys(call.business_id).await?;
    }
    let mut ranked: Vec<RankedCandidate> = Vec::new();
    let mut search_notes: Vec<String> = Vec::new();
    // Key counts read in this run: the candidates' surnames are mostly keys the search
    // counted already, and several queries share keys.
    let mut counted = KeyCounts::new();
    for q in &queries {
        let (mut found, skipped) =
            name_candidates(store, call.business_id, &q.name, &mut counted).await?;
        search_notes.extend(skipped);
        let have: std::collections::HashSet<i64> = found.iter().map(|c| c.id).collect();
        // A customer the spoken number found is a candidate even without a name.
        found.extend(
            pool.iter()
                .filter(|c| !have.contains(&c.id))
                .map(|c| NameCandidate {
                    id: c.id,
                    name: c.name.clone().unwrap_or_default(),
                    phone: c.phone.clone(),
                }),
        );
        let cands = found
            .into_iter()
            .map(|c| CandidateCustomer {
                id: c.id,
                name: c.name,
                phone: c.phone,
                surname_share: 0.0,
                prior_calls: 0,
            })
            .collect();
        let mut r = rank_with_shares(
            store,
            call.business_id,
            q,
            cands,
            &link_ev,
            ctx.settings.review_floor,
            &mut counted,
        )
        .await?;
        if let Some(t) = &third {
            for c in r.iter_mut() {
                c.vetoes.push(t.clone());
            }
        }
        merge(&mut ranked, r);
    }
    if queries.is_empty() && !pool.is_empty() {
        // No name at all, but the caller said a customer's number.
        let cands = candidate_customers(store, call.business_id, &pool).await?;
        let q = NameQuery {
            name: String::new(),
            title: None,
            cue: "spoken number".into(),
            cue_confidence: 0.9,
            source: QuerySource::Caller,
        };
        let mut r = spoken_only(&q, &cands, &spoken);
        if let Some(t) = &third {
            for c in r.iter_mut() {
                c.vetoes.push(t.clone());
            }
        }
        merge(&mut ranked, r);
    }
    ranked.sort_by(rank_order);
    let mut spoken_note = if spoken_hits > 0 {
        format!("; spoken number matched {spoken_hits} customer(s)")
    } else {
        String::new()
    };
    for n in &search_notes {
        spoken_note.push_str("; ");
        spoken_note.push_str(n);
    }
    match link_decision(&ranked, business.link_threshold) {
        LinkDecision::Link {
            customer_id,
            confidence,
            reason,
        } => {
            let method = if ranked[0].agreement >= 3
                && ranked[0].why.contains("said this customer's number")
            {
                "spoken_phone"
            } else {
                "name"
            };
            set_link(
                store,
                call.id,
                &linked(customer_id, method, confidence, stored_name.clone()),
            )
            .await?;
            return Ok(Outcome::Next {
                reason: format!("link: {reason}{spoken_note}"),
            });
        }
        LinkDecision::Review { reason } => {
            let reason = format!("link: {reason}{spoken_note}");
            set_link(store, call.id, &review(&reason, &ranked)).await?;
            return Ok(Outcome::Review { reason });
        }
        LinkDecision::NoCandidates { reason } => {
            let reason = format!("{reason}{spoken_note}");
            notes.extend(search_notes);
            if let Some(t) = &third {
                let reason = format!("link: {t}; {reason} → review");
                set_link(store, call.id, &review(&reason, &[])).await?;
                return Ok(Outcome::Review { reason });
            }
            if !ev.addressed.is_empty() && caller_query.is_none() {
                let reason = format!(
                    "link: the agent addressed the caller as '{}' (not the caller's own words); {reason} → review",
                    ev.addressed[0].name
                );
                set_link(store, call.id, &review(&reason, &[])).await?;
                return Ok(Outcome::Review { reason });
            }
            if let (Some(_), None) = (&caller_query, &number) {
                let reason = format!(
                    "link: {reason}; number {} → review",
                    if own_hit {
                        "is the business's own"
                    } else {
                        number_status.as_str()
                    }
                );
                set_link(store, call.id, &review(&reason, &[])).await?;
                return Ok(Outcome::Review { reason });
            }
        }
    }
    // 5. A valid number nobody has: a new customer (race-free). A withheld one with no
    //    usable name: a temporary customer, so the lead and any appointment are not blocked.
    //    A name goes onto a new customer only when the caller said it with a firm cue.
    let firm_name = caller_query
        .as_ref()
        .filter(|q| q.source == QuerySource::Caller && q.cue_confidence >= 0.75)
        .map(|q| q.name.clone());
    let valid = number.is_some();
    let method = if valid { "new_customer" } else { "temporary" };
    let mut u = linked(
        0,
        method,
        if valid { 1.0 } else { 0.0 },
        stored_name.clone(),
    );
    u.link_status = method.into();
    let (id, created) = store
        .link_call_to_customer_by_phone(
            call.id,
            &NewCustomer {
                business_id: call.business_id,
                external_id: None,
                name: if valid { firm_name.clone() } else { None },
                name_normalized: if valid {
                    firm_name.as_deref().map(normalize_name)
                } else {
                    None
                },
                phone: number.clone(),
                email: None,
                is_temporary: !valid,
            },
            &u,
        )
        .await?;
    super::run_scope::note_link(call.id, &u.link_status, u.link_method.as_deref());
    let mut reason = if valid {
        let e = number.as_deref().unwrap_or("");
        if created {
            format!("link: no customer with {e} → created customer #{id}")
        } else {
            format!("link: customer #{id} with {e} was created meanwhile by another call → linked to it")
        }
    } else {
        format!(
            "link: number {} and no usable name → temporary customer #{id} (merge it in review when the caller is known)",
            if own_hit { "is the business's own" } else { number_status.as_str() }
        )
    };
    if valid && stored_name.is_some() && firm_name.is_none() {
        reason.push_str(" (the name was said with a weak cue: not stored on the customer)");
    }
    for n in &notes {
        reason.push_str("; ");
        reason.push_str(n);
    }
    Ok(Outcome::Next { reason })
}

fn name_context(business_name: &str, call: &Call) -> NameContext {
    let agents: Vec<&str> = call.agent_name.as_deref().into_iter().collect();
    NameContext::new(Some(business_name), &agents)
}

/// The transcript's segments read for who called.
async fn evidence(
    store: &Store,
    call: &Call,
    business_name: &str,
) -> Result<CallerEvidence, StageError> {
    let Some(t) = super::run_scope::transcript(store, call.id).await? else {
        return Ok(CallerEvidence::default());
    };
    let segments: Vec<Segment> = serde_json::from_str(&t.segments).unwrap_or_default();
    let pairs: Vec<(String, String)> = if segments.is_empty() {
        vec![("speaker".into(), t.text.clone())]
    } else {
        segments
            .iter()
            .map(|s| (s.speaker.clone(), s.text.clone()))
            .collect()
    };
    let caller_speaker = pairs.iter().any(|(s, _)| s == "caller").then_some("caller");
    Ok(caller_evidence(
        &pairs,
        caller_speaker,
        &name_context(business_name, call),
    ))
}

/// analyze's stored name when the rules found none: a model's claim, kept only if it
/// passes the guard with the business context and its quote names no third party.
async fn model_guard(
    store: &Store,
    call_id: i64,
    name: &str,
    nctx: &NameContext,
) -> Result<Option<String>, StageError> {
    let quote: Option<String> = sqlx::query_scalar::<_, Option<String>>(
        "SELECT detail FROM call_events WHERE call_id = $1 AND kind = 'name' AND detail IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(call_id)
    .fetch_optional(store.pool())
    .await
    .map_err(|e| StageError::Transient(format!("reading the name evidence of call {call_id}: {e}")))?
    .flatten();
    let text = super::run_scope::transcript(store, call_id)
        .await?
        .map(|t| t.text)
        .unwrap_or_default();
    let quote = quote.unwrap_or_default();
    Ok(guard_llm_name_in(name, &quote, &text, nctx).ok())
}

/// The business's own numbers: the other side of this call, numbers configured in the
/// business's settings (`own_numbers`), and numbers it calls out from.
async fn own_numbers(
    store: &Store,
    call: &Call,
    configured: &[String],
    region: &str,
    outbound: bool,
) -> Result<Vec<String>, StageError> {
    let mut own = Vec::new();
    let side = if outbound {
        call.from_e164
            .clone()
            .or_else(|| normalize_phone(call.from_number.as_deref(), region).e164)
    } else {
        normalize_phone(call.to_number.as_deref(), region).e164
    };
    own.extend(side);
    own.extend(
        configured
            .iter()
            .filter_map(|n| normalize_phone(Some(n), region).e164),
    );
    if !outbound {
        if let Some(from) = call.from_e164.as_deref() {
            if store.dials_out_from(call.business_id, from).await? {
                own.push(from.to_string());
            }
        }
    }
    Ok(own)
}

fn third_party_note(ev: &CallerEvidence) -> Option<String> {
    let tp = ev.third_parties.first()?;
    Some(match &tp.name {
        Some(c) => format!(
            "the caller speaks for someone else ({}: '{}')",
            tp.relation, c.name
        ),
        None => format!("the caller speaks for someone else ({})", tp.relation),
    })
}

/// A trace row with what the transcript said about the caller.
async fn record_evidence(
    ctx: &PipelineCtx,
    call: &Call,
    ev: &CallerEvidence,
    spoken: &[String],
    notes: &[String],
) -> Result<(), StageError> {
    let mut parts = vec![ev.attribution.clone()];
    if let Some(n) = &ev.name {
        parts.push(format!(
            "caller's name '{}' ({}{}, cue '{}' {:.2})",
            n.name,
            n.title
                .as_deref()
                .map(|t| format!("title {t}, "))
                .unwrap_or_default(),
            if n.spelled { "spelled out" } else { "said" },
            n.cue,
            n.confidence
        ));
    }
    for tp in &ev.third_parties {
        parts.push(format!(
            "third party: {}{}",
            tp.relation,
            tp.name
                .as_ref()
                .map(|c| format!(" '{}'", c.name))
                .unwrap_or_default()
        ));
    }
    for a in &ev.addressed {
        parts.push(format!("{} '{}'", a.cue, a.name));
    }
    for (n, why) in &ev.rejected {
        parts.push(format!("'{n}' is no name: {why}"));
    }
    if !spoken.is_empty() {
        parts.push(format!("numbers said: {}", spoken.join(", ")));
    }
    parts.extend(notes.iter().cloned());
    super::run_scope::note(
        &ctx.store,
        &NewEvent {
            call_id: call.id,
            business_id: call.business_id,
            stage: crate::domain::stage::Stage::Link,
            kind: "link_evidence",
            reason: format!("link evidence: {}", parts.join("; ")),
            detail: serde_json::to_string(ev).ok(),
            actor: "pipeline",
        },
    )
    .await?;
    Ok(())
}

/// A name key held by more customers than this is not read on its own: a name that common
/// cannot single anyone out (the margin rule sends it to review anyway), and reading every
/// holder would make one call cost what the business's size is. Such keys still find
/// customers together with the other word of the name, and the trace says which were
/// skipped and how many customers hold them.
pub const KEY_READ_LIMIT: i64 = 2_000;
/// Candidate sets at least this large are scored on a blocking thread, off the runtime.
const SCORE_OFF_RUNTIME: usize = 256;
/// Candidate sets are split over the cores in parts of at least this many.
const SCORE_SPLIT: usize = 512;

/// Customers whose name keys match the name: the same full name (any spelling, either
/// way round) always; everyone with the surname (and, for one word, the first name) while
/// that key is held by at most [`KEY_READ_LIMIT`] customers. Returns the customers and,
/// for every key skipped as too common, a trace note.
///
/// The full name is read from its compound keys (one posting list per combination of a
/// surname key and a first-name key, see `domain::names::compound_keys`), never cut: the
/// same candidates as intersecting the surname's and the first name's postings, without
/// walking tens of thousands of "Müller"s to find the few "Anna Müller"s.
async fn name_candidates(
    store: &Store,
    business_id: i64,
    name: &str,
    counted: &mut KeyCounts,
) -> Result<(Vec<NameCandidate>, Vec<String>), StageError> {
    let n = normalize_name(name);
    let toks: Vec<&str> = n.split_whitespace().collect();
    let Some(last) = toks.last() else {
        return Ok((vec![], vec![]));
    };
    let sur = word_keys(last);
    let first = if toks.len() >= 2 {
        word_keys(toks[0])
    } else {
        vec![]
    };
    let pre = |pos: &str, keys: &[String]| -> Vec<String> {
        keys.iter().map(|k| format!("{pos}{k}")).collect()
    };
    let mut notes = Vec::new();
    // Alone, exact folded spellings first, then phonetic codes and consonant skeletons
    // (other spellings, other scripts); for one word, also that word as a first name.
    let (exact, loose): (Vec<String>, Vec<String>) =
        sur.iter().cloned().partition(|k| k.starts_with("f:"));
    let mut tiers: Vec<(&str, Vec<String>)> = vec![("l", exact), ("l", loose)];
    if toks.len() == 1 {
        tiers.insert(0, ("f", sur.clone()));
    }
    // The full name, either way round (a one-word customer name counts as any first
    // name): every (surname key, first-name key) combination, and for names with too
    // many combinations their overflow key probed for the first name.
    let mut read: Vec<String> = Vec::new();
    let mut overflow = Vec::new();
    if !first.is_empty() {
        let mut first_or_single = first.clone();
        first_or_single.push(COMPOUND_ONE_WORD.into());
        for (s, f) in [(&sur, &first_or_single), (&first, &sur)] {
            read.extend(
                s.iter()
                    .flat_map(|s| f.iter().map(move |f| compound_key(s, f))),
            );
            let probe: Vec<String> = f
                .iter()
                .map(|k| {
                    if k == COMPOUND_ONE_WORD {
                        k.clone()
                    } else {
                        format!("f{k}")
                    }
                })
                .collect();
            overflow.push((s.iter().map(|k| compound_overflow_key(k)).collect(), probe));
        }
    }
    let wanted: Vec<String> = tiers.iter().flat_map(|(pos, k)| pre(pos, k)).collect();
    let counts = key_counts(store, business_id, &wanted, counted).await?;
    let held = |k: &String| counts.get(k).copied().unwrap_or(0);
    for (pos, keys) in tiers {
        let mut skipped = Vec::new();
        for k in pre(pos, &keys) {
            match held(&k) {
                0 => {}
                n if n <= KEY_READ_LIMIT => read.push(k),
                n => skipped.push(format!("{} ({n})", &k[1..])),
            }
        }
        if !skipped.is_empty() {
            notes.push(format!(
                "name '{name}': {} key {} held by more than {KEY_READ_LIMIT} customers, not read alone{}",
                if pos == "f" { "first-name" } else { "surname" },
                skipped.join(", "),
                if toks.len() >= 2 {
                    " (customers with the full name were scored)"
                } else {
                    " (too common to single anyone out)"
                }
            ));
        }
    }
    read.sort();
    read.dedup();
    // All of it in one read: the ids (index only), then their rows.
    let out = store
        .name_candidates_by_keys(business_id, &read, &overflow)
        .await?;
    Ok((out, notes))
}

/// Name key → how many customers hold it, as read during one link run.
type KeyCounts = HashMap<String, i64>;

/// How many customers hold each name key (0 when none): one primary-key read per key
/// (`customer_name_key_counts`, kept exact by triggers). Never cached across runs; within
/// a run, keys `counted` already are not read again (one read for the rest, none when
/// there is no rest).
async fn key_counts(
    store: &Store,
    business_id: i64,
    keys: &[String],
    counted: &mut KeyCounts,
) -> Result<HashMap<String, i64>, StageError> {
    let mut missing: Vec<String> = keys
        .iter()
        .filter(|k| !counted.contains_key(*k))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        let read: HashMap<String, i64> = store
            .name_key_counts(business_id, &missing)
            .await?
            .into_iter()
            .collect();
        for k in missing {
            let n = read.get(&k).copied().unwrap_or(0);
            counted.insert(k, n);
        }
    }
    Ok(keys
        .iter()
        .map(|k| (k.clone(), counted.get(k).copied().unwrap_or(0)))
        .collect())
}

/// `rank_customers`, on blocking threads when the candidate set is large (scoring is pure
/// CPU: thousands of candidates would hold a runtime worker for milliseconds), split over
/// the machine's cores from [`SCORE_SPLIT`] candidates on (ranks are per candidate, so
/// the parts rank alone and their results merge in order).
async fn rank(
    q: &NameQuery,
    cands: Vec<CandidateCustomer>,
    ev: &LinkEvidence,
    floor: f64,
) -> Result<Vec<RankedCandidate>, StageError> {
    if cands.len() < SCORE_OFF_RUNTIME {
        return Ok(rank_customers(q, &cands, ev, floor));
    }
    let (q, ev) = (q.clone(), ev.clone());
    let n = cands.len();
    tokio::task::spawn_blocking(move || {
        let parts = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
            .min(cands.len() / SCORE_SPLIT)
            .max(1);
        if parts == 1 {
            return Some(rank_customers(&q, &cands, &ev, floor));
        }
        let chunk = cands.len().div_ceil(parts);
        std::thread::scope(|s| {
            let handles: Vec<_> = cands
                .chunks(chunk)
                .map(|part| s.spawn(|| rank_customers(&q, part, &ev, floor)))
                .collect();
            // A part that panicked fails the whole ranking: never rank a partial set.
            let mut out = Vec::with_capacity(n);
            for h in handles {
                out.extend(h.join().ok()?);
            }
            out.sort_by(rank_order);
            Some(out)
        })
    })
    .await
    .map_err(|e| StageError::Transient(format!("scoring {n} name candidates: {e}")))?
    .ok_or_else(|| {
        StageError::Transient(format!(
            "scoring {n} name candidates: a scoring thread panicked (see the log)"
        ))
    })
}

/// [`rank`] with every candidate's surname frequency, and the earlier calls of the
/// [`HISTORY_FOR`] best. Frequencies are read for every candidate's surname (one primary
/// key read per distinct surname, `customer_name_key_counts`). Earlier calls only order
/// equals and add to the trace (they are the last thing `finish_score` weighs), so they
/// are counted for the best after ranking and the order settled again.
async fn rank_with_shares(
    store: &Store,
    business_id: i64,
    q: &NameQuery,
    mut cands: Vec<CandidateCustomer>,
    ev: &LinkEvidence,
    floor: f64,
    counted: &mut KeyCounts,
) -> Result<Vec<RankedCandidate>, StageError> {
    let surname_of = |c: &CandidateCustomer| {
        normalize_name(&c.name)
            .split_whitespace()
            .last()
            .map(|l| format!("lf:{}", fold_digraphs(&fold_key(l))))
    };
    // Per distinct name: thousands of candidates share a few hundred names.
    let mut by_name: HashMap<&str, Option<String>> = HashMap::new();
    let surnames: Vec<Option<String>> = cands
        .iter()
        .map(|c| {
            by_name
                .entry(c.name.as_str())
                .or_insert_with(|| surname_of(c))
                .clone()
        })
        .collect();
    drop(by_name);
    let mut keys: Vec<String> = surnames.iter().flatten().cloned().collect();
    keys.sort();
    keys.dedup();
    let counts = key_counts(store, business_id, &keys, counted).await?;
    let total = named_total(store, business_id).await?.max(1) as f64;
    for (c, k) in cands.iter_mut().zip(surnames) {
        c.surname_share = k
            .and_then(|k| counts.get(&k).copied())
            .map_or(0.0, |n| n as f64 / total);
    }
    let mut ranked = rank(q, cands, ev, floor).await?;
    let best: Vec<i64> = ranked
        .iter()
        .take(HISTORY_FOR)
        .map(|r| r.customer_id)
        .collect();
    let history: HashMap<i64, i64> = store.prior_call_counts(&best).await?.into_iter().collect();
    if !history.is_empty() {
        for r in ranked.iter_mut() {
            if let Some(&n) = history.get(&r.customer_id) {
                r.prior_calls = n;
                r.why.push_str(&format!("; {n} earlier call(s)"));
            }
        }
        ranked.sort_by(rank_order);
    }
    Ok(ranked)
}

/// Customers as candidates, with their earlier calls (surname shares: see
/// [`rank_with_shares`]).
async fn candidate_customers(
    store: &Store,
    _business_id: i64,
    customers: &[Customer],
) -> Result<Vec<CandidateCustomer>, StageError> {
    let ids: Vec<i64> = customers.iter().take(HISTORY_FOR).map(|c| c.id).collect();
    let history: HashMap<i64, i64> = store.prior_call_counts(&ids).await?.into_iter().collect();
    Ok(customers
        .iter()
        .filter(|c| c.name.is_some() || c.phone.is_some())
        .map(|c| CandidateCustomer {
            id: c.id,
            name: c.name.clone().unwrap_or_default(),
            phone: c.phone.clone(),
            surname_share: 0.0,
            prior_calls: history.get(&c.id).copied().unwrap_or(0),
        })
        .collect())
}

/// Named customers per business, cached for a minute (the denominator of frequencies).
async fn named_total(store: &Store, business_id: i64) -> Result<i64, StageError> {
    static CACHE: Mutex<Option<HashMap<i64, (Instant, i64)>>> = Mutex::new(None);
    if let Some((at, n)) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&business_id).copied()))
    {
        if at.elapsed() < Duration::from_secs(60) {
            return Ok(n);
        }
    }
    let n = store.named_customer_count(business_id).await?;
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new)
            .insert(business_id, (Instant::now(), n));
    }
    Ok(n)
}

/// Keep the best entry per customer, and of those only the [`STORED_CANDIDATES`] best:
/// the decision reads the first two, a review stores that many. `more` comes ranked, so
/// only its best that many can be among them (a customer further down has that many
/// others above it, whatever the other queries add).
fn merge(into: &mut Vec<RankedCandidate>, more: Vec<RankedCandidate>) {
    let at: HashMap<i64, usize> = into
        .iter()
        .enumerate()
        .map(|(i, c)| (c.customer_id, i))
        .collect();
    for c in more.into_iter().take(STORED_CANDIDATES) {
        match at.get(&c.customer_id).map(|&i| &mut into[i]) {
            Some(x)
                if c.confidence > x.confidence
                    || (c.confidence == x.confidence && c.vetoes.len() < x.vetoes.len()) =>
            {
                *x = c
            }
            Some(_) => {}
            None => into.push(c),
        }
    }
}

/// Candidates that only the spoken number found (no name said).
fn spoken_only(
    q: &NameQuery,
    cands: &[CandidateCustomer],
    spoken: &[String],
) -> Vec<RankedCandidate> {
    let one = cands.len() == 1;
    cands
        .iter()
        .map(|c| {
            let mut vetoes = Vec::new();
            if !one {
                vetoes.push(format!(
                    "the spoken number belongs to {} customers",
                    cands.len()
                ));
            }
            RankedCandidate {
                customer_id: c.id,
                name: c.name.clone(),
                extracted: q.name.clone(),
                score: 0.0,
                confidence: 0.95,
                why: format!(
                    "the caller said this customer's number ({}); no name said{}",
                    spoken.join(", "),
                    if c.prior_calls > 0 {
                        format!("; {} earlier call(s)", c.prior_calls)
                    } else {
                        String::new()
                    }
                ),
                vetoes,
                source: QuerySource::Caller,
                agreement: 3,
                prior_calls: c.prior_calls,
                surname_same: false,
            }
        })
        .collect()
}

/// Does the caller's name contradict the customer the number belongs to?
fn name_conflict(q: &NameQuery, c: &Customer, ev: &LinkEvidence) -> Option<String> {
    let name = c.name.as_deref()?;
    let r = rank_customers(
        q,
        &[CandidateCustomer {
            id: c.id,
            name: name.into(),
            ..Default::default()
        }],
        &LinkEvidence {
            direction: String::new(),
            ..ev.clone()
        },
        0.0,
    );
    let Some(r) = r.first() else {
        return Some(format!(
            "the caller said '{}', the customer is '{name}'",
            q.name
        ));
    };
    let hard = r
        .vetoes
        .iter()
        .find(|v| v.starts_with("different first name") || v.starts_with("different gender"));
    if let Some(v) = hard {
        return Some(format!(
            "the caller's name '{}' disagrees with '{name}': {v}",
            q.name
        ));
    }
    (r.score < 0.7).then(|| {
        format!(
            "the caller said '{}', the customer is '{name}' ({:.2})",
            q.name, r.score
        )
    })
}

fn phone_candidates(
    q: Option<&NameQuery>,
    found: &[Customer],
    e164: &str,
    ev: &LinkEvidence,
) -> Vec<RankedCandidate> {
    let mut out: Vec<RankedCandidate> = found
        .iter()
        .map(|c| {
            let named = q.and_then(|q| {
                rank_customers(
                    q,
                    &[CandidateCustomer {
                        id: c.id,
                        name: c.name.clone().unwrap_or_default(),
                        ..Default::default()
                    }],
                    ev,
                    0.0,
                )
                .into_iter()
                .next()
            });
            let mut r = named.unwrap_or(RankedCandidate {
                customer_id: c.id,
                name: c.name.clone().unwrap_or_default(),
                extracted: q.map(|q| q.name.clone()).unwrap_or_default(),
                score: 0.0,
                confidence: 0.0,
                why: String::new(),
                vetoes: vec![],
                source: QuerySource::Caller,
                agreement: 0,
                prior_calls: 0,
                surname_same: false,
            });
            r.confidence = (0.9 + r.confidence / 10.0).min(1.0);
            r.why = format!("same phone {e164}; {}", r.why);
            r
        })
        .collect();
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.customer_id.cmp(&b.customer_id))
    });
    out
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

fn review_update(
    name: Option<String>,
    reason: &str,
    cands: &[RankedCandidate],
    priority: i64,
) -> LinkUpdate {
    let candidates =
        serde_json::to_string(&cands.iter().take(STORED_CANDIDATES).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
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
