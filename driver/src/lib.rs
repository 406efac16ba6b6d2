//! Weft's shared driver: one [`weft_core::conn::Connection`] behind a lock, driven
//! by any runtime, as quinn sits beside quinn-proto.
//!
//! The layers, from the ground up:
//!
//! - `weft-core` (below this crate): the sans-IO protocol state machine. No threads,
//!   locks, clock or randomness.
//! - `sync` (private): std's `Arc`/`Mutex`, or loom's under `--cfg loom`, so
//!   the model checker explores every interleaving of the shared state.
//! - `shared` (private): the [`Driver`], the I/O side. An adapter owns the transport
//!   and runs it: bytes in and out, timers, wake-ups.
//! - [`Handle`] and its futures: the application side. They work on any executor and
//!   are safe to drop (a dropped request is cancelled on the wire). `batch`:
//!   [`Handle::send_many`], many messages per lock and wake-up.
//! - [`Hub`]: server-side routing of publish/subscribe across connections, the
//!   server application's own publishes and broadcasts, and a server's graceful
//!   shutdown over its connections in blocking form ([`Hub::close_all_and_wait`],
//!   [`ShutdownReport`]).
//! - [`IoTask`]: the one I/O task of the async adapters (`weft-tokio`, `weft-smol`),
//!   a future generic over a [`Transport`] and a [`Timer`]; [`mem`] has in-memory
//!   stand-ins for both.
//! - [`Backlog`]: input read but not taken yet, kept the same way by every adapter.
//! - [`BlockingClient`] and its [`BlockingStream`] and [`BlockingSubscription`]:
//!   the blocking face of the event-loop adapters (`weft-mio`, `weft-uring`), over
//!   any loop that implements [`BlockingLoop`].
//! - [`Executor`]: a small thread pool for the blocking adapters' applications.
//! - [`Clock`], [`os_seed`], [`block_on`], [`block_on_timeout`]: the std time,
//!   randomness and blocking the core leaves to its caller.
//!
//! Written once and used by every adapter (`weft-tokio`, `weft-smol`, `weft-mio`,
//! `weft-uring`). It uses only [`core::task::Waker`] and std's synchronisation, so no
//! runtime's types leak into another adapter. Every queue between the two sides is
//! bounded; when one is full the driver stops taking input and the peer is held back
//! by the transport. Dropping the last handle closes the connection gracefully.
//!
//! ```
//! use weft_driver::{self as driver, block_on};
//! use weft_core::{Config, Role};
//! // Two drivers joined in memory stand in for a socket.
//! let (mut cd, client) = driver::connect(Role::Client, Config::default(), [1; 32]);
//! let (mut sd, server) = driver::connect(Role::Server, Config::default(), [2; 32]);
//! let pump = |a: &mut driver::Driver, b: &mut driver::Driver| {
//!     let mut buf = vec![0u8; 1 << 17];
//!     for _ in 0..8 {
//!         let n = a.poll_transmit(&mut buf);
//!         b.handle_input(&buf[..n]);
//!         let n = b.poll_transmit(&mut buf);
//!         a.handle_input(&buf[..n]);
//!     }
//! };
//! client.try_send(b"hi").unwrap();
//! pump(&mut cd, &mut sd);
//! assert_eq!(block_on(server.next_message()).as_deref(), Some(&b"hi"[..]));
//! ```

#![forbid(unsafe_code)]

mod backlog;
mod batch;
mod blocking;
mod executor;
mod flush;
mod handle;
mod hub;
mod io;
pub mod mem;
mod reply;
mod serve;
mod shared;
mod stream_type;
mod sync;
mod task;

/// What [`stream_type!`] expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use weft_core::Error;
}

pub use backlog::Backlog;
pub use batch::{BatchError, SendMany};
pub use blocking::{
    BlockingClient, BlockingLoop, BlockingStream, BlockingSubscription, RecvTimeoutError,
};
/// The payload type of received messages and replies (shared, zero-copy).
pub use bytes::Bytes;
pub use executor::{Executor, Spawner};
pub use flush::{Flush, SubscribeFuture};
pub use handle::{
    AcceptStream, Closed, Connected, Handle, IncomingRequest, NextDelivery, NextMessage,
    NextMessages, NextRequest, RequestFuture, SendFuture, Subscription, WeftStream,
};
pub use hub::{graceful_close_limit, BroadcastReport, Hub, HubPublish, Peer, ShutdownReport};
pub use io::{Timer, Transport};
pub use reply::{Reply, RequestError};
pub use serve::{Answer, RequestCancelled, RequestInfo};
pub use shared::Driver;
pub use task::IoTask;
/// The id types of requests, subscriptions and streams (`IncomingRequest::id`,
/// `Subscription::id`, `WeftStream::id`), so applications need not depend on
/// `weft-core` to name them.
pub use weft_core::{RequestId, StreamId, SubId};

use shared::State;
use std::collections::{HashMap, HashSet, VecDeque};
use std::vec::Vec;
use sync::{Arc, Mutex};
use weft_core::config::{Config, Role};
use weft_core::conn::Connection;
use weft_core::secrets::SEED_LEN;
use weft_core::time::Instant;

/// Default bound on each application-facing queue of a connection.
pub const DEFAULT_QUEUE_CAP: usize = 1024;

/// The driver's clock: a std monotonic origin, mapped to weft [`Instant`]s.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        let d = self.origin.elapsed();
        Instant::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// The std instant of a weft instant.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.origin + core::time::Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A message received on a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The topic it was published on.
    pub topic: Bytes,
    /// The payload.
    pub payload: Bytes,
}

/// Creates a connection and its driver with a new clock; `seed` must be fresh
/// randomness for each connection ([`os_seed`]): the handshake nonce and every
/// secret of the connection are derived from it.
pub fn connect(role: Role, config: Config, seed: [u8; SEED_LEN]) -> (Driver, Handle) {
    connect_with(role, config, seed, Clock::new(), DEFAULT_QUEUE_CAP)
}

/// [`connect`] with an explicit clock and application-queue bound.
pub fn connect_with(
    role: Role,
    config: Config,
    seed: [u8; SEED_LEN],
    clock: Clock,
    queue_cap: usize,
) -> (Driver, Handle) {
    // Credit returns when the application reads a delivery from its
    // subscription, not when the driver queues it: a slow reader holds the server.
    let mut config = config;
    config.auto_subscription_credit = false;
    let linger = config.linger;
    let conn = Connection::new(role, config, clock.now(), seed);
    let state = State {
        conn,
        clock,
        queue_cap: queue_cap.max(1),
        driver_waker: None,
        connected: false,
        connect_wakers: Vec::new(),
        responses: HashMap::new(),
        messages: VecDeque::new(),
        message_waker: None,
        requests: VecDeque::new(),
        request_waker: None,
        live_requests: HashSet::new(),
        cancelled: HashSet::new(),
        cancel_wakers: HashMap::new(),
        subs: HashMap::new(),
        streams: HashMap::new(),
        accept: VecDeque::new(),
        accept_waker: None,
        send_waiters: Vec::new(),
        request_cap_waiters: Vec::new(),
        closed: None,
        closed_wakers: Vec::new(),
        flushes: HashMap::new(),
        flush_room: Vec::new(),
        peer_addr: None,
        handles: 1,
        hub_events: VecDeque::new(),
        routed: false,
        stalled: false,
        paused: false,
        parked: VecDeque::new(),
    };
    let shared = Arc::new(Mutex::new(state));
    let driver = Driver {
        shared: shared.clone(),
        hub: None,
        linger,
    };
    (driver, Handle { shared })
}

/// A fresh seed for [`connect`]: 32 bytes from the operating system's random
/// source (`getrandom`). The core itself never draws randomness; adapters pass this
/// in.
///
/// # Panics
///
/// If the operating system has no random source to give (`getrandom` fails). A
/// connection without an unpredictable seed would have a predictable nonce, so there
/// is no safe fallback.
pub fn os_seed() -> [u8; SEED_LEN] {
    let mut seed = [0u8; SEED_LEN];
    if let Err(e) = getrandom::fill(&mut seed) {
        panic!("no randomness from the operating system for a connection seed: {e}");
    }
    seed
}

/// Runs a future to completion on the current thread, parking between polls.
/// For blocking APIs (the mio and io_uring adapters) and tests.
pub fn block_on<F: core::future::Future>(fut: F) -> F::Output {
    match park_on(fut, None) {
        Some(v) => v,
        // Without a deadline only the future's end returns.
        None => unreachable!("block_on gave up without a deadline"),
    }
}

/// Runs `fut` on the current thread like [`block_on`], giving up after `timeout`
/// (`None`; the future is dropped, which cancels a request).
pub fn block_on_timeout<F: core::future::Future>(
    fut: F,
    timeout: core::time::Duration,
) -> Option<F::Output> {
    // A timeout too large to represent is no timeout.
    park_on(fut, std::time::Instant::now().checked_add(timeout))
}

/// Polls `fut` on this thread, parking between polls, until it is ready or
/// `deadline` passed.
fn park_on<F: core::future::Future>(
    fut: F,
    deadline: Option<std::time::Instant>,
) -> Option<F::Output> {
    use core::task::{Context, Poll};
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = core::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = core::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod seed_tests {
    #[test]
    fn os_seeds_differ() {
        let a: std::vec::Vec<[u8; 32]> = (0..8).map(|_| super::os_seed()).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(a.len(), b.len());
    }
}
