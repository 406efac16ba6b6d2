//! The headline comparison as a PNG chart (`--chart PATH`, `--chart-from JSON`).
//!
//! One panel per headline figure present among the rows (W3 pipelined 64 B
//! messages/s, W2 ping-pong RTT p50, W1 1 MiB messages GB/s, W4 100 streams of
//! 64 KiB writes GB/s, W5 pub/sub 1 -> 1 deliveries/s): horizontal bars for Weft
//! on each runtime next to the same-run baselines of that workload, the std-tcp
//! limit in grey, other baselines in orange, Weft in blue. A bar is the median
//! over the passes, its whisker spans the lowest to the highest pass, and its
//! label gives the median. Panels whose rows were not run (filters) are left out.
//!
//! Text is drawn with an embedded subset of DejaVu Sans (`assets/`, licence
//! beside it) through plotters' `ab_glyph` feature, so no system font is needed;
//! the bitmap is encoded with the `png` crate.

use crate::report::{Row, LIMIT, UNIT_GBPS, UNIT_MSGS, UNIT_US};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt;
use std::path::Path;
use std::sync::Once;

/// Width of the chart in pixels.
pub const WIDTH: u32 = 1600;
/// Height of the title and legend band in pixels.
pub const HEADER_HEIGHT: u32 = 132;
/// Height of one row of panels in pixels.
pub const PANEL_HEIGHT: u32 = 400;
/// Panels side by side.
pub const COLUMNS: usize = 2;

/// DejaVu Sans cut down to ASCII, Latin-1 and the en and em dashes (see
/// `assets/DejaVuSans-subset.LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
/// The family name the embedded font is registered under.
const FAMILY: &str = "weft-sans";

/// Colour of Weft's bars (RGB).
pub const WEFT_RGB: [u8; 3] = [31, 119, 180];
/// Colour of the baselines' bars other than the limit (RGB).
pub const BASELINE_RGB: [u8; 3] = [230, 120, 20];
/// Colour of the limit's bars (RGB).
pub const LIMIT_RGB: [u8; 3] = [128, 128, 128];

const fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}
const WEFT: RGBColor = rgb(WEFT_RGB);
const BASELINE: RGBColor = rgb(BASELINE_RGB);
const LIMIT_COLOR: RGBColor = rgb(LIMIT_RGB);
const INK: RGBColor = RGBColor(30, 30, 30);

/// Why no chart was drawn.
#[derive(Debug)]
pub enum ChartError {
    /// None of the rows is a headline figure (e.g. a filter left them out).
    NoHeadlineRows,
    /// The JSON input could not be read as rows.
    Json(String),
    /// Drawing or encoding failed.
    Draw(String),
    /// Reading or writing a file failed.
    Io(std::io::Error),
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::NoHeadlineRows => write!(
                f,
                "no headline rows (W1 1 MiB, W2 RTT p50, W3 pipelined, W4 100 streams 64 KiB, W5 1->1) to chart"
            ),
            ChartError::Json(e) => write!(f, "reading the JSON rows: {e}"),
            ChartError::Draw(e) => write!(f, "drawing the chart: {e}"),
            ChartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ChartError {}

impl From<std::io::Error> for ChartError {
    fn from(e: std::io::Error) -> Self {
        ChartError::Io(e)
    }
}

fn draw_err<E: fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// One headline figure: which rows it takes and how it is shown.
struct Headline {
    title: &'static str,
    axis: &'static str,
    /// Workload prefix (the Weft rows and the baselines of W1 differ after `W1`).
    workload: &'static str,
    /// Metric, compared case-insensitively.
    metric: &'static str,
    unit: &'static str,
    /// Displayed value = row value * scale.
    scale: f64,
    /// Appended to the bar labels.
    suffix: &'static str,
}

const HEADLINES: [Headline; 5] = [
    Headline {
        title: "W3 pipelined 64 B one-way messages",
        axis: "million messages/s received (higher is better)",
        workload: "W3 pipelined",
        metric: "messages received",
        unit: UNIT_MSGS,
        scale: 1e-6,
        suffix: " M",
    },
    Headline {
        title: "W2 ping-pong 64 B: round-trip time p50 (lower is better)",
        axis: "RTT p50 in \u{b5}s (LOWER is better)",
        workload: "W2 ping-pong",
        metric: "rtt p50",
        unit: UNIT_US,
        scale: 1.0,
        suffix: " \u{b5}s",
    },
    Headline {
        title: "W1 bulk: 1 MiB messages",
        axis: "GB/s of payload received (higher is better)",
        workload: "W1",
        metric: "payload received",
        unit: UNIT_GBPS,
        scale: 1.0,
        suffix: "",
    },
    Headline {
        title: "W4 100 concurrent streams, 64 KiB writes",
        axis: "GB/s received (higher is better)",
        workload: "W4 streams 64KiB",
        metric: "bytes received (100 streams)",
        unit: UNIT_GBPS,
        scale: 1.0,
        suffix: "",
    },
    Headline {
        title: "W5 pub/sub 64 B, 1 publisher -> 1 subscriber",
        axis: "million deliveries/s (higher is better)",
        workload: "W5 pub/sub",
        metric: "deliveries (1 subscriber)",
        unit: UNIT_MSGS,
        scale: 1e-6,
        suffix: " M",
    },
];

/// What a bar stands for (its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Weft on one runtime (`weft-*`).
    Weft,
    /// The workload's limit (std-tcp: plain length-prefixed TCP).
    Limit,
    /// Another same-run baseline (tokio TCP, its codec, yamux).
    Baseline,
}

/// One bar: displayed value (median) and whisker (lowest and highest pass).
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The label on the axis.
    pub label: String,
    /// Weft, limit or baseline.
    pub side: Side,
    /// Median, in the panel's display unit.
    pub value: f64,
    /// Lowest pass.
    pub min: f64,
    /// Highest pass.
    pub max: f64,
}

/// One panel of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The caption.
    pub title: String,
    /// The value axis description, with unit and direction.
    pub axis: String,
    /// Suffix of the value labels.
    pub suffix: String,
    /// Bars from top to bottom: Weft first, then the limit, then the baselines.
    pub bars: Vec<Bar>,
}

fn side(r: &Row) -> Side {
    if r.system.starts_with("weft-") {
        Side::Weft
    } else if r.ratio == LIMIT || r.system == "std-tcp" {
        // JSON rows carry no ratio column: std-tcp is the limit of W1-W3.
        Side::Limit
    } else {
        Side::Baseline
    }
}

fn label(system: &str, side: Side) -> String {
    match side {
        Side::Limit => format!("{system} (limit)"),
        _ => match system.strip_prefix("yamux-") {
            Some("1") => format!("{system} (1 stream)"),
            Some(n) => format!("{system} ({n} streams)"),
            None => system.to_string(),
        },
    }
}

/// The headline panels present among `rows`, in a fixed order; a panel with no
/// Weft row is left out (nothing to compare).
pub fn panels(rows: &[Row]) -> Vec<Panel> {
    HEADLINES
        .iter()
        .filter_map(|h| {
            let picked: Vec<&Row> = rows
                .iter()
                .filter(|r| {
                    r.workload.starts_with(h.workload)
                        && r.metric.eq_ignore_ascii_case(h.metric)
                        && r.unit == h.unit
                        && r.value.is_finite()
                })
                .collect();
            if !picked.iter().any(|r| side(r) == Side::Weft) {
                return None;
            }
            let mut bars: Vec<Bar> = picked
                .iter()
                .map(|r| {
                    let s = side(r);
                    let fin = |v: f64| if v.is_finite() { v } else { r.value };
                    Bar {
                        label: label(&r.system, s),
                        side: s,
                        value: r.value * h.scale,
                        min: fin(r.min) * h.scale,
                        max: fin(r.max) * h.scale,
                    }
                })
                .collect();
            // Weft first, then the limit, then the other baselines; the order of
            // the rows within each (stable sort).
            bars.sort_by_key(|b| match b.side {
                Side::Weft => 0,
                Side::Limit => 1,
                Side::Baseline => 2,
            });
            let alone = bars.iter().all(|b| b.side == Side::Weft);
            Some(Panel {
                title: if alone {
                    format!("{} - Weft only, no same-run baseline", h.title)
                } else {
                    h.title.to_string()
                },
                axis: h.axis.to_string(),
                suffix: h.suffix.to_string(),
                bars,
            })
        })
        .collect()
}

/// The size in pixels of a chart of `panels` panels.
pub fn size(panels: usize) -> (u32, u32) {
    let rows = panels.div_ceil(COLUMNS).max(1) as u32;
    (WIDTH, HEADER_HEIGHT + rows * PANEL_HEIGHT)
}

/// The title lines for a run whose printed header is `header`: its `machine:`
/// and `method:` lines (up to the first `;` for the method) and a smoke or debug
/// build warning. Empty if `header` has none of them.
pub fn title_lines(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in header.lines() {
        if let Some(m) = l.strip_prefix("machine: ") {
            let m = m.split("; crc32c").next().unwrap_or(m);
            out.push(format!("machine: {m}"));
        } else if let Some(m) = l.strip_prefix("method: ") {
            let mut parts = m.split(';');
            let mode = parts.next().unwrap_or(m).trim();
            let window = parts.next().unwrap_or("").trim();
            out.push(
                format!("method: {mode}; {window}")
                    .trim_end_matches("; ")
                    .to_string(),
            );
        } else if l.starts_with("note: smoke mode") || l.starts_with("note: debug build") {
            out.push(l.to_string());
        }
    }
    out
}

fn register_font() -> Result<(), ChartError> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| {
        ok = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok();
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Draw("the embedded font does not load".into()))
    }
}

/// Tick labels of a value axis reaching `max`.
fn tick(v: f64, max: f64) -> String {
    if max >= 20.0 {
        format!("{v:.0}")
    } else if max >= 2.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A bar's value label: three significant figures.
fn value_label(v: f64, suffix: &str) -> String {
    if v >= 100.0 {
        format!("{v:.0}{suffix}")
    } else if v >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

fn color(side: Side) -> RGBColor {
    match side {
        Side::Weft => WEFT,
        Side::Limit => LIMIT_COLOR,
        Side::Baseline => BASELINE,
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Panel,
) -> Result<(), ChartError> {
    let n = p.bars.len();
    let top = p
        .bars
        .iter()
        .map(|b| b.max.max(b.value))
        .fold(0.0, f64::max);
    // Room right of the longest whisker for its label.
    let xmax = if top > 0.0 { top * 1.3 } else { 1.0 };
    // Bar i (from the top) takes the band SLOT * (n-1-i) .. SLOT * (n-i) of the
    // y axis (integers: labels go exactly to the band centres).
    const SLOT: i32 = 100;
    let band = |i: usize| SLOT * (n - 1 - i) as i32;
    let centers: Vec<i32> = (0..n).map(|i| band(i) + SLOT / 2).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FAMILY, 21).into_font().color(&INK))
        .margin_top(8)
        .margin_left(12)
        .margin_right(24)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(200)
        .build_cartesian_2d(0.0..xmax, (0..SLOT * n as i32).with_key_points(centers))
        .map_err(draw_err)?;
    let names: Vec<String> = p.bars.iter().rev().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(6)
        .x_label_formatter(&|v| tick(*v, xmax))
        .y_label_formatter(&|v| {
            let i = (*v / SLOT) as usize;
            names.get(i).cloned().unwrap_or_default()
        })
        .x_desc(p.axis.as_str())
        .label_style((FAMILY, 15).into_font().color(&INK))
        .axis_desc_style((FAMILY, 16).into_font().color(&INK))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(p.bars.iter().enumerate().map(|(i, b)| {
            Rectangle::new(
                [(0.0, band(i) + 18), (b.value, band(i) + 82)],
                color(b.side).filled(),
            )
        }))
        .map_err(draw_err)?;
    let whisker = INK.stroke_width(2);
    for (i, b) in p.bars.iter().enumerate() {
        let y = band(i) + SLOT / 2;
        if b.max > b.min {
            let (lo, hi) = (y - 16, y + 16);
            for line in [
                vec![(b.min, y), (b.max, y)],
                vec![(b.min, lo), (b.min, hi)],
                vec![(b.max, lo), (b.max, hi)],
            ] {
                chart
                    .draw_series(std::iter::once(PathElement::new(line, whisker)))
                    .map_err(draw_err)?;
            }
        }
        let style = (FAMILY, 15)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(std::iter::once(Text::new(
                value_label(b.value, &p.suffix),
                (b.max.max(b.value) + xmax * 0.012, y),
                style,
            )))
            .map_err(draw_err)?;
    }
    Ok(())
}

fn draw_header<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &[String],
    passes_note: &str,
) -> Result<(), ChartError> {
    let text = |s: &str, x: i32, y: i32, size: u32| {
        area.draw(&Text::new(
            s.to_string(),
            (x, y),
            (FAMILY, size).into_font().color(&INK),
        ))
        .map_err(draw_err)
    };
    text(
        "Weft against same-run baselines: the headline figures",
        16,
        12,
        26,
    )?;
    let mut y = 46;
    for l in title.iter().take(3) {
        text(l, 16, y, 16)?;
        y += 20;
    }
    // The legend, on the right half.
    let x0 = WIDTH as i32 / 2 + 120;
    let items = [
        (WEFT, "Weft (weft-<runtime>: tokio, smol, mio, io_uring)"),
        (LIMIT_COLOR, "limit: std-tcp, plain length-prefixed TCP"),
        (
            BASELINE,
            "same-run baselines (tokio TCP / codec, yamux, h2, NATS)",
        ),
    ];
    for (k, (c, s)) in items.iter().enumerate() {
        let y = 46 + 20 * k as i32;
        area.draw(&Rectangle::new(
            [(x0, y + 2), (x0 + 22, y + 16)],
            c.filled(),
        ))
        .map_err(draw_err)?;
        text(s, x0 + 30, y, 16)?;
    }
    text(passes_note, x0, 46 + 20 * 3, 16)?;
    Ok(())
}

/// Renders the headline panels of `rows` as RGB pixels (`size` of the panel
/// count), with `title` (see [`title_lines`]) under the heading.
pub fn render(rows: &[Row], title: &[String]) -> Result<(u32, u32, Vec<u8>), ChartError> {
    let ps = panels(rows);
    if ps.is_empty() {
        return Err(ChartError::NoHeadlineRows);
    }
    register_font()?;
    let (w, h) = size(ps.len());
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (head, body) = root.split_vertically(HEADER_HEIGHT);
        draw_header(
            &head,
            title,
            "bars: median over passes; whiskers: lowest to highest pass",
        )?;
        let columns = if ps.len() == 1 { 1 } else { COLUMNS };
        let cells = body.split_evenly((ps.len().div_ceil(columns), columns));
        for (cell, p) in cells.iter().zip(&ps) {
            draw_panel(cell, p)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok((w, h, buf))
}

/// `rgb` (3 bytes a pixel, rows top to bottom) as a PNG file's bytes.
pub fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut wr = enc.write_header().map_err(draw_err)?;
    wr.write_image_data(rgb).map_err(draw_err)?;
    wr.finish().map_err(draw_err)?;
    Ok(out)
}

/// Draws the headline chart of `rows` into the PNG file `path`; returns the
/// number of panels. [`ChartError::NoHeadlineRows`] (and no file) if none.
pub fn write(rows: &[Row], title: &[String], path: &Path) -> Result<usize, ChartError> {
    let (w, h, rgb) = render(rows, title)?;
    std::fs::write(path, encode_png(w, h, &rgb)?)?;
    Ok(panels(rows).len())
}

/// Re-draws the chart from a JSON file written by `--json` into `out`. The title
/// lines come from the table saved beside it with the same name and `.txt`
/// extension (the run's standard output), if there is one. Returns the number
/// of panels and of rows read.
pub fn from_json(json: &Path, out: &Path) -> Result<(usize, usize), ChartError> {
    let text = std::fs::read_to_string(json)?;
    let rows = parse_json(&text).map_err(ChartError::Json)?;
    let mut title = std::fs::read_to_string(json.with_extension("txt"))
        .map(|t| title_lines(&t))
        .unwrap_or_default();
    if title.is_empty() {
        title.push(format!(
            "from {} (machine and method not recorded: no {} beside it)",
            json.display(),
            json.with_extension("txt")
                .file_name()
                .map_or("".into(), |f| f.to_string_lossy()),
        ));
    }
    let n = write(&rows, &title, out)?;
    Ok((n, rows.len()))
}

/// A JSON value of the row files: strings, numbers and null only.
#[derive(Debug, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Null,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = |p: &mut Self| -> Result<u32, String> {
                                let h = p.s.get(p.i..p.i + 4).ok_or("short \\u escape")?;
                                p.i += 4;
                                u32::from_str_radix(std::str::from_utf8(h).unwrap_or("x"), 16)
                                    .map_err(|e| format!("\\u escape: {e}"))
                            };
                            let mut u = hex(self)?;
                            if (0xD800..0xDC00).contains(&u) && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = hex(self)?;
                                u = 0x10000
                                    + ((u - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            char::from_u32(u).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    };
                    let mut b = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    fn value(&mut self) -> Result<Val, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Val::Str),
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Val::Null)
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                t.parse()
                    .map(Val::Num)
                    .map_err(|e| format!("number {t:?}: {e}"))
            }
            _ => Err(format!("unexpected value at byte {}", self.i)),
        }
    }
}

fn static_unit(u: &str) -> Option<&'static str> {
    [
        UNIT_MSGS,
        UNIT_GBPS,
        UNIT_US,
        crate::w67::UNIT_KIB,
        crate::w67::UNIT_ALLOCS,
    ]
    .into_iter()
    .find(|k| *k == u)
}

/// Reads rows from the JSON written by `--json` (an array of flat objects with
/// `workload`, `system`, `metric`, `value`, `unit`, `min`, `max`, and `note`
/// when the row has one; `null` reads as NaN). Rows of a unit this version does not know are left out.
pub fn parse_json(text: &str) -> Result<Vec<Row>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut rows = Vec::new();
    p.eat(b'[')?;
    if p.peek() == Some(b']') {
        p.i += 1;
    } else {
        loop {
            p.eat(b'{')?;
            let mut fields = Vec::new();
            if p.peek() == Some(b'}') {
                p.i += 1;
            } else {
                loop {
                    let k = p.string()?;
                    p.eat(b':')?;
                    fields.push((k, p.value()?));
                    match p.peek() {
                        Some(b',') => p.i += 1,
                        _ => {
                            p.eat(b'}')?;
                            break;
                        }
                    }
                }
            }
            let n = rows.len();
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| v)
                    .ok_or(format!("row {n}: no {k:?}"))
            };
            let text = |k: &str| match get(k)? {
                Val::Str(s) => Ok(s.clone()),
                v => Err(format!("row {n}: {k:?} is {v:?}, not a string")),
            };
            let num = |k: &str| match get(k)? {
                Val::Num(v) => Ok(*v),
                Val::Null => Ok(f64::NAN),
                v => Err(format!("row {n}: {k:?} is {v:?}, not a number")),
            };
            if let Some(unit) = static_unit(&text("unit")?) {
                rows.push(Row {
                    workload: text("workload")?,
                    system: text("system")?,
                    metric: text("metric")?,
                    unit,
                    value: num("value")?,
                    min: num("min")?,
                    max: num("max")?,
                    ratio: String::new(),
                    // Optional: only skipped rows carry one.
                    note: match fields.iter().find(|(f, _)| f == "note") {
                        Some((_, Val::Str(s))) => s.clone(),
                        _ => String::new(),
                    },
                });
            }
            match p.peek() {
                Some(b',') => p.i += 1,
                _ => {
                    p.eat(b']')?;
                    break;
                }
            }
        }
    }
    if p.peek().is_some() {
        return Err(format!("trailing data at byte {}", p.i));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, system: &str, metric: &str, unit: &'static str, v: f64) -> Row {
        Row {
            workload: workload.into(),
            system: system.into(),
            metric: metric.into(),
            unit,
            value: v,
            min: v * 0.9,
            max: v * 1.1,
            ratio: String::new(),
            note: String::new(),
        }
    }

    #[test]
    fn json_round_trip() {
        let mut rows = vec![
            row(
                "W3 pipelined 64B",
                "weft-mio",
                "messages received",
                UNIT_MSGS,
                4.4e6,
            ),
            row("a \"quoted\"\\ \u{b5}", "std-tcp", "rtt p50", UNIT_US, 17.3),
        ];
        rows[1].min = f64::NAN;
        rows.push(Row::skipped(
            "W5 pub/sub 64B",
            "nats",
            "deliveries (1 subscriber)",
            UNIT_MSGS,
            crate::report::SKIPPED_NATS,
        ));
        let back = parse_json(&crate::report::json(&rows)).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].note, crate::report::SKIPPED_NATS);
        assert!(back[2].value.is_nan() && back[1].note.is_empty());
        // Skipped rows draw no bar.
        assert!(panels(&back)
            .iter()
            .all(|p| p.bars.iter().all(|b| b.label != "nats")));
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1].workload, rows[1].workload);
        assert!(back[1].min.is_nan());
        assert_eq!(parse_json("[\n]\n").unwrap(), Vec::<Row>::new());
        // A unit this version does not know: the row is skipped, not an error.
        let odd = r#"[{"workload": "x", "system": "s", "metric": "m", "value": 1, "unit": "parsecs", "min": 1, "max": 1}]"#;
        assert!(parse_json(odd).unwrap().is_empty());
        for bad in ["", "[", "[{]", "[{\"workload\": 1}]", "[] x", "{}"] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
        let missing = r#"[{"workload": "x", "system": "s", "metric": "m", "value": 1, "unit": "GB/s", "min": 1}]"#;
        assert!(parse_json(missing).unwrap_err().contains("max"));
    }

    #[test]
    fn panels_pick_and_order_rows() {
        let rows = vec![
            row(
                "W1 bulk 1MiB",
                "std-tcp",
                "payload received",
                UNIT_GBPS,
                5.8,
            ),
            row(
                "W1 bulk 1MiB",
                "yamux-1",
                "payload received",
                UNIT_GBPS,
                1.8,
            ),
            row(
                "W1 1-way 1MiB msg",
                "weft-mio",
                "messages received",
                UNIT_MSGS,
                2.8e3,
            ),
            row(
                "W1 1-way 1MiB msg",
                "weft-mio",
                "payload received",
                UNIT_GBPS,
                2.9,
            ),
            row(
                "W1 stream 64KiB",
                "weft-mio",
                "stream bytes received",
                UNIT_GBPS,
                1.8,
            ),
            // W2 p99 is not a headline; p50 of a baseline alone makes no panel.
            row("W2 ping-pong 64B", "weft-mio", "rtt p99", UNIT_US, 60.0),
            row("W2 ping-pong 64B", "std-tcp", "RTT p50", UNIT_US, 17.0),
        ];
        let ps = panels(&rows);
        assert_eq!(ps.len(), 1, "{ps:?}");
        let labels: Vec<_> = ps[0].bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            ["weft-mio", "std-tcp (limit)", "yamux-1 (1 stream)"]
        );
        let sides: Vec<_> = ps[0].bars.iter().map(|b| b.side).collect();
        assert_eq!(sides, [Side::Weft, Side::Limit, Side::Baseline]);
        assert_eq!(ps[0].bars[0].value, 2.9);
        assert!(ps[0].title.starts_with("W1"));
    }

    #[test]
    fn title_from_header() {
        let h = "machine: cpu X; 2 cores available; linux x86_64; crc32c path: hardware\n\
                 method: quick - 3 interleaved pass(es); per benchmark and pass a 0.1 s warm-up then a 0.4 s window;\n\
                 \x20       figures are the median\nnote: smoke mode - timings are not meaningful\n";
        assert_eq!(
            title_lines(h),
            [
                "machine: cpu X; 2 cores available; linux x86_64",
                "method: quick - 3 interleaved pass(es); per benchmark and pass a 0.1 s warm-up then a 0.4 s window",
                "note: smoke mode - timings are not meaningful",
            ]
        );
        assert!(title_lines("nothing here").is_empty());
    }
}
