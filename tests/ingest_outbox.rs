//! Ingest commits each call with its sync job. A failure mid-file says how far it got and
//! leaves every committed call with its job; a re-run skips what was committed and heals any
//! call left without a job at once (SQLite + database broker, where jobs are rows to count).

mod common;

use callops::pipeline::ingest::Ingestor;
use callops::queue::{self, BrokerSettings, RetryPolicy};
use std::time::Duration;

fn settings() -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: common::unique("ingest"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

fn records(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                r#"{{"business":"acme","external_id":"c{i}","from":"+4930123456{i:02}","duration_s":30,"audio_url":"https://example.invalid/{i}.wav"}}"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn count(store: &callops::store::Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn failure_mid_file_reports_progress_and_a_rerun_heals_at_once() {
    let (store, _dir) = common::sqlite_store().await;
    store.ensure_business("acme").await.unwrap();
    let broker = queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    // The database refuses the third call, as a full disk or a dropped connection would.
    sqlx::query(
        "CREATE TRIGGER refuse_c3 BEFORE INSERT ON calls WHEN NEW.external_id = 'c3' \
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let text = records(5);
    let e = Ingestor::new(&store, &*broker)
        .ingest_jsonl(&text)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("ingest stopped at line 3"), "{e}");
    assert!(e.contains("2 calls were committed with their jobs"), "{e}");
    assert!(e.contains("disk on fire"), "{e}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM calls").await, 2);
    assert_eq!(
        count(&store, "SELECT COUNT(DISTINCT call_id) FROM jobs").await,
        2,
        "each committed call has its job"
    );

    // One job goes missing (a pre-outbox crash); the re-run heals it at once.
    sqlx::query("DROP TRIGGER refuse_c3")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM jobs WHERE call_id = (SELECT id FROM calls WHERE external_id = 'c1')")
        .execute(store.pool())
        .await
        .unwrap();
    let report = Ingestor::new(&store, &*broker)
        .ingest_jsonl(&text)
        .await
        .unwrap();
    assert_eq!(report.ingested, 3);
    assert_eq!(report.duplicates, 2);
    assert_eq!(report.republished, 1, "the call without a job got one");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs").await,
        5,
        "one job per call, no duplicate for the call that had one"
    );
    // A third run changes nothing.
    let again = Ingestor::new(&store, &*broker)
        .ingest_jsonl(&text)
        .await
        .unwrap();
    assert_eq!(
        (again.ingested, again.duplicates, again.republished),
        (0, 5, 0)
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM jobs").await, 5);
}
