//! The driver task: one future per connection that moves bytes between the
//! transport and the shared [`Driver`], fires its timer, and wakes on its commands.
//!
//! Buffers: an idle connection owns none. Reads and the driver's output go
//! through one scratch buffer per thread, shared by every task polled on it (a
//! poll never holds it across a suspension). Only bytes that must wait, input the
//! driver did not take (the application is behind) or output the transport did
//! not take (its send buffer is full), are copied into a buffer the connection
//! keeps. While it has one, the connection reads or produces into it directly (a
//! busy connection pays no copies), and it gives it up once the buffer stayed
//! unneeded for a whole period of its timer. So a connection keeps buffers only
//! while it is backed up, never frees one per message, and each is bounded
//! ([`READ_BUF`], [`WRITE_BUF`]).

use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use weft_driver::Driver;

/// Bytes read from the transport at a time, and the bound of kept input.
const READ_BUF: usize = 64 * 1024;
/// Bytes produced by the driver at a time, and the bound of kept output: the core
/// wants room for a maximal record (65 535 + 8 bytes) plus the preface.
const WRITE_BUF: usize = 128 * 1024;
/// The per-thread scratch buffer serves reads and output in turn.
const SCRATCH: usize = if READ_BUF > WRITE_BUF {
    READ_BUF
} else {
    WRITE_BUF
};
/// Rounds of work in one poll before yielding to the scheduler.
const ROUNDS: usize = 32;
/// Transmit/write steps in one round.
const WRITES_PER_ROUND: usize = 16;

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
        .unwrap_or_else(|| vec![0u8; SCRATCH].into_boxed_slice());
    let r = f(&mut buf);
    let _ = SCRATCH_BUF.try_with(|c| c.set(Some(buf)));
    r
}

/// A buffer of `n` zero bytes: the pages are only touched (made resident) as far
/// as bytes are actually stored.
fn zeroed(n: usize) -> Box<[u8]> {
    vec![0u8; n].into_boxed_slice()
}

/// One connection's I/O: read, offer, transmit, write, sleep; until finished.
pub(crate) struct Task<T> {
    io: T,
    driver: Driver,
    /// Kept input ([`READ_BUF`] bytes) while the driver is behind, or recently was.
    /// `inbuf[in_pos..in_len]` was read and not yet taken.
    inbuf: Option<Box<[u8]>>,
    in_pos: usize,
    in_len: usize,
    /// Kept output ([`WRITE_BUF`] bytes) while the transport is behind, or recently
    /// was. `outbuf[out_pos..out_len]` was produced and not yet written.
    outbuf: Option<Box<[u8]>>,
    out_pos: usize,
    out_len: usize,
    /// The kept input or output buffer held waiting bytes since the timer last
    /// fired: it is still needed.
    in_needed: bool,
    out_needed: bool,
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

/// Reads into `buf`: the number of bytes read (0 at end of stream).
fn read_into<T: AsyncRead + Unpin>(
    io: &mut T,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<std::io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    Pin::new(io)
        .poll_read(cx, &mut rb)
        .map_ok(|()| rb.filled().len())
}

impl<T> Task<T> {
    pub(crate) fn new(io: T, driver: Driver) -> Self {
        Task {
            io,
            driver,
            inbuf: None,
            in_pos: 0,
            in_len: 0,
            outbuf: None,
            out_pos: 0,
            out_len: 0,
            in_needed: false,
            out_needed: false,
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

    /// The timer fired: a kept buffer that held nothing waiting for a whole timer
    /// period is given up (the next backlog allocates it again). Keyed to the
    /// driver's timer, not to traffic, so a busy connection never frees and
    /// reallocates per message.
    fn release_idle_buffers(&mut self) {
        if self.in_pos == self.in_len && !self.in_needed {
            self.inbuf = None;
        }
        if self.out_pos == self.out_len && !self.out_needed {
            self.outbuf = None;
        }
        self.in_needed = false;
        self.out_needed = false;
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Task<T> {
    /// Offers kept input; reads more only once all of it was taken.
    fn input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = self.offer();
        if self.in_pos < self.in_len || self.read_done {
            // Held back by the application (the driver wakes us when it catches
            // up), or nothing more will come.
            return progress;
        }
        let polled = match self.inbuf.take() {
            // Recently backed up: read straight into the kept buffer.
            Some(mut buf) => {
                let p = read_into(&mut self.io, cx, &mut buf);
                self.inbuf = Some(buf);
                if let Poll::Ready(Ok(n)) = p {
                    self.in_pos = 0;
                    self.in_len = n;
                    self.offer();
                }
                p
            }
            // Read into the scratch buffer and keep only what the driver leaves.
            None => with_scratch(|scratch| {
                let scratch = &mut scratch[..READ_BUF];
                let p = read_into(&mut self.io, cx, scratch);
                if let Poll::Ready(Ok(n)) = p {
                    let taken = self.driver.handle_input(&scratch[..n]);
                    if taken < n {
                        let rest = &scratch[taken..n];
                        let buf = self.inbuf.get_or_insert_with(|| zeroed(READ_BUF));
                        buf[..rest.len()].copy_from_slice(rest);
                        self.in_pos = 0;
                        self.in_len = rest.len();
                        self.in_needed = true;
                    }
                }
                p
            }),
        };
        match polled {
            Poll::Ready(Ok(0)) => {
                tracing::debug!("transport closed by peer");
                progress = true;
                self.read_done = true;
                self.eof();
            }
            Poll::Ready(Ok(_)) => progress = true,
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

    /// Hands kept input to the driver; true if it took some.
    fn offer(&mut self) -> bool {
        if self.in_pos == self.in_len {
            return false;
        }
        let Some(buf) = &self.inbuf else {
            return false;
        };
        let n = self.driver.handle_input(&buf[self.in_pos..self.in_len]);
        self.in_pos += n;
        if self.in_pos == self.in_len {
            self.in_pos = 0;
            self.in_len = 0;
        } else {
            self.in_needed = true;
        }
        n > 0
    }

    /// Writes what the driver produces, keeping what the transport did not take;
    /// flushes when done.
    fn output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..WRITES_PER_ROUND {
            if self.out_pos < self.out_len {
                // Kept output goes first, in order.
                let Some(buf) = &self.outbuf else {
                    break;
                };
                match Pin::new(&mut self.io).poll_write(cx, &buf[self.out_pos..self.out_len]) {
                    Poll::Ready(Ok(0)) => {
                        self.write_failed(&std::io::ErrorKind::WriteZero.into());
                    }
                    Poll::Ready(Ok(n)) => {
                        self.out_pos += n;
                        self.unflushed = true;
                        if self.out_pos == self.out_len {
                            self.out_pos = 0;
                            self.out_len = 0;
                        }
                    }
                    Poll::Ready(Err(e)) => self.write_failed(&e),
                    Poll::Pending => {
                        self.out_needed = true;
                        return progress;
                    }
                }
                progress = true;
                continue;
            }
            let produced = match self.outbuf.take() {
                // Recently backed up: produce straight into the kept buffer; it is
                // written at the next step.
                Some(mut buf) => {
                    let n = self.driver.poll_transmit(&mut buf);
                    self.outbuf = Some(buf);
                    if !self.write_dead {
                        self.out_len = n;
                    }
                    n
                }
                None => with_scratch(|scratch| self.transmit_via(cx, &mut scratch[..WRITE_BUF])),
            };
            if produced == 0 {
                break;
            }
            progress = true;
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

    /// Produces into `scratch` and writes it at once; what the transport does not
    /// take is kept. Returns the bytes produced.
    fn transmit_via(&mut self, cx: &mut Context<'_>, scratch: &mut [u8]) -> usize {
        let n = self.driver.poll_transmit(scratch);
        let mut off = 0;
        let mut writes = 0;
        // As many writes as one round allows: a transport taking a few bytes at
        // a time gets the rest from the kept buffer at later steps.
        while off < n && !self.write_dead && writes < WRITES_PER_ROUND {
            writes += 1;
            match Pin::new(&mut self.io).poll_write(cx, &scratch[off..n]) {
                Poll::Ready(Ok(0)) => self.write_failed(&std::io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(k)) => {
                    off += k;
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => self.write_failed(&e),
                Poll::Pending => break,
            }
        }
        if off == n || self.write_dead {
            // All written, or nowhere to send it: the connection is closing as lost.
            return n;
        }
        // Kept for the transport: the caller's next step writes it.
        let rest = &scratch[off..n];
        let buf = self.outbuf.get_or_insert_with(|| zeroed(WRITE_BUF));
        buf[..rest.len()].copy_from_slice(rest);
        self.out_pos = 0;
        self.out_len = rest.len();
        self.out_needed = true;
        n
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
            self.release_idle_buffers();
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::future::poll_fn;
    use tokio::io::DuplexStream;
    use weft_core::{Config, Role};
    use weft_driver as driver;

    /// Turns a hang into a failure; never part of an assertion.
    const HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);
    /// Rounds a test drives before giving up.
    const ROUNDS_LIMIT: usize = 1_000_000;

    fn run<F: Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(HANG_LIMIT, f)
                .await
                .expect("the test hung")
        })
    }

    /// Polls the test's own task once, then lets the runtime's tasks run.
    async fn turn(task: &mut Task<DuplexStream>) {
        poll_fn(|cx| {
            assert!(Pin::new(&mut *task).poll(cx).is_pending(), "the task ended");
            Poll::Ready(())
        })
        .await;
        tokio::task::yield_now().await;
    }

    /// Drives `task` until `f` completes.
    async fn drive<F: Future>(task: &mut Task<DuplexStream>, f: F) -> F::Output {
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
    async fn drive_until(
        task: &mut Task<DuplexStream>,
        mut done: impl FnMut(&Task<DuplexStream>) -> bool,
    ) {
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
        run(async {
            // A pipe far smaller than a message: every large write is partial.
            let (a, b) = tokio::io::duplex(1024);
            let (drv, client) = driver::connect(Role::Client, Config::default(), driver::os_seed());
            let mut task = Task::new(a, drv);
            let server = crate::spawn(b, Role::Server, Config::default());
            drive(&mut task, client.connected())
                .await
                .expect("handshake");
            // The handshake fit the pipe and the driver took all input: an idle
            // connection owns no buffer.
            assert!(task.inbuf.is_none() && task.outbuf.is_none());

            for round in 0..2u32 {
                // Output larger than the transport takes: the rest is kept, in order.
                let big = pattern(1 << 20, round);
                drive(&mut task, client.send(&big)).await.expect("send");
                let got = drive(&mut task, server.next_message())
                    .await
                    .expect("message");
                assert!(got[..] == big[..], "payload intact (round {round})");
                assert!(task.outbuf.is_some(), "output was kept (round {round})");

                // Input the application does not read: what the driver leaves is
                // kept, and delivered in order once the application catches up.
                const N: u32 = 3_000;
                let sender = server.clone();
                let sends = tokio::spawn(async move {
                    for i in 0..N {
                        sender.send(&numbered(i)).await.expect("send");
                    }
                });
                drive_until(&mut task, |t| t.in_pos < t.in_len).await;
                for i in 0..N {
                    let m = drive(&mut task, client.next_message())
                        .await
                        .expect("message");
                    assert_eq!(&m[..], &numbered(i), "message {i} (round {round})");
                }
                sends.await.expect("sender");
                assert!(task.inbuf.is_some(), "input was kept (round {round})");

                // Idle: the first timer period after the backlog keeps the buffers,
                // a whole period without one gives them back.
                task.release_idle_buffers();
                assert!(task.inbuf.is_some() && task.outbuf.is_some());
                task.release_idle_buffers();
                assert!(task.inbuf.is_none() && task.outbuf.is_none());
                // The next burst (the next round) grows them again.
            }
        });
    }
}
