//! analyze: run the business's agents (QC scorecard, insights) on the transcript, cache by
//! (transcript, agent version), and extract the caller's name and intent. Every agent
//! that does not run leaves its reason in the trace.

use super::{Outcome, StageError};
use crate::domain::decisions::{qc_decision, Decision};
use crate::domain::names::{extract_caller_name, guard_llm_name};
use crate::domain::stage::Stage;
use crate::pipeline::context::PipelineCtx;
use crate::pipeline::providers::llm::LlmRequest;
use crate::pipeline::providers::{ProviderError, Segment};
use crate::queue::Job;
use crate::store::agents::Agent;
use crate::store::events::NewEvent;
use crate::store::transcripts::StoredAnalysis;
use crate::store::Call;

/// FNV-1a: a stable hash (std's hasher may change between releases; cache keys live in the database).
pub fn fnv64(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// JSON schema for an agent's fields: known fields get their types, others are strings.
pub fn schema_for(fields: &[String]) -> serde_json::Value {
    let mut props = serde_json::Map::new();
    for f in fields {
        let t = match f.as_str() {
            "appointment_intent" | "purchase_intent" => serde_json::json!({"type": "boolean"}),
            "qc_score" => serde_json::json!({"type": "integer"}),
            "scores" | "bant" => serde_json::json!({"type": "object"}),
            "sentiment" => {
                serde_json::json!({"type": "string", "enum": ["positive", "neutral", "negative"]})
            }
            "caller_name" | "caller_name_evidence" => {
                serde_json::json!({"type": ["string", "null"]})
            }
            _ => serde_json::json!({"type": "string"}),
        };
        props.insert(f.clone(), t);
    }
    serde_json::json!({"type": "object", "properties": props, "required": fields})
}

pub fn transcript_lines(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| format!("[{:.1}s] {}: {}", s.start, s.speaker, s.text))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn event(
    ctx: &PipelineCtx,
    call: &Call,
    kind: &str,
    reason: String,
    detail: Option<String>,
) -> Result<(), StageError> {
    super::run_scope::note(
        &ctx.store,
        &NewEvent {
            call_id: call.id,
            business_id: call.business_id,
            stage: Stage::Analyze,
            kind,
            reason,
            detail,
            actor: "pipeline",
        },
    )
    .await?;
    Ok(())
}

pub async fn run(ctx: &PipelineCtx, call: &Call, job: &Job) -> Result<Outcome, StageError> {
    let store = &ctx.store;
    let transcript = super::run_scope::transcript(store, call.id)
        .await?
        .ok_or_else(|| StageError::Transient(format!("call {} has no transcript yet", call.id)))?;
    let segments: Vec<Segment> = serde_json::from_str(&transcript.segments).unwrap_or_default();
    let business = store.business_recent(call.business_id).await?;
    let agents = store.agents_recent(call.business_id).await?;
    let manual_qc = job.payload["qc_requested_by"].as_str().map(str::to_string);
    if agents.is_empty() {
        event(
            ctx,
            call,
            "agents",
            format!(
                "no agents configured for business '{}': nothing analyzed",
                business.name
            ),
            None,
        )
        .await?;
    }
    // Earlier results for this transcript, for every agent at once (one read).
    let keys: Vec<String> = agents
        .iter()
        .map(|a| cache_key(&transcript.text, a))
        .collect();
    let mut cached = store.cached_analyses_grouped(keys).await?;
    let mut merged = serde_json::Map::new();
    for agent in agents.iter() {
        if !agent.enabled {
            event(
                ctx,
                call,
                "agent_skipped",
                format!("agent '{}' skipped: disabled", agent.name),
                None,
            )
            .await?;
            continue;
        }
        if let Some(campaign) = &agent.campaign {
            if call.campaign.as_deref() != Some(campaign.as_str()) {
                event(
                    ctx,
                    call,
                    "agent_skipped",
                    format!(
                        "agent '{}' skipped: it is for campaign '{campaign}', the call is {:?}",
                        agent.name, call.campaign
                    ),
                    None,
                )
                .await?;
                continue;
            }
        }
        if agent.kind == "qc" {
            let decision = match &manual_qc {
                Some(by) => Decision::Run(format!("qc: requested by {by}")),
                None => qc_decision(
                    business.auto_qc,
                    Some((agent.name.as_str(), agent.auto_qc, agent.enabled)),
                    transcript.text.chars().count(),
                    ctx.settings.min_qc_chars,
                ),
            };
            match decision {
                Decision::Skip(reason) => {
                    event(ctx, call, "qc_skipped", reason, None).await?;
                    continue;
                }
                Decision::Run(reason) => event(ctx, call, "qc", reason, None).await?,
            }
        }
        let key = cache_key(&transcript.text, agent);
        let hit = cached.remove(&key);
        let result = run_agent(ctx, call, &business, agent, &segments, key, hit).await?;
        if let Some(obj) = result.as_object() {
            for (k, v) in obj {
                merged.insert(k.clone(), v.clone());
            }
        }
    }

    // Caller name: cue-phrase rules over the caller's speech first, then the model's claim;
    // both pass the same guard, and the trace says which won and why the other did not.
    let pairs: Vec<(String, String)> = segments
        .iter()
        .map(|s| (s.speaker.clone(), s.text.clone()))
        .collect();
    let caller_speaker = segments
        .iter()
        .any(|s| s.speaker == "caller")
        .then_some("caller");
    let mut name: Option<String> = None;
    match extract_caller_name(&pairs, caller_speaker) {
        Some(c) => {
            event(
                ctx,
                call,
                "name",
                format!(
                    "name: rule '{}' found '{}' (confidence {:.2})",
                    c.cue, c.name, c.confidence
                ),
                Some(c.evidence.clone()),
            )
            .await?;
            name = Some(c.name);
        }
        None => {
            event(
                ctx,
                call,
                "name",
                "name: no self-introduction found in the caller's speech".into(),
                None,
            )
            .await?
        }
    }
    if let Some(claimed) = merged.get("caller_name").and_then(|v| v.as_str()) {
        let evidence = merged
            .get("caller_name_evidence")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        match guard_llm_name(claimed, evidence, &transcript.text) {
            Ok(n) if name.is_none() => {
                event(
                    ctx,
                    call,
                    "name",
                    format!("name: model's '{n}' accepted (evidence quoted)"),
                    Some(evidence.into()),
                )
                .await?;
                name = Some(n);
            }
            Ok(_) => {}
            Err(why) => {
                event(
                    ctx,
                    call,
                    "name",
                    format!("name: model's '{claimed}' rejected: {why}"),
                    None,
                )
                .await?
            }
        }
    }
    let intent = if merged.get("appointment_intent").and_then(|v| v.as_bool()) == Some(true) {
        Some("appointment")
    } else if merged.get("purchase_intent").and_then(|v| v.as_bool()) == Some(true) {
        Some("purchase")
    } else {
        None
    };
    super::run_scope::set_call(
        store,
        call.id,
        vec![
            ("extracted_name", name.clone()),
            ("intent", intent.map(str::to_string)),
        ],
    )
    .await?;
    Ok(Outcome::Next {
        reason: format!(
            "analyzed by {} agents; caller name {}; intent {}",
            agents.iter().filter(|a| a.enabled).count(),
            name.as_deref()
                .map(|n| format!("'{n}'"))
                .unwrap_or_else(|| "unknown".into()),
            intent.unwrap_or("none")
        ),
    })
}

/// The analysis cache key: the same transcript text through the same agent version.
fn cache_key(text: &str, agent: &Agent) -> String {
    fnv64(&[text, &agent.id.to_string(), &agent.version.to_string()])
}

async fn run_agent(
    ctx: &PipelineCtx,
    call: &Call,
    business: &crate::store::businesses::Business,
    agent: &Agent,
    segments: &[Segment],
    cache_key: String,
    cached: Option<String>,
) -> Result<serde_json::Value, StageError> {
    if let Some(hit) = cached {
        let value: serde_json::Value = serde_json::from_str(&hit).unwrap_or_default();
        super::run_scope::save_analysis(
            &ctx.store,
            StoredAnalysis {
                id: 0,
                call_id: call.id,
                agent_id: Some(agent.id),
                agent_version: agent.version,
                kind: agent.kind.clone(),
                cache_key,
                result: hit,
                raw_output: None,
                created_at: crate::now_ms(),
            },
        )
        .await?;
        event(
            ctx,
            call,
            "analysis",
            format!(
                "agent '{}' v{}: cached result reused",
                agent.name, agent.version
            ),
            None,
        )
        .await?;
        return Ok(value);
    }
    // The business's own client (registry); a misconfigured business waits (issue 11).
    let llm = ctx
        .providers
        .llm_for(&ctx.store, business)
        .await
        .map_err(|m| StageError::Transient(format!("{m} (agent '{}')", agent.name)))?;
    let fields = agent.field_names();
    let schema_name: String = agent
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let out = llm
        .complete_json(&LlmRequest {
            model: ctx.settings.llm_model.clone(),
            system: agent.prompt.clone(),
            user: transcript_lines(segments),
            schema_name,
            schema: schema_for(&fields),
        })
        .await
        .map_err(|e| match e {
            // Keep what the model said: the DLQ and the call view show it.
            ProviderError::Malformed { provider, why, raw } => StageError::Transient(format!(
                "{provider}: malformed output for agent '{}': {why}; raw output: {}",
                agent.name,
                raw.chars().take(2000).collect::<String>()
            )),
            other => other.into(),
        })?;
    let missing: Vec<_> = fields
        .iter()
        .filter(|f| out.json.get(f.as_str()).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(StageError::Transient(format!(
            "agent '{}' output lacks fields {missing:?}; raw output: {}",
            agent.name,
            out.raw.chars().take(2000).collect::<String>()
        )));
    }
    super::run_scope::save_analysis(
        &ctx.store,
        StoredAnalysis {
            id: 0,
            call_id: call.id,
            agent_id: Some(agent.id),
            agent_version: agent.version,
            kind: agent.kind.clone(),
            cache_key,
            result: out.json.to_string(),
            raw_output: Some(out.raw.clone()),
            created_at: crate::now_ms(),
        },
    )
    .await?;
    event(
        ctx,
        call,
        "analysis",
        format!(
            "agent '{}' v{} done by {}",
            agent.name,
            agent.version,
            llm.name()
        ),
        None,
    )
    .await?;
    Ok(out.json)
}
