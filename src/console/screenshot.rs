//! `callops screenshot`: drive the real console (`App`) through its own commands against a
//! deterministic demo database (`demo_data`, a temporary SQLite file), render the frame with
//! `views::draw` into a ratatui buffer, and paint the buffer's cells to a PNG with DejaVu
//! Sans Mono — no terminal, no network. Snapshot tests render the same buffers as text.

use super::app::App;
use super::demo_data::{seed_demo_data, DemoIds, DEMO_NOW};
use super::keymap::KeyMap;
use super::refresher::{Answer, Queues};
use super::settings::ConsoleSettings;
use crate::store::Store;
use crate::views;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use std::collections::HashMap;
use std::path::Path;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono-Bold.ttf");

/// Every view `screenshot` knows; "hostile" is the call whose text is full of escape
/// sequences (what a transcript can carry), rendered harmless.
pub const VIEWS: &[&str] = &[
    "overview", "business", "stuck", "dlq", "review", "audit", "call", "hostile", "help",
    "outbound",
];

/// The demo database: a fresh SQLite file under the temp dir, seeded at `DEMO_NOW`.
pub struct DemoDb {
    pub store: Store,
    pub ids: DemoIds,
    path: std::path::PathBuf,
}

impl DemoDb {
    pub async fn open() -> anyhow::Result<DemoDb> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "callops-demo-{}-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            crate::now_ms()
        ));
        let store = Store::open_migrated(&format!("sqlite:{}", path.display()), 2).await?;
        let ids = seed_demo_data(&store).await?;
        Ok(DemoDb { store, ids, path })
    }

    pub async fn close(self) {
        self.store.pool().close().await;
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.path.display()));
        }
    }

    /// An admin console showing `view` at `DEMO_NOW`, reached through the console's own
    /// palette commands, with the data a refresh at `DEMO_NOW` brings.
    pub async fn console(&self, view: &str, area: Rect) -> anyhow::Result<App> {
        let settings = ConsoleSettings {
            role: "admin".into(),
            ..Default::default()
        };
        let mut app = App::new(settings.clone(), KeyMap::default(), "admin", None);
        self.refresh(&mut app, &settings).await;
        let command = match view {
            "overview" => String::new(),
            "business" => format!(
                "biz {}",
                self.store.business(self.ids.businesses[0]).await?.name
            ),
            "call" => format!("call {}", self.ids.traced_call),
            "hostile" => format!("call {}", self.ids.hostile_call),
            "stuck" | "dlq" | "review" | "audit" | "help" | "outbound" => view.to_string(),
            other => anyhow::bail!(
                "unknown view {other:?}: expected one of {}",
                VIEWS.join(", ")
            ),
        };
        if app.run_command(&command) {
            anyhow::bail!("the command {command:?} quit the console");
        }
        self.refresh(&mut app, &settings).await;
        app.prepare(area, DEMO_NOW);
        // What the first frame asked for (the selected review item's own words) arrives
        // with the next refresh, as it does live.
        self.refresh(&mut app, &settings).await;
        app.prepare(area, DEMO_NOW);
        Ok(app)
    }

    /// One refresh of the app's current view, stamped at `DEMO_NOW` so frames are stable.
    pub async fn refresh(&self, app: &mut App, settings: &ConsoleSettings) {
        let route = app.state.content_route();
        let mut snap = super::refresher::fetch_filtered(
            &self.store,
            Queues::JobsTableAt(DEMO_NOW),
            route,
            settings,
            DEMO_NOW,
            &app.queries(),
        )
        .await;
        snap.started_at = DEMO_NOW - 42;
        snap.finished_at = DEMO_NOW;
        for a in [&mut snap.db, &mut snap.broker] {
            if let Answer::Ok { latency_ms } = a {
                *latency_ms = 42;
            }
        }
        app.apply(snap, Some(DEMO_NOW + settings.refresh_ms as i64));
    }
}

/// Render the app's state with the real `views::draw`.
pub fn render_buffer(app: &App, width: u16, height: u16) -> anyhow::Result<Buffer> {
    let mut term = Terminal::new(TestBackend::new(width, height))?;
    term.draw(|f| views::draw(f, &app.state))?;
    Ok(term.backend().buffer().clone())
}

/// The buffer as plain text, one line per row (snapshot tests).
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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

/// Render `view` (see `VIEWS`) at `width`×`height` into `out`.
pub async fn screenshot(view: &str, out: &Path, width: u16, height: u16) -> anyhow::Result<()> {
    let db = DemoDb::open().await?;
    let r = async {
        let app = db.console(view, Rect::new(0, 0, width, height)).await?;
        let buf = render_buffer(&app, width, height)?;
        buffer_to_png(&buf, out)
    }
    .await;
    db.close().await;
    r
}
