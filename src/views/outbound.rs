//! `:outbound` — AI calls to new leads: per business today's initiated / connected /
//! failed / no-answer counts and the unmapped leads waiting for a mapping; below, the
//! latest outbound calls with their status and reason. Pure rendering of the view model
//! the refresher built (no store types here).

use super::sanitize;
use super::state::ConsoleState;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

/// One business's line of the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundSummary {
    pub business_id: i64,
    pub business: String,
    pub auto_call: bool,
    pub initiated: i64,
    pub connected: i64,
    pub failed: i64,
    pub no_answer: i64,
    pub scheduled: i64,
    pub unmapped: i64,
}

/// One outbound call (or lead not called) in the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundItem {
    pub id: i64,
    pub business_id: i64,
    pub business: String,
    pub lead_id: i64,
    pub to_number: String,
    pub form: String,
    pub status: String,
    pub reason: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundData {
    pub summary: Vec<OutboundSummary>,
    pub items: Vec<OutboundItem>,
}

fn status_style(status: &str) -> Style {
    match status {
        "completed" | "connected" => Style::new().fg(Color::Green),
        "initiated" | "dialing" | "pending" => Style::new().fg(Color::Cyan),
        "scheduled" => Style::new().fg(Color::Yellow),
        "failed" => Style::new().fg(Color::LightRed),
        "unmapped" | "skipped" | "no_answer" => Style::new().fg(Color::Magenta),
        _ => Style::new(),
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let Some(part) = &s.data.outbound else {
        f.render_widget(
            Paragraph::new("loading outbound calls…")
                .block(Block::default().borders(Borders::ALL).title(" outbound ")),
            area,
        );
        return;
    };
    let d = &part.data;
    let top = (d.summary.len() as u16 + 3).min(area.height / 2).max(4);
    let [sum_area, list_area] =
        Layout::vertical([Constraint::Length(top), Constraint::Min(3)]).areas(area);
    let head = Style::new().add_modifier(Modifier::BOLD);
    let rows = d.summary.iter().map(|b| {
        let warn = |n: i64, c: Color| {
            if n > 0 {
                Style::new().fg(c)
            } else {
                Style::new()
            }
        };
        Row::new(vec![
            Cell::from(sanitize(&b.business)),
            Cell::from(if b.auto_call { "on" } else { "off" }).style(if b.auto_call {
                Style::new().fg(Color::Green)
            } else {
                Style::new().fg(Color::DarkGray)
            }),
            Cell::from(format!("{:>9}", b.initiated)),
            Cell::from(format!("{:>9}", b.connected)).style(warn(b.connected, Color::Green)),
            Cell::from(format!("{:>6}", b.failed)).style(warn(b.failed, Color::LightRed)),
            Cell::from(format!("{:>9}", b.no_answer)),
            Cell::from(format!("{:>9}", b.scheduled)).style(warn(b.scheduled, Color::Yellow)),
            Cell::from(format!("{:>8}", b.unmapped)).style(warn(b.unmapped, Color::Magenta)),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(vec![
            "business",
            "auto-call",
            "initiated",
            "connected",
            "failed",
            "no-answer",
            "scheduled",
            "unmapped",
        ])
        .style(head),
    )
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(" outbound AI calls today "),
    );
    f.render_widget(t, sum_area);

    let now = s.now_ms;
    let sel = selected_index(s);
    // Keep the selected row on screen (borders and header take 3 rows).
    let h = (list_area.height as usize).saturating_sub(3).max(1);
    let skip = sel.map_or(0, |i| (i + 1).saturating_sub(h));
    let rows = d.items.iter().enumerate().skip(skip).map(|(i, o)| {
        let style = if Some(i) == sel {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(format!("#{}", o.id)),
            Cell::from(super::age(now - o.updated_at)),
            Cell::from(sanitize(&o.business)),
            Cell::from(format!("lead {}", o.lead_id)),
            Cell::from(sanitize(&o.to_number)),
            Cell::from(sanitize(&o.form)),
            Cell::from(sanitize(&o.status)).style(status_style(&o.status)),
            Cell::from(sanitize(&o.reason)),
        ])
        .style(style)
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(18),
            Constraint::Length(10),
            Constraint::Length(15),
            Constraint::Length(24),
            Constraint::Length(10),
            Constraint::Min(20),
        ],
    )
    .header(
        Row::new(vec![
            "id", "ago", "business", "lead", "number", "form", "status", "reason",
        ])
        .style(head),
    )
    .block(Block::default().borders(Borders::ALL).title(
        " latest outbound calls — C call this lead now · U call the business's unmapped leads ",
    ));
    f.render_widget(t, list_area);
}

/// The index of the selected outbound row, if there are rows.
pub fn selected_index(s: &ConsoleState) -> Option<usize> {
    let n = s.data.outbound.as_ref()?.data.items.len();
    (n > 0).then(|| s.outbound_sel.min(n - 1))
}

/// The selected outbound row (C and U act on it).
pub fn selected(s: &ConsoleState) -> Option<&OutboundItem> {
    let i = selected_index(s)?;
    s.data.outbound.as_ref()?.data.items.get(i)
}

/// The summary line of a business, for its unmapped count.
pub fn summary_of(s: &ConsoleState, business_id: i64) -> Option<&OutboundSummary> {
    s.data
        .outbound
        .as_ref()?
        .data
        .summary
        .iter()
        .find(|b| b.business_id == business_id)
}
