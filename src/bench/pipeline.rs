//! `callops bench pipeline`: calls/s end to end and CPU ms per call with zero-latency
//! simulated providers; with slow providers, audio minutes per hour at a concurrency and
//! the peak memory (bounded: workers take a job only when a handler slot is free).

use crate::config::Config;
use crate::pipeline::context::{PipelineCtx, PipelineSettings};
use crate::pipeline::simulate::{self, SimulateOptions};
use crate::pipeline::worker::{self, WorkerOptions, WorkerStats};
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct PipelineBench {
    pub backend: String,
    pub calls: u64,
    pub concurrency: usize,
    pub stt_latency_ms: u64,
    pub llm_latency_ms: u64,
    pub failures: bool,
    /// Print the statements a call costs, by SQL text.
    pub statements: bool,
}

/// (user + system CPU seconds, peak resident MiB) of this process, from /proc.
fn cpu_and_peak_mem() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/self/stat (11 and 12 after the name).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kb / 1024.0)
}

/// CPU seconds used so far by the database and broker servers on this machine: every
/// `postgres` process (its backends serve the workers) and RabbitMQ's `beam.smp`. Backends
/// that exit during the run take their time with them, so this is a lower bound.
fn server_cpu() -> (f64, f64) {
    let (mut pg, mut mq) = (0.0, 0.0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (pg, mq);
    };
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (t(11) + t(12)) / 100.0;
        match comm {
            "postgres" => pg += secs,
            "beam.smp" => mq += secs,
            _ => {}
        }
    }
    (pg, mq)
}

pub async fn run(config: &Config, b: PipelineBench) -> anyhow::Result<()> {
    // A fresh SQLite file unless CALLOPS_DATABASE_URL/--database-url points elsewhere.
    let url = if config.database.url.starts_with("sqlite:") {
        format!(
            "sqlite:{}",
            config
                .data_dir
                .join(format!("bench-pipeline-{}.db", std::process::id()))
                .display()
        )
    } else {
        config.database.url.clone()
    };
    let store = Store::connect_and_migrate(&url, config.database.max_connections.max(16)).await?;
    let mut settings = config.broker_settings();
    settings.prefix = format!("callops_bench_{}", std::process::id());
    settings.poll_interval = Duration::from_millis(10);
    settings.policy.base_delay = Duration::from_millis(50);
    let broker = crate::queue::connect(&b.backend, settings, store.clone()).await?;
    let mut cfg = config.clone();
    cfg.simulated.stt_latency_ms = b.stt_latency_ms;
    cfg.simulated.llm_latency_ms = b.llm_latency_ms;
    if !b.failures {
        cfg.simulated.transient_rate = 0.0;
        cfg.simulated.permanent_rate = 0.0;
        cfg.simulated.malformed_rate = 0.0;
    }
    let ctx = Arc::new(PipelineCtx {
        store: store.clone(),
        broker: broker.clone(),
        providers: crate::pipeline::build_providers(&cfg)?,
        settings: PipelineSettings::default(),
    });
    println!(
        "bench pipeline: backend={} database={} calls={} concurrency={}/stage stt={}ms llm={}ms failures={}",
        b.backend,
        crate::store::redact_url(&url),
        b.calls,
        b.concurrency,
        b.stt_latency_ms,
        b.llm_latency_ms,
        b.failures
    );
    let (_keep, never) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    // Only this run's calls count (a shared database may hold earlier runs).
    let since = crate::now_ms();
    // Progress: this run's calls still in flight, read through the partial index of
    // in-flight calls (counting every call by state 20 times a second took about 5% of
    // the database's time in this bench, and grew with the table).
    let in_flight_since = |store: Store| async move {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE state IN ('pending', 'running', 'retrying') AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(store.pool())
        .await?;
        anyhow::Ok(n)
    };
    simulate::run(
        &store,
        &*broker,
        SimulateOptions {
            businesses: 10,
            calls_per_minute: 6_000_000.0,
            total_calls: Some(b.calls),
            seed: 11,
            customers_per_business: 50,
        },
        never,
    )
    .await?;
    println!(
        "  ingest:     {:>8.0} calls/s ({} in {:.2}s)",
        b.calls as f64 / t.elapsed().as_secs_f64(),
        b.calls,
        t.elapsed().as_secs_f64()
    );

    let ingested: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE created_at >= $1")
        .bind(since)
        .fetch_one(store.pool())
        .await?;
    let (cpu0, _) = cpu_and_peak_mem();
    let (pg0, mq0) = server_cpu();
    let commits0 = pg_commits(&store).await;
    crate::logging::count_statements(true);
    let stmts0 = crate::logging::statements();
    crate::logging::statement_breakdown(b.statements);
    let mut polls = 0u64;
    let start = Instant::now();
    let stats = Arc::new(WorkerStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(worker::run(
        ctx.clone(),
        WorkerOptions {
            concurrency: b.concurrency,
            prefetch: (b.concurrency as u16).clamp(10, 500),
            ..Default::default()
        },
        stats.clone(),
        stop_rx,
    ));
    let mut last_print = Instant::now();
    // When 10% and 90% of the calls had settled: the rate between them is the steady
    // state, without the pipeline filling up (the first call needs every stage's latency)
    // and draining.
    let (mut t10, mut t90) = (None::<f64>, None::<f64>);
    loop {
        polls += 1;
        // Every call was ingested before the workers started: the rest have settled.
        let settled = ingested - in_flight_since(store.clone()).await?;
        if last_print.elapsed() > Duration::from_secs(10) {
            println!(
                "  … {settled}/{} settled after {:.0}s",
                b.calls,
                start.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        let at = start.elapsed().as_secs_f64();
        if t10.is_none() && settled as u64 * 10 >= b.calls {
            t10 = Some(at);
        }
        if t90.is_none() && settled as u64 * 10 >= b.calls * 9 {
            t90 = Some(at);
        }
        if settled as u64 >= b.calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, peak_mib) = cpu_and_peak_mem();
    let (pg1, mq1) = server_cpu();
    // The bench's own progress polls are statements (and commits) too: not the pipeline's.
    let stmts = crate::logging::statements()
        .saturating_sub(stmts0)
        .saturating_sub(polls);
    let commits = pg_commits(&store)
        .await
        .zip(commits0)
        .map(|(a, b)| a - b - polls as i64);
    crate::logging::count_statements(false);
    let breakdown = crate::logging::statement_breakdown(false);
    let _ = stop_tx.send(true);
    workers.await??;
    let audio_s: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) FROM calls WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_one(store.pool())
    .await?
        / 1000;
    println!(
        "  end to end: {:>8.1} calls/s ({} calls through 5 stages in {secs:.2}s)",
        b.calls as f64 / secs,
        b.calls
    );
    println!(
        "  cpu:        {:>8.2} ms per call (this process: workers + database client)",
        (cpu1 - cpu0) * 1000.0 / b.calls as f64
    );
    {
        let per = |x: f64| x * 1000.0 / b.calls as f64;
        let own = per(cpu1 - cpu0);
        // Only the servers this run uses: others' load on them is not this pipeline's.
        let pg = if store.dialect() == crate::store::Dialect::Postgres {
            per(pg1 - pg0)
        } else {
            0.0
        };
        let mq = if b.backend == "rabbitmq" {
            per(mq1 - mq0)
        } else {
            0.0
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        println!(
            "  servers:    {pg:>8.2} ms CPU per call in postgres, {mq:.2} in rabbitmq; with this process {:.2} ms → {cores:.0} cores' CPU ceiling {:.0} calls/s",
            own + pg + mq,
            cores * 1000.0 / (own + pg + mq)
        );
    }
    println!(
        "  audio:      {:>8.0} audio minutes per hour",
        audio_s as f64 / 60.0 / secs * 3600.0
    );
    if let (Some(a), Some(z)) = (t10, t90) {
        if z > a {
            let rate = b.calls as f64 * 0.8 / (z - a);
            let audio_per_call_min = audio_s as f64 / 60.0 / b.calls as f64;
            println!(
                "  steady:     {rate:>8.1} calls/s, {:.0} audio minutes per hour (10%→90% settled in {:.1}s; {audio_per_call_min:.2} audio min per call)",
                rate * audio_per_call_min * 3600.0,
                z - a
            );
        }
    }
    println!(
        "  statements: {:>8.1} per call (SQL statements the workers ran, incl. claims and idle polls){}",
        stmts as f64 / b.calls as f64,
        match commits {
            Some(c) => format!("; {:.1} transactions per call (pg_stat_database)", c as f64 / b.calls as f64),
            None => String::new(),
        }
    );
    for (sql, n) in breakdown {
        println!("    {:>7.2}/call  {sql}", n as f64 / b.calls as f64);
    }
    println!("  peak RSS:   {:>8.1} MiB", peak_mib);
    println!(
        "  outcomes:   {:?}; worker {:?}",
        sqlx::query_as::<_, (String, i64)>(
            "SELECT state, COUNT(*) FROM calls WHERE created_at >= $1 GROUP BY state"
        )
        .bind(since)
        .fetch_all(store.pool())
        .await?,
        stats
    );
    broker.delete_topology().await?;
    broker.close().await;
    Ok(())
}

/// Committed transactions of this Postgres database so far (None on SQLite).
async fn pg_commits(store: &Store) -> Option<i64> {
    if store.dialect() != crate::store::Dialect::Postgres {
        return None;
    }
    // The statistics of this transaction's own snapshot would be stale: clear them first.
    let _ = sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(store.pool())
        .await;
    sqlx::query_scalar::<_, i64>(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(store.pool())
    .await
    .ok()
}
