//! Provider clients that time each request into `callops_provider_request_duration_seconds`
//! (by business, kind, provider and result). `Providers::{stt,llm,crm}_for` hand these out,
//! so every stage's provider call is measured without the stages knowing.

use super::crm::{CrmAdapter, CrmLead, CrmLeadRef, LeadUpsert};
use super::llm::{LlmOutput, LlmProvider, LlmRequest};
use super::stt::{SttProvider, SttRequest};
use super::{ProviderError, Transcript};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

fn result_label<T>(r: &Result<T, ProviderError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ProviderError::Transient { .. }) => "transient",
        Err(ProviderError::Permanent { .. }) => "permanent",
        Err(ProviderError::Malformed { .. }) => "malformed",
    }
}

pub struct Timed<P: ?Sized> {
    inner: Arc<P>,
    business_id: i64,
}

impl<P: ?Sized> Timed<P> {
    /// Record one request of `kind` ("stt", "llm", "crm") to `provider` that began at `t`.
    fn observe<T>(&self, kind: &str, provider: &str, t: Instant, r: &Result<T, ProviderError>) {
        crate::metrics::provider_request(
            self.business_id,
            kind,
            provider,
            result_label(r),
            t.elapsed(),
        );
    }
}

pub fn stt(inner: Arc<dyn SttProvider>, business_id: i64) -> Arc<dyn SttProvider> {
    Arc::new(Timed { inner, business_id })
}

pub fn llm(inner: Arc<dyn LlmProvider>, business_id: i64) -> Arc<dyn LlmProvider> {
    Arc::new(Timed { inner, business_id })
}

pub fn crm(inner: Arc<dyn CrmAdapter>, business_id: i64) -> Arc<dyn CrmAdapter> {
    Arc::new(Timed { inner, business_id })
}

#[async_trait]
impl SttProvider for Timed<dyn SttProvider> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError> {
        let t = Instant::now();
        let r = self.inner.transcribe(req).await;
        self.observe("stt", self.inner.name(), t, &r);
        r
    }
}

#[async_trait]
impl LlmProvider for Timed<dyn LlmProvider> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn complete_json(&self, req: &LlmRequest) -> Result<LlmOutput, ProviderError> {
        let t = Instant::now();
        let r = self.inner.complete_json(req).await;
        self.observe("llm", self.inner.name(), t, &r);
        r
    }
}

#[async_trait]
impl CrmAdapter for Timed<dyn CrmAdapter> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn upsert_lead(&self, lead: &LeadUpsert) -> Result<CrmLeadRef, ProviderError> {
        let t = Instant::now();
        let r = self.inner.upsert_lead(lead).await;
        self.observe("crm", self.inner.name(), t, &r);
        r
    }
    async fn leads_modified_since(
        &self,
        since: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<Vec<CrmLead>, ProviderError> {
        let t = Instant::now();
        let r = self
            .inner
            .leads_modified_since(since, page, page_size)
            .await;
        self.observe("crm", self.inner.name(), t, &r);
        r
    }
}
