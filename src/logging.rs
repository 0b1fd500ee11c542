//! Logs go to daily-rolling files under the data dir: the console owns the terminal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Count the SQL statements this process executes from now on (benchmarks report
/// statements per call). Off by default: counting makes sqlx summarize every statement.
pub fn count_statements(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// Statements executed while counting was on.
pub fn statements() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// Counts sqlx's per-statement events (target `sqlx::query`) without writing them.
struct StatementCounter;

impl<S: tracing::Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

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
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter);
    let counter = StatementCounter.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
        COUNTING.load(Ordering::Relaxed) && meta.target() == "sqlx::query"
    }));
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(counter)
        .try_init();
    Ok(guard)
}
