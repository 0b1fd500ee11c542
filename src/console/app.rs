//! The console's state machine: keys, mouse and snapshots in, `ConsoleState` out. No
//! terminal and no I/O here (the refresher is told what to fetch through `Control`), so
//! navigation is testable and the screenshots drive the same code as the live console.

use super::actions::{allowed, describe_filter, dlq_filter, OpReply, OpRequest};
use super::keymap::{Cmd, KeyMap};
use super::refresher::{Answer, Control, Queries, Snapshot};
use super::settings::ConsoleSettings;
use crate::ops::dlq::Selection;
use crate::ops::Action;
use crate::views::state::Dialog;
use crate::views::state::{Conn, Part};
use crate::views::{self, ConsoleState, Input, ListId, Route};
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use std::sync::Arc;

mod flows;
mod palette;
mod selection;

pub struct App {
    pub state: ConsoleState,
    pub keymap: KeyMap,
    settings: ConsoleSettings,
    control: Option<Arc<Control>>,
    /// Terminal size at the last `prepare`, for paging and mouse hit-testing.
    area: Rect,
    last_click: Option<(Route, usize)>,
    /// Actions the event loop should run (drained after every key).
    pub requests: Vec<OpRequest>,
    /// What the open dialog's options mean.
    pending: Option<Pending>,
    /// The lists' searches as the refresher runs them: set only from a search that parsed,
    /// so the title, the rows and the bulk scopes always agree.
    queries: Queries,
    /// The status message on screen and since when (messages expire).
    message_seen: Option<((String, bool), i64)>,
}

/// How long a status message stays (errors a little longer).
const MESSAGE_MS: i64 = 8_000;
const ERROR_MESSAGE_MS: i64 = 15_000;

/// What picking option i (1-based) of the open dialog does.
#[derive(Debug, Clone)]
enum Pending {
    /// Choose a scope, then confirm.
    DlqScopes {
        retry: bool,
        scopes: Vec<(String, Selection, i64)>,
    },
    /// Option 1 runs this.
    Confirm(OpRequest),
    /// Choose which stuck calls to retry, then confirm.
    StuckScopes { scopes: Vec<(String, Vec<i64>)> },
    /// Option i links the call to customer i-1; links below the business's auto-link
    /// threshold ask again, naming both people.
    Link {
        call_id: i64,
        customers: Vec<i64>,
        /// (question, explanation) per option when it is below the threshold.
        confirm: Vec<Option<(String, String)>>,
    },
    /// The typed text is the reason.
    Defer { call_id: i64 },
}

impl App {
    pub fn new(
        settings: ConsoleSettings,
        keymap: KeyMap,
        role: &str,
        control: Option<Arc<Control>>,
    ) -> App {
        let mut state = ConsoleState::new(settings.readonly, role);
        state.alerts = settings.alerts();
        let mut app = App {
            state,
            keymap,
            settings,
            control,
            area: Rect::new(0, 0, 80, 24),
            last_click: None,
            requests: vec![],
            pending: None,
            queries: Queries::default(),
            message_seen: None,
        };
        app.route_changed();
        app
    }

    /// The role the database grants this console (it starts as a viewer until known).
    pub fn set_role(&mut self, role: &str) {
        self.state.role = role.to_string();
        self.route_changed();
    }

    /// The refresher started a refresh (spinner on).
    pub fn refresh_started(&mut self, at: i64) {
        self.state.health.refreshing_since = Some(at);
    }

    /// Take a snapshot in: connection states always; data unless frozen (a frozen console
    /// still fills views it has no data for yet, so navigating while frozen works).
    pub fn apply(&mut self, snap: Snapshot, next_refresh_at: Option<i64>) {
        let slow = self.settings.slow_ms;
        let at = snap.finished_at;
        let conn = |a: &Answer, old: &Conn| match a {
            Answer::Ok { latency_ms } if *latency_ms > slow => Conn::Slow {
                latency_ms: *latency_ms,
            },
            Answer::Ok { latency_ms } => Conn::Up {
                latency_ms: *latency_ms,
            },
            Answer::Failed(e) => Conn::Down {
                error: e.clone(),
                since: match old {
                    Conn::Down { since, .. } => *since,
                    _ => at,
                },
            },
        };
        let h = &mut self.state.health;
        h.db = conn(&snap.db, &h.db);
        h.broker = conn(&snap.broker, &h.broker);
        h.broker_kind = snap.broker_kind.clone();
        h.last_refresh_at = Some(at);
        h.last_took_ms = snap.finished_at - snap.started_at;
        h.refreshing_since = None;
        h.failures = if snap.ok() { 0 } else { h.failures + 1 };
        h.next_refresh_at = next_refresh_at;
        if let Some(d) = snap.dlx_unarchived {
            h.dlx_unarchived = d;
        }
        let frozen = self.state.frozen_at.is_some();
        let d = &mut self.state.data;
        let p = snap.parts;
        if let Some(c) = p.counters {
            if !frozen || d.counters.is_none() {
                d.counters = Some(c);
            }
        }
        if let Some(c) = p.stuck_count {
            if !frozen || d.stuck_count.is_none() {
                d.stuck_count = Some(c);
            }
        }
        if let Some(c) = p.delivery {
            if !frozen || d.delivery.is_none() {
                d.delivery = Some(c);
            }
        }
        if let Some(names) = p.names {
            if !frozen || d.names.is_empty() {
                d.names = names;
            }
        }
        if let Some(rows) = p.overview {
            if !frozen || d.overview.is_none() {
                d.overview_prev = d.overview.take().map(|o| o.data);
                d.overview = Some(Part { at, data: rows });
            }
        }
        if let Some(b) = p.business {
            let same = d
                .business
                .as_ref()
                .is_some_and(|x| x.data.business.id == b.business.id);
            if !frozen || !same {
                d.business = Some(Part { at, data: b });
                d.business_queues = p.business_queues.unwrap_or_default();
            }
        }
        if let Some(st) = p.stuck {
            if !frozen || d.stuck.is_none() {
                d.stuck = Some(Part { at, data: st });
            }
        }
        if let Some((id, c)) = p.call {
            if !frozen || d.call_id != Some(id) {
                d.call = Some(Part { at, data: c });
                d.call_id = Some(id);
            }
        }
        if let Some(x) = p.dlq {
            // A page for another search than the one shown replaces it even when frozen:
            // frozen means "hold these rows", never "show rows under the wrong title".
            if !frozen || d.dlq.is_none() || d.dlq_query != p.dlq_query {
                d.dlq = Some(Part { at, data: x });
                d.dlq_query = p.dlq_query;
            }
        }
        if let Some(e) = p.review_evidence {
            d.review_evidence = Some(e);
        }
        if let Some(x) = p.review {
            let other = d.review.as_ref().is_none_or(|r| r.data.query != x.query);
            if !frozen || other {
                d.review = Some(Part { at, data: x });
            }
        }
        if let Some(x) = p.audit {
            if !frozen || d.audit.is_none() {
                d.audit = Some(Part { at, data: x });
            }
        }
        if let Some(x) = p.outbound {
            if !frozen || d.outbound.is_none() {
                d.outbound = Some(Part { at, data: x });
            }
        }
        self.reselect();
    }

    /// When the data on screen was fetched.
    fn data_at(&self) -> Option<i64> {
        let d = &self.state.data;
        match self.state.content_route() {
            Route::Overview | Route::Help => d.overview.as_ref().map(|p| p.at),
            Route::Business(id) => d
                .business
                .as_ref()
                .filter(|p| p.data.business.id == id)
                .map(|p| p.at),
            Route::Stuck => d.stuck.as_ref().map(|p| p.at),
            Route::Call(id) => d
                .call
                .as_ref()
                .filter(|_| d.call_id == Some(id))
                .map(|p| p.at),
            Route::Dlq => d.dlq.as_ref().map(|p| p.at),
            Route::Review => d.review.as_ref().map(|p| p.at),
            Route::Audit => d.audit.as_ref().map(|p| p.at),
            Route::DeadJob(_) => d.dlq.as_ref().map(|p| p.at),
            Route::Outbound => d.outbound.as_ref().map(|p| p.at),
        }
    }

    /// Before drawing: clamp selections, keep them in view, bound scrolling, refresh the
    /// help and hints for the view.
    pub fn prepare(&mut self, area: Rect, now: i64) {
        self.area = area;
        self.state.now_ms = now;
        self.state.health.data_at = self.data_at();
        self.expire_message(now);
        self.focus_review_item();
        if let Some((id, rows)) = views::list_rows_area(&self.state, area) {
            let len = views::visible_keys(&self.state, id).len();
            let h = (rows.height as usize).max(1);
            let l = self.state.list_mut(id);
            l.selected = l.selected.min(len.saturating_sub(1));
            if l.selected < l.offset {
                l.offset = l.selected;
            } else if l.selected >= l.offset + h {
                l.offset = l.selected + 1 - h;
            }
            l.offset = l.offset.min(len.saturating_sub(h));
        }
        self.sync_on_screen();
        if self.state.route() == Route::Stuck {
            let n = views::stuck::groups(&self.state).len();
            self.state.stuck_group_sel = self.state.stuck_group_sel.min(n.saturating_sub(1));
        }
        if self.state.route() == Route::Help {
            // Bound the scroll by the wrapped rows of the keys pane.
            let [_, body, _] = views::split_screen(area);
            let keys = views::help::keys_area(body);
            let w = keys.width.saturating_sub(2).max(1) as usize;
            let rows: usize = self
                .state
                .help
                .iter()
                .map(|(k, d)| (k.chars().count().min(28) + d.chars().count() + 3).div_ceil(w))
                .sum();
            let max = rows.saturating_sub(keys.height.saturating_sub(2) as usize);
            self.state.help_scroll = self.state.help_scroll.min(max as u16);
        }
        if matches!(self.state.route(), Route::Call(_)) {
            let counts = views::call::line_counts(&self.state);
            for (i, n) in counts.iter().enumerate() {
                self.state.call_scroll[i] =
                    self.state.call_scroll[i].min(n.saturating_sub(1) as u16);
            }
        }
    }

    fn page(&self) -> i64 {
        views::list_rows_area(&self.state, self.area)
            .map(|(_, r)| r.height.max(1) as i64)
            .unwrap_or(10)
    }

    /// Tell the refresher what to fetch now, and update help and hints.
    fn route_changed(&mut self) {
        let route = self.state.content_route();
        self.state.help = self.keymap.help_for(route);
        let actions = !self.state.readonly && self.state.role != "viewer";
        self.state.hints = self.keymap.hints_for(route, actions);
        self.sync_queries();
        if let Some(c) = &self.control {
            c.route.send_replace(route);
            c.now.notify_one();
        }
    }

    fn push(&mut self, r: Route) {
        if self.state.route() != r {
            self.state.stack.push(r);
        }
        if r == Route::Help {
            self.state.help_scroll = 0;
        }
        if let Route::Call(_) = r {
            self.state.call_scroll = [0, 0];
            self.state.call_focus = 0;
        }
        self.state.message = None;
        self.route_changed();
    }

    /// Jump to a top-level view: the breadcrumb restarts at the overview.
    fn goto(&mut self, r: Route) {
        self.state.stack = vec![Route::Overview];
        if r != Route::Overview {
            self.state.stack.push(r);
        }
        self.state.message = None;
        self.route_changed();
    }

    fn back(&mut self) {
        if self.state.stack.len() > 1 {
            self.state.stack.pop();
            self.state.message = None;
            self.route_changed();
        }
    }

    /// The selected item of a list, if it is on screen now.
    fn selected_key(&self, id: ListId) -> Option<i64> {
        if !views::list_loaded(&self.state, id) {
            return None;
        }
        let l = self.state.list(id);
        let keys = views::visible_keys(&self.state, id);
        l.key
            .filter(|k| keys.contains(k))
            .or_else(|| keys.get(l.selected).copied())
    }

    fn move_by(&mut self, d: i64) {
        let route = self.state.route();
        if route == Route::Help {
            self.state.help_scroll =
                (self.state.help_scroll as i64 + d).clamp(0, u16::MAX as i64) as u16;
            return;
        }
        if let Route::DeadJob(id) = route {
            let n = views::dead_job::find(&self.state, id)
                .map(|j| views::dead_job::lines(&self.state, j).len())
                .unwrap_or(0) as i64;
            self.state.detail_scroll =
                (self.state.detail_scroll as i64 + d).clamp(0, (n - 1).max(0)) as u16;
            return;
        }
        if let Route::Call(_) = route {
            let f = self.state.call_focus;
            self.state.call_scroll[f] =
                (self.state.call_scroll[f] as i64 + d).clamp(0, u16::MAX as i64) as u16;
            return;
        }
        if route == Route::Outbound {
            let n = self
                .state
                .data
                .outbound
                .as_ref()
                .map_or(0, |p| p.data.items.len()) as i64;
            self.state.outbound_sel =
                (self.state.outbound_sel as i64 + d).clamp(0, (n - 1).max(0)) as usize;
            return;
        }
        if route == Route::Stuck && self.state.stuck_focus_groups {
            let n = views::stuck::groups(&self.state).len() as i64;
            self.state.stuck_group_sel =
                (self.state.stuck_group_sel as i64 + d).clamp(0, (n - 1).max(0)) as usize;
            return;
        }
        if let Some(id) = route.list() {
            let n = views::visible_keys(&self.state, id).len() as i64;
            let at = self.state.list(id).selected as i64;
            if id == ListId::Review && self.review_turn_page(at + d, n) {
                return;
            }
            self.select_row(id, (at + d).clamp(0, (n - 1).max(0)) as usize);
        }
    }

    /// Returns true when the console should quit.
    pub fn handle_key(&mut self, e: KeyEvent) -> bool {
        if e.kind == KeyEventKind::Release {
            return false;
        }
        let ctrl_c = e.modifiers.contains(KeyModifiers::CONTROL) && e.code == KeyCode::Char('c');
        if self.state.dialog.is_some() {
            self.dialog_key(e, ctrl_c);
            return false;
        }
        match self.state.input.clone() {
            Input::Palette {
                mut text,
                mut choice,
            } => {
                let mut names: Vec<String> = self.state.data.names.values().cloned().collect();
                names.sort();
                let options = views::completions(&text, &names);
                match e.code {
                    _ if ctrl_c => self.state.input = Input::None,
                    KeyCode::Esc => self.state.input = Input::None,
                    KeyCode::Enter => {
                        self.state.input = Input::None;
                        // A choice the operator moved to wins over the typed text.
                        let cmd = if choice > 0 {
                            options.get(choice).cloned().unwrap_or(text)
                        } else {
                            text
                        };
                        return self.run_command(&cmd);
                    }
                    KeyCode::Tab => {
                        if let Some(o) = options.get(choice % options.len().max(1)) {
                            if *o == text && options.len() > 1 {
                                choice = (choice + 1) % options.len();
                                text = options[choice].clone();
                            } else {
                                text = o.clone();
                            }
                        }
                        self.state.input = Input::Palette { text, choice };
                    }
                    KeyCode::Down => {
                        self.state.input = Input::Palette {
                            text,
                            choice: (choice + 1).min(options.len().saturating_sub(1)),
                        }
                    }
                    KeyCode::Up => {
                        self.state.input = Input::Palette {
                            text,
                            choice: choice.saturating_sub(1),
                        }
                    }
                    KeyCode::Backspace => {
                        text.pop();
                        self.state.input = Input::Palette { text, choice: 0 };
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.state.input = Input::Palette { text, choice: 0 };
                    }
                    _ => {}
                }
                return false;
            }
            Input::Filter(mut text) => {
                let Some(id) = self.state.route().list() else {
                    self.state.input = Input::None;
                    return false;
                };
                match e.code {
                    _ if ctrl_c => self.state.input = Input::None,
                    KeyCode::Esc => {
                        self.state.input = Input::None;
                        self.set_filter(id, String::new());
                    }
                    KeyCode::Enter => {
                        self.state.input = Input::None;
                        self.set_filter(id, text);
                    }
                    KeyCode::Backspace => {
                        text.pop();
                        self.state.input = Input::Filter(text);
                        self.reselect();
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.state.input = Input::Filter(text);
                        self.reselect();
                    }
                    KeyCode::Down => self.move_by(1),
                    KeyCode::Up => self.move_by(-1),
                    _ => {}
                }
                return false;
            }
            Input::None => {}
        }
        let Some(cmd) = self.keymap.lookup(&e) else {
            return false;
        };
        self.command(cmd)
    }

    fn command(&mut self, cmd: Cmd) -> bool {
        let route = self.state.route();
        match cmd {
            Cmd::Quit => return true,
            Cmd::Help => {
                if route == Route::Help {
                    self.back();
                } else {
                    self.push(Route::Help);
                }
            }
            Cmd::Palette => {
                self.state.input = Input::Palette {
                    text: String::new(),
                    choice: 0,
                }
            }
            Cmd::Filter => {
                if let Some(id) = route.list() {
                    self.state.input = Input::Filter(self.state.list(id).filter);
                }
            }
            Cmd::Back => self.escape(),
            Cmd::Open => self.open(),
            Cmd::Up => self.move_by(-1),
            Cmd::Down => self.move_by(1),
            Cmd::PageUp => self.move_by(-self.page()),
            Cmd::PageDown => self.move_by(self.page()),
            Cmd::Top => self.move_by(-1_000_000),
            Cmd::Bottom => self.move_by(1_000_000),
            Cmd::Sort => {
                if let Some(id) = route.list() {
                    let n = match id {
                        ListId::Overview => views::overview::SORTS.len(),
                        ListId::Stuck => views::stuck::SORTS.len(),
                        ListId::Dlq => views::lists::DLQ_SORTS.len(),
                        ListId::Review => views::lists::REVIEW_SORTS.len(),
                        ListId::Audit => views::lists::AUDIT_SORTS.len(),
                    };
                    let l = self.state.list_mut(id);
                    l.sort = (l.sort + 1) % n;
                    l.reverse = false;
                    self.list_query_changed(id);
                }
            }
            Cmd::SortReverse => {
                if let Some(id) = route.list() {
                    let l = self.state.list_mut(id);
                    l.reverse = !l.reverse;
                    self.list_query_changed(id);
                }
            }
            Cmd::Mark if !matches!(route, Route::Dlq | Route::Stuck) => {
                self.state.message = Some((
                    "marks are for R in the DLQ and stuck views; nothing here acts on several rows"
                        .into(),
                    false,
                ));
            }
            Cmd::Mark => {
                if let Some(id) = route.list() {
                    if let Some(k) = self.selected_key(id) {
                        let l = self.state.list_mut(id);
                        if !l.marked.remove(&k) {
                            l.marked.insert(k);
                        }
                        self.move_by(1);
                    }
                }
            }
            Cmd::Freeze => {
                if self.state.frozen_at.take().is_none() {
                    self.state.frozen_at = Some(crate::now_ms());
                } else if let Some(c) = &self.control {
                    c.now.notify_one();
                }
            }
            Cmd::Refresh => {
                if let Some(c) = &self.control {
                    c.now.notify_one();
                }
                self.state.message = Some(("refreshing…".into(), false));
            }
            Cmd::Window => self.state.window = (self.state.window + 1) % 4,
            Cmd::Focus => match route {
                Route::Stuck => self.state.stuck_focus_groups = !self.state.stuck_focus_groups,
                Route::Call(_) => self.state.call_focus ^= 1,
                _ => {}
            },
            Cmd::Overview => self.goto(Route::Overview),
            Cmd::Stuck => self.goto(Route::Stuck),
            Cmd::Dlq => self.goto(Route::Dlq),
            Cmd::Review => self.goto(Route::Review),
            Cmd::Audit => self.goto(Route::Audit),
            Cmd::Outbound => self.goto(Route::Outbound),
            Cmd::History if route == Route::Review => {
                self.state.review_deferred = !self.state.review_deferred;
                self.list_query_changed(ListId::Review);
                self.state.message = Some((
                    if self.state.review_deferred {
                        "showing deferred items not yet due, with their reason (H shows the due ones)".into()
                    } else {
                        "showing review items that are due (deferred ones are left out until due)"
                            .into()
                    },
                    false,
                ));
            }
            Cmd::History if route == Route::Dlq => {
                self.state.dlq_history = !self.state.dlq_history;
                self.sync_queries();
                self.state.message = Some((
                    if self.state.dlq_history {
                        "showing retried and discarded dead jobs too (H hides them)".into()
                    } else {
                        "showing dead jobs still dead".into()
                    },
                    false,
                ));
            }
            Cmd::Retry if route == Route::Dlq => self.dlq_action(true),
            Cmd::Retry | Cmd::Discard if matches!(route, Route::DeadJob(_)) => {
                if let Route::DeadJob(id) = route {
                    self.dead_job_action(id, cmd == Cmd::Retry);
                }
            }
            Cmd::Retry if route == Route::Stuck => self.stuck_retry(),
            Cmd::Discard if route == Route::Dlq => self.dlq_action(false),
            Cmd::Retry | Cmd::Qc | Cmd::Lead | Cmd::Unlink => {
                if let Route::Call(id) = route {
                    self.call_action(cmd, id);
                }
            }
            Cmd::CallNow if route == Route::Outbound => self.outbound_call_now(),
            Cmd::CallNow if matches!(route, Route::Call(_)) => {
                if let Route::Call(id) = route {
                    self.call_lead_now(id);
                }
            }
            Cmd::CallUnmapped if route == Route::Outbound => self.outbound_unmapped(),
            Cmd::CallNow | Cmd::CallUnmapped => {}
            Cmd::Link if route == Route::Review => self.review_link(),
            Cmd::NewCustomer if route == Route::Review => {
                if let Some(c) = self.selected_review_call() {
                    let name = c
                        .extracted_name
                        .clone()
                        .unwrap_or_else(|| "(no name heard)".into());
                    let number = c.from_e164.clone().unwrap_or_else(|| "withheld".into());
                    self.confirm(
                        Action::ReviewCreateCustomer,
                        format!("Create a customer from call {}?", c.id),
                        vec![format!(
                            "name {}  number {}: the call is linked to it and notify runs again",
                            views::sanitize(&name),
                            views::sanitize(&number)
                        )],
                        "Create and link".into(),
                        OpRequest::NewCustomer { call_id: c.id },
                    );
                }
            }
            Cmd::Defer if route == Route::Review => {
                if let Some(c) = self.selected_review_call() {
                    if let Err(m) =
                        allowed(&self.state.role, self.state.readonly, Action::ReviewDefer)
                    {
                        self.state.message = Some((m, true));
                        return false;
                    }
                    self.state.dialog = Some(Dialog {
                        title: format!("Defer call {} for an hour", c.id),
                        lines: vec!["Why? (the reason goes into the trace and the audit log; Enter defers, Esc cancels)".into()],
                        options: vec![],
                        choice: 0,
                        text: Some(String::new()),
                    });
                    self.pending = Some(Pending::Defer { call_id: c.id });
                }
            }
            Cmd::History | Cmd::Discard | Cmd::Link | Cmd::NewCustomer | Cmd::Defer => {}
        }
        false
    }

    /// Esc peels one layer: the message, the list's filter, the stuck group, the pane
    /// focus, then the view.
    fn escape(&mut self) {
        let route = self.state.route();
        if let Some(id) = route.list() {
            if !self.state.list(id).filter.is_empty() {
                self.set_filter(id, String::new());
                return;
            }
        }
        if route == Route::Stuck {
            if self.state.stuck_focus_groups {
                self.state.stuck_focus_groups = false;
                return;
            }
            if self.state.stuck_group.take().is_some() {
                return;
            }
        }
        self.back();
    }

    fn open(&mut self) {
        match self.state.route() {
            Route::Overview => {
                if let Some(id) = self.selected_key(ListId::Overview) {
                    self.push(Route::Business(id));
                }
            }
            Route::Stuck if self.state.stuck_focus_groups => {
                let groups = views::stuck::groups(&self.state);
                if let Some(g) = groups.get(self.state.stuck_group_sel) {
                    self.state.stuck_group = Some(g.signature.clone());
                    self.state.stuck_focus_groups = false;
                    self.state.list_mut(ListId::Stuck).key = None;
                    self.select_row(ListId::Stuck, 0);
                }
            }
            Route::Stuck | Route::Review => {
                let id = self.state.route().list().and_then(|l| self.selected_key(l));
                if let Some(id) = id {
                    self.push(Route::Call(id));
                }
            }
            Route::Dlq => {
                if let Some(id) = self.selected_key(ListId::Dlq) {
                    self.state.detail_scroll = 0;
                    self.push(Route::DeadJob(id));
                }
            }
            Route::DeadJob(id) => {
                let call = views::dead_job::find(&self.state, id).map(|d| (d.id, d.call_id));
                match call {
                    Some((_, Some(c))) => self.push(Route::Call(c)),
                    Some((id, None)) => {
                        self.state.message = Some((
                            format!("dead job #{id} belongs to no call (an undecodable message)"),
                            true,
                        ))
                    }
                    None => {}
                }
            }
            Route::Audit => {
                let key = self.selected_key(ListId::Audit);
                let target = views::lists::audit_visible(&self.state)
                    .into_iter()
                    .find(|a| Some(a.id) == key)
                    .map(|a| a.target.clone());
                match target.as_deref().and_then(call_in_target) {
                    Some(id) => self.push(Route::Call(id)),
                    None => {
                        self.state.message = Some((
                            format!(
                                "the target {:?} is not a call",
                                views::sanitize(target.as_deref().unwrap_or(""))
                            ),
                            false,
                        ))
                    }
                }
            }
            _ => {}
        }
    }

    pub fn handle_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let route = self.state.route();
                let Some((id, rows)) = views::list_rows_area(&self.state, self.area) else {
                    return;
                };
                if m.row < rows.y
                    || m.row >= rows.y + rows.height
                    || m.column < rows.x
                    || m.column >= rows.x + rows.width
                {
                    return;
                }
                let idx = self.state.list(id).offset + (m.row - rows.y) as usize;
                if idx >= views::visible_keys(&self.state, id).len() {
                    return;
                }
                if route == Route::Stuck {
                    self.state.stuck_focus_groups = false;
                }
                let again =
                    self.last_click == Some((route, idx)) && self.state.list(id).selected == idx;
                self.select_row(id, idx);
                self.last_click = Some((route, idx));
                if again {
                    self.last_click = None;
                    self.open();
                }
            }
            _ => {}
        }
    }
}

/// What a list's rows are, for the status line.
fn item_noun(id: ListId) -> &'static str {
    match id {
        ListId::Overview => "business",
        ListId::Stuck | ListId::Review => "call",
        ListId::Dlq => "dead job",
        ListId::Audit => "audit entry",
    }
}

/// "call 17", "call:17", "call #17" → 17.
fn call_in_target(t: &str) -> Option<i64> {
    let rest = t.trim().strip_prefix("call")?;
    rest.trim_start_matches([' ', ':', '#'])
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_targets_that_are_calls() {
        assert_eq!(call_in_target("call 17"), Some(17));
        assert_eq!(call_in_target("call:17"), Some(17));
        assert_eq!(call_in_target("call #17 (retry)"), Some(17));
        assert_eq!(call_in_target("dead_job 3"), None);
    }
}
