//! A minimal std-thread [`Runtime`], **infrastructure for validating the catalogue
//! only**: it lets the scenarios run (and be checked) without any of the four real
//! adapters. It is not an adapter, not tuned, and not part of the interop matrix.
//!
//! Each connection gets a reader thread (blocking reads with a short read timeout,
//! feeding [`Driver::handle_input`]) and a writer thread (transmitting, firing
//! timers), woken by the core's driver [`Waker`] through a condition variable.
//! Server connections also get an application thread running the app future with
//! [`weft_driver::block_on`]. After the connection is finished the writer
//! half-closes the socket and the reader drains input until the peer's end of
//! stream or `Config::linger` (a lingering close, PROTOCOL.md 15.5), so a final
//! CLOSE is not destroyed by a TCP reset; then the socket is closed.

use crate::{App, BoxFuture, Runtime, TestServer};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_core::router::RouterConfig;
use weft_core::{Config, Role};
use weft_driver::{self as driver, Driver, Hub};

/// The std-thread test runtime (see the module docs: validation infrastructure).
#[derive(Debug, Default)]
pub struct Threads;

impl Threads {
    /// The runtime.
    pub fn new() -> Self {
        Threads
    }
}

/// Wake-up flags for the reader (`.0`) and the writer (`.1`) of one connection.
#[derive(Default)]
struct Notify {
    flags: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Notify {
    fn lock(&self) -> std::sync::MutexGuard<'_, (bool, bool)> {
        self.flags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake_both(&self) {
        let mut f = self.lock();
        *f = (true, true);
        self.cv.notify_all();
    }

    fn wake_writer(&self) {
        self.lock().1 = true;
        self.cv.notify_all();
    }

    /// Waits until `pick` is set (clearing it) or `dur` passed.
    fn wait(&self, writer: bool, dur: Duration) {
        let end = Instant::now() + dur;
        let mut f = self.lock();
        loop {
            let flag = if writer { &mut f.1 } else { &mut f.0 };
            if *flag {
                *flag = false;
                return;
            }
            let now = Instant::now();
            if now >= end {
                return;
            }
            f = self
                .cv
                .wait_timeout(f, end - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

struct NotifyWaker(Arc<Notify>);

impl Wake for NotifyWaker {
    fn wake(self: Arc<Self>) {
        self.0.wake_both();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_both();
    }
}

fn lock(d: &Mutex<Driver>) -> std::sync::MutexGuard<'_, Driver> {
    d.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection's handle, its two I/O threads, and its socket while they use it
/// (it is closed when both have ended).
type Conn = (weft_driver::Handle, Vec<JoinHandle<()>>, Weak<TcpStream>);

/// Runs one connection on `sock`.
fn spawn_conn(
    sock: TcpStream,
    role: Role,
    config: Config,
    hub: Option<&Arc<Hub>>,
) -> std::io::Result<Conn> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let linger = config.linger;
    let (mut drv, handle) = driver::connect(role, config, driver::os_seed());
    if let Ok(p) = sock.peer_addr() {
        drv.set_peer_addr(p);
    }
    if let Some(h) = hub {
        h.attach(&mut drv);
    }
    let drv = Arc::new(Mutex::new(drv));
    let notify = Arc::new(Notify::default());
    let waker = Waker::from(Arc::new(NotifyWaker(notify.clone())));
    let writer_done = Arc::new(AtomicBool::new(false));

    let sock = Arc::new(sock);
    let weak = Arc::downgrade(&sock);
    let rsock = sock.clone();
    let (rd, rn, rw, rdone) = (
        drv.clone(),
        notify.clone(),
        waker.clone(),
        writer_done.clone(),
    );
    let reader = std::thread::Builder::new()
        .name("weft-test-reader".into())
        .spawn(move || reader_loop(&rsock, &rd, &rn, &rw, &rdone, linger))?;

    let writer = std::thread::Builder::new()
        .name("weft-test-writer".into())
        .spawn(move || writer_loop(&sock, &drv, &notify, &waker, &writer_done))?;
    Ok((handle, vec![reader, writer], weak))
}

fn reader_loop(
    mut sock: &TcpStream,
    drv: &Mutex<Driver>,
    notify: &Notify,
    waker: &Waker,
    writer_done: &AtomicBool,
    linger: Duration,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut pending: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut lingering: Option<Instant> = None;
    loop {
        if writer_done.load(Ordering::SeqCst) {
            let t = *lingering.get_or_insert_with(Instant::now);
            if t.elapsed() > linger {
                break;
            }
        }
        if start == pending.len() {
            pending.clear();
            start = 0;
            match sock.read(&mut buf) {
                Ok(0) => {
                    lock(drv).handle_eof();
                    notify.wake_writer();
                    break;
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    lock(drv).handle_eof();
                    notify.wake_writer();
                    break;
                }
            }
        }
        let taken = {
            let mut d = lock(drv);
            d.register(waker);
            d.handle_input(&pending[start..])
        };
        start += taken;
        notify.wake_writer();
        if start < pending.len() {
            // The application is behind: wait for the driver waker (bounded).
            notify.wait(false, Duration::from_millis(20));
        }
    }
}

fn writer_loop(
    mut sock: &TcpStream,
    drv: &Mutex<Driver>,
    notify: &Notify,
    waker: &Waker,
    writer_done: &AtomicBool,
) {
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let (n, finished, deadline) = {
            let mut d = lock(drv);
            d.register(waker);
            d.handle_timeout();
            let n = d.poll_transmit(&mut buf);
            (n, d.is_finished(), d.poll_timeout())
        };
        if n > 0 {
            if sock.write_all(&buf[..n]).is_err() {
                lock(drv).handle_eof();
                break;
            }
            continue;
        }
        if finished {
            break;
        }
        let wait = deadline.map_or(Duration::from_millis(200), |t| {
            t.saturating_duration_since(Instant::now())
        });
        if !wait.is_zero() {
            notify.wait(true, wait.min(Duration::from_millis(200)));
        }
    }
    let _ = sock.flush();
    let _ = sock.shutdown(Shutdown::Write);
    writer_done.store(true, Ordering::SeqCst);
}

impl Runtime for Threads {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn start_server(&self, config: Config, app: App) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let hub = Hub::new(RouterConfig::default());
        let stop = Arc::new(AtomicBool::new(false));
        type Conns = Vec<(Weak<TcpStream>, Vec<JoinHandle<()>>)>;
        let conns: Arc<Mutex<Conns>> = Arc::new(Mutex::new(Vec::new()));
        let (astop, aconns) = (stop.clone(), conns.clone());
        let acceptor = std::thread::Builder::new()
            .name("weft-test-accept".into())
            .spawn(move || {
                for s in listener.incoming() {
                    if astop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    let Ok((h, mut threads, keep)) =
                        spawn_conn(s, Role::Server, config.clone(), Some(&hub))
                    else {
                        continue;
                    };
                    let app = app.clone();
                    if let Ok(t) = std::thread::Builder::new()
                        .name("weft-test-app".into())
                        .spawn(move || driver::block_on(app(h)))
                    {
                        threads.push(t);
                    }
                    aconns
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((keep, threads));
                }
            })?;
        let stop_fn = move || {
            stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(addr);
            let _ = acceptor.join();
            let all: Conns = std::mem::take(
                &mut *conns
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for s in all.iter().filter_map(|(s, _)| s.upgrade()) {
                let _ = s.shutdown(Shutdown::Both);
            }
            for (_, threads) in all {
                for t in threads {
                    let _ = t.join();
                }
            }
        };
        Ok(TestServer {
            addr,
            stop: Box::new(stop_fn),
        })
    }

    fn connect(&self, addr: SocketAddr, config: Config) -> std::io::Result<weft_driver::Handle> {
        let sock = TcpStream::connect(addr)?;
        let (h, _threads, _) = spawn_conn(sock, Role::Client, config, None)?;
        Ok(h)
    }

    fn block_on(&self, fut: BoxFuture<'_, ()>) {
        driver::block_on(fut);
    }
}
