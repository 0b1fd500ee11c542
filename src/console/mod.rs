//! The console: owns the terminal and the event loop; a background refresher fetches
//! snapshots (never overlapping, backing off on errors) so input and drawing never wait on
//! I/O. The terminal is restored on quit, on panic and on SIGTERM.

pub mod screenshot;
pub mod snapshot;

use crate::config::Config;
use crate::queue::DynBroker;
use crate::store::Store;
use crate::views::{self, UiState, View};
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers, MouseEventKind};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::ExecutableCommand;
use futures_util::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = std::io::stdout().execute(crossterm::event::DisableMouseCapture);
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
    let _ = std::io::stdout().execute(crossterm::cursor::Show);
}

/// Open the console on the configured database and broker.
pub async fn run_console(config: Config, readonly: bool) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, 4).await?;
    let broker =
        crate::queue::connect(&config.broker.kind, config.broker_settings(), store.clone()).await?;
    let signal = crate::cli::pipeline_cmds::shutdown_signal();
    let r = run_console_with(store, broker.clone(), config, readonly, signal).await;
    broker.close().await;
    r
}

/// Shared between the UI and the refresher.
struct Control {
    call: Mutex<Option<i64>>,
    frozen: AtomicBool,
    now: Notify,
}

pub async fn run_console_with(
    store: Store,
    broker: DynBroker,
    config: Config,
    readonly: bool,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let role = crate::ops::detect_actor(
        &store,
        crate::ops::Role::parse(&config.console.role).unwrap_or(crate::ops::Role::Viewer),
    )
    .await
    .map(|a| a.role.as_str().to_string())
    .unwrap_or_else(|_| "viewer".into());
    let control = Arc::new(Control {
        call: Mutex::new(None),
        frozen: AtomicBool::new(false),
        now: Notify::new(),
    });
    let (snap_tx, mut snap_rx) = watch::channel::<Option<snapshot::Snapshot>>(None);
    let (busy_tx, busy_rx) = watch::channel(false);
    let refresher = tokio::spawn(refresh_loop(
        store,
        broker,
        config.clone(),
        control.clone(),
        snap_tx,
        busy_tx,
    ));

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        hook(info);
    }));
    enable_raw_mode()?;
    std::io::stdout().execute(EnterAlternateScreen)?;
    std::io::stdout().execute(crossterm::event::EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut ui = UiState::new(readonly || config.console.readonly, &role);
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result: anyhow::Result<()> = loop {
        ui.now_ms = crate::now_ms();
        ui.refreshing = *busy_rx.borrow();
        terminal.draw(|f| views::draw(f, &ui))?;
        tokio::select! {
            _ = tick.tick() => { ui.spinner += 1; }
            _ = shutdown.changed() => break Ok(()),
            changed = snap_rx.changed() => {
                if changed.is_ok() {
                    if let Some(s) = snap_rx.borrow_and_update().clone() {
                        ui.previous = ui.snapshot.take();
                        ui.snapshot = Some(s);
                    }
                }
            }
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => if handle_key(&mut ui, k, &control) { break Ok(()) },
                Some(Ok(Event::Mouse(m))) => match m.kind {
                    MouseEventKind::ScrollDown => move_sel(&mut ui, 1),
                    MouseEventKind::ScrollUp => move_sel(&mut ui, -1),
                    MouseEventKind::Down(_) => {
                        // Rows start below the header (2 lines), the border and the column header.
                        let row = m.row.saturating_sub(4) as usize;
                        ui.selected = row;
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
        }
    };
    restore_terminal();
    refresher.abort();
    result
}

async fn refresh_loop(
    store: Store,
    broker: DynBroker,
    config: Config,
    control: Arc<Control>,
    tx: watch::Sender<Option<snapshot::Snapshot>>,
    busy: watch::Sender<bool>,
) {
    let base = Duration::from_millis(config.console.refresh_ms.max(200));
    let mut interval = base;
    let slas = config.console.stage_slas_ms();
    loop {
        if !control.frozen.load(Ordering::Relaxed) {
            let call = *control.call.lock().unwrap();
            let _ = busy.send(true);
            // One refresh at a time: the next starts only after this one returned, so a slow
            // database skips refreshes instead of queueing them.
            let s = tokio::time::timeout(
                Duration::from_secs(30),
                snapshot::fetch(&store, &*broker, &slas, call),
            )
            .await;
            let _ = busy.send(false);
            match s {
                Ok(s) => {
                    interval = if s.error.is_some() {
                        (interval * 2).min(Duration::from_secs(30))
                    } else {
                        base
                    };
                    let _ = tx.send(Some(s));
                }
                Err(_) => {
                    interval = (interval * 2).min(Duration::from_secs(30));
                    let mut last = tx.borrow().clone().unwrap_or_default();
                    last.error = Some("refresh timed out after 30 s: showing the last data".into());
                    last.db_ok = false;
                    let _ = tx.send(Some(last));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = control.now.notified() => {}
        }
    }
}

fn list_len(ui: &UiState) -> usize {
    match ui.view {
        View::Overview => ui
            .snapshot
            .as_ref()
            .map(|s| s.businesses.iter().filter(|b| ui.matches(&b.name)).count() + 1)
            .unwrap_or(0),
        View::Stuck => views::lists::stuck_rows(ui).len(),
        View::Dlq => views::lists::dlq_rows(ui).len(),
        View::Review => views::lists::review_rows(ui).len(),
        View::Audit => ui.snapshot.as_ref().map(|s| s.audit.len()).unwrap_or(0),
        View::Call | View::Help => 0,
    }
}

fn move_sel(ui: &mut UiState, d: i64) {
    if ui.view == View::Call {
        ui.scroll = (ui.scroll as i64 + d).max(0) as u16;
        return;
    }
    let n = list_len(ui) as i64;
    ui.selected = (ui.selected as i64 + d).clamp(0, (n - 1).max(0)) as usize;
}

fn go(ui: &mut UiState, v: View) {
    ui.view = v;
    ui.selected = 0;
    ui.scroll = 0;
    ui.message = None;
}

fn open_call(ui: &mut UiState, control: &Control, id: i64) {
    *control.call.lock().unwrap() = Some(id);
    control.now.notify_one();
    go(ui, View::Call);
}

fn run_command(ui: &mut UiState, control: &Control, cmd: &str) -> bool {
    let cmd = cmd.trim();
    let (word, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    match word {
        "overview" | "o" => go(ui, View::Overview),
        "stuck" => go(ui, View::Stuck),
        "dlq" => go(ui, View::Dlq),
        "review" => go(ui, View::Review),
        "audit" => go(ui, View::Audit),
        "help" => go(ui, View::Help),
        "q" | "quit" => return true,
        "call" => match arg.trim().parse::<i64>() {
            Ok(id) => open_call(ui, control, id),
            Err(_) => ui.message = Some(format!(":call needs a call id, got {arg:?}")),
        },
        "biz" => {
            go(ui, View::Overview);
            ui.filter = arg.trim().to_string();
        }
        other => ui.message = Some(format!("unknown command :{other} (try :overview :stuck :dlq :review :audit :call <id> :biz <name>)")),
    }
    false
}

/// Returns true to quit.
fn handle_key(ui: &mut UiState, k: KeyEvent, control: &Control) -> bool {
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        return true;
    }
    if let Some(p) = ui.palette.as_mut() {
        match k.code {
            KeyCode::Esc => ui.palette = None,
            KeyCode::Enter => {
                let cmd = p.clone();
                ui.palette = None;
                return run_command(ui, control, &cmd);
            }
            KeyCode::Tab => {
                if let Some(c) = views::completions(p).first() {
                    *p = c.to_string();
                }
            }
            KeyCode::Backspace => {
                p.pop();
            }
            KeyCode::Char(c) => p.push(c),
            _ => {}
        }
        return false;
    }
    if ui.editing_filter {
        match k.code {
            KeyCode::Esc => {
                ui.filter.clear();
                ui.editing_filter = false;
            }
            KeyCode::Enter => ui.editing_filter = false,
            KeyCode::Backspace => {
                ui.filter.pop();
            }
            KeyCode::Char(c) => ui.filter.push(c),
            _ => {}
        }
        ui.selected = 0;
        return false;
    }
    match k.code {
        KeyCode::Char('q') => return true,
        KeyCode::Char(':') => ui.palette = Some(String::new()),
        KeyCode::Char('/') => ui.editing_filter = true,
        KeyCode::Char('?') => go(ui, View::Help),
        KeyCode::Char('f') => {
            let was = control.frozen.fetch_xor(true, Ordering::Relaxed);
            ui.frozen = !was;
        }
        KeyCode::Char('r') => control.now.notify_one(),
        KeyCode::Char('s') => ui.sort_column += 1,
        KeyCode::Char('1') => go(ui, View::Overview),
        KeyCode::Char('2') => go(ui, View::Stuck),
        KeyCode::Char('3') => go(ui, View::Dlq),
        KeyCode::Char('4') => go(ui, View::Review),
        KeyCode::Char('5') => go(ui, View::Audit),
        KeyCode::Char('6') => go(ui, View::Help),
        KeyCode::Char('j') | KeyCode::Down => move_sel(ui, 1),
        KeyCode::Char('k') | KeyCode::Up => move_sel(ui, -1),
        KeyCode::PageDown => move_sel(ui, 20),
        KeyCode::PageUp => move_sel(ui, -20),
        KeyCode::Home | KeyCode::Char('g') => move_sel(ui, -1_000_000),
        KeyCode::End | KeyCode::Char('G') => move_sel(ui, 1_000_000),
        KeyCode::Esc => {
            if !ui.filter.is_empty() {
                ui.filter.clear();
            } else {
                go(ui, View::Overview);
            }
        }
        KeyCode::Enter => match ui.view {
            View::Overview => {
                // Drill into a business: its stuck calls.
                let name = ui.snapshot.as_ref().and_then(|s| {
                    let mut rows: Vec<_> = s
                        .businesses
                        .iter()
                        .filter(|b| ui.matches(&b.name))
                        .collect();
                    rows.sort_by(|a, b| a.name.cmp(&b.name));
                    rows.get(ui.selected).map(|b| b.id.to_string())
                });
                go(ui, View::Stuck);
                if let Some(id) = name {
                    ui.message = Some(format!("stuck calls of business {id}"));
                }
            }
            View::Stuck => {
                if let Some(id) = views::lists::stuck_rows(ui).get(ui.selected).map(|c| c.id) {
                    open_call(ui, control, id);
                }
            }
            View::Review => {
                if let Some(id) = views::lists::review_rows(ui).get(ui.selected).map(|c| c.id) {
                    open_call(ui, control, id);
                }
            }
            View::Dlq => {
                if let Some(id) = views::lists::dlq_rows(ui)
                    .get(ui.selected)
                    .and_then(|d| d.call_id)
                {
                    open_call(ui, control, id);
                }
            }
            _ => {}
        },
        _ => {}
    }
    false
}
