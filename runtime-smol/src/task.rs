//! The connection task: [`weft_driver::IoTask`], the one I/O task of every async
//! runtime, over a `futures-io` byte stream and an [`async_io::Timer`].

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::Instant;
use weft_driver::{Driver, IoTask, Timer, Transport};

/// The I/O task of one connection: a future that ends when the connection is over
/// and its transport was closed (then the transport is dropped).
///
/// It is [`weft_driver::IoTask`] (see there for what a poll does, its buffers and
/// timer) over `io` and an [`async_io::Timer`]. Once the connection is over, it
/// writes its last bytes, flushes, closes our direction (`poll_close`), and reads,
/// discarding, until the peer's end of stream or until
/// [`Config::linger`](weft_core::Config::linger) has passed since the connection
/// finished, whichever comes first.
pub struct DriverTask<T>(IoTask<FuturesIo<T>, SmolTimer>);

impl<T: AsyncRead + AsyncWrite + Unpin> DriverTask<T> {
    /// The task that runs `driver` over `io`. For a server connection, attach the
    /// driver to its [`Hub`](weft_driver::Hub) before.
    pub fn new(io: T, driver: Driver) -> Self {
        DriverTask(IoTask::new(FuturesIo(io), driver, SmolTimer(None)))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for DriverTask<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl<T> core::fmt::Debug for DriverTask<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("DriverTask").field(&self.0).finish()
    }
}

/// A `futures-io` stream as a [`Transport`]; `poll_close` ends our direction.
struct FuturesIo<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for FuturesIo<T> {
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

/// [`async_io::Timer`] as a [`Timer`]; not registered with the reactor until the
/// first reset.
struct SmolTimer(Option<async_io::Timer>);

impl Timer for SmolTimer {
    fn reset(&mut self, deadline: Instant) {
        match &mut self.0 {
            Some(t) => t.set_at(deadline),
            None => self.0 = Some(async_io::Timer::at(deadline)),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0
            .as_mut()
            .map_or(Poll::Pending, |t| Pin::new(t).poll(cx).map(|_| ()))
    }
}
