//! What the [`IoTask`](crate::IoTask) needs from a runtime: a byte transport and a
//! timer, two small traits in the manner of quinn's `AsyncUdpSocket` and
//! `AsyncTimer`. An adapter implements them for its runtime's types (usually as
//! newtypes, a few lines each) and spawns the task; the algorithm itself is
//! written once, here.
//!
//! Both take `&mut self`: the task owns them and never moves them while polling,
//! so a type that must be pinned (tokio's `Sleep`) is boxed by its adapter.

use core::task::{Context, Poll};
use std::io;
use std::time::Instant;

/// A byte stream the [`IoTask`](crate::IoTask) reads from and writes to: a TCP or
/// Unix socket, a TLS stream, an in-memory pipe ([`mem::pipe`](crate::mem::pipe)).
///
/// The contract is that of `futures-io` and `tokio::io`: `Pending` means the waker
/// of `cx` is woken once the call may succeed; `Ok(0)` from a read is the end of
/// the peer's stream. Reads and writes may be partial: the task keeps what was not
/// taken and resumes from there. An [`Interrupted`](io::ErrorKind::Interrupted)
/// error is retried; any other error ends that direction.
pub trait Transport {
    /// Reads into `buf` (never empty); the number of bytes read, 0 at end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf` (never empty); the number of bytes taken, at least 1 unless
    /// the transport can take no more (0 is treated as a failed write).
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Pushes written bytes out of any buffer of the transport's own.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ends the write direction (TCP: sends FIN) after the bytes written so far;
    /// the read direction stays open.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A one-shot timer the [`IoTask`](crate::IoTask) re-arms, like quinn's
/// `AsyncTimer`.
///
/// The task calls [`poll`](Self::poll) only after a [`reset`](Self::reset), and
/// after a poll returned `Ready` it resets the timer before polling it again. A
/// timer may fire late (it is rounded to the runtime's granularity), never early.
pub trait Timer {
    /// Arms the timer for `deadline`, replacing any earlier setting. A deadline in
    /// the past fires at the next poll.
    fn reset(&mut self, deadline: Instant);

    /// `Ready` once the deadline set by the last [`reset`](Self::reset) passed;
    /// otherwise `Pending`, and the waker of `cx` is woken when it passes.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
