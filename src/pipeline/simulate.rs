//! Load generator: realistic call traffic over several businesses — durations, languages,
//! withheld numbers (30–70% at some businesses), real and greeting-like names, repeat
//! callers, records that bring their own transcript — so every console view has content.
//! Provider failures (timeouts, malformed model output) are injected by the simulated
//! providers' settings.

use super::ingest::{CallRecord, IngestReport, Ingestor, RecordTranscript};
use crate::pipeline::providers::Segment;
use crate::queue::Broker;
use crate::store::customers::NewCustomer;
use crate::store::Store;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub businesses: usize,
    pub calls_per_minute: f64,
    /// Stop after this many calls (None = until shutdown).
    pub total_calls: Option<u64>,
    pub seed: u64,
    /// Customers seeded per business.
    pub customers_per_business: usize,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            businesses: 6,
            calls_per_minute: 120.0,
            total_calls: None,
            seed: 7,
            customers_per_business: 60,
        }
    }
}

struct Profile {
    name: &'static str,
    region: &'static str,
    lang: &'static str,
    withheld_share: f64,
    /// Relative traffic weight: one loud business, several quiet ones.
    weight: f64,
}

const PROFILES: &[Profile] = &[
    Profile {
        name: "Müller Sanitär GmbH",
        region: "DE",
        lang: "de",
        withheld_share: 0.55,
        weight: 5.0,
    },
    Profile {
        name: "Praxis Dr. Weber",
        region: "DE",
        lang: "de",
        withheld_share: 0.70,
        weight: 2.0,
    },
    Profile {
        name: "Sharma Motors",
        region: "IN",
        lang: "hi",
        withheld_share: 0.10,
        weight: 2.0,
    },
    Profile {
        name: "Cohen Dental",
        region: "IL",
        lang: "he",
        withheld_share: 0.30,
        weight: 1.0,
    },
    Profile {
        name: "Acme Insurance",
        region: "US",
        lang: "en",
        withheld_share: 0.15,
        weight: 3.0,
    },
    Profile {
        name: "Autohaus Schreiber",
        region: "DE",
        lang: "de",
        withheld_share: 0.40,
        weight: 1.0,
    },
    Profile {
        name: "Bright Solar",
        region: "US",
        lang: "en",
        withheld_share: 0.05,
        weight: 1.0,
    },
    Profile {
        name: "Kapoor Realty",
        region: "IN",
        lang: "en",
        withheld_share: 0.20,
        weight: 1.0,
    },
];

const DE_FIRST: &[&str] = &[
    "Anna", "Peter", "Jürgen", "Sabine", "Lukas", "Monika", "Klaus", "Petra", "Stefan", "Ursula",
];
const DE_LAST: &[&str] = &[
    "Schreiber",
    "Schreiner",
    "Müller",
    "Mueller",
    "Schmidt",
    "Schmitt",
    "Weber",
    "Becker",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Richter",
    "Wolf",
    "Neumann",
];
const EN_FIRST: &[&str] = &[
    "John", "Mary", "James", "Linda", "Robert", "Emily", "Michael", "Sarah",
];
const EN_LAST: &[&str] = &[
    "Carter", "Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Moore",
];
const HI_FIRST: &[&str] = &[
    "Rahul", "Priya", "Amit", "Sunita", "Vikram", "Anjali", "Rohan", "Neha",
];
const HI_LAST: &[&str] = &[
    "Sharma", "Verma", "Gupta", "Singh", "Patel", "Kapoor", "Mehta", "Iyer",
];
const HE_FIRST: &[&str] = &[
    "David", "Sarah", "Moshe", "Rivka", "Yosef", "Noa", "Avi", "Tamar",
];
const HE_LAST: &[&str] = &[
    "Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Friedman", "Katz", "Azoulay",
];
const WITHHELD: &[&str] = &[
    "anonymous",
    "",
    "restricted",
    "unknown",
    "+266696687",
    "private",
    "\"anonymous\" <anonymous@anonymous.invalid>",
];

fn names_for(lang: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match lang {
        "de" => (DE_FIRST, DE_LAST),
        "hi" => (HI_FIRST, HI_LAST),
        "he" => (HE_FIRST, HE_LAST),
        _ => (EN_FIRST, EN_LAST),
    }
}

fn phone_for(region: &str, rng: &mut SmallRng) -> String {
    match region {
        "DE" => format!("+4930{:07}", rng.gen_range(1_000_000..9_999_999)),
        "IN" => format!("+9198{:08}", rng.gen_range(10_000_000..99_999_999)),
        "IL" => format!("+97252{:07}", rng.gen_range(1_000_000..9_999_999)),
        _ => format!("+1212{:07}", rng.gen_range(2_000_000..9_999_999)),
    }
}

pub struct SimBusiness {
    id: i64,
    profile: &'static Profile,
    customers: Vec<(String, Option<String>)>,
}

/// Create the businesses with customers and a few known leads. Idempotent per name.
async fn setup(
    store: &Store,
    opts: &SimulateOptions,
    rng: &mut SmallRng,
) -> anyhow::Result<Vec<SimBusiness>> {
    let mut out = Vec::new();
    for i in 0..opts.businesses {
        let profile = &PROFILES[i % PROFILES.len()];
        let name = if i < PROFILES.len() {
            profile.name.to_string()
        } else {
            format!("{} {}", profile.name, i / PROFILES.len() + 1)
        };
        let b = store.ensure_business(&name).await?;
        sqlx::query("UPDATE businesses SET default_region = $1 WHERE id = $2")
            .bind(profile.region)
            .bind(b.id)
            .execute(store.pool())
            .await?;
        super::ensure_default_agents(store, b.id).await?;
        let (first, last) = names_for(profile.lang);
        let mut customers = Vec::new();
        for k in 0..opts.customers_per_business {
            let n = format!(
                "{} {}",
                first[rng.gen_range(0..first.len())],
                last[rng.gen_range(0..last.len())]
            );
            let phone = rng.gen_bool(0.7).then(|| phone_for(profile.region, rng));
            store
                .upsert_customer(&NewCustomer {
                    business_id: b.id,
                    external_id: Some(format!("sim-cust-{k}")),
                    name: Some(n.clone()),
                    name_normalized: Some(crate::domain::names::normalize_name(&n)),
                    phone: phone.clone(),
                    email: None,
                    is_temporary: false,
                })
                .await?;
            if let Some(p) = &phone {
                if k % 5 == 0 {
                    store
                        .import_lead(
                            b.id,
                            p,
                            Some(&n),
                            Some(&format!("LSQ-{}-{k}", b.id)),
                            "open",
                        )
                        .await?;
                }
            }
            customers.push((n, phone));
        }
        out.push(SimBusiness {
            id: b.id,
            profile,
            customers,
        });
    }
    Ok(out)
}

fn pick_business<'a>(bs: &'a [SimBusiness], rng: &mut SmallRng) -> &'a SimBusiness {
    let total: f64 = bs.iter().map(|b| b.profile.weight).sum();
    let mut x = rng.gen_range(0.0..total);
    for b in bs {
        if x < b.profile.weight {
            return b;
        }
        x -= b.profile.weight;
    }
    &bs[bs.len() - 1]
}

/// One realistic call record.
pub fn make_record(b: &SimBusiness, seq: u64, rng: &mut SmallRng) -> CallRecord {
    let p = b.profile;
    let (first, last) = names_for(p.lang);
    let existing = !b.customers.is_empty() && rng.gen_bool(0.6);
    let (caller, caller_phone) = if existing {
        b.customers[rng.gen_range(0..b.customers.len())].clone()
    } else {
        (
            format!(
                "{} {}",
                first[rng.gen_range(0..first.len())],
                last[rng.gen_range(0..last.len())]
            ),
            None,
        )
    };
    let scenario = match rng.gen_range(0..100) {
        0..=44 => "named",
        45..=54 if p.lang == "de" => "surname_only",
        45..=54 => "named",
        55..=69 => "greeting_only",
        70..=79 => "anonymous",
        80..=89 => "appointment",
        _ => "purchase",
    };
    let from = if rng.gen_bool(p.withheld_share) {
        WITHHELD[rng.gen_range(0..WITHHELD.len())].to_string()
    } else {
        caller_phone.unwrap_or_else(|| phone_for(p.region, rng))
    };
    let duration_s = (30.0 + rng.gen_range(0.0f64..1.0).powi(3) * 570.0).round();
    let external_id = format!("sim-{}-{seq}", b.id);
    let mut r = CallRecord {
        business: p.name.to_string(),
        external_id: external_id.clone(),
        direction: Some("inbound".into()),
        from: Some(from),
        to: Some(phone_for(p.region, rng)),
        started_at: Some(serde_json::json!(
            crate::now_ms() - (duration_s as i64) * 1000
        )),
        duration_s: Some(duration_s),
        language: Some(p.lang.into()),
        agent: Some(["Lena", "Tom", "Asha", "Noa"][rng.gen_range(0..4)].into()),
        // The lead form the caller came from (outbound mappings); by sequence, not by the
        // rng, so the rest of a seeded run is unchanged.
        campaign: Some(crate::pipeline::outbound::DEMO_FORMS[(seq % 6) as usize].into()),
        ..Default::default()
    };
    if rng.gen_bool(0.1) {
        // A voice-agent platform's call-ended webhook: the transcript comes with the record.
        r.source = Some("retell".into());
        r.transcript = Some(RecordTranscript {
            segments: vec![
                Segment {
                    speaker: "agent".into(),
                    start: 0.0,
                    end: 3.0,
                    text: "Hello, thanks for calling, how can I help?".into(),
                },
                Segment {
                    speaker: "caller".into(),
                    start: 3.2,
                    end: 7.5,
                    text: format!("Hi, my name is {caller}, I'd like to book an appointment."),
                },
            ],
        });
    } else {
        let who =
            (scenario != "anonymous" && scenario != "greeting_only").then_some(caller.as_str());
        r.audio_url = Some(crate::pipeline::providers::stt::simulated::sim_audio_url(
            &external_id,
            p.lang,
            who,
            scenario,
        ));
    }
    r
}

/// Generate calls until `total_calls` or shutdown. Returns what was ingested.
pub async fn run(
    store: &Store,
    broker: &dyn Broker,
    opts: SimulateOptions,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<IngestReport> {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let businesses = setup(store, &opts, &mut rng).await?;
    let mut ingestor = Ingestor::new(store, broker);
    let mut report = IngestReport::default();
    let per_tick = opts.calls_per_minute / 60.0 / 10.0; // 10 ticks a second
    let mut owed = 0.0;
    let mut seq: u64 = crate::now_ms() as u64 % 1_000_000_000;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut produced = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            if opts.total_calls.is_some_and(|t| produced >= t) {
                return Ok(report);
            }
            seq += 1;
            let b = pick_business(&businesses, &mut rng);
            let r = make_record(b, seq, &mut rng);
            if let Err(e) = ingestor.ingest(&r, &mut report).await {
                tracing::warn!(error = %e, "simulated ingest failed; retrying next tick");
                owed += 1.0;
                break;
            }
            produced += 1;
        }
        if *shutdown.borrow() {
            break;
        }
    }
    Ok(report)
}
