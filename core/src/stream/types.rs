//! The stream layer's value types: configuration, the frames and events it hands
//! out, its two error types and its counters.

use crate::ids::StreamId;
use bytes::Bytes;
use core::fmt;

#[cfg(doc)]
use super::Streams;

/// Reset code sent when the peer opens a stream beyond our
/// [`StreamConfig::max_concurrent_streams`].
///
/// Refusal is not a connection error: the opener sees
/// [`StreamEvent::Reset`] with this code and may retry later. Because each
/// side frees a stream slot only when *it* considers the stream finished
/// (and its application has polled [`StreamEvent::Closed`]), an opener that
/// stays exactly at the limit can occasionally be refused while the peer is
/// still catching up.
pub const STREAM_REFUSED: u64 = 1;

/// Priority levels of stream data, as the connection's transmit scheduler has.
pub const PRIORITY_LEVELS: usize = 4;
/// The level a stream starts at (normal).
pub const DEFAULT_PRIORITY: u8 = 2;

/// Largest total credit (per stream or for the connection) a peer may grant.
///
/// A window update that would push the cumulative limit beyond this value is
/// a [`StreamProtoError::FlowControl`] error; it keeps all offsets well clear
/// of `u64` overflow and within a 62-bit varint.
pub const MAX_FLOW_LIMIT: u64 = 1 << 62;

/// Largest usable stream id (ids are 62-bit on the wire).
pub(super) const MAX_STREAM_ID: StreamId = StreamId::new((1 << 62) - 1);

/// Floor for the number of refusals that may wait for transmission, so a
/// tiny `max_concurrent_streams` does not turn a short burst into an error.
pub(super) const MIN_REFUSE_QUEUE: usize = 16;

/// Local stream settings, chosen by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Peer-opened streams we accept at once; more are refused with
    /// [`STREAM_REFUSED`]. Default 100.
    pub max_concurrent_streams: u32,
    /// Initial per-stream receive window in bytes. Default 256 KiB.
    pub initial_stream_window: u32,
    /// Upper bound for auto-tuning of a stream receive window. Default 16 MiB.
    pub max_stream_window: u32,
    /// Initial connection receive window in bytes. Default 1 MiB.
    pub initial_conn_window: u32,
    /// Upper bound for auto-tuning of the connection receive window.
    /// Default 32 MiB.
    pub max_conn_window: u32,
    /// Bytes the application may buffer per stream before
    /// [`Streams::write`] pushes back. Default 256 KiB.
    pub max_send_buffer: usize,
    /// Bytes buffered for sending across all streams, so that many streams cannot
    /// multiply the per-stream buffer. Default 512 KiB.
    pub max_total_send_buffer: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            initial_stream_window: 256 * 1024,
            max_stream_window: 16 * 1024 * 1024,
            initial_conn_window: 1024 * 1024,
            max_conn_window: 32 * 1024 * 1024,
            max_send_buffer: 256 * 1024,
            max_total_send_buffer: 512 * 1024,
        }
    }
}

/// Stream parameters the peer advertised in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStreamParams {
    /// Streams we may have open towards the peer at once.
    pub max_concurrent_streams: u32,
    /// Initial send credit for each stream.
    pub initial_stream_window: u32,
    /// Initial send credit for the connection.
    pub initial_conn_window: u32,
}

impl From<&StreamConfig> for PeerStreamParams {
    /// The parameters a peer using `config` advertises.
    fn from(config: &StreamConfig) -> Self {
        Self {
            max_concurrent_streams: config.max_concurrent_streams,
            initial_stream_window: config.initial_stream_window,
            initial_conn_window: config.initial_conn_window,
        }
    }
}

/// A frame to send, produced by [`Streams::poll_frame`]. The wire encoding
/// belongs to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// Stream payload.
    Data {
        /// Stream id.
        id: StreamId,
        /// Set on exactly the first frame the opener sends on the stream.
        open: bool,
        /// Half-closes the sender's direction after `data`.
        fin: bool,
        /// Payload; counts against stream and connection credit.
        data: Bytes,
    },
    /// Grants more credit to the peer.
    WindowUpdate {
        /// Stream id, or 0 for the connection window: the wire's id field, which
        /// is why this one is not a [`StreamId`].
        id: u64,
        /// Additional bytes the peer may send (cumulative, never shrinking).
        increment: u64,
    },
    /// Aborts both directions of a stream.
    Reset {
        /// Stream id.
        id: StreamId,
        /// Application error code ([`STREAM_REFUSED`] for refusals).
        code: u64,
    },
}

/// Something the application should know about, from [`Streams::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened this stream.
    Opened(StreamId),
    /// New data arrived. Queued at most once until polled.
    Readable(StreamId),
    /// Send-buffer room came back after a short or blocked
    /// [`Streams::write`]. Queued at most once until polled.
    Writable(StreamId),
    /// The peer's FIN arrived (emitted on arrival; data before it may still
    /// be buffered, and [`Streams::read`] returns [`ReadOutcome::Fin`] once
    /// it has all been read).
    Finished(StreamId),
    /// The peer reset the stream.
    Reset {
        /// Stream id.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The stream ended (graceful completion, local or peer reset). Last
    /// event of every stream; once it is polled the stream is forgotten and
    /// its concurrency slot freed.
    Closed(StreamId),
}

/// Result of a successful [`Streams::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were copied into the buffer.
    Data(usize),
    /// The peer finished its direction and everything has been read.
    Fin,
}

/// Application-side errors. They never affect the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// Nothing can be done now: no data to read yet, or no send-buffer room.
    Blocked,
    /// Opening would exceed the peer's concurrency limit (or the id space).
    Limit,
    /// No such stream (never opened, or already forgotten).
    UnknownStream,
    /// The direction is closed: write after finish, or use after a local
    /// reset or graceful end.
    Closed,
    /// The peer reset the stream with this code.
    Reset(u64),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocked => f.write_str("stream blocked"),
            Self::Limit => f.write_str("stream limit reached"),
            Self::UnknownStream => f.write_str("unknown stream"),
            Self::Closed => f.write_str("stream closed"),
            Self::Reset(code) => write!(f, "stream reset by peer (code {code})"),
        }
    }
}

impl core::error::Error for StreamError {}

/// Peer misbehaviour; each is a connection error for the connection to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamProtoError {
    /// The peer sent beyond the credit we granted, or granted credit
    /// beyond [`MAX_FLOW_LIMIT`].
    FlowControl,
    /// A frame is inconsistent with stream state (bad parity, reused or
    /// never-opened id, data after FIN, ...).
    StreamState,
    /// The peer kept opening streams beyond our limit faster than refusals
    /// could be sent.
    StreamLimit,
}

impl fmt::Display for StreamProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FlowControl => f.write_str("flow control violation"),
            Self::StreamState => f.write_str("stream state violation"),
            Self::StreamLimit => f.write_str("stream limit violation"),
        }
    }
}

impl core::error::Error for StreamProtoError {}

/// Counters and connection-level windows, from [`Streams::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Streams (either initiator) that have not ended yet.
    pub open_streams: usize,
    /// Bytes we may still send on the connection.
    pub conn_send_credit: u64,
    /// Current connection receive window size (auto-tuned).
    pub conn_recv_window: u64,
    /// Bytes the peer may still send on the connection before our next update.
    pub conn_recv_credit: u64,
    /// DATA payload bytes handed out by `poll_frame`.
    pub bytes_sent: u64,
    /// DATA payload bytes received (including discarded ones).
    pub bytes_received: u64,
    /// RESET frames received from the peer (input for rapid-reset defence).
    pub resets_received: u64,
    /// Peer-opened streams refused with [`STREAM_REFUSED`].
    pub streams_refused: u64,
    /// Bytes waiting in all send buffers.
    pub send_buffered: usize,
    /// Bytes received and not yet read, in all streams.
    pub recv_buffered: usize,
    /// Bytes allocated to hold them: at most 1.5 times `recv_buffered` plus 1 KiB
    /// per stream (received data is copied out of its record, so it never pins one).
    pub recv_allocated: usize,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Finished,
    LocalReset,
    PeerReset(u64),
}

impl End {
    /// What the application is told when it uses a stream that ended this way.
    pub(super) fn error(self) -> StreamError {
        match self {
            Self::Finished | Self::LocalReset => StreamError::Closed,
            Self::PeerReset(code) => StreamError::Reset(code),
        }
    }
}
