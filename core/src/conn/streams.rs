//! The connection's side of streams: the stream commands, the STREAM_DATA,
//! WINDOW_UPDATE and STREAM_RESET handlers, and the adapter that lets the transmit
//! scheduler take stream frames (spec section 11). The stream state machine itself
//! (windows, buffers, lifecycle) is [`crate::stream`].

use super::{send, Connection, Event, Phase, Refusal};
use crate::config::Priority;
use crate::error::{Error, ErrorCode};
use crate::ids::StreamId;
use crate::stream::{StreamEvent, StreamProtoError};
use crate::time::Instant;
use crate::wire::frame::{self, Frame};
use crate::wire::params::CAP_STREAMS;

impl Connection {
    #[cfg(feature = "alloc")]
    pub(super) fn streams_mut(&mut self) -> Result<&mut crate::stream::Streams, Error> {
        if !matches!(self.phase, Phase::Established | Phase::Draining) {
            return Err(Error::NotConnected);
        }
        self.streams.as_mut().ok_or(Error::NotNegotiated)
    }

    #[cfg(feature = "alloc")]
    /// Opens a stream; returns its id.
    pub fn open_stream(&mut self) -> Result<StreamId, Error> {
        if self.phase != Phase::Established {
            return Err(if self.phase == Phase::Draining {
                Error::Closed
            } else {
                Error::NotConnected
            });
        }
        self.streams_mut()?.open().map_err(stream_err)
    }

    #[cfg(feature = "alloc")]
    /// Writes to a stream; returns how many bytes were accepted (bounded by the
    /// stream's send buffer), `Blocked` if none could be.
    pub fn stream_write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, Error> {
        self.streams_mut()?.write(id, data).map_err(stream_err)
    }

    #[cfg(feature = "alloc")]
    /// Reads from a stream into `buf`.
    pub fn stream_read(
        &mut self,
        id: StreamId,
        buf: &mut [u8],
    ) -> Result<crate::stream::ReadOutcome, Error> {
        self.streams_mut()?.read(id, buf).map_err(stream_err)
    }

    /// Sets a stream's transmit priority (default normal).
    #[cfg(feature = "alloc")]
    pub fn stream_set_priority(&mut self, id: StreamId, prio: Priority) -> Result<(), Error> {
        self.streams_mut()?
            .set_priority(id, prio as u8)
            .map_err(stream_err)
    }

    /// Ends our direction of a stream.
    #[cfg(feature = "alloc")]
    pub fn stream_finish(&mut self, id: StreamId) -> Result<(), Error> {
        self.streams_mut()?.finish(id).map_err(stream_err)
    }

    #[cfg(feature = "alloc")]
    /// Aborts a stream both ways with an application code.
    pub fn stream_reset(&mut self, id: StreamId, code: u64) -> Result<(), Error> {
        self.streams_mut()?.reset(id, code).map_err(stream_err)
    }

    /// Moves the stream component's events into the connection's queue.
    #[cfg(feature = "alloc")]
    pub(super) fn drain_stream_events(&mut self) {
        while let Some(e) = self
            .streams
            .as_mut()
            .and_then(|s| s.poll_event_keeping_closed())
        {
            let ev = match e {
                StreamEvent::Opened(id) => Event::StreamOpened(id),
                StreamEvent::Readable(id) | StreamEvent::Finished(id) => Event::StreamReadable(id),
                StreamEvent::Writable(id) => Event::StreamWritable(id),
                StreamEvent::Reset { id, code } => Event::StreamReset { id, code },
                StreamEvent::Closed(id) => Event::StreamClosed(id),
            };
            self.push_event(ev, None);
        }
    }

    /// A WINDOW_UPDATE for a stream or (id 0) the connection.
    pub(super) fn on_window_update(
        &mut self,
        now: Instant,
        id: u64,
        increment: u64,
    ) -> Result<(), Refusal> {
        if increment == 0 && self.empty_frame(now) {
            return Ok(());
        }
        let s = self.streams_or_refuse()?;
        s.on_window_update(id, increment).map_err(stream_proto)
    }

    /// A STREAM_DATA frame. Its data is copied into the stream's own buffer
    /// (`stream::recv_buf` says why): a slice would keep the whole record alive.
    pub(super) fn on_stream_data(
        &mut self,
        now: Instant,
        id: StreamId,
        flags: u8,
        data: &[u8],
    ) -> Result<(), Refusal> {
        if data.is_empty() && flags == 0 && self.empty_frame(now) {
            return Ok(());
        }
        let s = self.streams_or_refuse()?;
        s.on_data(
            id,
            flags & frame::STREAM_OPEN != 0,
            flags & frame::STREAM_FIN != 0,
            data,
            now,
        )
        .map_err(stream_proto)
    }

    /// A STREAM_RESET, counted against the rapid-reset limit.
    pub(super) fn on_stream_reset(
        &mut self,
        now: Instant,
        id: StreamId,
        code: u64,
    ) -> Result<(), Refusal> {
        let limit = self.config.max_resets_per_interval;
        let interval = self.config.reset_interval;
        if self.resets.hit(now, interval, limit) {
            return Err((ErrorCode::RESET_FLOOD, "too many stream resets"));
        }
        let s = self.streams_or_refuse()?;
        s.on_reset(id, code).map_err(stream_proto)
    }

    /// The stream component for a stream frame; a protocol error if streams were
    /// not negotiated.
    pub(super) fn streams_or_refuse(&mut self) -> Result<&mut crate::stream::Streams, Refusal> {
        let e = (ErrorCode::PROTOCOL_ERROR, "unexpected frame");
        if !self.cap(CAP_STREAMS) {
            return Err(e);
        }
        self.streams.as_mut().ok_or(e)
    }
}

#[cfg(feature = "alloc")]
fn stream_err(e: crate::stream::StreamError) -> Error {
    use crate::stream::StreamError as S;
    match e {
        S::Blocked | S::Limit => Error::Blocked,
        S::UnknownStream => Error::UnknownId,
        // The peer's code reaches the application: it says why (quinn's
        // `ReadError::Reset(code)`, h2's `Reason`).
        S::Reset(code) => Error::StreamReset(code),
        S::Closed => Error::Closed,
    }
}

/// Adapts the stream component to the scheduler.
#[cfg(feature = "alloc")]
pub(super) struct StreamSource<'a>(
    pub(super) Option<&'a mut crate::stream::Streams>,
    pub(super) Instant,
);

#[cfg(feature = "alloc")]
impl send::FrameSource for StreamSource<'_> {
    fn next_frame(&mut self, out: &mut [u8], max: usize, prio: u8) -> Option<usize> {
        let s = self.0.as_mut()?;
        // Room for the largest stream frame header: type, length, id, flags.
        let hdr = 1 + 3 + crate::varint::MAX_LEN + 1;
        if max <= hdr {
            return None;
        }
        let f = s.poll_data_frame(prio, max - hdr, self.1)?;
        stream_frame(&f).encode(out)
    }

    fn next_control(&mut self, out: &mut [u8]) -> Option<usize> {
        // A control frame is at most 1 + 1 + 10 + 10 bytes: it always fits a record.
        if out.len() < 32 {
            return None;
        }
        let f = self.0.as_mut()?.poll_control_frame(self.1)?;
        stream_frame(&f).encode(out)
    }

    fn is_idle(&self) -> bool {
        // `poll_transmit` passes the streams only when they have something pending.
        self.0.is_none()
    }
}

/// The wire frame of a stream component's output.
#[cfg(feature = "alloc")]
fn stream_frame(f: &crate::stream::StreamFrame) -> Frame<'_> {
    match f {
        crate::stream::StreamFrame::Data {
            id,
            open,
            fin,
            data,
        } => Frame::StreamData {
            id: id.get(),
            flags: if *open { frame::STREAM_OPEN } else { 0 }
                | if *fin { frame::STREAM_FIN } else { 0 },
            data,
        },
        crate::stream::StreamFrame::WindowUpdate { id, increment } => Frame::WindowUpdate {
            id: *id,
            increment: *increment,
        },
        crate::stream::StreamFrame::Reset { id, code } => Frame::StreamReset {
            id: id.get(),
            code: *code,
        },
    }
}

#[cfg(feature = "alloc")]
fn stream_proto(e: StreamProtoError) -> Refusal {
    match e {
        StreamProtoError::FlowControl => (ErrorCode::FLOW_CONTROL_ERROR, "stream flow control"),
        StreamProtoError::StreamState => (ErrorCode::STREAM_STATE_ERROR, "stream state"),
        StreamProtoError::StreamLimit => (ErrorCode::STREAM_STATE_ERROR, "stream limit"),
    }
}
