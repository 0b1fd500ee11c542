//! External services the pipeline calls: speech-to-text, LLM agents, CRM. Each has a
//! `simulated` implementation so the demo and load tests run offline.

pub mod audio;
pub mod crm;
pub(crate) mod http;
pub mod llm;
pub mod registry;
pub mod sim;
pub mod stt;
pub mod timed;
pub mod voice;

pub use http::redact_url;
pub use sim::SimSettings;

use crm::CrmAdapter;
use llm::LlmProvider;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use stt::SttProvider;

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

    /// The wait a server asked for with `Retry-After: <seconds>` (the HTTP clients put it
    /// in the message as "(Retry-After: 30)"), so a retry scheduler can honour it.
    pub fn retry_after(&self) -> Option<Duration> {
        let ProviderError::Transient { message, .. } = self else {
            return None;
        };
        let rest = &message[message.rfind("(Retry-After: ")? + "(Retry-After: ".len()..];
        let secs: u64 = rest.split(')').next()?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
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

/// Settings for one provider instance. Which fields matter depends on the kind; each
/// kind's defaults are in `build_stt` / `build_llm` / `build_crm`.
#[derive(Clone)]
pub struct ProviderSettings {
    /// Service root without the API path ("https://api.deepgram.com",
    /// "http://127.0.0.1:11434"); `None` = the kind's public default where it has one.
    pub base_url: Option<String>,
    /// Deepgram/OpenAI/Sarvam key; LeadSquared access key.
    pub api_key: Option<String>,
    /// LeadSquared secret key.
    pub api_secret: Option<String>,
    /// STT model; for LLMs it overrides `LlmRequest::model` when set (a deployment that
    /// mixes Ollama and OpenAI needs a different model name per provider).
    pub model: Option<String>,
    /// Endpoint path override: whisper.cpp's server answers on `/inference`.
    pub path: Option<String>,
    /// Per HTTP request (an audio upload counts as one).
    pub timeout: Duration,
    /// Sarvam batch jobs: wait between status polls, and how many polls before giving up
    /// (the job is then reported as a transient failure naming its id and state).
    pub poll_interval: Duration,
    pub max_polls: u32,
    /// The simulated providers' latency and failure rates.
    pub sim: SimSettings,
    /// Bounds on downloading call audio (STT kinds that fetch the audio themselves).
    pub audio: audio::AudioPolicy,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            base_url: None,
            api_key: None,
            api_secret: None,
            model: None,
            path: None,
            timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(3),
            max_polls: 200,
            sim: SimSettings::default(),
            audio: Default::default(),
        }
    }
}

/// Keys never reach logs through `{:?}`.
impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("ProviderSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &hidden(&self.api_key))
            .field("api_secret", &hidden(&self.api_secret))
            .field("model", &self.model)
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .field("max_polls", &self.max_polls)
            .field("sim", &self.sim)
            .field("audio", &self.audio)
            .finish()
    }
}

impl ProviderSettings {
    fn base_or(&self, default: &str) -> String {
        http::trim_base(self.base_url.as_deref().unwrap_or(default))
    }

    fn required_base(&self, kind: &str, example: &str) -> Result<String, String> {
        match self.base_url.as_deref().map(str::trim) {
            Some(b) if !b.is_empty() => Ok(http::trim_base(b)),
            _ => Err(format!("{kind} needs base_url (e.g. {example})")),
        }
    }

    fn required_key(&self, kind: &str, what: &str) -> Result<String, String> {
        match self.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => Ok(k.to_string()),
            _ => Err(format!("{kind} needs api_key ({what})")),
        }
    }

    fn non_empty(o: &Option<String>) -> Option<String> {
        o.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// Speech-to-text kinds `build_stt` accepts (aliases: `openai` = OpenAI's hosted Whisper,
/// `whisper.cpp` = whisper with the `/inference` path).
pub const STT_KINDS: &[&str] = &[
    "simulated",
    "deepgram",
    "whisper",
    "whisper.cpp",
    "openai",
    "sarvam",
];
pub const LLM_KINDS: &[&str] = &["simulated", "ollama", "openai"];
pub const CRM_KINDS: &[&str] = &["simulated", "leadsquared"];

fn unknown(what: &str, kind: &str, accepted: &[&str]) -> String {
    format!(
        "unknown {what} provider kind {kind:?}; accepted: {}",
        accepted.join(", ")
    )
}

/// A speech-to-text provider by kind name.
pub fn build_stt(kind: &str, cfg: &ProviderSettings) -> Result<Arc<dyn SttProvider>, String> {
    use stt::{deepgram::Deepgram, openai_whisper::OpenAiWhisper, sarvam::Sarvam};
    let model = ProviderSettings::non_empty(&cfg.model);
    Ok(match kind.trim().to_ascii_lowercase().as_str() {
        "simulated" => Arc::new(stt::simulated::SimulatedStt {
            sim: cfg.sim.clone(),
        }),
        "deepgram" => Arc::new(Deepgram::new(
            cfg.base_or("https://api.deepgram.com"),
            cfg.required_key("deepgram", "Authorization: Token <key>")?,
            model.unwrap_or_else(|| "nova-3".into()),
            cfg.timeout,
        )?),
        "whisper" | "openai_whisper" | "openai-whisper" => Arc::new(OpenAiWhisper::new(
            cfg.required_base(
                "whisper",
                "http://127.0.0.1:8000 for speaches, http://127.0.0.1:8080 with path /inference for whisper.cpp",
            )?,
            ProviderSettings::non_empty(&cfg.path).unwrap_or_else(|| "/v1/audio/transcriptions".into()),
            ProviderSettings::non_empty(&cfg.api_key),
            model.unwrap_or_else(|| "whisper-1".into()),
            cfg.timeout,
        )?
        .with_audio(cfg.audio.clone())),
        "whisper.cpp" | "whispercpp" => Arc::new(OpenAiWhisper::new(
            cfg.required_base("whisper.cpp", "http://127.0.0.1:8080")?,
            ProviderSettings::non_empty(&cfg.path).unwrap_or_else(|| "/inference".into()),
            ProviderSettings::non_empty(&cfg.api_key),
            model.unwrap_or_else(|| "whisper-1".into()),
            cfg.timeout,
        )?
        .with_audio(cfg.audio.clone())),
        "openai" => Arc::new(OpenAiWhisper::new(
            cfg.base_or("https://api.openai.com"),
            ProviderSettings::non_empty(&cfg.path).unwrap_or_else(|| "/v1/audio/transcriptions".into()),
            Some(cfg.required_key("openai", "Authorization: Bearer <key>")?),
            model.unwrap_or_else(|| "whisper-1".into()),
            cfg.timeout,
        )?
        .with_audio(cfg.audio.clone())),
        "sarvam" => Arc::new(Sarvam::new(
            cfg.base_or("https://api.sarvam.ai"),
            cfg.required_key("sarvam", "api-subscription-key header")?,
            model.unwrap_or_else(|| "saaras:v3".into()),
            cfg.timeout,
            cfg.poll_interval,
            cfg.max_polls,
        )?
        .with_audio(cfg.audio.clone())),
        _ => return Err(unknown("STT", kind, STT_KINDS)),
    })
}

/// An LLM provider by kind name.
pub fn build_llm(kind: &str, cfg: &ProviderSettings) -> Result<Arc<dyn LlmProvider>, String> {
    use llm::{ollama::Ollama, openai_chat::OpenAiChat};
    let model = ProviderSettings::non_empty(&cfg.model);
    Ok(match kind.trim().to_ascii_lowercase().as_str() {
        "simulated" => Arc::new(llm::simulated::SimulatedLlm {
            sim: cfg.sim.clone(),
        }),
        "ollama" => Arc::new(Ollama::new(
            cfg.base_or("http://127.0.0.1:11434"),
            model,
            cfg.timeout,
        )?),
        "openai" | "openai_chat" | "openai-chat" => Arc::new(OpenAiChat::new(
            cfg.base_or("https://api.openai.com"),
            // Self-hosted OpenAI-compatible servers (vLLM, llama.cpp) often need no key.
            ProviderSettings::non_empty(&cfg.api_key),
            model,
            cfg.timeout,
        )?),
        _ => return Err(unknown("LLM", kind, LLM_KINDS)),
    })
}

/// A CRM adapter by kind name. `builtin` is not an adapter: the notify stage writes the
/// built-in leads table itself.
pub fn build_crm(kind: &str, cfg: &ProviderSettings) -> Result<Arc<dyn CrmAdapter>, String> {
    use crm::leadsquared::LeadSquared;
    Ok(match kind.trim().to_ascii_lowercase().as_str() {
        "simulated" => Arc::new(crm::simulated::SimulatedCrm::new(cfg.sim.clone())),
        "leadsquared" => Arc::new(LeadSquared::new(
            cfg.required_base("leadsquared", "https://api-in21.leadsquared.com (your account's regional host)")?,
            cfg.required_key("leadsquared", "the access key, sent as x-LSQ-AccessKey")?,
            ProviderSettings::non_empty(&cfg.api_secret)
                .ok_or("leadsquared needs api_secret (the secret key, sent as x-LSQ-SecretKey)")?,
            cfg.timeout,
        )?),
        "builtin" => {
            return Err("CRM kind \"builtin\" has no adapter: the notify stage writes the built-in leads table itself; build adapters only for external CRMs".into())
        }
        _ => return Err(unknown("CRM", kind, CRM_KINDS)),
    })
}
