//! Weft over [smol](https://docs.rs/smol): TCP connections, a server with
//! publish/subscribe routing, and streams as `futures-io` byte streams.
//!
//! All protocol logic and the application API live in `weft-core` and the shared
//! driver ([`Handle`], its futures, the [`Hub`], and the one I/O task of every
//! async runtime, [`weft_driver::IoTask`]); this crate only hands smol's sockets
//! and timers to it. Each connection is one task, a [`DriverTask`], on an
//! [`Executor`]: [`connect`] and [`Server`] use the
//! [`global_executor`] (one background thread, as `smol::spawn` has), and
//! [`spawn`] and [`connect_on`] take any executor you run yourself.
//!
//! It is built on smol's parts (`async-io`, `async-executor`), not the `smol`
//! facade, and works alongside it: [`block_on`] *is* `smol::block_on`, [`Executor`]
//! is `smol::Executor`, and the [`Handle`] futures run on any executor.
//!
//! ```
//! use weft_smol::{global_executor, Config, Outcome, Server};
//!
//! weft_smol::block_on(async {
//!     let server = Server::bind(([127, 0, 0, 1], 0), Config::default())?;
//!     let addr = server.local_addr()?;
//!     // The server: each accepted connection answers requests on its own task.
//!     global_executor()
//!         .spawn(async move {
//!             while let Ok(handle) = server.accept().await {
//!                 global_executor()
//!                     .spawn(async move {
//!                         handle
//!                             .serve(|subject, payload| match subject {
//!                                 b"greet" => Ok([&b"hello, "[..], payload].concat()),
//!                                 _ => Err((404, "no such subject".into())),
//!                             })
//!                             .await
//!                     })
//!                     .detach();
//!             }
//!         })
//!         .detach();
//!
//!     // The client: one request.
//!     let client = weft_smol::connect(addr, Config::default()).await?;
//!     let reply = client.request(b"greet", b"world", None).await?;
//!     assert_eq!(reply.outcome, Outcome::Ok);
//!     assert_eq!(&reply.payload[..], b"hello, world");
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! .unwrap();
//! ```
#![forbid(unsafe_code)]

mod net;
mod stream;
mod task;

pub use net::{connect, connect_on, Server};
pub use stream::Stream;
pub use task::DriverTask;

/// smol's executor (`smol::Executor`) and its task handle (`smol::Task`).
pub use async_executor::{Executor, Task};
/// Runs a future to completion on the current thread, driving smol's reactor
/// while it waits (`smol::block_on` is this function).
pub use async_io::block_on;

pub use weft_core;
pub use weft_core::auth::{Authenticator, PskAuthenticator};
pub use weft_core::conn::{CloseInfo, CloseKind, Negotiated, Outcome, Side, Stats};
pub use weft_core::router::RouterConfig;
pub use weft_core::{
    Config, Error, ErrorCode, OverflowPolicy, Priority, RequestId, Role, StreamId, SubId,
};
pub use weft_driver::{
    AcceptStream, Answer, BatchError, BroadcastReport, Bytes, Closed, Connected, Delivery, Driver,
    Flush, Handle, Hub, HubPublish, IncomingRequest, NextDelivery, NextMessage, NextMessages,
    NextRequest, Peer, Reply, RequestCancelled, RequestError, RequestFuture, RequestInfo,
    SendFuture, SendMany, SubscribeFuture, Subscription, WeftStream,
};

use std::sync::OnceLock;

/// The executor [`connect`] and [`Server`] spawn connection tasks on, started on
/// first use with one background thread named `weft-smol` (like smol's global
/// executor with its default `SMOL_THREADS=1`). Spawn your own tasks on it too, or
/// use your own executor with [`spawn`] and [`connect_on`].
///
/// # Panics
///
/// If the operating system refuses to start the thread.
pub fn global_executor() -> &'static Executor<'static> {
    static GLOBAL: OnceLock<Executor<'static>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        std::thread::Builder::new()
            .name("weft-smol".into())
            .spawn(|| {
                // Waits for the initialisation below to finish, then runs forever.
                let ex = global_executor();
                block_on(ex.run(std::future::pending::<()>()))
            })
            .expect("start the weft-smol executor thread");
        Executor::new()
    })
}

/// Runs a Weft connection over `io` (any `futures-io` byte stream: a TCP or Unix
/// socket, a TLS stream, an in-memory pipe) as `role`, with its [`DriverTask`]
/// spawned on `executor` and detached; returns the application's [`Handle`].
///
/// The task ends once the connection is closed and its last bytes were written;
/// dropping the last [`Handle`] closes the connection gracefully. To run the task
/// elsewhere, build it with [`DriverTask::new`] from
/// [`weft_driver::connect`].
///
/// Closing ends `io`'s write direction with `poll_close` (spec 15.5): pass a
/// transport whose `poll_close` does so. async-io's `Async<TcpStream>` only
/// flushes there, so a bare one makes every close wait for the linger period;
/// [`connect`] and [`Server`] wrap theirs.
pub fn spawn<T>(io: T, role: Role, config: Config, executor: &Executor<'_>) -> Handle
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static,
{
    let (driver, handle) = weft_driver::connect(role, config, weft_driver::os_seed());
    executor.spawn(DriverTask::new(io, driver)).detach();
    handle
}
