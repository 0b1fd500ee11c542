//! LLM providers that return JSON for an agent's schema.

use super::ProviderError;
use async_trait::async_trait;

#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub model: String,
    pub system: String,
    /// The transcript (speaker-labelled lines) and any task text.
    pub user: String,
    /// `[a-zA-Z0-9_-]`, at most 64 chars (OpenAI's json_schema name rule).
    pub schema_name: String,
    /// JSON schema of the expected object.
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmOutput {
    pub json: serde_json::Value,
    /// The model's text exactly as returned (kept for the DLQ and the call view).
    pub raw: String,
}

#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn name(&self) -> &str;
    async fn complete_json(&self, req: &LlmRequest) -> Result<LlmOutput, ProviderError>;
}

pub mod ollama;
pub mod openai_chat;
pub mod simulated;

/// A model's text as the JSON object the agent asked for. Models put in JSON mode
/// usually answer bare JSON; a Markdown code fence around it is tolerated, anything else
/// that does not parse is `Malformed` with the text kept for the DLQ and the call view.
pub(crate) fn parse_model_json(
    provider: &str,
    what: &str,
    content: &str,
) -> Result<serde_json::Value, ProviderError> {
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(trimmed);
    let malformed = |why: String| ProviderError::Malformed {
        provider: provider.to_string(),
        why: format!("{what}: {why}"),
        raw: content.to_string(),
    };
    match serde_json::from_str::<serde_json::Value>(unfenced) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(v) => Err(malformed(format!(
            "the model answered JSON but not an object (a {})",
            match v {
                serde_json::Value::Array(_) => "list",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "boolean",
                _ => "null",
            }
        ))),
        Err(e) if e.is_eof() => Err(malformed(format!("the model's JSON is cut off: {e}"))),
        Err(e) => Err(malformed(format!(
            "the model's answer is not valid JSON: {e}"
        ))),
    }
}
