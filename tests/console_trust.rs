//! Issue 12, "a console to trust at 3 a.m.": the defects that could lead to a wrong action,
//! each driven through the console's own key handling (`App`) over the seeded demo data on
//! a real store (SQLite and Postgres), with the database changing under the console the way
//! workers and other operators change it.

mod common;

use callops::console::actions::{execute, OpReply, OpRequest};
use callops::console::app::App;
use callops::console::demo_data::{seed_demo_data, DEMO_NOW};
use callops::console::keymap::KeyMap;
use callops::console::refresher::{fetch_filtered, Answer, Queues, Snapshot};
use callops::console::screenshot::{buffer_text, render_buffer};
use callops::console::settings::ConsoleSettings;
use callops::ops::{Actor, Ops, Role};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::Store;
use callops::views::{self, ListId, Route};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use std::time::Duration;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ch(app: &mut App, c: char) {
    app.handle_key(key(KeyCode::Char(c)));
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        ch(app, c);
    }
}

fn settings(limit: u32) -> ConsoleSettings {
    ConsoleSettings {
        role: "admin".into(),
        list_limit: limit,
        ..Default::default()
    }
}

/// One refresh as the live console does it: the app's own searches, then a frame.
async fn refresh(app: &mut App, store: &Store, s: &ConsoleSettings) {
    let snap = fetch_filtered(
        store,
        Queues::JobsTableAt(DEMO_NOW),
        app.state.content_route(),
        s,
        DEMO_NOW,
        &app.queries(),
    )
    .await;
    assert!(snap.ok(), "refresh failed: {:?} {:?}", snap.db, snap.broker);
    app.apply(snap, None);
    app.prepare(Rect::new(0, 0, 160, 45), DEMO_NOW);
}

async fn run_requests(app: &mut App, ops: &Ops) -> Vec<OpReply> {
    let reqs: Vec<OpRequest> = app.requests.drain(..).collect();
    let mut out = vec![];
    for r in reqs {
        let reply = execute(ops, r).await;
        out.push(reply.clone());
        app.op_reply(reply);
    }
    out
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn exec(store: &Store, sql: &str) {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn selected(app: &App, id: ListId) -> Option<i64> {
    let keys = views::visible_keys(&app.state, id);
    keys.get(app.state.list(id).selected).copied()
}

fn review_ids(app: &App) -> Vec<i64> {
    views::review::visible(&app.state)
        .iter()
        .map(|r| r.call.id)
        .collect()
}

async fn ops_on(store: &Store) -> (Ops, callops::queue::DynBroker) {
    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                tiers: 2,
            },
            prefix: common::unique("console_trust"),
            amqp_url: String::new(),
            management_url: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        },
        store.clone(),
    )
    .await
    .unwrap();
    let ops = Ops {
        store: store.clone(),
        broker: broker.clone(),
        actor: Actor {
            name: "test-admin".into(),
            role: Role::Admin,
        },
        readonly: false,
    };
    (ops, broker)
}

/// Defect 1: rows inserted above the selection (a refresh) do not move it to another item;
/// an item that leaves hands the selection to its neighbour and the status line says so.
async fn selection_is_an_item(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let s = settings(500);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    refresh(&mut app, &store, &s).await;
    ch(&mut app, '4');
    refresh(&mut app, &store, &s).await;
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    let ids = review_ids(&app);
    assert!(ids.len() >= 4, "demo review items: {ids:?}");
    let picked = selected(&app, ListId::Review).unwrap();
    assert_eq!(picked, ids[2]);
    // Two finished calls come into review with the top priority: they sort above it.
    exec(
        &store,
        "UPDATE calls SET stage = 'link', state = 'review', review_priority = 1000000 \
         WHERE id IN (SELECT id FROM calls WHERE state <> 'review' ORDER BY id LIMIT 2)",
    )
    .await;
    refresh(&mut app, &store, &s).await;
    let ids = review_ids(&app);
    assert_eq!(
        ids.iter().position(|i| *i == picked),
        Some(4),
        "the item moved down two rows: {ids:?}"
    );
    assert_eq!(selected(&app, ListId::Review), Some(picked), "{ids:?}");
    // It leaves (someone linked it): the row below it is selected, and the line says so.
    let below = ids[5];
    exec(
        &store,
        &format!("UPDATE calls SET stage = 'notify', state = 'done' WHERE id = {picked}"),
    )
    .await;
    refresh(&mut app, &store, &s).await;
    assert_eq!(selected(&app, ListId::Review), Some(below));
    let (m, _) = app.state.message.clone().expect("a status line");
    assert!(
        m.contains(&format!("call {picked} left the list")) && m.contains(&below.to_string()),
        "{m}"
    );
    // Sorting keeps the item too.
    ch(&mut app, 's');
    refresh(&mut app, &store, &s).await;
    assert_eq!(selected(&app, ListId::Review), Some(below));

    // DLQ: a dead job dying again sorts on top; R still offers the one selected.
    ch(&mut app, '3');
    refresh(&mut app, &store, &s).await;
    ch(&mut app, 'j');
    let dead = views::visible_keys(&app.state, ListId::Dlq);
    assert!(dead.len() >= 3, "{dead:?}");
    let picked = selected(&app, ListId::Dlq).unwrap();
    exec(
        &store,
        &format!(
            "UPDATE dead_jobs SET dead_at = {} WHERE id = {}",
            DEMO_NOW - 1,
            dead[2]
        ),
    )
    .await;
    refresh(&mut app, &store, &s).await;
    assert_eq!(views::visible_keys(&app.state, ListId::Dlq)[0], dead[2]);
    ch(&mut app, 'R');
    let Some(OpRequest::DlqPreview { scopes, .. }) = app.requests.first().cloned() else {
        panic!("R asks for a preview: {:?}", app.requests);
    };
    assert_eq!(
        scopes[0].0,
        format!("this dead job #{picked}"),
        "{scopes:?}"
    );
}

/// Defects 2 and 3: a deferred item leaves the default list until due and is shown with
/// H (reason, due time); the review list is paged and searched by the database, with the
/// true total in the title.
async fn review_is_paged_searched_and_deferred(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let (ops, broker) = ops_on(&store).await;
    let s = settings(1);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    ch(&mut app, '4');
    refresh(&mut app, &store, &s).await;
    let in_review = scalar(&store, "SELECT COUNT(*) FROM calls WHERE state = 'review'").await;
    assert!(
        in_review > 2,
        "more review items than two pages: {in_review}"
    );
    let page = views::review::page(&app.state).unwrap();
    assert_eq!(page.total, in_review, "the title's total is the true total");
    assert_eq!(page.rows.len(), 1);
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    assert!(
        text.contains(&format!("review queue 1–1 of {in_review}")),
        "{text}"
    );
    // Past the last row: the next page, from the database.
    let first_page = review_ids(&app);
    ch(&mut app, 'j');
    refresh(&mut app, &store, &s).await;
    let second = review_ids(&app);
    assert_eq!(views::review::page(&app.state).unwrap().query.offset, 1);
    assert!(second.iter().all(|i| !first_page.contains(i)), "{second:?}");
    // A search finds an item that is on no page fetched so far.
    let far: i64 = scalar(
        &store,
        "SELECT id FROM calls WHERE state = 'review' ORDER BY review_priority, state_since DESC LIMIT 1",
    )
    .await;
    assert!(!first_page.contains(&far) && !second.contains(&far));
    ch(&mut app, '/');
    typed(&mut app, &far.to_string());
    app.handle_key(key(KeyCode::Enter));
    refresh(&mut app, &store, &s).await;
    assert_eq!(review_ids(&app), vec![far], "server-side search by call id");
    assert_eq!(views::review::page(&app.state).unwrap().total, 1);

    // Defer it: it leaves the list; H shows it with its reason and due time.
    ch(&mut app, 'd');
    typed(&mut app, "waiting for the CRM export");
    app.handle_key(key(KeyCode::Enter));
    let replies = run_requests(&mut app, &ops).await;
    assert!(matches!(&replies[..], [OpReply::Done(_)]), "{replies:?}");
    refresh(&mut app, &store, &s).await;
    assert!(
        review_ids(&app).is_empty(),
        "deferred: gone from the default list"
    );
    app.handle_key(key(KeyCode::Esc));
    refresh(&mut app, &store, &s).await;
    let page = views::review::page(&app.state).unwrap();
    assert_eq!(page.total, in_review - 1);
    assert_eq!(page.deferred_total, 1);
    ch(&mut app, 'H');
    refresh(&mut app, &store, &s).await;
    let page = views::review::page(&app.state).unwrap();
    assert_eq!(page.rows.len(), 1);
    let item = &page.rows[0];
    assert_eq!(item.call.id, far);
    assert_eq!(
        item.deferred_reason.as_deref(),
        Some("waiting for the CRM export")
    );
    assert!(item.deferred_until.unwrap() > callops::now_ms() + 59 * 60_000);
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    assert!(
        text.contains("deferred review items 1–1 of 1") && text.contains("waiting for the CRM"),
        "{text}"
    );
    broker.close().await;
}

/// Defect 4: Esc after a DLQ search clears the title and the rows together, the scopes of
/// R are those of the rows shown, and an invalid search keeps the previous one everywhere.
async fn dlq_search_has_one_source_of_truth(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let s = settings(500);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    refresh(&mut app, &store, &s).await;
    ch(&mut app, '3');
    refresh(&mut app, &store, &s).await;
    let all = scalar(
        &store,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead'",
    )
    .await;
    let transcribe = scalar(
        &store,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead' AND stage = 'transcribe'",
    )
    .await;
    assert!(transcribe > 0 && transcribe < all, "{transcribe} of {all}");
    ch(&mut app, '/');
    typed(&mut app, "stage:transcribe");
    app.handle_key(key(KeyCode::Enter));
    refresh(&mut app, &store, &s).await;
    assert_eq!(
        views::lists::dlq_visible(&app.state).len() as i64,
        transcribe
    );
    // An invalid search: refused, and the title, the rows and the scopes keep the last one.
    ch(&mut app, '/');
    for _ in 0.."stage:transcribe".len() {
        app.handle_key(key(KeyCode::Backspace));
    }
    typed(&mut app, "stage:nope");
    app.handle_key(key(KeyCode::Enter));
    let (m, err) = app.state.message.clone().unwrap();
    assert!(err && m.contains("not a stage"), "{m}");
    assert_eq!(app.state.list(ListId::Dlq).filter, "stage:transcribe");
    assert_eq!(
        views::lists::dlq_visible(&app.state).len() as i64,
        transcribe
    );
    // Esc: the rows of the old search are not shown under the cleared title, not even
    // before the next refresh, and R waits for the rows.
    app.handle_key(key(KeyCode::Esc));
    assert_eq!(app.state.list(ListId::Dlq).filter, "");
    assert!(views::lists::dlq_visible(&app.state).is_empty());
    ch(&mut app, 'R');
    assert!(app.requests.is_empty(), "nothing to act on while loading");
    refresh(&mut app, &store, &s).await;
    assert_eq!(views::lists::dlq_visible(&app.state).len() as i64, all);
    ch(&mut app, 'R');
    let Some(OpRequest::DlqPreview { scopes, .. }) = app.requests.first().cloned() else {
        panic!("{:?}", app.requests);
    };
    let (label, sel) = scopes.last().unwrap();
    assert!(label.contains("(no filter)"), "{label}");
    let (ops, broker) = ops_on(&store).await;
    assert_eq!(ops.dlq_count(sel).await.unwrap(), all);
    broker.close().await;
}

/// Defect 6: while the database is down, `:call 7` after call 1 shows "loading call 7",
/// never call 1's details, and its actions are refused until call 7 is loaded.
async fn call_view_never_shows_another_call(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let s = settings(500);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    let first = scalar(&store, "SELECT MIN(id) FROM calls WHERE state = 'dead'").await;
    app.run_command(&format!("call {first}"));
    refresh(&mut app, &store, &s).await;
    let ext: String =
        sqlx::query_scalar(&format!("SELECT external_id FROM calls WHERE id = {first}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    assert!(text.contains(&ext), "call {first} shows: {text}");
    let other: i64 = scalar(
        &store,
        &format!("SELECT MIN(id) FROM calls WHERE id <> {first} AND state = 'dead'"),
    )
    .await;
    app.run_command(&format!("call {other}"));
    // The database is down: the refresh fails.
    app.apply(
        Snapshot {
            route: Route::Call(other),
            started_at: DEMO_NOW,
            finished_at: DEMO_NOW + 10,
            db: Answer::Failed("pool timed out while waiting for an open connection".into()),
            broker: Answer::Ok { latency_ms: 1 },
            broker_kind: "database".into(),
            dlx_unarchived: None,
            parts: Default::default(),
        },
        None,
    );
    app.prepare(Rect::new(0, 0, 160, 45), DEMO_NOW);
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    assert!(
        !text.contains(&ext) && text.contains(&format!("loading call {other}")),
        "{text}"
    );
    for c in ['R', 'Q', 'L', 'u'] {
        ch(&mut app, c);
        assert!(
            app.state.dialog.is_none(),
            "{c} opened a dialog: {:?}",
            app.state.dialog
        );
        let (m, err) = app.state.message.clone().unwrap();
        assert!(err && m.contains("not loaded"), "{c}: {m}");
    }
    // Loaded: the question names the right call.
    refresh(&mut app, &store, &s).await;
    ch(&mut app, 'R');
    let d = app.state.dialog.clone().expect("retry asks");
    assert!(d.title.contains(&format!("call {other}")), "{d:?}");
}

/// Defect 7: a wrong link is undone from the call view with `u` (audited; the call is back
/// in review with its candidates), and linking the top candidate again is three keys.
async fn unlink_from_the_call_view(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let (ops, broker) = ops_on(&store).await;
    let s = settings(500);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    ch(&mut app, '4');
    refresh(&mut app, &store, &s).await;
    let call = views::review::visible(&app.state)
        .iter()
        .find(|r| views::review::candidates(&r.call).len() >= 2)
        .map(|r| r.call.clone())
        .expect("a review item with two candidates");
    while selected(&app, ListId::Review) != Some(call.id) {
        ch(&mut app, 'j');
    }
    // The wrong one: the second candidate (l, ↓, Enter, y).
    let wrong = views::review::candidates(&call)[1].0;
    ch(&mut app, 'l');
    app.handle_key(key(KeyCode::Down));
    app.handle_key(key(KeyCode::Enter));
    let d = app.state.dialog.clone().expect("a weak match is confirmed");
    assert!(
        d.title.contains(&format!("#{wrong}")) && d.lines[0].contains("caller: heard"),
        "the confirmation names both people: {d:?}"
    );
    ch(&mut app, 'y');
    run_requests(&mut app, &ops).await;
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT customer_id FROM calls WHERE id = {}", call.id)
        )
        .await,
        wrong
    );
    // Undo it from the call view.
    app.run_command(&format!("call {}", call.id));
    refresh(&mut app, &store, &s).await;
    ch(&mut app, 'u');
    let d = app.state.dialog.clone().expect("unlink asks");
    assert_eq!(d.choice, 0, "Cancel first");
    assert!(d.title.contains(&format!("#{wrong}")), "{d:?}");
    ch(&mut app, 'y');
    let replies = run_requests(&mut app, &ops).await;
    assert!(
        matches!(&replies[..], [OpReply::Done(m)] if m.contains("unlink")),
        "{replies:?}"
    );
    let state: String = sqlx::query_scalar(&format!(
        "SELECT stage || '/' || state FROM calls WHERE id = {}",
        call.id
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(state, "link/review");
    assert_eq!(
        scalar(
            &store,
            &format!(
                "SELECT COUNT(*) FROM calls WHERE id = {} AND customer_id IS NULL AND review_candidates IS NOT NULL",
                call.id
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &store,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'review.unlink' AND target = 'call {}'",
                call.id
            )
        )
        .await,
        1
    );
    // A tie above the threshold (Schreiber 0.91 / 0.88, threshold 0.85) is confirmed too,
    // naming the rival: two people with the same surname are not one key apart.
    app.handle_key(key(KeyCode::Esc));
    ch(&mut app, '4');
    ch(&mut app, '/');
    typed(&mut app, "Schreiber");
    app.handle_key(key(KeyCode::Enter));
    refresh(&mut app, &store, &s).await;
    assert_eq!(review_ids(&app).len(), 1, "the Schreiber item");
    ch(&mut app, 'l');
    app.handle_key(key(KeyCode::Enter));
    let d = app.state.dialog.clone().expect("a tie is confirmed");
    assert!(d.title.contains("is as likely"), "{d:?}");
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(key(KeyCode::Esc));
    // Back in review: the top candidate in three keys (l, Enter, y).
    ch(&mut app, '4');
    ch(&mut app, '/');
    typed(&mut app, &call.id.to_string());
    app.handle_key(key(KeyCode::Enter));
    refresh(&mut app, &store, &s).await;
    assert_eq!(review_ids(&app), vec![call.id]);
    ch(&mut app, 'l');
    app.handle_key(key(KeyCode::Enter));
    ch(&mut app, 'y');
    run_requests(&mut app, &ops).await;
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT customer_id FROM calls WHERE id = {}", call.id)
        )
        .await,
        views::review::candidates(&call)[0].0
    );
    broker.close().await;
}

/// Defect 14: the stuck view has actions (this call / the marked / the error group, with
/// counts, default Cancel); marks do nothing where nothing uses them (and say so); DLQ
/// history has a status column.
async fn stuck_view_actions(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let (ops, broker) = ops_on(&store).await;
    let s = settings(500);
    let mut app = App::new(s.clone(), KeyMap::default(), "admin", None);
    ch(&mut app, '2');
    refresh(&mut app, &store, &s).await;
    let first = selected(&app, ListId::Stuck).expect("stuck calls in the demo");
    ch(&mut app, ' ');
    ch(&mut app, ' ');
    assert_eq!(app.state.list(ListId::Stuck).marked.len(), 2);
    ch(&mut app, 'R');
    let d = app.state.dialog.clone().expect("R asks which calls");
    assert_eq!(d.choice, 0, "Cancel first: {d:?}");
    assert!(d.options[1].starts_with("the 2 marked: 2"), "{d:?}");
    assert!(d.options[2].starts_with("the error group"), "{d:?}");
    // The marked two, confirmed with y.
    ch(&mut app, '2');
    let c = app.state.dialog.clone().expect("a confirmation");
    assert!(c.title.contains("Retry 2 stuck calls"), "{c:?}");
    assert_eq!(c.choice, 0);
    ch(&mut app, 'y');
    let replies = run_requests(&mut app, &ops).await;
    assert!(
        matches!(&replies[..], [OpReply::Done(m)] if m.starts_with("retried 2 of 2")),
        "{replies:?}"
    );
    assert!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM audit_log WHERE action = 'call.retry' AND target LIKE '%{first}%'")
        )
        .await
            >= 1
    );
    // Marks in the review list: nothing to act on several rows there, and it says so.
    ch(&mut app, '4');
    refresh(&mut app, &store, &s).await;
    ch(&mut app, ' ');
    assert!(app.state.list(ListId::Review).marked.is_empty());
    assert!(app
        .state
        .message
        .clone()
        .unwrap()
        .0
        .contains("marks are for R"));
    // DLQ history: a status column.
    ch(&mut app, '3');
    ch(&mut app, 'H');
    refresh(&mut app, &store, &s).await;
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    assert!(text.contains("status") && text.contains(" dead "), "{text}");
    broker.close().await;
}

macro_rules! both {
    ($name:ident, $sqlite:ident, $pg:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let (store, _dir) = common::sqlite_store().await;
            $name(store).await;
        }

        #[tokio::test]
        async fn $pg() {
            let Some(url) = common::postgres_url() else {
                return;
            };
            let db = common::PgDb::create(&url).await;
            $name(db.store.clone()).await;
        }
    };
}

both!(
    selection_is_an_item,
    sqlite_selection_is_an_item,
    postgres_selection_is_an_item
);
both!(
    review_is_paged_searched_and_deferred,
    sqlite_review_paged_searched_deferred,
    postgres_review_paged_searched_deferred
);
both!(
    dlq_search_has_one_source_of_truth,
    sqlite_dlq_search_one_truth,
    postgres_dlq_search_one_truth
);
both!(
    call_view_never_shows_another_call,
    sqlite_call_view_never_shows_another_call,
    postgres_call_view_never_shows_another_call
);
both!(
    unlink_from_the_call_view,
    sqlite_unlink_from_the_call_view,
    postgres_unlink_from_the_call_view
);
both!(
    stuck_view_actions,
    sqlite_stuck_view_actions,
    postgres_stuck_view_actions
);
