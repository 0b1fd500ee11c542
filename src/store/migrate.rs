//! Embedded migrations, one directory per dialect. A tiny runner (instead of sqlx's
//! `migrate!` macro) keeps the build free of proc-macro database features.

use super::{Ctx, Dialect, Result, Store};
use sqlx::Row;

struct Migration {
    version: i64,
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        postgres: include_str!("../../migrations/postgres/0001_init.sql"),
        sqlite: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "review_candidates",
        postgres: include_str!("../../migrations/postgres/0002_review_candidates.sql"),
        sqlite: include_str!("../../migrations/sqlite/0002_review_candidates.sql"),
    },
    Migration {
        version: 3,
        name: "roles",
        postgres: include_str!("../../migrations/postgres/0003_roles.sql"),
        sqlite: include_str!("../../migrations/sqlite/0003_roles.sql"),
    },
    Migration {
        version: 4,
        name: "console_at_scale",
        postgres: include_str!("../../migrations/postgres/0004_console_at_scale.sql"),
        sqlite: include_str!("../../migrations/sqlite/0004_console_at_scale.sql"),
    },
    Migration {
        version: 5,
        name: "outbox_leases",
        postgres: include_str!("../../migrations/postgres/0005_outbox_leases.sql"),
        sqlite: include_str!("../../migrations/sqlite/0005_outbox_leases.sql"),
    },
    Migration {
        version: 6,
        name: "business_settings",
        postgres: include_str!("../../migrations/postgres/0006_business_settings.sql"),
        sqlite: include_str!("../../migrations/sqlite/0006_business_settings.sql"),
    },
    Migration {
        version: 7,
        name: "review_deferral",
        postgres: include_str!("../../migrations/postgres/0007_review_deferral.sql"),
        sqlite: include_str!("../../migrations/sqlite/0007_review_deferral.sql"),
    },
    Migration {
        version: 8,
        name: "customer_identity",
        postgres: include_str!("../../migrations/postgres/0008_customer_identity.sql"),
        sqlite: include_str!("../../migrations/sqlite/0008_customer_identity.sql"),
    },
    Migration {
        version: 9,
        name: "webhooks",
        postgres: include_str!("../../migrations/postgres/0009_webhooks.sql"),
        sqlite: include_str!("../../migrations/sqlite/0009_webhooks.sql"),
    },
    Migration {
        version: 11,
        name: "outbound_calls",
        postgres: include_str!("../../migrations/postgres/0011_outbound_calls.sql"),
        sqlite: include_str!("../../migrations/sqlite/0011_outbound_calls.sql"),
    },
    Migration {
        version: 13,
        name: "fair_claims",
        postgres: include_str!("../../migrations/postgres/0013_fair_claims.sql"),
        sqlite: include_str!("../../migrations/sqlite/0013_fair_claims.sql"),
    },
    Migration {
        version: 14,
        name: "compound_name_keys",
        postgres: include_str!("../../migrations/postgres/0014_compound_name_keys.sql"),
        sqlite: include_str!("../../migrations/sqlite/0014_compound_name_keys.sql"),
    },
    Migration {
        version: 15,
        name: "overview_counts",
        postgres: include_str!("../../migrations/postgres/0015_overview_counts.sql"),
        sqlite: include_str!("../../migrations/sqlite/0015_overview_counts.sql"),
    },
    Migration {
        version: 16,
        name: "name_key_counts",
        postgres: include_str!("../../migrations/postgres/0016_name_key_counts.sql"),
        sqlite: include_str!("../../migrations/sqlite/0016_name_key_counts.sql"),
    },
    Migration {
        version: 17,
        name: "name_key_cards",
        postgres: include_str!("../../migrations/postgres/0017_name_key_cards.sql"),
        sqlite: include_str!("../../migrations/sqlite/0017_name_key_cards.sql"),
    },
];

/// The database roles the console's roles map to (see `store::roles`).
pub const DB_ROLES: [&str; 3] = ["callops_viewer", "callops_support", "callops_admin"];

/// Tables support may write (review, QC, leads), beyond reading everything. A table a
/// later migration adds is readable by every role and writable by admin through the
/// default privileges; add it here when support must write it. Names that do not exist
/// (yet) are skipped.
const SUPPORT_WRITES: &[(&str, &str)] = &[
    ("calls", "INSERT, UPDATE"),
    ("customers", "INSERT, UPDATE"),
    ("leads", "INSERT, UPDATE"),
    ("call_events", "INSERT"),
    ("audit_log", "INSERT"),
    ("jobs", "INSERT"),
    ("outbox", "INSERT"),
    ("outbound_calls", "INSERT, UPDATE"),
    // Kept by the triggers on customer_name_keys, which run as the writer of the keys.
    ("customer_name_key_counts", "INSERT, UPDATE"),
    // Its name and phone copies are kept by a trigger on customers (migration 0017).
    ("customer_name_keys", "INSERT, UPDATE, DELETE"),
];

/// Grants for the three roles on everything in the schema, and default privileges so a
/// table or sequence created later by this owner is covered without another grant. Run
/// by `migrate` after every run: a migration that forgets its grants is still covered.
fn grants_sql() -> String {
    let mut sql = String::from(
        "DO $$
DECLARE r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['callops_viewer', 'callops_support', 'callops_admin'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database's migration created it at the same moment
        END;
    END LOOP;
END
$$;
GRANT USAGE ON SCHEMA public TO callops_viewer, callops_support, callops_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO callops_viewer, callops_support;
GRANT ALL ON ALL TABLES IN SCHEMA public TO callops_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO callops_support;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO callops_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO callops_viewer, callops_support;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO callops_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO callops_support;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO callops_admin;
DO $$
BEGIN
",
    );
    for (table, privs) in SUPPORT_WRITES {
        sql.push_str(&format!(
            "    IF to_regclass('public.{table}') IS NOT NULL THEN\n        GRANT {privs} ON {table} TO callops_support;\n    END IF;\n"
        ));
    }
    sql.push_str("END\n$$;\n");
    sql
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Arbitrary constant: serializes concurrent `migrate` runs on one Postgres database.
const PG_MIGRATION_LOCK: i64 = 0x0063_616c_6c6f_7073;

impl Store {
    /// Apply every migration not yet applied. Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| "acquiring a connection to migrate".into())?;
        if self.dialect == Dialect::Postgres {
            sqlx::query(&format!(
                "SELECT 1 FROM pg_advisory_lock({PG_MIGRATION_LOCK})"
            ))
            .execute(&mut *conn)
            .await
            .ctx(|| "taking the migration lock".into())?;
        }
        let result = async {
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS callops_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await
            .ctx(|| "creating callops_migrations".into())?;
            let rows = sqlx::query("SELECT version FROM callops_migrations")
                .fetch_all(&mut *conn)
                .await
                .ctx(|| "reading applied migrations".into())?;
            let applied: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
            let mut now_applied = Vec::new();
            for m in MIGRATIONS {
                if applied.contains(&m.version) {
                    continue;
                }
                let sql = match self.dialect {
                    Dialect::Postgres => m.postgres,
                    Dialect::Sqlite => m.sqlite,
                };
                let mut tx = sqlx::Connection::begin(&mut *conn)
                    .await
                    .ctx(|| format!("starting migration {} ({})", m.version, m.name))?;
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("applying migration {} ({})", m.version, m.name))?;
                sqlx::query("INSERT INTO callops_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(crate::now_ms())
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("recording migration {}", m.version))?;
                tx.commit()
                    .await
                    .ctx(|| format!("committing migration {}", m.version))?;
                now_applied.push(m.version);
            }
            if self.dialect == Dialect::Postgres {
                sqlx::raw_sql(&grants_sql())
                    .execute(&mut *conn)
                    .await
                    .ctx(|| "granting the callops roles on every table (and by default on later ones)".into())?;
            }
            Ok(now_applied)
        }
        .await;
        if self.dialect == Dialect::Postgres {
            let _ = sqlx::query(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                .execute(&mut *conn)
                .await;
        }
        result
    }
}

impl Store {
    /// Versions this build knows that the database has not applied (none = current).
    /// Reads only: any login with a callops role can run it.
    pub async fn missing_migrations(&self) -> Result<Vec<i64>> {
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM callops_migrations")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows.iter().map(|r| r.get::<i64, _>(0)).collect(),
                Err(e) if is_undefined_table(&e) => Vec::new(),
                Err(e) => return Err(e).ctx(|| {
                    "reading the schema version (table callops_migrations); a login needs one of \
                     the callops roles: `callops roles grant LOGIN viewer|support|admin`"
                        .into()
                }),
            };
        Ok(MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// Refuse a database whose schema is behind this build, without running any DDL.
    pub async fn check_schema(&self) -> Result<()> {
        let missing = self.missing_migrations().await?;
        if missing.is_empty() {
            return Ok(());
        }
        let user: String = match self.dialect {
            Dialect::Postgres => sqlx::query_scalar("SELECT current_user::text")
                .fetch_one(&self.pool)
                .await
                .unwrap_or_else(|_| "?".into()),
            Dialect::Sqlite => "the SQLite file's owner".into(),
        };
        let have = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !missing.contains(v))
            .max()
            .unwrap_or(0);
        Err(super::StoreError::SchemaBehind {
            have,
            want: latest_version(),
            user,
        })
    }
}

/// "relation does not exist" (Postgres 42P01) or SQLite's "no such table".
fn is_undefined_table(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(d) = e {
        if d.code().as_deref() == Some("42P01") {
            return true;
        }
    }
    e.to_string().contains("no such table")
}
