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
//!
//! This file has the loop itself: its handle ([`EventLoop`]), the commands and
//! wake-ups from other threads, the deadlines and the teardown. `conn` has a
//! connection's state and its turns (receive, send, linger), `listener` a
//! listening socket's accepts; the ring's submissions and its buffer pool are in
//! [`crate::ring`].

mod conn;
mod listener;

use conn::Conn;
use listener::Listener;

use crate::ring::{Done, Kind, OpId, PoolSize, Ring};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Wake;
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
    /// Stop listening (connections go on), then say so.
    StopListening(std::sync::mpsc::Sender<()>),
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
        if let Ok(p) = stream.peer_addr() {
            driver.set_peer_addr(p);
        }
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
        self.notify.command(Command::Listen(Box::new(Listener::new(
            listener,
            config,
            hub,
            on_connection,
        ))));
    }

    /// Stops listening and returns once the loop did: an accept completing later
    /// is dropped, so no connection is accepted after this returns. Returns at
    /// once if the loop has stopped.
    pub(crate) fn stop_listening(&self) {
        let Some(thread) = &self.thread else {
            return;
        };
        let (done, stopped) = std::sync::mpsc::channel();
        self.notify.command(Command::StopListening(done));
        // The loop answers as it takes its commands; a loop thread that ended
        // (its ring failed) never will, hence the check.
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(Duration::from_millis(100))
        {
            if thread.is_finished() {
                return;
            }
        }
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
                Command::Listen(l) => self.add_listener(*l),
                Command::StopWhenIdle => {
                    self.stop_when_idle = true;
                    let ids: Vec<u64> = self.listeners.keys().copied().collect();
                    for id in ids {
                        self.close_listener(id);
                    }
                }
                Command::StopListening(done) => {
                    let ids: Vec<u64> = self.listeners.keys().copied().collect();
                    for id in ids {
                        self.close_listener(id);
                    }
                    let _ = done.send(());
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
                    for c in self.conns.values_mut() {
                        c.backlog.period_ended();
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
            kept: self
                .conns
                .values()
                .filter(|c| c.backlog.has_buffer())
                .count(),
            waiting: self.conns.values().map(|c| c.backlog.len()).sum(),
            starved: self.starved,
        }
    }

    /// Tests: answers the [`Command::ProbeWhenKept`]s once a connection keeps
    /// input. Checked after every turn's servicing, so the first turn that ends
    /// with a backlog answers them.
    #[cfg(test)]
    fn answer_kept_waiters(&mut self) {
        if !self.kept_waiters.is_empty() && self.conns.values().any(|c| !c.backlog.is_empty()) {
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

    /// Fires the connections' due deadlines; returns the time it went by.
    fn fire_timers(&mut self) -> Instant {
        let now = Instant::now();
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
                // A period of the driver's timer is also the backlog's measure of
                // whether its buffer is still needed (with or without a pool).
                c.backlog.period_ended();
            }
            self.mark_dirty(id);
        }
        now
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

#[cfg(test)]
mod tests;
