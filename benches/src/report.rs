//! The report: rows from measurements, an aligned text table, and JSON.
//!
//! W0 benchmarks give two rows each (messages/s and payload GB/s, from the same
//! windows); limits give one (GB/s). GB means 10^9 bytes.

use crate::measure::{Measured, Spread};
use crate::w0::{Kind, Spec};
use std::fmt::Write as _;

/// Unit of message rates.
pub const UNIT_MSGS: &str = "msg/s";
/// Unit of byte rates (10^9 bytes per second).
pub const UNIT_GBPS: &str = "GB/s";
/// Unit of latencies (microseconds).
pub const UNIT_US: &str = "us";
/// The ratio text that tags a row as the limit of its workload (the std-tcp
/// baselines of W1-W3): other rows of the same workload, metric and unit are
/// compared against it (see [`limit_for`]). W0's limits keep their own
/// `limit` workload and are not tagged.
pub const LIMIT: &str = "limit";

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// E.g. `W0 1-way 64B` or `limit`.
    pub workload: String,
    /// E.g. `weft-core crc=on`, `memcpy`, `crc32c-hw`.
    pub system: String,
    /// What is counted, e.g. `messages delivered`, `payload delivered`.
    pub metric: String,
    /// [`UNIT_MSGS`] or [`UNIT_GBPS`].
    pub unit: &'static str,
    /// Median over the passes.
    pub value: f64,
    /// Lowest pass.
    pub min: f64,
    /// Highest pass.
    pub max: f64,
    /// Ratio to the relevant limits, as text (empty when none applies).
    pub ratio: String,
    /// Why a row has no figures (value, min and max NaN), e.g. [`SKIPPED_NATS`];
    /// empty for a measured row. Shown in the ratio column, and in the JSON as
    /// `note` when not empty.
    pub note: String,
}

/// The note of the NATS rows when `nats-server` is not on the PATH.
pub const SKIPPED_NATS: &str = "skipped: nats-server not installed";

impl Row {
    /// A row that was not measured: no figures, only `note` saying why.
    pub fn skipped(
        workload: &str,
        system: &str,
        metric: &str,
        unit: &'static str,
        note: &str,
    ) -> Row {
        Row {
            workload: workload.into(),
            system: system.into(),
            metric: metric.into(),
            unit,
            value: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            ratio: String::new(),
            note: note.into(),
        }
    }

    /// True if this row is the limit of its workload (its ratio column reads [`LIMIT`]).
    pub fn is_limit(&self) -> bool {
        self.ratio == LIMIT
    }
}

/// The limit row for `r` among `rows`: same workload, metric and unit, tagged
/// [`LIMIT`]; `None` if that limit was not run.
pub fn limit_for<'a>(rows: &'a [Row], r: &Row) -> Option<&'a Row> {
    rows.iter().find(|l| {
        l.is_limit() && l.workload == r.workload && l.metric == r.metric && l.unit == r.unit
    })
}

/// Fills the ratio column of Weft's socket rows: value ÷ the same figure of the
/// workload's limit (std TCP) and of the best other baseline (highest throughput or
/// lowest latency). Rows are matched by workload number (W1, W2, ...), metric (case
/// aside) and unit. For throughput above 1 is better than the baseline; for
/// latency (µs) below 1 is.
pub fn fill_ratios(rows: &mut [Row]) {
    fn key(r: &Row) -> (String, String, &'static str) {
        let w = r
            .workload
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        (w, r.metric.to_lowercase(), r.unit)
    }
    let baselines: Vec<Row> = rows
        .iter()
        .filter(|r| !r.system.starts_with("weft-") && !r.workload.starts_with("W0"))
        // Skipped baselines (no figures) compare with nothing.
        .filter(|r| r.value.is_finite())
        .cloned()
        .collect();
    for r in rows
        .iter_mut()
        .filter(|r| r.system.starts_with("weft-") && !r.workload.starts_with("W0"))
    {
        let k = key(r);
        let same: Vec<&Row> = baselines.iter().filter(|b| key(b) == k).collect();
        let lower_is_better = r.unit == UNIT_US;
        let best = same
            .iter()
            .filter(|b| !b.is_limit())
            .copied()
            .reduce(|a, b| {
                let b_better = if lower_is_better {
                    b.value < a.value
                } else {
                    b.value > a.value
                };
                if b_better {
                    b
                } else {
                    a
                }
            });
        let mut parts = Vec::new();
        if let Some(l) = same.iter().find(|b| b.is_limit()) {
            parts.push(format!("{:.2}x {} (limit)", r.value / l.value, l.system));
        }
        if let Some(b) = best {
            parts.push(format!(
                "{:.2}x {} (best baseline)",
                r.value / b.value,
                b.system
            ));
        }
        if !parts.is_empty() {
            r.ratio = parts.join(", ");
        }
    }
}

fn scaled(s: Spread, k: f64) -> Spread {
    Spread {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
    }
}

fn row(spec: &Spec, metric: &str, unit: &'static str, s: Spread) -> Row {
    Row {
        workload: spec.workload.clone(),
        system: spec.system.clone(),
        metric: metric.into(),
        unit,
        value: s.median,
        min: s.min,
        max: s.max,
        ratio: String::new(),
        note: String::new(),
    }
}

/// Builds the rows of `measured` (in order), each matched to its spec by name, and
/// fills in the ratios of W0 payload rows: to memcpy, and for CRC-on rows also to
/// `crc32c` (the path the core uses), when those limits were measured in this run.
pub fn rows(specs: &[Spec], measured: &[Measured]) -> Vec<Row> {
    let spec_of = |name: &str| specs.iter().find(|s| s.name == name);
    let limit = |want: Kind| {
        measured.iter().find_map(|m| {
            let s = spec_of(&m.name)?;
            (s.kind == want).then(|| (s.system.clone(), m.bytes_per_sec.median / 1e9))
        })
    };
    let memcpy = limit(Kind::Memcpy);
    let crc = limit(Kind::Crc32c { hw: true });
    let mut out = Vec::new();
    for m in measured {
        let Some(spec) = spec_of(&m.name) else {
            continue;
        };
        let gbps = scaled(m.bytes_per_sec, 1e-9);
        match spec.kind {
            Kind::CoreOneWay { integrity, .. } => {
                out.push(row(spec, "messages delivered", UNIT_MSGS, m.items_per_sec));
                let mut r = row(spec, "payload delivered", UNIT_GBPS, gbps);
                let mut parts = Vec::new();
                for (lim, wanted) in [(&memcpy, true), (&crc, integrity)] {
                    match lim {
                        Some((sys, v)) if wanted && *v > 0.0 => {
                            parts.push(format!("{:.3} of {sys}", r.value / v));
                        }
                        None if wanted => parts.push("n/a (limit not run)".into()),
                        _ => {}
                    }
                }
                r.ratio = parts.join(", ");
                out.push(r);
            }
            Kind::Memcpy => out.push(row(spec, "bytes copied (1 MiB)", UNIT_GBPS, gbps)),
            Kind::Crc32c { .. } => {
                out.push(row(spec, "bytes checksummed (64 KiB)", UNIT_GBPS, gbps));
            }
        }
    }
    out
}

/// A value for the table: messages/s in millions or thousands, GB/s with 3 figures.
pub fn fmt_value(v: f64, unit: &str) -> String {
    fmt_like(v, v, unit)
}

/// `v` formatted with the scale `fmt_value` picks for `like` (so a row's min and max
/// use the same scale as its median).
fn fmt_like(v: f64, like: f64, unit: &str) -> String {
    if unit == UNIT_MSGS {
        if like >= 1e6 {
            format!("{:.3} M", v / 1e6)
        } else if like >= 1e3 {
            format!("{:.2} k", v / 1e3)
        } else {
            format!("{v:.1}")
        }
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The rows as a text table with aligned columns (numbers right-aligned).
pub fn table(rows: &[Row]) -> String {
    let header = [
        "workload", "system", "metric", "unit", "median", "min-max", "ratio",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.clone(),
                r.system.clone(),
                r.metric.clone(),
                r.unit.to_string(),
                if r.value.is_finite() {
                    fmt_value(r.value, r.unit)
                } else {
                    "-".into()
                },
                if r.min.is_finite() && r.max.is_finite() {
                    format!(
                        "{} - {}",
                        fmt_like(r.min, r.value, r.unit),
                        fmt_like(r.max, r.value, r.unit)
                    )
                } else {
                    "-".into()
                },
                match (r.ratio.is_empty(), r.note.is_empty()) {
                    (true, true) => "-".into(),
                    (false, true) => r.ratio.clone(),
                    (true, false) => r.note.clone(),
                    (false, false) => format!("{}; {}", r.ratio, r.note),
                },
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let right = |i: usize| i == 4 || i == 5;
    let line = |out: &mut String, cols: &[String]| {
        let mut l = String::new();
        for (i, s) in cols.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = width[i] - s.chars().count();
            if right(i) {
                l.push_str(&" ".repeat(pad));
                l.push_str(s);
            } else {
                l.push_str(s);
                if i + 1 < cols.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let mut out = String::new();
    line(&mut out, &header.map(String::from));
    line(&mut out, &width.map(|w| "-".repeat(w)));
    let mut prev = None;
    for (c, r) in cells.iter().zip(rows) {
        // A blank line between workloads keeps the pairs of rows readable.
        if prev.is_some_and(|p: &str| p != r.workload) {
            out.push('\n');
        }
        prev = Some(r.workload.as_str());
        line(&mut out, c);
    }
    out
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_num(out: &mut String, v: f64) {
    if v.is_finite() {
        // Rust prints finite floats without exponent, which JSON accepts.
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// The rows as a JSON array of objects with keys `workload`, `system`, `metric`,
/// `value`, `unit`, `min`, `max`, and `note` for a row that has one (a skipped
/// row, whose figures are `null`).
pub fn json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        out.push_str("  {\"workload\": ");
        json_str(&mut out, &r.workload);
        out.push_str(", \"system\": ");
        json_str(&mut out, &r.system);
        out.push_str(", \"metric\": ");
        json_str(&mut out, &r.metric);
        out.push_str(", \"value\": ");
        json_num(&mut out, r.value);
        out.push_str(", \"unit\": ");
        json_str(&mut out, r.unit);
        out.push_str(", \"min\": ");
        json_num(&mut out, r.min);
        out.push_str(", \"max\": ");
        json_num(&mut out, r.max);
        if !r.note.is_empty() {
            out.push_str(", \"note\": ");
            json_str(&mut out, &r.note);
        }
        out.push('}');
        if i + 1 < rows.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_nulls() {
        let r = Row {
            workload: "a\"b\\c\n".into(),
            system: "s".into(),
            metric: "m".into(),
            unit: UNIT_GBPS,
            value: 1.5,
            min: f64::NAN,
            max: 2.0,
            ratio: String::new(),
            note: String::new(),
        };
        let j = json(&[r]);
        assert!(j.contains(r#""workload": "a\"b\\c\n""#), "{j}");
        assert!(j.contains(r#""min": null"#), "{j}");
        assert!(j.contains(r#""value": 1.5"#), "{j}");
        assert!(!j.contains("note"), "{j}");
        let skipped = Row::skipped("W5 x", "nats", "m", UNIT_MSGS, SKIPPED_NATS);
        let j = json(std::slice::from_ref(&skipped));
        assert!(j.contains(r#""value": null"#), "{j}");
        assert!(
            j.contains(r#""note": "skipped: nats-server not installed"}"#),
            "{j}"
        );
        let t = table(&[skipped]);
        let l = t.lines().nth(2).unwrap();
        assert!(l.ends_with(SKIPPED_NATS) && !l.contains("NaN"), "{t}");
    }

    #[test]
    fn ratios_leave_out_skipped_baselines() {
        let r = |system: &str, v: f64| Row {
            workload: "W5 pub/sub 64B".into(),
            system: system.into(),
            metric: "deliveries (1 subscriber)".into(),
            unit: UNIT_MSGS,
            value: v,
            min: v,
            max: v,
            ratio: String::new(),
            note: String::new(),
        };
        let skipped = Row::skipped(
            "W5 pub/sub 64B",
            "nats",
            "deliveries (1 subscriber)",
            UNIT_MSGS,
            SKIPPED_NATS,
        );
        let mut rows = vec![r("weft-mio", 2e6), skipped];
        fill_ratios(&mut rows);
        assert_eq!(rows[0].ratio, "");
        rows[1] = r("nats", 1e6);
        fill_ratios(&mut rows);
        assert_eq!(rows[0].ratio, "2.00x nats (best baseline)");
        assert_eq!(json(&[]), "[\n]\n");
    }

    #[test]
    fn values_format() {
        assert_eq!(fmt_value(12_345_678.0, UNIT_MSGS), "12.346 M");
        assert_eq!(fmt_value(1_500.0, UNIT_MSGS), "1.50 k");
        assert_eq!(fmt_value(4.56789, UNIT_GBPS), "4.568");
        assert_eq!(fmt_value(45.6789, UNIT_GBPS), "45.68");
    }
}
