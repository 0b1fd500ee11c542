//! `callops roles grant LOGIN viewer|support|admin` and `callops roles list`: onboarding a
//! person on Postgres is one command, run by the database owner after `callops migrate`.

use crate::config::Config;
use crate::store::roles::DbRole;
use crate::store::{Dialect, Store};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum RolesCmd {
    /// Give LOGIN exactly this role (created as a login role when missing; other callops
    /// roles are revoked, so this also downgrades)
    Grant {
        login: String,
        #[arg(value_parser = ["viewer", "support", "admin"])]
        role: String,
    },
    /// Logins and their callops role
    List {
        #[arg(long)]
        json: bool,
    },
    /// The role of the connection configured here (who am I, as the database sees it)
    Whoami,
}

pub async fn run(config: &Config, cmd: RolesCmd) -> anyhow::Result<()> {
    // Only the catalog is touched: no schema check needed, and `grant` works right after
    // `migrate` created the roles.
    let store = Store::connect(&config.database.url, 1).await?;
    if store.dialect() != Dialect::Postgres {
        anyhow::bail!(
            "roles are Postgres database roles; {} is SQLite, where console.role (config) decides",
            crate::store::redact_url(store.url())
        );
    }
    match cmd {
        RolesCmd::Grant { login, role } => {
            let role = DbRole::parse(&role).expect("clap checked the role");
            let created = store.grant_login(&login, role).await?;
            println!(
                "{login} is now {} ({}){}",
                role.db_name(),
                crate::store::redact_url(store.url()),
                if created {
                    format!(
                        "; login role created without a password: set one with ALTER ROLE \"{login}\" PASSWORD '…' (or \\password in psql)"
                    )
                } else {
                    String::new()
                }
            );
        }
        RolesCmd::List { json } => {
            let rows = store.login_roles().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no logins have a callops role yet: callops roles grant LOGIN viewer|support|admin");
            } else {
                for r in rows {
                    println!(
                        "{:<32} {:<8}{}",
                        r.login,
                        r.role,
                        if r.can_login { "" } else { " (cannot log in)" }
                    );
                }
            }
        }
        RolesCmd::Whoami => {
            let r = store.connection_role().await?;
            let role = r.role.map_or("none", |r| r.db_name());
            println!("{} → {role} ({})", r.user, r.why);
        }
    }
    store.close().await;
    Ok(())
}
