//! Overview: a row per business — calls/min per stage (1/5/15/60 min), audio minutes per
//! hour, backlog per stage queue, oldest job, error rate, DLQ and review counts, a 60-minute
//! sparkline — with a totals row and alert colours.

use super::{age, clean, UiState};
use crate::domain::stage::Stage;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use ratatui::Frame;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn sparkline(values: &[u64], width: usize) -> String {
    let vals = &values[values.len().saturating_sub(width)..];
    let max = *vals.iter().max().unwrap_or(&0);
    vals.iter()
        .map(|v| {
            if max == 0 || *v == 0 {
                ' '
            } else {
                SPARK[((*v * 7) / max) as usize]
            }
        })
        .collect()
}

pub const SORT_COLUMNS: &[&str] = &["name", "calls/min", "backlog", "errors", "dlq", "review"];

pub fn draw(f: &mut Frame, area: Rect, ui: &UiState) {
    let Some(s) = &ui.snapshot else { return };
    let mut rows: Vec<_> = s
        .businesses
        .iter()
        .filter(|b| ui.matches(&b.name))
        .collect();
    let backlog = |b: &crate::console::snapshot::BizRow| b.backlog.values().sum::<u64>();
    let cpm =
        |b: &crate::console::snapshot::BizRow| b.rate.get("notify").map(|r| r[1]).unwrap_or(0.0);
    match ui.sort_column % SORT_COLUMNS.len() {
        1 => rows.sort_by(|a, b| cpm(b).total_cmp(&cpm(a))),
        2 => rows.sort_by_key(|b| std::cmp::Reverse(backlog(b))),
        3 => rows.sort_by(|a, b| b.error_rate.total_cmp(&a.error_rate)),
        4 => rows.sort_by_key(|b| std::cmp::Reverse(b.dlq)),
        5 => rows.sort_by_key(|b| std::cmp::Reverse(b.review)),
        _ => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    let prev = ui.previous.as_ref();
    let narrow = area.width < 120;
    let mut header = vec!["business".to_string()];
    for st in Stage::ALL {
        header.push(if narrow {
            st.as_str()[..3].to_string()
        } else {
            format!("{st}/min 1·5·60")
        });
    }
    header.extend(["aud m/h", "backlog", "oldest", "err%", "dlq", "review"].map(String::from));
    // What is left of the width goes to the sparkline (done calls per minute, newest right).
    let spark_w = (area.width as usize)
        .saturating_sub(16 + 5 * 15 + 7 + 7 + 7 + 5 + 4 + 8 + 14 + 2)
        .clamp(0, 60);
    if !narrow {
        header.push(format!("done/min, last {spark_w} min"));
    }
    let mut table_rows = Vec::new();
    for b in &rows {
        let changed = |f: fn(&crate::console::snapshot::BizRow) -> String| {
            prev.and_then(|p| p.businesses.iter().find(|x| x.id == b.id))
                .map(|old| f(old) != f(b))
                .unwrap_or(false)
        };
        let mut cells = vec![Cell::from(clean(&b.name))];
        for st in Stage::ALL {
            let r = b.rate.get(st.as_str()).copied().unwrap_or_default();
            cells.push(Cell::from(if narrow {
                format!("{:.1}", r[1])
            } else {
                format!("{:>5.1} {:>5.1} {:>5.1}", r[0], r[1], r[3])
            }));
        }
        cells.push(Cell::from(format!("{:.0}", b.audio_min_per_hour)));
        let bl = backlog(b);
        let bl_cell = Cell::from(bl.to_string());
        cells.push(
            if changed(|x| x.backlog.values().sum::<u64>().to_string()) {
                bl_cell.style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
            } else {
                bl_cell
            },
        );
        let lag = b.oldest_job_age_ms.unwrap_or(0);
        cells.push(
            Cell::from(b.oldest_job_age_ms.map(age).unwrap_or_else(|| "-".into())).style(
                if lag > 300_000 {
                    Style::new().fg(Color::Red)
                } else {
                    Style::new()
                },
            ),
        );
        cells.push(Cell::from(format!("{:.1}", b.error_rate * 100.0)).style(
            if b.error_rate > 0.05 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            },
        ));
        cells.push(Cell::from(b.dlq.to_string()).style(if b.dlq > 0 {
            Style::new().fg(Color::White).bg(Color::Red)
        } else {
            Style::new()
        }));
        let mut review = b.review.to_string();
        if b.lead_filtered > 0 {
            review.push_str(&format!(" (+{} filtered)", b.lead_filtered));
        }
        cells.push(Cell::from(review).style(if b.review > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        }));
        if !narrow {
            cells
                .push(Cell::from(sparkline(&b.spark, spark_w)).style(Style::new().fg(Color::Cyan)));
        }
        table_rows.push(Row::new(cells));
    }
    // Totals.
    let mut total = vec![Cell::from("TOTAL").style(Style::new().add_modifier(Modifier::BOLD))];
    for st in Stage::ALL {
        let r: f64 = rows
            .iter()
            .map(|b| b.rate.get(st.as_str()).map(|r| r[1]).unwrap_or(0.0))
            .sum();
        total.push(Cell::from(if narrow {
            format!("{r:.1}")
        } else {
            format!("      {r:>5.1}")
        }));
    }
    total.push(Cell::from(format!(
        "{:.0}",
        rows.iter().map(|b| b.audio_min_per_hour).sum::<f64>()
    )));
    total.push(Cell::from(
        rows.iter().map(|b| backlog(b)).sum::<u64>().to_string(),
    ));
    total.push(Cell::from(
        rows.iter()
            .filter_map(|b| b.oldest_job_age_ms)
            .max()
            .map(age)
            .unwrap_or_else(|| "-".into()),
    ));
    total.push(Cell::from(""));
    total.push(Cell::from(
        rows.iter().map(|b| b.dlq).sum::<i64>().to_string(),
    ));
    total.push(Cell::from(
        rows.iter().map(|b| b.review).sum::<i64>().to_string(),
    ));
    table_rows.push(Row::new(total).style(Style::new().add_modifier(Modifier::BOLD)));

    let mut widths = vec![Constraint::Min(18)];
    widths.extend(Stage::ALL.iter().map(|_| {
        if narrow {
            Constraint::Length(5)
        } else {
            Constraint::Length(18)
        }
    }));
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(8),
    ]);
    if !narrow {
        widths.push(Constraint::Length(60));
    }
    let title = Line::from(vec![
        Span::raw(format!(" businesses ({}) ", rows.len())),
        Span::styled(
            format!(
                " sort: {} (s) ",
                SORT_COLUMNS[ui.sort_column % SORT_COLUMNS.len()]
            ),
            Style::new().fg(Color::DarkGray),
        ),
    ]);
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)))
        .row_highlight_style(Style::new().bg(Color::DarkGray))
        .block(Block::default().borders(Borders::ALL).title(title));
    let mut state =
        TableState::default().with_selected(Some(ui.selected.min(rows.len().saturating_sub(1))));
    f.render_stateful_widget(table, area, &mut state);
}
