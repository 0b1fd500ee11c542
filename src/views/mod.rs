//! Pure rendering of console state: no I/O, no locks. Every untrusted string (names,
//! transcripts, errors, payloads) goes through `clean` before it reaches the terminal.

pub mod call;
pub mod lists;
pub mod overview;

use crate::console::snapshot::Snapshot;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn clean(s: &str) -> String {
    crate::domain::text::sanitize(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Stuck,
    Dlq,
    Review,
    Audit,
    Call,
    Help,
}

impl View {
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Stuck => "stuck",
            View::Dlq => "dlq",
            View::Review => "review",
            View::Audit => "audit",
            View::Call => "call",
            View::Help => "help",
        }
    }
}

/// Everything a frame shows. The console owns it; views only read it.
#[derive(Debug, Clone)]
pub struct UiState {
    pub view: View,
    pub snapshot: Option<Snapshot>,
    /// The snapshot before the last refresh, to mark changed cells for one refresh.
    pub previous: Option<Snapshot>,
    pub selected: usize,
    pub scroll: u16,
    pub filter: String,
    pub editing_filter: bool,
    pub palette: Option<String>,
    pub frozen: bool,
    pub refreshing: bool,
    pub spinner: usize,
    pub message: Option<String>,
    pub readonly: bool,
    pub role: String,
    pub now_ms: i64,
    pub sort_column: usize,
    pub refresh_failures: u32,
}

impl UiState {
    pub fn new(readonly: bool, role: &str) -> Self {
        UiState {
            view: View::Overview,
            snapshot: None,
            previous: None,
            selected: 0,
            scroll: 0,
            filter: String::new(),
            editing_filter: false,
            palette: None,
            frozen: false,
            refreshing: false,
            spinner: 0,
            message: None,
            readonly,
            role: role.into(),
            now_ms: crate::now_ms(),
            sort_column: 0,
            refresh_failures: 0,
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }
}

pub fn age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Header: view, data freshness, connection states, frozen/readonly marks; body; footer.
pub fn draw(f: &mut Frame, ui: &UiState) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, ui);
    match ui.view {
        View::Overview => overview::draw(f, body, ui),
        View::Stuck => lists::draw_stuck(f, body, ui),
        View::Dlq => lists::draw_dlq(f, body, ui),
        View::Review => lists::draw_review(f, body, ui),
        View::Audit => lists::draw_audit(f, body, ui),
        View::Call => call::draw(f, body, ui),
        View::Help => draw_help(f, body, ui),
    }
    draw_footer(f, footer, ui);
    if let Some(p) = &ui.palette {
        let w = 50.min(f.area().width);
        let area = Rect::new((f.area().width.saturating_sub(w)) / 2, 3, w, 3);
        f.render_widget(Clear, area);
        let hint = completions(p).join(" ");
        f.render_widget(
            Paragraph::new(vec![
                Line::from(format!(":{p}▏")),
                Line::from(Span::styled(hint, Style::new().fg(Color::DarkGray))),
            ])
            .block(Block::default().borders(Borders::ALL).title(" command ")),
            area,
        );
    }
}

pub const COMMANDS: &[&str] = &[
    "overview", "stuck", "dlq", "review", "audit", "call ", "help", "quit",
];

pub fn completions(prefix: &str) -> Vec<&'static str> {
    COMMANDS
        .iter()
        .copied()
        .filter(|c| c.starts_with(prefix.trim_start()))
        .collect()
}

const SPINNER: [&str; 4] = ["⠋", "⠙", "⠹", "⠸"];

fn draw_header(f: &mut Frame, area: Rect, ui: &UiState) {
    let mut spans = vec![Span::styled(
        " callops ",
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    spans.push(Span::raw(format!(" {} ", ui.view.title())));
    match &ui.snapshot {
        Some(s) => {
            let fresh = ui.now_ms - s.fetched_at;
            let style = if fresh > 10_000 {
                Style::new().fg(Color::Red)
            } else {
                Style::new().fg(Color::Green)
            };
            spans.push(Span::styled(
                format!(" data {} old ({} ms) ", age(fresh), s.took_ms),
                style,
            ));
            let conn = |ok: bool, name: &str| {
                Span::styled(
                    format!(" {name} {} ", if ok { "up" } else { "DOWN" }),
                    if ok {
                        Style::new().fg(Color::Green)
                    } else {
                        Style::new().fg(Color::White).bg(Color::Red)
                    },
                )
            };
            spans.push(conn(s.db_ok, "db"));
            spans.push(conn(s.broker_ok, &s.broker_kind));
            if s.dlx_unarchived > 0 {
                spans.push(Span::styled(
                    format!(" DLX unarchived {} ", s.dlx_unarchived),
                    Style::new().fg(Color::Yellow),
                ));
            }
        }
        None => spans.push(Span::raw(" waiting for first data… ")),
    }
    if ui.refreshing {
        spans.push(Span::raw(format!(
            " {}",
            SPINNER[ui.spinner % SPINNER.len()]
        )));
    }
    if ui.frozen {
        spans.push(Span::styled(
            " FROZEN (f to resume) ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    spans.push(Span::raw(format!(
        "  role {}{}",
        ui.role,
        if ui.readonly { " (read-only)" } else { "" }
    )));
    let mut lines = vec![Line::from(spans)];
    if let Some(e) = ui.snapshot.as_ref().and_then(|s| s.error.clone()) {
        lines.push(Line::from(Span::styled(
            format!(" {}", clean(&e)),
            Style::new().fg(Color::Red),
        )));
    } else if let Some(m) = &ui.message {
        lines.push(Line::from(Span::styled(
            format!(" {}", clean(m)),
            Style::new().fg(Color::Yellow),
        )));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_footer(f: &mut Frame, area: Rect, ui: &UiState) {
    let text = if ui.editing_filter {
        format!(" /{}▏  (Enter apply, Esc clear)", ui.filter)
    } else {
        let filter = if ui.filter.is_empty() {
            String::new()
        } else {
            format!("  filter: /{}", ui.filter)
        };
        format!(" : command  / filter  ? help  f freeze  Enter open  Esc back  q quit{filter}")
    };
    f.render_widget(
        Paragraph::new(text).style(Style::new().fg(Color::DarkGray)),
        area,
    );
}

pub fn help_lines(view: View) -> Vec<(&'static str, &'static str)> {
    let mut keys = vec![
        (
            ":",
            "command palette (:overview :stuck :dlq :review :audit :call <id>), Tab completes",
        ),
        ("/", "filter the current list (Esc clears)"),
        ("?", "this help"),
        ("j / k, ↓ / ↑", "move"),
        ("PgDn / PgUp, Home / End", "page, first, last"),
        ("Enter", "drill down (business → stuck, row → call)"),
        ("Esc", "back"),
        ("f", "freeze / resume the data (read a moving table)"),
        ("r", "refresh now"),
        ("s", "sort by the next column"),
        ("1..6", "overview, stuck, dlq, review, audit, help"),
        ("q, Ctrl-C", "quit (the terminal is restored)"),
    ];
    if view == View::Call {
        keys.push(("j / k", "scroll the transcript and trace"));
    }
    keys
}

fn draw_help(f: &mut Frame, area: Rect, _ui: &UiState) {
    let lines: Vec<Line> = help_lines(View::Help)
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>24}  "), Style::new().fg(Color::Cyan)),
                Span::raw(d),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        area,
    );
}
