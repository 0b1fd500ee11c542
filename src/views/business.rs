//! One business: its pipeline settings (what decides whether QC and leads happen), a table
//! per stage (rates over every window, failures, queue depth and age, calls per state)
//! and a 60-minute chart per stage.

use super::state::ConsoleState;
use super::widgets::{sparkline, ALERT, DIM, HEADER, WARN};
use super::{age, sanitize};
use crate::domain::stage::{CallState, Stage};
use crate::store::read::{stage_index, BusinessDetail, WINDOWS_MIN};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

fn on_off(b: bool) -> Span<'static> {
    if b {
        Span::styled("on", Style::new().fg(Color::Green))
    } else {
        Span::styled(
            "OFF",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState, id: i64) {
    let d = match &s.data.business {
        Some(p) if p.data.business.id == id => &p.data,
        _ => {
            f.render_widget(
                Paragraph::new(format!(" loading business {id}…"))
                    .block(Block::default().borders(Borders::ALL)),
                area,
            );
            return;
        }
    };
    let hooks_height = 3 + d.webhooks.len().max(1) as u16;
    let [settings, hooks, table, charts] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(hooks_height),
        Constraint::Length(9),
        Constraint::Min(5),
    ])
    .areas(area);
    draw_settings(f, settings, d);
    super::business_hooks::draw(f, hooks, d, s.now_ms);
    draw_stage_table(f, table, s, d);
    draw_charts(f, charts, d);
}

fn draw_settings(f: &mut Frame, area: Rect, d: &BusinessDetail) {
    let b = &d.business;
    let k = |t: &str| Span::styled(format!("{t} "), Style::new().fg(Color::Cyan));
    let lines = vec![
        Line::from(vec![
            k("providers"),
            Span::raw(format!(
                "stt {} · llm {} · crm {}   ",
                sanitize(&b.stt_provider),
                sanitize(&b.llm_provider),
                sanitize(&b.crm_provider)
            )),
            k("region"),
            Span::raw(format!("{}   ", sanitize(&b.default_region))),
            k("link threshold"),
            Span::raw(format!("{:.2}   ", b.link_threshold)),
            k("active"),
            on_off(b.active),
        ]),
        Line::from(vec![
            k("auto QC"),
            on_off(b.auto_qc),
            Span::raw("   "),
            k("auto-create leads"),
            on_off(b.auto_create_leads),
            Span::raw("   "),
            k("lead filter"),
            on_off(b.lead_filter),
            Span::styled(
                format!(" ({} calls kept out of the CRM by it)   ", d.lead_filtered),
                if d.lead_filtered > 0 { WARN } else { DIM },
            ),
            k("dead jobs"),
            Span::styled(d.dlq.to_string(), if d.dlq > 0 { ALERT } else { DIM }),
        ]),
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(format!(
            " {} (#{}) ",
            sanitize(&b.name),
            b.id
        ))),
        area,
    );
}

fn draw_stage_table(f: &mut Frame, area: Rect, s: &ConsoleState, d: &BusinessDetail) {
    let mut header = vec!["stage".to_string()];
    header.extend(WINDOWS_MIN.iter().map(|w| format!("/min {w}m")));
    header.extend(
        [
            "done 60m",
            "failed",
            "err%",
            "queue",
            "in flight",
            "oldest",
            "consumers",
            "calls now",
        ]
        .map(String::from),
    );
    let mut rows = vec![];
    for st in Stage::ALL {
        let i = stage_index(st);
        let done: u64 = d.series[i].iter().map(|x| x.0).sum();
        let failed: u64 = d.series[i].iter().map(|x| x.1).sum();
        let err = if done + failed > 0 {
            failed as f64 / (done + failed) as f64
        } else {
            0.0
        };
        let q = s
            .data
            .business_queues
            .iter()
            .filter(|q| q.stage == Some(st))
            .fold((0u64, 0u64, None::<i64>, None::<u64>), |acc, q| {
                (
                    acc.0 + q.depth,
                    acc.1 + q.in_flight.unwrap_or(0),
                    match (acc.2, q.oldest_age_ms) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    },
                    match (acc.3, q.consumers) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    },
                )
            });
        let states: Vec<String> = CallState::ALL
            .iter()
            .filter_map(|state| {
                d.states
                    .iter()
                    .find(|(a, b, _)| *a == st && b == state)
                    .map(|(_, _, n)| format!("{n} {state}"))
            })
            .collect();
        let mut cells = vec![Cell::from(st.as_str()).style(HEADER)];
        cells.extend(d.rates[i].iter().map(|r| Cell::from(format!("{r:>7.1}"))));
        cells.push(Cell::from(format!("{done:>8}")));
        cells.push(Cell::from(format!("{failed:>6}")).style(if failed > 0 { WARN } else { DIM }));
        cells.push(Cell::from(format!("{:>4.1}", err * 100.0)).style(
            if err > s.alerts.error_rate {
                ALERT
            } else {
                Style::new()
            },
        ));
        cells.push(Cell::from(format!("{:>5}", q.0)));
        cells.push(Cell::from(format!("{:>9}", q.1)));
        let lag = q.2.unwrap_or(0);
        cells.push(
            Cell::from(format!("{:>6}", q.2.map(age).unwrap_or_else(|| "-".into()))).style(
                if lag > s.alerts.lag_ms {
                    ALERT
                } else {
                    Style::new()
                },
            ),
        );
        cells.push(Cell::from(format!(
            "{:>9}",
            q.3.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
        )));
        cells.push(Cell::from(states.join(" · ")));
        rows.push(Row::new(cells));
    }
    let mut widths = vec![Constraint::Length(10)];
    widths.extend([Constraint::Length(8); 4]);
    widths.extend([
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Min(10),
    ]);
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(HEADER))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" stages: completions per minute, failures, queues "),
            ),
        area,
    );
}

fn draw_charts(f: &mut Frame, area: Rect, d: &BusinessDetail) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" last 60 minutes per stage: completions (cyan), failed attempts (red) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = Layout::vertical([Constraint::Ratio(1, 5); 5]).split(inner);
    for (i, st) in Stage::ALL.iter().enumerate() {
        let r = rows[i];
        if r.height == 0 {
            continue;
        }
        let [label, chart] =
            Layout::horizontal([Constraint::Length(22), Constraint::Min(10)]).areas(r);
        let calls: Vec<u64> = d.series[i].iter().map(|x| x.0).collect();
        let fails: Vec<u64> = d.series[i].iter().map(|x| x.1).collect();
        let max = calls.iter().copied().max().unwrap_or(0);
        let now = calls.last().copied().unwrap_or(0);
        f.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled(format!("{st}"), HEADER)),
                Line::from(Span::styled(format!("max {max}/min · now {now}"), DIM)),
            ]),
            label,
        );
        let has_fail = fails.iter().any(|x| *x > 0);
        let [top, bottom] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(if has_fail && chart.height > 1 { 1 } else { 0 }),
        ])
        .areas(chart);
        // One column per minute when there is room; otherwise minutes are summed.
        let width = top.width as usize;
        let data: Vec<u64> = if width >= 60 {
            calls.clone()
        } else {
            let per = 60usize.div_ceil(width.max(1));
            calls.chunks(per).map(|c| c.iter().sum()).collect()
        };
        f.render_widget(
            Sparkline::default()
                .data(&data)
                .style(Style::new().fg(Color::Cyan)),
            Rect::new(top.x, top.y, top.width.min(data.len() as u16), top.height),
        );
        if bottom.height > 0 {
            f.render_widget(
                Paragraph::new(Span::styled(
                    sparkline(&fails, bottom.width.min(60) as usize),
                    Style::new().fg(Color::Red),
                )),
                bottom,
            );
        }
    }
}
