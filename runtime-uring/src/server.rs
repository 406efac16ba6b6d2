//! The blocking server: a listener and its accepted connections on an event loop
//! of their own, the connections' handles queued for [`Server::accept`] or passed
//! to a callback.

use crate::event_loop::{lock, EventLoop};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use weft_core::router::RouterConfig;
use weft_core::Config;
use weft_driver::{block_on, graceful_close_limit, Handle, Hub, ShutdownReport};

/// Most accepted connections that wait in [`Server::accept`]'s queue; more are
/// closed at once.
pub const ACCEPT_QUEUE: usize = 1024;

#[derive(Default)]
struct AcceptQueue {
    inner: Mutex<(VecDeque<Handle>, Option<Waker>, bool)>,
}

impl AcceptQueue {
    fn push(&self, h: Handle) {
        let mut g = lock(&self.inner);
        if g.2 || g.0.len() >= ACCEPT_QUEUE {
            // Dropping the last handle closes the connection.
            drop(g);
            drop(h);
            return;
        }
        g.0.push_back(h);
        if let Some(w) = g.1.take() {
            w.wake();
        }
    }

    fn close(&self) -> Vec<Handle> {
        let mut g = lock(&self.inner);
        g.2 = true;
        if let Some(w) = g.1.take() {
            w.wake();
        }
        g.0.drain(..).collect()
    }
}

/// A listening socket on an event loop of its own; its accepted connections
/// run on the same loop, attached to the server's [`Hub`] (publish/subscribe
/// across them).
///
/// [`graceful_shutdown`](Self::graceful_shutdown) stops accepting, closes every
/// connection gracefully and returns once they all ended. Dropping it (or
/// [`shutdown`](Self::shutdown)) stops accepting, drops every connection (their
/// handles see the connection lost) and joins the loop.
pub struct Server {
    addr: SocketAddr,
    /// The connections' configuration: its timeouts bound a graceful shutdown.
    config: Config,
    hub: Arc<Hub>,
    accepted: Option<Arc<AcceptQueue>>,
    event_loop: EventLoop,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr`; accepted connections wait for
    /// [`accept`](Self::accept) / [`next_connection`](Self::next_connection)
    /// (at most [`ACCEPT_QUEUE`] of them).
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Server> {
        let queue = Arc::new(AcceptQueue::default());
        let q = queue.clone();
        let mut s = Server::bind_with(addr, config, move |h| q.push(h))?;
        s.accepted = Some(queue);
        Ok(s)
    }

    /// Listens on `addr` and passes each accepted connection's handle to
    /// `on_connection`, called on the loop's thread: it must not block (spawn
    /// the connection's work, for example with a [`Spawner`](crate::Spawner)).
    pub fn bind_with(
        addr: impl ToSocketAddrs,
        config: Config,
        on_connection: impl FnMut(Handle) + Send + 'static,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let event_loop = EventLoop::new()?;
        let hub = Hub::new(RouterConfig::default());
        event_loop.listen(
            listener,
            config.clone(),
            hub.clone(),
            Box::new(on_connection),
        );
        Ok(Server {
            addr,
            config,
            hub,
            accepted: None,
            event_loop,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub routing publish/subscribe between its connections.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The next accepted connection (blocking); `None` for a server made with
    /// [`bind_with`](Self::bind_with).
    pub fn accept(&self) -> Option<Handle> {
        block_on(self.next_connection())
    }

    /// The next accepted connection; `None` for a server made with
    /// [`bind_with`](Self::bind_with).
    pub fn next_connection(&self) -> NextConnection<'_> {
        NextConnection {
            queue: self.accepted.as_deref(),
        }
    }

    /// Stops now, abruptly (the same as dropping it): stops accepting and drops
    /// every connection without a CLOSE (their handles and peers see the
    /// connection lost, as when a server process dies). For an end that lets the
    /// connections finish, use [`graceful_shutdown`](Self::graceful_shutdown).
    pub fn shutdown(self) {}

    /// Shuts down gracefully, blocking until done: stops accepting (the listener
    /// closes; connections waiting in [`accept`](Self::accept)'s queue are closed
    /// too, and `accept` returns `None`), closes every connection with `NO_ERROR`
    /// (each finishes its in-flight work, bounded by its `drain_timeout`, then
    /// lingers as spec 15.5 says, bounded by `linger`), waits until every
    /// connection has ended, then stops the loop. It always returns: connections
    /// still open after
    /// [`graceful_close_limit`](weft_driver::graceful_close_limit) of the
    /// configuration (23 s by default) are cut, and the report counts them.
    ///
    /// The applications' handles see their connection end (reads return `None`).
    /// Must not be called from a future or from the loop's `on_connection`.
    ///
    /// ```
    /// use weft_core::Config;
    /// use weft_uring::{Client, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0", Config::default())?;
    /// let client = Client::connect(server.local_addr(), Config::default())?;
    /// let conn = server.accept().expect("a connection");
    /// let serving = std::thread::spawn(move || {
    ///     weft_driver::block_on(conn.serve(|_, payload| Ok(payload.to_vec())))
    /// });
    /// assert_eq!(&client.request(b"echo", b"hi", None).expect("reply").payload[..], b"hi");
    ///
    /// let report = server.graceful_shutdown();
    /// assert!(report.all_graceful(), "{report:?}");
    /// serving.join().expect("serving thread");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn graceful_shutdown(self) -> ShutdownReport {
        // Dropped, not kept: their last handle going closes them gracefully.
        drop(self.accepted.as_ref().map(|q| q.close()));
        self.event_loop.stop_listening();
        // Dropping the server afterwards stops the loop, cutting what the limit
        // left (the report says so).
        self.hub
            .close_all_and_wait(graceful_close_limit(&self.config))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let queued = self.accepted.as_ref().map(|q| q.close());
        self.event_loop.stop_now();
        drop(queued);
    }
}

/// Resolves to the next connection a [`Server`] accepted.
#[derive(Debug)]
pub struct NextConnection<'a> {
    queue: Option<&'a AcceptQueue>,
}

impl core::fmt::Debug for AcceptQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptQueue").finish_non_exhaustive()
    }
}

impl Future for NextConnection<'_> {
    type Output = Option<Handle>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Handle>> {
        let Some(q) = self.queue else {
            return Poll::Ready(None);
        };
        let mut g = lock(&q.inner);
        if let Some(h) = g.0.pop_front() {
            return Poll::Ready(Some(h));
        }
        if g.2 {
            return Poll::Ready(None);
        }
        match &g.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => g.1 = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
