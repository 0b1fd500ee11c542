//! LeadSquared-style CRM: an idempotent upsert keyed by phone (`Lead.CreateOrUpdate` with
//! `SearchBy=Phone`), so a redelivered notify job updates the lead it created instead of
//! creating a second one. When LeadSquared still answers `MXDuplicateEntryException`
//! (a retried create that raced the first, or a duplicate on another unique field), the
//! lead is looked up by phone and its id returned instead of failing the call.

use super::{CrmAdapter, CrmLead, CrmLeadRef, LeadUpsert};
use crate::pipeline::providers::http::Http;
use crate::pipeline::providers::ProviderError;
use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

pub struct LeadSquared {
    http: Http,
    base_url: String,
    access_key: String,
    secret_key: String,
}

impl LeadSquared {
    pub fn new(
        base_url: String,
        access_key: String,
        secret_key: String,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(LeadSquared {
            http: Http::new("leadsquared", timeout)?,
            base_url,
            access_key,
            secret_key,
        })
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // Headers rather than the accessKey/secretKey query parameters: URLs end up in
        // error messages and proxy logs.
        rb.header("x-LSQ-AccessKey", &self.access_key)
            .header("x-LSQ-SecretKey", &self.secret_key)
    }

    /// The existing lead for a phone number; the most recently modified one when several
    /// match.
    async fn lookup(&self, digits: &str, duplicate: &str) -> Result<CrmLeadRef, ProviderError> {
        let url = format!(
            "{}/v2/LeadManagement.svc/RetrieveLeadByPhoneNumber",
            self.base_url
        );
        let what = format!("GET {url}?phone={digits} (after {duplicate})");
        let rb = self.authed(self.http.client.get(&url).query(&[("phone", digits)]));
        let reply = self.http.send(&what, rb).await?;
        let leads: Vec<Value> = self.http.json(&what, &reply)?;
        let recency = |l: &Value| {
            ["ModifiedOn", "LastModifiedOn", "CreatedOn"]
                .iter()
                .find_map(|k| l.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .unwrap_or_default()
        };
        let best = leads
            .iter()
            .filter(|l| l.get("ProspectID").and_then(|v| v.as_str()).is_some())
            // LeadSquared's "yyyy-MM-dd HH:mm:ss" sorts as text; max_by keeps the last of
            // equals, min_by_key on Reverse keeps the first (the API's own order).
            .min_by_key(|l| std::cmp::Reverse(recency(l)));
        match best.and_then(|l| l["ProspectID"].as_str()) {
            Some(id) => Ok(CrmLeadRef {
                crm_id: id.to_string(),
                created: false,
            }),
            None => Err(self.http.permanent(format!(
                "{what}: LeadSquared reported a duplicate but no lead has phone {digits}; the duplicate is on another unique field and needs a person to merge it"
            ))),
        }
    }
}

/// `{"Status":"Error","ExceptionType":…}` of a reply body, if it is one.
fn exception(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some((
        v.get("ExceptionType")?.as_str()?.to_string(),
        v.get("ExceptionMessage")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_string(),
    ))
}

#[async_trait]
impl CrmAdapter for LeadSquared {
    fn name(&self) -> &str {
        "leadsquared"
    }

    async fn upsert_lead(&self, lead: &LeadUpsert) -> Result<CrmLeadRef, ProviderError> {
        let digits: String = lead.phone.chars().filter(char::is_ascii_digit).collect();
        // The notify stage keys withheld callers' leads by customer ("customer:12"):
        // LeadSquared matches by phone, so such a lead cannot be upserted idempotently.
        if digits.len() < 5 || lead.phone.contains(':') {
            return Err(self.http.permanent(format!(
                "lead key {:?} of business {} is not a phone number; LeadSquared leads are matched by phone, so this lead stays in the built-in table only",
                lead.phone, lead.business_id
            )));
        }
        let url = format!(
            "{}/v2/LeadManagement.svc/Lead.CreateOrUpdate",
            self.base_url
        );
        let what = format!(
            "POST {url} (phone {}, business {})",
            lead.phone, lead.business_id
        );
        let mut attrs = Vec::new();
        if let Some(f) = lead.first_name.as_deref().filter(|s| !s.is_empty()) {
            attrs.push(json!({"Attribute": "FirstName", "Value": f}));
        }
        if let Some(l) = lead.last_name.as_deref().filter(|s| !s.is_empty()) {
            attrs.push(json!({"Attribute": "LastName", "Value": l}));
        }
        attrs.push(json!({"Attribute": "Phone", "Value": lead.phone}));
        attrs.push(json!({"Attribute": "Source", "Value": lead.source}));
        attrs.push(json!({"Attribute": "SearchBy", "Value": "Phone"}));
        let rb = self.authed(
            self.http
                .client
                .post(&url)
                .query(&[("postUpdatedLead", "false")])
                .json(&attrs),
        );
        let reply = self.http.send_raw(&what, rb).await?;
        if reply.status == StatusCode::INTERNAL_SERVER_ERROR {
            if let Some((kind, message)) = exception(&reply.body) {
                if kind == "MXDuplicateEntryException" {
                    return self.lookup(&digits, &format!("{kind}: {message}")).await;
                }
            }
        }
        if !reply.status.is_success() {
            return Err(self.http.status_error(&what, &reply));
        }
        let v: Value = self.http.json(&what, &reply)?;
        if v["Status"].as_str() != Some("Success") {
            // An error reported with HTTP 200.
            return Err(self.http.permanent(format!(
                "{what}: Status {}: {}",
                v["Status"],
                crate::pipeline::providers::http::provider_message(&reply.body)
            )));
        }
        let id = v["Message"]["Id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.http.malformed(
                    format!("{what}: Status Success without Message.Id"),
                    &reply.text(),
                )
            })?;
        // Not every LeadSquared version says which happened; without `IsCreated` the lead
        // is reported as updated (the conservative reading for a trace).
        let created = v["Message"]["IsCreated"]
            .as_bool()
            .or_else(|| v["Message"]["IsUpdated"].as_bool().map(|u| !u))
            .unwrap_or(false);
        Ok(CrmLeadRef {
            crm_id: id.to_string(),
            created,
        })
    }

    async fn leads_modified_since(
        &self,
        since: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<Vec<CrmLead>, ProviderError> {
        let url = format!("{}/v2/LeadManagement.svc/Leads.Get", self.base_url);
        let since = since.unwrap_or("1970-01-01 00:00:00");
        let what = format!("POST {url} (ModifiedOn >= {since:?}, page {page})");
        let body = json!({
            "Parameter": {"LookupName": "ModifiedOn", "LookupValue": since, "SqlOperator": ">="},
            "Columns": {"Include_CSV": "ProspectID,FirstName,LastName,Phone,Mobile,ProspectStage,ModifiedOn"},
            // Oldest first, so the watermark only ever moves forward page by page.
            "Sorting": {"ColumnName": "ModifiedOn", "Direction": "0"},
            "Paging": {"PageIndex": page, "PageSize": page_size},
        });
        let rb = self.authed(self.http.client.post(&url).json(&body));
        let reply = self.http.send(&what, rb).await?;
        let rows: Vec<Value> = self.http.json(&what, &reply)?;
        let text = |v: &Value, k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        rows.iter()
            .map(|r| {
                let crm_id = text(r, "ProspectID").ok_or_else(|| {
                    self.http
                        .malformed(format!("{what}: a lead without ProspectID"), &r.to_string())
                })?;
                Ok(CrmLead {
                    phone: text(r, "Phone").or_else(|| text(r, "Mobile")),
                    first_name: text(r, "FirstName"),
                    last_name: text(r, "LastName"),
                    stage: text(r, "ProspectStage"),
                    modified_on: text(r, "ModifiedOn").unwrap_or_default(),
                    crm_id,
                })
            })
            .collect()
    }
}
