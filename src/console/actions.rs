//! The console's side of operator actions: what the `App` asks for (`OpRequest`), how the
//! event loop runs it through the ops layer in the background (`execute`), and what comes
//! back (`OpReply`). Authorization, transactions, audit and event rows are the ops layer's;
//! the console only hides what the role may not do and reports what happened.

use crate::domain::stage::Stage;
use crate::ops::dlq::Selection;
use crate::ops::{Action, Ops, Role};
use crate::store::{DeadJobFilter, DeadJobStatus};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum OpRequest {
    /// Count what each scope covers (a dry run), so the dialog can show the numbers.
    DlqPreview {
        retry: bool,
        scopes: Vec<(String, Selection)>,
    },
    Dlq {
        retry: bool,
        sel: Selection,
        what: String,
    },
    Link {
        call_id: i64,
        customer_id: i64,
    },
    NewCustomer {
        call_id: i64,
    },
    Merge {
        temporary: i64,
        into: i64,
    },
    /// Find customers of the call's business, to link the call to one of them.
    SearchCustomers {
        call_id: i64,
        business_id: i64,
        text: String,
    },
    Defer {
        call_id: i64,
        reason: String,
    },
    /// Undo a link: the call goes back to review.
    Unlink {
        call_id: i64,
        reason: String,
    },
    CallRetry(i64),
    /// Retry several stuck calls, one by one (each its own transaction and audit row).
    CallRetryMany {
        ids: Vec<i64>,
        what: String,
    },
    CallQc(i64),
    CallLead(i64),
    /// Call a lead now (outbound AI call).
    OutboundCallNow(i64),
    /// Count the unmapped leads of a business (a dry run), for the confirmation.
    OutboundUnmappedPreview {
        business_id: i64,
        business: String,
    },
    /// Call every unmapped lead of a business again.
    OutboundUnmapped {
        business_id: i64,
        business: String,
    },
}

impl OpRequest {
    pub fn action(&self) -> Action {
        match self {
            OpRequest::DlqPreview { retry: true, .. } | OpRequest::Dlq { retry: true, .. } => {
                Action::DlqRetry
            }
            OpRequest::DlqPreview { .. } | OpRequest::Dlq { .. } => Action::DlqDiscard,
            OpRequest::Link { .. } => Action::ReviewLink,
            OpRequest::NewCustomer { .. } => Action::ReviewCreateCustomer,
            OpRequest::Merge { .. } => Action::ReviewMerge,
            OpRequest::SearchCustomers { .. } => Action::ReviewLink,
            OpRequest::Defer { .. } => Action::ReviewDefer,
            OpRequest::Unlink { .. } => Action::ReviewUnlink,
            OpRequest::CallRetry(_) | OpRequest::CallRetryMany { .. } => Action::CallRetry,
            OpRequest::CallQc(_) => Action::CallQc,
            OpRequest::CallLead(_) => Action::CallLead,
            OpRequest::OutboundCallNow(_) => Action::OutboundCallNow,
            OpRequest::OutboundUnmappedPreview { .. } | OpRequest::OutboundUnmapped { .. } => {
                Action::OutboundCallUnmapped
            }
        }
    }

    /// For the "working…" line while it runs.
    pub fn label(&self) -> String {
        match self {
            OpRequest::DlqPreview { .. } => "counting dead jobs".into(),
            OpRequest::Dlq { retry, what, .. } => {
                format!("{} {what}", if *retry { "retrying" } else { "discarding" })
            }
            OpRequest::Link {
                call_id,
                customer_id,
            } => format!("linking call {call_id} to customer #{customer_id}"),
            OpRequest::NewCustomer { call_id } => {
                format!("creating a customer from call {call_id}")
            }
            OpRequest::Defer { call_id, .. } => format!("deferring call {call_id}"),
            OpRequest::Unlink { call_id, .. } => format!("unlinking call {call_id}"),
            OpRequest::SearchCustomers { text, .. } => format!("searching customers for {text:?}"),
            OpRequest::Merge { temporary, into } => {
                format!("merging temporary customer #{temporary} into #{into}")
            }
            OpRequest::CallRetry(id) => format!("retrying call {id}"),
            OpRequest::CallRetryMany { ids, what } => {
                format!("retrying {} stuck calls ({what})", ids.len())
            }
            OpRequest::CallQc(id) => format!("queueing QC for call {id}"),
            OpRequest::CallLead(id) => format!("creating the lead of call {id}"),
            OpRequest::OutboundCallNow(id) => format!("calling lead {id} now"),
            OpRequest::OutboundUnmappedPreview { business, .. } => {
                format!("counting the unmapped leads of {business}")
            }
            OpRequest::OutboundUnmapped { business, .. } => {
                format!("calling the unmapped leads of {business}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpReply {
    DlqPreview {
        retry: bool,
        /// (label, selection, rows it covers now)
        scopes: Vec<(String, Selection, i64)>,
    },
    /// Customers found for a review item: (call, [(customer id, label)]).
    Customers {
        call_id: i64,
        text: String,
        found: Vec<(i64, String)>,
    },
    /// How many unmapped leads a business has now, for the confirmation.
    OutboundUnmappedPreview {
        business_id: i64,
        business: String,
        count: u64,
    },
    Done(String),
    Failed(String),
}

/// Run one request through the ops layer.
pub async fn execute(ops: &Ops, req: OpRequest) -> OpReply {
    match run(ops, req).await {
        Ok(reply) => reply,
        Err(e) => OpReply::Failed(e.to_string()),
    }
}

async fn run(ops: &Ops, req: OpRequest) -> Result<OpReply, crate::ops::OpsError> {
    let did = match req {
        OpRequest::DlqPreview { retry, scopes } => {
            let mut out = Vec::with_capacity(scopes.len());
            for (label, sel) in scopes {
                let n = ops.dlq_count(&sel).await?;
                out.push((label, sel, n));
            }
            return Ok(OpReply::DlqPreview { retry, scopes: out });
        }
        OpRequest::Dlq { retry, sel, what } => {
            let o = if retry {
                ops.dlq_retry(&sel, false).await?
            } else {
                ops.dlq_discard(&sel, false).await?
            };
            let mut m = format!(
                "{} {} of {} dead jobs ({what})",
                if retry { "retried" } else { "discarded" },
                o.changed,
                o.matched
            );
            if !o.skipped_undecodable.is_empty() {
                m.push_str(&format!(
                    "; {} undecodable ones skipped (no job to publish): {:?}",
                    o.skipped_undecodable.len(),
                    o.skipped_undecodable
                ));
            }
            m
        }
        OpRequest::Link {
            call_id,
            customer_id,
        } => ops.review_link(call_id, customer_id, false).await?.did,
        OpRequest::NewCustomer { call_id } => {
            ops.review_create_customer(call_id, None, false).await?.did
        }
        OpRequest::Merge { temporary, into } => ops.review_merge(temporary, into, false).await?.did,
        OpRequest::SearchCustomers {
            call_id,
            business_id,
            text,
        } => {
            let found = ops
                .store
                .search_customers(business_id, &text, 20)
                .await?
                .into_iter()
                .map(|c| {
                    let label = format!(
                        "#{} {}  {}{}",
                        c.id,
                        c.name.as_deref().unwrap_or("(no name)"),
                        c.phone.as_deref().unwrap_or("no phone"),
                        if c.is_temporary { "  (temporary)" } else { "" }
                    );
                    (c.id, label)
                })
                .collect();
            return Ok(OpReply::Customers {
                call_id,
                text,
                found,
            });
        }
        OpRequest::Defer { call_id, reason } => {
            ops.review_defer(call_id, &reason, 60, false).await?.did
        }
        OpRequest::Unlink { call_id, reason } => {
            ops.review_unlink(call_id, &reason, false).await?.did
        }
        OpRequest::CallRetry(id) => ops.call_retry(id, false).await?.did,
        OpRequest::CallRetryMany { ids, what } => {
            let mut failed = vec![];
            for id in &ids {
                if let Err(e) = ops.call_retry(*id, false).await {
                    failed.push(format!("call {id}: {e}"));
                }
            }
            let mut m = format!(
                "retried {} of {} stuck calls ({what})",
                ids.len() - failed.len(),
                ids.len()
            );
            if !failed.is_empty() {
                m.push_str(&format!("; not retried: {}", failed.join("; ")));
                return Ok(OpReply::Failed(m));
            }
            m
        }
        OpRequest::CallQc(id) => ops.call_qc(id, false).await?.did,
        OpRequest::CallLead(id) => ops.call_lead(id, false).await?.did,
        OpRequest::OutboundCallNow(lead) => ops.outbound_call_now(lead, false).await?.did,
        OpRequest::OutboundUnmappedPreview {
            business_id,
            business,
        } => {
            let o = ops.outbound_call_unmapped(business_id, true).await?;
            return Ok(OpReply::OutboundUnmappedPreview {
                business_id,
                business,
                count: o.count,
            });
        }
        OpRequest::OutboundUnmapped { business_id, .. } => {
            ops.outbound_call_unmapped(business_id, false).await?.did
        }
    };
    Ok(OpReply::Done(did))
}

/// Whether `role` (and read-only mode) allows `action`; the refusal says why.
pub fn allowed(role: &str, readonly: bool, action: Action) -> Result<(), String> {
    if readonly {
        return Err(format!(
            "{}: this console is read-only (--readonly); nothing can be changed from it",
            action.name()
        ));
    }
    let have = Role::parse(role).unwrap_or(Role::Viewer);
    let needed = action.required_role();
    if have < needed {
        return Err(format!(
            "{} needs the {} role; this console is {}",
            action.name(),
            needed.as_str(),
            have.as_str()
        ));
    }
    Ok(())
}

/// The DLQ filter as a query over the whole `dead_jobs` table (not the page on screen), so
/// "everything matching" means everything. Words: `biz:NAME` (one business whose name
/// contains NAME), `stage:STAGE`, `call:ID`, `since:30m` (died in the last 30 minutes;
/// s/m/h/d); the rest must appear in the last error.
/// Without `history`, only rows still dead.
pub fn dlq_filter(
    text: &str,
    names: &HashMap<i64, String>,
    history: bool,
) -> Result<DeadJobFilter, String> {
    let mut f = DeadJobFilter {
        status: (!history).then_some(DeadJobStatus::Dead),
        with_history: history,
        ..Default::default()
    };
    let mut rest = vec![];
    for word in text.split_whitespace() {
        let (key, value) = word.split_once(':').unwrap_or(("", word));
        match key.to_ascii_lowercase().as_str() {
            "biz" | "business" => {
                let q = value.to_lowercase();
                let mut hits: Vec<(&i64, &String)> = names
                    .iter()
                    .filter(|(_, n)| n.to_lowercase().contains(&q))
                    .collect();
                hits.sort();
                match hits.as_slice() {
                    [(id, _)] => f.business_id = Some(**id),
                    [] => return Err(format!("biz:{value}: no business name contains {value:?}")),
                    many => {
                        return Err(format!(
                            "biz:{value}: {} businesses match ({}); be more specific",
                            many.len(),
                            many.iter()
                                .take(5)
                                .map(|(_, n)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                }
            }
            "stage" => {
                f.stage = Some(value.parse::<Stage>().map_err(|_| {
                    format!("stage:{value}: not a stage (sync, transcribe, analyze, link, notify)")
                })?)
            }
            "since" => {
                f.dead_since = Some(
                    crate::now_ms()
                        - parse_age(value).ok_or_else(|| {
                            format!("since:{value}: expected an age such as 30m, 2h or 1d")
                        })?,
                )
            }
            "call" => {
                f.call_id = Some(
                    value
                        .trim_start_matches('#')
                        .parse()
                        .map_err(|_| format!("call:{value}: expected a call id (a number)"))?,
                )
            }
            _ => rest.push(word),
        }
    }
    if !rest.is_empty() {
        f.error_contains = Some(rest.join(" "));
    }
    Ok(f)
}

/// "90s", "30m", "2h", "1d" → milliseconds.
fn parse_age(s: &str) -> Option<i64> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n * ms)
}

/// "biz:Acme stage:analyze timeout" for a dialog, or "no filter".
pub fn describe_filter(text: &str) -> String {
    if text.trim().is_empty() {
        "no filter".into()
    } else {
        format!("filter {:?}", crate::views::sanitize(text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_words_become_a_query() {
        let names: HashMap<i64, String> = [(1, "Acme Dental".into()), (2, "Acme Motors".into())]
            .into_iter()
            .collect();
        let f = dlq_filter("biz:dental stage:analyze timeout after", &names, false).unwrap();
        assert_eq!(f.business_id, Some(1));
        assert_eq!(f.stage, Some(Stage::Analyze));
        assert_eq!(f.error_contains.as_deref(), Some("timeout after"));
        assert_eq!(f.status, Some(DeadJobStatus::Dead));
        assert!(dlq_filter("", &names, true).unwrap().status.is_none());
        let e = dlq_filter("biz:acme", &names, false).unwrap_err();
        assert!(e.contains("2 businesses match"), "{e}");
        assert!(dlq_filter("stage:nope", &names, false).is_err());
        assert!(dlq_filter("call:x", &names, false).is_err());
        let f = dlq_filter("since:2h", &names, false).unwrap();
        let age = crate::now_ms() - f.dead_since.unwrap();
        assert!((7_199_000..=7_201_000).contains(&age), "{age}");
        assert!(dlq_filter("since:soon", &names, false).is_err());
    }

    #[test]
    fn roles_and_readonly_gate_actions() {
        assert!(allowed("admin", false, Action::DlqRetry).is_ok());
        let e = allowed("support", false, Action::DlqRetry).unwrap_err();
        assert!(e.contains("admin") && e.contains("support"), "{e}");
        assert!(allowed("support", false, Action::ReviewLink).is_ok());
        assert!(allowed("viewer", false, Action::ReviewLink).is_err());
        assert!(allowed("admin", true, Action::CallQc)
            .unwrap_err()
            .contains("read-only"));
    }
}
