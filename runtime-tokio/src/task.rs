//! tokio's byte streams and `Sleep` as the shared I/O task's [`Transport`] and
//! [`Timer`]: the algorithm (reading, writing, timers, buffers, the linger
//! policy) is [`weft_driver::IoTask`]'s, written once for every async runtime.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use weft_driver::{Driver, IoTask, Timer, Transport};

/// The task of one connection over the tokio transport `T`.
pub(crate) type Task<T> = IoTask<TokioIo<T>, TokioSleep>;

/// The task that runs `driver` over `io`; must be created inside a tokio runtime
/// with its time driver enabled (the timer is tokio's).
pub(crate) fn task<T: AsyncRead + AsyncWrite + Unpin>(io: T, driver: Driver) -> Task<T> {
    IoTask::new(TokioIo(io), driver, TokioSleep(None))
}

/// A tokio transport as a [`Transport`].
pub(crate) struct TokioIo<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for TokioIo<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        Pin::new(&mut self.0)
            .poll_read(cx, &mut rb)
            .map_ok(|()| rb.filled().len())
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// tokio's `Sleep` as a [`Timer`]: made at the first reset (a task that never
/// needs a timer registers none), boxed because a `Sleep` must stay pinned.
pub(crate) struct TokioSleep(Option<Pin<Box<tokio::time::Sleep>>>);

impl Timer for TokioSleep {
    fn reset(&mut self, deadline: Instant) {
        let at = tokio::time::Instant::from_std(deadline);
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
