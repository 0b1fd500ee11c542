//! The console: owns the terminal and the event loop. `app` is the state machine (keys,
//! mouse, snapshots in; `ConsoleState` out), `refresher` fetches in the background (never
//! overlapping, backing off on errors) so input and drawing never wait on I/O, `terminal`
//! restores the terminal on quit, error, panic and SIGTERM/SIGHUP.

pub mod actions;
pub mod app;
pub mod broker_feed;
pub mod demo_data;
pub mod demo_outbound;
pub mod keymap;
pub mod late_broker;
pub mod outbound_model;
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

/// Open the console on the configured database and broker — at once, whatever their state:
/// a console for outages opens during one and shows it ("connecting…", then "unreachable
/// since …, retrying in …"), and picks the data up when they come back.
pub async fn run_console(config: Config, readonly: bool) -> anyhow::Result<()> {
    // --readonly: sessions that cannot write at all (and no background writer runs).
    let readonly_session = readonly || config.console.readonly;
    let store = Store::connect_lazy(
        &config.database.url,
        4,
        Duration::from_secs(3),
        readonly_session,
    )?;
    // `migrate`'s future is not `Send` (sqlx's executor lifetimes), so it runs on a
    // blocking thread of its own rather than as a task.
    // The runtime waits for blocking threads at exit: `stop` ends the retries on quit.
    let stop = Arc::new(AtomicBool::new(false));
    let (handle, migrating, stopped) = (
        tokio::runtime::Handle::current(),
        store.clone(),
        stop.clone(),
    );
    tokio::task::spawn_blocking(move || {
        handle.block_on(migrate_when_reachable(migrating, stopped))
    });
    let broker: DynBroker = late_broker::LateBroker::connect(
        &config.broker.kind,
        config.broker_settings(),
        store.clone(),
        Duration::from_secs(5),
    );
    let r = run_console_with(
        store,
        broker.clone(),
        &config,
        readonly,
        terminal::signals(),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    broker.close().await;
    r
}

/// Apply pending migrations (the embedded SQLite path; Postgres is migrated by `callops
/// migrate`, where this finds nothing to do) once the database answers.
async fn migrate_when_reachable(store: Store, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        // Never DDL on Postgres or in a read-only session (people log in with roles that
        // cannot create tables): check the schema version; the embedded SQLite file
        // migrates itself.
        let ready = if store.is_readonly() || store.dialect() == crate::store::Dialect::Postgres {
            store.check_schema().await
        } else {
            store.migrate().await.map(|_| ())
        };
        match ready {
            Ok(_) => return,
            Err(crate::store::StoreError::Db {
                source: sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_),
                ..
            }) => tokio::time::sleep(Duration::from_secs(3)).await,
            Err(e) => {
                tracing::warn!(error = %e, "console: the database schema is not current (run `callops migrate` as the owner)");
                return;
            }
        }
    }
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
    crate::views::set_zone(
        crate::views::Zone::parse(&config.console.timezone).map_err(|e| anyhow::anyhow!(e))?,
    );
    // The role the database grants wins over the configured one (Postgres); on SQLite the
    // configured role is advisory. Until the database has answered, the console is a viewer
    // (nothing could be changed anyway); the role arrives as a message.
    let configured = crate::ops::Role::parse(&settings.role).unwrap_or(crate::ops::Role::Viewer);
    let role = "viewer".to_string();
    let control = Arc::new(Control {
        route: watch::channel(crate::views::Route::Overview).0,
        now: Notify::new(),
        stop: AtomicBool::new(false),
        queries: std::sync::Mutex::new(refresher::Queries::default()),
    });
    let mut app = App::new(settings.clone(), keymap, &role, Some(control.clone()));
    app.state.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let mut ops = crate::ops::Ops {
        store: store.clone(),
        broker: broker.clone(),
        actor: crate::ops::Actor {
            name: std::env::var("USER").unwrap_or_else(|_| "operator".into()),
            role: crate::ops::Role::Viewer,
        },
        readonly: settings.readonly,
    };
    let op_tx = tx.clone();
    let actor_tx = tx.clone();
    let actor_store = store.clone();
    let detect = tokio::spawn(async move {
        loop {
            match crate::ops::detect_actor(&actor_store, configured).await {
                Ok(a) => {
                    let _ = actor_tx.send(Msg::Actor(a)).await;
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(3)).await,
            }
        }
    });
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
                Some(Msg::Actor(a)) => {
                    app.set_role(a.role.as_str());
                    ops.actor = a;
                }
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
    detect.abort();
    result
}
