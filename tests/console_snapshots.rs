//! Every view rendered by the real renderer (ratatui TestBackend) from the real console
//! state machine over the seeded demo database, as text snapshots (insta), plus the narrow
//! 80x24 overview and a dialog. A change to a view shows up here as a diff to review.

use callops::console::screenshot::{buffer_text, render_buffer, DemoDb, VIEWS};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

async fn snapshot(view: &str, w: u16, h: u16) -> String {
    let db = DemoDb::open().await.unwrap();
    let app = db.console(view, Rect::new(0, 0, w, h)).await.unwrap();
    let text = buffer_text(&render_buffer(&app, w, h).unwrap());
    db.close().await;
    text
}

#[tokio::test]
async fn every_view() {
    for view in VIEWS {
        let text = snapshot(view, 160, 45).await;
        insta::assert_snapshot!(format!("view_{view}"), text);
    }
}

#[tokio::test]
async fn overview_at_80x24() {
    insta::assert_snapshot!("overview_80x24", snapshot("overview", 80, 24).await);
}

/// Small terminals (defect 10): IDs and the main figures stay, free text shrinks with an
/// ellipsis, the hint bar folds to what fits, the broker state stays in the header.
#[tokio::test]
async fn small_terminals() {
    for (view, w, h) in [
        ("review", 80, 24),
        ("dlq", 80, 24),
        ("stuck", 80, 24),
        ("help", 80, 24),
        ("overview", 60, 20),
        ("review", 60, 20),
        ("dlq", 60, 20),
    ] {
        let text = snapshot(view, w, h).await;
        insta::assert_snapshot!(format!("{view}_{w}x{h}"), text);
    }
}

/// Nothing a transcript, name or error carried reaches the frame as a control character.
#[tokio::test]
async fn hostile_call_renders_as_plain_text() {
    let text = snapshot("hostile", 160, 45).await;
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "{text}"
    );
    assert!(
        text.contains("clipboard"),
        "the words around the escapes stay: {text}"
    );
}

/// The DLQ retry dialog as an operator sees it: scopes with counts, Cancel highlighted.
#[tokio::test]
async fn dlq_retry_dialog() {
    let db = DemoDb::open().await.unwrap();
    let area = Rect::new(0, 0, 160, 45);
    let mut app = db.console("dlq", area).await.unwrap();
    app.handle_key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::NONE));
    let reqs: Vec<_> = app.requests.drain(..).collect();
    assert_eq!(reqs.len(), 1, "R asks for a count preview");
    // The counts as the ops layer would report them, without running it (no broker here).
    if let callops::console::actions::OpRequest::DlqPreview { retry, scopes } = &reqs[0] {
        let n = scopes.len() as i64;
        app.op_reply(callops::console::actions::OpReply::DlqPreview {
            retry: *retry,
            scopes: scopes
                .iter()
                .enumerate()
                .map(|(i, (l, s))| (l.clone(), s.clone(), if i as i64 == n - 1 { 6 } else { 1 }))
                .collect(),
        });
    } else {
        panic!("{reqs:?}");
    }
    app.prepare(area, callops::console::demo_data::DEMO_NOW);
    let text = buffer_text(&render_buffer(&app, 160, 45).unwrap());
    db.close().await;
    insta::assert_snapshot!("dlq_retry_dialog", text);
}
