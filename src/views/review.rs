//! The review queue: one page searched, sorted and counted by the database (the title's
//! total is the true total), deferred items apart (`H`), and under the list the selected
//! call's evidence: the caller's own lines the name came from and every candidate with what
//! tells them apart (phone, email, reference, last call) and the separate scores.

use super::state::{ConsoleState, ListId};
use super::widgets::{
    col, col_p, cut, fit_columns, table_rows_area, thousands, ListTable, DIM, WARN,
};
use super::{age, datetime, sanitize};
use crate::domain::names::name_similarity;
use crate::store::read::review::{CandidateDetail, ReviewItem, ReviewPage, ReviewQuery};
use crate::store::Call;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;
use ratatui::Frame;

pub use crate::store::read::review::REVIEW_SORTS;

/// The query the review list on screen stands for: the committed search (not the one being
/// typed), deferred or due, the sort and the page.
pub fn query(s: &ConsoleState) -> ReviewQuery {
    let l = s.list(ListId::Review);
    ReviewQuery {
        text: l.filter.trim().to_string(),
        deferred: s.review_deferred,
        sort: l.sort % REVIEW_SORTS.len(),
        reverse: l.reverse,
        offset: s.review_offset,
    }
}

/// The fetched page, if it answers the query on screen (a page fetched for another search
/// or sort is never shown under this one's title).
pub fn page(s: &ConsoleState) -> Option<&ReviewPage> {
    s.data
        .review
        .as_ref()
        .map(|p| &p.data)
        .filter(|p| p.query == query(s))
}

/// Rows in the order the database sorted them.
pub fn visible(s: &ConsoleState) -> Vec<&ReviewItem> {
    page(s).map(|p| p.rows.iter().collect()).unwrap_or_default()
}

/// (customer id, name, confidence) of the ranked candidates stored with the call.
pub fn candidates(c: &Call) -> Vec<(i64, String, f64)> {
    c.review_candidates
        .as_deref()
        .and_then(|j| serde_json::from_str::<Vec<serde_json::Value>>(j).ok())
        .unwrap_or_default()
        .iter()
        .map(|v| {
            (
                v["customer_id"].as_i64().unwrap_or(0),
                sanitize(v["name"].as_str().unwrap_or("?")),
                v["confidence"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

/// What tells a candidate apart from another of the same name, on one line.
pub fn distinguishing(d: Option<&CandidateDetail>) -> String {
    let Some(d) = d else {
        return "details not loaded".into();
    };
    let mut parts = vec![
        d.phone.clone().unwrap_or_else(|| "no phone".into()),
        d.email.clone().unwrap_or_else(|| "no email".into()),
    ];
    if let Some(r) = &d.reference {
        parts.push(format!("ref {r}"));
    }
    parts.push(match d.last_call_at {
        Some(t) => format!("{} calls, last {}", d.calls, super::date(t)),
        None => "no calls yet".into(),
    });
    if d.is_temporary {
        parts.push("temporary".into());
    }
    sanitize(&parts.join(" · "))
}

/// The separate scores of heard name vs candidate: whole name (Jaro-Winkler), surname
/// phonetics, first name, and the phone number.
pub fn scores(c: &Call, cand_name: &str, d: Option<&CandidateDetail>) -> String {
    let heard = c.extracted_name.as_deref().unwrap_or("");
    let whole = name_similarity(heard, cand_name);
    let first = match (
        heard.split_whitespace().next(),
        cand_name.split_whitespace().next(),
    ) {
        (Some(a), Some(b)) if heard.split_whitespace().count() > 1 => {
            format!("{:.2}", name_similarity(a, b).jaro_winkler)
        }
        _ => "—".into(),
    };
    let phone = match (c.from_e164.as_deref(), d.and_then(|d| d.phone.as_deref())) {
        (None, _) => "withheld",
        (Some(_), None) => "none on file",
        (Some(a), Some(b)) if a == b => "same",
        _ => "differs",
    };
    format!(
        "name {:.2} · phonetic {} · first {} · phone {}",
        whole.jaro_winkler,
        if whole.phonetic_match { "yes" } else { "no" },
        first,
        phone
    )
}

/// List above, evidence below: the evidence pane gets more room on a tall terminal.
fn split(body: Rect) -> [Rect; 2] {
    let detail = match body.height {
        h if h >= 30 => 10,
        h if h >= 16 => 7,
        _ => 0,
    };
    ratatui::layout::Layout::vertical([Constraint::Min(4), Constraint::Length(detail)]).areas(body)
}

/// Where the rows are drawn (paging, mouse).
pub fn rows_area(body: Rect) -> Rect {
    table_rows_area(split(body)[0], 1, 0)
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let [list, bottom] = split(area);
    let rows = visible(s);
    let keys: Vec<i64> = rows.iter().map(|c| c.call.id).collect();
    let l = s.list(ListId::Review);
    let now = s.now_ms;
    let cols = vec![
        col("call", Constraint::Length(7)),
        col_p("business", Constraint::Length(14), 4),
        col_p("prio", Constraint::Length(4), 2),
        col(
            if s.review_deferred {
                "due in"
            } else {
                "waiting"
            },
            Constraint::Length(7),
        ),
        col_p("number", Constraint::Length(10), 5),
        col_p("name heard", Constraint::Length(16), 1),
        col_p("best candidate", Constraint::Length(20), 3),
        col(
            if s.review_deferred {
                "deferred because"
            } else {
                "why in review"
            },
            Constraint::Min(12),
        ),
    ];
    let (_, free) = fit_columns(&cols, table_rows_area(list, 1, 0).width);
    let reason_w = free as usize;
    let build = |i: usize| -> Vec<Cell<'static>> {
        let item = rows[i];
        let c = &item.call;
        let prio = c.review_priority.unwrap_or(0);
        let best = candidates(c)
            .first()
            .map(|(id, n, conf)| format!("#{id} {} {conf:.2}", cut(n, 9)))
            .unwrap_or_else(|| "—".into());
        let waiting = match (s.review_deferred, item.deferred_until) {
            (true, Some(t)) => age(t - now),
            _ => age(now - c.state_since),
        };
        let why = match (&item.corrupt, s.review_deferred) {
            (Some(e), _) => format!("CORRUPT ROW: {e}"),
            (None, true) => item
                .deferred_reason
                .clone()
                .unwrap_or_else(|| "(no reason kept)".into()),
            (None, false) => c.review_reason.clone().unwrap_or_default(),
        };
        let mut v = vec![
            Cell::from(format!("{:>7}", c.id)),
            Cell::from(cut(&sanitize(&s.business_name(c.business_id)), 14)),
            Cell::from(format!("{prio:>4}")).style(if prio > 0 {
                WARN.add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            }),
            Cell::from(format!("{waiting:>7}")),
        ];
        v.push(Cell::from(cut(
            &sanitize(c.number_status.as_deref().unwrap_or("?")),
            10,
        )));
        v.push(Cell::from(cut(
            &sanitize(c.extracted_name.as_deref().unwrap_or("—")),
            16,
        )));
        v.push(Cell::from(best));
        let why = Cell::from(cut(&sanitize(&why), reason_w));
        v.push(if item.corrupt.is_some() {
            why.style(super::widgets::ALERT)
        } else {
            why
        });
        v
    };
    let sort = l.sort % REVIEW_SORTS.len();
    let count = rows.len();
    let p = page(s);
    let (from, total, deferred) = p
        .map(|p| (p.query.offset, p.total, p.deferred_total))
        .unwrap_or((s.review_offset, 0, 0));
    let shown = if count == 0 {
        "0".to_string()
    } else {
        format!("{}–{}", thousands(from + 1), thousands(from + count as i64))
    };
    let mut extra = String::new();
    if !l.filter.is_empty() {
        extra.push_str(&format!("· matching {:?} ", sanitize(&l.filter)));
    }
    if s.review_deferred {
        extra.push_str("· deferred, not yet due (H shows the due ones) ");
    } else if deferred > 0 {
        extra.push_str(&format!("· {deferred} deferred not shown (H) "));
    }
    if total > from + count as i64 || from > 0 {
        extra.push_str("· PgDn/PgUp past the edge pages ");
    }
    extra.push_str(&format!("· sort {} (s/S) ", REVIEW_SORTS[sort]));
    ListTable {
        title: Line::from(vec![
            Span::styled(
                format!(
                    " {} {shown} of {} ",
                    if s.review_deferred {
                        "deferred review items"
                    } else {
                        "review queue"
                    },
                    thousands(total)
                ),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(extra, DIM),
        ]),
        cols,
        sorted: Some(([2, 3, 1][sort], l.reverse)),
        header_h: 1,
        footer: None,
        empty: if p.is_none() {
            "loading…"
        } else if s.review_deferred {
            "nothing is deferred"
        } else if !l.filter.is_empty() {
            "no review item matches the search"
        } else {
            "the review queue is empty"
        },
    }
    .draw(f, list, &l, count, &keys, build);
    let lines = match rows.get(l.selected.min(count.saturating_sub(1))) {
        Some(item) if count > 0 => {
            detail_lines(s, p, item, bottom.height.saturating_sub(2) as usize)
        }
        _ => vec![],
    };
    if bottom.height > 0 {
        f.render_widget(
            ratatui::widgets::Paragraph::new(lines).block(
                ratatui::widgets::Block::default()
                    .borders(ratatui::widgets::Borders::ALL)
                    .title(" selected call: what the caller said, every candidate "),
            ),
            bottom,
        );
    }
}

fn k(t: &str) -> Span<'static> {
    Span::styled(format!("{t} "), Style::new().fg(Color::Cyan))
}

/// The evidence, in at most `rows` lines (one per candidate; "+N more" when they do not all
/// fit, never a silent cut).
fn detail_lines(
    s: &ConsoleState,
    p: Option<&ReviewPage>,
    item: &ReviewItem,
    rows: usize,
) -> Vec<Line<'static>> {
    let c = &item.call;
    let mut v = vec![];
    if let Some(e) = &item.corrupt {
        v.push(Line::from(Span::styled(
            format!(
                " call {} cannot be read in full: {} — open it with :call {} or fix the row",
                c.id,
                sanitize(e),
                c.id
            ),
            super::widgets::ALERT,
        )));
    }
    v.push(Line::from(vec![
        k("from"),
        Span::raw(format!(
            "{} ({})  ",
            sanitize(c.from_number.as_deref().unwrap_or("-")),
            sanitize(c.number_status.as_deref().unwrap_or("?"))
        )),
        k("heard"),
        Span::raw(format!(
            "{}  ",
            sanitize(c.extracted_name.as_deref().unwrap_or("(no name)"))
        )),
        k("reason"),
        Span::raw(sanitize(c.review_reason.as_deref().unwrap_or("-"))),
    ]));
    match &s.data.review_evidence {
        Some((id, lines)) if *id == c.id && !lines.is_empty() => {
            for l in lines {
                v.push(Line::from(vec![
                    k("said"),
                    Span::styled(format!("«{}»", sanitize(l)), Style::new().fg(Color::White)),
                ]));
            }
        }
        Some((id, _)) if *id == c.id => v.push(Line::from(Span::styled(
            "no transcript lines of the caller",
            DIM,
        ))),
        _ => {}
    }
    if let (Some(until), Some(r)) = (item.deferred_until, &item.deferred_reason) {
        v.push(Line::from(vec![
            k("deferred"),
            Span::raw(format!(
                "until {} ({}): {}",
                datetime(until),
                if until > s.now_ms {
                    format!("due in {}", age(until - s.now_ms))
                } else {
                    "due".into()
                },
                sanitize(r)
            )),
        ]));
    }
    let cands = candidates(c);
    if cands.is_empty() {
        v.push(Line::from(Span::styled(
            "no candidates above the review floor: create a customer (c), :customers <text>, or defer (d)",
            DIM,
        )));
    }
    let threshold = p.and_then(|p| p.link_thresholds.get(&c.business_id).copied());
    let room = rows.saturating_sub(v.len());
    let shown = if cands.len() > room {
        room.saturating_sub(1)
    } else {
        cands.len()
    };
    for (id, n, conf) in cands.iter().take(shown) {
        let d = p.and_then(|p| p.customers.get(id));
        let below = threshold.is_some_and(|t| *conf < t);
        v.push(Line::from(vec![
            Span::styled(format!("  #{id} "), Style::new().fg(Color::Cyan)),
            Span::raw(format!("{n}  ")),
            Span::styled(
                format!(
                    "{conf:.2}{} ",
                    if below { " (below auto-link)" } else { "" }
                ),
                if below {
                    WARN
                } else {
                    Style::new().fg(Color::Green)
                },
            ),
            Span::raw(format!("{}  ", distinguishing(d))),
            Span::styled(scores(c, n, d), DIM),
        ]));
    }
    if shown < cands.len() {
        v.push(Line::from(Span::styled(
            format!(
                "  +{} more candidates (l lists them all with their details)",
                cands.len() - shown
            ),
            WARN,
        )));
    }
    v
}
