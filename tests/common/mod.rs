//! Test fixtures on the real services: a temporary SQLite file, a uniquely named Postgres
//! database (dropped after, even when the test panics), a unique RabbitMQ name prefix.
#![allow(dead_code)]

pub mod http_server;
pub mod proxy;
pub mod voice;

use callops::store::Store;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A store on a fresh SQLite file; keep the TempDir alive as long as the store.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    let store = Store::open_migrated(&url, 8)
        .await
        .expect("open sqlite store");
    (store, dir)
}

/// True under CI (`CI=true`, as `.ci/run` and every CI service set it): a suite whose
/// service URL is missing fails there instead of passing without running.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true") | Ok("1") | Ok("yes")
    )
}

/// The URL in `var`, or None (the test returns early; build.rs also marks such suites
/// ignored so the runner reports them as skipped). Panics when CI=true and it is missing.
pub fn service_url(var: &str, suite: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ if in_ci() => {
            panic!("CI=true but {var} is not set: the {suite} suite must run in CI, not be skipped")
        }
        _ => {
            eprintln!("skipped: {var} not set ({suite} suite not run)");
            None
        }
    }
}

pub fn postgres_url() -> Option<String> {
    service_url("CALLOPS_TEST_POSTGRES_URL", "Postgres")
}

pub fn amqp_url() -> Option<String> {
    service_url("CALLOPS_TEST_AMQP_URL", "RabbitMQ")
}

pub fn mysql_url() -> Option<String> {
    service_url("CALLOPS_TEST_MYSQL_URL", "MySQL/MariaDB")
}

/// A uniquely named MySQL/MariaDB database (a business's source database in tests),
/// dropped when this guard drops.
pub struct MyDb {
    pub pool: sqlx::AnyPool,
    pub url: String,
    admin_url: String,
    name: String,
}

impl MyDb {
    pub async fn create(admin_url: &str) -> MyDb {
        sqlx::any::install_default_drivers();
        let name = unique("callops_test");
        let admin = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await
            .expect("connect to CALLOPS_TEST_MYSQL_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = with_db(admin_url, &name);
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect test database");
        MyDb {
            pool,
            url,
            admin_url: admin_url.to_string(),
            name,
        }
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let (admin_url, name, pool) =
            (self.admin_url.clone(), self.name.clone(), self.pool.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), pool.close()).await;
                if let Ok(admin) = sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url)
                    .await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A uniquely named Postgres database, dropped when this guard drops.
pub struct PgDb {
    pub store: Store,
    pub url: String,
    admin_url: String,
    name: String,
}

pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl PgDb {
    /// A fresh database with no schema (the test runs `callops migrate` itself).
    pub async fn create_empty(admin_url: &str) -> PgDb {
        let name = unique("callops_test");
        let admin = Store::connect(admin_url, 1)
            .await
            .expect("connect to CALLOPS_TEST_POSTGRES_URL");
        sweep_stale(&admin).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        let url = with_db(admin_url, &name);
        let store = Store::connect(&url, 4)
            .await
            .expect("connect test database");
        PgDb {
            store,
            url,
            admin_url: admin_url.to_string(),
            name,
        }
    }

    /// This database's URL as another login (the test URL names the `postgres` user or
    /// none; the login needs no password under trust authentication).
    pub fn url_as(&self, login: &str) -> String {
        let u = url::Url::parse(&self.url).expect("test URL parses");
        let mut u = u.clone();
        u.set_username(login).expect("URL takes a user");
        let _ = u.set_password(None);
        u.to_string()
    }

    pub async fn create(admin_url: &str) -> PgDb {
        let name = unique("callops_test");
        let admin = Store::connect(admin_url, 1)
            .await
            .expect("connect to CALLOPS_TEST_POSTGRES_URL");
        sweep_stale(&admin).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        let url = with_db(admin_url, &name);
        // The test is the database's owner: it migrates (entry points never run DDL).
        let store = Store::connect_and_migrate(&url, 8)
            .await
            .expect("migrate test database");
        PgDb {
            store,
            url,
            admin_url: admin_url.to_string(),
            name,
        }
    }
}

/// Drop test databases left by test processes that no longer run (killed runs).
async fn sweep_stale(admin: &Store) {
    let Ok(rows) =
        sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'callops_test_%'")
            .fetch_all(admin.pool())
            .await
    else {
        return;
    };
    for r in rows {
        let name: String = sqlx::Row::get(&r, 0);
        let pid: Option<u32> = name.split('_').nth(2).and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
            }
        }
    }
}

/// Login roles made by a test, dropped after its database (roles are cluster-wide).
pub struct Logins {
    pub admin_url: String,
    pub names: Vec<String>,
}

impl Drop for Logins {
    fn drop(&mut self) {
        let (admin_url, names) = (self.admin_url.clone(), self.names.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = Store::connect(&admin_url, 1).await {
                    for n in names {
                        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS \"{n}\""))
                            .execute(admin.pool())
                            .await;
                    }
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin_url, name, store) = (
            self.admin_url.clone(),
            self.name.clone(),
            self.store.clone(),
        );
        // Our own runtime on a plain thread: Drop may run inside (or after) the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // Bounded: a connection still checked out by a task of the test's runtime
                // (blocked on this join) would never come back. FORCE below ends it anyway.
                let _ = tokio::time::timeout(Duration::from_secs(2), store.close()).await;
                if let Ok(admin) = Store::connect(&admin_url, 1).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(admin.pool())
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// One test per store for each async fn named: `sqlite::name` on a fresh SQLite file,
/// `postgres::name` on a database of its own (each fn takes the `Store`).
#[allow(unused_macros)]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::common::sqlite_store().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = crate::common::postgres_url() else { return };
                    let db = crate::common::PgDb::create(&url).await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
    };
}
