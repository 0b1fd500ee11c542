//! Simulated LLM: fills an agent's schema from the transcript deterministically — summary,
//! sentiment, intents, BANT, QC scores, and the caller's name with a quote as evidence —
//! and now and then answers malformed JSON (cut off mid-object), as real models do.
//!
//! Like a careful model it claims a name only when the caller introduced themselves with
//! a cue phrase ("my name is", "hier ist", "mera naam … hai", "קוראים לי"): a surname said
//! alone or a greeting is left to the rules and to review.

use super::{LlmOutput, LlmProvider, LlmRequest};
use crate::domain::names::extract_caller_name;
use crate::pipeline::providers::sim::{hash, SimSettings};
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde_json::{json, Map, Value};

pub struct SimulatedLlm {
    pub sim: SimSettings,
}

/// QC items scored when the schema does not name its own.
const DEFAULT_SCORECARD: &[&str] = &["greeting", "needs_analysis", "solution", "closing"];

const APPOINTMENT_WORDS: &[&str] = &["termin", "appointment", "slot", "תור"];
const PURCHASE_WORDS: &[&str] = &["kaufen", "buy", "kharid", "purchase", "לקנות"];
const NEGATIVE_WORDS: &[&str] = &[
    "rechnung",
    "invoice",
    "beschwerde",
    "complaint",
    "shikayat",
    "תלונה",
    "החשבון",
];

/// `[12.0s] speaker: text` lines (the analyze stage's format) back into (speaker, text);
/// lines without a speaker are skipped.
fn parse_lines(user: &str) -> Vec<(String, String)> {
    user.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = match l.strip_prefix('[') {
                Some(rest) => rest.split_once("] ").map_or(l, |(_, r)| r),
                None => l,
            };
            let (sp, text) = l.split_once(": ")?;
            Some((sp.trim().to_string(), text.trim().to_string()))
        })
        .collect()
}

fn any_word(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// A value of the schema's type for a field this simulator knows nothing about.
fn empty_of(prop: &Value) -> Value {
    let types: Vec<&str> = match &prop["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null") {
        _ if types.contains(&"null") => Value::Null,
        Some(&"boolean") => json!(false),
        Some(&"integer") | Some(&"number") => json!(0),
        Some(&"object") => json!({}),
        Some(&"array") => json!([]),
        _ => json!(""),
    }
}

/// The object a model would return for `schema` given this transcript (speaker-labelled
/// lines). Deterministic: the same transcript always gives the same answer.
pub fn simulated_agent_output(schema: &Value, transcript: &str) -> Value {
    let pairs = parse_lines(transcript);
    let labelled = pairs.iter().any(|(s, _)| s == "caller");
    let caller_text = if labelled {
        pairs
            .iter()
            .filter(|(s, _)| s == "caller")
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        // Unlabelled speakers ("0", "1" from a real STT): the whole call.
        pairs
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lower = caller_text.to_lowercase();
    let appointment = any_word(&lower, APPOINTMENT_WORDS);
    let purchase = any_word(&lower, PURCHASE_WORDS);
    let negative = any_word(&lower, NEGATIVE_WORDS);
    let name = extract_caller_name(&pairs, labelled.then_some("caller"))
        .filter(|n| n.cue != "surname alone");

    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let scorecard: Vec<String> = props
        .get("scores")
        .and_then(|s| s["properties"].as_object())
        .map(|p| p.keys().cloned().collect())
        .filter(|k: &Vec<String>| !k.is_empty())
        .unwrap_or_else(|| DEFAULT_SCORECARD.iter().map(|s| s.to_string()).collect());
    let scores: Map<String, Value> = scorecard
        .iter()
        .map(|item| {
            // 3..=10, varying per call and item; a call with a clear outcome scores higher.
            let base = 3 + hash(&[transcript, item]) % 8;
            let bonus = u64::from(appointment || purchase);
            (item.clone(), json!((base + bonus).min(10)))
        })
        .collect();
    let qc_score = {
        let sum: u64 = scores.values().filter_map(|v| v.as_u64()).sum();
        (sum as f64 * 10.0 / scores.len().max(1) as f64).round() as u64
    };

    let who = name.as_ref().map_or_else(
        || "An unidentified caller".to_string(),
        |n| format!("Caller {}", n.name),
    );
    let wants = if appointment {
        "wants an appointment"
    } else if purchase {
        "wants to buy"
    } else if negative {
        "has a question about a bill"
    } else {
        "asked a general question"
    };

    let mut out = Map::new();
    for (field, prop) in &props {
        let v = match field.as_str() {
            "summary" => json!(format!("{who} {wants}; the agent answered.")),
            "sentiment" => json!(if negative {
                "negative"
            } else if appointment || purchase {
                "positive"
            } else {
                "neutral"
            }),
            "caller_name" => name.as_ref().map_or(Value::Null, |n| json!(n.name)),
            "caller_name_evidence" => name.as_ref().map_or(Value::Null, |n| json!(n.evidence)),
            "appointment_intent" => json!(appointment),
            "purchase_intent" => json!(purchase),
            "bant" => json!({
                "budget": if purchase { "asked for the price" } else { "unknown" },
                "authority": if name.is_some() { "decides for themselves" } else { "unknown" },
                "need": wants,
                "timeline": if appointment { "next week" } else if purchase { "soon" } else { "unknown" },
            }),
            "scores" => Value::Object(scores.clone()),
            "qc_score" => json!(qc_score),
            _ => empty_of(prop),
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
            // Cut off mid-object, like a model that hit its token limit:
            // `{"summary": "Caller Schreiber wan`.
            let cut: String = raw.chars().take(raw.chars().count() / 2).collect();
            return Err(ProviderError::Malformed {
                provider: "simulated-llm".into(),
                why: format!(
                    "schema {}: the model's JSON is cut off (simulated)",
                    req.schema_name
                ),
                raw: cut,
            });
        }
        Ok(LlmOutput { json: value, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[&str]) -> Value {
        let props: Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), json!({"type": "string"})))
            .collect();
        json!({"type": "object", "properties": props})
    }

    #[test]
    fn fills_fields_from_the_caller_not_the_agent() {
        let t = "[0.0s] agent: Guten Tag, Firma Müller Sanitär, mein Name ist Lena, was kann ich für Sie tun?\n\
                 [4.0s] caller: Ja, hallo, hier ist Frau Schreiber.\n\
                 [7.0s] caller: Ich hätte gern einen Termin nächste Woche.";
        let v = simulated_agent_output(
            &schema(&[
                "caller_name",
                "caller_name_evidence",
                "appointment_intent",
                "sentiment",
                "scores",
                "qc_score",
                "other",
            ]),
            t,
        );
        assert_eq!(v["caller_name"], "Schreiber", "{v}");
        assert!(t.contains(v["caller_name_evidence"].as_str().unwrap()));
        assert_eq!(v["appointment_intent"], true);
        assert_eq!(v["sentiment"], "positive");
        assert_eq!(v["scores"].as_object().unwrap().len(), 4);
        assert!(v["qc_score"].as_u64().unwrap() <= 100);
        assert_eq!(v["other"], "");
        assert_eq!(
            v,
            simulated_agent_output(
                &schema(&[
                    "caller_name",
                    "caller_name_evidence",
                    "appointment_intent",
                    "sentiment",
                    "scores",
                    "qc_score",
                    "other"
                ]),
                t
            )
        );
    }

    #[test]
    fn no_name_without_a_cue() {
        let t = "[0.0s] agent: Autohaus Becker, Sie sprechen mit Tom, guten Tag!\n[3.0s] caller: Müller.";
        let v = simulated_agent_output(&schema(&["caller_name", "caller_name_evidence"]), t);
        assert_eq!(v["caller_name"], Value::Null);
        let t = "[0.0s] agent: Thanks for calling Acme, this is Sarah, how can I help you today?\n[3.0s] caller: Hello, yes speaking.";
        let v = simulated_agent_output(&schema(&["caller_name"]), t);
        assert_eq!(v["caller_name"], Value::Null);
    }
}
