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
        version: 7,
        name: "review_deferral",
        postgres: include_str!("../../migrations/postgres/0007_review_deferral.sql"),
        sqlite: include_str!("../../migrations/sqlite/0007_review_deferral.sql"),
    },
];

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
