//! Headless mirrors of the console's actions: `dlq`, `review`, `call`, `audit`, each with
//! `--json`; every action has `--dry-run`. Output meant for terminals is sanitized.

use crate::config::Config;
use crate::domain::stage::Stage;
use crate::ops::dlq::Selection;
use crate::ops::{detect_actor, Ops, Role};
use crate::store::{DeadJobFilter, DeadJobStatus};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum DlqCmd {
    /// List dead jobs (newest first)
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Group by error signature instead of listing rows
        #[arg(long)]
        groups: bool,
        #[arg(long)]
        json: bool,
    },
    /// Retry dead jobs by id, or everything matching the filter with --all
    Retry {
        ids: Vec<i64>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Everything matching the filter, not just the given ids
        #[arg(long)]
        all: bool,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Discard dead jobs (kept as history) by id, or everything matching with --all
    Discard {
        ids: Vec<i64>,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// dead (default), retried or discarded
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub business: Option<i64>,
    #[arg(long)]
    pub stage: Option<String>,
    /// Substring of the last error (case-insensitive)
    #[arg(long)]
    pub error: Option<String>,
    /// Exact error signature (see --groups)
    #[arg(long)]
    pub signature: Option<String>,
    /// Died within the last N minutes
    #[arg(long)]
    pub since_minutes: Option<i64>,
}

impl FilterArgs {
    fn to_filter(&self) -> anyhow::Result<DeadJobFilter> {
        Ok(DeadJobFilter {
            status: match self.status.as_deref() {
                None | Some("dead") => Some(DeadJobStatus::Dead),
                Some("retried") => Some(DeadJobStatus::Retried),
                Some("discarded") => Some(DeadJobStatus::Discarded),
                Some(other) => {
                    anyhow::bail!("--status {other:?}: expected dead, retried or discarded")
                }
            },
            business_id: self.business,
            stage: self
                .stage
                .as_deref()
                .map(|s| s.parse::<Stage>())
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))?,
            error_contains: self.error.clone(),
            signature: self.signature.clone(),
            dead_since: self.since_minutes.map(|m| crate::now_ms() - m * 60_000),
            ..Default::default()
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum ReviewCmd {
    /// The queue by priority, then age: one page, with the true total. Deferred items are
    /// left out until due (--deferred lists them, with reason and due time)
    List {
        /// Rows per page (the total matching is always printed; see --offset)
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Skip this many rows (the next page: --offset 50 with the default --limit)
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Only items whose call id, heard name, number, reason or business name match
        /// every word
        #[arg(long)]
        search: Option<String>,
        /// List the deferred items not yet due instead of the due ones
        #[arg(long)]
        deferred: bool,
        /// JSON: {total, deferred_total, offset, limit, rows: [...]} with candidates as objects
        #[arg(long)]
        json: bool,
    },
    /// Undo a link: the call leaves its customer and goes back to review (audited)
    Unlink {
        call: i64,
        /// Why (goes into the trace and the audit log)
        #[arg(long, default_value = "wrong link")]
        reason: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Link a call to a customer
    Link {
        call: i64,
        customer: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create a customer from the call (its extracted name and number) and link it
    CreateCustomer {
        call: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Merge a temporary customer into an existing one (moves its calls and leads)
    Merge {
        temporary: i64,
        into: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Defer a review item with a reason
    Defer {
        call: i64,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value_t = 60)]
        minutes: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CallCmd {
    /// What the call view shows: metadata, link state, transcript, analyses, trace
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Retry the failed stage
    Retry {
        id: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run QC on the call now
    Qc {
        id: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create or update the call's lead now
    Lead {
        id: i64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn ops(config: &Config) -> anyhow::Result<Ops> {
    let rt = if config.console.readonly {
        crate::pipeline::Runtime::open_readonly(config).await?
    } else {
        crate::pipeline::Runtime::open(config).await?
    };
    let configured = Role::parse(&config.console.role).ok_or_else(|| {
        anyhow::anyhow!(
            "console.role {:?}: expected viewer, support or admin",
            config.console.role
        )
    })?;
    let actor = detect_actor(&rt.ctx.store, configured).await?;
    Ok(Ops {
        store: rt.ctx.store.clone(),
        broker: rt.ctx.broker.clone(),
        actor,
        readonly: config.console.readonly,
    })
}

fn print<T: serde::Serialize + std::fmt::Debug>(
    json: bool,
    v: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let out = if json {
        crate::cli::sanitize_for_terminal(&serde_json::to_string_pretty(v)?)
    } else {
        crate::cli::sanitize_for_terminal(&text(v))
    };
    write_out(&out)
}

/// Print a line to stdout. A reader that went away (`| head`) ends the command quietly:
/// a broken pipe is not an error of ours, and Rust would otherwise panic in `println!`.
pub fn write_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(anyhow::anyhow!("writing to stdout: {e}")),
    }
}

/// A JSON text stored in a string column, as the JSON it is (a string if it is not JSON).
fn as_json(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}

/// A dead job with its payload and headers as objects.
fn dead_job_json(d: &crate::store::DeadJob) -> serde_json::Value {
    let mut v = serde_json::to_value(d).unwrap_or_default();
    v["payload"] = as_json(&d.payload);
    v["headers"] = as_json(&d.headers);
    v["dead_at_utc"] = serde_json::json!(crate::views::datetime_utc(d.dead_at));
    v
}

/// Per-stage arrays as maps keyed by stage name (`Stage::ALL` order), so a script reads
/// `backlog.transcribe`, not `backlog[1]`.
fn by_stage<T: serde::Serialize>(values: &[T]) -> serde_json::Value {
    serde_json::Value::Object(
        crate::domain::stage::Stage::ALL
            .iter()
            .zip(values)
            .map(|(s, v)| (s.as_str().to_string(), serde_json::json!(v)))
            .collect(),
    )
}

/// An overview row with labelled maps: `rates.<stage>.<window>` per minute, `backlog`,
/// `calls_60` and `failures_60` per stage.
fn overview_json(b: &crate::store::read::BizRow) -> serde_json::Value {
    let mut v = serde_json::to_value(b).unwrap_or_default();
    let windows = crate::store::read::WINDOWS_MIN;
    let rates: Vec<serde_json::Value> = b
        .rates
        .iter()
        .map(|r| {
            serde_json::Value::Object(
                windows
                    .iter()
                    .zip(r)
                    .map(|(w, x)| (format!("{w}m"), serde_json::json!(x)))
                    .collect(),
            )
        })
        .collect();
    v["rates"] = by_stage(&rates);
    v["backlog"] = by_stage(&b.backlog);
    v["calls_60"] = by_stage(&b.calls_60);
    v["failures_60"] = by_stage(&b.failures_60);
    v
}

/// The review page as JSON objects: candidates parsed (not JSON in a string), times in
/// epoch milliseconds and as UTC text.
fn review_json(p: &crate::store::read::review::ReviewPage, limit: u32) -> serde_json::Value {
    use serde_json::json;
    let utc = |t: Option<i64>| t.map(crate::views::datetime_utc);
    let rows: Vec<serde_json::Value> = p
        .rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.call).unwrap_or_default();
            let cands: serde_json::Value = r
                .call
                .review_candidates
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(json!([]));
            v["review_candidates"] = cands;
            v["deferred_until"] = json!(r.deferred_until);
            v["deferred_until_utc"] = json!(utc(r.deferred_until));
            v["deferred_reason"] = json!(r.deferred_reason);
            v["corrupt"] = json!(r.corrupt);
            v
        })
        .collect();
    json!({
        "total": p.total,
        "deferred_total": p.deferred_total,
        "offset": p.query.offset,
        "limit": limit,
        "search": p.query.text,
        "deferred": p.query.deferred,
        "rows": rows,
    })
}

/// The review page as aligned text, the true total first.
fn review_text(p: &crate::store::read::review::ReviewPage) -> String {
    let mut out = format!(
        "{} {}–{} of {}{}\n",
        if p.query.deferred {
            "deferred review items"
        } else {
            "review queue"
        },
        if p.rows.is_empty() {
            0
        } else {
            p.query.offset + 1
        },
        p.query.offset + p.rows.len() as i64,
        p.total,
        if !p.query.deferred && p.deferred_total > 0 {
            format!(" ({} deferred not listed: --deferred)", p.deferred_total)
        } else {
            String::new()
        }
    );
    for r in &p.rows {
        let c = &r.call;
        let why = match (&r.corrupt, p.query.deferred) {
            (Some(e), _) => format!("CORRUPT ROW: {e}"),
            (None, true) => format!(
                "deferred until {}: {}",
                r.deferred_until
                    .map(crate::views::datetime_utc)
                    .unwrap_or_else(|| "?".into()),
                r.deferred_reason.as_deref().unwrap_or("")
            ),
            (None, false) => c.review_reason.clone().unwrap_or_default(),
        };
        let name = crate::views::sanitize(c.extracted_name.as_deref().unwrap_or("-"));
        out.push_str(&format!(
            "call {:<8} biz {:<4} prio {:<3} {:>7} ago  number {:<9} name {}  {}\n",
            c.id,
            c.business_id,
            c.review_priority.unwrap_or(0),
            ago(c.state_since),
            crate::views::sanitize(c.number_status.as_deref().unwrap_or("?")),
            crate::views::widgets::pad(&name, 20),
            crate::views::sanitize(&why)
        ));
    }
    out.trim_end().to_string()
}

fn ago(ms: i64) -> String {
    let s = (crate::now_ms() - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub async fn dlq(config: &Config, cmd: DlqCmd) -> anyhow::Result<()> {
    let ops = ops(config).await?;
    match cmd {
        DlqCmd::List {
            filter,
            limit,
            groups,
            json,
        } => {
            let f = filter.to_filter()?;
            if groups {
                let g = ops.store.dead_job_groups(&f, limit).await?;
                print(json, &g, |g| {
                    g.iter()
                        .map(|x| format!("{:>6}  {}", x.count, x.signature))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            } else {
                let rows = ops.store.list_dead_jobs(&f, None, limit).await?;
                let total = ops.store.count_dead_jobs(&f).await?;
                if json {
                    // Payload and headers as JSON objects, not JSON inside strings.
                    let v: Vec<serde_json::Value> = rows.iter().map(dead_job_json).collect();
                    return print(
                        true,
                        &serde_json::json!({"total": total, "rows": v}),
                        |_| String::new(),
                    );
                }
                print(json, &rows, |rows| {
                    let mut out = format!("{total} dead jobs match; newest {}:\n", rows.len());
                    for d in rows {
                        out.push_str(&format!(
                            "#{:<7} {:<11} biz {:<5} call {:<8} {:>2} attempts  {:>7} ago  {}\n",
                            d.id,
                            d.stage.as_deref().unwrap_or("?"),
                            d.business_id.map(|b| b.to_string()).unwrap_or("?".into()),
                            d.call_id.map(|b| b.to_string()).unwrap_or("-".into()),
                            d.attempts,
                            ago(d.dead_at),
                            d.last_error
                        ));
                    }
                    out
                })
            }
        }
        DlqCmd::Retry {
            ids,
            filter,
            all,
            dry_run,
            json,
        } => {
            let sel = selection(ids, &filter, all)?;
            let out = ops.dlq_retry(&sel, dry_run).await?;
            print(json, &out, |o| {
                if o.dry_run {
                    format!("would retry {} dead jobs (dry run)", o.matched)
                } else {
                    format!(
                        "retried {} of {} dead jobs; {} undecodable left dead",
                        o.changed,
                        o.matched,
                        o.skipped_undecodable.len()
                    )
                }
            })
        }
        DlqCmd::Discard {
            ids,
            filter,
            all,
            dry_run,
            json,
        } => {
            let sel = selection(ids, &filter, all)?;
            let out = ops.dlq_discard(&sel, dry_run).await?;
            print(json, &out, |o| {
                if o.dry_run {
                    format!("would discard {} dead jobs (dry run)", o.matched)
                } else {
                    format!(
                        "discarded {} of {} dead jobs (kept as history)",
                        o.changed, o.matched
                    )
                }
            })
        }
    }
}

fn selection(ids: Vec<i64>, filter: &FilterArgs, all: bool) -> anyhow::Result<Selection> {
    match (ids.is_empty(), all) {
        (false, false) => Ok(Selection::Ids(ids)),
        (true, true) => Ok(Selection::Matching(filter.to_filter()?)),
        (false, true) => anyhow::bail!("give dead job ids or --all with filters, not both"),
        (true, false) => anyhow::bail!("nothing selected: give dead job ids, or --all (with --business/--stage/--error/--signature filters) for everything matching"),
    }
}

pub async fn review(config: &Config, cmd: ReviewCmd) -> anyhow::Result<()> {
    let ops = ops(config).await?;
    match cmd {
        ReviewCmd::List {
            limit,
            offset,
            search,
            deferred,
            json,
        } => {
            let q = crate::store::read::review::ReviewQuery {
                text: search.unwrap_or_default(),
                deferred,
                offset,
                ..Default::default()
            };
            let page = ops.store.review_page_at(&q, limit, crate::now_ms()).await?;
            if json {
                return print(true, &review_json(&page, limit), |_| String::new());
            }
            print(false, &page, review_text)
        }
        ReviewCmd::Unlink {
            call,
            reason,
            dry_run,
            json,
        } => {
            let o = ops.review_unlink(call, &reason, dry_run).await?;
            print(json, &o, |o| {
                format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
            })
        }
        ReviewCmd::Link {
            call,
            customer,
            dry_run,
            json,
        } => {
            let o = ops.review_link(call, customer, dry_run).await?;
            print(json, &o, |o| {
                format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
            })
        }
        ReviewCmd::CreateCustomer {
            call,
            name,
            dry_run,
            json,
        } => {
            let o = ops
                .review_create_customer(call, name.as_deref(), dry_run)
                .await?;
            print(json, &o, |o| {
                format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
            })
        }
        ReviewCmd::Merge {
            temporary,
            into,
            dry_run,
            json,
        } => {
            let o = ops.review_merge(temporary, into, dry_run).await?;
            print(json, &o, |o| {
                format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
            })
        }
        ReviewCmd::Defer {
            call,
            reason,
            minutes,
            dry_run,
            json,
        } => {
            let o = ops.review_defer(call, &reason, minutes, dry_run).await?;
            print(json, &o, |o| {
                format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
            })
        }
    }
}

pub async fn call(config: &Config, cmd: CallCmd) -> anyhow::Result<()> {
    if let CallCmd::Show { id, json } = cmd {
        let snap = view_data(config, crate::views::Route::Call(id)).await?;
        let detail = snap.parts.call.and_then(|(_, d)| d).ok_or_else(|| {
            anyhow::anyhow!(
                "no call {id} (ids are numbers: see `callops calls stuck` or the review list)"
            )
        })?;
        return print(json, &detail, |d| {
            let c = &d.call;
            let mut out = format!(
                "call {} · {} · {} · at {} for {} · attempts {}\nfrom {} ({}) · link {} via {} · lead {}\n",
                c.id,
                d.business_name.as_deref().unwrap_or("?"),
                c.external_id,
                c.position(),
                crate::views::age(crate::now_ms() - c.state_since),
                c.attempts,
                c.from_number.as_deref().unwrap_or("-"),
                c.number_status.as_deref().unwrap_or("?"),
                c.link_status.as_deref().unwrap_or("-"),
                c.link_method.as_deref().unwrap_or("-"),
                c.lead_id.map(|l| format!("#{l}")).unwrap_or_else(|| "-".into()),
            );
            if let Some(e) = &c.last_error {
                out.push_str(&format!("last error: {e}\n"));
            }
            if let Some(t) = &d.transcript {
                out.push_str("transcript:\n");
                let segs: Vec<serde_json::Value> =
                    serde_json::from_str(&t.segments).unwrap_or_default();
                for seg in &segs {
                    out.push_str(&format!(
                        "  {:>7} {}: {}\n",
                        seg["start"].to_string(),
                        seg["speaker"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| seg["speaker"].to_string()),
                        seg["text"].as_str().unwrap_or("")
                    ));
                }
            }
            for a in &d.analyses {
                out.push_str(&format!(
                    "analysis {} v{}: {}\n",
                    a.kind, a.agent_version, a.result
                ));
            }
            out.push_str("trace:\n");
            for e in &d.events {
                out.push_str(&format!(
                    "  {} {:<10} {:<12} {}\n",
                    crate::views::clock(e.at),
                    e.stage,
                    e.kind,
                    e.reason
                ));
            }
            out
        });
    }
    let ops = ops(config).await?;
    let (o, json) = match cmd {
        CallCmd::Retry { id, dry_run, json } => (ops.call_retry(id, dry_run).await?, json),
        CallCmd::Qc { id, dry_run, json } => (ops.call_qc(id, dry_run).await?, json),
        CallCmd::Lead { id, dry_run, json } => (ops.call_lead(id, dry_run).await?, json),
        CallCmd::Show { .. } => unreachable!("handled above"),
    };
    print(json, &o, |o| {
        format!("{}{}", if o.dry_run { "would " } else { "" }, o.did)
    })
}

pub async fn audit(config: &Config, limit: u32, json: bool) -> anyhow::Result<()> {
    let store = crate::store::Store::open_migrated(&config.database.url, 2).await?;
    let rows = store.audit_log(limit).await?;
    print(json, &rows, |rows| {
        rows.iter()
            .map(|a| {
                format!(
                    "{:>7} ago  {:<12} {:<8} {:<22} {:<30} {} → {}",
                    ago(a.at),
                    a.actor,
                    a.role,
                    a.action,
                    a.target,
                    a.before.as_deref().unwrap_or("-"),
                    a.after.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// One refresh of a view, exactly as the console fetches it (same queries, same broker).
async fn view_data(
    config: &Config,
    route: crate::views::Route,
) -> anyhow::Result<crate::console::refresher::Snapshot> {
    let store = if config.console.readonly {
        crate::store::Store::open_readonly(&config.database.url, 4).await?
    } else {
        crate::store::Store::open_migrated(&config.database.url, 4).await?
    };
    let broker =
        crate::queue::connect(&config.broker.kind, config.broker_settings(), store.clone()).await?;
    let settings = crate::console::settings::ConsoleSettings::from_config(&config.console);
    let snap = crate::console::refresher::fetch(
        &store,
        crate::console::refresher::Queues::Broker(&*broker),
        route,
        &settings,
        crate::now_ms(),
    )
    .await;
    broker.close().await;
    for (what, a) in [("database", &snap.db), ("broker", &snap.broker)] {
        if let crate::console::refresher::Answer::Failed(e) = a {
            anyhow::bail!("the {what} did not answer: {e}");
        }
    }
    Ok(snap)
}

/// `callops overview`: the overview's rows (per business, per stage, last hour).
pub async fn overview(config: &Config, json: bool) -> anyhow::Result<()> {
    let snap = view_data(config, crate::views::Route::Overview).await?;
    let rows = snap.parts.overview.unwrap_or_default();
    if json {
        let v: Vec<serde_json::Value> = rows.iter().map(overview_json).collect();
        return print(true, &v, |_| String::new());
    }
    print(json, &rows, |rows| {
        let mut out = format!(
            "{:<24} {:>9} {:>8} {:>8} {:>6} {:>5} {:>6} {:>10}\n",
            "business", "done/min", "queued", "oldest", "err%", "dlq", "review", "audio m/h"
        );
        for b in rows {
            out.push_str(&format!(
                "{:<24} {:>9.1} {:>8} {:>8} {:>6.1} {:>5} {:>6} {:>10.0}\n",
                crate::views::widgets::cut(&b.name, 24),
                b.rates[4][1],
                b.backlog_total(),
                b.oldest_job_age_ms
                    .map(crate::views::age)
                    .unwrap_or_else(|| "-".into()),
                b.error_rate * 100.0,
                b.dlq,
                b.review,
                b.audio_min_per_hour
            ));
        }
        out
    })
}

/// `callops calls stuck`: calls past their stage's SLA, oldest first.
pub async fn calls_stuck(config: &Config, json: bool) -> anyhow::Result<()> {
    let snap = view_data(config, crate::views::Route::Stuck).await?;
    let names = snap.parts.names.unwrap_or_default();
    let stuck = snap.parts.stuck.unwrap_or_default();
    if json {
        let mut v = serde_json::to_value(&stuck)?;
        v["by_stage"] = by_stage(&stuck.by_stage);
        v["slas_ms"] = by_stage(&stuck.slas_ms);
        return print(true, &v, |_| String::new());
    }
    print(json, &stuck, |s| {
        let now = crate::now_ms();
        let per_stage = crate::domain::stage::Stage::ALL
            .iter()
            .zip(s.by_stage)
            .filter(|(_, n)| *n > 0)
            .map(|(st, n)| format!("{} {n}", st.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!("{} stuck ({per_stage}); oldest first:\n", s.total());
        for c in &s.calls {
            out.push_str(&format!(
                "{:>8} {:<22} {:<10} {:<9} {:>8} try {:<2} {}\n",
                c.id,
                crate::views::widgets::cut(
                    names.get(&c.business_id).map(String::as_str).unwrap_or("?"),
                    22
                ),
                c.stage.as_str(),
                c.state.as_str(),
                crate::views::age(now - c.state_since),
                c.attempts,
                c.last_error.as_deref().unwrap_or("-")
            ));
        }
        out
    })
}
