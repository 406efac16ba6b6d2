//! Blocking Weft over a [mio] event loop.
//!
//! `weft-mio` moves bytes, time and wake-ups between sockets and the shared
//! driver of [`weft_driver`]; every protocol decision is the core's. It has
//! no async runtime: a [`Server`] is one event-loop thread for all its connections,
//! a [`Client`] is a blocking face over a connection on an event loop, and the
//! core's async [`Handle`] is available everywhere for code that wants futures
//! (run them with [`block_on`] or the small [`Executor`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use weft_core::conn::Outcome;
//! use weft_core::Config;
//! use weft_mio::{Client, Server};
//!
//! // A server on an ephemeral port, answering `greet` on a small worker pool.
//! let server = Arc::new(Server::bind("127.0.0.1:0", Config::default())?);
//! let addr = server.local_addr();
//! let serving = {
//!     let server = server.clone();
//!     std::thread::spawn(move || {
//!         server.serve(|subject, payload| match subject {
//!             b"greet" => Ok([b"hello, ".as_slice(), payload].concat()),
//!             _ => Err((404, "no such subject".to_string())),
//!         })
//!     })
//! };
//!
//! // A blocking client: the request waits for its reply (at most 5 s, by the
//! // request's own deadline).
//! let client = Client::connect(addr, Config::default())?;
//! let reply = client.request(b"greet", b"world", Some(Duration::from_secs(5)))?;
//! assert_eq!(reply.outcome, Outcome::Ok);
//! assert_eq!(&reply.payload[..], b"hello, world");
//! let unknown = client.request(b"nope", b"", None)?;
//! assert_eq!(unknown.outcome, Outcome::Error(404));
//! client.close();
//!
//! // Stops accepting, closes every connection gracefully, waits until they
//! // ended; `serve` returns.
//! let report = server.graceful_shutdown();
//! assert!(report.all_graceful(), "{report:?}");
//! serving.join().expect("serving thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The event loop
//!
//! An [`EventLoop`] is one thread with a [`mio::Poll`] driving many connections
//! (and listeners). Each connection holds its mio `TcpStream`, its
//! [`Driver`](weft_driver::Driver), the input the driver has not taken yet,
//! the output the socket has not taken yet (partial writes), and its interest.
//! A turn of a connection:
//!
//! 1. re-arms the connection's waker (a [`std::task::Wake`] that queues the
//!    connection's token and wakes the loop's [`mio::Waker`]; application commands
//!    on a [`Handle`] wake it);
//! 2. offers untaken input to the driver, then reads until `WouldBlock`, at most 16
//!    reads per turn (the rest waits for the next turn, so no connection starves
//!    the others). When the driver does not take everything, the rest is kept,
//!    readability is no longer asked for, and reading resumes when the driver
//!    wakes the loop (the application caught up);
//! 3. fires the driver's timer when due;
//! 4. writes the kept output, then what `poll_transmit` produces, until
//!    `WouldBlock` (keeping the unwritten rest and asking for writability) or a
//!    budget of 16 transmits;
//! 5. tells the driver of end-of-file or a socket error (`handle_eof`) once the
//!    input before it was taken;
//! 6. once the driver is finished and its output flushed, shuts down the write
//!    side and reads until the peer closes (so unread input cannot turn the close
//!    into a reset), bounded by the connection's drain timeout, then drops it.
//!
//! The loop's poll timeout is the earliest deadline of all its connections (a
//! binary heap with lazily discarded stale entries). Commands from other threads
//! (connect, listen, stop listening, shutdown) go through a queue and the mio
//! waker. A listener
//! accepts while the server's accept queue has room; every accepted connection
//! gets a driver attached to the server's [`Hub`](weft_driver::Hub), which
//! routes publish/subscribe across the server's connections.
//!
//! # Threads
//!
//! A [`Server`] has one loop thread. [`Client::connect`] starts a loop thread for
//! its connection; [`Client::connect_on`] and [`EventLoop::connect`] put any number
//! of connections on one loop. [`Server::serve`] adds a small fixed worker pool.
//! Blocking calls must not be made from inside futures.
//!
//! [mio]: https://docs.rs/mio
#![forbid(unsafe_code)]

mod client;
mod event_loop;
mod server;

pub use client::Client;
pub use event_loop::EventLoop;
pub use server::{Server, ServerOptions};
pub use weft_core::auth::{Authenticator, PskAuthenticator};
pub use weft_core::conn::{CloseInfo, CloseKind, Negotiated, Outcome, Side, Stats};
pub use weft_core::router::RouterConfig;
pub use weft_core::{
    Config, Error, ErrorCode, OverflowPolicy, Priority, RequestId, Role, StreamId, SubId,
};
/// The thread-pool executor for application futures, shared with `weft-uring`.
pub use weft_driver::Executor;
pub use weft_driver::{
    block_on, block_on_timeout, BlockingStream, BlockingSubscription, BroadcastReport, Delivery,
    Handle, Hub, Peer, RecvTimeoutError, Reply, ShutdownReport,
};

use std::sync::{Mutex, MutexGuard};

/// Locks, going on after a panic elsewhere (every critical section here leaves the
/// data consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
