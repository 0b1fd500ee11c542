//! Operator actions on both database backends: every action writes its audit row, the
//! first of two concurrent links wins, bulk retry survives being killed midway, and a
//! viewer is refused — on Postgres by the database itself.

mod common;

use callops::domain::stage::{CallState, Stage};
use callops::ops::dlq::Selection;
use callops::ops::{Actor, Ops, OpsError, Role};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::customers::NewCustomer;
use callops::store::{DeadJobFilter, DeadJobStatus, NewCall, Store};
use std::time::Duration;

struct Fx {
    ops: Ops,
    _sqlite: Option<tempfile::TempDir>,
    _pg: Option<common::PgDb>,
}

fn settings() -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: common::unique("ops"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

fn ops_for(store: Store, broker: queue::DynBroker, role: Role) -> Ops {
    Ops {
        store,
        broker,
        actor: Actor {
            name: format!("test-{role}"),
            role,
        },
        readonly: false,
    }
}

async fn sqlite() -> Option<Fx> {
    let (store, dir) = common::sqlite_store().await;
    let broker = queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    Some(Fx {
        ops: ops_for(store, broker, Role::Admin),
        _sqlite: Some(dir),
        _pg: None,
    })
}

async fn postgres() -> Option<Fx> {
    let url = common::postgres_url()?;
    let db = common::PgDb::create(&url).await;
    let store = db.store.clone();
    let broker = queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    Some(Fx {
        ops: ops_for(store, broker, Role::Admin),
        _sqlite: None,
        _pg: Some(db),
    })
}

macro_rules! ops_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::sqlite().await else { return };
                    super::$name(&f).await;
                }
            )*
        }
        mod postgres {
            $(
                #[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::postgres().await else { return };
                    super::$name(&f).await;
                }
            )*
        }
    };
}

ops_suite!(
    two_operators_linking_one_call_first_wins,
    link_updates_call_customer_lead_and_audits,
    retry_all_of_10000_killed_midway_ends_with_each_retried_once,
    discard_dry_run_previews_and_changes_nothing,
    qc_on_a_finished_call_enqueues_analysis_and_audits,
    viewer_and_readonly_are_refused,
    merge_moves_calls_and_leads_of_a_temporary_customer,
);

/// A call sitting in the review queue.
async fn review_call(store: &Store, business_id: i64, ext: &str) -> i64 {
    let (c, _) = store
        .ingest_call(&NewCall {
            business_id,
            external_id: ext.into(),
            direction: "inbound".into(),
            from_number: Some("anonymous".into()),
            raw: "{}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    sqlx::query(
        "UPDATE calls SET stage = 'link', state = 'review', number_status = 'withheld', extracted_name = 'Schreiber', \
         review_priority = 1, review_reason = 'two close matches' WHERE id = $1",
    )
    .bind(c.id)
    .execute(store.pool())
    .await
    .unwrap();
    c.id
}

async fn customer(store: &Store, business_id: i64, name: &str, temporary: bool) -> i64 {
    store
        .upsert_customer(&NewCustomer {
            business_id,
            name: Some(name.into()),
            is_temporary: temporary,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn two_operators_linking_one_call_first_wins(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("acme").await.unwrap().id;
    let call = review_call(s, b, "r1").await;
    let anna = customer(s, b, "Anna Schreiber", false).await;
    let peter = customer(s, b, "Peter Schreiber", false).await;
    let (o1, o2) = (f.ops.clone(), f.ops.clone());
    let (r1, r2) = tokio::join!(
        tokio::spawn(async move { o1.review_link(call, anna, false).await }),
        tokio::spawn(async move { o2.review_link(call, peter, false).await })
    );
    let results = [r1.unwrap(), r2.unwrap()];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one link wins: {results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(matches!(loser, OpsError::Conflict(_)), "{loser:?}");
    let msg = loser.to_string();
    assert!(
        msg.contains(&format!("call {call}")) && msg.contains("someone else"),
        "{msg}"
    );
    let c = s.call(call).await.unwrap();
    assert_eq!((c.stage, c.state), (Stage::Notify, CallState::Pending));
    assert!(c.customer_id == Some(anna) || c.customer_id == Some(peter));
    assert_eq!(
        count(
            s,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'review.link'"
        )
        .await,
        1
    );
}

async fn link_updates_call_customer_lead_and_audits(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("acme").await.unwrap().id;
    let call = review_call(s, b, "r2").await;
    let cust = customer(s, b, "Anna Schreiber", false).await;
    let dry = f.ops.review_link(call, cust, true).await.unwrap();
    assert!(dry.dry_run && dry.did.contains(&format!("customer #{cust}")));
    assert_eq!(
        s.call(call).await.unwrap().state,
        CallState::Review,
        "dry run changes nothing"
    );
    f.ops.review_link(call, cust, false).await.unwrap();
    let c = s.call(call).await.unwrap();
    assert_eq!(c.link_method.as_deref(), Some("manual"));
    assert_eq!(c.link_status.as_deref(), Some("linked"));
    let trace = s.call_events(call).await.unwrap();
    assert!(
        trace
            .iter()
            .any(|e| e.kind == "review.link" && e.reason.contains("test-admin")),
        "{trace:?}"
    );
    let audit = s.audit_log(10).await.unwrap();
    assert_eq!(audit[0].action, "review.link");
    assert_eq!(audit[0].actor, "test-admin");
    // The notify job was published: the call's queue has it.
    let stats = f.ops.broker.queue_stats(&[b]).await.unwrap();
    assert_eq!(
        stats
            .iter()
            .find(|q| q.queue == Stage::Notify.queue_for(b))
            .map(|q| q.depth),
        Some(1)
    );
}

async fn retry_all_of_10000_killed_midway_ends_with_each_retried_once(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("bulk").await.unwrap().id;
    const N: i64 = 10_000;
    // 10,000 dead jobs in one statement (a recursive series works on both dialects).
    sqlx::query(&format!(
        "INSERT INTO dead_jobs (job_id, business_id, stage, call_id, queue, payload, attempts, errors, first_error, last_error, \
         error_signature, first_failed_at, last_failed_at, dead_at, reason, source) \
         SELECT 'dj' || i, $1, 'transcribe', i, 'transcribe.' || $1, '{{\"call_id\":' || i || '}}', 5, '[]', 'stt timeout', \
         'stt timeout', 'stt timeout', 1, 2, 3, 'max attempts reached', 'worker' \
         FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {N}) SELECT i FROM s) AS g"
    ))
    .bind(b)
    .execute(s.pool())
    .await
    .unwrap();
    let filter = DeadJobFilter {
        business_id: Some(b),
        ..Default::default()
    };
    let preview = f
        .ops
        .dlq_retry(&Selection::Matching(filter.clone()), true)
        .await
        .unwrap();
    assert_eq!(preview.matched, N);

    // Kill the bulk retry once some thousands are through.
    let ops = f.ops.clone();
    let fl = filter.clone();
    let task = tokio::spawn(async move { ops.dlq_retry(&Selection::Matching(fl), false).await });
    loop {
        let retried = s
            .count_dead_jobs(&DeadJobFilter {
                status: Some(DeadJobStatus::Retried),
                business_id: Some(b),
                ..Default::default()
            })
            .await
            .unwrap();
        if retried >= 2_000 || task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    let left = s.count_dead_jobs(&filter).await.unwrap();
    assert!(left > 0, "the kill came too late to test anything");

    let second = f
        .ops
        .dlq_retry(&Selection::Matching(filter.clone()), false)
        .await
        .unwrap();
    assert_eq!(second.changed as i64, left);
    assert_eq!(
        s.count_dead_jobs(&filter).await.unwrap(),
        0,
        "none left dead"
    );
    let retried_rows = count(
        s,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'retried' AND retried_as IS NOT NULL",
    )
    .await;
    assert_eq!(retried_rows, N, "every row retried exactly once");
    // Each batch's rows, jobs and audit row commit together: one job per retried row (no
    // duplicate even across the kill) and audit rows naming exactly the rows retried.
    let queued = count(s, "SELECT COUNT(*) FROM jobs").await;
    let distinct_calls = count(s, "SELECT COUNT(DISTINCT call_id) FROM jobs").await;
    assert_eq!(distinct_calls, N, "no call lost");
    assert_eq!(queued, N, "exactly one job per retried row");
    let audits: Vec<String> =
        sqlx::query_scalar("SELECT after FROM audit_log WHERE action = 'dlq.retry'")
            .fetch_all(s.pool())
            .await
            .unwrap();
    let audited: i64 = audits.iter().map(|a| a.matches('#').count() as i64).sum();
    assert_eq!(audited, N, "the audit names every retried row exactly once");
}

async fn discard_dry_run_previews_and_changes_nothing(f: &Fx) {
    let s = &f.ops.store;
    for i in 0..3 {
        let mut job = callops::queue::Job::new(1, Stage::Analyze, Some(i), serde_json::json!({}));
        job.attempts = 3;
        s.insert_dead_job(&callops::store::DeadJobInsert::from_job(&job, "x"))
            .await
            .unwrap();
    }
    let sel = Selection::Matching(DeadJobFilter::default());
    let o = f.ops.dlq_discard(&sel, true).await.unwrap();
    assert_eq!((o.matched, o.changed, o.dry_run), (3, 0, true));
    assert_eq!(
        s.count_dead_jobs(&DeadJobFilter::default()).await.unwrap(),
        3
    );
    let o = f.ops.dlq_discard(&sel, false).await.unwrap();
    assert_eq!(o.changed, 3);
    assert_eq!(
        s.count_dead_jobs(&DeadJobFilter::default()).await.unwrap(),
        0
    );
    assert_eq!(s.audit_log(5).await.unwrap()[0].action, "dlq.discard");
}

async fn qc_on_a_finished_call_enqueues_analysis_and_audits(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("qc").await.unwrap().id;
    let call = review_call(s, b, "q1").await;
    let err = f.ops.call_qc(call, false).await.unwrap_err();
    assert!(err.to_string().contains("finished calls"), "{err}");
    sqlx::query("UPDATE calls SET stage = 'notify', state = 'done' WHERE id = $1")
        .bind(call)
        .execute(s.pool())
        .await
        .unwrap();
    f.ops.call_qc(call, false).await.unwrap();
    let c = s.call(call).await.unwrap();
    assert_eq!((c.stage, c.state), (Stage::Analyze, CallState::Pending));
    let stats = f.ops.broker.queue_stats(&[b]).await.unwrap();
    assert_eq!(
        stats
            .iter()
            .find(|q| q.queue == Stage::Analyze.queue_for(b))
            .map(|q| q.depth),
        Some(1)
    );
    assert_eq!(s.audit_log(5).await.unwrap()[0].action, "call.qc");
}

async fn viewer_and_readonly_are_refused(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("v").await.unwrap().id;
    let call = review_call(s, b, "v1").await;
    let cust = customer(s, b, "Anna", false).await;
    let mut viewer = f.ops.clone();
    viewer.actor.role = Role::Viewer;
    let e = viewer.review_link(call, cust, false).await.unwrap_err();
    assert!(e.to_string().contains("needs the support role"), "{e}");
    let e = viewer
        .dlq_retry(&Selection::Ids(vec![1]), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs the admin role"), "{e}");
    let mut support = f.ops.clone();
    support.actor.role = Role::Support;
    assert!(support
        .dlq_discard(&Selection::Ids(vec![1]), false)
        .await
        .is_err());
    let mut ro = f.ops.clone();
    ro.readonly = true;
    let audited_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(s.pool())
        .await
        .unwrap();
    let e = ro.review_link(call, cust, false).await.unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(s.call(call).await.unwrap().state, CallState::Review);
    // Refusals are audited (who tried what, and why), except in read-only sessions,
    // which write nothing at all.
    let refusals: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT role, action, after FROM audit_log WHERE after LIKE 'refused:%' ORDER BY id",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    let seen: Vec<(&str, &str)> = refusals
        .iter()
        .map(|(r, a, _)| (r.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("viewer", "review.link"),
            ("viewer", "dlq.retry"),
            ("support", "dlq.discard")
        ],
        "{refusals:?}"
    );
    assert!(
        refusals[0].2.contains("needs the support role"),
        "{refusals:?}"
    );
    let audited_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(
        audited_after, audited_before,
        "the read-only refusal wrote nothing"
    );
}

async fn merge_moves_calls_and_leads_of_a_temporary_customer(f: &Fx) {
    let s = &f.ops.store;
    let b = s.ensure_business("m").await.unwrap().id;
    let temp = customer(s, b, "Unknown caller", true).await;
    let real = customer(s, b, "Anna Schreiber", false).await;
    let call = review_call(s, b, "m1").await;
    sqlx::query("UPDATE calls SET customer_id = $1 WHERE id = $2")
        .bind(temp)
        .bind(call)
        .execute(s.pool())
        .await
        .unwrap();
    let (lead, _) = s
        .upsert_lead_for_call(
            b,
            call,
            &format!("customer:{temp}"),
            None,
            Some(temp),
            "call",
        )
        .await
        .unwrap();
    let e = f.ops.review_merge(real, temp, false).await.unwrap_err();
    assert!(e.to_string().contains("not temporary"), "{e}");
    f.ops.review_merge(temp, real, false).await.unwrap();
    assert_eq!(s.call(call).await.unwrap().customer_id, Some(real));
    let l: Option<i64> = sqlx::query_scalar("SELECT customer_id FROM leads WHERE id = $1")
        .bind(lead.id)
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(l, Some(real));
    assert_eq!(s.customer(temp).await.unwrap().merged_into, Some(real));
    let again = f.ops.review_merge(temp, real, false).await.unwrap_err();
    assert!(matches!(again, OpsError::Conflict(_)), "{again:?}");
}

/// On Postgres the boundary is real: a viewer's own connection cannot change calls or jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_viewer_is_refused_by_the_database_itself() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    let user = common::unique("callops_t_viewer");
    sqlx::query(&format!("CREATE ROLE {user} LOGIN IN ROLE callops_viewer"))
        .execute(db.store.pool())
        .await
        .unwrap();
    let viewer_url = db.url.replacen("postgres@", &format!("{user}@"), 1);
    assert_ne!(viewer_url, db.url, "test URL must name the postgres user");
    let viewer = Store::connect(&viewer_url, 1).await.unwrap();
    let actor = callops::ops::detect_actor(&viewer, Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        actor.role,
        Role::Viewer,
        "the database decides the role, not config"
    );
    let b = db.store.ensure_business("x").await.unwrap().id;
    assert_eq!(
        viewer.businesses().await.unwrap().len(),
        1,
        "a viewer can read"
    );
    for sql in [
        "UPDATE calls SET state = 'done'".to_string(),
        format!("INSERT INTO jobs (job_id, queue, business_id, stage, payload, first_enqueued_at, enqueued_at, run_at) VALUES ('x', 'sync.{b}', {b}, 'sync', '{{}}', 0, 0, 0)"),
        "DELETE FROM dead_jobs".to_string(),
    ] {
        let e = sqlx::query(&sql).execute(viewer.pool()).await.unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{sql}: {e}");
    }
    viewer.close().await;
    let _ = sqlx::query(&format!("DROP ROLE {user}"))
        .execute(db.store.pool())
        .await;
}
