//! The console's action flows: which questions an action asks (scopes with counts,
//! confirmations that default to Cancel and name what they act on), the refusals before any
//! question (role, read-only, target not loaded, preconditions), and the replies.

use super::*;

impl App {
    /// An action on the call on screen: only once that call's detail is loaded (never on
    /// another call's data), with its preconditions checked before the confirmation.
    pub(super) fn call_action(&mut self, cmd: Cmd, id: i64) {
        let action = match cmd {
            Cmd::Retry => Action::CallRetry,
            Cmd::Qc => Action::CallQc,
            Cmd::Lead => Action::CallLead,
            _ => Action::ReviewUnlink,
        };
        if self.refuse_unless(action) {
            return;
        }
        let call = match views::call::detail_of(&self.state) {
            Some(Some(d)) => d.call.clone(),
            Some(None) => {
                self.state.message =
                    Some((format!("there is no call {id}: nothing to act on"), true));
                return;
            }
            None => {
                self.state.message = Some((
                    format!(
                        "call {id} is not loaded yet (see the header): actions wait for its data"
                    ),
                    true,
                ));
                return;
            }
        };
        use crate::domain::stage::{CallState, Stage};
        let refuse = |m: String| Some((m, true));
        let pos = call.position();
        let precondition = match cmd {
            Cmd::Retry
                if !matches!(
                    call.state,
                    CallState::Dead | CallState::Pending | CallState::Retrying
                ) =>
            {
                refuse(format!(
                    "call {id} is at {pos}: only dead, pending or retrying calls can be retried"
                ))
            }
            Cmd::Qc | Cmd::Lead if call.state != CallState::Done => refuse(format!(
                "call {id} is at {pos}: {} runs on finished calls; wait until the pipeline is done with it",
                if cmd == Cmd::Qc { "QC" } else { "creating the lead" }
            )),
            Cmd::Unlink if call.customer_id.is_none() => refuse(format!(
                "call {id} is not linked to a customer (it is at {pos}): nothing to unlink"
            )),
            Cmd::Unlink if call.stage != Stage::Notify || call.state == CallState::Running => {
                refuse(format!(
                    "call {id} is at {pos}: only a linked call waiting for, failed at or done with notify can be unlinked"
                ))
            }
            _ => None,
        };
        if let Some(m) = precondition {
            self.state.message = Some(m);
            return;
        }
        let (title, line, yes, req) = match cmd {
            Cmd::Retry => (
                format!("Retry call {id}'s failed stage ({pos})?"),
                "Its job is published again from the stage it failed at; the trace records who did it.".to_string(),
                "Retry the stage",
                OpRequest::CallRetry(id),
            ),
            Cmd::Qc => (
                format!("Run QC on call {id}?"),
                "Queues analysis with the business's QC agents; the result and its reason appear in the trace.".into(),
                "Run QC",
                OpRequest::CallQc(id),
            ),
            Cmd::Lead => (
                format!("Create or update the lead of call {id}?"),
                "The notify rules apply: a lead with the same number is updated, not duplicated.".into(),
                "Create lead",
                OpRequest::CallLead(id),
            ),
            _ => {
                let customer = call.customer_id.unwrap_or(0);
                let name = views::call::detail_of(&self.state)
                    .flatten()
                    .and_then(|d| d.customer.as_ref())
                    .and_then(|c| c.name.clone())
                    .unwrap_or_else(|| "unnamed".into());
                (
                    format!("Unlink call {id} from customer #{customer} {}?", views::sanitize(&name)),
                    "The call leaves the customer (its lead too, if it points there) and goes back to the review queue with its candidates; audited.".into(),
                    "Unlink",
                    OpRequest::Unlink {
                        call_id: id,
                        reason: "wrong link (console)".into(),
                    },
                )
            }
        };
        self.confirm(action, title, vec![line], yes.into(), req);
    }

    pub(super) fn refuse_unless(&mut self, action: Action) -> bool {
        match allowed(&self.state.role, self.state.readonly, action) {
            Ok(()) => false,
            Err(m) => {
                self.state.message = Some((m, true));
                true
            }
        }
    }

    /// A yes/no question whose default is Cancel.
    pub(super) fn confirm(
        &mut self,
        action: Action,
        title: String,
        lines: Vec<String>,
        yes: String,
        req: OpRequest,
    ) {
        if self.refuse_unless(action) {
            return;
        }
        self.state.dialog = Some(Dialog {
            title,
            lines,
            options: vec![yes],
            choice: 0,
            text: None,
        });
        self.pending = Some(Pending::Confirm(req));
    }

    pub(super) fn dlq_action(&mut self, retry: bool) {
        if self.refuse_unless(if retry {
            Action::DlqRetry
        } else {
            Action::DlqDiscard
        }) {
            return;
        }
        if views::lists::dlq_page(&self.state).is_none() {
            self.state.message = Some((
                "the dead jobs for this search are still loading: nothing to act on yet".into(),
                true,
            ));
            return;
        }
        // The search the rows on screen answer (see `set_filter`), without history: only
        // rows still dead can be retried or discarded.
        let text = self.queries.dlq_text.clone();
        let filter = match dlq_filter(&text, &self.state.data.names, false) {
            Ok(f) => f,
            Err(m) => {
                self.state.message = Some((m, true));
                return;
            }
        };
        let mut scopes: Vec<(String, Selection)> = vec![];
        let key = self.selected_key(ListId::Dlq);
        let selected = views::lists::dlq_visible(&self.state)
            .into_iter()
            .find(|d| Some(d.id) == key)
            .map(|d| (d.id, d.error_signature.clone(), d.status));
        if let Some((id, _, crate::store::DeadJobStatus::Dead)) = &selected {
            scopes.push((format!("this dead job #{id}"), Selection::Ids(vec![*id])));
        }
        let marked: Vec<i64> = self.state.list(ListId::Dlq).marked.into_iter().collect();
        if !marked.is_empty() {
            scopes.push((
                format!("the {} marked", marked.len()),
                Selection::Ids(marked),
            ));
        }
        if let Some((_, sig, _)) = &selected {
            let mut g = filter.clone();
            g.signature = Some(sig.clone());
            scopes.push((
                format!(
                    "its error group \"{}\"",
                    views::widgets::cut(&views::sanitize(sig), 60)
                ),
                Selection::Matching(g),
            ));
        }
        scopes.push((
            format!(
                "everything matching ({}), on every page",
                describe_filter(&text)
            ),
            Selection::Matching(filter),
        ));
        self.run(OpRequest::DlqPreview { retry, scopes });
    }

    /// R or X on one dead job (its detail view): confirmed, default Cancel.
    pub(super) fn dead_job_action(&mut self, id: i64, retry: bool) {
        let action = if retry {
            Action::DlqRetry
        } else {
            Action::DlqDiscard
        };
        let Some(d) = views::dead_job::find(&self.state, id) else {
            self.state.message = Some((format!("dead job #{id} is not loaded"), true));
            return;
        };
        if d.status != crate::store::DeadJobStatus::Dead {
            self.state.message = Some((
                format!("dead job #{id} is {} already", d.status.as_str()),
                true,
            ));
            return;
        }
        let verb = if retry { "Retry" } else { "Discard" };
        self.confirm(
            action,
            format!("{verb} dead job #{id}?"),
            vec![if retry {
                "Its job is published again (confirmed by the broker) before the row is marked retried.".into()
            } else {
                "The row stays as history with its payload (H shows it).".into()
            }],
            verb.into(),
            OpRequest::Dlq {
                retry,
                sel: Selection::Ids(vec![id]),
                what: format!("dead job #{id}"),
            },
        );
    }

    /// R in the stuck view: this call, the marked ones, or the selected call's whole error
    /// group (over the calls fetched), each with its count; then a confirmation.
    pub(super) fn stuck_retry(&mut self) {
        if self.refuse_unless(Action::CallRetry) {
            return;
        }
        let Some(p) = self.state.data.stuck.as_ref() else {
            self.state.message = Some(("the stuck calls are still loading".into(), true));
            return;
        };
        let calls = &p.data.calls;
        let key = self.selected_key(ListId::Stuck);
        let mut scopes: Vec<(String, Vec<i64>)> = vec![];
        let selected = key.and_then(|k| calls.iter().find(|c| c.id == k));
        if let Some(c) = selected {
            scopes.push((format!("this call {}", c.id), vec![c.id]));
        }
        let marked: Vec<i64> = self.state.list(ListId::Stuck).marked.into_iter().collect();
        if !marked.is_empty() {
            scopes.push((format!("the {} marked", marked.len()), marked));
        }
        let group = self
            .state
            .stuck_group
            .clone()
            .or_else(|| selected.map(crate::store::read::signature_of));
        if let Some(sig) = group {
            let ids: Vec<i64> = calls
                .iter()
                .filter(|c| crate::store::read::signature_of(c) == sig)
                .map(|c| c.id)
                .collect();
            scopes.push((
                format!(
                    "the error group \"{}\"",
                    views::widgets::cut(&views::sanitize(&sig), 60)
                ),
                ids,
            ));
        }
        if scopes.is_empty() {
            self.state.message = Some(("no stuck call selected".into(), true));
            return;
        }
        self.state.dialog = Some(Dialog {
            title: "Retry which stuck calls?".into(),
            lines: vec![format!(
                "Counts are of the {} stuck calls fetched (oldest first).",
                calls.len()
            )],
            options: scopes
                .iter()
                .map(|(l, ids)| format!("{l}: {}", ids.len()))
                .collect(),
            choice: 0,
            text: None,
        });
        self.pending = Some(Pending::StuckScopes { scopes });
    }

    /// C in the outbound view: call the selected row's lead now, confirmed (default Cancel).
    /// The ops layer refuses a lead that was already called (dedup) with when and the id.
    pub(super) fn outbound_call_now(&mut self) {
        if self.refuse_unless(Action::OutboundCallNow) {
            return;
        }
        let Some(o) = views::outbound::selected(&self.state).cloned() else {
            self.state.message = Some((
                "no outbound call selected (the list is empty or still loading)".into(),
                true,
            ));
            return;
        };
        self.confirm(
            Action::OutboundCallNow,
            format!(
                "Call lead {} ({}) of {} now?",
                o.lead_id,
                views::sanitize(&o.to_number),
                views::sanitize(&o.business)
            ),
            vec![
                format!(
                    "outbound #{} is {}: {}",
                    o.id,
                    views::sanitize(&o.status),
                    views::sanitize(&o.reason)
                ),
                "The dialler calls it with the business's mapping and agent (a lead already called is refused); audited.".into(),
            ],
            "Call now".into(),
            OpRequest::OutboundCallNow(o.lead_id),
        );
    }

    /// C in the call view: call the lead of the call on screen now (only once its detail is
    /// loaded and it has a lead), confirmed (default Cancel).
    pub(super) fn call_lead_now(&mut self, id: i64) {
        if self.refuse_unless(Action::OutboundCallNow) {
            return;
        }
        let lead = match views::call::detail_of(&self.state) {
            Some(Some(d)) => d.lead.clone(),
            _ => {
                self.state.message = Some((
                    format!("call {id} is not loaded yet: actions wait for its data"),
                    true,
                ));
                return;
            }
        };
        let Some(lead) = lead else {
            self.state.message = Some((
                format!("call {id} has no lead: create one first (L), then call it"),
                true,
            ));
            return;
        };
        self.confirm(
            Action::OutboundCallNow,
            format!("Call lead #{} of call {id} now?", lead.id),
            vec!["The dialler calls it with the business's mapping and agent (a lead already called is refused); audited.".into()],
            "Call now".into(),
            OpRequest::OutboundCallNow(lead.id),
        );
    }

    /// U in the outbound view: count the unmapped leads of the selected row's business
    /// (the reply asks to confirm with that count).
    pub(super) fn outbound_unmapped(&mut self) {
        if self.refuse_unless(Action::OutboundCallUnmapped) {
            return;
        }
        let Some(o) = views::outbound::selected(&self.state).cloned() else {
            self.state.message = Some((
                "no outbound call selected: U acts on the selected row's business".into(),
                true,
            ));
            return;
        };
        self.run(OpRequest::OutboundUnmappedPreview {
            business_id: o.business_id,
            business: o.business,
        });
    }

    /// The selected review item, if loaded and readable (a corrupt row is shown, not acted on).
    pub(super) fn selected_review_call(&mut self) -> Option<crate::store::Call> {
        let key = self.selected_key(ListId::Review)?;
        let item = views::review::visible(&self.state)
            .into_iter()
            .find(|c| c.call.id == key)?
            .clone();
        if let Some(e) = &item.corrupt {
            self.state.message = Some((
                format!(
                    "call {key}'s row cannot be read ({}): fix it before acting on it",
                    views::sanitize(e)
                ),
                true,
            ));
            return None;
        }
        Some(item.call)
    }

    /// One key from the review list: pick among the ranked candidates, the best preselected
    /// (Enter). A candidate below the business's auto-link threshold — every candidate of an
    /// item in review, usually — asks once more, naming the caller and the customer (`y`):
    /// three keys for the top candidate, and never a weak match on one.
    pub(super) fn review_link(&mut self) {
        if self.refuse_unless(Action::ReviewLink) {
            return;
        }
        let Some(c) = self.selected_review_call() else {
            return;
        };
        let cands = views::review::candidates(&c);
        if cands.is_empty() {
            self.state.message = Some((
                format!(
                    "call {} has no candidates: create a customer (c), search one (:customers <text>) or defer it (d)",
                    c.id
                ),
                true,
            ));
            return;
        }
        let page = views::review::page(&self.state);
        let threshold = page.and_then(|p| p.link_thresholds.get(&c.business_id).copied());
        let heard = views::sanitize(c.extracted_name.as_deref().unwrap_or("(no name)"));
        let number = views::sanitize(
            c.from_number
                .as_deref()
                .or(c.number_status.as_deref())
                .unwrap_or("withheld"),
        );
        let mut options = vec![];
        let mut confirm = vec![];
        for (id, name, conf) in &cands {
            let d = page.and_then(|p| p.customers.get(id));
            let tells = views::review::distinguishing(d);
            options.push(format!("#{id} {name}  {conf:.2}  {tells}"));
            // Every link from review is confirmed naming both people: the item is here
            // because the automatic match was weak (below the threshold) or ambiguous (another
            // candidate as good). An unknown threshold counts as weak.
            let rival = cands
                .iter()
                .find(|(other, _, c2)| other != id && (conf - c2).abs() <= 0.05)
                .map(|(other, n2, c2)| format!("#{other} {n2} is as likely ({c2:.2})"));
            let why = if threshold.is_none_or(|t| *conf < t) {
                format!(
                    "{conf:.2} is below the auto-link threshold{}",
                    threshold.map(|t| format!(" {t:.2}")).unwrap_or_default()
                )
            } else {
                rival.unwrap_or_else(|| format!("{conf:.2}, picked by hand"))
            };
            confirm.push(Some(()).map(|_| {
                (
                    format!("Link call {} to customer #{id} {name}? {why}", c.id),
                    format!(
                        "caller: heard \"{heard}\", number {number}  ·  customer: #{id} {name} — {tells}  ·  {}",
                        views::review::scores(&c, name, d)
                    ),
                )
            }));
        }
        self.state.dialog = Some(Dialog {
            title: format!("Link call {} to a customer", c.id),
            lines: vec![format!(
                "heard \"{heard}\"  number {number}: the call, its customer and its lead are updated together and notify runs again"
            )],
            options,
            // Picking is not yet linking: Enter takes the best, a weak one is confirmed next.
            choice: 1,
            text: None,
        });
        self.pending = Some(Pending::Link {
            call_id: c.id,
            customers: cands.iter().map(|c| c.0).collect(),
            confirm,
        });
    }

    pub(super) fn run(&mut self, req: OpRequest) {
        self.state.busy = Some((req.label(), crate::now_ms()));
        self.requests.push(req);
    }

    pub(super) fn dialog_key(&mut self, e: KeyEvent, ctrl_c: bool) {
        let Some(mut d) = self.state.dialog.clone() else {
            return;
        };
        let n = d.options.len();
        let mut pick: Option<usize> = None;
        if let Some(text) = d.text.as_mut() {
            match e.code {
                _ if ctrl_c => return self.close_dialog(),
                KeyCode::Esc => return self.close_dialog(),
                KeyCode::Enter if !text.trim().is_empty() => pick = Some(1),
                KeyCode::Enter => {}
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
        } else {
            match e.code {
                _ if ctrl_c => return self.close_dialog(),
                KeyCode::Esc | KeyCode::Char('n') => return self.close_dialog(),
                KeyCode::Enter => pick = Some(d.choice),
                KeyCode::Char('y') if n == 1 => pick = Some(1),
                KeyCode::Char(c) if c.is_ascii_digit() => {
                    let i = c.to_digit(10).unwrap_or(0) as usize;
                    if (1..=n).contains(&i) {
                        pick = Some(i);
                    }
                }
                KeyCode::Tab | KeyCode::Down | KeyCode::Right | KeyCode::Char('j') => {
                    d.choice = (d.choice + 1) % (n + 1)
                }
                KeyCode::BackTab | KeyCode::Up | KeyCode::Left | KeyCode::Char('k') => {
                    d.choice = (d.choice + n) % (n + 1)
                }
                _ => {}
            }
        }
        match pick {
            None => self.state.dialog = Some(d),
            Some(0) => self.close_dialog(),
            Some(i) => {
                let text = d.text.clone().unwrap_or_default();
                self.state.dialog = None;
                match self.pending.take() {
                    Some(Pending::Confirm(req)) => self.run(req),
                    Some(Pending::StuckScopes { scopes }) => {
                        if let Some((label, ids)) = scopes.get(i - 1).cloned() {
                            self.state.dialog = Some(Dialog {
                                title: format!("Retry {} stuck calls?", ids.len()),
                                lines: vec![
                                    format!("Retry: {label}"),
                                    "Each call's job is published again at the stage it is stuck in (a dead job is retried from the DLQ); the trace records who did it.".into(),
                                ],
                                options: vec![format!("Retry {}", ids.len())],
                                choice: 0,
                                text: None,
                            });
                            self.pending = Some(Pending::Confirm(OpRequest::CallRetryMany {
                                ids,
                                what: label,
                            }));
                        }
                    }
                    Some(Pending::Link {
                        call_id,
                        customers,
                        confirm,
                    }) => {
                        if let Some(customer_id) = customers.get(i - 1) {
                            let req = OpRequest::Link {
                                call_id,
                                customer_id: *customer_id,
                            };
                            match confirm.get(i - 1).cloned().flatten() {
                                Some((title, line)) => {
                                    self.state.dialog = Some(Dialog {
                                        title,
                                        lines: vec![
                                            line,
                                            "Are they the same person? A wrong link can be undone with u in the call view.".into(),
                                        ],
                                        options: vec!["Link them".into()],
                                        choice: 0,
                                        text: None,
                                    });
                                    self.pending = Some(Pending::Confirm(req));
                                }
                                None => self.run(req),
                            }
                        }
                    }
                    Some(Pending::Defer { call_id }) => self.run(OpRequest::Defer {
                        call_id,
                        reason: text.trim().to_string(),
                    }),
                    Some(Pending::DlqScopes { retry, scopes }) => {
                        if let Some((label, sel, count)) = scopes.get(i - 1).cloned() {
                            let verb = if retry { "Retry" } else { "Discard" };
                            self.state.dialog = Some(Dialog {
                                title: format!(
                                    "{verb} {} dead jobs?",
                                    views::widgets::thousands(count)
                                ),
                                lines: vec![
                                    format!("{}: {label}", verb),
                                    if retry {
                                        "Each job is published (confirmed by the broker) before its row is marked retried; rows stay as history.".into()
                                    } else {
                                        "Discarded rows stay as history with their payload (H shows them).".into()
                                    },
                                ],
                                options: vec![format!(
                                    "{verb} {}",
                                    views::widgets::thousands(count)
                                )],
                                choice: 0,
                                text: None,
                            });
                            self.pending = Some(Pending::Confirm(OpRequest::Dlq {
                                retry,
                                sel,
                                what: label,
                            }));
                        }
                    }
                    None => {}
                }
            }
        }
    }

    pub(super) fn close_dialog(&mut self) {
        self.state.dialog = None;
        self.pending = None;
        self.state.message = Some(("cancelled".into(), false));
    }

    /// An action finished: say what happened and refresh now.
    pub fn op_reply(&mut self, r: OpReply) {
        self.state.busy = None;
        match r {
            OpReply::DlqPreview { retry, scopes } => {
                let verb = if retry { "Retry" } else { "Discard" };
                self.state.dialog = Some(Dialog {
                    title: format!("{verb} which dead jobs?"),
                    lines: vec!["Counts are of rows still dead right now.".into()],
                    options: scopes
                        .iter()
                        .map(|(l, _, n)| format!("{l}: {}", views::widgets::thousands(*n)))
                        .collect(),
                    choice: 0,
                    text: None,
                });
                self.pending = Some(Pending::DlqScopes { retry, scopes });
            }
            OpReply::OutboundUnmappedPreview {
                business_id,
                business,
                count,
            } => {
                let name = views::sanitize(&business);
                if count == 0 {
                    self.state.message = Some((
                        format!("{name} has no unmapped leads right now: nothing to call"),
                        false,
                    ));
                } else {
                    self.state.dialog = Some(Dialog {
                        title: format!(
                            "Call {} unmapped leads of {name}?",
                            views::widgets::thousands(count as i64)
                        ),
                        lines: vec![
                            format!("every lead of {name} not called for want of a mapping: {count} (counted now)"),
                            "Each goes back to the dialler with the current mappings; one still unmapped stays so, with its reason. Audited.".into(),
                        ],
                        options: vec![format!(
                            "Call {}",
                            views::widgets::thousands(count as i64)
                        )],
                        choice: 0,
                        text: None,
                    });
                    self.pending = Some(Pending::Confirm(OpRequest::OutboundUnmapped {
                        business_id,
                        business,
                    }));
                }
            }
            OpReply::Customers {
                call_id,
                text,
                found,
            } => {
                if found.is_empty() {
                    self.state.message = Some((
                        format!("no customer matches {:?}", views::sanitize(&text)),
                        true,
                    ));
                } else {
                    self.state.dialog = Some(Dialog {
                        title: format!("Link call {call_id} to a customer matching {:?}", views::sanitize(&text)),
                        lines: vec!["The call, its customer and its lead are updated together and notify runs again.".into()],
                        options: found.iter().map(|(_, l)| l.clone()).collect(),
                        choice: 0,
                        text: None,
                    });
                    self.pending = Some(Pending::Link {
                        call_id,
                        customers: found.iter().map(|(id, _)| *id).collect(),
                        // The operator searched for this customer by name, phone or email.
                        confirm: vec![],
                    });
                }
            }
            OpReply::Done(m) => {
                self.state.message = Some((views::sanitize(&m), false));
                self.state.list_mut(ListId::Dlq).marked.clear();
                self.state.list_mut(ListId::Stuck).marked.clear();
            }
            OpReply::Failed(m) => self.state.message = Some((views::sanitize(&m), true)),
        }
        if let Some(c) = &self.control {
            c.now.notify_one();
        }
    }
}
