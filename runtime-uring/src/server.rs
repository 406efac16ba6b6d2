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
use weft_driver::{block_on, Handle, Hub};

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
/// Dropping it (or [`shutdown`](Self::shutdown)) stops accepting, drops every
/// connection (their handles see the connection lost) and joins the loop.
pub struct Server {
    addr: SocketAddr,
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
        event_loop.listen(listener, config, hub.clone(), Box::new(on_connection));
        Ok(Server {
            addr,
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

    /// Stops now (the same as dropping it).
    pub fn shutdown(self) {}
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
