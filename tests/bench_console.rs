//! `callops bench console` at tiny scale against the test Postgres: seeds with COPY, times
//! the console's refreshes and frames, and drops its database afterwards.

mod common;

use callops::bench::console::{run_with, ConsoleBench};
use callops::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn bench_console_runs_at_tiny_scale_and_drops_its_database() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let report = run_with(
        &url,
        ConsoleBench {
            businesses: 5,
            calls: 2_000,
            refreshes: 3,
            frames: 5,
            keep: false,
            verbose: true,
        },
        None,
    )
    .await
    .expect("bench console");
    let rows = |t: &str| {
        report
            .seed
            .rows
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    assert_eq!(rows("businesses"), 5);
    assert_eq!(rows("calls"), 2_000);
    assert!(rows("throughput") >= 5 * 5 * 61, "{:?}", report.seed.rows);
    assert!(
        rows("jobs") > 0 && rows("dead_jobs") > 0,
        "{:?}",
        report.seed.rows
    );
    assert_eq!(report.overview.n, 3);
    assert_eq!(report.stuck.n, 3);
    assert_eq!(report.overview_rows, 5);
    assert!(report.stuck_total > 0 && report.stuck_listed > 0);
    assert_eq!(report.render.len(), 4);
    assert!(report.render.iter().all(|(_, _, _, s)| s.n == 5));

    let admin = Store::connect(&url, 1).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&report.database)
        .fetch_one(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    assert_eq!(left, 0, "database {} was not dropped", report.database);
}
