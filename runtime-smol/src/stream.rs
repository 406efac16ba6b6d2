//! Weft streams as `futures-io` byte streams.

use core::pin::Pin;
use core::task::{Context, Poll};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use weft_core::Error;
use weft_driver::{Handle, WeftStream};

/// A multiplexed Weft stream as a [`futures_io`] byte stream: [`AsyncRead`] reads
/// the peer's data (0 at its end), [`AsyncWrite`] writes ours, flow-controlled by
/// the peer's window. `poll_flush` is immediate (written bytes are queued in the
/// connection, whose task sends them); `poll_close` finishes our direction. Dropping
/// it finishes our direction too.
///
/// Both directions may be used from different tasks at once (for instance after
/// `futures_lite::io::split`): each has its own waker.
#[derive(Debug)]
pub struct Stream(pub WeftStream);

impl Stream {
    /// Opens a stream on `handle`'s connection.
    pub fn open(handle: &Handle) -> Result<Stream, Error> {
        handle.open_stream().map(Stream)
    }

    /// The next stream the peer opens on `handle`'s connection; `None` once the
    /// connection is closed.
    pub async fn accept(handle: &Handle) -> Option<Stream> {
        handle.accept_stream().await.map(Stream)
    }

    /// The stream id.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Aborts both directions with an application code.
    pub fn reset(&mut self, code: u64) {
        self.0.reset(code);
    }

    /// The core stream inside.
    pub fn into_inner(self) -> WeftStream {
        self.0
    }
}

impl From<WeftStream> for Stream {
    fn from(s: WeftStream) -> Stream {
        Stream(s)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.finish())
    }
}
