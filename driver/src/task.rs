//! The I/O task of the async adapters, written once: a future per connection that
//! moves bytes between a [`Transport`] and the [`Driver`], fires its [`Timer`], and
//! wakes on its commands; then closes the transport by the one linger policy.
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
//! ([`READ_BUF`], [`WRITE_BUF`]). Input waits in a [`Backlog`], the type (and
//! stop rule) the event-loop adapters use too.
//!
//! Timer: re-armed only when the deadline moves *earlier*. The driver's deadline
//! moves later with nearly every message (the idle timer restarts with each byte
//! received); a timer still armed for an earlier instant then fires early, the
//! task sees that the deadline is not due and re-arms it once. So a busy
//! connection resets its timer about once per timer period, not once per message.
//!
//! Closing (PROTOCOL.md section 15.5): once the driver is finished, within
//! [`Driver::linger`] from that moment, the task writes what it still keeps,
//! flushes, shuts the write direction down, then reads and discards until the
//! peer's end of stream; then it drops the transport. A transport that failed is
//! dropped at once.

use crate::io::{Timer, Transport};
use crate::{Backlog, Driver};
use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::time::Instant;

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
/// Rounds of work in one poll before yielding to the scheduler: 32 rounds of up to
/// 16 writes of 128 KiB is far more than a socket takes at once, and yielding that
/// often keeps a busy connection from starving the others of its thread.
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
        .unwrap_or_else(|| zeroed(SCRATCH));
    let r = f(&mut buf);
    let _ = SCRATCH_BUF.try_with(|c| c.set(Some(buf)));
    r
}

/// A buffer of `n` zero bytes: the pages are only touched (made resident) as far
/// as bytes are actually stored.
fn zeroed(n: usize) -> Box<[u8]> {
    vec![0u8; n].into_boxed_slice()
}

/// Where a task is in the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Moving bytes for the driver.
    Running,
    /// The driver finished: writing what is kept, flushing, shutting down.
    Closing,
    /// Our direction is shut down: discarding input until the peer's end of stream.
    Lingering,
}

/// The I/O task of one connection: a future that ends when the connection is over
/// and its transport was closed by the linger policy (then the transport is
/// dropped).
///
/// Each poll registers the task's waker with the driver (application commands
/// wake it), then, until nothing moves or the budget of a poll is spent: offers
/// kept input to the driver, reads more once it was all taken, writes what the
/// driver produces (a partial write is resumed where it stopped), and keeps the
/// [`Timer`] armed for the driver's next deadline. End of stream or an I/O error
/// reaches the driver as end of stream. Once the driver is finished, it closes:
/// within [`Driver::linger`], it writes what is left, flushes, shuts the write
/// direction down, and reads (discarding) until the peer's end of stream.
///
/// Adapters wrap their runtime's socket and timer in the two traits and spawn
/// this; for a server connection, attach the driver to its
/// [`Hub`](crate::Hub) first.
pub struct IoTask<T, R> {
    io: T,
    timer: R,
    driver: Driver,
    /// Input read and not yet taken; its buffer ([`READ_BUF`] bytes) is kept while
    /// the driver is behind, or recently was.
    backlog: Backlog,
    /// Kept output ([`WRITE_BUF`] bytes) while the transport is behind, or recently
    /// was. `outbuf[out_pos..out_len]` was produced and not yet written.
    outbuf: Option<Box<[u8]>>,
    out_pos: usize,
    out_len: usize,
    /// The kept output buffer held waiting bytes since the timer last fired: it
    /// is still needed.
    out_needed: bool,
    /// What the timer is armed for; `None` while unarmed (or just fired).
    armed: Option<Instant>,
    /// Until when the transport is kept, once the driver finished.
    linger_until: Option<Instant>,
    /// The transport's read half ended (EOF or error).
    read_done: bool,
    /// Writing failed: what the driver still produces is discarded.
    write_dead: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// `handle_eof` was called.
    eof_sent: bool,
    phase: Phase,
}

impl<T, R> core::fmt::Debug for IoTask<T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IoTask")
            .field("pending_input", &self.backlog.len())
            .field("pending_output", &(self.out_len - self.out_pos))
            .field("read_done", &self.read_done)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// The result of one transport call, as the task sees it.
enum Step<V> {
    Done(V),
    /// Interrupted: try again.
    Again,
    Failed(io::Error),
    Pending,
}

fn step<V>(p: Poll<io::Result<V>>) -> Step<V> {
    match p {
        Poll::Ready(Ok(v)) => Step::Done(v),
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Step::Again,
        Poll::Ready(Err(e)) => Step::Failed(e),
        Poll::Pending => Step::Pending,
    }
}

impl<T: Transport, R: Timer> IoTask<T, R> {
    /// The task that runs `driver` over `io`, with `timer` for its deadlines (not
    /// yet armed: the task arms it).
    pub fn new(io: T, driver: Driver, timer: R) -> Self {
        IoTask {
            io,
            timer,
            driver,
            backlog: Backlog::new(READ_BUF),
            outbuf: None,
            out_pos: 0,
            out_len: 0,
            out_needed: false,
            armed: None,
            linger_until: None,
            read_done: false,
            write_dead: false,
            unflushed: false,
            eof_sent: false,
            phase: Phase::Running,
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
        self.backlog.period_ended();
        if self.out_pos == self.out_len && !self.out_needed {
            self.outbuf = None;
        }
        self.out_needed = false;
    }

    /// Offers kept input; reads more only once all of it was taken.
    fn input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = self.backlog.offer(&mut self.driver) > 0;
        if !self.backlog.is_empty() || self.read_done {
            // Held back by the application (the driver wakes us when it catches
            // up), or nothing more will come.
            return progress;
        }
        let polled = match self.backlog.spare() {
            // Recently backed up: read straight into the kept buffer.
            Some(buf) => {
                let p = self.io.poll_read(cx, buf);
                if let Poll::Ready(Ok(n)) = p {
                    self.backlog.filled(n);
                    self.backlog.offer(&mut self.driver);
                }
                p
            }
            // Read into the scratch buffer and keep only what the driver leaves.
            None => with_scratch(|scratch| {
                let scratch = &mut scratch[..READ_BUF];
                let p = self.io.poll_read(cx, scratch);
                if let Poll::Ready(Ok(n @ 1..)) = p {
                    self.backlog.offer_and_keep(&mut self.driver, &scratch[..n]);
                }
                p
            }),
        };
        match step(polled) {
            Step::Done(0) => {
                tracing::debug!("transport closed by peer");
                self.read_done = true;
                self.eof();
            }
            Step::Done(_) | Step::Again => {}
            Step::Failed(e) => {
                tracing::debug!(error = %e, "transport read failed");
                self.read_done = true;
                self.eof();
            }
            Step::Pending => return progress,
        }
        progress = true;
        progress
    }

    /// Writes kept output, in order; `Pending` while the transport takes no more.
    fn write_kept(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(buf) = &self.outbuf else {
            return Poll::Ready(());
        };
        match step(self.io.poll_write(cx, &buf[self.out_pos..self.out_len])) {
            Step::Done(0) => self.write_failed(&io::ErrorKind::WriteZero.into()),
            Step::Done(n) => {
                self.out_pos += n;
                self.unflushed = true;
                if self.out_pos == self.out_len {
                    self.out_pos = 0;
                    self.out_len = 0;
                }
            }
            Step::Again => {}
            Step::Failed(e) => self.write_failed(&e),
            Step::Pending => {
                self.out_needed = true;
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }

    /// Writes what the driver produces, keeping what the transport did not take;
    /// flushes when done.
    fn output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..WRITES_PER_ROUND {
            if self.out_pos < self.out_len {
                if self.write_kept(cx).is_pending() {
                    return progress;
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
            match step(self.io.poll_flush(cx)) {
                Step::Done(()) => self.unflushed = false,
                Step::Failed(e) => {
                    self.write_failed(&e);
                    progress = true;
                }
                Step::Again => progress = true,
                Step::Pending => {}
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
            match step(self.io.poll_write(cx, &scratch[off..n])) {
                Step::Done(0) => self.write_failed(&io::ErrorKind::WriteZero.into()),
                Step::Done(k) => {
                    off += k;
                    self.unflushed = true;
                }
                Step::Again => {}
                Step::Failed(e) => self.write_failed(&e),
                Step::Pending => break,
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

    fn write_failed(&mut self, e: &io::Error) {
        tracing::debug!(error = %e, "transport write failed");
        self.write_dead = true;
        self.unflushed = false;
        self.out_pos = 0;
        self.out_len = 0;
        self.eof();
    }

    /// Keeps the timer armed for `want`, re-arming only when it moves earlier; true
    /// once the armed deadline passed. A timer armed earlier than `want` fires
    /// early: the caller sees `want` not yet due, and the next call re-arms.
    fn poll_timer(&mut self, cx: &mut Context<'_>, want: Option<Instant>) -> Option<Instant> {
        if let Some(w) = want {
            if self.armed.is_none_or(|a| w < a) {
                self.timer.reset(w);
                self.armed = Some(w);
            }
        }
        self.armed?;
        if self.timer.poll(cx).is_pending() {
            return None;
        }
        self.armed.take()
    }

    /// Fires the driver's timer when due; true if the timer fired at all (the
    /// next round re-arms it).
    fn timer(&mut self, cx: &mut Context<'_>) -> bool {
        let want = self.driver.poll_timeout();
        let Some(fired) = self.poll_timer(cx, want) else {
            return false;
        };
        if want.is_some_and(|w| w <= fired) {
            self.driver.handle_timeout();
            self.release_idle_buffers();
        }
        true
    }

    /// The connection is over: writes what is kept, flushes, shuts the write
    /// direction down, then discards input until the peer's end of stream; all
    /// within the linger period. `Ready` when the transport may be dropped.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let until = *self
            .linger_until
            .get_or_insert_with(|| Instant::now() + self.driver.linger());
        for _ in 0..ROUNDS {
            match self.close_step(cx) {
                Poll::Ready(true) => {
                    tracing::debug!("connection finished");
                    return Poll::Ready(());
                }
                Poll::Ready(false) => {}
                Poll::Pending => match self.poll_timer(cx, Some(until)) {
                    Some(fired) if fired >= until => {
                        tracing::debug!("linger over: transport dropped");
                        return Poll::Ready(());
                    }
                    // Armed for an earlier deadline of the driver's: re-armed for
                    // the linger's at the next step.
                    Some(_) => {}
                    None => return Poll::Pending,
                },
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One step of closing: `Ready(true)` once the transport may be dropped,
    /// `Ready(false)` after progress, `Pending` while the transport is not ready.
    fn close_step(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.write_dead {
            // Nothing can reach the peer any more.
            return Poll::Ready(true);
        }
        if self.phase == Phase::Lingering {
            let io = &mut self.io;
            let p = with_scratch(|scratch| io.poll_read(cx, &mut scratch[..READ_BUF]));
            return match step(p) {
                Step::Done(0) | Step::Failed(_) => Poll::Ready(true),
                Step::Done(_) | Step::Again => Poll::Ready(false),
                Step::Pending => Poll::Pending,
            };
        }
        if self.out_pos < self.out_len {
            return self.write_kept(cx).map(|()| false);
        }
        if self.unflushed {
            return match step(self.io.poll_flush(cx)) {
                Step::Pending => Poll::Pending,
                Step::Again => Poll::Ready(false),
                // A failed flush still lets the shutdown try to end our direction.
                Step::Done(()) | Step::Failed(_) => {
                    self.unflushed = false;
                    Poll::Ready(false)
                }
            };
        }
        match step(self.io.poll_shutdown(cx)) {
            Step::Pending => Poll::Pending,
            Step::Again => Poll::Ready(false),
            Step::Done(()) | Step::Failed(_) => {
                // Nothing is kept from here on: what is read is discarded.
                self.backlog.discard();
                self.outbuf = None;
                self.phase = Phase::Lingering;
                Poll::Ready(self.read_done)
            }
        }
    }
}

impl<T: Transport + Unpin, R: Timer + Unpin> Future for IoTask<T, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..ROUNDS {
            if this.phase != Phase::Running {
                return this.poll_close(cx);
            }
            // Registered before looking at anything, so that a command issued
            // while this round runs wakes the task again.
            this.driver.register(cx.waker());
            let mut progress = this.input(cx);
            progress |= this.output(cx);
            progress |= this.timer(cx);
            if this.driver.is_finished() {
                this.phase = Phase::Closing;
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
mod tests;
