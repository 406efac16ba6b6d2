//! The benchmarks issue's targets, checked against a run's rows: each one met, or
//! missed and by how much. Targets are goals, not pass/fail tests: the run never
//! fails on them, it reports them.

use crate::net::w45::{NATS_LABEL, YAMUX_LABEL};
use crate::report::{fmt_value, Row};

/// One target and how the run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What is aimed at, e.g. `W3 best Weft / std-tcp >= 0.75`.
    pub target: String,
    /// What the run measured, e.g. `0.63 (weft-tokio)`.
    pub measured: String,
    /// Measured over target, oriented so that 1 or more means met; `None` when
    /// the rows needed were not run.
    pub score: Option<f64>,
}

impl Verdict {
    /// `met`, `missed: at 63% of the target`, or `not run`.
    pub fn outcome(&self) -> String {
        match self.score {
            None => "not run".into(),
            Some(s) if s >= 1.0 => "met".into(),
            Some(s) => format!("missed: at {:.0}% of the target", s * 100.0),
        }
    }
}

fn find<'a>(rows: &'a [Row], workload: &str, system: &str, metric: &str) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.workload.starts_with(workload)
            && r.system == system
            && r.metric.eq_ignore_ascii_case(metric)
    })
}

/// The Weft row with the highest value (or lowest, for `lowest`).
fn best_weft<'a>(rows: &'a [Row], workload: &str, metric: &str, lowest: bool) -> Option<&'a Row> {
    let it = rows.iter().filter(|r| {
        r.workload.starts_with(workload)
            && r.system.starts_with("weft-")
            && r.metric.eq_ignore_ascii_case(metric)
    });
    if lowest {
        it.min_by(|a, b| a.value.total_cmp(&b.value))
    } else {
        it.max_by(|a, b| a.value.total_cmp(&b.value))
    }
}

/// `weft / base >= want` (or `<= want` when `lower` is better), as a verdict.
fn ratio(
    target: String,
    weft: Option<&Row>,
    base: Option<&Row>,
    want: f64,
    lower: bool,
) -> Verdict {
    match (weft, base) {
        (Some(w), Some(b)) if b.value > 0.0 && w.value > 0.0 => {
            let r = w.value / b.value;
            Verdict {
                target,
                measured: format!("{r:.2}x ({} vs {})", w.system, b.system),
                score: Some(if lower { want / r } else { r / want }),
            }
        }
        _ => Verdict {
            target,
            measured: "-".into(),
            score: None,
        },
    }
}

/// An absolute bound on one row's value.
fn absolute(target: String, row: Option<&Row>, want: f64, lower: bool) -> Verdict {
    match row {
        Some(r) => Verdict {
            measured: format!("{} {} ({})", fmt_value(r.value, r.unit), r.unit, r.system),
            score: Some(if lower {
                if r.value <= want {
                    1.0
                } else {
                    want.max(f64::MIN_POSITIVE) / r.value
                }
            } else {
                r.value / want
            }),
            target,
        },
        None => Verdict {
            target,
            measured: "-".into(),
            score: None,
        },
    }
}

/// Every target of the issue, in its order.
pub fn evaluate(rows: &[Row]) -> Vec<Verdict> {
    let mut v = Vec::new();
    let w3 = "W3 pipelined 64B";
    let msgs = "messages received";
    v.push(ratio(
        "W3 best Weft runtime >= 0.75x std-tcp".into(),
        best_weft(rows, w3, msgs, false),
        find(rows, w3, "std-tcp", msgs),
        0.75,
        false,
    ));
    v.push(ratio(
        "W3 weft-tokio >= 1.5x tokio-codec".into(),
        find(rows, w3, "weft-tokio", msgs),
        find(rows, w3, "tokio-codec", msgs),
        1.5,
        false,
    ));
    let yamux = ["yamux-1", "yamux-100"]
        .iter()
        .filter_map(|s| find(rows, w3, s, msgs))
        .max_by(|a, b| a.value.total_cmp(&b.value));
    v.push(ratio(
        "W3 weft-tokio >= best yamux".into(),
        find(rows, w3, "weft-tokio", msgs),
        yamux,
        1.0,
        false,
    ));
    let w2 = "W2 ping-pong 64B";
    v.push(ratio(
        "W2 weft-mio RTT p50 <= 1.25x std-tcp".into(),
        find(rows, w2, "weft-mio", "rtt p50"),
        find(rows, w2, "std-tcp", "rtt p50"),
        1.25,
        true,
    ));
    v.push(ratio(
        "W2 weft-tokio RTT p50 <= 1.15x tokio-tcp".into(),
        find(rows, w2, "weft-tokio", "rtt p50"),
        find(rows, w2, "tokio-tcp", "rtt p50"),
        1.15,
        true,
    ));
    v.push(ratio(
        "W1 1 MiB messages, best Weft >= 0.8x std-tcp".into(),
        best_weft(rows, "W1 1-way 1MiB msg", "payload received", false),
        find(rows, "W1 bulk 1MiB", "std-tcp", "payload received"),
        0.8,
        false,
    ));
    let w4 = "W4 streams 64KiB";
    let w4m = "bytes received (100 streams)";
    v.push(ratio(
        "W4 100 streams 64 KiB, best Weft >= 2x yamux".into(),
        best_weft(rows, w4, w4m, false),
        find(rows, w4, YAMUX_LABEL, w4m),
        2.0,
        false,
    ));
    let (w5, w5m) = ("W5 pub/sub 64B", "deliveries (1 subscriber)");
    v.push(absolute(
        "W5 pub/sub 1 -> 1 >= 3 M deliveries/s".into(),
        best_weft(rows, w5, w5m, false),
        3e6,
        false,
    ));
    let nats = find(rows, w5, NATS_LABEL, w5m);
    let mut vs_nats = ratio(
        "W5 pub/sub 1 -> 1, best Weft >= 2.5x NATS".into(),
        best_weft(rows, w5, w5m, false),
        nats,
        2.5,
        false,
    );
    if let Some(n) = nats.filter(|n| !n.note.is_empty()) {
        // Not run, and why (nats-server not installed).
        vs_nats.measured = format!("- ({})", n.note);
    }
    v.push(vs_nats);
    v.push(absolute(
        "W0 64 B, CRC on >= 20 M msg/s".into(),
        find(
            rows,
            "W0 1-way 64B",
            "weft-core crc=on",
            "messages delivered",
        ),
        20e6,
        false,
    ));
    for r in rows
        .iter()
        .filter(|r| r.workload.starts_with("W6 10000 clients") && r.metric == "requests")
    {
        v.push(Verdict {
            target: format!("W6 10,000 connections held ({})", r.system),
            measured: format!("{} requests/s", fmt_value(r.value, r.unit)),
            score: Some(if r.min > 0.0 { 1.0 } else { 0.0 }),
        });
    }
    for r in rows.iter().filter(|r| r.workload.starts_with("W7 RSS")) {
        v.push(absolute(
            format!("W7 RSS per idle connection <= 16 KiB ({})", r.system),
            Some(r),
            16.0,
            true,
        ));
    }
    for r in rows.iter().filter(|r| r.workload.starts_with("W7 allocs")) {
        v.push(absolute(
            format!("{}: 0 allocations ({})", r.workload, r.system),
            Some(r),
            0.0,
            true,
        ));
    }
    v
}

/// The targets as an aligned text block for the end of the report.
pub fn report(rows: &[Row]) -> String {
    let v = evaluate(rows);
    let w0 = v.iter().map(|x| x.target.len()).max().unwrap_or(0);
    let w1 = v.iter().map(|x| x.measured.len()).max().unwrap_or(0);
    let mut s = String::from(
        "\ntargets (goals of the benchmarks issue, not pass/fail: met, or missed and by how much):\n",
    );
    for x in &v {
        s += &format!(
            "  {:<w0$}  {:<w1$}  {}\n",
            x.target,
            x.measured,
            x.outcome()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{UNIT_GBPS, UNIT_MSGS};

    fn row(workload: &str, system: &str, metric: &str, unit: &'static str, value: f64) -> Row {
        Row {
            workload: workload.into(),
            system: system.into(),
            metric: metric.into(),
            unit,
            value,
            min: value,
            max: value,
            ratio: String::new(),
            note: String::new(),
        }
    }

    #[test]
    fn targets_met_missed_and_not_run() {
        let rows = vec![
            row(
                "W3 pipelined 64B",
                "std-tcp",
                "messages received",
                UNIT_MSGS,
                20e6,
            ),
            row(
                "W3 pipelined 64B",
                "weft-mio",
                "messages received",
                UNIT_MSGS,
                16e6,
            ),
            row(
                "W3 pipelined 64B",
                "weft-tokio",
                "messages received",
                UNIT_MSGS,
                10e6,
            ),
            row(
                "W1 bulk 1MiB",
                "std-tcp",
                "payload received",
                UNIT_GBPS,
                6.0,
            ),
            row(
                "W1 1-way 1MiB msg",
                "weft-uring",
                "payload received",
                UNIT_GBPS,
                3.0,
            ),
            row(
                "W7 RSS 10000 idle conns",
                "weft-mio",
                "server RSS per idle conn",
                "KiB",
                32.0,
            ),
        ];
        let v = evaluate(&rows);
        let get = |t: &str| v.iter().find(|x| x.target.starts_with(t)).unwrap();
        // 16 / 20 = 0.8 >= 0.75: met, by the best runtime.
        assert_eq!(get("W3 best").outcome(), "met");
        assert!(get("W3 best").measured.contains("weft-mio"));
        // 3 / 6 = 0.5 of the limit against 0.8: at 62.5%.
        assert_eq!(get("W1 1 MiB").outcome(), "missed: at 62% of the target");
        assert_eq!(get("W7 RSS").outcome(), "missed: at 50% of the target");
        // No codec row, no W5 row: not run, not met.
        assert_eq!(get("W3 weft-tokio >= 1.5x").outcome(), "not run");
        assert_eq!(get("W5").outcome(), "not run");
        assert_eq!(
            get("W5 pub/sub 1 -> 1, best Weft >= 2.5x").outcome(),
            "not run"
        );
        assert!(report(&rows).contains("missed"));
    }

    #[test]
    fn w5_against_nats() {
        let (w5, m) = ("W5 pub/sub 64B", "deliveries (1 subscriber)");
        let mut rows = vec![
            row(w5, "weft-mio", m, UNIT_MSGS, 3.3e6),
            row(w5, "weft-tokio", m, UNIT_MSGS, 2.0e6),
            row(w5, NATS_LABEL, m, UNIT_MSGS, 2.0e6),
        ];
        let target = "W5 pub/sub 1 -> 1, best Weft >= 2.5x NATS";
        let get = |rows: &[Row]| {
            evaluate(rows)
                .into_iter()
                .find(|x| x.target == target)
                .unwrap()
        };
        // 3.3 / 2.0 = 1.65x against 2.5x: at 66%.
        let v = get(&rows);
        assert_eq!(v.outcome(), "missed: at 66% of the target");
        assert!(
            v.measured.starts_with("1.65x (weft-mio vs nats)"),
            "{}",
            v.measured
        );
        rows[2].value = 1.2e6;
        assert_eq!(get(&rows).outcome(), "met");
        // Skipped: not run, and the report says why.
        rows[2] = Row::skipped(w5, NATS_LABEL, m, UNIT_MSGS, crate::report::SKIPPED_NATS);
        let v = get(&rows);
        assert_eq!(v.outcome(), "not run");
        assert_eq!(v.measured, "- (skipped: nats-server not installed)");
    }
}
