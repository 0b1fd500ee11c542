//! The list views: stuck calls (grouped by error signature), dead jobs, review queue, audit.

use super::{age, clean, UiState};
use crate::domain::signature::error_signature;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;
use std::collections::BTreeMap;

fn table<'a>(
    rows: Vec<Row<'a>>,
    header: &[&'a str],
    widths: Vec<Constraint>,
    title: String,
    selected: usize,
) -> (Table<'a>, TableState) {
    let n = rows.len();
    let t = Table::new(rows, widths)
        .header(
            Row::new(header.to_vec())
                .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        )
        .row_highlight_style(Style::new().bg(Color::DarkGray))
        .block(Block::default().borders(Borders::ALL).title(title));
    (
        t,
        TableState::default().with_selected(Some(selected.min(n.saturating_sub(1)))),
    )
}

/// Rows of the stuck view after filtering, in display order (the console uses it to open a call).
pub fn stuck_rows(ui: &UiState) -> Vec<&crate::store::Call> {
    let Some(s) = &ui.snapshot else { return vec![] };
    s.stuck
        .iter()
        .filter(|c| {
            ui.matches(&format!(
                "{} {} {} {}",
                c.id,
                c.business_id,
                c.stage,
                c.last_error.as_deref().unwrap_or("")
            ))
        })
        .collect()
}

pub fn draw_stuck(f: &mut Frame, area: Rect, ui: &UiState) {
    let rows = stuck_rows(ui);
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for c in &rows {
        *groups
            .entry(error_signature(
                c.last_error.as_deref().unwrap_or("(no error: waiting)"),
            ))
            .or_default() += 1;
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let [top, bottom] = Layout::vertical([
        Constraint::Length((groups.len() as u16 + 3).min(10)),
        Constraint::Min(3),
    ])
    .areas(area);
    let g_rows: Vec<Row> = groups
        .iter()
        .map(|(sig, n)| Row::new(vec![n.to_string(), clean(sig)]))
        .collect();
    let (t, _) = table(
        g_rows,
        &["calls", "error signature"],
        vec![Constraint::Length(6), Constraint::Min(20)],
        " stuck calls by error ".into(),
        0,
    );
    f.render_widget(t, top);
    let now = ui.now_ms;
    let r: Vec<Row> = rows
        .iter()
        .map(|c| {
            Row::new(vec![
                c.id.to_string(),
                c.business_id.to_string(),
                c.stage.to_string(),
                c.state.to_string(),
                age(now - c.state_since),
                c.attempts.to_string(),
                clean(c.last_error.as_deref().unwrap_or("")),
            ])
        })
        .collect();
    let widths = vec![
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(11),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(4),
        Constraint::Min(20),
    ];
    let (t, mut st) = table(
        r,
        &["call", "biz", "stage", "state", "age", "try", "last error"],
        widths,
        format!(
            " stuck calls ({}) — older than their stage SLA; Enter opens ",
            rows.len()
        ),
        ui.selected,
    );
    f.render_stateful_widget(t, bottom, &mut st);
}

pub fn dlq_rows(ui: &UiState) -> Vec<&crate::store::DeadJob> {
    let Some(s) = &ui.snapshot else { return vec![] };
    s.dead
        .iter()
        .filter(|d| {
            ui.matches(&format!(
                "{} {} {} {}",
                d.id,
                d.business_id.unwrap_or(0),
                d.stage.as_deref().unwrap_or(""),
                d.last_error
            ))
        })
        .collect()
}

pub fn draw_dlq(f: &mut Frame, area: Rect, ui: &UiState) {
    let rows = dlq_rows(ui);
    let total = ui.snapshot.as_ref().map(|s| s.dead_total).unwrap_or(0);
    let now = ui.now_ms;
    let r: Vec<Row> = rows
        .iter()
        .map(|d| {
            Row::new(vec![
                format!("#{}", d.id),
                d.business_id.map(|b| b.to_string()).unwrap_or("?".into()),
                d.stage.clone().unwrap_or("?".into()),
                d.call_id.map(|c| c.to_string()).unwrap_or("-".into()),
                d.attempts.to_string(),
                age(now - d.dead_at),
                d.source.clone(),
                clean(&d.last_error),
            ])
        })
        .collect();
    let widths = vec![
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Min(20),
    ];
    let (t, mut st) = table(
        r,
        &[
            "dead",
            "biz",
            "stage",
            "call",
            "try",
            "age",
            "source",
            "last error",
        ],
        widths,
        format!(
            " dead jobs ({total} dead; newest {} shown) — Enter opens the call ",
            rows.len()
        ),
        ui.selected,
    );
    f.render_stateful_widget(t, area, &mut st);
}

pub fn review_rows(ui: &UiState) -> Vec<&crate::store::Call> {
    let Some(s) = &ui.snapshot else { return vec![] };
    s.review
        .iter()
        .filter(|c| {
            ui.matches(&format!(
                "{} {} {} {}",
                c.id,
                c.business_id,
                c.extracted_name.as_deref().unwrap_or(""),
                c.review_reason.as_deref().unwrap_or("")
            ))
        })
        .collect()
}

pub fn draw_review(f: &mut Frame, area: Rect, ui: &UiState) {
    let rows = review_rows(ui);
    let now = ui.now_ms;
    let r: Vec<Row> = rows
        .iter()
        .map(|c| {
            Row::new(vec![
                c.id.to_string(),
                c.business_id.to_string(),
                c.review_priority.unwrap_or(0).to_string(),
                age(now - c.state_since),
                c.number_status.clone().unwrap_or_default(),
                clean(c.extracted_name.as_deref().unwrap_or("-")),
                clean(c.review_reason.as_deref().unwrap_or("")),
            ])
        })
        .collect();
    let widths = vec![
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(20),
        Constraint::Min(20),
    ];
    let (t, mut st) = table(
        r,
        &["call", "biz", "prio", "waiting", "number", "name", "why"],
        widths,
        format!(
            " review queue ({}) by priority, then age — Enter opens ",
            rows.len()
        ),
        ui.selected,
    );
    f.render_stateful_widget(t, area, &mut st);
}

pub fn draw_audit(f: &mut Frame, area: Rect, ui: &UiState) {
    let Some(s) = &ui.snapshot else { return };
    let now = ui.now_ms;
    let r: Vec<Row> = s
        .audit
        .iter()
        .filter(|a| ui.matches(&format!("{} {} {}", a.actor, a.action, a.target)))
        .map(|a| {
            Row::new(vec![
                age(now - a.at),
                clean(&a.actor),
                a.role.clone(),
                a.action.clone(),
                clean(&a.target),
                clean(&format!(
                    "{} → {}",
                    a.before.as_deref().unwrap_or("-"),
                    a.after.as_deref().unwrap_or("-")
                )),
            ])
        })
        .collect();
    let widths = vec![
        Constraint::Length(9),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(22),
        Constraint::Length(24),
        Constraint::Min(20),
    ];
    let (t, mut st) = table(
        r,
        &["ago", "who", "role", "action", "target", "change"],
        widths,
        " audit log ".into(),
        ui.selected,
    );
    f.render_stateful_widget(t, area, &mut st);
}
