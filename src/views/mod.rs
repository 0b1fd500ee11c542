//! Pure rendering of console state: no I/O, no locks, no SQL. `draw` paints one frame from
//! a `ConsoleState` the console owns. Every untrusted string (business and caller names,
//! transcripts, errors, payloads, audit targets) goes through `sanitize` on its way to the
//! terminal: ratatui drops some control characters itself but does not promise to.

pub mod business;
pub mod business_hooks;
pub mod call;
pub mod dead_job;
pub mod help;
pub mod lists;
pub mod outbound;
pub mod overview;
pub mod review;
pub mod state;
pub mod stuck;
pub mod widgets;

pub use state::{ConsoleState, Input, ListId, ListState, Route};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use state::Conn;

/// Untrusted text made safe for a terminal, on one line: escape sequences (CSI incl.
/// `ESC[6n` queries, OSC incl. OSC 52 clipboard writes and OSC 8 links, DCS/SOS/PM/APC),
/// C0/C1 controls (tabs and newlines become spaces) and bidi overrides/isolates removed.
pub fn sanitize(s: &str) -> String {
    crate::domain::text::sanitize(s)
}

/// `sanitize`, keeping newlines (multi-line payloads).
pub fn sanitize_multiline(s: &str) -> String {
    crate::domain::text::sanitize_with(s, true)
}

/// Sanitize every string inside a JSON value (keys too), for JSON printed to a terminal:
/// serde_json escapes C0 controls but writes C1 controls and bidi overrides as they are.
pub fn sanitize_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = sanitize_multiline(s),
        Value::Array(a) => a.iter_mut().for_each(sanitize_json),
        Value::Object(o) => {
            let old = std::mem::take(o);
            for (k, mut val) in old {
                sanitize_json(&mut val);
                o.insert(sanitize(&k), val);
            }
        }
        _ => {}
    }
}

/// "42s", "3m07s", "2h05m", "3d04h".
pub fn age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The zone the console shows times in. UTC unless the console sets it at startup
/// (`console.timezone`), so screenshots and snapshot tests render the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Utc,
    Local,
    Fixed(chrono::FixedOffset),
}

static ZONE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();

impl Zone {
    /// "local", "UTC" or "+02:00"; an IANA name is refused with what to do instead.
    pub fn parse(s: &str) -> Result<Zone, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "local" | "system" => Ok(Zone::Local),
            "utc" | "z" => Ok(Zone::Utc),
            t => {
                let (sign, rest) = match t.as_bytes().first() {
                    Some(b'+') => (1, &t[1..]),
                    Some(b'-') => (-1, &t[1..]),
                    _ => return Err(format!(
                        "console.timezone {s:?}: expected \"local\", \"UTC\" or an offset like \"+02:00\" \
                         (for a named zone run with TZ={s} and timezone = \"local\")"
                    )),
                };
                let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
                let (h, m): (i32, i32) = (
                    h.parse()
                        .map_err(|_| format!("console.timezone {s:?}: bad hours"))?,
                    m.parse()
                        .map_err(|_| format!("console.timezone {s:?}: bad minutes"))?,
                );
                chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
                    .map(Zone::Fixed)
                    .ok_or_else(|| format!("console.timezone {s:?}: offset out of range"))
            }
        }
    }
}

/// Set the console's zone (once, at startup).
pub fn set_zone(z: Zone) {
    let _ = ZONE.set(z);
}

fn zone() -> Zone {
    *ZONE.get().unwrap_or(&Zone::Utc)
}

fn fmt_at(ms: i64, f: &str) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return "?".into();
    };
    match zone() {
        Zone::Utc => t.format(f).to_string(),
        Zone::Local => t.with_timezone(&chrono::Local).format(f).to_string(),
        Zone::Fixed(o) => t.with_timezone(&o).format(f).to_string(),
    }
}

/// The zone's name as the header shows it: "UTC" or "UTC+02:00".
pub fn zone_label(at: i64) -> String {
    match zone() {
        Zone::Utc => "UTC".into(),
        _ => {
            let off = fmt_at(at, "%:z");
            if off == "+00:00" {
                "UTC".into()
            } else {
                format!("UTC{off}")
            }
        }
    }
}

/// Wall-clock time of an epoch-ms instant, in the console's zone.
pub fn clock(ms: i64) -> String {
    fmt_at(ms, "%H:%M:%S")
}

/// The date of an epoch-ms instant, in the console's zone.
pub fn date(ms: i64) -> String {
    fmt_at(ms, "%Y-%m-%d")
}

/// Whether a list's rows answer what its title says (false while a new search, sort or
/// page is being fetched): the selection is not moved while a list is loading.
pub fn list_loaded(s: &ConsoleState, id: ListId) -> bool {
    match id {
        ListId::Overview => s.data.overview.is_some(),
        ListId::Stuck => s.data.stuck.is_some(),
        ListId::Dlq => lists::dlq_page(s).is_some(),
        ListId::Review => review::page(s).is_some(),
        ListId::Audit => s.data.audit.is_some(),
    }
}

/// Date and time of an epoch-ms instant with its zone, in the console's zone.
pub fn datetime(ms: i64) -> String {
    format!("{} {}", fmt_at(ms, "%Y-%m-%d %H:%M:%S"), zone_label(ms))
}

/// Date and time in UTC, whatever the console's zone (JSON and logs).
pub fn datetime_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// Header (2 lines), body, footer (1 line).
pub fn split_screen(area: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Where the rows of the current list are drawn, for paging, keeping the selection in
/// view, and mapping mouse clicks to rows.
pub fn list_rows_area(s: &ConsoleState, full: Rect) -> Option<(ListId, Rect)> {
    let [_, body, _] = split_screen(full);
    match s.route() {
        Route::Overview => Some((ListId::Overview, overview::rows_area(body))),
        Route::Stuck => Some((ListId::Stuck, stuck::rows_area(s, body))),
        Route::Dlq => Some((ListId::Dlq, lists::rows_area(body))),
        Route::Review => Some((ListId::Review, review::rows_area(body))),
        Route::Audit => Some((ListId::Audit, lists::rows_area(body))),
        _ => None,
    }
}

/// Keys of the rows a list shows, filtered and sorted, in display order.
pub fn visible_keys(s: &ConsoleState, id: ListId) -> Vec<i64> {
    match id {
        ListId::Overview => overview::visible(s).iter().map(|b| b.id).collect(),
        ListId::Stuck => stuck::visible(s).iter().map(|c| c.id).collect(),
        ListId::Dlq => lists::dlq_visible(s).iter().map(|d| d.id).collect(),
        ListId::Review => review::visible(s).iter().map(|c| c.call.id).collect(),
        ListId::Audit => lists::audit_visible(s).iter().map(|a| a.id).collect(),
    }
}

/// Paint one frame.
pub fn draw(f: &mut Frame, s: &ConsoleState) {
    let [header, body, footer] = split_screen(f.area());
    draw_header(f, header, s);
    match s.route() {
        Route::Overview => overview::draw(f, body, s),
        Route::Business(id) => business::draw(f, body, s, id),
        Route::Stuck => stuck::draw(f, body, s),
        Route::Call(_) => call::draw(f, body, s),
        Route::Dlq => lists::draw_dlq(f, body, s),
        Route::Review => review::draw(f, body, s),
        Route::Audit => lists::draw_audit(f, body, s),
        Route::DeadJob(id) => dead_job::draw(f, body, s, id),
        Route::Help => help::draw(f, body, s),
        Route::Outbound => outbound::draw(f, body, s),
    }
    draw_footer(f, footer, s);
    if let Input::Palette { text, choice } = &s.input {
        draw_palette(f, body, s, text, *choice);
    }
    if let Some(d) = &s.dialog {
        draw_dialog(f, body, d);
    }
    if s.no_color {
        monochrome(f.buffer_mut());
    }
}

/// NO_COLOR (https://no-color.org): no colours at all; what a background colour marked
/// (the selected row, badges, alerts, the dialog's default) is shown reversed instead.
pub fn monochrome(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        let had_bg = !matches!(cell.bg, Color::Reset);
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
        if had_bg {
            cell.modifier.insert(Modifier::REVERSED);
        }
    }
}

/// A centered modal: title, explanation, numbered options with Cancel first (the default).
fn draw_dialog(f: &mut Frame, area: Rect, d: &state::Dialog) {
    let width = area.width.saturating_sub(4).min(100);
    let mut lines: Vec<Line> = d.lines.iter().map(|l| Line::from(sanitize(l))).collect();
    lines.push(Line::from(""));
    if let Some(t) = &d.text {
        lines.push(Line::from(vec![
            Span::styled("reason: ", Style::new().fg(Color::Cyan)),
            Span::raw(sanitize(t)),
            Span::styled("▏", Style::new().fg(Color::Yellow)),
        ]));
    } else {
        let opt = |i: usize, label: String| {
            // The highlighted option is marked in text too, not by colour alone.
            let mark = if d.choice == i { "▶" } else { " " };
            let style = if d.choice == i {
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            Line::from(Span::styled(format!("{mark}{i}  {label} "), style))
        };
        lines.push(opt(0, "Cancel".into()));
        for (i, o) in d.options.iter().enumerate() {
            lines.push(opt(i + 1, sanitize(o)));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            if d.options.len() == 1 {
                "y or 1 confirms · Enter takes the highlighted one · Esc/n cancels"
            } else {
                "a number picks · Tab/↑↓ move · Enter takes the highlighted one · Esc cancels"
            },
            Style::new().fg(Color::DarkGray),
        )));
    }
    // Rows after wrapping, so the last line (the keys) is never cut off.
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width.saturating_sub(width)) / 2,
        area.y + (area.height.saturating_sub(height)) / 3,
        width,
        height,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(Style::new().fg(Color::Yellow))
                    .title(format!(" {} ", sanitize(&d.title))),
            ),
        r,
    );
}

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

fn badge(text: String, fg: Color, bg: Color) -> Span<'static> {
    Span::styled(
        text,
        Style::new().fg(fg).bg(bg).add_modifier(Modifier::BOLD),
    )
}

fn conn_span(name: &str, c: &Conn, short: bool) -> Span<'static> {
    match c {
        Conn::Up { .. } if short => {
            Span::styled(format!(" {name} ok "), Style::new().fg(Color::Green))
        }
        Conn::Unknown => Span::styled(
            format!(" {name} connecting… "),
            Style::new().fg(Color::DarkGray),
        ),
        Conn::Up { latency_ms } => Span::styled(
            format!(" {name} ok {latency_ms}ms "),
            Style::new().fg(Color::Green),
        ),
        Conn::Slow { latency_ms } => badge(
            format!(" {name} SLOW {} ", age_ms_short(*latency_ms)),
            Color::Black,
            Color::Yellow,
        ),
        Conn::Down { .. } => badge(format!(" {name} DOWN "), Color::White, Color::Red),
    }
}

fn age_ms_short(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// Breadcrumb of the navigation stack: "overview › business Acme › call 17".
fn breadcrumb(s: &ConsoleState) -> String {
    s.stack
        .iter()
        .map(|r| match r {
            Route::Business(id) => format!("business {}", sanitize(&s.business_name(*id))),
            other => other.title(),
        })
        .collect::<Vec<_>>()
        .join(" › ")
}

/// The first header line; `compact` 1 and 2 shorten it for narrow terminals, keeping the
/// connection states (the broker's too) and dropping the trail and the latencies first.
fn header_spans(s: &ConsoleState, compact: u8) -> Vec<Span<'static>> {
    let h = &s.health;
    let crumb = if compact == 0 {
        breadcrumb(s)
    } else {
        match s.route() {
            Route::Business(id) => format!("business {}", sanitize(&s.business_name(id))),
            r => r.title(),
        }
    };
    let mut spans = vec![
        badge(
            if compact < 2 { " callops " } else { " co " }.into(),
            Color::Black,
            Color::Cyan,
        ),
        Span::styled(
            format!(" {crumb} "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    // Freshness of what is on screen, not of the last attempt.
    match h.data_at {
        Some(at) => {
            let old = s.now_ms - at;
            let style = if old > 30_000 {
                Style::new().fg(Color::White).bg(Color::Red)
            } else if old > 10_000 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new().fg(Color::Green)
            };
            spans.push(Span::styled(
                if compact == 0 {
                    format!(" data {} old @{} {} ", age(old), clock(at), zone_label(at))
                } else {
                    format!(" {} @{} {} ", age(old), clock(at), zone_label(at))
                },
                style,
            ));
        }
        None => spans.push(Span::styled(
            " waiting for data… ",
            Style::new().fg(Color::Yellow),
        )),
    }
    spans.push(conn_span("db", &h.db, compact > 0));
    let kind = if h.broker_kind.is_empty() || compact > 1 {
        "broker".to_string()
    } else if compact == 1 {
        h.broker_kind.clone()
    } else {
        format!("broker:{}", h.broker_kind)
    };
    spans.push(conn_span(&kind, &h.broker, compact > 0));
    if let Some(since) = h.refreshing_since {
        let running = s.now_ms - since;
        let text = if running > 3000 {
            format!(
                " {} refreshing {} ",
                SPINNER[s.spinner % SPINNER.len()],
                age(running)
            )
        } else {
            format!(" {} ", SPINNER[s.spinner % SPINNER.len()])
        };
        spans.push(Span::styled(text, Style::new().fg(Color::Cyan)));
    }
    if let Some(at) = s.frozen_at {
        spans.push(badge(
            format!(" FROZEN {} (f resumes) ", age(s.now_ms - at)),
            Color::Black,
            Color::Yellow,
        ));
    }
    if s.readonly {
        spans.push(badge(" READ-ONLY ".into(), Color::Black, Color::Magenta));
    }
    if compact < 2 {
        spans.push(Span::styled(
            format!(" role {} ", sanitize(&s.role)),
            Style::new().fg(Color::DarkGray),
        ));
    }
    spans
}

fn draw_header(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let first = (0..=2)
        .map(|c| Line::from(header_spans(s, c)))
        .find(|l| l.width() <= area.width as usize)
        .unwrap_or_else(|| Line::from(header_spans(s, 2)));
    let second = status_line(s);
    f.render_widget(Paragraph::new(vec![first, second]), area);
}

/// Second header line: a dead connection first (with what is shown instead), then the
/// operator's last message, then the global counters.
fn status_line(s: &ConsoleState) -> Line<'static> {
    let h = &s.health;
    let retry = h
        .next_refresh_at
        .filter(|_| h.failures > 0)
        .map(|t| format!("; retrying in {}", age((t - s.now_ms).max(0))))
        .unwrap_or_default();
    let shown = h
        .data_at
        .map(|t| format!(" — showing data from {}", clock(t)))
        .unwrap_or_default();
    for (name, c) in [("database", &h.db), ("broker", &h.broker)] {
        if let Conn::Down { error, since } = c {
            return Line::from(Span::styled(
                // What and since when first, the retry next: a narrow terminal cuts the end.
                format!(
                    " {name} down since {}{retry}{shown} — {}",
                    clock(*since),
                    sanitize(error)
                ),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
    }
    if let Some((what, since)) = &s.busy {
        return Line::from(Span::styled(
            format!(
                " {} {}… ({})",
                SPINNER[s.spinner % SPINNER.len()],
                sanitize(what),
                age((s.now_ms - since).max(0))
            ),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some((m, is_err)) = &s.message {
        return Line::from(Span::styled(
            format!(" {}", sanitize(m)),
            Style::new().fg(if *is_err { Color::Red } else { Color::Yellow }),
        ));
    }
    let mut spans = vec![];
    let mut counter = |label: &str, n: Option<i64>, alert: Color| {
        if let Some(n) = n {
            spans.push(Span::styled(
                format!(" {label} {n} "),
                if n > 0 {
                    Style::new().fg(alert)
                } else {
                    Style::new().fg(Color::DarkGray)
                },
            ));
        }
    };
    let ov = s.data.overview.as_ref().map(|p| &p.data);
    let counters = s.data.counters;
    counter(
        "dlq",
        counters
            .map(|c| c.0)
            .or(ov.map(|o| o.iter().map(|b| b.dlq).sum())),
        Color::Red,
    );
    counter(
        "review",
        counters
            .map(|c| c.1)
            .or(ov.map(|o| o.iter().map(|b| b.review).sum())),
        Color::Yellow,
    );
    // Counted on every refresh, whatever the view (not only on the stuck view).
    counter(
        "stuck",
        s.data
            .stuck_count
            .or(s.data.stuck.as_ref().map(|p| p.data.total())),
        Color::Red,
    );
    counter(
        "queued",
        ov.map(|o| o.iter().map(|b| b.backlog_total() as i64).sum()),
        Color::Cyan,
    );
    if let Some(dh) = s.data.delivery {
        // Jobs committed and not yet published: normal in passing, an alert once the oldest
        // has waited a minute (the relay is stalled: is any worker running?).
        if dh.outbox_depth > 0 {
            let age = dh.outbox_oldest_ms.unwrap_or(0);
            let text = format!(
                " outbox {} (oldest {}) ",
                dh.outbox_depth,
                age_ms_short(age)
            );
            if age > 60_000 {
                spans.push(badge(format!("{text}STALLED "), Color::Black, Color::Red));
            } else {
                spans.push(Span::styled(text, Style::new().fg(Color::Cyan)));
            }
        }
        if dh.orphan_alarms_24h > 0 {
            spans.push(badge(
                format!(
                    " ORPHANS {} in 24h: a delivery bug, see the trace ",
                    dh.orphan_alarms_24h
                ),
                Color::Black,
                Color::Red,
            ));
        }
    }
    if h.dlx_unarchived > 0 {
        spans.push(badge(
            format!(
                " {} dead letters in RabbitMQ not yet archived ",
                h.dlx_unarchived
            ),
            Color::Black,
            Color::Yellow,
        ));
    }
    spans.push(Span::styled(
        format!(
            " refresh {}",
            if h.last_took_ms > 0 {
                format!("took {}", age_ms_short(h.last_took_ms))
            } else {
                "pending".into()
            }
        ),
        Style::new().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

fn draw_footer(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let line = match &s.input {
        Input::Filter(text) => Line::from(vec![
            Span::styled(" /", Style::new().fg(Color::Cyan)),
            Span::raw(format!("{}▏", sanitize(text))),
            Span::styled(
                "  Enter keeps the filter, Esc clears it",
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        _ => {
            let mut badges = vec![];
            if let Some(id) = s.route().list() {
                let l = s.list(id);
                if !l.filter.is_empty() {
                    badges.push(Span::styled(
                        format!("  filter /{} ", cut_w(&sanitize(&l.filter), 20)),
                        Style::new().fg(Color::Black).bg(Color::Cyan),
                    ));
                }
                if !l.marked.is_empty() {
                    badges.push(Span::styled(
                        format!("  {} marked ", l.marked.len()),
                        Style::new().fg(Color::Black).bg(Color::Magenta),
                    ));
                }
            }
            let room = (area.width as usize)
                .saturating_sub(badges.iter().map(|b| b.width()).sum::<usize>() + 1);
            let mut spans = vec![Span::styled(
                format!(" {}", fold_hints(&s.hints, room)),
                Style::new().fg(Color::DarkGray),
            )];
            spans.extend(badges);
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

fn cut_w(s: &str, n: usize) -> String {
    widgets::cut(s, n)
}

/// The footer's key hints, folded to `width`: whole hints only (never cut mid-word), the
/// actions of the view and help/quit kept first, in their usual order.
pub fn fold_hints(hints: &str, width: usize) -> String {
    let parts: Vec<&str> = hints.split("  ").filter(|p| !p.is_empty()).collect();
    let rank = |p: &str| -> u8 {
        let last = parts.last().copied() == Some(p);
        if parts.first().copied() == Some(p) || last {
            0
        } else if ["sort", "mark", "freeze", "window", "command"]
            .iter()
            .any(|w| p.ends_with(w))
        {
            3
        } else if ["filter", "open", "back", "pane"]
            .iter()
            .any(|w| p.ends_with(w))
        {
            2
        } else {
            1
        }
    };
    let mut keep = vec![false; parts.len()];
    let mut used = 0;
    for r in 0..=3 {
        for (i, p) in parts.iter().enumerate() {
            let w = p.chars().count() + 2;
            if rank(p) == r && used + w <= width {
                keep[i] = true;
                used += w;
            }
        }
    }
    parts
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(p, _)| *p)
        .collect::<Vec<_>>()
        .join("  ")
}

/// Palette commands; `<…>` marks an argument.
pub const COMMANDS: &[(&str, &str)] = &[
    ("overview", "every business: throughput, backlog, errors"),
    ("stuck", "calls past their stage SLA, by error"),
    ("dlq", "dead jobs"),
    ("review", "the manual-review queue"),
    ("audit", "who did what"),
    ("outbound", "AI calls to leads: C call now, U unmapped"),
    ("call", "<id> one call and its trace"),
    ("biz", "<name> one business: charts and queues"),
    ("customers", "<text> find a customer to link"),
    ("link", "<customer> link the selected review item"),
    ("merge", "<temp> <into> merge a temporary customer"),
    ("help", "keys of this view"),
    ("quit", "leave the console"),
];

/// Other words for palette commands (k9s-like): typed in full, or as a unique prefix.
pub const ALIASES: &[(&str, &str)] = &[
    ("dead", "dlq"),
    ("deadletters", "dlq"),
    ("jobs", "dlq"),
    ("home", "overview"),
    ("o", "overview"),
    ("business", "biz"),
    ("find", "customers"),
    ("q", "quit"),
    ("q!", "quit"),
    ("exit", "quit"),
    ("?", "help"),
];

/// The command a typed word means: a command or alias named exactly, else the one command
/// that the word is a prefix of (`:rev` → review, `:dead` → dlq). Several are an error that
/// names them; nothing is an error that lists the commands.
pub fn resolve_command(word: &str) -> Result<String, String> {
    let w = word.trim().to_lowercase();
    if w.is_empty() {
        return Ok(w);
    }
    if let Some((c, _)) = COMMANDS.iter().find(|(c, _)| *c == w) {
        return Ok(c.to_string());
    }
    if let Some((_, c)) = ALIASES.iter().find(|(a, _)| *a == w) {
        return Ok(c.to_string());
    }
    let mut hits: Vec<&str> = COMMANDS
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| c.starts_with(&w))
        .chain(
            ALIASES
                .iter()
                .filter(|(a, _)| a.starts_with(&w))
                .map(|(_, c)| *c),
        )
        .collect();
    hits.sort();
    hits.dedup();
    match hits.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "unknown command :{} — commands: {}",
            sanitize(word),
            COMMANDS
                .iter()
                .map(|(c, _)| format!(":{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        many => Err(format!(
            ":{} could be {} — type more letters",
            sanitize(word),
            many.iter()
                .map(|c| format!(":{c}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

/// Completions for the palette text: command names, then business names after `biz `.
pub fn completions(text: &str, names: &[String]) -> Vec<String> {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix("biz ") {
        let q = rest.trim().to_lowercase();
        let mut v: Vec<String> = names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&q))
            .chain(
                names
                    .iter()
                    .filter(|n| !n.to_lowercase().starts_with(&q) && n.to_lowercase().contains(&q)),
            )
            .map(|n| format!("biz {}", sanitize(n)))
            .collect();
        v.truncate(50);
        return v;
    }
    if t.contains(' ') {
        return vec![];
    }
    let lower = t.to_lowercase();
    COMMANDS
        .iter()
        .filter(|(c, _)| {
            c.starts_with(&lower)
                || ALIASES
                    .iter()
                    .any(|(a, to)| to == c && a.starts_with(&lower) && !lower.is_empty())
        })
        .map(|(c, d)| {
            if d.starts_with('<') {
                format!("{c} ")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn draw_palette(f: &mut Frame, body: Rect, s: &ConsoleState, text: &str, choice: usize) {
    let mut names: Vec<String> = s.data.names.values().cloned().collect();
    names.sort();
    let options = completions(text, &names);
    let shown = options.len().min(8) as u16;
    let w = body.width.min(72);
    let area = Rect::new(body.x + (body.width - w) / 2, body.y + 1, w, 3 + shown);
    f.render_widget(Clear, area);
    let mut lines = vec![Line::from(vec![
        Span::styled(":", Style::new().fg(Color::Cyan)),
        Span::raw(format!("{}▏", sanitize(text))),
    ])];
    let start = choice
        .saturating_sub(7)
        .min(options.len().saturating_sub(8));
    for (i, o) in options.iter().enumerate().skip(start).take(8) {
        let word = o.split_whitespace().next().unwrap_or("");
        let desc = COMMANDS
            .iter()
            .find(|(c, _)| *c == word)
            .map(|(_, d)| *d)
            .unwrap_or("");
        let style = if i == choice % options.len().max(1) {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {o:<24}"), style),
            Span::styled(format!(" {desc}"), Style::new().fg(Color::DarkGray)),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(Color::Cyan))
                .title(" command — Tab completes, ↑↓ choose, Enter runs, Esc cancels "),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_every_kind_of_escape() {
        let cases = [
            ("a\x1b[31mred\x1b[0mb", "aredb"),                       // CSI SGR
            ("x\x1b[6ny", "xy"),                                     // cursor position query
            ("x\x1b[2J\x1b[Hy", "xy"),                               // clear screen, home
            ("c\x1b]52;c;ZWNobyBwd25lZA==\x07d", "cd"),              // OSC 52 clipboard, BEL
            ("c\x1b]52;c;ZWNobyBwd25lZA==\x1b\\d", "cd"),            // OSC 52, ST
            ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"), // OSC 8 hyperlink
            ("\x1b]0;pwned title\x07t", "t"),                        // OSC 0 window title
            ("\x1bP1$r0m\x1b\\dcs", "dcs"),                          // DCS
            ("\u{9b}31mc1", "c1"),                                   // 8-bit CSI
            ("\u{9d}0;t\u{9c}x", "x"),                               // 8-bit OSC … ST
            ("a\u{202e}cod.exe\u{202c}b", "acod.exeb"),              // bidi override
            ("\u{2066}i\u{2069}", "i"),                              // bidi isolates
            ("bell\x07 back\x08space\x7f", "bell backspace"),        // C0 and DEL
            ("a\tb\r\nc", "a b  c"),                                 // tabs/newlines → spaces
            ("esc at end\x1b", "esc at end"),
            ("\x1bcreset", "reset"), // RIS
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn sanitize_keeps_real_text_and_multiline_keeps_newlines() {
        let t = "Grüß Gott — मेरा नाम प्रिया — שלום — 你好";
        assert_eq!(sanitize(t), t);
        assert_eq!(sanitize_multiline("a\nb\x1b[1m"), "a\nb");
    }

    #[test]
    fn json_strings_and_keys_are_sanitized() {
        let mut v =
            serde_json::json!({"n\u{202e}k": ["\x1b]52;c;eA==\x07ok", {"e": "\u{9b}2Jx"}], "i": 3});
        sanitize_json(&mut v);
        assert_eq!(v, serde_json::json!({"nk": ["ok", {"e": "x"}], "i": 3}));
    }

    #[test]
    fn palette_completes_commands_and_business_names() {
        let names = vec!["Acme Dental".to_string(), "Berlin Autohaus".to_string()];
        assert_eq!(completions("st", &names), vec!["stuck"]);
        assert_eq!(completions("ca", &names), vec!["call "]);
        assert_eq!(completions("biz be", &names), vec!["biz Berlin Autohaus"]);
        assert_eq!(completions("biz dental", &names), vec!["biz Acme Dental"]);
        assert!(completions("call 12", &names).is_empty());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(187_000), "3m07s");
        assert_eq!(age(7_500_000), "2h05m");
        assert_eq!(age(-5), "0s");
    }
}
