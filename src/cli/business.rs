//! `callops business add|set|show|list`: per-business pipeline settings. Credentials are
//! given as references (`--stt-key env:ACME_DEEPGRAM_KEY`, `--crm-secret file:/run/…`) and
//! shown as such; a value that is not a reference is refused and never echoed.

use crate::config::Config;
use crate::pipeline::providers::{CRM_KINDS, LLM_KINDS, STT_KINDS};
use crate::store::business_settings::BusinessPatch;
use crate::store::Store;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum BusinessCmd {
    /// Create a business with these settings
    Add {
        name: String,
        #[command(flatten)]
        settings: Box<SettingsArgs>,
    },
    /// Change some settings of a business (running workers pick the change up)
    Set {
        name: String,
        #[command(flatten)]
        settings: Box<SettingsArgs>,
    },
    /// A business's settings, credentials shown as their references
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Every business, its provider kinds and whether it is misconfigured
    List {
        #[arg(long)]
        json: bool,
    },
    /// Apply the config's [businesses."NAME"] sections to the database
    Apply,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SettingsArgs {
    /// STT kind: simulated, deepgram, whisper, whisper.cpp, openai, sarvam
    #[arg(long)]
    pub stt: Option<String>,
    #[arg(long)]
    pub stt_base_url: Option<String>,
    #[arg(long)]
    pub stt_model: Option<String>,
    /// env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub stt_key: Option<String>,
    /// LLM kind: simulated, ollama, openai
    #[arg(long)]
    pub llm: Option<String>,
    #[arg(long)]
    pub llm_base_url: Option<String>,
    #[arg(long)]
    pub llm_model: Option<String>,
    /// env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub llm_key: Option<String>,
    /// CRM kind: builtin, simulated, leadsquared
    #[arg(long)]
    pub crm: Option<String>,
    #[arg(long)]
    pub crm_base_url: Option<String>,
    /// env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub crm_key: Option<String>,
    /// env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub crm_secret: Option<String>,
    /// Country national numbers are parsed with: DE, IN, US, …
    #[arg(long)]
    pub region: Option<String>,
    /// Default transcription language (BCP-47: de, hi-IN)
    #[arg(long)]
    pub language: Option<String>,
    /// Retell API key that signs its webhooks: env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub retell_key: Option<String>,
    /// Telnyx webhook public key (base64): env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub telnyx_public_key: Option<String>,
    /// Twilio auth token that signs its webhooks: env:NAME or file:/path ("" clears)
    #[arg(long)]
    pub twilio_auth_token: Option<String>,
}

impl SettingsArgs {
    fn patch(&self) -> BusinessPatch {
        BusinessPatch {
            stt: self.stt.clone(),
            llm: self.llm.clone(),
            crm: self.crm.clone(),
            region: self.region.clone(),
            language: self.language.clone(),
            stt_base_url: self.stt_base_url.clone(),
            stt_model: self.stt_model.clone(),
            stt_key: self.stt_key.clone(),
            llm_base_url: self.llm_base_url.clone(),
            llm_model: self.llm_model.clone(),
            llm_key: self.llm_key.clone(),
            crm_base_url: self.crm_base_url.clone(),
            crm_key: self.crm_key.clone(),
            crm_secret: self.crm_secret.clone(),
            retell_key: self.retell_key.clone(),
            telnyx_public_key: self.telnyx_public_key.clone(),
            twilio_auth_token: self.twilio_auth_token.clone(),
        }
    }
}

/// Provider kinds must be ones a worker can build.
pub fn check_kinds(p: &BusinessPatch) -> anyhow::Result<()> {
    for (what, v, kinds) in [
        ("stt", &p.stt, STT_KINDS),
        ("llm", &p.llm, LLM_KINDS),
        ("crm", &p.crm, CRM_KINDS),
    ] {
        if let Some(k) = v {
            let k = k.trim().to_ascii_lowercase();
            if !(kinds.contains(&k.as_str()) || (what == "crm" && k == "builtin")) {
                anyhow::bail!(
                    "--{what} {:?}: unknown kind; accepted: {}{}",
                    crate::cli::sanitize_for_terminal(&k),
                    kinds.join(", "),
                    if what == "crm" { ", builtin" } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// `[businesses."NAME"]` sections → the database (created when missing). Unchanged
/// settings keep their version, so workers do not rebuild for nothing.
pub async fn apply_config(store: &Store, config: &Config) -> anyhow::Result<Vec<String>> {
    let mut changed = Vec::new();
    for (name, section) in &config.businesses {
        let patch = BusinessPatch::from_config(section);
        check_kinds(&patch).map_err(|e| anyhow::anyhow!("config [businesses.{name:?}]: {e}"))?;
        let before = store.business_by_name(name).await?;
        let after = match &before {
            Some(_) => store.set_business(name, &patch).await?,
            None => {
                let b = store.add_business(name, &patch).await?;
                crate::pipeline::ensure_default_agents(store, b.id).await?;
                b
            }
        };
        if before.map(|b| b.settings_version) != Some(after.settings_version) {
            changed.push(name.clone());
        }
    }
    Ok(changed)
}

fn render(b: &crate::store::businesses::Business) -> String {
    let mut out = format!("business {} (#{})\n", b.name, b.id);
    for (k, v) in b.settings_view() {
        out.push_str(&format!("  {k:<17} {v}\n"));
    }
    crate::cli::sanitize_for_terminal(out.trim_end())
}

/// `render` plus the business's webhook endpoints: secret references (never values) and
/// when each last received an event.
async fn render_with_hooks(
    store: &Store,
    b: &crate::store::businesses::Business,
) -> anyhow::Result<String> {
    let mut out = render(b);
    for e in store.webhook_endpoints(b.id).await? {
        let (_, line) = webhook_line(&e, crate::now_ms());
        out.push_str(&crate::cli::sanitize_for_terminal(&format!(
            "\n  webhook {:<9} {line}",
            e.provider
        )));
    }
    Ok(out)
}

/// One endpoint in words: its secret reference, last event and last result.
pub fn webhook_line(e: &crate::store::webhooks::WebhookEndpoint, now: i64) -> (bool, String) {
    let secret = match &e.secret_ref {
        Some(r) if crate::redact::is_reference(r) => r.clone(),
        Some(_) => crate::redact::MASK.to_string(),
        None => "NO SECRET (requests are refused)".to_string(),
    };
    let last = match e.last_event_at {
        Some(t) => format!("last event {}s ago", (now - t).max(0) / 1000),
        None => "NEVER received an event".to_string(),
    };
    (
        e.last_event_at.is_some(),
        format!(
            "secret {secret} · {last} · last result {} · {} accepted, {} refused · {} waiting",
            e.last_result.as_deref().unwrap_or("-"),
            e.accepted,
            e.rejected,
            e.waiting
        ),
    )
}

pub async fn run(config: &Config, cmd: BusinessCmd) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, 2).await?;
    let r = run_on(&store, config, cmd).await;
    store.close().await;
    r
}

async fn run_on(store: &Store, config: &Config, cmd: BusinessCmd) -> anyhow::Result<()> {
    match cmd {
        BusinessCmd::Add { name, settings } => {
            let patch = settings.patch();
            check_kinds(&patch)?;
            let b = store.add_business(&name, &patch).await?;
            crate::pipeline::ensure_default_agents(store, b.id).await?;
            println!("{}", render_with_hooks(store, &b).await?);
        }
        BusinessCmd::Set { name, settings } => {
            let patch = settings.patch();
            check_kinds(&patch)?;
            let b = store.set_business(&name, &patch).await?;
            println!("{}", render_with_hooks(store, &b).await?);
        }
        BusinessCmd::Show { name, json } => {
            let b = store.business_by_name(&name).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no business named {:?} (callops business list)",
                    crate::cli::sanitize_for_terminal(&name)
                )
            })?;
            if json {
                let v: serde_json::Map<String, serde_json::Value> = b
                    .settings_view()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .chain([("name".to_string(), b.name.clone().into())])
                    .chain([(
                        "webhooks".to_string(),
                        serde_json::to_value(store.webhook_endpoints(b.id).await?)?,
                    )])
                    .collect();
                println!(
                    "{}",
                    crate::cli::sanitize_for_terminal(&serde_json::to_string_pretty(&v)?)
                );
            } else {
                println!("{}", render_with_hooks(store, &b).await?);
            }
        }
        BusinessCmd::List { json } => {
            let all = store.businesses().await?;
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|b| {
                        serde_json::json!({
                            "id": b.id, "name": b.name, "region": b.default_region,
                            "stt": b.stt_provider, "llm": b.llm_provider, "crm": b.crm_provider,
                            "settings_version": b.settings_version,
                            "misconfigured": b.config_error,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    crate::cli::sanitize_for_terminal(&serde_json::to_string_pretty(&rows)?)
                );
            } else {
                for b in all {
                    println!(
                        "{}",
                        crate::cli::sanitize_for_terminal(&format!(
                            "{:>5}  {:<30} {:<3} stt={:<12} llm={:<10} crm={:<12} {}",
                            b.id,
                            b.name,
                            b.default_region,
                            b.stt_provider,
                            b.llm_provider,
                            b.crm_provider,
                            b.config_error
                                .as_deref()
                                .map(|e| format!("MISCONFIGURED: {e}"))
                                .unwrap_or_default()
                        ))
                    );
                }
            }
        }
        BusinessCmd::Apply => {
            let changed = apply_config(store, config).await?;
            println!(
                "{} business section(s) in config; changed: {}",
                config.businesses.len(),
                if changed.is_empty() {
                    "none".to_string()
                } else {
                    changed.join(", ")
                }
            );
        }
    }
    Ok(())
}
