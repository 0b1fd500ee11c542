//! Database roles end to end, on Postgres, through the real binary: the owner sets up a
//! new database with `callops migrate` and `callops roles grant`; then people work with
//! their own logins. A viewer reads every headless mirror and is refused every change —
//! by the app, and by Postgres itself when the app is bypassed; support links a review
//! item; admin retries the DLQ; a table a later migration adds is covered by the grants;
//! a database behind the binary is refused with "run `callops migrate`" and never
//! migrated by a login; `--readonly` sessions cannot write.

mod common;

use callops::store::Store;
use serde_json::Value;
use std::process::Command;

struct Bin {
    data_dir: tempfile::TempDir,
}

impl Bin {
    fn new() -> Bin {
        Bin {
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `callops ARGS` with the database URL in the environment (as the README advises).
    fn run(&self, url: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_callops"))
            .args(["--data-dir", &self.data_dir.path().display().to_string()])
            .args(args)
            .env("CALLOPS_DATABASE_URL", url)
            .env_remove("CALLOPS_BROKER")
            .env_remove("CALLOPS_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, url: &str, args: &[&str]) -> String {
        let (ok, out, err) = self.run(url, args);
        assert!(ok, "callops {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    fn refused(&self, url: &str, args: &[&str]) -> String {
        let (ok, out, err) = self.run(url, args);
        assert!(!ok, "callops {args:?} should have failed:\n{out}");
        err
    }
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn each_role_works_with_its_own_login_through_the_binary() {
    let Some(admin_url) = common::postgres_url() else {
        return;
    };
    let viewer = common::unique("co_viewer");
    let support = common::unique("co_support");
    let admin = common::unique("co_admin");
    let _logins = common::Logins {
        admin_url: admin_url.clone(),
        names: vec![viewer.clone(), support.clone(), admin.clone()],
    };
    let db = common::PgDb::create_empty(&admin_url).await;
    let bin = Bin::new();
    let (v_url, s_url, a_url) = (db.url_as(&viewer), db.url_as(&support), db.url_as(&admin));

    // A login cannot run DDL: before `migrate`, opening refuses and says what to do.
    bin.ok(&db.url, &["roles", "grant", &viewer, "viewer"]);
    let err = bin.refused(&v_url, &["overview", "--json"]);
    assert!(
        err.contains("run `callops migrate` as the database owner"),
        "{err}"
    );
    let tables = scalar(
        &db.store,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(tables, 0, "opening as a login created tables");

    // The owner sets the database up: migrate, then one grant per person.
    let out = bin.ok(&db.url, &["migrate"]);
    assert!(out.contains("applied migrations"), "{out}");
    for (login, role) in [
        (&viewer, "viewer"),
        (&support, "support"),
        (&admin, "admin"),
    ] {
        let out = bin.ok(&db.url, &["roles", "grant", login, role]);
        assert!(out.contains(&format!("callops_{role}")), "{out}");
    }
    let out = bin.ok(&db.url, &["roles", "list"]);
    assert!(out.contains(&viewer) && out.contains(&admin), "{out}");
    let who = bin.ok(&db.url, &["roles", "whoami"]);
    assert!(who.contains("callops_admin"), "the owner is admin: {who}");
    for (url, role) in [(&v_url, "viewer"), (&s_url, "support"), (&a_url, "admin")] {
        let who = bin.ok(url, &["roles", "whoami"]);
        assert!(who.contains(&format!("callops_{role}")), "{who}");
    }
    callops::console::demo_data::seed_demo_data(&db.store)
        .await
        .unwrap();
    let review_call = scalar(
        &db.store,
        "SELECT min(id) FROM calls WHERE state = 'review'",
    )
    .await;
    let customer = scalar(
        &db.store,
        &format!(
            "SELECT min(id) FROM customers WHERE merged_into IS NULL AND business_id = \
             (SELECT business_id FROM calls WHERE id = {review_call})"
        ),
    )
    .await;
    let dead = scalar(
        &db.store,
        "SELECT min(id) FROM dead_jobs WHERE status = 'dead'",
    )
    .await;

    // Viewer: every headless mirror reads.
    let rows: Vec<Value> = serde_json::from_str(&bin.ok(&v_url, &["overview", "--json"])).unwrap();
    assert_eq!(rows.len(), 6);
    bin.ok(&v_url, &["calls", "stuck", "--json"]);
    bin.ok(&v_url, &["dlq", "list", "--json"]);
    bin.ok(&v_url, &["review", "list", "--json"]);
    bin.ok(&v_url, &["audit", "--json"]);
    bin.ok(
        &v_url,
        &["call", "show", &review_call.to_string(), "--json"],
    );
    // …and is refused every action (the app knows the role from the database)…
    let e = bin.refused(&v_url, &["dlq", "retry", &dead.to_string()]);
    assert!(e.contains("needs the admin role"), "{e}");
    let e = bin.refused(
        &v_url,
        &[
            "review",
            "link",
            &review_call.to_string(),
            &customer.to_string(),
        ],
    );
    assert!(e.contains("needs the support role"), "{e}");
    // …and by Postgres itself where the app does not check (ingest writes directly).
    let file = bin.data_dir.path().join("one.jsonl");
    std::fs::write(
        &file,
        r#"{"business":"Acme Dental","external_id":"viewer-1","audio_url":"sim://a/1"}"#,
    )
    .unwrap();
    let e = bin.refused(&v_url, &["ingest", &file.display().to_string()]);
    assert!(e.contains("permission denied"), "{e}");
    let as_viewer = Store::connect(&v_url, 1).await.unwrap();
    for sql in [
        "UPDATE calls SET state = 'done'",
        "DELETE FROM dead_jobs",
        "INSERT INTO audit_log (at, actor, role, action, target) VALUES (0, 'x', 'x', 'x', 'x')",
    ] {
        let e = sqlx::query(sql)
            .execute(as_viewer.pool())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{sql}: {e}");
    }

    // Support links the review item (and cannot touch the DLQ).
    let out = bin.ok(
        &s_url,
        &[
            "review",
            "link",
            &review_call.to_string(),
            &customer.to_string(),
            "--json",
        ],
    );
    assert!(out.contains(&customer.to_string()), "{out}");
    let linked = scalar(
        &db.store,
        &format!("SELECT customer_id FROM calls WHERE id = {review_call}"),
    )
    .await;
    assert_eq!(linked, customer);
    let audited = scalar(
        &db.store,
        &format!("SELECT count(*) FROM audit_log WHERE actor = '{support}' AND role = 'support'"),
    )
    .await;
    assert_eq!(audited, 1, "the audit row names the support login");
    let e = bin.refused(&s_url, &["dlq", "retry", &dead.to_string()]);
    assert!(e.contains("needs the admin role"), "{e}");
    let as_support = Store::connect(&s_url, 1).await.unwrap();
    let e = sqlx::query("DELETE FROM dead_jobs")
        .execute(as_support.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("permission denied"), "{e}");

    // Admin retries the dead job.
    bin.ok(&a_url, &["dlq", "retry", &dead.to_string(), "--json"]);
    let status: String = sqlx::query_scalar("SELECT status FROM dead_jobs WHERE id = $1")
        .bind(dead)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "retried");

    // A table a later migration adds (created by the owner, after the grants): covered by
    // the default privileges — readable by all, writable by admin only.
    sqlx::raw_sql("CREATE TABLE later_table (id BIGSERIAL PRIMARY KEY, note TEXT)")
        .execute(db.store.pool())
        .await
        .unwrap();
    let n = scalar(&as_viewer, "SELECT count(*) FROM later_table").await;
    assert_eq!(n, 0);
    let e = sqlx::query("INSERT INTO later_table (note) VALUES ('v')")
        .execute(as_viewer.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("permission denied"), "{e}");
    let as_admin = Store::connect(&a_url, 1).await.unwrap();
    sqlx::query("INSERT INTO later_table (note) VALUES ('a')")
        .execute(as_admin.pool())
        .await
        .unwrap();

    // The owner of the tables (not a superuser, no callops role) is admin.
    let owner = common::unique("co_owner");
    sqlx::raw_sql(&format!(
        "CREATE ROLE {owner} LOGIN; ALTER TABLE calls OWNER TO {owner}"
    ))
    .execute(db.store.pool())
    .await
    .unwrap();
    let who = bin.ok(&db.url_as(&owner), &["roles", "whoami"]);
    assert!(
        who.contains("callops_admin") && who.contains("owner"),
        "{who}"
    );
    sqlx::raw_sql(&format!(
        "ALTER TABLE calls OWNER TO postgres; DROP ROLE {owner}"
    ))
    .execute(db.store.pool())
    .await
    .unwrap();

    // --readonly: even the admin's sessions cannot write.
    let e = bin.refused(
        &a_url,
        &[
            "--set",
            "console.readonly=true",
            "dlq",
            "retry",
            &dead.to_string(),
        ],
    );
    assert!(e.contains("read-only"), "{e}");
    let ro = Store::open_readonly(&a_url, 1).await.unwrap();
    let e = sqlx::query("INSERT INTO later_table (note) VALUES ('ro')")
        .execute(ro.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only transaction"), "{e}");

    for s in [as_viewer, as_support, as_admin, ro] {
        s.close().await;
    }
}

/// The schema check never runs DDL: a database missing a migration is refused, with what
/// to do, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn a_database_behind_is_refused_not_migrated() {
    let Some(admin_url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&admin_url).await;
    sqlx::query("DELETE FROM callops_migrations WHERE version = (SELECT max(version) FROM callops_migrations)")
        .execute(db.store.pool())
        .await
        .unwrap();
    let e = Store::open_migrated(&db.url, 1)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("run `callops migrate` as the database owner") && e.contains("postgres"),
        "{e}"
    );
    let missing = db.store.missing_migrations().await.unwrap();
    assert_eq!(missing.len(), 1, "opening must not migrate: {missing:?}");
}
