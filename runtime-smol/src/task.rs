//! The connection task: one future that moves bytes between a transport and a
//! [`Driver`], fires its timer, and sleeps until the socket, the timer or the
//! application wakes it.
//!
//! Buffers: an idle connection owns none. Reads and the driver's output go
//! through one scratch buffer per thread, shared by every task polled on it (a
//! poll never holds it across a suspension). Only bytes that must wait, input the
//! driver did not take (the application is behind) or output the transport did
//! not take (it is full), are copied into a buffer the connection keeps. While it
//! has one, the connection reads or produces into it directly (a busy connection
//! pays no copies), and it gives it up once the buffer stayed unneeded for a
//! whole period of its timer: buffers are kept only while a connection is backed
//! up, never freed per message, and each is bounded ([`READ_BUF`], [`WRITE_BUF`]).

use async_io::Timer;
use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::{Duration, Instant};
use weft_driver::Driver;

/// Bytes read from the transport per read; what the driver has not taken yet is
/// kept and nothing more is read until it is.
const READ_BUF: usize = 64 * 1024;
/// Bytes the driver writes per `poll_transmit`: two full records of the default
/// size; what the transport has not taken yet is kept until it has.
const WRITE_BUF: usize = 128 * 1024;
/// The per-thread scratch buffer serves reads and output in turn.
const SCRATCH: usize = if READ_BUF > WRITE_BUF {
    READ_BUF
} else {
    WRITE_BUF
};
/// Writes of freshly produced output in one round before the rest is kept.
const WRITES_PER_TRANSMIT: usize = 16;
/// How long a finished connection keeps reading (and discarding) after ending its
/// direction, waiting for the peer's end of stream: closing a socket with unread
/// input resets it, and a reset can destroy our last bytes still in flight (the
/// CLOSE) before the peer reads them.
const LINGER: Duration = Duration::from_secs(2);
/// Rounds of work per poll before the task yields to the executor's other tasks.
const BUDGET: usize = 64;

thread_local! {
    /// This thread's scratch buffer; `None` until first used, or while in use.
    static SCRATCH_BUF: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's scratch buffer ([`SCRATCH`] bytes). Allocated once
/// per thread; a nested use (a transport that polls another connection's task
/// from inside its own I/O) or one during thread teardown gets a buffer of its
/// own rather than failing.
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = SCRATCH_BUF
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| zeroed(SCRATCH));
    let r = f(&mut buf);
    let _ = SCRATCH_BUF.try_with(|c| c.set(Some(buf)));
    r
}

/// A buffer of `n` zero bytes: its pages only become resident as far as bytes
/// are actually stored.
fn zeroed(n: usize) -> Box<[u8]> {
    vec![0u8; n].into_boxed_slice()
}

/// The I/O task of one connection: a future that ends when the connection is
/// closed and its last bytes were written (then the transport is closed too).
///
/// Each poll registers the task's waker with the driver (application commands
/// wake it), then, until nothing moves: offers read bytes to the driver (keeping
/// what it did not take, and reading more only once it has), reads when its buffer
/// is empty, writes the driver's output (any partial write is resumed from where it
/// stopped), and arms an [`async_io::Timer`] at the driver's next deadline. End of
/// stream or an I/O error reaches the driver as end of stream. An idle task owns
/// no buffer: reads and output go through a scratch buffer shared by the tasks of
/// its thread, and only a backlog is kept (at most 64 KiB of input, 128 KiB of
/// output) until a whole timer period passes without one.
pub struct DriverTask<T> {
    io: T,
    driver: Driver,
    /// Kept input while the driver is behind, or recently was: `rbuf[rpos..rlen]`
    /// was read and not yet taken.
    rbuf: Option<Box<[u8]>>,
    rpos: usize,
    rlen: usize,
    /// Kept output while the transport is behind, or recently was:
    /// `wbuf[wpos..wlen]` was produced and not yet written.
    wbuf: Option<Box<[u8]>>,
    wpos: usize,
    wlen: usize,
    /// The kept input or output buffer held waiting bytes since the timer last
    /// fired: it is still needed.
    rneeded: bool,
    wneeded: bool,
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
    /// driver to its [`Hub`](weft_driver::Hub) before.
    pub fn new(io: T, driver: Driver) -> Self {
        DriverTask {
            io,
            driver,
            rbuf: None,
            rpos: 0,
            rlen: 0,
            wbuf: None,
            wpos: 0,
            wlen: 0,
            rneeded: false,
            wneeded: false,
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

    /// Input: offer what is kept, read more once it is all taken.
    fn input(&mut self, cx: &mut Context<'_>) -> bool {
        let progress = self.offer();
        if self.rpos < self.rlen {
            // The application is behind: the driver wakes us when it catches up.
            return progress;
        }
        if self.read_done {
            return progress;
        }
        let polled = match self.rbuf.take() {
            // Recently backed up: read straight into the kept buffer.
            Some(mut buf) => {
                let p = Pin::new(&mut self.io).poll_read(cx, &mut buf);
                self.rbuf = Some(buf);
                if let Poll::Ready(Ok(n)) = p {
                    self.rpos = 0;
                    self.rlen = n;
                    self.offer();
                }
                p
            }
            // Read into the scratch buffer and keep only what the driver leaves.
            None => with_scratch(|scratch| {
                let scratch = &mut scratch[..READ_BUF];
                let p = Pin::new(&mut self.io).poll_read(cx, scratch);
                if let Poll::Ready(Ok(n)) = p {
                    let taken = self.driver.handle_input(&scratch[..n]);
                    if taken < n {
                        let rest = &scratch[taken..n];
                        let buf = self.rbuf.get_or_insert_with(|| zeroed(READ_BUF));
                        buf[..rest.len()].copy_from_slice(rest);
                        self.rpos = 0;
                        self.rlen = rest.len();
                        self.rneeded = true;
                    }
                }
                p
            }),
        };
        match polled {
            Poll::Ready(Ok(0)) => {
                self.lost();
                true
            }
            Poll::Ready(Ok(_)) => true,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(_)) => {
                self.lost();
                true
            }
            Poll::Pending => progress,
        }
    }

    /// Hands kept input to the driver; true if it took some.
    fn offer(&mut self) -> bool {
        if self.rpos == self.rlen {
            return false;
        }
        let Some(buf) = &self.rbuf else {
            return false;
        };
        let n = self.driver.handle_input(&buf[self.rpos..self.rlen]);
        self.rpos += n;
        if self.rpos == self.rlen {
            self.rpos = 0;
            self.rlen = 0;
        } else {
            self.rneeded = true;
        }
        n > 0
    }

    /// Output: write what is kept, then ask the driver for more; flush once there
    /// is nothing more.
    fn output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if self.wpos == self.wlen {
            let n = match self.wbuf.take() {
                // Recently backed up: produce straight into the kept buffer; it is
                // written below.
                Some(mut buf) => {
                    let n = self.driver.poll_transmit(&mut buf);
                    self.wbuf = Some(buf);
                    self.wpos = 0;
                    self.wlen = if self.write_failed { 0 } else { n };
                    n
                }
                None => with_scratch(|scratch| self.transmit_via(cx, &mut scratch[..WRITE_BUF])),
            };
            if n == 0 {
                return self.flush(cx);
            }
            progress = true;
            if self.wpos == self.wlen {
                // All written (or discarded after a failed write).
                return progress;
            }
        }
        let Some(buf) = &self.wbuf else {
            return progress;
        };
        match Pin::new(&mut self.io).poll_write(cx, &buf[self.wpos..self.wlen]) {
            Poll::Ready(Ok(0)) => self.write_error(),
            Poll::Ready(Ok(n)) => {
                self.wpos += n;
                self.unflushed = true;
                if self.wpos == self.wlen {
                    self.wpos = 0;
                    self.wlen = 0;
                }
                true
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(_)) => self.write_error(),
            Poll::Pending => {
                self.wneeded = true;
                progress
            }
        }
    }

    /// Produces into `scratch` and writes it at once; what the transport does not
    /// take is kept (written by the caller). Returns the bytes produced.
    fn transmit_via(&mut self, cx: &mut Context<'_>, scratch: &mut [u8]) -> usize {
        let n = self.driver.poll_transmit(scratch);
        let mut off = 0;
        let mut writes = 0;
        // A bounded number of writes: a transport taking a few bytes at a time gets
        // the rest from the kept buffer at later rounds.
        while off < n && !self.write_failed && writes < WRITES_PER_TRANSMIT {
            writes += 1;
            match Pin::new(&mut self.io).poll_write(cx, &scratch[off..n]) {
                Poll::Ready(Ok(0)) => {
                    self.write_error();
                }
                Poll::Ready(Ok(k)) => {
                    off += k;
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => {
                    self.write_error();
                }
                Poll::Pending => break,
            }
        }
        if off < n && !self.write_failed {
            let rest = &scratch[off..n];
            let buf = self.wbuf.get_or_insert_with(|| zeroed(WRITE_BUF));
            buf[..rest.len()].copy_from_slice(rest);
            self.wpos = 0;
            self.wlen = rest.len();
            self.wneeded = true;
        }
        n
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

    /// The timer fired: a kept buffer that held nothing waiting for a whole timer
    /// period is given up (the next backlog allocates it again). Keyed to the
    /// driver's timer, not to traffic, so a busy connection never frees and
    /// reallocates per message.
    fn release_idle_buffers(&mut self) {
        if self.rpos == self.rlen && !self.rneeded {
            self.rbuf = None;
        }
        if self.wpos == self.wlen && !self.wneeded {
            self.wbuf = None;
        }
        self.rneeded = false;
        self.wneeded = false;
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
            self.release_idle_buffers();
            return true;
        }
        if self.armed != Some(at) {
            self.timer.set_at(at);
            self.armed = Some(at);
        }
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.armed = None;
            self.driver.handle_timeout();
            self.release_idle_buffers();
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
        // Nothing is kept from here on: lingering discards what it reads.
        self.rbuf = None;
        self.wbuf = None;
        self.timer.set_after(LINGER);
        self.poll_linger(cx)
    }

    /// Reads and discards until the peer's end of stream, an error, or [`LINGER`].
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            let io = &mut self.io;
            match with_scratch(|scratch| Pin::new(io).poll_read(cx, scratch)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_executor::Executor;
    use async_io::Async;
    use core::future::poll_fn;
    use std::net::{TcpListener, TcpStream};
    use weft_core::{Config, Role};
    use weft_driver as driver;

    /// Rounds a test drives before giving up.
    const ROUNDS_LIMIT: usize = 1_000_000;

    /// A socket that takes at most [`Capped::MAX`] bytes per write: output larger
    /// than a few writes has to be kept.
    struct Capped(Async<TcpStream>);

    impl Capped {
        const MAX: usize = 1000;
    }

    impl AsyncRead for Capped {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Capped {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(Capped::MAX);
            Pin::new(&mut self.get_mut().0).poll_write(cx, &buf[..n])
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_flush(cx)
        }
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_close(cx)
        }
    }

    type Under = DriverTask<Capped>;

    /// Polls the test's own task once, then lets the executor's tasks run.
    async fn turn(task: &mut Under) {
        poll_fn(|cx| {
            assert!(Pin::new(&mut *task).poll(cx).is_pending(), "the task ended");
            Poll::Ready(())
        })
        .await;
        futures_lite::future::yield_now().await;
    }

    /// Drives `task` until `f` completes.
    async fn drive<F: Future>(task: &mut Under, f: F) -> F::Output {
        let mut f = core::pin::pin!(f);
        for _ in 0..ROUNDS_LIMIT {
            let polled = poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
            if let Poll::Ready(v) = polled {
                return v;
            }
            turn(task).await;
        }
        panic!("no progress");
    }

    /// Drives `task` until `done` holds for it.
    async fn drive_until(task: &mut Under, mut done: impl FnMut(&Under) -> bool) {
        for _ in 0..ROUNDS_LIMIT {
            if done(task) {
                return;
            }
            turn(task).await;
        }
        panic!("no progress");
    }

    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    fn numbered(i: u32) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..4].copy_from_slice(&i.to_be_bytes());
        m
    }

    #[test]
    fn buffers_are_kept_only_while_backed_up_and_grow_again_after_idleness() {
        let ex = Executor::new();
        async_io::block_on(ex.run(async {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let sock = Async::<TcpStream>::connect(addr).await.expect("connect");
            let (accepted, _) = listener.accept().expect("accept");
            let server = crate::spawn(
                Async::new(accepted).expect("async"),
                Role::Server,
                Config::default(),
                &ex,
            );
            let (drv, client) = driver::connect(Role::Client, Config::default(), driver::os_seed());
            let mut task = DriverTask::new(Capped(sock), drv);
            drive(&mut task, client.connected())
                .await
                .expect("handshake");
            // The handshake fit a write and the driver took all input: an idle
            // connection owns no buffer.
            assert!(task.rbuf.is_none() && task.wbuf.is_none());

            for round in 0..2u32 {
                // Output larger than the transport takes: the rest is kept, in order.
                let big = pattern(1 << 20, round);
                drive(&mut task, client.send(&big)).await.expect("send");
                let got = drive(&mut task, server.next_message())
                    .await
                    .expect("message");
                assert!(got[..] == big[..], "payload intact (round {round})");
                assert!(task.wbuf.is_some(), "output was kept (round {round})");

                // Input the application does not read: what the driver leaves is
                // kept, and delivered in order once the application catches up.
                const N: u32 = 3_000;
                let sender = server.clone();
                let sends = ex.spawn(async move {
                    for i in 0..N {
                        sender.send(&numbered(i)).await.expect("send");
                    }
                });
                drive_until(&mut task, |t| t.rpos < t.rlen).await;
                for i in 0..N {
                    let m = drive(&mut task, client.next_message())
                        .await
                        .expect("message");
                    assert_eq!(&m[..], &numbered(i), "message {i} (round {round})");
                }
                drive(&mut task, sends).await;
                assert!(task.rbuf.is_some(), "input was kept (round {round})");

                // Idle: the first timer period after the backlog keeps the buffers,
                // a whole period without one gives them back.
                task.release_idle_buffers();
                assert!(task.rbuf.is_some() && task.wbuf.is_some());
                task.release_idle_buffers();
                assert!(task.rbuf.is_none() && task.wbuf.is_none());
                // The next burst (the next round) grows them again.
            }
        }));
    }
}
