//! Call view: metadata; the customer/lead link and how it was decided; the transcript
//! (speakers labelled, scrollable) with the analysis and QC results; and the event trace in
//! time order with every reason — enough to answer "why did X not happen for this call?".

use super::state::ConsoleState;
use super::widgets::{cut, DIM, HEADER, WARN};
use super::{age, clock, datetime, sanitize};
use crate::store::read::CallDetail;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// One transcript segment as stored (`transcripts.segments`).
#[derive(Debug, Clone, serde::Deserialize)]
struct Segment {
    #[serde(default)]
    speaker: String,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    text: String,
}

/// The call of the route on screen, if its detail has been fetched: `Some(None)` when the
/// database says there is no such call. Data of another call is never returned, so a view
/// and its actions cannot show or act on one call under another's title.
pub fn detail_of(s: &ConsoleState) -> Option<Option<&CallDetail>> {
    let crate::views::Route::Call(id) = s.route() else {
        return None;
    };
    match &s.data.call {
        Some(p) if s.data.call_id == Some(id) => Some(p.data.as_ref()),
        _ => None,
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let id = match s.route() {
        crate::views::Route::Call(id) => id,
        _ => 0,
    };
    let d = match detail_of(s) {
        Some(data) => match data {
            Some(d) => d,
            None => {
                let msg =
                    format!(" there is no call {id} (a mistyped id, or the database was reset)");
                f.render_widget(
                    Paragraph::new(Span::styled(msg, WARN))
                        .block(Block::default().borders(Borders::ALL)),
                    area,
                );
                return;
            }
        },
        None => {
            let why = match &s.health.db {
                crate::views::state::Conn::Down { error, .. } => {
                    format!(" — the database is unreachable ({})", sanitize(error))
                }
                _ => String::new(),
            };
            f.render_widget(
                Paragraph::new(format!(" loading call {id}…{why}"))
                    .block(Block::default().borders(Borders::ALL)),
                area,
            );
            return;
        }
    };
    let meta_lines = meta(s, d);
    let [top, rest] = Layout::vertical([
        Constraint::Length((meta_lines.len() as u16 + 2).min(area.height / 2)),
        Constraint::Min(4),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(meta_lines).wrap(Wrap { trim: false }).block(
            Block::default().borders(Borders::ALL).title(Span::styled(
                format!(" call {} ", d.call.id),
                Style::new().add_modifier(Modifier::BOLD),
            )),
        ),
        top,
    );
    let [left, right] = if rest.width >= 120 {
        Layout::horizontal([Constraint::Percentage(52), Constraint::Percentage(48)]).areas(rest)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(rest)
    };
    let pane = |title: String, focused: bool| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(if focused { HEADER } else { Style::new() })
            .title(title)
    };
    let t = transcript_lines(d);
    let tn = t.len();
    f.render_widget(
        Paragraph::new(t)
            .wrap(Wrap { trim: false })
            .scroll((s.call_scroll[0], 0))
            .block(pane(
                format!(" transcript & analyses ({tn} lines){} ", focus_hint(s, 0)),
                s.call_focus == 0,
            )),
        left,
    );
    let tr = trace_lines(d);
    f.render_widget(
        Paragraph::new(tr)
            .wrap(Wrap { trim: false })
            .scroll((s.call_scroll[1], 0))
            .block(pane(
                format!(
                    " trace: {} events, oldest first{} ",
                    d.events.len(),
                    focus_hint(s, 1)
                ),
                s.call_focus == 1,
            )),
        right,
    );
}

fn focus_hint(s: &ConsoleState, pane: usize) -> &'static str {
    if s.call_focus == pane {
        " · j/k scroll, Tab switches"
    } else {
        ""
    }
}

/// Logical line counts of the two panes (the console bounds scrolling with them).
pub fn line_counts(s: &ConsoleState) -> [usize; 2] {
    match detail_of(s).flatten() {
        Some(d) => [transcript_lines(d).len(), trace_lines(d).len()],
        None => [0, 0],
    }
}

fn k(t: &str) -> Span<'static> {
    Span::styled(format!("{t} "), Style::new().fg(Color::Cyan))
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(sanitize).unwrap_or_else(|| "-".into())
}

fn meta(s: &ConsoleState, d: &CallDetail) -> Vec<Line<'static>> {
    let c = &d.call;
    let state_style = match c.state.as_str() {
        "dead" => Style::new().fg(Color::White).bg(Color::Red),
        "retrying" | "review" => WARN.add_modifier(Modifier::BOLD),
        "done" => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        _ => Style::new().add_modifier(Modifier::BOLD),
    };
    let mut lines = vec![
        Line::from(vec![
            k("business"),
            Span::raw(format!(
                "{} (#{})  ",
                sanitize(d.business_name.as_deref().unwrap_or("?")),
                c.business_id
            )),
            k("external id"),
            Span::raw(format!("{}  ", sanitize(&c.external_id))),
            k("direction"),
            Span::raw(format!("{}  ", sanitize(&c.direction))),
            k("started"),
            Span::raw(format!(
                "{}  ",
                c.started_at.map(datetime).unwrap_or_else(|| "-".into())
            )),
            k("audio"),
            Span::raw(age(c.duration_ms)),
        ]),
        Line::from(vec![
            k("at"),
            Span::styled(c.position().to_string(), state_style),
            Span::raw(format!(
                " for {}  attempts {}  ",
                age(s.now_ms - c.state_since),
                c.attempts
            )),
            k("from"),
            Span::raw(format!(
                "{} → {} ({})  ",
                opt(&c.from_number),
                opt(&c.from_e164),
                opt(&c.number_status)
            )),
            k("to"),
            Span::raw(format!("{}  ", opt(&c.to_number))),
            k("agent"),
            Span::raw(format!("{}  ", opt(&c.agent_name))),
            k("campaign"),
            Span::raw(format!("{}  ", opt(&c.campaign))),
            k("language"),
            Span::raw(opt(&c.language)),
        ]),
    ];
    // The link and how it was decided: the method and confidence stored on the call, and
    // the reason of the link stage's last decision from the trace.
    let customer = match (&d.customer, c.customer_id) {
        (Some(cu), _) => format!(
            "customer #{} {}{}",
            cu.id,
            cu.name
                .as_deref()
                .map(sanitize)
                .unwrap_or_else(|| "(no name)".into()),
            if cu.is_temporary { " (temporary)" } else { "" }
        ),
        (None, Some(id)) => format!("customer #{id}"),
        (None, None) => "no customer".into(),
    };
    let lead = match &d.lead {
        Some(l) => format!(
            "lead #{} {} · {} calls{}",
            l.id,
            sanitize(&l.status),
            l.call_count,
            l.crm_id
                .as_deref()
                .map(|x| format!(" · crm {}", sanitize(x)))
                .unwrap_or_default()
        ),
        None => "no lead".into(),
    };
    let link_style = match c.link_status.as_deref() {
        Some("linked") => Style::new().fg(Color::Green),
        Some("review") => WARN,
        _ => DIM,
    };
    lines.push(Line::from(vec![
        k("link"),
        Span::styled(
            format!(
                "{} via {} at {}",
                opt(&c.link_status),
                opt(&c.link_method),
                c.link_confidence
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "-".into())
            ),
            link_style,
        ),
        Span::raw(format!(
            " → {customer} · {lead} · name heard {}",
            c.extracted_name
                .as_deref()
                .map(|n| format!("\"{}\"", sanitize(n)))
                .unwrap_or_else(|| "-".into())
        )),
    ]));
    let decided = d
        .events
        .iter()
        .rev()
        .find(|e| e.stage == "link" && e.kind != "started")
        .map(|e| sanitize(&e.reason))
        .unwrap_or_else(|| "not linked yet (the link stage has not run)".into());
    lines.push(Line::from(vec![k("decided"), Span::raw(decided)]));
    if c.review_reason.is_some() || c.review_candidates.is_some() {
        let candidates = c
            .review_candidates
            .as_deref()
            .and_then(|j| serde_json::from_str::<Vec<serde_json::Value>>(j).ok())
            .unwrap_or_default()
            .iter()
            .map(|v| {
                format!(
                    "#{} {} {:.2}",
                    v["customer_id"].as_i64().unwrap_or(0),
                    sanitize(v["name"].as_str().unwrap_or("?")),
                    v["confidence"].as_f64().unwrap_or(0.0)
                )
            })
            .collect::<Vec<_>>();
        lines.push(Line::from(vec![
            k("review"),
            Span::styled(
                format!(
                    "priority {} · {} · candidates: {}",
                    c.review_priority.unwrap_or(0),
                    opt(&c.review_reason),
                    if candidates.is_empty() {
                        "none".into()
                    } else {
                        candidates.join(", ")
                    }
                ),
                WARN,
            ),
        ]));
    }
    if c.last_error.is_some() || !d.dead_jobs.is_empty() {
        let mut spans = vec![k("last error")];
        spans.push(Span::styled(
            opt(&c.last_error),
            Style::new().fg(Color::LightRed),
        ));
        if !d.dead_jobs.is_empty() {
            spans.push(Span::styled(
                format!(
                    "  · dead jobs: {}",
                    d.dead_jobs
                        .iter()
                        .map(|j| format!(
                            "#{} {} {} ({} attempts)",
                            j.id,
                            j.stage.as_deref().unwrap_or("?"),
                            j.status.as_str(),
                            j.attempts
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                WARN,
            ));
        }
        lines.push(Line::from(spans));
    }
    lines
}

fn speaker_style(sp: &str) -> Style {
    match sp {
        "agent" => Style::new().fg(Color::Green),
        "caller" => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Magenta),
    }
}

fn transcript_lines(d: &CallDetail) -> Vec<Line<'static>> {
    let mut out = vec![];
    match &d.transcript {
        Some(t) => {
            out.push(Line::from(Span::styled(
                format!(
                    "{} · language {}{}",
                    sanitize(&t.provider),
                    t.language
                        .as_deref()
                        .map(sanitize)
                        .unwrap_or_else(|| "?".into()),
                    t.stt_skipped
                        .as_deref()
                        .map(|x| format!(" · STT skipped: {}", sanitize(x)))
                        .unwrap_or_default()
                ),
                DIM,
            )));
            let segs: Vec<Segment> = serde_json::from_str(&t.segments).unwrap_or_default();
            if segs.is_empty() {
                // No segments: show the plain text, one line per stored line.
                for l in t.text.lines() {
                    out.push(Line::from(sanitize(l)));
                }
            }
            for sg in segs {
                out.push(Line::from(vec![
                    Span::styled(format!("{:>6.1}s ", sg.start), DIM),
                    Span::styled(
                        format!("{:>7} ", cut(&sanitize(&sg.speaker), 7)),
                        speaker_style(&sg.speaker).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(sanitize(&sg.text)),
                ]));
            }
        }
        None => out.push(Line::from(Span::styled(
            "no transcript yet (see the trace for the transcribe stage)",
            DIM,
        ))),
    }
    for a in &d.analyses {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(
            format!(
                "▸ {} · agent {} v{} · {}",
                sanitize(&a.kind),
                a.agent_id
                    .map(|x| format!("#{x}"))
                    .unwrap_or_else(|| "-".into()),
                a.agent_version,
                clock(a.created_at)
            ),
            HEADER,
        )));
        match serde_json::from_str::<serde_json::Value>(&a.result) {
            Ok(serde_json::Value::Object(m)) => {
                for (key, v) in m {
                    let val = match &v {
                        serde_json::Value::String(x) => sanitize(x),
                        other => sanitize(&other.to_string()),
                    };
                    let style = if key == "qc_score" || key == "score" {
                        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
                    } else {
                        Style::new()
                    };
                    out.push(Line::from(vec![
                        Span::styled(
                            format!("  {}: ", sanitize(&key)),
                            Style::new().fg(Color::Cyan),
                        ),
                        Span::styled(val, style),
                    ]));
                }
            }
            _ => out.push(Line::from(format!("  {}", sanitize(&a.result)))),
        }
    }
    out
}

fn trace_lines(d: &CallDetail) -> Vec<Line<'static>> {
    let first = d.events.first().map(|e| e.at).unwrap_or(0);
    let mut out = vec![];
    for e in &d.events {
        let kind_style = match e.kind.as_str() {
            "dead" => Style::new().fg(Color::White).bg(Color::Red),
            "retry" | "qc_skipped" | "agent_skipped" | "review" => WARN,
            "done" | "completed" => Style::new().fg(Color::Green),
            _ => Style::new().fg(Color::Cyan),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{} ", clock(e.at)), DIM),
            Span::styled(format!("{:>7} ", format!("+{}", age(e.at - first))), DIM),
            Span::styled(format!("{:<10} ", e.stage), HEADER),
            Span::styled(format!("{:<12}", cut(&sanitize(&e.kind), 12)), kind_style),
            Span::raw(format!(" {}", sanitize(&e.reason))),
            if e.actor != "pipeline" {
                Span::styled(
                    format!(" (by {})", sanitize(&e.actor)),
                    Style::new().fg(Color::Magenta),
                )
            } else {
                Span::raw("")
            },
        ]));
        if let Some(detail) = &e.detail {
            out.push(Line::from(Span::styled(
                format!("{:>29}{}", "", sanitize(detail)),
                Style::new().fg(Color::LightRed),
            )));
        }
    }
    if out.is_empty() {
        out.push(Line::from(Span::styled("no events recorded", DIM)));
    }
    out
}
