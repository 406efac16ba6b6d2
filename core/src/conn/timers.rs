//! The connection's fixed timers in a small table: each feature arms and takes its
//! own, and [`Timers::earliest`] feeds `poll_timeout`. (Request deadlines are many,
//! so they live in their own sorted table, `rpc`'s.)

use crate::time::Instant;

/// A fixed timer of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The handshake must complete by then (`handshake`).
    Handshake,
    /// Silence from the peer this long ends the connection (`liveness`).
    Idle,
    /// Our next PING (`liveness`).
    Heartbeat,
    /// A graceful close must have drained by then (`close`).
    Drain,
}

impl Timer {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        match self {
            Timer::Handshake => 0,
            Timer::Idle => 1,
            Timer::Heartbeat => 2,
            Timer::Drain => 3,
        }
    }
}

/// When each fixed timer fires, if armed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timers {
    at: [Option<Instant>; Timer::COUNT],
}

impl Timers {
    /// Arms `t` at `when`, or disarms it with `None`.
    pub(super) fn set(&mut self, t: Timer, when: Option<Instant>) {
        self.at[t.index()] = when;
    }

    /// Disarms `t` and returns true if it was due at `now`.
    pub(super) fn take_due(&mut self, t: Timer, now: Instant) -> bool {
        let slot = &mut self.at[t.index()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
            return true;
        }
        false
    }

    /// Disarms every timer.
    pub(super) fn clear(&mut self) {
        self.at = [None; Timer::COUNT];
    }

    /// The earliest armed timer.
    pub(super) fn earliest(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_due_fires_once_and_earliest_follows() {
        let mut t = Timers::default();
        assert_eq!(t.earliest(), None);
        t.set(Timer::Idle, Some(Instant::from_millis(30)));
        t.set(Timer::Drain, Some(Instant::from_millis(10)));
        assert_eq!(t.earliest(), Some(Instant::from_millis(10)));
        assert!(!t.take_due(Timer::Drain, Instant::from_millis(9)));
        assert!(t.take_due(Timer::Drain, Instant::from_millis(10)));
        assert!(!t.take_due(Timer::Drain, Instant::from_millis(11)));
        assert_eq!(t.earliest(), Some(Instant::from_millis(30)));
        t.clear();
        assert_eq!(t.earliest(), None);
    }
}
