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
            reuse: None,
            verbose: true,
            rabbitmq: None,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
#[cfg_attr(callops_no_rabbitmq, ignore = "CALLOPS_TEST_AMQP_URL not set")]
async fn bench_console_times_the_overview_over_rabbitmq_and_deletes_its_queues() {
    let (Some(url), Some(amqp)) = (common::postgres_url(), common::amqp_url()) else {
        return;
    };
    let mgmt = "http://127.0.0.1:15672".to_string();
    let mgmt_up = reqwest::Client::new()
        .get(format!("{mgmt}/api/overview"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    let report = run_with(
        &url,
        ConsoleBench {
            businesses: 6,
            calls: 500,
            refreshes: 3,
            frames: 2,
            keep: false,
            reuse: None,
            verbose: true,
            rabbitmq: Some(callops::bench::console_rabbit::RabbitTarget {
                amqp_url: amqp,
                management_url: mgmt_up.then_some(mgmt),
            }),
        },
        None,
    )
    .await
    .expect("bench console over rabbitmq");
    let r = report.rabbit.expect("rabbitmq figures");
    assert_eq!(r.queues, 30);
    let passive = &r.paths[0];
    assert_eq!(passive.refresh.n, 3);
    // Five declares per business on screen, and the five dead-letter queues.
    assert_eq!(passive.declares_per_poll, 6.0 * 5.0 + 5.0, "{passive:?}");
    assert!(passive.broker.n > 0, "{passive:?}");
    assert_eq!(passive.figures_age.n, 3);
    if mgmt_up {
        let api = r
            .paths
            .iter()
            .find(|p| p.label.starts_with("management"))
            .unwrap();
        // At most one filtered request per poll: a poll inside the cache's lifetime, or
        // one stopped by the end of the run before it asked, makes none.
        assert!(
            api.requests_per_poll > 0.0 && api.requests_per_poll <= 1.0,
            "{api:?}"
        );
        assert_eq!(
            api.declares_per_poll, 5.0,
            "only the dead-letter queues: {api:?}"
        );
    }
}
