//! The smoke mode end to end, in-process: every expected row is present with a finite
//! positive value, and the JSON output is a list of objects with the expected keys.
//!
//! The NATS rows run where `nats-server` is on the PATH and are otherwise present
//! as skipped (a note, no figures). With `WEFT_REQUIRE_NATS=1` (CI, which installs
//! it) a missing `nats-server` fails the test instead of being skipped.

use weft_benches::measure::Method;
use weft_benches::report::{Row, LIMIT, SKIPPED_NATS, UNIT_GBPS, UNIT_MSGS};
use weft_benches::w0::{self, Kind};
use weft_benches::{baselines, net};
use weft_benches::{parse_args, run, Command, Options};

fn options(args: &[&str]) -> Options {
    match parse_args(args.iter().map(|s| s.to_string())).expect("valid arguments") {
        Command::Run(mut o) => {
            o.progress = false;
            o
        }
        c => panic!("not a run: {c:?}"),
    }
}

/// Fails where NATS is required (`WEFT_REQUIRE_NATS=1`) but not installed; true
/// when the NATS rows run.
fn nats_runs() -> bool {
    let required = std::env::var("WEFT_REQUIRE_NATS").is_ok_and(|v| v == "1");
    let available = baselines::nats::available();
    assert!(
        available || !required,
        "WEFT_REQUIRE_NATS=1 but nats-server is not on the PATH (PATH={:?}): \
         install it (apt-get install nats-server) or unset WEFT_REQUIRE_NATS",
        std::env::var("PATH").unwrap_or_default()
    );
    available
}

#[test]
fn smoke_run_has_every_row_and_valid_json() {
    let nats = nats_runs();
    let path = std::env::temp_dir().join(format!("weft-benches-smoke-{}.json", std::process::id()));
    let png = path.with_extension("png");
    let opts = options(&[
        "--smoke",
        "--json",
        path.to_str().unwrap(),
        "--chart",
        png.to_str().unwrap(),
    ]);
    let mut out = Vec::new();
    let rows = run(&opts, &mut out).expect("run");
    let text = String::from_utf8(out).unwrap();

    // Every benchmark of the catalogue gives its rows.
    let mut expected = Vec::new();
    for spec in w0::catalog() {
        match spec.kind {
            Kind::CoreOneWay { .. } => {
                expected.push((spec.workload.clone(), spec.system.clone(), UNIT_MSGS));
                expected.push((spec.workload, spec.system, UNIT_GBPS));
            }
            Kind::Memcpy | Kind::Crc32c { .. } => {
                expected.push((spec.workload, spec.system, UNIT_GBPS));
            }
        }
    }
    let mut expected: Vec<_> = expected
        .into_iter()
        .map(|(w, s, u)| (w, s, None, u))
        .collect();
    // Every socket benchmark (W1-W3 on each available adapter) gives its rows.
    let net_specs = net::catalog(&Method::SMOKE);
    assert!(net_specs.len() >= 12, "tokio, smol and mio at least");
    for spec in net_specs {
        for &(metric, unit) in spec.kind.metrics() {
            expected.push((
                spec.workload.clone(),
                spec.system.clone(),
                Some(metric),
                unit,
            ));
        }
    }
    // Rows that cannot run here (NATS without nats-server): present, noted.
    let mut skipped: Vec<(String, String, &str)> = Vec::new();
    // W4 (streams, with its yamux and h2 baselines) and W5 (pub/sub, with NATS).
    for spec in net::w45::catalog() {
        if spec.skipped().is_some() {
            skipped.extend(
                spec.metrics()
                    .into_iter()
                    .map(|(m, _)| (spec.workload.clone(), spec.system.clone(), m)),
            );
            continue;
        }
        for (metric, unit) in spec.metrics() {
            expected.push((
                spec.workload.clone(),
                spec.system.clone(),
                Some(metric),
                unit,
            ));
        }
    }
    // And every same-run baseline of W1-W3.
    for spec in baselines::catalog() {
        if spec.skipped().is_some() {
            skipped.extend(
                spec.metrics()
                    .into_iter()
                    .map(|(m, _)| (spec.workload.label().to_string(), spec.system.label(), m)),
            );
            continue;
        }
        for (metric, unit) in spec.metrics() {
            expected.push((
                spec.workload.label().to_string(),
                spec.system.label(),
                Some(metric),
                unit,
            ));
        }
    }
    // W6 / W7 rows (checked below: W7 figures may be 0, the allocation target).
    let w67_specs = weft_benches::w67::catalog(&Method::SMOKE);
    assert!(
        w67_specs.len() >= 3 * 2 + 3 + 4,
        "tokio, smol and mio at least"
    );
    let mut w67_expected = Vec::new();
    for spec in &w67_specs {
        for &(metric, unit) in spec.kind.metrics() {
            w67_expected.push((spec.workload.clone(), spec.system.clone(), metric, unit));
        }
    }
    // The NATS rows: W2 request/reply (4 rows) and W5 1 -> 1, run or skipped.
    let is_nats = |r: &Row| r.system.starts_with("nats");
    assert_eq!(rows.iter().filter(|r| is_nats(r)).count(), 5, "{text}");
    assert_eq!(skipped.is_empty(), nats, "{skipped:?}");
    for (workload, system, metric) in &skipped {
        let r = rows
            .iter()
            .find(|r| &r.workload == workload && &r.system == system && r.metric == *metric)
            .unwrap_or_else(|| panic!("missing skipped row {workload} / {system}\n{text}"));
        assert_eq!(r.note, SKIPPED_NATS);
        assert!(r.value.is_nan() && r.min.is_nan() && r.max.is_nan());
        assert!(
            text.lines()
                .any(|l| l.starts_with(workload.as_str()) && l.ends_with(SKIPPED_NATS)),
            "{text}"
        );
    }
    assert!(
        rows.iter().all(|r| r.note.is_empty() || is_nats(r)),
        "only NATS rows are skipped"
    );
    assert_eq!(
        rows.len(),
        expected.len() + w67_expected.len() + skipped.len(),
        "{text}"
    );
    for (workload, system, metric, unit) in &w67_expected {
        let r = rows
            .iter()
            .find(|r| &r.workload == workload && &r.system == system && r.metric == *metric)
            .unwrap_or_else(|| panic!("missing row {workload} / {system} / {metric}\n{text}"));
        assert_eq!(r.unit, *unit);
        for v in [r.value, r.min, r.max] {
            let ok = match *unit {
                weft_benches::w67::UNIT_ALLOCS | weft_benches::w67::UNIT_KIB => v >= 0.0,
                _ => v > 0.0,
            };
            assert!(v.is_finite() && ok, "{workload} / {system}: {v}\n{text}");
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with(workload.as_str()) && l.contains(system.as_str())),
            "{text}"
        );
    }
    assert!(
        text.contains("smoke mode - W6 and W7 RSS use 50 connections"),
        "{text}"
    );
    for (workload, system, metric, unit) in &expected {
        let r = rows
            .iter()
            .find(|r| {
                &r.workload == workload
                    && &r.system == system
                    && r.unit == *unit
                    && metric.is_none_or(|m| r.metric == m)
            })
            .unwrap_or_else(|| panic!("missing row {workload} / {system} / {unit}\n{text}"));
        for v in [r.value, r.min, r.max] {
            assert!(
                v.is_finite() && v > 0.0,
                "{workload} / {system}: {v}\n{text}"
            );
        }
        assert!(r.min <= r.value && r.value <= r.max);
        // The std-tcp baselines, and only they, are tagged as their workload's limit.
        assert_eq!(r.is_limit(), system == "std-tcp", "{workload} / {system}");
        // The table shows the row.
        assert!(
            text.lines()
                .any(|l| l.starts_with(workload.as_str()) && l.contains(system.as_str())),
            "{text}"
        );
    }
    // W0 payload rows carry their ratios.
    let on = rows
        .iter()
        .find(|r| r.system == "weft-core crc=on" && r.unit == UNIT_GBPS)
        .unwrap();
    assert!(
        on.ratio.contains("memcpy") && on.ratio.contains("crc32c"),
        "{}",
        on.ratio
    );
    let off = rows
        .iter()
        .find(|r| r.system == "weft-core crc=off" && r.unit == UNIT_GBPS)
        .unwrap();
    assert!(
        off.ratio.contains("memcpy") && !off.ratio.contains("crc32c"),
        "{}",
        off.ratio
    );
    // W4's Weft rows are compared with the better of yamux and h2 of the same
    // stream count; W5 1 -> 1 with NATS when it ran.
    for r in rows
        .iter()
        .filter(|r| r.workload.starts_with("W4") && r.system.starts_with("weft-"))
    {
        let best = [net::w45::YAMUX_LABEL, net::w45::H2_LABEL]
            .iter()
            .any(|b| r.ratio.ends_with(&format!("x {b} (best baseline)")));
        assert!(best, "{r:?}");
    }
    for r in rows.iter().filter(|r| {
        r.workload.starts_with("W5")
            && r.metric.contains("(1 subscriber)")
            && r.system.starts_with("weft-")
    }) {
        assert_eq!(r.ratio.contains("x nats (best baseline)"), nats, "{r:?}");
    }
    // Baseline rows of one workload (and metric) find their limit row.
    for r in rows
        .iter()
        .filter(|r| {
            r.system.starts_with("yamux")
                || r.system.starts_with("tokio-")
                || r.system.starts_with("h2")
                || (r.system.starts_with("nats") && r.note.is_empty())
        })
        .filter(|r| !r.workload.starts_with("W4") && !r.workload.starts_with("W5"))
    // W4's yamux and h2 rows, and W5's NATS row, have no limit
    {
        let l = weft_benches::report::limit_for(&rows, r).expect("limit row");
        assert_eq!((l.system.as_str(), l.ratio.as_str()), ("std-tcp", LIMIT));
    }
    for fact in [
        "W1-W3 baselines",
        "cpu",
        "cores",
        "pass",
        "window",
        "W1-W3",
        "W4-W5",
        "W6:",
        "W7:",
        "no CPU pinning",
        "pinning: ",
        "W2 h2:",
        "NATS: ",
    ] {
        assert!(text.contains(fact), "header lacks {fact}:\n{text}");
    }

    // The JSON: a list of objects, one per row, each with every key.
    let json = std::fs::read_to_string(&path).expect("json written");
    std::fs::remove_file(&path).ok();
    let body = json.trim();
    assert!(body.starts_with('[') && body.ends_with(']'), "{json}");
    let objects: Vec<&str> = body[1..body.len() - 1]
        .split('}')
        .map(|o| o.trim().trim_start_matches(',').trim())
        .filter(|o| !o.is_empty())
        .collect();
    assert_eq!(objects.len(), rows.len(), "{json}");
    for o in &objects {
        assert!(o.starts_with('{'), "{o}");
        for key in [
            "workload", "system", "metric", "value", "unit", "min", "max",
        ] {
            assert!(o.contains(&format!("\"{key}\": ")), "{key} missing in {o}");
        }
        // Only skipped rows have no figures, and they say why.
        let noted = o.contains(&format!("\"note\": \"{SKIPPED_NATS}\""));
        assert_eq!(o.contains("null"), noted, "non-finite value in {o}");
        assert_eq!(o.contains("\"note\""), noted, "{o}");
    }
    assert_eq!(json.matches('{').count(), rows.len());
    let back = weft_benches::chart::parse_json(&json).expect("the JSON reads back");
    assert_eq!(back.len(), rows.len());
    assert_eq!(
        back.iter().filter(|r| !r.note.is_empty()).count(),
        skipped.len()
    );

    // The chart: every headline panel (all were run), a PNG of the announced size.
    let panels = weft_benches::chart::panels(&rows);
    assert_eq!(panels.len(), 5, "{panels:?}");
    let bytes = std::fs::read(&png).expect("chart written");
    std::fs::remove_file(&png).ok();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), weft_benches::chart::size(5));
    assert!(
        text.contains(&format!("chart: {} (5 panels)", png.display())),
        "{text}"
    );
}

#[test]
fn filters_select_by_name() {
    let opts = options(&["--smoke", "memcpy", "crc32c-portable"]);
    let rows = run(&opts, &mut Vec::new()).unwrap();
    let systems: Vec<_> = rows.iter().map(|r| r.system.as_str()).collect();
    assert_eq!(systems, ["memcpy", "crc32c-portable"]);
    let rows = run(&options(&["--smoke", "pingpong-64B/mio"]), &mut Vec::new()).unwrap();
    let metrics: Vec<_> = rows.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(metrics, ["round trips", "rtt p50", "rtt p99", "rtt p99.9"]);
    assert!(rows.iter().all(|r| r.system == "weft-mio"));
    let rows = run(&options(&["--smoke", "no-such-bench"]), &mut Vec::new()).unwrap();
    assert!(rows.is_empty());
}

#[test]
fn argument_parsing() {
    use weft_benches::measure::Method;
    assert_eq!(options(&[]).method, Method::FULL);
    assert_eq!(options(&["--quick"]).method, Method::QUICK);
    assert_eq!(options(&["--quick", "--smoke"]).method, Method::SMOKE);
    let o = options(&["w0/64B", "--json", "x.json", "--", "--odd"]);
    assert_eq!(o.filters, ["w0/64B", "--odd"]);
    assert_eq!(o.json.as_deref(), Some(std::path::Path::new("x.json")));
    assert!(parse_args(["--bogus".to_string()]).is_err());
    assert!(parse_args(["--json".to_string()]).is_err());
    assert_eq!(parse_args(["--help".to_string()]), Ok(Command::Help));
}
