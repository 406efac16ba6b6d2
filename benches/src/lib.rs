//! Weft benchmarks against same-run baselines.
//!
//! The binary (`cargo run --release -p weft-benches -- [--quick] [--smoke] [--json
//! PATH] [--chart PNG] [FILTER...]`) is a thin wrapper around [`parse_args`] and
//! [`run`] (or [`chart::from_json`]); the pieces are public so the smoke test can
//! drive a whole run in-process.
//!
//! - [`measure`]: warm-up, windows, interleaved passes, median / min / max.
//! - [`w0`]: workload W0 (the core alone, in memory) and the limits (memcpy, CRC-32C).
//! - [`report`]: rows, the aligned table and the JSON output.
//! - [`targets`]: the issue's targets checked against a run: met, or missed and by how much.
//! - [`net`]: socket workloads W1-W3 on each adapter.
//! - [`chart`]: the headline comparison as a PNG chart.

#![forbid(unsafe_code)]

pub mod baselines;
pub mod chart;
pub mod measure;
pub mod net;
pub mod report;
pub mod targets;
pub mod w0;
pub mod w67;

use measure::Method;
use report::Row;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Command-line options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Passes, warm-up and window.
    pub method: Method,
    /// Where to write the rows as JSON, if anywhere.
    pub json: Option<PathBuf>,
    /// Where to draw the headline comparison as a PNG chart, if anywhere.
    pub chart: Option<PathBuf>,
    /// Benchmarks whose name contains any of these run; all when empty.
    pub filters: Vec<String>,
    /// Print a progress line on stderr while running.
    pub progress: bool,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the benchmarks.
    Run(Options),
    /// Re-draw the chart from a JSON file of an earlier run, running nothing.
    ChartFrom {
        /// The rows, as written by `--json`.
        json: PathBuf,
        /// The PNG file to write.
        chart: PathBuf,
    },
    /// Print [`USAGE`].
    Help,
}

/// The usage text.
pub const USAGE: &str = "\
usage: weft-benches [--quick] [--smoke] [--json PATH] [--chart PNG] [FILTER...]
       weft-benches --chart-from JSON --chart PNG

  --quick      3 passes of 0.4 s windows (whole run under 3 minutes)
  (default)    5 passes of 1 s windows
  --smoke      1 pass of a few milliseconds: proves the code runs, timings meaningless
  --json PATH  also write the rows as a JSON array to PATH
  --chart PNG  also draw the headline comparison (W3 pipelined, W2 RTT p50, W1 1 MiB,
               W4 100 streams 64 KiB, W5 1->1; Weft on each runtime next to the
               same-run baselines) as a PNG chart; panels not run are left out
  --chart-from JSON
               run nothing: draw the --chart PNG from the rows of an earlier --json
               file; the title's machine and method come from the file of the same
               name ending in .txt beside it (the run's saved output), if any
  FILTER...    run only benchmarks whose name contains any FILTER
               (names: limit/memcpy, limit/crc32c-hw, limit/crc32c-portable,
                w0/<64B|1KiB|64KiB|1MiB>/crc=<on|off>,
                w1/msg-1MiB/<rt>, w1/stream-64KiB/<rt>, w2/pingpong-64B/<rt>,
                w3/pipelined-64B/<rt> with rt in tokio|smol|mio|uring,
                w2/pingpong-64B/<h2|nats>,
                w4/streams-<1|100>-<64B|64KiB>/<rt|yamux|h2>,
                w5/pubsub-<1to1|1to100>-64B/<rt>, w5/pubsub-1to1-64B/nats,
                w6/clients-<1000|10000>/<rt>, w7/rss-per-idle-conn/<rt>,
                w7/allocs-per-msg-<w3|w2>/<core|tokio>)
";

/// Parses the arguments (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut opts = Options {
        method: Method::FULL,
        json: None,
        chart: None,
        filters: Vec::new(),
        progress: true,
    };
    let (mut quick, mut smoke) = (false, false);
    let mut chart_from = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--smoke" => smoke = true,
            "--json" => {
                let p = args.next().ok_or("--json needs a PATH")?;
                opts.json = Some(PathBuf::from(p));
            }
            "--chart" => {
                let p = args.next().ok_or("--chart needs a PATH")?;
                opts.chart = Some(PathBuf::from(p));
            }
            "--chart-from" => {
                let p = args.next().ok_or("--chart-from needs a JSON file")?;
                chart_from = Some(PathBuf::from(p));
            }
            "-h" | "--help" => return Ok(Command::Help),
            "--" => opts.filters.extend(args.by_ref()),
            s if s.starts_with("--json=") => opts.json = Some(PathBuf::from(&s[7..])),
            s if s.starts_with("--chart=") => opts.chart = Some(PathBuf::from(&s[8..])),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => opts.filters.push(a),
        }
    }
    if let Some(json) = chart_from {
        let chart = opts.chart.ok_or("--chart-from needs --chart PNG")?;
        if quick || smoke || opts.json.is_some() || !opts.filters.is_empty() {
            return Err("--chart-from runs nothing: it takes only --chart PNG".into());
        }
        return Ok(Command::ChartFrom { json, chart });
    }
    // --smoke wins over --quick: it is the CI mode.
    opts.method = if smoke {
        Method::SMOKE
    } else if quick {
        Method::QUICK
    } else {
        Method::FULL
    };
    Ok(Command::Run(opts))
}

/// The CPU model from `/proc/cpuinfo`, if readable.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    ["model name", "Hardware", "Processor", "cpu model", "uarch"]
        .iter()
        .find_map(|key| {
            info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
            })
        })
}

/// The header: machine facts and method.
pub fn header(opts: &Options) -> String {
    let m = &opts.method;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s =
        String::from("weft-benches: workload W0 (core alone, no I/O) with same-run limits\n");
    s += &format!(
        "machine: cpu {}; {} cores available; {} {}; crc32c path: {}\n",
        cpu_model().unwrap_or_else(|| "unknown (no /proc/cpuinfo)".into()),
        cores,
        std::env::consts::OS,
        std::env::consts::ARCH,
        if w0::crc_hardware() {
            "hardware"
        } else {
            "software"
        },
    );
    s += &format!(
        "method: {} - {} interleaved pass(es); per benchmark and pass a {:.3} s warm-up then a {:.3} s window;\n        figures are the median over passes, min-max across passes; GB = 1e9 bytes\n",
        m.label,
        m.passes,
        m.warmup.as_secs_f64(),
        m.window.as_secs_f64(),
    );
    if m == &Method::SMOKE {
        s += "note: smoke mode - timings are not meaningful\n";
    }
    if cfg!(debug_assertions) {
        s += "note: debug build - use --release for meaningful figures\n";
    }
    s += &format!(
        "W0: client -> server one-way messages in one thread, in memory, virtual time; {} KiB transmit buffer;\n    single-threaded in-process, so no CPU pinning is needed.\n",
        w0::TRANSMIT_BUF >> 10
    );
    s += &net::header(); // socket workloads W1-W3
    s += &w67::header(&opts.method); // W6 many clients, W7 memory
    if !opts.filters.is_empty() {
        s += &format!("filter: {}\n", opts.filters.join(" "));
    }
    s
}

/// Runs the selected benchmarks and prints the header, the table and the run time
/// to `out`; writes the JSON file if asked. Returns the rows.
pub fn run(opts: &Options, out: &mut dyn Write) -> io::Result<Vec<Row>> {
    let started = Instant::now();
    let specs: Vec<_> = w0::catalog()
        .into_iter()
        .filter(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.name.contains(f)))
        .collect();
    let base = baselines::Selected::new(&opts.filters);
    // Socket workloads (W1-W3), run after W0 in the same interleaved passes.
    let net_specs: Vec<_> = net::catalog(&opts.method)
        .into_iter()
        .filter(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.name.contains(f)))
        .collect();
    // W4 (streams) and W5 (pub/sub), after W1-W3.
    let w45_specs: Vec<_> = net::w45::catalog()
        .into_iter()
        .filter(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.name.contains(f)))
        .collect();
    // W6 (many clients) and W7 (memory).
    let w67_specs: Vec<_> = w67::catalog(&opts.method)
        .into_iter()
        .filter(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.name.contains(f)))
        .collect();
    let head = header(opts);
    let nats = base.has_nats() || w45_specs.iter().any(|s| s.sys == net::w45::System::Nats);
    write!(out, "{}{}", head, base.header())?;
    if nats {
        write!(out, "{}", baselines::nats::header())?;
    }
    if specs.is_empty()
        && base.is_empty()
        && net_specs.is_empty()
        && w45_specs.is_empty()
        && w67_specs.is_empty()
    {
        writeln!(out, "no benchmark matches the filter")?;
        return Ok(Vec::new());
    }
    writeln!(out)?;
    out.flush()?;
    let mut benches: Vec<_> = specs.iter().map(w0::Spec::build).collect();
    benches.extend(base.build());
    benches.extend(net_specs.iter().map(net::Spec::build));
    benches.extend(
        w45_specs
            .iter()
            .filter(|s| s.skipped().is_none())
            .map(net::w45::Spec::build),
    );
    benches.extend(w67_specs.iter().map(w67::Spec::build));
    let total = benches.len();
    let mut done = 0;
    let passes = opts.method.passes;
    let measured = measure::run_all(&mut benches, &opts.method, |pass, name| {
        done += 1;
        if opts.progress {
            eprint!(
                "\rpass {pass}/{passes}: {done}/{} {name:<28}",
                total * passes
            );
            if done == total * passes {
                eprint!("\r{:70}\r", "");
            }
        }
    });
    let mut rows = report::rows(&specs, &measured);
    rows.extend(base.rows(&measured));
    rows.extend(net::rows(&net_specs, &measured));
    rows.extend(net::w45::rows(&w45_specs, &measured));
    rows.extend(w67::rows(&w67_specs, &measured));
    report::fill_ratios(&mut rows);
    write!(out, "{}", report::table(&rows))?;
    writeln!(
        out,
        "\nratio: W0 payload GB/s divided by the memcpy limit, and for crc=on also by the crc32c limit."
    )?;
    write!(out, "{}", targets::report(&rows))?;
    if let Some(path) = &opts.json {
        std::fs::write(path, report::json(&rows))?;
        writeln!(out, "json: {}", path.display())?;
    }
    if let Some(path) = &opts.chart {
        // The rows are in the table and the JSON already: a chart that cannot be
        // drawn is reported, not an error of the run.
        match chart::write(&rows, &chart::title_lines(&head), path) {
            Ok(n) => writeln!(out, "chart: {} ({n} panels)", path.display())?,
            Err(chart::ChartError::Io(e)) => return Err(e),
            Err(e) => writeln!(out, "chart: not drawn - {e}")?,
        }
    }
    writeln!(out, "run time: {:.1} s", started.elapsed().as_secs_f64())?;
    Ok(rows)
}
