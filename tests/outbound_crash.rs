//! The real `callops worker` is `kill -9`ed after the voice provider accepted a call and
//! before the worker committed it (failpoint `outbound.after_dial`). A fresh worker resumes
//! the dial with the same idempotency key: every lead is called exactly once. SQLite and
//! Postgres (database broker); the provider is an HTTP server started here.

mod common;

use callops::domain::outbound::MatchKind;
use callops::store::outbound::{insert_outbound_in, NewOutbound, OutboundSettings};
use callops::store::Store;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn worker(url: &str, dir: &std::path::Path, failpoint: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callops"));
    cmd.args([
        "--database-url",
        url,
        "--data-dir",
        &dir.display().to_string(),
        "worker",
        "--concurrency",
        "2",
    ])
    .env_remove("CALLOPS_DATABASE_URL")
    .env("CALLOPS_BROKER", "database")
    .env("CALLOPS_BROKER_PREFIX", common::unique("obcrash"))
    .env("CALLOPS_OUTBOUND_LEASE_MS", "1500")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    match failpoint {
        Some(f) => cmd.env("CALLOPS_FAILPOINT", f),
        None => cmd.env_remove("CALLOPS_FAILPOINT"),
    };
    cmd.spawn().expect("starting callops worker")
}

/// Wait for `FAILPOINT name` on the worker's stderr.
fn wait_failpoint(child: &mut Child, name: &str) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = format!("FAILPOINT {name}");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the worker never reached failpoint {name}"));
}

async fn run(store: Store, url: String, dir: &std::path::Path) {
    let (server, calls) = common::voice::generic().await;
    let b = store.ensure_business("acme").await.unwrap();
    let mut s = OutboundSettings::off(b.id);
    s.auto_call = true;
    s.provider = "http".into();
    s.base_url = Some(server.url("/v1/calls"));
    s.status_path = Some("/v1/calls/{id}".into());
    store.save_outbound_settings(&s).await.unwrap();
    store
        .add_voice_agent(b.id, "Maya", "agent_maya", true)
        .await
        .unwrap();
    store
        .add_lead_mapping(b.id, MatchKind::Prefix, "spring", "Maya", "test")
        .await
        .unwrap();
    let phones = ["+4930100001", "+4930100002", "+4930100003"];
    for p in phones {
        let (lead_id,): (i64,) = sqlx::query_as(
            "INSERT INTO leads (business_id, phone, source, call_count, created_at, updated_at) \
             VALUES ($1, $2, 'call', 1, 0, 0) RETURNING id",
        )
        .bind(b.id)
        .bind(p)
        .fetch_one(store.pool())
        .await
        .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        insert_outbound_in(
            &mut tx,
            &NewOutbound {
                business_id: b.id,
                lead_id,
                origin_call_id: None,
                form: Some("spring-promo".into()),
                to_number: Some(p.into()),
                lead_name: None,
                requested_by: "pipeline".into(),
                due_at: 0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    // Killed right after the provider accepted the first call.
    let mut w1 = worker(&url, dir, Some("outbound.after_dial"));
    wait_failpoint(&mut w1, "outbound.after_dial");
    w1.kill().unwrap(); // SIGKILL
    w1.wait().unwrap();
    assert_eq!(calls.created(), 1, "the provider placed the first call");
    let dialing: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbound_calls WHERE status = 'dialing'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(dialing, 1, "the answer was never committed");

    // A fresh worker finishes: the interrupted dial is resumed with the same key.
    let mut w2 = worker(&url, dir, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbound_calls WHERE status IN ('pending', 'dialing') OR provider_call_id IS NULL",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} outbound calls still open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w2.kill().unwrap();
    w2.wait().unwrap();
    assert_eq!(calls.created(), 3, "each lead called once");
    let mut to = calls.to_numbers();
    to.sort();
    assert_eq!(to, phones.to_vec());
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT provider_call_id FROM outbound_calls ORDER BY provider_call_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(ids, vec!["call_1", "call_2", "call_3"]);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts, 4,
        "the interrupted dial was asked again, with its key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_after_dial_calls_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("ob.db").display());
    let store = Store::open_migrated(&url, 4).await.unwrap();
    run(store, url, dir.path()).await;
}

#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_after_dial_calls_once() {
    let Some(pg) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    run(db.store.clone(), db.url.clone(), dir.path()).await;
}
