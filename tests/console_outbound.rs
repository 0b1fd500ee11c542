//! Outbound AI calls operated from the console (issue 16): `C` on a row of `:outbound`
//! calls that lead now and `U` calls the business's unmapped leads again, both through the
//! console's own key handling and the ops layer against a real store (SQLite and Postgres):
//! Cancel is the default and does nothing, a confirmed action changes the outbound row once
//! and writes its audit row, a support user is refused the admin-only bulk action.

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

/// Move the selection to the first outbound row with `status`; its (lead, business id).
fn select_status(app: &mut App, status: &str) -> (i64, i64) {
    app.handle_key(key(KeyCode::Char('g')));
    for _ in 0..500 {
        let o = callops::views::outbound::selected(&app.state)
            .expect("the outbound list has rows")
            .clone();
        if o.status == status {
            return (o.lead_id, o.business_id);
        }
        let before = app.state.outbound_sel;
        app.handle_key(key(KeyCode::Char('j')));
        assert_ne!(
            before, app.state.outbound_sel,
            "no {status} row in the list"
        );
    }
    unreachable!()
}

async fn outbound_through_the_console(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                tiers: 2,
            },
            prefix: common::unique("console_outbound"),
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

    // `C` on an unmapped lead's row, as support.
    let mut app = App::new(settings.clone(), KeyMap::default(), "support", None);
    refresh(&mut app, &store).await;
    app.handle_key(key(KeyCode::Char('6')));
    assert_eq!(app.state.route(), callops::views::Route::Outbound);
    refresh(&mut app, &store).await;
    let (lead, _) = select_status(&mut app, "unmapped");
    let rows_of_lead = format!("SELECT COUNT(*) FROM outbound_calls WHERE lead_id = {lead}");
    let pending_of_lead = format!(
        "SELECT COUNT(*) FROM outbound_calls WHERE lead_id = {lead} AND status = 'pending'"
    );
    let audits = |a: &str| format!("SELECT COUNT(*) FROM audit_log WHERE action = '{a}'");
    let total = scalar(&store, "SELECT COUNT(*) FROM outbound_calls").await;
    assert_eq!(scalar(&store, &rows_of_lead).await, 1);

    // Enter on the confirmation is Cancel: nothing runs, nothing changes.
    app.handle_key(key(KeyCode::Char('C')));
    let d = app.state.dialog.clone().expect("C asks first");
    assert_eq!(d.choice, 0, "Cancel is the default: {d:?}");
    assert!(d.title.contains(&format!("lead {lead}")), "{d:?}");
    app.handle_key(key(KeyCode::Enter));
    assert!(app.state.dialog.is_none() && app.requests.is_empty());
    assert_eq!(scalar(&store, &pending_of_lead).await, 0);
    assert_eq!(scalar(&store, &audits("outbound.call_now")).await, 0);

    // `y` confirms: the lead's one row goes back to the dialler, audited once.
    app.handle_key(key(KeyCode::Char('C')));
    app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(!is_err && msg.contains(&format!("lead #{lead}")), "{msg}");
    assert_eq!(scalar(&store, &rows_of_lead).await, 1, "no second row");
    assert_eq!(scalar(&store, &pending_of_lead).await, 1);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM outbound_calls").await,
        total
    );
    assert_eq!(
        scalar(
            &store,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'outbound.call_now' AND target = 'lead {lead}'"
            )
        )
        .await,
        1
    );

    // A lead the provider already called is refused by ops; the refusal is the status line.
    refresh(&mut app, &store).await;
    let (called, _) = select_status(&mut app, "completed");
    app.handle_key(key(KeyCode::Char('C')));
    app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut app, &ops(Role::Support)).await, 1);
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(is_err, "lead {called}: {msg}");
    assert_eq!(scalar(&store, &audits("outbound.call_now")).await, 1);

    // `U` is admin-only: a support console refuses before anything runs.
    select_status(&mut app, "unmapped");
    app.handle_key(key(KeyCode::Char('U')));
    assert!(app.requests.is_empty() && app.state.dialog.is_none());
    let (msg, is_err) = app.state.message.clone().unwrap();
    assert!(is_err && msg.contains("needs the admin role"), "{msg}");

    // As admin: the count first, then a confirmation defaulting to Cancel.
    let mut admin = App::new(settings, KeyMap::default(), "admin", None);
    admin.run_command("outbound");
    refresh(&mut admin, &store).await;
    let (_, biz) = select_status(&mut admin, "unmapped");
    let unmapped = format!(
        "SELECT COUNT(*) FROM outbound_calls WHERE business_id = {biz} AND status = 'unmapped'"
    );
    let n = scalar(&store, &unmapped).await;
    assert!(n > 0);
    admin.handle_key(key(KeyCode::Char('U')));
    assert_eq!(run_requests(&mut admin, &ops(Role::Admin)).await, 1);
    let d = admin.state.dialog.clone().expect("U shows the count");
    assert_eq!(d.choice, 0, "Cancel is the default: {d:?}");
    assert!(d.title.contains(&format!("Call {n} unmapped")), "{d:?}");
    admin.handle_key(key(KeyCode::Enter));
    assert!(admin.requests.is_empty());
    assert_eq!(scalar(&store, &unmapped).await, n);
    assert_eq!(scalar(&store, &audits("outbound.call_unmapped")).await, 0);

    admin.handle_key(key(KeyCode::Char('U')));
    run_requests(&mut admin, &ops(Role::Admin)).await;
    admin.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut admin, &ops(Role::Admin)).await, 1);
    let (msg, is_err) = admin.state.message.clone().unwrap();
    assert!(
        !is_err && msg.contains(&format!("called {n} unmapped")),
        "{msg}"
    );
    assert_eq!(scalar(&store, &unmapped).await, 0);
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM audit_log WHERE action = 'outbound.call_unmapped' AND target = 'business {biz}'")
        )
        .await,
        1
    );
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM outbound_calls").await,
        total,
        "re-queued, never duplicated"
    );
    // `C` on a call with a lead that was never called: one outbound row created, audited;
    // a second `C` acts on that same row (the unique key), never a second one.
    let (call, lead): (i64, i64) = sqlx::query_as(
        "SELECT c.id, c.lead_id FROM calls c WHERE c.lead_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM outbound_calls o WHERE o.lead_id = c.lead_id) ORDER BY c.id LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .expect("the demo has a call whose lead was never called");
    let rows_of_lead = format!("SELECT COUNT(*) FROM outbound_calls WHERE lead_id = {lead}");
    admin.run_command(&format!("call {call}"));
    refresh(&mut admin, &store).await;
    admin.handle_key(key(KeyCode::Char('C')));
    let d = admin.state.dialog.clone().expect("C asks first");
    assert_eq!(d.choice, 0, "Cancel is the default: {d:?}");
    assert!(d.title.contains(&format!("lead #{lead}")), "{d:?}");
    admin.handle_key(key(KeyCode::Esc));
    assert_eq!(scalar(&store, &rows_of_lead).await, 0);
    admin.handle_key(key(KeyCode::Char('C')));
    admin.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut admin, &ops(Role::Admin)).await, 1);
    let (msg, is_err) = admin.state.message.clone().unwrap();
    assert!(!is_err, "{msg}");
    assert_eq!(scalar(&store, &rows_of_lead).await, 1, "created once");
    admin.handle_key(key(KeyCode::Char('C')));
    admin.handle_key(key(KeyCode::Char('y')));
    assert_eq!(run_requests(&mut admin, &ops(Role::Admin)).await, 1);
    assert_eq!(scalar(&store, &rows_of_lead).await, 1, "still one row");
    assert_eq!(
        scalar(
            &store,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'outbound.call_now' AND target = 'lead {lead}'"
            )
        )
        .await,
        2,
        "each confirmed C is audited"
    );
    broker.close().await;
}

#[tokio::test]
async fn sqlite_console_outbound() {
    let (store, _dir) = common::sqlite_store().await;
    outbound_through_the_console(store).await;
}

#[tokio::test]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_console_outbound() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    outbound_through_the_console(db.store.clone()).await;
}
