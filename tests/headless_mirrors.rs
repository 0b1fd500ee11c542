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
    // Labelled maps, not bare arrays (deliverable 9).
    assert!(rows
        .iter()
        .all(|r| r["rates"]["transcribe"]["5m"].is_number() && r["backlog"]["notify"].is_u64()));

    let (ok, out, err) = run(&s, &["calls", "stuck", "--json"]);
    assert!(ok, "{err}");
    let stuck: Value = serde_json::from_str(&out).unwrap();
    let calls = stuck["calls"].as_array().unwrap();
    assert!(!calls.is_empty());
    assert!(stuck["by_stage"]["transcribe"].is_i64(), "{stuck}");
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

    // DLQ rows: payload and headers are objects, not JSON in strings.
    let (ok, out, err) = run(&s, &["dlq", "list", "--json"]);
    assert!(ok, "{err}");
    let dlq: Value = serde_json::from_str(&out).unwrap();
    assert!(dlq["total"].as_i64().unwrap() > 0);
    assert!(
        dlq["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["payload"].is_object() && r["headers"].is_object()),
        "{dlq}"
    );
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

/// Defects 3 and 12, deliverable 9: `review list` is one page with the true total (paged
/// with --offset, searched with --search), candidates are JSON objects, deferred items
/// leave the list and come back with --deferred, `review unlink` undoes a link, and a
/// reader that goes away (`| head`) ends the command quietly.
#[tokio::test]
async fn review_list_pages_defers_unlinks_and_survives_a_closed_pipe() {
    let s = seeded().await;
    let support = ["--set", "console.role=support"];
    let list = |extra: &[&str]| -> Value {
        let mut args = vec!["review", "list", "--json"];
        args.extend_from_slice(extra);
        let (ok, out, err) = run(&s, &args);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let all = list(&[]);
    let total = all["total"].as_i64().unwrap();
    assert!(total >= 3, "{all}");
    let rows = all["rows"].as_array().unwrap();
    assert_eq!(rows.len() as i64, total);
    assert!(
        rows.iter().any(|r| r["review_candidates"]
            .as_array()
            .is_some_and(|c| c.first().is_some_and(|c| c["customer_id"].is_i64()))),
        "candidates are objects, not JSON in a string: {all}"
    );
    let one = list(&["--limit", "1", "--offset", "1"]);
    assert_eq!(
        one["total"].as_i64(),
        Some(total),
        "the true total on every page"
    );
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(one["rows"][0]["id"], rows[1]["id"]);
    let id = rows[2]["id"].as_i64().unwrap();
    let found = list(&["--search", &id.to_string()]);
    assert_eq!(found["total"].as_i64(), Some(1), "{found}");

    // Deferred: out of the list until due, listed with --deferred with its reason.
    let id_s = id.to_string();
    let mut args = vec!["review", "defer", &id_s as &str];
    args.extend_from_slice(&["--reason", "customer calls back", "--minutes", "30"]);
    args.extend_from_slice(&support);
    let (ok, _, err) = run(&s, &args);
    assert!(ok, "{err}");
    let after = list(&[]);
    assert_eq!(after["total"].as_i64(), Some(total - 1));
    assert_eq!(after["deferred_total"].as_i64(), Some(1));
    let deferred = list(&["--deferred"]);
    assert_eq!(deferred["rows"][0]["id"].as_i64(), Some(id));
    assert_eq!(
        deferred["rows"][0]["deferred_reason"],
        "customer calls back"
    );
    let (ok, text, err) = run(&s, &["review", "list", "--deferred"]);
    assert!(
        ok && text.contains("customer calls back") && text.contains("UTC"),
        "{text}{err}"
    );

    // Link the first item, then unlink it: back in review.
    let call = rows[0]["id"].as_i64().unwrap().to_string();
    let customer = rows[0]["review_candidates"][0]["customer_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let mut args = vec!["review", "link", &call as &str, &customer];
    args.extend_from_slice(&support);
    let (ok, _, err) = run(&s, &args);
    assert!(ok, "{err}");
    assert_eq!(list(&[])["total"].as_i64(), Some(total - 2));
    let mut args = vec![
        "review",
        "unlink",
        &call as &str,
        "--reason",
        "two James Wilsons",
    ];
    args.extend_from_slice(&support);
    let (ok, out, err) = run(&s, &args);
    assert!(ok && out.contains("unlink call"), "{out}{err}");
    assert_eq!(list(&[])["total"].as_i64(), Some(total - 1));

    // A closed pipe: no panic, a quiet end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_callops"))
        .args(["--database-url", &s.url, "--data-dir", &s.data_dir])
        .args(["review", "list", "--json"])
        .env_remove("CALLOPS_DATABASE_URL")
        .env_remove("CALLOPS_BROKER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?} {err}", out.status);
}
