//! Benchmark of the link stage with a large customer base in one business (issue 13):
//! the stage finds candidates through the name-key index (migration 0008), so a call
//! costs a few index lookups however many customers the business has.
//!
//! Not part of the normal run (it builds a million customers):
//!   CALLOPS_BENCH_CUSTOMERS=1000000 cargo test --release --test link_bench -- --ignored --nocapture
//! With CALLOPS_TEST_POSTGRES_URL set, the same runs on Postgres too.

mod common;

use callops::domain::names::name_keys;
use callops::domain::stage::Stage;
use callops::pipeline::context::{PipelineCtx, PipelineSettings, Providers};
use callops::pipeline::stages::{link, sync};
use callops::queue::{self, BrokerSettings, Job, RetryPolicy};
use callops::store::{NewCall, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::time::{Duration, Instant};

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

async fn ctx_for(store: Store) -> PipelineCtx {
    let settings = BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: common::unique("bench"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    };
    let broker = queue::connect("database", settings, store.clone())
        .await
        .unwrap();
    PipelineCtx {
        store,
        broker,
        providers: Providers::default(),
        settings: PipelineSettings::default(),
    }
}

/// Bulk-load `n` customers (names and phones) and their name keys.
async fn load(store: &Store, bid: i64, n: usize) -> Vec<(String, String)> {
    let mut rng = SmallRng::seed_from_u64(13);
    let mut sample = Vec::new();
    let started = Instant::now();
    let now = callops::now_ms();
    const CHUNK: usize = 500;
    let mut next_id: i64 =
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM customers")
            .fetch_one(store.pool())
            .await
            .unwrap();
    for chunk_start in (0..n).step_by(CHUNK * 10) {
        let mut tx = store.begin_write().await.unwrap();
        let mut keyed: Vec<(i64, Vec<String>)> = Vec::new();
        for c in (chunk_start..(chunk_start + CHUNK * 10).min(n)).step_by(CHUNK) {
            let mut values = Vec::new();
            let mut binds: Vec<String> = Vec::new();
            for i in c..(c + CHUNK).min(n) {
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
                binds.push(name.clone());
                binds.push(phone);
                values.push(format!(
                    "({next_id}, {bid}, ${}, ${}, 0, {now}, {now}, 1)",
                    binds.len() - 1,
                    binds.len()
                ));
            }
            let sql = format!(
                "INSERT INTO customers (id, business_id, name, phone, is_temporary, created_at, updated_at, name_keys_version) VALUES {}",
                values.join(",")
            );
            let mut q = sqlx::query(&sql);
            for b in &binds {
                q = q.bind(b);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        store.write_name_keys(bid, &keyed).await.unwrap();
    }
    eprintln!(
        "loaded {n} customers with name keys in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    sample
}

async fn bench(store: Store, label: &str) {
    let n: usize = std::env::var("CALLOPS_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let ctx = ctx_for(store.clone()).await;
    let b = store.ensure_business("Praxis Bench").await.unwrap();
    sqlx::query("UPDATE businesses SET default_region = 'DE' WHERE id = $1")
        .bind(b.id)
        .execute(store.pool())
        .await
        .unwrap();
    let sample = load(&store, b.id, n).await;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut times: Vec<f64> = Vec::new();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    let calls = 300;
    for i in 0..calls {
        let (name, phone) = &sample[rng.gen_range(0..sample.len())];
        let surname = name.split_whitespace().last().unwrap();
        let (from, says) = match i % 6 {
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
                business_id: b.id,
                external_id: format!("bench-{i}"),
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
            .await
            .unwrap();
        sync::run(
            &ctx,
            &call,
            &Job::new(b.id, Stage::Sync, Some(call.id), Value::Null),
        )
        .await
        .unwrap();
        let job = Job::new(b.id, Stage::Link, Some(call.id), Value::Null);
        let t = Instant::now();
        let out = link::run(&ctx, &call, &job).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let kind = format!("{out:?}");
        *outcomes
            .entry(kind.split_whitespace().next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "link bench [{label}]: {n} customers in one business, {calls} calls: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; outcomes {outcomes:?}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        times[times.len() - 1]
    );
}

#[tokio::test]
#[ignore = "benchmark: builds a million customers"]
async fn link_stage_p95_with_a_million_customers_sqlite() {
    let (store, _dir) = common::sqlite_store().await;
    bench(store, "sqlite").await;
}

#[tokio::test]
#[ignore = "benchmark: builds a million customers"]
async fn link_stage_p95_with_a_million_customers_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    bench(db.store.clone(), "postgres").await;
}
