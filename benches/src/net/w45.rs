//! Socket workloads W4 (multiplexed streams) and W5 (publish/subscribe) over
//! loopback TCP, on each adapter, with the baselines of W4 (yamux, HTTP/2) and of
//! W5 (NATS).
//!
//! - W4 streams: one connection carries 1 or 100 concurrent streams, each written
//!   in a loop with 64 B or 64 KiB writes; the server reads every stream (in one
//!   task, polling only the streams that woke it). 64 B: messages/s received (the
//!   bytes read ÷ 64, summed over the streams); 64 KiB: GB/s received. Weft's
//!   streams buffer what is written and send it in frames as large as the window
//!   and buffer allow (64 B writes are coalesced). The baselines do the same
//!   writes but frame every write on its own, as their libraries do: yamux
//!   (`w4/.../yamux`, yamux 0.14 over tokio TCP, default config, see
//!   `baselines::yamux_w4`) and HTTP/2 (`w4/.../h2`, one request stream per
//!   stream, a DATA frame per write, see `baselines::h2`). Their system column
//!   says so, and the rows count the same bytes.
//! - W5 pub/sub: a publisher connection publishes 64 B messages on one topic; the
//!   server's hub routes them to 1 subscriber, or to 100 subscribers on 100
//!   connections of their own (one subscription each). The subscriptions use the
//!   `Wait` overflow policy, so the publisher is held back by flow control and
//!   cannot outrun delivery. Deliveries/s, summed over the subscribers. The NATS
//!   row (`w5/pubsub-1to1-64B/nats`, 1 -> 1 only) runs the same shape through a
//!   `nats-server` process with `async-nats` clients (see `baselines::nats`), or
//!   is reported skipped without `nats-server` on the PATH.
//!
//! Same method and threads as W1-W3: per pass ([`Bench::setup`], outside the
//! timed window) a server thread pinned to the second CPU and a load-generator
//! thread pinned to the first are started and connected (W5: every subscription
//! has received a first message); each step sleeps briefly and reports what the
//! receiving side counted since the previous step; [`Bench::teardown`] stops the
//! load generator, which closes its connections, and joins both threads (bounded).
//! All client connections of a pass live on the load generator's runtime (tokio,
//! smol) or on one event loop (mio, io_uring).

use super::apps::{bounded, other, Ctl, CLOSE_WAIT, MAX_LOAD, SETUP_WAIT};
use super::Runtime;
use crate::measure::{Bench, Measured, Spread, Work};
use crate::report::{Row, UNIT_GBPS, UNIT_MSGS};
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};
use weft_core::config::OverflowPolicy;
use weft_core::{Config, ErrorCode};
use weft_driver::{Handle, WeftStream};

/// Small writes (W4) and published messages (W5).
pub const SMALL: usize = 64;
/// Large writes (W4).
pub const LARGE: usize = 64 << 10;
/// Streams (W4) or subscribers (W5) of the "many" cases.
pub const MANY: usize = 100;
/// The topic of W5.
const TOPIC: &str = "w5.bench";
/// W5: how long the end of a pass waits for connections to close gracefully
/// before shutting them down.
const QUIT_WAIT: Duration = Duration::from_millis(500);
/// How long a step sleeps.
const STEP: Duration = Duration::from_millis(2);

/// A W4 or W5 workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// W4: `streams` concurrent streams on one connection, written `write` bytes
    /// at a time.
    Streams {
        /// Concurrent streams.
        streams: usize,
        /// Bytes per write call.
        write: usize,
    },
    /// W5: one publisher, `subscribers` subscriber connections.
    PubSub {
        /// Subscriber connections (one subscription each).
        subscribers: usize,
    },
}

impl Workload {
    /// Every W4 and W5 workload, in run order.
    pub const ALL: [Workload; 6] = [
        Workload::Streams {
            streams: 1,
            write: SMALL,
        },
        Workload::Streams {
            streams: MANY,
            write: SMALL,
        },
        Workload::Streams {
            streams: 1,
            write: LARGE,
        },
        Workload::Streams {
            streams: MANY,
            write: LARGE,
        },
        Workload::PubSub { subscribers: 1 },
        Workload::PubSub { subscribers: MANY },
    ];

    /// The name prefix (`w4/streams-100-64B`, `w5/pubsub-1to100-64B`, ...).
    pub fn name(self) -> String {
        match self {
            Workload::Streams { streams, write } => {
                format!("w4/streams-{streams}-{}", size(write))
            }
            Workload::PubSub { subscribers } => format!("w5/pubsub-1to{subscribers}-64B"),
        }
    }

    /// The workload column of the report (the first word pairs rows in ratios).
    pub fn label(self) -> &'static str {
        match self {
            Workload::Streams { write: SMALL, .. } => "W4 streams 64B",
            Workload::Streams { .. } => "W4 streams 64KiB",
            Workload::PubSub { .. } => "W5 pub/sub 64B",
        }
    }

    /// The one row each benchmark of this workload gives: metric and unit. The
    /// metric names the stream or subscriber count, so ratios pair 1 with 1 and
    /// 100 with 100.
    pub fn metric(self) -> (&'static str, &'static str) {
        match self {
            Workload::Streams {
                streams: 1,
                write: SMALL,
            } => ("messages received (1 stream)", UNIT_MSGS),
            Workload::Streams { write: SMALL, .. } => {
                ("messages received (100 streams)", UNIT_MSGS)
            }
            Workload::Streams { streams: 1, .. } => ("bytes received (1 stream)", UNIT_GBPS),
            Workload::Streams { .. } => ("bytes received (100 streams)", UNIT_GBPS),
            Workload::PubSub { subscribers: 1 } => ("deliveries (1 subscriber)", UNIT_MSGS),
            Workload::PubSub { .. } => ("deliveries (100 subscribers)", UNIT_MSGS),
        }
    }

    /// Bytes that make one counted item.
    fn item_bytes(self) -> u64 {
        match self {
            Workload::Streams { write, .. } => write as u64,
            Workload::PubSub { .. } => SMALL as u64,
        }
    }

    /// Connections the client opens.
    fn connections(self) -> usize {
        match self {
            Workload::Streams { .. } => 1,
            Workload::PubSub { subscribers } => subscribers + 1,
        }
    }
}

fn size(n: usize) -> String {
    if n >= 1024 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// What runs the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// Weft on an adapter.
    Weft(Runtime),
    /// The yamux baseline (W4 only).
    Yamux,
    /// The HTTP/2 baseline (W4 only).
    H2,
    /// The NATS baseline (W5 1 -> 1 only).
    Nats,
}

/// The system column of W4's yamux rows: yamux sends every write as a frame.
pub const YAMUX_LABEL: &str = "yamux (frame per write)";
/// The system column of W4's HTTP/2 rows: h2 sends every write as a DATA frame.
pub const H2_LABEL: &str = "h2 (DATA frame per write)";
/// The system column of W5's NATS row.
pub const NATS_LABEL: &str = "nats";

impl System {
    /// The last part of the benchmark's name and the system column.
    fn names(self) -> (String, String) {
        match self {
            System::Weft(rt) => (rt.name().to_string(), format!("weft-{}", rt.name())),
            System::Yamux => ("yamux".into(), YAMUX_LABEL.into()),
            System::H2 => ("h2".into(), H2_LABEL.into()),
            System::Nats => ("nats".into(), NATS_LABEL.into()),
        }
    }
}

/// A W4 or W5 benchmark of the catalogue, not yet built.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Unique name, matched by filters (e.g. `w4/streams-100-64B/mio`).
    pub name: String,
    /// The workload column.
    pub workload: String,
    /// The system column (`weft-<rt>` or `yamux`).
    pub system: String,
    /// The workload.
    pub kind: Workload,
    /// What runs it.
    pub sys: System,
}

impl Spec {
    /// The rows this benchmark gives, as (metric, unit).
    pub fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        vec![self.kind.metric()]
    }

    /// Why this benchmark cannot run here (its row then carries the reason as a
    /// note), or `None` when it can.
    pub fn skipped(&self) -> Option<&'static str> {
        (self.sys == System::Nats && !crate::baselines::nats::available())
            .then_some(crate::report::SKIPPED_NATS)
    }

    /// Builds the benchmark; each pass sets its connections up in `setup`.
    pub fn build(&self) -> Box<dyn Bench> {
        Box::new(W45Bench {
            spec: self.clone(),
            live: None,
            seen: 0,
        })
    }
}

/// Every W4 / W5 benchmark whose adapter is available, in run order (the
/// baselines after the Weft rows of their workload: yamux and h2 for W4, NATS for
/// W5 1 -> 1; NATS also where it cannot run, see [`Spec::skipped`]).
pub fn catalog() -> Vec<Spec> {
    let mut v = Vec::new();
    for kind in Workload::ALL {
        let mut systems: Vec<System> = Runtime::all()
            .into_iter()
            .filter(|rt| rt.available().is_ok())
            .map(System::Weft)
            .collect();
        match kind {
            Workload::Streams { .. } => systems.extend([System::Yamux, System::H2]),
            Workload::PubSub { subscribers: 1 } => systems.push(System::Nats),
            Workload::PubSub { .. } => {}
        }
        for sys in systems {
            let (suffix, system) = sys.names();
            v.push(Spec {
                name: format!("{}/{suffix}", kind.name()),
                workload: kind.label().into(),
                system,
                kind,
                sys,
            });
        }
    }
    v
}

/// The header lines of W4 and W5.
pub fn header() -> String {
    format!(
        "W4-W5: same threads and pinning as W1-W3. W4: 1 or {MANY} concurrent streams on one connection, each written\n    \
         in a loop ({SMALL} B writes: messages/s = bytes received / {SMALL}; 64 KiB writes: GB/s received); Weft coalesces\n    \
         the writes of a stream into frames, the baselines frame every write (same writes, same bytes counted):\n    \
         yamux 0.14 over tokio TCP (default config, frames of 16 KiB at most) and h2 0.4 over tokio TCP ({} KiB\n    \
         windows, a request stream per stream, DATA frames of 16 KiB at most). W5: 1 publisher -> server hub -> 1 or\n    \
         {MANY} subscribers ({MANY} subscriber connections, one subscription each, Wait policy: the publisher is paced\n    \
         by delivery); deliveries/s summed; NATS as the 1 -> 1 baseline (see the NATS line).\n",
        crate::baselines::h2::WINDOW >> 10
    )
}

/// The rows of the W4 / W5 benchmarks, in catalogue order: those among
/// `measured` with their figures, the skipped ones with their note.
pub fn rows(specs: &[Spec], measured: &[Measured]) -> Vec<Row> {
    let mut out = Vec::new();
    for spec in specs {
        if let Some(note) = spec.skipped() {
            for (metric, unit) in spec.metrics() {
                out.push(Row::skipped(
                    &spec.workload,
                    &spec.system,
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
        for (metric, unit) in spec.metrics() {
            let s = if unit == UNIT_GBPS {
                Spread {
                    median: m.bytes_per_sec.median * 1e-9,
                    min: m.bytes_per_sec.min * 1e-9,
                    max: m.bytes_per_sec.max * 1e-9,
                }
            } else {
                m.items_per_sec
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

/// One pass's threads.
/// A running pass: the shared server/load-generator pair of W1-W3.
type Live = super::Pass;

/// Starts W4/W5's server and load generator for `spec`.
fn start(spec: &Spec) -> Live {
    let (sys, kind) = (spec.sys, spec.kind);
    super::Pass::launch(
        &spec.name,
        move |c, addr| server(sys, kind, c, addr),
        move |c, addr, ready| client(sys, kind, c, addr, ready),
        SETUP_WAIT * 2,
    )
}

/// Stops the load and waits (bounded) for both threads to end.
fn stop(live: Live, name: &str) {
    live.ctl.stop.store(true, Ordering::SeqCst);
    live.reap(name);
}

/// A W4 / W5 benchmark as the harness drives it.
struct W45Bench {
    spec: Spec,
    live: Option<Live>,
    /// The receiving side's byte count at the previous step.
    seen: u64,
}

impl Bench for W45Bench {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn setup(&mut self) {
        self.teardown();
        let live = start(&self.spec);
        self.seen = live.ctl.bytes.load(Ordering::SeqCst);
        self.live = Some(live);
    }

    fn step(&mut self) -> Work {
        if self.live.is_none() {
            self.setup();
        }
        std::thread::sleep(STEP);
        let live = self.live.as_ref().expect("set up");
        if let Some(e) = live.ctl.failure() {
            panic!("{}: {e}", self.spec.name);
        }
        let now = live.ctl.bytes.load(Ordering::SeqCst);
        let per = self.spec.kind.item_bytes();
        let w = Work {
            items: now / per - self.seen / per,
            bytes: now - self.seen,
        };
        self.seen = now;
        w
    }

    fn teardown(&mut self) {
        if let Some(live) = self.live.take() {
            stop(live, &self.spec.name);
        }
    }
}

impl Drop for W45Bench {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Listens on an ephemeral loopback port, sends the address, accepts the
/// workload's connections and serves them until they are over.
fn server(
    sys: System,
    kind: Workload,
    ctl: Arc<Ctl>,
    addr: mpsc::SyncSender<SocketAddr>,
) -> io::Result<()> {
    let cfg = Config::default();
    let n = kind.connections();
    let rt = match sys {
        System::Weft(rt) => rt,
        System::Yamux | System::H2 => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let _ = addr.send(l.local_addr()?);
            let c = ctl.clone();
            let add = Arc::new(move |n: u64| {
                c.bytes.fetch_add(n, Ordering::Relaxed);
            });
            return if sys == System::Yamux {
                crate::baselines::yamux_w4::server(l, add, MAX_LOAD)
            } else {
                crate::baselines::h2::w4_server(l, add, MAX_LOAD)
            };
        }
        System::Nats => {
            // The broker is the server: started from this (pinned) thread, it
            // runs until the pass stops (then the guard stops it).
            let nats = crate::baselines::nats::NatsServer::start()?;
            let _ = addr.send(nats.addr);
            let deadline = Instant::now() + MAX_LOAD;
            while !ctl.stopped() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Let the client close its connections before the server goes.
            std::thread::sleep(Duration::from_millis(50));
            return Ok(());
        }
    };
    match rt {
        Runtime::Tokio => {
            let rt = weft_tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let server = weft_tokio::Server::bind("127.0.0.1:0", cfg).await?;
                let _ = addr.send(server.local_addr()?);
                let mut hs = Vec::with_capacity(n);
                for _ in 0..n {
                    hs.push(
                        bounded(server.accept(), SETUP_WAIT)
                            .await
                            .ok_or_else(|| timed_out("accept"))??,
                    );
                }
                serve(kind, hs, ctl).await;
                drop(server);
                Ok(())
            })
        }
        Runtime::Smol => {
            let ex = Arc::new(weft_smol::Executor::new());
            weft_smol::block_on(ex.run(async {
                let server =
                    weft_smol::Server::bind(([127, 0, 0, 1], 0), cfg)?.with_executor(ex.clone());
                let _ = addr.send(server.local_addr()?);
                let mut hs = Vec::with_capacity(n);
                for _ in 0..n {
                    hs.push(
                        bounded(server.accept(), SETUP_WAIT)
                            .await
                            .ok_or_else(|| timed_out("accept"))??,
                    );
                }
                serve(kind, hs, ctl).await;
                drop(server);
                Ok(())
            }))
        }
        Runtime::Mio => {
            let server = weft_mio::Server::bind("127.0.0.1:0", cfg)?;
            let _ = addr.send(server.local_addr());
            let mut hs = Vec::with_capacity(n);
            for _ in 0..n {
                hs.push(
                    server
                        .accept_timeout(SETUP_WAIT)?
                        .ok_or_else(|| timed_out("accept"))?,
                );
            }
            weft_mio::block_on(serve(kind, hs, ctl));
            server.shutdown();
            Ok(())
        }
        #[cfg(target_os = "linux")]
        Runtime::Uring => {
            let server = weft_uring::Server::bind("127.0.0.1:0", cfg)?;
            let _ = addr.send(server.local_addr());
            let mut hs = Vec::with_capacity(n);
            for _ in 0..n {
                hs.push(
                    weft_driver::block_on(bounded(server.next_connection(), SETUP_WAIT))
                        .flatten()
                        .ok_or_else(|| timed_out("accept"))?,
                );
            }
            weft_driver::block_on(serve(kind, hs, ctl));
            drop(server);
            Ok(())
        }
    }
}

/// Connects the workload's connections to `addr`, says so on `ready` once the
/// load can start, runs it until told to stop, and closes.
fn client(
    sys: System,
    kind: Workload,
    ctl: Arc<Ctl>,
    addr: SocketAddr,
    ready: mpsc::SyncSender<()>,
) -> io::Result<()> {
    let cfg = Config::default();
    let n = kind.connections();
    let rt = match sys {
        System::Weft(rt) => rt,
        System::Yamux | System::H2 => {
            let Workload::Streams { streams, write } = kind else {
                return Err(other(format!("no {sys:?} pub/sub baseline")));
            };
            let ready = move || {
                let _ = ready.send(());
            };
            return if sys == System::Yamux {
                crate::baselines::yamux_w4::client(addr, streams, write, &ctl.stop, MAX_LOAD, ready)
            } else {
                crate::baselines::h2::w4_client(addr, streams, write, &ctl.stop, MAX_LOAD, ready)
            };
        }
        System::Nats => {
            if kind != (Workload::PubSub { subscribers: 1 }) {
                return Err(other("the NATS baseline runs W5 1 -> 1 only".into()));
            }
            let c = ctl.clone();
            return crate::baselines::nats::w5_load(
                &format!("nats://{addr}"),
                MAX_LOAD,
                || ctl.stopped(),
                move |n| {
                    c.items.fetch_add(1, Ordering::Relaxed);
                    c.bytes.fetch_add(n, Ordering::Relaxed);
                },
                move || {
                    let _ = ready.send(());
                },
            );
        }
    };
    match rt {
        Runtime::Tokio => {
            let rt = weft_tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut hs = Vec::with_capacity(n);
                for _ in 0..n {
                    hs.push(
                        bounded(weft_tokio::connect(addr, cfg.clone()), SETUP_WAIT)
                            .await
                            .ok_or_else(|| timed_out("connect"))??,
                    );
                }
                load(kind, hs, ctl, ready).await
            })
        }
        Runtime::Smol => {
            let ex = weft_smol::Executor::new();
            weft_smol::block_on(ex.run(async {
                let mut hs = Vec::with_capacity(n);
                for _ in 0..n {
                    hs.push(
                        bounded(weft_smol::connect_on(addr, cfg.clone(), &ex), SETUP_WAIT)
                            .await
                            .ok_or_else(|| timed_out("connect"))??,
                    );
                }
                load(kind, hs, ctl, ready).await
            }))
        }
        Runtime::Mio => {
            let ev = weft_mio::EventLoop::new()?;
            let hs = (0..n)
                .map(|_| ev.connect(addr, cfg.clone()))
                .collect::<io::Result<Vec<_>>>()?;
            let r = weft_mio::block_on(load(kind, hs, ctl, ready));
            ev.shutdown();
            r
        }
        #[cfg(target_os = "linux")]
        Runtime::Uring => {
            let ev = weft_uring::EventLoop::new()?;
            let hs = (0..n)
                .map(|_| ev.connect(addr, cfg.clone()))
                .collect::<io::Result<Vec<_>>>()?;
            let r = weft_driver::block_on(load(kind, hs, ctl, ready));
            ev.shutdown();
            r
        }
    }
    .map_err(|e| other(format!("{rt:?} client: {e}")))
}

/// The server application: W4 reads every stream the client opens, counting
/// bytes; W5 has nothing to do (the server's hub routes the publications). Then
/// waits (bounded) for the client to close every connection.
async fn serve(kind: Workload, hs: Vec<Handle>, ctl: Arc<Ctl>) {
    let deadline = Instant::now() + MAX_LOAD;
    match kind {
        Workload::Streams { streams, write } => {
            read_streams(&hs[0], streams, write, &ctl).await;
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = bounded(hs[0].closed(), left).await;
        }
        Workload::PubSub { .. } => {
            // Until the client closed everything, or the pass is over (then the
            // caller shuts the connections down: see `load`).
            let mut quit = None;
            while Instant::now() < deadline {
                let all = futures::future::join_all(hs.iter().map(|h| h.closed()));
                if bounded(all, Duration::from_millis(50)).await.is_some() {
                    break;
                }
                if ctl.stopped() {
                    let q = *quit.get_or_insert_with(|| Instant::now() + QUIT_WAIT);
                    if Instant::now() > q {
                        break;
                    }
                }
            }
        }
    }
}

/// Accepts `n` streams on `h` and reads them all (concurrently) to their end.
async fn read_streams(h: &Handle, n: usize, chunk: usize, ctl: &Ctl) {
    async fn read_one(mut s: WeftStream, chunk: usize, ctl: &Ctl) {
        let mut buf = vec![0u8; chunk.max(16 << 10)];
        loop {
            match poll_fn(|cx| s.poll_read(cx, &mut buf)).await {
                Ok(0) => break,
                Ok(k) => {
                    ctl.bytes.fetch_add(k as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    ctl.fail(format!("server: stream read: {e}"));
                    break;
                }
            }
        }
    }
    let deadline = Instant::now() + SETUP_WAIT;
    let mut readers = FuturesUnordered::new();
    let mut accepted = 0;
    let mut accept = h.accept_stream();
    poll_fn(|cx| {
        while accepted < n {
            match Pin::new(&mut accept).poll(cx) {
                Poll::Ready(Some(s)) => {
                    readers.push(read_one(s, chunk, ctl));
                    accepted += 1;
                    accept = h.accept_stream();
                }
                Poll::Ready(None) => {
                    ctl.fail(format!("server: closed after {accepted} of {n} streams"));
                    accepted = n;
                }
                Poll::Pending => {
                    if Instant::now() > deadline {
                        ctl.fail(format!("server: {accepted} of {n} streams opened in time"));
                        accepted = n;
                    }
                    break;
                }
            }
        }
        loop {
            match readers.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) if accepted >= n => return Poll::Ready(()),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// The load generator: waits for every handshake, runs the workload until
/// [`Ctl::stop`] (or [`MAX_LOAD`]), then closes every connection (bounded).
async fn load(
    kind: Workload,
    hs: Vec<Handle>,
    ctl: Arc<Ctl>,
    ready: mpsc::SyncSender<()>,
) -> io::Result<()> {
    for h in &hs {
        match bounded(h.connected(), SETUP_WAIT).await {
            Some(Ok(())) => {}
            Some(Err(info)) => return Err(other(format!("handshake failed: {info:?}"))),
            None => return Err(other("handshake timed out".into())),
        }
    }
    let deadline = Instant::now() + MAX_LOAD;
    let running = |rounds: &mut u32| {
        *rounds = rounds.wrapping_add(1);
        !ctl.stopped() && (*rounds % 256 != 0 || Instant::now() < deadline)
    };
    match kind {
        Workload::Streams { streams, write } => {
            let mut ss = Vec::with_capacity(streams);
            for _ in 0..streams {
                ss.push(
                    hs[0]
                        .open_stream()
                        .map_err(|e| other(format!("open_stream: {e}")))?,
                );
            }
            let _ = ready.send(());
            let chunk = pattern(write);
            let writers: FuturesUnordered<_> = ss
                .into_iter()
                .map(|mut s| {
                    let (chunk, ctl) = (&chunk, &ctl);
                    async move {
                        let mut rounds = 0;
                        'outer: while running(&mut rounds) {
                            let mut off = 0;
                            while off < chunk.len() {
                                match poll_fn(|cx| s.poll_write(cx, &chunk[off..])).await {
                                    Ok(k) => off += k,
                                    Err(e) => {
                                        ctl.fail(format!("client: stream write: {e}"));
                                        break 'outer;
                                    }
                                }
                            }
                        }
                        let _ = s.finish();
                    }
                })
                .collect();
            writers.collect::<Vec<()>>().await;
        }
        Workload::PubSub { .. } => {
            let (publisher, subscribers) = hs.split_first().expect("a publisher");
            let mut subs = Vec::with_capacity(subscribers.len());
            for h in subscribers {
                subs.push(
                    h.subscribe(TOPIC, None, OverflowPolicy::Wait)
                        .await
                        .map_err(|e| other(format!("subscribe: {e}")))?,
                );
            }
            let live = std::sync::atomic::AtomicUsize::new(0);
            let total = subs.len();
            let receivers: FuturesUnordered<_> = subs
                .into_iter()
                .map(|mut sub| {
                    let (ctl, live) = (&ctl, &live);
                    async move {
                        let mut first = true;
                        while let Some(d) = sub.next_delivery().await {
                            if first {
                                first = false;
                                live.fetch_add(1, Ordering::Relaxed);
                            }
                            ctl.items.fetch_add(1, Ordering::Relaxed);
                            ctl.bytes
                                .fetch_add(d.payload.len() as u64, Ordering::Relaxed);
                        }
                    }
                })
                .collect();
            let publish = async {
                let p = pattern(SMALL);
                let mut rounds = 0;
                let mut ready = Some(ready);
                // Ready (the warm-up starts) once every subscription has seen a
                // message: the hub knows them all.
                let setup_deadline = Instant::now() + SETUP_WAIT;
                while running(&mut rounds) {
                    if let Err(e) = publisher.publish(TOPIC, &p).await {
                        ctl.fail(format!("client: publish: {e}"));
                        break;
                    }
                    if ready.is_some() && rounds % 64 == 0 {
                        if live.load(Ordering::Relaxed) == total {
                            let _ = ready.take().map(|r| r.send(()));
                        } else if Instant::now() > setup_deadline {
                            ctl.fail("client: subscriptions not live in time".into());
                            break;
                        }
                    }
                }
            };
            // The receivers only end with their connections: stop with the
            // publisher (dropping them unsubscribes).
            let receivers = receivers.collect::<Vec<()>>();
            futures::future::select(pin!(publish), receivers).await;
        }
    }
    for h in &hs {
        h.close(ErrorCode::NO_ERROR, "");
    }
    // W5: what is still in flight (the publisher's backlog, fanned out to 100
    // subscribers) is not worth draining after the window; the caller shuts
    // the connections down after a short wait.
    let wait = match kind {
        Workload::Streams { .. } => CLOSE_WAIT,
        Workload::PubSub { .. } => QUIT_WAIT,
    };
    let deadline = Instant::now() + wait;
    for h in &hs {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = bounded(h.closed(), left).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_metrics() {
        let c = catalog();
        let mut names: Vec<_> = c.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), c.len());
        for n in [
            "w4/streams-1-64B/tokio",
            "w4/streams-100-64KiB/mio",
            "w4/streams-100-64B/yamux",
            "w4/streams-100-64KiB/h2",
            "w4/streams-1-64B/h2",
            "w5/pubsub-1to1-64B/nats",
            "w5/pubsub-1to100-64B/smol",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
        // Distinct (workload, metric, unit) per case: ratios never mix 1 and 100.
        let mut keys: Vec<_> = Workload::ALL
            .iter()
            .map(|k| (k.label(), k.metric()))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Workload::ALL.len());
    }
}
