//! Logs go to daily-rolling files under the data dir: the console owns the terminal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);
static BREAKDOWN: std::sync::Mutex<Option<std::collections::HashMap<String, u64>>> =
    std::sync::Mutex::new(None);
/// Whether `BREAKDOWN` collects: checked before taking its lock, so counting alone stays a
/// plain atomic add per statement.
static BREAKING_DOWN: AtomicBool = AtomicBool::new(false);

/// Also count statements by their SQL text (sqlx's summary), for `bench pipeline
/// --statements`: which statements a call costs.
pub fn statement_breakdown(on: bool) -> Vec<(String, u64)> {
    let mut b = BREAKDOWN.lock().unwrap_or_else(|p| p.into_inner());
    let out = b.take().unwrap_or_default();
    if on {
        *b = Some(Default::default());
    }
    BREAKING_DOWN.store(on, Ordering::Relaxed);
    let mut v: Vec<_> = out.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

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
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        if !BREAKING_DOWN.load(Ordering::Relaxed) {
            return;
        }
        let mut b = BREAKDOWN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = b.as_mut() {
            let mut v = SqlText(String::new());
            e.record(&mut v);
            *map.entry(v.0).or_default() += 1;
        }
    }
}

/// The statement text of a sqlx query event, whitespace collapsed.
struct SqlText(String);

impl tracing::field::Visit for SqlText {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.record_str(f, &format!("{v:?}"));
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        // sqlx leaves `db.statement` empty when the summary is the whole statement.
        let take = match f.name() {
            "summary" => self.0.is_empty(),
            "db.statement" => !v.trim().is_empty(),
            _ => false,
        };
        if take {
            let words: Vec<&str> = v.split_whitespace().collect();
            self.0 = words.join(" ").chars().take(110).collect();
        }
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
    let writer = Redacting(writer);
    let filter = EnvFilter::try_new(level).map_err(|e| {
        anyhow::anyhow!("invalid log.level {level:?}: {e} (example: \"info,sqlx=warn\")")
    })?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter);
    // Decided per event (counting is switched on and off at run time), not cached per
    // callsite: a callsite filter of "never" would hide the statements for good.
    let counter = StatementCounter.with_filter(
        tracing_subscriber::filter::DynFilterFn::new(|meta, _| {
            COUNTING.load(Ordering::Relaxed) && meta.target() == "sqlx::query"
        })
        .with_callsite_filter(|meta| {
            if meta.target() == "sqlx::query" {
                tracing::subscriber::Interest::sometimes()
            } else {
                tracing::subscriber::Interest::never()
            }
        }),
    );
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(counter)
        .try_init();
    Ok(guard)
}

/// Every log line goes through the crate's redactor (`crate::redact::redact_text`): a URL
/// with a password or a signed query that reaches a log field or an error message is
/// masked in the file, whichever code path logged it.
#[derive(Clone)]
struct Redacting<W>(W);

impl<'a, W> tracing_subscriber::fmt::MakeWriter<'a> for Redacting<W>
where
    W: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = RedactingWriter<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

struct RedactingWriter<W>(W);

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one whole event per call.
        let text = String::from_utf8_lossy(buf);
        let clean = crate::redact::redact_text(&text);
        self.0.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn log_lines_lose_url_passwords() {
        let mut out = RedactingWriter(Vec::new());
        out.write_all(b"WARN connecting to amqp://callops:s3cret@mq/%2f failed; db postgres://a@h/db?password=pw\n")
            .unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("=pw"), "{text}");
    }
}
