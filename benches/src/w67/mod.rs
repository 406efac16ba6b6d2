//! Workloads W6 (many clients) and W7 (memory).
//!
//! - W6: 1,000 and 10,000 concurrent connections, each doing sequential 64 B echo
//!   requests, against one server on each adapter (tokio, smol, mio, io_uring):
//!   aggregate requests/s (answered by the server) and the window's round-trip
//!   p50 / p99 over all connections (µs). The server runs in this process on its
//!   pinned thread (as in W1-W3; one executor thread for mio and io_uring serves
//!   the applications). The clients run in a **child process** (this binary with a
//!   hidden subcommand, pinned to the load-generator CPU): one weft-mio
//!   `EventLoop` thread hosts every client connection and one executor thread runs
//!   their request loops. A child is needed because 10,000 loopback connections
//!   take 20,000 descriptors in one process and the limit is often 20,000.
//! - W7 (a): server resident memory per idle connection: the server runs alone in
//!   a child process (fresh heap, so freed memory of earlier benchmarks cannot be
//!   reused and hide growth); this process opens N idle connections to it (one
//!   weft-mio loop), waits until the server counted N handshakes, and reads the
//!   child's `VmRSS` before and after: (after - before) / N, in KiB.
//! - W7 (b): allocation calls (alloc + realloc) per message in a steady-state
//!   window after the warm-up, counted by a global counting allocator
//!   ([`allocs`]): W3 (one-way 64 B) and W2 (64 B request/response), for
//!   weft-core in memory and for weft-tokio over loopback TCP.
//!
//! Each pass sets up in [`Bench::setup`] (connections established before the
//! warm-up), and tears down in [`Bench::teardown`]; every wait is bounded, and a
//! child process is always reaped (killed if it does not exit when told).
//! `--smoke` uses 50 connections instead of 1,000 / 10,000 and says so in the
//! workload column.

pub mod allocs;
pub mod fleet;

use crate::measure::{Bench, Measured, Method, Spread, Work};
use crate::net::Runtime;
use crate::report::{Row, UNIT_MSGS, UNIT_US};
use fleet::{ChildProc, Clients, Fleet};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Unit of W7 (a).
pub const UNIT_KIB: &str = "KiB";
/// Unit of W7 (b).
pub const UNIT_ALLOCS: &str = "allocs/msg";
/// Connections of W6 and W7 (a) in smoke mode.
pub const SMOKE_CONNS: usize = 50;
/// W7 (a) idle connections.
pub const IDLE_CONNS: usize = 10_000;

/// What a W6/W7 benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// W6 with this many clients (nominal; smoke mode uses fewer).
    Clients(usize),
    /// W7 (a): RSS per idle connection.
    RssPerIdle,
    /// W7 (b): allocations per W3 message (`false`) or W2 round trip (`true`),
    /// in memory (`socket` false) or over weft-tokio.
    Allocs {
        /// W2 round trips rather than W3 messages.
        pingpong: bool,
        /// Over weft-tokio and loopback TCP rather than in memory.
        socket: bool,
    },
}

impl Kind {
    /// The rows each benchmark gives: metric and unit.
    pub fn metrics(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Clients(_) => &[
                ("requests", UNIT_MSGS),
                ("rtt p50", UNIT_US),
                ("rtt p99", UNIT_US),
            ],
            Kind::RssPerIdle => &[("server RSS per idle conn", UNIT_KIB)],
            Kind::Allocs {
                pingpong: false, ..
            } => &[("allocs per message", UNIT_ALLOCS)],
            Kind::Allocs { pingpong: true, .. } => &[("allocs per round trip", UNIT_ALLOCS)],
        }
    }
}

/// A W6/W7 benchmark of the catalogue.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Unique name (e.g. `w6/clients-1000/mio`).
    pub name: String,
    /// The workload column, with the connection count actually used.
    pub workload: String,
    /// The system column.
    pub system: String,
    /// What it measures.
    pub kind: Kind,
    runtime: Option<Runtime>,
    /// Connections actually used (W6, W7 a).
    conns: usize,
    /// Per pass: the extra figures (W6 p50/p99, W7 value).
    figures: Arc<Mutex<Vec<Vec<f64>>>>,
}

impl Spec {
    /// Builds the benchmark; each pass sets up in `setup`.
    pub fn build(&self) -> Box<dyn Bench> {
        Box::new(W67Bench {
            spec: self.clone(),
            live: None,
            last: 0,
            window: None,
        })
    }
}

/// Connections in W6/W7 in quick mode.
pub const QUICK_CONNS: usize = 1_000;

/// Every W6/W7 benchmark whose adapter is available, for `method`.
pub fn catalog(method: &Method) -> Vec<Spec> {
    let smoke = method == &Method::SMOKE;
    // The quick run (the README's first command, under 3 minutes) uses
    // QUICK_CONNS and says so in each row. (Setting up 10,000 connections took
    // about a minute per pass until the clients kept their handshakes within
    // fleet::CONNECT_WINDOW; it is now about a second, plus teardown.)
    let quick = method == &Method::QUICK;
    let conns = |n: usize| {
        if smoke {
            SMOKE_CONNS
        } else if quick {
            n.min(QUICK_CONNS)
        } else {
            n
        }
    };
    let rts: Vec<Runtime> = Runtime::all()
        .into_iter()
        .filter(|r| r.available().is_ok())
        .collect();
    let mut v = Vec::new();
    let spec = |name: String, workload: String, system: String, kind, runtime, conns| Spec {
        name,
        workload,
        system,
        kind,
        runtime,
        conns,
        figures: Arc::default(),
    };
    let smoke_note = |n: usize| {
        if smoke {
            format!(" (smoke: {} conns)", conns(n))
        } else if conns(n) != n {
            format!(" (quick: {} conns)", conns(n))
        } else {
            String::new()
        }
    };
    let sizes: &[usize] = if quick {
        &[QUICK_CONNS]
    } else {
        &[1_000, 10_000]
    };
    for &n in sizes {
        for &rt in &rts {
            v.push(spec(
                format!("w6/clients-{n}/{}", rt.name()),
                format!("W6 {n} clients 64B echo{}", smoke_note(n)),
                format!("weft-{}", rt.name()),
                Kind::Clients(n),
                Some(rt),
                conns(n),
            ));
        }
    }
    for &rt in &rts {
        v.push(spec(
            format!("w7/rss-per-idle-conn/{}", rt.name()),
            format!("W7 RSS {IDLE_CONNS} idle conns{}", smoke_note(IDLE_CONNS)),
            format!("weft-{}", rt.name()),
            Kind::RssPerIdle,
            Some(rt),
            conns(IDLE_CONNS),
        ));
    }
    for (pingpong, w) in [(false, "w3"), (true, "w2")] {
        for (socket, sys) in [(false, "core"), (true, "tokio")] {
            v.push(spec(
                format!("w7/allocs-per-msg-{w}/{sys}"),
                format!(
                    "W7 allocs {}",
                    if pingpong {
                        "W2 req/resp 64B"
                    } else {
                        "W3 1-way 64B"
                    }
                ),
                format!("weft-{sys}"),
                Kind::Allocs { pingpong, socket },
                None,
                0,
            ));
        }
    }
    v
}

/// The header lines of W6/W7.
pub fn header(method: &Method) -> String {
    let mut s = String::from(
        "W6: N connections doing sequential 64 B echo requests against one server (this process, pinned\n    server CPU); the clients run in a child process (same binary) on the load CPU: one weft-mio event\n    loop for all connections plus one executor thread. requests/s counted by the server; RTT p50/p99\n    over every round trip of the window.\n",
    );
    s += "W7: server RSS per idle connection = child server's VmRSS growth / N after N idle connections\n    (server alone in a child process, clients here on one weft-mio loop); allocations (alloc+realloc)\n    per message over the window, counted by a global counting allocator (stats_alloc; it is active for\n    the whole run and adds two atomic increments per allocation to every benchmark).\n";
    if method == &Method::SMOKE {
        s += &format!(
            "note: smoke mode - W6 and W7 RSS use {SMOKE_CONNS} connections instead of 1,000 / 10,000.\n"
        );
    }
    if method == &Method::QUICK {
        s += &format!(
            "note: quick mode - W6 runs {QUICK_CONNS} clients and W7 RSS uses {QUICK_CONNS} idle connections; the full run uses 1,000 and 10,000.\n"
        );
    }
    s
}

/// The rows of W6/W7 among `measured`.
pub fn rows(specs: &[Spec], measured: &[Measured]) -> Vec<Row> {
    let mut out = Vec::new();
    for m in measured {
        let Some(spec) = specs.iter().find(|s| s.name == m.name) else {
            continue;
        };
        let figures = spec.figures.lock().unwrap_or_else(|p| p.into_inner());
        let col = |i: usize| {
            let v: Vec<f64> = figures.iter().filter_map(|f| f.get(i).copied()).collect();
            Spread::of(&v).unwrap_or(Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            })
        };
        for (i, &(metric, unit)) in spec.kind.metrics().iter().enumerate() {
            let s = match spec.kind {
                Kind::Clients(_) if i == 0 => m.items_per_sec,
                Kind::Clients(_) => col(i - 1),
                _ => col(0),
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

/// What a pass keeps alive.
enum Live {
    /// W6: the in-process server thread and the client child.
    Clients {
        fleet: Arc<Fleet>,
        server: Option<JoinHandle<()>>,
        done: mpsc::Receiver<()>,
        child: Option<ChildProc>,
    },
    /// W7 (a): the server child and the idle clients.
    Rss {
        child: Option<ChildProc>,
        clients: Option<Clients>,
    },
    /// W7 (b).
    Allocs(Box<allocs::Subject>),
}

struct W67Bench {
    spec: Spec,
    live: Option<Live>,
    /// W6: server count at the previous step.
    last: u64,
    /// W7 (b): allocations and messages since the window began.
    window: Option<(u64, u64)>,
}

/// Waits (bounded) for a server thread to end, then joins it.
fn reap_thread(h: Option<JoinHandle<()>>, done: &mpsc::Receiver<()>, name: &str) {
    if let Some(h) = h {
        if done.recv_timeout(Duration::from_secs(30)).is_ok() {
            let _ = h.join();
        } else {
            eprintln!("weft-benches: {name}: server thread did not end; left behind");
        }
    }
}

impl W67Bench {
    fn start(&mut self) -> Result<Live, String> {
        let spec = &self.spec;
        match spec.kind {
            Kind::Clients(_) => {
                let rt = spec.runtime.expect("W6 has a runtime");
                let fleet = Arc::new(Fleet::default());
                let (addr_tx, addr_rx) = mpsc::sync_channel(1);
                let (done_tx, done) = mpsc::channel::<()>();
                let f = fleet.clone();
                let cpu = crate::net::pinning().map(|(s, _)| s);
                let server = std::thread::Builder::new()
                    .name("weft-bench-w6-server".into())
                    .spawn(move || {
                        struct Done(mpsc::Sender<()>);
                        impl Drop for Done {
                            fn drop(&mut self) {
                                let _ = self.0.send(());
                            }
                        }
                        let _done = Done(done_tx);
                        if let Some(c) = cpu {
                            let _ = core_affinity::set_for_current(c);
                        }
                        if let Err(e) = fleet::serve_many(rt, f.clone(), true, addr_tx) {
                            f.fail(format!("server: {e}"));
                        }
                    })
                    .map_err(|e| e.to_string())?;
                let mut live = Live::Clients {
                    fleet: fleet.clone(),
                    server: Some(server),
                    done,
                    child: None,
                };
                let addr = addr_rx
                    .recv_timeout(fleet::CHILD_WAIT)
                    .map_err(|_| format!("server did not start: {:?}", fleet.failure()))?;
                let (child, first) = ChildProc::start(&[
                    "clients".into(),
                    addr.to_string(),
                    spec.conns.to_string(),
                    "echo".into(),
                    fleet::load_cpu_arg(),
                ])?;
                if first != "ready" {
                    return Err(format!("clients said {first:?}"));
                }
                if let Live::Clients { child: c, .. } = &mut live {
                    *c = Some(child);
                }
                self.last = fleet.items.load(Ordering::SeqCst);
                Ok(live)
            }
            Kind::RssPerIdle => {
                let rt = spec.runtime.expect("W7 RSS has a runtime");
                let (mut child, first) = ChildProc::start(&[
                    "server".into(),
                    rt.name().into(),
                    fleet::server_cpu_arg(),
                ])?;
                let addr = first
                    .strip_prefix("addr ")
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| format!("server said {first:?}"))?;
                std::thread::sleep(Duration::from_millis(50));
                let before = child.ask("rss", "rss")?[0];
                let clients =
                    Clients::connect(addr, spec.conns, false).map_err(|e| e.to_string())?;
                let deadline = std::time::Instant::now() + fleet::CHILD_WAIT;
                loop {
                    let n = child.ask("count", "count")?[0] as usize;
                    if n >= spec.conns {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(format!("server counted {n} of {} connections", spec.conns));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(100));
                let after = child.ask("rss", "rss")?[0];
                self.push(vec![(after - before) / spec.conns as f64]);
                Ok(Live::Rss {
                    child: Some(child),
                    clients: Some(clients),
                })
            }
            Kind::Allocs { pingpong, socket } => {
                let s = match (pingpong, socket) {
                    (false, false) => allocs::Subject::CoreOneWay(Box::new(
                        crate::w0::CoreOneWay::new(spec.name.clone(), 64, true),
                    )),
                    (true, false) => allocs::Subject::CorePingPong(Box::default()),
                    (_, true) => allocs::Subject::Tokio(
                        allocs::TokioPair::new(pingpong).map_err(|e| e.to_string())?,
                    ),
                };
                Ok(Live::Allocs(Box::new(s)))
            }
        }
    }

    fn push(&self, v: Vec<f64>) {
        self.spec
            .figures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(v);
    }

    fn end(&mut self) {
        match self.live.take() {
            Some(Live::Clients {
                fleet,
                server,
                done,
                mut child,
            }) => {
                if let Some(c) = child.take() {
                    c.finish();
                }
                fleet.stop();
                reap_thread(server, &done, &self.spec.name);
            }
            Some(Live::Rss {
                mut child,
                mut clients,
            }) => {
                if let Some(c) = clients.take() {
                    c.shutdown();
                }
                if let Some(c) = child.take() {
                    c.finish();
                }
            }
            Some(Live::Allocs(_)) | None => {}
        }
    }
}

impl Bench for W67Bench {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn setup(&mut self) {
        self.end();
        self.window = None;
        match self.start() {
            Ok(l) => self.live = Some(l),
            Err(e) => {
                self.end();
                panic!("{}: {e}", self.spec.name);
            }
        }
    }

    fn begin_window(&mut self) {
        match &mut self.live {
            Some(Live::Clients { child: Some(c), .. }) => {
                if let Err(e) = c.send("window") {
                    panic!("{}: {e}", self.spec.name);
                }
            }
            Some(Live::Allocs(_)) => self.window = Some((0, 0)),
            _ => {}
        }
    }

    fn step(&mut self) -> Work {
        match &mut self.live {
            Some(Live::Clients { fleet, .. }) => {
                std::thread::sleep(Duration::from_millis(5));
                if let Some(e) = fleet.failure() {
                    let name = self.spec.name.clone();
                    self.end();
                    panic!("{name}: {e}");
                }
                let now = fleet.items.load(Ordering::SeqCst);
                let items = now - self.last;
                self.last = now;
                Work {
                    items,
                    bytes: items * fleet::SMALL as u64,
                }
            }
            Some(Live::Rss { .. }) => {
                std::thread::sleep(Duration::from_millis(5));
                Work { items: 1, bytes: 0 }
            }
            Some(Live::Allocs(s)) => {
                let a = allocs::allocations();
                let w = s.step();
                let d = allocs::allocations() - a;
                if let Some((allocs, msgs)) = &mut self.window {
                    *allocs += d;
                    *msgs += w.items;
                }
                w
            }
            None => panic!("{}: step without setup", self.spec.name),
        }
    }

    fn teardown(&mut self) {
        match &mut self.live {
            Some(Live::Clients { child: Some(c), .. }) => match c.ask("stats", "stats") {
                Ok(v) if v.len() == 3 && v[2] > 0.0 => {
                    let fig = vec![v[0], v[1]];
                    self.push(fig);
                }
                Ok(v) => eprintln!("weft-benches: {}: no round trips ({v:?})", self.spec.name),
                Err(e) => {
                    let name = self.spec.name.clone();
                    self.end();
                    panic!("{name}: {e}");
                }
            },
            Some(Live::Allocs(_)) => {
                if let Some((allocs, msgs)) = self.window.take() {
                    if msgs > 0 {
                        // Zero is a valid (the target) figure; the report keeps it.
                        self.push(vec![allocs as f64 / msgs as f64]);
                    }
                }
            }
            _ => {}
        }
        self.end();
    }
}

impl Drop for W67Bench {
    fn drop(&mut self) {
        self.end();
    }
}
