//! Weft's own notion of time: a monotonic instant supplied by the caller.
//!
//! The core never reads a clock. Every input carries `now` as an [`Instant`], which
//! must never go backwards; durations are [`core::time::Duration`].

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic clock, in microseconds since an arbitrary origin.
///
/// ```
/// use weft_core::Instant;
/// use core::time::Duration;
/// let t = Instant::from_millis(5);
/// assert_eq!(t + Duration::from_micros(10), Instant::from_micros(5_010));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// The furthest representable instant; used as "never".
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`] instead of overflowing.
    fn add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(micros_of(d)),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(micros_of(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        let a = Instant::from_millis(3);
        assert_eq!(
            a.saturating_duration_since(Instant::from_millis(1)),
            Duration::from_millis(2)
        );
        assert_eq!(
            Instant::from_millis(1).saturating_duration_since(a),
            Duration::ZERO
        );
    }
}
