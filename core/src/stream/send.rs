//! The send side: the application's writes into bounded buffers, the peer's
//! credit grants, and cutting DATA frames within stream and connection credit.

use super::{StreamError, StreamEvent, StreamFrame, StreamProtoError, Streams, Target};
use crate::ids::StreamId;
use core::cmp::min;

impl Streams {
    /// Copies as much of `data` as fits in the stream's send buffer and
    /// returns how many bytes were accepted.
    ///
    /// Returns [`StreamError::Blocked`] if none could be accepted (a
    /// [`StreamEvent::Writable`] follows when room comes back); a failed call
    /// changes nothing else. Writing after [`finish`](Self::finish) or a
    /// local reset is [`StreamError::Closed`]; after a peer reset,
    /// [`StreamError::Reset`].
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, StreamError> {
        let max_buf = self.cfg.max_send_buffer;
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        if let Some(end) = s.end {
            return Err(end.error());
        }
        if s.fin_queued {
            return Err(StreamError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let total_room = self
            .cfg
            .max_total_send_buffer
            .saturating_sub(self.send_buffered);
        let room = max_buf.saturating_sub(s.send_buf.len()).min(total_room);
        if room == 0 {
            s.want_writable = true;
            if total_room == 0 && !self.blocked_on_total.contains(&id) {
                self.blocked_on_total.push_back(id);
            }
            return Err(StreamError::Blocked);
        }
        let n = min(room, data.len());
        s.send_buf.extend_from_slice(&data[..n]);
        self.send_buffered += n;
        if n < data.len() {
            s.want_writable = true;
        }
        self.schedule_send(id);
        Ok(n)
    }

    /// Half-closes our direction: a FIN follows the buffered data.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        if let Some(end) = s.end {
            return Err(end.error());
        }
        if s.fin_queued {
            return Err(StreamError::Closed);
        }
        s.fin_queued = true;
        self.schedule_send(id);
        Ok(())
    }

    /// Handles a WINDOW_UPDATE (`id` 0 = connection).
    ///
    /// Credit beyond [`MAX_FLOW_LIMIT`](super::MAX_FLOW_LIMIT) is [`StreamProtoError::FlowControl`];
    /// a never-opened id is [`StreamProtoError::StreamState`]; an ended
    /// stream is ignored.
    pub fn on_window_update(&mut self, id: u64, increment: u64) -> Result<(), StreamProtoError> {
        if id == 0 {
            self.conn.send.raise(increment)?;
            return Ok(());
        }
        let id = StreamId::new(id);
        if let Target::Gone = self.target(id)? {
            return Ok(());
        }
        if let Some(s) = self.map.get_mut(&id) {
            s.flow.send.raise(increment)?;
        }
        self.schedule_send(id);
        Ok(())
    }

    /// Cuts a DATA frame for `id` within credit; `None` if it would carry
    /// nothing (neither bytes, nor FIN, nor the open flag).
    pub(super) fn data_frame(
        &mut self,
        id: StreamId,
        max_data: usize,
        open: bool,
    ) -> Option<StreamFrame> {
        let conn_credit = self.conn.send.credit();
        let max_buf = self.cfg.max_send_buffer;
        let s = self.map.get_mut(&id)?;
        if s.end.is_some() {
            return None;
        }
        let credit = min(s.flow.send.credit(), conn_credit);
        let n = min(s.send_buf.len() as u64, min(max_data as u64, credit)) as usize;
        let fin = s.fin_queued && !s.fin_sent && s.send_buf.len() == n;
        if n == 0 && !fin && !open {
            return None;
        }
        let data = s.send_buf.split_to(n).freeze();
        self.send_buffered -= n;
        s.flow.send.spend(n as u64);
        self.conn.send.spend(n as u64);
        self.bytes_sent += n as u64;
        if n > 0 && s.want_writable && s.send_buf.len() < max_buf {
            s.want_writable = false;
            if !s.writable_queued {
                s.writable_queued = true;
                self.events.push_back(StreamEvent::Writable(id));
            }
        }
        if fin {
            s.fin_sent = true;
            self.check_done(id);
        }
        // Streams held back by the connection-wide buffer hear once half is free.
        if n > 0
            && !self.blocked_on_total.is_empty()
            && self.send_buffered <= self.cfg.max_total_send_buffer / 2
        {
            while let Some(b) = self.blocked_on_total.pop_front() {
                if let Some(bs) = self.map.get_mut(&b) {
                    if bs.end.is_none() && !bs.writable_queued {
                        bs.want_writable = false;
                        bs.writable_queued = true;
                        self.events.push_back(StreamEvent::Writable(b));
                    }
                }
            }
        }
        Some(StreamFrame::Data {
            id,
            open,
            fin,
            data,
        })
    }
}
