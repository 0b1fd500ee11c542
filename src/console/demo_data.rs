//! A deterministic demo data set for screenshots, snapshot tests and the tmux test: six
//! businesses with an hour of throughput, queued jobs, stuck calls grouped by a few error
//! signatures, a review queue, dead jobs, an audit log, a fully traced call, and a call
//! whose transcript, name and error are full of terminal escape sequences.
//!
//! Rows are written with plain SQL at fixed times relative to `now` (the store's own write
//! paths stamp the wall clock, which would make every screenshot different).

use crate::store::Store;
use anyhow::Context;
use serde_json::json;

/// The moment the screenshots show: 2026-05-28 10:42:30 UTC (30 s into a minute).
pub const DEMO_NOW: i64 = 29_667_402 * 60_000 + 30_000;

/// Ids of the calls worth opening.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoIds {
    /// A call that went through every stage, with transcript, analyses and full trace.
    pub traced_call: i64,
    /// A stuck call whose transcript, name and error are full of escape sequences.
    pub hostile_call: i64,
    pub businesses: [i64; 6],
}

/// Seed at `DEMO_NOW` (screenshots and snapshot tests).
pub async fn seed_demo_data(store: &Store) -> anyhow::Result<DemoIds> {
    seed_demo_data_at(store, DEMO_NOW).await
}

/// splitmix64: a fixed sequence, no dependency on rand's algorithm choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Biz {
    name: &'static str,
    rate: u64,
    auto_qc: i64,
    lead_filter: i64,
    active: i64,
    stt: &'static str,
    llm: &'static str,
    crm: &'static str,
}

const BUSINESSES: [Biz; 6] = [
    Biz {
        name: "Acme Dental",
        rate: 6,
        auto_qc: 1,
        lead_filter: 0,
        active: 1,
        stt: "deepgram",
        llm: "ollama",
        crm: "builtin",
    },
    Biz {
        name: "Berlin Autohaus",
        rate: 4,
        auto_qc: 0,
        lead_filter: 1,
        active: 1,
        stt: "whisper",
        llm: "ollama",
        crm: "leadsquared",
    },
    Biz {
        name: "Chennai Insurance",
        rate: 14,
        auto_qc: 1,
        lead_filter: 0,
        active: 1,
        stt: "sarvam",
        llm: "openai",
        crm: "leadsquared",
    },
    Biz {
        name: "Haifa Realty",
        rate: 5,
        auto_qc: 1,
        lead_filter: 0,
        active: 1,
        stt: "deepgram",
        llm: "ollama",
        crm: "builtin",
    },
    Biz {
        name: "Köln Solar",
        rate: 2,
        auto_qc: 1,
        lead_filter: 0,
        active: 1,
        stt: "whisper",
        llm: "openai",
        crm: "builtin",
    },
    Biz {
        name: "Northwind Clinics",
        rate: 0,
        auto_qc: 1,
        lead_filter: 0,
        active: 0,
        stt: "simulated",
        llm: "simulated",
        crm: "builtin",
    },
];

/// A call row; unset fields are NULL / defaults.
#[derive(Default, Clone)]
struct C {
    biz: usize,
    ext: String,
    from: Option<&'static str>,
    e164: Option<&'static str>,
    status: Option<&'static str>,
    agent: Option<&'static str>,
    language: Option<&'static str>,
    ago_s: i64,
    duration_s: i64,
    stage: &'static str,
    state: &'static str,
    in_state_s: i64,
    attempts: i64,
    error: Option<String>,
    customer: Option<i64>,
    lead: Option<i64>,
    link: Option<(&'static str, &'static str, f64)>,
    name: Option<String>,
    review: Option<(i64, &'static str, serde_json::Value)>,
    lead_filtered: bool,
}

async fn exec(store: &Store, sql: &str, binds: Vec<B>) -> anyhow::Result<Option<i64>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            B::I(v) => q.bind(v),
            B::OI(v) => q.bind(v),
            B::S(v) => q.bind(v),
            B::OS(v) => q.bind(v),
            // sqlx's Any driver sends f64 with the wrong type on Postgres ("incorrect
            // binary data format"): floats travel as text and the SQL casts them.
            B::OF(v) => q.bind(v.map(|f| f.to_string())),
        };
    }
    let row = q
        .fetch_optional(store.pool())
        .await
        .with_context(|| format!("seeding demo data: {}", &sql[..sql.len().min(60)]))?;
    Ok(match row {
        Some(r) if sql.contains("RETURNING id") => Some(crate::store::col(&r, "id")?),
        _ => None,
    })
}

enum B {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
    OF(Option<f64>),
}

fn s(x: &str) -> B {
    B::S(x.to_string())
}

/// Seed the demo data set with times relative to `now`. Expects a migrated, empty database.
pub async fn seed_demo_data_at(store: &Store, now: i64) -> anyhow::Result<DemoIds> {
    let mut rng = Rng(20260528);
    let mut biz = [0i64; 6];
    for (i, b) in BUSINESSES.iter().enumerate() {
        biz[i] = exec(
            store,
            "INSERT INTO businesses (name, stt_provider, llm_provider, crm_provider, auto_qc, lead_filter, active, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
            vec![s(b.name), s(b.stt), s(b.llm), s(b.crm), B::I(b.auto_qc), B::I(b.lead_filter), B::I(b.active), B::I(now - 86_400_000 * 30)],
        )
        .await?
        .context("business id")?;
    }
    seed_throughput(store, &biz, now, &mut rng).await?;

    // Customers and a lead for the traced call; candidates for the review queue.
    let mut cust = vec![];
    for (b, name, phone, temp) in [
        (0, "Jonas Schreiber", Some("+493012345678"), 0),
        (0, "Anna Schreiber", Some("+493098765432"), 0),
        (1, "Matthias Müller", Some("+4989555123"), 0),
        (1, "Mathias Mueller", None, 0),
        (3, "Yael Ben-David", Some("+972541234567"), 0),
        (2, "Priya Raghunathan", Some("+919812345678"), 0),
        (1, "anonymous caller 7", None, 1),
    ] {
        cust.push(
            exec(
                store,
                "INSERT INTO customers (business_id, name, name_normalized, phone, is_temporary, created_at, updated_at) \
                 VALUES ($1,$2,$3,$4,$5,$6,$6) RETURNING id",
                vec![B::I(biz[b]), s(name), s(&name.to_lowercase()), B::OS(phone.map(String::from)), B::I(temp), B::I(now - 86_400_000 * 20)],
            )
            .await?
            .context("customer id")?,
        );
    }
    let lead = exec(
        store,
        "INSERT INTO leads (business_id, customer_id, phone, name, status, source, call_count, crm_id, created_at, updated_at) \
         VALUES ($1,$2,'+493012345678','Jonas Schreiber','contacted','call',3,'LS-88213',$3,$4) RETURNING id",
        vec![B::I(biz[0]), B::I(cust[0]), B::I(now - 86_400_000 * 9), B::I(now - 300_000)],
    )
    .await?
    .context("lead id")?;

    let mut calls: Vec<C> = vec![];
    // The fully traced call (Acme Dental, done 4 minutes ago).
    calls.push(C {
        biz: 0,
        ext: "AC-20417".into(),
        from: Some("+49 30 1234 5678"),
        e164: Some("+493012345678"),
        status: Some("valid"),
        agent: Some("Jana Weber"),
        language: Some("de"),
        ago_s: 260,
        duration_s: 192,
        stage: "notify",
        state: "done",
        in_state_s: 240,
        customer: Some(cust[0]),
        lead: Some(lead),
        link: Some(("linked", "name", 0.93)),
        name: Some("Jonas Schreiber".into()),
        ..Default::default()
    });
    // Escape sequences everywhere (Köln Solar, stuck in analyze).
    calls.push(C {
        biz: 4,
        ext: "KS-\x1b[31m666\x1b[0m".into(),
        from: Some("anonymous"),
        status: Some("withheld"),
        agent: Some("Lena Vogel"),
        language: Some("de"),
        ago_s: 2700,
        duration_s: 75,
        stage: "analyze",
        state: "retrying",
        in_state_s: 2400,
        attempts: 3,
        error: Some("llm openai: unexpected token \x1b[31mRED\x1b[0m in output \x1b]52;c;cm0gLXJmIH4=\x07 at column 12".into()),
        name: Some("Eve \x1b]8;;http://evil.example\x1b\\click me\x1b]8;;\x1b\\ \u{202e}gnp.exe\u{202c}".into()),
        ..Default::default()
    });
    // Stuck: Chennai's STT times out (one signature, several calls).
    for (i, (ago, st, att)) in [
        (1900, "retrying", 4),
        (1500, "retrying", 3),
        (1320, "pending", 0),
        (1180, "retrying", 2),
        (1100, "running", 1),
    ]
    .into_iter()
    .enumerate()
    {
        calls.push(C {
            biz: 2,
            ext: format!("CI-{}", 88100 + i),
            from: Some("+91 98123 45678"),
            e164: Some("+919812345678"),
            status: Some("valid"),
            agent: Some("Ravi Kumar"),
            language: Some("hi"),
            ago_s: ago + 30,
            duration_s: 300 + (i as i64) * 20,
            stage: "transcribe",
            state: st,
            in_state_s: ago,
            attempts: att,
            error: (att > 0).then(|| {
                format!(
                    "stt sarvam: timeout after {} ms (call CI-{})",
                    30_000 + i * 5000,
                    88100 + i
                )
            }),
            ..Default::default()
        });
    }
    // Stuck: Haifa's LLM returns malformed JSON.
    for (i, ago) in [1260, 840, 620].into_iter().enumerate() {
        calls.push(C {
            biz: 3,
            ext: format!("HR-{}", 5500 + i),
            from: Some("+972 54-123-4567"),
            e164: Some("+972541234567"),
            status: Some("valid"),
            agent: Some("Noa Levi"),
            language: Some("he"),
            ago_s: ago + 20,
            duration_s: 140,
            stage: "analyze",
            state: "retrying",
            in_state_s: ago,
            attempts: 2 + i as i64,
            error: Some(format!(
                "llm ollama: malformed JSON: expected ',' or '}}' at line 1 column {}",
                40 + i * 17
            )),
            ..Default::default()
        });
    }
    // Stuck: Berlin's CRM is down; and a sync call nobody picked up.
    calls.push(C {
        biz: 1,
        ext: "BA-3301".into(),
        from: Some("089 555123"),
        e164: Some("+4989555123"),
        status: Some("valid"),
        agent: Some("Klaus Becker"),
        language: Some("de"),
        ago_s: 900,
        duration_s: 260,
        stage: "notify",
        state: "retrying",
        in_state_s: 780,
        attempts: 4,
        error: Some("crm leadsquared: HTTP 503 Service Unavailable (retry-after 60)".into()),
        customer: Some(cust[2]),
        link: Some(("linked", "phone", 1.0)),
        ..Default::default()
    });
    calls.push(C {
        biz: 0,
        ext: "AC-20399".into(),
        from: Some("+49 30 5550 1000"),
        e164: Some("+493055501000"),
        status: Some("valid"),
        ago_s: 420,
        stage: "sync",
        state: "pending",
        in_state_s: 400,
        ..Default::default()
    });
    // Review queue.
    let cand = |v: &[(i64, &str, f64)]| {
        json!(v.iter().map(|(id, n, c)| json!({"customer_id": id, "name": n, "confidence": c, "why": "name match"})).collect::<Vec<_>>())
    };
    calls.push(C {
        biz: 1,
        ext: "BA-3290".into(),
        from: Some("unknown"),
        status: Some("withheld"),
        agent: Some("Klaus Becker"),
        language: Some("de"),
        ago_s: 5400,
        duration_s: 210,
        stage: "link",
        state: "review",
        in_state_s: 5200,
        name: Some("Matthias Müller".into()),
        link: Some(("review", "name", 0.81)),
        review: Some((201, "link: name 'Matthias Müller' matched 2 customers at 0.81/0.78 → review (threshold 0.85)", cand(&[(cust[2], "Matthias Müller", 0.81), (cust[3], "Mathias Mueller", 0.78)]))),
        ..Default::default()
    });
    calls.push(C {
        biz: 1,
        ext: "BA-3294".into(),
        from: Some(""),
        status: Some("withheld"),
        agent: Some("Sven Ott"),
        language: Some("de"),
        ago_s: 3000,
        duration_s: 95,
        stage: "link",
        state: "review",
        in_state_s: 2900,
        link: Some(("review", "none", 0.0)),
        review: Some((100, "link: number withheld and no usable name (greeting 'Guten Tag' is not a name) → review", json!([]))),
        lead_filtered: true,
        ..Default::default()
    });
    calls.push(C {
        biz: 0,
        ext: "AC-20380".into(),
        from: Some("restricted"),
        status: Some("withheld"),
        agent: Some("Jana Weber"),
        language: Some("de"),
        ago_s: 1900,
        duration_s: 130,
        stage: "link",
        state: "review",
        in_state_s: 1800,
        name: Some("Schreiber".into()),
        review: Some((
            200,
            "link: name 'Schreiber' matched 2 customers at 0.91/0.88 → review (margin below 0.05)",
            cand(&[
                (cust[0], "Jonas Schreiber", 0.91),
                (cust[1], "Anna Schreiber", 0.88),
            ]),
        )),
        ..Default::default()
    });
    calls.push(C {
        biz: 3,
        ext: "HR-5490".into(),
        from: Some("anonymous"),
        status: Some("withheld"),
        agent: Some("Noa Levi"),
        language: Some("he"),
        ago_s: 800,
        duration_s: 180,
        stage: "link",
        state: "review",
        in_state_s: 700,
        name: Some("יעל בן דוד".into()),
        review: Some((
            0,
            "link: name 'יעל בן דוד' matched 1 customer at 0.74 → review (below threshold 0.85)",
            cand(&[(cust[4], "Yael Ben-David", 0.74)]),
        )),
        ..Default::default()
    });
    // Dead calls (their jobs are in the DLQ).
    calls.push(C {
        biz: 2,
        ext: "CI-88011".into(),
        from: Some("+91 98123 40000"),
        e164: Some("+919812340000"),
        status: Some("valid"),
        language: Some("ta"),
        ago_s: 3600,
        duration_s: 610,
        stage: "transcribe",
        state: "dead",
        in_state_s: 2100,
        attempts: 5,
        error: Some("stt sarvam: timeout after 45000 ms (call CI-88011)".into()),
        ..Default::default()
    });
    calls.push(C {
        biz: 3,
        ext: "HR-5431".into(),
        from: Some("+972 52-765-4321"),
        e164: Some("+972527654321"),
        status: Some("valid"),
        language: Some("he"),
        ago_s: 2500,
        duration_s: 95,
        stage: "analyze",
        state: "dead",
        in_state_s: 1500,
        attempts: 5,
        error: Some("llm ollama: malformed JSON: expected ',' or '}' at line 1 column 88".into()),
        ..Default::default()
    });
    // Recent, healthy calls across businesses.
    let stages = ["transcribe", "analyze", "link", "notify"];
    for i in 0..14 {
        let b = [0, 2, 2, 1, 3, 4, 0][i % 7];
        let in_flight = i % 3 == 0;
        calls.push(C {
            biz: b,
            ext: format!("{}-{}", ["AC", "BA", "CI", "HR", "KS", "NC"][b], 30000 + i),
            from: Some("+49 221 555 0100"),
            e164: Some("+492215550100"),
            status: Some("valid"),
            ago_s: 60 + (i as i64) * 37,
            duration_s: 60 + rng.below(400) as i64,
            stage: if in_flight { stages[i % 4] } else { "notify" },
            state: if in_flight { "running" } else { "done" },
            in_state_s: 10 + (i as i64) * 3,
            link: (!in_flight).then_some(("linked", "phone", 1.0)),
            ..Default::default()
        });
    }

    let mut ids = vec![];
    for c in &calls {
        ids.push(insert_call(store, &biz, c, now).await?);
    }
    let traced = ids[0];
    let hostile = ids[1];
    seed_traced_call(store, biz[0], traced, cust[0], lead, now).await?;
    seed_hostile_call(store, biz[4], hostile, now).await?;
    // Every other call gets a short trace so its call view is not empty.
    for (c, id) in calls.iter().zip(&ids).skip(2) {
        let t0 = now - c.ago_s * 1000;
        let mut ev = vec![(
            t0,
            "sync",
            "ingested",
            format!("call record {:?} received", c.ext),
            None,
        )];
        if let Some(st) = c.status {
            ev.push((
                t0 + 150,
                "sync",
                "number",
                format!(
                    "from {:?} → {} ({st})",
                    c.from.unwrap_or(""),
                    c.e164.unwrap_or("no number")
                ),
                None,
            ));
        }
        if c.state == "review" {
            ev.push((
                now - c.in_state_s * 1000,
                "link",
                "review",
                c.review
                    .as_ref()
                    .map(|r| r.1.to_string())
                    .unwrap_or_default(),
                None,
            ));
        }
        if let Some(e) = &c.error {
            ev.push((
                now - c.in_state_s * 1000,
                c.stage,
                if c.state == "dead" { "dead" } else { "retry" },
                format!("attempt {} failed", c.attempts.max(1)),
                Some(e.clone()),
            ));
        }
        if c.biz == 1 && c.state != "pending" {
            ev.push((
                t0 + 9000,
                "analyze",
                "qc_skipped",
                "qc skipped: auto_qc off for Berlin Autohaus".to_string(),
                None,
            ));
        }
        if c.lead_filtered {
            ev.push((
                t0 + 9500,
                "link",
                "lead_filter",
                "lead not created: business lead filter drops withheld numbers".to_string(),
                None,
            ));
        }
        for (at, stage, kind, reason, detail) in ev {
            event(
                store,
                *id,
                biz[c.biz],
                at,
                stage,
                kind,
                &reason,
                detail.as_deref(),
                "pipeline",
            )
            .await?;
        }
    }
    seed_dead_jobs(store, &biz, &ids, now).await?;
    seed_jobs(store, &biz, now).await?;
    seed_audit(store, &ids, now).await?;
    seed_webhooks(store, biz[0], now).await?;
    super::demo_outbound::seed(store, &biz, now).await?;
    // The review item "Matthias Müller" has a transcript, so the review pane shows the
    // caller's own words the name was taken from.
    let segs = serde_json::json!([
        {"speaker": "agent", "start": 0.5, "end": 3.2, "text": "Autohaus Berlin, Klaus Becker, guten Tag."},
        {"speaker": "caller", "start": 3.6, "end": 8.9, "text": "Ja, guten Tag, hier ist Matthias Müller, ich wollte nach meinem Termin fragen."},
        {"speaker": "agent", "start": 9.3, "end": 11.0, "text": "Für die Inspektion, Herr Müller?"},
        {"speaker": "caller", "start": 11.4, "end": 14.2, "text": "Genau, der Golf, nächste Woche."},
    ]);
    exec(
        store,
        "INSERT INTO transcripts (call_id, provider, language, text, segments, created_at) \
         SELECT id, 'deepgram nova-2', 'de', $1, $2, $3 FROM calls WHERE external_id = 'BA-3290'",
        vec![
            B::S("agent: Autohaus Berlin, Klaus Becker, guten Tag.\ncaller: Ja, guten Tag, hier ist Matthias Müller, ich wollte nach meinem Termin fragen.".into()),
            B::S(segs.to_string()),
            B::I(now - 5_300_000),
        ],
    )
    .await?;
    Ok(DemoIds {
        traced_call: traced,
        hostile_call: hostile,
        businesses: biz,
    })
}

async fn insert_call(store: &Store, biz: &[i64; 6], c: &C, now: i64) -> anyhow::Result<i64> {
    let (link_status, link_method, conf) = match c.link {
        Some((a, b, x)) => (Some(a.to_string()), Some(b.to_string()), Some(x)),
        None => (None, None, None),
    };
    let (prio, reason, cands) = match &c.review {
        Some((p, r, cands)) => (Some(*p), Some(r.to_string()), Some(cands.to_string())),
        None => (None, None, None),
    };
    let started = now - c.ago_s * 1000;
    exec(
        store,
        "INSERT INTO calls (business_id, external_id, direction, from_number, from_e164, number_status, to_number, \
         agent_name, language, started_at, duration_ms, stage, state, state_since, attempts, last_error, customer_id, \
         lead_id, link_status, link_method, link_confidence, extracted_name, review_priority, review_reason, \
         review_candidates, lead_filter_skipped, created_at, updated_at) \
         VALUES ($1,$2,'inbound',$3,$4,$5,'+49 30 9000 0',$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,CAST($19 AS DOUBLE PRECISION),$20,$21,$22,$23,$24,$25,$25) \
         RETURNING id",
        vec![
            B::I(biz[c.biz]),
            B::S(c.ext.clone()),
            B::OS(c.from.map(String::from)),
            B::OS(c.e164.map(String::from)),
            B::OS(c.status.map(String::from)),
            B::OS(c.agent.map(String::from)),
            B::OS(c.language.map(String::from)),
            B::OI(Some(started)),
            B::I(c.duration_s * 1000),
            s(c.stage),
            s(c.state),
            B::I(now - c.in_state_s * 1000),
            B::I(c.attempts),
            B::OS(c.error.clone()),
            B::OI(c.customer),
            B::OI(c.lead),
            B::OS(link_status),
            B::OS(link_method),
            B::OF(conf),
            B::OS(c.name.clone()),
            B::OI(prio),
            B::OS(reason),
            B::OS(cands),
            B::I(c.lead_filtered as i64),
            B::I(started + c.duration_s * 1000 + 2000),
        ],
    )
    .await?
    .context("call id")
}

#[allow(clippy::too_many_arguments)]
async fn event(
    store: &Store,
    call: i64,
    biz: i64,
    at: i64,
    stage: &str,
    kind: &str,
    reason: &str,
    detail: Option<&str>,
    actor: &str,
) -> anyhow::Result<()> {
    exec(
        store,
        "INSERT INTO call_events (call_id, business_id, at, stage, kind, reason, detail, actor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        vec![B::I(call), B::I(biz), B::I(at), s(stage), s(kind), s(reason), B::OS(detail.map(String::from)), s(actor)],
    )
    .await?;
    Ok(())
}

async fn seed_throughput(
    store: &Store,
    biz: &[i64; 6],
    now: i64,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    let this_minute = now - now.rem_euclid(60_000);
    let frac = now.rem_euclid(60_000) as f64 / 60_000.0;
    // One multi-row INSERT per business keeps seeding fast on SQLite.
    for (bi, b) in BUSINESSES.iter().enumerate() {
        if b.rate == 0 {
            continue;
        }
        let mut values = vec![];
        for m in 0..=60i64 {
            let minute = this_minute - m * 60_000;
            // A lunchtime-style wave, and Chennai's STT slowing down over the last 20 min.
            let wave = 1.0 + 0.35 * ((m as f64) / 9.0).sin();
            for (si, stage) in ["sync", "transcribe", "analyze", "link", "notify"]
                .iter()
                .enumerate()
            {
                let mut calls = (b.rate as f64 * wave) + rng.below(3) as f64 - 1.0;
                let mut failures = 0u64;
                if bi == 2 && si >= 1 && m < 20 {
                    calls *= 0.45 + 0.02 * m as f64;
                    if si == 1 {
                        failures = 1 + rng.below(3);
                    }
                }
                if bi == 3 && si == 2 {
                    failures = rng.below(3);
                }
                if bi == 1 && si == 4 && m < 15 {
                    calls *= 0.3;
                    failures = rng.below(2) + 1;
                }
                if m == 0 {
                    calls *= frac;
                }
                let calls = calls.max(0.0).round() as i64;
                let failures = if m == 0 {
                    (failures as f64 * frac).round() as i64
                } else {
                    failures as i64
                };
                values.push(format!(
                    "({minute}, {}, '{stage}', {calls}, {}, {failures})",
                    biz[bi],
                    calls * (150 + bi as i64 * 20)
                ));
            }
        }
        let sql = format!(
            "INSERT INTO throughput (minute, business_id, stage, calls, audio_seconds, failures) VALUES {}",
            values.join(",")
        );
        exec(store, &sql, vec![]).await?;
    }
    Ok(())
}

async fn seed_traced_call(
    store: &Store,
    biz: i64,
    call: i64,
    customer: i64,
    lead: i64,
    now: i64,
) -> anyhow::Result<()> {
    let t0 = now - 260_000 + 194_000;
    let segs = json!([
        {"speaker": "agent", "start": 0.4, "end": 4.0, "text": "Acme Dental, guten Tag, Sie sprechen mit Jana Weber. How can I help you?"},
        {"speaker": "caller", "start": 4.6, "end": 9.8, "text": "Hallo, mein Name ist Jonas Schreiber. I'd like to book a cleaning, please."},
        {"speaker": "agent", "start": 10.2, "end": 13.1, "text": "Of course, Herr Schreiber. Are you already a patient with us?"},
        {"speaker": "caller", "start": 13.5, "end": 17.9, "text": "Yes, since last year — Dr. Okafor did my filling in March."},
        {"speaker": "agent", "start": 18.3, "end": 24.0, "text": "I see you here. We have Tuesday at 10:30 or Thursday at 16:00 with Dr. Okafor."},
        {"speaker": "caller", "start": 24.4, "end": 27.0, "text": "Tuesday at 10:30 works for me."},
        {"speaker": "agent", "start": 27.3, "end": 33.8, "text": "Booked: Tuesday 10:30, professional cleaning, about 45 minutes. Your insurance covers it once a year."},
        {"speaker": "caller", "start": 34.2, "end": 38.5, "text": "Great. Can you send a reminder to my phone? Same number I'm calling from."},
        {"speaker": "agent", "start": 38.9, "end": 43.0, "text": "Yes, you'll get an SMS the day before. Anything else I can do?"},
        {"speaker": "caller", "start": 43.4, "end": 45.1, "text": "No, that's all. Danke schön!"},
        {"speaker": "agent", "start": 45.5, "end": 47.2, "text": "Gern geschehen, bis Dienstag. Goodbye!"}
    ]);
    let text: Vec<String> = segs
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{}: {}",
                s["speaker"].as_str().unwrap_or(""),
                s["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    exec(
        store,
        "INSERT INTO transcripts (call_id, provider, language, text, segments, created_at) VALUES ($1,'deepgram nova-2','de',$2,$3,$4)",
        vec![B::I(call), B::S(text.join("\n")), B::S(segs.to_string()), B::I(t0 + 4100)],
    )
    .await?;
    let mut agents = vec![];
    for (name, kind, version) in [
        ("qc-scorecard", "qc", 3),
        ("insights", "insights", 2),
        ("caller-name", "name", 1),
    ] {
        agents.push(
            exec(
                store,
                "INSERT INTO agents (business_id, name, kind, prompt, version, created_at) VALUES ($1,$2,$3,'…',$4,$5) RETURNING id",
                vec![B::I(biz), s(name), s(kind), B::I(version), B::I(now - 86_400_000 * 10)],
            )
            .await?
            .context("agent id")?,
        );
    }
    for (agent, version, kind, result) in [
        (
            agents[0],
            3,
            "qc",
            json!({"qc_score": 86, "scores": {"greeting": 10, "needs": 18, "solution": 24, "closing": 16, "compliance": 18}, "notes": "clear booking; did not confirm the patient's date of birth"}),
        ),
        (
            agents[1],
            2,
            "insights",
            json!({"sentiment": "positive", "summary": "Existing patient books a professional cleaning for Tuesday 10:30 with Dr. Okafor; wants an SMS reminder.", "appointment_intent": true, "purchase_intent": false, "bant": {"budget": "insured", "authority": "self", "need": "cleaning", "timeline": "next Tuesday"}}),
        ),
        (
            agents[2],
            1,
            "name",
            json!({"caller_name": "Jonas Schreiber", "caller_name_evidence": "mein Name ist Jonas Schreiber"}),
        ),
    ] {
        exec(
            store,
            "INSERT INTO analyses (call_id, agent_id, agent_version, kind, cache_key, result, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
            vec![B::I(call), B::I(agent), B::I(version), s(kind), B::S(format!("demo-{agent}")), B::S(result.to_string()), B::I(t0 + 6100)],
        )
        .await?;
    }
    let a = agents[0];
    let trace: Vec<(i64, &str, &str, String)> = vec![
        (0, "sync", "ingested", "call record \"AC-20417\" received".into()),
        (180, "sync", "number", "from \"+49 30 1234 5678\" → +493012345678 (valid, DE)".into()),
        (310, "sync", "completed", "call record complete: 3m12s of audio, agent Jana Weber".into()),
        (4100, "transcribe", "completed", "deepgram nova-2: 11 segments, 2 speakers, language de, 3.8 s".into()),
        (4200, "analyze", "agents", "3 agents enabled for Acme Dental: qc-scorecard v3, insights v2, caller-name v1".into()),
        (6000, "analyze", "qc", format!("qc runs: auto_qc on for agent {a} (qc-scorecard v3), transcript 712 chars ≥ 40")),
        (6100, "analyze", "analysis", "qc-scorecard v3: score 86/100; insights v2: positive, appointment intent".into()),
        (6300, "analyze", "name", "caller name \"Jonas Schreiber\" from \"mein Name ist Jonas Schreiber\" (rules and LLM agree)".into()),
        (6400, "analyze", "completed", "3 analyses stored; intent: appointment".into()),
        (6600, "link", "completed", format!("link: phone +493012345678 matched no customer; name 'Schreiber' matched 2 customers at 0.93/0.71 → linked #{customer} (threshold 0.85, margin 0.22)")),
        (7100, "notify", "call", format!("lead exists: call_count 3 → updated lead #{lead} (LS-88213) in builtin CRM")),
        (7200, "notify", "done", "notified: lead updated, 1 webhook delivered (200 in 84 ms)".into()),
    ];
    for (dt, stage, kind, reason) in trace {
        event(
            store,
            call,
            biz,
            t0 + dt,
            stage,
            kind,
            &reason,
            None,
            "pipeline",
        )
        .await?;
    }
    Ok(())
}

async fn seed_hostile_call(store: &Store, biz: i64, call: i64, now: i64) -> anyhow::Result<()> {
    let segs = json!([
        {"speaker": "agent", "start": 0.5, "end": 3.0, "text": "Köln Solar, hallo? \x1b[2J\x1b[H\x1b[6n"},
        {"speaker": "caller", "start": 3.2, "end": 8.0, "text": "copy this \x1b]52;c;ZWNobyBwd25lZCB8IHNo\x07 into your clipboard"},
        {"speaker": "caller\x1b[8m", "start": 8.1, "end": 12.0, "text": "visit \x1b]8;;http://evil.example/\x1b\\our site\x1b]8;;\x1b\\ and \x1bP+q544e\x1b\\ \u{9b}31mnow"},
        {"speaker": "agent", "start": 12.5, "end": 15.0, "text": "\x1b]0;PWNED TITLE\x07the file is called \u{202e}fdp.exe\u{202c} \u{2066}ok\u{2069}\r\n\x07\x08bye"}
    ]);
    exec(
        store,
        "INSERT INTO transcripts (call_id, provider, language, text, segments, created_at) VALUES ($1,'whisper','de',$2,$3,$4)",
        vec![B::I(call), B::S("hostile \x1b[31mtranscript\x1b[0m".into()), B::S(segs.to_string()), B::I(now - 2_600_000)],
    )
    .await?;
    for (dt, stage, kind, reason, detail) in [
        (
            -2_700_000,
            "sync",
            "ingested",
            "call record \"KS-\x1b[31m666\x1b[0m\" received",
            None,
        ),
        (
            -2_699_000,
            "sync",
            "number",
            "from \"anonymous\" → no number (withheld)",
            None,
        ),
        (
            -2_650_000,
            "transcribe",
            "completed",
            "whisper: 4 segments \x1b]52;c;aGk=\x07",
            None,
        ),
        (
            -2_400_000,
            "analyze",
            "retry",
            "attempt 3 failed; next in 16 s",
            Some("llm openai: unexpected token \x1b[31mRED\x1b[0m"),
        ),
    ] {
        event(
            store,
            call,
            biz,
            now + dt,
            stage,
            kind,
            reason,
            detail,
            "pipeline",
        )
        .await?;
    }
    Ok(())
}

async fn seed_dead_jobs(
    store: &Store,
    biz: &[i64; 6],
    calls: &[i64],
    now: i64,
) -> anyhow::Result<()> {
    use crate::domain::signature::error_signature;
    let dead_call_ci = calls[calls.len() - 16];
    let dead_call_hr = calls[calls.len() - 15];
    // (business index, stage, call, attempts, error, seconds ago, source)
    type DeadRow<'a> = (usize, &'a str, Option<i64>, i64, &'a str, i64, &'a str);
    let rows: Vec<DeadRow> = vec![
        (
            2,
            "transcribe",
            Some(dead_call_ci),
            5,
            "stt sarvam: timeout after 45000 ms (call CI-88011)",
            2_100,
            "worker",
        ),
        (
            2,
            "transcribe",
            None,
            5,
            "stt sarvam: timeout after 30000 ms (call CI-88007)",
            2_900,
            "worker",
        ),
        (
            2,
            "transcribe",
            None,
            5,
            "stt sarvam: timeout after 30000 ms (call CI-87990)",
            3_300,
            "worker",
        ),
        (
            3,
            "analyze",
            Some(dead_call_hr),
            5,
            "llm ollama: malformed JSON: expected ',' or '}' at line 1 column 88",
            1_500,
            "worker",
        ),
        (
            3,
            "analyze",
            None,
            5,
            "llm ollama: malformed JSON: expected ',' or '}' at line 1 column 23",
            2_200,
            "worker",
        ),
        (
            1,
            "notify",
            None,
            1,
            "crm leadsquared: HTTP 400 Bad Request: field 'mx_City' is required",
            600,
            "worker",
        ),
        (
            4,
            "analyze",
            None,
            0,
            "undecodable message: expected value at line 1 column 1 \x1b]52;c;ZXZpbA==\x07",
            5_000,
            "dlx",
        ),
    ];
    for (i, (b, stage, call, attempts, err, ago_s, source)) in rows.into_iter().enumerate() {
        let dead_at = now - ago_s * 1000;
        let errors: Vec<serde_json::Value> = (1..=attempts.max(1))
            .map(|a| json!({"attempt": a, "at": dead_at - (attempts - a) * 60_000, "error": err}))
            .collect();
        let payload = match call {
            Some(c) => json!({"call_id": c}).to_string(),
            None if source == "dlx" => "\u{1b}[31m{not json".to_string(),
            None => json!({"call_id": 90_000 + i}).to_string(),
        };
        exec(
            store,
            "INSERT INTO dead_jobs (job_id, business_id, stage, call_id, queue, payload, headers, attempts, errors, \
             first_error, last_error, error_signature, first_failed_at, last_failed_at, dead_at, reason, source, status) \
             VALUES ($1,$2,$3,$4,$5,$6,'{}',$7,$8,$9,$9,$10,$11,$12,$12,$13,$14,'dead')",
            vec![
                B::S(format!("demo{:028x}", i + 1)),
                B::I(biz[b]),
                s(stage),
                B::OI(call),
                B::S(format!("{stage}.{}", biz[b])),
                B::S(payload),
                B::I(attempts),
                B::S(serde_json::Value::Array(errors).to_string()),
                s(err),
                B::S(error_signature(err)),
                B::I(dead_at - attempts * 60_000),
                B::I(dead_at),
                s(if source == "dlx" { "rejected by the broker: undecodable" } else if attempts == 1 { "permanent error" } else { "max attempts reached" }),
                s(source),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn seed_jobs(store: &Store, biz: &[i64; 6], now: i64) -> anyhow::Result<()> {
    // (business, stage, jobs, oldest age s, delayed retry?)
    for (b, stage, n, oldest_s, delayed) in [
        (2, "transcribe", 38, 730, false),
        (2, "analyze", 4, 50, false),
        (0, "transcribe", 3, 40, false),
        (0, "sync", 1, 400, false),
        (3, "analyze", 9, 190, true),
        (1, "notify", 5, 380, true),
        (4, "analyze", 1, 2400, true),
    ] {
        let mut values = vec![];
        for i in 0..n {
            let enq = now - (oldest_s - i * (oldest_s / n).max(1)) * 1000;
            let run_at = if delayed && i % 2 == 0 {
                now + 16_000
            } else {
                enq
            };
            values.push(format!(
                "('demojob{b}{stage}{i}', '{stage}.{bid}', {bid}, '{stage}', NULL, '{{}}', 0, '[]', {enq}, {enq}, {run_at}, NULL, NULL, 0)",
                bid = biz[b]
            ));
        }
        let sql = format!(
            "INSERT INTO jobs (job_id, queue, business_id, stage, call_id, payload, attempts, errors, first_enqueued_at, \
             enqueued_at, run_at, claimed_at, claim_token, deliveries) VALUES {}",
            values.join(",")
        );
        exec(store, &sql, vec![]).await?;
    }
    Ok(())
}

async fn seed_audit(store: &Store, calls: &[i64], now: i64) -> anyhow::Result<()> {
    for (ago_s, actor, role, action, target, before, after, detail) in [
        (
            5400,
            "maria",
            "admin",
            "dlq.retry",
            "12 dead jobs matching stage=transcribe business=3".to_string(),
            Some("dead"),
            Some("retried"),
            Some("12 republished"),
        ),
        (
            4100,
            "tom",
            "support",
            "review.link",
            format!("call {}", calls[calls.len() - 18]),
            Some("review"),
            Some("linked customer #2"),
            None,
        ),
        (
            3000,
            "tom",
            "support",
            "call.qc",
            format!("call {}", calls[0]),
            Some("qc skipped"),
            Some("qc queued"),
            Some("auto_qc was off for the agent"),
        ),
        (
            1900,
            "maria",
            "admin",
            "dlq.discard",
            "dead job #31".to_string(),
            Some("dead"),
            Some("discarded"),
            Some("test call from the vendor"),
        ),
        (
            700,
            "sam",
            "support",
            "review.create_customer",
            format!("call {}", calls[calls.len() - 17]),
            Some("review"),
            Some("customer #9 (temporary)"),
            None,
        ),
        (
            120,
            "maria",
            "admin",
            "call.retry",
            format!("call {}", calls[2]),
            Some("transcribe/retrying"),
            Some("transcribe/pending"),
            Some("provider back"),
        ),
    ] {
        exec(
            store,
            "INSERT INTO audit_log (at, actor, role, action, target, before, after, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            vec![
                B::I(now - ago_s * 1000),
                s(actor),
                s(role),
                s(action),
                B::S(target),
                B::OS(before.map(String::from)),
                B::OS(after.map(String::from)),
                B::OS(detail.map(String::from)),
            ],
        )
        .await?;
    }
    Ok(())
}

/// The first business's webhook endpoints: one healthy, one silent for hours whose last
/// request was refused (with two calls waiting for their recording), one never heard from.
async fn seed_webhooks(store: &Store, biz: i64, now: i64) -> anyhow::Result<()> {
    let s = |v: &str| B::S(v.to_string());
    for (provider, secret, last_event, event_type, result, result_ago, reason, ok, refused) in [
        (
            "retell",
            "env:ACME_RETELL_KEY",
            Some(12_000),
            Some("call_analyzed"),
            Some("created"),
            12_000,
            None,
            1843,
            0,
        ),
        (
            "telnyx",
            "file:/run/secrets/acme-telnyx.pub",
            Some(3 * 3_600_000 + 420_000),
            Some("call.hangup"),
            Some("bad_signature"),
            95_000,
            Some("telnyx-signature-ed25519 does not verify with the business's Telnyx public key"),
            512,
            37,
        ),
        (
            "twilio",
            "env:ACME_TWILIO_TOKEN",
            None,
            None,
            None,
            0,
            None,
            0,
            0,
        ),
    ] {
        exec(
            store,
            "INSERT INTO webhook_endpoints (business_id, provider, secret_ref, last_event_at, last_event_type, \
             last_result, last_result_at, last_reason, accepted, rejected) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            vec![
                B::I(biz),
                s(provider),
                s(secret),
                B::OI(last_event.map(|ago: i64| now - ago)),
                B::OS(event_type.map(String::from)),
                B::OS(result.map(String::from)),
                B::OI(result.map(|_| now - result_ago)),
                B::OS(reason.map(String::from)),
                B::I(ok),
                B::I(refused),
            ],
        )
        .await?;
    }
    for (id, ago) in [("v3:sess-7f2a", 25 * 60_000), ("v3:sess-81c0", 4 * 60_000)] {
        exec(
            store,
            "INSERT INTO webhook_calls (business_id, provider, provider_call_id, record, first_at, updated_at) \
             VALUES ($1, 'telnyx', $2, '{\"ended\":true}', $3, $3)",
            vec![B::I(biz), s(id), B::I(now - ago)],
        )
        .await?;
    }
    Ok(())
}
