//! `callops bench console`: does the console stay fast on a big Postgres? Creates its own
//! database, migrates it with the project's migrations, seeds it with COPY (businesses,
//! calls, the last day of throughput, queued jobs and dead jobs), then times the console's
//! own refresh (`refresher::fetch`, the exact query set the live console runs) for the
//! overview and the stuck-calls view, and the rendering of a frame (`views::draw` into a
//! ratatui `TestBackend`). The database is dropped afterwards unless `keep`.

use crate::console::app::App;
use crate::console::keymap::KeyMap;
use crate::console::refresher::{fetch, Answer, Queues, Snapshot};
use crate::console::settings::ConsoleSettings;
use crate::domain::signature::error_signature;
use crate::domain::stage::Stage;
use crate::store::Store;
use crate::views::{self, Route};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ConsoleBench {
    pub businesses: u32,
    pub calls: u64,
    pub refreshes: u32,
    /// Frames rendered per terminal size.
    pub frames: u32,
    /// Keep the database (its URL is printed) instead of dropping it.
    pub keep: bool,
    /// Measure this database, seeded by an earlier run with `keep`, instead of seeding one
    /// (checked: it must hold exactly `businesses` and `calls`); it is kept.
    pub reuse: Option<String>,
    /// Print progress and results.
    pub verbose: bool,
    /// Also time the overview over RabbitMQ as the live console reads it.
    pub rabbitmq: Option<super::console_rabbit::RabbitTarget>,
}

impl Default for ConsoleBench {
    fn default() -> Self {
        ConsoleBench {
            businesses: 1000,
            calls: 10_000_000,
            refreshes: 50,
            frames: 200,
            keep: false,
            reuse: None,
            verbose: true,
            rabbitmq: None,
        }
    }
}

/// Latency figures of one measured thing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    /// Nearest-rank percentiles.
    pub fn of(samples: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let rank = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Stats {
            n: ms.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>8.2} ms  p95 {:>8.2} ms  max {:>8.2} ms  (n={})",
            self.p50_ms, self.p95_ms, self.max_ms, self.n
        )
    }
}

#[derive(Debug, Clone)]
pub struct SeedReport {
    /// (table, rows) in seeding order.
    pub rows: Vec<(&'static str, u64)>,
    pub copy_secs: f64,
    /// Rebuilding the calls indexes and constraints dropped for the load.
    pub index_secs: f64,
    /// VACUUM (ANALYZE) after the load.
    pub analyze_secs: f64,
}

impl SeedReport {
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, Clone)]
pub struct ConsoleBenchReport {
    pub database: String,
    pub kept: bool,
    /// The moment the data was seeded around (every refresh is asked "as of" it).
    pub now: i64,
    pub seed: SeedReport,
    pub overview: Stats,
    pub stuck: Stats,
    /// The DLQ (newest page of dead jobs + count) and review-queue refreshes.
    pub dlq: Stats,
    pub review: Stats,
    /// Business rows in the overview, stuck calls in all and listed.
    pub overview_rows: usize,
    pub stuck_total: i64,
    pub stuck_listed: usize,
    /// (width, height, view, per-frame stats)
    pub render: Vec<(u16, u16, &'static str, Stats)>,
    /// The overview over RabbitMQ (with `rabbitmq`).
    pub rabbit: Option<super::console_rabbit::RabbitReport>,
}

/// `postgres://…/db?q` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// The CLI entry: the configured Postgres URL is the admin URL; Ctrl-C stops the run and
/// still drops the database.
pub async fn run(config: &crate::config::Config, b: ConsoleBench) -> anyhow::Result<()> {
    let url = config.database.url.clone();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!(
            "bench console needs PostgreSQL: set CALLOPS_DATABASE_URL or --database-url to a \
             postgres:// URL whose user may create databases (it creates and drops its own)"
        );
    }
    run_with(
        &url,
        b,
        Some(Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        })),
    )
    .await
    .map(|_| ())
}

type Interrupt = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Create a uniquely named database next to `admin_url`'s, seed, measure, drop (unless
/// `keep`). The database is dropped on errors and on `interrupt` too.
pub async fn run_with(
    admin_url: &str,
    b: ConsoleBench,
    interrupt: Option<Interrupt>,
) -> anyhow::Result<ConsoleBenchReport> {
    let admin = Store::connect(admin_url, 1).await?;
    let name = match &b.reuse {
        Some(name) => {
            anyhow::ensure!(
                name.starts_with("callops_bench_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "--reuse takes the name of a database an earlier `bench console --keep` kept \
                 (callops_bench_…), not {name:?}"
            );
            name.clone()
        }
        None => {
            let name = format!(
                "callops_bench_{}_{}",
                std::process::id(),
                crate::now_ms() % 1_000_000_000_000
            );
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await
                .map_err(|e| anyhow::anyhow!("creating database {name}: {e}"))?;
            name
        }
    };
    let url = with_database(admin_url, &name);
    if b.verbose {
        println!(
            "bench console: database {}{} businesses={} calls={} refreshes={}",
            crate::store::redact_url(&url),
            if b.reuse.is_some() { " (reused)" } else { "" },
            b.businesses,
            b.calls,
            b.refreshes
        );
    }
    let (keep, reused) = (b.keep, b.reuse.is_some());
    let work = measure(&url, name.clone(), b);
    let r = match interrupt {
        Some(stop) => tokio::select! {
            r = work => r,
            _ = stop => Err(anyhow::anyhow!("interrupted")),
        },
        None => work.await,
    };
    // A seeded database is worth keeping even when a later part failed: `--reuse` needs
    // no second seeding. (One whose seeding did not finish has no seed note.)
    let seeded = async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        )
        .bind(&name)
        .fetch_one(admin.pool())
        .await
        .ok()
        .flatten()
        .is_some_and(|n| n.starts_with("callops bench console seed:"))
    };
    let keep = reused || (keep && (r.is_ok() || seeded.await));
    if keep {
        println!("kept database {}", crate::store::redact_url(&url));
    } else {
        // FORCE ends any backend still working for us (an interrupted COPY included).
        let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(admin.pool())
            .await;
        if let Err(e) = dropped {
            eprintln!("warning: could not drop database {name}: {e}");
        }
    }
    admin.close().await;
    r
}

async fn measure(url: &str, name: String, b: ConsoleBench) -> anyhow::Result<ConsoleBenchReport> {
    // The live console's pool size (`run_console`).
    let store = Store::connect_and_migrate(url, 4).await?;
    let r = async {
        let (seed, now) = match &b.reuse {
            Some(_) => reused_seed(&store, &name, &b).await?,
            None => {
                let now = crate::now_ms();
                let seed = seed(url, &b, now).await?;
                // What a later `--reuse` checks and measures as of.
                sqlx::query(&format!(
                    "COMMENT ON DATABASE {name} IS 'callops bench console seed: now={now} businesses={} calls={}'",
                    b.businesses.max(1),
                    b.calls.max(1)
                ))
                .execute(store.pool())
                .await?;
                (seed, now)
            }
        };
        if b.verbose && b.reuse.is_some() {
            println!(
                "  reused:   seeded as of {now} (measured as of that moment); counted {}",
                seed.rows
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else if b.verbose {
            let total = seed.total_rows();
            println!(
                "  seed:     {} rows via COPY in {:.1}s ({:.0} rows/s); calls indexes rebuilt in {:.1}s; VACUUM ANALYZE {:.1}s",
                total,
                seed.copy_secs,
                total as f64 / seed.copy_secs.max(1e-9),
                seed.index_secs,
                seed.analyze_secs
            );
            for (t, n) in &seed.rows {
                println!("            {t:<12} {n:>10}");
            }
        }
        let settings = ConsoleSettings {
            role: "admin".into(),
            ..Default::default()
        };
        let queues = Queues::JobsTableAt(now);
        let one = |route: Route| {
            let (store, settings) = (&store, &settings);
            async move {
                let t = Instant::now();
                let snap = fetch(store, queues, route, settings, now).await;
                let took = t.elapsed();
                check(&snap)?;
                anyhow::Ok((snap, took))
            }
        };
        // Warm up: caches, connections, plans.
        for _ in 0..3 {
            one(Route::Overview).await?;
            one(Route::Stuck).await?;
        }
        let (mut ov, mut st) = (Vec::new(), Vec::new());
        let (mut overview_snap, mut stuck_snap) = (None, None);
        for _ in 0..b.refreshes.max(1) {
            let (s, t) = one(Route::Overview).await?;
            ov.push(t);
            overview_snap = Some(s);
            let (s, t) = one(Route::Stuck).await?;
            st.push(t);
            stuck_snap = Some(s);
        }
        let (overview_snap, stuck_snap) = (overview_snap.unwrap(), stuck_snap.unwrap());
        let (mut dl, mut rv) = (Vec::new(), Vec::new());
        for _ in 0..b.refreshes.max(1) {
            dl.push(one(Route::Dlq).await?.1);
            rv.push(one(Route::Review).await?.1);
        }
        let (dlq, review) = (Stats::of(&dl), Stats::of(&rv));
        if b.verbose {
            println!("  refresh dlq:      {dlq}");
            println!("  refresh review:   {review}");
        }
        let overview = Stats::of(&ov);
        let stuck = Stats::of(&st);
        let overview_rows = overview_snap.parts.overview.as_ref().map_or(0, |v| v.len());
        let sd = stuck_snap.parts.stuck.clone().unwrap_or_default();
        if b.verbose {
            println!("  refresh overview: {overview}  ({overview_rows} businesses)");
            println!(
                "  refresh stuck:    {stuck}  ({} stuck, {} listed)",
                sd.total(),
                sd.calls.len()
            );
        }
        let rabbit = match &b.rabbitmq {
            Some(t) => Some(
                super::console_rabbit::measure(&store, now, t, b.refreshes, b.verbose).await?,
            ),
            None => None,
        };
        let mut render = Vec::new();
        for (w, h) in [(160u16, 45u16), (80, 24)] {
            for view in ["overview", "stuck"] {
                let snap = if view == "overview" {
                    overview_snap.clone()
                } else {
                    stuck_snap.clone()
                };
                let s = render_frames(snap, view, w, h, now, b.frames.max(1))?;
                if b.verbose {
                    println!("  render {view:<8} {w:>3}x{h:<3} {s}  per frame (prepare + draw)");
                }
                render.push((w, h, view, s));
            }
        }
        anyhow::Ok(ConsoleBenchReport {
            database: name,
            kept: b.keep,
            now,
            seed,
            overview,
            stuck,
            dlq,
            review,
            overview_rows,
            stuck_total: sd.total(),
            stuck_listed: sd.calls.len(),
            render,
            rabbit,
        })
    }
    .await;
    store.close().await;
    r
}

/// A database an earlier run seeded and kept: its seed moment (from the comment the seeding
/// left) and its rows, counted, which must match what this run was asked for.
async fn reused_seed(
    store: &Store,
    name: &str,
    b: &ConsoleBench,
) -> anyhow::Result<(SeedReport, i64)> {
    let note: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_one(store.pool())
    .await?;
    let note = note.unwrap_or_default();
    let field = |k: &str| -> Option<i64> {
        note.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
    };
    let (Some(now), Some(nb), Some(nc)) = (field("now"), field("businesses"), field("calls"))
    else {
        anyhow::bail!("database {name} was not seeded by `bench console` (no seed note)");
    };
    let mut rows = Vec::new();
    for t in ["businesses", "calls", "throughput", "jobs", "dead_jobs"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
            .fetch_one(store.pool())
            .await?;
        rows.push((t, n as u64));
    }
    anyhow::ensure!(
        nb == b.businesses.max(1) as i64
            && nc == b.calls.max(1) as i64
            && rows[0].1 == nb as u64
            && rows[1].1 == nc as u64,
        "database {name} holds {} businesses and {} calls (seeded for {nb} / {nc}); this run asks for {} / {}",
        rows[0].1,
        rows[1].1,
        b.businesses,
        b.calls
    );
    Ok((
        SeedReport {
            rows,
            copy_secs: 0.0,
            index_secs: 0.0,
            analyze_secs: 0.0,
        },
        now,
    ))
}

fn check(snap: &Snapshot) -> anyhow::Result<()> {
    if let Answer::Failed(e) = &snap.db {
        anyhow::bail!("refresh of {:?} failed (database): {e}", snap.route);
    }
    if let Answer::Failed(e) = &snap.broker {
        anyhow::bail!("refresh of {:?} failed (queue stats): {e}", snap.route);
    }
    Ok(())
}

/// Per-frame time of what the console's loop does each frame: `prepare` then `draw`.
fn render_frames(
    snap: Snapshot,
    view: &str,
    w: u16,
    h: u16,
    now: i64,
    frames: u32,
) -> anyhow::Result<Stats> {
    let settings = ConsoleSettings {
        role: "admin".into(),
        ..Default::default()
    };
    let mut app = App::new(settings, KeyMap::default(), "admin", None);
    let mut snap = snap;
    snap.started_at = now - 42;
    snap.finished_at = now;
    if view != "overview" && app.run_command(view) {
        anyhow::bail!("the command {view:?} quit the console");
    }
    app.apply(snap, None);
    let area = Rect::new(0, 0, w, h);
    let mut term = Terminal::new(TestBackend::new(w, h))?;
    let mut samples = Vec::with_capacity(frames as usize);
    for i in 0..frames + 5 {
        let t = Instant::now();
        app.state.spinner = app.state.spinner.wrapping_add(1);
        app.prepare(area, now + i as i64 * 250);
        term.draw(|f| views::draw(f, &app.state))?;
        if i >= 5 {
            samples.push(t.elapsed());
        }
    }
    Ok(Stats::of(&samples))
}

// ---------------------------------------------------------------------------------------
// Seeding

const DAY_MS: i64 = 86_400_000;
/// How far back the calls go.
const HISTORY_MS: i64 = 90 * DAY_MS;
/// Calls younger than this are still in the pipeline.
const FRESH_MS: i64 = 15 * 60_000;
const CHUNK_ROWS: u64 = 20_000;

const ERRORS: &[(Stage, &str)] = &[
    (
        Stage::Sync,
        "GET https://api.telephony.example/recordings/{id}: 404 Not Found",
    ),
    (
        Stage::Sync,
        "recording download timed out after 30000 ms (attempt {n})",
    ),
    (
        Stage::Transcribe,
        "deepgram: HTTP 503 Service Unavailable (request {id})",
    ),
    (
        Stage::Transcribe,
        "whisper: audio too short: 0.4 s (call {id})",
    ),
    (
        Stage::Transcribe,
        "sarvam batch job {id} failed: quota exceeded",
    ),
    (
        Stage::Analyze,
        "openai: HTTP 429 Too Many Requests: rate limit reached for gpt-4o-mini",
    ),
    (
        Stage::Analyze,
        "llm output is not valid JSON at line 1 column {n}",
    ),
    (
        Stage::Link,
        "customer {id}: merge conflict with customer {n}",
    ),
    (
        Stage::Notify,
        "leadsquared: HTTP 500 Internal Server Error (lead {id})",
    ),
    (Stage::Notify, "leadsquared: connection reset by peer"),
];
const AGENTS: &[&str] = &[
    "Anna", "Ben", "Chaya", "David", "Esther", "Farid", "Greta", "Hannah", "Ilan", "Jonas",
    "Kavya", "Lena", "Moshe", "Nina", "Omar", "Priya",
];
const CAMPAIGNS: &[&str] = &["inbound", "spring-sale", "renewal", "winback", "support"];
const LANGS: &[&str] = &["de", "de", "de", "en", "en", "hi", "he"];

fn error_for(rng: &mut SmallRng, stage: Stage, id: u64) -> String {
    let of_stage: Vec<&str> = ERRORS
        .iter()
        .filter(|(s, _)| *s == stage)
        .map(|(_, e)| *e)
        .collect();
    let e = of_stage[rng.gen_range(0..of_stage.len())];
    e.replace(
        "{id}",
        &format!("{:x}", id.wrapping_mul(0x9e37_79b9) & 0xff_ffff),
    )
    .replace("{n}", &rng.gen_range(1..200).to_string())
}

/// One call row of the COPY stream, and what it implies for jobs and dead jobs.
struct CallRow {
    stage: Stage,
    state: &'static str,
    state_since: i64,
    last_error: Option<String>,
}

fn stage_of(i: usize) -> Stage {
    Stage::ALL[i.min(4)]
}

/// COPY text field: our values never hold tabs, newlines or backslashes.
fn field(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => out.push_str(s),
        None => out.push_str("\\N"),
    }
}

const CALL_COPY: &str =
    "COPY calls (id, business_id, external_id, direction, from_number, from_e164, \
    number_status, to_number, agent_name, campaign, language, started_at, duration_ms, audio_url, \
    stage, state, state_since, attempts, last_error, link_status, review_priority, review_reason, \
    raw, created_at, updated_at, lead_filter_skipped) FROM STDIN";

/// Generate calls `from..to` (1-based ids) as COPY text; jobs and dead jobs of the calls
/// that need them are appended to `jobs` / `dead` (COPY text too).
#[allow(clippy::too_many_arguments)]
fn gen_calls(
    rng: &mut SmallRng,
    pick: &WeightedIndex<f64>,
    from: u64,
    to: u64,
    total: u64,
    now: i64,
    out: &mut String,
    jobs: &mut String,
    dead: &mut String,
) {
    for id in from..to {
        let business = pick.sample(rng) as u32 + 1;
        // Calls are spread evenly over the history, oldest first.
        let created = now - HISTORY_MS + ((id as i128 * HISTORY_MS as i128) / total as i128) as i64;
        let age = now - created;
        let duration = (rng.gen::<f64>().powi(2) * 900_000.0) as i64 + 8_000;
        let row = call_row(rng, id, created, age, now);
        let updated = row.state_since;
        let number = format!(
            "+49{}{:07}",
            rng.gen_range(151..179),
            rng.gen_range(0..10_000_000)
        );
        let withheld = rng.gen_bool(0.04);
        let (from_number, from_e164, status) = if withheld {
            (None, None, "withheld")
        } else if rng.gen_bool(0.02) {
            (Some(number[3..].to_string()), None, "invalid")
        } else {
            (
                Some(format!("0{}", &number[3..])),
                Some(number.clone()),
                "valid",
            )
        };
        let review = row.state == "review";
        let _ = write!(out, "{id}\t{business}\tcall-{id}\tinbound\t");
        field(out, from_number.as_deref());
        out.push('\t');
        field(out, from_e164.as_deref());
        let _ = write!(
            out,
            "\t{status}\t+4930{:06}\t{}\t{}\t{}\t{}\t{}\thttps://recordings.example.com/{business}/{id}.mp3\t{}\t{}\t{}\t{}\t",
            business * 7 % 1_000_000,
            AGENTS[rng.gen_range(0..AGENTS.len())],
            CAMPAIGNS[rng.gen_range(0..CAMPAIGNS.len())],
            LANGS[rng.gen_range(0..LANGS.len())],
            created - duration,
            duration,
            row.stage.as_str(),
            row.state,
            row.state_since,
            match row.state {
                "done" => 1,
                "dead" => 5,
                "retrying" => rng.gen_range(1..5),
                _ => 1,
            },
        );
        field(out, row.last_error.as_deref());
        out.push('\t');
        field(
            out,
            match (row.stage, row.state) {
                (Stage::Notify, "done") => Some("linked"),
                (_, "review") => Some("ambiguous"),
                _ => None,
            },
        );
        out.push('\t');
        if review {
            let _ = write!(out, "{}\tname matches 2 customers", rng.gen_range(0..4));
        } else {
            out.push_str("\\N\t\\N");
        }
        let _ = writeln!(
            out,
            "\t{{\"call_id\":\"call-{id}\",\"direction\":\"inbound\",\"duration\":{}}}\t{created}\t{updated}\t{}",
            duration / 1000,
            u8::from(rng.gen_bool(0.03))
        );
        // Jobs: in-flight calls have one waiting (or claimed) unless it was lost, which is
        // why some calls are stuck.
        if matches!(row.state, "pending" | "running" | "retrying") && !rng.gen_bool(0.2) {
            let queue = row.stage.queue_for(business as i64);
            let (run_at, claim) = match row.state {
                "running" => (now + 30_000 + rng.gen_range(0..30_000), Some(id as i64)),
                "retrying" => (now + rng.gen_range(-60_000..120_000), None),
                _ => (row.state_since, None),
            };
            let _ = write!(
                jobs,
                "j{id:031x}\t{queue}\t{business}\t{}\t{id}\t{{\"call_id\":{id}}}\t{}\t{}\t{}\t{}\t",
                row.stage.as_str(),
                if row.state == "retrying" { 2 } else { 0 },
                row.state_since,
                row.state_since,
                run_at
            );
            match claim {
                Some(c) => {
                    let _ = writeln!(jobs, "{}\t{c}", now - rng.gen_range(0..30_000));
                }
                None => jobs.push_str("\\N\t\\N\n"),
            }
        }
        if row.state == "dead" {
            let err = row.last_error.clone().unwrap_or_default();
            let status = match rng.gen_range(0..10) {
                0 => "discarded",
                1 => "retried",
                _ => "dead",
            };
            let first = row.state_since - rng.gen_range(60_000..3_600_000);
            let _ = writeln!(
                dead,
                "d{id:031x}\t{business}\t{}\t{id}\t{}\t{{\"call_id\":{id}}}\t5\t[]\t{err}\t{err}\t{}\t{first}\t{}\t{}\tmax_attempts\tworker\t{status}",
                row.stage.as_str(),
                row.stage.queue_for(business as i64),
                error_signature(&err),
                row.state_since,
                row.state_since,
            );
        }
    }
}

fn call_row(rng: &mut SmallRng, id: u64, created: i64, age: i64, now: i64) -> CallRow {
    if age < FRESH_MS {
        // Moving through the pipeline: a stage per ~3 minutes of age.
        let stage = stage_of((age / 180_000) as usize);
        let state = match rng.gen_range(0..10) {
            0..=5 => "pending",
            6..=8 => "running",
            _ => "retrying",
        };
        let since = created + (age / 180_000) * 180_000;
        let last_error = (state == "retrying").then(|| error_for(rng, stage, id));
        return CallRow {
            stage,
            state,
            state_since: since.min(now),
            last_error,
        };
    }
    let r: f64 = rng.gen();
    let stage = stage_of(rng.gen_range(0..5));
    if r < 0.006 {
        let since = created + rng.gen_range(60_000..7_200_000);
        CallRow {
            stage,
            state: "dead",
            state_since: since.min(now),
            last_error: Some(error_for(rng, stage, id)),
        }
    } else if r < 0.0085 {
        CallRow {
            stage: Stage::Link,
            state: "review",
            state_since: (created + rng.gen_range(60_000..600_000)).min(now),
            last_error: None,
        }
    } else if r < 0.0115 {
        // In flight for a while: log-uniform between 1 s and 3 days, so roughly half are
        // past their stage's SLA (stuck) and the rest within it.
        let sat = (rng
            .gen_range(0.0f64..(3.0 * DAY_MS as f64 / 1000.0).ln())
            .exp()
            * 1000.0) as i64;
        let since = (now - sat).max(created);
        let state = match rng.gen_range(0..10) {
            0..=4 => "pending",
            5..=6 => "running",
            _ => "retrying",
        };
        let last_error =
            (state == "retrying" || rng.gen_bool(0.3)).then(|| error_for(rng, stage, id));
        CallRow {
            stage,
            state,
            state_since: since,
            last_error,
        }
    } else {
        CallRow {
            stage: Stage::Notify,
            state: "done",
            state_since: (created + rng.gen_range(30_000..900_000)).min(now),
            last_error: None,
        }
    }
}

/// Business sizes: a long tail (a few large businesses, many small ones).
fn business_weights(n: u32) -> Vec<f64> {
    (1..=n).map(|i| 1.0 / (i as f64).powf(0.8)).collect()
}

async fn copy_text(conn: &mut PgConnection, statement: &str, data: String) -> anyhow::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data.into_bytes()).await?;
    Ok(copy.finish().await?)
}

/// Indexes and constraints (but the primary key) of `table`, as statements that recreate
/// them; dropping them for a bulk load and recreating after is much faster than
/// maintaining six indexes and a foreign key check per row.
async fn detach_indexes(conn: &mut PgConnection, table: &str) -> anyhow::Result<Vec<String>> {
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.relname::text, pg_get_indexdef(i.oid) FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         WHERE x.indrelid = $1::regclass AND NOT x.indisprimary \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let mut recreate = Vec::new();
    for (name, def) in &constraints {
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(&mut *conn)
            .await?;
        recreate.push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"));
    }
    for (name, def) in &indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut *conn)
            .await?;
        recreate.push(def.clone());
    }
    Ok(recreate)
}

/// Seed `url`'s database around `now`.
pub async fn seed(url: &str, b: &ConsoleBench, now: i64) -> anyhow::Result<SeedReport> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("SET maintenance_work_mem = '512MB'")
        .execute(&mut conn)
        .await?;
    let t = Instant::now();
    let mut rows = Vec::new();
    let nb = b.businesses.max(1);

    let mut biz = String::new();
    for i in 1..=nb {
        let _ = writeln!(
            biz,
            "{i}\tBusiness {i:04}\t{}\t{}\t{}",
            ["Europe/Berlin", "Asia/Kolkata", "Asia/Jerusalem", "UTC"][i as usize % 4],
            ["DE", "IN", "IL", "DE"][i as usize % 4],
            now - HISTORY_MS - DAY_MS
        );
    }
    let n = copy_text(
        &mut conn,
        "COPY businesses (id, name, timezone, default_region, created_at) FROM STDIN",
        biz,
    )
    .await?;
    rows.push(("businesses", n));

    // Calls: generated on a blocking thread, streamed while the server ingests.
    let recreate = detach_indexes(&mut conn, "calls").await?;
    let total = b.calls.max(1);
    let weights = business_weights(nb);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String, String)>(4);
    let gen = tokio::task::spawn_blocking(move || {
        let mut rng = SmallRng::seed_from_u64(20_240_601);
        let pick = WeightedIndex::new(&weights).expect("weights");
        let mut from = 1;
        while from <= total {
            let to = (from + CHUNK_ROWS).min(total + 1);
            let mut out = String::with_capacity((to - from) as usize * 330);
            let (mut jobs, mut dead) = (String::new(), String::new());
            gen_calls(
                &mut rng, &pick, from, to, total, now, &mut out, &mut jobs, &mut dead,
            );
            if tx.blocking_send((out, jobs, dead)).is_err() {
                return;
            }
            from = to;
        }
    });
    let (mut jobs, mut dead) = (String::new(), String::new());
    let mut copy = conn.copy_in_raw(CALL_COPY).await?;
    let mut sent = 0u64;
    let mut last_print = Instant::now();
    while let Some((chunk, j, d)) = rx.recv().await {
        copy.send(chunk.into_bytes()).await?;
        jobs.push_str(&j);
        dead.push_str(&d);
        sent += CHUNK_ROWS;
        if b.verbose && last_print.elapsed() > Duration::from_secs(10) {
            println!(
                "  … {} calls copied ({:.0} rows/s)",
                sent.min(total),
                sent.min(total) as f64 / t.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
    }
    gen.await?;
    let n = copy.finish().await?;
    rows.push(("calls", n));
    sqlx::query("SELECT setval(pg_get_serial_sequence('calls', 'id'), $1)")
        .bind(total as i64)
        .execute(&mut conn)
        .await?;

    // Throughput: every business and stage for each minute of the last hour (worst case
    // for the overview's aggregate), a sparser day before it.
    let mut rng = SmallRng::seed_from_u64(7);
    let weights = business_weights(nb);
    let max_w = weights[0];
    let this_minute = crate::store::throughput::minute_of(now);
    let mut tp = String::new();
    for m in 0..(24 * 60) {
        let minute = this_minute - m * 60_000;
        for (bi, w) in weights.iter().enumerate() {
            if m > 60 && !rng.gen_bool(0.15) {
                continue;
            }
            let base = 1.0 + 40.0 * w / max_w;
            for stage in Stage::ALL {
                let calls = (base * rng.gen_range(0.5..1.5)) as i64;
                let failures = if rng.gen_bool(0.05) {
                    rng.gen_range(1..4)
                } else {
                    0
                };
                let audio = if stage == Stage::Transcribe {
                    calls * rng.gen_range(60..300)
                } else {
                    0
                };
                let _ = writeln!(
                    tp,
                    "{minute}\t{}\t{}\t{calls}\t{audio}\t{failures}",
                    bi + 1,
                    stage.as_str()
                );
            }
        }
    }
    let n = copy_text(
        &mut conn,
        "COPY throughput (minute, business_id, stage, calls, audio_seconds, failures) FROM STDIN",
        tp,
    )
    .await?;
    rows.push(("throughput", n));
    let n = copy_text(
        &mut conn,
        "COPY jobs (job_id, queue, business_id, stage, call_id, payload, attempts, \
         first_enqueued_at, enqueued_at, run_at, claimed_at, claim_token) FROM STDIN",
        jobs,
    )
    .await?;
    rows.push(("jobs", n));
    let n = copy_text(
        &mut conn,
        "COPY dead_jobs (job_id, business_id, stage, call_id, queue, payload, attempts, errors, \
         first_error, last_error, error_signature, first_failed_at, last_failed_at, dead_at, \
         reason, source, status) FROM STDIN",
        dead,
    )
    .await?;
    rows.push(("dead_jobs", n));
    let copy_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for stmt in &recreate {
        sqlx::query(stmt).execute(&mut conn).await?;
    }
    let index_secs = t.elapsed().as_secs_f64();
    // What autovacuum would have done on a live database: statistics and the visibility
    // map (index-only scans).
    let t = Instant::now();
    sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await?;
    let analyze_secs = t.elapsed().as_secs_f64();
    conn.close().await?;
    Ok(SeedReport {
        rows,
        copy_secs,
        index_secs,
        analyze_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Stats::of(&d);
        assert_eq!((s.p50_ms, s.p95_ms, s.max_ms), (50.0, 95.0, 100.0));
        assert_eq!(Stats::of(&[]).n, 0);
    }

    #[test]
    fn database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://u@h:5432/test?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn generated_rows_have_every_column() {
        let mut rng = SmallRng::seed_from_u64(1);
        let pick = WeightedIndex::new(business_weights(5)).unwrap();
        let (mut out, mut jobs, mut dead) = (String::new(), String::new(), String::new());
        let now = 1_700_000_000_000;
        gen_calls(
            &mut rng, &pick, 1, 5001, 5000, now, &mut out, &mut jobs, &mut dead,
        );
        for line in out.lines() {
            assert_eq!(line.split('\t').count(), 26, "{line}");
        }
        for line in jobs.lines() {
            assert_eq!(line.split('\t').count(), 12, "{line}");
        }
        for line in dead.lines() {
            assert_eq!(line.split('\t').count(), 17, "{line}");
        }
        assert!(!jobs.is_empty() && !dead.is_empty());
    }
}
