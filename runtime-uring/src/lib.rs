//! Weft over Linux io_uring: a completion-based adapter for the shared driver of
//! [`weft_driver`].
//!
//! All protocol logic and the async application API ([`Handle`](weft_driver::Handle)) live in
//! `weft-core`; this crate only moves bytes, time and wake-ups, through io_uring:
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
mod event_loop;
#[cfg(target_os = "linux")]
#[cfg(target_os = "linux")]
mod ring;

#[cfg(target_os = "linux")]
pub use event_loop::EventLoop;
#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "linux")]
/// The thread-pool executor for application futures, shared with `weft-mio`.
pub use weft_driver::{Executor, Spawner};

#[cfg(target_os = "linux")]
mod linux {
    use crate::event_loop::{lock, EventLoop};
    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll, Waker};
    use core::time::Duration;
    use std::collections::VecDeque;
    use std::io;
    use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
    use std::sync::{Arc, Mutex};
    use weft_core::conn::CloseInfo;
    use weft_core::router::RouterConfig;
    use weft_core::{Config, Error, ErrorCode};
    use weft_driver::{block_on, Handle, Hub, Reply, WeftStream};

    /// Builds the error that constructors return when io_uring cannot be set up,
    /// from its cause: kind `Unsupported` (`ENOSYS`, `EINVAL`) or
    /// `PermissionDenied` (`EPERM`, `EACCES`) where it applies, and a message
    /// starting "io_uring is unavailable".
    pub fn unavailable(cause: io::Error) -> io::Error {
        crate::ring::unavailable(cause)
    }

    /// True if `err` is the error of a failed io_uring set-up (see [`unavailable`]).
    pub fn is_unavailable(err: &io::Error) -> bool {
        err.get_ref()
            .is_some_and(|e| e.is::<crate::ring::Unavailable>())
    }

    /// Checks that io_uring can be set up here, with every operation this crate
    /// uses.
    pub fn check_available() -> io::Result<()> {
        crate::ring::Ring::<()>::new(4, None).map(drop)
    }

    /// Most accepted connections that wait in [`Server::accept`]'s queue; more are
    /// closed at once.
    pub const ACCEPT_QUEUE: usize = 1024;

    /// A client connection on an event loop of its own.
    ///
    /// Dropping it drops its handle (the connection closes gracefully once no
    /// clone of the handle is left) and lets the loop end when the connection did.
    pub struct Client {
        // Declared first: dropped before the loop is told to wind down.
        handle: Handle,
        _event_loop: EventLoop,
    }

    impl core::fmt::Debug for Client {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Client").finish_non_exhaustive()
        }
    }

    impl Client {
        /// Connects to `addr` and starts the handshake (see
        /// [`wait_connected`](Self::wait_connected)); requests may be issued at once.
        pub fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<Client> {
            let event_loop = EventLoop::new()?;
            let handle = event_loop.connect(addr, config)?;
            Ok(Client {
                handle,
                _event_loop: event_loop,
            })
        }

        /// The connection's handle, for the async API (works on any executor).
        pub fn handle(&self) -> &Handle {
            &self.handle
        }

        /// Blocks until the handshake completed, or the connection closed first.
        pub fn wait_connected(&self) -> Result<(), CloseInfo> {
            block_on(self.handle.connected())
        }

        /// Sends a request and blocks until its reply (or `timeout`).
        pub fn request(
            &self,
            subject: &[u8],
            payload: &[u8],
            timeout: Option<Duration>,
        ) -> Result<Reply, Error> {
            block_on(self.handle.request(subject, payload, timeout))
        }

        /// Queues a one-way message, blocking while the send queue is full.
        pub fn send(&self, payload: &[u8]) -> Result<(), Error> {
            block_on(self.handle.send(payload))
        }

        /// Opens a stream, as blocking `Read` + `Write`.
        pub fn open_stream(&self) -> Result<BlockingStream, Error> {
            self.handle.open_stream().map(BlockingStream::new)
        }

        /// Closes gracefully and blocks until the connection is over.
        pub fn close(self) -> CloseInfo {
            self.handle.close(ErrorCode::NO_ERROR, "");
            block_on(self.handle.closed())
        }
    }

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

    /// A Weft stream as blocking [`io::Read`] + [`io::Write`]: each call blocks the
    /// calling thread on the stream's readiness (through the connection's loop).
    /// Writes are accepted into the connection's flow-controlled queue, so
    /// [`flush`](io::Write::flush) has nothing to wait for; dropping the stream
    /// finishes it.
    #[derive(Debug)]
    pub struct BlockingStream {
        inner: WeftStream,
    }

    impl BlockingStream {
        /// Wraps an async stream.
        pub fn new(inner: WeftStream) -> Self {
            BlockingStream { inner }
        }

        /// The stream's id.
        pub fn id(&self) -> u64 {
            self.inner.id()
        }

        /// Ends our direction: the peer reads end-of-stream after the data.
        pub fn finish(&mut self) -> io::Result<()> {
            self.inner.finish()
        }

        /// The async stream back.
        pub fn into_inner(self) -> WeftStream {
            self.inner
        }
    }

    impl io::Read for BlockingStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            let s = &mut self.inner;
            block_on(core::future::poll_fn(|cx| s.poll_read(cx, buf)))
        }
    }

    impl io::Write for BlockingStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            let s = &mut self.inner;
            block_on(core::future::poll_fn(|cx| s.poll_write(cx, buf)))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
