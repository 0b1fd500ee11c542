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

pub mod simulated;
