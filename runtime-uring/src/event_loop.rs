//! The event loop: one thread, one ring, any number of connections and listeners.
//!
//! An idle connection owns no buffer. Its pending `Recv` picks a buffer from the
//! ring's pool of provided buffers only when data arrives (shared by all the
//! loop's connections; the pool grows, up to [`POOL_MAX`], when a receive finds it
//! empty, and that receive is submitted again). The bytes are offered to the
//! driver straight from the pool buffer, which then goes back to the pool; bytes
//! the driver does not take (the application is behind) are copied into a buffer
//! the connection keeps, and no new `Recv` is submitted until it took them all
//! (it wakes the loop when the application caught up). A kept buffer is given up
//! after a whole period of the connection's timer without a backlog. Without
//! buffer rings (Linux before 5.19) each connection receives into a buffer of its
//! own instead, allocated at its first receive.
//!
//! Bytes from `poll_transmit` fill a send buffer taken from the loop's spares and
//! go out in one `Send`, continued from the offset after a partial send; the
//! buffer returns to the spares when all of it was sent. Spares that were not
//! needed for a whole [`SPARE_PERIOD`] are freed, so a steady load reuses the
//! same buffers and never allocates per message.
//!
//! While a `Recv` or `Send` is in flight its memory belongs to the [`Ring`], which
//! hands it back with the completion; the loop never touches a buffer the kernel
//! may be using. One `Timeout` operation stands for the earliest deadline of all
//! connections and is replaced when that changes.
//!
//! Wake-ups from other threads (application commands, new connections, stop) go
//! through a Unix socket pair: the loop keeps a `Recv` pending on one end, and a
//! waker records the connection's id in a shared list and writes one byte to the
//! other end (only when no byte is already on its way).

use crate::ring::{Done, Kind, OpId, PoolSize, Ring};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_core::{Config, Role};
use weft_driver::{self as driver, Driver, Handle, Hub};

/// Bytes of one receive (a pool buffer, a kept backlog, or a connection's own
/// buffer without a pool): the driver buffers at most one record ahead.
const RECV_BUF: usize = 64 * 1024;
/// Pool buffers provided at the start: a single busy connection cycles through
/// few buffers, which stay warm in the cache.
const POOL_INITIAL: usize = 2;
/// Bytes of the receive a connection makes with a buffer of its own after the
/// pool ran dry on it.
const STARVED_RECV_BUF: usize = 4 * 1024;
/// Pool buffers at most (16 MiB of [`RECV_BUF`]s, reached only under load):
/// receives completing at once beyond that many wait for the next turn of the
/// loop. 64 starved some of 1,000 busy connections (W6 p99 over 200 ms); 256
/// keeps W6 at 1,000 clients level with the other runtimes.
const POOL_MAX: usize = 256;
/// Bytes of one send: at least one maximal record (65 543 bytes) and then some,
/// so that a burst of small frames goes out in one `Send`.
const SEND_BUF: usize = 128 * 1024;
/// A spare send buffer not needed for this long is freed.
const SPARE_PERIOD: Duration = Duration::from_secs(1);
/// Submission-queue entries (the completion queue has four times as many).
const RING_ENTRIES: u32 = 256;
/// Back-off before accepting again after a resource error (`EMFILE` …).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long a stopping loop waits for the kernel to finish cancelled operations
/// before it gives up on them (their buffers are then leaked, never freed).
const TEARDOWN_LIMIT: Duration = Duration::from_secs(2);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an operation in the ring belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Wake,
    Timer,
    Guard,
    Conn(u64),
    Listener(u64),
}

/// Called on the loop's thread with the handle of each accepted connection.
pub(crate) type OnConnection = Box<dyn FnMut(Handle) + Send>;

enum Command {
    Add(TcpStream, Driver),
    Listen(Box<Listener>),
    /// Stop listening, and stop once every connection has finished.
    StopWhenIdle,
    /// Stop now: every connection is dropped.
    StopNow,
    /// Tests: report the loop's buffers.
    #[cfg(test)]
    Probe(std::sync::mpsc::Sender<Probe>),
    /// Tests: report the loop's buffers as soon as some connection keeps input
    /// (bytes received that its driver did not take), at once if one does now.
    #[cfg(test)]
    ProbeWhenKept(std::sync::mpsc::Sender<Probe>),
    /// Tests: every connection's timer period ends (as if its timer fired).
    #[cfg(test)]
    TimerPeriod,
    /// Tests: the spares' trim period ends.
    #[cfg(test)]
    Trim,
}

/// Tests: what buffers a loop holds.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
struct Probe {
    pool: Option<usize>,
    spares: usize,
    /// Connections keeping a backlog buffer, and the bytes waiting in them.
    kept: usize,
    waiting: usize,
    /// Receives that found the pool empty so far.
    starved: u64,
}

/// What other threads share with the loop.
struct Notify {
    tx: UnixStream,
    /// A byte is on its way (or the loop is awake and will look at the lists).
    flagged: AtomicBool,
    ready: Mutex<Vec<u64>>,
    commands: Mutex<Vec<Command>>,
}

impl Notify {
    fn kick(&self) {
        if !self.flagged.swap(true, Ordering::SeqCst) {
            // The socket is non-blocking: if it were full, a byte would be pending.
            let _ = (&self.tx).write(&[1]);
        }
    }

    fn command(&self, c: Command) {
        lock(&self.commands).push(c);
        self.kick();
    }
}

/// The waker the loop registers with each connection's driver.
struct ConnWake {
    notify: Arc<Notify>,
    id: u64,
    queued: AtomicBool,
}

impl Wake for ConnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            lock(&self.notify.ready).push(self.id);
            self.notify.kick();
        }
    }
}

/// A thread running one io_uring event loop, hosting any number of connections.
///
/// [`connect`](Self::connect) adds client connections; [`Server`](crate::Server)
/// runs its listener and accepted connections on a loop of its own. Dropping the
/// loop lets it wind down: it stops listening and its thread exits by itself once
/// every connection has finished (its handles dropped and the close completed, or
/// the peer gone). [`shutdown`](Self::shutdown) stops at once instead.
pub struct EventLoop {
    notify: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventLoop").finish_non_exhaustive()
    }
}

impl EventLoop {
    /// Sets up a ring and starts the loop's thread. Fails with an error for which
    /// [`is_unavailable`](crate::is_unavailable) holds when the kernel offers no
    /// io_uring.
    pub fn new() -> io::Result<EventLoop> {
        EventLoop::start(true)
    }

    /// A loop whose receives use the ring's buffer pool if `pool` (and the kernel
    /// has buffer rings), else buffers of each connection's own.
    fn start(pool: bool) -> io::Result<EventLoop> {
        EventLoop::start_sized(pool.then_some((POOL_INITIAL, POOL_MAX)))
    }

    /// A loop with a pool of `(initial, max)` buffers, or none.
    fn start_sized(pool: Option<(usize, usize)>) -> io::Result<EventLoop> {
        let pool = pool.map(|(initial, max)| PoolSize {
            buf_len: RECV_BUF,
            initial,
            max,
        });
        let ring = Ring::new(RING_ENTRIES, pool)?;
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        let notify = Arc::new(Notify {
            tx,
            flagged: AtomicBool::new(false),
            ready: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
        });
        let lp = Loop {
            ring,
            notify: notify.clone(),
            wake_rx: rx,
            wake_buf: Some(vec![0; 64]),
            wake_op: None,
            conns: HashMap::new(),
            listeners: HashMap::new(),
            next_id: 1,
            deadlines: BTreeSet::new(),
            timer: None,
            dirty: Vec::new(),
            spare: Vec::new(),
            spare_low: 0,
            trim_at: Instant::now() + SPARE_PERIOD,
            stop_when_idle: false,
            stop_now: false,
            starved: 0,
            #[cfg(test)]
            kept_waiters: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("weft-uring".into())
            .spawn(move || lp.run())?;
        Ok(EventLoop {
            notify,
            thread: Some(thread),
        })
    }

    /// Connects to `addr` (a blocking TCP connect), and runs the client connection
    /// on this loop. The handshake goes on in the background: await
    /// [`Handle::connected`].
    pub fn connect(&self, addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let (driver, handle) = driver::connect(Role::Client, config, driver::os_seed());
        self.attach(stream, driver);
        Ok(handle)
    }

    /// Runs a connection's driver over an already connected socket on this loop
    /// (for either role; a server connection should be attached to its
    /// [`Hub`] first).
    pub fn attach(&self, stream: TcpStream, driver: Driver) {
        self.notify.command(Command::Add(stream, driver));
    }

    /// Accepts connections on `listener`: each gets a server-role driver with
    /// `config`, attached to `hub`, and its handle is passed to `on_connection` on
    /// the loop's thread (which must not block).
    pub(crate) fn listen(
        &self,
        listener: TcpListener,
        config: Config,
        hub: Arc<Hub>,
        on_connection: OnConnection,
    ) {
        self.notify.command(Command::Listen(Box::new(Listener {
            sock: listener,
            config,
            hub,
            on_connection,
            accept: None,
            backoff: None,
            closing: false,
        })));
    }

    /// Stops now: stops listening, drops every connection (their handles see the
    /// connection lost) and waits for the thread to end.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    pub(crate) fn stop_now(&mut self) {
        if let Some(t) = self.thread.take() {
            self.notify.command(Command::StopNow);
            let _ = t.join();
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        if self.thread.take().is_some() {
            self.notify.command(Command::StopWhenIdle);
        }
    }
}

struct Conn {
    sock: TcpStream,
    driver: Driver,
    waker: Waker,
    wake: Arc<ConnWake>,
    /// With a pool: the kept backlog, `rbuf[..rlen]` received and not taken yet
    /// (`None` while there was none for a timer period). Without one: the
    /// connection's receive buffer, in the ring while a `Recv` is in flight.
    rbuf: Option<Vec<u8>>,
    rlen: usize,
    /// The kept backlog held bytes since the timer last fired.
    rneeded: bool,
    /// The last pooled receive found the pool empty: the next receive uses a small
    /// buffer of the connection's own, so that a connection cannot lose the race
    /// for pool buffers turn after turn while thousands of others are busy.
    starved: bool,
    recv: Option<OpId>,
    /// The `Send` in flight (its buffer is the ring's), `[sent..slen]` of it
    /// still to go.
    sent: usize,
    slen: usize,
    send: Option<OpId>,
    /// The peer's side ended (EOF or error).
    eof: bool,
    /// Sending failed: output is discarded.
    broken: bool,
    /// Finished: the socket is kept until then (`Config::linger` after the driver
    /// finished), to send what is left, then its end, and discard input.
    linger: Option<Instant>,
    /// Our end of stream was sent (or cannot be): the peer's ends the linger.
    fin_sent: bool,
    /// The socket was shut down; the connection goes once its operations are done.
    shut: bool,
    deadline: Option<Instant>,
    dirty: bool,
}

struct Listener {
    sock: TcpListener,
    config: Config,
    hub: Arc<Hub>,
    on_connection: OnConnection,
    accept: Option<OpId>,
    backoff: Option<OpId>,
    closing: bool,
}

struct Loop {
    ring: Ring<Tag>,
    notify: Arc<Notify>,
    wake_rx: UnixStream,
    wake_buf: Option<Vec<u8>>,
    wake_op: Option<OpId>,
    conns: HashMap<u64, Conn>,
    listeners: HashMap<u64, Listener>,
    next_id: u64,
    deadlines: BTreeSet<(Instant, u64)>,
    /// The armed `Timeout`, for which instant.
    timer: Option<(OpId, Instant)>,
    dirty: Vec<u64>,
    /// Send buffers not in use. Never more than the most sends in flight at once.
    spare: Vec<Vec<u8>>,
    /// The fewest spares since the last trim: that many were not needed.
    spare_low: usize,
    /// When to free the spares that were not needed.
    trim_at: Instant,
    stop_when_idle: bool,
    stop_now: bool,
    /// Receives that found the pool empty (for tests and diagnosis).
    starved: u64,
    /// Tests: waiting for some connection to keep input.
    #[cfg(test)]
    kept_waiters: Vec<std::sync::mpsc::Sender<Probe>>,
}

fn is_transient(errno: i32) -> bool {
    matches!(errno, libc::EINTR | libc::EAGAIN)
}

impl Loop {
    fn run(mut self) {
        self.arm_wake();
        let mut done = Vec::new();
        loop {
            self.take_commands();
            if self.stop_now {
                break;
            }
            self.take_ready();
            let now = self.fire_timers();
            self.trim_spares(now);
            while let Some(id) = self.dirty.pop() {
                self.service(id);
            }
            #[cfg(test)]
            self.answer_kept_waiters();
            if self.stop_when_idle && self.conns.is_empty() && self.listeners.is_empty() {
                break;
            }
            self.arm_timer();
            let busy =
                !lock(&self.notify.ready).is_empty() || !lock(&self.notify.commands).is_empty();
            if let Err(e) = self.ring.submit_and_wait(usize::from(!busy)) {
                // The ring itself failed: nothing can be driven any more.
                eprintln!("weft-uring: io_uring wait failed, stopping the loop: {e}");
                break;
            }
            self.ring.reap(&mut done);
            for d in done.drain(..) {
                self.complete(d);
            }
        }
        self.teardown();
    }

    fn mark_dirty(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    fn arm_wake(&mut self) {
        if let Some(buf) = self.wake_buf.take() {
            self.wake_op = Some(self.ring.recv(self.wake_rx.as_raw_fd(), buf, 0, Tag::Wake));
        }
    }

    fn take_commands(&mut self) {
        let cmds = std::mem::take(&mut *lock(&self.notify.commands));
        for c in cmds {
            match c {
                Command::Add(sock, driver) => self.add_conn(sock, driver),
                Command::Listen(mut l) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    if self.stop_when_idle {
                        l.closing = true;
                    } else {
                        l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
                    }
                    self.listeners.insert(id, *l);
                    self.reap_listener(id);
                }
                Command::StopWhenIdle => {
                    self.stop_when_idle = true;
                    let ids: Vec<u64> = self.listeners.keys().copied().collect();
                    for id in ids {
                        self.close_listener(id);
                    }
                }
                Command::StopNow => self.stop_now = true,
                #[cfg(test)]
                Command::Probe(tx) => {
                    let _ = tx.send(self.probe());
                }
                #[cfg(test)]
                Command::ProbeWhenKept(tx) => self.kept_waiters.push(tx),
                #[cfg(test)]
                Command::TimerPeriod => {
                    let pooled = self.ring.has_pool();
                    for c in self.conns.values_mut() {
                        timer_period_ended(c, pooled);
                    }
                }
                #[cfg(test)]
                Command::Trim => {
                    let at = self.trim_at;
                    self.trim_spares(at);
                }
            }
        }
    }

    #[cfg(test)]
    fn probe(&self) -> Probe {
        Probe {
            pool: self.ring.has_pool().then(|| self.ring.pool_buffers()),
            spares: self.spare.len(),
            kept: self.conns.values().filter(|c| c.rbuf.is_some()).count(),
            waiting: self.conns.values().map(|c| c.rlen).sum(),
            starved: self.starved,
        }
    }

    /// Tests: answers the [`Command::ProbeWhenKept`]s once a connection keeps
    /// input. Checked after every turn's servicing, so the first turn that ends
    /// with a backlog answers them.
    #[cfg(test)]
    fn answer_kept_waiters(&mut self) {
        if !self.kept_waiters.is_empty() && self.conns.values().any(|c| c.rlen > 0) {
            let p = self.probe();
            for tx in self.kept_waiters.drain(..) {
                let _ = tx.send(p);
            }
        }
    }

    fn take_ready(&mut self) {
        let ids = std::mem::take(&mut *lock(&self.notify.ready));
        for id in ids {
            if let Some(c) = self.conns.get(&id) {
                c.wake.queued.store(false, Ordering::SeqCst);
                self.mark_dirty(id);
            }
        }
    }

    fn add_conn(&mut self, sock: TcpStream, driver: Driver) {
        let id = self.next_id;
        self.next_id += 1;
        let wake = Arc::new(ConnWake {
            notify: self.notify.clone(),
            id,
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(wake.clone());
        self.conns.insert(
            id,
            Conn {
                sock,
                driver,
                waker,
                wake,
                rbuf: None,
                rlen: 0,
                rneeded: false,
                starved: false,
                recv: None,
                sent: 0,
                slen: 0,
                send: None,
                eof: false,
                broken: false,
                linger: None,
                fin_sent: false,
                shut: false,
                deadline: None,
                dirty: false,
            },
        );
        self.mark_dirty(id);
    }

    /// Moves bytes between the driver and the socket, submits what is due, and
    /// retires the connection once it is finished.
    fn service(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.dirty = false;
        // Registered first: a command issued after the checks below wakes us again.
        c.driver.register(&c.waker);
        let fd = c.sock.as_raw_fd();
        // Input, output, input: transmitting drains events, which can make room
        // for input the driver could not take before.
        offer_input(c);
        if c.send.is_none() && !c.broken && !c.shut {
            let mut buf = self.spare.pop().unwrap_or_else(|| vec![0; SEND_BUF]);
            self.spare_low = self.spare_low.min(self.spare.len());
            let mut n = 0;
            while n < buf.len() {
                let k = c.driver.poll_transmit(&mut buf[n..]);
                if k == 0 {
                    break;
                }
                n += k;
            }
            if n > 0 {
                c.sent = 0;
                c.slen = n;
                c.send = Some(self.ring.send(fd, buf, 0..n, Tag::Conn(id)));
            } else {
                self.spare.push(buf);
            }
        }
        offer_input(c);
        let finished = c.driver.is_finished();
        let now = Instant::now();
        // Finished: once everything is written, end our direction (FIN after the
        // last bytes) and keep reading, discarding, until the peer's end of stream;
        // all within the linger period from when the driver finished (PROTOCOL.md
        // 15.5), so that the peer reads our last bytes rather than a reset caused
        // by unread input.
        if finished && c.linger.is_none() {
            c.linger = Some(now + c.driver.linger());
        }
        if finished && (c.send.is_none() || c.broken) && !c.fin_sent {
            if !c.eof && !c.broken {
                let _ = c.sock.shutdown(Shutdown::Write);
            }
            c.fin_sent = true;
        }
        let peer_done = c.fin_sent && (c.eof || c.broken);
        if !c.shut && c.linger.is_some_and(|t| peer_done || now >= t) {
            // Close the socket, and retire the connection once the kernel is done
            // with its buffers.
            c.shut = true;
            let _ = c.sock.shutdown(Shutdown::Both);
            for op in [c.recv, c.send].into_iter().flatten() {
                self.ring.cancel(op);
            }
        }
        if c.recv.is_none() && !c.eof && !c.shut && c.rlen == 0 {
            c.recv = if self.ring.has_pool() && !c.starved {
                self.ring.recv_pooled(fd, Tag::Conn(id))
            } else if c.starved {
                let buf = c.rbuf.take().unwrap_or_else(|| vec![0; STARVED_RECV_BUF]);
                Some(self.ring.recv(fd, buf, 0, Tag::Conn(id)))
            } else {
                let buf = c.rbuf.take().unwrap_or_else(|| vec![0; RECV_BUF]);
                Some(self.ring.recv(fd, buf, 0, Tag::Conn(id)))
            };
        }
        // The deadline: the driver's, then the linger's.
        let want = if c.shut {
            None
        } else if finished {
            c.linger
        } else {
            c.driver.poll_timeout()
        };
        if want != c.deadline {
            if let Some(old) = c.deadline {
                self.deadlines.remove(&(old, id));
            }
            if let Some(new) = want {
                self.deadlines.insert((new, id));
            }
            c.deadline = want;
        }
        if c.shut && c.recv.is_none() && c.send.is_none() {
            if let Some(d) = c.deadline {
                self.deadlines.remove(&(d, id));
            }
            self.conns.remove(&id);
        }
    }

    fn complete(&mut self, d: Done<Tag>) {
        match d.tag {
            Tag::Wake => {
                self.wake_op = None;
                self.wake_buf = d.buf;
                self.notify.flagged.store(false, Ordering::SeqCst);
                if !self.stop_now {
                    self.arm_wake();
                }
            }
            Tag::Timer => {
                if self.timer.is_some_and(|(op, _)| op == d.id) {
                    self.timer = None;
                }
            }
            Tag::Guard => {}
            Tag::Conn(id) => self.complete_conn(id, d),
            Tag::Listener(id) => self.complete_listener(id, d),
        }
    }

    fn complete_conn(&mut self, id: u64, d: Done<Tag>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let fd = c.sock.as_raw_fd();
        match d.kind {
            Kind::Recv => {
                c.recv = None;
                let landed = d.buf.is_some() || d.pooled.is_some();
                if let Some(buf) = d.buf {
                    // Into the connection's own buffer (no pool, or starved).
                    c.starved = false;
                    c.rbuf = Some(buf);
                    if d.result > 0 {
                        c.rlen += usize::try_from(d.result).unwrap_or(0);
                    }
                }
                if let Some(p) = d.pooled {
                    // Offered straight from the pool buffer, which goes back at once;
                    // only what the driver leaves is kept. No `Recv` was in flight
                    // with a backlog, so there is none before these bytes.
                    if !c.shut {
                        keep_unread(c, self.ring.pooled(&p));
                    }
                    self.ring.give_back(p);
                }
                if d.result > 0 && landed {
                    // Offered, or kept for the driver.
                } else if d.result == -libc::ENOBUFS {
                    // The pool ran dry: one more buffer (up to the bound); `service`
                    // submits the receive again once this turn's buffers are back.
                    self.ring.grow_pool();
                    c.starved = true;
                    self.starved += 1;
                } else if d.result < 0 && is_transient(-d.result) {
                    // Submitted again by `service`.
                } else if !c.shut && !c.eof {
                    // 0: end of stream; otherwise reset, aborted, cancelled … (or
                    // bytes in no buffer the loop knows, which cannot be taken back).
                    c.eof = true;
                    c.driver.handle_eof();
                }
            }
            Kind::Send => {
                c.send = None;
                let Some(buf) = d.buf else {
                    return;
                };
                let more = d.result > 0 || is_transient(-d.result);
                if more && !c.shut {
                    c.sent += usize::try_from(d.result.max(0)).unwrap_or(0);
                    if c.sent < c.slen {
                        // A partial send: continue from the offset.
                        c.send = Some(self.ring.send(fd, buf, c.sent..c.slen, Tag::Conn(id)));
                    } else {
                        self.spare.push(buf);
                    }
                } else {
                    self.spare.push(buf);
                    if !c.shut {
                        c.broken = true;
                        if !c.eof {
                            c.eof = true;
                            c.driver.handle_eof();
                        }
                    }
                }
            }
            Kind::Accept | Kind::Timeout => {}
        }
        self.mark_dirty(id);
    }

    fn complete_listener(&mut self, id: u64, d: Done<Tag>) {
        let Some(l) = self.listeners.get_mut(&id) else {
            return;
        };
        match d.kind {
            Kind::Accept => {
                l.accept = None;
                if let Some(fd) = d.fd {
                    if !l.closing {
                        let sock = TcpStream::from(fd);
                        let _ = sock.set_nodelay(true);
                        let (mut driver, handle) =
                            driver::connect(Role::Server, l.config.clone(), driver::os_seed());
                        l.hub.attach(&mut driver);
                        (l.on_connection)(handle);
                        self.add_conn(sock, driver);
                    }
                }
                let Some(l) = self.listeners.get_mut(&id) else {
                    return;
                };
                if !l.closing {
                    let errno = -d.result;
                    if d.result >= 0 || is_transient(errno) || errno == libc::ECONNABORTED {
                        l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
                    } else {
                        l.backoff = Some(self.ring.timeout(ACCEPT_BACKOFF, Tag::Listener(id)));
                    }
                }
            }
            Kind::Timeout => {
                l.backoff = None;
                if !l.closing {
                    l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
                }
            }
            Kind::Recv | Kind::Send => {}
        }
        self.reap_listener(id);
    }

    fn close_listener(&mut self, id: u64) {
        if let Some(l) = self.listeners.get_mut(&id) {
            l.closing = true;
            if let Some(op) = l.accept {
                self.ring.cancel(op);
            }
            if let Some(op) = l.backoff {
                self.ring.remove_timeout(op);
            }
        }
        self.reap_listener(id);
    }

    /// Drops a closing listener once none of its operations is in flight.
    fn reap_listener(&mut self, id: u64) {
        if self
            .listeners
            .get(&id)
            .is_some_and(|l| l.closing && l.accept.is_none() && l.backoff.is_none())
        {
            self.listeners.remove(&id);
        }
    }

    /// Fires the connections' due deadlines; returns the time it went by.
    fn fire_timers(&mut self) -> Instant {
        let now = Instant::now();
        let pooled = self.ring.has_pool();
        let due: Vec<(Instant, u64)> = self
            .deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .copied()
            .collect();
        for (t, id) in due {
            self.deadlines.remove(&(t, id));
            if let Some(c) = self.conns.get_mut(&id) {
                c.deadline = None;
                c.driver.handle_timeout();
                timer_period_ended(c, pooled);
            }
            self.mark_dirty(id);
        }
        now
    }

    /// Frees the spare send buffers that no send needed since the last trim (at
    /// most one [`SPARE_PERIOD`] ago): a steady load keeps what it uses.
    fn trim_spares(&mut self, now: Instant) {
        if now < self.trim_at {
            return;
        }
        let unused = self.spare_low.min(self.spare.len());
        self.spare.truncate(self.spare.len() - unused);
        self.spare_low = self.spare.len();
        self.trim_at = now + SPARE_PERIOD;
    }

    /// Keeps one `Timeout` armed for the earliest deadline.
    fn arm_timer(&mut self) {
        let want = self.deadlines.first().map(|(t, _)| *t);
        if let (Some((_, armed)), Some(w)) = (self.timer, want) {
            if armed == w {
                return;
            }
        }
        if let Some((op, _)) = self.timer.take() {
            self.ring.remove_timeout(op);
        }
        if let Some(w) = want {
            let now = Instant::now();
            // A deadline already past (the driver kept it after `handle_timeout`)
            // is retried a millisecond later rather than in a busy loop.
            let after = if w > now {
                w - now
            } else {
                Duration::from_millis(1)
            };
            self.timer = Some((self.ring.timeout(after, Tag::Timer), w));
        }
    }

    /// Cancels every operation, waits (bounded) for the kernel to hand back the
    /// buffers, then drops the connections: their handles see the connection end.
    fn teardown(&mut self) {
        for c in self.conns.values_mut() {
            if !c.shut {
                c.shut = true;
                let _ = c.sock.shutdown(Shutdown::Both);
            }
            for op in [c.recv, c.send].into_iter().flatten() {
                self.ring.cancel(op);
            }
        }
        let ids: Vec<u64> = self.listeners.keys().copied().collect();
        for id in ids {
            self.close_listener(id);
        }
        if let Some(op) = self.wake_op {
            self.ring.cancel(op);
        }
        if let Some((op, _)) = self.timer.take() {
            self.ring.remove_timeout(op);
        }
        self.stop_now = true;
        let guard = self.ring.timeout(TEARDOWN_LIMIT, Tag::Guard);
        let mut done = Vec::new();
        'wait: while self.ring.in_flight() > 1 {
            if self.ring.submit_and_wait(1).is_err() {
                break;
            }
            self.ring.reap(&mut done);
            for d in done.drain(..) {
                if d.tag == Tag::Guard {
                    break 'wait;
                }
                match d.tag {
                    Tag::Conn(id) => {
                        if let Some(c) = self.conns.get_mut(&id) {
                            match d.kind {
                                Kind::Recv => c.recv = None,
                                Kind::Send => c.send = None,
                                Kind::Accept | Kind::Timeout => {}
                            }
                        }
                    }
                    Tag::Listener(id) => {
                        if let Some(l) = self.listeners.get_mut(&id) {
                            match d.kind {
                                Kind::Accept => l.accept = None,
                                Kind::Timeout => l.backoff = None,
                                Kind::Recv | Kind::Send => {}
                            }
                        }
                    }
                    Tag::Wake | Tag::Timer | Tag::Guard => {}
                }
            }
        }
        self.ring.remove_timeout(guard);
        let _ = self.ring.submit_and_wait(0);
        // Sockets whose operations did not come back stay open (leaked with the
        // buffers) so their descriptor numbers are never reused under them.
        for (_, c) in self.conns.drain() {
            if c.recv.is_some() || c.send.is_some() {
                std::mem::forget(c.sock);
                drop(c.driver);
            }
        }
        for (_, l) in self.listeners.drain() {
            if l.accept.is_some() {
                std::mem::forget(l.sock);
            }
        }
        // Everything left was dropped above: connections are gone for their handles.
    }
}

/// Offers `data` to the driver until it took all of it or is stalled: two offers
/// in a row that take nothing (the first one lets it process and hand out what it
/// holds, so only a second one shows that an application queue is full; the
/// driver's waker is woken once there is room). Returns how much it took.
fn offer(driver: &mut Driver, data: &[u8]) -> usize {
    let mut taken = 0;
    let mut zeros = 0;
    while taken < data.len() && zeros < 2 {
        let t = driver.handle_input(&data[taken..]);
        if t == 0 {
            zeros += 1;
        } else {
            zeros = 0;
            taken += t;
        }
    }
    taken
}

/// A connection's timer fired: a backlog buffer (with a pool) that held nothing
/// for a whole timer period goes. Keyed to the driver's timer, not to traffic, so
/// a busy connection never frees and reallocates it per message.
fn timer_period_ended(c: &mut Conn, pooled: bool) {
    if pooled {
        if c.rlen == 0 && !c.rneeded {
            c.rbuf = None;
        }
        c.rneeded = false;
    }
}

/// Offers the backlog, keeping what the driver does not take at its front.
fn offer_input(c: &mut Conn) {
    let Some(buf) = c.rbuf.as_mut() else {
        return;
    };
    if c.rlen == 0 {
        return;
    }
    let t = offer(&mut c.driver, &buf[..c.rlen]);
    buf.copy_within(t..c.rlen, 0);
    c.rlen -= t;
    if c.rlen > 0 {
        c.rneeded = true;
    }
}

/// Offers freshly received `data` (with no backlog before it) and keeps what the
/// driver does not take as the backlog.
fn keep_unread(c: &mut Conn, data: &[u8]) {
    let t = offer(&mut c.driver, data);
    if t < data.len() {
        let rest = &data[t..];
        let buf = c.rbuf.get_or_insert_with(|| vec![0; RECV_BUF]);
        if buf.len() < rest.len() {
            // A starved receive's small buffer: grow it to a whole receive.
            buf.resize(RECV_BUF.max(rest.len()), 0);
        }
        buf[..rest.len()].copy_from_slice(rest);
        c.rlen = rest.len();
        c.rneeded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Runs `f` on a thread and fails (instead of hanging) if it takes
    /// pathologically long. Not a timing assertion.
    fn watchdog(f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        let ok = rx.recv_timeout(Duration::from_secs(120)).is_ok();
        if let Err(p) = t.join() {
            std::panic::resume_unwind(p);
        }
        assert!(ok, "hung");
    }

    impl EventLoop {
        fn probe(&self) -> Probe {
            let (tx, rx) = mpsc::channel();
            self.notify.command(Command::Probe(tx));
            rx.recv_timeout(Duration::from_secs(60)).expect("probe")
        }

        fn command_for_test(&self, c: Command) {
            self.notify.command(c);
        }
    }

    fn numbered(i: u32) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..4].copy_from_slice(&i.to_be_bytes());
        m
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A backlog on the probed loop: messages its application does not read until
    /// the loop had to keep input, then all of them, in order.
    fn backlog(lp: &EventLoop, server: &Handle, client: &Handle) {
        // Without a reader the client's driver takes in at most its application
        // queue (DEFAULT_QUEUE_CAP messages), the connection's few pending events,
        // the records those keep alive (64 KiB each; 1,040 messages of 64 bytes
        // span at most 3) and one record in its receive buffer: under 300 KiB
        // however the server's sends are cut into records. Ten thousand messages
        // (over 600 KiB) leave input the loop must keep. (3,000 did not: batched
        // into full records, they sometimes all fit, and the loop never kept any.)
        const N: u32 = 10_000;
        let sender = server.clone();
        let sends = std::thread::spawn(move || {
            for i in 0..N {
                driver::block_on(sender.send(&numbered(i))).expect("send");
            }
        });
        // Nobody reads, and the driver cannot take all N messages: the loop must
        // come to keep input, and keeps it until the reads below (the senders wait
        // for queue room meanwhile). The loop answers as soon as it keeps some (no
        // polling, no race with the sender); the limit only stops a broken run.
        const _: () = assert!(N as usize * 64 > 2 * (300 << 10));
        let (tx, rx) = mpsc::channel();
        lp.command_for_test(Command::ProbeWhenKept(tx));
        let p = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the loop never kept input (no backlog within 60 s)");
        assert!(p.waiting > 0, "{p:?}");
        for i in 0..N {
            let m = driver::block_on(client.next_message()).expect("message");
            assert_eq!(&m[..], &numbered(i), "message {i}");
        }
        sends.join().expect("sender");
    }

    fn buffers_follow_the_load(pool: bool) {
        let server = crate::Server::bind("127.0.0.1:0", Config::default()).expect("bind");
        let lp = EventLoop::start(pool).expect("loop");
        let client = lp
            .connect(server.local_addr(), Config::default())
            .expect("connect");
        let conn = server.accept().expect("accepted");
        driver::block_on(client.connected()).expect("handshake");
        let p = lp.probe();
        assert_eq!(p.pool.is_some(), pool, "{p:?}");
        if pool {
            // Idle: no connection keeps a receive buffer.
            assert_eq!((p.kept, p.waiting), (0, 0), "{p:?}");
        }

        for round in 0..2u8 {
            // Larger than one receive and one send both ways.
            let down = pattern(1 << 20, round);
            driver::block_on(conn.send(&down)).expect("send");
            let got = driver::block_on(client.next_message()).expect("message");
            assert!(got[..] == down[..], "down intact (round {round})");
            let up = pattern(1 << 20, round + 100);
            driver::block_on(client.send(&up)).expect("send");
            let got = driver::block_on(conn.next_message()).expect("message");
            assert!(got[..] == up[..], "up intact (round {round})");

            backlog(&lp, &conn, &client);
            // With a pool the connection kept a backlog buffer (without one, its
            // own receive buffer is in the ring by now, or at home).
            let p = lp.probe();
            assert_eq!(p.waiting, 0, "{p:?}");
            if pool {
                assert_eq!(p.kept, 1, "{p:?}");
            }
            assert!(p.spares >= 1, "{p:?}");
            if let Some(n) = p.pool {
                assert!((POOL_INITIAL..=POOL_MAX).contains(&n), "{p:?}");
            }

            // Two timer periods without a backlog give it back (with a pool; without,
            // the buffer is the connection's receive buffer and stays); two trim
            // periods free the spares, but for one a heartbeat may have used.
            for _ in 0..2 {
                lp.command_for_test(Command::TimerPeriod);
                lp.command_for_test(Command::Trim);
            }
            let p = lp.probe();
            if pool {
                assert_eq!(p.kept, 0, "{p:?}");
            }
            assert!(p.spares <= 1, "{p:?}");
            // The next round grows them again.
        }
        drop(client);
        assert_eq!(
            driver::block_on(conn.closed()).kind,
            weft_core::conn::CloseKind::Graceful
        );
    }

    #[test]
    fn pooled_buffers_follow_the_load() {
        watchdog(|| buffers_follow_the_load(true));
    }

    #[test]
    fn own_receive_buffers_without_a_pool() {
        watchdog(|| buffers_follow_the_load(false));
    }

    /// Many connections receiving at once from a pool of one buffer: receives
    /// that find it empty go on with buffers of their own, and every byte arrives.
    #[test]
    fn connections_starved_of_pool_buffers_still_receive() {
        watchdog(|| {
            const CONNS: usize = 16;
            let server = crate::Server::bind("127.0.0.1:0", Config::default()).expect("bind");
            let lp = EventLoop::start_sized(Some((1, 1))).expect("loop");
            let mut pairs = Vec::new();
            for _ in 0..CONNS {
                let client = lp
                    .connect(server.local_addr(), Config::default())
                    .expect("connect");
                let conn = server.accept().expect("accepted");
                driver::block_on(client.connected()).expect("handshake");
                pairs.push((client, conn));
            }
            // A kernel without buffer rings has no pool to starve: the test cannot
            // run there, and says so by failing rather than passing unexercised.
            let p = lp.probe();
            assert!(
                p.pool.is_some(),
                "not run: this kernel offers no io_uring buffer rings (Linux 5.19+), \
                 so the starved-pool path cannot be exercised: {p:?}"
            );
            for round in 0..4u8 {
                let msgs: Vec<Vec<u8>> = (0..CONNS)
                    .map(|i| pattern(256 << 10, round.wrapping_mul(31).wrapping_add(i as u8)))
                    .collect();
                for ((_, conn), m) in pairs.iter().zip(&msgs) {
                    driver::block_on(conn.send(m)).expect("send");
                }
                for ((client, _), m) in pairs.iter().zip(&msgs) {
                    let got = driver::block_on(client.next_message()).expect("message");
                    assert!(got[..] == m[..], "intact (round {round})");
                }
            }
            let p = lp.probe();
            assert!(p.starved > 0, "the pool never ran dry: {p:?}");
            assert_eq!(p.pool, Some(1), "{p:?}");
        });
    }
}
