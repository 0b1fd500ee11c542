//! What a frame shows. The console owns and mutates this; views only read it. Nothing here
//! does I/O: data arrives as parts of a snapshot the refresher fetched.

use crate::domain::stage::Stage;
use crate::store::audit::AuditEntry;
use crate::store::read::review::ReviewPage;
use crate::store::read::{BizRow, BusinessDetail, CallDetail, DlqData, StuckData};
use std::collections::{BTreeSet, HashMap};

/// Where the operator is. `Help` shows the keys of the route beneath it on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Overview,
    Business(i64),
    Stuck,
    Call(i64),
    Dlq,
    Review,
    Audit,
    Help,
    /// One dead job in full (payload, headers, every attempt).
    DeadJob(i64),
    /// Outbound AI calls to new leads (issue 16).
    Outbound,
}

impl Route {
    pub fn title(self) -> String {
        match self {
            Route::Overview => "overview".into(),
            Route::Business(id) => format!("business {id}"),
            Route::Stuck => "stuck".into(),
            Route::Call(id) => format!("call {id}"),
            Route::Dlq => "dlq".into(),
            Route::Review => "review".into(),
            Route::Audit => "audit".into(),
            Route::Help => "help".into(),
            Route::DeadJob(id) => format!("dead job #{id}"),
            Route::Outbound => "outbound".into(),
        }
    }

    /// The list this route browses, if it is a list.
    pub fn list(self) -> Option<ListId> {
        match self {
            Route::Overview => Some(ListId::Overview),
            Route::Stuck => Some(ListId::Stuck),
            Route::Dlq => Some(ListId::Dlq),
            Route::Review => Some(ListId::Review),
            Route::Audit => Some(ListId::Audit),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListId {
    Overview,
    Stuck,
    Dlq,
    Review,
    Audit,
}

/// Selection, scroll, filter, sort and marks of one list; kept per list so Esc returns to
/// the row the operator left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListState {
    /// Row index of the selection in the rows on screen; follows `key` (the console
    /// re-finds the item after every refresh, sort and filter).
    pub selected: usize,
    /// The selected item itself (business, call, dead job or audit id): what actions act on.
    pub key: Option<i64>,
    /// The items above and below the selection when it was last placed: if the item
    /// leaves the list, the nearest of these still present is selected instead.
    pub around: [Option<i64>; 2],
    pub offset: usize,
    pub filter: String,
    /// Index into the view's sortable columns.
    pub sort: usize,
    /// Reverse the column's natural order.
    pub reverse: bool,
    /// Marked row keys (business, call, dead job or audit ids).
    pub marked: BTreeSet<i64>,
}

/// What the keyboard is typing into, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    None,
    Filter(String),
    Palette { text: String, choice: usize },
}

/// A modal question: options to pick by number, by moving (Tab/arrows) and Enter, or `y`
/// for the only non-Cancel option. Option 0 is always Cancel and is the default, so a
/// stray Enter never runs a bulk action.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    pub title: String,
    pub lines: Vec<String>,
    /// Labels of the options after Cancel (option 1, 2, …).
    pub options: Vec<String>,
    /// 0 = Cancel.
    pub choice: usize,
    /// A reason being typed (defer), when the dialog asks for one.
    pub text: Option<String>,
}

/// State of one connection as the last refresh found it.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Unknown,
    Up {
        latency_ms: i64,
    },
    /// Answered, but slower than the slow threshold.
    Slow {
        latency_ms: i64,
    },
    Down {
        error: String,
        since: i64,
    },
}

impl Conn {
    pub fn is_down(&self) -> bool {
        matches!(self, Conn::Down { .. })
    }
}

/// Freshness and connection state for the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub db: Conn,
    pub broker: Conn,
    pub broker_kind: String,
    /// When the last refresh finished, and how long it took.
    pub last_refresh_at: Option<i64>,
    pub last_took_ms: i64,
    /// When the current view's data was last fetched successfully.
    pub data_at: Option<i64>,
    /// A refresh in flight since this moment.
    pub refreshing_since: Option<i64>,
    /// Consecutive failed refreshes, and when the next one is due (backoff).
    pub failures: u32,
    pub next_refresh_at: Option<i64>,
    /// Messages dead-lettered by RabbitMQ itself and not yet archived into `dead_jobs`.
    pub dlx_unarchived: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            db: Conn::Unknown,
            broker: Conn::Unknown,
            broker_kind: String::new(),
            last_refresh_at: None,
            last_took_ms: 0,
            data_at: None,
            refreshing_since: None,
            failures: 0,
            next_refresh_at: None,
            dlx_unarchived: 0,
        }
    }
}

/// A part of the data, stamped with when it was fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<T> {
    pub at: i64,
    pub data: T,
}

/// The latest data of every view that has been visited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    pub overview: Option<Part<Vec<BizRow>>>,
    /// The overview rows before the last refresh: cells that differ are marked for one refresh.
    pub overview_prev: Option<Vec<BizRow>>,
    pub business: Option<Part<BusinessDetail>>,
    /// Queue stats of the business in `business` (from the broker).
    pub business_queues: Vec<crate::queue::QueueStat>,
    pub stuck: Option<Part<StuckData>>,
    /// `None` inside means the call does not exist.
    pub call: Option<Part<Option<CallDetail>>>,
    pub call_id: Option<i64>,
    pub dlq: Option<Part<DlqData>>,
    /// The DLQ search text and history flag the rows in `dlq` answer: rows fetched for
    /// another search are never shown under this one's title.
    pub dlq_query: Option<(String, bool)>,
    /// One page of the review queue, with the query it answers.
    pub review: Option<Part<ReviewPage>>,
    /// The selected review item's own transcript lines: (call id, lines).
    pub review_evidence: Option<(i64, Vec<String>)>,
    pub audit: Option<Part<Vec<AuditEntry>>>,
    pub outbound: Option<Part<super::outbound::OutboundData>>,
    pub names: HashMap<i64, String>,
    /// Whole-system counts fetched with every refresh, whatever the view, so the header
    /// never shows one view's stale or filtered numbers: (dead jobs, calls in review).
    pub counters: Option<(i64, i64)>,
    /// Calls past their stage's SLA, fetched with every refresh for the header.
    pub stuck_count: Option<i64>,
    /// Outbox depth/age and orphan alarms, fetched with every refresh for the header.
    pub delivery: Option<crate::store::orphans::DeliveryHealth>,
}

/// Thresholds the views colour by.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// Oldest queued job older than this is lag.
    pub lag_ms: i64,
    /// Error rate above this (0..1) is an alert.
    pub error_rate: f64,
    /// Stage SLAs in ms (`Stage::ALL` order).
    pub slas_ms: [i64; 5],
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            lag_ms: 5 * 60_000,
            error_rate: 0.05,
            slas_ms: [60_000, 900_000, 300_000, 120_000, 120_000],
        }
    }
}

/// The whole console state.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// Navigation stack; the last entry is on screen.
    pub stack: Vec<Route>,
    pub lists: HashMap<ListId, ListState>,
    pub data: Data,
    pub health: Health,
    pub input: Input,
    /// Frozen since this moment: new data is held back (the header says so).
    pub frozen_at: Option<i64>,
    pub readonly: bool,
    pub role: String,
    pub now_ms: i64,
    /// Which window of `WINDOWS_MIN` the overview's rate columns show.
    pub window: usize,
    /// Call view: scroll of the transcript and the trace, and which one keys scroll.
    pub call_scroll: [u16; 2],
    pub call_focus: usize,
    /// Stuck view: the error signature the list is narrowed to (Enter on a group).
    pub stuck_group: Option<String>,
    pub stuck_focus_groups: bool,
    pub stuck_group_sel: usize,
    /// Outbound view: the selected row of the outbound-calls list (C and U act on it).
    pub outbound_sel: usize,
    /// A line for the operator (command result, refusal), and whether it is an error.
    pub message: Option<(String, bool)>,
    /// Keys of the current view as (keys, what) — filled by the console from its keymap
    /// so help always shows the bindings in force, overrides included.
    pub help: Vec<(String, String)>,
    /// Short key hints for the footer.
    pub hints: String,
    pub spinner: usize,
    pub alerts: Alerts,
    /// An open question (action scope, confirmation, candidate choice).
    pub dialog: Option<Dialog>,
    /// DLQ: show retried and discarded rows too.
    pub dlq_history: bool,
    /// Review: show the deferred items (not yet due) instead of the due ones.
    pub review_deferred: bool,
    /// Review: the first row of the page on screen (the database pages the queue).
    pub review_offset: i64,
    /// Help: first line shown.
    pub help_scroll: u16,
    /// Dead-job detail: first line shown.
    pub detail_scroll: u16,
    /// NO_COLOR is set: draw without colours.
    pub no_color: bool,
    /// An action running in the background, and since when.
    pub busy: Option<(String, i64)>,
}

impl ConsoleState {
    pub fn new(readonly: bool, role: &str) -> Self {
        ConsoleState {
            stack: vec![Route::Overview],
            lists: HashMap::new(),
            data: Data::default(),
            health: Health::default(),
            input: Input::None,
            frozen_at: None,
            readonly,
            role: role.into(),
            now_ms: crate::now_ms(),
            window: 1,
            call_scroll: [0, 0],
            call_focus: 0,
            stuck_group: None,
            stuck_focus_groups: false,
            stuck_group_sel: 0,
            outbound_sel: 0,
            message: None,
            help: vec![],
            hints: String::new(),
            spinner: 0,
            alerts: Alerts::default(),
            dialog: None,
            dlq_history: false,
            review_deferred: false,
            review_offset: 0,
            help_scroll: 0,
            detail_scroll: 0,
            no_color: false,
            busy: None,
        }
    }

    pub fn route(&self) -> Route {
        *self.stack.last().unwrap_or(&Route::Overview)
    }

    /// The route help describes (the one under `Help`).
    pub fn content_route(&self) -> Route {
        self.stack
            .iter()
            .rev()
            .find(|r| **r != Route::Help)
            .copied()
            .unwrap_or(Route::Overview)
    }

    pub fn list(&self, id: ListId) -> ListState {
        self.lists.get(&id).cloned().unwrap_or_default()
    }

    pub fn list_mut(&mut self, id: ListId) -> &mut ListState {
        self.lists.entry(id).or_default()
    }

    /// The filter of a list, including one being typed.
    pub fn filter_of(&self, id: ListId) -> String {
        match (&self.input, self.route().list()) {
            (Input::Filter(f), Some(cur)) if cur == id => f.clone(),
            _ => self
                .lists
                .get(&id)
                .map(|l| l.filter.clone())
                .unwrap_or_default(),
        }
    }

    pub fn business_name(&self, id: i64) -> String {
        self.data
            .names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn sla_ms(&self, stage: Stage) -> i64 {
        self.alerts.slas_ms[crate::store::read::stage_index(stage)]
    }
}

/// Case-insensitive "every word of the filter appears in the text".
pub fn matches(filter: &str, text: &str) -> bool {
    if filter.trim().is_empty() {
        return true;
    }
    let text = text.to_lowercase();
    filter
        .to_lowercase()
        .split_whitespace()
        .all(|w| text.contains(w))
}
