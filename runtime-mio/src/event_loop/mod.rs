//! The event loop: one thread, one [`mio::Poll`], many connections.
//!
//! Each connection is a mio `TcpStream` with its [`Driver`], the input the driver
//! has not taken yet, the output the socket has not taken yet, and its interest.
//! The loop only moves bytes, time and wake-ups; every protocol decision is the
//! driver's. See the crate documentation for the design.
//!
//! This file has the loop itself: its handle ([`EventLoop`]), the commands and
//! wake-ups from other threads, the slots and the deadlines. `conn` has a
//! connection's turn (input, timers, output, the linger), `listener` a listening
//! socket's accepts.

mod conn;
mod listener;

use conn::{Conn, Turn};
use listener::Listener;

use crate::lock;
use crate::server::AcceptQueue;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_core::{Config, Role};
use weft_driver::{self as driver, Clock, Driver, Handle, Hub, DEFAULT_QUEUE_CAP};

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
    /// Close the listeners, then say so: from then on nothing is accepted.
    StopListening(std::sync::mpsc::Sender<()>),
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
        if let Ok(p) = stream.peer_addr() {
            driver.set_peer_addr(p);
        }
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

    /// Closes the loop's listeners and returns once they are closed: no accept is
    /// in progress then, so no connection is accepted after this returns. Returns
    /// at once if the loop has stopped.
    pub(crate) fn stop_listening(&self) {
        let (done, closed) = std::sync::mpsc::channel();
        if self.owner.ctl.send(Command::StopListening(done)).is_err() {
            return;
        }
        // The loop answers between two turns, or drops the command as it stops.
        // Only a loop thread that panicked does neither: hence the check.
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            closed.recv_timeout(Duration::from_millis(100))
        {
            if lock(&self.owner.thread)
                .as_ref()
                .is_none_or(JoinHandle::is_finished)
            {
                return;
            }
        }
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
                    Command::StopListening(done) => {
                        self.close_listeners();
                        let _ = done.send(());
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
        let t = self.insert(Entry::Conn(Box::new(Conn::new(
            sock,
            driver,
            waker,
            Some(interest),
            linger,
        ))));
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
        let t = self.insert(Entry::Listener(Listener::new(sock, queue, waker)));
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
        if let Ok(p) = stream.peer_addr() {
            driver.set_peer_addr(p);
        }
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
