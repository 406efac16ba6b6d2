//! The PNG chart: drawn from a few rows into a file, the file is a PNG of the
//! announced size whose bars have the Weft and baseline colours; rows without a
//! headline figure give no chart; `--chart-from` re-draws from a JSON file.

use std::path::PathBuf;
use weft_benches::chart::{self, ChartError};
use weft_benches::report::{self, Row, UNIT_GBPS, UNIT_MSGS, UNIT_US};

fn row(workload: &str, system: &str, metric: &str, unit: &'static str, v: f64) -> Row {
    Row {
        workload: workload.into(),
        system: system.into(),
        metric: metric.into(),
        unit,
        value: v,
        min: v * 0.8,
        max: v * 1.2,
        ratio: String::new(),
        note: String::new(),
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("weft-chart-{}-{name}", std::process::id()))
}

/// Width and height from the PNG signature and the IHDR chunk.
fn png_header(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 33,
        "too short for a PNG: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[8..12], &13u32.to_be_bytes(), "IHDR length");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Decodes the whole image (checks every chunk and the compressed data) and
/// counts the pixels of each colour of `colors`.
fn count_colors(bytes: &[u8], colors: &[[u8; 3]]) -> Vec<usize> {
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = &buf[..info.buffer_size()];
    colors
        .iter()
        .map(|c| px.chunks_exact(3).filter(|p| *p == c).count())
        .collect()
}

fn headline_rows() -> Vec<Row> {
    vec![
        row(
            "W3 pipelined 64B",
            "std-tcp",
            "messages received",
            UNIT_MSGS,
            19e6,
        ),
        row(
            "W3 pipelined 64B",
            "tokio-tcp",
            "messages received",
            UNIT_MSGS,
            20e6,
        ),
        row(
            "W3 pipelined 64B",
            "weft-mio",
            "messages received",
            UNIT_MSGS,
            4.4e6,
        ),
        row(
            "W3 pipelined 64B",
            "weft-tokio",
            "messages received",
            UNIT_MSGS,
            4.3e6,
        ),
        row("W2 ping-pong 64B", "weft-mio", "rtt p50", UNIT_US, 42.0),
        row("W2 ping-pong 64B", "std-tcp", "RTT p50", UNIT_US, 17.0),
        row(
            "W1 bulk 1MiB",
            "std-tcp",
            "payload received",
            UNIT_GBPS,
            5.8,
        ),
        row(
            "W1 1-way 1MiB msg",
            "weft-mio",
            "payload received",
            UNIT_GBPS,
            2.9,
        ),
    ]
}

#[test]
fn chart_is_a_png_of_the_announced_size() {
    let rows = headline_rows();
    assert_eq!(chart::panels(&rows).len(), 3);
    let path = temp("three.png");
    let title = vec!["machine: test rows".to_string()];
    let n = chart::write(&rows, &title, &path).expect("chart drawn");
    let bytes = std::fs::read(&path).expect("chart written");
    std::fs::remove_file(&path).ok();
    assert_eq!(n, 3);
    let (w, h) = png_header(&bytes);
    assert_eq!((w, h), chart::size(3));
    assert_eq!(
        (w, h),
        (chart::WIDTH, chart::HEADER_HEIGHT + 2 * chart::PANEL_HEIGHT)
    );
    let counts = count_colors(
        &bytes,
        &[chart::WEFT_RGB, chart::BASELINE_RGB, chart::LIMIT_RGB],
    );
    // Bars (and the legend) in each colour: Weft, a baseline, the limit.
    for (c, what) in counts.iter().zip(["weft", "baseline", "limit"]) {
        assert!(*c > 1000, "{what}: {c} pixels ({counts:?})");
    }
    // Weft has four bars, the others three in all (W3: 2 baseline rows, W2 and W1
    // one limit each ...): the Weft colour covers the most pixels.
    assert!(counts[0] > counts[1], "{counts:?}");
}

#[test]
fn a_single_panel_is_one_column() {
    let rows: Vec<Row> = headline_rows()
        .into_iter()
        .filter(|r| r.workload.starts_with("W2"))
        .collect();
    let path = temp("one.png");
    assert_eq!(chart::write(&rows, &[], &path).expect("chart"), 1);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(png_header(&bytes), chart::size(1));
    assert_eq!(chart::size(1).1, chart::HEADER_HEIGHT + chart::PANEL_HEIGHT);
    // No baseline row other than the limit: no orange bar (the legend still has
    // its swatch of 23 x 15 pixels).
    let counts = count_colors(&bytes, &[chart::BASELINE_RGB]);
    assert!(counts[0] < 23 * 15 + 1, "{counts:?}");
}

#[test]
fn rows_without_headline_figures_give_no_chart() {
    let rows = vec![
        row("limit", "memcpy", "bytes copied (1 MiB)", UNIT_GBPS, 24.0),
        // A headline workload, but only a baseline: nothing to compare.
        row(
            "W3 pipelined 64B",
            "std-tcp",
            "messages received",
            UNIT_MSGS,
            19e6,
        ),
        // Weft, but not a headline metric.
        row("W2 ping-pong 64B", "weft-mio", "rtt p99", UNIT_US, 60.0),
    ];
    assert!(chart::panels(&rows).is_empty());
    let path = temp("none.png");
    match chart::write(&rows, &[], &path) {
        Err(ChartError::NoHeadlineRows) => {}
        other => panic!("expected NoHeadlineRows, got {other:?}"),
    }
    assert!(!path.exists(), "no file for no chart");
}

#[test]
fn chart_from_json_with_its_table() {
    let json = temp("rows.json");
    let png_path = temp("rows.png");
    std::fs::write(&json, report::json(&headline_rows())).unwrap();
    std::fs::write(
        json.with_extension("txt"),
        "machine: cpu Test; 2 cores available; linux x86_64; crc32c path: hardware\n",
    )
    .unwrap();
    let (panels, rows) = chart::from_json(&json, &png_path).expect("chart from json");
    let bytes = std::fs::read(&png_path).unwrap();
    for p in [&json, &json.with_extension("txt"), &png_path] {
        std::fs::remove_file(p).ok();
    }
    assert_eq!((panels, rows), (3, headline_rows().len()));
    assert_eq!(png_header(&bytes), chart::size(3));
    // A file that is not the rows' JSON is an error, and writes nothing.
    std::fs::write(&json, "not json").unwrap();
    let err = chart::from_json(&json, &png_path).unwrap_err();
    std::fs::remove_file(&json).ok();
    assert!(matches!(err, ChartError::Json(_)), "{err:?}");
    assert!(!png_path.exists());
}

#[test]
fn chart_arguments() {
    use weft_benches::{parse_args, Command};
    let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
    match args(&["--quick", "--chart", "c.png", "w3"]).unwrap() {
        Command::Run(o) => {
            assert_eq!(o.chart.as_deref(), Some(std::path::Path::new("c.png")));
            assert_eq!(o.filters, ["w3"]);
        }
        c => panic!("{c:?}"),
    }
    assert_eq!(
        args(&["--chart-from", "a.json", "--chart", "a.png"]).unwrap(),
        Command::ChartFrom {
            json: "a.json".into(),
            chart: "a.png".into()
        }
    );
    assert!(args(&["--chart"]).is_err());
    assert!(args(&["--chart-from", "a.json"]).is_err(), "needs --chart");
    assert!(args(&["--chart-from", "a.json", "--chart", "a.png", "w3"]).is_err());
    assert!(args(&["--chart-from", "a.json", "--chart", "a.png", "--quick"]).is_err());
}
