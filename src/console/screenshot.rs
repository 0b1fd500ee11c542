//! `callops screenshot`: render a view with the real renderer (ratatui buffer from
//! `views::draw`) against a deterministic demo data set, and paint the buffer's cells to a
//! PNG with DejaVu Sans Mono — no terminal, no network.

use super::snapshot::{BizRow, CallDetail, Snapshot};
use crate::domain::stage::{CallState, Stage};
use crate::store::audit::AuditEntry;
use crate::store::events::CallEvent;
use crate::store::transcripts::{StoredAnalysis, StoredTranscript};
use crate::store::{Call, DeadJob, DeadJobStatus};
use crate::views::{self, UiState, View};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use std::collections::HashMap;
use std::path::Path;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono-Bold.ttf");
/// A fixed clock so every image is the same from run to run.
pub const DEMO_NOW: i64 = 1_795_400_000_000;

pub const VIEWS: &[&str] = &[
    "overview", "stuck", "dlq", "review", "audit", "call", "help",
];

fn call(
    id: i64,
    biz: i64,
    stage: Stage,
    state: CallState,
    age_s: i64,
    name: Option<&str>,
    err: Option<&str>,
) -> Call {
    Call {
        id,
        business_id: biz,
        external_id: format!("ext-{id}"),
        direction: "inbound".into(),
        from_number: Some(if id % 2 == 0 {
            "anonymous".into()
        } else {
            "+49 30 1234567".into()
        }),
        from_e164: (id % 2 == 1).then(|| "+49301234567".into()),
        number_status: Some(if id % 2 == 0 {
            "withheld".into()
        } else {
            "valid".into()
        }),
        to_number: None,
        agent_name: Some("Lena".into()),
        campaign: None,
        language: Some("de".into()),
        started_at: Some(DEMO_NOW - age_s * 1000 - 90_000),
        duration_ms: 94_000,
        audio_url: Some("sim://audio/x".into()),
        stage,
        state,
        state_since: DEMO_NOW - age_s * 1000,
        attempts: if err.is_some() { 3 } else { 1 },
        last_error: err.map(str::to_string),
        customer_id: None,
        lead_id: None,
        link_status: (state == CallState::Review).then(|| "review".into()),
        link_method: None,
        link_confidence: None,
        extracted_name: name.map(str::to_string),
        review_priority: (state == CallState::Review).then_some(if id % 3 == 0 { 200 } else { 1 }),
        review_reason: (state == CallState::Review).then(|| {
            format!(
                "link: name '{}' matched 2 customers at 0.91/0.88 → review",
                name.unwrap_or("?")
            )
        }),
        review_candidates: None,
        created_at: DEMO_NOW - age_s * 1000,
        updated_at: DEMO_NOW,
        version: 3,
    }
}

/// The deterministic data every screenshot and snapshot test renders.
pub fn demo_snapshot() -> Snapshot {
    let names = [
        "Acme Insurance",
        "Autohaus Schreiber",
        "Cohen Dental",
        "Müller Sanitär GmbH",
        "Praxis Dr. Weber",
        "Sharma Motors",
    ];
    let mut businesses = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let k = (i as f64 + 1.0) * 3.0;
        let mut rate = HashMap::new();
        for (j, st) in Stage::ALL.iter().enumerate() {
            let f = 1.0 - j as f64 * 0.04;
            rate.insert(
                st.as_str().to_string(),
                [k * f, k * 0.9 * f, k * 0.8 * f, k * 0.7 * f],
            );
        }
        let backlog: HashMap<String, u64> = Stage::ALL
            .iter()
            .enumerate()
            .map(|(j, st)| {
                (
                    st.as_str().to_string(),
                    ((i * 7 + j * 3) % 11) as u64 * if i == 3 { 40 } else { 1 },
                )
            })
            .collect();
        businesses.push(BizRow {
            id: i as i64 + 1,
            name: n.to_string(),
            rate,
            audio_min_per_hour: k * 60.0,
            backlog,
            oldest_job_age_ms: Some(if i == 3 {
                412_000
            } else {
                (i as i64 + 1) * 4_000
            }),
            error_rate: if i == 1 { 0.081 } else { 0.012 * i as f64 },
            dlq: if i == 1 || i == 3 { (i * 4) as i64 } else { 0 },
            review: (i * 5 % 13) as i64,
            lead_filtered: if i == 4 { 17 } else { 0 },
            spark: (0..60)
                .map(|m| ((m * (i + 3) + i * 11) % 17) as u64)
                .collect(),
        });
    }
    let stuck = vec![
        call(811, 4, Stage::Transcribe, CallState::Retrying, 1_260, None, Some("simulated-stt: transient: timeout after 90000 ms (simulated)")),
        call(812, 4, Stage::Transcribe, CallState::Retrying, 1_100, None, Some("simulated-stt: transient: timeout after 90000 ms (simulated)")),
        call(640, 2, Stage::Analyze, CallState::Running, 930, None, Some("simulated-llm: malformed output for agent 'Call insights': not valid JSON (cut off)")),
        call(905, 1, Stage::Sync, CallState::Pending, 301, None, None),
    ];
    let dead_job = |id: i64, biz: i64, stage: &str, call_id: i64, err: &str, age_s: i64| DeadJob {
        id,
        job_id: format!("{id:032x}"),
        business_id: Some(biz),
        stage: Some(stage.into()),
        call_id: Some(call_id),
        queue: format!("{stage}.{biz}"),
        payload: format!("{{\"call_id\":{call_id}}}"),
        headers: "{}".into(),
        attempts: 5,
        errors: vec![],
        first_error: err.into(),
        last_error: err.into(),
        error_signature: crate::domain::signature::error_signature(err),
        first_failed_at: DEMO_NOW - age_s * 1000 - 60_000,
        last_failed_at: DEMO_NOW - age_s * 1000,
        dead_at: DEMO_NOW - age_s * 1000,
        reason: "max attempts reached".into(),
        source: "worker".into(),
        status: DeadJobStatus::Dead,
        status_at: None,
        status_by: None,
        retried_as: None,
    };
    let dead = vec![
        dead_job(31, 4, "transcribe", 702, "simulated-stt: permanent: 400 Bad Request: unsupported audio encoding (simulated)", 700),
        dead_job(30, 2, "analyze", 655, "simulated-llm: malformed output for agent 'QC scorecard': not valid JSON (cut off); raw output: {\"qc_score\":7", 1_900),
        dead_job(29, 4, "transcribe", 611, "simulated-stt: permanent: 400 Bad Request: unsupported audio encoding (simulated)", 3_600),
        dead_job(27, 2, "notify", 590, "leadsquared: transient: 429 Too Many Requests (Retry-After: 5)", 5_400),
    ];
    let review = vec![
        call(
            903,
            4,
            Stage::Link,
            CallState::Review,
            240,
            Some("Schreiber"),
            None,
        ),
        call(
            877,
            1,
            Stage::Link,
            CallState::Review,
            1_800,
            Some("Linda Carter"),
            None,
        ),
        call(
            850,
            5,
            Stage::Link,
            CallState::Review,
            3_000,
            Some("Monika Neumann"),
            None,
        ),
        call(
            822,
            3,
            Stage::Link,
            CallState::Review,
            4_100,
            Some("דוד כהן"),
            None,
        ),
    ];
    let audit = vec![
        AuditEntry {
            id: 3,
            at: DEMO_NOW - 60_000,
            actor: "anna".into(),
            role: "support".into(),
            action: "review.link".into(),
            target: "call 870".into(),
            before: Some("link/review".into()),
            after: Some("link call 870 to customer #41 (Anna Schreiber)".into()),
            detail: None,
        },
        AuditEntry {
            id: 2,
            at: DEMO_NOW - 600_000,
            actor: "oncall".into(),
            role: "admin".into(),
            action: "dlq.retry".into(),
            target: "dead jobs matching {\"stage\":\"transcribe\"}".into(),
            before: Some("12 dead".into()),
            after: Some("12 retried".into()),
            detail: None,
        },
        AuditEntry {
            id: 1,
            at: DEMO_NOW - 3_600_000,
            actor: "anna".into(),
            role: "support".into(),
            action: "call.qc".into(),
            target: "call 512".into(),
            before: Some("notify/done".into()),
            after: Some("analyze/pending".into()),
            detail: None,
        },
    ];
    let mut c = call(
        903,
        4,
        Stage::Link,
        CallState::Review,
        240,
        Some("Schreiber"),
        None,
    );
    c.from_number = Some("anonymous".into());
    let segments = serde_json::json!([
        {"speaker": "agent", "start": 0.0, "end": 4.1, "text": "Guten Tag, Firma Müller Sanitär, mein Name ist Lena, was kann ich für Sie tun?"},
        {"speaker": "caller", "start": 4.5, "end": 7.9, "text": "Ja, hallo, hier ist Frau Schreiber."},
        {"speaker": "caller", "start": 8.2, "end": 12.0, "text": "Ich hätte gern einen Termin nächste Woche, \u{1b}]52;c;ZXZpbA==\u{7}die Heizung ist kaputt."},
        {"speaker": "agent", "start": 12.4, "end": 15.0, "text": "Vielen Dank, auf Wiederhören."}
    ]);
    let ev = |id: i64, t: i64, stage: &str, kind: &str, reason: &str| CallEvent {
        id,
        call_id: 903,
        business_id: 4,
        at: DEMO_NOW - 240_000 - 20_000 + t,
        stage: stage.into(),
        kind: kind.into(),
        reason: reason.into(),
        detail: None,
        actor: "pipeline".into(),
    };
    let call_detail = CallDetail {
        call: Some(c),
        transcript: Some(StoredTranscript { call_id: 903, provider: "simulated".into(), language: Some("de".into()), text: String::new(), segments: segments.to_string(), stt_skipped: None, created_at: DEMO_NOW }),
        analyses: vec![StoredAnalysis { id: 1, call_id: 903, agent_id: Some(7), agent_version: 1, kind: "qc".into(), cache_key: "x".into(), result: "{\"qc_score\":81,\"scores\":{\"greeting\":9,\"needs_analysis\":7,\"solution\":8,\"closing\":8}}".into(), raw_output: None, created_at: DEMO_NOW }],
        events: vec![
            ev(1, 0, "sync", "ingested", "call record \"ext-903\" received"),
            ev(2, 400, "sync", "number", "caller number withheld: caller id says \"anonymous\""),
            ev(3, 500, "sync", "completed", "synced; audio to transcribe"),
            ev(4, 9_000, "transcribe", "completed", "transcribed by simulated: 4 segments, 2 speakers, 94 s, language de"),
            ev(5, 9_500, "analyze", "qc", "qc: auto_qc on for agent 'QC scorecard', transcript 182 characters"),
            ev(6, 11_000, "analyze", "name", "name: rule 'hier ist' found 'Schreiber' (confidence 0.85)"),
            ev(7, 11_200, "analyze", "completed", "analyzed by 2 agents; caller name 'Schreiber'; intent appointment"),
            ev(8, 12_000, "link", "review", "link: name 'Schreiber' matched 2 customers at 0.91/0.88 → review"),
        ],
    };
    Snapshot {
        fetched_at: DEMO_NOW - 1_000,
        took_ms: 14,
        db_ok: true,
        broker_ok: true,
        broker_kind: "rabbitmq".into(),
        error: None,
        businesses,
        stuck,
        dead,
        dead_total: 4,
        dlx_unarchived: 0,
        review,
        audit,
        call: Some(call_detail),
    }
}

pub fn demo_ui(view: &str) -> anyhow::Result<UiState> {
    let v = match view {
        "overview" => View::Overview,
        "stuck" => View::Stuck,
        "dlq" => View::Dlq,
        "review" => View::Review,
        "audit" => View::Audit,
        "call" => View::Call,
        "help" => View::Help,
        other => anyhow::bail!(
            "unknown view {other:?}: expected one of {}",
            VIEWS.join(", ")
        ),
    };
    let mut ui = UiState::new(false, "admin");
    ui.view = v;
    ui.now_ms = DEMO_NOW;
    ui.snapshot = Some(demo_snapshot());
    Ok(ui)
}

/// Render a view into a ratatui buffer with the real `views::draw`.
pub fn render_buffer(ui: &UiState, width: u16, height: u16) -> anyhow::Result<Buffer> {
    let mut term = Terminal::new(TestBackend::new(width, height))?;
    term.draw(|f| views::draw(f, ui))?;
    Ok(term.backend().buffer().clone())
}

fn rgb(c: Color, fg: bool) -> [u8; 3] {
    match c {
        Color::Reset => {
            if fg {
                [220, 220, 220]
            } else {
                [24, 26, 33]
            }
        }
        Color::Black => [24, 26, 33],
        Color::Red => [224, 82, 82],
        Color::Green => [120, 200, 120],
        Color::Yellow => [230, 200, 90],
        Color::Blue => [90, 140, 230],
        Color::Magenta => [200, 120, 220],
        Color::Cyan => [90, 200, 220],
        Color::Gray => [170, 170, 170],
        Color::DarkGray => [90, 94, 104],
        Color::White => [240, 240, 240],
        Color::Rgb(r, g, b) => [r, g, b],
        Color::Indexed(i) => [i, i, i],
        _ => {
            if fg {
                [220, 220, 220]
            } else {
                [24, 26, 33]
            }
        }
    }
}

/// Paint a buffer to PNG: each cell is a fixed box; glyphs are rasterized with fontdue.
pub fn buffer_to_png(buf: &Buffer, out: &Path) -> anyhow::Result<()> {
    let regular = fontdue::Font::from_bytes(FONT, fontdue::FontSettings::default())
        .map_err(|e| anyhow::anyhow!("font: {e}"))?;
    let bold = fontdue::Font::from_bytes(FONT_BOLD, fontdue::FontSettings::default())
        .map_err(|e| anyhow::anyhow!("font: {e}"))?;
    let px = 15.0f32;
    let (cw, ch) = (9usize, 18usize);
    let ascent = regular
        .horizontal_line_metrics(px)
        .map(|m| m.ascent)
        .unwrap_or(12.0)
        .round() as i32;
    let (w, h) = (buf.area.width as usize * cw, buf.area.height as usize * ch);
    let mut img = vec![0u8; w * h * 3];
    let mut cache: HashMap<(char, bool), (fontdue::Metrics, Vec<u8>)> = HashMap::new();
    let colors = |cell: &ratatui::buffer::Cell| {
        let (fg, bg) = (rgb(cell.fg, true), rgb(cell.bg, false));
        if cell.modifier.contains(Modifier::REVERSED) {
            (bg, fg)
        } else {
            (fg, bg)
        }
    };
    // Backgrounds first, then glyphs: descenders (underscores, g, y) may reach into the
    // row below and must not be painted over by its background.
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let (_, bg) = colors(&buf[(x, y)]);
            let (x0, y0) = (x as usize * cw, y as usize * ch);
            for yy in 0..ch {
                for xx in 0..cw {
                    let i = ((y0 + yy) * w + x0 + xx) * 3;
                    img[i..i + 3].copy_from_slice(&bg);
                }
            }
        }
    }
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            let (fg, _) = colors(cell);
            let (x0, y0) = (x as usize * cw, y as usize * ch);
            let ch_ = cell.symbol().chars().next().unwrap_or(' ');
            if ch_ == ' ' {
                continue;
            }
            let is_bold = cell.modifier.contains(Modifier::BOLD);
            let (m, bitmap) = cache
                .entry((ch_, is_bold))
                .or_insert_with(|| {
                    if is_bold {
                        bold.rasterize(ch_, px)
                    } else {
                        regular.rasterize(ch_, px)
                    }
                })
                .clone();
            let gx = x0 as i32 + m.xmin;
            let gy = y0 as i32 + ascent - m.height as i32 - m.ymin + 1;
            for by in 0..m.height {
                for bx in 0..m.width {
                    let a = bitmap[by * m.width + bx] as u32;
                    if a == 0 {
                        continue;
                    }
                    let (px_, py_) = (gx + bx as i32, gy + by as i32);
                    if px_ < 0 || py_ < 0 || px_ as usize >= w || py_ as usize >= h {
                        continue;
                    }
                    let i = (py_ as usize * w + px_ as usize) * 3;
                    for k in 0..3 {
                        img[i + k] =
                            ((fg[k] as u32 * a + img[i + k] as u32 * (255 - a)) / 255) as u8;
                    }
                }
            }
            if cell.modifier.contains(Modifier::UNDERLINED) {
                for xx in 0..cw {
                    let i = ((y0 + ch - 2) * w + x0 + xx) * 3;
                    img[i..i + 3].copy_from_slice(&fg);
                }
            }
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&img)?;
    Ok(())
}

pub fn screenshot(view: &str, out: &Path, width: u16, height: u16) -> anyhow::Result<()> {
    let ui = demo_ui(view)?;
    let buf = render_buffer(&ui, width, height)?;
    buffer_to_png(&buf, out)
}
