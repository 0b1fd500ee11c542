//! Call view: metadata, link state and how it was decided, the transcript with speakers,
//! analyses, and the event trace in time order with every reason.

use super::{age, clean, UiState};
use crate::pipeline::providers::Segment;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, ui: &UiState) {
    let Some(d) = ui.snapshot.as_ref().and_then(|s| s.call.as_ref()) else {
        f.render_widget(
            Paragraph::new(" loading call…").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let Some(c) = &d.call else {
        f.render_widget(
            Paragraph::new(" no such call").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let [meta, rest] = Layout::vertical([Constraint::Length(6), Constraint::Min(4)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(rest);
    let k = |s: &str| Span::styled(format!("{s} "), Style::new().fg(Color::Cyan));
    let meta_lines = vec![
        Line::from(vec![
            k("call"),
            Span::raw(format!(
                "{} ({})  business {}  {}  ",
                c.id,
                clean(&c.external_id),
                c.business_id,
                c.direction
            )),
            k("at"),
            Span::styled(
                c.position().to_string(),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                " for {}  attempts {}",
                age(ui.now_ms - c.state_since),
                c.attempts
            )),
        ]),
        Line::from(vec![
            k("from"),
            Span::raw(format!(
                "{} → {} ({})  ",
                clean(c.from_number.as_deref().unwrap_or("")),
                c.from_e164.as_deref().unwrap_or("-"),
                c.number_status.as_deref().unwrap_or("?")
            )),
            k("duration"),
            Span::raw(format!("{} s  ", c.duration_ms / 1000)),
            k("language"),
            Span::raw(c.language.clone().unwrap_or_default()),
        ]),
        Line::from(vec![
            k("link"),
            Span::raw(format!(
                "{} via {} at {}  customer {}  lead {}  name {}",
                c.link_status.as_deref().unwrap_or("-"),
                c.link_method.as_deref().unwrap_or("-"),
                c.link_confidence
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or("-".into()),
                c.customer_id.map(|x| format!("#{x}")).unwrap_or("-".into()),
                c.lead_id.map(|x| format!("#{x}")).unwrap_or("-".into()),
                clean(c.extracted_name.as_deref().unwrap_or("-"))
            )),
        ]),
        Line::from(vec![
            k("review"),
            Span::raw(clean(c.review_reason.as_deref().unwrap_or("-"))),
        ]),
        Line::from(vec![
            k("last error"),
            Span::styled(
                clean(c.last_error.as_deref().unwrap_or("-")),
                Style::new().fg(Color::Red),
            ),
        ]),
    ];
    f.render_widget(
        Paragraph::new(meta_lines).block(Block::default().borders(Borders::ALL).title(" call ")),
        meta,
    );

    let mut t_lines = Vec::new();
    match &d.transcript {
        Some(t) => {
            if let Some(skip) = &t.stt_skipped {
                t_lines.push(Line::from(Span::styled(
                    format!("STT skipped: {}", clean(skip)),
                    Style::new().fg(Color::DarkGray),
                )));
            }
            let segs: Vec<Segment> = serde_json::from_str(&t.segments).unwrap_or_default();
            for s in segs {
                let color = if s.speaker == "caller" {
                    Color::Yellow
                } else {
                    Color::Green
                };
                t_lines.push(Line::from(vec![
                    Span::styled(
                        format!("{:>6.1}s {:>6}: ", s.start, clean(&s.speaker)),
                        Style::new().fg(color),
                    ),
                    Span::raw(clean(&s.text)),
                ]));
            }
        }
        None => t_lines.push(Line::from("no transcript yet")),
    }
    for a in &d.analyses {
        t_lines.push(Line::from(""));
        t_lines.push(Line::from(Span::styled(
            format!(
                "analysis {} (agent {:?} v{})",
                a.kind, a.agent_id, a.agent_version
            ),
            Style::new().fg(Color::Cyan),
        )));
        t_lines.push(Line::from(clean(&a.result)));
    }
    f.render_widget(
        Paragraph::new(t_lines)
            .wrap(Wrap { trim: false })
            .scroll((ui.scroll, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" transcript & analysis "),
            ),
        left,
    );
    let first = d.events.first().map(|e| e.at).unwrap_or(0);
    let ev: Vec<Line> = d
        .events
        .iter()
        .map(|e| {
            Line::from(vec![
                Span::styled(
                    format!("+{:>7} ", age(e.at - first)),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(
                    format!("{:<10} {:<12} ", e.stage, clean(&e.kind)),
                    Style::new().fg(Color::Cyan),
                ),
                Span::raw(clean(&e.reason)),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(ev)
            .wrap(Wrap { trim: false })
            .scroll((ui.scroll, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" trace ({} events) ", d.events.len())),
            ),
        right,
    );
}
