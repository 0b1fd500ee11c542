//! Prometheus metrics of the real `callops worker --metrics-addr`: a real Prometheus server
//! (its own config in a temp dir, its own port, 1 s scrapes, the project's alert rules
//! loaded) scrapes a running worker and answers a PromQL query for the calls the test
//! drove; and after a run, every metric matches what the database says.

mod common;

use callops::pipeline::simulate::{self, SimulateOptions};
use callops::queue::{self, BrokerSettings, RetryPolicy};
use callops::store::Store;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn settings() -> BrokerSettings {
    BrokerSettings {
        policy: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            tiers: 2,
        },
        prefix: common::unique("metrics"),
        amqp_url: String::new(),
        management_url: None,
        visibility_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
    }
}

async fn seed(store: &Store, businesses: usize, calls: u64) {
    let broker = queue::connect("database", settings(), store.clone())
        .await
        .unwrap();
    let (_never_tx, never) = tokio::sync::watch::channel(false);
    let report = simulate::run(
        store,
        &*broker,
        SimulateOptions {
            businesses,
            calls_per_minute: 600_000.0,
            total_calls: Some(calls),
            seed: 11,
            customers_per_business: 10,
        },
        never,
    )
    .await
    .unwrap();
    assert_eq!(report.ingested, calls);
    broker.close().await;
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The real worker binary with /metrics on a port it picks; returns it and the address.
fn worker(
    dir: &std::path::Path,
    url: &str,
    stages: &str,
    permanent_rate: &str,
) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callops"))
        .args([
            "--database-url",
            url,
            "--data-dir",
            &dir.display().to_string(),
            "worker",
            "--stages",
            stages,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env_remove("CALLOPS_DATABASE_URL")
        .env("CALLOPS_BROKER", "database")
        .env("CALLOPS_BROKER_POLL_INTERVAL_MS", "50")
        .env("CALLOPS_BROKER_MAX_ATTEMPTS", "2")
        .env("CALLOPS_BROKER_RETRY_BASE_MS", "100")
        .env("CALLOPS_BROKER_RETRY_TIERS", "2")
        .env("CALLOPS_SIMULATED_STT_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_LLM_LATENCY_MS", "5")
        .env("CALLOPS_SIMULATED_JITTER", "0")
        .env("CALLOPS_SIMULATED_TRANSIENT_RATE", "0")
        .env("CALLOPS_SIMULATED_PERMANENT_RATE", permanent_rate)
        .env("CALLOPS_SIMULATED_MALFORMED_RATE", "0")
        .env("CALLOPS_METRICS_REFRESH_MS", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting callops worker");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("worker: metrics on http://") {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker announces its metrics address");
    (Killed(child), addr)
}

/// Wait (bounded) until every call left the stages this run works on.
async fn settled(store: &Store, not_settled_sql: &str) {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let left = count(store, not_settled_sql).await;
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{left} calls still moving: {not_settled_sql}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `name{labels} value` lines → (name, labels, value).
fn parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        out.push((name.to_string(), labels, value.parse().unwrap()));
    }
    out
}

fn sum(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    want: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).is_some_and(|x| v.split('|').any(|v| v == x)))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn metric_values_match_the_database_after_a_run() {
    let (store, dir) = common::sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    seed(&store, 3, 60).await;
    // Every stage but notify: calls pile up in the notify queues, where the queue gauges
    // must count them; some die (permanent provider errors) and some wait in review.
    let (_worker, addr) = worker(dir.path(), &url, "sync,transcribe,analyze,link", "0.1");
    settled(
        &store,
        "SELECT COUNT(*) FROM calls WHERE NOT (state IN ('dead', 'review', 'done') OR (stage = 'notify' AND state = 'pending'))",
    )
    .await;
    // Past the gauge cache (200 ms) so the scrape reads the settled database.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse(&text);

    // Stage completions = the throughput rows the same transactions wrote, per stage.
    for stage in ["sync", "transcribe", "analyze", "link"] {
        let db = count(
            &store,
            &format!("SELECT COALESCE(SUM(calls), 0) FROM throughput WHERE stage = '{stage}'"),
        )
        .await;
        let got = sum(
            &m,
            "callops_stage_runs_total",
            &[("stage", stage), ("outcome", "completed|review|done")],
        );
        assert_eq!(got, db as f64, "{stage} completions\n{text}");
        assert!(db > 0, "{stage} ran");
    }
    let dead = count(
        &store,
        "SELECT COUNT(*) FROM dead_jobs WHERE status = 'dead'",
    )
    .await;
    assert!(dead > 0, "the run produced dead jobs to count");
    assert_eq!(sum(&m, "callops_dlq_size", &[]), dead as f64, "{text}");
    assert_eq!(
        sum(&m, "callops_stage_runs_total", &[("outcome", "dead")]),
        dead as f64,
        "dead outcomes = dead jobs"
    );
    let review = count(&store, "SELECT COUNT(*) FROM calls WHERE state = 'review'").await;
    assert_eq!(
        sum(&m, "callops_review_backlog", &[]),
        review as f64,
        "{text}"
    );
    let at_notify = count(&store, "SELECT COUNT(*) FROM jobs WHERE stage = 'notify'").await;
    assert!(at_notify > 0);
    assert_eq!(
        sum(&m, "callops_queue_depth", &[("stage", "notify")]),
        at_notify as f64,
        "{text}"
    );
    assert_eq!(
        sum(
            &m,
            "callops_queue_depth",
            &[("stage", "sync|transcribe|analyze|link")]
        ),
        0.0
    );
    // Link outcomes by method = the calls' link columns.
    let linked: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT link_status, link_method, COUNT(*) FROM calls WHERE link_status IS NOT NULL GROUP BY link_status, link_method",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut total = 0;
    for (status, method, n) in linked {
        let label = match (status.as_deref(), method.as_deref()) {
            (Some("review"), _) => "review".to_string(),
            (_, Some(m)) => m.to_string(),
            (Some(s), None) => s.to_string(),
            _ => unreachable!(),
        };
        assert_eq!(
            sum(&m, "callops_link_outcomes_total", &[("method", &label)]),
            n as f64,
            "link method {label}\n{text}"
        );
        total += n;
    }
    assert!(total > 0);
    // Provider requests were timed: one successful STT request per transcript the STT
    // provider made (records that brought their own transcript skip STT).
    let transcribed = count(
        &store,
        "SELECT COUNT(*) FROM transcripts WHERE stt_skipped IS NULL",
    )
    .await;
    assert!(transcribed > 0);
    assert_eq!(
        sum(
            &m,
            "callops_provider_request_duration_seconds_count",
            &[("kind", "stt"), ("result", "ok")]
        ),
        transcribed as f64,
        "{text}"
    );
    assert_eq!(sum(&m, "callops_metrics_collect_ok", &[]), 1.0);
    // Each business has its own label (3 < metrics.top_businesses).
    let names: std::collections::BTreeSet<&String> = m
        .iter()
        .filter(|(n, _, _)| n == "callops_dlq_size")
        .filter_map(|(_, l, _)| l.get("business"))
        .collect();
    assert_eq!(names.len(), 4, "three businesses and other: {names:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_worker_and_answers_promql() {
    let Ok(prometheus) = which("prometheus") else {
        if common::in_ci() {
            panic!("CI=true but the prometheus binary is missing (.ci/run installs the Debian package prometheus)");
        }
        eprintln!("skipped: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let (store, dir) = common::sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("callops.db").display());
    let calls = 12;
    seed(&store, 2, calls).await;
    let (_worker, addr) = worker(dir.path(), &url, "sync,transcribe,analyze,link,notify", "0");

    let prom_dir = tempfile::tempdir().unwrap();
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/alerts.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: callops\n    static_configs:\n      - targets: ['{addr}']\n",
        rules.display()
    );
    std::fs::write(prom_dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let _prom = Killed(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                prom_dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus"),
    );

    // Every call passes sync exactly once (no failures configured): PromQL must say so.
    let query = r#"sum(callops_stage_runs_total{stage="sync",outcome="completed"})"#;
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    loop {
        let answer = http
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await;
        if let Ok(r) = answer {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                last = v.to_string();
                let value = v["data"]["result"][0]["value"][1].as_str().unwrap_or("");
                if value == calls.to_string() {
                    break;
                }
            }
        }
        assert!(
            Instant::now() < until,
            "Prometheus never answered {calls} for {query}; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The scrape target is up, and the project's alert rules loaded into the server.
    let up: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", "up{job=\"callops\"}")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let rules: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"CallopsDlqGrowing"), "{rules}");
    assert!(names.contains(&"CallopsAnonymousLinkRateLow"), "{rules}");
}

fn which(bin: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(bin))
                .find(|p| p.is_file())
        })
        .ok_or(())
}
