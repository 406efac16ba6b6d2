//! The blocking client of the event-loop adapters (`weft-mio`, `weft-uring`),
//! written once: a [`Handle`] whose calls park the calling thread, and the
//! subscription and stream faces that go with it.
//!
//! What differs between the adapters is only where the connection's I/O runs: an
//! adapter implements [`BlockingLoop`] for its event loop (start one, drive a new
//! client connection on it) and names `BlockingClient<ItsLoop>` its `Client`.
//! Everything a caller waits on (the handshake, queue room, a reply, a delivery,
//! the close) is the driver's, so it is the same on every loop.
//!
//! Every wait ends: the handshake by the connection's `handshake_timeout`, a
//! request by its deadline or the connection's end, a close by the drain timeout;
//! the waits that only the peer can end (a delivery, stream bytes) have bounded
//! variants ([`BlockingSubscription::recv_timeout`],
//! [`BlockingStream::set_read_timeout`]).

use crate::{
    block_on, block_on_timeout, Delivery, Handle, IncomingRequest, Reply, Subscription, WeftStream,
};
use bytes::Bytes;
use core::future::poll_fn;
use core::task::{Context, Poll};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use weft_core::conn::{CloseInfo, Negotiated, Stats};
use weft_core::{Config, Error, ErrorCode, OverflowPolicy, StreamId, SubId};

/// An adapter's event loop, as a [`BlockingClient`] needs it: the I/O-specific
/// glue of a blocking client.
pub trait BlockingLoop: Sized {
    /// Starts a loop for one client of its own ([`BlockingClient::connect`]).
    fn start() -> io::Result<Self>;

    /// Connects to `addr` (blocking until the transport is established, not the
    /// handshake) and drives the new client connection on this loop.
    fn connect(&self, addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle>;
}

/// A blocking Weft client: one connection, driven by an event loop `L`, whose
/// every method blocks the calling thread until done. None may be called from
/// inside a future (use [`handle`](Self::handle) there).
///
/// Dropping the client closes the connection gracefully unless a clone of its
/// [`Handle`] is still alive; a loop of its own ([`connect`](Self::connect)) then
/// ends once the connection has finished.
pub struct BlockingClient<L> {
    // Declared first, so dropped first: the connection is closing before the
    // loop is let go (a loop of its own then ends with it).
    handle: Handle,
    event_loop: L,
}

impl<L> core::fmt::Debug for BlockingClient<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockingClient").finish_non_exhaustive()
    }
}

/// The error of a connect whose handshake failed: `PermissionDenied` when the
/// peer refused our authentication, so callers can tell that from a lost peer.
fn handshake_error(c: CloseInfo) -> io::Error {
    let kind = if c.code == ErrorCode::AUTH_FAILED {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::ConnectionAborted
    };
    io::Error::new(kind, format!("weft handshake failed: {c:?}"))
}

impl<L: BlockingLoop> BlockingClient<L> {
    /// Connects to `addr` on a new event loop of its own and waits for the
    /// handshake (bounded by `config.handshake_timeout`).
    pub fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        Self::connect_with(L::start()?, addr, config)
    }

    /// Connects to `addr` on `event_loop`, which the client keeps, and waits for
    /// the handshake.
    pub fn connect_with(
        event_loop: L,
        addr: impl ToSocketAddrs,
        config: Config,
    ) -> io::Result<Self> {
        let handle = event_loop.connect(addr, config)?;
        block_on(handle.connected()).map_err(handshake_error)?;
        Ok(BlockingClient { handle, event_loop })
    }
}

impl<L: BlockingLoop + Clone> BlockingClient<L> {
    /// Connects to `addr` on the shared `event_loop` (one thread for many
    /// clients) and waits for the handshake.
    pub fn connect_on(
        event_loop: &L,
        addr: impl ToSocketAddrs,
        config: Config,
    ) -> io::Result<Self> {
        Self::connect_with(event_loop.clone(), addr, config)
    }
}

impl<L> BlockingClient<L> {
    /// The connection's async handle (clone it to use from futures or threads).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The event loop driving the connection.
    pub fn event_loop(&self) -> &L {
        &self.event_loop
    }

    /// What the handshake settled.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.handle.negotiated()
    }

    /// Connection statistics.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Sends a request and waits for its reply. With a `timeout`, the request
    /// carries that deadline: the peer is told, and when it passes the reply is
    /// [`Outcome::DeadlineExceeded`](weft_core::conn::Outcome::DeadlineExceeded)
    /// (the core's timer, not a sleep). If the connection ends first the reply is
    /// `NotProcessed` (or `Err(Closed)` if it had already ended).
    pub fn request(
        &self,
        subject: &[u8],
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        block_on(self.handle.request(subject, payload, timeout))
    }

    /// Sends a one-way message, waiting for send-queue room.
    pub fn send(&self, payload: &[u8]) -> Result<(), Error> {
        block_on(self.handle.send(payload))
    }

    /// Sends every payload as a one-way message, in order, waiting for queue room:
    /// [`Handle::send_many`], blocking. On an error, [`BatchError::queued`] says how
    /// many were queued (accepted).
    ///
    /// [`BatchError::queued`]: crate::BatchError::queued
    pub fn send_many<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<(), crate::BatchError> {
        block_on(self.handle.send_many(payloads))
    }

    /// Publishes on `topic`, waiting for send-queue room.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        block_on(self.handle.publish(topic, payload))
    }

    /// Subscribes to a topic filter (`*` matches one token, `>` the rest),
    /// optionally in a queue group (each message goes to one member), and waits
    /// until the server has registered it ([`Handle::subscribe`]).
    pub fn subscribe(
        &self,
        filter: &str,
        group: Option<&str>,
        policy: OverflowPolicy,
    ) -> Result<BlockingSubscription, Error> {
        block_on(self.handle.subscribe(filter, group, policy))
            .map(|sub| BlockingSubscription { sub })
    }

    /// Waits until the peer has processed everything sent before
    /// ([`Handle::flush`]).
    pub fn flush(&self) -> Result<(), Error> {
        block_on(self.handle.flush())
    }

    /// Closes gracefully and waits: `Ok` once everything accepted before was
    /// delivered ([`Handle::shutdown`]). Call it before the program ends.
    pub fn shutdown(&self) -> Result<(), CloseInfo> {
        block_on(self.handle.shutdown())
    }

    /// Waits for the next one-way message from the peer; `None` once closed.
    pub fn next_message(&self) -> Option<Bytes> {
        block_on(self.handle.next_message())
    }

    /// Waits for the next request from the peer; `None` once closed.
    pub fn next_request(&self) -> Option<IncomingRequest> {
        block_on(self.handle.next_request())
    }

    /// Opens a stream.
    pub fn open_stream(&self) -> Result<BlockingStream, Error> {
        self.handle.open_stream().map(BlockingStream::new)
    }

    /// Waits for the next stream the peer opens; `None` once closed.
    pub fn accept_stream(&self) -> Option<BlockingStream> {
        block_on(self.handle.accept_stream()).map(BlockingStream::new)
    }

    /// Closes gracefully (in-flight work is drained, bounded by the drain
    /// timeout) and waits until the connection is over.
    pub fn close(&self) -> CloseInfo {
        self.close_with(ErrorCode::NO_ERROR, "")
    }

    /// Closes with `code` and `reason` and waits until the connection is over.
    pub fn close_with(&self, code: ErrorCode, reason: &str) -> CloseInfo {
        self.handle.close(code, reason);
        self.closed()
    }

    /// Waits until the connection is over, however it ends.
    pub fn closed(&self) -> CloseInfo {
        block_on(self.handle.closed())
    }
}

/// Why [`BlockingSubscription::recv_timeout`] returned without a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The connection is closed and nothing is left.
    Closed,
}

impl core::fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting for a delivery",
            RecvTimeoutError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for RecvTimeoutError {}

/// A subscription read by blocking. Dropping it unsubscribes. It is also an
/// iterator over deliveries, ending when the connection closes.
#[derive(Debug)]
pub struct BlockingSubscription {
    sub: Subscription,
}

impl BlockingSubscription {
    /// The subscription id.
    pub fn id(&self) -> SubId {
        self.sub.id()
    }

    /// Messages the server dropped for it so far (overflow policy).
    pub fn dropped(&self) -> u64 {
        self.sub.dropped()
    }

    /// Waits for the next delivery; `None` once the connection is closed.
    pub fn recv(&mut self) -> Option<Delivery> {
        block_on(self.sub.next_delivery())
    }

    /// Waits at most `timeout` for the next delivery.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery, RecvTimeoutError> {
        match block_on_timeout(self.sub.next_delivery(), timeout) {
            Some(Some(d)) => Ok(d),
            Some(None) => Err(RecvTimeoutError::Closed),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// The async subscription.
    pub fn into_inner(self) -> Subscription {
        self.sub
    }
}

impl Iterator for BlockingSubscription {
    type Item = Delivery;
    fn next(&mut self) -> Option<Delivery> {
        self.recv()
    }
}

/// A stream with blocking [`Read`] and [`Write`]: ordered, flow-controlled bytes
/// both ways over the connection. [`finish`](Self::finish) (or dropping the last
/// clone) ends our direction; the peer then reads end-of-stream.
///
/// Clones ([`try_clone`](Self::try_clone)) share the stream, so one thread can
/// read while another writes (one reader and one writer at a time). Writes are
/// taken into the connection's flow-controlled queue, so
/// [`flush`](Write::flush) has nothing to wait for.
#[derive(Debug)]
pub struct BlockingStream {
    inner: Arc<Mutex<WeftStream>>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "weft stream timed out")
}

impl BlockingStream {
    /// Blocking I/O over an async stream (e.g. one accepted on a server's
    /// [`Handle`]).
    pub fn new(s: WeftStream) -> Self {
        BlockingStream {
            inner: Arc::new(Mutex::new(s)),
            read_timeout: None,
            write_timeout: None,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut WeftStream) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.with(|s| s.id())
    }

    /// Another handle to the same stream (for a reader and a writer thread).
    pub fn try_clone(&self) -> io::Result<BlockingStream> {
        Ok(BlockingStream {
            inner: self.inner.clone(),
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
        })
    }

    /// Bounds each `read`: past it, the read fails with `TimedOut`.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Bounds each `write`: past it, the write fails with `TimedOut`.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write_timeout = timeout;
    }

    /// Ends our direction (the peer reads end-of-stream after our data).
    pub fn finish(&self) -> io::Result<()> {
        self.with(WeftStream::finish)
    }

    /// Aborts both directions with an application code.
    pub fn reset(&self, code: u64) {
        self.with(|s| s.reset(code));
    }

    /// The async stream back; `None` while another clone shares it.
    pub fn into_inner(self) -> Option<WeftStream> {
        Arc::into_inner(self.inner).map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    /// Blocks on one poll of the stream until it is ready, bounded by `timeout`.
    fn wait<R>(
        &self,
        timeout: Option<Duration>,
        mut poll: impl FnMut(&mut WeftStream, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> io::Result<R> {
        let fut = poll_fn(|cx| self.with(|s| poll(s, cx)));
        match timeout {
            None => block_on(fut),
            Some(t) => block_on_timeout(fut, t).unwrap_or_else(|| Err(timed_out())),
        }
    }
}

impl From<WeftStream> for BlockingStream {
    /// Blocking I/O over an async stream.
    fn from(s: WeftStream) -> Self {
        BlockingStream::new(s)
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait(self.read_timeout, |s, cx| s.poll_read(cx, buf))
    }
}

impl Write for BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait(self.write_timeout, |s, cx| s.poll_write(cx, buf))
    }

    /// Written bytes are already queued on the connection: nothing to do.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
