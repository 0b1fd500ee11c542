//! Issue 12, "wrong or stale display": the frame as the real renderer draws it from the
//! console state machine over the seeded demo database (defects 8, 9, 10, 11, 13, 15, 16,
//! deliverable 8). Each test runs in its own process (nextest), so one may set the zone.

use callops::console::demo_data::DEMO_NOW;
use callops::console::screenshot::{buffer_text, render_buffer, DemoDb};
use callops::console::settings::ConsoleSettings;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

async fn scalar(db: &DemoDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db.store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn frame(app: &callops::console::app::App, w: u16, h: u16) -> String {
    buffer_text(&render_buffer(app, w, h).unwrap())
}

/// Defect 8: `stuck N` is in the header from the first refresh of any view, and a status
/// message gives the line back to the counters after a while.
#[tokio::test]
async fn stuck_count_in_every_header_and_messages_expire() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 160, 45);
    let mut app = db.console("overview", area).await.unwrap();
    let slas = ConsoleSettings::default().slas_ms;
    let mut stuck = 0;
    for (stage, sla) in &slas {
        stuck += scalar(
            &db,
            &format!(
                "SELECT COUNT(*) FROM calls WHERE stage = '{stage}' AND state IN ('pending','running','retrying') AND state_since < {}",
                DEMO_NOW - sla
            ),
        )
        .await;
    }
    assert!(stuck > 0);
    let text = frame(&app, 160, 45);
    assert!(text.contains(&format!(" stuck {stuck} ")), "{text}");
    app.handle_key(key(KeyCode::Char('r')));
    app.prepare(area, DEMO_NOW);
    assert!(frame(&app, 160, 45).contains("refreshing…"));
    app.prepare(area, DEMO_NOW + 9_000);
    let text = frame(&app, 160, 45);
    assert!(
        !text.contains("refreshing…") && text.contains(&format!(" stuck {stuck} ")),
        "{text}"
    );
    db.close().await;
}

/// Defect 9: help scrolls, so at 80x24 every key can be read.
#[tokio::test]
async fn help_scrolls_at_80x24() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 80, 24);
    let mut app = db.console("help", area).await.unwrap();
    let text = frame(&app, 80, 24);
    assert!(!text.contains("quit (the terminal is restored)"), "{text}");
    assert!(text.contains("(j/k PgDn/PgUp scroll)"), "{text}");
    app.handle_key(key(KeyCode::Char('G')));
    app.prepare(area, DEMO_NOW);
    let text = frame(&app, 80, 24);
    assert!(text.contains("quit (the terminal is restored)"), "{text}");
    db.close().await;
}

/// Defect 10: at 80x24 and 60x20 the ID columns and the main figures stay, times are whole,
/// free text ends in an ellipsis, the hint bar holds whole hints, the broker stays in the
/// header.
#[tokio::test]
async fn small_terminals_keep_ids_and_whole_words() {
    let db = DemoDb::open().await.unwrap();
    for (w, h) in [(80u16, 24u16), (60, 20)] {
        let area = Rect::new(0, 0, w, h);
        let app = db.console("dlq", area).await.unwrap();
        let text = frame(&app, w, h);
        let first = text.lines().next().unwrap();
        assert!(
            first.contains("database ok") || first.contains("broker ok"),
            "{w}x{h}: {first}"
        );
        assert!(
            text.contains("#6") && text.contains("10m00s"),
            "{w}x{h}: {text}"
        );
        assert!(
            text.contains('…'),
            "free text is cut with an ellipsis: {text}"
        );
        let hints = text.lines().last().unwrap().trim_end();
        assert!(hints.ends_with("q quit"), "{w}x{h}: {hints:?}");
        let app = db.console("review", area).await.unwrap();
        let text = frame(&app, w, h);
        for id in ["13", "15", "14", "16"] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches('│').trim_start().starts_with(id)),
                "{w}x{h}: call {id} missing: {text}"
            );
        }
        assert!(text.lines().last().unwrap().trim_end().ends_with("q quit"));
    }
    db.close().await;
}

/// Defect 11: times are shown in the console's zone, and the header names it.
#[tokio::test]
async fn local_time_with_its_zone() {
    callops::views::set_zone(callops::views::Zone::parse("+02:00").unwrap());
    let db = DemoDb::open().await.unwrap();
    let app = db
        .console("overview", Rect::new(0, 0, 160, 45))
        .await
        .unwrap();
    let text = frame(&app, 160, 45);
    // DEMO_NOW is 08:42:30 UTC.
    assert!(text.contains("@10:42:30 UTC+02:00"), "{text}");
    assert!(callops::views::Zone::parse("Europe/Berlin")
        .unwrap_err()
        .contains("TZ=Europe/Berlin"));
    db.close().await;
}

/// Defect 13: the review pane shows what tells candidates apart and the separate scores,
/// and says how many more there are when they do not fit.
#[tokio::test]
async fn review_pane_tells_candidates_apart() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 160, 45);
    let app = db.console("review", area).await.unwrap();
    let text = frame(&app, 160, 45);
    assert!(
        text.contains("#3 Matthias Müller") && text.contains("#4 Mathias Mueller"),
        "{text}"
    );
    assert!(
        text.contains("+4989555123") && text.contains("no calls yet"),
        "{text}"
    );
    assert!(text.contains("name 1.00 · phonetic yes · first"), "{text}");
    // Five candidates on a short terminal: "+N more", not a silent cut.
    let cands: Vec<serde_json::Value> = (0..5)
        .map(|i| serde_json::json!({"customer_id": 3 + (i % 2), "name": format!("Candidate {i}"), "confidence": 0.8 - i as f64 / 100.0}))
        .collect();
    sqlx::query("UPDATE calls SET review_candidates = $1 WHERE id = 13")
        .bind(serde_json::Value::Array(cands).to_string())
        .execute(db.store.pool())
        .await
        .unwrap();
    let app = db
        .console("review", Rect::new(0, 0, 160, 24))
        .await
        .unwrap();
    let text = frame(&app, 160, 24);
    assert!(text.contains("more candidates"), "{text}");
    db.close().await;
}

/// Defect 15 (store part): one review row with a corrupt stage shows as corrupt, and the
/// rest of the list still renders.
#[tokio::test]
async fn a_corrupt_row_shows_as_corrupt() {
    let db = DemoDb::open().await.unwrap();
    sqlx::query("UPDATE calls SET stage = 'bogus' WHERE id = 15")
        .execute(db.store.pool())
        .await
        .unwrap();
    let app = db
        .console("review", Rect::new(0, 0, 160, 45))
        .await
        .unwrap();
    let text = frame(&app, 160, 45);
    assert!(text.contains("CORRUPT ROW"), "{text}");
    assert!(text.contains("review queue 1–4 of 4"), "{text}");
    db.close().await;
}

/// Defect 16: an empty database says how to get calls in; no "-0.0" in the totals.
#[tokio::test]
async fn an_empty_database_says_what_to_do() {
    let db = DemoDb::open().await.unwrap();
    // Every table emptied (a few passes: foreign keys decide the order).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'callops_migrations'",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    for _ in 0..5 {
        for t in &tables {
            let _ = sqlx::query(&format!("DELETE FROM {t}"))
                .execute(db.store.pool())
                .await;
        }
    }
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM businesses").await, 0);
    let app = db
        .console("overview", Rect::new(0, 0, 160, 45))
        .await
        .unwrap();
    let text = frame(&app, 160, 45);
    assert!(text.contains("callops demo"), "{text}");
    assert!(!text.contains("no business matches"), "{text}");
    assert!(!text.contains("-0.0"), "{text}");
    db.close().await;
}

/// Deliverable 8: palette aliases and unique prefixes; NO_COLOR leaves no colour but keeps
/// the selection visible (reversed).
#[tokio::test]
async fn palette_prefixes_and_no_color() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 160, 45);
    let mut app = db.console("overview", area).await.unwrap();
    app.run_command("rev");
    assert_eq!(app.state.route(), callops::views::Route::Review);
    app.run_command("dead");
    assert_eq!(app.state.route(), callops::views::Route::Dlq);
    app.run_command("c 1");
    let (m, err) = app.state.message.clone().unwrap();
    assert!(
        err && m.contains(":call") && m.contains(":customers"),
        "{m}"
    );
    assert!(callops::views::COMMANDS
        .iter()
        .any(|(c, _)| *c == "customers"));
    app.state.no_color = true;
    app.prepare(area, DEMO_NOW);
    let buf = render_buffer(&app, 160, 45).unwrap();
    use ratatui::style::{Color, Modifier};
    assert!(buf
        .content
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    assert!(buf
        .content
        .iter()
        .any(|c| c.modifier.contains(Modifier::REVERSED)));
    db.close().await;
}

/// Deliverable 6: Enter on a dead job opens it in full — payload and headers
/// pretty-printed, every attempt with its time and error — scrollable; Enter opens its call.
#[tokio::test]
async fn dead_job_detail_view() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 160, 45);
    let mut app = db.console("dlq", area).await.unwrap();
    app.handle_key(key(KeyCode::Char('j')));
    app.handle_key(key(KeyCode::Enter));
    let callops::views::Route::DeadJob(id) = app.state.route() else {
        panic!("Enter opens the dead job: {:?}", app.state.route());
    };
    app.prepare(area, DEMO_NOW);
    let text = frame(&app, 160, 45);
    assert!(text.contains(&format!("dead job #{id}")), "{text}");
    assert!(
        text.contains("\"call_id\": "),
        "payload pretty-printed: {text}"
    );
    assert!(
        text.contains("#1 at ") && text.contains("#5 at "),
        "every attempt: {text}"
    );
    app.handle_key(key(KeyCode::Char('G')));
    app.prepare(area, DEMO_NOW);
    assert!(app.state.detail_scroll > 0);
    app.handle_key(key(KeyCode::Enter));
    assert!(matches!(app.state.route(), callops::views::Route::Call(_)));
    db.close().await;
}
