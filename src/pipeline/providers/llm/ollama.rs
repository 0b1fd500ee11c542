//! Ollama's chat API with structured output: the agent's JSON schema goes in `format`, so
//! the model is constrained to it; the answer is a JSON *string* in `message.content`,
//! parsed a second time here because it can still be invalid (cut off, or a model that
//! ignores the constraint).

use super::{parse_model_json, LlmOutput, LlmProvider, LlmRequest};
use crate::pipeline::providers::http::Http;
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub struct Ollama {
    http: Http,
    base_url: String,
    /// Overrides the request's model when set.
    model: Option<String>,
}

impl Ollama {
    pub fn new(base_url: String, model: Option<String>, timeout: Duration) -> Result<Self, String> {
        Ok(Ollama {
            http: Http::new("ollama", timeout)?,
            base_url,
            model,
        })
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    message: Message,
    #[serde(default)]
    done_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: String,
}

#[async_trait]
impl LlmProvider for Ollama {
    fn name(&self) -> &str {
        "ollama"
    }

    async fn complete_json(&self, req: &LlmRequest) -> Result<LlmOutput, ProviderError> {
        let model = self.model.as_deref().unwrap_or(&req.model);
        let url = format!("{}/api/chat", self.base_url);
        let what = format!("POST {url} (model {model}, schema {})", req.schema_name);
        let mut messages = Vec::new();
        if !req.system.is_empty() {
            messages.push(json!({"role": "system", "content": req.system}));
        }
        messages.push(json!({"role": "user", "content": req.user}));
        let body = json!({
            "model": model,
            "messages": messages,
            "stream": false,
            "format": req.schema,
            // Same transcript, same answer: analyses are cached and compared.
            "options": {"temperature": 0},
        });
        let reply = self
            .http
            .send(&what, self.http.client.post(&url).json(&body))
            .await?;
        let resp: ChatResponse = self.http.json(&what, &reply)?;
        let raw = resp.message.content;
        if resp.done_reason.as_deref() == Some("length") {
            return Err(ProviderError::Malformed {
                provider: "ollama".into(),
                why: format!("{what}: output cut off (done_reason \"length\": the model hit its token limit)"),
                raw,
            });
        }
        let json = parse_model_json("ollama", &what, &raw)?;
        Ok(LlmOutput { json, raw })
    }
}
