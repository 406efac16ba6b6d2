//! Socket workloads W1-W3 over loopback TCP, on each adapter (tokio, smol, mio,
//! io_uring).
//!
//! - W1 bulk: 1 MiB one-way messages client -> server (payload GB/s counted by the
//!   server's `next_message`), and one stream written in 64 KiB chunks (GB/s read
//!   by the server's stream reader).
//! - W2 ping-pong: sequential 64 B requests (subject `echo`), one outstanding;
//!   every round-trip time of the window is kept, and the window's p50 / p99 /
//!   p99.9 are reported (median, min and max over the passes, in microseconds).
//! - W3 pipelined: 64 B one-way messages, `send_many` 64 at a time waiting for queue room; messages
//!   per second received.
//!
//! # Threads and pinning
//!
//! Each pass of a benchmark starts a server thread (pinned to the second CPU the
//! process may use) that binds an ephemeral port, accepts one connection and serves
//! it, and a load-generator thread (pinned to the first) that connects and runs the
//! load. Threads an adapter starts from them (the mio and io_uring event loops)
//! inherit the pinning; tokio and smol run on the pinned thread itself
//! (current-thread runtime, local executor). With fewer than two CPUs nothing is
//! pinned and the header says so. The connection uses `Config::default()` (CRC-32C
//! on) and `TCP_NODELAY` (every adapter sets it).
//!
//! # Fitting the measurement method
//!
//! [`measure::run_all`](crate::measure::run_all) calls [`Bench::step`] until a
//! phase (warm-up, then window) has lasted its time *and* some work was reported,
//! and has no set-up or tear-down hooks. A socket benchmark therefore keeps its
//! own phase clock: its steps report nothing until the phase has lasted its
//! duration (sleeping meanwhile while the two threads work), then the phase's whole
//! count at once, which ends the phase exactly there. The first step of a pass
//! sets the connection up (before the warm-up's clock starts); the window's last
//! step tells the load generator to stop, and the threads are joined at the next
//! pass's first step or when the benchmark is dropped, so neither is timed.
//! Counts are read from the receiving side (the client for W2).

mod apps;
mod rt;
// W4 (streams) and W5 (pub/sub).
pub mod w45;

use crate::measure::{Bench, Measured, Method, Spread, Work};
use crate::report::{Row, UNIT_GBPS, UNIT_MSGS};
use apps::Ctl;
use core_affinity::CoreId;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Unit of latencies.
pub const UNIT_US: &str = "us";

/// A socket workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// W1: 1 MiB one-way messages.
    BulkMsg,
    /// W1: one stream written in 64 KiB chunks.
    BulkStream,
    /// W2: sequential 64 B request/response.
    PingPong,
    /// W3: 64 B one-way messages as fast as the receiver takes them.
    Pipelined,
}

impl Workload {
    /// Every socket workload, in run order.
    pub const ALL: [Workload; 4] = [
        Workload::BulkMsg,
        Workload::BulkStream,
        Workload::PingPong,
        Workload::Pipelined,
    ];

    /// The name prefix (`w1/msg-1MiB`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Workload::BulkMsg => "w1/msg-1MiB",
            Workload::BulkStream => "w1/stream-64KiB",
            Workload::PingPong => "w2/pingpong-64B",
            Workload::Pipelined => "w3/pipelined-64B",
        }
    }

    /// The workload column of the report.
    pub fn label(self) -> &'static str {
        match self {
            Workload::BulkMsg => "W1 1-way 1MiB msg",
            Workload::BulkStream => "W1 stream 64KiB",
            Workload::PingPong => "W2 ping-pong 64B",
            Workload::Pipelined => "W3 pipelined 64B",
        }
    }

    /// The rows each benchmark of this workload gives: metric and unit.
    pub fn metrics(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Workload::BulkMsg => &[
                ("messages received", UNIT_MSGS),
                ("payload received", UNIT_GBPS),
            ],
            Workload::BulkStream => &[("stream bytes received", UNIT_GBPS)],
            Workload::PingPong => &[
                ("round trips", UNIT_MSGS),
                ("rtt p50", UNIT_US),
                ("rtt p99", UNIT_US),
                ("rtt p99.9", UNIT_US),
            ],
            Workload::Pipelined => &[("messages received", UNIT_MSGS)],
        }
    }
}

/// An adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `weft-tokio` on a current-thread runtime.
    Tokio,
    /// `weft-smol` on a local executor.
    Smol,
    /// `weft-mio` (blocking; event-loop threads).
    Mio,
    /// `weft-uring` (blocking; io_uring event-loop threads).
    #[cfg(target_os = "linux")]
    Uring,
}

impl Runtime {
    /// The adapters compiled in (io_uring on Linux only).
    pub fn all() -> Vec<Runtime> {
        vec![
            Runtime::Tokio,
            Runtime::Smol,
            Runtime::Mio,
            #[cfg(target_os = "linux")]
            Runtime::Uring,
        ]
    }

    /// The name suffix (`tokio`, `smol`, `mio`, `uring`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::Smol => "smol",
            Runtime::Mio => "mio",
            #[cfg(target_os = "linux")]
            Runtime::Uring => "uring",
        }
    }

    /// Whether the adapter can run here; the reason if not (io_uring may be
    /// missing or forbidden).
    pub fn available(self) -> Result<(), String> {
        match self {
            #[cfg(target_os = "linux")]
            Runtime::Uring => {
                static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
                CHECK
                    .get_or_init(|| weft_uring::check_available().map_err(|e| e.to_string()))
                    .clone()
            }
            _ => Ok(()),
        }
    }
}

/// A socket benchmark of the catalogue, not yet built.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Unique name, matched by filters (e.g. `w2/pingpong-64B/mio`).
    pub name: String,
    /// The workload column (e.g. `W2 ping-pong 64B`).
    pub workload: String,
    /// The system column (e.g. `weft-mio`).
    pub system: String,
    /// The workload.
    pub kind: Workload,
    /// The adapter.
    pub runtime: Runtime,
    method: Method,
    /// W2: each pass's window p50 / p99 / p99.9 in microseconds.
    latency: Arc<Mutex<Vec<[f64; 3]>>>,
}

impl Spec {
    /// Builds the benchmark; its connections are set up by its first step.
    pub fn build(&self) -> Box<dyn Bench> {
        Box::new(NetBench {
            spec: self.clone(),
            pass: None,
            ending: Vec::new(),
            in_window: false,
            mark: None,
        })
    }
}

/// Every socket benchmark whose adapter is available, in run order, for `method`
/// (whose warm-up and window the benchmarks time themselves).
pub fn catalog(method: &Method) -> Vec<Spec> {
    let mut v = Vec::new();
    for kind in Workload::ALL {
        for rt in Runtime::all() {
            if rt.available().is_err() {
                continue;
            }
            v.push(Spec {
                name: format!("{}/{}", kind.name(), rt.name()),
                workload: kind.label().into(),
                system: format!("weft-{}", rt.name()),
                kind,
                runtime: rt,
                method: *method,
                latency: Arc::default(),
            });
        }
    }
    v
}

/// The CPUs of the server and the load generator: the second and the first CPU
/// this process may run on; `None` with fewer than two.
pub fn pinning() -> Option<(CoreId, CoreId)> {
    static PIN: OnceLock<Option<(CoreId, CoreId)>> = OnceLock::new();
    *PIN.get_or_init(|| {
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        (ids.len() >= 2).then(|| (ids[1], ids[0]))
    })
}

/// The header lines of the socket workloads: what runs, and the pinning.
pub fn header() -> String {
    let mut s = String::from(
        "W1-W3: loopback TCP (127.0.0.1, TCP_NODELAY), one connection per pass, Config::default() (CRC-32C on);\n    W1 1 MiB messages and a 64 KiB-chunk stream (GB/s received), W2 64 B ping-pong (RTT percentiles\n    of every round trip in the window), W3 64 B pipelined one-way messages (messages/s received).\n",
    );
    s += &match pinning() {
        Some((server, load)) => format!(
            "pinning: server thread on CPU {}, load generator on CPU {} (adapter threads inherit it).\n",
            server.id, load.id
        ),
        None => "pinning: none - fewer than 2 CPUs available, server and load generator float.\n"
            .into(),
    };
    for rt in Runtime::all() {
        if let Err(e) = rt.available() {
            s += &format!("left out: weft-{} ({e}).\n", rt.name());
        }
    }
    s += "ratio: Weft rows against the std-tcp limit and the best same-run baseline of the workload.\n";
    s += &w45::header();
    s
}

/// The rows of the socket benchmarks among `measured` (in order).
pub fn rows(specs: &[Spec], measured: &[Measured]) -> Vec<Row> {
    let mut out = Vec::new();
    for m in measured {
        let Some(spec) = specs.iter().find(|s| s.name == m.name) else {
            continue;
        };
        let latency = spec.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &(metric, unit)) in spec.kind.metrics().iter().enumerate() {
            let s = match (spec.kind, unit) {
                (_, UNIT_MSGS) => m.items_per_sec,
                (_, UNIT_GBPS) => scaled(m.bytes_per_sec, 1e-9),
                (Workload::PingPong, _) => {
                    let col: Vec<f64> = latency.iter().map(|p| p[i - 1]).collect();
                    Spread::of(&col).unwrap_or(Spread {
                        median: f64::NAN,
                        min: f64::NAN,
                        max: f64::NAN,
                    })
                }
                _ => unreachable!("{metric}"),
            };
            out.push(Row {
                workload: spec.workload.clone(),
                system: spec.system.clone(),
                metric: metric.into(),
                unit,
                value: s.median,
                min: s.min,
                max: s.max,
                ratio: String::new(),
                note: String::new(),
            });
        }
    }
    out
}

fn scaled(s: Spread, k: f64) -> Spread {
    Spread {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
    }
}

/// Nearest-rank percentile `q` (0..=1) of sorted `v`, in microseconds.
fn percentile_us(v: &[u64], q: f64) -> f64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1e3
}

/// The window's p50 / p99 / p99.9 in microseconds (of a non-empty list).
fn percentiles(mut v: Vec<u64>) -> [f64; 3] {
    v.sort_unstable();
    [0.5, 0.99, 0.999].map(|q| percentile_us(&v, q))
}

/// Longest a pass's threads get to wind down before they are left behind.
const REAP_WAIT: Duration = Duration::from_secs(30);
/// A phase that has reported nothing this long past its duration fails.
const STALL: Duration = Duration::from_secs(30);
/// Longest sleep of one step.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// One pass's server and load-generator threads.
pub(crate) struct Pass {
    pub(crate) ctl: Arc<Ctl>,
    /// One message per thread, sent when it ends (however it ends).
    done: mpsc::Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

/// Sends on `done` when dropped; a thread that panics records it as a failure.
struct Guard {
    done: mpsc::Sender<()>,
    ctl: Arc<Ctl>,
    what: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.ctl.fail(format!("{} thread panicked", self.what));
        }
        let _ = self.done.send(());
    }
}

pub(crate) fn pin(core: Option<CoreId>) {
    if let Some(c) = core {
        // Best effort: an unpinned thread still measures correctly.
        let _ = core_affinity::set_for_current(c);
    }
}

/// Spawns one pinned thread that runs `body` and reports how it ended.
fn spawn_pinned<F>(
    name: &str,
    what: &'static str,
    cpu: Option<CoreId>,
    guard: Guard,
    body: F,
) -> JoinHandle<()>
where
    F: FnOnce(Arc<Ctl>) -> std::io::Result<()> + Send + 'static,
{
    let c = guard.ctl.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _guard = guard;
            pin(cpu);
            if let Err(e) = body(c.clone()) {
                c.fail(format!("{what}: {e}"));
            }
        })
        .expect("start a benchmark thread")
}

impl Pass {
    /// Starts the server, then the client, and returns once the handshake is done.
    fn start(spec: &Spec) -> Pass {
        let (rt, kind) = (spec.runtime, spec.kind);
        Pass::launch(
            &spec.name,
            move |c, addr| rt::server(rt, kind, c, addr),
            move |c, addr, ready| rt::client(rt, kind, c, addr, ready),
            apps::SETUP_WAIT,
        )
    }

    /// Starts `server` on the server CPU, waits (bounded) for its address, starts
    /// `client` on the load CPU and waits up to `ready_wait` for it to be ready.
    /// Panics with the recorded failure if either does not get there.
    pub(crate) fn launch<S, C>(name: &str, server: S, client: C, ready_wait: Duration) -> Pass
    where
        S: FnOnce(Arc<Ctl>, mpsc::SyncSender<SocketAddr>) -> std::io::Result<()> + Send + 'static,
        C: FnOnce(Arc<Ctl>, SocketAddr, mpsc::SyncSender<()>) -> std::io::Result<()>
            + Send
            + 'static,
    {
        let ctl = Arc::new(Ctl::default());
        let (done_tx, done) = mpsc::channel();
        let (server_cpu, load_cpu) = match pinning() {
            Some((s, l)) => (Some(s), Some(l)),
            None => (None, None),
        };
        let guard = |what| Guard {
            done: done_tx.clone(),
            ctl: ctl.clone(),
            what,
        };
        let fail = |what: &str| -> ! {
            ctl.stop.store(true, Ordering::SeqCst);
            panic!(
                "{name}: {what}: {}",
                ctl.failure().unwrap_or_else(|| "no error reported".into())
            )
        };
        let (addr_tx, addr_rx) = mpsc::sync_channel::<SocketAddr>(1);
        let mut threads = vec![spawn_pinned(
            "weft-bench-server",
            "server",
            server_cpu,
            guard("server"),
            move |c| server(c, addr_tx),
        )];
        let Ok(addr) = addr_rx.recv_timeout(apps::SETUP_WAIT) else {
            fail("the server did not start")
        };
        let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
        threads.push(spawn_pinned(
            "weft-bench-load",
            "client",
            load_cpu,
            guard("client"),
            move |c| client(c, addr, ready_tx),
        ));
        if ready_rx.recv_timeout(ready_wait).is_err() {
            fail("the client did not get ready");
        }
        Pass {
            ctl: ctl.clone(),
            done,
            threads,
        }
    }

    fn counts(&self) -> Work {
        Work {
            items: self.ctl.items.load(Ordering::SeqCst),
            bytes: self.ctl.bytes.load(Ordering::SeqCst),
        }
    }

    /// Waits (bounded) for both threads to end and joins them.
    pub(crate) fn reap(self, name: &str) {
        let deadline = Instant::now() + REAP_WAIT;
        for _ in 0..self.threads.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                eprintln!(
                    "weft-benches: {name}: a pass did not wind down in {REAP_WAIT:?}; its threads are left behind"
                );
                return;
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A socket benchmark (see the module documentation for how it fits the method).
struct NetBench {
    spec: Spec,
    /// The live pass, from its first step to the end of its window.
    pass: Option<Pass>,
    /// Passes told to stop, joined later.
    ending: Vec<Pass>,
    /// Whether the current (or next) phase is the window.
    in_window: bool,
    /// The current phase's start and counts then; `None` before its first step.
    mark: Option<(Instant, Work)>,
}

impl NetBench {
    fn reap_ending(&mut self) {
        for p in self.ending.drain(..) {
            p.reap(&self.spec.name);
        }
    }
}

impl Bench for NetBench {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn step(&mut self) -> Work {
        if self.pass.is_none() {
            // A new pass: its warm-up starts once the connection is up.
            self.reap_ending();
            self.pass = Some(Pass::start(&self.spec));
            self.in_window = false;
            self.mark = None;
        }
        let pass = self.pass.as_ref().expect("a live pass");
        let (start, base) = *self.mark.get_or_insert_with(|| {
            if self.in_window {
                pass.ctl
                    .rtts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                pass.ctl.recording.store(true, Ordering::SeqCst);
            }
            (Instant::now(), pass.counts())
        });
        let m = &self.spec.method;
        let dur = if self.in_window { m.window } else { m.warmup };
        let elapsed = start.elapsed();
        std::thread::sleep(if elapsed < dur {
            (dur - elapsed).min(MAX_SLEEP)
        } else {
            Duration::from_micros(200)
        });
        if let Some(e) = pass.ctl.failure() {
            panic!("{}: {e}", self.spec.name);
        }
        let now = pass.counts();
        let work = Work {
            items: now.items - base.items,
            bytes: now.bytes - base.bytes,
        };
        let elapsed = start.elapsed();
        let has_rtts = || {
            self.spec.kind != Workload::PingPong
                || !pass
                    .ctl
                    .rtts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty()
        };
        if elapsed >= dur && work.items > 0 && (!self.in_window || has_rtts()) {
            self.mark = None;
            if self.in_window {
                let pass = self.pass.take().expect("a live pass");
                pass.ctl.recording.store(false, Ordering::SeqCst);
                pass.ctl.stop.store(true, Ordering::SeqCst);
                if self.spec.kind == Workload::PingPong {
                    let rtts = std::mem::take(
                        &mut *pass.ctl.rtts.lock().unwrap_or_else(|p| p.into_inner()),
                    );
                    self.spec
                        .latency
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(percentiles(rtts));
                }
                self.ending.push(pass);
            }
            self.in_window = !self.in_window;
            return work;
        }
        assert!(
            elapsed < dur + STALL,
            "{}: no progress in {elapsed:?} ({} items)",
            self.spec.name,
            work.items
        );
        Work::default()
    }
}

impl Drop for NetBench {
    fn drop(&mut self) {
        if let Some(p) = self.pass.take() {
            p.ctl.stop.store(true, Ordering::SeqCst);
            self.ending.push(p);
        }
        self.reap_ending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentiles(v), [500.0, 990.0, 999.0]);
        assert_eq!(percentiles(vec![7000]), [7.0, 7.0, 7.0]);
    }

    #[test]
    fn names_are_unique() {
        let c = catalog(&Method::SMOKE);
        let mut names: Vec<_> = c.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), c.len());
        assert!(names.contains(&"w2/pingpong-64B/tokio".to_string()));
    }
}
