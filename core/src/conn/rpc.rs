//! Requests and responses: our outstanding requests and the peer's, their
//! deadlines, CANCEL, and what a close means for each (spec section 8).
//!
//! Everything of the feature is here: the [`Rpc`] tables, the commands
//! (`request`, `cancel`, `respond`), the handlers of REQUEST, RESPONSE and CANCEL,
//! and the deadline timers.

use super::send::SendMark;
use super::store::{Deadlines, Map};
use super::{Connection, Event, Outcome, Phase, Refusal, Src};
use crate::config::Priority;
use crate::error::{Error, ErrorCode, InvalidKind};
use crate::ids::RequestId;
use crate::time::Instant;
use crate::wire::frame::{self, Frame, Status};
use core::time::Duration;

/// One of our outstanding requests.
#[derive(Debug)]
pub(super) struct OutRequest {
    pub(super) deadline: Option<Instant>,
    /// Where the REQUEST sits in the transmit queues: a CANCEL may not overtake it.
    pub(super) mark: SendMark,
}

/// The request tables of one connection.
#[derive(Debug)]
pub(super) struct Rpc {
    /// The id our next request gets (ids start at 1 and increase).
    pub(super) next_req_id: u64,
    pub(super) out_reqs: Map<OutRequest, RequestId>,
    pub(super) out_deadlines: Deadlines<RequestId>,
    /// The highest request id the peer used (announced in our CLOSE).
    pub(super) max_peer_req: u64,
    /// The peer's outstanding requests, with their deadlines.
    pub(super) in_reqs: Map<Option<Instant>, RequestId>,
    pub(super) in_deadlines: Deadlines<RequestId>,
    /// CANCELs waiting for their REQUEST to leave, so they never overtake it
    /// (control frames go first).
    pub(super) deferred_cancels: Map<SendMark, RequestId>,
}

impl Rpc {
    pub(super) fn new() -> Self {
        Rpc {
            next_req_id: 1,
            out_reqs: Map::new(),
            out_deadlines: Deadlines::new(),
            max_peer_req: 0,
            in_reqs: Map::new(),
            in_deadlines: Deadlines::new(),
            deferred_cancels: Map::new(),
        }
    }

    /// The earliest request deadline, ours or the peer's.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let ours = self.out_deadlines.first().map(|d| d.0);
        let peer = self.in_deadlines.first().map(|d| d.0);
        [ours, peer].into_iter().flatten().min()
    }

    /// True while requests are outstanding either way (a graceful close waits).
    pub(super) fn in_flight(&self) -> bool {
        !self.out_reqs.is_empty() || !self.in_reqs.is_empty()
    }
}

impl Connection {
    /// Sends a request; returns its id. `timeout` is carried to the responder and
    /// enforced locally: at the deadline the request ends with
    /// [`Outcome::DeadlineExceeded`].
    pub fn request(
        &mut self,
        now: Instant,
        subject: &[u8],
        payload: &[u8],
        timeout: Option<Duration>,
        prio: Priority,
    ) -> Result<RequestId, Error> {
        self.can_send_app()?;
        if subject.len() > frame::MAX_SUBJECT {
            return Err(Error::Invalid(InvalidKind::TooLong));
        }
        // Before SERVER_HELLO the peer's limits are the defaults (spec 7.3).
        let peer_cap = self.peer.unwrap_or_default().max_concurrent_requests as usize;
        if self.rpc.out_reqs.len() >= self.config.max_outstanding_requests.min(peer_cap) {
            self.blocked = true;
            return Err(Error::Blocked);
        }
        let id = RequestId::new(self.rpc.next_req_id);
        let timeout_ms = timeout.map_or(0, |t| {
            let ms = t.as_micros().div_ceil(1000);
            u64::try_from(ms).unwrap_or(u64::MAX).max(1)
        });
        let mark = self.queue_data(
            prio,
            &Frame::Request {
                id: id.get(),
                timeout_ms,
                subject,
                payload,
            },
        )?;
        self.rpc.next_req_id += 1;
        let deadline = timeout.map(|t| now + t);
        if let Some(d) = deadline {
            self.rpc.out_deadlines.insert(d, id);
        }
        // The cap was checked above, so a fixed-capacity table has room.
        let _ = self.rpc.out_reqs.insert(id, OutRequest { deadline, mark });
        Ok(id)
    }

    /// Cancels one of our outstanding requests: the responder is told, and no
    /// response event will follow.
    pub fn cancel(&mut self, id: RequestId) -> Result<(), Error> {
        let r = self.rpc.out_reqs.remove(id).ok_or(Error::UnknownId)?;
        if let Some(d) = r.deadline {
            self.rpc.out_deadlines.remove(d, id);
        }
        self.send_cancel(id, r.mark);
        Ok(())
    }

    /// Answers a peer request.
    pub fn respond(
        &mut self,
        id: RequestId,
        outcome: Outcome,
        message: &str,
        payload: &[u8],
        prio: Priority,
    ) -> Result<(), Error> {
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return Err(Error::Closed);
        }
        let deadline = *self.rpc.in_reqs.get(id).ok_or(Error::UnknownId)?;
        if message.len() > frame::MAX_REASON {
            return Err(Error::Invalid(InvalidKind::TooLong));
        }
        let status = match outcome {
            Outcome::Ok => Status::Ok,
            Outcome::Error(code) => Status::Error { code, message },
            Outcome::NoResponder => Status::NoResponder,
            Outcome::DeadlineExceeded => Status::DeadlineExceeded,
            Outcome::Cancelled => Status::Cancelled,
            Outcome::NotProcessed | Outcome::Lost => {
                return Err(Error::Invalid(InvalidKind::Range))
            }
        };
        self.queue_data(
            prio,
            &Frame::Response {
                id: id.get(),
                status,
                payload,
            },
        )?;
        self.rpc.in_reqs.remove(id);
        if let Some(d) = deadline {
            self.rpc.in_deadlines.remove(d, id);
        }
        Ok(())
    }

    /// Sends CANCEL for one of our requests, but never ahead of the REQUEST itself.
    pub(super) fn send_cancel(&mut self, id: RequestId, mark: SendMark) {
        if self.tx.is_sent(mark) {
            self.push_control(&Frame::Cancel { id: id.get() });
        } else {
            // Bounded by the request table the entry came from.
            let _ = self.rpc.deferred_cancels.insert(id, mark);
        }
    }

    /// Queues the CANCELs whose REQUEST has now left.
    pub(super) fn release_deferred(&mut self) {
        if !self.rpc.deferred_cancels.is_empty() {
            for id in self.rpc.deferred_cancels.keys_above(RequestId::new(0)) {
                if let Some(&m) = self.rpc.deferred_cancels.get(id) {
                    if self.tx.is_sent(m) {
                        self.rpc.deferred_cancels.remove(id);
                        self.push_control(&Frame::Cancel { id: id.get() });
                    }
                }
            }
        }
    }

    /// A REQUEST from the peer.
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        fb: &Src<'_>,
        id: RequestId,
        timeout_ms: u64,
    ) -> Result<(), Refusal> {
        self.stats.messages_received += 1;
        // Ids are unique among outstanding requests but may arrive out of order:
        // the sender's scheduler reorders by priority and lets small frames
        // pass large fragmented ones.
        if id.get() == 0 || self.rpc.in_reqs.contains(id) {
            return Err((ErrorCode::PROTOCOL_ERROR, "duplicate request id"));
        }
        self.rpc.max_peer_req = self.rpc.max_peer_req.max(id.get());
        // After our graceful CLOSE, requests above the id we announced are
        // not processed; the peer reports them as not processed.
        if self.closing.close_sent && id.get() > self.closing.our_last_request {
            return Ok(());
        }
        if self.rpc.in_reqs.len() as u64 >= self.config.params.max_concurrent_requests {
            return Err((ErrorCode::REQUEST_LIMIT, "too many requests"));
        }
        let deadline = (timeout_ms > 0).then(|| now + Duration::from_millis(timeout_ms));
        if let Some(d) = deadline {
            self.rpc.in_deadlines.insert(d, id);
        }
        // The limit check above keeps a fixed-capacity table within bounds.
        let _ = self.rpc.in_reqs.insert(id, deadline);
        let data = self.new_data_id();
        self.push_frame_event(Event::Request { id, deadline, data }, fb);
        Ok(())
    }

    /// A RESPONSE to one of our requests.
    pub(super) fn on_response(
        &mut self,
        fb: &Src<'_>,
        id: RequestId,
        status: Status<'_>,
    ) -> Result<(), Refusal> {
        self.stats.messages_received += 1;
        if id.get() == 0 || id.get() >= self.rpc.next_req_id {
            return Err((ErrorCode::PROTOCOL_ERROR, "response to unknown request"));
        }
        let Some(r) = self.rpc.out_reqs.remove(id) else {
            return Ok(()); // late: cancelled or timed out here
        };
        if let Some(d) = r.deadline {
            self.rpc.out_deadlines.remove(d, id);
        }
        let outcome = match status {
            Status::Ok => Outcome::Ok,
            Status::Error { code, .. } => Outcome::Error(code),
            Status::NoResponder => Outcome::NoResponder,
            Status::DeadlineExceeded => Outcome::DeadlineExceeded,
            Status::Cancelled => Outcome::Cancelled,
        };
        let data = self.new_data_id();
        self.push_frame_event(
            Event::Response {
                id,
                outcome,
                data: Some(data),
            },
            fb,
        );
        Ok(())
    }

    /// The peer cancelled one of its requests.
    pub(super) fn on_cancel(&mut self, id: RequestId) {
        if let Some(deadline) = self.rpc.in_reqs.remove(id) {
            if let Some(d) = deadline {
                self.rpc.in_deadlines.remove(d, id);
            }
            self.push_event(Event::RequestCancelled { id }, None);
        }
    }

    /// Request deadlines that passed, ours and the peer's; bounded by the request
    /// caps.
    pub(super) fn request_timeouts(&mut self, now: Instant) {
        while let Some((t, id)) = self.rpc.out_deadlines.first() {
            if t > now {
                break;
            }
            self.rpc.out_deadlines.pop_first();
            if let Some(r) = self.rpc.out_reqs.remove(id) {
                self.send_cancel(id, r.mark);
                self.push_event(
                    Event::Response {
                        id,
                        outcome: Outcome::DeadlineExceeded,
                        data: None,
                    },
                    None,
                );
            }
        }
        while let Some((t, id)) = self.rpc.in_deadlines.first() {
            if t > now {
                break;
            }
            self.rpc.in_deadlines.pop_first();
            if self.rpc.in_reqs.remove(id).is_some() {
                self.push_event(Event::RequestCancelled { id }, None);
            }
        }
    }

    /// The connection is over: each of our pending requests ends with `outcome`.
    pub(super) fn end_requests(&mut self, outcome: Outcome) {
        let ids = self.rpc.out_reqs.keys_above(RequestId::new(0));
        self.rpc.out_reqs.clear();
        self.rpc.out_deadlines.clear();
        for id in ids {
            self.push_event(
                Event::Response {
                    id,
                    outcome,
                    data: None,
                },
                None,
            );
        }
    }

    /// The peer's graceful CLOSE said it processes nothing above `last_request_id`:
    /// those of our requests end now, safe to retry.
    pub(super) fn requests_not_processed_above(&mut self, last_request_id: u64) {
        let ids = self
            .rpc
            .out_reqs
            .keys_above(RequestId::new(last_request_id));
        for id in ids {
            if let Some(r) = self.rpc.out_reqs.remove(id) {
                if let Some(d) = r.deadline {
                    self.rpc.out_deadlines.remove(d, id);
                }
            }
            self.push_event(
                Event::Response {
                    id,
                    outcome: Outcome::NotProcessed,
                    data: None,
                },
                None,
            );
        }
    }
}
