//! Many connections: the server side (any adapter, every accepted connection
//! served until stopped) and the client side (one weft-mio event loop hosting
//! them all), plus the hidden child-process subcommand that runs either side in a
//! process of its own and talks to the benchmark over stdin/stdout lines.

use crate::net::{pinning, Runtime};
use core_affinity::CoreId;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_core::conn::Outcome;
use weft_core::{Config, ErrorCode};
use weft_driver::Handle;

/// The hidden subcommand (first argument) that runs a child side.
pub const CHILD_ARG: &str = "__w67-child";
/// Payload of W6 requests and replies.
pub const SMALL: usize = 64;
/// Deadline the core puts on every W6 request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a child's answer (establishing 10,000 connections included).
pub const CHILD_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for a child or a server thread to end once told to.
const END_WAIT: Duration = Duration::from_secs(15);

/// Shared state of a many-connection side: a stop flag that wakes waiting
/// futures, and counters.
#[derive(Default)]
pub struct Fleet {
    stop: AtomicBool,
    wakers: Mutex<HashMap<u64, Waker>>,
    next_waker: AtomicU64,
    /// Connections whose handshake completed.
    pub connected: AtomicU64,
    /// Requests answered (server) or completed (client).
    pub items: AtomicU64,
    /// Client: round-trip times (ns) are kept while set.
    pub recording: AtomicBool,
    /// Client: the kept round-trip times.
    pub rtts: Mutex<Vec<u64>>,
    /// The first failure.
    pub error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fleet {
    /// Whether [`Fleet::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sets the stop flag and wakes every future waiting in [`Fleet::or_stop`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = lock(&self.wakers).drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }

    /// Records the first failure (none once stopping).
    pub fn fail(&self, what: String) {
        if !self.stopped() {
            lock(&self.error).get_or_insert(what);
        }
    }

    /// The first failure.
    pub fn failure(&self) -> Option<String> {
        lock(&self.error).clone()
    }

    /// `fut`, or `None` once the fleet is stopped. The task's waker is registered
    /// once (updated if it changes) and removed when this future ends.
    pub async fn or_stop<F: Future>(&self, fut: F) -> Option<F::Output> {
        struct Unregister<'a>(&'a Fleet, u64);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                lock(&self.0.wakers).remove(&self.1);
            }
        }
        let id = self.next_waker.fetch_add(1, Ordering::Relaxed);
        let _unregister = Unregister(self, id);
        let mut fut = pin!(fut);
        let mut registered: Option<Waker> = None;
        poll_fn(|cx| {
            if self.stopped() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            if registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                lock(&self.wakers).insert(id, cx.waker().clone());
                registered = Some(cx.waker().clone());
                if self.stopped() {
                    return Poll::Ready(None);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// One accepted server connection: counts its handshake, then echoes requests
/// (counting them) or, idle, waits for the close.
async fn serve_conn(h: Handle, fleet: Arc<Fleet>, echo: bool) {
    match fleet.or_stop(h.connected()).await {
        Some(Ok(())) => {
            fleet.connected.fetch_add(1, Ordering::SeqCst);
        }
        _ => return,
    }
    if echo {
        let f = fleet.clone();
        fleet
            .or_stop(h.serve(|subject, payload| match subject {
                b"echo" => {
                    f.items.fetch_add(1, Ordering::Relaxed);
                    Ok(payload.to_vec())
                }
                _ => Err((404, "no such subject".into())),
            }))
            .await;
    } else {
        fleet.or_stop(h.closed()).await;
    }
}

/// Listens on an ephemeral loopback port with `rt`, sends the address on `addr`,
/// and serves every connection until `fleet` is stopped, in the calling thread
/// (threads the adapter starts inherit its pinning).
pub fn serve_many(
    rt: Runtime,
    fleet: Arc<Fleet>,
    echo: bool,
    addr: mpsc::SyncSender<SocketAddr>,
) -> io::Result<()> {
    let cfg = Config::default();
    match rt {
        Runtime::Tokio => {
            let rt = weft_tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let server = weft_tokio::Server::bind("127.0.0.1:0", cfg).await?;
                let _ = addr.send(server.local_addr()?);
                while let Some(r) = fleet.or_stop(server.accept()).await {
                    tokio::spawn(serve_conn(r?, fleet.clone(), echo));
                }
                Ok::<_, io::Error>(())
            })?;
            // Dropping the runtime drops every connection's task.
            drop(rt);
            Ok(())
        }
        Runtime::Smol => {
            let ex = Arc::new(weft_smol::Executor::new());
            weft_smol::block_on(ex.run(async {
                let server =
                    weft_smol::Server::bind(([127, 0, 0, 1], 0), cfg)?.with_executor(ex.clone());
                let _ = addr.send(server.local_addr()?);
                while let Some(r) = fleet.or_stop(server.accept()).await {
                    ex.spawn(serve_conn(r?, fleet.clone(), echo)).detach();
                }
                server.abort_connections().await;
                Ok::<_, io::Error>(())
            }))
        }
        Runtime::Mio => {
            let server = weft_mio::Server::bind_with(
                "127.0.0.1:0",
                cfg,
                weft_mio::ServerOptions {
                    accept_queue: 16 << 10,
                    ..Default::default()
                },
            )?;
            let _ = addr.send(server.local_addr());
            let exec = weft_mio::Executor::new(1)?;
            while !fleet.stopped() {
                if let Some(h) = server.accept_timeout(Duration::from_millis(50))? {
                    exec.spawn(serve_conn(h, fleet.clone(), echo));
                }
            }
            server.shutdown();
            exec.shutdown();
            Ok(())
        }
        #[cfg(target_os = "linux")]
        Runtime::Uring => {
            let server = weft_uring::Server::bind("127.0.0.1:0", cfg)?;
            let _ = addr.send(server.local_addr());
            let exec = weft_uring::Executor::new(1)?;
            while let Some(Some(h)) = weft_driver::block_on(fleet.or_stop(server.next_connection()))
            {
                exec.spawn(serve_conn(h, fleet.clone(), echo));
            }
            drop(server);
            exec.shutdown();
            Ok(())
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// A client connection's load: sequential echo requests until stopped.
async fn request_loop(h: Handle, fleet: Arc<Fleet>) {
    let p = pattern(SMALL);
    while !fleet.stopped() {
        let t = Instant::now();
        match h.request(b"echo", &p, Some(REQUEST_TIMEOUT)).await {
            Ok(r) if r.outcome == Outcome::Ok && r.payload.len() == SMALL => {
                let ns = t.elapsed().as_nanos() as u64;
                fleet.items.fetch_add(1, Ordering::Relaxed);
                if fleet.recording.load(Ordering::Relaxed) {
                    lock(&fleet.rtts).push(ns);
                }
            }
            Ok(r) => {
                fleet.fail(format!("echo answered {:?}", r.outcome));
                break;
            }
            Err(e) => {
                fleet.fail(format!("request: {e}"));
                break;
            }
        }
    }
}

/// Most client connections being set up at once (TCP connected, Weft handshake
/// not yet answered). A connection whose handshake was answered has been
/// accepted, so the server's kernel accept queue never holds more than this:
/// below the listen backlog of every adapter's listener (128: std, mio, tokio and
/// async-io all listen with it; `somaxconn` can only lower it). When that queue
/// overflows the kernel drops the SYN and the blocking connect stalls for the
/// 1 s SYN retransmission timeout: that made 10,000 connections take 35-60 s.
pub const CONNECT_WINDOW: usize = 64;

/// `n` client connections to `addr` on one weft-mio event loop, each waited for
/// (bounded). They are opened one after the other while at most
/// [`CONNECT_WINDOW`] handshakes are outstanding (the loop runs the handshakes
/// meanwhile). With `echo`, each runs sequential requests on `exec`.
pub struct Clients {
    ev: weft_mio::EventLoop,
    handles: Vec<Handle>,
    exec: Option<weft_mio::Executor>,
    /// Their counters and stop flag.
    pub fleet: Arc<Fleet>,
}

impl Clients {
    /// Connects `n` clients and waits for their handshakes.
    pub fn connect(addr: SocketAddr, n: usize, echo: bool) -> io::Result<Clients> {
        let ev = weft_mio::EventLoop::new()?;
        let fleet = Arc::new(Fleet::default());
        let mut handles = Vec::with_capacity(n);
        let mut c = Clients {
            ev,
            handles: Vec::new(),
            exec: None,
            fleet,
        };
        let deadline = Instant::now() + CHILD_WAIT;
        // Waits for the handshake of handles[i] (they complete about in order:
        // the server accepts first come, first served).
        let handshake = |i: usize, h: &Handle| {
            let left = deadline.saturating_duration_since(Instant::now());
            match weft_mio::block_on_timeout(h.connected(), left) {
                Some(Ok(())) => Ok(()),
                Some(Err(info)) => {
                    Err(io::Error::other(format!("handshake #{i} of {n}: {info:?}")))
                }
                None => Err(io::Error::other(format!(
                    "handshakes timed out ({i} of {n} done)"
                ))),
            }
        };
        let mut done = 0;
        for i in 0..n {
            if i - done >= CONNECT_WINDOW {
                handshake(done, &handles[done])?;
                done += 1;
            }
            let h =
                c.ev.connect(addr, Config::default())
                    .map_err(|e| io::Error::new(e.kind(), format!("connect #{i} of {n}: {e}")))?;
            handles.push(h);
        }
        for (i, h) in handles.iter().enumerate().skip(done) {
            handshake(i, h)?;
        }
        if echo {
            let exec = weft_mio::Executor::new(1)?;
            for h in &handles {
                exec.spawn(request_loop(h.clone(), c.fleet.clone()));
            }
            c.exec = Some(exec);
        }
        c.handles = handles;
        Ok(c)
    }

    /// Stops the load, drops the connections and the loop.
    pub fn shutdown(mut self) {
        self.fleet.stop();
        if let Some(e) = self.exec.take() {
            e.shutdown();
        }
        for h in &self.handles {
            h.close(ErrorCode::NO_ERROR, "");
        }
        self.handles.clear();
        self.ev.shutdown();
    }
}

/// The process's resident set size in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn pin_to(cpu: Option<usize>) {
    if let Some(id) = cpu {
        let _ = core_affinity::set_for_current(CoreId { id });
    }
}

fn parse_cpu(s: &str) -> Option<usize> {
    s.parse().ok()
}

/// Runs the child side named by the arguments after [`CHILD_ARG`]:
///
/// - `clients ADDR N echo|idle CPU`: connects, prints `ready`, then answers
///   `window` (start keeping round-trip times), `stats` (`stats P50_US P99_US
///   COUNT` of the kept times) and `stop` (or end of input: exits);
/// - `server RT CPU`: serves idle connections, prints `addr ADDR`, then answers
///   `rss` (`rss KIB`), `count` (`count CONNECTED`) and `stop`.
///
/// CPU `-` means unpinned.
pub fn child(args: &[String]) -> Result<(), String> {
    let out = &mut io::stdout().lock();
    let mut say = |s: String| -> Result<(), String> {
        writeln!(out, "{s}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    let mut lines = io::stdin().lock().lines();
    match args {
        [role, addr, n, mode, cpu] if role == "clients" => {
            pin_to(parse_cpu(cpu));
            let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            let c = Clients::connect(addr, n, mode == "echo").map_err(|e| e.to_string())?;
            say("ready".into())?;
            while let Some(Ok(l)) = lines.next() {
                match l.trim() {
                    "window" => {
                        lock(&c.fleet.rtts).clear();
                        c.fleet.recording.store(true, Ordering::SeqCst);
                    }
                    "stats" => {
                        c.fleet.recording.store(false, Ordering::SeqCst);
                        if let Some(e) = c.fleet.failure() {
                            return Err(e);
                        }
                        let mut v = std::mem::take(&mut *lock(&c.fleet.rtts));
                        v.sort_unstable();
                        let [p50, p99] = [0.5, 0.99].map(|q| percentile_us(&v, q));
                        say(format!("stats {p50} {p99} {}", v.len()))?;
                    }
                    _ => break,
                }
            }
            c.shutdown();
            Ok(())
        }
        [role, rt, cpu] if role == "server" => {
            pin_to(parse_cpu(cpu));
            let rt = Runtime::all()
                .into_iter()
                .find(|r| r.name() == rt)
                .ok_or_else(|| format!("no runtime {rt}"))?;
            let fleet = Arc::new(Fleet::default());
            let (tx, rx) = mpsc::sync_channel(1);
            let f = fleet.clone();
            let server = std::thread::spawn(move || {
                if let Err(e) = serve_many(rt, f.clone(), false, tx) {
                    f.fail(format!("server: {e}"));
                }
            });
            let addr = rx
                .recv_timeout(CHILD_WAIT)
                .map_err(|_| format!("server did not start: {:?}", fleet.failure()))?;
            say(format!("addr {addr}"))?;
            while let Some(Ok(l)) = lines.next() {
                match l.trim() {
                    "rss" => say(format!("rss {}", rss_kib().unwrap_or(0)))?,
                    "count" => say(format!("count {}", fleet.connected.load(Ordering::SeqCst)))?,
                    _ => break,
                }
            }
            fleet.stop();
            // The process exits right after: a stuck server thread cannot hang it.
            let (dtx, drx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = server.join();
                let _ = dtx.send(());
            });
            let _ = drx.recv_timeout(END_WAIT);
            Ok(())
        }
        _ => Err(format!("bad child arguments {args:?}")),
    }
}

/// Nearest-rank percentile `q` of sorted nanoseconds, in microseconds (0 if empty).
pub fn percentile_us(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1e3
}

/// The benchmark binary: this executable when it is `weft-benches`, else (a test
/// binary in `target/*/deps`) the `weft-benches` beside or above it.
fn bench_exe() -> io::Result<std::path::PathBuf> {
    let me = std::env::current_exe()?;
    let name = format!("weft-benches{}", std::env::consts::EXE_SUFFIX);
    if me.file_name().is_some_and(|f| f.to_str() == Some(&name)) {
        return Ok(me);
    }
    let mut dir = me.parent();
    for _ in 0..2 {
        if let Some(d) = dir {
            let p = d.join(&name);
            if p.is_file() {
                return Ok(p);
            }
            dir = d.parent();
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no {name} binary near {}", me.display()),
    ))
}

/// A child process running one side; killed and reaped when dropped (bounded).
pub struct ChildProc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    what: String,
}

impl ChildProc {
    /// Starts `weft-benches __w67-child ARGS...` and waits (bounded) for its
    /// first line.
    pub fn start(args: &[String]) -> Result<(ChildProc, String), String> {
        let exe = bench_exe().map_err(|e| e.to_string())?;
        let what = format!("child {}", args.join(" "));
        let mut child = Command::new(exe)
            .arg(CHILD_ARG)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{what}: spawn: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in io::BufReader::new(stdout).lines() {
                match l {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let mut c = ChildProc {
            child,
            stdin,
            lines,
            reader: Some(reader),
            what,
        };
        let first = c.recv()?;
        Ok((c, first))
    }

    /// The next line, waiting at most [`CHILD_WAIT`].
    pub fn recv(&mut self) -> Result<String, String> {
        self.lines.recv_timeout(CHILD_WAIT).map_err(|e| {
            let status = self.child.try_wait().ok().flatten();
            format!("{}: no answer ({e:?}; exit status {status:?})", self.what)
        })
    }

    /// Sends a command line.
    pub fn send(&mut self, cmd: &str) -> Result<(), String> {
        let w = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(w, "{cmd}")
            .and_then(|()| w.flush())
            .map_err(|e| format!("{}: send {cmd}: {e}", self.what))
    }

    /// Sends `cmd` and returns the answer's fields after the expected `word`.
    pub fn ask(&mut self, cmd: &str, word: &str) -> Result<Vec<f64>, String> {
        self.send(cmd)?;
        let l = self.recv()?;
        let mut it = l.split_whitespace();
        if it.next() != Some(word) {
            return Err(format!("{}: unexpected answer {l:?} to {cmd}", self.what));
        }
        it.map(|f| f.parse::<f64>().map_err(|e| format!("{l:?}: {e}")))
            .collect()
    }

    /// Tells the child to stop, waits for it (bounded), kills it if it lingers.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(mut w) = self.stdin.take() {
            let _ = writeln!(w, "stop");
            drop(w); // end of input also stops it
        }
        let deadline = Instant::now() + END_WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    eprintln!("weft-benches: {} did not exit; killed", self.what);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.end();
    }
}

/// The load-generator CPU, as a child argument (`-` when unpinned).
pub fn load_cpu_arg() -> String {
    pinning().map_or("-".into(), |(_, l)| l.id.to_string())
}

/// The server CPU, as a child argument (`-` when unpinned).
pub fn server_cpu_arg() -> String {
    pinning().map_or("-".into(), |(s, _)| s.id.to_string())
}
