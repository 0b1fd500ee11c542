//! One dead job in full: what it was (queue, job id, business, stage, call), its payload
//! and headers pretty-printed, every attempt with its time and error, and what became of it
//! (retried as, discarded by). Scrollable; Enter opens its call.

use super::state::ConsoleState;
use super::widgets::DIM;
use super::{age, datetime, sanitize, sanitize_multiline};
use crate::store::DeadJob;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// The dead job of the route, if it is among the rows fetched.
pub fn find(s: &ConsoleState, id: i64) -> Option<&DeadJob> {
    s.data
        .dlq
        .as_ref()
        .and_then(|p| p.data.rows.iter().find(|d| d.id == id))
}

fn k(t: &str) -> Span<'static> {
    Span::styled(format!("{t:>10} "), Style::new().fg(Color::Cyan))
}

/// JSON pretty-printed (or the text as stored when it is not JSON), one line per line.
fn pretty(raw: &str) -> Vec<Line<'static>> {
    let text = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_string());
    sanitize_multiline(&text)
        .lines()
        .map(|l| Line::from(format!("           {l}")))
        .collect()
}

pub fn lines(s: &ConsoleState, d: &DeadJob) -> Vec<Line<'static>> {
    let now = s.now_ms;
    let mut v = vec![
        Line::from(vec![k("queue"), Span::raw(sanitize(&d.queue))]),
        Line::from(vec![k("job"), Span::raw(sanitize(&d.job_id))]),
        Line::from(vec![
            k("business"),
            Span::raw(
                d.business_id
                    .map(|b| sanitize(&s.business_name(b)))
                    .unwrap_or_else(|| "?".into()),
            ),
        ]),
        Line::from(vec![
            k("stage"),
            Span::raw(sanitize(d.stage.as_deref().unwrap_or("?"))),
            Span::raw("   "),
            k("call"),
            Span::raw(
                d.call_id
                    .map(|c| format!("{c} (Enter opens it)"))
                    .unwrap_or_else(|| "none (an undecodable message)".into()),
            ),
        ]),
        Line::from(vec![
            k("died"),
            Span::raw(format!(
                "{} ({} ago), {} attempts, {}: {}",
                datetime(d.dead_at),
                age(now - d.dead_at),
                d.attempts,
                sanitize(&d.source),
                sanitize(&d.reason)
            )),
        ]),
        Line::from(vec![
            k("status"),
            Span::styled(
                format!(
                    "{}{}{}{}",
                    d.status.as_str(),
                    d.status_by
                        .as_deref()
                        .map(|b| format!(" by {}", sanitize(b)))
                        .unwrap_or_default(),
                    d.status_at
                        .map(|t| format!(" at {}", datetime(t)))
                        .unwrap_or_default(),
                    d.retried_as
                        .as_deref()
                        .map(|j| format!(" as job {}", sanitize(j)))
                        .unwrap_or_default()
                ),
                match d.status {
                    crate::store::DeadJobStatus::Dead => Style::new().fg(Color::LightRed),
                    crate::store::DeadJobStatus::Retried => Style::new().fg(Color::Green),
                    _ => DIM,
                },
            ),
        ]),
        Line::from(""),
        Line::from(vec![k("attempts")]),
    ];
    if d.errors.is_empty() {
        v.push(Line::from(Span::styled(
            format!(
                "           (none recorded) last error: {}",
                sanitize(&d.last_error)
            ),
            DIM,
        )));
    }
    for e in &d.errors {
        v.push(Line::from(vec![
            Span::styled(
                format!("           #{} at {}  ", e.attempt, datetime(e.at)),
                DIM,
            ),
            Span::styled(sanitize(&e.error), Style::new().fg(Color::LightRed)),
        ]));
    }
    v.push(Line::from(""));
    v.push(Line::from(vec![k("payload")]));
    v.extend(pretty(&d.payload));
    v.push(Line::from(""));
    v.push(Line::from(vec![k("headers")]));
    v.extend(pretty(&d.headers));
    v
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState, id: i64) {
    let Some(d) = find(s, id) else {
        f.render_widget(
            Paragraph::new(format!(
                " dead job #{id} is not among the rows fetched (loading, or it left the search)"
            ))
            .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let lines = lines(s, d);
    let total = lines.len();
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((s.detail_scroll, 0))
            .block(Block::default().borders(Borders::ALL).title(format!(
                " dead job #{id} · {total} lines · j/k PgDn/PgUp scroll · R retry · X discard · Enter opens the call · Esc back "
            ))),
        area,
    );
}
