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
        self.reselect();
    }

    /// Keep the selection on the same item after the rows changed (refresh, sort, filter,
    /// page). If the item left, the nearest of its former neighbours still present is
    /// selected (else the row at the same position) and the status line says so.
    fn reselect(&mut self) {
        let Some(id) = self.state.route().list() else {
            return;
        };
        if !views::list_loaded(&self.state, id) {
            return;
        }
        let keys = views::visible_keys(&self.state, id);
        let noun = item_noun(id);
        let l = self.state.list_mut(id);
        let pos = |k: Option<i64>| k.and_then(|k| keys.iter().position(|x| *x == k));
        let mut left = None;
        match pos(l.key) {
            Some(i) => l.selected = i,
            None => {
                left = l.key;
                l.selected = pos(l.around[1])
                    .or(pos(l.around[0]))
                    .unwrap_or(l.selected)
                    .min(keys.len().saturating_sub(1));
            }
        }
        Self::place(l, &keys);
        if let Some(old) = left {
            let now = match l.key {
                Some(k) => format!("; selected {noun} {k} instead"),
                None => String::new(),
            };
            self.state.message = Some((
                format!("{noun} {old} left the list (handled, changed or filtered out){now}"),
                false,
            ));
        }
    }

    /// Record the item at `l.selected` (and its neighbours) as the selection.
    fn place(l: &mut views::ListState, keys: &[i64]) {
        l.key = keys.get(l.selected).copied();
        l.around = [
            l.selected.checked_sub(1).and_then(|i| keys.get(i).copied()),
            keys.get(l.selected + 1).copied(),
        ];
    }

    /// Select row `i` of list `id` (clamped) by identity.
    fn select_row(&mut self, id: ListId, i: usize) {
        let keys = views::visible_keys(&self.state, id);
        let l = self.state.list_mut(id);
        l.selected = i.min(keys.len().saturating_sub(1));
        Self::place(l, &keys);
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

    /// The selected review item's transcript lines are fetched for it: when the selection
    /// moves, the refresher is told (and woken, so the evidence follows the cursor).
    fn focus_review_item(&mut self) {
        if self.state.route() != Route::Review {
            return;
        }
        let key = self.selected_key(ListId::Review);
        if key != self.queries.review_focus {
            self.queries.review_focus = key;
            if let Some(c) = &self.control {
                if let Ok(mut g) = c.queries.lock() {
                    g.review_focus = key;
                }
                c.now.notify_one();
            }
        }
    }

    /// A status message goes away after a while, so it does not hide the counters line.
    fn expire_message(&mut self, now: i64) {
        match (&self.state.message, &self.message_seen) {
            (None, _) => self.message_seen = None,
            (Some(m), Some((seen, since))) if m == seen => {
                let ttl = if m.1 { ERROR_MESSAGE_MS } else { MESSAGE_MS };
                if now - since > ttl {
                    self.state.message = None;
                    self.message_seen = None;
                }
            }
            (Some(m), _) => self.message_seen = Some((m.clone(), now)),
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

    /// Moving past the last (first) row of a review page fetches the next (previous) page:
    /// the database pages the queue, nothing is capped. True when a page was turned.
    fn review_turn_page(&mut self, to: i64, n: i64) -> bool {
        let Some(p) = views::review::page(&self.state) else {
            return false;
        };
        let limit = self.settings.list_limit.max(1) as i64;
        let offset = p.query.offset;
        let next = if to >= n && offset + n < p.total {
            offset + limit
        } else if to < 0 && offset > 0 {
            (offset - limit).max(0)
        } else {
            return false;
        };
        self.state.review_offset = next;
        let l = self.state.list_mut(ListId::Review);
        l.selected = if next > offset { 0 } else { limit as usize - 1 };
        l.key = None;
        l.around = [None, None];
        self.state.message = Some((
            format!("review items {}–{}…", next + 1, next + limit),
            false,
        ));
        self.sync_queries();
        true
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

    /// An action on the call on screen: only once that call's detail is loaded (never on
    /// another call's data), with its preconditions checked before the confirmation.
    fn call_action(&mut self, cmd: Cmd, id: i64) {
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

    fn refuse_unless(&mut self, action: Action) -> bool {
        match allowed(&self.state.role, self.state.readonly, action) {
            Ok(()) => false,
            Err(m) => {
                self.state.message = Some((m, true));
                true
            }
        }
    }

    /// A yes/no question whose default is Cancel.
    fn confirm(
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

    /// A list's search, committed (Enter) or cleared (Esc). The DLQ's must parse: a search
    /// that does not is refused and the one before stays, in the title and in the rows.
    fn set_filter(&mut self, id: ListId, text: String) {
        let text = text.trim().to_string();
        if id == ListId::Dlq {
            if let Err(m) = dlq_filter(&text, &self.state.data.names, self.state.dlq_history) {
                self.state.message = Some((
                    format!(
                        "{m} — the search stays {}",
                        describe_filter(&self.queries.dlq_text)
                    ),
                    true,
                ));
                self.state.list_mut(id).filter = self.queries.dlq_text.clone();
                return;
            }
        }
        self.state.list_mut(id).filter = text;
        self.list_query_changed(id);
    }

    /// Search, sort or page changed: the database lists answer a new query (first page).
    fn list_query_changed(&mut self, id: ListId) {
        if id == ListId::Review {
            self.state.review_offset = 0;
        }
        if matches!(id, ListId::Review | ListId::Dlq) {
            self.sync_queries();
        }
        self.reselect();
    }

    /// The lists' searches as the refresher's queries (the DLQ's is also the scope
    /// "everything matching"). Only searches that parse get here (see `set_filter`).
    fn sync_queries(&mut self) {
        let text = self.state.list(ListId::Dlq).filter.trim().to_string();
        let history = self.state.dlq_history;
        match dlq_filter(&text, &self.state.data.names, history) {
            Ok(f) => {
                self.queries.dlq = f;
                self.queries.dlq_text = text;
                self.queries.dlq_history = history;
            }
            // Names not loaded yet (biz:…) or a search that stopped parsing: keep the last,
            // on screen too.
            Err(m) => {
                self.state.message = Some((m, true));
                self.state.list_mut(ListId::Dlq).filter = self.queries.dlq_text.clone();
                self.state.dlq_history = self.queries.dlq_history;
            }
        }
        self.queries.review = views::review::query(&self.state);
        if let Some(c) = &self.control {
            if let Ok(mut g) = c.queries.lock() {
                *g = self.queries.clone();
            }
            c.now.notify_one();
        }
    }

    /// The searches the refresher runs (tests fetch with them as the live console does).
    pub fn queries(&self) -> Queries {
        self.queries.clone()
    }

    fn dlq_action(&mut self, retry: bool) {
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
    fn dead_job_action(&mut self, id: i64, retry: bool) {
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
    fn stuck_retry(&mut self) {
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

    /// The selected review item, if loaded and readable (a corrupt row is shown, not acted on).
    fn selected_review_call(&mut self) -> Option<crate::store::Call> {
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
    fn review_link(&mut self) {
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

    fn run(&mut self, req: OpRequest) {
        self.state.busy = Some((req.label(), crate::now_ms()));
        self.requests.push(req);
    }

    fn dialog_key(&mut self, e: KeyEvent, ctrl_c: bool) {
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

    fn close_dialog(&mut self) {
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

    /// Run a palette command; true to quit.
    pub fn run_command(&mut self, text: &str) -> bool {
        let text = text.trim();
        let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        let word = match views::resolve_command(word) {
            Ok(w) => w,
            Err(m) => {
                self.state.message = Some((m, true));
                return false;
            }
        };
        match word.as_str() {
            "" => {}
            "overview" | "o" => self.goto(Route::Overview),
            "stuck" => self.goto(Route::Stuck),
            "dlq" => self.goto(Route::Dlq),
            "review" => self.goto(Route::Review),
            "audit" => self.goto(Route::Audit),
            "help" | "?" => self.push(Route::Help),
            "q" | "quit" | "q!" => return true,
            "call" => match arg.trim_start_matches('#').parse::<i64>() {
                Ok(id) => self.push(Route::Call(id)),
                Err(_) => {
                    self.state.message = Some((format!(":call needs a call id (a number), got {:?}", views::sanitize(arg)), true))
                }
            },
            "biz" | "business" => self.open_business(arg),
            "merge" => {
                let ids: Vec<i64> = arg
                    .split_whitespace()
                    .filter_map(|w| w.trim_start_matches('#').parse().ok())
                    .collect();
                match ids.as_slice() {
                    [temporary, into] => self.confirm(
                        Action::ReviewMerge,
                        format!("Merge temporary customer #{temporary} into #{into}?"),
                        vec!["Its calls, leads and appointments move to the existing customer in one transaction.".into()],
                        "Merge".into(),
                        OpRequest::Merge {
                            temporary: *temporary,
                            into: *into,
                        },
                    ),
                    _ => {
                        self.state.message = Some((
                            ":merge needs two customer ids: the temporary one, then the one to merge it into".into(),
                            true,
                        ))
                    }
                }
            }
            "customers" | "find" => match (self.state.route(), self.selected_review_call()) {
                (Route::Review, Some(c)) if !arg.is_empty() => {
                    if !self.refuse_unless(Action::ReviewLink) {
                        self.run(OpRequest::SearchCustomers {
                            call_id: c.id,
                            business_id: c.business_id,
                            text: arg.to_string(),
                        });
                    }
                }
                _ => {
                    self.state.message = Some((
                        ":customers <name, phone or email> searches the selected review item's business (in the review view)".into(),
                        true,
                    ))
                }
            },
            "link" => match (
                self.state.route(),
                arg.trim_start_matches('#').parse::<i64>(),
                self.selected_review_call(),
            ) {
                (Route::Review, Ok(customer_id), Some(c)) => self.confirm(
                    Action::ReviewLink,
                    format!("Link call {} to customer #{customer_id}?", c.id),
                    vec!["A customer not among the candidates (e.g. found with `callops review` or the CRM).".into()],
                    "Link".into(),
                    OpRequest::Link {
                        call_id: c.id,
                        customer_id,
                    },
                ),
                _ => {
                    self.state.message = Some((
                        ":link <customer id> links the selected review item (in the review view)".into(),
                        true,
                    ))
                }
            },
            other => {
                self.state.message = Some((
                    format!(
                        "unknown command :{} — try :overview :stuck :dlq :review :audit :call <id> :biz <name> :link <customer> :merge <temp> <into> :quit",
                        views::sanitize(other)
                    ),
                    true,
                ))
            }
        }
        false
    }

    /// `:biz NAME` — exact name, else the one name starting with it, else the one
    /// containing it; several candidates filter the overview instead.
    fn open_business(&mut self, name: &str) {
        if name.is_empty() {
            self.state.message = Some((":biz needs a business name (Tab completes)".into(), true));
            return;
        }
        let q = name.to_lowercase();
        let names = &self.state.data.names;
        let find = |f: &dyn Fn(&str) -> bool| -> Vec<i64> {
            let mut v: Vec<i64> = names
                .iter()
                .filter(|(_, n)| f(&n.to_lowercase()))
                .map(|(id, _)| *id)
                .collect();
            v.sort();
            v
        };
        let exact = find(&|n| n == q);
        let hits = if !exact.is_empty() {
            exact
        } else {
            let pre = find(&|n| n.starts_with(&q));
            if !pre.is_empty() {
                pre
            } else {
                find(&|n| n.contains(&q))
            }
        };
        match hits.as_slice() {
            [id] => {
                self.goto(Route::Overview);
                self.push(Route::Business(*id));
            }
            [] if !names.is_empty() => {
                self.state.message = Some((
                    format!("no business matches {:?}", views::sanitize(name)),
                    true,
                ))
            }
            _ => {
                self.goto(Route::Overview);
                self.state.list_mut(ListId::Overview).filter = name.to_string();
                self.state.message = Some((
                    format!(
                        "{} businesses match {:?}: filtered the overview",
                        hits.len(),
                        views::sanitize(name)
                    ),
                    false,
                ));
            }
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
