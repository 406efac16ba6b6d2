//! The receive side: DATA from the peer copied into each stream's own buffer
//! ([`RecvBuf`](super::recv_buf::RecvBuf)), the application's reads, and the
//! credit those reads make due.

use super::types::{End, MAX_STREAM_ID};
use super::{ReadOutcome, Stream, StreamError, StreamEvent, StreamProtoError, Streams, Target};
use crate::ids::StreamId;
use crate::time::Instant;
use bytes::Bytes;

impl Streams {
    /// Copies received data into `buf`.
    ///
    /// Returns [`ReadOutcome::Fin`] once the peer finished and everything was
    /// read, [`StreamError::Blocked`] if nothing is available yet, and
    /// [`StreamError::Reset`] if the peer reset the stream. Reading returns
    /// credit to the peer. These answers hold until the stream's
    /// [`StreamEvent::Closed`] has been polled; after that the stream is
    /// forgotten and calls return [`StreamError::UnknownStream`].
    pub fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<ReadOutcome, StreamError> {
        let s = self.readable_stream(id)?;
        if s.flow.recv.unread() == 0 {
            return Ok(ReadOutcome::Fin);
        }
        let n = s.recv_buf.read(buf);
        self.consumed(id, n as u64);
        Ok(ReadOutcome::Data(n))
    }

    /// Zero-copy read: takes up to `max` buffered bytes as shared bytes (a slice
    /// of the stream's own receive buffer, never of a received record).
    ///
    /// `Ok(None)` means the peer finished and everything was read; errors are
    /// as for [`read`](Self::read).
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, StreamError> {
        let s = self.readable_stream(id)?;
        if s.flow.recv.unread() == 0 {
            return Ok(None);
        }
        let out = s.recv_buf.take(max);
        self.consumed(id, out.len() as u64);
        Ok(Some(out))
    }

    /// Common checks of `read`/`read_chunk`; on success the stream has
    /// buffered data or has seen FIN.
    pub(super) fn readable_stream(&mut self, id: StreamId) -> Result<&mut Stream, StreamError> {
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        match s.end {
            // Gracefully ended: everything was read, so reads report FIN.
            None | Some(End::Finished) => {}
            Some(end) => return Err(end.error()),
        }
        if s.flow.recv.unread() == 0 && !s.fin_recv {
            return Err(StreamError::Blocked);
        }
        Ok(s)
    }

    pub(super) fn consumed(&mut self, id: StreamId, n: u64) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        s.flow.recv.consume(n);
        self.conn.recv.consume(n);
        if s.update_due() && !s.ctl_queued {
            s.ctl_queued = true;
            self.ctl_queue.push_back(id);
        }
        self.check_done(id);
    }

    /// Handles a DATA frame from the peer.
    ///
    /// Data for a stream that already ended is discarded (its connection
    /// credit is returned at once). Errors are connection errors.
    pub fn on_data(
        &mut self,
        id: StreamId,
        open: bool,
        fin: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), StreamProtoError> {
        let len = data.len() as u64;
        if !self.conn.recv.admits(len) {
            return Err(StreamProtoError::FlowControl);
        }
        if open {
            if id.get() == 0 || id > MAX_STREAM_ID || self.is_local(id) || id.get() < self.next_peer
            {
                return Err(StreamProtoError::StreamState);
            }
            if len > u64::from(self.cfg.initial_stream_window) {
                return Err(StreamProtoError::FlowControl);
            }
            self.next_peer = id.get() + 2;
            if self.peer_count >= self.cfg.max_concurrent_streams as usize {
                if self.refused.len() >= self.refuse_cap {
                    return Err(StreamProtoError::StreamLimit);
                }
                self.refused.push_back(id);
                self.streams_refused += 1;
                self.discard(len);
                return Ok(());
            }
            let stream = Stream::new(
                u64::from(self.peer.initial_stream_window),
                u64::from(self.cfg.initial_stream_window),
                true,
            );
            self.map.insert(id, stream);
            self.peer_count += 1;
            self.events.push_back(StreamEvent::Opened(id));
        } else if let Target::Gone = self.target(id)? {
            self.discard(len);
            return Ok(());
        }

        let s = self.map.get_mut(&id).ok_or(StreamProtoError::StreamState)?;
        if s.fin_recv {
            return Err(StreamProtoError::StreamState);
        }
        if !s.flow.recv.admits(len) {
            return Err(StreamProtoError::FlowControl);
        }
        s.flow.recv.receive(len, now);
        self.conn.recv.receive(len, now);
        self.bytes_received += len;
        if len > 0 {
            s.recv_buf.push(data);
            if !s.readable_queued {
                s.readable_queued = true;
                self.events.push_back(StreamEvent::Readable(id));
            }
        }
        if fin {
            s.fin_recv = true;
            self.events.push_back(StreamEvent::Finished(id));
            self.check_done(id);
        }
        Ok(())
    }

    /// Accounts for payload that no stream will read: it used connection
    /// credit, which goes straight back to the peer.
    pub(super) fn discard(&mut self, len: u64) {
        self.conn.recv.discard(len);
        self.bytes_received += len;
    }
}
