//! Liveness: heartbeats (PING/PONG), the round-trip estimate, and the idle timer
//! (spec section 14).
//!
//! Everything of the feature is here: the [`Liveness`] state, the PING and PONG
//! handlers, and the heartbeat and idle timers.

use super::timers::Timer;
use super::{Connection, Phase, Refusal};
use crate::error::ErrorCode;
use crate::time::Instant;
use crate::wire::frame::Frame;
use core::time::Duration;

/// Heartbeat and round-trip state of one connection.
#[derive(Debug)]
pub(super) struct Liveness {
    /// PONGs queued and not yet sent (bounded by `max_queued_control`).
    pub(super) pongs_queued: usize,
    /// Our outstanding PING: its token and when it left (at most one).
    pub(super) ping_out: Option<(u64, Instant)>,
    /// Input last arrived then (processing paused on a full event queue resumes
    /// with this time).
    pub(super) last_rx: Instant,
    pub(super) srtt: Option<Duration>,
    pub(super) rttvar: Duration,
    pub(super) min_rtt: Option<Duration>,
}

impl Liveness {
    pub(super) fn new(now: Instant) -> Self {
        Liveness {
            pongs_queued: 0,
            ping_out: None,
            last_rx: now,
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
        }
    }
}

impl Connection {
    pub(super) fn arm_idle(&mut self, now: Instant) {
        if let Some(t) = self.negotiated.and_then(|n| n.idle_timeout) {
            self.timers.set(Timer::Idle, Some(now + t));
        }
    }

    pub(super) fn arm_heartbeat(&mut self, now: Instant) {
        let at = self.negotiated.and_then(|n| n.heartbeat).map(|h| now + h);
        self.timers.set(Timer::Heartbeat, at);
    }

    pub(super) fn rtt_sample(&mut self, sample: Duration) {
        // RFC 6298 smoothing.
        match self.live.srtt {
            None => {
                self.live.srtt = Some(sample);
                self.live.rttvar = sample / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.live.rttvar = (self.live.rttvar * 3 + diff) / 4;
                self.live.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
        self.live.min_rtt = Some(self.live.min_rtt.map_or(sample, |m| m.min(sample)));
        #[cfg(feature = "alloc")]
        if let (Some(s), Some(srtt)) = (self.streams.as_mut(), self.live.srtt) {
            s.set_rtt(u64::try_from(srtt.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// A PING: answered with a PONG, as a control frame, unless too many wait; the
    /// PONG waits for the events before the PING to be taken (`flush.rs`).
    pub(super) fn on_ping(&mut self, token: u64) -> Result<(), Refusal> {
        if self.live.pongs_queued + self.flush.owed() >= self.config.max_queued_control {
            return Err((ErrorCode::CONTROL_FLOOD, "too many pings"));
        }
        self.owe_pong(token)
    }

    /// A PONG: if it answers our heartbeat PING, a round-trip sample; otherwise
    /// perhaps a flush's.
    pub(super) fn on_pong(&mut self, now: Instant, token: u64) {
        if let Some((t, sent)) = self.live.ping_out {
            if t == token {
                self.live.ping_out = None;
                self.rtt_sample(now.saturating_duration_since(sent));
                return;
            }
        }
        self.on_flush_pong(token);
    }

    /// The idle timer; true if it fired (the connection failed).
    pub(super) fn idle_timeout(&mut self, now: Instant) -> bool {
        if self.timers.take_due(Timer::Idle, now) {
            self.fail(now, ErrorCode::IDLE_TIMEOUT, "idle timeout");
            return true;
        }
        false
    }

    /// The heartbeat timer: a PING unless one is outstanding, and the next beat.
    pub(super) fn heartbeat_timeout(&mut self, now: Instant) {
        if self.timers.take_due(Timer::Heartbeat, now) {
            if self.live.ping_out.is_none()
                && matches!(self.phase, Phase::Established | Phase::Draining)
            {
                let token = self.secrets.next_ping_token();
                self.live.ping_out = Some((token, now));
                self.push_control(&Frame::Ping { token });
            }
            self.arm_heartbeat(now);
        }
    }
}
