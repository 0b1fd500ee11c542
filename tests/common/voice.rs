//! Fake voice-agent services for the outbound tests: a generic HTTP API that honours
//! `Idempotency-Key` (the same key answers with the same call), and Retell's
//! create-phone-call / list-calls / get-call shapes (no idempotency keys: a retry must look
//! the call up first). `created()` counts the calls really placed.

use super::http_server::{Req, Resp, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// (call id, to number, idempotency key or metadata key, request body).
pub type Placed = (String, String, String, Value);

#[derive(Clone, Default)]
pub struct Calls {
    pub placed: Arc<Mutex<Vec<Placed>>>,
    by_key: Arc<Mutex<HashMap<String, String>>>,
}

impl Calls {
    pub fn created(&self) -> usize {
        self.placed.lock().unwrap().len()
    }
    pub fn to_numbers(&self) -> Vec<String> {
        self.placed
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.1.clone())
            .collect()
    }
}

fn ended(id: &str) -> Value {
    json!({
        "call_id": id, "call_type": "phone_call", "direction": "outbound",
        "call_status": "ended", "status": "ended", "disconnection_reason": "user_hangup",
        "start_timestamp": 1764756000000i64, "end_timestamp": 1764756042000i64, "duration_ms": 42000,
        "transcript_object": [
            {"role": "agent", "content": "Hello, this is Maya calling about the spring promotion you asked about."},
            {"role": "user", "content": "Oh yes, hello. I would like to book a viewing on Thursday."},
            {"role": "agent", "content": "Thursday at three works. I have booked it for you."}
        ],
        "recording_url": null
    })
}

/// The generic API: POST /v1/calls (Idempotency-Key), GET /v1/calls/{id}.
pub async fn generic() -> (Server, Calls) {
    let calls = Calls::default();
    let c = calls.clone();
    let server = Server::start(move |req: &Req, _base| {
        if req.method == "POST" && req.path == "/v1/calls" {
            let key = req.header("idempotency-key").unwrap_or("").to_string();
            if key.is_empty() {
                return Resp::json(400, json!({"error": "Idempotency-Key header required"}));
            }
            let body = req.json().unwrap_or(Value::Null);
            let to = body["to"].as_str().unwrap_or("").to_string();
            let mut by_key = c.by_key.lock().unwrap();
            if let Some(id) = by_key.get(&key) {
                return Resp::json(200, json!({"call_id": id, "status": "queued"}));
            }
            let mut placed = c.placed.lock().unwrap();
            let id = format!("call_{}", placed.len() + 1);
            placed.push((id.clone(), to, key.clone(), body));
            by_key.insert(key, id.clone());
            return Resp::json(201, json!({"call_id": id, "status": "queued"}));
        }
        if req.method == "GET" && req.path.starts_with("/v1/calls/") {
            let id = req.path.trim_start_matches("/v1/calls/");
            return Resp::json(200, ended(id));
        }
        Resp::json(404, json!({"error": "not found"}))
    })
    .await;
    (server, calls)
}

/// Retell: POST /v2/create-phone-call, POST /v2/list-calls, GET /v2/get-call/{id}.
pub async fn retell() -> (Server, Calls) {
    let calls = Calls::default();
    let c = calls.clone();
    let server = Server::start(move |req: &Req, _base| {
        if req.header("authorization") != Some("Bearer test-retell-key") {
            return Resp::json(401, json!({"status": "error", "message": "Invalid API key"}));
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v2/create-phone-call") => {
                let body = req.json().unwrap_or(Value::Null);
                let Some(to) = body["to_number"].as_str() else {
                    return Resp::json(400, json!({"status": "error", "message": "to_number is required"}));
                };
                let key = body["metadata"]["callops_idempotency_key"].as_str().unwrap_or("").to_string();
                let mut placed = c.placed.lock().unwrap();
                let id = format!("Jabr{:04}", placed.len() + 1);
                placed.push((id.clone(), to.to_string(), key, body.clone()));
                Resp::json(201, json!({
                    "call_type": "phone_call", "call_id": id, "agent_id": body["override_agent_id"],
                    "call_status": "registered", "from_number": body["from_number"], "to_number": to,
                    "direction": "outbound", "metadata": body["metadata"]
                }))
            }
            ("POST", "/v2/list-calls") => {
                let body = req.json().unwrap_or(Value::Null);
                let to: Vec<String> = body["filter_criteria"]["to_number"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let placed = c.placed.lock().unwrap();
                let list: Vec<Value> = placed
                    .iter()
                    .rev()
                    .filter(|p| to.is_empty() || to.contains(&p.1))
                    .map(|p| json!({"call_id": p.0, "call_status": "registered", "to_number": p.1,
                                    "metadata": {"callops_idempotency_key": p.2}}))
                    .collect();
                Resp::json(200, Value::Array(list))
            }
            ("GET", p) if p.starts_with("/v2/get-call/") => {
                Resp::json(200, ended(p.trim_start_matches("/v2/get-call/")))
            }
            _ => Resp::json(404, json!({"status": "error", "message": "Not Found"})),
        }
    })
    .await;
    (server, calls)
}
