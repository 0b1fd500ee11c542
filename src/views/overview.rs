//! Overview: a row per business — calls/min per stage over the chosen window (1/5/15/60
//! min, `w` switches), backlog per stage queue, audio minutes per hour, oldest queued job,
//! error rate, DLQ and review counts, a 60-minute sparkline of finished calls — with a
//! totals row, sorting and alert colours (lag, DLQ > 0, error rate).

use super::state::{matches, ConsoleState, ListId};
use super::widgets::{
    col, sparkline, table_rows_area, Col, ListTable, ALERT, BAD, CHANGED, DIM, WARN,
};
use super::{age, sanitize};
use crate::domain::stage::Stage;
use crate::store::read::{BizRow, WINDOWS_MIN};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;
use std::cmp::Ordering;

/// Sortable columns, in `s` order. Names sort A→Z, numbers largest first.
pub const SORTS: &[&str] = &[
    "name",
    "sync/min",
    "transcribe/min",
    "analyze/min",
    "link/min",
    "notify/min",
    "backlog",
    "oldest job",
    "error rate",
    "dlq",
    "review",
    "audio",
];

const HEADER_H: u16 = 2;

/// Broker figures older than this are stale: their cells carry a `~` and the title says
/// how old the oldest shown are (the console reads the broker about every second).
pub const QUEUES_STALE_MS: i64 = 5_000;

/// How old a row's broker figures are at `now`; `None`: never read (unknown).
fn queues_age(b: &BizRow, now: i64) -> Option<i64> {
    b.queues_at.map(|at| (now - at).max(0))
}

/// "0.4s" under ten seconds (a fresh read is sub-second), `age` above.
fn short_age(ms: i64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        age(ms)
    }
}

/// Width from which every stage gets its own column.
const WIDE: u16 = 130;

pub fn rows_area(body: Rect) -> Rect {
    table_rows_area(body, HEADER_H, 1)
}

fn cmp_f(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Businesses after the filter, in the chosen order.
pub fn visible(s: &ConsoleState) -> Vec<&BizRow> {
    let Some(p) = &s.data.overview else {
        return vec![];
    };
    let filter = s.filter_of(ListId::Overview);
    let l = s.list(ListId::Overview);
    let w = s.window;
    let mut rows: Vec<&BizRow> = p
        .data
        .iter()
        .filter(|b| matches(&filter, &format!("{} {}", b.name, b.id)))
        .collect();
    let sort = l.sort % SORTS.len();
    rows.sort_by(|a, b| {
        let o = match sort {
            0 => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            1..=5 => cmp_f(b.rates[sort - 1][w], a.rates[sort - 1][w]),
            6 => b.backlog_total().cmp(&a.backlog_total()),
            7 => b.oldest_job_age_ms.cmp(&a.oldest_job_age_ms),
            8 => cmp_f(b.error_rate, a.error_rate),
            9 => b.dlq.cmp(&a.dlq),
            10 => b.review.cmp(&a.review),
            _ => cmp_f(b.audio_min_per_hour, a.audio_min_per_hour),
        };
        let o = if l.reverse { o.reverse() } else { o };
        o.then(a.id.cmp(&b.id))
    });
    rows
}

fn fmt_rate(r: f64) -> String {
    // A sum over nothing is -0.0 in Rust; nobody wants to read "-0.0".
    let r = if r == 0.0 { 0.0 } else { r };
    if r >= 999.5 {
        format!("{r:.0}")
    } else if r > 0.0 && r < 0.05 {
        "<0.1".into()
    } else {
        format!("{r:.1}")
    }
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x < 0.001 {
        "<0.1".into()
    } else {
        format!("{:.1}", x * 100.0)
    }
}

/// Is this business in trouble, and why (for the name cell's colour).
fn alerting(s: &ConsoleState, b: &BizRow) -> bool {
    b.dlq > 0
        || b.error_rate > s.alerts.error_rate
        || b.oldest_job_age_ms.unwrap_or(0) > s.alerts.lag_ms
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let rows = visible(s);
    let keys: Vec<i64> = rows.iter().map(|b| b.id).collect();
    let total = s.data.overview.as_ref().map(|p| p.data.len()).unwrap_or(0);
    let l = s.list(ListId::Overview);
    let wide = area.width >= WIDE;
    let w = s.window;
    let prev = s.data.overview_prev.as_ref();
    let old = |id: i64| prev.and_then(|p| p.iter().find(|x| x.id == id));

    // Fixed columns first; the sparkline takes what is left (bucketing minutes if narrow).
    let mut cols: Vec<Col> = vec![col(
        "business",
        Constraint::Length(if wide { 22 } else { 14 }),
    )];
    let fixed: u16 = if wide {
        for st in Stage::ALL {
            cols.push(col(format!("{st}\n /min queue"), Constraint::Length(11)));
        }
        cols.push(col("audio\nmin/h", Constraint::Length(6)));
        2 + 1 + 22 + 55 + 6 + 7 + 5 + 5 + 6 + 12
    } else {
        cols.push(col("done\n/min", Constraint::Length(6)));
        cols.push(col("queue", Constraint::Length(6)));
        2 + 1 + 14 + 6 + 6 + 7 + 5 + 5 + 6 + 9
    };
    cols.push(col("oldest\njob", Constraint::Length(7)));
    cols.push(col("err\n%", Constraint::Length(5)));
    cols.push(col("dlq", Constraint::Length(5)));
    cols.push(col("review", Constraint::Length(6)));
    let spark_w = area.width.saturating_sub(fixed).min(60);
    if spark_w >= 8 {
        cols.push(col(
            "finished/min\nlast 60 min",
            Constraint::Length(spark_w),
        ));
    }
    let sort = l.sort % SORTS.len();
    // Map the sort to its column where there is one.
    let sorted_col = match (wide, sort) {
        (_, 0) => Some(0),
        (true, 1..=5) => Some(sort),
        (false, 5) => Some(1),
        (true, 11) => Some(6),
        (true, 7..=10) => Some(sort),
        (false, 6) => Some(2),
        (false, 7..=10) => Some(sort - 4),
        _ => None,
    };

    let now = s.now_ms;
    // A queue figure: "?" never read, "~" read longer than `QUEUES_STALE_MS` ago.
    let queue_text = |b: &BizRow, q: u64, width: usize| -> (String, bool) {
        match queues_age(b, now) {
            None => (format!("{:>width$}", "?"), true),
            Some(a) if a > QUEUES_STALE_MS => {
                (format!("~{:>w$}", q, w = width.saturating_sub(1)), true)
            }
            Some(_) => (format!("{q:>width$}"), false),
        }
    };
    let cell_rate = |b: &BizRow, i: usize| -> Cell<'static> {
        let r = b.rates[i][w];
        let q = b.backlog[i];
        let (q_text, q_unsure) = queue_text(b, q, 5);
        let (rc, qc) = match old(b.id) {
            Some(o) => ((o.rates[i][w] - r).abs() >= 0.05, o.backlog[i] != q),
            None => (false, false),
        };
        let rate_style = if rc { CHANGED } else { Style::new() };
        let q_style = if q_unsure {
            WARN
        } else if q == 0 {
            DIM
        } else if q >= 100 {
            WARN
        } else {
            Style::new()
        };
        Cell::from(Line::from(vec![
            Span::styled(format!("{:>5}", fmt_rate(r)), rate_style),
            Span::styled(
                format!(" {q_text}"),
                if qc { q_style.patch(CHANGED) } else { q_style },
            ),
        ]))
    };

    let build = |i: usize| -> Vec<Cell<'static>> {
        let b = rows[i];
        let o = old(b.id);
        let changed = |f: &dyn Fn(&BizRow) -> String| o.is_some_and(|o| f(o) != f(b));
        let name_style = if !b.active {
            DIM
        } else if alerting(s, b) {
            BAD.add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        let mut name = sanitize(&b.name);
        if !b.active {
            name.push_str(" (off)");
        }
        // Cut with an ellipsis, so a shortened name reads as shortened.
        let name = super::widgets::cut(&name, if wide { 22 } else { 14 });
        let mut cells = vec![Cell::from(name).style(name_style)];
        if wide {
            for i in 0..5 {
                cells.push(cell_rate(b, i));
            }
            cells.push(Cell::from(format!("{:>6.0}", b.audio_min_per_hour)));
        } else {
            let done = b.rates[4][w];
            let q = b.backlog_total();
            let (q_text, q_unsure) = queue_text(b, q, 6);
            cells.push(Cell::from(format!("{:>6}", fmt_rate(done))).style(
                if changed(&|x| fmt_rate(x.rates[4][w])) {
                    CHANGED
                } else {
                    Style::new()
                },
            ));
            cells.push(Cell::from(q_text).style(if q_unsure {
                WARN
            } else if changed(&|x| x.backlog_total().to_string()) {
                CHANGED
            } else if q == 0 {
                DIM
            } else {
                Style::new()
            }));
        }
        let lag = b.oldest_job_age_ms.unwrap_or(0);
        // Alerts carry a "!" too, so they read without colour (NO_COLOR, colour blindness).
        let bang = |alert: bool| if alert { "!" } else { " " };
        cells.push(
            Cell::from(format!(
                "{:>6}{}",
                match (b.queues_at, b.oldest_job_age_ms) {
                    (None, _) => "?".into(),
                    (Some(_), Some(a)) => age(a),
                    (Some(_), None) => "-".into(),
                },
                bang(lag > s.alerts.lag_ms)
            ))
            .style(if lag > s.alerts.lag_ms {
                ALERT
            } else if lag > s.alerts.lag_ms / 2 {
                WARN
            } else {
                Style::new()
            }),
        );
        cells.push(
            Cell::from(format!(
                "{:>4}{}",
                pct(b.error_rate),
                bang(b.error_rate > s.alerts.error_rate)
            ))
            .style(if b.error_rate > s.alerts.error_rate {
                ALERT
            } else if b.error_rate > s.alerts.error_rate / 2.0 {
                WARN
            } else {
                Style::new()
            }),
        );
        let dlq_style = if b.dlq > 0 { ALERT } else { DIM };
        cells.push(
            Cell::from(format!("{:>5}", b.dlq)).style(if changed(&|x| x.dlq.to_string()) {
                dlq_style.patch(CHANGED)
            } else {
                dlq_style
            }),
        );
        let rev_style = if b.review > 0 { WARN } else { DIM };
        cells.push(Cell::from(format!("{:>6}", b.review)).style(
            if changed(&|x| x.review.to_string()) {
                rev_style.patch(CHANGED)
            } else {
                rev_style
            },
        ));
        if spark_w >= 8 {
            cells.push(
                Cell::from(sparkline(&b.spark, spark_w as usize))
                    .style(Style::new().fg(Color::Cyan)),
            );
        }
        cells
    };

    // Totals over the filtered rows.
    let mut tot = vec![
        Cell::from(""),
        Cell::from(format!("TOTAL ({})", rows.len())),
    ];
    let sum_rate = |i: usize| rows.iter().map(|b| b.rates[i][w]).sum::<f64>();
    let sum_q = |i: usize| rows.iter().map(|b| b.backlog[i]).sum::<u64>();
    if wide {
        for i in 0..5 {
            tot.push(Cell::from(format!(
                "{:>5} {:>5}",
                fmt_rate(sum_rate(i)),
                sum_q(i)
            )));
        }
        tot.push(Cell::from(format!(
            "{:>6.0}",
            rows.iter().map(|b| b.audio_min_per_hour).sum::<f64>()
        )));
    } else {
        tot.push(Cell::from(format!("{:>6}", fmt_rate(sum_rate(4)))));
        tot.push(Cell::from(format!(
            "{:>6}",
            rows.iter().map(|b| b.backlog_total()).sum::<u64>()
        )));
    }
    tot.push(Cell::from(format!(
        "{:>7}",
        rows.iter()
            .filter_map(|b| b.oldest_job_age_ms)
            .max()
            .map(age)
            .unwrap_or_else(|| "-".into())
    )));
    let calls: i64 = rows.iter().flat_map(|b| b.calls_60).sum();
    let fails: i64 = rows.iter().map(|b| b.failures_total()).sum();
    let err = if calls + fails > 0 {
        fails as f64 / (calls + fails) as f64
    } else {
        0.0
    };
    tot.push(Cell::from(format!("{:>5}", pct(err))));
    let dlq: i64 = rows.iter().map(|b| b.dlq).sum();
    tot.push(Cell::from(format!("{dlq:>5}")).style(if dlq > 0 { ALERT } else { DIM }));
    tot.push(Cell::from(format!(
        "{:>6}",
        rows.iter().map(|b| b.review).sum::<i64>()
    )));
    if spark_w >= 8 {
        let mut all = vec![0u64; 60];
        for b in &rows {
            for (i, v) in b.spark.iter().enumerate().take(60) {
                all[i] += v;
            }
        }
        tot.push(Cell::from(sparkline(&all, spark_w as usize)).style(Style::new().fg(Color::Cyan)));
    }

    // How old the broker figures on screen are: the truth includes its age.
    let unread = rows.iter().filter(|b| b.queues_at.is_none()).count();
    let oldest = rows.iter().filter_map(|b| queues_age(b, now)).max();
    let queues_span = match (oldest, unread) {
        (_, n) if n > 0 => Span::styled(format!("· queues of {n} not read yet "), WARN),
        (Some(a), _) if a > 30_000 => {
            Span::styled(format!("· queues {} old (stale) ", short_age(a)), ALERT)
        }
        (Some(a), _) if a > QUEUES_STALE_MS => {
            Span::styled(format!("· queues {} old (stale) ", short_age(a)), WARN)
        }
        (Some(a), _) => Span::styled(format!("· queues {} old ", short_age(a)), DIM),
        (None, _) => Span::raw(""),
    };
    let title = Line::from(vec![
        Span::styled(
            format!(" businesses {} of {total} ", rows.len()),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        queues_span,
        Span::styled(
            format!(
                "· rates over {} min (w) · sort {}{} (s/S) ",
                WINDOWS_MIN[w],
                SORTS[sort],
                if l.reverse { " ▲" } else { "" }
            ),
            DIM,
        ),
    ]);
    let count = rows.len();
    ListTable {
        title,
        cols,
        sorted: sorted_col.map(|c| (c, l.reverse)),
        header_h: HEADER_H,
        footer: Some(Row::new(tot)),
        empty: if s.data.overview.is_none() {
            "loading…"
        } else if s.data.overview.as_ref().is_some_and(|p| p.data.is_empty()) {
            "no businesses yet: `callops demo` runs a simulated system; `callops ingest FILE`, `callops sync source` or `callops serve` bring real calls in"
        } else {
            "no business matches the filter"
        },
    }
    .draw(f, area, &l, count, &keys, build);
}
