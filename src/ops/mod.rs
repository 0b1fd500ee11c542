//! Operator actions shared by the console and the headless commands. Every action is
//! authorization → transaction → audit row → event row, and has a dry run that says what
//! it would do.

pub mod calls;
pub mod dlq;
pub mod outbound;
pub mod review;

use crate::queue::DynBroker;
use crate::store::{Dialect, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// On-call: read only.
    Viewer,
    /// Review queue, trigger QC, create leads.
    Support,
    /// Everything, including the DLQ and bulk actions.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "support" => Some(Role::Support),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator can ask for; each needs a minimum role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DlqRetry,
    DlqDiscard,
    ReviewLink,
    ReviewCreateCustomer,
    ReviewMerge,
    ReviewDefer,
    /// Undo a link: the call goes back to review (issue 12).
    ReviewUnlink,
    CallRetry,
    CallQc,
    CallLead,
    /// Call a lead now with its AI voice agent (issue 16).
    OutboundCallNow,
    /// Re-queue every unmapped lead of a business after a mapping was added (bulk).
    OutboundCallUnmapped,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::DlqRetry => "dlq.retry",
            Action::DlqDiscard => "dlq.discard",
            Action::ReviewLink => "review.link",
            Action::ReviewCreateCustomer => "review.create_customer",
            Action::ReviewMerge => "review.merge",
            Action::ReviewDefer => "review.defer",
            Action::ReviewUnlink => "review.unlink",
            Action::CallRetry => "call.retry",
            Action::CallQc => "call.qc",
            Action::CallLead => "call.lead",
            Action::OutboundCallNow => "outbound.call_now",
            Action::OutboundCallUnmapped => "outbound.call_unmapped",
        }
    }
    pub fn required_role(self) -> Role {
        match self {
            Action::DlqRetry
            | Action::DlqDiscard
            | Action::CallRetry
            | Action::OutboundCallUnmapped => Role::Admin,
            _ => Role::Support,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{action} needs the {needed} role; you ({actor}) are {have}")]
    Forbidden {
        action: &'static str,
        needed: Role,
        have: Role,
        actor: String,
    },
    #[error("read-only console: {0} is disabled (started with --readonly)")]
    ReadOnly(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => OpsError::Conflict(m),
            StoreError::IllegalTransition(t) => OpsError::Conflict(t.to_string()),
            // A database role that lacks the grant: say so plainly.
            StoreError::Db { context, source } if source.to_string().contains("permission denied") => {
                OpsError::Invalid(format!("the database refused this ({context}): {source}; your database role lacks the grant"))
            }
            other => OpsError::Store(other),
        }
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// Everything an action needs.
#[derive(Clone)]
pub struct Ops {
    pub store: Store,
    pub broker: DynBroker,
    pub actor: Actor,
    pub readonly: bool,
}

impl Ops {
    /// After a commit that wrote jobs (transactional outbox): wake local consumers and
    /// publish RabbitMQ outbox rows now. Best effort: a worker's relay publishes whatever
    /// this cannot, so an outage here delays the job, never loses it.
    pub async fn jobs_committed(&self) {
        self.broker.enqueued();
        let _ = crate::queue::outbox::flush(
            &self.store,
            &*self.broker,
            std::time::Duration::from_secs(5),
        )
        .await;
    }

    pub fn can(&self, action: Action) -> bool {
        !self.readonly && self.actor.role >= action.required_role()
    }

    /// `authorize`, and a refused action leaves an audit row saying who tried what and why
    /// it was refused (not in read-only sessions, which write nothing; best effort where the
    /// database itself refuses the viewer's insert).
    pub async fn permit(&self, action: Action) -> Result<()> {
        let refused = match self.authorize(action) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !self.readonly {
            let written = self
                .store
                .append_audit(
                    self.store.pool(),
                    &crate::store::audit::NewAudit {
                        actor: &self.actor.name,
                        role: self.actor.role.as_str(),
                        action: action.name(),
                        target: "-".into(),
                        before: None,
                        after: Some(format!("refused: {refused}")),
                        detail: None,
                    },
                )
                .await;
            if let Err(e) = written {
                tracing::warn!(action = action.name(), error = %e, "could not audit a refused action");
            }
        }
        Err(refused)
    }

    pub fn authorize(&self, action: Action) -> Result<()> {
        if self.readonly {
            return Err(OpsError::ReadOnly(action.name()));
        }
        if self.actor.role < action.required_role() {
            return Err(OpsError::Forbidden {
                action: action.name(),
                needed: action.required_role(),
                have: self.actor.role,
                actor: self.actor.name.clone(),
            });
        }
        Ok(())
    }
}

/// The role of this connection. On Postgres it is the database's answer (membership of
/// callops_admin / callops_support / callops_viewer; a superuser is admin); on SQLite it
/// comes from config and is advisory.
pub async fn detect_actor(store: &Store, configured_role: Role) -> Result<Actor> {
    match store.dialect() {
        Dialect::Sqlite => Ok(Actor {
            name: std::env::var("USER").unwrap_or_else(|_| "operator".into()),
            role: configured_role,
        }),
        Dialect::Postgres => {
            // The database's answer (store::roles): superuser and table owner are admin.
            let r = store.connection_role().await.map_err(|e| {
                OpsError::Invalid(format!(
                    "could not read this connection's database role: {e}"
                ))
            })?;
            let role = match r.role {
                Some(crate::store::roles::DbRole::Admin) => Role::Admin,
                Some(crate::store::roles::DbRole::Support) => Role::Support,
                _ => Role::Viewer,
            };
            Ok(Actor { name: r.user, role })
        }
    }
}
