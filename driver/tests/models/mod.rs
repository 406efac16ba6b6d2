//! The bodies of the shared-driver models, compiled twice: by `tests/loom.rs` under
//! `--cfg loom` (loom's threads, locks and `block_on`, tiny sizes, every
//! interleaving up to the preemption bound) and by `tests/driver_stress.rs` without
//! it (std threads, larger sizes, many iterations).
//!
//! Every body builds a real client/server pair with
//! [`weft_driver::connect_with`], completes the handshake on the calling
//! thread, then spawns its threads: a *driver* thread that owns both [`Driver`]s
//! and moves bytes between them in memory (so every byte goes through the whole
//! path: queues, framing, records, the peer's parser, its event queue and the
//! application queues), and application threads on [`Handle`]s.
//!
//! The driver thread is itself a future run by `block_on`: each poll registers its
//! waker with both drivers (and the application queues it reads), pumps until
//! quiet, and returns `Pending` when there is nothing to do. So it sleeps exactly
//! like a runtime's I/O task and only wakes when the shared state wakes it: a lost
//! wake-up shows as a deadlock (loom reports it; the std stress tests run each
//! execution under a bounded wait that fails naming it). Each body returns what it
//! saw (counts, outcomes) for the stress tests to check as well.
//!
//! Time: the driver's clock is std's and cannot be injected. The models never
//! depend on it: the default timers (handshake 10 s, drain 10 s, idle 30 s,
//! heartbeat 5 s) are far beyond one execution, and the heartbeat model makes its
//! 1 ms heartbeat due by sleeping past it *before* spawning threads and then fires
//! it with exactly one explicit `handle_timeout` call, so every execution sees the
//! same timer behaviour.

#![allow(dead_code)]

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;
use std::vec::Vec;
use weft_core::conn::{CloseInfo, CloseKind, Outcome};
use weft_core::{Config, Error, ErrorCode, Role};
use weft_driver::{connect_with, Clock, Driver, Handle};

#[cfg(loom)]
pub(crate) use loom::thread;
#[cfg(not(loom))]
pub(crate) use std::thread;
#[cfg(not(loom))]
pub(crate) use weft_driver::block_on;

/// Runs a future on the current loom thread, waiting on a `loom::sync::Notify`
/// between polls; the waker notifies it. A wake-up that never comes leaves the
/// thread waiting for good, which loom reports as a deadlock.
///
/// Not `loom::future::block_on`: it needs loom's `futures` feature, which
/// weft-core's loom dependency does not enable. Not `loom::thread::park` either:
/// in loom 0.7.2 an unpark token stored while the thread is runnable is erased when
/// the thread then blocks on a contended `Mutex` (`post_acquire` overwrites its
/// state with `Blocked`, and `release_lock` restores plain `Runnable`), so a wake
/// that lands while the driver waits for the connection lock is dropped by the
/// checker itself and reported as a false deadlock.
#[cfg(loom)]
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Notifier(loom::sync::Notify);
    impl Wake for Notifier {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.notify();
        }
    }
    let notifier = std::sync::Arc::new(Notifier(loom::sync::Notify::new()));
    let waker = Waker::from(notifier.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = core::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => notifier.0.wait(),
        }
    }
}

/// Bodies run so far in this process (all models): proves the models ran, and
/// lets the loom tests report how many executions were explored.
pub(crate) static BODIES: AtomicUsize = AtomicUsize::new(0);

fn ran() {
    BODIES.fetch_add(1, Ordering::Relaxed);
}

/// Large enough for any record (65 535 + 8) plus a preface.
const BUF: usize = 70_000;

/// A client and a server driver joined by in-memory pipes.
pub(crate) struct Net {
    pub(crate) cd: Driver,
    pub(crate) sd: Driver,
    /// Bytes on their way from the client to the server, and back.
    ab: Vec<u8>,
    ba: Vec<u8>,
    buf: Vec<u8>,
}

impl Net {
    /// One round: what each side has to send goes out once, and what is pending
    /// is offered to the other side (the part not taken stays pending, as a
    /// runtime keeps unread bytes in its socket buffer). True if anything moved.
    pub(crate) fn round(&mut self) -> bool {
        let mut moved = false;
        let n = self.cd.poll_transmit(&mut self.buf);
        if n > 0 {
            self.ab.extend_from_slice(&self.buf[..n]);
            moved = true;
        }
        let n = self.sd.poll_transmit(&mut self.buf);
        if n > 0 {
            self.ba.extend_from_slice(&self.buf[..n]);
            moved = true;
        }
        if !self.ab.is_empty() {
            let n = self.sd.handle_input(&self.ab);
            self.ab.drain(..n);
            moved |= n > 0;
        }
        if !self.ba.is_empty() {
            let n = self.cd.handle_input(&self.ba);
            self.ba.drain(..n);
            moved |= n > 0;
        }
        moved
    }

    /// Rounds until quiet (on the calling thread, no waiting); bounded.
    pub(crate) fn settle(&mut self) {
        for _ in 0..10_000 {
            if !self.round() {
                return;
            }
        }
        panic!("net did not settle");
    }

    fn register(&self, w: &Waker) {
        self.cd.register(w);
        self.sd.register(w);
    }

    /// Both connections are over and their last bytes were handed out.
    pub(crate) fn finished(&self) -> bool {
        self.cd.is_finished() && self.sd.is_finished()
    }

    /// The driver task: runs rounds whenever woken until `done` says so. `done` is
    /// polled with the task's context, so the application queues it reads wake it.
    pub(crate) fn drive(&mut self, mut done: impl FnMut(&mut Self, &mut Context<'_>) -> bool) {
        block_on(poll_fn(|cx| {
            // Register first, then look: anything that changes afterwards wakes us.
            self.register(cx.waker());
            for _ in 0..10_000 {
                let moved = self.round();
                if done(self, cx) {
                    return Poll::Ready(());
                }
                if !moved {
                    return Poll::Pending;
                }
            }
            panic!("driver did not settle");
        }))
    }
}

/// Polls a future once with `cx`.
pub(crate) fn poll_with<F: Future + Unpin>(f: &mut F, cx: &mut Context<'_>) -> Poll<F::Output> {
    Pin::new(f).poll(cx)
}

/// Polls a future once with a waker that does nothing.
pub(crate) fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    poll_with(f, &mut Context::from_waker(Waker::noop()))
}

/// Takes every message queued for `h` (polled with `cx`, so new ones wake it);
/// true once `h`'s connection is closed and nothing is left.
pub(crate) fn take_messages(h: &Handle, cx: &mut Context<'_>, out: &mut Vec<Vec<u8>>) -> bool {
    loop {
        match poll_with(&mut h.next_message(), cx) {
            Poll::Ready(Some(m)) => out.push(m.to_vec()),
            Poll::Ready(None) => return true,
            Poll::Pending => return false,
        }
    }
}

/// A connected client/server pair with application queues of `queue_cap`.
pub(crate) fn pair(cc: Config, sc: Config, queue_cap: usize) -> (Net, Handle, Handle) {
    let (cd, c) = connect_with(Role::Client, cc, [1; 32], Clock::new(), queue_cap);
    let (sd, s) = connect_with(Role::Server, sc, [2; 32], Clock::new(), queue_cap);
    let mut net = Net {
        cd,
        sd,
        ab: Vec::new(),
        ba: Vec::new(),
        buf: vec![0u8; BUF],
    };
    net.settle();
    assert!(matches!(poll_once(&mut c.connected()), Poll::Ready(Ok(()))));
    assert!(matches!(poll_once(&mut s.connected()), Poll::Ready(Ok(()))));
    (net, c, s)
}

/// A client whose send queue holds about `room` bytes of small frames.
pub(crate) fn small_queue(room: usize) -> Config {
    Config {
        max_queued_bytes: room,
        ..Config::default()
    }
}

/// A distinct payload: sender, index, then filler up to `len` bytes.
pub(crate) fn payload(sender: usize, i: usize, len: usize) -> Vec<u8> {
    let mut p = vec![0xA5u8; len.max(4)];
    p[..2].copy_from_slice(&(sender as u16).to_be_bytes());
    p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
    p
}

fn sender_of(m: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([m[0], m[1]]))
}

/// Sends with `try_send`, falling back to waiting when the queue is full.
fn try_then_send(h: &Handle, p: &[u8]) -> Result<(), Error> {
    match h.try_send(p) {
        Err(Error::Blocked) => block_on(h.send(p)),
        r => r,
    }
}

/// The close details, once known.
fn closed_now(h: &Handle) -> Option<CloseInfo> {
    match poll_once(&mut h.closed()) {
        Poll::Ready(c) => Some(c),
        Poll::Pending => None,
    }
}

fn assert_graceful(h: &Handle) {
    let info = closed_now(h).expect("connection closed");
    assert_eq!(info.kind, CloseKind::Graceful, "{info:?}");
    assert_eq!(info.code, ErrorCode::NO_ERROR, "{info:?}");
}

// ---------------------------------------------------------------------------------
// 1. Two (or more) senders and the driver.

/// `senders` threads each send `per_sender` distinct messages on clones of one
/// handle (even senders `try_send` first, odd ones always `send`), while the driver
/// thread pumps to the server and reads what arrives. Exactly the messages sent are
/// delivered, each sender's in order. The client's send queue holds about
/// `queue_room` bytes and every application queue `queue_cap` messages, so senders
/// and the driver keep meeting full queues.
pub(crate) fn senders_and_driver(
    senders: usize,
    per_sender: usize,
    len: usize,
    queue_room: usize,
    queue_cap: usize,
) -> usize {
    ran();
    let (mut net, c, s) = pair(small_queue(queue_room), Config::default(), queue_cap);
    let total = senders * per_sender;
    let threads: Vec<_> = (0..senders)
        .map(|k| {
            let h = c.clone();
            thread::spawn(move || {
                for i in 0..per_sender {
                    let p = payload(k, i, len);
                    let r = if k % 2 == 0 {
                        try_then_send(&h, &p)
                    } else {
                        block_on(h.send(&p))
                    };
                    assert_eq!(r, Ok(()), "sender {k} message {i}");
                }
            })
        })
        .collect();
    let driver = thread::spawn(move || {
        let mut got = Vec::new();
        net.drive(|_, cx| {
            take_messages(&s, cx, &mut got);
            got.len() >= total
        });
        (net, s, got)
    });
    for t in threads {
        t.join().unwrap();
    }
    let (net, s, got) = driver.join().unwrap();
    assert_eq!(got.len(), total, "exactly the messages sent");
    for k in 0..senders {
        let mine: Vec<_> = got.iter().filter(|m| sender_of(m) == k).cloned().collect();
        let want: Vec<_> = (0..per_sender).map(|i| payload(k, i, len)).collect();
        assert_eq!(mine, want, "sender {k}: all, once, in order");
    }
    assert_eq!(c.stats().messages_sent, total as u64);
    drop((net, s, c));
    got.len()
}

// ---------------------------------------------------------------------------------
// 2. No lost wake-up for a sender blocked on a full queue.

/// The client's send queue is filled first (`try_send` until `Blocked`); then
/// `senders` threads each `send` one message, which must wait for room, while the
/// driver thread transmits. The driver waits for every message at the server, so
/// if a blocked sender's wake-up were lost, every thread would sleep: loom reports
/// the deadlock. Returns (messages queued first, messages delivered).
pub(crate) fn blocked_sender_is_woken(
    senders: usize,
    len: usize,
    queue_room: usize,
) -> (usize, usize) {
    ran();
    let (mut net, c, s) = pair(small_queue(queue_room), Config::default(), 1);
    let mut queued = 0;
    while c.try_send(&payload(99, queued, len)).is_ok() {
        queued += 1;
        assert!(queued < 1000, "the queue bound holds");
    }
    assert!(queued > 0);
    let threads: Vec<_> = (0..senders)
        .map(|k| {
            let h = c.clone();
            thread::spawn(move || {
                assert_eq!(block_on(h.send(&payload(k, 0, len))), Ok(()));
            })
        })
        .collect();
    let total = queued + senders;
    let driver = thread::spawn(move || {
        let mut got = Vec::new();
        net.drive(|_, cx| {
            take_messages(&s, cx, &mut got);
            got.len() >= total
        });
        (net, s, got)
    });
    for t in threads {
        t.join().unwrap();
    }
    let (net, s, got) = driver.join().unwrap();
    assert_eq!(got.len(), total);
    let early: Vec<_> = (0..queued).map(|i| payload(99, i, len)).collect();
    assert_eq!(got[..queued], early[..], "the queued ones first, in order");
    drop((net, s, c));
    (queued, got.len())
}

// ---------------------------------------------------------------------------------
// 3. Close racing a send.

/// One thread sends `msgs` messages (waiting for room when the queue is full),
/// another closes gracefully; the driver thread runs both connections to their end,
/// reading at the server. Every message is either delivered or its send returned
/// `Closed`: an accepted message is never lost.
///
/// `record` limits the server's record size (what the client may send in one
/// record): with 1024 and messages of ~700 bytes, each message travels in its own
/// record, and the server takes one record per `handle_input`. Returns (messages
/// accepted, messages delivered).
pub(crate) fn close_racing_send(
    msgs: usize,
    len: usize,
    queue_room: usize,
    record: Option<u64>,
) -> (usize, usize) {
    ran();
    let mut sc = Config::default();
    if let Some(r) = record {
        sc.params.max_record_size = r;
        sc.params.max_frame_size = r;
    }
    let (mut net, c, s) = pair(small_queue(queue_room), sc, 1);
    let h = c.clone();
    let sender = thread::spawn(move || {
        (0..msgs)
            .map(|i| block_on(h.send(&payload(0, i, len))))
            .collect::<Vec<_>>()
    });
    let h = c.clone();
    let closer = thread::spawn(move || h.close(ErrorCode::NO_ERROR, "bye"));
    let driver = thread::spawn(move || {
        let mut got = Vec::new();
        net.drive(|net, cx| take_messages(&s, cx, &mut got) && net.finished());
        (net, s, got)
    });
    let results = sender.join().unwrap();
    closer.join().unwrap();
    let (net, s, got) = driver.join().unwrap();
    let mut accepted = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(()) => accepted.push(payload(0, i, len)),
            Err(e) => assert_eq!(*e, Error::Closed, "message {i} refused"),
        }
    }
    assert_eq!(
        got.len(),
        accepted.len(),
        "every accepted message is delivered (accepted {}, delivered {})",
        accepted.len(),
        got.len()
    );
    assert_eq!(got, accepted, "delivered = accepted, in order");
    assert_graceful(&c);
    assert_graceful(&s);
    drop((net, s, c));
    (accepted.len(), got.len())
}

// ---------------------------------------------------------------------------------
// 4. Dropping the last handle wakes the driver.

/// `handles` clones of the client handle are dropped by as many threads while the
/// driver thread sleeps on its waker; the last drop closes the connection and must
/// wake the driver, which then runs both connections to their end. A lost wake-up
/// leaves every thread asleep: loom reports the deadlock. Returns how the server's
/// connection closed.
pub(crate) fn last_handle_drop_wakes_driver(handles: usize) -> Option<CloseInfo> {
    ran();
    let (mut net, c, s) = pair(Config::default(), Config::default(), 1);
    let mut clones: Vec<Handle> = (1..handles).map(|_| c.clone()).collect();
    clones.push(c);
    let threads: Vec<_> = clones
        .into_iter()
        .map(|h| thread::spawn(move || drop(h)))
        .collect();
    let driver = thread::spawn(move || {
        let mut polls = 0usize;
        net.drive(|net, _| {
            polls += 1;
            net.finished()
        });
        assert!(polls >= 1);
        net
    });
    for t in threads {
        t.join().unwrap();
    }
    let net = driver.join().unwrap();
    assert!(net.finished());
    assert_graceful(&s);
    let info = closed_now(&s);
    drop((net, s));
    info
}

// ---------------------------------------------------------------------------------
// 5. A response racing the drop of its request future.

/// Counts wakes; its strong count tells whether the shared state still holds it.
#[derive(Default)]
struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A request is issued (polled once with a counting waker) and reaches the server;
/// then one thread polls the request future once more and drops it while the
/// driver thread delivers the response. The response is `Ok` (`answer`) or
/// `NoResponder` (the incoming request dropped unanswered); with
/// `concurrent_responder` the server answers on a third thread, racing both.
/// Checks: it completed at most once and then with the right reply; the response
/// slot is gone afterwards (the shared state no longer holds the request's waker);
/// the server saw the cancel (its answer is refused with `UnknownId`, only possible
/// if the request never completed) or nothing; the connections stay healthy (no
/// protocol error, nothing closed); a later request works. Returns the dropped
/// request's outcome if it completed before the drop.
pub(crate) fn response_races_request_drop(
    answer: bool,
    concurrent_responder: bool,
) -> Option<Outcome> {
    ran();
    let (mut net, c, s) = pair(Config::default(), Config::default(), 1);
    let counter = std::sync::Arc::new(CountWaker::default());
    let waker = Waker::from(counter.clone());
    let mut req = c.request(b"subject", b"question", None);
    assert!(poll_with(&mut req, &mut Context::from_waker(&waker)).is_pending());
    net.settle();
    let incoming = match poll_once(&mut s.next_request()) {
        Poll::Ready(Some(r)) => r,
        other => panic!("request not received: {other:?}"),
    };
    let respond = move || {
        if answer {
            incoming.respond(Outcome::Ok, "", b"answer")
        } else {
            // Dropped unanswered: the driver replies NoResponder.
            drop(incoming);
            Ok(())
        }
    };
    let responder = if concurrent_responder {
        Some(thread::spawn(respond))
    } else {
        assert_eq!(respond(), Ok(()));
        None
    };
    let w = waker.clone();
    let app = thread::spawn(move || {
        let r = poll_with(&mut req, &mut Context::from_waker(&w));
        drop(req);
        drop(w);
        r
    });
    let driver = thread::spawn(move || {
        // Delivers the response, and whatever the drop queued (a CANCEL) if it
        // came first; never waits.
        net.settle();
        net
    });
    let first = app.join().unwrap();
    let answered = responder.map(|t| t.join().unwrap());
    let mut net = driver.join().unwrap();
    net.settle();
    if let Some(a) = answered {
        match a {
            Ok(()) => {}
            Err(Error::UnknownId) => assert!(first.is_pending(), "cancelled, never completed"),
            Err(e) => panic!("responding failed: {e:?}"),
        }
    }
    drop(waker);
    let completed = match &first {
        Poll::Ready(Ok(r)) => Some(r.outcome),
        _ => None,
    };
    match first {
        Poll::Ready(Ok(r)) if answer => {
            assert_eq!((r.outcome, &r.payload[..]), (Outcome::Ok, &b"answer"[..]))
        }
        Poll::Ready(Ok(r)) => assert_eq!(r.outcome, Outcome::NoResponder),
        Poll::Ready(Err(e)) => panic!("request failed: {e:?}"),
        Poll::Pending => {}
    }
    assert!(counter.0.load(Ordering::Relaxed) <= 1, "woken at most once");
    assert_eq!(
        std::sync::Arc::strong_count(&counter),
        1,
        "the dropped request's slot was removed from the shared state"
    );
    assert!(closed_now(&c).is_none() && closed_now(&s).is_none());
    assert_eq!((c.stats().errors, s.stats().errors), (0, 0));
    // The connection still serves requests.
    let mut again = c.request(b"subject", b"again", None);
    assert!(poll_once(&mut again).is_pending());
    net.settle();
    let incoming = match poll_once(&mut s.next_request()) {
        Poll::Ready(Some(r)) => r,
        other => panic!("second request not received: {other:?}"),
    };
    assert_eq!(&incoming.payload[..], b"again");
    incoming.respond(Outcome::Ok, "", b"fine").unwrap();
    net.settle();
    match poll_once(&mut again) {
        Poll::Ready(Ok(r)) => assert_eq!((r.outcome, &r.payload[..]), (Outcome::Ok, &b"fine"[..])),
        other => panic!("second request: {other:?}"),
    }
    assert!(
        poll_once(&mut s.next_request()).is_pending(),
        "nothing else"
    );
    drop((net, c, s));
    completed
}

// ---------------------------------------------------------------------------------
// 6. Heartbeat timer vs shutdown vs send.

/// A 1 ms heartbeat, already due when the threads start. The driver thread fires
/// it with one `handle_timeout` (a PING goes out) and then runs both connections to
/// their end; one thread sends `msgs` messages, another closes gracefully. Every
/// execution ends the same way: both sides closed gracefully with `NO_ERROR`, each
/// message delivered exactly when its send was accepted, refused with `Closed`
/// otherwise. Returns (messages accepted, messages delivered).
pub(crate) fn heartbeat_shutdown_send(msgs: usize, len: usize) -> (usize, usize) {
    ran();
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 1;
    let mut sc = Config::default();
    sc.params.heartbeat_ms = 1;
    let (mut net, c, s) = pair(cc, sc, 1);
    // Make the heartbeat due; nothing else runs a timer, so this is the only
    // time-dependent step and it happens before any thread exists.
    std::thread::sleep(core::time::Duration::from_micros(1_500));
    assert!(net.cd.poll_timeout().unwrap() <= std::time::Instant::now());
    let h = c.clone();
    let sender = thread::spawn(move || {
        (0..msgs)
            .map(|i| try_then_send(&h, &payload(0, i, len)))
            .collect::<Vec<_>>()
    });
    let h = c.clone();
    let closer = thread::spawn(move || h.close(ErrorCode::NO_ERROR, "bye"));
    let driver = thread::spawn(move || {
        net.cd.handle_timeout();
        let mut got = Vec::new();
        net.drive(|net, cx| take_messages(&s, cx, &mut got) && net.finished());
        (net, s, got)
    });
    let results = sender.join().unwrap();
    closer.join().unwrap();
    let (net, s, got) = driver.join().unwrap();
    let mut accepted = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(()) => accepted.push(payload(0, i, len)),
            Err(e) => assert_eq!(*e, Error::Closed, "message {i} refused"),
        }
    }
    assert_eq!(got, accepted, "delivered exactly when accepted");
    assert_graceful(&c);
    assert_graceful(&s);
    drop((net, s, c));
    (accepted.len(), got.len())
}

// ---------------------------------------------------------------------------------
// The finding of model 3, without threads.

/// Single-threaded and deterministic, default configuration: `msgs` messages of
/// `len` bytes are accepted by `try_send`, then the client closes gracefully and the
/// pair is pumped to the end. Returns how many were delivered to the server.
///
/// The client's CLOSE goes out on the control lane, ahead of the queued data, and
/// the data follows in later records. The server takes one record per
/// `handle_input`: on the first it sees the CLOSE, queues its own, and once that is
/// transmitted (`close_sent && close_received`, its own queue idle) it is `Closed`;
/// the records still pending are then discarded by `handle_input`. Both sides
/// report a graceful `NO_ERROR` close.
pub(crate) fn graceful_close_after_queued_messages(msgs: usize, len: usize) -> usize {
    let (mut net, c, s) = pair(Config::default(), Config::default(), 1024);
    for i in 0..msgs {
        c.try_send(&payload(0, i, len)).expect("accepted");
    }
    c.close(ErrorCode::NO_ERROR, "bye");
    net.settle();
    assert!(net.finished());
    assert_graceful(&c);
    assert_graceful(&s);
    let mut got = Vec::new();
    assert!(take_messages(
        &s,
        &mut Context::from_waker(Waker::noop()),
        &mut got
    ));
    got.len()
}
