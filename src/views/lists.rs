//! The plain lists: dead jobs, the review queue and the audit log, each with the selected
//! row's details underneath (payload and attempt errors, candidates, before/after). The
//! actions on them (retry, discard, link …) come with their own dialogs.

use super::state::{matches, ConsoleState, ListId};
use super::widgets::{
    col, col_p, cut, fit_columns, table_rows_area, thousands, ListTable, ALERT, DIM,
};
use super::{age, clock, sanitize};
use crate::store::audit::AuditEntry;
use crate::store::DeadJob;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Wrap};
use ratatui::Frame;

pub const DLQ_SORTS: &[&str] = &["newest", "business", "stage", "attempts", "error"];
pub use super::review::{candidates, visible as review_visible, REVIEW_SORTS};
pub const AUDIT_SORTS: &[&str] = &["newest", "who", "action"];

const DETAIL_H: u16 = 6;

pub(crate) fn split(body: Rect) -> [Rect; 2] {
    let detail = if body.height >= 16 { DETAIL_H } else { 0 };
    Layout::vertical([Constraint::Min(4), Constraint::Length(detail)]).areas(body)
}

pub fn rows_area(body: Rect) -> Rect {
    table_rows_area(split(body)[0], 1, 0)
}

fn title(name: &str, shown: usize, total: String, extra: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!(" {name} {shown} of {total} "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(extra, DIM),
    ])
}

pub(crate) fn detail(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    if area.height == 0 {
        return;
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title} ")),
        ),
        area,
    );
}

fn k(t: &str) -> Span<'static> {
    Span::styled(format!("{t} "), Style::new().fg(Color::Cyan))
}

// ---- DLQ ----

/// The fetched dead jobs, sorted. The DLQ filter is a query the refresher runs over the
/// whole table (so retrying "everything matching" means what the list shows), not a
/// filter over this page.
pub fn dlq_visible(s: &ConsoleState) -> Vec<&DeadJob> {
    let Some(p) = dlq_page(s) else {
        return vec![];
    };
    let l = s.list(ListId::Dlq);
    let biz = |d: &DeadJob| {
        d.business_id
            .map(|b| s.business_name(b))
            .unwrap_or_default()
    };
    let mut rows: Vec<&DeadJob> = p.rows.iter().collect();
    rows.sort_by(|a, b| {
        let o = match l.sort % DLQ_SORTS.len() {
            0 => b.dead_at.cmp(&a.dead_at),
            1 => biz(a).to_lowercase().cmp(&biz(b).to_lowercase()),
            2 => a.stage.cmp(&b.stage),
            3 => b.attempts.cmp(&a.attempts),
            _ => a.error_signature.cmp(&b.error_signature),
        };
        let o = if l.reverse { o.reverse() } else { o };
        o.then(b.id.cmp(&a.id))
    });
    rows
}

/// The fetched dead jobs, if they answer the search and history flag on screen: rows
/// fetched for another search are never shown under this one's title.
pub fn dlq_page(s: &ConsoleState) -> Option<&crate::store::read::DlqData> {
    let l = s.list(ListId::Dlq);
    s.data
        .dlq
        .as_ref()
        .filter(|_| {
            s.data
                .dlq_query
                .as_ref()
                .is_some_and(|(t, h)| t.trim() == l.filter.trim() && *h == s.dlq_history)
        })
        .map(|p| &p.data)
}

pub fn draw_dlq(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let [list, bottom] = split(area);
    let rows = dlq_visible(s);
    let keys: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let l = s.list(ListId::Dlq);
    let now = s.now_ms;
    let total = dlq_page(s).map(|p| p.total).unwrap_or(0);
    let mut cols = vec![
        col("dead", Constraint::Length(7)),
        col_p("business", Constraint::Length(18), 2),
        col_p("stage", Constraint::Length(10), 1),
        col("call", Constraint::Length(7)),
        col_p("try", Constraint::Length(3), 3),
        col("died", Constraint::Length(7)),
        col_p("source", Constraint::Length(6), 4),
        col("last error", Constraint::Min(12)),
    ];
    // History (H): what became of each row, in words and colour.
    if s.dlq_history {
        cols.insert(1, col("status", Constraint::Length(9)));
    }
    let (_, free) = fit_columns(&cols, table_rows_area(list, 1, 0).width);
    let build = |i: usize| -> Vec<Cell<'static>> {
        let d = rows[i];
        let status = Cell::from(d.status.as_str().to_string()).style(match d.status {
            crate::store::DeadJobStatus::Dead => Style::new().fg(Color::LightRed),
            crate::store::DeadJobStatus::Retried => Style::new().fg(Color::Green),
            _ => DIM,
        });
        let mut v = vec![
            Cell::from(format!("{:>7}", format!("#{}", d.id))),
            Cell::from(cut(
                &sanitize(
                    &d.business_id
                        .map(|b| s.business_name(b))
                        .unwrap_or_else(|| "?".into()),
                ),
                18,
            )),
            Cell::from(sanitize(d.stage.as_deref().unwrap_or("?"))),
            Cell::from(format!(
                "{:>7}",
                d.call_id
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            )),
            Cell::from(format!("{:>3}", d.attempts)),
            Cell::from(format!("{:>7}", age(now - d.dead_at))),
            Cell::from(sanitize(&d.source)),
            Cell::from(cut(&sanitize(&d.last_error), free as usize))
                .style(Style::new().fg(Color::LightRed)),
        ];
        if s.dlq_history {
            v.insert(1, status);
        }
        v
    };
    let sort = l.sort % DLQ_SORTS.len();
    let sorted = [5, 1, 2, 4, 7][sort] + s.dlq_history as usize;
    let count = rows.len();
    ListTable {
        title: title(
            "dead jobs",
            count,
            thousands(total),
            format!(
                "· {}{} · newest {} fetched · sort {} (s/S) · Enter opens the call ",
                if l.filter.is_empty() {
                    "/ searches biz:NAME stage:S call:ID error words".to_string()
                } else {
                    format!("matching {:?}", sanitize(&l.filter))
                },
                if s.dlq_history {
                    " · with history"
                } else {
                    ""
                },
                dlq_page(s).map(|p| p.rows.len()).unwrap_or(0),
                DLQ_SORTS[sort]
            ),
        ),
        cols,
        sorted: Some((sorted, l.reverse)),
        header_h: 1,
        footer: None,
        empty: if dlq_page(s).is_none() {
            "loading…"
        } else {
            "no dead jobs"
        },
    }
    .draw(f, list, &l, count, &keys, build);
    let lines = match rows.get(l.selected.min(count.saturating_sub(1))) {
        Some(d) if count > 0 => {
            let mut v = vec![
                Line::from(vec![
                    k("queue"),
                    Span::raw(format!("{}  ", sanitize(&d.queue))),
                    k("job"),
                    Span::raw(format!("{}  ", sanitize(&d.job_id))),
                    k("why dead"),
                    Span::raw(format!("{}  ", sanitize(&d.reason))),
                    k("status"),
                    Span::raw(format!(
                        "{}{}",
                        d.status.as_str(),
                        d.status_by
                            .as_deref()
                            .map(|b| format!(" by {}", sanitize(b)))
                            .unwrap_or_default()
                    )),
                ]),
                Line::from(vec![k("payload"), Span::raw(sanitize(&d.payload))]),
            ];
            for e in d.errors.iter().rev().take(3) {
                v.push(Line::from(vec![
                    Span::styled(format!("attempt {} at {} ", e.attempt, clock(e.at)), DIM),
                    Span::styled(sanitize(&e.error), Style::new().fg(Color::LightRed)),
                ]));
            }
            v
        }
        _ => vec![],
    };
    detail(f, bottom, "selected dead job", lines);
}

// ---- audit ----

pub fn audit_visible(s: &ConsoleState) -> Vec<&AuditEntry> {
    let Some(p) = &s.data.audit else {
        return vec![];
    };
    let filter = s.filter_of(ListId::Audit);
    let l = s.list(ListId::Audit);
    let mut rows: Vec<&AuditEntry> = p
        .data
        .iter()
        .filter(|a| {
            matches(
                &filter,
                &format!(
                    "{} {} {} {} {}",
                    a.actor,
                    a.role,
                    a.action,
                    a.target,
                    a.detail.as_deref().unwrap_or("")
                ),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        let o = match l.sort % AUDIT_SORTS.len() {
            0 => b.at.cmp(&a.at),
            1 => a.actor.cmp(&b.actor),
            _ => a.action.cmp(&b.action),
        };
        let o = if l.reverse { o.reverse() } else { o };
        o.then(b.id.cmp(&a.id))
    });
    rows
}

pub fn draw_audit(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let [list, bottom] = split(area);
    let rows = audit_visible(s);
    let keys: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let l = s.list(ListId::Audit);
    let now = s.now_ms;
    let cols = vec![
        col_p("when", Constraint::Length(8), 3),
        col("ago", Constraint::Length(7)),
        col("who", Constraint::Length(12)),
        col_p("role", Constraint::Length(7), 4),
        col("action", Constraint::Length(22)),
        col_p("target", Constraint::Length(20), 2),
        col("change", Constraint::Min(12)),
    ];
    let (_, free) = fit_columns(&cols, table_rows_area(list, 1, 0).width);
    let build = |i: usize| -> Vec<Cell<'static>> {
        let a = rows[i];
        let role_style = match a.role.as_str() {
            "admin" => Style::new().fg(Color::LightRed),
            "support" => Style::new().fg(Color::Yellow),
            _ => Style::new(),
        };
        vec![
            Cell::from(clock(a.at)),
            Cell::from(format!("{:>7}", age(now - a.at))),
            Cell::from(cut(&sanitize(&a.actor), 12)),
            Cell::from(sanitize(&a.role)).style(role_style),
            Cell::from(sanitize(&a.action)),
            Cell::from(cut(&sanitize(&a.target), 20)),
            Cell::from(cut(
                &format!(
                    "{} → {}",
                    sanitize(a.before.as_deref().unwrap_or("-")),
                    sanitize(a.after.as_deref().unwrap_or("-"))
                ),
                free as usize,
            )),
        ]
    };
    let sort = l.sort % AUDIT_SORTS.len();
    let count = rows.len();
    ListTable {
        title: title(
            "audit log",
            count,
            thousands(
                s.data
                    .audit
                    .as_ref()
                    .map(|p| p.data.len() as i64)
                    .unwrap_or(0),
            ),
            format!("· newest first fetched · sort {} (s/S) ", AUDIT_SORTS[sort]),
        ),
        cols,
        sorted: Some(([0, 2, 4][sort], l.reverse)),
        header_h: 1,
        footer: None,
        empty: if s.data.audit.is_none() {
            "loading…"
        } else {
            "nobody has done anything yet"
        },
    }
    .draw(f, list, &l, count, &keys, build);
    let lines = match rows.get(l.selected.min(count.saturating_sub(1))) {
        Some(a) if count > 0 => vec![
            Line::from(vec![
                k("at"),
                Span::raw(format!("{}  ", super::datetime(a.at))),
                k("who"),
                Span::raw(format!("{} ({})  ", sanitize(&a.actor), sanitize(&a.role))),
                k("did"),
                Span::raw(format!(
                    "{} on {}",
                    sanitize(&a.action),
                    sanitize(&a.target)
                )),
            ]),
            Line::from(vec![
                k("before"),
                Span::raw(sanitize(a.before.as_deref().unwrap_or("-"))),
            ]),
            Line::from(vec![
                k("after"),
                Span::raw(sanitize(a.after.as_deref().unwrap_or("-"))),
            ]),
            Line::from(vec![
                k("detail"),
                Span::styled(
                    sanitize(a.detail.as_deref().unwrap_or("-")),
                    if a.action.contains("discard") {
                        ALERT
                    } else {
                        Style::new()
                    },
                ),
            ]),
        ],
        _ => vec![],
    };
    detail(f, bottom, "selected entry", lines);
}
