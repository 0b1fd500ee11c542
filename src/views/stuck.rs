//! Stuck calls: not in a terminal state and in their stage longer than its SLA. Grouped by
//! error signature (top pane; Tab focuses it, Enter narrows the list to a group) and listed
//! oldest first (bottom pane; Enter opens the call).

use super::state::{matches, ConsoleState, ListId};
use super::widgets::{
    col, col_p, cut, table_rows_area, thousands, ListTable, ALERT, DIM, HEADER, SELECTED, WARN,
};
use super::{age, sanitize};
use crate::store::read::{signature_of, stage_index, stuck_groups, StuckGroup};
use crate::store::Call;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use ratatui::Frame;

pub const SORTS: &[&str] = &["age", "over SLA", "business", "stage", "attempts", "call"];

/// Groups over the fetched stuck calls.
pub fn groups(s: &ConsoleState) -> Vec<StuckGroup> {
    s.data
        .stuck
        .as_ref()
        .map(|p| stuck_groups(&p.data.calls))
        .unwrap_or_default()
}

fn split(s: &ConsoleState, body: Rect) -> [Rect; 2] {
    let n = groups(s).len().clamp(1, 6) as u16;
    Layout::vertical([Constraint::Length(n + 3), Constraint::Min(4)]).areas(body)
}

pub fn rows_area(s: &ConsoleState, body: Rect) -> Rect {
    table_rows_area(split(s, body)[1], 1, 0)
}

/// Stuck calls after the group and text filters, in the chosen order.
pub fn visible(s: &ConsoleState) -> Vec<&Call> {
    let Some(p) = &s.data.stuck else {
        return vec![];
    };
    let filter = s.filter_of(ListId::Stuck);
    let l = s.list(ListId::Stuck);
    let now = s.now_ms;
    let mut rows: Vec<&Call> = p
        .data
        .calls
        .iter()
        .filter(|c| s.stuck_group.as_ref().is_none_or(|g| signature_of(c) == *g))
        .filter(|c| {
            matches(
                &filter,
                &format!(
                    "{} {} {} {} {} {}",
                    c.id,
                    s.business_name(c.business_id),
                    c.stage,
                    c.state,
                    c.external_id,
                    c.last_error.as_deref().unwrap_or("")
                ),
            )
        })
        .collect();
    let over = |c: &Call| now - c.state_since - s.sla_ms(c.stage);
    rows.sort_by(|a, b| {
        let o = match l.sort % SORTS.len() {
            0 => a.state_since.cmp(&b.state_since),
            1 => over(b).cmp(&over(a)),
            2 => s
                .business_name(a.business_id)
                .to_lowercase()
                .cmp(&s.business_name(b.business_id).to_lowercase()),
            3 => a.stage.cmp(&b.stage),
            4 => b.attempts.cmp(&a.attempts),
            _ => a.id.cmp(&b.id),
        };
        let o = if l.reverse { o.reverse() } else { o };
        o.then(a.id.cmp(&b.id))
    });
    rows
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let [top, bottom] = split(s, area);
    draw_groups(f, top, s);
    let rows = visible(s);
    let keys: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let l = s.list(ListId::Stuck);
    let now = s.now_ms;
    let (total, shown_limit) = s
        .data
        .stuck
        .as_ref()
        .map(|p| (p.data.total(), p.data.calls.len()))
        .unwrap_or((0, 0));
    let cols = vec![
        col("call", Constraint::Length(8)),
        col_p("business", Constraint::Length(18), 3),
        col_p("stage", Constraint::Length(10), 1),
        col_p("state", Constraint::Length(8), 4),
        col("in state", Constraint::Length(8)),
        col_p("over SLA", Constraint::Length(8), 2),
        col_p("try", Constraint::Length(3), 5),
        col("last error", Constraint::Min(12)),
    ];
    let (_, free) = super::widgets::fit_columns(&cols, table_rows_area(bottom, 1, 0).width);
    let build = |i: usize| -> Vec<Cell<'static>> {
        let c = rows[i];
        let in_state = now - c.state_since;
        let sla = s.sla_ms(c.stage);
        let over = in_state - sla;
        vec![
            Cell::from(format!("{:>8}", c.id)),
            Cell::from(cut(&sanitize(&s.business_name(c.business_id)), 18)),
            Cell::from(c.stage.as_str()),
            Cell::from(c.state.as_str()).style(if c.state.as_str() == "retrying" {
                WARN
            } else {
                Style::new()
            }),
            Cell::from(format!("{:>8}", age(in_state))),
            Cell::from(format!("{:>8}", format!("+{}", age(over)))).style(if over > sla {
                ALERT
            } else {
                WARN
            }),
            Cell::from(format!("{:>3}", c.attempts)),
            Cell::from(cut(
                &sanitize(c.last_error.as_deref().unwrap_or("—")),
                free as usize,
            ))
            .style(if c.last_error.is_some() {
                Style::new()
            } else {
                DIM
            }),
        ]
    };
    let sort = l.sort % SORTS.len();
    let sorted_col = match sort {
        0 => Some(4),
        1 => Some(5),
        2 => Some(1),
        3 => Some(2),
        4 => Some(6),
        _ => Some(0),
    };
    let group = s
        .stuck_group
        .as_ref()
        .map(|g| format!(" · group \"{}\" (Esc clears)", cut(&sanitize(g), 40)))
        .unwrap_or_default();
    let title = Line::from(vec![
        Span::styled(
            format!(" stuck calls {} of {} ", rows.len(), thousands(total)),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                "· oldest {shown_limit} fetched{group} · sort {} (s/S) · Enter opens ",
                SORTS[sort]
            ),
            DIM,
        ),
    ]);
    let count = rows.len();
    ListTable {
        title,
        cols,
        sorted: sorted_col.map(|c| (c, l.reverse)),
        header_h: 1,
        footer: None,
        empty: if s.data.stuck.is_none() {
            "loading…"
        } else {
            "nothing stuck: every call in flight is within its stage's SLA"
        },
    }
    .draw(f, bottom, &l, count, &keys, build);
}

fn draw_groups(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let groups = groups(s);
    let by_stage = s
        .data
        .stuck
        .as_ref()
        .map(|p| {
            crate::domain::stage::Stage::ALL
                .iter()
                .filter(|st| p.data.by_stage[stage_index(**st)] > 0)
                .map(|st| {
                    format!(
                        "{st} {} (SLA {})",
                        thousands(p.data.by_stage[stage_index(*st)]),
                        age(p.data.slas_ms[stage_index(*st)])
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            let active = s.stuck_group.as_deref() == Some(g.signature.as_str());
            Row::new(vec![
                Cell::from(format!("{:>6}", g.count)),
                Cell::from(
                    g.stages
                        .iter()
                        .map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Cell::from(format!("{:>8}", age(s.now_ms - g.oldest_since))),
                Cell::from(sanitize(&g.signature)).style(if active {
                    Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
                } else {
                    Style::new()
                }),
            ])
        })
        .collect();
    let focus = s.stuck_focus_groups;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if focus { HEADER } else { Style::new() })
        .title(Line::from(vec![
            Span::styled(
                " by error signature ",
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                format!(
                    "· {} · Tab {} ",
                    if by_stage.is_empty() {
                        "none".into()
                    } else {
                        by_stage
                    },
                    if focus {
                        "back to calls, Enter narrows"
                    } else {
                        "selects a group"
                    }
                ),
                DIM,
            ),
        ]));
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Min(20),
        ],
    )
    .header(Row::new(vec!["calls", "stages", "oldest", "error signature"]).style(HEADER))
    .row_highlight_style(SELECTED)
    .block(block);
    let mut st = TableState::default().with_selected(if focus && !groups.is_empty() {
        Some(s.stuck_group_sel.min(groups.len() - 1))
    } else {
        None
    });
    f.render_stateful_widget(table, area, &mut st);
}
