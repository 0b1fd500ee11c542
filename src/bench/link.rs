//! `callops bench link`: the link stage against a large customer base in one business.
//! Creates its own store (a SQLite file in the temp directory, or a Postgres database next
//! to the configured one), loads N customers with realistic German names (a few very common
//! surnames, a long Zipf-like tail) and their name keys, then times `link::run` per call for
//! a mix of callers: full name, "Frau <surname>", a third party, a known number, an unknown
//! number, and the commonest surname alone. Beside it, the raw ceiling of the same store in
//! the same run: one indexed primary-key read round trip. The store is removed afterwards.

use crate::domain::names::name_keys;
use crate::domain::stage::Stage;
use crate::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use crate::pipeline::stages::{link, sync, Outcome};
use crate::queue::{self, BrokerSettings, Job, RetryPolicy};
use crate::store::customers::NAME_KEYS_VERSION;
use crate::store::{NewCall, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LinkBench {
    pub customers: usize,
    pub calls: usize,
    pub verbose: bool,
    /// Leave the loaded store in place (its location is printed) for `reuse`.
    pub keep: bool,
    /// A store an earlier `keep` run left (SQLite: its directory; Postgres: the database
    /// name): the customers are not loaded again.
    pub reuse: Option<String>,
}

/// Per-call latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub n: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles.
    pub fn of(samples: &[Duration]) -> Percentiles {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let rank = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1]
        };
        Percentiles {
            n: ms.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.n
        )
    }
}

#[derive(Debug, Clone)]
pub struct LinkBenchReport {
    pub dialect: String,
    pub customers: usize,
    pub load_secs: f64,
    pub link: Percentiles,
    /// Per caller kind ("full name", "Frau <surname>", …).
    pub by_kind: Vec<(&'static str, Percentiles)>,
    /// One primary-key read round trip on the same store (the ceiling).
    pub ceiling: Percentiles,
    /// Outcome kind → calls.
    pub outcomes: BTreeMap<String, usize>,
    /// Calls whose trace says a name key was too common to read alone.
    pub too_common: usize,
    /// 1-minute load average before and after the timed part.
    pub load_avg: (f64, f64),
    /// Where a common full name's time goes: (what, customers found, time of that query).
    pub profile: Vec<(String, usize, Duration)>,
}

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

const FIRST: &[&str] = &[
    "Anna", "Peter", "Klaus", "Sabine", "Thomas", "Claudia", "Jürgen", "Monika", "Stefan", "Petra",
    "Andreas", "Andrea", "Michael", "Ursula", "Frank", "Heike", "Wolfgang", "Renate", "Tobias",
    "Daniela", "Markus", "Birgit", "Sven", "Katrin", "Jan", "Susanne", "Dieter", "Erika",
    "Matthias", "Ute", "Hans", "Eva", "Karl", "Ingrid", "Florian", "Lena", "Paul", "Laura",
    "Felix", "Lisa", "Max", "Julia", "Lukas", "Sarah", "Jonas", "Lea", "Tim", "Nina",
];
const SURNAME_HEADS: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Schulze",
    "Maier",
    "Köhler",
];
const SYLLABLES: &[&str] = &[
    "ber", "gen", "hau", "kel", "lin", "mann", "ner", "ro", "sel", "stein", "ter", "wald", "bach",
    "dorf", "feld", "hof", "horst", "kamp", "land", "mei", "rich", "sch", "tal", "zer",
];

fn surname(rng: &mut SmallRng) -> String {
    // A few very common surnames, then a long tail of rarer ones (Zipf-like).
    if rng.gen_bool(0.3) {
        let i = (rng.gen::<f64>().powi(2) * SURNAME_HEADS.len() as f64) as usize;
        return SURNAME_HEADS[i.min(SURNAME_HEADS.len() - 1)].to_string();
    }
    let n = rng.gen_range(2..=3);
    let mut s: String = (0..n)
        .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
        .collect();
    s[..1].make_ascii_uppercase();
    s
}

/// A context with the database broker (link does not publish) and simulated providers.
pub async fn ctx_for(store: Store) -> anyhow::Result<PipelineCtx> {
    let settings = BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: format!("bench_link_{}", std::process::id()),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    };
    let broker = queue::connect("database", settings, store.clone()).await?;
    Ok(PipelineCtx {
        store,
        broker,
        providers: Providers::default(),
        settings: PipelineSettings::default(),
    })
}

/// Bulk-load `n` customers (names, phones, name keys) into business `bid`; returns a sample
/// of (name, phone) to call as. Customers go in as one JSON array per 20,000 (one
/// statement), already marked keyed; their keys follow the same way
/// ([`Store::load_name_keys`]): a million customers load in minutes on either store.
pub async fn load_customers(
    store: &Store,
    bid: i64,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut rng = SmallRng::seed_from_u64(13);
    let mut sample = Vec::new();
    let now = crate::now_ms();
    const CHUNK: usize = 20_000;
    let mut next_id: i64 =
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM customers")
            .fetch_one(store.pool())
            .await?;
    let sql = match store.dialect() {
        crate::store::Dialect::Postgres => format!(
            "INSERT INTO customers (id, business_id, name, phone, is_temporary, created_at, updated_at, name_keys_version) \
             SELECT (e->>0)::BIGINT, $1, e->>1, e->>2, 0, $2, $2, {NAME_KEYS_VERSION} FROM json_array_elements($3::json) AS e"
        ),
        crate::store::Dialect::Sqlite => format!(
            "INSERT INTO customers (id, business_id, name, phone, is_temporary, created_at, updated_at, name_keys_version) \
             SELECT json_extract(value, '$[0]'), $1, json_extract(value, '$[1]'), json_extract(value, '$[2]'), 0, $2, $2, {NAME_KEYS_VERSION} \
             FROM json_each($3)"
        ),
    };
    for start in (0..n).step_by(CHUNK) {
        let mut rows: Vec<(i64, String, String)> = Vec::with_capacity(CHUNK);
        let mut keyed: Vec<(i64, Vec<String>)> = Vec::with_capacity(CHUNK);
        for i in start..(start + CHUNK).min(n) {
            let name = format!(
                "{} {}",
                FIRST[rng.gen_range(0..FIRST.len())],
                surname(&mut rng)
            );
            let phone = format!("+4930{:08}", 10_000_000 + i);
            if i % (n / 200).max(1) == 0 {
                sample.push((name.clone(), phone.clone()));
            }
            next_id += 1;
            keyed.push((next_id, name_keys(&name)));
            rows.push((next_id, name, phone));
        }
        let mut tx = store.begin_write().await?;
        sqlx::query(&sql)
            .bind(bid)
            .bind(now)
            .bind(serde_json::to_string(&rows)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        store.load_name_keys(bid, &keyed).await?;
    }
    if store.dialect() == crate::store::Dialect::Postgres {
        // Ids were given explicitly: move the sequence past them for later inserts.
        sqlx::query("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT MAX(id) FROM customers))")
            .execute(store.pool())
            .await?;
        // Statistics and visibility map as autovacuum keeps them on a store that grew
        // over time (without it, every index-only count visits the heap).
        for table in ["customers", "customer_name_keys"] {
            sqlx::query(&format!("VACUUM ANALYZE {table}"))
                .execute(store.pool())
                .await?;
        }
    }
    Ok(sample)
}

/// The sample [`load_customers`] returned when it loaded this store (ids start at 1 and
/// every `n / 200`th customer is sampled), read back from a kept store.
async fn loaded_sample(store: &Store, bid: i64, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let step = (n / 200).max(1) as i64;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, phone FROM customers WHERE business_id = $1 AND (id - 1) % $2 = 0 AND id <= $3 ORDER BY id",
    )
    .bind(bid)
    .bind(step)
    .bind(n as i64)
    .fetch_all(store.pool())
    .await?;
    anyhow::ensure!(
        !rows.is_empty(),
        "the reused store has no customers of business {bid}: run once with --keep first"
    );
    Ok(rows)
}

const KINDS: [&str; 6] = [
    "full name",
    "Frau <surname>",
    "third party",
    "known number",
    "unknown number",
    "common surname alone",
];

/// Load the customers into a new business of `store` and time the link stage.
pub async fn run_on(store: Store, b: &LinkBench) -> anyhow::Result<LinkBenchReport> {
    let ctx = ctx_for(store.clone()).await?;
    let biz = store.ensure_business("Praxis Bench").await?;
    sqlx::query("UPDATE businesses SET default_region = 'DE' WHERE id = $1")
        .bind(biz.id)
        .execute(store.pool())
        .await?;
    let started = Instant::now();
    let sample = if b.reuse.is_some() {
        loaded_sample(&store, biz.id, b.customers.max(1)).await?
    } else {
        load_customers(&store, biz.id, b.customers.max(1)).await?
    };
    let load_secs = started.elapsed().as_secs_f64();
    if b.verbose {
        println!(
            "  loaded {} customers with name keys in {load_secs:.1}s",
            b.customers
        );
    }
    // Ceiling: one primary-key read round trip, same pool, same run.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut ceiling = Vec::new();
    for _ in 0..b.calls.max(1) {
        let id = rng.gen_range(1..=b.customers.max(1) as i64);
        let t = Instant::now();
        let _: Option<String> = sqlx::query_scalar("SELECT name FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
        ceiling.push(t.elapsed());
    }
    let load_before = load_average();
    let mut times = Vec::new();
    let mut per_kind: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut too_common = 0;
    let run_tag = crate::now_ms();
    for i in 0..b.calls.max(1) {
        let (name, phone) = &sample[rng.gen_range(0..sample.len())];
        let surname = name.split_whitespace().last().unwrap_or("");
        let kind = i % KINDS.len();
        let (from, says) = match kind {
            0 => (
                "anonymous".to_string(),
                format!("Guten Tag, mein Name ist {name}."),
            ),
            1 => (
                "anonymous".to_string(),
                format!("Hallo, hier ist Frau {surname}."),
            ),
            2 => (
                "anonymous".to_string(),
                format!("Guten Tag, hier ist die Tochter von Herrn {surname}."),
            ),
            3 => (
                phone.clone(),
                "Guten Tag, ich hätte eine Frage.".to_string(),
            ),
            4 => (
                format!("+4940{:08}", i),
                "Ja, hallo, ich brauche einen Termin.".to_string(),
            ),
            _ => (
                "anonymous".to_string(),
                "Hier ist Müller, ich wollte etwas fragen.".to_string(),
            ),
        };
        let raw = serde_json::json!({"transcript": {"segments": [
            {"speaker": "agent", "start": 0.0, "end": 2.0, "text": "Praxis Bench, guten Tag, was kann ich für Sie tun?"},
            {"speaker": "caller", "start": 2.0, "end": 5.0, "text": says}]}});
        let (call, _) = store
            .ingest_call(&NewCall {
                business_id: biz.id,
                external_id: format!("bench-{run_tag}-{i}"),
                direction: "inbound".into(),
                from_number: Some(from),
                to_number: Some("+493012340000".into()),
                agent_name: None,
                campaign: None,
                language: None,
                started_at: None,
                duration_ms: 1000,
                audio_url: None,
                raw: raw.to_string(),
            })
            .await?;
        sync::run(
            &ctx,
            &call,
            &Job::new(biz.id, Stage::Sync, Some(call.id), serde_json::Value::Null),
        )
        .await
        .map_err(|e| anyhow::anyhow!("sync of bench call {i}: {e:?}"))?;
        let job = Job::new(biz.id, Stage::Link, Some(call.id), serde_json::Value::Null);
        let t = Instant::now();
        let out = link::run(&ctx, &call, &job)
            .await
            .map_err(|e| anyhow::anyhow!("link of bench call {i} ({says}): {e:?}"))?;
        let took = t.elapsed();
        times.push(took);
        per_kind[kind].push(took);
        let (out, _) = out.into_parts();
        let (label, reason) = match &out {
            Outcome::With { .. } => unreachable!("into_parts unwraps With"),
            Outcome::Next { reason } => ("next", reason),
            Outcome::Review { reason } => ("review", reason),
            Outcome::Done { reason } => ("done", reason),
        };
        if reason.contains("not read alone") {
            too_common += 1;
        }
        *outcomes.entry(label.to_string()).or_default() += 1;
    }
    let load_after = load_average();
    let profile = profile_common_name(&store, biz.id).await?;
    Ok(LinkBenchReport {
        dialect: format!("{:?}", store.dialect()).to_lowercase(),
        customers: b.customers,
        load_secs,
        link: Percentiles::of(&times),
        by_kind: KINDS
            .iter()
            .zip(&per_kind)
            .map(|(k, v)| (*k, Percentiles::of(v)))
            .collect(),
        ceiling: Percentiles::of(&ceiling),
        outcomes,
        too_common,
        load_avg: (load_before, load_after),
        profile,
    })
}

/// The candidate queries of the commonest full name, one by one: how many customers hold
/// each key, what the compound-key read (what link does) costs, and for comparison the
/// key-pair intersection it replaced and a surname read alone.
async fn profile_common_name(
    store: &Store,
    bid: i64,
) -> anyhow::Result<Vec<(String, usize, Duration)>> {
    use crate::domain::names::{compound_key, word_keys};
    let (first, sur) = (word_keys("Anna"), word_keys("Müller"));
    let pre =
        |p: &str, k: &[String]| -> Vec<String> { k.iter().map(|k| format!("{p}{k}")).collect() };
    let mut out = Vec::new();
    let mut keys = pre("l", &sur);
    keys.extend(pre("f", &first));
    let t = Instant::now();
    let counts = store.name_key_counts(bid, &keys).await?;
    out.push((format!("count keys {counts:?}"), counts.len(), t.elapsed()));
    let t = Instant::now();
    let pair = store
        .customers_by_key_pairs(bid, &[(pre("f", &first), pre("l", &sur))])
        .await?;
    out.push((
        "pair Anna x Müller (all keys)".into(),
        pair.len(),
        t.elapsed(),
    ));
    let exact = |k: &[String]| -> Vec<String> {
        k.iter().filter(|k| k.starts_with("f:")).cloned().collect()
    };
    let t = Instant::now();
    let pair = store
        .customers_by_key_pairs(bid, &[(pre("f", &exact(&first)), pre("l", &exact(&sur)))])
        .await?;
    out.push((
        "pair Anna x Müller (exact keys)".into(),
        pair.len(),
        t.elapsed(),
    ));
    let full: Vec<String> = sur
        .iter()
        .flat_map(|s| first.iter().map(move |f| compound_key(s, f)))
        .collect();
    let t = Instant::now();
    let found = store.name_candidates_by_keys(bid, &full, &[]).await?;
    out.push((
        "full name Anna Müller (compound keys, what link reads)".into(),
        found.len(),
        t.elapsed(),
    ));
    let t = Instant::now();
    let all = store
        .customers_by_keys(bid, &pre("l", &exact(&sur)))
        .await?;
    out.push(("every Müller (exact key)".into(), all.len(), t.elapsed()));
    Ok(out)
}

pub fn print(r: &LinkBenchReport) {
    println!(
        "bench link [{}]: {} customers in one business",
        r.dialect, r.customers
    );
    println!("  link::run per call:     {}", r.link);
    for (k, p) in &r.by_kind {
        println!("    {k:<22} {p}");
    }
    println!("  ceiling (one PK read):  {}", r.ceiling);
    println!(
        "  outcomes {:?}; {} calls noted a name key too common to read alone",
        r.outcomes, r.too_common
    );
    println!(
        "  load average (1 min) before/after: {:.2} / {:.2}",
        r.load_avg.0, r.load_avg.1
    );
    println!("  profile of the commonest full name's candidate queries:");
    for (what, n, t) in &r.profile {
        println!(
            "    {:>9.2} ms  {n:>7} rows  {what}",
            t.as_secs_f64() * 1000.0
        );
    }
}

/// The CLI entry: `--backend sqlite` (a temporary file) or `postgres` (a temporary database
/// next to the configured `database.url`, which must be a Postgres URL).
pub async fn run(
    config: &crate::config::Config,
    backend: &str,
    b: LinkBench,
) -> anyhow::Result<()> {
    match backend {
        "sqlite" => {
            let dir = match &b.reuse {
                Some(d) => std::path::PathBuf::from(d),
                None => std::env::temp_dir().join(format!(
                    "callops_bench_link_{}_{}",
                    std::process::id(),
                    crate::now_ms()
                )),
            };
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite:{}", dir.join("callops.db").display());
            let r = async {
                let store = Store::open_migrated(&url, 8).await?;
                let r = run_on(store.clone(), &b).await;
                store.close().await;
                r
            }
            .await;
            if b.keep || b.reuse.is_some() {
                println!("  store kept: --reuse {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            print(&r?);
            Ok(())
        }
        "postgres" => {
            let admin_url = config.database.url.clone();
            if !(admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://")) {
                anyhow::bail!(
                    "bench link --backend postgres needs a postgres:// database.url (CALLOPS_DATABASE_URL or --database-url) whose user may create databases: it creates and drops its own"
                );
            }
            let name = match &b.reuse {
                Some(n) => n.clone(),
                None => format!(
                    "callops_bench_link_{}_{}",
                    std::process::id(),
                    crate::now_ms() % 1_000_000_000
                ),
            };
            anyhow::ensure!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bench link --reuse {name:?}: expected a database name of letters, digits and _"
            );
            let admin = Store::connect(&admin_url, 1).await?;
            if b.reuse.is_none() {
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .map_err(|e| anyhow::anyhow!("creating database {name}: {e}"))?;
            }
            let url = crate::bench::console::with_database(&admin_url, &name);
            let r = async {
                let store = Store::connect_and_migrate(&url, 8).await?;
                let r = run_on(store.clone(), &b).await;
                store.close().await;
                r
            }
            .await;
            if b.keep || b.reuse.is_some() {
                println!("  database kept: --reuse {name}");
            } else {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
            }
            admin.close().await;
            print(&r?);
            Ok(())
        }
        other => anyhow::bail!("bench link --backend {other:?}: expected sqlite or postgres"),
    }
}
