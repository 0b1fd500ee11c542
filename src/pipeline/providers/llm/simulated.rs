//! Simulated LLM: fills an agent's schema from the transcript deterministically — summary,
//! sentiment, intent, BANT, QC scores, and the caller's name with a quote as evidence —
//! and now and then returns malformed JSON, as real models do.

use super::{LlmOutput, LlmProvider, LlmRequest};
use crate::domain::names::extract_caller_name;
use crate::pipeline::providers::sim::{hash, SimSettings};
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde_json::{json, Value};

pub struct SimulatedLlm {
    pub sim: SimSettings,
}

/// `[t] speaker: text` lines back into (speaker, text).
fn parse_lines(user: &str) -> Vec<(String, String)> {
    user.lines()
        .filter_map(|l| {
            let l = l.split_once("] ").map(|(_, r)| r).unwrap_or(l);
            let (sp, text) = l.split_once(": ")?;
            Some((sp.trim().to_string(), text.trim().to_string()))
        })
        .collect()
}

pub fn simulated_agent_output(schema: &Value, transcript: &str) -> Value {
    let pairs = parse_lines(transcript);
    let caller_text: String = pairs
        .iter()
        .filter(|(s, _)| s == "caller")
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let lower = caller_text.to_lowercase();
    let appointment = ["termin", "appointment", "תור"]
        .iter()
        .any(|k| lower.contains(k));
    let purchase = ["kaufen", "buy", "kharid", "purchase", "לקנות"]
        .iter()
        .any(|k| lower.contains(k));
    let negative = ["rechnung", "invoice", "problem", "beschwerde"]
        .iter()
        .any(|k| lower.contains(k));
    let name = extract_caller_name(&pairs, Some("caller"));
    let h = hash(&[transcript]);
    let mut out = serde_json::Map::new();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for field in props.keys() {
        let v = match field.as_str() {
            "summary" => json!(format!(
                "Caller {} {}.",
                name.as_ref()
                    .map(|n| n.name.as_str())
                    .unwrap_or("(name unknown)"),
                if appointment {
                    "wants an appointment"
                } else if purchase {
                    "wants to buy"
                } else {
                    "asked a question"
                }
            )),
            "sentiment" => json!(if negative {
                "negative"
            } else if appointment || purchase {
                "positive"
            } else {
                "neutral"
            }),
            "caller_name" => name.as_ref().map(|n| json!(n.name)).unwrap_or(Value::Null),
            "caller_name_evidence" => name
                .as_ref()
                .map(|n| json!(n.evidence))
                .unwrap_or(Value::Null),
            "appointment_intent" => json!(appointment),
            "purchase_intent" => json!(purchase),
            "bant" => {
                json!({"budget": purchase, "authority": true, "need": appointment || purchase, "timeline": if appointment { "next week" } else { "unknown" }})
            }
            "scores" => {
                json!({"greeting": 6 + h % 5, "needs_analysis": 4 + (h >> 8) % 7, "solution": 5 + (h >> 16) % 6, "closing": 3 + (h >> 24) % 8})
            }
            "qc_score" => json!(50 + h % 51),
            _ => json!(""),
        };
        out.insert(field.clone(), v);
    }
    Value::Object(out)
}

#[async_trait]
impl LlmProvider for SimulatedLlm {
    fn name(&self) -> &str {
        "simulated"
    }

    async fn complete_json(&self, req: &LlmRequest) -> Result<LlmOutput, ProviderError> {
        let key = hash(&[&req.user, &req.schema_name]);
        self.sim.wait(key).await;
        if let Some(e) = self.sim.failure("simulated-llm", key) {
            return Err(e);
        }
        let value = simulated_agent_output(&req.schema, &req.user);
        let raw = value.to_string();
        if self.sim.malformed(key) {
            // Cut off mid-object, like a model that hit its token limit.
            let cut: String = raw.chars().take(raw.chars().count() / 2).collect();
            return Err(ProviderError::Malformed {
                provider: "simulated-llm".into(),
                why: "not valid JSON (cut off)".into(),
                raw: cut,
            });
        }
        Ok(LlmOutput { json: value, raw })
    }
}
