//! Operator actions driven through the console's own key handling (`App`), run through the
//! ops layer against a real store and the database broker, on SQLite and on Postgres:
//! a review item linked in three keys, a DLQ retry whose dialog defaults to Cancel, and a
//! viewer who is refused before anything runs.

mod common;

use callops::console::actions::{execute, OpRequest};
use callops::console::app::App;
use callops::console::demo_data::{seed_demo_data, DEMO_NOW};
use callops::console::keymap::KeyMap;
use callops::console::refresher::{fetch_filtered, Queues};
use callops::console::settings::ConsoleSettings;
use callops::ops::{Actor, Ops, Role};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::Store;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use std::time::Duration;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

async fn refresh(app: &mut App, store: &Store) {
    let settings = ConsoleSettings::default();
    let snap = fetch_filtered(
        store,
        Queues::JobsTableAt(DEMO_NOW),
        app.state.content_route(),
        &settings,
        DEMO_NOW,
        &app.queries(),
    )
    .await;
    assert!(snap.ok(), "refresh failed: {:?} {:?}", snap.db, snap.broker);
    app.apply(snap, None);
    app.prepare(Rect::new(0, 0, 160, 45), DEMO_NOW);
}

/// Run what the app asked for, as the console's event loop does, and hand back the replies.
async fn run_requests(app: &mut App, ops: &Ops) -> usize {
    let reqs: Vec<OpRequest> = app.requests.drain(..).collect();
    let n = reqs.len();
    for r in reqs {
        let reply = execute(ops, r).await;
        app.op_reply(reply);
    }
    n
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn actions_through_the_console(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                tiers: 2,
            },
            prefix: common::unique("console_actions"),
            amqp_url: String::new(),
            management_url: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        },
        store.clone(),
    )
    .await
    .unwrap();
    let ops = |role: Role| Ops {
        store: store.clone(),
        broker: broker.clone(),
        actor: Actor {
            name: format!("test-{}", role.as_str()),
            role,
        },
        readonly: false,
    };
    let settings = ConsoleSettings {
        role: "admin".into(),
        ..Default::default()
    };

    // Review: `l` opens the candidates with the best one highlighted, Enter picks it and,
    // as it is below the auto-link threshold, `y` confirms a dialog naming both people.
    let mut app = App::new(settings.clone(), KeyMap::default(), "support", None);
    refresh(&mut app, &store).await;
    app.run_command("review");
    refresh(&mut app, &store).await;
    let in_review = scalar(&store, "SELECT COUNT(*) FROM calls WHERE state = 'review'").await;
    let call = callops::views::lists::review_visible(&app.state)
        .iter()
        .find(|c| !callops::views::lists::candidates(&c.call).is_empty())
        .map(|c| c.call.id)
        .expect("the demo data has review items with candidates");
    while app.state.list(callops::views::ListId::Review).key != Some(call) {
        app.handle_key(key(KeyCode::Char('j')));
    }
    app.handle_key(key(KeyCode::Char('l')));
    let d = app.state.dialog.clone().expect("link opens a dialog");
    assert_eq!(d.choice, 1, "the best candidate is preselected: {d:?}");
    app.handle_key(key(KeyCode::Enter));
    let confirm = app.state.dialog.clone().expect("a weak match is confirmed");
    assert_eq!(confirm.choice, 0, "Cancel is the default: {confirm:?}");
    assert!(
        confirm.title.contains("below the auto-link threshold"),
        "{confirm:?}"
    );
    app.handle_key(key(KeyCode::Char('y')));
    assert!(app.state.dialog.is_none());
    assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(!is_err && msg.contains(&format!("call {call}")), "{msg}");
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM calls WHERE state = 'review'").await,
        in_review - 1
    );
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM audit_log WHERE action = 'review.link' AND target LIKE '%{call}%'")
        )
        .await,
        1
    );

    // `:link <customer>` for a customer found elsewhere: confirmed (default Cancel), then linked.
    refresh(&mut app, &store).await;
    let next = callops::views::lists::review_visible(&app.state)
        .iter()
        .find(|c| !callops::views::lists::candidates(&c.call).is_empty())
        .map(|c| c.call.clone())
        .expect("more review items");
    while app.state.list(callops::views::ListId::Review).key != Some(next.id) {
        app.handle_key(key(KeyCode::Char('j')));
    }
    let customer = callops::views::lists::candidates(&next)
        .first()
        .map(|c| c.0)
        .expect("a candidate to link");
    assert!(!app.run_command(&format!("link {customer}")));
    assert_eq!(app.state.dialog.as_ref().map(|d| d.choice), Some(0));
    app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(
        !is_err && msg.contains(&format!("call {}", next.id)),
        "{msg}"
    );

    // `:customers <text>` finds customers of the item's business; picking one links it.
    refresh(&mut app, &store).await;
    let with_candidates = callops::views::lists::review_visible(&app.state)
        .into_iter()
        .position(|c| !callops::views::lists::candidates(&c.call).is_empty());
    {
        let row = with_candidates.expect("a review item with candidates is left");
        app.handle_key(key(KeyCode::Char('g')));
        for _ in 0..row {
            app.handle_key(key(KeyCode::Char('j')));
        }
        let item = callops::views::lists::review_visible(&app.state)[row]
            .call
            .clone();
        let (cid, cname) = callops::views::lists::candidates(&item)
            .first()
            .cloned()
            .map(|c| (c.0, c.1))
            .expect("a candidate");
        let word = cname.split_whitespace().last().unwrap().to_lowercase();
        assert!(!app.run_command(&format!("customers {word}")));
        assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
        let d = app.state.dialog.clone().expect("search results");
        assert_eq!(d.choice, 0, "Cancel first: {d:?}");
        let pick = d
            .options
            .iter()
            .position(|o| o.starts_with(&format!("#{cid} ")))
            .unwrap_or_else(|| panic!("#{cid} not found by {word:?}: {d:?}"));
        app.handle_key(key(KeyCode::Char(
            char::from_digit(pick as u32 + 1, 10).unwrap(),
        )));
        assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
        let (msg, is_err) = app.state.message.clone().unwrap();
        assert!(
            !is_err && msg.contains(&format!("customer #{cid}")),
            "{msg}"
        );
        assert!(!app.run_command("customers zzzz-nobody"));
        run_requests(&mut app, &ops(Role::Support)).await;
        assert!(app
            .state
            .message
            .clone()
            .unwrap()
            .0
            .contains("no customer matches"));
    }

    // DLQ: R counts each scope, and Enter on the dialog is Cancel.
    let dead_before = scalar(
        &store,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead'",
    )
    .await;
    assert!(dead_before >= 2, "demo data has dead jobs: {dead_before}");
    let jobs_before = scalar(&store, "SELECT COUNT(*) FROM jobs").await;
    let mut app = App::new(settings.clone(), KeyMap::default(), "admin", None);
    refresh(&mut app, &store).await;
    app.run_command("dlq");
    refresh(&mut app, &store).await;
    app.handle_key(key(KeyCode::Char('R')));
    assert_eq!(
        run_requests(&mut app, &ops(Role::Admin)).await,
        1,
        "a count preview"
    );
    let d = app.state.dialog.clone().expect("scope dialog");
    assert_eq!(d.choice, 0, "Cancel is the default");
    let all = d.options.last().unwrap().clone();
    assert!(
        all.contains("everything matching") && all.ends_with(&format!(": {dead_before}")),
        "{all}"
    );
    app.handle_key(key(KeyCode::Enter));
    assert!(app.state.dialog.is_none() && app.requests.is_empty());
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead'"
        )
        .await,
        dead_before,
        "a stray Enter retried nothing"
    );

    // Pick "everything matching", confirm with y: every dead job published and marked.
    app.handle_key(key(KeyCode::Char('R')));
    run_requests(&mut app, &ops(Role::Admin)).await;
    let n = app.state.dialog.as_ref().unwrap().options.len();
    app.handle_key(key(KeyCode::Char(char::from_digit(n as u32, 10).unwrap())));
    let confirm = app.state.dialog.clone().expect("confirmation");
    assert_eq!(confirm.choice, 0, "Cancel is the default: {confirm:?}");
    assert!(
        confirm.title.contains(&dead_before.to_string()),
        "{confirm:?}"
    );
    app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut app, &ops(Role::Admin)).await, 1);
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(!is_err, "{msg}");
    // Undecodable dead jobs have nothing to publish: the reply names them and they stay.
    let still_dead = scalar(
        &store,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead'",
    )
    .await;
    let skipped = msg
        .split("undecodable ones skipped")
        .next()
        .filter(|_| msg.contains("undecodable"))
        .and_then(|m| m.rsplit("; ").next())
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or(0);
    assert_eq!(still_dead, skipped, "{msg}");
    assert!(
        msg.starts_with(&format!(
            "retried {} of {dead_before}",
            dead_before - skipped
        )),
        "{msg}"
    );
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM jobs").await,
        jobs_before + dead_before - skipped,
        "every retried dead job is a queued job again"
    );

    // History shows them again, as retried.
    app.handle_key(key(KeyCode::Char('H')));
    assert!(app.state.dlq_history);

    // A viewer is refused by the console before anything runs.
    let mut viewer = App::new(settings, KeyMap::default(), "viewer", None);
    refresh(&mut viewer, &store).await;
    viewer.run_command("dlq");
    viewer.handle_key(key(KeyCode::Char('R')));
    assert!(viewer.requests.is_empty() && viewer.state.dialog.is_none());
    let (msg, is_err) = viewer.state.message.clone().unwrap();
    assert!(is_err && msg.contains("needs the admin role"), "{msg}");
    broker.close().await;
}

#[tokio::test]
async fn sqlite_console_actions() {
    let (store, _dir) = common::sqlite_store().await;
    actions_through_the_console(store).await;
}

#[tokio::test]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_console_actions() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    actions_through_the_console(db.store.clone()).await;
}
