//! Ingestion: JSONL call records, customer/lead imports (JSONL or CSV). Every record is
//! validated first; a bad one is reported with its line and reason and nothing of it is
//! written; a duplicate is a no-op.

use crate::domain::stage::Stage;
use crate::pipeline::providers::{Segment, Transcript};
use crate::queue::{Broker, Job};
use crate::store::customers::NewCustomer;
use crate::store::{NewCall, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub mod stream;
pub mod validate;

/// One call record (a JSONL line). Either `audio_url` or `transcript` is required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    pub business: String,
    pub external_id: String,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// RFC 3339 or epoch milliseconds.
    #[serde(default)]
    pub started_at: Option<serde_json::Value>,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub audio_url: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub campaign: Option<String>,
    #[serde(default)]
    pub lead_id: Option<String>,
    /// Who delivered the record (e.g. "retell", "telnyx"); shown in the trace.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub transcript: Option<RecordTranscript>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordTranscript {
    pub segments: Vec<Segment>,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub ingested: u64,
    pub duplicates: u64,
    /// Duplicates whose sync job was published again because the call never left sync/pending.
    pub republished: u64,
    pub rejected: Vec<Rejected>,
    pub new_businesses: Vec<String>,
    /// Rejected lines in all; `rejected` keeps the first ones only (a stream of bad input
    /// must not grow memory), each is also reported as it is met (`IngestEvent::Rejected`).
    pub rejected_count: u64,
}

impl IngestReport {
    /// Add the call counts of a committed batch.
    fn add_counts(&mut self, batch: &IngestReport) {
        self.ingested += batch.ingested;
        self.duplicates += batch.duplicates;
        self.republished += batch.republished;
    }
}

pub fn parse_started_at(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("started_at {n} is not an integer of epoch milliseconds")),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("started_at {s:?} is not RFC 3339 ({e})")),
        other => Err(format!(
            "started_at must be RFC 3339 text or epoch ms, found {other}"
        )),
    }
}

/// Parse and validate one line with the default limits. Ok(None) for blank lines.
pub fn parse_record(line: &str) -> Result<Option<CallRecord>, String> {
    parse_record_with(line, &validate::Limits::default())
}

/// Parse and validate one line. Ok(None) for blank lines. Errors never echo raw input.
pub fn parse_record_with(
    line: &str,
    limits: &validate::Limits,
) -> Result<Option<CallRecord>, String> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(None);
    }
    // serde would read a JSON array positionally into the record's fields.
    if !t.starts_with('{') {
        return Err("not a valid call record: expected one JSON object {…} per line".into());
    }
    let r: CallRecord = serde_json::from_str(t).map_err(|e| {
        format!(
            "not a valid call record: {}",
            validate::sanitize_message(&e.to_string())
        )
    })?;
    validate::check_record(&r, limits)?;
    if r.business.trim().is_empty() {
        return Err("business is empty".into());
    }
    if r.external_id.trim().is_empty() {
        return Err("external_id is empty".into());
    }
    if let Some(d) = r.direction.as_deref() {
        if !matches!(d, "inbound" | "outbound") {
            return Err(format!(
                "direction {:?} must be \"inbound\" or \"outbound\"",
                validate::shown(d)
            ));
        }
    }
    if let Some(d) = r.duration_s {
        if !d.is_finite() || d < 0.0 {
            return Err(format!("duration_s {d} must be a non-negative number"));
        }
    }
    if let Some(v) = &r.started_at {
        parse_started_at(v)?;
    }
    match (&r.audio_url, &r.transcript) {
        (None, None) => {
            return Err("needs audio_url (to transcribe) or transcript (with segments)".into())
        }
        (_, Some(t)) if t.segments.is_empty() => return Err("transcript has no segments".into()),
        (_, Some(t)) => {
            if let Some((i, s)) = t
                .segments
                .iter()
                .enumerate()
                .find(|(_, s)| !(s.start.is_finite() && s.end >= s.start))
            {
                return Err(format!(
                    "transcript segment {i} has end {} before start {}",
                    s.end, s.start
                ));
            }
        }
        (Some(u), None) if u.trim().is_empty() => return Err("audio_url is empty".into()),
        _ => {}
    }
    Ok(Some(r))
}

/// The transcript a record brought with it, from the stored raw record.
pub fn transcript_from_record(raw: &serde_json::Value) -> Option<Transcript> {
    let segs: Vec<Segment> =
        serde_json::from_value(raw.get("transcript")?.get("segments")?.clone()).ok()?;
    if segs.is_empty() {
        return None;
    }
    let text = segs
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Transcript {
        provider: "record".into(),
        language: raw["language"].as_str().map(str::to_string),
        text,
        segments: segs,
    })
}

/// What [`commit_call_in`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommittedCall {
    pub call_id: i64,
    /// The call is new (false: a call with this external id existed).
    pub created: bool,
    /// A sync job was written: call [`Broker::enqueued`] after the commit.
    pub enqueued: bool,
    /// The call existed without its sync job and got one now.
    pub republished: bool,
}

/// Write a validated record's call and its sync job on the caller's transaction
/// (transactional outbox): a crash or a broker outage can never leave a call saved with no
/// job. Shared by `ingest` and the webhooks of `callops serve`.
pub async fn commit_call_in(
    store: &Store,
    tx: &mut sqlx::AnyConnection,
    broker_kind: &str,
    business_id: i64,
    r: &CallRecord,
) -> anyhow::Result<CommittedCall> {
    let raw = serde_json::to_string(r)?;
    let new = NewCall {
        business_id,
        external_id: r.external_id.trim().to_string(),
        direction: r.direction.clone().unwrap_or_else(|| "inbound".into()),
        from_number: r.from.clone(),
        to_number: r.to.clone(),
        agent_name: r.agent.clone(),
        campaign: r.campaign.clone(),
        language: r.language.clone(),
        started_at: r.started_at.as_ref().and_then(|v| parse_started_at(v).ok()),
        duration_ms: (r.duration_s.unwrap_or(0.0) * 1000.0) as i64,
        audio_url: r.audio_url.clone(),
        raw,
    };
    let (call_id, created) = store.ingest_call_in(tx, &new).await?;
    let job = Job::new(
        business_id,
        Stage::Sync,
        Some(call_id),
        serde_json::json!({ "call_id": call_id }),
    );
    let mut enqueue = created;
    let mut republished = false;
    if !created {
        // Heal a call an earlier version saved without its job. On RabbitMQ the job may
        // be queued in the broker, which this cannot see: only calls stuck for a minute
        // are healed there (a duplicate would be skipped by the stage fence anyway).
        if let Some(since) = store.sync_pending_without_job_in(tx, call_id).await? {
            enqueue = broker_kind == "database" || crate::now_ms() - since > 60_000;
            republished = enqueue;
        }
    }
    if enqueue {
        crate::queue::outbox::enqueue_in(tx, broker_kind, std::slice::from_ref(&job)).await?;
    }
    Ok(CommittedCall {
        call_id,
        created,
        enqueued: enqueue,
        republished,
    })
}

/// Ingest validated records: insert calls, publish their sync jobs.
pub struct Ingestor<'a> {
    pub store: &'a Store,
    pub broker: &'a dyn Broker,
    businesses: HashMap<String, i64>,
    kinds: crate::store::businesses::ProviderKinds,
    /// Create businesses the records name (`ingest --create-businesses`); otherwise a
    /// record for an unknown business is refused.
    create_businesses: bool,
    limits: validate::Limits,
}

impl<'a> Ingestor<'a> {
    pub fn new(store: &'a Store, broker: &'a dyn Broker) -> Self {
        Ingestor {
            store,
            broker,
            businesses: HashMap::new(),
            kinds: Default::default(),
            create_businesses: false,
            limits: validate::Limits::default(),
        }
    }

    /// Create the businesses records name instead of refusing them.
    pub fn create_businesses(mut self, yes: bool) -> Self {
        self.create_businesses = yes;
        self
    }

    /// Size limits for `ingest_jsonl` (config `[ingest]`).
    pub fn with_limits(mut self, limits: validate::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Businesses this ingest creates get these provider kinds (config `[providers]`).
    pub fn with_provider_kinds(mut self, kinds: crate::store::businesses::ProviderKinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// The business's id; `Ok(None)` when it does not exist and this ingest may not
    /// create it.
    async fn business_id(
        &mut self,
        name: &str,
        report: &mut IngestReport,
    ) -> crate::store::Result<Option<i64>> {
        if let Some(id) = self.businesses.get(name) {
            return Ok(Some(*id));
        }
        let before = self
            .store
            .businesses()
            .await?
            .iter()
            .any(|b| b.name == name);
        if !before && !self.create_businesses {
            return Ok(None);
        }
        let b = self.store.ensure_business_with(name, &self.kinds).await?;
        if !before {
            crate::pipeline::ensure_default_agents(self.store, b.id).await?;
            report.new_businesses.push(name.to_string());
        }
        self.businesses.insert(name.to_string(), b.id);
        Ok(Some(b.id))
    }

    fn unknown_business(name: &str) -> String {
        format!(
            "business {:?} does not exist: add it with `callops business add NAME`, or ingest with --create-businesses",
            validate::shown(name)
        )
    }

    pub async fn ingest(
        &mut self,
        r: &CallRecord,
        report: &mut IngestReport,
    ) -> anyhow::Result<i64> {
        let Some(business_id) = self.business_id(r.business.trim(), report).await? else {
            anyhow::bail!("{}", Self::unknown_business(r.business.trim()));
        };
        // The call and its sync job commit together (transactional outbox): a crash or a
        // broker outage can no longer leave a call saved with no job.
        let mut tx = self.store.begin_write().await?;
        let mut counted = IngestReport::default();
        let (call_id, enqueued) = self
            .ingest_in(&mut tx, business_id, r, &mut counted)
            .await?;
        tx.commit()
            .await
            .map_err(|e| anyhow::anyhow!("committing call {:?}: {e}", r.external_id.trim()))?;
        if enqueued {
            self.broker.enqueued();
        }
        report.add_counts(&counted);
        Ok(call_id)
    }

    /// Write one call and (when it needs one) its sync job on the caller's transaction
    /// (`commit_call_in`, shared with the webhooks); counts go to `counted`, which the
    /// caller keeps only if the transaction commits. Returns the call id and whether a
    /// job was written.
    async fn ingest_in(
        &mut self,
        tx: &mut sqlx::AnyConnection,
        business_id: i64,
        r: &CallRecord,
        counted: &mut IngestReport,
    ) -> anyhow::Result<(i64, bool)> {
        let c = commit_call_in(self.store, tx, self.broker.kind(), business_id, r).await?;
        if c.republished {
            counted.republished += 1;
        }
        if c.created {
            counted.ingested += 1;
        } else {
            counted.duplicates += 1;
        }
        Ok((c.call_id, c.enqueued))
    }

    /// Ingest a JSONL text; bad lines are reported, good ones ingested (in batches, as
    /// [`Ingestor::ingest_stream`]).
    pub async fn ingest_jsonl(&mut self, text: &str) -> anyhow::Result<IngestReport> {
        let opts = stream::StreamOptions::for_limits(&self.limits);
        self.ingest_stream(text.as_bytes(), &opts, &mut |_| {})
            .await
    }
}

/// A customer or lead row to import, from JSONL or CSV.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ImportRow {
    pub business: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImportKind {
    Customers,
    Leads,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub rejected: Vec<Rejected>,
}

/// Rows of a JSONL or CSV file (CSV when the path ends in .csv), each with its line number.
pub fn read_import_rows(text: &str, csv_format: bool) -> Vec<(usize, Result<ImportRow, String>)> {
    if csv_format {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        rdr.deserialize::<ImportRow>()
            .enumerate()
            .map(|(i, r)| (i + 2, r.map_err(|e| format!("bad CSV row: {e}"))))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                (
                    i + 1,
                    serde_json::from_str::<ImportRow>(l)
                        .map_err(|e| format!("not a valid row: {e}")),
                )
            })
            .collect()
    }
}

pub async fn import(
    store: &Store,
    kind: ImportKind,
    text: &str,
    csv_format: bool,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    for (line, row) in read_import_rows(text, csv_format) {
        let row = match row {
            Ok(r) => r,
            Err(reason) => {
                report.rejected.push(Rejected { line, reason });
                continue;
            }
        };
        if row.business.trim().is_empty() {
            report.rejected.push(Rejected {
                line,
                reason: "business is empty".into(),
            });
            continue;
        }
        let text_ok = [
            ("business", Some(&row.business)),
            ("external_id", row.external_id.as_ref()),
            ("name", row.name.as_ref()),
            ("phone", row.phone.as_ref()),
            ("email", row.email.as_ref()),
            ("status", row.status.as_ref()),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .try_for_each(|(f, v)| validate::check_text(f, v, 512, false));
        if let Err(reason) = text_ok {
            report.rejected.push(Rejected { line, reason });
            continue;
        }
        // Like ingest: an unknown business is refused, not created on the fly.
        let Some(business) = store.business_by_name(row.business.trim()).await? else {
            report.rejected.push(Rejected {
                line,
                reason: format!(
                    "business {:?} does not exist: add it with `callops business add NAME` (and its --region)",
                    validate::shown(row.business.trim())
                ),
            });
            continue;
        };
        let phone =
            crate::domain::phone::normalize_phone(row.phone.as_deref(), &business.default_region);
        // A phone that was given but does not parse (with the business's region) is
        // reported by line, not dropped silently.
        if row.phone.as_deref().is_some_and(|p| !p.trim().is_empty()) && phone.e164.is_none() {
            report.rejected.push(Rejected {
                line,
                reason: format!(
                    "phone could not be parsed with region {} of business {:?}: {}; write it with its country code (+…) or set the business's region (callops business set NAME --region XX)",
                    business.default_region,
                    validate::shown(&business.name),
                    validate::sanitize_message(&phone.reason)
                ),
            });
            continue;
        }
        match kind {
            ImportKind::Customers => {
                if row.name.as_deref().unwrap_or("").trim().is_empty() && phone.e164.is_none() {
                    report.rejected.push(Rejected {
                        line,
                        reason: format!(
                            "customer needs a name or a valid phone ({})",
                            phone.reason
                        ),
                    });
                    continue;
                }
                let (_, created) = store
                    .upsert_customer(&NewCustomer {
                        business_id: business.id,
                        external_id: row.external_id.clone(),
                        name: row.name.clone(),
                        name_normalized: row
                            .name
                            .as_deref()
                            .map(crate::domain::names::normalize_name),
                        phone: phone.e164.clone(),
                        email: row.email.clone(),
                        is_temporary: false,
                    })
                    .await?;
                if created {
                    report.created += 1
                } else {
                    report.updated += 1
                }
            }
            ImportKind::Leads => {
                let Some(e164) = phone.e164.clone() else {
                    report.rejected.push(Rejected {
                        line,
                        reason: format!("lead needs a valid phone: {}", phone.reason),
                    });
                    continue;
                };
                let created = store
                    .import_lead(
                        business.id,
                        &e164,
                        row.name.as_deref(),
                        row.external_id.as_deref(),
                        row.status.as_deref().unwrap_or("new"),
                    )
                    .await?;
                if created {
                    report.created += 1
                } else {
                    report.updated += 1
                }
            }
        }
    }
    Ok(report)
}
