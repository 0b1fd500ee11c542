//! Typed configuration: embedded defaults (`config/callops.toml`) ← an optional file
//! (`--config` / `CALLOPS_CONFIG`) ← `CALLOPS_*` environment variables ← `--set key=value`.
//! The defaults double as the schema: an unknown key or a value of the wrong type is an
//! error naming the source, the key, what was expected and what was found.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

pub const DEFAULTS: &str = include_str!("../config/callops.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub broker: BrokerConfig,
    pub log: LogConfig,
    pub providers: ProvidersConfig,
    pub pipeline: PipelineConfig,
    pub simulated: SimulatedConfig,
    pub console: ConsoleConfig,
    pub ingest: IngestConfig,
    pub audio: AudioConfig,
    pub serve: ServeConfig,
    /// `[businesses."NAME"]`: per-business pipeline settings kept in files.
    #[serde(default)]
    pub businesses: std::collections::BTreeMap<String, BusinessConfig>,
    /// `[metrics]`: Prometheus label cardinality and gauge refresh (issue 15).
    pub metrics: MetricsConfig,
}

/// Prometheus metrics (see `crate::metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsConfig {
    /// Businesses with their own `business` label; the rest are summed as "other".
    pub top_businesses: u32,
    /// How long database-derived gauges are cached.
    pub refresh_ms: u64,
}

/// Bounds on untrusted call records (see `pipeline::ingest::validate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestConfig {
    pub max_transcript_chars: u64,
    pub max_segments: u64,
    pub max_field_chars: u64,
    pub max_url_chars: u64,
}

/// `callops serve`: provider webhooks (see `serve`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Address to bind (`--listen` overrides).
    pub listen: String,
    /// Scheme and host the providers call, when serve is behind a proxy ("" = the Host header).
    pub public_url: String,
    pub max_body_bytes: u64,
    /// Webhook requests per minute per business (token bucket), and its burst.
    pub rate_per_minute: u64,
    pub burst: u64,
}

/// Bounds on audio downloads (see `pipeline::providers::audio`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AudioConfig {
    pub allowed_schemes: String,
    pub allowed_hosts: String,
    pub allow_private: String,
    pub max_bytes: u64,
    pub timeout_s: u64,
}

/// Comma-separated list → trimmed, lower-cased, non-empty items.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_ascii_lowercase())
        .filter(|x| !x.is_empty())
        .collect()
}

/// One `[businesses."NAME"]` section. Every key is optional: what is not given keeps
/// the business's current value. Credentials are references (`env:NAME`, `file:/path`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusinessConfig {
    pub stt: Option<String>,
    pub stt_base_url: Option<String>,
    pub stt_model: Option<String>,
    pub stt_key: Option<String>,
    pub llm: Option<String>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_key: Option<String>,
    pub crm: Option<String>,
    pub crm_base_url: Option<String>,
    pub crm_key: Option<String>,
    pub crm_secret: Option<String>,
    pub region: Option<String>,
    pub language: Option<String>,
    /// Webhook verification secrets of `callops serve` (references).
    #[serde(default)]
    pub retell_key: Option<String>,
    #[serde(default)]
    pub telnyx_public_key: Option<String>,
    #[serde(default)]
    pub twilio_auth_token: Option<String>,
}

impl BusinessConfig {
    /// The credential keys and their values, for the reference check.
    pub fn secrets(&self) -> [(&'static str, &Option<String>); 7] {
        [
            ("stt_key", &self.stt_key),
            ("llm_key", &self.llm_key),
            ("crm_key", &self.crm_key),
            ("crm_secret", &self.crm_secret),
            ("retell_key", &self.retell_key),
            ("telnyx_public_key", &self.telnyx_public_key),
            ("twilio_auth_token", &self.twilio_auth_token),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineConfig {
    pub llm_model: String,
    pub min_qc_chars: u32,
    pub review_floor: f64,
    /// The orphan alarm: a live call with no job, no outbox row and no live lease for this
    /// long is reported and its job published once. 0 = no sweep.
    pub orphan_after_s: u64,
}

impl PipelineConfig {
    /// `orphan_after_s = 0` turns the sweep off.
    pub fn orphan_after(&self) -> Option<std::time::Duration> {
        (self.orphan_after_s > 0).then(|| std::time::Duration::from_secs(self.orphan_after_s))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulatedConfig {
    pub stt_latency_ms: u64,
    pub llm_latency_ms: u64,
    pub jitter: f64,
    pub transient_rate: f64,
    pub permanent_rate: f64,
    pub malformed_rate: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleConfig {
    pub role: String,
    pub readonly: bool,
    pub refresh_ms: u64,
    pub sla_sync_s: u64,
    pub sla_transcribe_s: u64,
    pub sla_analyze_s: u64,
    pub sla_link_s: u64,
    pub sla_notify_s: u64,
    pub lag_alert_s: u64,
    pub error_rate_alert: f64,
    pub keys: String,
    /// Times in the console: "local" (the system's zone, honouring TZ), "UTC", or a fixed
    /// offset such as "+02:00". JSON output is always UTC.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_timezone() -> String {
    "local".into()
}

impl ConsoleConfig {
    /// `keys = "freeze=F, page_down=ctrl-n"` → [("freeze", "F"), ("page_down", "ctrl-n")].
    /// A pair without `=` is kept whole so the key map reports it by name.
    pub fn key_overrides(&self) -> Vec<(String, String)> {
        self.keys
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((a, k)) => (a.trim().to_string(), k.trim().to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect()
    }

    /// Stage SLAs in milliseconds, for the stuck-calls query.
    pub fn stage_slas_ms(&self) -> Vec<(crate::domain::stage::Stage, i64)> {
        use crate::domain::stage::Stage::*;
        vec![
            (Sync, self.sla_sync_s as i64 * 1000),
            (Transcribe, self.sla_transcribe_s as i64 * 1000),
            (Analyze, self.sla_analyze_s as i64 * 1000),
            (Link, self.sla_link_s as i64 * 1000),
            (Notify, self.sla_notify_s as i64 * 1000),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub kind: String,
    pub amqp_url: String,
    pub management_url: String,
    pub prefix: String,
    pub prefetch: u16,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_tiers: u32,
    pub visibility_timeout_ms: u64,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    pub level: String,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvidersConfig {
    pub stt: String,
    pub llm: String,
    pub crm: String,
    pub stt_base_url: String,
    pub stt_api_key: String,
    pub stt_model: String,
    pub stt_path: String,
    pub llm_base_url: String,
    pub llm_api_key: String,
    pub llm_model: String,
    pub crm_base_url: String,
    pub crm_api_key: String,
    pub crm_api_secret: String,
    pub timeout_s: u64,
    pub poll_interval_ms: u64,
    pub max_polls: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {why}")]
    Read { path: String, why: String },
    #[error("{source_name}: not valid TOML: {why}")]
    Syntax { source_name: String, why: String },
    #[error("{source_name}: unknown key `{key}` (known keys here: {known})")]
    UnknownKey {
        source_name: String,
        key: String,
        known: String,
    },
    #[error("{source_name}: key `{key}`: expected {expected}, found {found}")]
    WrongType {
        source_name: String,
        key: String,
        expected: String,
        found: String,
    },
    #[error("{source_name}: key `{key}`: {why}")]
    Invalid {
        source_name: String,
        key: String,
        why: String,
    },
}

/// Where overrides come from, besides the embedded defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE` (else `CALLOPS_CONFIG`).
    pub file: Option<PathBuf>,
    /// `--set key=value` and the dedicated CLI flags, applied last.
    pub sets: Vec<(String, String)>,
    /// Environment variables to read (the process environment in `main`).
    pub env: Vec<(String, String)>,
}

/// Shortcut variables that do not follow CALLOPS_<SECTION>_<KEY>.
const ENV_SHORTCUTS: &[(&str, &str)] = &[
    ("CALLOPS_AMQP_URL", "broker.amqp_url"),
    ("CALLOPS_BROKER", "broker.kind"),
];
/// CALLOPS_* variables that are not config keys.
const ENV_NOT_KEYS: &[&str] = &["CALLOPS_CONFIG", "CALLOPS_TEST_", "CALLOPS_LOG_STDERR"];

pub struct Loaded {
    pub config: Config,
    /// Non-fatal findings (e.g. an unknown CALLOPS_ variable that looks like a typo).
    pub warnings: Vec<String>,
}

impl Config {
    /// The embedded defaults alone.
    pub fn defaults() -> Config {
        Config::load(&Overrides::default())
            .expect("embedded defaults are valid")
            .config
    }

    pub fn load(o: &Overrides) -> Result<Loaded, ConfigError> {
        let defaults: Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    source_name: "embedded config/callops.toml".into(),
                    why: e.to_string(),
                })?;
        let mut merged = defaults.clone();
        let mut warnings = Vec::new();

        let file = o.file.clone().or_else(|| {
            o.env
                .iter()
                .find(|(k, _)| k == "CALLOPS_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
            let name = path.display().to_string();
            let user: Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    source_name: name.clone(),
                    why: e.to_string(),
                })?;
            merge_checked(&mut merged, &defaults, &user, "", &name)?;
        }

        let keys = leaf_keys(&defaults, "");
        for (var, raw) in &o.env {
            if !var.starts_with("CALLOPS_") || ENV_NOT_KEYS.iter().any(|p| var.starts_with(p)) {
                continue;
            }
            let key = ENV_SHORTCUTS
                .iter()
                .find(|(v, _)| v == var)
                .map(|(_, k)| k.to_string())
                .or_else(|| keys.iter().find(|k| env_name(k) == *var).cloned());
            match key {
                Some(key) => set_typed(
                    &mut merged,
                    &defaults,
                    &key,
                    raw,
                    &format!("environment variable {var}"),
                )?,
                None => warnings.push(format!(
                    "environment variable {var} is not a config key and was ignored (keys: {})",
                    keys.iter()
                        .map(|k| env_name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        for (key, raw) in &o.sets {
            set_typed(&mut merged, &defaults, key, raw, &format!("--set {key}"))?;
        }

        let mut config: Config =
            Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    source_name: "merged config".into(),
                    key: "?".into(),
                    why: e.to_string(),
                })?;
        config.validate()?;
        config.resolve_paths();
        Ok(Loaded { config, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| ConfigError::Invalid {
            source_name: "config".into(),
            key: key.into(),
            why,
        };
        if !matches!(self.broker.kind.as_str(), "database" | "rabbitmq") {
            return Err(bad(
                "broker.kind",
                format!(
                    "expected \"database\" or \"rabbitmq\", found {:?}",
                    self.broker.kind
                ),
            ));
        }
        crate::store::Dialect::from_url(&self.database.url)
            .map_err(|e| bad("database.url", e.to_string()))?;
        if self.broker.prefetch == 0 {
            return Err(bad("broker.prefetch", "must be at least 1, found 0".into()));
        }
        if self.broker.max_attempts == 0 {
            return Err(bad(
                "broker.max_attempts",
                "must be at least 1, found 0".into(),
            ));
        }
        if let Err(why) = self.broker_settings().policy.validate() {
            let key = why
                .split_whitespace()
                .next()
                .unwrap_or("broker")
                .to_string();
            return Err(bad(&key, why));
        }
        if self.broker.visibility_timeout_ms < 1000 {
            return Err(bad(
                "broker.visibility_timeout_ms",
                format!(
                    "must be at least 1000 ms (the lease heartbeat renews it every third), found {}",
                    self.broker.visibility_timeout_ms
                ),
            ));
        }
        if !matches!(self.console.role.as_str(), "viewer" | "support" | "admin") {
            return Err(bad(
                "console.role",
                format!(
                    "expected viewer, support or admin, found {:?}",
                    self.console.role
                ),
            ));
        }
        for (key, rate) in [
            ("simulated.transient_rate", self.simulated.transient_rate),
            ("simulated.permanent_rate", self.simulated.permanent_rate),
            ("simulated.malformed_rate", self.simulated.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(bad(
                    key,
                    format!("expected a rate between 0 and 1, found {rate}"),
                ));
            }
        }
        for (name, b) in &self.businesses {
            for (key, v) in b.secrets() {
                if let Some(v) = v {
                    if !v.trim().is_empty() && !crate::redact::is_reference(v.trim()) {
                        return Err(bad(
                            &format!("businesses.\"{name}\".{key}"),
                            "credentials are references, not values: env:NAME (an environment variable of the worker) or file:/path (a file only the worker can read)".into(),
                        ));
                    }
                }
            }
        }
        if self.audio.max_bytes == 0 || self.audio.timeout_s == 0 {
            return Err(bad(
                "audio.max_bytes / audio.timeout_s",
                "must be at least 1".into(),
            ));
        }
        if self.serve.max_body_bytes == 0
            || self.serve.rate_per_minute == 0
            || self.serve.burst == 0
        {
            return Err(bad(
                "serve.max_body_bytes / serve.rate_per_minute / serve.burst",
                "must be at least 1".into(),
            ));
        }
        if self.broker.kind == "rabbitmq" && !self.broker.amqp_url.starts_with("amqp") {
            return Err(bad(
                "broker.amqp_url",
                format!(
                    "expected an amqp:// or amqps:// URL, found {:?}",
                    self.broker.amqp_url
                ),
            ));
        }
        Ok(())
    }

    /// Relative SQLite paths and the log dir live under `data_dir`.
    fn resolve_paths(&mut self) {
        if let Some(rest) = self.database.url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            if !path.starts_with('/') && !path.starts_with(":memory:") {
                self.database.url = format!("sqlite:{}", self.data_dir.join(path).display());
            }
        }
        if self.log.dir.is_relative() {
            self.log.dir = self.data_dir.join(&self.log.dir);
        }
    }

    pub fn management_url(&self) -> Option<String> {
        let u = self.broker.management_url.trim();
        (!u.is_empty()).then(|| u.to_string())
    }

    pub fn broker_settings(&self) -> crate::queue::BrokerSettings {
        use std::time::Duration;
        crate::queue::BrokerSettings {
            policy: crate::queue::RetryPolicy {
                max_attempts: self.broker.max_attempts,
                base_delay: Duration::from_millis(self.broker.retry_base_ms),
                tiers: self.broker.retry_tiers,
            },
            prefix: self.broker.prefix.clone(),
            amqp_url: self.broker.amqp_url.clone(),
            management_url: self.management_url(),
            visibility_timeout: Duration::from_millis(self.broker.visibility_timeout_ms),
            poll_interval: Duration::from_millis(self.broker.poll_interval_ms),
        }
    }

    pub fn log_dir(&self) -> &Path {
        &self.log.dir
    }

    /// This config as TOML with keys, secrets and URL passwords masked: what `callops
    /// config` prints. References (`env:NAME`, `file:/path`) are shown: they are not secrets.
    pub fn redacted(&self) -> Value {
        let mut v = Value::try_from(self).expect("config serializes");
        redact_tree(&mut v, "");
        v
    }
}

fn redact_tree(v: &mut Value, key: &str) {
    match v {
        Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                redact_tree(x, k);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_tree(x, key)),
        Value::String(s) => *s = crate::redact::redact_value(key, s),
        _ => {}
    }
}

fn env_name(key: &str) -> String {
    format!("CALLOPS_{}", key.replace('.', "_").to_uppercase())
}

fn leaf_keys(t: &Table, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(sub) => out.extend(leaf_keys(sub, &path)),
            _ => out.push(path),
        }
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Table(_) => "a table".into(),
        other => format!("{} ({})", type_name(other), other),
    }
}

/// Merge `user` into `merged`, checking every key and type against `defaults`.
fn merge_checked(
    merged: &mut Table,
    defaults: &Table,
    user: &Table,
    prefix: &str,
    source_name: &str,
) -> Result<(), ConfigError> {
    for (k, v) in user {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if path == "businesses" {
            // Free-form names; each section is checked when the config is deserialized
            // (deny_unknown_fields names the bad key).
            if let Value::Table(ut) = v {
                let Some(Value::Table(mt)) = merged.get_mut(k) else {
                    unreachable!("defaults have [businesses]")
                };
                for (name, section) in ut {
                    if !section.is_table() {
                        return Err(ConfigError::WrongType {
                            source_name: source_name.into(),
                            key: format!("businesses.{name}"),
                            expected: "a table [businesses.\"NAME\"]".into(),
                            found: describe(section),
                        });
                    }
                    mt.insert(name.clone(), section.clone());
                }
                continue;
            }
        }
        let Some(def) = defaults.get(k) else {
            return Err(ConfigError::UnknownKey {
                source_name: source_name.into(),
                key: path,
                known: defaults.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        match (def, v) {
            (Value::Table(dt), Value::Table(ut)) => {
                let Some(Value::Table(mt)) = merged.get_mut(k) else {
                    unreachable!("defaults were cloned")
                };
                merge_checked(mt, dt, ut, &path, source_name)?;
            }
            (Value::Float(_), Value::Integer(i)) => {
                merged.insert(k.clone(), Value::Float(*i as f64));
            }
            (d, u) if std::mem::discriminant(d) == std::mem::discriminant(u) => {
                merged.insert(k.clone(), u.clone());
            }
            (d, u) => {
                return Err(ConfigError::WrongType {
                    source_name: source_name.into(),
                    key: path,
                    expected: type_name(d).into(),
                    found: describe(u),
                })
            }
        }
    }
    Ok(())
}

/// Set `key` from text, parsed as the type its default has.
fn set_typed(
    merged: &mut Table,
    defaults: &Table,
    key: &str,
    raw: &str,
    source_name: &str,
) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut def = defaults;
    let mut tgt = merged;
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let unknown = || ConfigError::UnknownKey {
            source_name: source_name.into(),
            key: key.into(),
            known: leaf_keys(defaults, "").join(", "),
        };
        let d = def.get(*part).ok_or_else(unknown)?;
        if last {
            let wrong = |expected: &str| ConfigError::WrongType {
                source_name: source_name.into(),
                key: key.into(),
                expected: expected.into(),
                found: format!("{raw:?}"),
            };
            let v = match d {
                Value::String(_) => Value::String(raw.to_string()),
                Value::Integer(_) => {
                    Value::Integer(raw.trim().parse().map_err(|_| wrong("an integer"))?)
                }
                Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| wrong("a number"))?),
                Value::Boolean(_) => Value::Boolean(match raw.trim() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(wrong("true or false")),
                }),
                Value::Table(_) => {
                    return Err(wrong("a key inside this table, not the table itself"))
                }
                other => return Err(wrong(type_name(other))),
            };
            tgt.insert(part.to_string(), v);
            return Ok(());
        }
        let Value::Table(dt) = d else {
            return Err(unknown());
        };
        def = dt;
        let Some(Value::Table(t)) = tgt.get_mut(*part) else {
            return Err(unknown());
        };
        tgt = t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_env(env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::load(&Overrides {
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn defaults_are_embedded_sqlite_and_database_broker() {
        let c = Config::defaults();
        assert_eq!(c.broker.kind, "database");
        assert!(c.database.url.starts_with("sqlite:"));
        assert!(
            c.database.url.ends_with("data/callops.db"),
            "{}",
            c.database.url
        );
        assert_eq!(c.management_url(), None);
    }

    #[test]
    fn env_overrides_every_key_and_shortcuts() {
        let l = load_env(&[
            ("CALLOPS_DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
            ("CALLOPS_BROKER", "rabbitmq"),
            ("CALLOPS_AMQP_URL", "amqp://u:p@h:5672/%2f"),
            ("CALLOPS_BROKER_PREFETCH", "7"),
            ("CALLOPS_TEST_POSTGRES_URL", "ignored"),
        ])
        .unwrap();
        assert_eq!(l.config.database.url, "postgres://postgres@127.0.0.1/test");
        assert_eq!(l.config.broker.kind, "rabbitmq");
        assert_eq!(l.config.broker.amqp_url, "amqp://u:p@h:5672/%2f");
        assert_eq!(l.config.broker.prefetch, 7);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn typo_in_env_var_is_reported() {
        let l = load_env(&[("CALLOPS_DATABSE_URL", "x")]).unwrap();
        assert!(
            l.warnings[0].contains("CALLOPS_DATABSE_URL"),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn wrong_type_names_source_key_expected_and_found() {
        let e = load_env(&[("CALLOPS_BROKER_PREFETCH", "ten")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("CALLOPS_BROKER_PREFETCH"), "{e}");
        assert!(e.contains("broker.prefetch"), "{e}");
        assert!(e.contains("an integer"), "{e}");
        assert!(e.contains("\"ten\""), "{e}");
    }

    #[test]
    fn bad_file_names_file_key_expected_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[broker]\nprefetch = \"lots\"\n").unwrap();
        let e = Config::load(&Overrides {
            file: Some(p.clone()),
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("bad.toml")
                && e.contains("broker.prefetch")
                && e.contains("an integer")
                && e.contains("lots"),
            "{e}"
        );

        std::fs::write(&p, "[broker]\nprefetchh = 3\n").unwrap();
        let e = Config::load(&Overrides {
            file: Some(p),
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("unknown key `broker.prefetchh`") && e.contains("prefetch"),
            "{e}"
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        let e = load_env(&[("CALLOPS_BROKER", "kafka")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("broker.kind") && e.contains("kafka"), "{e}");
        let e = load_env(&[("CALLOPS_DATABASE_URL", "mysql://x")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("database.url") && e.contains("mysql://x"), "{e}");
    }

    #[test]
    fn production_example_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        let l = Config::load(&Overrides {
            file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(l.config.broker.kind, "rabbitmq");
        assert!(l.config.management_url().is_some());
    }

    #[test]
    fn printed_config_masks_keys_and_url_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[database]\nurl = \"postgres://u@h/db?password=pw1\"\n[broker]\nkind = \"rabbitmq\"\namqp_url = \"amqp://g:pw2@mq/%2f\"\nmanagement_url = \"http://g:pw3@mq:15672\"\n[providers]\nstt_api_key = \"pw4\"\ncrm_api_secret = \"pw5\"\n[businesses.\"Acme\"]\nstt = \"deepgram\"\nstt_key = \"env:ACME_DG\"\n",
        )
        .unwrap();
        let c = Config::load(&Overrides {
            file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.businesses["Acme"].stt.as_deref(), Some("deepgram"));
        let text = toml::to_string_pretty(&c.redacted()).unwrap();
        for pw in ["pw1", "pw2", "pw3", "pw4", "pw5"] {
            assert!(!text.contains(pw), "{pw} printed:\n{text}");
        }
        assert!(
            text.contains("env:ACME_DG") && text.contains("REDACTED"),
            "{text}"
        );

        std::fs::write(&p, "[businesses.\"Acme\"]\nstt_key = \"dg-live-123\"\n").unwrap();
        let e = Config::load(&Overrides {
            file: Some(p.clone()),
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("stt_key") && e.contains("env:NAME") && !e.contains("dg-live-123"),
            "{e}"
        );
    }

    #[test]
    fn set_flags_win_over_env() {
        let l = Config::load(&Overrides {
            env: vec![("CALLOPS_BROKER_MAX_ATTEMPTS".into(), "3".into())],
            sets: vec![("broker.max_attempts".into(), "9".into())],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(l.config.broker.max_attempts, 9);
    }
}
