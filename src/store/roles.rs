//! Database roles on Postgres: which callops role a connection has (read from the
//! database, not from config), and granting one to a login (`callops roles grant`).

use super::{Ctx, Dialect, Result, Store, StoreError};

/// The console role a connection has, as the database sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DbRole {
    Viewer,
    Support,
    Admin,
}

impl DbRole {
    pub fn db_name(self) -> &'static str {
        match self {
            DbRole::Viewer => "callops_viewer",
            DbRole::Support => "callops_support",
            DbRole::Admin => "callops_admin",
        }
    }

    pub fn parse(s: &str) -> Option<DbRole> {
        match s.trim() {
            "viewer" => Some(DbRole::Viewer),
            "support" => Some(DbRole::Support),
            "admin" => Some(DbRole::Admin),
            _ => None,
        }
    }
}

/// Who this connection is and what the database lets it do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRole {
    pub user: String,
    /// `None`: a login with no callops role at all (it can read nothing).
    pub role: Option<DbRole>,
    /// Why: "superuser", "owner of the schema's tables", "member of callops_support", …
    pub why: String,
}

/// One login and the callops role it has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoginRole {
    pub login: String,
    pub role: String,
    pub can_login: bool,
}

impl Store {
    /// The role from the connection's role membership. The superuser and the owner of the
    /// `calls` table (whoever ran `callops migrate`) are admin: they can do everything
    /// anyway, and classing them as viewers hid every action from the person who set the
    /// deployment up.
    pub async fn connection_role(&self) -> Result<ConnectionRole> {
        if self.dialect != Dialect::Postgres {
            return Err(StoreError::Conflict(
                "database roles exist on Postgres only; on SQLite console.role decides".into(),
            ));
        }
        let row: (String, bool, bool, bool, bool, bool) = sqlx::query_as(
            "SELECT current_user::text, \
               COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false), \
               COALESCE((SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c \
                 WHERE c.oid = to_regclass('public.calls')), false), \
               EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'callops_admin') \
                 AND pg_has_role(current_user, 'callops_admin', 'MEMBER'), \
               EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'callops_support') \
                 AND pg_has_role(current_user, 'callops_support', 'MEMBER'), \
               EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'callops_viewer') \
                 AND pg_has_role(current_user, 'callops_viewer', 'MEMBER')",
        )
        .fetch_one(&self.pool)
        .await
        .ctx(|| "reading this connection's database role".into())?;
        let (user, superuser, owner, admin, support, viewer) = row;
        let (role, why) = if superuser {
            (Some(DbRole::Admin), "superuser".to_string())
        } else if owner {
            (
                Some(DbRole::Admin),
                "owner of the callops tables".to_string(),
            )
        } else if admin {
            (Some(DbRole::Admin), "member of callops_admin".to_string())
        } else if support {
            (
                Some(DbRole::Support),
                "member of callops_support".to_string(),
            )
        } else if viewer {
            (Some(DbRole::Viewer), "member of callops_viewer".to_string())
        } else {
            (None, "member of no callops role".to_string())
        };
        Ok(ConnectionRole { user, role, why })
    }

    /// Make `login` a member of exactly one callops role (the others are revoked, so a
    /// downgrade is the same command). The login is created (LOGIN, no password) when it
    /// does not exist; set its password with `ALTER ROLE … PASSWORD` or `\password`.
    /// Returns true when the login was created. Run as the owner or a role admin.
    pub async fn grant_login(&self, login: &str, role: DbRole) -> Result<bool> {
        if login.is_empty()
            || login.len() > 63
            || !login
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
        {
            return Err(StoreError::Conflict(format!(
                "login {:?}: use 1-63 letters, digits, _ - . or @",
                crate::redact::redact_text(login)
            )));
        }
        if login.starts_with("callops_") && crate::store::migrate::DB_ROLES.contains(&login) {
            return Err(StoreError::Conflict(format!(
                "{login} is one of the callops roles, not a login"
            )));
        }
        // Identifiers cannot be bound as parameters: let Postgres quote it.
        let quoted: String = sqlx::query_scalar("SELECT quote_ident($1)")
            .bind(login)
            .fetch_one(&self.pool)
            .await
            .ctx(|| "quoting the login name".into())?;
        let mut tx = self.begin_write().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(login)
                .fetch_one(&mut *tx)
                .await
                .ctx(|| format!("looking up login {login}"))?;
        if !exists {
            sqlx::query(&format!("CREATE ROLE {quoted} LOGIN"))
                .execute(&mut *tx)
                .await
                .ctx(|| format!("creating login {login} (needs CREATEROLE)"))?;
        }
        for other in crate::store::migrate::DB_ROLES {
            if other != role.db_name() {
                sqlx::query(&format!("REVOKE {other} FROM {quoted}"))
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("revoking {other} from {login}"))?;
            }
        }
        sqlx::query(&format!("GRANT {} TO {quoted}", role.db_name()))
            .execute(&mut *tx)
            .await
            .ctx(|| {
                format!(
                    "granting {} to {login} (run `callops migrate` first, as the owner)",
                    role.db_name()
                )
            })?;
        tx.commit()
            .await
            .ctx(|| format!("committing the grant to {login}"))?;
        Ok(!exists)
    }

    /// Logins that are members of a callops role, highest role per login.
    pub async fn login_roles(&self) -> Result<Vec<LoginRole>> {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT m.rolname::text, g.rolname::text, m.rolcanlogin \
             FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid \
             JOIN pg_roles m ON m.oid = a.member \
             WHERE g.rolname IN ('callops_viewer', 'callops_support', 'callops_admin') \
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| "listing members of the callops roles".into())?;
        Ok(rows
            .into_iter()
            .map(|(login, role, can_login)| LoginRole {
                login,
                role: role.trim_start_matches("callops_").to_string(),
                can_login,
            })
            .collect())
    }
}
