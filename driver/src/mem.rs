//! In-memory stand-ins for a runtime's I/O: a bounded byte [`pipe`] (a
//! [`Transport`] pair) and a [`ManualTimer`] that fires when told. They let an
//! [`IoTask`](crate::IoTask) run without sockets or clocks: in tests, in the loom
//! models (built with `--cfg loom`, they use loom's locks), or to join two
//! connections inside one process.
//!
//! The pipe behaves as TCP does where the I/O task's closing policy matters: an
//! end dropped while input it never read is waiting *resets* the connection, and
//! the other end's reads then fail with
//! [`ConnectionReset`](std::io::ErrorKind::ConnectionReset), losing what it had
//! not read yet (as a reset can destroy a CLOSE in flight).

use crate::io::{Timer, Transport};
use crate::sync::{lock, Arc, Mutex};
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::io;
use std::time::Instant;

/// One direction of a pipe.
#[derive(Debug, Default)]
struct Half {
    buf: VecDeque<u8>,
    cap: usize,
    /// The writer shut down or was dropped: the reader gets end of stream.
    write_closed: bool,
    /// The reader was dropped: writes fail.
    read_closed: bool,
    /// The reader was dropped with input unread: reads of the other direction fail.
    reset: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// One end of a [`pipe`]: reads what the other end wrote, writes what it reads.
#[derive(Debug)]
pub struct PipeEnd {
    rx: Arc<Mutex<Half>>,
    tx: Arc<Mutex<Half>>,
    max_write: usize,
}

/// Two joined ends, each direction holding at most `capacity` bytes (at least 1)
/// that were written and not yet read; a writer finding it full waits.
pub fn pipe(capacity: usize) -> (PipeEnd, PipeEnd) {
    let half = || {
        Arc::new(Mutex::new(Half {
            cap: capacity.max(1),
            ..Half::default()
        }))
    };
    let (ab, ba) = (half(), half());
    let a = PipeEnd {
        rx: ba.clone(),
        tx: ab.clone(),
        max_write: usize::MAX,
    };
    let b = PipeEnd {
        rx: ab,
        tx: ba,
        max_write: usize::MAX,
    };
    (a, b)
}

impl PipeEnd {
    /// This end takes at most `n` bytes (at least 1) per write, like a socket whose
    /// send buffer is nearly full: every larger write is partial.
    pub fn with_max_write(mut self, n: usize) -> PipeEnd {
        self.max_write = n.max(1);
        self
    }

    /// Bytes written to this end and not yet read by the other.
    pub fn unread_by_peer(&self) -> usize {
        lock(&self.tx).buf.len()
    }
}

impl Transport for PipeEnd {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let reset = lock(&self.tx).reset;
        let mut rx = lock(&self.rx);
        if reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if rx.buf.is_empty() {
            if rx.write_closed {
                return Poll::Ready(Ok(0));
            }
            rx.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(rx.buf.len());
        for (d, s) in buf.iter_mut().zip(rx.buf.drain(..n)) {
            *d = s;
        }
        wake(&mut rx.writer);
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut tx = lock(&self.tx);
        if tx.read_closed || tx.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = tx.cap - tx.buf.len();
        if room == 0 {
            tx.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room).min(self.max_write);
        tx.buf.extend(&buf[..n]);
        wake(&mut tx.reader);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut tx = lock(&self.tx);
        tx.write_closed = true;
        wake(&mut tx.reader);
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut tx = lock(&self.tx);
            tx.write_closed = true;
            wake(&mut tx.reader);
        }
        let mut rx = lock(&self.rx);
        rx.read_closed = true;
        // Closing with unread input resets the connection, as TCP does.
        rx.reset = !rx.buf.is_empty();
        rx.buf.clear();
        wake(&mut rx.writer);
    }
}

/// The state a [`ManualTimer`] shares with its [`TimerControl`].
#[derive(Debug, Default)]
struct TimerState {
    deadline: Option<Instant>,
    fired: bool,
    resets: usize,
    waker: Option<Waker>,
}

/// A [`Timer`] that fires only when its [`TimerControl`] says so, whatever the
/// clock: tests decide when time has passed.
#[derive(Debug)]
pub struct ManualTimer(Arc<Mutex<TimerState>>);

/// Fires a [`ManualTimer`] and tells how it was armed. Cloneable.
#[derive(Clone, Debug)]
pub struct TimerControl(Arc<Mutex<TimerState>>);

/// A manual timer, unarmed, and its control.
pub fn manual_timer() -> (ManualTimer, TimerControl) {
    let s = Arc::new(Mutex::new(TimerState::default()));
    (ManualTimer(s.clone()), TimerControl(s))
}

impl Timer for ManualTimer {
    fn reset(&mut self, deadline: Instant) {
        let mut s = lock(&self.0);
        s.deadline = Some(deadline);
        s.fired = false;
        s.resets += 1;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.0);
        if s.fired {
            return Poll::Ready(());
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl TimerControl {
    /// The deadline the timer is armed at; `None` if it is not armed (never was,
    /// or it fired since).
    pub fn deadline(&self) -> Option<Instant> {
        let s = lock(&self.0);
        s.deadline.filter(|_| !s.fired)
    }

    /// How many times the timer was armed.
    pub fn resets(&self) -> usize {
        lock(&self.0).resets
    }

    /// Fires the timer if it is armed (as if its deadline had passed) and wakes
    /// its task; false if it was not armed.
    pub fn fire(&self) -> bool {
        let mut s = lock(&self.0);
        if s.deadline.is_none() || s.fired {
            return false;
        }
        s.fired = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        true
    }
}
