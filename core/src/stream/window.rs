//! Credit-based flow control, once for both levels.
//!
//! A stream and the connection follow the same rules in each direction: the peer
//! raises a cumulative limit on what we send; we raise a cumulative limit on what
//! the peer sends as the application consumes, and grow the window when grants come
//! faster than `2 x RTT`. A [`FlowWindow`] holds both directions of one such scope;
//! [`Streams`](super::Streams) keeps one per stream and one for the connection, and
//! only what links the two levels (a DATA frame spends both, a stream window that
//! grows may raise the connection's) lives outside this file.
//!
//! All counters are cumulative byte offsets, never sizes that shrink, so an update
//! is always the distance between a new limit and the old one.

use super::{StreamProtoError, MAX_FLOW_LIMIT};
use crate::time::Instant;

/// Both directions of one flow-controlled scope: a stream, or the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FlowWindow {
    /// What the peer lets us send.
    pub(super) send: SendCredit,
    /// What we let the peer send.
    pub(super) recv: RecvWindow,
}

impl FlowWindow {
    /// A scope whose peer granted `send_limit` bytes and to which we grant an
    /// initial window of `recv_window` bytes.
    pub(super) fn new(send_limit: u64, recv_window: u64) -> Self {
        Self {
            send: SendCredit {
                limit: send_limit,
                sent: 0,
            },
            recv: RecvWindow {
                limit: recv_window,
                received: 0,
                consumed: 0,
                size: recv_window,
                last_grant: None,
            },
        }
    }
}

/// Send-side credit: the peer's cumulative limit and what we sent against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SendCredit {
    limit: u64,
    sent: u64,
}

impl SendCredit {
    /// Bytes we may still send.
    pub(super) fn credit(&self) -> u64 {
        self.limit - self.sent
    }

    /// Accounts for `n` bytes sent; the caller has checked them against
    /// [`credit`](Self::credit).
    pub(super) fn spend(&mut self, n: u64) {
        self.sent += n;
    }

    /// Applies a WINDOW_UPDATE. A limit beyond [`MAX_FLOW_LIMIT`] is the peer's
    /// error, and leaves the credit unchanged.
    pub(super) fn raise(&mut self, increment: u64) -> Result<(), StreamProtoError> {
        self.limit = self
            .limit
            .checked_add(increment)
            .filter(|&v| v <= MAX_FLOW_LIMIT)
            .ok_or(StreamProtoError::FlowControl)?;
        Ok(())
    }
}

/// Receive-side window: what we granted, what arrived, what was consumed, and the
/// auto-tuned window size that sets the next grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecvWindow {
    /// Cumulative bytes the peer may send.
    limit: u64,
    /// Cumulative bytes received.
    received: u64,
    /// Cumulative bytes read by the application, or dropped unread.
    consumed: u64,
    /// Current window size: a grant re-opens up to `consumed + size`.
    size: u64,
    /// When the previous grant happened. The first data stands in for the initial
    /// grant, whose time we do not know.
    last_grant: Option<Instant>,
}

impl RecvWindow {
    /// Whether `len` more bytes stay within what we granted.
    pub(super) fn admits(&self, len: u64) -> bool {
        self.received + len <= self.limit
    }

    /// Accounts for `len` bytes received at `now`; the caller has checked
    /// [`admits`](Self::admits).
    pub(super) fn receive(&mut self, len: u64, now: Instant) {
        self.received += len;
        self.last_grant.get_or_insert(now);
    }

    /// Accounts for `n` received bytes leaving the buffer (read or dropped).
    pub(super) fn consume(&mut self, n: u64) {
        self.consumed += n;
    }

    /// Accounts for `len` bytes received and dropped at once (for a stream that is
    /// gone): their credit is due back without any reader. Deliberately not a
    /// timing sample: the data was never read, so it says nothing about how fast
    /// the application consumes.
    pub(super) fn discard(&mut self, len: u64) {
        self.received += len;
        self.consumed += len;
    }

    /// Bytes received and not yet consumed.
    pub(super) fn unread(&self) -> u64 {
        self.received - self.consumed
    }

    /// Bytes the peer may still send before our next grant.
    pub(super) fn credit(&self) -> u64 {
        self.limit - self.received
    }

    /// Current window size.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes consumed so far.
    #[cfg(test)]
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether a grant is worth a frame: at least half of the window was consumed
    /// since the last one, so updates stay few however small the reads.
    pub(super) fn update_due(&self) -> bool {
        let inc = self.pending_increment();
        inc > 0 && inc >= self.size / 2
    }

    /// Grants credit up to `consumed + size` and returns the increment for the
    /// WINDOW_UPDATE. A grant due sooner than `2 x rtt` (in microseconds) after the
    /// previous one means the window limits throughput, so it first doubles, up to
    /// `max` (`rtt` 0 means unknown: no growth).
    pub(super) fn grant(&mut self, now: Instant, rtt: u64, max: u64) -> u64 {
        let fast = match self.last_grant {
            Some(t) if rtt > 0 => {
                now.as_micros().saturating_sub(t.as_micros()) < rtt.saturating_mul(2)
            }
            _ => false,
        };
        if fast && self.size < max {
            self.size = (self.size * 2).min(max);
        }
        self.last_grant = Some(now);
        let increment = self.pending_increment();
        self.limit += increment;
        increment
    }

    /// Raises the window size to at least `size` (never shrinks it).
    pub(super) fn grow_to(&mut self, size: u64) {
        self.size = self.size.max(size);
    }

    fn pending_increment(&self) -> u64 {
        (self.consumed + self.size).saturating_sub(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: u64) -> Instant {
        Instant::from_micros(micros)
    }

    #[test]
    fn send_credit_is_spent_and_raised_within_the_limit() {
        let mut w = FlowWindow::new(100, 0).send;
        w.spend(60);
        assert_eq!(w.credit(), 40);
        w.raise(10).unwrap();
        assert_eq!(w.credit(), 50);
        assert_eq!(w.raise(MAX_FLOW_LIMIT), Err(StreamProtoError::FlowControl));
        assert_eq!(w.raise(u64::MAX), Err(StreamProtoError::FlowControl));
        assert_eq!(w.credit(), 50, "a refused raise changes nothing");
        w.raise(MAX_FLOW_LIMIT - 110).unwrap();
        assert_eq!(w.credit(), MAX_FLOW_LIMIT - 60);
    }

    #[test]
    fn recv_window_grants_after_half_is_consumed() {
        let mut w = FlowWindow::new(0, 1000).recv;
        assert!(w.admits(1000) && !w.admits(1001));
        w.receive(1000, at(0));
        assert_eq!((w.unread(), w.credit()), (1000, 0));
        w.consume(499);
        assert!(!w.update_due(), "less than half consumed");
        w.consume(1);
        assert!(w.update_due());
        assert_eq!(w.grant(at(0), 0, 1000), 500);
        assert_eq!((w.credit(), w.size()), (500, 1000));
        assert!(!w.update_due());
        // Discarded bytes come back like read ones.
        w.discard(500);
        assert_eq!(w.unread(), 500);
        assert!(w.update_due());
        assert_eq!(w.grant(at(0), 0, 1000), 500);
    }

    #[test]
    fn recv_window_doubles_on_fast_grants_up_to_max() {
        let mut w = FlowWindow::new(0, 1000).recv;
        let rtt = 100;
        // The first data stands in for the initial grant.
        w.receive(1000, at(10));
        w.consume(1000);
        // Sooner than 2 x RTT: doubles.
        assert_eq!(w.grant(at(209), rtt, 3000), 2000);
        assert_eq!(w.size(), 2000);
        w.receive(2000, at(209));
        w.consume(2000);
        // Capped at max.
        w.grant(at(300), rtt, 3000);
        assert_eq!(w.size(), 3000);
        w.receive(3000, at(300));
        w.consume(3000);
        // Exactly 2 x RTT later is not fast: no growth (and none beyond max anyway).
        w.grant(at(500), rtt, 8000);
        assert_eq!(w.size(), 3000);
        // Unknown RTT: never grows.
        w.receive(3000, at(500));
        w.consume(3000);
        w.grant(at(501), 0, 8000);
        assert_eq!(w.size(), 3000);
        w.grow_to(2000);
        assert_eq!(w.size(), 3000, "grow_to never shrinks");
        w.grow_to(4000);
        assert_eq!(w.size(), 4000);
    }
}
