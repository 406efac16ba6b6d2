//! Flushes: a PING that proves the peer processed everything sent before it, and
//! the PONG deferral that makes the proof hold (spec section 14.1).
//!
//! Everything of the feature is here: the [`Flushes`] state, the `flush` command,
//! releasing its PING once the data queued before it has left, matching its PONG,
//! and on the receiving side holding back each PONG until the events that came
//! before its PING were taken.
//!
//! Why a PING and not a new frame: every peer already answers PINGs, in order,
//! so the only change is *when* it answers; and one mechanism serves both a
//! subscription's acknowledgement and a general flush, as in NATS.

use super::send::TxMark;
use super::store::Queue;
use super::{Connection, Event, Phase, Refusal};
use crate::error::{Error, ErrorCode};
use crate::wire::frame::Frame;

/// Flushes a connection keeps outstanding at most; one more is refused with
/// [`Error::Blocked`] until one completes. A flush costs one PING and 24 bytes.
pub const MAX_FLUSHES: usize = 16;

/// Names one [`Connection::flush`]; its [`Event::Flushed`] carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlushId(pub u64);

/// Flush and PONG bookkeeping of one connection.
#[derive(Debug)]
pub(super) struct Flushes {
    /// Asked for, waiting for the data queued before them to leave.
    waiting: Queue<(FlushId, TxMark)>,
    /// PING queued or sent, waiting for its PONG: `(id, token)`, in PING order.
    pinged: Queue<(FlushId, u64)>,
    next: u64,
    /// PONGs owed to the peer: `(token, events pushed when its PING was read)`.
    owed: Queue<(u64, u64)>,
    /// Owed PONGs stay queued while set ([`Connection::hold_pongs`]).
    held: bool,
    /// Events ever pushed and ever taken by the application.
    pub(super) events_pushed: u64,
    pub(super) events_taken: u64,
}

impl Flushes {
    pub(super) fn new() -> Self {
        Flushes {
            waiting: Queue::new(),
            pinged: Queue::new(),
            next: 0,
            owed: Queue::new(),
            held: false,
            events_pushed: 0,
            events_taken: 0,
        }
    }

    /// PONGs owed and not yet queued.
    pub(super) fn owed(&self) -> usize {
        self.owed.len()
    }
}

impl Connection {
    /// Asks the peer to prove it has processed everything queued so far: once every
    /// message, request, response, publication, delivery, SUBSCRIBE and UNSUBSCRIBE
    /// queued before this call has been written, a PING follows it, and the peer's
    /// PONG to it yields [`Event::Flushed`] with the returned id (spec 14.1). A
    /// server's PONG also proves that the subscriptions sent before were registered,
    /// so a publication from anyone after `Flushed` reaches them. Stream data is not
    /// covered: a stream's reader sees its bytes in order on its own.
    ///
    /// Fails with [`Error::Blocked`] while [`MAX_FLUSHES`] are outstanding,
    /// [`Error::NotConnected`] before the handshake completes (nothing proves
    /// anything before it) and [`Error::Closed`] once closing; failure changes
    /// nothing. A connection that closes first never yields the event.
    pub fn flush(&mut self) -> Result<FlushId, Error> {
        match self.phase {
            Phase::Established => {}
            Phase::Handshake | Phase::AwaitAuth => return Err(Error::NotConnected),
            _ => return Err(Error::Closed),
        }
        if self.closing.close_sent || self.closing.after_handshake.is_some() {
            return Err(Error::Closed);
        }
        let f = &mut self.flush;
        if f.waiting.len() + f.pinged.len() >= MAX_FLUSHES {
            return Err(Error::Blocked);
        }
        f.next += 1;
        let id = FlushId(f.next);
        let mark = self.tx.mark();
        // Cannot fail: both queues together hold at most MAX_FLUSHES, which is
        // below the fixed capacity of a build without `alloc`.
        let _ = self.flush.waiting.push_back((id, mark));
        self.release_flushes();
        Ok(id)
    }

    /// Queues the PING of each flush whose data has left. Called after every
    /// transmit: the PING then goes out in the next buffer, after that data.
    pub(super) fn release_flushes(&mut self) {
        while let Some(&(id, mark)) = self.flush.waiting.front() {
            if !self.tx.all_sent(&mark) {
                return;
            }
            self.flush.waiting.pop_front();
            let token = self.secrets.next_ping_token();
            let _ = self.flush.pinged.push_back((id, token));
            self.push_control(&Frame::Ping { token });
        }
    }

    /// A PONG that is not the heartbeat's: the oldest flush's, if the token is its.
    pub(super) fn on_flush_pong(&mut self, token: u64) {
        if let Some(&(id, t)) = self.flush.pinged.front() {
            if t == token {
                self.flush.pinged.pop_front();
                self.push_event(Event::Flushed(id), None);
            }
        }
    }

    /// A PING: its PONG is owed now, and queued (by the next `poll_transmit`) once
    /// the application took every event that came before it, so that the PONG
    /// proves those were processed.
    pub(super) fn owe_pong(&mut self, token: u64) -> Result<(), Refusal> {
        let seq = self.flush.events_pushed;
        if self.flush.owed.push_back((token, seq)).is_err() {
            return Err((ErrorCode::CONTROL_FLOOD, "too many pings"));
        }
        Ok(())
    }

    /// Queues the owed PONGs whose earlier events were all taken, unless held. Only
    /// `poll_transmit` calls it, so that [`hold_pongs`](Self::hold_pongs) set just
    /// before is always in force.
    pub(super) fn release_pongs(&mut self) {
        if self.flush.held {
            return;
        }
        while let Some(&(token, seq)) = self.flush.owed.front() {
            if seq > self.flush.events_taken {
                return;
            }
            self.flush.owed.pop_front();
            self.live.pongs_queued += 1;
            self.push_control(&Frame::Pong { token });
        }
    }

    /// Holds back (or, with `false`, lets go) the PONGs owed to the peer, for an
    /// application that processes events some time after taking them: a server's
    /// driver registers subscriptions with its router after taking their events, and
    /// holds PONGs while some are not registered yet, so that a PONG never promises
    /// more than was done. A connection whose application processes each event as it
    /// takes it never needs this.
    pub fn hold_pongs(&mut self, hold: bool) {
        self.flush.held = hold;
    }
}
