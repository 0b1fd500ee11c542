//! OpenAI-compatible chat completions with structured outputs (`response_format:
//! json_schema`): OpenAI itself, and vLLM / llama.cpp / LiteLLM servers that speak the
//! same API. A refusal is `Permanent` (the same transcript gets the same refusal); JSON
//! cut off by the token limit (`finish_reason: "length"`) is `Malformed`.

use super::{parse_model_json, LlmOutput, LlmProvider, LlmRequest};
use crate::pipeline::providers::http::Http;
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub struct OpenAiChat {
    http: Http,
    base_url: String,
    api_key: Option<String>,
    /// Overrides the request's model when set.
    model: Option<String>,
}

impl OpenAiChat {
    pub fn new(
        base_url: String,
        api_key: Option<String>,
        model: Option<String>,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(OpenAiChat {
            http: Http::new("openai", timeout)?,
            base_url,
            api_key,
            model,
        })
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// OpenAI's rule for `json_schema.name`: `[a-zA-Z0-9_-]`, at most 64 characters.
pub fn schema_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if n.is_empty() {
        "output".into()
    } else {
        n
    }
}

/// The schema in the form strict mode demands — every object closed
/// (`additionalProperties: false`) and every property required, an optional one made
/// nullable instead — and whether strict mode can be used at all. It cannot when the
/// schema has a free-form object (`{"type":"object"}` without properties, like a
/// scorecard whose items vary): strict mode would close it and force the model to answer
/// `{}`, silently losing the scores. Such schemas go non-strict.
pub fn strict_schema(schema: &Value) -> (Value, bool) {
    let mut s = schema.clone();
    let ok = make_strict(&mut s);
    (s, ok)
}

fn make_strict(node: &mut Value) -> bool {
    let Some(obj) = node.as_object_mut() else {
        return true;
    };
    let mut ok = true;
    let is_object = match obj.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => obj.contains_key("properties"),
    };
    if is_object {
        match obj.get("properties").and_then(|p| p.as_object()) {
            Some(props) if !props.is_empty() => {
                let keys: Vec<String> = props.keys().cloned().collect();
                let required: Vec<String> = obj
                    .get("required")
                    .and_then(|r| r.as_array())
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
                    for k in keys.iter().filter(|k| !required.contains(k)) {
                        if let Some(Value::Object(p)) = props.get_mut(k) {
                            nullable(p);
                        }
                    }
                }
                obj.insert("required".into(), json!(keys));
                obj.insert("additionalProperties".into(), json!(false));
            }
            _ => ok = false,
        }
    }
    for key in ["properties", "$defs", "definitions"] {
        if let Some(Value::Object(children)) = obj.get_mut(key) {
            for child in children.values_mut() {
                ok &= make_strict(child);
            }
        }
    }
    if let Some(items) = obj.get_mut("items") {
        ok &= make_strict(items);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = obj.get_mut(key) {
            for alt in alts {
                ok &= make_strict(alt);
            }
        }
    }
    ok
}

fn nullable(p: &mut serde_json::Map<String, Value>) {
    match p.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = t.clone();
            p.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => ts.push(json!("null")),
        _ => {}
    }
}

#[async_trait]
impl LlmProvider for OpenAiChat {
    fn name(&self) -> &str {
        "openai"
    }

    async fn complete_json(&self, req: &LlmRequest) -> Result<LlmOutput, ProviderError> {
        let model = self.model.as_deref().unwrap_or(&req.model);
        let url = format!("{}/v1/chat/completions", self.base_url);
        let name = schema_name(&req.schema_name);
        let what = format!("POST {url} (model {model}, schema {name})");
        let (schema, strict) = strict_schema(&req.schema);
        let mut messages = Vec::new();
        if !req.system.is_empty() {
            messages.push(json!({"role": "system", "content": req.system}));
        }
        messages.push(json!({"role": "user", "content": req.user}));
        let body = json!({
            "model": model,
            "temperature": 0,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": strict, "schema": schema},
            },
        });
        let mut rb = self.http.client.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            rb = rb.bearer_auth(key);
        }
        let reply = self.http.send(&what, rb).await?;
        let resp: Completion = self.http.json(&what, &reply)?;
        let Some(choice) = resp.choices.into_iter().next() else {
            return Err(self
                .http
                .malformed(format!("{what}: no choices in the answer"), &reply.text()));
        };
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(self
                .http
                .permanent(format!("{what}: the model refused: {refusal}")));
        }
        let raw = choice.message.content.unwrap_or_default();
        match choice.finish_reason.as_deref() {
            Some("length") => {
                return Err(ProviderError::Malformed {
                    provider: "openai".into(),
                    why: format!(
                        "{what}: output cut off (finish_reason \"length\": the model hit its token limit)"
                    ),
                    raw,
                })
            }
            Some("content_filter") => {
                return Err(self.http.permanent(format!(
                    "{what}: the answer was withheld by the content filter (finish_reason \"content_filter\")"
                )))
            }
            _ => {}
        }
        let json = parse_model_json("openai", &what, &raw)?;
        Ok(LlmOutput { json, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_openai_rules() {
        assert_eq!(schema_name("QC scorecard"), "QC_scorecard");
        assert_eq!(schema_name(""), "output");
        assert_eq!(schema_name(&"x".repeat(80)).len(), 64);
    }

    #[test]
    fn strict_schema_closes_objects_and_spots_free_form_ones() {
        let (s, strict) = strict_schema(&json!({
            "type": "object",
            "properties": {"score": {"type": "integer"}, "note": {"type": "string"}},
            "required": ["score"]
        }));
        assert!(strict);
        assert_eq!(s["additionalProperties"], json!(false));
        let mut required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["note", "score"]);
        assert_eq!(s["properties"]["note"]["type"], json!(["string", "null"]));
        let (_, strict) = strict_schema(&json!({
            "type": "object",
            "properties": {"scores": {"type": "object"}},
            "required": ["scores"]
        }));
        assert!(!strict, "a free-form object cannot be strict");
    }
}
