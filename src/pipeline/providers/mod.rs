//! External services the pipeline calls: speech-to-text, LLM agents, CRM. Each has a
//! `simulated` implementation so the demo and load tests run offline.

pub mod crm;
pub mod llm;
pub mod sim;
pub mod stt;

use serde::{Deserialize, Serialize};

/// How a provider call failed decides what the worker does with the job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// Timeouts, 429, 5xx, connection errors: retry with backoff.
    #[error("{provider}: transient: {message}")]
    Transient { provider: String, message: String },
    /// Other 4xx (bad key, bad request): retrying cannot help; dead-letter with the
    /// provider's own message.
    #[error("{provider}: permanent: {message}")]
    Permanent { provider: String, message: String },
    /// The provider answered but the content is unusable (invalid JSON from a model,
    /// JSON cut off by `finish_reason: length`): retry, then dead with `raw` kept.
    #[error("{provider}: malformed output: {why}")]
    Malformed {
        provider: String,
        why: String,
        raw: String,
    },
}

impl ProviderError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProviderError::Permanent { .. })
    }
}

/// One diarized stretch of speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// "agent", "caller", or a provider's speaker index ("0", "1") when roles are unknown.
    pub speaker: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub provider: String,
    pub language: Option<String>,
    pub text: String,
    pub segments: Vec<Segment>,
}
