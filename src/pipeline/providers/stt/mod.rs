//! Speech-to-text providers behind one trait.

use super::{ProviderError, Transcript};
use async_trait::async_trait;

#[derive(Debug, Clone)]
pub struct SttRequest {
    pub audio_url: String,
    /// BCP-47 hint ("de", "hi-IN"), if the call record had one.
    pub language: Option<String>,
    pub duration_ms: i64,
}

#[async_trait]
pub trait SttProvider: Send + Sync {
    fn name(&self) -> &str;
    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError>;
}

pub mod deepgram;
pub mod openai_whisper;
pub mod sarvam;
pub mod simulated;
