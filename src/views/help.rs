//! Help: every key of the view underneath, as bound now (config overrides included), and
//! the palette's commands.

use super::state::ConsoleState;
use super::widgets::{DIM, HEADER};
use super::COMMANDS;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// Where the keys pane is, for the console to bound scrolling.
pub fn keys_area(area: Rect) -> Rect {
    layout(area)[0]
}

fn layout(area: Rect) -> [Rect; 2] {
    if area.width >= 110 {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area)
    } else {
        Layout::vertical([
            Constraint::Min(6),
            Constraint::Length(COMMANDS.len() as u16 + 2),
        ])
        .areas(area)
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &ConsoleState) {
    let under = s.content_route();
    let [keys, cmds] = layout(area);
    let width = s
        .help
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(8)
        .min(28);
    let lines: Vec<Line> = s
        .help
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!(" {k:>width$}  "), HEADER),
                Span::raw(d.clone()),
            ])
        })
        .collect();
    let mut title = vec![Span::styled(
        format!(" keys of {} ", under.title()),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if s.readonly {
        title.push(Span::styled("· read-only: actions are hidden ", DIM));
    }
    let inner_h = keys.height.saturating_sub(2) as usize;
    // Rows after wrapping (the scroll is in rows).
    let inner_w = keys.width.saturating_sub(2).max(1) as usize;
    let total: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_w))
        .sum();
    let top = (s.help_scroll as usize).min(total.saturating_sub(inner_h));
    if total > inner_h {
        title.push(Span::styled(
            format!(
                "· {}–{} of {} (j/k PgDn/PgUp scroll) ",
                top + 1,
                (top + inner_h).min(total),
                total
            ),
            DIM,
        ));
    }
    title.push(Span::styled("· Esc or ? closes ", DIM));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((top as u16, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Line::from(title)),
            ),
        keys,
    );
    let cmd_lines: Vec<Line> = COMMANDS
        .iter()
        .map(|(c, d)| {
            // Leading "<arg>" words are the command's arguments, the rest describes it.
            let (mut arg, mut desc) = (String::new(), d.trim());
            while let Some((a, rest)) = desc.strip_prefix('<').and_then(|r| r.split_once('>')) {
                arg.push_str(&format!(" <{a}>"));
                desc = rest.trim_start();
            }
            Line::from(vec![
                Span::styled(format!(" :{c}{arg:<8}"), HEADER),
                Span::raw(format!(" {desc}")),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(cmd_lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" command palette (:) — Tab completes "),
        ),
        cmds,
    );
}
