//! Review-queue actions: link to a candidate, create a customer from the call, merge a
//! temporary customer, defer. Linking updates call, customer and lead in one transaction
//! and re-runs notify for the call. Two operators on one call: the first wins, the second
//! gets a conflict that says so.

use super::{Action, Ops, OpsError, Result};
use crate::domain::stage::{CallState, Position, Stage};
use crate::queue::Job;
use crate::store::audit::NewAudit;
use crate::store::calls::Move;
use crate::store::Call;
use serde::Serialize;
use sqlx::AnyConnection;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReviewOutcome {
    pub dry_run: bool,
    pub call_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub did: String,
}

fn db(e: sqlx::Error, what: String) -> OpsError {
    OpsError::from(crate::store::StoreError::Db {
        context: what,
        source: e,
    })
}

impl Ops {
    async fn review_call(&self, call_id: i64) -> Result<Call> {
        let call = self.store.call(call_id).await?;
        if call.position() != Position::new(Stage::Link, CallState::Review) {
            return Err(OpsError::Conflict(format!(
                "call {call_id} is not in review any more (it is at {}): someone else handled it",
                call.position()
            )));
        }
        Ok(call)
    }

    pub async fn review_link(
        &self,
        call_id: i64,
        customer_id: i64,
        dry_run: bool,
    ) -> Result<ReviewOutcome> {
        self.permit(Action::ReviewLink).await?;
        let call = self.review_call(call_id).await?;
        let customer = self.store.customer(customer_id).await?;
        if customer.business_id != call.business_id {
            return Err(OpsError::Invalid(format!(
                "customer {customer_id} belongs to business {}, call {call_id} to business {}",
                customer.business_id, call.business_id
            )));
        }
        let did = format!(
            "link call {call_id} to customer #{customer_id} ({})",
            customer.name.as_deref().unwrap_or("unnamed")
        );
        if dry_run {
            return Ok(ReviewOutcome {
                dry_run,
                call_id: Some(call_id),
                customer_id: Some(customer_id),
                did,
            });
        }
        let mut tx = self.store.begin_write().await?;
        self.link_in(&mut tx, &call, customer_id, Action::ReviewLink, &did)
            .await?;
        self.enqueue_notify(&mut tx, &call).await?;
        tx.commit()
            .await
            .map_err(|e| db(e, format!("committing link of call {call_id}")))?;
        self.jobs_committed().await;
        Ok(ReviewOutcome {
            dry_run,
            call_id: Some(call_id),
            customer_id: Some(customer_id),
            did,
        })
    }

    pub async fn review_create_customer(
        &self,
        call_id: i64,
        name: Option<&str>,
        dry_run: bool,
    ) -> Result<ReviewOutcome> {
        self.permit(Action::ReviewCreateCustomer).await?;
        let call = self.review_call(call_id).await?;
        let name = name.map(str::to_string).or(call.extracted_name.clone());
        let phone = (call.number_status.as_deref() == Some("valid"))
            .then(|| call.from_e164.clone())
            .flatten();
        let did = format!(
            "create customer '{}' ({}) from call {call_id} and link it",
            name.as_deref().unwrap_or("unnamed"),
            phone.as_deref().unwrap_or("no phone")
        );
        if dry_run {
            return Ok(ReviewOutcome {
                dry_run,
                call_id: Some(call_id),
                customer_id: None,
                did,
            });
        }
        let now = crate::now_ms();
        let mut tx = self.store.begin_write().await?;
        // (business, phone) is unique for live customers: a phone someone already holds
        // (created by a concurrent call meanwhile) links to that customer instead.
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customers (business_id, name, name_normalized, phone, is_temporary, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,0,$5,$5) \
             ON CONFLICT (business_id, phone) WHERE phone IS NOT NULL AND merged_into IS NULL DO NOTHING RETURNING id",
        )
        .bind(call.business_id)
        .bind(name.as_deref())
        .bind(name.as_deref().map(crate::domain::names::normalize_name))
        .bind(phone.as_deref())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db(e, format!("creating a customer from call {call_id}")))?;
        let id: i64 = match created {
            Some(id) => id,
            None => sqlx::query_scalar(
                "SELECT id FROM customers WHERE business_id = $1 AND phone = $2 AND merged_into IS NULL",
            )
            .bind(call.business_id)
            .bind(phone.as_deref())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db(e, format!("reading the customer holding the phone of call {call_id}")))?,
        };
        self.link_in(&mut tx, &call, id, Action::ReviewCreateCustomer, &did)
            .await?;
        self.enqueue_notify(&mut tx, &call).await?;
        tx.commit()
            .await
            .map_err(|e| db(e, "committing create-customer".into()))?;
        self.jobs_committed().await;
        Ok(ReviewOutcome {
            dry_run,
            call_id: Some(call_id),
            customer_id: Some(id),
            did,
        })
    }

    /// Move a temporary customer's calls and leads to a real customer and mark it merged.
    pub async fn review_merge(
        &self,
        temporary_id: i64,
        into_id: i64,
        dry_run: bool,
    ) -> Result<ReviewOutcome> {
        self.permit(Action::ReviewMerge).await?;
        let temp = self.store.customer(temporary_id).await?;
        let into = self.store.customer(into_id).await?;
        if !temp.is_temporary {
            return Err(OpsError::Invalid(format!(
                "customer {temporary_id} is not temporary: only temporary customers are merged"
            )));
        }
        if temp.merged_into.is_some() {
            return Err(OpsError::Conflict(format!(
                "customer {temporary_id} was already merged into {:?}",
                temp.merged_into
            )));
        }
        if temp.business_id != into.business_id || temporary_id == into_id {
            return Err(OpsError::Invalid(format!("cannot merge customer {temporary_id} into {into_id}: different businesses or the same customer")));
        }
        let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE customer_id = $1")
            .bind(temporary_id)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| db(e, "counting calls to merge".into()))?;
        let did =
            format!("merge temporary customer #{temporary_id} into #{into_id} ({calls} calls)");
        if dry_run {
            return Ok(ReviewOutcome {
                dry_run,
                call_id: None,
                customer_id: Some(into_id),
                did,
            });
        }
        let now = crate::now_ms();
        let mut tx = self.store.begin_write().await?;
        let n = sqlx::query("UPDATE customers SET merged_into = $1, updated_at = $2 WHERE id = $3 AND merged_into IS NULL")
            .bind(into_id)
            .bind(now)
            .bind(temporary_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db(e, "marking the customer merged".into()))?
            .rows_affected();
        if n == 0 {
            return Err(OpsError::Conflict(format!(
                "customer {temporary_id} was merged by someone else just now"
            )));
        }
        for sql in [
            "UPDATE calls SET customer_id = $1, link_method = 'merge', updated_at = $2 WHERE customer_id = $3",
            "UPDATE leads SET customer_id = $1, updated_at = $2 WHERE customer_id = $3",
        ] {
            sqlx::query(sql)
                .bind(into_id)
                .bind(now)
                .bind(temporary_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db(e, format!("moving rows of customer {temporary_id}")))?;
        }
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: Action::ReviewMerge.name(),
                    target: format!("customer {temporary_id}"),
                    before: Some(format!("temporary, {calls} calls")),
                    after: Some(format!("merged into {into_id}")),
                    detail: None,
                },
            )
            .await?;
        tx.commit()
            .await
            .map_err(|e| db(e, "committing merge".into()))?;
        Ok(ReviewOutcome {
            dry_run,
            call_id: None,
            customer_id: Some(into_id),
            did,
        })
    }

    pub async fn review_defer(
        &self,
        call_id: i64,
        reason: &str,
        minutes: i64,
        dry_run: bool,
    ) -> Result<ReviewOutcome> {
        self.permit(Action::ReviewDefer).await?;
        if reason.trim().is_empty() {
            return Err(OpsError::Invalid(
                "a deferral needs a reason (what are you waiting for?)".into(),
            ));
        }
        let call = self.review_call(call_id).await?;
        let did = format!("defer call {call_id} for {minutes} min: {reason}");
        if dry_run {
            return Ok(ReviewOutcome {
                dry_run,
                call_id: Some(call_id),
                customer_id: None,
                did,
            });
        }
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "UPDATE calls SET review_deferred_until = $1, review_deferred_reason = $2, \
             review_deferred_by = $3 WHERE id = $4",
        )
        .bind(crate::now_ms() + minutes * 60_000)
        .bind(reason.trim())
        .bind(&self.actor.name)
        .bind(call_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db(e, format!("deferring call {call_id}")))?;
        self.store
            .move_call_in(
                &mut tx,
                call_id,
                &Move {
                    to: call.position(),
                    expect: Some(call.position()),
                    kind: Action::ReviewDefer.name(),
                    reason: format!("{did} — by {} ({})", self.actor.name, self.actor.role),
                    error: None,
                    actor: &self.actor.name,
                },
            )
            .await?;
        self.audit_in(
            &mut tx,
            Action::ReviewDefer,
            format!("call {call_id}"),
            "review",
            &did,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| db(e, "committing defer".into()))?;
        Ok(ReviewOutcome {
            dry_run,
            call_id: Some(call_id),
            customer_id: None,
            did,
        })
    }

    /// Link inside a transaction: call link fields, customer's missing phone/name, the
    /// call's lead, the move to notify (with its trace row) and the audit row.
    async fn link_in(
        &self,
        tx: &mut AnyConnection,
        call: &Call,
        customer_id: i64,
        action: Action,
        did: &str,
    ) -> Result<()> {
        let now = crate::now_ms();
        self.store
            .move_call_in(
                tx,
                call.id,
                &Move {
                    to: Position::new(Stage::Notify, CallState::Pending),
                    expect: Some(Position::new(Stage::Link, CallState::Review)),
                    kind: action.name(),
                    reason: format!("{did} — by {} ({})", self.actor.name, self.actor.role),
                    error: None,
                    actor: &self.actor.name,
                },
            )
            .await?;
        sqlx::query(
            "UPDATE calls SET customer_id = $1, link_status = 'linked', link_method = 'manual', link_confidence = 1.0, \
             review_deferred_until = NULL, updated_at = $2 WHERE id = $3",
        )
        .bind(customer_id)
        .bind(now)
        .bind(call.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db(e, format!("linking call {}", call.id)))?;
        let phone = (call.number_status.as_deref() == Some("valid"))
            .then(|| call.from_e164.clone())
            .flatten();
        sqlx::query("UPDATE customers SET phone = COALESCE(phone, $1), name = COALESCE(name, $2), updated_at = $3 WHERE id = $4")
            .bind(phone.as_deref())
            .bind(call.extracted_name.as_deref())
            .bind(now)
            .bind(customer_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db(e, format!("updating customer {customer_id}")))?;
        if let Some(lead_id) = call.lead_id {
            sqlx::query("UPDATE leads SET customer_id = $1, updated_at = $2 WHERE id = $3")
                .bind(customer_id)
                .bind(now)
                .bind(lead_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db(e, format!("updating lead {lead_id}")))?;
        }
        self.audit_in(tx, action, format!("call {}", call.id), "link/review", did)
            .await
    }

    async fn audit_in(
        &self,
        tx: &mut AnyConnection,
        action: Action,
        target: String,
        before: &str,
        after: &str,
    ) -> Result<()> {
        self.store
            .append_audit(
                &mut *tx,
                &NewAudit {
                    actor: &self.actor.name,
                    role: self.actor.role.as_str(),
                    action: action.name(),
                    target,
                    before: Some(before.into()),
                    after: Some(after.into()),
                    detail: None,
                },
            )
            .await?;
        Ok(())
    }

    /// The notify job of a linked call, written in the link's own transaction
    /// (transactional outbox): a crash after the commit cannot lose it.
    async fn enqueue_notify(&self, tx: &mut AnyConnection, call: &Call) -> Result<()> {
        let job = Job::new(
            call.business_id,
            Stage::Notify,
            Some(call.id),
            serde_json::json!({ "call_id": call.id, "linked_by": self.actor.name }),
        );
        crate::queue::outbox::enqueue_in(tx, self.broker.kind(), &[job]).await?;
        Ok(())
    }
}

impl Ops {
    /// Undo a link (manual or automatic): the call leaves its customer, its lead no longer
    /// points at that customer, and it goes back to the review queue with its candidates,
    /// all in one transaction with its trace row and audit row. A call a worker is running
    /// right now is refused (the worker's move would race the unlink).
    pub async fn review_unlink(
        &self,
        call_id: i64,
        reason: &str,
        dry_run: bool,
    ) -> Result<ReviewOutcome> {
        self.authorize(Action::ReviewUnlink)?;
        let call = self.store.call(call_id).await?;
        let Some(customer_id) = call.customer_id else {
            return Err(OpsError::Invalid(format!(
                "call {call_id} is not linked to a customer (it is at {}): nothing to unlink",
                call.position()
            )));
        };
        if call.stage != Stage::Notify || call.state == CallState::Running {
            return Err(OpsError::Conflict(format!(
                "call {call_id} is at {}: only a linked call waiting for, failed at or done with \
                 notify can be unlinked; wait for the running stage to finish and try again",
                call.position()
            )));
        }
        let reason = reason.trim();
        let did = format!(
            "unlink call {call_id} from customer #{customer_id}{}; back to review",
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        );
        if dry_run {
            return Ok(ReviewOutcome {
                dry_run,
                call_id: Some(call_id),
                customer_id: Some(customer_id),
                did,
            });
        }
        let mut tx = self.store.begin_write().await?;
        self.store
            .move_call_in(
                &mut tx,
                call_id,
                &Move {
                    to: Position::new(Stage::Link, CallState::Review),
                    expect: Some(call.position()),
                    kind: Action::ReviewUnlink.name(),
                    reason: format!("{did} — by {} ({})", self.actor.name, self.actor.role),
                    error: None,
                    actor: &self.actor.name,
                },
            )
            .await?;
        sqlx::query(
            "UPDATE calls SET customer_id = NULL, link_status = 'review', link_method = NULL, \
             link_confidence = NULL, review_reason = $1, review_deferred_until = NULL, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(format!(
            "unlinked from customer #{customer_id} by {}{}",
            self.actor.name,
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        ))
        .bind(crate::now_ms())
        .bind(call_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db(e, format!("unlinking call {call_id}")))?;
        if let Some(lead_id) = call.lead_id {
            sqlx::query("UPDATE leads SET customer_id = NULL, updated_at = $1 WHERE id = $2 AND customer_id = $3")
                .bind(crate::now_ms())
                .bind(lead_id)
                .bind(customer_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db(e, format!("detaching lead {lead_id} from customer {customer_id}")))?;
        }
        self.audit_in(
            &mut tx,
            Action::ReviewUnlink,
            format!("call {call_id}"),
            &format!("linked to customer #{customer_id}"),
            &did,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| db(e, format!("committing unlink of call {call_id}")))?;
        Ok(ReviewOutcome {
            dry_run,
            call_id: Some(call_id),
            customer_id: Some(customer_id),
            did,
        })
    }
}
