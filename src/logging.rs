//! Logs go to daily-rolling files under the data dir: the console owns the terminal.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber writing to `dir/callops.log.YYYY-MM-DD`.
/// Keep the guard alive for the process lifetime (it flushes on drop).
pub fn init(dir: &Path, level: &str) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create log directory {}: {e} (config key log.dir)",
            dir.display()
        )
    })?;
    let appender = tracing_appender::rolling::daily(dir, "callops.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_new(level).map_err(|e| {
        anyhow::anyhow!("invalid log.level {level:?}: {e} (example: \"info,sqlx=warn\")")
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
