//! Deepgram pre-recorded transcription: Deepgram fetches the audio itself from the URL we
//! send, so the worker never holds the audio. Diarized utterances become segments whose
//! speaker is Deepgram's per-request index ("0", "1"): which one is the agent is decided
//! later, from what they say.

use super::{SttProvider, SttRequest};
use crate::pipeline::providers::http::{redact_url, Http};
use crate::pipeline::providers::{ProviderError, Segment, Transcript};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

pub struct Deepgram {
    http: Http,
    base_url: String,
    api_key: String,
    model: String,
}

impl Deepgram {
    pub fn new(
        base_url: String,
        api_key: String,
        model: String,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Deepgram {
            http: Http::new("deepgram", timeout)?,
            base_url,
            api_key,
            model,
        })
    }
}

// Only what we use; every field may be missing (Deepgram omits `utterances` without
// `utterances=true` and `speaker` without diarization).
#[derive(Deserialize)]
struct Response {
    results: Results,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    utterances: Option<Vec<Utterance>>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
    #[serde(default)]
    detected_language: Option<String>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    words: Vec<Word>,
}

#[derive(Deserialize)]
struct Word {
    word: String,
    #[serde(default)]
    punctuated_word: Option<String>,
    start: f64,
    end: f64,
    #[serde(default)]
    speaker: Option<u32>,
}

#[derive(Deserialize)]
struct Utterance {
    start: f64,
    end: f64,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    speaker: Option<u32>,
}

/// Consecutive words of one speaker as a segment: the fallback when Deepgram sent no
/// utterances.
fn segments_from_words(words: &[Word]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for w in words {
        let speaker = w.speaker.unwrap_or(0).to_string();
        let text = w.punctuated_word.as_deref().unwrap_or(&w.word);
        match out.last_mut() {
            Some(seg) if seg.speaker == speaker => {
                seg.end = w.end;
                seg.text.push(' ');
                seg.text.push_str(text);
            }
            _ => out.push(Segment {
                speaker,
                start: w.start,
                end: w.end,
                text: text.to_string(),
            }),
        }
    }
    out
}

#[async_trait]
impl SttProvider for Deepgram {
    fn name(&self) -> &str {
        "deepgram"
    }

    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError> {
        let url = format!("{}/v1/listen", self.base_url);
        let mut query: Vec<(&str, &str)> = vec![
            ("model", self.model.as_str()),
            ("smart_format", "true"),
            ("diarize", "true"),
            ("utterances", "true"),
        ];
        if let Some(lang) = req.language.as_deref().filter(|l| !l.is_empty()) {
            query.push(("language", lang));
        }
        let what = format!(
            "POST {url} (model {}, audio {})",
            self.model,
            redact_url(&req.audio_url)
        );
        // `.json()` sets Content-Type: application/json; without it Deepgram takes the
        // body for raw audio and answers 400.
        let rb = self
            .http
            .client
            .post(&url)
            .query(&query)
            .header("Authorization", format!("Token {}", self.api_key))
            .json(&serde_json::json!({ "url": req.audio_url }));
        let reply = self.http.send(&what, rb).await?;
        let resp: Response = self.http.json(&what, &reply)?;
        let channel = resp.results.channels.into_iter().next();
        let language = channel
            .as_ref()
            .and_then(|c| c.detected_language.clone())
            .or_else(|| req.language.clone());
        let alt = channel.and_then(|c| c.alternatives.into_iter().next());
        let segments = match resp.results.utterances {
            Some(u) if !u.is_empty() => u
                .into_iter()
                .map(|u| Segment {
                    speaker: u.speaker.unwrap_or(0).to_string(),
                    start: u.start,
                    end: u.end,
                    text: u.transcript.trim().to_string(),
                })
                .filter(|s| !s.text.is_empty())
                .collect(),
            _ => alt
                .as_ref()
                .map(|a| segments_from_words(&a.words))
                .unwrap_or_default(),
        };
        let text = match alt.map(|a| a.transcript) {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => segments
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        };
        // Silence is a valid answer: an empty transcript, not an error.
        Ok(Transcript {
            provider: "deepgram".into(),
            language,
            text,
            segments,
        })
    }
}
