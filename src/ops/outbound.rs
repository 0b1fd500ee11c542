//! Operator actions on outbound AI calls: call a lead now (`C` in the console, support and
//! admin), and call every unmapped lead of a business again after a mapping was added
//! (admin, with a scope count first, like the DLQ's bulk actions). Each change commits with
//! its audit row; the dispatcher does the dialling (with the same dedup and trace).

use super::{Action, Ops, OpsError, Result};
use crate::store::audit::NewAudit;
use crate::store::outbound::{insert_outbound_in, NewOutbound};
use crate::store::{Ctx, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutboundActionOutcome {
    pub dry_run: bool,
    /// Leads affected (or that would be).
    pub count: u64,
    /// What was (or would be) done, in words.
    pub did: String,
}

/// Statuses an operator may send back to the dialler: never a call that reached the
/// provider (that person was called: dedup).
const CALLABLE: &[&str] = &["unmapped", "skipped", "scheduled", "pending"];

impl Ops {
    /// Call lead `lead_id` of its business now: queue it (a lead that never had an outbound
    /// row, e.g. auto-call was off) or send its not-called row back to the dialler.
    pub async fn outbound_call_now(
        &self,
        lead_id: i64,
        dry_run: bool,
    ) -> Result<OutboundActionOutcome> {
        self.permit(Action::OutboundCallNow).await?;
        let lead: Option<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT business_id, phone, name FROM leads WHERE id = $1")
                .bind(lead_id)
                .fetch_optional(self.store.pool())
                .await
                .ctx(|| format!("reading lead {lead_id}"))?;
        let Some((business_id, phone, name)) = lead else {
            return Err(OpsError::Invalid(format!("lead {lead_id} does not exist")));
        };
        let existing = self.store.outbound_for_lead(business_id, lead_id).await?;
        if let Some(o) = &existing {
            let failed_before_provider = o.status == "failed" && o.provider_call_id.is_none();
            if !CALLABLE.contains(&o.status.as_str()) && !failed_before_provider {
                return Err(OpsError::Conflict(
                    crate::pipeline::outbound::already_called(o),
                ));
            }
        }
        let did = match &existing {
            Some(o) => format!(
                "call lead #{lead_id} now (outbound #{} was {}: {})",
                o.id, o.status, o.reason
            ),
            None => format!("call lead #{lead_id} now ({phone})"),
        };
        if dry_run {
            return Ok(OutboundActionOutcome {
                dry_run,
                count: 1,
                did,
            });
        }
        let now = crate::now_ms();
        let mut tx = self.store.begin_write().await?;
        match &existing {
            Some(o) => {
                // A fresh idempotency key only when the last try never reached the provider
                // with a call: the provider must not answer with an old refusal.
                let r = sqlx::query(
                    "UPDATE outbound_calls SET status = 'pending', due_at = $1, claimed_until = 0, attempts = 0, \
                     requested_by = $2, reason = $3, error = NULL, updated_at = $1, \
                     idempotency_key = CASE WHEN status = 'failed' THEN idempotency_key || '-r' || CAST($1 AS TEXT) ELSE idempotency_key END \
                     WHERE id = $4 AND status = $5",
                )
                .bind(now)
                .bind(&self.actor.name)
                .bind(format!("call now requested by {}", self.actor.name))
                .bind(o.id)
                .bind(&o.status)
                .execute(&mut *tx)
                .await
                .ctx(|| format!("re-queueing outbound call {}", o.id))?;
                if r.rows_affected() != 1 {
                    return Err(OpsError::Conflict(format!(
                        "outbound call {} changed meanwhile (it was {}): look again",
                        o.id, o.status
                    )));
                }
            }
            None => {
                let origin = self.store.lead_origin_call(lead_id).await?;
                let form: Option<String> = match origin {
                    Some(c) => self.store.call(c).await.ok().and_then(|c| c.campaign),
                    None => None,
                };
                insert_outbound_in(
                    &mut tx,
                    &NewOutbound {
                        business_id,
                        lead_id,
                        origin_call_id: origin,
                        form,
                        to_number: Some(phone),
                        lead_name: name,
                        requested_by: self.actor.name.clone(),
                        due_at: now,
                    },
                )
                .await?
                .ok_or_else(|| {
                    StoreError::Conflict(format!("lead {lead_id} was queued meanwhile"))
                })?;
            }
        }
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: Action::OutboundCallNow.name(),
                    target: format!("lead {lead_id}"),
                    before: existing.as_ref().map(|o| o.status.clone()),
                    after: Some("pending".into()),
                    detail: Some(did.clone()),
                },
            )
            .await?;
        tx.commit()
            .await
            .ctx(|| format!("committing call-now of lead {lead_id}"))?;
        Ok(OutboundActionOutcome {
            dry_run,
            count: 1,
            did,
        })
    }

    /// Send every unmapped lead of `business_id` back to the dialler (after a mapping was
    /// added). `dry_run` gives the scope count the confirmation shows.
    pub async fn outbound_call_unmapped(
        &self,
        business_id: i64,
        dry_run: bool,
    ) -> Result<OutboundActionOutcome> {
        self.permit(Action::OutboundCallUnmapped).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbound_calls WHERE business_id = $1 AND status = 'unmapped'",
        )
        .bind(business_id)
        .fetch_one(self.store.pool())
        .await
        .ctx(|| format!("counting unmapped leads of business {business_id}"))?;
        let did =
            format!("call {n} unmapped leads of business {business_id} with the current mappings");
        if dry_run || n == 0 {
            return Ok(OutboundActionOutcome {
                dry_run,
                count: n as u64,
                did,
            });
        }
        let now = crate::now_ms();
        let mut tx = self.store.begin_write().await?;
        let r = sqlx::query(
            "UPDATE outbound_calls SET status = 'pending', due_at = $1, claimed_until = 0, requested_by = $2, \
             reason = $3, updated_at = $1 WHERE business_id = $4 AND status = 'unmapped'",
        )
        .bind(now)
        .bind(&self.actor.name)
        .bind(format!("re-queued by {} after a mapping change", self.actor.name))
        .bind(business_id)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("re-queueing unmapped leads of business {business_id}"))?;
        let count = r.rows_affected();
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: Action::OutboundCallUnmapped.name(),
                    target: format!("business {business_id}"),
                    before: Some(format!("{n} unmapped")),
                    after: Some(format!("{count} pending")),
                    detail: None,
                },
            )
            .await?;
        tx.commit()
            .await
            .ctx(|| "committing the re-queue of unmapped leads".into())?;
        Ok(OutboundActionOutcome {
            dry_run,
            count,
            did: format!("called {count} unmapped leads of business {business_id} again"),
        })
    }
}
