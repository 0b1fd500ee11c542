//! The console: owns the terminal and the event loop. `app` is the state machine (keys,
//! mouse, snapshots in; `ConsoleState` out), `refresher` fetches in the background (never
//! overlapping, backing off on errors) so input and drawing never wait on I/O, `terminal`
//! restores the terminal on quit, error, panic and SIGTERM/SIGHUP.

pub mod actions;
pub mod app;
pub mod demo_data;
pub mod keymap;
pub mod refresher;
pub mod screenshot;
pub mod settings;
pub mod terminal;

use crate::config::Config;
use crate::queue::DynBroker;
use crate::store::Store;
use app::App;
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use keymap::KeyMap;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use refresher::{Control, Msg};
use settings::ConsoleSettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// Open the console on the configured database and broker.
pub async fn run_console(config: Config, readonly: bool) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, 4).await?;
    let broker =
        crate::queue::connect(&config.broker.kind, config.broker_settings(), store.clone()).await?;
    let r = run_console_with(
        store,
        broker.clone(),
        &config,
        readonly,
        terminal::signals(),
    )
    .await;
    broker.close().await;
    r
}

/// Settings and key map from config; a bad key binding is a config error naming it.
pub fn settings_from(config: &Config, readonly: bool) -> anyhow::Result<(ConsoleSettings, KeyMap)> {
    let mut settings = ConsoleSettings::from_config(&config.console);
    settings.readonly |= readonly;
    let keymap = KeyMap::from_overrides(&settings.keys)
        .map_err(|e| anyhow::anyhow!("config console.keys: {e}"))?;
    Ok((settings, keymap))
}

pub async fn run_console_with(
    store: Store,
    broker: DynBroker,
    config: &Config,
    readonly: bool,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (settings, keymap) = settings_from(config, readonly)?;
    // The role the database grants wins over the configured one (Postgres); on SQLite the
    // configured role is advisory.
    let configured = crate::ops::Role::parse(&settings.role).unwrap_or(crate::ops::Role::Viewer);
    let role = crate::ops::detect_actor(&store, configured)
        .await
        .map(|a| a.role.as_str().to_string())
        .unwrap_or_else(|_| "viewer".into());
    let control = Arc::new(Control {
        route: watch::channel(crate::views::Route::Overview).0,
        now: Notify::new(),
        stop: AtomicBool::new(false),
        queries: std::sync::Mutex::new(refresher::Queries::default()),
    });
    let mut app = App::new(settings.clone(), keymap, &role, Some(control.clone()));
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let ops = crate::ops::Ops {
        store: store.clone(),
        broker: broker.clone(),
        actor: crate::ops::Actor {
            name: actor_name(&store).await,
            role: crate::ops::Role::parse(&role).unwrap_or(crate::ops::Role::Viewer),
        },
        readonly: settings.readonly,
    };
    let op_tx = tx.clone();
    let refresher = tokio::spawn(refresher::run(
        store.clone(),
        broker.clone(),
        settings,
        control.clone(),
        tx,
    ));

    let guard = terminal::TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut events = EventStream::new();
    // Spinner and ages move even when nothing else happens.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result: anyhow::Result<()> = loop {
        let size = term.size()?;
        app.prepare(Rect::new(0, 0, size.width, size.height), crate::now_ms());
        term.draw(|f| crate::views::draw(f, &app.state))?;
        tokio::select! {
            _ = tick.tick() => app.state.spinner = app.state.spinner.wrapping_add(1),
            _ = shutdown.changed() => break Ok(()),
            msg = rx.recv() => match msg {
                Some(Msg::Started(at)) => app.refresh_started(at),
                Some(Msg::Done(snap, next)) => app.apply(*snap, next),
                Some(Msg::Op(reply)) => app.op_reply(reply),
                None => break Err(anyhow::anyhow!("the console's refresher stopped unexpectedly")),
            },
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => {
                    if app.handle_key(k) {
                        break Ok(());
                    }
                    // Actions run beside the UI; their outcome comes back as a message.
                    for req in app.requests.drain(..) {
                        let (ops, tx) = (ops.clone(), op_tx.clone());
                        tokio::spawn(async move {
                            let reply = actions::execute(&ops, req).await;
                            let _ = tx.send(Msg::Op(reply)).await;
                        });
                    }
                }
                Some(Ok(Event::Mouse(m))) => app.handle_mouse(m),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(anyhow::anyhow!("reading terminal input: {e}")),
                None => break Ok(()),
            },
        }
    };
    drop(guard);
    control.stop.store(true, Ordering::Relaxed);
    refresher.abort();
    result
}

/// Who the audit log says did it: the database user on Postgres, the OS user on SQLite.
async fn actor_name(store: &Store) -> String {
    crate::ops::detect_actor(store, crate::ops::Role::Viewer)
        .await
        .map(|a| a.name)
        .unwrap_or_else(|_| std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}
