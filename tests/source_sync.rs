//! Source-database sync: a business's own table of call records, polled with a keyset
//! watermark and ingested like JSONL. SQLite source → SQLite store, Postgres source →
//! Postgres store, MariaDB source (a table with MySQL-only column types) → SQLite store. Rows sharing a watermark value are not skipped, bad rows are reported
//! by id with nothing written, duplicates are no-ops, reruns read only what is new.

mod common;

use callops::pipeline::source_sync::{sync_source, SourceSpec};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::Store;
use std::time::Duration;

fn settings() -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            tiers: 2,
        },
        prefix: common::unique("source_sync"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

const TABLE: &str = "CREATE TABLE src_calls (id BIGINT PRIMARY KEY, external_id TEXT, from_number TEXT, \
     audio_url TEXT, started_at BIGINT, duration_s BIGINT, direction TEXT, crm_note TEXT, updated_at BIGINT)";

/// `create` makes `src_calls` with at least TABLE's columns (in that order first);
/// `ignored` are its columns that are not record fields.
async fn source_sync(
    store: Store,
    source: sqlx::AnyPool,
    source_url: String,
    create: &str,
    ignored: &[&str],
) {
    exec(&source, create).await;
    exec(
        &source,
        &"INSERT INTO src_calls VALUES \
         (1, 'S-1', '+49 30 1111111', 'https://rec.example/1.mp3', 1795000000000, 60, 'inbound', 'vip', 100), \
         (2, 'S-2', 'anonymous', 'https://rec.example/2.mp3', 1795000060000, 30, NULL, NULL, 100), \
         (3, '', '+49 30 3333333', 'https://rec.example/3.mp3', 1795000120000, 10, NULL, NULL, 101), \
         (4, 'S-1', '+49 30 1111111', 'https://rec.example/1.mp3', 1795000000000, 60, NULL, NULL, 102), \
         (5, 'S-5', '+49 30 5555555', 'https://rec.example/5.mp3', 1795000180000, 20, 'sideways', NULL, 103)"
            .replace("VALUES", &format!("({}) VALUES", COLUMNS)),
    )
    .await;
    let broker = queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    let biz = store.ensure_business("Source Sync AG").await.unwrap();
    let spec = SourceSpec {
        url: source_url,
        table: "src_calls".into(),
        id_column: "id".into(),
        watermark_column: "updated_at".into(),
        batch: 2,
    };

    let r = sync_source(&store, &*broker, &biz, &spec).await.unwrap();
    assert_eq!(
        (r.batches, r.read, r.ingested, r.duplicates),
        (3, 5, 2, 1),
        "{r:?}"
    );
    let rejected: Vec<&str> = r.rejected.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(rejected, ["3", "5"], "{r:?}");
    assert!(r.rejected[0].1.contains("external_id is empty"), "{r:?}");
    assert!(r.rejected[1].1.contains("sideways"), "{r:?}");
    assert_eq!(r.ignored_columns, ignored);
    let bid = biz.id;
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM calls WHERE business_id = {bid}")
        )
        .await,
        2
    );
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM calls WHERE business_id = {bid} AND external_id = 'S-1' AND from_number = '+49 30 1111111'")
        )
        .await,
        1,
        "from_number is the record's from"
    );
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM jobs").await,
        2,
        "one sync job per new call"
    );

    // A row sharing the last watermark value but with a higher id is still read.
    exec(
        &source,
        &format!("INSERT INTO src_calls ({COLUMNS}) VALUES (6, 'S-6', '+49 30 6666666', 'https://rec.example/6.mp3', 1795000240000, 40, NULL, NULL, 103)"),
    )
    .await;
    let r = sync_source(&store, &*broker, &biz, &spec).await.unwrap();
    assert_eq!((r.read, r.ingested), (1, 1), "{r:?}");
    let r = sync_source(&store, &*broker, &biz, &spec).await.unwrap();
    assert_eq!((r.batches, r.read, r.ingested), (0, 0, 0), "{r:?}");
    assert_eq!(
        r.watermark_after.unwrap(),
        serde_json::json!({"value": 103, "id": 6})
    );

    // Bad input: a table name that is not an identifier, a table that does not exist.
    let e = sync_source(
        &store,
        &*broker,
        &biz,
        &SourceSpec {
            table: "src_calls; DROP TABLE calls".into(),
            ..spec.clone()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a plain SQL identifier"), "{e}");
    let e = sync_source(
        &store,
        &*broker,
        &biz,
        &SourceSpec {
            table: "no_such_table".into(),
            ..spec.clone()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("no_such_table"), "{e}");
    broker.close().await;
}

const COLUMNS: &str = "id, external_id, from_number, audio_url, started_at, duration_s, direction, crm_note, updated_at";

#[tokio::test]
async fn sqlite_source_sync() {
    let (store, dir) = common::sqlite_store().await;
    let path = dir.path().join("source.db");
    let url = format!("sqlite:{}", path.display());
    let source = Store::connect(&url, 1).await.unwrap();
    source_sync(store, source.pool().clone(), url, TABLE, &["crm_note"]).await;
}

#[tokio::test]
#[cfg_attr(callops_no_mysql, ignore = "CALLOPS_TEST_MYSQL_URL not set")]
async fn mysql_source_sync() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let db = common::MyDb::create(&url).await;
    let (store, _dir) = common::sqlite_store().await;
    // MySQL types sqlx's Any driver cannot read as they are (DECIMAL, TINYINT, DATETIME,
    // JSON, ENUM) must not stop the sync: they are cast on the way out.
    let create = "CREATE TABLE src_calls (id BIGINT PRIMARY KEY, external_id VARCHAR(64), from_number TEXT, \
         audio_url VARCHAR(255), started_at BIGINT, duration_s DECIMAL(8,2), direction VARCHAR(16), crm_note TEXT, \
         updated_at BIGINT, is_vip TINYINT(1) NOT NULL DEFAULT 0, created DATETIME NOT NULL DEFAULT '2026-01-02 03:04:05', \
         extra JSON NULL, channel ENUM('phone','web') NOT NULL DEFAULT 'phone')";
    source_sync(
        store,
        db.pool.clone(),
        db.url.clone(),
        create,
        &["crm_note", "is_vip", "created", "extra", "channel"],
    )
    .await;
}

#[tokio::test]
#[cfg_attr(callops_no_mysql, ignore = "CALLOPS_TEST_MYSQL_URL not set")]
async fn mysql_source_bad_url_and_missing_table_are_named() {
    let Some(url) = common::mysql_url() else {
        return;
    };
    let db = common::MyDb::create(&url).await;
    let (store, _dir) = common::sqlite_store().await;
    let broker = callops::queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    let biz = store.ensure_business("Maria AG").await.unwrap();
    let spec = SourceSpec {
        url: db.url.clone(),
        table: "no_such_table".into(),
        id_column: "id".into(),
        watermark_column: "updated_at".into(),
        batch: 10,
    };
    let e = sync_source(&store, &*broker, &biz, &spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no_such_table") && e.contains("does not exist"),
        "{e}"
    );
    let bad = SourceSpec {
        url: common::with_db(&url, "callops_no_such_database"),
        table: "src_calls".into(),
        ..spec
    };
    let e = sync_source(&store, &*broker, &biz, &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot open the source database"), "{e}");
    broker.close().await;
}

#[tokio::test]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_source_sync() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    // The business's table lives in the same (throwaway) database here.
    source_sync(
        db.store.clone(),
        db.store.pool().clone(),
        db.url.clone(),
        TABLE,
        &["crm_note"],
    )
    .await;
}
