//! Same-run baselines for the socket workloads W1-W3: what the physical limit is
//! (blocking std TCP) and what users would pick instead of Weft (raw tokio TCP,
//! tokio-util's `LengthDelimitedCodec`, yamux over tokio TCP; for W2 also HTTP/2
//! with the `h2` crate, the transport of gRPC, and NATS request/reply with
//! `async-nats` against a `nats-server` process, see [`nats`]).
//!
//! Every baseline runs over loopback (`127.0.0.1`, `TCP_NODELAY`) and does the same
//! framing work as Weft's minimum: each message carries a 4-byte big-endian length
//! prefix, and the server parses the prefixes ([`Frames`], no per-message
//! allocation; the codec and yamux rows do what those libraries do).
//!
//! - W1 bulk: 1 MiB messages one way; payload GB/s received by the server.
//! - W2 ping-pong: a 64 B request, a 64 B reply, one outstanding; round trips/s
//!   and the RTT p50 / p99 / p99.9 (microseconds) of each window, median over passes.
//! - W3 pipelined: 64 B messages one way, 64 messages per write call; messages/s
//!   received by the server (yamux: over 1 stream and over 100 streams).
//!
//! Per pass ([`Bench::setup`]) a server thread (pinned to the second available CPU)
//! and a load-generator thread (pinned to the first) are started and connected,
//! outside the timed window; [`Bench::teardown`] closes the connection and joins
//! both. Each [`Bench::step`] asks the load generator for one bounded batch; W1 and
//! W3 count what the server has received so far, W2 counts completed round trips.
//! Every socket wait is bounded by a timeout, so a broken baseline panics with a
//! message instead of hanging.
//!
//! The std-tcp rows are the limit of their workload: their ratio column reads
//! [`report::LIMIT`](crate::report::LIMIT). Without `nats-server` on the PATH the
//! NATS rows are not run: they are reported with the note
//! [`SKIPPED_NATS`](crate::report::SKIPPED_NATS) and no figures.

// HTTP/2 (h2) for W2 here and for W4 in `net::w45`.
pub(crate) mod h2;
// NATS (nats-server + async-nats) for W2 here and for W5 in `net::w45`.
pub mod nats;
mod std_tcp;
mod tokio_tcp;
mod yamux_tcp;
// W4's yamux baseline, driven by `net::w45`.
pub(crate) mod yamux_w4;

use crate::measure::{Bench, Measured, Spread};
use crate::report::{Row, LIMIT, SKIPPED_NATS, UNIT_GBPS, UNIT_MSGS, UNIT_US};
use core_affinity::CoreId;
use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::measure::Work;

/// W1 message size.
pub const BULK: usize = 1 << 20;
/// W2 and W3 message size.
pub const SMALL: usize = 64;
/// W3: messages per write call.
pub const PIPELINE: usize = 64;
/// W1: messages written per step.
pub const BULK_PER_STEP: usize = 4;
/// W2: round trips per step.
pub const PINGS_PER_STEP: usize = 64;
/// W3: write calls (of [`PIPELINE`] messages) per step.
pub const WRITES_PER_STEP: usize = 256;
/// Streams of the `yamux-100` row.
pub const YAMUX_STREAMS: usize = 100;
/// The server's read buffer.
const READ_BUF: usize = 256 << 10;
/// Bound on any single socket wait (and on a blocking server's idle time).
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on starting a pass: accepting, connecting, opening streams.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a whole server's life (far above the longest pass the harness allows).
const SERVER_LIFETIME: Duration = Duration::from_secs(600);

/// The workload a baseline runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// W1: 1 MiB messages one way.
    Bulk,
    /// W2: 64 B request / 64 B reply, one outstanding.
    PingPong,
    /// W3: 64 B messages one way, 64 per write call.
    Pipelined,
}

/// The system a baseline runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// Blocking `std::net` TCP: the limit.
    StdTcp,
    /// tokio TCP, framing by hand.
    TokioTcp,
    /// tokio-util's `LengthDelimitedCodec` over tokio TCP.
    TokioCodec,
    /// yamux over tokio TCP with this many streams.
    Yamux {
        /// Streams the messages are spread over (round-robin per write call).
        streams: usize,
    },
    /// HTTP/2 (`h2` over tokio TCP), one request stream per round trip (W2).
    H2,
    /// NATS request/reply through a `nats-server` process (W2).
    Nats,
}

impl Workload {
    /// The report's workload column.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Bulk => "W1 bulk 1MiB",
            Workload::PingPong => "W2 ping-pong 64B",
            Workload::Pipelined => "W3 pipelined 64B",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Workload::Bulk => "w1/msg-1MiB",
            Workload::PingPong => "w2/pingpong-64B",
            Workload::Pipelined => "w3/pipelined-64B",
        }
    }
}

impl System {
    /// The report's system column: what runs, and for h2 and NATS what one round
    /// trip is.
    pub fn label(self) -> String {
        match self {
            System::H2 => "h2 (1 stream per request)".into(),
            System::Nats => "nats (2 hops via responder)".into(),
            _ => self.slug(),
        }
    }

    /// The last part of the benchmark's name.
    pub fn slug(self) -> String {
        match self {
            System::StdTcp => "std-tcp".into(),
            System::TokioTcp => "tokio-tcp".into(),
            System::TokioCodec => "tokio-codec".into(),
            System::Yamux { streams } => format!("yamux-{streams}"),
            System::H2 => "h2".into(),
            System::Nats => "nats".into(),
        }
    }
}

/// A baseline of the catalogue, not yet built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Unique name, matched by filters (e.g. `w2/pingpong-64B/tokio-codec`).
    pub name: String,
    /// The workload.
    pub workload: Workload,
    /// The system.
    pub system: System,
}

impl Spec {
    fn new(workload: Workload, system: System) -> Spec {
        Spec {
            name: format!("{}/{}", workload.slug(), system.slug()),
            workload,
            system,
        }
    }

    /// The rows this baseline gives, as (metric, unit), in report order.
    pub fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        match self.workload {
            Workload::Bulk => vec![("payload received", UNIT_GBPS)],
            Workload::PingPong => vec![
                ("round trips", UNIT_MSGS),
                ("RTT p50", UNIT_US),
                ("RTT p99", UNIT_US),
                ("RTT p99.9", UNIT_US),
            ],
            Workload::Pipelined => vec![("messages received", UNIT_MSGS)],
        }
    }

    /// True for the rows that are the limit of their workload (std-tcp).
    pub fn is_limit(&self) -> bool {
        self.system == System::StdTcp
    }

    /// Why this baseline cannot run here (its rows then carry the reason as a
    /// note), or `None` when it can.
    pub fn skipped(&self) -> Option<&'static str> {
        (self.system == System::Nats && !nats::available()).then_some(SKIPPED_NATS)
    }
}

/// Every baseline, grouped by workload, the limit first.
pub fn catalog() -> Vec<Spec> {
    use System::*;
    use Workload::*;
    let one = Yamux { streams: 1 };
    let many = Yamux {
        streams: YAMUX_STREAMS,
    };
    [
        (Bulk, StdTcp),
        (Bulk, TokioTcp),
        (Bulk, TokioCodec),
        (Bulk, one),
        (PingPong, StdTcp),
        (PingPong, TokioTcp),
        (PingPong, TokioCodec),
        (PingPong, H2),
        (PingPong, Nats),
        (Pipelined, StdTcp),
        (Pipelined, TokioTcp),
        (Pipelined, TokioCodec),
        (Pipelined, one),
        (Pipelined, many),
    ]
    .into_iter()
    .map(|(w, s)| Spec::new(w, s))
    .collect()
}

/// The CPUs of (load generator, server), or `None` with fewer than 2 CPUs available.
pub fn pinning() -> Option<(CoreId, CoreId)> {
    static PINS: OnceLock<Option<(CoreId, CoreId)>> = OnceLock::new();
    *PINS.get_or_init(|| {
        let ids = core_affinity::get_core_ids()?;
        (ids.len() >= 2).then(|| (ids[0], ids[1]))
    })
}

fn pin(core: Option<CoreId>) {
    if let Some(c) = core {
        // Best effort: an unpinned thread still measures correctly.
        core_affinity::set_for_current(c);
    }
}

/// Latency quantiles (p50, p99, p99.9 in microseconds) of each window, shared by a
/// W2 benchmark and the row builder.
type Latencies = Rc<RefCell<Vec<[f64; 3]>>>;

/// The baselines a run selected, and where their W2 latencies land.
pub struct Selected {
    specs: Vec<Spec>,
    latencies: Vec<Latencies>,
}

impl Selected {
    /// The baselines whose name contains any of `filters` (all when empty).
    pub fn new(filters: &[String]) -> Selected {
        let specs: Vec<Spec> = catalog()
            .into_iter()
            .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f)))
            .collect();
        let latencies = specs.iter().map(|_| Latencies::default()).collect();
        Selected { specs, latencies }
    }

    /// True when no baseline was selected.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// True when a NATS baseline was selected (run or skipped).
    pub fn has_nats(&self) -> bool {
        self.specs.iter().any(|s| s.system == System::Nats)
    }

    /// The header lines about the baselines (empty when none was selected).
    pub fn header(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let pins = match pinning() {
            Some((client, server)) => format!(
                "server thread pinned to CPU {}, load generator to CPU {}",
                server.id, client.id
            ),
            None => "no CPU pinning (fewer than 2 CPUs available)".into(),
        };
        let mut s = format!(
            "W1-W3 baselines: loopback TCP_NODELAY, 4-byte length prefix per message; {pins};\n    \
             tokio rows: one current-thread runtime per side; std-tcp rows are the limit (ratio column).\n"
        );
        if self.specs.iter().any(|s| s.system == System::H2) {
            s += &format!(
                "W2 h2: h2 0.4 over tokio TCP, {} KiB stream and connection windows; each round trip a POST stream\n    \
                 (HEADERS + one 64 B DATA frame) answered by a 200 echoing the body (gRPC unary without its framing).\n",
                h2::WINDOW >> 10
            );
        }
        s
    }

    /// Builds the benchmarks that can run here (nothing starts until a pass
    /// sets them up).
    pub fn build(&self) -> Vec<Box<dyn Bench>> {
        self.specs
            .iter()
            .zip(&self.latencies)
            .filter(|(s, _)| s.skipped().is_none())
            .map(|(s, l)| {
                Box::new(NetBench {
                    spec: s.clone(),
                    latencies: l.clone(),
                    live: None,
                }) as Box<dyn Bench>
            })
            .collect()
    }

    /// The rows of the baselines, in catalogue order: those among `measured`
    /// with their figures, the skipped ones with their note.
    pub fn rows(&self, measured: &[Measured]) -> Vec<Row> {
        let mut out = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            if let Some(note) = spec.skipped() {
                for (metric, unit) in spec.metrics() {
                    out.push(Row::skipped(
                        spec.workload.label(),
                        &spec.system.label(),
                        metric,
                        unit,
                        note,
                    ));
                }
                continue;
            }
            let Some(m) = measured.iter().find(|m| m.name == spec.name) else {
                continue;
            };
            let lat = self.latencies[i].borrow();
            for (k, (metric, unit)) in spec.metrics().into_iter().enumerate() {
                let s = match (spec.workload, k) {
                    (Workload::Bulk, _) => scaled(m.bytes_per_sec, 1e-9),
                    (_, 0) => m.items_per_sec,
                    (_, q) => {
                        let v: Vec<f64> = lat.iter().map(|l| l[q - 1]).collect();
                        Spread::of(&v).unwrap_or(Spread {
                            median: f64::NAN,
                            min: f64::NAN,
                            max: f64::NAN,
                        })
                    }
                };
                out.push(Row {
                    workload: spec.workload.label().into(),
                    system: spec.system.label(),
                    metric: metric.into(),
                    unit,
                    value: s.median,
                    min: s.min,
                    max: s.max,
                    ratio: if spec.is_limit() {
                        LIMIT.into()
                    } else {
                        String::new()
                    },
                    note: String::new(),
                });
            }
        }
        out
    }
}

fn scaled(s: Spread, k: f64) -> Spread {
    Spread {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
    }
}

/// The length-prefix parser: the server's only per-message work.
#[derive(Default)]
pub(crate) struct Frames {
    hdr: [u8; 4],
    have: usize,
    left: usize,
    len: usize,
}

impl Frames {
    /// Walks `buf`; returns the messages completed in it and their payload bytes.
    pub(crate) fn feed(&mut self, mut buf: &[u8]) -> Work {
        let mut w = Work::default();
        while !buf.is_empty() {
            if self.left > 0 {
                let n = self.left.min(buf.len());
                self.left -= n;
                buf = &buf[n..];
                if self.left == 0 {
                    w.items += 1;
                    w.bytes += self.len as u64;
                }
                continue;
            }
            let n = (4 - self.have).min(buf.len());
            self.hdr[self.have..self.have + n].copy_from_slice(&buf[..n]);
            self.have += n;
            buf = &buf[n..];
            if self.have == 4 {
                self.have = 0;
                self.len = u32::from_be_bytes(self.hdr) as usize;
                self.left = self.len;
                if self.len == 0 {
                    w.items += 1;
                }
            }
        }
        w
    }
}

/// `count` framed messages of `len` payload bytes each, back to back.
pub(crate) fn framed(len: usize, count: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(count * (len + 4));
    for _ in 0..count {
        v.extend_from_slice(&(len as u32).to_be_bytes());
        v.extend((0..len).map(|i| (i % 251) as u8 + 1));
    }
    v
}

/// What the server received: messages and payload bytes.
#[derive(Default)]
pub(crate) struct Counter {
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    pub(crate) fn add(&self, w: Work) {
        if w.items > 0 {
            self.items.fetch_add(w.items, Ordering::Relaxed);
            self.bytes.fetch_add(w.bytes, Ordering::Relaxed);
        }
    }

    fn get(&self) -> Work {
        Work {
            items: self.items.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Errors that mean "the peer went away": the normal end of a server.
pub(crate) fn is_end(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

pub(crate) fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// The load generator's side of a baseline, living on its own thread for one pass.
pub(crate) trait Client {
    /// One bounded batch. Returns the work it saw complete (W2: round trips; zero
    /// where the server counts) and pushes W2 round-trip times (ns) to `rtts`.
    fn batch(&mut self, rtts: &mut Vec<u64>) -> io::Result<Work>;
}

/// Runs the server of `spec` on `listener` until the client goes away.
fn serve(spec: &Spec, listener: TcpListener, counter: &Arc<Counter>) -> io::Result<()> {
    match spec.system {
        System::StdTcp => std_tcp::server(spec.workload, listener, counter),
        System::TokioTcp => tokio_tcp::server(false, spec.workload, listener, counter),
        System::TokioCodec => tokio_tcp::server(true, spec.workload, listener, counter),
        System::Yamux { .. } => yamux_tcp::server(listener, counter),
        System::H2 => h2::w2_server(listener, counter),
        System::Nats => nats::w2_server(listener, counter),
    }
}

/// Connects the client of `spec` to `addr`.
fn connect(spec: &Spec, addr: SocketAddr) -> io::Result<Box<dyn Client>> {
    Ok(match spec.system {
        System::StdTcp => Box::new(std_tcp::StdClient::connect(spec.workload, addr)?),
        System::TokioTcp => Box::new(tokio_tcp::TokioClient::connect(false, spec.workload, addr)?),
        System::TokioCodec => Box::new(tokio_tcp::TokioClient::connect(true, spec.workload, addr)?),
        System::Yamux { streams } => Box::new(yamux_tcp::YamuxClient::connect(
            spec.workload,
            streams,
            addr,
        )?),
        System::H2 => Box::new(h2::H2Client::connect(spec.workload, addr)?),
        System::Nats => Box::new(nats::NatsClient::connect(spec.workload, addr)?),
    })
}

enum Cmd {
    Step,
    BeginWindow,
    EndWindow,
}

enum Reply {
    Ready,
    Done(Work),
    Quantiles([f64; 3]),
    Failed(String),
}

/// The threads and connection of one pass.
struct Live {
    cmd: Sender<Cmd>,
    reply: Receiver<Reply>,
    counter: Arc<Counter>,
    seen: Work,
    client: JoinHandle<()>,
    server: JoinHandle<io::Result<()>>,
}

/// A baseline as the harness drives it.
struct NetBench {
    spec: Spec,
    latencies: Latencies,
    live: Option<Live>,
}

/// p50, p99, p99.9 of `rtts` (ns) in microseconds, nearest rank; NaN when empty.
fn quantiles(rtts: &mut [u64]) -> [f64; 3] {
    if rtts.is_empty() {
        return [f64::NAN; 3];
    }
    rtts.sort_unstable();
    let n = rtts.len();
    [0.5, 0.99, 0.999].map(|q| {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        rtts[rank - 1] as f64 / 1e3
    })
}

fn client_thread(
    spec: Spec,
    core: Option<CoreId>,
    addr: SocketAddr,
    cmd: Receiver<Cmd>,
    reply: Sender<Reply>,
) {
    pin(core);
    let mut client = match connect(&spec, addr) {
        Ok(c) => c,
        Err(e) => {
            let _ = reply.send(Reply::Failed(format!("connect: {e}")));
            return;
        }
    };
    if reply.send(Reply::Ready).is_err() {
        return;
    }
    let mut rtts = Vec::new();
    // Ends when the bench drops its sender (teardown, or a panic elsewhere).
    while let Ok(c) = cmd.recv() {
        let r = match c {
            Cmd::Step => match client.batch(&mut rtts) {
                Ok(w) => Reply::Done(w),
                Err(e) => Reply::Failed(e.to_string()),
            },
            Cmd::BeginWindow => {
                rtts.clear();
                continue;
            }
            Cmd::EndWindow => Reply::Quantiles(quantiles(&mut rtts)),
        };
        let failed = matches!(r, Reply::Failed(_));
        if reply.send(r).is_err() || failed {
            return;
        }
    }
}

impl NetBench {
    fn start(&self) -> Live {
        let name = &self.spec.name;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let counter = Arc::new(Counter::default());
        let pins = pinning();
        let (spec, c) = (self.spec.clone(), counter.clone());
        let server = std::thread::Builder::new()
            .name(format!("server {name}"))
            .spawn(move || {
                pin(pins.map(|p| p.1));
                serve(&spec, listener, &c)
            })
            .expect("spawn server thread");
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (reply_tx, reply_rx) = mpsc::channel();
        let spec = self.spec.clone();
        let client = std::thread::Builder::new()
            .name(format!("client {name}"))
            .spawn(move || client_thread(spec, pins.map(|p| p.0), addr, cmd_rx, reply_tx))
            .expect("spawn client thread");
        let live = Live {
            cmd: cmd_tx,
            reply: reply_rx,
            counter,
            seen: Work::default(),
            client,
            server,
        };
        match live
            .reply
            .recv_timeout(SETUP_TIMEOUT + Duration::from_secs(5))
        {
            Ok(Reply::Ready) => live,
            Ok(Reply::Failed(e)) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name}: unexpected reply"),
            Err(e) => panic!("{name}: client did not start: {e}"),
        }
    }

    fn ask(&mut self, c: Cmd) -> Reply {
        let name = &self.spec.name;
        let live = self.live.as_mut().expect("set up");
        live.cmd.send(c).expect("client thread alive");
        match live.reply.recv_timeout(IO_TIMEOUT * 2) {
            Ok(Reply::Failed(e)) => panic!("{name}: {e}"),
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => panic!("{name}: client batch timed out"),
            Err(RecvTimeoutError::Disconnected) => panic!("{name}: client thread ended"),
        }
    }
}

impl Bench for NetBench {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn setup(&mut self) {
        self.teardown();
        self.live = Some(self.start());
    }

    fn step(&mut self) -> Work {
        if self.live.is_none() {
            self.setup();
        }
        let Reply::Done(mut w) = self.ask(Cmd::Step) else {
            panic!("{}: unexpected reply", self.spec.name);
        };
        let live = self.live.as_mut().expect("set up");
        // W2: the client counts the round trips it completed; the requests the
        // server received are the same round trips, not more of them.
        if self.spec.workload != Workload::PingPong {
            let now = live.counter.get();
            w.items += now.items - live.seen.items;
            w.bytes += now.bytes - live.seen.bytes;
            live.seen = now;
        }
        w
    }

    fn begin_window(&mut self) {
        if let Some(live) = &self.live {
            live.cmd
                .send(Cmd::BeginWindow)
                .expect("client thread alive");
        }
    }

    fn teardown(&mut self) {
        if self.live.is_none() {
            return;
        }
        if self.spec.workload == Workload::PingPong {
            if let Reply::Quantiles(q) = self.ask(Cmd::EndWindow) {
                self.latencies.borrow_mut().push(q);
            }
        }
        let live = self.live.take().expect("set up");
        let name = &self.spec.name;
        // Dropping the sender ends the client thread, which closes the connection,
        // which ends the server.
        drop(live.cmd);
        if live.client.join().is_err() {
            panic!("{name}: client thread panicked");
        }
        match live.server.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{name}: server: {e}"),
            Err(_) => panic!("{name}: server thread panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_split_prefixes() {
        let data = framed(SMALL, 5);
        for chunk in [1, 3, 4, 5, 67, 68, 69, data.len()] {
            let mut f = Frames::default();
            let mut w = Work::default();
            for c in data.chunks(chunk) {
                w += f.feed(c);
            }
            assert_eq!(w.items, 5, "chunk {chunk}");
            assert_eq!(w.bytes, 5 * SMALL as u64);
        }
    }

    #[test]
    fn quantiles_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantiles(&mut v), [500.0, 990.0, 999.0]);
        assert!(quantiles(&mut []).iter().all(|q| q.is_nan()));
    }

    #[test]
    fn names_are_unique() {
        let c = catalog();
        let mut names: Vec<_> = c.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.len());
        assert!(names.contains(&"w2/pingpong-64B/std-tcp"));
        assert!(names.contains(&"w3/pipelined-64B/yamux-100"));
        assert!(names.contains(&"w2/pingpong-64B/h2"));
        assert!(names.contains(&"w2/pingpong-64B/nats"));
    }

    #[test]
    fn skipped_baselines_give_noted_rows() {
        let sel = Selected::new(&["pingpong-64B/nats".to_string()]);
        let rows = sel.rows(&[]);
        if nats::available() {
            assert!(rows.is_empty(), "not measured, not skipped: {rows:?}");
            assert_eq!(sel.build().len(), 1);
        } else {
            assert_eq!(rows.len(), 4);
            assert!(rows
                .iter()
                .all(|r| r.note == SKIPPED_NATS && r.value.is_nan()));
            assert!(sel.build().is_empty());
        }
    }

    #[test]
    fn every_baseline_runs_a_few_steps() {
        for spec in catalog().into_iter().filter(|s| s.skipped().is_none()) {
            let lat = Latencies::default();
            let mut b = NetBench {
                spec: spec.clone(),
                latencies: lat.clone(),
                live: None,
            };
            b.setup();
            let mut w = Work::default();
            let mut steps = 0;
            for _ in 0..1000 {
                w += b.step();
                steps += 1;
                if w.items >= 3 {
                    break;
                }
            }
            b.begin_window();
            w += b.step();
            steps += 1;
            b.teardown();
            assert!(w.items >= 3, "{}: {w:?}", spec.name);
            if spec.workload == Workload::PingPong {
                // Each step is one batch of round trips, counted once.
                assert_eq!(w.items, (steps * PINGS_PER_STEP) as u64, "{}", spec.name);
            }
            let size = if spec.workload == Workload::Bulk {
                BULK
            } else {
                SMALL
            };
            assert_eq!(w.bytes, w.items * size as u64, "{}", spec.name);
            if spec.workload == Workload::PingPong {
                let l = lat.borrow();
                assert_eq!(l.len(), 1);
                assert!(l[0].iter().all(|q| q.is_finite() && *q > 0.0));
                assert!(l[0][0] <= l[0][1] && l[0][1] <= l[0][2]);
            }
        }
    }
}
