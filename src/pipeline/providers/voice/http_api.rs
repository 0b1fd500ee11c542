//! A generic HTTP voice-agent API (Call Karo-style providers): `POST {url}` with a JSON
//! body built from a per-business template, an auth header from a credential reference,
//! and `Idempotency-Key: <key>` on the request. The answer's call id is read from `call_id`,
//! `id` or `data.call_id`/`data.id`; status from `GET {base}{status_path}` (`{id}` replaced)
//! with `status`/`call_status` and optional `disconnection_reason`, `recording_url`,
//! `transcript_object`, `duration_ms` — the Retell field names, which such APIs often copy.
//! A provider that honours the idempotency key answers a repeated create with the same call,
//! so `find_call` has nothing to look up.

use super::{CallReport, DialRequest, Dialled, VoiceProvider};
use crate::pipeline::providers::http::Http;
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// The body when a business configured none.
pub const DEFAULT_TEMPLATE: &str = r#"{"to":"{{to}}","from":"{{from}}","agent_id":"{{agent_id}}","variables":{"name":"{{name}}","form":"{{form}}","lead_id":"{{lead_id}}"},"idempotency_key":"{{idempotency_key}}"}"#;

pub struct HttpVoice {
    http: Http,
    url: String,
    key: Option<String>,
    auth_header: Option<String>,
    template: String,
    status_path: String,
}

impl HttpVoice {
    pub fn new(
        url: &str,
        key: Option<String>,
        auth_header: Option<String>,
        template: Option<String>,
        status_path: Option<String>,
        timeout: Duration,
    ) -> Result<HttpVoice, String> {
        let template = template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        // A template that cannot become JSON fails at configuration, not per call.
        render(&template, &std::collections::BTreeMap::new())
            .map_err(|e| format!("voice body template: {e}"))?;
        if let Some(h) = &auth_header {
            if !h.contains(':') {
                return Err(format!(
                    "voice auth header {h:?} must look like \"Header-Name: value with {{key}}\""
                ));
            }
        }
        Ok(HttpVoice {
            http: Http::new("voice-http", timeout)?,
            url: url.trim().to_string(),
            key,
            auth_header,
            template,
            status_path: status_path.unwrap_or_else(|| "/calls/{id}".into()),
        })
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let Some(key) = &self.key else { return rb };
        let header = self
            .auth_header
            .clone()
            .unwrap_or_else(|| "Authorization: Bearer {key}".into());
        let (name, value) = header.split_once(':').expect("checked in new");
        rb.header(name.trim(), value.trim().replace("{key}", key))
    }

    fn status_url(&self, id: &str) -> String {
        let base = match url::Url::parse(&self.url) {
            Ok(u) => format!("{}://{}", u.scheme(), u.authority()),
            Err(_) => self.url.clone(),
        };
        format!("{base}{}", self.status_path.replace("{id}", id))
    }
}

/// Fill `{{name}}` placeholders with JSON-escaped values; the result must be JSON.
pub fn render(
    template: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Value, String> {
    let mut out = template.to_string();
    for (k, v) in vars {
        let escaped = serde_json::to_string(v).expect("a string serializes");
        out = out.replace(&format!("{{{{{k}}}}}"), &escaped[1..escaped.len() - 1]);
    }
    // Placeholders without a value become empty strings.
    while let Some(start) = out.find("{{") {
        let Some(len) = out[start..].find("}}") else {
            break;
        };
        out.replace_range(start..start + len + 2, "");
    }
    serde_json::from_str(&out).map_err(|e| format!("is not JSON once filled in: {e}"))
}

fn call_id_of(v: &Value) -> Option<String> {
    for p in ["/call_id", "/id", "/data/call_id", "/data/id"] {
        match v.pointer(p) {
            Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
            Some(Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
    }
    None
}

#[async_trait]
impl VoiceProvider for HttpVoice {
    fn name(&self) -> &str {
        "http"
    }

    async fn create_call(&self, req: &DialRequest) -> Result<Dialled, ProviderError> {
        let what = format!("POST {}", crate::redact::redact_url(&self.url));
        let mut vars = req.variables.clone();
        vars.insert("to".into(), req.to_number.clone());
        vars.insert("from".into(), req.from_number.clone().unwrap_or_default());
        vars.insert("agent_id".into(), req.agent_id.clone());
        vars.insert("idempotency_key".into(), req.idempotency_key.clone());
        let body = render(&self.template, &vars)
            .map_err(|e| self.http.permanent(format!("{what}: body template {e}")))?;
        let rb = self
            .authed(self.http.client.post(&self.url))
            .header("Idempotency-Key", &req.idempotency_key)
            .json(&body);
        let reply = self.http.send(&what, rb).await?;
        let v: Value = self.http.json(&what, &reply)?;
        let id = call_id_of(&v).ok_or_else(|| {
            self.http.malformed(
                format!("{what}: no call id (call_id, id, data.id) in the answer"),
                &v.to_string(),
            )
        })?;
        Ok(Dialled {
            provider_call_id: id,
            status: v["status"]
                .as_str()
                .or(v["call_status"].as_str())
                .unwrap_or("accepted")
                .to_string(),
        })
    }

    async fn find_call(&self, _req: &DialRequest) -> Result<Option<Dialled>, ProviderError> {
        // The Idempotency-Key header makes create_call itself safe to repeat.
        Ok(None)
    }

    async fn call_status(&self, id: &str) -> Result<CallReport, ProviderError> {
        let url = self.status_url(id);
        let what = format!("GET {}", crate::redact::redact_url(&url));
        let reply = self
            .http
            .send(&what, self.authed(self.http.client.get(&url)))
            .await?;
        let v: Value = self.http.json(&what, &reply)?;
        let v = if v.get("data").is_some_and(|d| d.is_object()) {
            v["data"].clone()
        } else {
            v
        };
        let mut v2 = v.clone();
        if v2.get("call_status").is_none() {
            v2["call_status"] = v["status"].clone();
        }
        Ok(super::retell::report_of(&v2))
    }
}
