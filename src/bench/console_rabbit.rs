//! `callops bench console --rabbitmq`: the overview refresh the live console makes on
//! RabbitMQ. Declares one work queue per business and stage under a unique prefix (one job
//! in each, so depths are not all zero), then runs what `refresher::run` runs: a
//! `BrokerFeed` reading the broker in the background and `refresher::fetch_filtered` with
//! `Queues::Feed`, with the rows on screen, and with every business (sorting by backlog
//! needs them all), without and with the management API. For each it reports the refresh
//! latency, the broker-only latency (the feed's polls, each a full read of the wanted
//! queues and the dead-letter queues) and the age of the broker figures the refreshes
//! showed. Beside them, the raw ceilings measured in the same run: one bare passive declare
//! round trip, and the bare filtered management request the broker makes. The queues are
//! deleted afterwards.

use super::console::Stats;
use crate::console::broker_feed::BrokerFeed;
use crate::console::refresher::{fetch_filtered, Answer, Queries, Queues};
use crate::console::settings::ConsoleSettings;
use crate::domain::stage::Stage;
use crate::queue::rabbitmq::{management_filter, management_query, RabbitBroker};
use crate::queue::{Broker, BrokerSettings, Job, RetryPolicy};
use crate::store::Store;
use crate::views::Route;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the RabbitMQ part runs.
#[derive(Debug, Clone)]
pub struct RabbitTarget {
    pub amqp_url: String,
    /// Also measure with the management API (`http://user:pass@host:15672`).
    pub management_url: Option<String>,
}

/// One way of refreshing: its latency and what each refresh cost the broker.
#[derive(Debug, Clone)]
pub struct PathFigures {
    pub label: String,
    /// `fetch_filtered` as the live console calls it (database + merge of the feed's figures).
    pub refresh: Stats,
    /// The feed's polls: the broker-only latency.
    pub broker: Stats,
    /// How old the on-screen rows' broker figures were when each refresh finished.
    pub figures_age: Stats,
    pub declares_per_poll: f64,
    pub requests_per_poll: f64,
}

#[derive(Debug, Clone)]
pub struct RabbitReport {
    pub queues: usize,
    pub on_screen: usize,
    pub declare_secs: f64,
    pub paths: Vec<PathFigures>,
    /// One bare passive declare round trip.
    pub ceiling_declare: Stats,
    /// The bare filtered management request for the rows on screen / page 1 of all.
    pub ceiling_mgmt_on_screen: Option<Stats>,
    pub ceiling_mgmt_all: Option<Stats>,
    pub load_avg: (f64, f64),
}

/// Rows an overview on a 160x45 terminal shows.
pub const ON_SCREEN: usize = 38;

/// Pause between timed refreshes (the console's default is 2 s; the feed polls every 1 s
/// whatever the pace, so this only shortens the run).
const PACE: Duration = Duration::from_millis(500);

pub async fn measure(
    store: &Store,
    now: i64,
    target: &RabbitTarget,
    refreshes: u32,
    verbose: bool,
) -> anyhow::Result<RabbitReport> {
    let prefix = format!(
        "bench_console_{}_{}",
        std::process::id(),
        crate::now_ms() % 1_000_000_000
    );
    let settings = |mgmt: Option<String>| BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1000),
            tiers: 2,
        },
        prefix: prefix.clone(),
        amqp_url: target.amqp_url.clone(),
        management_url: mgmt,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(200),
    };
    let plain = Arc::new(RabbitBroker::connect(store.clone(), settings(None)).await?);
    let r = async {
        let businesses = store.active_business_ids().await?;
        let t = Instant::now();
        let jobs: Vec<Job> = businesses
            .iter()
            .flat_map(|b| {
                Stage::ALL
                    .iter()
                    .map(move |s| Job::new(*b, *s, None, serde_json::Value::Null))
            })
            .collect();
        for chunk in jobs.chunks(500) {
            plain.publish_many(chunk).await?;
        }
        let declare_secs = t.elapsed().as_secs_f64();
        if verbose {
            println!(
                "  rabbitmq: {} work queues under prefix {prefix} declared (one job each) in {declare_secs:.1}s",
                jobs.len()
            );
        }
        let load_before = super::link::load_average();
        let on_screen: Vec<i64> = businesses.iter().copied().take(ON_SCREEN).collect();
        let console = ConsoleSettings {
            role: "admin".into(),
            ..Default::default()
        };
        let mut paths = Vec::new();
        let mgmt = match &target.management_url {
            Some(u) => Some(Arc::new(
                RabbitBroker::connect(store.clone(), settings(Some(u.clone()))).await?,
            )),
            None => None,
        };
        if let Some(m) = &mgmt {
            wait_for_management(m, &on_screen).await?;
        }
        for (broker, label) in [
            (Some(&plain), "passive declares"),
            (mgmt.as_ref(), "management API"),
        ] {
            let Some(broker) = broker else { continue };
            for (scope, ids) in [("rows on screen", Some(on_screen.clone())), ("every business", None)] {
                let q = Queries {
                    known_businesses: businesses.clone(),
                    on_screen: ids.clone(),
                    ..Default::default()
                };
                let before = broker.stats_cost();
                // What `refresher::run` starts: a feed at the console's cadence.
                let feed = BrokerFeed::spawn(
                    broker.clone() as Arc<dyn Broker>,
                    BrokerFeed::period_for(console.refresh_ms),
                    Duration::from_millis(console.timeout_ms),
                );
                let (mut times, mut ages) = (Vec::new(), Vec::new());
                let n = refreshes.max(1) + 2;
                for i in 0..n {
                    if i > 0 {
                        tokio::time::sleep(PACE).await;
                    }
                    let t = Instant::now();
                    let snap = fetch_filtered(store, Queues::Feed(&feed), Route::Overview, &console, now, &q).await;
                    let took = t.elapsed();
                    for a in [&snap.db, &snap.broker] {
                        if let Answer::Failed(e) = a {
                            anyhow::bail!("overview refresh over RabbitMQ ({label}, {scope}) failed: {e}");
                        }
                    }
                    let rows = snap.parts.overview.unwrap_or_default();
                    let shown: Vec<_> = rows.iter().filter(|r| on_screen.contains(&r.id)).collect();
                    let backlog: u64 = shown.iter().map(|r| r.backlog_total()).sum();
                    if backlog != 5 * on_screen.len() as u64 {
                        anyhow::bail!(
                            "overview over RabbitMQ ({label}, {scope}) shows a backlog of {backlog} on screen, expected {} (one job per queue)",
                            5 * on_screen.len()
                        );
                    }
                    let age = shown
                        .iter()
                        .map(|r| r.queues_at.map(|at| snap.finished_at - at))
                        .collect::<Option<Vec<i64>>>()
                        .and_then(|v| v.into_iter().max());
                    let Some(age) = age else {
                        anyhow::bail!("overview over RabbitMQ ({label}, {scope}): rows on screen without broker figures");
                    };
                    if i >= 2 {
                        // The first two warm up connections and plans (and wait for the
                        // feed's first read).
                        times.push(took);
                        ages.push(Duration::from_millis(age.max(0) as u64));
                    }
                }
                let latencies = feed.poll_latencies();
                let polls = feed.stop().await.polls.max(1) as f64;
                let after = broker.stats_cost();
                let declares = (after.passive_declares - before.passive_declares) as f64 / polls;
                // The management path falls back to passive declares when the API fails:
                // figures labelled "management API" must not be those.
                anyhow::ensure!(
                    label != "management API" || declares <= 5.0,
                    "the management API did not answer every poll ({declares:.0} passive declares per poll): \
                     its figures would be the passive path's; is the management plugin enabled?"
                );
                let f = PathFigures {
                    label: format!("{label}, {scope} ({} businesses)", ids.as_ref().map_or(businesses.len(), |v| v.len())),
                    refresh: Stats::of(&times),
                    // The first poll opens channels (and is waited for by the warm-up).
                    broker: Stats::of(latencies.get(1..).unwrap_or(&[])),
                    figures_age: Stats::of(&ages),
                    declares_per_poll: declares,
                    requests_per_poll: (after.management_requests - before.management_requests) as f64 / polls,
                };
                if verbose {
                    println!("  over RabbitMQ, {}:", f.label);
                    println!("    refresh overview (db + merge)   {}", f.refresh);
                    println!(
                        "    broker only (feed poll)         {}  ({:.0} declares, {:.1} API requests per poll)",
                        f.broker, f.declares_per_poll, f.requests_per_poll
                    );
                    println!("    age of figures shown            {}", f.figures_age);
                }
                paths.push(f);
            }
        }
        // Raw ceilings, same run.
        let conn = Connection::connect(&target.amqp_url, ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        let probe = format!("{prefix}.{}", Stage::Sync.queue_for(businesses[0]));
        let mut declares = Vec::new();
        for _ in 0..refreshes.max(1) * 4 {
            let t = Instant::now();
            ch.queue_declare(
                probe.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
            declares.push(t.elapsed());
        }
        let _ = conn.close(200, "bench done".into()).await;
        let ceiling_declare = Stats::of(&declares);
        let (mut ceiling_mgmt_on_screen, mut ceiling_mgmt_all) = (None, None);
        if let Some(base) = &target.management_url {
            let http = reqwest::Client::new();
            for (ids, slot) in [(&on_screen, &mut ceiling_mgmt_on_screen), (&businesses, &mut ceiling_mgmt_all)] {
                let filter = management_filter(&prefix, ids);
                let (url, query, (user, pass)) = management_query(base, &target.amqp_url, &filter, 1);
                let mut times = Vec::new();
                for _ in 0..refreshes.max(1) {
                    let mut req = http.get(&url).query(&query);
                    if !base.contains('@') {
                        req = req.basic_auth(&user, Some(&pass));
                    }
                    let t = Instant::now();
                    let body = req.send().await?.error_for_status()?.bytes().await?;
                    times.push(t.elapsed());
                    anyhow::ensure!(!body.is_empty(), "empty management API answer");
                }
                *slot = Some(Stats::of(&times));
            }
        }
        let load_after = super::link::load_average();
        if verbose {
            println!("  ceiling: one bare passive declare round trip        {ceiling_declare}");
            if let (Some(a), Some(b)) = (&ceiling_mgmt_on_screen, &ceiling_mgmt_all) {
                println!("  ceiling: one bare filtered API request, on screen   {a}");
                println!("  ceiling: one bare filtered API page (500), all      {b}");
            }
            println!("  load average (1 min) before/after: {load_before:.2} / {load_after:.2}");
        }
        if let Some(m) = mgmt {
            m.close().await;
        }
        anyhow::Ok(RabbitReport {
            queues: jobs.len(),
            on_screen: on_screen.len(),
            declare_secs,
            paths,
            ceiling_declare,
            ceiling_mgmt_on_screen,
            ceiling_mgmt_all,
            load_avg: (load_before, load_after),
        })
    }
    .await;
    if let Err(e) = plain.delete_topology().await {
        eprintln!("warning: could not delete the bench queues under {prefix}: {e}");
    }
    plain.close().await;
    r
}

/// The management API samples queue figures every few seconds: wait until it lists the
/// jobs just published before timing it.
async fn wait_for_management(m: &RabbitBroker, on_screen: &[i64]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = m.stats_cost();
        let stats = m.queue_stats(on_screen).await?;
        anyhow::ensure!(
            m.stats_cost().passive_declares == before.passive_declares,
            "the management API did not answer (the figures came from passive declares): is the \
             management plugin enabled and CALLOPS_BROKER_MANAGEMENT_URL right?"
        );
        let depth: u64 = stats.iter().map(|q| q.depth).sum();
        if depth == 5 * on_screen.len() as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the management API still lists {depth} jobs on screen after 30 s, expected {} (is the management plugin enabled and the URL right?)",
                5 * on_screen.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
