//! Pipeline commands: worker, ingest, import, simulate.

use crate::config::Config;
use crate::domain::stage::Stage;
use crate::pipeline::ingest::{self, ImportKind, Ingestor};
use crate::pipeline::worker::{self, WorkerOptions, WorkerStats};
use crate::pipeline::{simulate, Runtime};
use std::sync::Arc;

fn read_input(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))
    }
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        let _ = tx.send(true);
    });
    rx
}

pub async fn worker(
    config: &Config,
    stages: &[String],
    concurrency: usize,
    metrics_addr: Option<&str>,
) -> anyhow::Result<()> {
    let stages: Vec<Stage> = if stages.is_empty() {
        Stage::ALL.to_vec()
    } else {
        stages
            .iter()
            .map(|s| s.parse().map_err(|e: String| anyhow::anyhow!(e)))
            .collect::<anyhow::Result<_>>()?
    };
    let rt = Runtime::open(config).await?;
    // [businesses."NAME"] sections in config → the database (issue 11).
    let applied = crate::cli::business::apply_config(&rt.ctx.store, config).await?;
    if !applied.is_empty() {
        eprintln!(
            "worker: business settings from config applied: {}",
            applied.join(", ")
        );
    }
    let stats = Arc::new(WorkerStats::default());
    let opts = WorkerOptions {
        stages: stages.clone(),
        concurrency,
        prefetch: config.broker.prefetch,
        orphan_after: config.pipeline.orphan_after(),
        ..Default::default()
    };
    eprintln!(
        "worker: stages {:?}, concurrency {concurrency} per stage, broker {}, database {} (Ctrl-C to stop; in-flight jobs finish first)",
        stages.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        rt.ctx.broker.kind(),
        crate::store::redact_url(rt.ctx.store.url())
    );
    let shutdown = shutdown_signal();
    if let Some(addr) = metrics_addr {
        let collector = crate::metrics::Collector::new(
            rt.ctx.store.clone(),
            rt.ctx.broker.clone(),
            crate::metrics::CollectorSettings::from_config(config),
        );
        // Read once before the stages start, so their counters carry business labels.
        if let Err(e) = collector.refresh().await {
            eprintln!(
                "worker: metrics gauges could not be read yet ({e:#}); retrying in the background"
            );
        }
        let (bound, _server) =
            crate::metrics::serve(addr, Some(collector.clone()), shutdown.clone()).await?;
        eprintln!("worker: metrics on http://{bound}/metrics");
        tokio::spawn(collector.run(shutdown.clone()));
    }
    worker::run(Arc::new(rt.ctx.clone()), opts, stats.clone(), shutdown).await?;
    rt.ctx.broker.close().await;
    eprintln!(
        "worker stopped: {} advanced, {} retrying, {} dead, {} duplicates skipped, {} deferred (stage busy elsewhere), {} unsettled (redelivered later), {} outbox jobs relayed, {} orphan alarms",
        stats.advanced.load(std::sync::atomic::Ordering::Relaxed),
        stats.retrying.load(std::sync::atomic::Ordering::Relaxed),
        stats.dead.load(std::sync::atomic::Ordering::Relaxed),
        stats.duplicates.load(std::sync::atomic::Ordering::Relaxed),
        stats.deferred.load(std::sync::atomic::Ordering::Relaxed),
        stats.unsettled.load(std::sync::atomic::Ordering::Relaxed),
        stats.relayed.load(std::sync::atomic::Ordering::Relaxed),
        stats.orphans.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(())
}

pub async fn ingest(config: &Config, file: &str, create_businesses: bool) -> anyhow::Result<()> {
    use crate::pipeline::ingest::stream::{IngestEvent, StreamOptions};
    use std::io::IsTerminal;
    // Opened before the database: a missing file fails fast, naming it.
    let (input, size): (Box<dyn tokio::io::AsyncRead + Unpin + Send>, Option<u64>) = if file == "-"
    {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
        let size = f.metadata().await.ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let rt = Runtime::open(config).await?;
    let limits = crate::pipeline::ingest::validate::Limits::from_config(&config.ingest);
    let opts = StreamOptions::for_limits(&limits);
    let mut ing = Ingestor::new(&rt.ctx.store, &*rt.ctx.broker)
        .with_provider_kinds(crate::store::businesses::ProviderKinds {
            stt: config.providers.stt.trim().into(),
            llm: config.providers.llm.trim().into(),
            crm: config.providers.crm.trim().into(),
        })
        .create_businesses(create_businesses)
        .with_limits(limits);
    let shown_file = crate::cli::sanitize_for_terminal(file);
    // A progress line only for a person watching (stderr a terminal); scripts and pipes get
    // the rejections and the summary alone.
    let mut bar = ProgressLine::new(std::io::stderr().is_terminal(), size);
    let mut on = |ev: IngestEvent<'_>| match ev {
        IngestEvent::Rejected(r) => {
            bar.clear();
            eprintln!(
                "{shown_file}:{}: rejected: {}",
                r.line,
                crate::cli::sanitize_for_terminal(&r.reason)
            );
        }
        IngestEvent::Progress(p) => bar.show(p),
    };
    let reader = tokio::io::BufReader::with_capacity(64 << 10, input);
    let result = ing.ingest_stream(reader, &opts, &mut on).await;
    bar.clear();
    // Jobs committed with their calls go out now (RabbitMQ outbox); what cannot is
    // published by any worker's relay later — nothing is lost either way.
    let relayed = crate::queue::outbox::flush(
        &rt.ctx.store,
        rt.ctx.broker.as_ref(),
        std::time::Duration::from_secs(30),
    )
    .await;
    if let Err(e) = &relayed {
        eprintln!("ingest: jobs wait in the outbox ({e}); `callops worker` publishes them");
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            rt.ctx.broker.close().await;
            return Err(e);
        }
    };
    println!(
        "ingested {}, duplicates {} (republished {}), rejected {}{}",
        report.ingested,
        report.duplicates,
        report.republished,
        report.rejected_count,
        if report.new_businesses.is_empty() {
            String::new()
        } else {
            format!(", new businesses {:?}", report.new_businesses)
        }
    );
    rt.ctx.broker.close().await;
    if report.rejected_count == 0 {
        Ok(())
    } else {
        anyhow::bail!(
            "{} records rejected (see above); nothing of them was written",
            report.rejected_count
        )
    }
}

/// The `ingest` progress line on a terminal: lines read (and % of a file), ingested,
/// duplicates, rejected; redrawn in place at most 10 times a second.
struct ProgressLine {
    on: bool,
    size: Option<u64>,
    drawn: Option<std::time::Instant>,
}

impl ProgressLine {
    fn new(on: bool, size: Option<u64>) -> Self {
        ProgressLine {
            on,
            size,
            drawn: None,
        }
    }

    fn show(&mut self, p: &crate::pipeline::ingest::stream::IngestProgress) {
        if !self.on || self.drawn.is_some_and(|t| t.elapsed().as_millis() < 100) {
            return;
        }
        self.drawn = Some(std::time::Instant::now());
        eprint!("\r\x1b[K{}", progress_text(p, self.size));
    }

    fn clear(&mut self) {
        if self.on && self.drawn.is_some() {
            eprint!("\r\x1b[K");
            self.drawn = None;
        }
    }
}

/// "ingest [#####     ] 52% 10400 lines: 10000 ingested, 380 duplicates, 20 rejected"
pub fn progress_text(
    p: &crate::pipeline::ingest::stream::IngestProgress,
    size: Option<u64>,
) -> String {
    let bar = match size.filter(|s| *s > 0) {
        Some(s) => {
            let pct = (p.bytes.min(s) * 100 / s) as usize;
            format!("[{:<20}] {pct:>3}% ", "#".repeat(pct / 5))
        }
        None => String::new(),
    };
    format!(
        "ingest {bar}{} lines: {} ingested, {} duplicates, {} rejected",
        p.lines, p.ingested, p.duplicates, p.rejected
    )
}

pub async fn import(config: &Config, kind: &str, file: &str) -> anyhow::Result<()> {
    let text = read_input(file)?;
    let store = crate::store::Store::open_migrated(&config.database.url, 4).await?;
    let kind = if kind == "customers" {
        ImportKind::Customers
    } else {
        ImportKind::Leads
    };
    let report = ingest::import(&store, kind, &text, file.ends_with(".csv")).await?;
    for r in &report.rejected {
        eprintln!(
            "{}:{}: rejected: {}",
            crate::cli::sanitize_for_terminal(file),
            r.line,
            crate::cli::sanitize_for_terminal(&r.reason)
        );
    }
    println!(
        "created {}, updated {}, rejected {}",
        report.created,
        report.updated,
        report.rejected.len()
    );
    if report.rejected.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} rows rejected (see above); nothing of them was written",
            report.rejected.len()
        )
    }
}

async fn business_named(
    store: &crate::store::Store,
    name: &str,
) -> anyhow::Result<crate::store::businesses::Business> {
    store
        .businesses()
        .await?
        .into_iter()
        .find(|b| b.name == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no business named {name:?} (names are exact; `callops overview` lists them)"
            )
        })
}

pub async fn sync(config: &Config, what: crate::cli::SyncWhat) -> anyhow::Result<()> {
    let (business, page_size, json) = match what {
        crate::cli::SyncWhat::Leads {
            business,
            page_size,
            json,
        } => (business, page_size, json),
        crate::cli::SyncWhat::Source {
            business,
            url,
            table,
            id_column,
            watermark_column,
            batch,
            json,
        } => {
            let spec = crate::pipeline::source_sync::SourceSpec {
                url,
                table,
                id_column,
                watermark_column,
                batch,
            };
            return sync_source(config, &business, &spec, json).await;
        }
    };
    let rt = Runtime::open(config).await?;
    let store = &rt.ctx.store;
    let b = business_named(store, &business).await?;
    // The business's own CRM client (its settings over [providers]).
    let crm = rt
        .ctx
        .providers
        .crm_for(store, &b)
        .await
        .map_err(|m| anyhow::anyhow!("{m}"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "business {:?} uses the built-in leads table as its CRM: there is nothing to sync",
                b.name
            )
        })?;
    let report = crate::pipeline::lead_sync::sync_leads(store, &*crm, &b, page_size).await;
    rt.ctx.broker.close().await;
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (id, why) in &report.rejected {
            eprintln!("lead {}: rejected: {why}", crate::views::sanitize(id));
        }
        println!(
            "{}: {} leads read in {} pages from {}: {} created, {} updated, {} rejected; watermark {:?} → {:?}",
            crate::views::sanitize(&report.business),
            report.fetched,
            report.pages,
            report.crm,
            report.created,
            report.updated,
            report.rejected.len(),
            report.watermark_before,
            report.watermark_after
        );
    }
    Ok(())
}

async fn sync_source(
    config: &Config,
    business: &str,
    spec: &crate::pipeline::source_sync::SourceSpec,
    json: bool,
) -> anyhow::Result<()> {
    let rt = Runtime::open(config).await?;
    let report = match business_named(&rt.ctx.store, business).await {
        Ok(b) => {
            crate::pipeline::source_sync::sync_source(&rt.ctx.store, &*rt.ctx.broker, &b, spec)
                .await
        }
        Err(e) => Err(e),
    };
    rt.ctx.broker.close().await;
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for (id, why) in &report.rejected {
        eprintln!(
            "{} row {}: rejected: {why}",
            report.table,
            crate::views::sanitize(id)
        );
    }
    if !report.ignored_columns.is_empty() {
        eprintln!(
            "ignored columns (not call-record fields): {}",
            report.ignored_columns.join(", ")
        );
    }
    let show = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into())
    };
    println!(
        "{}: {} rows read from {} in {} batches: {} ingested, {} duplicates, {} rejected; watermark {} → {}",
        crate::views::sanitize(&report.business),
        report.read,
        report.table,
        report.batches,
        report.ingested,
        report.duplicates,
        report.rejected.len(),
        show(&report.watermark_before),
        show(&report.watermark_after),
    );
    Ok(())
}

pub async fn simulate(
    config: &Config,
    businesses: usize,
    calls_per_minute: f64,
    calls: Option<u64>,
    seed: u64,
) -> anyhow::Result<()> {
    let rt = Runtime::open(config).await?;
    let report = simulate::run(
        &rt.ctx.store,
        &*rt.ctx.broker,
        simulate::SimulateOptions {
            businesses,
            calls_per_minute,
            total_calls: calls,
            seed,
            ..Default::default()
        },
        shutdown_signal(),
    )
    .await?;
    println!(
        "simulated: ingested {}, duplicates {}",
        report.ingested, report.duplicates
    );
    rt.ctx.broker.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ingest::stream::IngestProgress;

    #[test]
    fn the_progress_line_shows_counts_and_a_bar_for_files() {
        let p = IngestProgress {
            lines: 5200,
            bytes: 520,
            ingested: 5000,
            duplicates: 190,
            rejected: 10,
            batches: 26,
        };
        assert_eq!(
            super::progress_text(&p, Some(1000)),
            "ingest [##########          ]  52% 5200 lines: 5000 ingested, 190 duplicates, 10 rejected"
        );
        assert_eq!(
            super::progress_text(&p, None),
            "ingest 5200 lines: 5000 ingested, 190 duplicates, 10 rejected",
            "stdin has no size: counts only"
        );
    }
}
