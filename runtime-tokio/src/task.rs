//! The driver task: one future per connection that moves bytes between the
//! transport and the shared [`Driver`], fires its timer, and wakes on its commands.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use weft_core::driver::Driver;

/// Bytes read from the transport at a time.
const READ_BUF: usize = 64 * 1024;
/// Bytes produced by the driver at a time: the core wants room for a maximal
/// record (65 535 + 8 bytes) plus the preface.
const WRITE_BUF: usize = 128 * 1024;
/// Rounds of work in one poll before yielding to the scheduler.
const ROUNDS: usize = 32;
/// Transmit/write steps in one round.
const WRITES_PER_ROUND: usize = 16;

/// One connection's I/O: read, offer, transmit, write, sleep; until finished.
pub(crate) struct Task<T> {
    io: T,
    driver: Driver,
    /// Bytes read and not yet taken by the driver: `inbuf[in_pos..in_len]`.
    inbuf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    /// Bytes produced and not yet written: `outbuf[out_pos..out_len]`.
    outbuf: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    /// The timer, armed at `deadline`.
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: Option<std::time::Instant>,
    /// The transport's read half ended (EOF or error).
    read_done: bool,
    /// Writing failed: what the driver still produces is discarded.
    write_dead: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// The driver finished and all output went out: flushing and shutting down.
    closing: bool,
    /// `handle_eof` was called.
    eof_sent: bool,
}

impl<T> Task<T> {
    pub(crate) fn new(io: T, driver: Driver) -> Self {
        Task {
            io,
            driver,
            inbuf: vec![0u8; READ_BUF].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            outbuf: vec![0u8; WRITE_BUF].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            sleep: None,
            deadline: None,
            read_done: false,
            write_dead: false,
            unflushed: false,
            closing: false,
            eof_sent: false,
        }
    }

    fn eof(&mut self) {
        if !self.eof_sent {
            self.eof_sent = true;
            self.driver.handle_eof();
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Task<T> {
    /// Offers buffered input; reads more only once all of it was taken.
    fn input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = self.offer();
        if self.in_pos < self.in_len || self.read_done {
            // Held back by the application (the driver wakes us when it catches
            // up), or nothing more will come.
            return progress;
        }
        let mut rb = ReadBuf::new(&mut self.inbuf);
        match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                progress = true;
                if n == 0 {
                    tracing::debug!("transport closed by peer");
                    self.read_done = true;
                    self.eof();
                } else {
                    self.in_pos = 0;
                    self.in_len = n;
                    self.offer();
                }
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "transport read failed");
                progress = true;
                self.read_done = true;
                self.eof();
            }
            Poll::Pending => {}
        }
        progress
    }

    /// Hands buffered input to the driver; true if it took some.
    fn offer(&mut self) -> bool {
        if self.in_pos == self.in_len {
            return false;
        }
        let n = self
            .driver
            .handle_input(&self.inbuf[self.in_pos..self.in_len]);
        self.in_pos += n;
        if self.in_pos == self.in_len {
            self.in_pos = 0;
            self.in_len = 0;
        }
        n > 0
    }

    /// Writes what the driver produces, keeping partial writes; flushes when done.
    fn output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..WRITES_PER_ROUND {
            if self.out_pos == self.out_len {
                self.out_pos = 0;
                self.out_len = 0;
                let n = self.driver.poll_transmit(&mut self.outbuf);
                if n == 0 {
                    break;
                }
                progress = true;
                if self.write_dead {
                    // Nowhere to send it: the connection is closing as lost.
                    continue;
                }
                self.out_len = n;
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.outbuf[self.out_pos..self.out_len]) {
                Poll::Ready(Ok(0)) => {
                    self.write_failed(&std::io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    self.unflushed = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.write_failed(&e);
                    progress = true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.out_pos == self.out_len && self.unflushed && !self.write_dead {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => {
                    self.write_failed(&e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    fn write_failed(&mut self, e: &std::io::Error) {
        tracing::debug!(error = %e, "transport write failed");
        self.write_dead = true;
        self.unflushed = false;
        self.out_pos = 0;
        self.out_len = 0;
        self.eof();
    }

    /// Re-arms the timer at the driver's deadline; fires it when due.
    fn timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.driver.poll_timeout();
        if deadline != self.deadline {
            self.deadline = deadline;
            if let Some(d) = deadline {
                let at = tokio::time::Instant::from_std(d);
                match &mut self.sleep {
                    Some(s) => s.as_mut().reset(at),
                    None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
        }
        if self.deadline.is_none() {
            return false;
        }
        let Some(sleep) = &mut self.sleep else {
            return false;
        };
        if sleep.as_mut().poll(cx).is_ready() {
            // Re-read (and re-arm) the deadline on the next round.
            self.deadline = None;
            self.driver.handle_timeout();
            return true;
        }
        false
    }

    /// Flushes and shuts the write half down; errors no longer matter.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.write_dead {
            if self.unflushed {
                if Pin::new(&mut self.io).poll_flush(cx).is_pending() {
                    return Poll::Pending;
                }
                self.unflushed = false;
            }
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => tracing::debug!(error = %e, "transport shutdown failed"),
                Poll::Ready(Ok(())) => {}
            }
        }
        tracing::debug!("connection finished");
        Poll::Ready(())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Task<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..ROUNDS {
            if this.closing {
                return this.poll_close(cx);
            }
            // Registered before looking at anything, so that a command issued
            // while this round runs wakes the task again.
            this.driver.register(cx.waker());
            let mut progress = this.input(cx);
            progress |= this.output(cx);
            progress |= this.timer(cx);
            if this.driver.is_finished() && this.out_pos == this.out_len {
                this.closing = true;
                continue;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Busy connection: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
