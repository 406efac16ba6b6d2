//! Frame output: control frames first, then opening frames in id order, then
//! DATA by priority level, round-robin within a level.

use super::{StreamError, StreamFrame, Streams, PRIORITY_LEVELS, STREAM_REFUSED};
use crate::ids::StreamId;
use crate::time::Instant;
use core::cmp::min;

impl Streams {
    /// Returns the next frame to send, or `None` if there is nothing to send
    /// (or only data without credit).
    ///
    /// Order: connection WINDOW_UPDATE, refusals, per-stream RESET /
    /// WINDOW_UPDATE, opening frames (in id order), then DATA chunks of at
    /// most `max_data` bytes, one per stream in round-robin. No DATA frame
    /// exceeds the stream or connection credit. `now` drives window
    /// auto-tuning.
    pub fn poll_frame(&mut self, max_data: usize, now: Instant) -> Option<StreamFrame> {
        if let Some(frame) = self.poll_control_frame(now) {
            return Some(frame);
        }
        if let Some(frame) = self.poll_open(None, max_data) {
            return Some(frame);
        }
        for prio in 0..PRIORITY_LEVELS as u8 {
            if let Some(frame) = self.poll_data_frame(prio, max_data, now) {
                return Some(frame);
            }
        }
        None
    }

    /// The next opening frame. Served for level `lane`, a stream of a lower level
    /// opens (ids must stay in order) but keeps its data for its own level's turn.
    pub(super) fn poll_open(&mut self, lane: Option<u8>, max_data: usize) -> Option<StreamFrame> {
        let id = self.open_queue.pop_front()?;
        let mut room = max_data;
        if let Some(s) = self.map.get_mut(&id) {
            s.open_sent = true;
            if lane.is_some_and(|l| s.prio > l) {
                room = 0;
            }
        }
        let frame = self.data_frame(id, room, true);
        self.schedule_send(id);
        frame
    }

    /// The next opening or DATA frame of streams at priority level `prio` (0 is
    /// the most urgent), for a scheduler that serves levels itself. Opening frames
    /// come first whatever their level, so stream ids always reach the peer in
    /// increasing order.
    pub fn poll_data_frame(
        &mut self,
        prio: u8,
        max_data: usize,
        _now: Instant,
    ) -> Option<StreamFrame> {
        if !self.open_queue.is_empty() {
            return self.poll_open(Some(prio), max_data);
        }
        let q = usize::from(prio).min(PRIORITY_LEVELS - 1);
        for _ in 0..self.send_queue[q].len() {
            let id = self.send_queue[q].pop_front()?;
            let Some(s) = self.map.get_mut(&id) else {
                continue;
            };
            if !s.sendable() {
                s.in_send_queue = false;
                continue;
            }
            match self.data_frame(id, max_data, false) {
                Some(frame) => {
                    if let Some(s) = self.map.get_mut(&id) {
                        if s.sendable() {
                            self.send_queue[q].push_back(id);
                        } else {
                            s.in_send_queue = false;
                        }
                    }
                    return Some(frame);
                }
                // Only connection credit (or `max_data == 0`) is missing:
                // keep the stream's turn for when it comes back.
                None => self.send_queue[q].push_back(id),
            }
        }
        None
    }

    /// Sets a stream's transmit priority level (0 urgent ..= 3 low).
    pub fn set_priority(&mut self, id: StreamId, prio: u8) -> Result<(), StreamError> {
        let prio = prio.min(PRIORITY_LEVELS as u8 - 1);
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        let old = usize::from(s.prio);
        s.prio = prio;
        if s.in_send_queue && old != usize::from(prio) {
            self.send_queue[old].retain(|&x| x != id);
            self.send_queue[usize::from(prio)].push_back(id);
        }
        Ok(())
    }

    /// The pending control frame of a stream taken off the control queue.
    pub(super) fn control_frame(&mut self, id: StreamId, now: Instant) -> Option<StreamFrame> {
        let rtt = self.rtt;
        let max_stream = u64::from(self.cfg.max_stream_window);
        let max_conn = u64::from(self.cfg.max_conn_window);
        let s = self.map.get_mut(&id)?;
        s.ctl_queued = false;
        if let Some(code) = s.pending_reset.take() {
            self.maybe_forget(id);
            return Some(StreamFrame::Reset { id, code });
        }
        if !s.update_due() {
            return None;
        }
        let before = s.flow.recv.size();
        let increment = s.flow.recv.grant(now, rtt, max_stream);
        if s.flow.recv.size() > before {
            // One fast stream must not be capped by the connection window.
            self.conn.recv.grow_to(min(s.flow.recv.size(), max_conn));
        }
        Some(StreamFrame::WindowUpdate {
            id: id.get(),
            increment,
        })
    }

    /// The connection WINDOW_UPDATE increment, if one is due.
    pub(super) fn conn_update(&mut self, now: Instant) -> Option<u64> {
        if !self.conn.recv.update_due() {
            return None;
        }
        let max_conn = u64::from(self.cfg.max_conn_window);
        Some(self.conn.recv.grant(now, self.rtt, max_conn))
    }

    /// True if `poll_frame` could have anything at all to send: lets a scheduler skip
    /// the stream component cheaply when no stream is busy.
    pub fn has_pending(&self) -> bool {
        !self.ctl_queue.is_empty()
            || !self.refused.is_empty()
            || !self.open_queue.is_empty()
            || self.send_queue.iter().any(|q| !q.is_empty())
            || self.conn.recv.update_due()
    }

    /// Only the control frames (window updates and resets), which never wait for
    /// credit: the connection sends these ahead of all data, at any priority.
    pub fn poll_control_frame(&mut self, now: Instant) -> Option<StreamFrame> {
        if let Some(increment) = self.conn_update(now) {
            return Some(StreamFrame::WindowUpdate { id: 0, increment });
        }
        if let Some(id) = self.refused.pop_front() {
            return Some(StreamFrame::Reset {
                id,
                code: STREAM_REFUSED,
            });
        }
        while let Some(id) = self.ctl_queue.pop_front() {
            if let Some(frame) = self.control_frame(id, now) {
                return Some(frame);
            }
        }
        None
    }

    /// Puts an opened stream into the round-robin if it has something to send.
    pub(super) fn schedule_send(&mut self, id: StreamId) {
        if let Some(s) = self.map.get_mut(&id) {
            if !s.in_send_queue && s.sendable() {
                s.in_send_queue = true;
                self.send_queue[usize::from(s.prio)].push_back(id);
            }
        }
    }
}
