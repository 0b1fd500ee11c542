//! `callops ingest -` streams: the real binary reads a pipe that a writer fills slowly, and
//! every call (with its sync job) is in the database before the writer closes the pipe —
//! `tail -f calls.jsonl | callops ingest -` works. Bad lines, duplicates and the summary
//! behave as for a file.

mod common;

use callops::store::Store;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn record(i: usize) -> String {
    format!(
        r#"{{"business":"Stream GmbH","external_id":"live-{i}","from":"+4930123456{i:02}","duration_s":30,"audio_url":"https://rec.example/{i}.wav"}}"#
    )
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Wait (bounded) until `sql` counts `want`; false when it never did.
async fn eventually(store: &Store, sql: &str, want: i64) -> bool {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if count(store, sql).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_slow_writer_sees_each_call_committed_before_it_closes_the_pipe() {
    let (store, dir) = common::sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_callops"))
        .args([
            "--database-url",
            &url,
            "--data-dir",
            &dir.path().display().to_string(),
            "ingest",
            "-",
            "--create-businesses",
        ])
        .env_remove("CALLOPS_DATABASE_URL")
        .env("CALLOPS_BROKER", "database")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting callops ingest -");
    let mut pipe = child.stdin.take().unwrap();
    for i in 1..=4 {
        writeln!(pipe, "{}", record(i)).unwrap();
        pipe.flush().unwrap();
        // The pipe is still open: the call can only be there if ingest committed it
        // without waiting for the end of its input.
        let sql = format!("SELECT COUNT(*) FROM calls WHERE external_id = 'live-{i}'");
        assert!(
            eventually(&store, &sql, 1).await,
            "call live-{i} was not committed while the pipe stayed open"
        );
        let jobs = format!(
            "SELECT COUNT(*) FROM jobs WHERE call_id = (SELECT id FROM calls WHERE external_id = 'live-{i}')"
        );
        assert_eq!(count(&store, &jobs).await, 1, "live-{i} has its sync job");
    }
    // A bad line and a duplicate, then one more good line: the stream goes on.
    writeln!(pipe, "{{\"business\": 42}}").unwrap();
    writeln!(pipe, "{}", record(2)).unwrap();
    writeln!(pipe, "{}", record(5)).unwrap();
    pipe.flush().unwrap();
    assert!(
        eventually(
            &store,
            "SELECT COUNT(*) FROM calls WHERE external_id = 'live-5'",
            1
        )
        .await,
        "the line after a rejected one was not committed"
    );
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("-:5: rejected: not a valid call record"),
        "{stderr}"
    );
    assert!(
        stdout.contains("ingested 5, duplicates 1 (republished 0), rejected 1"),
        "{stdout}\n{stderr}"
    );
    assert!(
        !out.status.success(),
        "a rejected line fails the command: {stdout}"
    );
    // Not a terminal: no progress line, only the rejection, the summary's error and logs.
    assert!(!stderr.contains("\r"), "{stderr:?}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM calls").await, 5);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM jobs").await, 5);
}

#[tokio::test]
async fn an_overlong_line_is_rejected_without_stopping_the_stream() {
    use callops::pipeline::ingest::stream::{IngestEvent, StreamOptions};
    use callops::pipeline::ingest::Ingestor;
    use callops::queue::{self, BrokerSettings, RetryPolicy};
    let (store, _dir) = common::sqlite_store().await;
    store.ensure_business("Stream GmbH").await.unwrap();
    let broker = queue::connect(
        "database",
        BrokerSettings {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(50),
                tiers: 2,
            },
            prefix: common::unique("stream"),
            amqp_url: String::new(),
            management_url: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        },
        store.clone(),
    )
    .await
    .unwrap();
    let opts = StreamOptions {
        max_line_bytes: 400,
        batch_lines: 2,
        ..StreamOptions::default()
    };
    let long = format!(
        r#"{{"business":"Stream GmbH","external_id":"big","audio_url":"https://rec.example/{}.wav"}}"#,
        "x".repeat(1000)
    );
    let input = format!("{}\n{long}\n{}\n{}\n", record(1), record(2), record(3));
    let mut seen = Vec::new();
    let report = Ingestor::new(&store, &*broker)
        .ingest_stream(input.as_bytes(), &opts, &mut |e| {
            if let IngestEvent::Rejected(r) = e {
                seen.push((r.line, r.reason.clone()));
            }
        })
        .await
        .unwrap();
    assert_eq!(
        (report.ingested, report.rejected_count),
        (3, 1),
        "{report:?}"
    );
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, 2);
    assert!(seen[0].1.contains("over the limit of 400"), "{:?}", seen[0]);
}
