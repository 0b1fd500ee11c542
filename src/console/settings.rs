//! Console settings: refresh cadence, stage SLAs, alert thresholds, key overrides.

use crate::domain::stage::Stage;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSettings {
    /// How often the refresher fetches (ms). Refreshes never overlap: one still running
    /// when the next is due makes that one skipped.
    pub refresh_ms: u64,
    /// Stage SLAs (ms): a call in flight at a stage longer than this is stuck.
    pub slas_ms: Vec<(Stage, i64)>,
    /// An oldest queued job older than this (ms) colours the business as lagging.
    pub lag_alert_ms: i64,
    /// An error rate above this (0..1, last 60 minutes) colours the business.
    pub error_rate_alert: f64,
    /// A refresh slower than this (ms) shows its connection as slow.
    pub slow_ms: i64,
    /// A refresh part not answered within this (ms) counts as the connection being down;
    /// the console keeps the last data and backs off.
    pub timeout_ms: u64,
    /// Longest backoff between failing refreshes (ms).
    pub max_backoff_ms: u64,
    /// Rows fetched per list (stuck, dead jobs, review, audit).
    pub list_limit: u32,
    /// Key overrides as (action, key), e.g. ("freeze", "F") or ("page_down", "ctrl-n").
    /// See `KeyMap::actions()` for the action names.
    pub keys: Vec<(String, String)>,
    /// viewer | support | admin (advisory on SQLite; the database decides on Postgres).
    pub role: String,
    /// Hide and refuse every action, whatever the role.
    pub readonly: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            refresh_ms: 2000,
            slas_ms: vec![
                (Stage::Sync, 60_000),
                (Stage::Transcribe, 900_000),
                (Stage::Analyze, 300_000),
                (Stage::Link, 120_000),
                (Stage::Notify, 120_000),
            ],
            lag_alert_ms: 5 * 60_000,
            error_rate_alert: 0.05,
            slow_ms: 1000,
            timeout_ms: 10_000,
            max_backoff_ms: 30_000,
            list_limit: 500,
            keys: vec![],
            role: "viewer".into(),
            readonly: false,
        }
    }
}

impl ConsoleSettings {
    /// From the `[console]` config section (keys it does not have keep their defaults).
    pub fn from_config(c: &crate::config::ConsoleConfig) -> Self {
        ConsoleSettings {
            refresh_ms: c.refresh_ms,
            slas_ms: c.stage_slas_ms(),
            role: c.role.clone(),
            readonly: c.readonly,
            lag_alert_ms: c.lag_alert_s as i64 * 1000,
            error_rate_alert: c.error_rate_alert,
            keys: c.key_overrides(),
            ..Default::default()
        }
    }

    /// SLAs in `Stage::ALL` order, for the views.
    pub fn sla_array(&self) -> [i64; 5] {
        let mut out = ConsoleSettings::default().sla_array_default();
        for (st, ms) in &self.slas_ms {
            out[crate::store::read::stage_index(*st)] = *ms;
        }
        out
    }

    fn sla_array_default(&self) -> [i64; 5] {
        let mut out = [0; 5];
        for (st, ms) in &self.slas_ms {
            out[crate::store::read::stage_index(*st)] = *ms;
        }
        out
    }

    pub fn alerts(&self) -> crate::views::state::Alerts {
        crate::views::state::Alerts {
            lag_ms: self.lag_alert_ms,
            error_rate: self.error_rate_alert,
            slas_ms: self.sla_array(),
        }
    }
}
