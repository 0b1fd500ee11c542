//! OpenAI-compatible transcription (`/v1/audio/transcriptions`): OpenAI itself, speaches /
//! faster-whisper-server, and whisper.cpp's server (path `/inference`). These servers
//! take the audio as an upload, so the worker downloads it first. Whisper does not
//! diarize: every segment gets speaker "0" and the roles are decided from the text later.

use super::{SttProvider, SttRequest};
use crate::pipeline::providers::http::{download_audio, redact_url, Http};
use crate::pipeline::providers::{ProviderError, Segment, Transcript};
use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use std::time::Duration;

pub struct OpenAiWhisper {
    http: Http,
    base_url: String,
    path: String,
    api_key: Option<String>,
    model: String,
}

impl OpenAiWhisper {
    /// Bounds on downloading call audio (config `[audio]`).
    pub fn with_audio(mut self, policy: crate::pipeline::providers::audio::AudioPolicy) -> Self {
        self.http.audio = policy;
        self
    }

    pub fn new(
        base_url: String,
        path: String,
        api_key: Option<String>,
        model: String,
        timeout: Duration,
    ) -> Result<Self, String> {
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Ok(OpenAiWhisper {
            http: Http::new("whisper", timeout)?,
            base_url,
            path,
            api_key,
            model,
        })
    }
}

/// `verbose_json`; plain `json` (`{"text"}`) parses too, as one segment.
#[derive(Deserialize)]
struct Verbose {
    #[serde(default)]
    text: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    segments: Option<Vec<VerboseSegment>>,
}

#[derive(Deserialize)]
struct VerboseSegment {
    start: f64,
    end: f64,
    text: String,
}

/// Whisper's language names (whisper.cpp and some servers report "english") as the
/// ISO 639-1 codes the rest of callops uses; codes pass through lower-cased.
pub fn normalize_language(lang: &str) -> String {
    let l = lang.trim().to_ascii_lowercase();
    const NAMES: &[(&str, &str)] = &[
        ("english", "en"),
        ("german", "de"),
        ("hindi", "hi"),
        ("hebrew", "he"),
        ("french", "fr"),
        ("spanish", "es"),
        ("italian", "it"),
        ("portuguese", "pt"),
        ("dutch", "nl"),
        ("polish", "pl"),
        ("turkish", "tr"),
        ("russian", "ru"),
        ("ukrainian", "uk"),
        ("arabic", "ar"),
        ("persian", "fa"),
        ("urdu", "ur"),
        ("bengali", "bn"),
        ("tamil", "ta"),
        ("telugu", "te"),
        ("marathi", "mr"),
        ("gujarati", "gu"),
        ("kannada", "kn"),
        ("malayalam", "ml"),
        ("punjabi", "pa"),
        ("chinese", "zh"),
        ("japanese", "ja"),
        ("korean", "ko"),
        ("swedish", "sv"),
        ("danish", "da"),
        ("norwegian", "no"),
        ("finnish", "fi"),
        ("czech", "cs"),
        ("greek", "el"),
        ("romanian", "ro"),
        ("hungarian", "hu"),
    ];
    NAMES
        .iter()
        .find(|(name, _)| *name == l)
        .map_or(l, |(_, code)| code.to_string())
}

/// Whisper wants ISO 639-1 ("de"), not BCP-47 ("de-DE").
fn whisper_language(lang: &str) -> String {
    lang.split(['-', '_'])
        .next()
        .unwrap_or(lang)
        .to_ascii_lowercase()
}

#[async_trait]
impl SttProvider for OpenAiWhisper {
    fn name(&self) -> &str {
        "whisper"
    }

    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError> {
        let audio = download_audio(&self.http, &req.audio_url).await?;
        let url = format!("{}{}", self.base_url, self.path);
        let what = format!(
            "POST {url} (model {}, {} bytes of audio from {})",
            self.model,
            audio.bytes.len(),
            redact_url(&req.audio_url)
        );
        let file = Part::bytes(audio.bytes)
            .file_name(audio.file_name)
            .mime_str(&audio.content_type)
            .map_err(|e| {
                self.http.permanent(format!(
                    "{what}: audio content type {:?} is not a valid MIME type: {e}",
                    audio.content_type
                ))
            })?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "verbose_json")
            .text("temperature", "0")
            .text("timestamp_granularities[]", "segment");
        if let Some(lang) = req.language.as_deref().filter(|l| !l.is_empty()) {
            form = form.text("language", whisper_language(lang));
        }
        let mut rb = self.http.client.post(&url).multipart(form);
        if let Some(key) = &self.api_key {
            rb = rb.bearer_auth(key);
        }
        let reply = self.http.send(&what, rb).await?;
        let v: Verbose = self.http.json(&what, &reply)?;
        let text = v.text.trim().to_string();
        let segments: Vec<Segment> = match v.segments {
            Some(segs) if !segs.is_empty() => segs
                .into_iter()
                .map(|s| Segment {
                    speaker: "0".into(),
                    start: s.start,
                    end: s.end,
                    text: s.text.trim().to_string(),
                })
                .filter(|s| !s.text.is_empty())
                .collect(),
            // A server that ignored verbose_json: one segment over the whole call.
            _ if !text.is_empty() => vec![Segment {
                speaker: "0".into(),
                start: 0.0,
                end: v.duration.unwrap_or(req.duration_ms.max(0) as f64 / 1000.0),
                text: text.clone(),
            }],
            _ => Vec::new(),
        };
        Ok(Transcript {
            provider: "whisper".into(),
            language: v
                .language
                .filter(|l| !l.trim().is_empty())
                .map(|l| normalize_language(&l))
                .or_else(|| req.language.as_deref().map(whisper_language)),
            text,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_names_become_codes() {
        assert_eq!(normalize_language("english"), "en");
        assert_eq!(normalize_language("German"), "de");
        assert_eq!(normalize_language("de"), "de");
        assert_eq!(normalize_language("klingon"), "klingon");
        assert_eq!(whisper_language("hi-IN"), "hi");
    }
}
