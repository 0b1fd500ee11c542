//! The overview's and the header's counts are exact (issue 14 reshaped the queries behind
//! them for speed): each is checked against a plain reading of the tables, computed here in
//! Rust, on SQLite and on Postgres, over the demo data (every state, dead jobs of every
//! status, review calls, stuck calls, queued jobs).

mod common;

use callops::console::demo_data::{seed_demo_data, DEMO_NOW};
use callops::console::refresher::{fetch, Queues};
use callops::console::settings::ConsoleSettings;
use callops::domain::stage::Stage;
use callops::store::read::stage_index;
use callops::store::Store;
use callops::views::Route;
use sqlx::Row;
use std::collections::HashMap;

async fn check(store: Store) {
    seed_demo_data(&store).await.unwrap();
    let settings = ConsoleSettings::default();
    let now = DEMO_NOW;
    let snap = fetch(
        &store,
        Queues::JobsTableAt(now),
        Route::Overview,
        &settings,
        now,
    )
    .await;
    assert!(snap.ok(), "{:?} {:?}", snap.db, snap.broker);
    let p = snap.parts;
    let rows = p.overview.expect("overview rows");

    // Plain readings of whole tables, counted here.
    let calls = sqlx::query("SELECT business_id, stage, state, state_since FROM calls")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let (mut review, mut review_all, mut stuck) = (HashMap::<i64, i64>::new(), 0i64, 0i64);
    let sla: HashMap<Stage, i64> = settings.slas_ms.iter().copied().collect();
    for r in &calls {
        let (biz, stage, state, since): (i64, String, String, i64) = (
            r.get("business_id"),
            r.get("stage"),
            r.get("state"),
            r.get("state_since"),
        );
        if state == "review" {
            *review.entry(biz).or_default() += 1;
            review_all += 1;
        }
        let stage: Stage = stage.parse().unwrap();
        if ["pending", "running", "retrying"].contains(&state.as_str()) && since < now - sla[&stage]
        {
            stuck += 1;
        }
    }
    let dead = sqlx::query("SELECT business_id, status FROM dead_jobs")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let (mut dlq, mut dead_all) = (HashMap::<i64, i64>::new(), 0i64);
    for r in &dead {
        let (biz, status): (Option<i64>, String) = (r.get("business_id"), r.get("status"));
        if status == "dead" {
            dead_all += 1;
            if let Some(b) = biz {
                *dlq.entry(b).or_default() += 1;
            }
        }
    }
    let jobs = sqlx::query("SELECT business_id, stage FROM jobs")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let mut backlog = HashMap::<i64, [u64; 5]>::new();
    for r in &jobs {
        let (biz, stage): (i64, String) = (r.get("business_id"), r.get("stage"));
        backlog.entry(biz).or_default()[stage_index(stage.parse().unwrap())] += 1;
    }
    // The last hour of throughput (the overview's 60-minute figures), summed here.
    let w60 = callops::store::throughput::minute_of(now) - 60 * 60_000;
    let mut hour = HashMap::<i64, ([i64; 5], [i64; 5])>::new();
    for r in sqlx::query("SELECT business_id, stage, minute, calls, failures FROM throughput")
        .fetch_all(store.pool())
        .await
        .unwrap()
    {
        let (biz, stage, minute, calls, failures): (i64, String, i64, i64, i64) = (
            r.get("business_id"),
            r.get("stage"),
            r.get("minute"),
            r.get("calls"),
            r.get("failures"),
        );
        if minute >= w60 {
            let e = hour.entry(biz).or_default();
            e.0[stage_index(stage.parse().unwrap())] += calls;
            e.1[stage_index(stage.parse().unwrap())] += failures;
        }
    }
    let names: HashMap<i64, String> = sqlx::query("SELECT id, name FROM businesses")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("id"), r.get("name")))
        .collect();

    // The demo data exercises every count (a zero everywhere would prove nothing).
    assert!(review_all > 0 && dead_all > 0 && stuck > 0 && !jobs.is_empty() && !hour.is_empty());
    assert_eq!(p.counters, Some((dead_all, review_all)), "header counters");
    assert_eq!(p.stuck_count, Some(stuck), "stuck calls");
    assert_eq!(p.names.as_ref(), Some(&names), "business names");
    assert_eq!(rows.len(), names.len());
    for row in &rows {
        assert_eq!(
            row.dlq,
            *dlq.get(&row.id).unwrap_or(&0),
            "dlq of {}",
            row.id
        );
        assert_eq!(
            row.review,
            *review.get(&row.id).unwrap_or(&0),
            "review of {}",
            row.id
        );
        assert_eq!(
            row.backlog,
            *backlog.get(&row.id).unwrap_or(&[0; 5]),
            "backlog of {}",
            row.id
        );
        assert_eq!(
            row.queues_at,
            Some(now),
            "jobs-table figures are read at `now`"
        );
        let (calls, failures) = hour.get(&row.id).copied().unwrap_or_default();
        assert_eq!(
            row.calls_60, calls,
            "completions of {} in the last hour",
            row.id
        );
        assert_eq!(
            row.failures_60, failures,
            "failures of {} in the last hour",
            row.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_counts_are_exact_on_sqlite() {
    let (store, _dir) = common::sqlite_store().await;
    check(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn overview_counts_are_exact_on_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    check(db.store.clone()).await;
}
