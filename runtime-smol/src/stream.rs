//! Weft streams as `futures-io` byte streams.

use core::pin::Pin;
use core::task::{Context, Poll};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;

weft_driver::stream_type! {
    /// A multiplexed Weft stream as a [`futures_io`] byte stream: [`AsyncRead`] reads
    /// the peer's data (0 at its end), [`AsyncWrite`] writes ours, flow-controlled by
    /// the peer's window. `poll_flush` is immediate (written bytes are queued in the
    /// connection, whose task sends them); `poll_close` finishes our direction. Dropping
    /// it finishes our direction too.
    ///
    /// Both directions may be used from different tasks at once (for instance after
    /// `futures_lite::io::split`): each has its own waker.
    #[derive(Debug)]
    pub struct Stream(pub weft_driver::WeftStream);
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
