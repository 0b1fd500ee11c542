//! The business view's webhook endpoints: per provider, where its secret is, when it last
//! received an event, what the last request was answered, and calls waiting for their
//! other event. A never-seen or long-silent endpoint, a missing secret and a refused last
//! request are flagged: a webhook that stopped arriving must not look like a quiet day.

use super::widgets::{ALERT, DIM, HEADER, WARN};
use super::{age, sanitize};
use crate::store::read::BusinessDetail;
use crate::store::webhooks::WebhookEndpoint;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

/// No event for this long: the endpoint is flagged silent.
pub const SILENT_AFTER_MS: i64 = 60 * 60 * 1000;
/// A call waiting this long for its other event (usually the recording) is flagged.
pub const WAITING_WARN_MS: i64 = 10 * 60 * 1000;

/// How an endpoint's last event reads, and its style.
pub fn last_event(e: &WebhookEndpoint, now: i64) -> (String, Style) {
    match e.last_event_at {
        None => ("NEVER received".into(), ALERT),
        Some(t) if now - t > SILENT_AFTER_MS => (format!("SILENT {}", age(now - t)), ALERT),
        Some(t) => (
            format!("{} ago", age(now - t)),
            Style::new().fg(Color::Green),
        ),
    }
}

pub fn draw(f: &mut Frame, area: Rect, d: &BusinessDetail, now: i64) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" webhooks (callops serve): last event per provider endpoint ");
    if d.webhooks.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                " no webhook endpoint configured: callops business set NAME --retell-key | --telnyx-public-key | --twilio-auth-token env:VAR",
                DIM,
            ))
            .block(block),
            area,
        );
        return;
    }
    let header = Row::new(
        [
            "provider",
            "secret",
            "last event",
            "type",
            "last result",
            "accepted",
            "refused",
            "waiting",
        ]
        .map(Cell::from),
    )
    .style(HEADER);
    let rows = d.webhooks.iter().map(|e| {
        let (secret, secret_style) = match &e.secret_ref {
            Some(r) if crate::redact::is_reference(r) => (sanitize(r), Style::new()),
            Some(_) => (crate::redact::MASK.to_string(), ALERT),
            None => ("NO SECRET: refused".to_string(), ALERT),
        };
        let (last, last_style) = last_event(e, now);
        let result = e.last_result.as_deref().unwrap_or("-");
        let refused = !matches!(
            result,
            "created" | "waiting" | "duplicate" | "ignored" | "-"
        );
        let result_text = match (&e.last_reason, e.last_result_at) {
            (Some(r), Some(at)) if refused => {
                format!("{result} {} ago: {}", age(now - at), sanitize(r))
            }
            _ => result.to_string(),
        };
        let waiting = match e.oldest_waiting_at {
            Some(t) if e.waiting > 0 => format!("{}, oldest {}", e.waiting, age(now - t)),
            _ => e.waiting.to_string(),
        };
        let waiting_style = match e.oldest_waiting_at {
            Some(t) if e.waiting > 0 && now - t > WAITING_WARN_MS => WARN,
            _ if e.waiting > 0 => Style::new(),
            _ => DIM,
        };
        Row::new(vec![
            Cell::from(sanitize(&e.provider)).style(HEADER),
            Cell::from(secret).style(secret_style),
            Cell::from(last).style(last_style),
            Cell::from(sanitize(e.last_event_type.as_deref().unwrap_or("-"))),
            Cell::from(result_text).style(if refused { WARN } else { Style::new() }),
            Cell::from(format!("{:>8}", e.accepted)),
            Cell::from(format!("{:>7}", e.rejected)).style(if e.rejected > 0 { WARN } else { DIM }),
            Cell::from(waiting).style(waiting_style),
        ])
    });
    let widths = [
        Constraint::Length(9),
        Constraint::Length(34),
        Constraint::Length(16),
        Constraint::Length(16),
        Constraint::Min(20),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(18),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}
