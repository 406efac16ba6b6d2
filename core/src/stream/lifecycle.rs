//! A stream's life: opening, reset by either side, the graceful end, and the
//! events that tell the application, up to the moment the stream is forgotten and
//! its concurrency slot freed.

use super::types::{End, MAX_STREAM_ID};
use super::{Stream, StreamError, StreamEvent, StreamProtoError, Streams, Target};
use crate::ids::StreamId;
use bytes::BytesMut;

impl Streams {
    /// Opens a new stream and returns its id. Its opening frame is sent by
    /// the next [`poll_frame`](Self::poll_frame), with whatever data was
    /// written by then.
    ///
    /// Fails with [`StreamError::Limit`] if the peer's concurrency limit is
    /// reached (streams count until their `Closed` event was polled).
    pub fn open(&mut self) -> Result<StreamId, StreamError> {
        let id = StreamId::new(self.next_local);
        if self.local_count >= self.peer.max_concurrent_streams as usize || id > MAX_STREAM_ID {
            return Err(StreamError::Limit);
        }
        self.next_local += 2;
        let stream = Stream::new(
            u64::from(self.peer.initial_stream_window),
            u64::from(self.cfg.initial_stream_window),
            false,
        );
        self.map.insert(id, stream);
        self.local_count += 1;
        self.open_queue.push_back(id);
        Ok(id)
    }

    /// Aborts both directions: unsent and unread data are dropped and a
    /// RESET carrying `code` is sent (unless the stream never reached the
    /// wire). A [`StreamEvent::Closed`] follows.
    pub fn reset(&mut self, id: StreamId, code: u64) -> Result<(), StreamError> {
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        if let Some(end) = s.end {
            return Err(end.error());
        }
        if s.open_sent {
            s.pending_reset = Some(code);
            if !s.ctl_queued {
                s.ctl_queued = true;
                self.ctl_queue.push_back(id);
            }
        }
        self.end_stream(id, End::LocalReset);
        Ok(())
    }

    /// Handles a RESET from the peer: both directions are dropped, and
    /// [`StreamEvent::Reset`] then [`StreamEvent::Closed`] are queued.
    /// A never-opened id is [`StreamProtoError::StreamState`]; an ended
    /// stream is ignored (but the reset is still counted).
    pub fn on_reset(&mut self, id: StreamId, code: u64) -> Result<(), StreamProtoError> {
        let target = self.target(id)?;
        self.resets_received += 1;
        if let Target::Live = target {
            if let Some(s) = self.map.get_mut(&id) {
                // Our own reset, if any, is moot now.
                s.pending_reset = None;
            }
            self.end_stream(id, End::PeerReset(code));
        }
        Ok(())
    }

    /// Classifies a peer frame (other than an opening one) for `id`.
    pub(super) fn target(&self, id: StreamId) -> Result<Target, StreamProtoError> {
        if id.get() == 0 || id > MAX_STREAM_ID {
            return Err(StreamProtoError::StreamState);
        }
        match self.map.get(&id) {
            Some(s) if !s.open_sent => Err(StreamProtoError::StreamState),
            Some(s) if s.end.is_some() => Ok(Target::Gone),
            Some(_) => Ok(Target::Live),
            None => {
                let next = if self.is_local(id) {
                    self.next_local
                } else {
                    self.next_peer
                };
                if id.get() < next {
                    Ok(Target::Gone)
                } else {
                    Err(StreamProtoError::StreamState)
                }
            }
        }
    }

    /// Returns the next event for the application, if any. Handing out `Closed`
    /// counts as the application having seen it: the stream is then forgotten.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        let ev = self.poll_event_keeping_closed()?;
        if let StreamEvent::Closed(id) = ev {
            self.closed_seen(id);
        }
        Some(ev)
    }

    /// [`poll_event`](Self::poll_event) for a caller that queues events before its
    /// application sees them (the connection): a `Closed` stream stays readable (a
    /// reset one reports the peer's code) until [`closed_seen`](Self::closed_seen).
    pub(crate) fn poll_event_keeping_closed(&mut self) -> Option<StreamEvent> {
        let ev = self.events.pop_front()?;
        match ev {
            StreamEvent::Readable(id) => {
                if let Some(s) = self.map.get_mut(&id) {
                    s.readable_queued = false;
                }
            }
            StreamEvent::Writable(id) => {
                if let Some(s) = self.map.get_mut(&id) {
                    s.writable_queued = false;
                }
            }
            _ => {}
        }
        Some(ev)
    }

    /// The application saw the stream's `Closed` event: the stream may be forgotten.
    pub(crate) fn closed_seen(&mut self, id: StreamId) {
        if let Some(s) = self.map.get_mut(&id) {
            s.closed_polled = true;
        }
        self.maybe_forget(id);
    }

    /// Ends the stream gracefully once both directions are done.
    pub(super) fn check_done(&mut self, id: StreamId) {
        if let Some(s) = self.map.get(&id) {
            if s.end.is_none() && s.fin_sent && s.fin_recv && s.flow.recv.unread() == 0 {
                self.end_stream(id, End::Finished);
            }
        }
    }

    /// Marks a stream ended: frees its buffers, returns connection credit
    /// for unread data, drops it from the send queues and reports it.
    pub(super) fn end_stream(&mut self, id: StreamId, end: End) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        s.end = Some(end);
        let unread = s.flow.recv.unread();
        s.flow.recv.consume(unread);
        s.recv_buf.clear();
        self.send_buffered -= s.send_buf.len();
        s.send_buf = BytesMut::new();
        s.want_writable = false;
        self.conn.recv.consume(unread);
        if s.in_send_queue {
            s.in_send_queue = false;
            self.send_queue[usize::from(s.prio)].retain(|&x| x != id);
        }
        if !s.open_sent {
            self.open_queue.retain(|&x| x != id);
        }
        if s.ctl_queued && s.pending_reset.is_none() {
            s.ctl_queued = false;
            self.ctl_queue.retain(|&x| x != id);
        }
        if let End::PeerReset(code) = end {
            self.events.push_back(StreamEvent::Reset { id, code });
        }
        self.events.push_back(StreamEvent::Closed(id));
    }

    /// Forgets an ended stream once the application saw `Closed` and its
    /// RESET (if any) went out; this frees its concurrency slot.
    pub(super) fn maybe_forget(&mut self, id: StreamId) {
        let Some(s) = self.map.get(&id) else {
            return;
        };
        if s.end.is_some() && s.closed_polled && !s.ctl_queued && s.pending_reset.is_none() {
            self.map.remove(&id);
            if self.is_local(id) {
                self.local_count -= 1;
            } else {
                self.peer_count -= 1;
            }
        }
    }
}
