//! The outbound dispatcher: claims due `outbound_calls` rows (any number of workers; a
//! claim is a lease fenced by a token), decides, dials, retries, polls.
//!
//! Crash safety: before asking the provider the row is committed as `dialing` with its
//! idempotency key; a worker killed after the provider answered but before committing
//! leaves a `dialing` row whose claim runs out. The next dispatcher first asks the provider
//! for the call made with that key (`find_call`) and otherwise asks again *with the same
//! key*, so the person is called once.

use super::status::{apply_status, Applied};
use crate::domain::hours::{parse_tz, BusinessHours};
use crate::domain::outbound::{
    dial_decision, match_form, DialDecision, DialFacts, MappingRule, MatchKind,
};
use crate::domain::phone::{normalize_phone, NumberStatus};
use crate::domain::stage::Stage;
use crate::pipeline::providers::voice::{build_voice, DialRequest, VoiceProvider};
use crate::pipeline::providers::ProviderError;
use crate::queue::DynBroker;
use crate::store::events::NewEvent;
use crate::store::outbound::{save_claimed_in, OutboundCall, OutboundSettings};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one pass did (tests and the CLI read it).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DispatchReport {
    pub claimed: u64,
    pub dialled: u64,
    pub recovered: u64,
    pub scheduled: u64,
    pub not_called: u64,
    pub retrying: u64,
    pub failed: u64,
    pub polled: u64,
    pub ended: u64,
    /// Rows another dispatcher took over meanwhile (nothing written).
    pub lost: u64,
}

type VoiceCache = HashMap<i64, (i64, Result<Arc<dyn VoiceProvider>, String>)>;

pub struct Dispatcher {
    pub store: Store,
    pub broker: DynBroker,
    /// One provider for every business (tests, the demo); otherwise each business's own.
    pub provider_override: Option<Arc<dyn VoiceProvider>>,
    /// How long a claim lasts (a dial or a poll must finish within it).
    pub lease: Duration,
    /// Between two status polls of a call in progress.
    pub poll_every: Duration,
    /// Dial attempts before a call is marked failed (429/5xx/timeouts).
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt, at most 5 minutes.
    pub base_delay: Duration,
    pub timeout: Duration,
    /// Rows per pass.
    pub batch: i64,
    voices: Mutex<VoiceCache>,
}

impl Dispatcher {
    pub fn new(store: Store, broker: DynBroker) -> Dispatcher {
        Dispatcher {
            store,
            broker,
            provider_override: None,
            // CALLOPS_OUTBOUND_LEASE_MS: how soon another worker resumes a dial whose
            // worker died (the crash tests shorten it).
            lease: std::env::var("CALLOPS_OUTBOUND_LEASE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(60)),
            poll_every: Duration::from_secs(5),
            max_attempts: 5,
            base_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
            batch: 20,
            voices: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_provider(mut self, p: Arc<dyn VoiceProvider>) -> Dispatcher {
        self.provider_override = Some(p);
        self
    }

    fn voice(&self, s: &OutboundSettings) -> Result<Arc<dyn VoiceProvider>, String> {
        if let Some(p) = &self.provider_override {
            return Ok(p.clone());
        }
        let mut cache = self.voices.lock().unwrap();
        if let Some((v, built)) = cache.get(&s.business_id) {
            if *v == s.updated_at {
                return built.clone();
            }
        }
        let built = build_voice(s, self.timeout);
        cache.insert(s.business_id, (s.updated_at, built.clone()));
        built
    }

    /// One pass at time `now` (epoch ms; tests drive it): claim due rows and work them.
    pub async fn dispatch_once(&self, now: i64) -> Result<DispatchReport, StoreError> {
        let token: i64 = rand::Rng::gen_range(&mut rand::thread_rng(), 1..i64::MAX);
        let until = now + self.lease.as_millis() as i64;
        let rows = self
            .store
            .claim_due_outbound(now, until, token, self.batch)
            .await?;
        let mut report = DispatchReport {
            claimed: rows.len() as u64,
            ..Default::default()
        };
        for row in rows {
            if let Err(e) = self.work(row, now, &mut report).await {
                // The claim runs out and the row is worked again: nothing is lost.
                tracing::warn!(error = %e, "outbound dispatch failed for one row");
            }
        }
        Ok(report)
    }

    async fn work(
        &self,
        row: OutboundCall,
        now: i64,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        match row.status.as_str() {
            "pending" | "scheduled" => self.decide_and_dial(row, now, report).await,
            "dialing" => self.recover(row, now, report).await,
            _ => self.poll(row, now, report).await,
        }
    }

    async fn decide_and_dial(
        &self,
        mut row: OutboundCall,
        now: i64,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let business = self.store.business(row.business_id).await?;
        let settings = self.store.outbound_settings(row.business_id).await?;
        let agents = self.store.voice_agents(Some(row.business_id)).await?;
        let rules: Vec<MappingRule> = self
            .store
            .lead_mappings(Some(row.business_id))
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(MappingRule {
                    id: m.id,
                    kind: MatchKind::parse(&m.match_kind).ok()?,
                    pattern: m.pattern,
                    voice_agent_id: m.voice_agent_id,
                })
            })
            .collect();
        let rule = row.form.as_deref().and_then(|f| match_form(&rules, f));
        let agent = rule.and_then(|r| agents.iter().find(|a| a.id == r.voice_agent_id));
        let phone = normalize_phone(row.to_number.as_deref(), &business.default_region);
        let phone_ok: Result<&str, &str> = match (&phone.status, &phone.e164) {
            (NumberStatus::Valid, Some(e)) => Ok(e.as_str()),
            _ => Err(phone.reason.as_str()),
        };
        let bad_config = |why: String| DialDecision::NotCalled {
            status: "skipped",
            reason: format!(
                "not called: {why} (fix it: callops outbound config {:?})",
                business.name
            ),
        };
        let hours = BusinessHours::parse(&settings.hours);
        let tz = parse_tz(&settings.time_zone);
        let (dialled, oldest) = self
            .store
            .outbound_dialled_since(row.business_id, now - 3_600_000)
            .await?;
        // A retry after a provider error counts its own first dial: not against itself.
        let dialled = dialled - row.dialed_at.is_some_and(|d| d >= now - 3_600_000) as i64;
        let now_dt = utc(now);
        let decision = match (&hours, &tz) {
            (Err(e), _) => bad_config(format!("business hours {:?}: {e}", settings.hours)),
            (_, Err(e)) => bad_config(e.clone()),
            (Ok(hours), Ok(tz)) => dial_decision(&DialFacts {
                auto_call: settings.auto_call,
                requested_by_operator: row.requested_by != "pipeline",
                form: row.form.as_deref(),
                rule,
                agent: agent.map(|a| (a.name.as_str(), a.active)),
                phone: phone_ok,
                hours,
                tz: *tz,
                tz_name: &settings.time_zone,
                now: now_dt,
                rate_per_hour: settings.rate_per_hour,
                dialled_last_hour: dialled,
                oldest_in_hour: oldest.map(utc),
            }),
        };
        match decision {
            DialDecision::NotCalled { status, reason } => {
                row.status = status.into();
                row.reason = reason;
                report.not_called += 1;
                self.save(&row, true, report).await.map(|_| ())
            }
            DialDecision::Later { at, reason } => {
                row.status = "scheduled".into();
                row.due_at = at.timestamp_millis();
                // One trace row per reason, not one per pass.
                let same = row.reason == reason;
                row.reason = reason;
                report.scheduled += 1;
                if same {
                    self.save_quiet(&row, report).await
                } else {
                    self.save(&row, true, report).await.map(|_| ())
                }
            }
            DialDecision::Dial { reason } => {
                let agent = agent.expect("dial decision has an agent");
                let voice = match self.voice(&settings) {
                    Ok(v) => v,
                    Err(e) => {
                        row.status = "skipped".into();
                        row.reason = format!(
                            "not called: voice provider of business {:?} misconfigured: {e}",
                            business.name
                        );
                        report.not_called += 1;
                        return self.save(&row, true, report).await.map(|_| ());
                    }
                };
                row.status = "dialing".into();
                row.voice_agent_id = Some(agent.id);
                row.provider = Some(voice.name().to_string());
                row.attempts += 1;
                row.dialed_at = Some(now);
                row.reason = reason;
                // Committed before the provider is asked: a crash from here on leaves a
                // `dialing` row that `recover` resolves with the same idempotency key.
                if !self.save(&row, false, report).await? {
                    return Ok(());
                }
                let req = self.request(&row, &settings, &business.name, &agent.provider_agent_id);
                // A provider error may still have placed the call: look before asking again.
                if row.attempts > 1 {
                    if let Ok(Some(found)) = voice.find_call(&req).await {
                        return self.after_dial(row, Ok(found), now, true, report).await;
                    }
                }
                let answer = voice.create_call(&req).await;
                self.after_dial(row, answer, now, false, report).await
            }
        }
    }

    fn request(
        &self,
        row: &OutboundCall,
        settings: &OutboundSettings,
        business: &str,
        agent_id: &str,
    ) -> DialRequest {
        let mut variables = BTreeMap::new();
        variables.insert(
            "lead_name".into(),
            row.lead_name.clone().unwrap_or_default(),
        );
        variables.insert("form".into(), row.form.clone().unwrap_or_default());
        variables.insert("lead_id".into(), row.lead_id.to_string());
        variables.insert("business".into(), business.to_string());
        variables.insert("name".into(), row.lead_name.clone().unwrap_or_default());
        DialRequest {
            idempotency_key: row.idempotency_key.clone(),
            from_number: settings.from_number.clone(),
            to_number: row.to_number.clone().unwrap_or_default(),
            agent_id: agent_id.to_string(),
            variables,
        }
    }

    /// A `dialing` row whose claim ran out: its worker died after (maybe) asking the
    /// provider. Find the call that key made; otherwise ask again with the same key.
    async fn recover(
        &self,
        row: OutboundCall,
        now: i64,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let business = self.store.business(row.business_id).await?;
        let settings = self.store.outbound_settings(row.business_id).await?;
        let agent = self
            .store
            .voice_agents(Some(row.business_id))
            .await?
            .into_iter()
            .find(|a| Some(a.id) == row.voice_agent_id);
        let voice = match self.voice(&settings) {
            Ok(v) => v,
            Err(e) => {
                let mut row = row;
                row.status = "failed".into();
                row.error = Some(e.clone());
                row.reason =
                    format!("dial interrupted and the voice provider is now misconfigured: {e}");
                report.failed += 1;
                return self.save(&row, true, report).await.map(|_| ());
            }
        };
        let agent_id = agent.map(|a| a.provider_agent_id).unwrap_or_default();
        let req = self.request(&row, &settings, &business.name, &agent_id);
        report.recovered += 1;
        match voice.find_call(&req).await {
            Ok(Some(found)) => self.after_dial(row, Ok(found), now, true, report).await,
            Ok(None) => {
                let answer = voice.create_call(&req).await;
                self.after_dial(row, answer, now, true, report).await
            }
            Err(e) => self.after_dial(row, Err(e), now, true, report).await,
        }
    }

    async fn after_dial(
        &self,
        mut row: OutboundCall,
        answer: Result<crate::pipeline::providers::voice::Dialled, ProviderError>,
        now: i64,
        recovered: bool,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        if crate::failpoint::enabled() {
            // The provider has answered; nothing of it is committed yet.
            crate::failpoint::hit("outbound.after_dial").await;
        }
        let provider = row.provider.clone().unwrap_or_default();
        match answer {
            Ok(d) => {
                row.status = "initiated".into();
                row.provider_call_id = Some(d.provider_call_id.clone());
                row.error = None;
                row.due_at = now + self.poll_every.as_millis() as i64;
                row.reason = format!(
                    "{provider} accepted call {} ({}){}",
                    d.provider_call_id,
                    d.status,
                    if recovered {
                        " — found again after an interrupted dial, not dialled twice"
                    } else {
                        ""
                    }
                );
                report.dialled += 1;
            }
            Err(e) if e.is_permanent() => {
                row.status = "failed".into();
                row.error = Some(e.to_string());
                row.reason = format!("not called: {provider} refused the call: {e}");
                report.failed += 1;
            }
            Err(e) if row.attempts >= self.max_attempts => {
                row.status = "failed".into();
                row.error = Some(e.to_string());
                row.reason = format!(
                    "not called: {provider} failed {} times, last: {e}",
                    row.attempts
                );
                report.failed += 1;
            }
            Err(e) => {
                let backoff = e.retry_after().unwrap_or_else(|| {
                    (self.base_delay * 2u32.saturating_pow(row.attempts.saturating_sub(1) as u32))
                        .min(Duration::from_secs(300))
                });
                // Back to pending: the next attempt asks with the same idempotency key.
                row.status = "pending".into();
                row.error = Some(e.to_string());
                row.due_at = now + backoff.as_millis() as i64;
                row.reason = format!(
                    "{provider} error on attempt {}, retrying in {} ms: {e}",
                    row.attempts,
                    backoff.as_millis()
                );
                report.retrying += 1;
            }
        }
        self.save(&row, true, report).await.map(|_| ())
    }

    async fn poll(
        &self,
        mut row: OutboundCall,
        now: i64,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let settings = self.store.outbound_settings(row.business_id).await?;
        let Some(id) = row.provider_call_id.clone() else {
            row.status = "failed".into();
            row.reason = "in progress without a provider call id: marked failed".into();
            return self.save(&row, true, report).await.map(|_| ());
        };
        let voice = match self.voice(&settings) {
            Ok(v) => v,
            Err(e) => {
                row.due_at = now + 60_000;
                row.error = Some(e);
                return self.save_quiet(&row, report).await;
            }
        };
        report.polled += 1;
        match voice.call_status(&id).await {
            Ok(r) => {
                // Release the claim first: apply_status is the one writer of outcomes
                // (polls and webhooks alike).
                row.due_at = now + self.poll_every.as_millis() as i64;
                self.save_quiet(&row, report).await?;
                match apply_status(&self.store, self.broker.as_ref(), row.business_id, &id, &r)
                    .await
                {
                    Ok(Applied::Ended { .. }) => report.ended += 1,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, outbound = row.id, "applying a polled status failed")
                    }
                }
                Ok(())
            }
            Err(e) => {
                row.error = Some(e.to_string());
                row.due_at = now + (self.poll_every.as_millis() as i64).max(5_000) * 2;
                self.save_quiet(&row, report).await
            }
        }
    }

    /// Save with a trace row on the lead's call. `release` ends the claim. `Ok(false)` =
    /// the claim was lost (nothing written).
    async fn save(
        &self,
        row: &OutboundCall,
        release: bool,
        report: &mut DispatchReport,
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        if !save_claimed_in(&mut tx, row, release).await? {
            report.lost += 1;
            return Ok(false);
        }
        if let Some(call_id) = row.origin_call_id {
            self.store
                .append_event(
                    &mut *tx,
                    &NewEvent {
                        call_id,
                        business_id: row.business_id,
                        stage: Stage::Notify,
                        kind: "outbound",
                        reason: format!("outbound #{} {}: {}", row.id, row.status, row.reason),
                        detail: row.error.clone(),
                        actor: "outbound",
                    },
                )
                .await?;
        }
        tx.commit().await.map_err(|e| StoreError::Db {
            context: format!("committing outbound call {}", row.id),
            source: e,
        })?;
        Ok(true)
    }

    /// Save without a trace row (reschedules, polls), releasing the claim.
    async fn save_quiet(
        &self,
        row: &OutboundCall,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        if !save_claimed_in(&mut tx, row, true).await? {
            report.lost += 1;
        }
        tx.commit().await.map_err(|e| StoreError::Db {
            context: format!("committing outbound call {}", row.id),
            source: e,
        })
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The worker's dispatcher loop: a pass every `every` (jittered) until shutdown.
pub async fn run_loop(
    dispatcher: Arc<Dispatcher>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match dispatcher.dispatch_once(crate::now_ms()).await {
            Ok(r) if r.claimed > 0 => tracing::debug!(?r, "outbound pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbound pass failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::queue::jitter(every)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
