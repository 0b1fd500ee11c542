//! Postgres notifications that wake idle consumers and the outbox relay: a trigger on
//! `jobs` (payload = stage) and on `outbox` (migration 0013) notifies at commit, so an idle
//! worker sleeps instead of polling. Notifications are a latency optimisation only: they
//! are lost while the listening connection is down, so every sleeper also has a timer,
//! and while not listening it falls back to its short poll.

use crate::domain::stage::Stage;
use crate::store::{Dialect, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub const JOBS_CHANNEL: &str = "callops_jobs";
pub const OUTBOX_CHANNEL: &str = "callops_outbox";

/// Wake-ups for one process; on SQLite nothing ever listens.
pub struct Notifier {
    listening: AtomicBool,
    stages: [Notify; 5],
    outbox: Notify,
    /// Dropped with the notifier: ends the listening task and closes its connection.
    _closed: tokio::sync::watch::Sender<()>,
}

impl Notifier {
    /// A notifier that never listens (SQLite, or a store that cannot).
    pub fn silent() -> Arc<Notifier> {
        Notifier::new().0
    }

    fn new() -> (Arc<Notifier>, tokio::sync::watch::Receiver<()>) {
        let (tx, rx) = tokio::sync::watch::channel(());
        let n = Arc::new(Notifier {
            listening: AtomicBool::new(false),
            stages: Default::default(),
            outbox: Notify::new(),
            _closed: tx,
        });
        (n, rx)
    }

    /// Listen on `store`'s database when it is Postgres (one extra connection, kept open
    /// and re-opened by a background task for as long as the notifier lives).
    pub fn start(store: &Store) -> Arc<Notifier> {
        let (n, closed) = Notifier::new();
        if store.dialect() == Dialect::Postgres {
            tokio::spawn(listen(Arc::downgrade(&n), closed, store.url().to_string()));
        }
        n
    }

    /// True while notifications arrive: sleepers may use long safety timers.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    pub fn stage(&self, stage: Stage) -> &Notify {
        &self.stages[Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0)]
    }

    pub fn outbox(&self) -> &Notify {
        &self.outbox
    }

    fn wake(n: &Notify) {
        // A waiter now wakes; with none waiting (the loop is mid-claim) the permit makes
        // its next wait return at once, so a commit is never slept through.
        n.notify_waiters();
        n.notify_one();
    }

    fn wake_all(&self) {
        for s in &self.stages {
            Notifier::wake(s);
        }
        Notifier::wake(&self.outbox);
    }
}

async fn listen(
    notifier: std::sync::Weak<Notifier>,
    mut closed: tokio::sync::watch::Receiver<()>,
    url: String,
) {
    use sqlx::postgres::PgListener;
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(n) = notifier.upgrade() else { return };
        if closed.has_changed().is_err() {
            return;
        }
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "notification listener cannot connect; polling meanwhile");
                drop(n);
                tokio::time::sleep(crate::queue::jitter(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen_all([JOBS_CHANNEL, OUTBOX_CHANNEL]).await {
            tracing::debug!(error = %e, "LISTEN failed; polling meanwhile");
            drop(n);
            tokio::time::sleep(crate::queue::jitter(backoff)).await;
            continue;
        }
        backoff = Duration::from_millis(200);
        n.listening.store(true, Ordering::Relaxed);
        // Anything committed before LISTEN took effect was not notified.
        n.wake_all();
        drop(n);
        loop {
            let next = tokio::select! {
                r = listener.try_recv() => r,
                // The notifier was dropped: nobody wants the wake-ups any more.
                _ = closed.changed() => return,
            };
            let Some(n) = notifier.upgrade() else { return };
            match next {
                Ok(Some(msg)) => {
                    n.listening.store(true, Ordering::Relaxed);
                    if msg.channel() == OUTBOX_CHANNEL {
                        Notifier::wake(&n.outbox);
                    } else {
                        match msg.payload().parse::<Stage>() {
                            Ok(stage) => Notifier::wake(n.stage(stage)),
                            Err(_) => n.wake_all(),
                        }
                    }
                }
                // Connection lost (the next try_recv reconnects): notifications may have
                // been missed, and until one arrives again sleepers poll.
                Ok(None) => {
                    n.listening.store(false, Ordering::Relaxed);
                    n.wake_all();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "notification listener failed; reconnecting");
                    n.listening.store(false, Ordering::Relaxed);
                    n.wake_all();
                    break;
                }
            }
        }
        tokio::time::sleep(crate::queue::jitter(backoff)).await;
    }
}
