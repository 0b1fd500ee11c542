//! Shared pieces: the list table every list view uses (sorted header, marks, the selection
//! kept in view by the console), sparklines as text, alert styles.

use super::state::ListState;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub const HEADER: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
pub const DIM: Style = Style::new().fg(Color::DarkGray);
pub const SELECTED: Style = Style::new().bg(Color::Rgb(40, 60, 90));
pub const MARKED: Style = Style::new().fg(Color::Magenta);
/// A cell whose value changed in the last refresh.
pub const CHANGED: Style = Style::new()
    .add_modifier(Modifier::BOLD)
    .add_modifier(Modifier::UNDERLINED);
pub const ALERT: Style = Style::new().fg(Color::White).bg(Color::Red);
pub const WARN: Style = Style::new().fg(Color::Yellow);
pub const BAD: Style = Style::new().fg(Color::LightRed);

/// Rows area of a bordered table with a `header_h`-line header and a `footer_h`-line footer.
pub fn table_rows_area(area: Rect, header_h: u16, footer_h: u16) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    Rect::new(
        inner.x,
        inner.y + header_h.min(inner.height),
        inner.width,
        inner.height.saturating_sub(header_h + footer_h),
    )
}

/// A column: its header, width and how readily it goes when the terminal is narrow
/// (0: never — IDs and the main figure; higher numbers go first). A `Min(n)` column is free
/// text: it takes what is left, and its text is cut with an ellipsis to fit.
pub struct Col {
    pub title: String,
    pub width: Constraint,
    pub prio: u8,
}

pub fn col(title: impl Into<String>, width: Constraint) -> Col {
    Col {
        title: title.into(),
        width,
        prio: 0,
    }
}

/// A column that can be left out on a narrow terminal (`prio` > 0; the highest first).
pub fn col_p(title: impl Into<String>, width: Constraint, prio: u8) -> Col {
    Col {
        title: title.into(),
        width,
        prio,
    }
}

fn fixed(c: &Constraint) -> u16 {
    match c {
        Constraint::Length(n) | Constraint::Min(n) | Constraint::Max(n) => *n,
        _ => 0,
    }
}

/// Which columns fit in `width` (inner width of the table, the mark column included),
/// dropping the highest-priority-number columns first, and the width the free-text column
/// gets. Columns are separated by one space.
pub fn fit_columns(cols: &[Col], width: u16) -> (Vec<bool>, u16) {
    let mut keep = vec![true; cols.len()];
    let need = |keep: &[bool]| -> u16 {
        let n = keep.iter().filter(|k| **k).count() as u16;
        // mark column (1) + a space after every column
        1 + n
            + cols
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| fixed(&c.width))
                .sum::<u16>()
    };
    let mut order: Vec<usize> = (0..cols.len()).filter(|i| cols[*i].prio > 0).collect();
    order.sort_by_key(|i| std::cmp::Reverse((cols[*i].prio, *i)));
    for i in order {
        if need(&keep) <= width {
            break;
        }
        keep[i] = false;
    }
    let free = cols
        .iter()
        .zip(&keep)
        .find(|(c, k)| **k && matches!(c.width, Constraint::Min(_)))
        .map(|(c, _)| fixed(&c.width) + width.saturating_sub(need(&keep)))
        .unwrap_or(0);
    (keep, free)
}

/// A list table: `rows` holds every filtered, sorted row as (key, cells builder input);
/// only the slice in view is turned into widgets, so a list of thousands draws as fast
/// as a list of forty.
pub struct ListTable<'a> {
    pub title: Line<'a>,
    pub cols: Vec<Col>,
    /// Column index shown as sorted (with its direction), if the sort maps to a column.
    pub sorted: Option<(usize, bool)>,
    pub header_h: u16,
    pub footer: Option<Row<'a>>,
    pub empty: &'a str,
}

impl<'a> ListTable<'a> {
    /// Draw rows `[offset, offset + height)` of `count`, built by `build(i)`.
    pub fn draw(
        self,
        f: &mut Frame,
        area: Rect,
        list: &ListState,
        count: usize,
        keys: &[i64],
        mut build: impl FnMut(usize) -> Vec<Cell<'a>>,
    ) {
        let rows_area = table_rows_area(area, self.header_h, self.footer.is_some() as u16);
        let (keep, _) = fit_columns(&self.cols, rows_area.width);
        let height = rows_area.height as usize;
        let offset = list.offset.min(count.saturating_sub(1));
        let end = (offset + height).min(count);
        let mut rows = Vec::with_capacity(end - offset);
        for i in offset..end {
            let marked = keys.get(i).is_some_and(|k| list.marked.contains(k));
            let mut cells = vec![Cell::from(if marked { "●" } else { " " }).style(MARKED)];
            cells.extend(
                build(i)
                    .into_iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(c, _)| c),
            );
            rows.push(Row::new(cells));
        }
        let mut header_cells = vec![Cell::from("")];
        for (i, c) in self.cols.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let mark = match self.sorted {
                Some((s, rev)) if s == i => {
                    if rev {
                        "▲"
                    } else {
                        "▼"
                    }
                }
                _ => "",
            };
            let title = format!("{}{mark}", c.title);
            header_cells.push(Cell::from(
                title
                    .split('\n')
                    .map(|l| Line::from(l.to_string()))
                    .collect::<Vec<_>>(),
            ));
        }
        let mut widths = vec![Constraint::Length(1)];
        widths.extend(
            self.cols
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| c.width),
        );
        let mut table = Table::new(rows, widths)
            .header(Row::new(header_cells).style(HEADER).height(self.header_h))
            .row_highlight_style(SELECTED)
            .block(Block::default().borders(Borders::ALL).title(self.title));
        if let Some(footer) = self.footer {
            table = table.footer(footer.style(Style::new().add_modifier(Modifier::BOLD)));
        }
        let selected = if count == 0 {
            None
        } else {
            Some(list.selected.min(count - 1).saturating_sub(offset))
        };
        let mut state = TableState::default().with_selected(selected);
        f.render_stateful_widget(table, area, &mut state);
        if count == 0 && rows_area.height > 0 {
            f.render_widget(
                Paragraph::new(Span::styled(self.empty.to_string(), DIM)),
                Rect::new(
                    rows_area.x + 2,
                    rows_area.y,
                    rows_area.width.saturating_sub(2),
                    1,
                ),
            );
        }
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` (oldest first) as a text sparkline `width` characters wide: buckets of
/// adjacent values are summed when there are more values than characters.
pub fn sparkline(values: &[u64], width: usize) -> String {
    if width == 0 || values.is_empty() {
        return String::new();
    }
    let per = values.len().div_ceil(width);
    // Buckets are cut from the newest end and the line is right-aligned, so the last
    // character is always "now" whatever the width.
    let mut buckets: Vec<u64> = values.rchunks(per).map(|c| c.iter().sum()).collect();
    buckets.reverse();
    let pad = width.saturating_sub(buckets.len());
    let max = buckets.iter().copied().max().unwrap_or(0);
    std::iter::repeat_n(&0u64, pad)
        .chain(buckets.iter())
        .map(|v| {
            if *v == 0 || max == 0 {
                ' '
            } else {
                BARS[((*v * 7).div_ceil(max)).min(7) as usize]
            }
        })
        .collect()
}

/// Right-aligned number with thousands separators: 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Cut to `width` characters with an ellipsis, or pad with spaces to it (aligns text
/// columns after sanitizing, counting characters, not bytes).
pub fn pad(s: &str, width: usize) -> String {
    let c = cut(s, width);
    let n = c.chars().count();
    format!("{c}{}", " ".repeat(width.saturating_sub(n)))
}

/// Cut to `max` characters with an ellipsis.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_buckets_to_width() {
        let v: Vec<u64> = (0..60).collect();
        let s = sparkline(&v, 30);
        assert_eq!(s.chars().count(), 30);
        assert!(s.ends_with('█'));
        assert_eq!(sparkline(&[0, 0, 0], 3), "   ");
        // 60 minutes in 40 characters: 30 buckets of 2, right-aligned, newest last.
        let mut v = vec![0u64; 60];
        v[59] = 5;
        let s = sparkline(&v, 40);
        assert_eq!(s.chars().count(), 40);
        assert!(s.ends_with('█') && s.trim().chars().count() == 1, "{s:?}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1000), "-1,000");
    }
}
