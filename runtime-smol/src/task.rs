//! The connection task: one future that moves bytes between a transport and a
//! [`Driver`], fires its timer, and sleeps until the socket, the timer or the
//! application wakes it.

use async_io::Timer;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::{Duration, Instant};
use weft_core::driver::Driver;

/// Bytes read from the transport per read; what the driver has not taken yet is
/// kept here and nothing more is read until it is.
const READ_BUF: usize = 64 * 1024;
/// Bytes the driver writes per `poll_transmit`: two full records of the default
/// size, kept here until the transport has taken all of them.
const WRITE_BUF: usize = 128 * 1024;
/// How long a finished connection keeps reading (and discarding) after ending its
/// direction, waiting for the peer's end of stream: closing a socket with unread
/// input resets it, and a reset can destroy our last bytes still in flight (the
/// CLOSE) before the peer reads them.
const LINGER: Duration = Duration::from_secs(2);
/// Rounds of work per poll before the task yields to the executor's other tasks.
const BUDGET: usize = 64;

/// The I/O task of one connection: a future that ends when the connection is
/// closed and its last bytes were written (then the transport is closed too).
///
/// Each poll registers the task's waker with the driver (application commands
/// wake it), then, until nothing moves: offers read bytes to the driver (keeping
/// what it did not take, and reading more only once it has), reads when its buffer
/// is empty, writes the driver's output (any partial write is resumed from where it
/// stopped), and arms an [`async_io::Timer`] at the driver's next deadline. End of
/// stream or an I/O error reaches the driver as end of stream. Its buffers are
/// fixed: 64 KiB for input, 128 KiB for output.
pub struct DriverTask<T> {
    io: T,
    driver: Driver,
    rbuf: Box<[u8]>,
    rpos: usize,
    rlen: usize,
    wbuf: Box<[u8]>,
    wpos: usize,
    wlen: usize,
    timer: Timer,
    armed: Option<Instant>,
    /// The transport's input ended (or failed) and the driver was told.
    read_done: bool,
    /// Writing failed: output is discarded from now on.
    write_failed: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// Where the task is.
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Moving bytes.
    Running,
    /// The connection is over: flushing and ending our direction.
    Closing,
    /// Discarding input until the peer's end of stream, at most [`LINGER`].
    Lingering,
}

impl<T> core::fmt::Debug for DriverTask<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DriverTask")
            .field("pending_input", &(self.rlen - self.rpos))
            .field("pending_output", &(self.wlen - self.wpos))
            .field("read_done", &self.read_done)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> DriverTask<T> {
    /// The task that runs `driver` over `io`. For a server connection, attach the
    /// driver to its [`Hub`](weft_core::driver::Hub) before.
    pub fn new(io: T, driver: Driver) -> Self {
        DriverTask {
            io,
            driver,
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            rpos: 0,
            rlen: 0,
            wbuf: vec![0; WRITE_BUF].into_boxed_slice(),
            wpos: 0,
            wlen: 0,
            timer: Timer::never(),
            armed: None,
            read_done: false,
            write_failed: false,
            unflushed: false,
            phase: Phase::Running,
        }
    }

    /// The transport failed or ended: the connection learns it.
    fn lost(&mut self) {
        self.read_done = true;
        self.driver.handle_eof();
    }

    /// Input: offer what is buffered, read more once it is all taken.
    fn input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if self.rpos < self.rlen {
            let n = self.driver.handle_input(&self.rbuf[self.rpos..self.rlen]);
            self.rpos += n;
            progress = n > 0;
            if self.rpos < self.rlen {
                // The application is behind: the driver wakes us when it catches up.
                return progress;
            }
        }
        if self.read_done {
            return progress;
        }
        match Pin::new(&mut self.io).poll_read(cx, &mut self.rbuf) {
            Poll::Ready(Ok(0)) => {
                self.lost();
                true
            }
            Poll::Ready(Ok(n)) => {
                self.rpos = 0;
                self.rlen = n;
                true
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(_)) => {
                self.lost();
                true
            }
            Poll::Pending => progress,
        }
    }

    /// Output: write what is buffered, then ask the driver for more; flush once
    /// there is nothing more.
    fn output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if self.wpos == self.wlen {
            let n = self.driver.poll_transmit(&mut self.wbuf);
            self.wpos = 0;
            self.wlen = if self.write_failed { 0 } else { n };
            if n == 0 {
                return self.flush(cx);
            }
            progress = true;
            if self.write_failed {
                return progress;
            }
        }
        match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..self.wlen]) {
            Poll::Ready(Ok(0)) => self.write_error(),
            Poll::Ready(Ok(n)) => {
                self.wpos += n;
                self.unflushed = true;
                true
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(_)) => self.write_error(),
            Poll::Pending => progress,
        }
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.unflushed || self.write_failed {
            return false;
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                true
            }
            Poll::Ready(Err(_)) => self.write_error(),
            Poll::Pending => false,
        }
    }

    fn write_error(&mut self) -> bool {
        self.write_failed = true;
        self.unflushed = false;
        self.wpos = 0;
        self.wlen = 0;
        self.lost();
        true
    }

    /// The timer: fire what is due, arm for the next deadline.
    fn timers(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.driver.poll_timeout() else {
            self.armed = None;
            return false;
        };
        if at <= Instant::now() {
            self.armed = None;
            self.driver.handle_timeout();
            return true;
        }
        if self.armed != Some(at) {
            self.timer.set_at(at);
            self.armed = Some(at);
        }
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.armed = None;
            self.driver.handle_timeout();
            return true;
        }
        false
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for DriverTask<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Before any work, so a command queued meanwhile wakes us again.
        this.driver.register(cx.waker());
        for _ in 0..BUDGET {
            match this.phase {
                Phase::Running => {}
                Phase::Closing => return this.poll_closing(cx),
                Phase::Lingering => return this.poll_linger(cx),
            }
            let mut progress = this.input(cx);
            progress |= this.output(cx);
            progress |= this.timers(cx);
            if this.driver.is_finished() && this.wpos == this.wlen {
                this.phase = Phase::Closing;
                continue;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Still busy: let the executor's other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> DriverTask<T> {
    /// Flushes and ends our direction (the peer reads end of stream), then lingers.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.write_failed {
            return Poll::Ready(());
        }
        if Pin::new(&mut self.io).poll_close(cx).is_pending() {
            return Poll::Pending;
        }
        if self.read_done {
            return Poll::Ready(());
        }
        self.phase = Phase::Lingering;
        self.timer.set_after(LINGER);
        self.poll_linger(cx)
    }

    /// Reads and discards until the peer's end of stream, an error, or [`LINGER`].
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            match Pin::new(&mut self.io).poll_read(cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(()),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    return Pin::new(&mut self.timer).poll(cx).map(|_| ());
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
