//! The blocking server: one event loop thread for all its connections.

use crate::event_loop::EventLoop;
use crate::lock;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};
use weft_core::router::RouterConfig;
use weft_core::Config;
use weft_driver::Executor;
use weft_driver::{graceful_close_limit, Handle, Hub, ShutdownReport, DEFAULT_QUEUE_CAP};

/// Settings of a [`Server`] beyond the connection [`Config`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Limits of the publish/subscribe hub shared by the server's connections
    /// (default [`RouterConfig::default`]).
    pub router: RouterConfig,
    /// Accepted connections waiting for [`Server::accept`]; when full, the loop
    /// stops accepting and the kernel's backlog holds further clients (default 1,024).
    pub accept_queue: usize,
    /// Bound on each application-facing queue of a connection (see
    /// [`weft_driver::connect_with`]; default [`DEFAULT_QUEUE_CAP`]).
    pub queue_cap: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            router: RouterConfig::default(),
            accept_queue: 1024,
            queue_cap: DEFAULT_QUEUE_CAP,
        }
    }
}

struct AcceptState {
    queue: VecDeque<Handle>,
    closed: bool,
    /// A graceful shutdown is waiting for the connections to end: [`Server::serve`]
    /// keeps its workers until then, so its handlers finish their requests.
    draining: bool,
    /// The loop's waker for the listener: woken when room appears or on close.
    waker: Option<Waker>,
}

/// Accepted connections between the loop and [`Server::accept`].
pub(crate) struct AcceptQueue {
    state: Mutex<AcceptState>,
    ready: Condvar,
    cap: usize,
    pub(crate) config: Config,
    pub(crate) hub: Arc<Hub>,
    pub(crate) queue_cap: usize,
}

impl AcceptQueue {
    pub(crate) fn set_waker(&self, w: Waker) {
        lock(&self.state).waker = Some(w);
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// How many more connections the queue takes now.
    pub(crate) fn room(&self) -> usize {
        let st = lock(&self.state);
        if st.closed {
            0
        } else {
            self.cap.saturating_sub(st.queue.len())
        }
    }

    pub(crate) fn push(&self, h: Handle) {
        let mut st = lock(&self.state);
        if st.closed {
            drop(st);
            // Nobody will take it: closing it gracefully is all we can do.
            drop(h);
            return;
        }
        st.queue.push_back(h);
        drop(st);
        self.ready.notify_one();
    }

    /// Stops accepting: queued connections are dropped (closed gracefully) and
    /// waiting accepts return.
    pub(crate) fn close(&self) {
        let (left, waker) = {
            let mut st = lock(&self.state);
            st.closed = true;
            (std::mem::take(&mut st.queue), st.waker.take())
        };
        self.ready.notify_all();
        drop(left);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Marks a graceful shutdown under way until the guard is dropped.
    fn drain(&self) -> Draining<'_> {
        lock(&self.state).draining = true;
        Draining(self)
    }

    /// Blocks while a graceful shutdown is under way (it always ends: see
    /// [`Server::graceful_shutdown`]).
    fn wait_drained(&self) {
        let mut st = lock(&self.state);
        while st.draining {
            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn pop(&self, deadline: Option<Instant>) -> io::Result<Option<Handle>> {
        let mut st = lock(&self.state);
        loop {
            if let Some(h) = st.queue.pop_front() {
                let was_full = st.queue.len() + 1 >= self.cap;
                let waker = if was_full { st.waker.clone() } else { None };
                drop(st);
                if let Some(w) = waker {
                    w.wake();
                }
                return Ok(Some(h));
            }
            if st.closed {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "server stopped accepting",
                ));
            }
            st = match deadline {
                None => self.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// Ends a graceful shutdown's wait when dropped, even by a panic.
struct Draining<'a>(&'a AcceptQueue);

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).draining = false;
        self.0.ready.notify_all();
    }
}

/// A Weft server: a listening socket and one event-loop thread that drives every
/// accepted connection (thousands of them). Publish/subscribe is routed across the
/// server's connections by its [`Hub`].
///
/// Take connections with [`accept`](Self::accept) (a [`Handle`] each, usable from
/// any thread or executor), or let [`serve`](Self::serve) /
/// [`serve_with`](Self::serve_with) run them on a fixed pool of worker threads.
/// [`graceful_shutdown`](Self::graceful_shutdown) stops accepting, closes every
/// connection gracefully and returns once they all ended. Dropping the server (or
/// [`shutdown`](Self::shutdown)) stops its loop at once and drops its
/// connections; [`stop`](Self::stop) only stops accepting.
pub struct Server {
    ev: EventLoop,
    queue: Arc<AcceptQueue>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("connections", &self.ev.connections())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr` with `config` for every connection, and default
    /// [`ServerOptions`].
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Server> {
        Server::bind_with(addr, config, ServerOptions::default())
    }

    /// [`bind`](Self::bind) with explicit options.
    pub fn bind_with(
        addr: impl ToSocketAddrs,
        config: Config,
        options: ServerOptions,
    ) -> io::Result<Server> {
        let mut last = None;
        let mut bound = None;
        for a in addr.to_socket_addrs()? {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let listener = match bound {
            Some(l) => l,
            None => {
                return Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")
                }))
            }
        };
        let addr = listener.local_addr()?;
        let queue = Arc::new(AcceptQueue {
            state: Mutex::new(AcceptState {
                queue: VecDeque::new(),
                closed: false,
                draining: false,
                waker: None,
            }),
            ready: Condvar::new(),
            cap: options.accept_queue.max(1),
            config,
            hub: Hub::new(options.router),
            queue_cap: options.queue_cap.max(1),
        });
        let ev = EventLoop::new()?;
        ev.listen(listener, queue.clone())?;
        Ok(Server { ev, queue, addr })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub routing publish/subscribe between the server's connections.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.queue.hub
    }

    /// The server's event loop (it may drive client connections too).
    pub fn event_loop(&self) -> &EventLoop {
        &self.ev
    }

    /// Connections the server's loop currently drives.
    pub fn connections(&self) -> usize {
        self.ev.connections()
    }

    /// Waits for the next connection (its handshake may still be in progress:
    /// see [`Handle::connected`]). Fails once the server stopped accepting.
    pub fn accept(&self) -> io::Result<Handle> {
        match self.queue.pop(None)? {
            Some(h) => Ok(h),
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "accept")),
        }
    }

    /// [`accept`](Self::accept), giving up after `timeout` with `Ok(None)`.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<Option<Handle>> {
        self.queue.pop(Some(Instant::now() + timeout))
    }

    /// Serves requests on every connection with `handler` until the server stops
    /// (returns `Ok` then): `handler` maps subject and payload to a result payload,
    /// or an application error code and message. The connections run on a fixed
    /// pool of worker threads (as many as the machine has cores, at most four),
    /// shut down when this returns; requests of all connections share it. After a
    /// [`graceful_shutdown`](Self::graceful_shutdown) it returns once that
    /// returned, so the handlers answer the requests in flight.
    pub fn serve<H>(&self, handler: H) -> io::Result<()>
    where
        H: Fn(&[u8], &[u8]) -> Result<Vec<u8>, (u64, String)> + Send + Sync + 'static,
    {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let exec = Executor::new(workers)?;
        let handler = Arc::new(handler);
        let r = self.serve_with(&exec, move |h: Handle| {
            let handler = handler.clone();
            async move { h.serve(|s, p| handler(s, p)).await }
        });
        self.queue.wait_drained();
        exec.shutdown();
        r
    }

    /// Runs `app(handle)` on `exec` for every accepted connection until the server
    /// stops (returns `Ok` then). The applications go on running on `exec`: after a
    /// [`graceful_shutdown`](Self::graceful_shutdown), shut `exec` down once that
    /// returned, not before, or the requests in flight go unanswered.
    pub fn serve_with<F, Fut>(&self, exec: &Executor, mut app: F) -> io::Result<()>
    where
        F: FnMut(Handle) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            match self.queue.pop(None) {
                Ok(Some(h)) => exec.spawn(app(h)),
                Ok(None) => {}
                Err(_) if self.queue.is_closed() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops accepting: [`accept`](Self::accept) and the `serve` calls return, and
    /// connections not yet accepted are closed. Established connections go on.
    pub fn stop(&self) {
        self.queue.close();
    }

    /// Stops at once, abruptly: stops accepting and stops the event loop; every
    /// connection is dropped without a CLOSE (its handles and its peer see the
    /// connection lost, as when a server process dies) and the loop thread is
    /// joined. For an end that lets the connections finish, use
    /// [`graceful_shutdown`](Self::graceful_shutdown).
    pub fn shutdown(&self) {
        self.stop();
        self.ev.shutdown();
    }

    /// Shuts down gracefully, blocking until done: stops accepting (the listener
    /// closes; connections accepted but not taken by [`accept`](Self::accept) are
    /// closed too), closes every connection with `NO_ERROR` (each finishes its
    /// in-flight work, bounded by its `drain_timeout`, then lingers as spec 15.5
    /// says, bounded by `linger`), waits until every connection has ended, then
    /// stops the event loop as [`shutdown`](Self::shutdown) does. It always
    /// returns: connections still open after
    /// [`graceful_close_limit`](weft_driver::graceful_close_limit) of the
    /// configuration (23 s by default) are cut, and the report counts them.
    ///
    /// The applications' handles see their connection end (reads return `None`);
    /// a [`serve`](Self::serve) in progress returns after this, having answered
    /// the requests in flight. Must not be called from a future or from the loop
    /// thread.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weft_core::Config;
    /// use weft_mio::{Client, Server};
    ///
    /// let server = Arc::new(Server::bind("127.0.0.1:0", Config::default())?);
    /// let serving = {
    ///     let server = server.clone();
    ///     std::thread::spawn(move || server.serve(|_, payload| Ok(payload.to_vec())))
    /// };
    /// let client = Client::connect(server.local_addr(), Config::default())?;
    /// assert_eq!(&client.request(b"echo", b"hi", None)?.payload[..], b"hi");
    ///
    /// let report = server.graceful_shutdown();
    /// assert!(report.all_graceful(), "{report:?}");
    /// serving.join().expect("serving thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn graceful_shutdown(&self) -> ShutdownReport {
        // Before the queue closes, so that `serve` keeps its workers.
        let draining = self.queue.drain();
        self.stop();
        self.ev.stop_listening();
        let report = self
            .queue
            .hub
            .close_all_and_wait(graceful_close_limit(&self.queue.config));
        // What is left was cut at the limit (the report says so).
        self.ev.shutdown();
        drop(draining);
        report
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
