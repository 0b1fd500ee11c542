//! Persistence over PostgreSQL or SQLite through sqlx's `Any` driver: one set of
//! runtime-checked queries (`$1` placeholders, epoch-ms BIGINT times, 0/1 flags) serves
//! both dialects; the few dialect-specific statements branch on `Dialect`.

pub mod agents;
pub mod audit;
pub mod business_settings;
pub mod businesses;
pub mod calls;
pub mod customers;
pub mod dead_jobs;
pub mod events;
pub mod group_commit;
pub mod leases;
pub mod migrate;
pub mod orphans;
pub mod outbound;
mod own_numbers;
pub mod read;
pub mod roles;
pub mod stage_commit;
mod stage_commit_batch;
mod start_batch;
pub mod throughput;
pub mod transcripts;
pub mod webhooks;
mod write_tx;

pub use calls::{Call, NewCall};
pub use dead_jobs::{DeadJob, DeadJobFilter, DeadJobInsert, DeadJobStatus};
pub use write_tx::{WritePermit, WriteTx};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    IllegalTransition(#[from] crate::domain::stage::IllegalTransition),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid database url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the database schema is at version {have} but this callops needs version {want}: run `callops migrate` as the database owner (connecting as {user})")]
    SchemaBehind { have: i64, want: i64, user: String },
}

/// Attach what we were doing to a sqlx error.
pub trait Ctx<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StoreError::Db {
            context: context(),
            source,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The URL scheme picks the dialect.
    pub fn from_url(url: &str) -> Result<Dialect> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else {
            Err(StoreError::BadUrl {
                url: redact_url(url),
                why: "expected a sqlite: or postgres:// URL (config key database.url, env CALLOPS_DATABASE_URL)".into(),
            })
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    url: String,
    /// Opened with `open_readonly`: the session itself refuses writes.
    readonly: bool,
    /// Finished minutes of throughput already read by the overview (see `read.rs`).
    throughput_cache: std::sync::Arc<std::sync::Mutex<read::MinuteCache>>,
    /// Renews every stage lease this process holds in batches (see `leases.rs`).
    lease_keeper: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<leases::LeaseKeeper>>>,
    /// Business rows the pipeline read in the last second (see `business_recent`).
    business_cache: businesses::RecentCache<businesses::Business>,
    /// Agents of a business read in the last second (see `agents_recent`).
    agents_cache: businesses::RecentCache<Vec<agents::Agent>>,
    /// Outbound settings read in the last second (see `outbound_settings_recent`).
    outbound_cache: businesses::RecentCache<outbound::OutboundSettings>,
    /// Numbers a business called out from, read in the last second (`own_numbers.rs`).
    outbound_numbers_cache: businesses::RecentCache<own_numbers::OutboundNumbers>,
    /// Stage starts and results written in batches under load (see `group_commit.rs`).
    lanes: std::sync::Arc<std::sync::OnceLock<group_commit::Lanes>>,
    /// SQLite's writers of this process take turns here (see `write_tx.rs`).
    write_gate: write_tx::WriteGate,
}

static DRIVERS: Once = Once::new();

/// Pool settings both connect paths share: SQLite pragmas, and read-only sessions.
fn pool_options(dialect: Dialect, max_connections: u32, readonly: bool) -> AnyPoolOptions {
    let mut opts = AnyPoolOptions::new().max_connections(max_connections.max(1));
    if dialect == Dialect::Sqlite {
        // A SQLite connection is a file handle in this process: nothing can close it under
        // us, and the liveness ping on every acquire was one more hand-off to the
        // connection's thread per statement (issue 14).
        opts = opts.test_before_acquire(false);
        opts = opts.after_connect(move |conn, _meta| {
            Box::pin(async move {
                // WAL lets readers (the console) run beside the single writer;
                // busy_timeout makes concurrent writers wait instead of failing.
                for pragma in [
                    "PRAGMA journal_mode=WAL",
                    "PRAGMA busy_timeout=10000",
                    "PRAGMA synchronous=NORMAL",
                    "PRAGMA foreign_keys=ON",
                ] {
                    sqlx::Executor::execute(&mut *conn, pragma).await?;
                }
                if readonly {
                    // Any INSERT/UPDATE/DELETE/DDL on this connection now fails.
                    sqlx::Executor::execute(&mut *conn, "PRAGMA query_only=ON").await?;
                }
                Ok(())
            })
        });
    } else if readonly {
        opts = opts.after_connect(|conn, _meta| {
            Box::pin(async move {
                // Postgres itself refuses every write on these sessions
                // ("cannot execute INSERT in a read-only transaction").
                sqlx::Executor::execute(
                    &mut *conn,
                    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                )
                .await?;
                Ok(())
            })
        });
    }
    opts
}

impl Store {
    /// Connect to `url` (`sqlite:path` creates the file and its directory; `postgres://…`).
    /// Runs no DDL: see `open_migrated` for what entry points should call.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        Store::connect_with(url, max_connections, false).await
    }

    async fn connect_with(url: &str, max_connections: u32, readonly: bool) -> Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = Dialect::from_url(url)?;
        let connect_url = match dialect {
            Dialect::Sqlite => sqlite_url(url)?,
            Dialect::Postgres => url.to_string(),
        };
        let opts = pool_options(dialect, max_connections, readonly)
            .acquire_timeout(Duration::from_secs(10));
        let pool = opts
            .connect(&connect_url)
            .await
            .ctx(|| format!("connecting to {}", redact_url(url)))?;
        Ok(Store {
            pool,
            dialect,
            url: url.to_string(),
            readonly,
            throughput_cache: Default::default(),
            lease_keeper: Default::default(),
            business_cache: Default::default(),
            agents_cache: Default::default(),
            outbound_cache: Default::default(),
            outbound_numbers_cache: Default::default(),
            lanes: Default::default(),
            write_gate: write_tx::WriteGate::new(dialect),
        })
    }

    /// A store whose pool connects on first use (the console opens during an outage and
    /// shows it): nothing is attempted here, and each acquire gives up after `acquire`.
    /// `readonly` sessions cannot write, as with `open_readonly`.
    pub fn connect_lazy(
        url: &str,
        max_connections: u32,
        acquire: Duration,
        readonly: bool,
    ) -> Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = Dialect::from_url(url)?;
        let connect_url = match dialect {
            Dialect::Sqlite => sqlite_url(url)?,
            Dialect::Postgres => url.to_string(),
        };
        let pool = pool_options(dialect, max_connections, readonly)
            .acquire_timeout(acquire)
            .connect_lazy(&connect_url)
            .ctx(|| format!("preparing a connection pool for {}", redact_url(url)))?;
        Ok(Store {
            pool,
            dialect,
            url: url.to_string(),
            readonly,
            throughput_cache: Default::default(),
            lease_keeper: Default::default(),
            business_cache: Default::default(),
            agents_cache: Default::default(),
            outbound_cache: Default::default(),
            outbound_numbers_cache: Default::default(),
            lanes: Default::default(),
            write_gate: write_tx::WriteGate::new(dialect),
        })
    }

    /// What every entry point calls: a store over a database whose schema is current.
    /// It never runs DDL on Postgres, so people can log in with roles that cannot create
    /// tables: it checks the schema version and refuses a database that is behind ("run
    /// `callops migrate` as the database owner"). The embedded SQLite default migrates
    /// itself (one file, one owner).
    pub async fn open_migrated(url: &str, max_connections: u32) -> Result<Store> {
        let store = Store::connect(url, max_connections).await?;
        match store.dialect {
            Dialect::Sqlite => {
                store.migrate().await?;
            }
            Dialect::Postgres => store.check_schema().await?,
        }
        Ok(store)
    }

    /// Connect and apply migrations on any backend: `callops migrate`, and tests and
    /// benches that create their own database (they are its owner).
    pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<Store> {
        let store = Store::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// `--readonly`: a store whose sessions cannot write at all (Postgres read-only
    /// transactions, SQLite `query_only`), over a schema that must already be current.
    pub async fn open_readonly(url: &str, max_connections: u32) -> Result<Store> {
        let store = Store::connect_with(url, max_connections, true).await?;
        store.check_schema().await?;
        Ok(store)
    }

    /// Opened with `open_readonly` (background writers such as dead-letter drainers
    /// must not run).
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Start a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes can fail with
    /// SQLITE_BUSY_SNAPSHOT when another writer committed in between, which busy_timeout
    /// does not retry.
    ///
    /// Cancel-safe: the begin runs to completion in its own task, so a caller cancelled
    /// while it begins (an aborted task, a `select!` that lost) never leaves the pooled
    /// connection inside an open transaction; the finished `Transaction` is dropped there,
    /// which rolls it back. sqlx's own begin is not: `begin_with` awaits again after the
    /// BEGIN ran, and a future dropped there left SQLite's write lock held by a pooled
    /// connection for good (`tests/cancel_safe_tx.rs`; sqlx issue #4385 is the Postgres
    /// side).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let permit = self.write_gate.enter().await?;
        let (pool, dialect) = (self.pool.clone(), self.dialect);
        // The permit travels with the begin: a caller cancelled meanwhile drops both in
        // that task, after the transaction is rolled back.
        let (tx, permit) = tokio::spawn(async move {
            let tx = match dialect {
                Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Dialect::Postgres => pool.begin().await,
            };
            (tx, permit)
        })
        .await
        .map_err(|e| StoreError::Db {
            context: "starting a write transaction".into(),
            source: sqlx::Error::Protocol(format!("the begin task failed: {e}")),
        })?;
        let tx = tx.ctx(|| "starting a write transaction".into())?;
        Ok(WriteTx::new(tx, permit))
    }

    /// This process's turn to write outside a transaction (one statement that writes, on
    /// SQLite; at once on Postgres). Hold it only for that statement.
    pub async fn write_turn(&self) -> Result<WritePermit> {
        self.write_gate.enter().await
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A trivial round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .ctx(|| "pinging the database".into())?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite:path`, `sqlite://path` or `sqlite:///abs` → a URL sqlx opens read-write-create,
/// after creating the parent directory.
fn sqlite_url(url: &str) -> Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl {
            url: url.into(),
            why: "no file path after sqlite:".into(),
        });
    }
    if path != ":memory:" {
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::BadUrl {
                    url: url.into(),
                    why: format!("cannot create directory {}: {e}", dir.display()),
                })?;
            }
        }
    }
    let query = query.unwrap_or("mode=rwc");
    Ok(format!("sqlite://{path}?{query}"))
}

/// Hide a password in a URL before it goes into an error or a log (the crate's one
/// redactor, see `crate::redact`).
pub fn redact_url(url: &str) -> String {
    crate::redact::redact_url(url)
}

/// Read helpers for `AnyRow` that name the column on failure.
pub fn col<T>(row: &AnyRow, name: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Comma-separated integer list for `IN (…)`: the Any driver cannot bind arrays, and
/// integers formatted by us cannot inject SQL.
pub fn id_list(ids: &[i64]) -> String {
    let mut s = String::with_capacity(ids.len() * 8);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_picks_dialect() {
        assert_eq!(
            Dialect::from_url("sqlite:data/x.db").unwrap(),
            Dialect::Sqlite
        );
        assert_eq!(
            Dialect::from_url("postgres://u@h/db").unwrap(),
            Dialect::Postgres
        );
        let e = Dialect::from_url("mysql://h/db").unwrap_err().to_string();
        assert!(
            e.contains("mysql://h/db") && e.contains("CALLOPS_DATABASE_URL"),
            "{e}"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:REDACTED@h/db"
        );
        assert_eq!(redact_url("sqlite:x.db"), "sqlite:x.db");
        assert_eq!(
            redact_url("postgres://u@h/db?password=secret"),
            "postgres://u@h/db?password=REDACTED"
        );
    }
}
