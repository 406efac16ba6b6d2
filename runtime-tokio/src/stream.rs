//! Weft streams as tokio byte streams.

use core::pin::Pin;
use core::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

weft_driver::stream_type! {
    /// One multiplexed Weft stream as a tokio [`AsyncRead`] + [`AsyncWrite`].
    ///
    /// Reads return the peer's bytes in order and end (`Ok(0)`) at the peer's finish;
    /// writes are flow-controlled by the peer's window (a write waits while it is
    /// closed). [`poll_shutdown`](AsyncWrite::poll_shutdown) finishes our direction;
    /// dropping the stream finishes it too. A stream reset by the peer reads as
    /// [`ConnectionReset`](std::io::ErrorKind::ConnectionReset).
    #[derive(Debug)]
    pub struct Stream(weft_driver::WeftStream);
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let dst = buf.initialize_unfilled();
        if dst.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match self.get_mut().0.poll_read(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.get_mut().0.poll_write(cx, buf)
    }

    /// Written bytes are already queued on the connection: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Finishes our direction: the peer reads end-of-stream after the data.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.finish())
    }
}
