//! Closing: the graceful drain (CLOSE both ways, in-flight work finishing, the
//! drain timer), error closes, the end of the transport, and the one `Closed`
//! event (spec section 15).
//!
//! Everything of the feature is here: the [`Closing`] state, the `close` command,
//! the CLOSE handler and the drain timer.

use super::timers::Timer;
use super::{CloseInfo, CloseKind, Connection, Event, Outcome, Phase, Side};
use crate::error::ErrorCode;
use crate::time::Instant;
use crate::wire::frame::{self, Frame};

/// Where the connection is in closing.
#[derive(Debug)]
pub(super) struct Closing {
    /// Our CLOSE is queued or sent.
    pub(super) close_sent: bool,
    /// A graceful CLOSE decided but waiting for the queued data to leave first.
    pub(super) pending_close: Option<(ErrorCode, heapless::String<{ frame::MAX_REASON }>)>,
    /// The peer's CLOSE arrived.
    pub(super) close_received: bool,
    /// The first CLOSE either way: its code and who sent it.
    pub(super) first_close: Option<(ErrorCode, Side)>,
    /// The peer processes none of our requests above this id (its CLOSE said so).
    pub(super) peer_last_request: u64,
    /// We process none of the peer's requests above this id (our CLOSE said so).
    pub(super) our_last_request: u64,
    pub(super) close_reason: heapless::String<{ frame::MAX_REASON }>,
    /// The `Closed` event was queued: it is queued once.
    pub(super) closed_event: bool,
    /// A graceful close the application asked for before the handshake ended: it
    /// starts once the connection is up, so what was accepted before is sent first
    /// (spec 15.1).
    pub(super) after_handshake: Option<(ErrorCode, heapless::String<{ frame::MAX_REASON }>)>,
    /// The transport ended while input already taken was not processed yet
    /// (processing paused on a full event queue). That input may hold the peer's
    /// last messages and its CLOSE, so the end applies once it is used up.
    pub(super) eof_pending: bool,
}

impl Closing {
    pub(super) fn new() -> Self {
        Closing {
            close_sent: false,
            pending_close: None,
            close_received: false,
            first_close: None,
            peer_last_request: u64::MAX,
            our_last_request: u64::MAX,
            close_reason: heapless::String::new(),
            closed_event: false,
            after_handshake: None,
            eof_pending: false,
        }
    }
}

impl Connection {
    /// Starts closing. [`ErrorCode::NO_ERROR`] and application codes drain: no new
    /// requests, in-flight work finishes, then [`Event::Closed`]. Other codes close at
    /// once.
    ///
    /// A graceful close asked for during the handshake waits for it: once the
    /// connection is up, what was accepted before the close is sent and drained as
    /// on any graceful close; if the handshake fails instead, the close reports the
    /// handshake's code and counts every accepted message in
    /// [`Stats::unsent`](super::Stats::unsent). Nothing new is accepted meanwhile.
    pub fn close(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        if matches!(self.phase, Phase::Failing | Phase::Closed)
            || self.closing.close_sent
            || self.closing.after_handshake.is_some()
        {
            return;
        }
        if code.is_graceful() && matches!(self.phase, Phase::Handshake | Phase::AwaitAuth) {
            self.closing.after_handshake = Some((code, truncated(reason)));
            return;
        }
        if !code.is_graceful() || self.phase != Phase::Established {
            self.fail(now, code, reason);
            return;
        }
        self.send_close(now, code, reason, Side::Local);
        self.check_drained(now);
    }

    /// Starts the graceful close the application asked for during the handshake,
    /// now that the connection is up.
    pub(super) fn close_after_handshake(&mut self, now: Instant) {
        if let Some((code, reason)) = self.closing.after_handshake.take() {
            self.send_close(now, code, &reason, Side::Local);
            self.check_drained(now);
        }
    }

    pub(super) fn send_close(&mut self, now: Instant, code: ErrorCode, reason: &str, side: Side) {
        self.closing.our_last_request = self.rpc.max_peer_req;
        // The CLOSE follows the data already queued (control frames would overtake
        // it); it is queued by `queue_pending_close` once the lanes are empty.
        self.closing.pending_close = Some((code, truncated(reason)));
        self.closing.close_sent = true;
        if self.closing.first_close.is_none() {
            self.closing.first_close = Some((code, side));
            self.set_reason(reason);
        }
        self.phase = Phase::Draining;
        self.timers
            .set(Timer::Drain, Some(now + self.config.drain_timeout));
    }

    /// Queues a graceful CLOSE waiting for the data lanes to empty.
    pub(super) fn queue_pending_close(&mut self) {
        if self.tx.queued_bytes() > 0 {
            return;
        }
        if let Some((code, reason)) = self.closing.pending_close.take() {
            self.push_control(&Frame::Close {
                code,
                last_request_id: self.closing.our_last_request,
                reason: &reason,
            });
        }
    }

    /// Closes at once with an error: queue CLOSE, drop everything else.
    pub(super) fn fail(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        let _ = now;
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return;
        }
        self.stats.errors += 1;
        self.count_unsent();
        self.tx.clear();
        // Our preface may not be out yet: it still goes first (poll_transmit).
        let _ = self.tx.control.push(&Frame::Close {
            code,
            last_request_id: self.rpc.max_peer_req,
            reason,
        });
        self.closing.close_sent = true;
        self.set_reason(reason);
        self.closing.first_close.get_or_insert((code, Side::Local));
        self.phase = Phase::Failing;
        self.timers.clear();
        self.emit_closed(CloseInfo {
            code,
            initiator: Side::Local,
            kind: CloseKind::Error,
        });
    }

    /// Counts what will never be delivered as the connection ends: what is still
    /// queued, or, when the handshake never completed, everything accepted (the
    /// peer processes no pipelined data of a failed handshake, spec 7.3).
    fn count_unsent(&mut self) {
        self.stats.unsent += if matches!(self.phase, Phase::Handshake | Phase::AwaitAuth) {
            self.stats.messages_sent
        } else {
            self.tx.data_frames_queued() as u64
        };
    }

    pub(super) fn set_reason(&mut self, reason: &str) {
        self.closing.close_reason = truncated(reason);
    }

    pub(super) fn emit_closed(&mut self, info: CloseInfo) {
        if !self.closing.closed_event {
            self.closing.closed_event = true;
            // Pending requests will never be answered. Only a graceful close
            // promises the peer did not process them.
            self.end_requests(if info.kind == CloseKind::Graceful {
                Outcome::NotProcessed
            } else {
                Outcome::Lost
            });
            // What the streams queued before the end goes before `Closed`, the last
            // event: the receive loop stops at a failure without draining them.
            #[cfg(feature = "alloc")]
            self.drain_stream_events();
            self.push_event(Event::Closed(info), None);
        }
    }

    pub(super) fn enter_closed(&mut self, info: CloseInfo) {
        if self.phase != Phase::Failing {
            self.count_unsent();
            self.tx.clear();
        }
        self.phase = Phase::Closed;
        self.timers.clear();
        self.emit_closed(info);
    }

    /// A graceful close completes when both CLOSEs crossed and nothing is in flight.
    pub(super) fn check_drained(&mut self, now: Instant) {
        let _ = now;
        if self.phase != Phase::Draining
            || !(self.closing.close_sent && self.closing.close_received)
            || self.closing.pending_close.is_some()
        {
            return;
        }
        #[cfg(feature = "alloc")]
        let streams_open = self
            .streams
            .as_ref()
            .is_some_and(|s| s.stats().open_streams > 0);
        #[cfg(not(feature = "alloc"))]
        let streams_open = false;
        if !self.rpc.in_flight() && !streams_open && self.tx.is_idle() {
            let (code, side) = self
                .closing
                .first_close
                .unwrap_or((ErrorCode::NO_ERROR, Side::Local));
            self.enter_closed(CloseInfo {
                code,
                initiator: side,
                kind: CloseKind::Graceful,
            });
        }
    }

    pub(super) fn on_peer_close(
        &mut self,
        now: Instant,
        code: ErrorCode,
        last_request_id: u64,
        reason: &str,
    ) {
        if !code.is_graceful() {
            return self.on_peer_close_error(code, reason);
        }
        if self.closing.close_received {
            return;
        }
        self.closing.close_received = true;
        self.closing.peer_last_request = last_request_id;
        self.requests_not_processed_above(last_request_id);
        if !self.closing.close_sent {
            self.closing.first_close = Some((code, Side::Peer));
            self.set_reason(reason);
            self.push_event(Event::Draining { code }, None);
            self.send_close(now, code, "", Side::Peer);
        }
        self.check_drained(now);
    }

    pub(super) fn on_peer_close_error(&mut self, code: ErrorCode, reason: &str) {
        self.closing.close_received = true;
        self.set_reason(reason);
        self.closing.first_close.get_or_insert((code, Side::Peer));
        self.enter_closed(super::CloseInfo {
            code,
            initiator: Side::Peer,
            kind: super::CloseKind::Error,
        });
    }

    /// The transport ended (EOF or reset): how the connection ended follows from
    /// how far closing had come.
    /// The transport ended: at once, or (when input taken is still waiting for
    /// room in the event queue) once that input is processed.
    pub(super) fn on_eof(&mut self) {
        if self.events_full() && !matches!(self.phase, Phase::Closed | Phase::Failing) {
            self.closing.eof_pending = true;
        } else {
            self.on_transport_end();
        }
    }

    /// Applies an end of transport that waited for paused input, once processing
    /// ran out of input rather than of event room.
    pub(super) fn apply_pending_eof(&mut self) {
        if self.closing.eof_pending && !self.events_full() {
            self.closing.eof_pending = false;
            self.on_transport_end();
        }
    }

    pub(super) fn on_transport_end(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        let c = &self.closing;
        let graceful_done = c.close_received && c.close_sent;
        let info = if graceful_done {
            CloseInfo {
                code: c.first_close.map_or(ErrorCode::NO_ERROR, |c| c.0),
                initiator: c.first_close.map_or(Side::Peer, |c| c.1),
                kind: CloseKind::Graceful,
            }
        } else if let Some((code, side)) = c.first_close.filter(|_| self.phase == Phase::Failing) {
            CloseInfo {
                code,
                initiator: side,
                kind: CloseKind::Error,
            }
        } else {
            CloseInfo {
                code: ErrorCode::NO_ERROR,
                initiator: Side::Peer,
                kind: CloseKind::Lost,
            }
        };
        self.enter_closed(info);
    }

    /// The drain timer fired: a graceful close that has not drained is aborted.
    pub(super) fn drain_timeout(&mut self, now: Instant) -> bool {
        if self.timers.take_due(Timer::Drain, now) {
            self.fail(now, ErrorCode::DRAIN_TIMEOUT, "drain timed out");
            return true;
        }
        false
    }
}

/// `reason` cut to what a CLOSE frame carries, at a character boundary.
fn truncated(reason: &str) -> heapless::String<{ frame::MAX_REASON }> {
    let mut end = reason.len().min(frame::MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut r = heapless::String::new();
    let _ = r.push_str(&reason[..end]);
    r
}
