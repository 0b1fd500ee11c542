//! Retell: `POST /v2/create-phone-call` (from_number, to_number, override_agent_id,
//! retell_llm_dynamic_variables, metadata), `GET /v2/get-call/{call_id}`, and
//! `POST /v2/list-calls` to find a call an earlier attempt placed. Retell takes no
//! idempotency key, so the key travels in the call's metadata and a retry after a crash
//! lists the calls to that number first and reuses the one carrying it.
//! Auth: `Authorization: Bearer <api key>`.

use super::{progress_of, CallReport, DialRequest, Dialled, VoiceProvider};
use crate::pipeline::providers::http::{trim_base, Http};
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Duration;

pub struct Retell {
    http: Http,
    base: String,
    key: String,
}

impl Retell {
    pub fn new(base: &str, key: String, timeout: Duration) -> Result<Retell, String> {
        Ok(Retell {
            http: Http::new("retell", timeout)?,
            base: trim_base(base),
            key,
        })
    }

    fn dialled(&self, what: &str, v: &Value) -> Result<Dialled, ProviderError> {
        let id = v["call_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.http
                    .malformed(format!("{what}: no call_id in the answer"), &v.to_string())
            })?;
        Ok(Dialled {
            provider_call_id: id.to_string(),
            status: v["call_status"]
                .as_str()
                .unwrap_or("registered")
                .to_string(),
        })
    }
}

/// Retell's call object → our report.
pub fn report_of(v: &Value) -> CallReport {
    let status = v["call_status"].as_str().unwrap_or("");
    let reason = v["disconnection_reason"].as_str().unwrap_or("");
    let turns = v["transcript_object"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    let role = match t["role"].as_str()? {
                        "agent" => "agent",
                        _ => "caller",
                    };
                    Some((role.to_string(), t["content"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let start = v["start_timestamp"].as_i64();
    let duration =
        v["duration_ms"]
            .as_i64()
            .unwrap_or_else(|| match (start, v["end_timestamp"].as_i64()) {
                (Some(s), Some(e)) if e > s => e - s,
                _ => 0,
            });
    CallReport {
        progress: progress_of(status, reason),
        detail: if reason.is_empty() {
            status.to_string()
        } else {
            reason.to_string()
        },
        started_at: start,
        duration_ms: duration,
        recording_url: v["recording_url"].as_str().map(str::to_string),
        turns,
    }
}

#[async_trait]
impl VoiceProvider for Retell {
    fn name(&self) -> &str {
        "retell"
    }

    async fn create_call(&self, req: &DialRequest) -> Result<Dialled, ProviderError> {
        let url = format!("{}/v2/create-phone-call", self.base);
        let what = format!("POST {url}");
        let mut body = json!({
            "to_number": req.to_number,
            "override_agent_id": req.agent_id,
            "retell_llm_dynamic_variables": req.variables,
            "metadata": {"callops_idempotency_key": req.idempotency_key},
        });
        if let Some(from) = &req.from_number {
            body["from_number"] = json!(from);
        }
        let rb = self
            .http
            .client
            .post(&url)
            .bearer_auth(&self.key)
            .json(&body);
        let reply = self.http.send(&what, rb).await?;
        let v: Value = self.http.json(&what, &reply)?;
        self.dialled(&what, &v)
    }

    async fn find_call(&self, req: &DialRequest) -> Result<Option<Dialled>, ProviderError> {
        let url = format!("{}/v2/list-calls", self.base);
        let what = format!("POST {url}");
        let body = json!({
            "filter_criteria": {"to_number": [req.to_number]},
            "sort_order": "descending",
            "limit": 50,
        });
        let rb = self
            .http
            .client
            .post(&url)
            .bearer_auth(&self.key)
            .json(&body);
        let reply = self.http.send(&what, rb).await?;
        let v: Value = self.http.json(&what, &reply)?;
        let calls = v.as_array().cloned().unwrap_or_default();
        calls
            .iter()
            .find(|c| {
                c["metadata"]["callops_idempotency_key"].as_str() == Some(&req.idempotency_key)
            })
            .map(|c| self.dialled(&what, c))
            .transpose()
    }

    async fn call_status(&self, id: &str) -> Result<CallReport, ProviderError> {
        let url = format!("{}/v2/get-call/{id}", self.base);
        let what = format!("GET {url}");
        let rb = self.http.client.get(&url).bearer_auth(&self.key);
        let reply = self.http.send(&what, rb).await?;
        let v: Value = self.http.json(&what, &reply)?;
        Ok(report_of(&v))
    }
}
