//! The bad-input corpus (tests/corpus/bad_records.jsonl, plus a 2,000,000-character
//! transcript made here) through the real `callops ingest`: every line is refused with a
//! clear error naming its line, no error carries an escape sequence, nothing is written,
//! and SQLite and Postgres give exactly the same report.

mod common;

use callops::store::Store;
use std::collections::BTreeMap;
use std::process::Command;

const CORPUS: &str = include_str!("corpus/bad_records.jsonl");

/// What each line's error must say (1-based line → words).
fn expected() -> Vec<(usize, &'static str)> {
    let mut v = vec![
        (1, "not a valid call record"),
        (2, "not a valid call record"),
        (3, "missing field `external_id`"),
        (4, "missing field `business`"),
        (5, "needs audio_url"),
        (6, "unknown field `colour`"),
        (7, "does not exist"),
        (8, "duration_s -5 must be a non-negative number"),
        (9, "transcript segment 0 text contains a NUL byte"),
        (10, "business contains a NUL byte"),
        (11, "external_id"),
        (12, "lead_id"),
    ];
    for (i, field) in [
        "business",
        "external_id",
        "direction",
        "from",
        "to",
        "language",
        "agent",
        "campaign",
        "lead_id",
        "source",
        "audio_url",
        "started_at",
    ]
    .iter()
    .enumerate()
    {
        let _ = field;
        v.push((13 + i, "contains an escape sequence (ESC)"));
    }
    v.extend([
        (
            25,
            "transcript segment 0 speaker contains an escape sequence",
        ),
        (26, "transcript segment 0 text contains an escape sequence"),
        (27, "agent contains a bidi override"),
        (28, "campaign contains an escape sequence (CSI)"),
        (29, "unknown field"),
        (30, "over the limit of 200000"),
    ]);
    v
}

fn corpus_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = CORPUS.to_string();
    let huge = "x".repeat(2_000_000);
    text.push_str(&format!(
        "{{\"business\":\"Acme\",\"external_id\":\"huge\",\"transcript\":{{\"segments\":[{{\"speaker\":\"caller\",\"start\":0,\"end\":1,\"text\":\"{huge}\"}}]}}}}\n"
    ));
    let p = dir.join("bad.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

/// `callops ingest` on the corpus: (line → reason, raw stderr).
fn ingest(url: &str, dir: &std::path::Path) -> (BTreeMap<usize, String>, String) {
    let file = corpus_file(dir);
    let out = Command::new(env!("CARGO_BIN_EXE_callops"))
        .args(["--data-dir", &dir.display().to_string(), "ingest"])
        .arg(&file)
        .env("CALLOPS_DATABASE_URL", url)
        .env_remove("CALLOPS_BROKER")
        .env_remove("CALLOPS_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corpus of bad lines must fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for (name, text) in [("stderr", &stderr), ("stdout", &stdout)] {
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\0']),
            "{name} carries control characters: {text:?}"
        );
    }
    assert!(stdout.contains("ingested 0,"), "{stdout}");
    let prefix = format!("{}:", file.display());
    let mut by_line = BTreeMap::new();
    for l in stderr.lines() {
        let Some(rest) = l.strip_prefix(&prefix) else {
            continue;
        };
        let (n, reason) = rest
            .split_once(": rejected: ")
            .expect("line: rejected: reason");
        let n: usize = n.parse().unwrap();
        assert!(
            by_line.insert(n, reason.to_string()).is_none(),
            "line {n} reported twice"
        );
    }
    (by_line, stderr)
}

async fn nothing_written(store: &Store) {
    for (sql, want) in [
        ("SELECT count(*) FROM calls", 0),
        ("SELECT count(*) FROM jobs", 0),
        ("SELECT count(*) FROM call_events", 0),
        ("SELECT count(*) FROM businesses", 1),
    ] {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, want, "{sql}");
    }
}

fn check(report: &BTreeMap<usize, String>, stderr: &str) {
    let want = expected();
    assert_eq!(
        report.keys().copied().collect::<Vec<_>>(),
        (1..=want.len()).collect::<Vec<_>>(),
        "every line refused once:\n{stderr}"
    );
    for (line, words) in want {
        let got = &report[&line];
        assert!(got.contains(words), "line {line}: {got:?} lacks {words:?}");
        assert!(
            got.len() < 400,
            "line {line}: error too long ({} chars)",
            got.len()
        );
        assert!(
            !got.contains("pwned"),
            "line {line} echoes the payload: {got}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_is_refused_line_by_line_identically_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite:{}", dir.path().join("bad.db").display());
    let sqlite = Store::open_migrated(&sqlite_url, 2).await.unwrap();
    sqlite.ensure_business("Acme").await.unwrap();
    let (lite, stderr) = ingest(&sqlite_url, dir.path());
    check(&lite, &stderr);
    nothing_written(&sqlite).await;

    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    db.store.ensure_business("Acme").await.unwrap();
    let pg_dir = tempfile::tempdir().unwrap();
    let (pg, stderr) = ingest(&db.url, pg_dir.path());
    check(&pg, &stderr);
    nothing_written(&db.store).await;
    // The same words, line for line (only the file path differs, and it is not part of
    // the reason).
    assert_eq!(lite, pg);
}

/// The same records that are refused by default are fine when within limits and clean;
/// an unknown business is created only when asked.
#[tokio::test]
async fn unknown_business_needs_create_businesses() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("ok.db").display());
    let file = dir.path().join("ok.jsonl");
    std::fs::write(
        &file,
        r#"{"business":"New Co","external_id":"n-1","audio_url":"https://media.example.com/a.wav"}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_callops"))
            .args(["--data-dir", &dir.path().display().to_string(), "ingest"])
            .arg(&file)
            .args(extra)
            .env("CALLOPS_DATABASE_URL", &url)
            .env_remove("CALLOPS_BROKER")
            .env_remove("CALLOPS_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--create-businesses"),
        "{err}"
    );
    let out = run(&["--create-businesses"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("new businesses [\"New Co\"]"));
}
