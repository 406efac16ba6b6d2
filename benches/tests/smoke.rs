//! The smoke mode end to end, in-process: every expected row is present with a finite
//! positive value, and the JSON output is a list of objects with the expected keys.

use weft_benches::measure::Method;
use weft_benches::report::{LIMIT, UNIT_GBPS, UNIT_MSGS};
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

#[test]
fn smoke_run_has_every_row_and_valid_json() {
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
    // W4 (streams, with its yamux baseline) and W5 (pub/sub).
    for spec in net::w45::catalog() {
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
    assert_eq!(rows.len(), expected.len() + w67_expected.len(), "{text}");
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
    // W4's Weft rows are compared with the yamux row of the same stream count.
    for r in rows
        .iter()
        .filter(|r| r.workload.starts_with("W4") && r.system.starts_with("weft-"))
    {
        assert!(r.ratio.ends_with("x yamux (best baseline)"), "{r:?}");
    }
    // Baseline rows of one workload (and metric) find their limit row.
    for r in rows
        .iter()
        .filter(|r| r.system.starts_with("yamux") || r.system.starts_with("tokio-"))
        .filter(|r| !r.workload.starts_with("W4"))
    // W4's yamux rows have no limit
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
        assert!(!o.contains("null"), "non-finite value in {o}");
    }
    assert_eq!(json.matches('{').count(), rows.len());

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
