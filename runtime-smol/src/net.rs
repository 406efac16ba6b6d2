//! TCP: connecting a client, and a server that accepts connections and routes
//! publish/subscribe between them.

use crate::{global_executor, DriverTask, Executor};
use async_io::Async;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use weft_core::router::RouterConfig;
use weft_core::{Config, Role};
use weft_driver::{os_seed, Handle, Hub};

/// A TCP stream whose `poll_close` ends the write direction (sends FIN) after
/// flushing. async-io's own `poll_close` only flushes, so without this a closing
/// side never ended its stream and both sides waited out the linger period
/// (spec 15.5 step 2; scenario `close/linger-ends-write-first`).
struct Tcp(Async<TcpStream>);

impl futures_io::AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(self.0.get_ref().shutdown(Shutdown::Write)),
            other => other,
        }
    }
}

/// Connects to a Weft server over TCP (with `TCP_NODELAY`) and runs the connection
/// on the [`global_executor`]. Resolves once the TCP connection is made; the
/// handshake goes on in the background (await [`Handle::connected`]), and requests
/// may be issued right away.
///
/// `addr` is anything [`ToSocketAddrs`] takes, as for the other adapters'
/// `connect` (a [`SocketAddr`], `"127.0.0.1:7000"`, `("localhost", 7000)`); each
/// address it resolves to is tried in turn. A literal address is parsed; a host
/// name is resolved by the system's resolver on the calling thread, which blocks.
pub async fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
    connect_on(addr, config, global_executor()).await
}

/// [`connect`], with the connection's task spawned on `executor`.
pub async fn connect_on(
    addr: impl ToSocketAddrs,
    config: Config,
    executor: &Executor<'_>,
) -> io::Result<Handle> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last = None;
    for a in addrs {
        match Async::<TcpStream>::connect(a).await {
            Ok(stream) => {
                stream.get_ref().set_nodelay(true)?;
                let (driver, handle) = weft_driver::connect(Role::Client, config, os_seed());
                driver.set_peer_addr(a);
                executor
                    .spawn(DriverTask::new(Tcp(stream), driver))
                    .detach();
                return Ok(handle);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")))
}

/// A Weft server on a TCP listener. Every accepted connection is attached to the
/// server's [`Hub`], which routes publish/subscribe between them, before its task
/// starts.
pub struct Server {
    /// `None` once a graceful shutdown closed it.
    listener: Option<Async<TcpListener>>,
    config: Config,
    hub: Arc<Hub>,
    executor: Option<Arc<Executor<'static>>>,
    /// The connections' driver tasks, kept so [`Server::shutdown`] can cut them.
    tasks: std::sync::Mutex<Vec<crate::Task<()>>>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr().ok())
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr` (port 0 picks a free one); connections get `config` and
    /// the default routing limits. Connection tasks run on the
    /// [`global_executor`] unless [`with_executor`](Self::with_executor) says
    /// otherwise.
    pub fn bind(addr: impl Into<SocketAddr>, config: Config) -> io::Result<Server> {
        Server::bind_with(addr, config, RouterConfig::default())
    }

    /// [`bind`](Self::bind) with the hub's routing limits.
    pub fn bind_with(
        addr: impl Into<SocketAddr>,
        config: Config,
        router: RouterConfig,
    ) -> io::Result<Server> {
        Ok(Server {
            listener: Some(Async::<TcpListener>::bind(addr.into())?),
            config,
            hub: Hub::new(router),
            executor: None,
            tasks: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs the tasks of connections accepted from now on on `executor`.
    pub fn with_executor(mut self, executor: Arc<Executor<'static>>) -> Server {
        self.executor = Some(executor);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener()?.get_ref().local_addr()
    }

    fn listener(&self) -> io::Result<&Async<TcpListener>> {
        self.listener
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the server shut down"))
    }

    /// The hub routing publish/subscribe between this server's connections.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Accepts the next connection (with `TCP_NODELAY`), attaches it to the hub,
    /// spawns its task, and returns the application's handle to it. Errors are the
    /// listener's (a connection reset before it was accepted, too many open files):
    /// the server itself stays usable.
    pub async fn accept(&self) -> io::Result<Handle> {
        let (stream, peer) = self.listener()?.accept().await?;
        stream.get_ref().set_nodelay(true)?;
        let (mut driver, handle) =
            weft_driver::connect(Role::Server, self.config.clone(), os_seed());
        driver.set_peer_addr(peer);
        self.hub.attach(&mut driver);
        let task = DriverTask::new(Tcp(stream), driver);
        let task = match &self.executor {
            Some(ex) => ex.spawn(task),
            None => global_executor().spawn(task),
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(handle)
    }

    /// Stops the server at once: the listener closes and every connection's
    /// transport is dropped without a CLOSE (peers see the connection lost), as
    /// when a server process dies. For a graceful end, use
    /// [`graceful_shutdown`](Self::graceful_shutdown).
    pub async fn shutdown(self) {
        self.abort_connections().await;
    }

    /// Shuts down gracefully: the listener closes (nothing more is accepted),
    /// every connection is closed with `NO_ERROR` (each finishes its in-flight
    /// work, bounded by its `drain_timeout`, then lingers as spec 15.5 says,
    /// bounded by `linger`), and this returns once every connection's task ended:
    /// with the default configuration within about 12 s, however the peers behave.
    pub async fn graceful_shutdown(mut self) {
        self.listener = None;
        self.hub
            .close_all(weft_core::ErrorCode::NO_ERROR, "server shutting down");
        let tasks = core::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.await;
        }
    }

    /// Drops every accepted connection's transport without a CLOSE (peers see the
    /// connection lost); the server keeps listening.
    pub async fn abort_connections(&self) {
        let tasks = core::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.cancel().await;
        }
    }
}

impl Drop for Server {
    /// Dropping the server closes the listener; its connections go on.
    fn drop(&mut self) {
        let tasks = core::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.detach();
        }
    }
}
