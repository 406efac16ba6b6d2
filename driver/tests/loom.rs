//! Loom models of the shared driver: the connection state behind one lock, the
//! `Driver` (I/O side) and `Handle` futures (application side). Each model builds a
//! real client/server pair, runs the handshake, then spawns at most three threads
//! (a driver thread pumping bytes between the two drivers in memory, plus one or two
//! application threads) with queues of one or two messages, and checks its
//! invariant in every interleaving loom explores. The bodies live in
//! `tests/models/mod.rs` and also run, larger, as std stress tests
//! (`tests/driver_stress.rs`); model 7 (the shared I/O task over the in-memory
//! pipe and timers of `weft_driver::mem`) lives here, loom only.
//!
//! Run (release, a separate target directory so the `--cfg loom` build does not
//! invalidate the normal one):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p weft-driver --release --test loom
//! ```
//!
//! Add `-- --nocapture` to see how many executions each model explored. Without
//! `LOOM_MAX_PREEMPTIONS` the models use a bound of 2.
//!
//! Note: at the commit that added these models, weft-core itself did not compile
//! under `--cfg loom`: `Hub::attach(self: &Arc<Self>, ..)` needs `Arc` to be a
//! receiver type, which loom's `Arc` is not (E0658). Keeping the hub's own handle a
//! `std::sync::Arc` (its `Mutex`es stay loom's) fixes it; the models were run with
//! that change applied.
#![cfg(loom)]

mod models;

use models::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Explores `body`, then reports (and asserts) how many executions ran.
fn check<T>(name: &str, body: impl Fn() -> T + Sync + Send + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    // Every lock taken by the connection code is a scheduling point: allow long
    // executions (the default of 1000 switches is for small lock-free code).
    b.max_branches = 1_000_000;
    let start = Instant::now();
    b.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        // What the body saw is checked inside it; the stress tests check it again.
        let _ = body();
    });
    let n = runs.load(Ordering::Relaxed);
    println!(
        "{name}: {n} executions explored in {:.1?} (preemption bound {:?})",
        start.elapsed(),
        b.preemption_bound
    );
    assert!(n > 0, "{name}: the model ran");
}

/// Client send queue of about one 8-byte message (a second one is `Blocked`).
const ONE_SMALL: usize = 12;

/// Model 1: Two senders (one message each, `try_send` and `send`) and the driver thread;
/// the send queue holds one message and the server's application queue one.
#[test]
fn model_senders_and_driver() {
    check("senders_and_driver", || {
        senders_and_driver(2, 1, 8, ONE_SMALL, 1)
    });
}

/// Model 2: A sender blocked on a full send queue is woken when the driver makes room.
#[test]
fn model_blocked_sender_is_woken() {
    check("blocked_sender_is_woken", || {
        blocked_sender_is_woken(1, 8, ONE_SMALL)
    });
}

/// Model 2b: Two blocked senders: both are woken (the waiter list drains at once).
#[test]
fn model_two_blocked_senders_are_woken() {
    check("two_blocked_senders_are_woken", || {
        blocked_sender_is_woken(2, 8, ONE_SMALL)
    });
}

/// Model 3: Close racing a send (two small messages, default records): every accepted
/// message is delivered.
#[test]
fn model_close_racing_send() {
    check("close_racing_send", || {
        close_racing_send(2, 8, ONE_SMALL, None)
    });
}

/// Model 3b: The same with messages in records of their own (server records of 1024
/// bytes, 700-byte messages). FINDING: fails; an accepted message is lost although
/// both sides report a graceful close. See `tests/driver_stress.rs`
/// (`finding_graceful_close_drops_queued_messages`) for a deterministic reproduction.
#[test]
fn model_close_racing_send_own_records() {
    check("close_racing_send_own_records", || {
        close_racing_send(2, 700, 1500, Some(1024))
    });
}

/// Model 4: Two threads drop the last two handles while the driver sleeps on its waker.
#[test]
fn model_last_handle_drop_wakes_driver() {
    check("last_handle_drop_wakes_driver", || {
        last_handle_drop_wakes_driver(2)
    });
}

/// Model 5: A response racing the drop of its request future.
#[test]
fn model_response_races_request_drop() {
    check("response_races_request_drop", || {
        response_races_request_drop(true, false)
    });
}

/// Model 5b: The same when the responder drops the request unanswered (`NoResponder`).
#[test]
fn model_no_responder_races_request_drop() {
    check("no_responder_races_request_drop", || {
        response_races_request_drop(false, false)
    });
}

/// Model 6: Heartbeat firing vs graceful close vs a send.
#[test]
fn model_heartbeat_shutdown_send() {
    check("heartbeat_shutdown_send", || heartbeat_shutdown_send(1, 8));
}

/// Model 5c: the server answers on a third thread, racing the drop and the delivery.
#[test]
fn model_response_answer_races_drop_and_delivery() {
    check("response_answer_races_drop_and_delivery", || {
        response_races_request_drop(true, true)
    });
}

/// Model 7: the shared I/O task itself. A client and a server [`IoTask`] joined by
/// the in-memory pipe ([`weft_driver::mem`]), each on its own thread, with the
/// application on a third: it sends a message, fires the client's timer while
/// the tasks read and write (an early fire: the deadline is not due, the task
/// must re-arm and carry on), and drops its last client handle (a graceful
/// close). In every interleaving the message arrives, both sides close
/// gracefully, and both tasks end: each lingers until the other's end of stream,
/// and neither sees a reset (the pipe resets like TCP when an end is dropped with
/// unread input). A lost wake-up shows as a deadlock.
#[test]
fn model_io_task_read_write_timer() {
    check("io_task_read_write_timer", io_task_read_write_timer);
}

fn io_task_read_write_timer() {
    use core::future::Future;
    use core::task::{Context, Poll, Waker};
    use weft_core::conn::CloseKind;
    use weft_core::{Config, Role};
    use weft_driver::{connect_with, mem, Clock, IoTask};

    let (a, b) = mem::pipe(4096);
    let (cd, client) = connect_with(Role::Client, Config::default(), [1; 32], Clock::new(), 2);
    let (sd, server) = connect_with(Role::Server, Config::default(), [2; 32], Clock::new(), 2);
    let (ctimer, ctl) = mem::manual_timer();
    let (stimer, _stl) = mem::manual_timer();
    let mut ct = IoTask::new(a, cd, ctimer);
    let mut st = IoTask::new(b, sd, stimer);

    // The handshake on this thread, before any other exists: one interleaving.
    {
        let mut cx = Context::from_waker(Waker::noop());
        let mut connected = core::pin::pin!(client.connected());
        let done = (0..10_000).any(|_| {
            assert!(core::pin::Pin::new(&mut ct).poll(&mut cx).is_pending());
            assert!(core::pin::Pin::new(&mut st).poll(&mut cx).is_pending());
            matches!(connected.as_mut().poll(&mut cx), Poll::Ready(Ok(())))
        });
        assert!(done, "handshake");
    }
    assert!(ctl.deadline().is_some(), "the client's timer is armed");

    let tc = thread::spawn(move || block_on(ct));
    let ts = thread::spawn(move || block_on(st));
    client.try_send(b"hello").expect("send");
    ctl.fire();
    let client_closed = client.closed();
    drop(client);
    let m = block_on(server.next_message());
    assert_eq!(m.as_deref(), Some(&b"hello"[..]));
    let info = block_on(server.closed());
    assert_eq!(info.kind, CloseKind::Graceful, "server: {info:?}");
    drop(server);
    tc.join().expect("client task");
    ts.join().expect("server task");
    let info = block_on(client_closed);
    assert_eq!(info.kind, CloseKind::Graceful, "client: {info:?}");
}
