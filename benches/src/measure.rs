//! The measurement method: warm-up, timed windows, interleaved passes, and the
//! median / min / max of the per-pass rates.
//!
//! A benchmark is anything implementing [`Bench`]: it does one small batch of work
//! per [`Bench::step`] and says how much it did. The harness calls `step` until the
//! window has elapsed (checking the clock between steps, so a step should take well
//! under a millisecond to a few milliseconds), and turns the counts into rates.
//!
//! Passes are interleaved: pass 1 runs every selected benchmark once (warm-up, then
//! window), then pass 2 runs them all again, and so on. A slow phase of a shared
//! machine therefore spreads over all benchmarks instead of landing on one of them,
//! and the spread between passes (min..max) shows how noisy the run was.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// What one [`Bench::step`] accomplished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Items completed (messages delivered, buffers copied or checksummed).
    pub items: u64,
    /// Payload bytes completed.
    pub bytes: u64,
}

impl std::ops::AddAssign for Work {
    fn add_assign(&mut self, rhs: Work) {
        self.items += rhs.items;
        self.bytes += rhs.bytes;
    }
}

/// A benchmark the harness can drive.
pub trait Bench {
    /// A unique name, matched by the command line's filters (e.g. `w0/64B/crc=on`).
    fn name(&self) -> &str;
    /// Does one batch of work and reports how much was completed.
    fn step(&mut self) -> Work;
    /// Called once per pass before the warm-up, to set up what the pass needs (a
    /// server, a connection) outside the timed window. Default: nothing.
    fn setup(&mut self) {}
    /// Called between the warm-up and the timed window (e.g. to drop warm-up
    /// latency samples). Default: nothing.
    fn begin_window(&mut self) {}
    /// Called once per pass after the timed window, to record per-window figures
    /// and tear down what [`Bench::setup`] made. Default: nothing.
    fn teardown(&mut self) {}
}

/// How long to warm up and measure, and how many passes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// A short name for the report (`quick`, `full`, `smoke`).
    pub label: &'static str,
    /// Interleaved passes; each figure is the median over them.
    pub passes: usize,
    /// Unmeasured run time before each window.
    pub warmup: Duration,
    /// Measured run time of each window.
    pub window: Duration,
}

impl Method {
    /// `--quick`: 3 passes of 0.4 s windows after 0.1 s warm-ups.
    pub const QUICK: Method = Method {
        label: "quick",
        passes: 3,
        warmup: Duration::from_millis(100),
        window: Duration::from_millis(400),
    };
    /// The default: 5 passes of 1 s windows after 0.25 s warm-ups.
    pub const FULL: Method = Method {
        label: "full",
        passes: 5,
        warmup: Duration::from_millis(250),
        window: Duration::from_secs(1),
    };
    /// `--smoke`: one pass of a few milliseconds, to prove the code runs (not timing).
    pub const SMOKE: Method = Method {
        label: "smoke",
        passes: 1,
        warmup: Duration::from_millis(1),
        window: Duration::from_millis(3),
    };
}

/// Median, minimum and maximum of one rate over the passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The lowest pass.
    pub min: f64,
    /// The highest pass.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` if there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// The result of one benchmark over all passes.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The benchmark's name.
    pub name: String,
    /// Items per second.
    pub items_per_sec: Spread,
    /// Bytes per second.
    pub bytes_per_sec: Spread,
}

/// Runs `bench` for at least `dur` and until it has completed some work; returns the
/// work and the elapsed time. Panics if a benchmark makes no progress at all.
fn run_for(bench: &mut dyn Bench, dur: Duration) -> (Work, Duration) {
    let start = Instant::now();
    let give_up = dur * 100 + Duration::from_secs(30);
    let mut work = Work::default();
    loop {
        work += black_box(bench.step());
        let elapsed = start.elapsed();
        if elapsed >= dur && work.items > 0 {
            return (work, elapsed);
        }
        assert!(
            elapsed < give_up,
            "benchmark {} made no progress in {elapsed:?}",
            bench.name()
        );
    }
}

/// Runs the benchmarks in `method.passes` interleaved passes, each a warm-up then a
/// window per benchmark. `progress` is called after each window with the pass
/// number (from 1) and the benchmark's name, for a progress line.
pub fn run_all(
    benches: &mut [Box<dyn Bench>],
    method: &Method,
    mut progress: impl FnMut(usize, &str),
) -> Vec<Measured> {
    let passes = method.passes.max(1);
    let mut items: Vec<Vec<f64>> = vec![Vec::with_capacity(passes); benches.len()];
    let mut bytes: Vec<Vec<f64>> = vec![Vec::with_capacity(passes); benches.len()];
    for pass in 1..=passes {
        for (i, bench) in benches.iter_mut().enumerate() {
            bench.setup();
            run_for(bench.as_mut(), method.warmup);
            bench.begin_window();
            let (work, elapsed) = run_for(bench.as_mut(), method.window);
            bench.teardown();
            let secs = elapsed.as_secs_f64();
            items[i].push(work.items as f64 / secs);
            bytes[i].push(work.bytes as f64 / secs);
            progress(pass, bench.name());
        }
    }
    benches
        .iter()
        .enumerate()
        .map(|(i, b)| Measured {
            name: b.name().to_string(),
            items_per_sec: Spread::of(&items[i]).expect("at least one pass"),
            bytes_per_sec: Spread::of(&bytes[i]).expect("at least one pass"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_odd_and_even() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(Spread::of(&[]).is_none());
    }
}
