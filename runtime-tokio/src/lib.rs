//! Weft over tokio.
//!
//! The protocol and the whole application API live in `weft-core` and the shared
//! driver (`weft-driver`); this crate only hands tokio's sockets and timers to the
//! driver's one I/O task ([`weft_driver::IoTask`]). Each connection is one spawned
//! task that reads from the transport, writes what the connection produces, and
//! sleeps until its next deadline; once the connection is over it closes the
//! transport by the linger policy ([`Config::linger`]). The
//! application talks to it through a [`Handle`] (requests, messages, publish and
//! subscribe, streams, close, statistics), whose futures may be awaited anywhere.
//!
//! - [`connect`] opens a TCP connection as a client.
//! - [`Server`] accepts TCP connections and routes publish/subscribe between them
//!   through its [`Hub`].
//! - [`spawn`] (and [`spawn_attached`] for a server's hub) runs a connection over
//!   any transport: a Unix socket, a TLS stream, an in-memory pipe.
//! - [`Stream`] is a Weft stream as a tokio [`AsyncRead`] + [`AsyncWrite`].
//!
//! The runtime must have I/O and time enabled (`Runtime::new()` or
//! `Builder::enable_all()`); [`runtime`] re-exports what is needed to build one.
//!
//! ```
//! use weft_tokio::{Config, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = weft_tokio::runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let server = Server::bind("127.0.0.1:0", Config::default()).await?;
//!     let addr = server.local_addr()?;
//!     // The server answers requests on the one connection it accepts.
//!     rt.spawn(async move {
//!         let conn = server.accept().await.expect("accept");
//!         conn.serve(|subject, payload| match subject {
//!             b"greet" => Ok([b"hello, ".as_slice(), payload].concat()),
//!             _ => Err((404, "no such subject".to_string())),
//!         })
//!         .await;
//!     });
//!
//!     let client = weft_tokio::connect(addr, Config::default()).await?;
//!     let reply = client.request(b"greet", b"world", None).await?;
//!     println!("{}", String::from_utf8_lossy(&reply.payload));
//!     assert_eq!(&reply.payload[..], b"hello, world");
//!     // Dropping the last handle closes the connection gracefully.
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]

mod stream;
mod task;

use core::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use weft_driver::{self as driver, Driver};

pub use stream::Stream;
pub use weft_core::auth::{Authenticator, PskAuthenticator};
pub use weft_core::conn::{CloseInfo, CloseKind, Negotiated, Outcome, Side, Stats};
pub use weft_core::router::RouterConfig;
pub use weft_core::{
    Config, Error, ErrorCode, OverflowPolicy, Priority, RequestId, Role, StreamId, SubId,
};
pub use weft_driver::{
    AcceptStream, Answer, BatchError, BroadcastReport, Bytes, Closed, Connected, Delivery, Flush,
    Handle, Hub, HubPublish, IncomingRequest, NextDelivery, NextMessage, NextMessages, NextRequest,
    Peer, Reply, RequestCancelled, RequestError, RequestFuture, RequestInfo, SendFuture, SendMany,
    SubscribeFuture, Subscription, WeftStream,
};

/// The README's examples (the adapter's and the core's), compiled as doctests
/// here, where both crates and tokio's macros are at hand, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// What is needed from tokio to run this crate without depending on tokio
/// directly: the runtime and its builder.
pub mod runtime {
    pub use tokio::runtime::{Builder, Runtime};
}

/// Runs a connection over `io` on the current tokio runtime and returns its
/// handle. The handshake starts at once; await [`Handle::connected`] to know it
/// completed. Works over any byte transport (TCP, Unix socket, TLS stream).
///
/// A server connection made this way does no publish/subscribe routing: use
/// [`spawn_attached`] or [`Server`] for that.
///
/// # Panics
///
/// When called outside a tokio runtime. The runtime needs its time driver (and,
/// for sockets, its I/O driver) enabled.
pub fn spawn<T>(io: T, role: Role, config: Config) -> Handle
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (driver, handle) = driver::connect(role, config, driver::os_seed());
    start(io, driver, role, None);
    handle
}

/// Runs a server connection over `io` whose publish/subscribe is routed by `hub`
/// (shared with the server's other connections).
///
/// # Panics
///
/// When called outside a tokio runtime. The runtime needs its time driver (and,
/// for sockets, its I/O driver) enabled.
pub fn spawn_attached<T>(io: T, config: Config, hub: &Arc<Hub>) -> Handle
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut driver, handle) = driver::connect(Role::Server, config, driver::os_seed());
    hub.attach(&mut driver);
    start(io, driver, Role::Server, None);
    handle
}

/// Spawns the driver task; the driver is fully set up (hub attached) by now.
fn start<T>(io: T, driver: Driver, role: Role, peer: Option<SocketAddr>) -> JoinHandle<()>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let span = tracing::debug_span!("weft", ?role, peer = tracing::field::Empty);
    if let Some(p) = peer {
        span.record("peer", tracing::field::display(p));
        driver.set_peer_addr(p);
    }
    span.in_scope(|| tracing::debug!("connection open"));
    tokio::spawn(task::task(io, driver).instrument(span))
}

/// Connects to a Weft server over TCP (with `TCP_NODELAY`) and returns the
/// connection's handle; the handshake may still be in progress.
pub async fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let peer = tcp.peer_addr().ok();
    let (driver, handle) = driver::connect(Role::Client, config, driver::os_seed());
    start(tcp, driver, Role::Client, peer);
    Ok(handle)
}

/// A Weft server on a TCP listener. Every accepted connection is attached to the
/// server's [`Hub`] before its task starts, so messages published on one
/// connection reach subscribers on the others.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: Config,
    hub: Arc<Hub>,
    conns: Aborter,
}

/// Cuts the connections a [`Server`] accepted, even after the server itself was
/// moved into [`Server::serve`]. Cloneable.
#[derive(Clone, Debug, Default)]
pub struct Aborter(Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>);

impl Aborter {
    fn add(&self, h: JoinHandle<()>) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    /// Drops every accepted connection's transport without a CLOSE: peers see
    /// the connection lost, as when a server process dies. For a graceful end,
    /// close the handles instead.
    ///
    /// Completes once every task is gone. A task being polled on another worker
    /// when it is aborted finishes that poll first, and could write a CLOSE an
    /// application queued meanwhile; callers that drop the applications next
    /// must wait for this, as smol's `Server::abort_connections` does.
    pub async fn abort_connections(&self) {
        let v = core::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for h in &v {
            h.abort();
        }
        for h in v {
            // Cancelled (or already finished): either way the transport is gone.
            let _ = h.await;
        }
    }
}

impl Server {
    /// Listens on `addr` with `config` for every connection and the default
    /// routing limits.
    pub async fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Server> {
        Server::bind_with(addr, config, RouterConfig::default()).await
    }

    /// [`bind`](Self::bind) with explicit routing limits.
    pub async fn bind_with(
        addr: impl ToSocketAddrs,
        config: Config,
        router: RouterConfig,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server::from_listener(listener, config, Hub::new(router)))
    }

    /// A server on an existing listener, routing through `hub` (which may be
    /// shared with other servers or with [`spawn_attached`] connections).
    pub fn from_listener(listener: TcpListener, config: Config, hub: Arc<Hub>) -> Server {
        Server {
            listener,
            config,
            hub,
            conns: Aborter::default(),
        }
    }

    /// A handle that can cut this server's connections (see [`Aborter`]).
    pub fn aborter(&self) -> Aborter {
        self.conns.clone()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The hub routing publish/subscribe between its connections.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Accepts the next connection, starts its task and returns its handle.
    /// Cancel-safe: dropping the future accepts nothing.
    pub async fn accept(&self) -> io::Result<Handle> {
        let (tcp, peer) = self.listener.accept().await?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "set_nodelay failed");
        }
        let (mut driver, handle) =
            driver::connect(Role::Server, self.config.clone(), driver::os_seed());
        self.hub.attach(&mut driver);
        self.conns.add(start(tcp, driver, Role::Server, Some(peer)));
        Ok(handle)
    }

    /// Accepts connections until the listener fails, running `app` on each one's
    /// handle in its own task. Errors of a single incoming connection (reset or
    /// aborted before it was accepted) are skipped.
    ///
    /// Dropping this future (e.g. aborting its task) stops accepting, closes the
    /// listener and aborts the application tasks it spawned; connections whose
    /// handles are then all dropped close gracefully. For a shutdown that lets
    /// them finish, use [`serve_with_shutdown`](Self::serve_with_shutdown).
    pub async fn serve<F, Fut>(self, app: F) -> io::Result<()>
    where
        F: FnMut(Handle) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.serve_with_shutdown(app, core::future::pending()).await
    }

    /// [`serve`](Self::serve) until `signal` resolves, then shuts down
    /// gracefully: stops accepting (the listener closes), closes every
    /// connection with `NO_ERROR` (each finishes its in-flight work, bounded by
    /// its `drain_timeout`, then lingers as spec 15.5 says, bounded by `linger`),
    /// waits until every connection's task and every application task ended, and
    /// returns `Ok`. With the default configuration it returns within about 12 s
    /// of the signal, however the peers behave.
    ///
    /// ```no_run
    /// # async fn f(server: weft_tokio::Server, stop: impl std::future::Future<Output = ()>)
    /// # -> std::io::Result<()> {
    /// // `stop`: e.g. `async { let _ = tokio::signal::ctrl_c().await; }`
    /// server.serve_with_shutdown(|h| async move { let _ = h; }, stop).await
    /// # }
    /// ```
    pub async fn serve_with_shutdown<F, Fut, S>(self, mut app: F, signal: S) -> io::Result<()>
    where
        F: FnMut(Handle) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
        S: Future<Output = ()>,
    {
        let mut apps = tokio::task::JoinSet::new();
        let mut signal = core::pin::pin!(signal);
        loop {
            // Reap finished applications so the set stays as large as the live ones.
            while apps.try_join_next().is_some() {}
            let next = {
                let mut accept = core::pin::pin!(self.accept());
                core::future::poll_fn(|cx| {
                    if signal.as_mut().poll(cx).is_ready() {
                        return core::task::Poll::Ready(None);
                    }
                    accept.as_mut().poll(cx).map(Some)
                })
                .await
            };
            let Some(next) = next else {
                break;
            };
            match next {
                Ok(handle) => {
                    apps.spawn(app(handle));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    tracing::debug!(error = %e, "incoming connection failed");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    return Err(e);
                }
            }
        }
        tracing::debug!("shutting down");
        let Server {
            listener,
            hub,
            conns,
            ..
        } = self;
        drop(listener);
        hub.close_all(ErrorCode::NO_ERROR, "server shutting down");
        let tasks = core::mem::take(&mut *conns.0.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            // A task ends once its connection closed and lingered; none is aborted.
            let _ = t.await;
        }
        // Each application sees its connection end (its reads return None).
        while apps.join_next().await.is_some() {}
        Ok(())
    }
}
