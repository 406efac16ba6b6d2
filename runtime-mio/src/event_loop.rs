//! The event loop: one thread, one [`mio::Poll`], many connections.
//!
//! Each connection is a mio `TcpStream` with its [`Driver`], the input the driver
//! has not taken yet, the output the socket has not taken yet, and its interest.
//! The loop only moves bytes, time and wake-ups; every protocol decision is the
//! driver's. See the crate documentation for the design.

use crate::lock;
use crate::server::AcceptQueue;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_core::{Config, Role};
use weft_driver::{self as driver, Backlog, Clock, Driver, Handle, Hub, DEFAULT_QUEUE_CAP};

/// The token of the loop's own [`mio::Waker`].
const WAKE: Token = Token(usize::MAX);
/// Bytes read from a socket at once (one scratch buffer for the whole loop).
const READ_BUF: usize = 64 << 10;
/// Bytes asked of `poll_transmit` at once: more than one maximal record.
const WRITE_BUF: usize = 128 << 10;
/// Reads, transmits and accepts per connection and turn before the loop serves
/// the others (fairness); the rest waits for the next turn.
const READS_PER_TURN: usize = 16;
const WRITES_PER_TURN: usize = 16;
const ACCEPTS_PER_TURN: usize = 64;
/// How long to wait before accepting again after an accept error (e.g. out of
/// file descriptors), when the readiness edge will not come back by itself.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// What other threads ask of the loop.
enum Command {
    /// Drive a connected socket.
    Register {
        stream: TcpStream,
        driver: Driver,
        linger: Duration,
    },
    /// Accept on a listener into an accept queue.
    Listen {
        listener: TcpListener,
        queue: Arc<AcceptQueue>,
    },
    /// Drop every connection and listener and stop.
    Shutdown,
    /// The last [`EventLoop`] is gone: close the listeners, and stop once the last
    /// connection has finished.
    Detach,
}

struct Commands {
    queue: Vec<Command>,
    /// The loop has stopped: commands are refused.
    closed: bool,
}

/// What the loop shares with the threads that talk to it.
pub(crate) struct Control {
    waker: mio::Waker,
    commands: Mutex<Commands>,
    /// Tokens whose driver (or accept queue) asked to be driven.
    woken: Mutex<Vec<usize>>,
    connections: AtomicUsize,
}

impl Control {
    fn send(&self, cmd: Command) -> io::Result<()> {
        {
            let mut c = lock(&self.commands);
            if c.closed {
                drop(c);
                drop(cmd);
                return Err(stopped());
            }
            c.queue.push(cmd);
        }
        self.waker.wake()
    }

    fn wake_token(&self, token: usize) {
        let first = {
            let mut w = lock(&self.woken);
            w.push(token);
            w.len() == 1
        };
        // A non-empty list already has a wake-up on its way.
        if first {
            let _ = self.waker.wake();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "weft-mio event loop stopped")
}

/// The waker handed to a connection's driver (or an accept queue): it queues the
/// token and wakes the loop, at most once until the loop drives the token again.
pub(crate) struct TokenWaker {
    ctl: Arc<Control>,
    token: usize,
    queued: AtomicBool,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ctl.wake_token(self.token);
        }
    }
}

/// A handle to an event loop thread driving many connections.
///
/// Cloning it is cheap; all clones talk to the same thread. When the last clone is
/// dropped the loop stops accepting (its listeners are closed) and exits once its
/// last connection has finished (each connection finishes when its last
/// [`Handle`] is dropped or it is closed); [`shutdown`](Self::shutdown) stops it at
/// once instead.
///
/// Never call a blocking weft-mio function on the loop thread itself; the loop
/// runs no application code, so this only matters for wakers you write yourself.
#[derive(Clone)]
pub struct EventLoop {
    owner: Arc<Owner>,
}

struct Owner {
    ctl: Arc<Control>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.ctl.send(Command::Detach);
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// Starts an event loop on a new thread (named `weft-mio`).
    pub fn new() -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let ctl = Arc::new(Control {
            waker,
            commands: Mutex::new(Commands {
                queue: Vec::new(),
                closed: false,
            }),
            woken: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let lp = Loop {
            poll,
            ctl: ctl.clone(),
            slots: Vec::new(),
            free: Vec::new(),
            conns: 0,
            timers: BinaryHeap::new(),
            again: Vec::new(),
            rbuf: vec![0; READ_BUF],
            wbuf: vec![0; WRITE_BUF],
            next_gen: 0,
            detached: false,
        };
        let thread = std::thread::Builder::new()
            .name("weft-mio".into())
            .spawn(move || lp.run())?;
        Ok(EventLoop {
            owner: Arc::new(Owner {
                ctl,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Connects to `addr` (blocking until the TCP connection is established, not
    /// the handshake) and drives the new client connection on this loop. Await
    /// [`Handle::connected`] for the handshake.
    pub fn connect(&self, addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
        let stream = std::net::TcpStream::connect(addr)?;
        self.adopt(stream, Role::Client, config, None)
    }

    /// Drives an already connected socket as a Weft connection of `role`, attached
    /// to `hub` if given (server connections that route publish/subscribe).
    pub fn adopt(
        &self,
        stream: std::net::TcpStream,
        role: Role,
        config: Config,
        hub: Option<&Arc<Hub>>,
    ) -> io::Result<Handle> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let linger = config.linger;
        let (mut driver, handle) = driver::connect_with(
            role,
            config,
            driver::os_seed(),
            Clock::new(),
            DEFAULT_QUEUE_CAP,
        );
        if let Some(hub) = hub {
            hub.attach(&mut driver);
        }
        self.owner.ctl.send(Command::Register {
            stream: TcpStream::from_std(stream),
            driver,
            linger,
        })?;
        Ok(handle)
    }

    /// Accepts on `listener` into `queue` (the server's side).
    pub(crate) fn listen(&self, listener: TcpListener, queue: Arc<AcceptQueue>) -> io::Result<()> {
        self.owner.ctl.send(Command::Listen { listener, queue })
    }

    /// Connections the loop currently drives (including those finishing).
    pub fn connections(&self) -> usize {
        self.owner.ctl.connections.load(Ordering::Acquire)
    }

    /// Stops the loop now: every connection is dropped (its handles see the
    /// connection lost, its peer sees the socket close), listeners are closed, and
    /// the thread is joined. Close connections gracefully first if that matters.
    pub fn shutdown(&self) {
        let _ = self.owner.ctl.send(Command::Shutdown);
        let t = lock(&self.owner.thread).take();
        if let Some(t) = t {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// One connection on the loop.
struct Conn {
    sock: TcpStream,
    driver: Driver,
    waker: Arc<TokenWaker>,
    task_waker: Waker,
    /// Bytes read but not yet taken by the driver.
    backlog: Backlog,
    /// Bytes produced by the driver but not yet taken by the socket.
    out: Vec<u8>,
    out_pos: usize,
    /// Readiness not yet used up (mio is edge-triggered).
    read_ready: bool,
    write_ready: bool,
    /// The peer's end of the byte stream was read.
    eof: bool,
    /// The driver was told of the end.
    eof_told: bool,
    /// The socket failed: nothing more can be written.
    broken: bool,
    interest: Option<Interest>,
    /// How long the socket is kept once the driver is finished (`Config::linger`):
    /// flushing output and waiting for the peer to close share this time.
    linger: Duration,
    flush_until: Option<Instant>,
    /// Finished and flushed, our side shut down: reading until the peer closes so
    /// that our last bytes are not lost to a reset.
    linger_until: Option<Instant>,
    timer: Option<Instant>,
}

struct Listener {
    sock: TcpListener,
    queue: Arc<AcceptQueue>,
    waker: Arc<TokenWaker>,
    ready: bool,
    timer: Option<Instant>,
}

enum Entry {
    Conn(Box<Conn>),
    Listener(Listener),
}

struct Slot {
    entry: Entry,
    gen: u64,
    /// Already in this turn's list.
    marked: bool,
}

struct Loop {
    poll: Poll,
    ctl: Arc<Control>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    conns: usize,
    /// Deadlines, checked lazily against each slot's current timer.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Tokens that used up their turn's budget and want another.
    again: Vec<usize>,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    next_gen: u64,
    detached: bool,
}

/// What a turn of a connection decided.
struct Turn {
    remove: bool,
    again: bool,
}

impl Loop {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut todo: Vec<usize> = Vec::new();
        loop {
            let timeout = if self.again.is_empty() {
                self.next_deadline()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKE {
                    continue;
                }
                let Some(Some(slot)) = self.slots.get_mut(t.0) else {
                    continue;
                };
                match &mut slot.entry {
                    Entry::Conn(c) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            c.read_ready = true;
                        }
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            c.write_ready = true;
                        }
                    }
                    Entry::Listener(l) => l.ready = true,
                }
                mark(&mut self.slots, &mut todo, t.0);
            }
            let commands = std::mem::take(&mut lock(&self.ctl.commands).queue);
            for cmd in commands {
                match cmd {
                    Command::Register {
                        stream,
                        driver,
                        linger,
                    } => {
                        if let Some(t) = self.add_conn(stream, driver, linger) {
                            mark(&mut self.slots, &mut todo, t);
                        }
                    }
                    Command::Listen { listener, queue } => {
                        if let Some(t) = self.add_listener(listener, queue) {
                            mark(&mut self.slots, &mut todo, t);
                        }
                    }
                    Command::Shutdown => {
                        self.stop();
                        return;
                    }
                    Command::Detach => {
                        self.detached = true;
                        self.close_listeners();
                    }
                }
            }
            let woken = std::mem::take(&mut *lock(&self.ctl.woken));
            for t in woken {
                mark(&mut self.slots, &mut todo, t);
            }
            let now = Instant::now();
            while let Some(Reverse((at, t, gen))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if let Some(Some(slot)) = self.slots.get(t) {
                    if slot.gen == gen && timer_of(&slot.entry) == Some(at) {
                        mark(&mut self.slots, &mut todo, t);
                    }
                }
            }
            for t in std::mem::take(&mut self.again) {
                mark(&mut self.slots, &mut todo, t);
            }
            for t in todo.drain(..) {
                self.turn(t);
            }
            if self.detached && self.conns == 0 {
                break;
            }
        }
        self.stop();
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        // Keep stale entries bounded: rebuild when they dominate.
        if self.timers.len() > 4 * (self.conns + 16) {
            let mut heap = BinaryHeap::new();
            for (t, s) in self.slots.iter().enumerate() {
                if let Some(s) = s {
                    if let Some(at) = timer_of(&s.entry) {
                        heap.push(Reverse((at, t, s.gen)));
                    }
                }
            }
            self.timers = heap;
        }
        loop {
            let Reverse((at, t, gen)) = *self.timers.peek()?;
            match self.slots.get(t) {
                Some(Some(s)) if s.gen == gen && timer_of(&s.entry) == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
    }

    fn insert(&mut self, entry: Entry) -> usize {
        self.next_gen += 1;
        let slot = Slot {
            entry,
            gen: self.next_gen,
            marked: false,
        };
        match self.free.pop() {
            Some(t) => {
                self.slots[t] = Some(slot);
                t
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    fn token_waker(&self, token: usize) -> Arc<TokenWaker> {
        Arc::new(TokenWaker {
            ctl: self.ctl.clone(),
            token,
            queued: AtomicBool::new(false),
        })
    }

    fn add_conn(&mut self, mut sock: TcpStream, driver: Driver, linger: Duration) -> Option<usize> {
        let token = self.free.last().copied().unwrap_or(self.slots.len());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut sock, Token(token), interest)
            .is_err()
        {
            // Dropping the driver tells its handles the connection is lost.
            return None;
        }
        let waker = self.token_waker(token);
        let task_waker = Waker::from(waker.clone());
        let t = self.insert(Entry::Conn(Box::new(Conn {
            sock,
            driver,
            waker,
            task_waker,
            backlog: Backlog::new(READ_BUF),
            out: Vec::new(),
            out_pos: 0,
            read_ready: true,
            write_ready: true,
            eof: false,
            eof_told: false,
            broken: false,
            interest: Some(interest),
            linger,
            flush_until: None,
            linger_until: None,
            timer: None,
        })));
        debug_assert_eq!(t, token);
        self.conns += 1;
        self.ctl.connections.store(self.conns, Ordering::Release);
        Some(t)
    }

    fn add_listener(&mut self, mut sock: TcpListener, queue: Arc<AcceptQueue>) -> Option<usize> {
        if self.detached {
            queue.close();
            return None;
        }
        let token = self.free.last().copied().unwrap_or(self.slots.len());
        if self
            .poll
            .registry()
            .register(&mut sock, Token(token), Interest::READABLE)
            .is_err()
        {
            queue.close();
            return None;
        }
        let waker = self.token_waker(token);
        queue.set_waker(Waker::from(waker.clone()));
        let t = self.insert(Entry::Listener(Listener {
            sock,
            queue,
            waker,
            ready: true,
            timer: None,
        }));
        debug_assert_eq!(t, token);
        Some(t)
    }

    fn remove(&mut self, t: usize) {
        let Some(slot) = self.slots.get_mut(t).and_then(Option::take) else {
            return;
        };
        self.free.push(t);
        match slot.entry {
            Entry::Conn(mut c) => {
                if c.interest.is_some() {
                    let _ = self.poll.registry().deregister(&mut c.sock);
                }
                self.conns -= 1;
                self.ctl.connections.store(self.conns, Ordering::Release);
                // The driver (and its hub attachment) goes with it.
                drop(c);
            }
            Entry::Listener(mut l) => {
                let _ = self.poll.registry().deregister(&mut l.sock);
                l.queue.close();
            }
        }
    }

    /// Starts driving an accepted connection and hands its handle to the queue.
    fn accept_one(&mut self, stream: TcpStream, queue: &Arc<AcceptQueue>) {
        let _ = stream.set_nodelay(true);
        let (mut driver, handle) = driver::connect_with(
            Role::Server,
            queue.config.clone(),
            driver::os_seed(),
            Clock::new(),
            queue.queue_cap,
        );
        queue.hub.attach(&mut driver);
        let linger = queue.config.linger;
        if let Some(t) = self.add_conn(stream, driver, linger) {
            // Its first turn (HELLO may already be waiting) comes with the next batch.
            self.again.push(t);
            queue.push(handle);
        }
    }

    fn close_listeners(&mut self) {
        let ls: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Some(Slot {
                        entry: Entry::Listener(_),
                        ..
                    })
                )
            })
            .map(|(t, _)| t)
            .collect();
        for t in ls {
            self.remove(t);
        }
    }

    /// Drops everything and refuses further commands.
    fn stop(&mut self) {
        let left = {
            let mut c = lock(&self.ctl.commands);
            c.closed = true;
            std::mem::take(&mut c.queue)
        };
        for cmd in left {
            if let Command::Listen { queue, .. } = &cmd {
                queue.close();
            }
        }
        for t in 0..self.slots.len() {
            self.remove(t);
        }
        self.ctl.connections.store(0, Ordering::Release);
    }

    /// Gives slot `t` its turn.
    fn turn(&mut self, t: usize) {
        let Some(Some(slot)) = self.slots.get_mut(t) else {
            return;
        };
        slot.marked = false;
        let gen = slot.gen;
        let before = timer_of(&slot.entry);
        let mut accepted = Vec::new();
        let mut queue = None;
        let r = match &mut slot.entry {
            Entry::Conn(c) => {
                let r = c.turn(&mut self.rbuf, &mut self.wbuf);
                if !r.remove {
                    c.update_interest(self.poll.registry(), Token(t));
                }
                r
            }
            Entry::Listener(l) => {
                let (a, r) = l.turn();
                accepted = a;
                queue = Some(l.queue.clone());
                r
            }
        };
        if let Some(queue) = queue {
            for stream in accepted {
                self.accept_one(stream, &queue);
            }
        }
        if r.remove {
            self.remove(t);
            return;
        }
        if r.again {
            self.again.push(t);
        }
        if let Some(Some(slot)) = self.slots.get(t) {
            let after = timer_of(&slot.entry);
            if after != before {
                if let Some(at) = after {
                    self.timers.push(Reverse((at, t, gen)));
                }
            }
        }
    }
}

fn mark(slots: &mut [Option<Slot>], todo: &mut Vec<usize>, t: usize) {
    if let Some(Some(s)) = slots.get_mut(t) {
        if !s.marked {
            s.marked = true;
            todo.push(t);
        }
    }
}

fn timer_of(e: &Entry) -> Option<Instant> {
    match e {
        Entry::Conn(c) => c.timer,
        Entry::Listener(l) => l.timer,
    }
}

impl Conn {
    fn turn(&mut self, rbuf: &mut [u8], wbuf: &mut [u8]) -> Turn {
        if let Some(until) = self.linger_until {
            return self.linger_turn(rbuf, until);
        }
        // Re-arm the waker before looking at anything, so no wake-up is lost.
        self.waker.queued.store(false, Ordering::Release);
        self.driver.register(&self.task_waker);
        let mut again = false;

        // Input: what the driver left last time first, then the socket; each offered
        // once (the backlog's stop rule). What the driver leaves waits in the backlog
        // and reading stops until the driver wakes us (the application caught up).
        let mut reads = 0;
        self.backlog.offer(&mut self.driver);
        loop {
            if !self.backlog.is_empty() || self.eof || !self.read_ready {
                break;
            }
            if reads == READS_PER_TURN {
                again = true;
                break;
            }
            reads += 1;
            let read = match self.backlog.spare() {
                // Recently backed up: read straight into the kept buffer.
                Some(buf) => {
                    let r = (&self.sock).read(buf);
                    if let Ok(n) = r {
                        self.backlog.filled(n);
                        self.backlog.offer(&mut self.driver);
                    }
                    r
                }
                // Into the loop's buffer, keeping only what the driver leaves.
                None => {
                    let r = (&self.sock).read(rbuf);
                    if let Ok(n @ 1..) = r {
                        self.backlog.offer_and_keep(&mut self.driver, &rbuf[..n]);
                    }
                    r
                }
            };
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    self.broken = true;
                }
            }
        }

        // Timers. A period of the driver's timer is also the backlog's measure of
        // whether its buffer is still needed.
        if self.timer.is_some_and(|t| t <= Instant::now()) {
            self.driver.handle_timeout();
            self.backlog.period_ended();
        }

        // Output: what the socket left last time first, then the driver's.
        again |= self.flush(wbuf);

        // The end of input, once everything before it was taken (or the socket broke).
        if self.broken {
            self.eof = true;
            self.backlog.discard();
        }
        if self.eof && !self.eof_told && self.backlog.is_empty() {
            self.eof_told = true;
            self.driver.handle_eof();
            again |= self.flush(wbuf);
        }

        let now = Instant::now();
        if self.driver.is_finished() {
            let flushed = self.broken || self.out_pos >= self.out.len();
            if flushed {
                if self.eof {
                    return Turn {
                        remove: true,
                        again: false,
                    };
                }
                // Our last bytes are out: send FIN, then read until the peer closes,
                // so unread input does not turn our close into a reset.
                // The linger period counts from when the driver finished (PROTOCOL.md
                // 15.5): flushing and reading to the peer's end share it.
                let _ = self.sock.shutdown(Shutdown::Write);
                let until = *self.flush_until.get_or_insert(now + self.linger);
                self.linger_until = Some(until);
                return self.linger_turn(rbuf, until);
            }
            let until = *self.flush_until.get_or_insert(now + self.linger);
            if until <= now {
                return Turn {
                    remove: true,
                    again: false,
                };
            }
            self.timer = Some(until);
        } else {
            self.timer = self.driver.poll_timeout();
        }
        Turn {
            remove: false,
            again,
        }
    }

    /// Writes pending output, then the driver's, until the socket is full, the
    /// driver has nothing more, or the turn's budget is spent (returns true).
    fn flush(&mut self, wbuf: &mut [u8]) -> bool {
        let mut transmits = 0;
        loop {
            if self.out_pos < self.out.len() {
                if self.broken {
                    self.out = Vec::new();
                    self.out_pos = 0;
                    continue;
                }
                if !self.write_ready {
                    return false;
                }
                match (&self.sock).write(&self.out[self.out_pos..]) {
                    Ok(0) => self.broken = true,
                    Ok(n) => {
                        self.out_pos += n;
                        if self.out_pos == self.out.len() {
                            self.out = Vec::new();
                            self.out_pos = 0;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.write_ready = false;
                        return false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.broken = true,
                }
                continue;
            }
            if transmits == WRITES_PER_TURN {
                return true;
            }
            transmits += 1;
            let n = self.driver.poll_transmit(wbuf);
            if n == 0 {
                return false;
            }
            if self.broken {
                // Nowhere to send it; the driver learns of the end below.
                continue;
            }
            let mut off = 0;
            while off < n && self.write_ready && !self.broken {
                match (&self.sock).write(&wbuf[off..n]) {
                    Ok(0) => self.broken = true,
                    Ok(k) => off += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.broken = true,
                }
            }
            if off < n && !self.broken {
                // A partial write: keep the rest for when the socket is writable.
                self.out.extend_from_slice(&wbuf[off..n]);
                self.out_pos = 0;
                return false;
            }
        }
    }

    /// After our side is done: discard input until the peer closes or time is up.
    fn linger_turn(&mut self, rbuf: &mut [u8], until: Instant) -> Turn {
        let done = Turn {
            remove: true,
            again: false,
        };
        if Instant::now() >= until {
            return done;
        }
        for _ in 0..READS_PER_TURN {
            match (&self.sock).read(rbuf) {
                Ok(0) => return done,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.timer = Some(until);
                    return Turn {
                        remove: false,
                        again: false,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return done,
            }
        }
        self.timer = Some(until);
        Turn {
            remove: false,
            again: true,
        }
    }

    /// Asks for readability only while input is wanted, and for writability only
    /// while output waits.
    fn update_interest(&mut self, registry: &mio::Registry, token: Token) {
        let want_read = !self.eof && self.backlog.is_empty();
        let want_write = !self.broken && self.out_pos < self.out.len();
        let want = match (want_read, want_write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        };
        if want == self.interest {
            return;
        }
        let r = match (self.interest, want) {
            (None, Some(i)) => registry.register(&mut self.sock, token, i),
            (Some(_), Some(i)) => registry.reregister(&mut self.sock, token, i),
            (Some(_), None) => registry.deregister(&mut self.sock),
            (None, None) => Ok(()),
        };
        match r {
            Ok(()) => self.interest = want,
            Err(_) => {
                // Cannot watch the socket any more: treat it as broken.
                self.broken = true;
                self.eof = true;
                self.read_ready = true;
                self.write_ready = true;
                self.waker.wake_by_ref();
            }
        }
    }
}

impl Listener {
    /// Accepts what the accept queue has room for (bounded per turn); returns the
    /// accepted sockets, and whether to go on next turn.
    fn turn(&mut self) -> (Vec<TcpStream>, Turn) {
        self.waker.queued.store(false, Ordering::Release);
        let mut accepted = Vec::new();
        let keep = |again| Turn {
            remove: false,
            again,
        };
        if self.queue.is_closed() {
            let t = Turn {
                remove: true,
                again: false,
            };
            return (accepted, t);
        }
        if self.timer.is_some_and(|t| t <= Instant::now()) {
            self.timer = None;
            self.ready = true;
        }
        if !self.ready {
            return (accepted, keep(false));
        }
        // When the application's accept queue is full, it wakes us as it takes one;
        // meanwhile the kernel's backlog holds the rest.
        let room = self.queue.room().min(ACCEPTS_PER_TURN);
        while accepted.len() < room {
            match self.sock.accept() {
                Ok((stream, _peer)) => accepted.push(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready = false;
                    return (accepted, keep(false));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(_) => {
                    // E.g. out of file descriptors: the readiness edge will not come
                    // back by itself, so try again a little later.
                    self.ready = false;
                    self.timer = Some(Instant::now() + ACCEPT_RETRY);
                    return (accepted, keep(false));
                }
            }
        }
        let again = room == ACCEPTS_PER_TURN;
        (accepted, keep(again))
    }
}
