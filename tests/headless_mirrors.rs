//! The headless mirrors of the console views, run as the real binary against a seeded
//! SQLite file: `overview --json`, `calls stuck --json`, `call show ID --json` print the
//! data the views show; a missing call is a clear error with a non-zero exit; text output
//! carries no escape sequences from hostile data.

use callops::console::demo_data::seed_demo_data;
use callops::store::Store;
use serde_json::Value;
use std::process::Command;

struct Seeded {
    _dir: tempfile::TempDir,
    url: String,
    data_dir: String,
    ids: callops::console::demo_data::DemoIds,
}

async fn seeded() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("mirror.db").display());
    let store = Store::open_migrated(&url, 1).await.unwrap();
    let ids = seed_demo_data(&store).await.unwrap();
    store.pool().close().await;
    let data_dir = dir.path().display().to_string();
    Seeded {
        _dir: dir,
        url,
        data_dir,
        ids,
    }
}

fn run(s: &Seeded, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callops"))
        .args(["--database-url", &s.url, "--data-dir", &s.data_dir])
        .args(args)
        .env_remove("CALLOPS_DATABASE_URL")
        .env_remove("CALLOPS_BROKER")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn overview_stuck_and_call_as_json() {
    let s = seeded().await;

    let (ok, out, err) = run(&s, &["overview", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&"Acme Dental"), "{names:?}");
    assert!(rows.iter().map(|r| r["dlq"].as_i64().unwrap()).sum::<i64>() > 0);
    assert!(rows
        .iter()
        .all(|r| r["rates"].as_array().unwrap().len() == 5));

    let (ok, out, err) = run(&s, &["calls", "stuck", "--json"]);
    assert!(ok, "{err}");
    let stuck: Value = serde_json::from_str(&out).unwrap();
    let calls = stuck["calls"].as_array().unwrap();
    assert!(!calls.is_empty());
    assert!(calls
        .iter()
        .any(|c| c["id"].as_i64() == Some(s.ids.hostile_call)));

    let (ok, out, err) = run(
        &s,
        &["call", "show", &s.ids.traced_call.to_string(), "--json"],
    );
    assert!(ok, "{err}");
    let detail: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detail["call"]["id"].as_i64(), Some(s.ids.traced_call));
    assert!(!detail["events"].as_array().unwrap().is_empty());
    assert!(detail["transcript"].is_object());
}

#[tokio::test]
async fn a_missing_call_is_a_clear_error() {
    let s = seeded().await;
    let (ok, _, err) = run(&s, &["call", "show", "987654"]);
    assert!(!ok);
    assert!(err.contains("no call 987654"), "{err}");
}

#[tokio::test]
async fn text_output_is_terminal_safe() {
    let s = seeded().await;
    let hostile = s.ids.hostile_call.to_string();
    for args in [
        vec!["calls", "stuck"],
        vec!["call", "show", &hostile],
        vec!["call", "show", &hostile, "--json"],
    ] {
        let (ok, out, err) = run(&s, &args);
        assert!(ok, "{args:?}: {err}");
        assert!(
            !out.chars().any(|c| (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "{args:?} printed control characters: {out:?}"
        );
    }
}
