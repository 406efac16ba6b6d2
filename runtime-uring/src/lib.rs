//! Weft over Linux io_uring: a completion-based adapter for the shared driver of
//! [`weft_driver`].
//!
//! All protocol logic lives in `weft-core`, and the async application API
//! ([`Handle`]) and the blocking [`Client`] in `weft-driver`; this crate only
//! moves bytes, time and wake-ups, through io_uring:
//!
//! * one ring per event-loop thread ([`EventLoop`]); a loop hosts any number of
//!   connections and listeners;
//! * an idle connection owns no buffer: its pending `Recv` takes a buffer from
//!   the ring's pool of provided buffers only when data arrives, and each `Send`
//!   takes one of the loop's spare send buffers; operations own their memory
//!   while in the ring and hand it back with the completion, so the kernel never
//!   writes into memory the loop uses or frees;
//! * listeners re-submit a single-shot `Accept` after each connection;
//! * one `Timeout` operation stands for the earliest deadline of the loop's
//!   connections;
//! * application threads wake the loop through a Unix socket pair whose read end
//!   always has a `Recv` pending in the ring.
//!
//! [`Client`] and [`Server`] run a loop each and add blocking conveniences;
//! [`BlockingStream`] is a stream as [`std::io::Read`] + [`std::io::Write`];
//! [`Executor`] runs per-connection application futures on a few threads.
//!
//! Where io_uring is unavailable (a kernel older than 5.6, or io_uring disabled by
//! seccomp or `kernel.io_uring_disabled`), every constructor fails with an error
//! for which [`is_unavailable`] holds and whose message says so.
//!
//! ```
//! use weft_core::Config;
//! use weft_uring::{Client, Server};
//!
//! let server = Server::bind("127.0.0.1:0", Config::default())?;
//! let addr = server.local_addr();
//! let serving = std::thread::spawn(move || {
//!     // One connection, served until it closes.
//!     let conn = server.accept().expect("a connection");
//!     weft_driver::block_on(conn.serve(|subject, payload| match subject {
//!         b"greet" => Ok([b"hello, ".as_slice(), payload].concat()),
//!         _ => Err((404, "no such subject".to_string())),
//!     }));
//! });
//!
//! let client = Client::connect(addr, Config::default())?;
//! let reply = client.request(b"greet", b"world", None).expect("a reply");
//! assert_eq!(&reply.payload[..], b"hello, world");
//! drop(client); // closes gracefully; the server's `serve` returns
//! serving.join().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design choices
//!
//! * **Buffers.** Memory per idle connection is what matters for a server with
//!   many connections, so connections own buffers only while they need them.
//!   Receives use a provided-buffer ring (Linux 5.19): the kernel picks one of the
//!   loop's 64 KiB pool buffers when data arrives, the bytes are offered to the
//!   driver straight from it, and it goes back to the pool at once. Only bytes the
//!   driver does not take (the application is behind: it buffers at most one
//!   record ahead) are copied into a buffer the connection keeps until a whole
//!   period of its timer passes without a backlog. The pool starts with two
//!   buffers (a lone busy connection cycles through few, warm ones) and grows,
//!   up to 256, when a receive finds it empty (that receive is submitted again).
//!   Sends take a 128 KiB buffer (a maximal record of 65 543 bytes and room to
//!   batch small frames into one `Send`) from the loop's spares and return it
//!   when all was sent; spares not needed for a second are freed, so a steady load
//!   reuses its buffers and nothing is allocated per message. On kernels without
//!   buffer rings each connection receives into a 64 KiB buffer of its own.
//!   Registered (fixed) buffers are not used: the gain of not mapping pages per
//!   operation is not measured yet.
//! * **Accept** is single-shot and re-submitted after each connection (works on
//!   every kernel with `IORING_OP_ACCEPT`; multishot would need 5.19).
//! * **Close.** A finished connection sends its end of stream after its last
//!   bytes, then reads and discards until the peer's end of stream (at most two
//!   seconds) before closing, so the peer never sees a reset instead of our last
//!   bytes. Stopping a loop cancels every operation and waits (at most two
//!   seconds) for the kernel to hand the buffers back; buffers it never returns
//!   are leaked, never freed.
//! * **Wake-ups** use a Unix socket pair rather than an `eventfd` because the
//!   crate creates no descriptor through `libc` (no `unsafe` outside the ring).
//!
//! # Unsafe code
//!
//! The crate denies `unsafe_code` everywhere but in its private `ring` module,
//! which wraps the `io-uring` crate's `unsafe` submission: there, the memory an
//! operation points to is owned by the ring from before the submission until the
//! kernel's completion (and leaked, never freed, if the ring goes first).
#![cfg_attr(not(target_os = "linux"), allow(unused))]
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("weft-uring needs Linux: io_uring is a Linux interface");

#[cfg(target_os = "linux")]
mod client;
#[cfg(target_os = "linux")]
mod event_loop;
#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
mod server;

#[cfg(target_os = "linux")]
pub use client::Client;
#[cfg(target_os = "linux")]
pub use event_loop::EventLoop;
#[cfg(target_os = "linux")]
pub use server::{NextConnection, Server, ACCEPT_QUEUE};
pub use weft_core::auth::{Authenticator, PskAuthenticator};
pub use weft_core::conn::{CloseInfo, CloseKind, Negotiated, Outcome, Side, Stats};
pub use weft_core::router::RouterConfig;
pub use weft_core::{
    Config, Error, ErrorCode, OverflowPolicy, Priority, RequestId, Role, StreamId, SubId,
};
pub use weft_driver::{
    block_on, block_on_timeout, BlockingStream, BlockingSubscription, BroadcastReport, Delivery,
    Handle, Hub, Peer, RecvTimeoutError, Reply, ShutdownReport,
};
/// The thread-pool executor for application futures, shared with `weft-mio`.
pub use weft_driver::{Executor, Spawner};

/// Builds the error that constructors return when io_uring cannot be set up,
/// from its cause: kind `Unsupported` (`ENOSYS`, `EINVAL`) or
/// `PermissionDenied` (`EPERM`, `EACCES`) where it applies, and a message
/// starting "io_uring is unavailable".
#[cfg(target_os = "linux")]
pub fn unavailable(cause: std::io::Error) -> std::io::Error {
    crate::ring::unavailable(cause)
}

/// True if `err` is the error of a failed io_uring set-up (see [`unavailable`]).
#[cfg(target_os = "linux")]
pub fn is_unavailable(err: &std::io::Error) -> bool {
    err.get_ref()
        .is_some_and(|e| e.is::<crate::ring::Unavailable>())
}

/// Checks that io_uring can be set up here, with every operation this crate
/// uses.
#[cfg(target_os = "linux")]
pub fn check_available() -> std::io::Result<()> {
    crate::ring::Ring::<()>::new(4, None).map(drop)
}
