//! Command line: parse, load config, dispatch. Everything else lives in the layers below.

use crate::config::{Config, Overrides};
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub mod business;
pub mod headless;
pub mod outbound;
pub mod pipeline_cmds;
pub mod roles;

#[derive(Parser, Debug)]
#[command(
    name = "callops",
    version,
    about = "Post-call analytics pipeline and its operations console"
)]
pub struct Cli {
    /// Config file merged over the embedded defaults (env CALLOPS_CONFIG)
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://… (env CALLOPS_DATABASE_URL)
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Broker backend: database or rabbitmq (env CALLOPS_BROKER)
    #[arg(long, global = true)]
    pub broker: Option<String>,
    /// RabbitMQ URL (env CALLOPS_AMQP_URL)
    #[arg(long, global = true)]
    pub amqp_url: Option<String>,
    /// Data directory for the embedded database and logs (env CALLOPS_DATA_DIR)
    #[arg(long, global = true)]
    pub data_dir: Option<String>,
    /// Override any config key: --set broker.prefetch=50 (repeatable)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the operations console (the default)
    Console {
        /// Hide and refuse every action, whatever the role
        #[arg(long)]
        readonly: bool,
    },
    /// Render a view with the real renderer against deterministic demo data, to PNG
    Screenshot {
        /// overview, stuck, dlq, review, audit, call, help — or "all" into --out as a directory
        #[arg(long)]
        view: String,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 160)]
        width: u16,
        #[arg(long, default_value_t = 45)]
        height: u16,
    },
    /// Apply database migrations
    Migrate,
    /// Print the effective configuration (after files, env and flags)
    Config,
    /// Measure throughput
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run the whole system on embedded defaults
    Demo {
        /// Stop after this many seconds (0 = until Ctrl-C)
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// Print a one-screen summary every second instead of opening the console
        #[arg(long)]
        headless: bool,
        /// Calls per minute the load generator produces
        #[arg(long, default_value_t = 120.0)]
        calls_per_minute: f64,
    },
    /// Run stage workers
    Worker {
        /// Stages to consume (default: all)
        #[arg(long, value_delimiter = ',')]
        stages: Vec<String>,
        /// Handlers in flight per stage
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Serve Prometheus metrics on HOST:PORT at /metrics (e.g. 127.0.0.1:9464)
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<String>,
    },
    /// Ingest JSONL call records from a file or - (stdin)
    Ingest {
        file: String,
        /// Create the businesses the records name (by default a record for a business that
        /// does not exist is refused: `callops business add NAME` first)
        #[arg(long)]
        create_businesses: bool,
    },
    /// Per-business pipeline settings: add, set, show, list, apply (from config)
    Business {
        #[command(subcommand)]
        cmd: crate::cli::business::BusinessCmd,
    },
    /// Database roles on Postgres: grant a login viewer, support or admin (run as the owner)
    Roles {
        #[command(subcommand)]
        cmd: crate::cli::roles::RolesCmd,
    },
    /// Import a business's existing customers or leads (JSONL, or CSV when the file ends in .csv)
    Import {
        #[arg(value_parser = ["customers", "leads"])]
        kind: String,
        file: String,
    },
    /// Sync a business's leads from its CRM (incremental, with a watermark)
    Sync {
        #[command(subcommand)]
        what: SyncWhat,
    },
    /// Generate realistic call traffic
    Simulate {
        #[arg(long, default_value_t = 6)]
        businesses: usize,
        #[arg(long, default_value_t = 120.0)]
        calls_per_minute: f64,
        /// Stop after this many calls
        #[arg(long)]
        calls: Option<u64>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Dead jobs: list, retry, discard
    Dlq {
        #[command(subcommand)]
        cmd: crate::cli::headless::DlqCmd,
    },
    /// The manual-review queue: list (paged, searched, deferred), link, unlink, create-customer, merge, defer
    Review {
        #[command(subcommand)]
        cmd: crate::cli::headless::ReviewCmd,
    },
    /// One call: show, retry, qc, lead
    Call {
        #[command(subcommand)]
        cmd: crate::cli::headless::CallCmd,
    },
    /// The overview's data (per business, per stage, last hour), for scripts and alerts
    Overview {
        #[arg(long)]
        json: bool,
    },
    /// Calls views: `calls stuck` lists calls past their stage's SLA
    Calls {
        #[arg(value_parser = ["stuck"])]
        which: String,
        #[arg(long)]
        json: bool,
    },
    /// Who did what: the audit log, newest first
    Audit {
        /// Entries to print (newest first)
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Receive provider webhooks (Retell, Telnyx, Twilio) at /hooks/{business}/{provider}
    Serve {
        /// Address to bind, e.g. 0.0.0.0:8088 (default: [serve] listen; port 0 = any free port)
        #[arg(long)]
        listen: Option<String>,
    },
    /// AI voice agents: `agents voice add|set|list`
    Agents {
        #[command(subcommand)]
        cmd: crate::cli::outbound::AgentsCmd,
    },
    /// Lead form/source/campaign → voice agent mappings: add, list
    Mappings {
        #[command(subcommand)]
        cmd: crate::cli::outbound::MappingsCmd,
    },
    /// Outbound AI calls for new leads: config, list, call, call-unmapped, dispatch
    Outbound {
        #[command(subcommand)]
        cmd: crate::cli::outbound::OutboundCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum SyncWhat {
    /// Leads modified in the business's CRM since the last sync → the leads table
    Leads {
        /// Business name (exact)
        #[arg(long)]
        business: String,
        #[arg(long, default_value_t = 200)]
        page_size: u32,
        #[arg(long)]
        json: bool,
    },
    /// New rows of a call-records table in the business's own database → ingest
    Source {
        /// Business name (exact)
        #[arg(long)]
        business: String,
        /// The source database: sqlite:PATH, postgres://… or mysql://… (MariaDB too)
        #[arg(long)]
        url: String,
        #[arg(long)]
        table: String,
        #[arg(long, default_value = "id")]
        id_column: String,
        /// An integer (epoch ms) or text column that sorts in change order
        #[arg(long, default_value = "updated_at")]
        watermark_column: String,
        #[arg(long, default_value_t = 500)]
        batch: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Publish, consume and round-trip rates of a broker backend
    Broker {
        #[arg(long, default_value = "database")]
        backend: String,
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Also measure a plain lapin publish-with-confirms/consume-with-ack loop (RabbitMQ baseline)
        #[arg(long)]
        raw: bool,
    },
    /// End-to-end calls/s, CPU per call, audio minutes/hour and peak memory of the pipeline
    Pipeline {
        #[arg(long, default_value = "database")]
        backend: String,
        #[arg(long, default_value_t = 2000)]
        calls: u64,
        /// Handlers in flight per stage
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Simulated STT latency (e.g. 30000 for the slow-provider run)
        #[arg(long, default_value_t = 0)]
        stt_latency_ms: u64,
        #[arg(long, default_value_t = 0)]
        llm_latency_ms: u64,
        /// Inject the configured simulated failure rates
        #[arg(long)]
        failures: bool,
        /// Also list the statements per call by SQL text
        #[arg(long)]
        statements: bool,
    },
    /// SQL statements per second of one idle worker over many businesses
    Idle {
        #[arg(long, default_value = "database")]
        backend: String,
        #[arg(long, default_value_t = 1000)]
        businesses: u32,
        /// Measured seconds (after 5 s of startup)
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// Console refresh and render latency on a big Postgres (seeds its own database with COPY)
    Console {
        #[arg(long, default_value_t = 1000)]
        businesses: u32,
        #[arg(long, default_value_t = 10_000_000)]
        calls: u64,
        /// Timed refreshes per view
        #[arg(long, default_value_t = 50)]
        refreshes: u32,
        /// Timed frames per view and terminal size
        #[arg(long, default_value_t = 200)]
        frames: u32,
        /// Keep the seeded database instead of dropping it
        #[arg(long)]
        keep: bool,
        /// Measure an existing database seeded by an earlier `--keep` run (its name, as
        /// printed) instead of seeding a new one; it must hold exactly --businesses and
        /// --calls (counted), is asked as of its seed time, and is kept afterwards
        #[arg(long, value_name = "DATABASE")]
        reuse: Option<String>,
        /// Also time the overview over RabbitMQ (broker.amqp_url; and broker.management_url
        /// when set), with one queue per business and stage under a unique prefix
        #[arg(long)]
        rabbitmq: bool,
    },
    /// Link-stage latency per call against many customers in one business
    Link {
        /// sqlite (a temporary file) or postgres (a temporary database next to database.url)
        #[arg(long, default_value = "sqlite")]
        backend: String,
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        /// Timed calls
        #[arg(long, default_value_t = 300)]
        calls: usize,
        /// Keep the loaded store and print how to --reuse it
        #[arg(long)]
        keep: bool,
        /// Time against a store a --keep run left (SQLite: its directory; Postgres: the
        /// database name) instead of loading the customers again
        #[arg(long)]
        reuse: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors can quote input (names, URLs): no escape sequences, no passwords.
            let text = crate::redact::redact_text(&format!("{e:#}"));
            eprintln!("error: {}", sanitize_for_terminal(&text));
            ExitCode::FAILURE
        }
    }
}

fn overrides(cli: &Cli) -> anyhow::Result<Overrides> {
    let mut sets = Vec::new();
    for s in &cli.sets {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--set {s:?}: expected KEY=VALUE, e.g. --set broker.prefetch=50")
        })?;
        sets.push((k.trim().to_string(), v.to_string()));
    }
    for (flag, key) in [
        (&cli.database_url, "database.url"),
        (&cli.broker, "broker.kind"),
        (&cli.amqp_url, "broker.amqp_url"),
        (&cli.data_dir, "data_dir"),
    ] {
        if let Some(v) = flag {
            sets.push((key.to_string(), v.clone()));
        }
    }
    Ok(Overrides {
        file: cli.config.clone(),
        sets,
        env: std::env::vars().collect(),
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let loaded = Config::load(&overrides(&cli)?)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let config = loaded.config;
    let _log_guard = crate::logging::init(config.log_dir(), &config.log.level)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Some(Command::Config) => {
                // Keys, secrets and URL passwords masked (crate::redact).
                println!("{}", toml::to_string_pretty(&config.redacted())?);
                Ok(())
            }
            Some(Command::Roles { cmd }) => roles::run(&config, cmd).await,
            Some(Command::Business { cmd }) => business::run(&config, cmd).await,
            Some(Command::Agents { cmd }) => outbound::agents(&config, cmd).await,
            Some(Command::Mappings { cmd }) => outbound::mappings(&config, cmd).await,
            Some(Command::Outbound { cmd }) => outbound::outbound(&config, cmd).await,
            Some(Command::Migrate) => {
                // The one command that runs DDL: as the database owner.
                let store = Store::connect(&config.database.url, 2).await?;
                let applied = store.migrate().await?;
                println!(
                    "{}: {}",
                    crate::store::redact_url(&config.database.url),
                    if applied.is_empty() {
                        "schema up to date".to_string()
                    } else {
                        format!("applied migrations {applied:?}")
                    }
                );
                Ok(())
            }
            Some(Command::Bench { what }) => match what {
                BenchWhat::Broker {
                    backend,
                    messages,
                    raw,
                } => crate::bench::broker::run(&config, &backend, messages, raw).await,
                BenchWhat::Pipeline {
                    backend,
                    calls,
                    concurrency,
                    stt_latency_ms,
                    llm_latency_ms,
                    failures,
                    statements,
                } => {
                    let b = crate::bench::pipeline::PipelineBench {
                        backend,
                        calls,
                        concurrency,
                        stt_latency_ms,
                        llm_latency_ms,
                        failures,
                        statements,
                    };
                    crate::bench::pipeline::run(&config, b).await
                }
                BenchWhat::Idle {
                    backend,
                    businesses,
                    seconds,
                } => {
                    let b = crate::bench::idle::IdleBench {
                        backend,
                        businesses,
                        seconds,
                    };
                    crate::bench::idle::run(&config, b).await
                }
                BenchWhat::Console {
                    businesses,
                    calls,
                    refreshes,
                    frames,
                    keep,
                    reuse,
                    rabbitmq,
                } => {
                    let b = crate::bench::console::ConsoleBench {
                        businesses,
                        calls,
                        refreshes,
                        frames,
                        keep,
                        reuse,
                        verbose: true,
                        rabbitmq: rabbitmq.then(|| crate::bench::console_rabbit::RabbitTarget {
                            amqp_url: config.broker.amqp_url.clone(),
                            management_url: config.management_url(),
                        }),
                    };
                    crate::bench::console::run(&config, b).await
                }
                BenchWhat::Link {
                    backend,
                    customers,
                    calls,
                    keep,
                    reuse,
                } => {
                    let b = crate::bench::link::LinkBench {
                        customers,
                        calls,
                        verbose: true,
                        keep,
                        reuse,
                    };
                    crate::bench::link::run(&config, &backend, b).await
                }
            },
            Some(Command::Demo {
                seconds,
                headless,
                calls_per_minute,
            }) => crate::demo::run(config, seconds, headless, calls_per_minute).await,
            Some(Command::Worker {
                stages,
                concurrency,
                metrics_addr,
            }) => {
                pipeline_cmds::worker(&config, &stages, concurrency, metrics_addr.as_deref()).await
            }
            Some(Command::Ingest {
                file,
                create_businesses,
            }) => pipeline_cmds::ingest(&config, &file, create_businesses).await,
            Some(Command::Sync { what }) => pipeline_cmds::sync(&config, what).await,
            Some(Command::Import { kind, file }) => {
                pipeline_cmds::import(&config, &kind, &file).await
            }
            Some(Command::Simulate {
                businesses,
                calls_per_minute,
                calls,
                seed,
            }) => pipeline_cmds::simulate(&config, businesses, calls_per_minute, calls, seed).await,
            Some(Command::Dlq { cmd }) => headless::dlq(&config, cmd).await,
            Some(Command::Review { cmd }) => headless::review(&config, cmd).await,
            Some(Command::Call { cmd }) => headless::call(&config, cmd).await,
            Some(Command::Audit { limit, json }) => headless::audit(&config, limit, json).await,
            Some(Command::Overview { json }) => headless::overview(&config, json).await,
            Some(Command::Calls { which: _, json }) => headless::calls_stuck(&config, json).await,
            Some(Command::Screenshot {
                view,
                out,
                width,
                height,
            }) => {
                if view == "all" {
                    for v in crate::console::screenshot::VIEWS {
                        let p = out.join(format!("{v}.png"));
                        crate::console::screenshot::screenshot(v, &p, width, height).await?;
                        println!("{}", p.display());
                    }
                    for v in ["overview", "review", "dlq"] {
                        let p = out.join(format!("{v}-80x24.png"));
                        crate::console::screenshot::screenshot(v, &p, 80, 24).await?;
                        println!("{}", p.display());
                    }
                    Ok(())
                } else {
                    crate::console::screenshot::screenshot(&view, &out, width, height).await
                }
            }
            Some(Command::Serve { listen }) => crate::serve::run(&config, listen.as_deref()).await,
            Some(Command::Console { readonly }) => {
                crate::console::run_console(config, readonly).await
            }
            None => crate::console::run_console(config, false).await,
        }
    })
}

/// Text printed to a terminal by headless commands: escape sequences stripped, newlines kept.
pub fn sanitize_for_terminal(s: &str) -> String {
    crate::domain::text::sanitize_with(s, true)
}
