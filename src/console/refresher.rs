//! The background refresher: fetches what the current view needs, one refresh at a time,
//! and hands the UI a `Snapshot`. Database and broker are asked concurrently, each under a
//! timeout, so a dead broker does not hide database data and a hung database does not
//! hang anything: the UI keeps the last data and shows the connection as down.

use super::broker_feed::{BrokerFeed, Poll};
use super::settings::ConsoleSettings;
use crate::queue::{Broker, QueueStat};
use crate::store::audit::AuditEntry;
use crate::store::read::review::{ReviewPage, ReviewQuery};
use crate::store::read::{
    merge_queue_stats, BizRow, BusinessDetail, CallDetail, DlqData, StuckData,
};
use crate::store::{DeadJobFilter, Store};
use crate::views::Route;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// What one refresh brought; a part is `None` when it was not asked for or failed.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub names: Option<HashMap<i64, String>>,
    pub overview: Option<Vec<BizRow>>,
    pub business: Option<BusinessDetail>,
    pub business_queues: Option<Vec<QueueStat>>,
    pub stuck: Option<StuckData>,
    /// (call id, detail or None when there is no such call)
    pub call: Option<(i64, Option<CallDetail>)>,
    pub dlq: Option<DlqData>,
    /// The DLQ search text and history flag `dlq` answers.
    pub dlq_query: Option<(String, bool)>,
    pub review: Option<ReviewPage>,
    /// The selected review item's own words: (call id, caller lines).
    pub review_evidence: Option<(i64, Vec<String>)>,
    pub audit: Option<Vec<AuditEntry>>,
    pub outbound: Option<crate::views::outbound::OutboundData>,
    /// (dead jobs still dead, calls in review), fetched on every refresh.
    pub counters: Option<(i64, i64)>,
    /// Calls past their SLA, fetched on every refresh.
    pub stuck_count: Option<i64>,
    /// Outbox depth/age and orphan alarms, fetched on every refresh.
    pub delivery: Option<crate::store::orphans::DeliveryHealth>,
}

/// The operator's searches as queries over whole tables (not over a fetched page): what
/// the list titles say is what the rows and the bulk-action scopes use.
#[derive(Debug, Clone, PartialEq)]
pub struct Queries {
    /// The DLQ search as typed, whether history is shown, and the parsed query.
    pub dlq_text: String,
    pub dlq_history: bool,
    pub dlq: DeadJobFilter,
    pub review: ReviewQuery,
    /// The selected review item, whose caller lines to fetch.
    pub review_focus: Option<i64>,
    /// The businesses the last database answer listed: the broker's queue statistics are
    /// asked for these, so a database outage does not make the broker look down too.
    pub known_businesses: Vec<i64>,
    /// The businesses whose overview rows are on screen, when the order does not depend on
    /// queue figures (sorting by backlog or oldest job needs every business's): only their
    /// queues are asked for, so a refresh costs what the screen shows, not the fleet.
    pub on_screen: Option<Vec<i64>>,
}

impl Default for Queries {
    fn default() -> Self {
        Queries {
            dlq_text: String::new(),
            dlq_history: false,
            dlq: DeadJobFilter {
                status: Some(crate::store::DeadJobStatus::Dead),
                ..Default::default()
            },
            review: ReviewQuery::default(),
            review_focus: None,
            known_businesses: vec![],
            on_screen: None,
        }
    }
}

/// How one side answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok { latency_ms: i64 },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub route: Route,
    pub started_at: i64,
    pub finished_at: i64,
    pub db: Answer,
    pub broker: Answer,
    pub broker_kind: String,
    pub dlx_unarchived: Option<u64>,
    pub parts: Parts,
}

impl Snapshot {
    pub fn ok(&self) -> bool {
        matches!(self.db, Answer::Ok { .. }) && matches!(self.broker, Answer::Ok { .. })
    }
}

/// Where queue depths come from: the live console's background broker feed (figures as
/// last read, with their time), the broker asked during the refresh (one-shot commands),
/// or the jobs table read at a fixed moment (screenshots and snapshot tests).
#[derive(Clone, Copy)]
pub enum Queues<'a> {
    Feed(&'a BrokerFeed),
    Broker(&'a dyn Broker),
    JobsTableAt(i64),
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> (Result<T, String>, i64) {
    let start = std::time::Instant::now();
    let r = match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{what} did not answer within {} s",
            limit.as_secs_f64()
        )),
    };
    (r, start.elapsed().as_millis() as i64)
}

/// Fetch what `route` shows, as of `now` (the DLQ: every dead job still dead).
pub async fn fetch(
    store: &Store,
    queues: Queues<'_>,
    route: Route,
    settings: &ConsoleSettings,
    now: i64,
) -> Snapshot {
    fetch_filtered(store, queues, route, settings, now, &Queries::default()).await
}

/// `fetch`, with the DLQ and review lists narrowed by the operator's searches (queries, not
/// page filters).
pub async fn fetch_filtered(
    store: &Store,
    queues: Queues<'_>,
    route: Route,
    settings: &ConsoleSettings,
    now: i64,
    q: &Queries,
) -> Snapshot {
    let started_at = crate::now_ms();
    let limit = Duration::from_millis(settings.timeout_ms.max(100));
    let (broker_kind, connected) = match queues {
        Queues::Feed(f) => (f.kind().to_string(), true),
        Queues::Broker(b) => (b.kind().to_string(), b.is_connected()),
        Queues::JobsTableAt(_) => ("database".to_string(), true),
    };
    let db = timed(
        "the database",
        limit,
        fetch_db(store, route, settings, now, q),
    );
    let brk = timed(
        "the broker",
        limit,
        fetch_broker(
            store,
            queues,
            route,
            &q.known_businesses,
            q.on_screen.as_deref(),
            limit,
        ),
    );
    let ((db, db_ms), (brk, brk_ms)) = tokio::join!(db, brk);
    let mut parts = Parts::default();
    let db_answer = match db {
        Ok(p) => {
            parts = p;
            Answer::Ok { latency_ms: db_ms }
        }
        Err(e) => Answer::Failed(e),
    };
    let mut dlx = None;
    let broker_answer = match brk {
        Ok(b) => {
            dlx = b.dlx;
            if let Some(rows) = parts.overview.as_mut() {
                merge_queue_stats(rows, b.stats.as_deref().unwrap_or(&[]));
                for r in rows.iter_mut() {
                    r.queues_at = b.read_at.get(&r.id).copied().or(b.read_all_at);
                }
            }
            if let Route::Business(id) = route {
                parts.business_queues = Some(
                    b.stats
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|q| q.business_id == Some(id))
                        .collect(),
                );
            }
            match b.answer {
                Some(a) => a,
                None if connected => Answer::Ok { latency_ms: brk_ms },
                None => Answer::Failed("not connected (reconnecting in the background)".into()),
            }
        }
        Err(e) => Answer::Failed(e),
    };
    Snapshot {
        route,
        started_at,
        finished_at: crate::now_ms(),
        db: db_answer,
        broker: broker_answer,
        broker_kind,
        dlx_unarchived: dlx,
        parts,
    }
}

async fn fetch_db(
    store: &Store,
    route: Route,
    settings: &ConsoleSettings,
    now: i64,
    q: &Queries,
) -> crate::store::Result<Parts> {
    // The header's counters and the view's own queries run at once: one after the other
    // they added up (each part waited for the slowest counter).
    // The overview's own per-business counts sum to the header's counters.
    let overview = matches!(route, Route::Overview | Route::Help);
    let common = async {
        tokio::try_join!(
            async {
                match overview {
                    true => Ok(None),
                    false => store.header_counters().await.map(Some),
                }
            },
            store.stuck_count_at(&settings.slas_ms, now),
            store.delivery_health_at(now)
        )
    };
    let (mut p, (counters, stuck, delivery)) =
        tokio::try_join!(fetch_view(store, route, settings, now, q), common)?;
    if counters.is_some() {
        p.counters = counters;
    }
    p.stuck_count = Some(stuck);
    p.delivery = Some(delivery);
    Ok(p)
}

/// The current view's own data.
async fn fetch_view(
    store: &Store,
    route: Route,
    settings: &ConsoleSettings,
    now: i64,
    q: &Queries,
) -> crate::store::Result<Parts> {
    let mut p = Parts::default();
    let limit = settings.list_limit;
    match route {
        Route::Overview | Route::Help => {
            // The overview lists every business: their names come with its rows.
            let (rows, counters) = store.overview_at(now).await?;
            p.counters = Some(counters);
            p.names = Some(rows.iter().map(|r| (r.id, r.name.clone())).collect());
            p.overview = Some(rows);
        }
        Route::Business(id) => {
            let (names, d) =
                tokio::try_join!(store.business_names(), store.business_detail_at(id, now))?;
            p.names = Some(names);
            p.business = Some(d);
        }
        Route::Stuck => {
            let (names, d) = tokio::try_join!(
                store.business_names(),
                store.stuck_at(&settings.slas_ms, now, limit)
            )?;
            p.names = Some(names);
            p.stuck = Some(d);
        }
        Route::Call(id) => p.call = Some((id, store.call_detail(id).await?)),
        Route::Dlq | Route::DeadJob(_) => {
            let (names, d) = tokio::try_join!(
                store.business_names(),
                store.dlq_page_filtered(&q.dlq, limit)
            )?;
            p.names = Some(names);
            p.dlq = Some(d);
            p.dlq_query = Some((q.dlq_text.clone(), q.dlq_history));
        }
        Route::Review => {
            let (names, d) = tokio::try_join!(
                store.business_names(),
                store.review_page_at(&q.review, limit, now)
            )?;
            p.names = Some(names);
            if let Some(item) = q
                .review_focus
                .and_then(|id| d.rows.iter().find(|r| r.call.id == id))
            {
                let c = &item.call;
                p.review_evidence = Some((
                    c.id,
                    store
                        .caller_lines(c.id, c.extracted_name.as_deref(), 2)
                        .await?,
                ));
            }
            p.review = Some(d);
        }
        Route::Audit => p.audit = Some(store.audit_page(limit).await?),
        Route::Outbound => p.outbound = Some(super::outbound_model::fetch(store, now).await?),
    }
    Ok(p)
}

/// The broker's part of a refresh.
#[derive(Default)]
struct BrokerPart {
    stats: Option<Vec<QueueStat>>,
    /// When each business's figures were read (epoch ms).
    read_at: HashMap<i64, i64>,
    /// Every business's figures were read at this moment (the jobs table, or the broker
    /// asked for every active business: a business without jobs has none waiting).
    read_all_at: Option<i64>,
    dlx: Option<u64>,
    /// How the broker answered, when not by the time this part took (the feed's last poll).
    answer: Option<Answer>,
}

/// Queue stats (only for the views that show them) and RabbitMQ's unarchived dead letters.
async fn fetch_broker(
    store: &Store,
    queues: Queues<'_>,
    route: Route,
    known: &[i64],
    on_screen: Option<&[i64]>,
    limit: Duration,
) -> Result<BrokerPart, String> {
    let wants_stats = matches!(route, Route::Overview | Route::Business(_) | Route::Help);
    let only: Vec<i64> = match (route, on_screen) {
        (Route::Business(id), _) => vec![id],
        // Nothing on screen yet (first refresh): every known business.
        (_, Some(ids)) if !ids.is_empty() => ids.to_vec(),
        _ => known.to_vec(),
    };
    match queues {
        Queues::JobsTableAt(now) => {
            let stats = if wants_stats {
                Some(
                    store
                        .job_queue_stats_at(now)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            Ok(BrokerPart {
                stats,
                read_all_at: Some(now),
                dlx: Some(0),
                ..Default::default()
            })
        }
        Queues::Broker(b) => {
            let at = crate::now_ms();
            let (stats, dlx) = if wants_stats {
                // Asked together: each costs about one round trip.
                let (stats, dlx) = tokio::join!(b.queue_stats(&only), b.unarchived_dead_letters());
                (
                    Some(stats.map_err(|e| e.to_string())?),
                    dlx.map_err(|e| e.to_string())?,
                )
            } else {
                (
                    None,
                    b.unarchived_dead_letters()
                        .await
                        .map_err(|e| e.to_string())?,
                )
            };
            let dlx = Some(dlx.iter().map(|q| q.depth).sum());
            Ok(match &stats {
                // An empty list asks the broker for every active business.
                Some(_) if only.is_empty() => BrokerPart {
                    stats,
                    read_all_at: Some(at),
                    dlx,
                    ..Default::default()
                },
                Some(_) => BrokerPart {
                    stats,
                    read_at: only.iter().map(|b| (*b, at)).collect(),
                    dlx,
                    ..Default::default()
                },
                None => BrokerPart {
                    dlx,
                    ..Default::default()
                },
            })
        }
        Queues::Feed(feed) => {
            let want = wants_stats.then(|| only.clone());
            feed.want(want.clone());
            let want = want.unwrap_or_default();
            // Waited for (bounded): businesses never read (the first screen, rows scrolled
            // into view), and a business opened whose figures are stale (it is one read of
            // five queues). Everything else is merged as last read, with its time.
            let since = match route {
                Route::Business(_) => crate::now_ms() - crate::views::overview::QUEUES_STALE_MS,
                _ => i64::MIN,
            };
            if !feed.read_before(&want, since).is_empty() || feed.state().dlx_unarchived.is_none() {
                feed.wait_for(&want, since, limit).await;
            }
            let st = feed.state();
            let answer = match &st.last {
                Some(Poll::Ok { latency_ms, .. }) => Answer::Ok {
                    latency_ms: *latency_ms,
                },
                Some(Poll::Failed { error, .. }) => Answer::Failed(error.clone()),
                None => Answer::Failed(format!(
                    "the broker did not answer within {} s",
                    limit.as_secs_f64()
                )),
            };
            let (stats, read_at) = if wants_stats {
                let mut stats = Vec::new();
                let mut read_at = HashMap::new();
                // Every business read so far: rows off screen keep their last figures, and
                // their time says how old those are.
                for (b, r) in &st.by_business {
                    stats.extend(r.queues.iter().cloned());
                    read_at.insert(*b, r.at);
                }
                (Some(stats), read_at)
            } else {
                (None, HashMap::new())
            };
            Ok(BrokerPart {
                stats,
                read_at,
                read_all_at: None,
                dlx: st.dlx_unarchived.map(|(n, _)| n),
                answer: Some(answer),
            })
        }
    }
}

/// Shared between the UI and the refresher.
pub struct Control {
    /// The route whose data to fetch.
    pub route: watch::Sender<Route>,
    /// Wake the refresher now (view change, `r`).
    pub now: Notify,
    pub stop: AtomicBool,
    /// The lists' searches as queries (the operator's words, parsed by the app).
    pub queries: std::sync::Mutex<Queries>,
}

/// What the refresher tells the UI.
#[derive(Debug)]
pub enum Msg {
    Started(i64),
    /// An operator action finished (sent by the action runner, not the refresher).
    Op(super::actions::OpReply),
    /// Who this console acts as, once the database has said (its role decides the actions).
    Actor(crate::ops::Actor),
    Done(Box<Snapshot>, Option<i64>),
}

/// Refresh until stopped. Never two at once: the loop awaits each refresh before waiting
/// for the next tick, and ticks missed meanwhile are skipped, not queued. After a failed
/// refresh the wait doubles (up to `max_backoff_ms`); a success resets it.
pub async fn run(
    store: Store,
    broker: Arc<dyn Broker>,
    settings: ConsoleSettings,
    control: Arc<Control>,
    tx: mpsc::Sender<Msg>,
) {
    let base = Duration::from_millis(settings.refresh_ms.max(100));
    let max_wait = Duration::from_millis(settings.max_backoff_ms).max(base);
    let mut wait = base;
    let mut route_rx = control.route.subscribe();
    let mut known: Vec<i64> = vec![];
    // The broker is read in the background; a refresh merges its latest figures.
    let feed = BrokerFeed::spawn(
        broker.clone(),
        BrokerFeed::period_for(settings.refresh_ms),
        Duration::from_millis(settings.timeout_ms.max(100)),
    );
    loop {
        if control.stop.load(Ordering::Relaxed) {
            return;
        }
        let started = tokio::time::Instant::now();
        let route = *route_rx.borrow_and_update();
        let _ = tx.try_send(Msg::Started(crate::now_ms()));
        let mut queries = control
            .queries
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        queries.known_businesses = known.clone();
        let snap = fetch_filtered(
            &store,
            Queues::Feed(&feed),
            route,
            &settings,
            crate::now_ms(),
            &queries,
        )
        .await;
        // Active businesses as the overview lists them (the broker asks the same of the
        // database); other views only refresh the list when it is still empty.
        if let Some(rows) = &snap.parts.overview {
            known = rows.iter().filter(|b| b.active).map(|b| b.id).collect();
        } else if let (true, Some(names)) = (known.is_empty(), &snap.parts.names) {
            known = names.keys().copied().collect();
            known.sort();
        }
        wait = if snap.ok() {
            base
        } else {
            (wait * 2).min(max_wait)
        };
        // Ticks that fell due while this refresh ran are skipped, not queued.
        let mut due = started + wait;
        while due <= tokio::time::Instant::now() {
            due += wait;
        }
        let next = crate::now_ms() + (due - tokio::time::Instant::now()).as_millis() as i64;
        // A UI too busy to take it misses this snapshot; the next one supersedes it anyway.
        if tx.try_send(Msg::Done(Box::new(snap), Some(next))).is_err() && tx.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = control.now.notified() => {}
            _ = route_rx.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::app::App;
    use crate::console::keymap::KeyMap;
    use crate::store::read::BizRow;
    use ratatui::layout::Rect;

    fn snap_with(rows: Vec<BizRow>) -> Snapshot {
        Snapshot {
            route: Route::Overview,
            started_at: 0,
            finished_at: 0,
            db: Answer::Ok { latency_ms: 1 },
            broker: Answer::Ok { latency_ms: 1 },
            broker_kind: "rabbitmq".into(),
            dlx_unarchived: None,
            parts: Parts {
                overview: Some(rows),
                ..Default::default()
            },
        }
    }

    fn row(id: i64, name: &str, backlog: u64) -> BizRow {
        BizRow {
            id,
            name: name.into(),
            active: true,
            backlog: [backlog, 0, 0, 0, 0],
            ..Default::default()
        }
    }

    #[test]
    fn the_app_names_the_overview_rows_on_screen_unless_sorted_by_queue_figures() {
        let mut app = App::new(ConsoleSettings::default(), KeyMap::default(), "admin", None);
        let rows: Vec<BizRow> = (1..=100).map(|i| row(i, &format!("b{i:03}"), 0)).collect();
        app.apply(snap_with(rows), None);
        app.prepare(Rect::new(0, 0, 160, 45), 0);
        let shown = app.queries().on_screen.expect("rows on screen");
        assert!(
            shown.len() > 20 && shown.len() < 45,
            "a 45-line terminal shows a screenful, not 100: {}",
            shown.len()
        );
        assert_eq!(shown[0], 1);
        // Sorted by backlog, the order needs every business's queues.
        app.state
            .list_mut(crate::views::state::ListId::Overview)
            .sort = 6;
        app.prepare(Rect::new(0, 0, 160, 45), 0);
        assert_eq!(app.queries().on_screen, None);
    }

    fn screen(app: &mut App, w: u16, h: u16) -> String {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        app.prepare(Rect::new(0, 0, w, h), app.state.now_ms);
        term.draw(|f| crate::views::draw(f, &app.state)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Broker figures say how old they are: fresh ones plainly, stale ones with `~` and
    /// "(stale)", never-read ones as "?" (unknown, not an empty queue).
    #[test]
    fn the_overview_marks_stale_and_unknown_queue_figures() {
        let now = 1_700_000_000_000;
        for (w, h) in [(160u16, 12u16), (80, 12)] {
            let mut app = App::new(ConsoleSettings::default(), KeyMap::default(), "admin", None);
            app.state.now_ms = now;
            let mut rows = vec![row(1, "fresh", 7), row(2, "stale", 9), row(3, "unread", 0)];
            rows[0].queues_at = Some(now - 400);
            rows[1].queues_at = Some(now - 20_000);
            app.apply(snap_with(rows.clone()), None);
            app.state.now_ms = now;
            let text = screen(&mut app, w, h);
            let line = |name: &str| {
                text.lines()
                    .find(|l| l.contains(name))
                    .unwrap_or_else(|| panic!("{name} not on screen:\n{text}"))
                    .to_string()
            };
            assert!(
                !line("fresh").contains('~') && !line("fresh").contains('?'),
                "{text}"
            );
            assert!(line("stale").contains("~"), "{text}");
            assert!(line("unread").contains('?'), "{text}");
            assert!(text.contains("queues of 1 not read yet"), "{text}");
            // Without the unread row, the title gives the age of the oldest figures shown.
            rows.pop();
            app.apply(snap_with(rows.clone()), None);
            app.state.now_ms = now;
            let text = screen(&mut app, w, h);
            assert!(text.contains("queues 20s old (stale)"), "{text}");
            rows.pop();
            app.apply(snap_with(rows), None);
            app.state.now_ms = now;
            let text = screen(&mut app, w, h);
            assert!(text.contains("queues 0.4s old"), "{text}");
            assert!(!text.contains("stale"), "{text}");
        }
    }
}
