//! `callops agents voice …`, `callops mappings …`, `callops outbound …`: AI voice agents,
//! lead form → agent mappings, a business's outbound settings, and the headless mirrors of
//! the console's outbound view and actions (`--json` for scripts).

use crate::config::Config;
use crate::domain::outbound::MatchKind;
use crate::store::Store;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AgentsCmd {
    /// AI voice agents that place outbound calls
    Voice {
        #[command(subcommand)]
        cmd: VoiceCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum VoiceCmd {
    /// Add a voice agent to a business
    Add {
        business: String,
        name: String,
        /// The provider's agent id (Retell agent_id, …)
        #[arg(long)]
        agent_id: String,
        #[arg(long)]
        inactive: bool,
    },
    /// Change an agent's provider id or active flag
    Set {
        business: String,
        name: String,
        #[arg(long)]
        agent_id: Option<String>,
        #[arg(long)]
        active: Option<bool>,
    },
    List {
        #[arg(long)]
        business: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MappingsCmd {
    /// Map a lead form/source/campaign to a voice agent
    Add {
        business: String,
        /// The form name (exact), its beginning (prefix) or a word it contains (keyword)
        #[arg(long)]
        form: String,
        #[arg(long)]
        agent: String,
        #[arg(long = "match", default_value = "exact", value_parser = ["exact", "prefix", "keyword"])]
        match_kind: String,
    },
    List {
        #[arg(long)]
        business: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboundCmd {
    /// Show or change a business's outbound settings
    Config {
        business: String,
        #[command(flatten)]
        args: Box<ConfigArgs>,
    },
    /// Outbound calls, newest first, with status and reason
    List {
        #[arg(long)]
        business: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Call a lead now (support, admin); --dry-run says what would happen
    Call {
        #[arg(long)]
        lead: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Call every unmapped lead of a business again (admin); without --yes only the count
    CallUnmapped {
        business: String,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// One dispatcher pass now (what a worker does every second)
    Dispatch {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug, Default)]
pub struct ConfigArgs {
    /// on or off
    #[arg(long)]
    auto_call: Option<String>,
    /// simulated, retell or http
    #[arg(long)]
    provider: Option<String>,
    /// retell: API root; http: the create-call URL
    #[arg(long)]
    url: Option<String>,
    /// env:NAME or file:/path
    #[arg(long)]
    key: Option<String>,
    /// http: "Header-Name: value with {key}"
    #[arg(long)]
    auth_header: Option<String>,
    /// http: JSON body with {{to}} {{from}} {{agent_id}} {{name}} {{form}} {{lead_id}} {{idempotency_key}}
    #[arg(long)]
    template: Option<String>,
    /// http: status path, {id} = the provider's call id
    #[arg(long)]
    status_path: Option<String>,
    /// The number calls come from (E.164)
    #[arg(long)]
    from: Option<String>,
    /// IANA time zone of the business hours
    #[arg(long)]
    time_zone: Option<String>,
    /// e.g. "mon-fri 09:00-18:00; sat 10:00-14:00" ("" = always)
    #[arg(long)]
    hours: Option<String>,
    /// Calls per hour at most (0 = unlimited)
    #[arg(long)]
    rate_per_hour: Option<i64>,
    #[arg(long)]
    json: bool,
}

async fn business_id(store: &Store, name: &str) -> anyhow::Result<i64> {
    Ok(store
        .business_by_name(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no business named {name:?} (callops business list)"))?
        .id)
}

async fn maybe_business(store: &Store, name: &Option<String>) -> anyhow::Result<Option<i64>> {
    match name {
        Some(n) => Ok(Some(business_id(store, n).await?)),
        None => Ok(None),
    }
}

fn out<T: serde::Serialize>(
    json: bool,
    v: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

pub async fn agents(config: &Config, cmd: AgentsCmd) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, 2).await?;
    let AgentsCmd::Voice { cmd } = cmd;
    match cmd {
        VoiceCmd::Add {
            business,
            name,
            agent_id,
            inactive,
        } => {
            let bid = business_id(&store, &business).await?;
            let a = store
                .add_voice_agent(bid, &name, &agent_id, !inactive)
                .await?;
            println!(
                "voice agent {:?} (#{}) of {business}: provider agent {}, {}",
                a.name,
                a.id,
                a.provider_agent_id,
                if a.active { "active" } else { "inactive" }
            );
        }
        VoiceCmd::Set {
            business,
            name,
            agent_id,
            active,
        } => {
            let bid = business_id(&store, &business).await?;
            let a = store
                .set_voice_agent(bid, &name, agent_id.as_deref(), active)
                .await?;
            println!(
                "voice agent {:?} (#{}) of {business}: provider agent {}, {}",
                a.name,
                a.id,
                a.provider_agent_id,
                if a.active { "active" } else { "inactive" }
            );
        }
        VoiceCmd::List { business, json } => {
            let bid = maybe_business(&store, &business).await?;
            let agents = store.voice_agents(bid).await?;
            out(json, &agents, || {
                agents
                    .iter()
                    .map(|a| {
                        format!(
                            "#{:<4} business {:<4} {:<20} {:<24} {}",
                            a.id,
                            a.business_id,
                            a.name,
                            a.provider_agent_id,
                            if a.active { "active" } else { "inactive" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    store.close().await;
    Ok(())
}

pub async fn mappings(config: &Config, cmd: MappingsCmd) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, 2).await?;
    match cmd {
        MappingsCmd::Add {
            business,
            form,
            agent,
            match_kind,
        } => {
            let bid = business_id(&store, &business).await?;
            let kind = MatchKind::parse(&match_kind).map_err(|e| anyhow::anyhow!(e))?;
            let id = store
                .add_lead_mapping(
                    bid,
                    kind,
                    &form,
                    &agent,
                    &std::env::var("USER").unwrap_or_else(|_| "cli".into()),
                )
                .await?;
            let unmapped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbound_calls WHERE business_id = $1 AND status = 'unmapped'")
                .bind(bid)
                .fetch_one(store.pool())
                .await?;
            println!("mapping #{id}: {match_kind} {form:?} → {agent}");
            if unmapped > 0 {
                println!("{unmapped} unmapped leads of {business} wait: callops outbound call-unmapped {business:?} --yes");
            }
        }
        MappingsCmd::List { business, json } => {
            let bid = maybe_business(&store, &business).await?;
            let maps = store.lead_mappings(bid).await?;
            out(json, &maps, || {
                maps.iter()
                    .map(|m| {
                        format!(
                            "#{:<4} business {:<4} {:<8} {:<30} → {}",
                            m.id,
                            m.business_id,
                            m.match_kind,
                            format!("{:?}", m.pattern),
                            m.voice_agent
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    store.close().await;
    Ok(())
}

pub async fn outbound(config: &Config, cmd: OutboundCmd) -> anyhow::Result<()> {
    match cmd {
        OutboundCmd::Config { business, args } => {
            let ConfigArgs {
                auto_call,
                provider,
                url,
                key,
                auth_header,
                template,
                status_path,
                from,
                time_zone,
                hours,
                rate_per_hour,
                json,
            } = *args;
            let store = Store::open_migrated(&config.database.url, 2).await?;
            let bid = business_id(&store, &business).await?;
            let mut s = store.outbound_settings(bid).await?;
            let opt = |v: Option<String>, cur: &mut Option<String>| {
                if let Some(v) = v {
                    *cur = (!v.trim().is_empty()).then(|| v.trim().to_string());
                }
            };
            if let Some(a) = auto_call {
                s.auto_call = match a.as_str() {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    other => anyhow::bail!("--auto-call {other:?}: expected on or off"),
                };
            }
            if let Some(p) = provider {
                anyhow::ensure!(
                    ["simulated", "retell", "http"].contains(&p.as_str()),
                    "--provider {p:?}: expected simulated, retell or http"
                );
                s.provider = p;
            }
            opt(url, &mut s.base_url);
            opt(key, &mut s.key_ref);
            opt(auth_header, &mut s.auth_header);
            opt(template, &mut s.body_template);
            opt(status_path, &mut s.status_path);
            opt(from, &mut s.from_number);
            if let Some(tz) = time_zone {
                crate::domain::hours::parse_tz(&tz)
                    .map_err(|e| anyhow::anyhow!("--time-zone: {e}"))?;
                s.time_zone = tz;
            }
            if let Some(h) = hours {
                crate::domain::hours::BusinessHours::parse(&h)
                    .map_err(|e| anyhow::anyhow!("--hours: {e}"))?;
                s.hours = h;
            }
            if let Some(r) = rate_per_hour {
                anyhow::ensure!(r >= 0, "--rate-per-hour must be 0 (unlimited) or more");
                s.rate_per_hour = r;
            }
            // Refuse a provider this worker could not build (the key is only checked as a reference).
            if s.provider != "retell" || s.key_ref.is_some() {
                if let Err(e) = crate::pipeline::providers::voice::build_voice(
                    &s,
                    std::time::Duration::from_secs(5),
                ) {
                    if !e.contains("env:") && !e.contains("file:") {
                        anyhow::bail!("outbound settings of {business}: {e}");
                    }
                }
            }
            store.save_outbound_settings(&s).await?;
            let s = store.outbound_settings(bid).await?;
            out(json, &s, || {
                format!(
                    "{business}: auto-call {}, provider {}{}, from {}, hours {:?} ({}), rate {}/h{}",
                    if s.auto_call { "on" } else { "off" },
                    s.provider,
                    s.base_url.as_deref().map(|u| format!(" at {}", crate::redact::redact_url(u))).unwrap_or_default(),
                    s.from_number.as_deref().unwrap_or("-"),
                    if s.hours.is_empty() { "always" } else { &s.hours },
                    s.time_zone,
                    if s.rate_per_hour == 0 { "∞".to_string() } else { s.rate_per_hour.to_string() },
                    s.key_ref.as_deref().map(|k| format!(", key {k}")).unwrap_or_default()
                )
            })?;
            store.close().await;
        }
        OutboundCmd::List {
            business,
            limit,
            json,
        } => {
            let store = Store::open_migrated(&config.database.url, 2).await?;
            let bid = maybe_business(&store, &business).await?;
            let rows = store.outbound_calls(bid, limit).await?;
            out(json, &rows, || {
                rows.iter()
                    .map(|o| {
                        format!(
                            "#{:<5} business {:<3} lead {:<6} {:<16} {:<10} {}",
                            o.id,
                            o.business_id,
                            o.lead_id,
                            o.to_number.as_deref().unwrap_or("-"),
                            o.status,
                            crate::domain::text::sanitize(&o.reason)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            store.close().await;
        }
        OutboundCmd::Call {
            lead,
            dry_run,
            json,
        } => {
            let ops = super::headless::ops(config).await?;
            let r = ops.outbound_call_now(lead, dry_run).await?;
            out(json, &r, || {
                if dry_run {
                    format!("would {}", r.did)
                } else {
                    r.did.clone()
                }
            })?;
        }
        OutboundCmd::CallUnmapped {
            business,
            yes,
            json,
        } => {
            let ops = super::headless::ops(config).await?;
            let bid = business_id(&ops.store, &business).await?;
            let r = ops.outbound_call_unmapped(bid, !yes).await?;
            out(json, &r, || {
                if yes {
                    r.did.clone()
                } else {
                    format!("would {} (run again with --yes)", r.did)
                }
            })?;
        }
        OutboundCmd::Dispatch { json } => {
            let rt = crate::pipeline::Runtime::open(config).await?;
            let d = crate::pipeline::outbound::Dispatcher::new(
                rt.ctx.store.clone(),
                rt.ctx.broker.clone(),
            );
            let r = d.dispatch_once(crate::now_ms()).await?;
            out(json, &r, || format!("{r:?}"))?;
        }
    }
    Ok(())
}
