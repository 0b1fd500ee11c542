//! Sarvam AI speech-to-text (Indian languages, code-mixed speech). Its synchronous API
//! takes at most 30 s of audio and does not diarize, so real calls go through the batch
//! job API: create a job, get an upload URL, PUT the audio there, start, poll the status
//! (bounded), get a download URL for the output, fetch it. Calls of 30 s or less use the
//! synchronous API; a call of unknown length (duration 0) takes the batch path, which has
//! no length limit.

use super::{SttProvider, SttRequest};
use crate::pipeline::providers::http::{download_audio, redact_url, Audio, Http};
use crate::pipeline::providers::{ProviderError, Segment, Transcript};
use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest audio the synchronous endpoint accepts.
pub const SYNC_LIMIT_MS: i64 = 30_000;

pub struct Sarvam {
    http: Http,
    base_url: String,
    api_key: String,
    model: String,
    poll_interval: Duration,
    max_polls: u32,
}

impl Sarvam {
    /// Bounds on downloading call audio (config `[audio]`).
    pub fn with_audio(mut self, policy: crate::pipeline::providers::audio::AudioPolicy) -> Self {
        self.http.audio = policy;
        self
    }

    pub fn new(
        base_url: String,
        api_key: String,
        model: String,
        timeout: Duration,
        poll_interval: Duration,
        max_polls: u32,
    ) -> Result<Self, String> {
        Ok(Sarvam {
            http: Http::new("sarvam", timeout)?,
            base_url,
            api_key,
            model,
            poll_interval,
            max_polls: max_polls.max(1),
        })
    }

    fn post(&self, path: &str) -> (String, reqwest::RequestBuilder) {
        let url = format!("{}{path}", self.base_url);
        let rb = self
            .http
            .client
            .post(&url)
            .header("api-subscription-key", &self.api_key);
        (url, rb)
    }
}

/// Sarvam wants `hi-IN` style codes (or `unknown` to detect): a bare Indian language code
/// gets `-IN`, anything it cannot take becomes `unknown` rather than a 400.
fn sarvam_language(lang: Option<&str>) -> String {
    const INDIAN: &[&str] = &[
        "hi", "bn", "kn", "ml", "mr", "od", "pa", "ta", "te", "gu", "en",
    ];
    let Some(l) = lang.map(str::trim).filter(|l| !l.is_empty()) else {
        return "unknown".into();
    };
    let mut parts = l.split(['-', '_']);
    let code = parts.next().unwrap_or("").to_ascii_lowercase();
    if INDIAN.contains(&code.as_str()) {
        format!("{code}-IN")
    } else {
        "unknown".into()
    }
}

/// Sarvam reports `hi-IN`; the rest of callops uses the language part.
fn short_language(code: &str) -> Option<String> {
    let c = code.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    (!c.is_empty() && c != "unknown").then_some(c)
}

#[derive(Deserialize)]
struct SyncResponse {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    timestamps: Option<Timestamps>,
    #[serde(default)]
    diarized_transcript: Option<Diarized>,
    #[serde(default)]
    language_code: Option<String>,
}

#[derive(Deserialize)]
struct Timestamps {
    #[serde(default)]
    words: Vec<String>,
    #[serde(default)]
    start_time_seconds: Vec<f64>,
    #[serde(default)]
    end_time_seconds: Vec<f64>,
}

#[derive(Deserialize)]
struct Diarized {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    start_time_seconds: f64,
    #[serde(default)]
    end_time_seconds: f64,
    /// A string ("0") in the docs; a number is accepted too.
    #[serde(default)]
    speaker_id: Value,
}

#[derive(Deserialize)]
struct JobCreated {
    job_id: String,
}

#[derive(Deserialize)]
struct UrlEntry {
    file_url: String,
}

#[derive(Deserialize)]
struct UploadUrls {
    upload_urls: std::collections::HashMap<String, UrlEntry>,
}

#[derive(Deserialize)]
struct DownloadUrls {
    download_urls: std::collections::HashMap<String, UrlEntry>,
}

#[derive(Deserialize)]
struct JobStatus {
    job_state: String,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    job_details: Option<Vec<JobDetail>>,
}

#[derive(Deserialize)]
struct JobDetail {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    outputs: Option<Vec<Output>>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    file_name: String,
}

fn speaker(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

fn diarized_segments(d: Diarized) -> Vec<Segment> {
    d.entries
        .into_iter()
        .map(|e| Segment {
            speaker: speaker(&e.speaker_id),
            start: e.start_time_seconds,
            end: e.end_time_seconds,
            text: e.transcript.trim().to_string(),
        })
        .filter(|s| !s.text.is_empty())
        .collect()
}

fn transcript_from(r: SyncResponse, req: &SttRequest) -> Transcript {
    let text = r.transcript.trim().to_string();
    let segments = match (r.diarized_transcript, r.timestamps) {
        (Some(d), _) if !d.entries.is_empty() => diarized_segments(d),
        (_, Some(t)) if !t.words.is_empty() && t.words.len() == t.start_time_seconds.len() => t
            .words
            .iter()
            .zip(&t.start_time_seconds)
            .zip(
                t.end_time_seconds
                    .iter()
                    .chain(std::iter::repeat(&f64::NAN)),
            )
            .map(|((w, s), e)| Segment {
                speaker: "0".into(),
                start: *s,
                end: if e.is_nan() { *s } else { *e },
                text: w.trim().to_string(),
            })
            .filter(|s| !s.text.is_empty())
            .collect(),
        _ if !text.is_empty() => vec![Segment {
            speaker: "0".into(),
            start: 0.0,
            end: req.duration_ms.max(0) as f64 / 1000.0,
            text: text.clone(),
        }],
        _ => Vec::new(),
    };
    let text = if text.is_empty() {
        segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        text
    };
    Transcript {
        provider: "sarvam".into(),
        language: r
            .language_code
            .as_deref()
            .and_then(short_language)
            .or_else(|| req.language.clone()),
        text,
        segments,
    }
}

impl Sarvam {
    async fn sync(&self, req: &SttRequest, audio: Audio) -> Result<Transcript, ProviderError> {
        let (url, rb) = self.post("/speech-to-text");
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
                self.http
                    .permanent(format!("{what}: bad audio content type: {e}"))
            })?;
        let form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("mode", "transcribe")
            .text("language_code", sarvam_language(req.language.as_deref()))
            .text("with_timestamps", "true");
        let reply = self.http.send(&what, rb.multipart(form)).await?;
        let r: SyncResponse = self.http.json(&what, &reply)?;
        Ok(transcript_from(r, req))
    }

    async fn batch(&self, req: &SttRequest, audio: Audio) -> Result<Transcript, ProviderError> {
        let audio_shown = redact_url(&req.audio_url);

        // 1. Create the job.
        let (url, rb) = self.post("/speech-to-text/job/v1");
        let what = format!("creating a batch job POST {url} for audio {audio_shown}");
        let body = json!({
            "job_parameters": {
                "model": self.model,
                "mode": "transcribe",
                "language_code": sarvam_language(req.language.as_deref()),
                "with_diarization": true,
                // A phone call: the agent and the caller.
                "num_speakers": 2,
                "with_timestamps": true,
            },
            "callback": null,
        });
        let reply = self.http.send(&what, rb.json(&body)).await?;
        let job_id = self.http.json::<JobCreated>(&what, &reply)?.job_id;
        let job = format!("job {job_id} (audio {audio_shown})");

        // 2. Ask where to upload.
        let (url, rb) = self.post("/speech-to-text/job/v1/upload-files");
        let what = format!("{job}: getting an upload URL POST {url}");
        let file_name = audio.file_name.clone();
        let reply = self
            .http
            .send(
                &what,
                rb.json(&json!({"job_id": job_id, "files": [file_name]})),
            )
            .await?;
        let uploads: UploadUrls = self.http.json(&what, &reply)?;
        let upload_url = uploads
            .upload_urls
            .get(&file_name)
            .or_else(|| uploads.upload_urls.values().next())
            .map(|u| u.file_url.clone())
            .ok_or_else(|| {
                self.http.malformed(
                    format!("{what}: no upload URL for {file_name}"),
                    &reply.text(),
                )
            })?;

        // 3. Upload to the presigned URL exactly as returned. It is a blob store, not
        // Sarvam: the subscription key must not go there.
        let what = format!("{job}: uploading audio PUT {}", redact_url(&upload_url));
        let rb = self
            .http
            .client
            .put(&upload_url)
            .header("x-ms-blob-type", "BlockBlob")
            .header(reqwest::header::CONTENT_TYPE, &audio.content_type)
            .body(audio.bytes);
        self.http.send(&what, rb).await?;

        // 4. Start.
        let (url, rb) = self.post(&format!("/speech-to-text/job/v1/{job_id}/start"));
        self.http
            .send(&format!("{job}: starting POST {url}"), rb)
            .await?;

        // 5. Poll until a terminal state, a bounded number of times.
        let status_url = format!("{}/speech-to-text/job/v1/{job_id}/status", self.base_url);
        let what = format!("{job}: status GET {status_url}");
        let mut last_state = String::from("Accepted");
        let mut status: Option<JobStatus> = None;
        for _ in 0..self.max_polls {
            tokio::time::sleep(self.poll_interval).await;
            let rb = self
                .http
                .client
                .get(&status_url)
                .header("api-subscription-key", &self.api_key);
            let reply = self.http.send(&what, rb).await?;
            let s: JobStatus = self.http.json(&what, &reply)?;
            last_state = s.job_state.clone();
            if matches!(
                s.job_state.as_str(),
                "Completed" | "PartiallyCompleted" | "Failed"
            ) {
                status = Some(s);
                break;
            }
        }
        let Some(status) = status else {
            // The job may still finish, but this attempt has waited long enough; the
            // retry starts a new job.
            return Err(self.http.transient(format!(
                "{job}: still {last_state} after {} status polls ({} s)",
                self.max_polls,
                (self.poll_interval * self.max_polls).as_secs()
            )));
        };
        let details = status.job_details.unwrap_or_default();
        let file_errors: Vec<String> = details
            .iter()
            .filter_map(|d| d.error_message.clone())
            .filter(|m| !m.is_empty())
            .collect();
        let outputs: Vec<String> = details
            .iter()
            .filter(|d| d.state.as_deref().is_none_or(|s| s == "Success"))
            .flat_map(|d| d.outputs.iter().flatten().map(|o| o.file_name.clone()))
            .collect();
        if status.job_state == "Failed" || outputs.is_empty() {
            // Sarvam does not say whether a failed job would fail again (bad audio) or
            // hit a glitch; retrying is bounded, so give it the benefit of the doubt.
            let why = status
                .error_message
                .into_iter()
                .chain(file_errors)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(self.http.transient(format!(
                "{job}: ended {} with no output file{}",
                status.job_state,
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            )));
        }

        // 6. Where to download the output.
        let output = outputs[0].clone();
        let (url, rb) = self.post("/speech-to-text/job/v1/download-files");
        let what = format!("{job}: getting the download URL of {output} POST {url}");
        let reply = self
            .http
            .send(
                &what,
                rb.json(&json!({"job_id": job_id, "files": [output]})),
            )
            .await?;
        let downloads: DownloadUrls = self.http.json(&what, &reply)?;
        let download_url = downloads
            .download_urls
            .get(&output)
            .map(|u| u.file_url.clone())
            .ok_or_else(|| {
                self.http.malformed(
                    format!("{what}: no download URL for {output}"),
                    &reply.text(),
                )
            })?;

        // 7. The output itself (from the blob store: no key).
        let what = format!(
            "{job}: downloading output GET {}",
            redact_url(&download_url)
        );
        let reply = self
            .http
            .send(&what, self.http.client.get(&download_url))
            .await?;
        let r: SyncResponse = self.http.json(&what, &reply)?;
        Ok(transcript_from(r, req))
    }
}

#[async_trait]
impl SttProvider for Sarvam {
    fn name(&self) -> &str {
        "sarvam"
    }

    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError> {
        // Download first: a dead audio URL must not leave an orphaned job behind.
        let audio = download_audio(&self.http, &req.audio_url).await?;
        if req.duration_ms > 0 && req.duration_ms <= SYNC_LIMIT_MS {
            self.sync(req, audio).await
        } else {
            self.batch(req, audio).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_sarvam_accepts() {
        assert_eq!(sarvam_language(Some("hi")), "hi-IN");
        assert_eq!(sarvam_language(Some("en-US")), "en-IN");
        assert_eq!(sarvam_language(Some("de")), "unknown");
        assert_eq!(sarvam_language(None), "unknown");
        assert_eq!(short_language("hi-IN").as_deref(), Some("hi"));
        assert_eq!(short_language("unknown"), None);
    }

    #[test]
    fn speaker_ids_as_strings() {
        assert_eq!(speaker(&json!("1")), "1");
        assert_eq!(speaker(&json!(0)), "0");
        assert_eq!(speaker(&Value::Null), "0");
    }
}
