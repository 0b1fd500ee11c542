//! The console's hot queries are index scans, not table scans: EXPLAIN on Postgres with
//! realistic row counts (and EXPLAIN QUERY PLAN on SQLite). Plans are printed for the note.

mod common;

use callops::store::calls::{review_sql, stuck_sql, REVIEW_COUNTS_SQL, THROUGHPUT_SQL};
use callops::store::read::DEAD_COUNTS_SQL;
use callops::store::Store;
use sqlx::Row;

/// 100k calls (0.5% in flight, 0.2% in review), 24 hours of throughput for 50 businesses.
async fn seed(store: &Store, postgres: bool) {
    let b = store.ensure_business("plans").await.unwrap();
    let now = callops::now_ms();
    let series = if postgres {
        "generate_series(1, 100000) AS g(i)"
    } else {
        "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100000) SELECT i FROM s) AS g"
    };
    sqlx::query(&format!(
        "INSERT INTO calls (business_id, external_id, direction, stage, state, state_since, created_at, updated_at, review_priority) \
         SELECT $1, 'e' || i, 'inbound', \
           CASE WHEN i % 200 = 0 THEN 'transcribe' WHEN i % 500 = 1 THEN 'link' ELSE 'notify' END, \
           CASE WHEN i % 200 = 0 THEN 'pending' WHEN i % 500 = 1 THEN 'review' ELSE 'done' END, \
           $2 - i * 1000, $2, $2, i % 3 FROM {series}"
    ))
    .bind(b.id)
    .bind(now)
    .execute(store.pool())
    .await
    .unwrap();
    let series = if postgres {
        "generate_series(0, 72000 - 1) AS g(i)"
    } else {
        "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 72000 - 1) SELECT i FROM s) AS g"
    };
    // 24 h x 50 businesses x 5 stages = 300k buckets; i encodes (minute, business, stage).
    for stage in ["sync", "transcribe", "analyze", "link", "notify"] {
        sqlx::query(&format!(
            "INSERT INTO throughput (minute, business_id, stage, calls, audio_seconds, failures) \
             SELECT $1 - (i / 50) * 60000, i % 50, $2, 3, 180, 0 FROM {series}"
        ))
        .bind(callops::store::throughput::minute_of(now))
        .bind(stage)
        .execute(store.pool())
        .await
        .unwrap();
    }
    // 20k dead jobs over 50 businesses, a third of them still dead.
    let series = if postgres {
        "generate_series(1, 20000) AS g(i)"
    } else {
        "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000) SELECT i FROM s) AS g"
    };
    sqlx::query(&format!(
        "INSERT INTO dead_jobs (job_id, business_id, stage, queue, payload, attempts, first_error, \
           last_error, error_signature, first_failed_at, last_failed_at, dead_at, reason, source, status) \
         SELECT 'd' || i, i % 50, 'notify', 'notify.1', '{{}}', 5, 'e', 'e', 'e', $1, $1, $1 - i, \
           'max_attempts', 'worker', CASE WHEN i % 3 = 0 THEN 'dead' ELSE 'retried' END FROM {series}"
    ))
    .bind(now)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
}

async fn plan(store: &Store, prefix: &str, sql: &str, binds: &[Bind]) -> String {
    let q = format!("{prefix} {sql}");
    let mut query = sqlx::query(&q);
    for b in binds {
        query = match b {
            Bind::S(s) => query.bind(*s),
            Bind::I(i) => query.bind(*i),
        };
    }
    let rows = query.fetch_all(store.pool()).await.unwrap();
    rows.iter()
        .map(|r| {
            // Postgres: one text column; SQLite EXPLAIN QUERY PLAN: the 4th column is the detail.
            r.try_get::<String, _>(0)
                .or_else(|_| r.try_get::<String, _>(3))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

enum Bind {
    S(&'static str),
    I(i64),
}

fn assert_no_table_scan(name: &str, plan: &str, table: &str, index: &str) {
    println!("--- {name}\n{plan}\n");
    assert!(
        plan.contains(index),
        "{name}: expected index {index} in plan:\n{plan}"
    );
    assert!(
        !plan.contains(&format!("Seq Scan on {table}")),
        "{name}: table scan:\n{plan}"
    );
    assert!(
        !plan.contains(&format!("SCAN {table}\n")) && !plan.ends_with(&format!("SCAN {table}")),
        "{name}: table scan:\n{plan}"
    );
}

async fn check_plans(store: Store, postgres: bool) {
    seed(&store, postgres).await;
    let explain = if postgres {
        "EXPLAIN"
    } else {
        "EXPLAIN QUERY PLAN"
    };
    let now = callops::now_ms();
    let p = plan(
        &store,
        explain,
        &stuck_sql(100),
        &[Bind::S("transcribe"), Bind::I(now - 300_000)],
    )
    .await;
    assert_no_table_scan(
        "stuck calls by stage age",
        &p,
        "calls",
        "calls_in_flight_by_age",
    );
    let p = plan(&store, explain, &review_sql(100), &[]).await;
    // With 200 review calls Postgres may read them by calls_review_by_business (0015) and
    // sort; at 25k (the 10M-call bench database) it walks calls_review_queue in order.
    assert_no_table_scan(
        "review queue by priority",
        &p,
        "calls",
        if postgres && p.contains("calls_review_by_business") {
            "calls_review_by_business"
        } else {
            "calls_review_queue"
        },
    );
    let p = plan(&store, explain, REVIEW_COUNTS_SQL, &[]).await;
    assert_no_table_scan(
        "review calls per business (overview)",
        &p,
        "calls",
        "calls_review_by_business",
    );
    let p = plan(&store, explain, DEAD_COUNTS_SQL, &[]).await;
    assert_no_table_scan(
        "dead jobs per business (overview)",
        &p,
        "dead_jobs",
        // SQLite answers from the covering dead_jobs_by_business (status, business, …).
        if postgres {
            "dead_jobs_dead_by_business"
        } else {
            "dead_jobs_by_business"
        },
    );
    let p = plan(&store, explain, THROUGHPUT_SQL, &[Bind::I(now - 3_600_000)]).await;
    let idx = if postgres {
        "throughput_pkey"
    } else {
        "sqlite_autoindex_throughput_1"
    };
    assert_no_table_scan("throughput over the last 60 minutes", &p, "throughput", idx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_hot_queries_use_indexes() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    check_plans(db.store.clone(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_hot_queries_use_indexes() {
    let (store, _dir) = common::sqlite_store().await;
    check_plans(store, false).await;
}
