//! A write transaction whose caller is cancelled while it begins (a task aborted, a
//! `select!` that lost, a worker killed as a task) must not leave its pooled connection
//! inside an open transaction. On SQLite that transaction holds the write lock for good,
//! so every later writer waits and fails. The pipeline e2e test hung this way: after a
//! worker was aborted, its replacement made no progress for 180 s. sqlx's
//! `begin_with("BEGIN IMMEDIATE")` awaits again after the worker has run the BEGIN; a
//! future dropped there leaves no `Transaction` to roll back.
//! On SQLite (one connection, so the leaked one is the next one used) and on Postgres.

mod common;

use callops::store::Store;
use std::time::Duration;

/// Abort `begin_write` callers at many different points, then prove that the store still
/// writes: each round, a fresh write transaction must begin, write and commit in time.
async fn cancelled_begins_leave_no_open_transaction(store: Store) {
    sqlx::query("CREATE TABLE IF NOT EXISTS cancel_probe (n BIGINT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    for round in 0..400u64 {
        let s = store.clone();
        let task = tokio::spawn(async move {
            let tx = s.begin_write().await;
            // Holding it open: only the abort ends this task.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tx);
        });
        // Cancel at a different moment of the begin each round: after 0..=7 yields, then
        // after a few microseconds.
        for _ in 0..(round % 8) {
            tokio::task::yield_now().await;
        }
        if round % 16 >= 8 {
            tokio::time::sleep(Duration::from_micros(round % 50)).await;
        }
        task.abort();
        let _ = task.await;
        let write = async {
            let mut tx = store.begin_write().await?;
            sqlx::query("INSERT INTO cancel_probe (n) VALUES ($1)")
                .bind(round as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| callops::store::StoreError::Conflict(e.to_string()))?;
            tx.commit()
                .await
                .map_err(|e| callops::store::StoreError::Conflict(e.to_string()))
        };
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("round {round}: a write after a cancelled begin failed: {e}"),
            Err(_) => panic!("round {round}: a write after a cancelled begin hung for 5 s"),
        }
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cancel_probe")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 400, "every probe write committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_begins_leave_no_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    // One connection: a leaked transaction is on the connection the next writer gets.
    let store = Store::open_migrated(&url, 1).await.unwrap();
    cancelled_begins_leave_no_open_transaction(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_cancelled_begins_leave_no_open_transaction() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    cancelled_begins_leave_no_open_transaction(db.store.clone()).await;
}
