//! Keys → commands. Defaults are k9s/vim-like and avoid what tmux, screen and shells take
//! (ctrl-b, ctrl-a, ctrl-d, ctrl-z, ctrl-s/ctrl-q); every binding can be overridden from
//! config as (action, key).

use crate::views::Route;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Quit,
    Help,
    Palette,
    Filter,
    Back,
    Open,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Sort,
    SortReverse,
    Mark,
    Freeze,
    Refresh,
    Window,
    Focus,
    Overview,
    Stuck,
    Dlq,
    Review,
    Audit,
    Retry,
    Discard,
    History,
    Link,
    NewCustomer,
    Defer,
    Qc,
    Lead,
    Unlink,
    /// Outbound AI calls (issue 16).
    Outbound,
    /// Outbound view: call the selected row's lead now.
    CallNow,
    /// Outbound view: call the selected business's unmapped leads again.
    CallUnmapped,
}

/// Which views a command means something in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scope {
    All,
    Lists,
    Overview,
    Scrolling,
    Focusable,
    Open,
    Dlq,
    Review,
    Call,
    DlqOrReview,
    /// The lists whose marks an action uses (DLQ, stuck).
    Markable,
    /// R: DLQ, stuck calls, one call.
    Retryable,
    /// The outbound view (C, U).
    Outbound,
    /// C: the outbound view and one call (its lead).
    CallNow,
}

struct Spec {
    cmd: Cmd,
    name: &'static str,
    keys: &'static [&'static str],
    what: &'static str,
    scope: Scope,
}

const SPECS: &[Spec] = &[
    Spec {
        cmd: Cmd::Help,
        name: "help",
        keys: &["?"],
        what: "this help (keys of the current view)",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Palette,
        name: "palette",
        keys: &[":"],
        what: "command palette: :overview :stuck :dlq :review :audit :call <id> :biz <name>",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Filter,
        name: "filter",
        keys: &["/"],
        what: "filter the list (words match anywhere; Esc clears)",
        scope: Scope::Lists,
    },
    Spec {
        cmd: Cmd::Open,
        name: "open",
        keys: &["enter"],
        what: "drill down",
        scope: Scope::Open,
    },
    Spec {
        cmd: Cmd::Back,
        name: "back",
        keys: &["esc"],
        what: "back (or clear the filter / group first)",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Up,
        name: "up",
        keys: &["k", "up"],
        what: "previous row / scroll up",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::Down,
        name: "down",
        keys: &["j", "down"],
        what: "next row / scroll down",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::PageUp,
        name: "page_up",
        keys: &["pgup", "ctrl-u"],
        what: "page up",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::PageDown,
        name: "page_down",
        keys: &["pgdn", "ctrl-f"],
        what: "page down",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::Top,
        name: "top",
        keys: &["home", "g"],
        what: "first row / top",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::Bottom,
        name: "bottom",
        keys: &["end", "G"],
        what: "last row / bottom",
        scope: Scope::Scrolling,
    },
    Spec {
        cmd: Cmd::Sort,
        name: "sort",
        keys: &["s"],
        what: "sort by the next column",
        scope: Scope::Lists,
    },
    Spec {
        cmd: Cmd::SortReverse,
        name: "sort_reverse",
        keys: &["S"],
        what: "reverse the sort",
        scope: Scope::Lists,
    },
    Spec {
        cmd: Cmd::Mark,
        name: "mark",
        keys: &["space"],
        what: "mark / unmark the row (R acts on the marked rows)",
        scope: Scope::Markable,
    },
    Spec {
        cmd: Cmd::Window,
        name: "window",
        keys: &["w"],
        what: "rate window: 1 → 5 → 15 → 60 minutes",
        scope: Scope::Overview,
    },
    Spec {
        cmd: Cmd::Focus,
        name: "focus",
        keys: &["tab"],
        what: "switch pane (stuck: groups/calls; call: transcript/trace)",
        scope: Scope::Focusable,
    },
    Spec {
        cmd: Cmd::Freeze,
        name: "freeze",
        keys: &["f"],
        what: "freeze / resume the data (read a moving table)",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Refresh,
        name: "refresh",
        keys: &["r"],
        what: "refresh now",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Overview,
        name: "overview",
        keys: &["1"],
        what: "go to the overview",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Stuck,
        name: "stuck",
        keys: &["2"],
        what: "go to stuck calls",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Dlq,
        name: "dlq",
        keys: &["3"],
        what: "go to dead jobs",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Review,
        name: "review",
        keys: &["4"],
        what: "go to the review queue",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Audit,
        name: "audit",
        keys: &["5"],
        what: "go to the audit log",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Retry,
        name: "retry",
        keys: &["R"],
        what: "retry: dead jobs (this one / marked / its error group / all matching the filter), stuck calls (this one / marked / its error group) or the call's failed stage",
        scope: Scope::Retryable,
    },
    Spec {
        cmd: Cmd::Discard,
        name: "discard",
        keys: &["X"],
        what: "discard dead jobs (kept as history, payload included)",
        scope: Scope::Dlq,
    },
    Spec {
        cmd: Cmd::History,
        name: "history",
        keys: &["H"],
        what: "history: retried and discarded dead jobs too (DLQ) / the deferred items (review)",
        scope: Scope::DlqOrReview,
    },
    Spec {
        cmd: Cmd::Link,
        name: "link",
        keys: &["l"],
        what: "link the call to a candidate customer (Enter takes the best)",
        scope: Scope::Review,
    },
    Spec {
        cmd: Cmd::NewCustomer,
        name: "new_customer",
        keys: &["c"],
        what: "create a customer from the call (its number and heard name) and link it",
        scope: Scope::Review,
    },
    Spec {
        cmd: Cmd::Defer,
        name: "defer",
        keys: &["d"],
        what: "defer the review item for an hour, with a reason",
        scope: Scope::Review,
    },
    Spec {
        cmd: Cmd::Qc,
        name: "qc",
        keys: &["Q"],
        what: "trigger QC: run the business's QC agents on the call",
        scope: Scope::Call,
    },
    Spec {
        cmd: Cmd::Lead,
        name: "lead",
        keys: &["L"],
        what: "create or update the call's lead (the notify rules)",
        scope: Scope::Call,
    },
    Spec {
        cmd: Cmd::Unlink,
        name: "unlink",
        keys: &["u"],
        what: "unlink the call from its customer (audited); it goes back to review",
        scope: Scope::Call,
    },
    Spec {
        cmd: Cmd::Quit,
        name: "quit",
        keys: &["q", "ctrl-c"],
        what: "quit (the terminal is restored)",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::Outbound,
        name: "outbound",
        keys: &["6"],
        what: "go to outbound AI calls",
        scope: Scope::All,
    },
    Spec {
        cmd: Cmd::CallNow,
        name: "call_now",
        keys: &["C"],
        what: "call the lead now with the AI agent (support/admin; confirmed, audited)",
        scope: Scope::CallNow,
    },
    Spec {
        cmd: Cmd::CallUnmapped,
        name: "call_unmapped",
        keys: &["U"],
        what: "call every unmapped lead of the selected row's business again, after a mapping was added (admin; count first, confirmed, audited)",
        scope: Scope::Outbound,
    },
];

/// A key as bound: code plus ctrl/alt (shift is part of the character: `G`, `S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(e: &KeyEvent) -> Key {
        let code = match e.code {
            // Terminals report ctrl-letters as lowercase; shifted letters as uppercase.
            KeyCode::Char(c) if e.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Key {
            code,
            ctrl: e.modifiers.contains(KeyModifiers::CONTROL),
            alt: e.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// "q", "G", "ctrl-x", "alt-j", "enter", "esc", "tab", "backtab", "space", "up",
    /// "pgdn", "home", "f5", "backspace", "delete".
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").or(lower.strip_prefix("c-")) {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").or(lower.strip_prefix("m-")) {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" => KeyCode::Insert,
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                let n: u8 = f[1..].parse().unwrap_or(0);
                if !(1..=12).contains(&n) {
                    return Err(format!("key {s:?}: function keys are f1..f12"));
                }
                KeyCode::F(n)
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => {
                        KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
                    }
                    _ => {
                        return Err(format!(
                            "key {s:?}: expected one character, ctrl-/alt- plus one, or a name \
                             (enter esc tab backtab space up down left right pgup pgdn home end \
                             backspace delete insert f1..f12)"
                        ))
                    }
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("shift-Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::Insert => f.write_str("Insert"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyMap {
    bindings: Vec<(Key, Cmd)>,
}

impl Default for KeyMap {
    fn default() -> Self {
        let mut bindings = vec![];
        for s in SPECS {
            for k in s.keys {
                bindings.push((Key::parse(k).expect("default keys parse"), s.cmd));
            }
        }
        KeyMap { bindings }
    }
}

impl KeyMap {
    /// Action names and what they do, for docs and error messages.
    pub fn actions() -> Vec<(&'static str, &'static str)> {
        SPECS.iter().map(|s| (s.name, s.what)).collect()
    }

    /// Defaults with overrides applied. The first override of an action replaces its
    /// default keys, later ones add keys; a key taken from another action moves.
    pub fn from_overrides(overrides: &[(String, String)]) -> Result<KeyMap, String> {
        let mut map = KeyMap::default();
        let mut replaced: Vec<Cmd> = vec![];
        for (action, key) in overrides {
            let spec = SPECS
                .iter()
                .find(|s| s.name == action.trim())
                .ok_or_else(|| {
                    format!(
                        "console key override: unknown action {action:?} (known: {})",
                        SPECS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                    )
                })?;
            let key =
                Key::parse(key).map_err(|e| format!("console key override for {action:?}: {e}"))?;
            if !replaced.contains(&spec.cmd) {
                map.bindings.retain(|(_, c)| *c != spec.cmd);
                replaced.push(spec.cmd);
            }
            map.bindings.retain(|(k, _)| *k != key);
            map.bindings.push((key, spec.cmd));
        }
        if !map.bindings.iter().any(|(_, c)| *c == Cmd::Quit) {
            return Err("console key overrides leave no key for quit".into());
        }
        Ok(map)
    }

    pub fn lookup(&self, e: &KeyEvent) -> Option<Cmd> {
        let k = Key::from_event(e);
        self.bindings.iter().find(|(b, _)| *b == k).map(|(_, c)| *c)
    }

    pub fn keys_of(&self, cmd: Cmd) -> Vec<Key> {
        self.bindings
            .iter()
            .filter(|(_, c)| *c == cmd)
            .map(|(k, _)| *k)
            .collect()
    }

    fn label(&self, cmd: Cmd) -> String {
        self.keys_of(cmd)
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Every key of a view, with what it does there.
    pub fn help_for(&self, route: Route) -> Vec<(String, String)> {
        let list = route.list().is_some();
        let mut out = vec![];
        for s in SPECS {
            let applies = match s.scope {
                Scope::All => true,
                Scope::Lists => list,
                Scope::Overview => route == Route::Overview,
                Scope::Scrolling => {
                    list || matches!(
                        route,
                        Route::Call(_) | Route::DeadJob(_) | Route::Help | Route::Outbound
                    )
                }
                Scope::Focusable => matches!(route, Route::Stuck | Route::Call(_)),
                Scope::Open => list || matches!(route, Route::DeadJob(_)),
                Scope::Dlq => route == Route::Dlq,
                Scope::Review => route == Route::Review,
                Scope::Call => matches!(route, Route::Call(_)),
                Scope::DlqOrReview => matches!(route, Route::Dlq | Route::Review),
                Scope::Markable => matches!(route, Route::Dlq | Route::Stuck),
                Scope::Retryable => matches!(
                    route,
                    Route::Dlq | Route::Stuck | Route::Call(_) | Route::DeadJob(_)
                ),
                Scope::Outbound => route == Route::Outbound,
                Scope::CallNow => matches!(route, Route::Outbound | Route::Call(_)),
            };
            if !applies {
                continue;
            }
            let label = self.label(s.cmd);
            if label.is_empty() {
                continue;
            }
            let what = match (s.cmd, route) {
                (Cmd::Open, Route::Overview) => "open the business: per-stage charts and queues",
                (Cmd::Open, Route::Stuck) => {
                    "open the call (in the groups pane: narrow to the group)"
                }
                (Cmd::Open, Route::Dlq) => "open the dead job: payload, headers, every attempt",
                (Cmd::Open, Route::DeadJob(_)) => "open its call",
                (Cmd::Open, Route::Review) => "open the call",
                (Cmd::Open, Route::Audit) => "open the target call, if it is one",
                (Cmd::Up | Cmd::Down, Route::Call(_)) => "scroll the focused pane",
                _ => s.what,
            };
            out.push((label, what.to_string()));
        }
        if list {
            out.push((
                "click / wheel".into(),
                "select a row (click it again to open) / scroll".into(),
            ));
        }
        out
    }

    /// One footer line of the most useful keys for a view.
    pub fn hints_for(&self, route: Route, actions: bool) -> String {
        let first = |c: Cmd| {
            self.keys_of(c)
                .first()
                .map(|k| k.to_string())
                .unwrap_or_default()
        };
        let mut parts = vec![
            format!("{} help", first(Cmd::Help)),
            format!("{} command", first(Cmd::Palette)),
        ];
        if route.list().is_some() {
            parts.push(format!("{} filter", first(Cmd::Filter)));
            parts.push(format!("{} open", first(Cmd::Open)));
            parts.push(format!(
                "{}/{} sort",
                first(Cmd::Sort),
                first(Cmd::SortReverse)
            ));
            if matches!(route, Route::Dlq | Route::Stuck) {
                parts.push(format!("{} mark", first(Cmd::Mark)));
            }
        }
        if route == Route::Overview {
            parts.push(format!("{} window", first(Cmd::Window)));
        }
        if matches!(route, Route::Stuck | Route::Call(_)) {
            parts.push(format!("{} pane", first(Cmd::Focus)));
        }
        match route {
            _ if !actions => {}
            Route::Stuck => parts.push(format!("{} retry", first(Cmd::Retry))),
            Route::Dlq => parts.push(format!(
                "{} retry  {} discard  {} history",
                first(Cmd::Retry),
                first(Cmd::Discard),
                first(Cmd::History)
            )),
            Route::Review => parts.push(format!(
                "{} link  {} new customer  {} defer  {} deferred",
                first(Cmd::Link),
                first(Cmd::NewCustomer),
                first(Cmd::Defer),
                first(Cmd::History)
            )),
            Route::Call(_) => parts.push(format!(
                "{} retry  {} QC  {} lead  {} unlink  {} call lead",
                first(Cmd::Retry),
                first(Cmd::Qc),
                first(Cmd::Lead),
                first(Cmd::Unlink),
                first(Cmd::CallNow)
            )),
            Route::Outbound => parts.push(format!(
                "{} call now  {} call unmapped",
                first(Cmd::CallNow),
                first(Cmd::CallUnmapped)
            )),
            _ => {}
        }
        parts.push(format!("{} freeze", first(Cmd::Freeze)));
        parts.push(format!("{} back", first(Cmd::Back)));
        parts.push(format!("{} quit", first(Cmd::Quit)));
        parts.join("  ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn defaults_avoid_tmux_and_shell_keys() {
        let m = KeyMap::default();
        for c in ['b', 'a', 'd', 'z', 's', 'q'] {
            assert_eq!(
                m.lookup(&ev(KeyCode::Char(c), KeyModifiers::CONTROL)),
                None,
                "ctrl-{c}"
            );
        }
        assert_eq!(
            m.lookup(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Cmd::Bottom)
        );
        assert_eq!(
            m.lookup(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Cmd::Quit)
        );
    }

    #[test]
    fn overrides_replace_defaults_and_move_keys() {
        let m = KeyMap::from_overrides(&[
            ("freeze".into(), "F".into()),
            ("page_down".into(), "ctrl-n".into()),
            ("refresh".into(), "s".into()),
        ])
        .unwrap();
        assert_eq!(m.lookup(&ev(KeyCode::Char('f'), KeyModifiers::NONE)), None);
        assert_eq!(
            m.lookup(&ev(KeyCode::Char('F'), KeyModifiers::SHIFT)),
            Some(Cmd::Freeze)
        );
        assert_eq!(
            m.lookup(&ev(KeyCode::Char('n'), KeyModifiers::CONTROL)),
            Some(Cmd::PageDown)
        );
        assert_eq!(m.lookup(&ev(KeyCode::PageDown, KeyModifiers::NONE)), None);
        // `s` moved from sort to refresh; sort keeps no key and leaves help.
        assert_eq!(
            m.lookup(&ev(KeyCode::Char('s'), KeyModifiers::NONE)),
            Some(Cmd::Refresh)
        );
        assert!(m.keys_of(Cmd::Sort).is_empty());
        assert!(!m
            .help_for(Route::Dlq)
            .iter()
            .any(|(_, w)| w.contains("next column")));
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        let e = KeyMap::from_overrides(&[("fly".into(), "x".into())]).unwrap_err();
        assert!(
            e.contains("unknown action \"fly\"") && e.contains("freeze"),
            "{e}"
        );
        let e = KeyMap::from_overrides(&[("quit".into(), "ctrl-".into())]).unwrap_err();
        assert!(e.contains("expected one character"), "{e}");
        assert!(Key::parse("f13").is_err());
        assert_eq!(Key::parse("F5").unwrap().code, KeyCode::F(5));
    }

    #[test]
    fn help_lists_only_keys_of_the_view() {
        let m = KeyMap::default();
        let o = m.help_for(Route::Overview);
        assert!(o.iter().any(|(k, _)| k == "w"));
        let c = m.help_for(Route::Call(1));
        assert!(!c.iter().any(|(k, _)| k == "w" || k == "/"));
        assert!(c.iter().any(|(k, _)| k == "Tab"));
    }
}
