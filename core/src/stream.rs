//! Multiplexed streams with credit-based flow control.
//!
//! [`Streams`] is a sans-IO sub-state-machine owned by the connection. The
//! connection feeds it parsed frame fields (`on_data`, `on_window_update`,
//! `on_reset`) and asks it for frames to send ([`Streams::poll_frame`]); the
//! application opens, writes, reads, finishes and resets streams and learns
//! about changes through [`Streams::poll_event`]. Nothing here reads a clock
//! or draws randomness: time enters as a `now_micros` argument.
//!
//! # Model
//!
//! * **Ids.** The client opens odd ids (1, 3, 5, ...), the server even ids
//!   (2, 4, ...). Id 0 designates the connection in window updates. Each
//!   side uses its ids in increasing order (gaps are allowed) and never
//!   reuses one. Ids are limited to `2^62 - 1`.
//! * **Opening.** A stream is opened implicitly by the first DATA frame its
//!   opener sends, which carries the `open` flag (possibly with 0 bytes).
//!   Opening frames leave in id order, ahead of ordinary data, so the peer
//!   always sees ids increase.
//! * **Closing.** Each direction is half-closed by a DATA frame with `fin`
//!   (possibly with 0 bytes). [`Streams::reset`] aborts both directions with
//!   an application code. A stream ends when FIN was sent, FIN was received
//!   and all received data was read, or when either side reset it.
//! * **Flow control.** Per-stream and connection windows in bytes of DATA
//!   payload, in both directions. A sender never exceeds
//!   `min(stream credit, connection credit)`; a receiver treats any excess
//!   as [`StreamProtoError::FlowControl`]. Credit is returned with
//!   WINDOW_UPDATE as the application *reads*, once at least half of the
//!   window has been consumed. If an update for a stream (or the
//!   connection) becomes due sooner than `2 x RTT` after the previous one,
//!   that window doubles, up to the configured maximum; the connection
//!   window is kept at least as large as the largest stream window. Received
//!   but unread data is therefore bounded by the granted windows.
//! * **Control frames** (WINDOW_UPDATE, RESET) never wait for credit and are
//!   emitted before any data.
//!
//! # Assumptions about the connection
//!
//! Frames are delivered reliably and in order (the connection runs over an
//! ordered transport). This is what lets both sides agree on connection-level
//! flow control after a reset: data that arrives for a stream that is already
//! gone is still counted against the connection window, and its credit is
//! returned at once.
//!
//! # Bounds
//!
//! Every queue is bounded: a stream holds at most one pending WINDOW_UPDATE
//! (coalesced) and one pending RESET; refusals pending transmission are
//! capped (overflow is [`StreamProtoError::StreamLimit`]); each stream has at
//! most one queued `Readable` and one queued `Writable` event and a fixed
//! number of one-shot events; and a stream keeps its slot in the
//! concurrency limit until its [`StreamEvent::Closed`] event has been
//! polled (and its RESET, if any, sent), so the number of streams — and
//! thus the event queue — is bounded by the two concurrency limits.

mod recv_buf;

use alloc::collections::{BTreeMap, VecDeque};
use bytes::{Bytes, BytesMut};
use core::cmp::min;
use core::fmt;
use recv_buf::RecvBuf;
pub(crate) use recv_buf::{max_allocation as max_recv_allocation, SLACK as RECV_SLACK};

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
const MAX_STREAM_ID: u64 = (1 << 62) - 1;

/// Floor for the number of refusals that may wait for transmission, so a
/// tiny `max_concurrent_streams` does not turn a short burst into an error.
const MIN_REFUSE_QUEUE: usize = 16;

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
        id: u64,
        /// Set on exactly the first frame the opener sends on the stream.
        open: bool,
        /// Half-closes the sender's direction after `data`.
        fin: bool,
        /// Payload; counts against stream and connection credit.
        data: Bytes,
    },
    /// Grants more credit to the peer.
    WindowUpdate {
        /// Stream id, or 0 for the connection window.
        id: u64,
        /// Additional bytes the peer may send (cumulative, never shrinking).
        increment: u64,
    },
    /// Aborts both directions of a stream.
    Reset {
        /// Stream id.
        id: u64,
        /// Application error code ([`STREAM_REFUSED`] for refusals).
        code: u64,
    },
}

/// Something the application should know about, from [`Streams::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened this stream.
    Opened(u64),
    /// New data arrived. Queued at most once until polled.
    Readable(u64),
    /// Send-buffer room came back after a short or blocked
    /// [`Streams::write`]. Queued at most once until polled.
    Writable(u64),
    /// The peer's FIN arrived (emitted on arrival; data before it may still
    /// be buffered, and [`Streams::read`] returns [`ReadOutcome::Fin`] once
    /// it has all been read).
    Finished(u64),
    /// The peer reset the stream.
    Reset {
        /// Stream id.
        id: u64,
        /// The peer's code.
        code: u64,
    },
    /// The stream ended (graceful completion, local or peer reset). Last
    /// event of every stream; once it is polled the stream is forgotten and
    /// its concurrency slot freed.
    Closed(u64),
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
enum End {
    Finished,
    LocalReset,
    PeerReset(u64),
}

impl End {
    fn error(self) -> StreamError {
        match self {
            Self::Finished | Self::LocalReset => StreamError::Closed,
            Self::PeerReset(code) => StreamError::Reset(code),
        }
    }
}

#[derive(Debug)]
struct Stream {
    // Send direction.
    send_buf: BytesMut,
    /// Cumulative bytes the peer allows on this stream.
    send_max: u64,
    sent: u64,
    /// The opening frame went out (always true for peer-opened streams).
    open_sent: bool,
    fin_queued: bool,
    fin_sent: bool,
    in_send_queue: bool,
    /// Transmit priority level, 0 (urgent) ..= 3 (low); 2 by default.
    prio: u8,
    /// A write was short; report `Writable` when room comes back.
    want_writable: bool,
    writable_queued: bool,
    // Receive direction.
    recv_buf: RecvBuf,
    buffered: u64,
    recv_off: u64,
    read_off: u64,
    /// Cumulative bytes we allowed the peer to send.
    recv_max: u64,
    /// Current receive window size.
    window: u64,
    /// When the previous credit grant happened (first data stands in for
    /// the initial grant, whose time we do not know).
    last_update: Option<u64>,
    fin_recv: bool,
    readable_queued: bool,
    // Control and lifecycle.
    ctl_queued: bool,
    pending_reset: Option<u64>,
    end: Option<End>,
    closed_polled: bool,
}

impl Stream {
    fn new(send_max: u64, window: u64, open_sent: bool) -> Self {
        Self {
            send_buf: BytesMut::new(),
            send_max,
            sent: 0,
            open_sent,
            fin_queued: false,
            fin_sent: false,
            in_send_queue: false,
            prio: DEFAULT_PRIORITY,
            want_writable: false,
            writable_queued: false,
            recv_buf: RecvBuf::default(),
            buffered: 0,
            recv_off: 0,
            read_off: 0,
            recv_max: window,
            window,
            last_update: None,
            fin_recv: false,
            readable_queued: false,
            ctl_queued: false,
            pending_reset: None,
            end: None,
            closed_polled: false,
        }
    }

    fn credit(&self) -> u64 {
        self.send_max - self.sent
    }

    /// Whether the stream has something to put in a data frame, ignoring
    /// connection credit (connection credit is shared, so a stream blocked
    /// only on it keeps its place in the round-robin).
    fn sendable(&self) -> bool {
        self.end.is_none()
            && self.open_sent
            && if self.send_buf.is_empty() {
                self.fin_queued && !self.fin_sent
            } else {
                self.credit() > 0
            }
    }

    fn update_due(&self) -> bool {
        self.end.is_none() && !self.fin_recv && {
            let inc = (self.read_off + self.window).saturating_sub(self.recv_max);
            inc > 0 && inc >= self.window / 2
        }
    }
}

/// All streams of one connection: the multiplexing and flow-control state
/// machine. See the [module docs](self) for the semantics.
#[derive(Debug)]
pub struct Streams {
    is_client: bool,
    cfg: StreamConfig,
    peer: PeerStreamParams,
    rtt: u64,
    map: BTreeMap<u64, Stream>,
    next_local: u64,
    /// Lowest peer id that may still be opened.
    next_peer: u64,
    /// Map entries by initiator (ended streams included until forgotten).
    local_count: usize,
    peer_count: usize,
    conn_send_max: u64,
    conn_sent: u64,
    conn_recv_max: u64,
    conn_recv_off: u64,
    conn_read: u64,
    conn_window: u64,
    conn_last_update: Option<u64>,
    /// Streams with a pending RESET or (maybe) WINDOW_UPDATE.
    ctl_queue: VecDeque<u64>,
    /// Refused peer ids awaiting their RESET.
    refused: VecDeque<u64>,
    refuse_cap: usize,
    /// Locally opened streams whose opening frame is not out yet, in id order.
    open_queue: VecDeque<u64>,
    /// Round-robin of opened streams with data (and credit) or a FIN to send.
    send_queue: [VecDeque<u64>; PRIORITY_LEVELS],
    events: VecDeque<StreamEvent>,
    /// Bytes in all send buffers, bounded by `max_total_send_buffer`.
    send_buffered: usize,
    /// Streams refused a write because the connection-wide buffer was full; each
    /// is told `Writable` once room comes back. Bounded by the number of streams.
    blocked_on_total: VecDeque<u64>,
    bytes_sent: u64,
    bytes_received: u64,
    resets_received: u64,
    streams_refused: u64,
}

/// Where a peer frame for a stream id lands.
enum Target {
    Live,
    /// Ended or forgotten: the frame is stale and ignored.
    Gone,
}

impl Streams {
    /// Creates the stream state for one side of a connection, from our
    /// `local` configuration and the `peer`'s handshake parameters.
    ///
    /// Maximum windows below the initial ones are raised to them.
    pub fn new(is_client: bool, local: StreamConfig, peer: PeerStreamParams) -> Self {
        let mut cfg = local;
        cfg.max_stream_window = cfg.max_stream_window.max(cfg.initial_stream_window);
        cfg.max_conn_window = cfg.max_conn_window.max(cfg.initial_conn_window);
        Self {
            is_client,
            cfg,
            peer,
            rtt: 0,
            map: BTreeMap::new(),
            next_local: if is_client { 1 } else { 2 },
            next_peer: if is_client { 2 } else { 1 },
            local_count: 0,
            peer_count: 0,
            conn_send_max: u64::from(peer.initial_conn_window),
            conn_sent: 0,
            conn_recv_max: u64::from(cfg.initial_conn_window),
            conn_recv_off: 0,
            conn_read: 0,
            conn_window: u64::from(cfg.initial_conn_window),
            conn_last_update: None,
            ctl_queue: VecDeque::new(),
            refused: VecDeque::new(),
            refuse_cap: (cfg.max_concurrent_streams as usize).max(MIN_REFUSE_QUEUE),
            open_queue: VecDeque::new(),
            send_queue: Default::default(),
            events: VecDeque::new(),
            send_buffered: 0,
            blocked_on_total: VecDeque::new(),
            bytes_sent: 0,
            bytes_received: 0,
            resets_received: 0,
            streams_refused: 0,
        }
    }

    /// Sets the smoothed round-trip time used by window auto-tuning.
    /// Zero (the initial value) disables auto-tuning.
    pub fn set_rtt(&mut self, rtt_micros: u64) {
        self.rtt = rtt_micros;
    }

    fn is_local(&self, id: u64) -> bool {
        (id % 2 == 1) == self.is_client
    }

    // ---------------------------------------------------------------- app side

    /// Opens a new stream and returns its id. Its opening frame is sent by
    /// the next [`poll_frame`](Self::poll_frame), with whatever data was
    /// written by then.
    ///
    /// Fails with [`StreamError::Limit`] if the peer's concurrency limit is
    /// reached (streams count until their `Closed` event was polled).
    pub fn open(&mut self) -> Result<u64, StreamError> {
        let id = self.next_local;
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

    /// Copies as much of `data` as fits in the stream's send buffer and
    /// returns how many bytes were accepted.
    ///
    /// Returns [`StreamError::Blocked`] if none could be accepted (a
    /// [`StreamEvent::Writable`] follows when room comes back); a failed call
    /// changes nothing else. Writing after [`finish`](Self::finish) or a
    /// local reset is [`StreamError::Closed`]; after a peer reset,
    /// [`StreamError::Reset`].
    pub fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, StreamError> {
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
    pub fn finish(&mut self, id: u64) -> Result<(), StreamError> {
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

    /// Aborts both directions: unsent and unread data are dropped and a
    /// RESET carrying `code` is sent (unless the stream never reached the
    /// wire). A [`StreamEvent::Closed`] follows.
    pub fn reset(&mut self, id: u64, code: u64) -> Result<(), StreamError> {
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

    /// Copies received data into `buf`.
    ///
    /// Returns [`ReadOutcome::Fin`] once the peer finished and everything was
    /// read, [`StreamError::Blocked`] if nothing is available yet, and
    /// [`StreamError::Reset`] if the peer reset the stream. Reading returns
    /// credit to the peer. These answers hold until the stream's
    /// [`StreamEvent::Closed`] has been polled; after that the stream is
    /// forgotten and calls return [`StreamError::UnknownStream`].
    pub fn read(&mut self, id: u64, buf: &mut [u8]) -> Result<ReadOutcome, StreamError> {
        let s = self.readable_stream(id)?;
        if s.buffered == 0 {
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
    pub fn read_chunk(&mut self, id: u64, max: usize) -> Result<Option<Bytes>, StreamError> {
        let s = self.readable_stream(id)?;
        if s.buffered == 0 {
            return Ok(None);
        }
        let out = s.recv_buf.take(max);
        self.consumed(id, out.len() as u64);
        Ok(Some(out))
    }

    /// Common checks of `read`/`read_chunk`; on success the stream has
    /// buffered data or has seen FIN.
    fn readable_stream(&mut self, id: u64) -> Result<&mut Stream, StreamError> {
        let s = self.map.get_mut(&id).ok_or(StreamError::UnknownStream)?;
        match s.end {
            // Gracefully ended: everything was read, so reads report FIN.
            None | Some(End::Finished) => {}
            Some(end) => return Err(end.error()),
        }
        if s.buffered == 0 && !s.fin_recv {
            return Err(StreamError::Blocked);
        }
        Ok(s)
    }

    fn consumed(&mut self, id: u64, n: u64) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        s.buffered -= n;
        s.read_off += n;
        self.conn_read += n;
        if s.update_due() && !s.ctl_queued {
            s.ctl_queued = true;
            self.ctl_queue.push_back(id);
        }
        self.check_done(id);
    }

    // --------------------------------------------------------------- peer side

    /// Handles a DATA frame from the peer.
    ///
    /// Data for a stream that already ended is discarded (its connection
    /// credit is returned at once). Errors are connection errors.
    pub fn on_data(
        &mut self,
        id: u64,
        open: bool,
        fin: bool,
        data: &[u8],
        now_micros: u64,
    ) -> Result<(), StreamProtoError> {
        let len = data.len() as u64;
        if self.conn_recv_off + len > self.conn_recv_max {
            return Err(StreamProtoError::FlowControl);
        }
        if open {
            if id == 0 || id > MAX_STREAM_ID || self.is_local(id) || id < self.next_peer {
                return Err(StreamProtoError::StreamState);
            }
            if len > u64::from(self.cfg.initial_stream_window) {
                return Err(StreamProtoError::FlowControl);
            }
            self.next_peer = id + 2;
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
        if s.recv_off + len > s.recv_max {
            return Err(StreamProtoError::FlowControl);
        }
        s.recv_off += len;
        self.conn_recv_off += len;
        self.bytes_received += len;
        s.last_update.get_or_insert(now_micros);
        self.conn_last_update.get_or_insert(now_micros);
        if len > 0 {
            s.recv_buf.push(data);
            s.buffered += len;
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

    /// Handles a WINDOW_UPDATE (`id` 0 = connection).
    ///
    /// Credit beyond [`MAX_FLOW_LIMIT`] is [`StreamProtoError::FlowControl`];
    /// a never-opened id is [`StreamProtoError::StreamState`]; an ended
    /// stream is ignored.
    pub fn on_window_update(&mut self, id: u64, increment: u64) -> Result<(), StreamProtoError> {
        if id == 0 {
            self.conn_send_max = raise_limit(self.conn_send_max, increment)?;
            return Ok(());
        }
        if let Target::Gone = self.target(id)? {
            return Ok(());
        }
        if let Some(s) = self.map.get_mut(&id) {
            s.send_max = raise_limit(s.send_max, increment)?;
        }
        self.schedule_send(id);
        Ok(())
    }

    /// Handles a RESET from the peer: both directions are dropped, and
    /// [`StreamEvent::Reset`] then [`StreamEvent::Closed`] are queued.
    /// A never-opened id is [`StreamProtoError::StreamState`]; an ended
    /// stream is ignored (but the reset is still counted).
    pub fn on_reset(&mut self, id: u64, code: u64) -> Result<(), StreamProtoError> {
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
    fn target(&self, id: u64) -> Result<Target, StreamProtoError> {
        if id == 0 || id > MAX_STREAM_ID {
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
                if id < next {
                    Ok(Target::Gone)
                } else {
                    Err(StreamProtoError::StreamState)
                }
            }
        }
    }

    /// Accounts for payload that no stream will read: it used connection
    /// credit, which goes straight back to the peer.
    fn discard(&mut self, len: u64) {
        self.conn_recv_off += len;
        self.conn_read += len;
        self.bytes_received += len;
    }

    // ------------------------------------------------------------------ output

    /// Returns the next frame to send, or `None` if there is nothing to send
    /// (or only data without credit).
    ///
    /// Order: connection WINDOW_UPDATE, refusals, per-stream RESET /
    /// WINDOW_UPDATE, opening frames (in id order), then DATA chunks of at
    /// most `max_data` bytes, one per stream in round-robin. No DATA frame
    /// exceeds the stream or connection credit. `now_micros` drives window
    /// auto-tuning.
    pub fn poll_frame(&mut self, max_data: usize, now_micros: u64) -> Option<StreamFrame> {
        if let Some(frame) = self.poll_control_frame(now_micros) {
            return Some(frame);
        }
        if let Some(frame) = self.poll_open(None, max_data) {
            return Some(frame);
        }
        for prio in 0..PRIORITY_LEVELS as u8 {
            if let Some(frame) = self.poll_data_frame(prio, max_data, now_micros) {
                return Some(frame);
            }
        }
        None
    }

    /// The next opening frame. Served for level `lane`, a stream of a lower level
    /// opens (ids must stay in order) but keeps its data for its own level's turn.
    fn poll_open(&mut self, lane: Option<u8>, max_data: usize) -> Option<StreamFrame> {
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
        _now_micros: u64,
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
    pub fn set_priority(&mut self, id: u64, prio: u8) -> Result<(), StreamError> {
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
    fn control_frame(&mut self, id: u64, now: u64) -> Option<StreamFrame> {
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
        if autotune(s.last_update, now, rtt) && s.window < max_stream {
            s.window = min(s.window * 2, max_stream);
            // One fast stream must not be capped by the connection window.
            self.conn_window = self.conn_window.max(min(s.window, max_conn));
        }
        s.last_update = Some(now);
        let target = s.read_off + s.window;
        let increment = target - s.recv_max;
        s.recv_max = target;
        Some(StreamFrame::WindowUpdate { id, increment })
    }

    /// The connection WINDOW_UPDATE increment, if one is due.
    fn conn_update(&mut self, now: u64) -> Option<u64> {
        let due = |read: u64, window: u64, max: u64| {
            let inc = (read + window).saturating_sub(max);
            inc > 0 && inc >= window / 2
        };
        if !due(self.conn_read, self.conn_window, self.conn_recv_max) {
            return None;
        }
        let max_conn = u64::from(self.cfg.max_conn_window);
        if autotune(self.conn_last_update, now, self.rtt) {
            self.conn_window = min(self.conn_window * 2, max_conn).max(self.conn_window);
        }
        self.conn_last_update = Some(now);
        let target = self.conn_read + self.conn_window;
        let increment = target - self.conn_recv_max;
        self.conn_recv_max = target;
        Some(increment)
    }

    /// True if `poll_frame` could have anything at all to send: lets a scheduler skip
    /// the stream component cheaply when no stream is busy.
    pub fn has_pending(&self) -> bool {
        !self.ctl_queue.is_empty()
            || !self.refused.is_empty()
            || !self.open_queue.is_empty()
            || self.send_queue.iter().any(|q| !q.is_empty())
            // A connection window update may be due (the condition of `conn_update`).
            || (self.conn_read + self.conn_window).saturating_sub(self.conn_recv_max)
                >= (self.conn_window / 2).max(1)
    }

    /// Only the control frames (window updates and resets), which never wait for
    /// credit: the connection sends these ahead of all data, at any priority.
    pub fn poll_control_frame(&mut self, now_micros: u64) -> Option<StreamFrame> {
        if let Some(increment) = self.conn_update(now_micros) {
            return Some(StreamFrame::WindowUpdate { id: 0, increment });
        }
        if let Some(id) = self.refused.pop_front() {
            return Some(StreamFrame::Reset {
                id,
                code: STREAM_REFUSED,
            });
        }
        while let Some(id) = self.ctl_queue.pop_front() {
            if let Some(frame) = self.control_frame(id, now_micros) {
                return Some(frame);
            }
        }
        None
    }

    /// Cuts a DATA frame for `id` within credit; `None` if it would carry
    /// nothing (neither bytes, nor FIN, nor the open flag).
    fn data_frame(&mut self, id: u64, max_data: usize, open: bool) -> Option<StreamFrame> {
        let conn_credit = self.conn_send_max - self.conn_sent;
        let max_buf = self.cfg.max_send_buffer;
        let s = self.map.get_mut(&id)?;
        if s.end.is_some() {
            return None;
        }
        let credit = min(s.credit(), conn_credit);
        let n = min(s.send_buf.len() as u64, min(max_data as u64, credit)) as usize;
        let fin = s.fin_queued && !s.fin_sent && s.send_buf.len() == n;
        if n == 0 && !fin && !open {
            return None;
        }
        let data = s.send_buf.split_to(n).freeze();
        self.send_buffered -= n;
        s.sent += n as u64;
        self.conn_sent += n as u64;
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
    pub(crate) fn closed_seen(&mut self, id: u64) {
        if let Some(s) = self.map.get_mut(&id) {
            s.closed_polled = true;
        }
        self.maybe_forget(id);
    }

    // ------------------------------------------------------------- inspection

    /// Counters and connection-level windows.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            open_streams: self.map.values().filter(|s| s.end.is_none()).count(),
            conn_send_credit: self.conn_send_max - self.conn_sent,
            conn_recv_window: self.conn_window,
            conn_recv_credit: self.conn_recv_max - self.conn_recv_off,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            resets_received: self.resets_received,
            streams_refused: self.streams_refused,
            send_buffered: self.send_buffered,
            recv_buffered: self.map.values().map(|s| s.recv_buf.len()).sum(),
            recv_allocated: self.map.values().map(|s| s.recv_buf.allocated()).sum(),
        }
    }

    /// Bytes we may still send on stream `id` (ignoring connection credit),
    /// or `None` for an unknown stream.
    pub fn send_window(&self, id: u64) -> Option<u64> {
        self.map.get(&id).map(Stream::credit)
    }

    /// Current receive window size of stream `id` (grows with auto-tuning),
    /// or `None` for an unknown stream.
    pub fn recv_window(&self, id: u64) -> Option<u64> {
        self.map.get(&id).map(|s| s.window)
    }

    // --------------------------------------------------------------- internals

    /// Puts an opened stream into the round-robin if it has something to send.
    fn schedule_send(&mut self, id: u64) {
        if let Some(s) = self.map.get_mut(&id) {
            if !s.in_send_queue && s.sendable() {
                s.in_send_queue = true;
                self.send_queue[usize::from(s.prio)].push_back(id);
            }
        }
    }

    /// Ends the stream gracefully once both directions are done.
    fn check_done(&mut self, id: u64) {
        if let Some(s) = self.map.get(&id) {
            if s.end.is_none() && s.fin_sent && s.fin_recv && s.buffered == 0 {
                self.end_stream(id, End::Finished);
            }
        }
    }

    /// Marks a stream ended: frees its buffers, returns connection credit
    /// for unread data, drops it from the send queues and reports it.
    fn end_stream(&mut self, id: u64, end: End) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        s.end = Some(end);
        let unread = s.buffered;
        s.read_off += unread;
        s.buffered = 0;
        s.recv_buf.clear();
        self.send_buffered -= s.send_buf.len();
        s.send_buf = BytesMut::new();
        s.want_writable = false;
        self.conn_read += unread;
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
    fn maybe_forget(&mut self, id: u64) {
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

/// Whether an update due at `now` comes sooner than 2 x RTT after `last`.
fn autotune(last: Option<u64>, now: u64, rtt: u64) -> bool {
    match last {
        Some(t) if rtt > 0 => now.saturating_sub(t) < rtt.saturating_mul(2),
        _ => false,
    }
}

fn raise_limit(limit: u64, increment: u64) -> Result<u64, StreamProtoError> {
    limit
        .checked_add(increment)
        .filter(|&v| v <= MAX_FLOW_LIMIT)
        .ok_or(StreamProtoError::FlowControl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use quickcheck::{QuickCheck, TestResult};

    fn cfg(stream_win: u32, conn_win: u32) -> StreamConfig {
        StreamConfig {
            initial_stream_window: stream_win,
            max_stream_window: stream_win,
            initial_conn_window: conn_win,
            max_conn_window: conn_win,
            ..StreamConfig::default()
        }
    }

    fn pair(c: StreamConfig, s: StreamConfig) -> (Streams, Streams) {
        (
            Streams::new(true, c, (&s).into()),
            Streams::new(false, s, (&c).into()),
        )
    }

    fn deliver(to: &mut Streams, f: StreamFrame, now: u64) -> Result<(), StreamProtoError> {
        match f {
            StreamFrame::Data {
                id,
                open,
                fin,
                data,
            } => to.on_data(id, open, fin, &data, now),
            StreamFrame::WindowUpdate { id, increment } => to.on_window_update(id, increment),
            StreamFrame::Reset { id, code } => to.on_reset(id, code),
        }
    }

    /// Polls one frame from `from`, checking that a DATA frame stays within
    /// the stream and connection credit the sender had just before.
    fn poll_checked(from: &mut Streams, max_data: usize, now: u64) -> Option<StreamFrame> {
        let conn_before = from.stats().conn_send_credit;
        let windows: Vec<(u64, u64)> = from.map.iter().map(|(&id, s)| (id, s.credit())).collect();
        let f = from.poll_frame(max_data, now)?;
        if let StreamFrame::Data { id, data, .. } = &f {
            let len = data.len() as u64;
            let before = windows.iter().find(|w| w.0 == *id).map_or(0, |w| w.1);
            assert!(
                len <= before,
                "frame of {len} exceeds stream credit {before}"
            );
            assert!(len <= conn_before, "frame of {len} exceeds conn credit");
            assert!(data.len() <= max_data);
            assert_eq!(from.stats().conn_send_credit, conn_before - len);
        }
        Some(f)
    }

    /// Moves every frame `from` has to `to`; returns how many moved.
    fn flush(from: &mut Streams, to: &mut Streams, max_data: usize, now: u64) -> usize {
        let mut n = 0;
        while let Some(f) = poll_checked(from, max_data, now) {
            deliver(to, f, now).expect("peer accepts frame");
            n += 1;
        }
        n
    }

    fn pump(c: &mut Streams, s: &mut Streams) {
        while flush(c, s, 1200, 0) + flush(s, c, 1200, 0) > 0 {}
    }

    fn events(s: &mut Streams) -> Vec<StreamEvent> {
        core::iter::from_fn(|| s.poll_event()).collect()
    }

    fn read_all(s: &mut Streams, id: u64) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 333];
        loop {
            match s.read(id, &mut buf) {
                Ok(ReadOutcome::Data(n)) => out.extend_from_slice(&buf[..n]),
                Ok(ReadOutcome::Fin) => return (out, true),
                Err(StreamError::Blocked) => return (out, false),
                Err(e) => panic!("read error {e:?}"),
            }
        }
    }

    fn pattern(seed: u64, off: u64, n: usize) -> Vec<u8> {
        (0..n as u64)
            .map(|i| ((off + i) * 31 + seed * 7 % 251) as u8)
            .collect()
    }

    #[test]
    fn open_and_accept_with_open_flag_on_first_frame_only() {
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let id = c.open().unwrap();
        assert_eq!(id, 1);
        assert_eq!(c.open(), Ok(3));
        assert_eq!(c.write(id, b"hello"), Ok(5));
        // Opening frames leave in id order, the empty one included.
        let f1 = c.poll_frame(3, 0).unwrap();
        assert_eq!(
            f1,
            StreamFrame::Data {
                id: 1,
                open: true,
                fin: false,
                data: Bytes::from_static(b"hel")
            }
        );
        let f2 = c.poll_frame(3, 0).unwrap();
        assert!(
            matches!(f2, StreamFrame::Data { id: 3, open: true, ref data, .. } if data.is_empty())
        );
        let f3 = c.poll_frame(3, 0).unwrap();
        assert!(matches!(
            f3,
            StreamFrame::Data {
                id: 1,
                open: false,
                ..
            }
        ));
        assert_eq!(c.poll_frame(3, 0), None);
        for f in [f1, f2, f3] {
            deliver(&mut s, f, 0).unwrap();
        }
        assert_eq!(
            events(&mut s),
            vec![
                StreamEvent::Opened(1),
                StreamEvent::Readable(1),
                StreamEvent::Opened(3)
            ]
        );
        assert_eq!(read_all(&mut s, 1), (b"hello".to_vec(), false));
        // Server-opened streams are even and reach the client.
        assert_eq!(s.open(), Ok(2));
        s.write(2, b"x").unwrap();
        pump(&mut c, &mut s);
        assert_eq!(
            events(&mut c),
            vec![StreamEvent::Opened(2), StreamEvent::Readable(2)]
        );
        assert_eq!(read_all(&mut c, 2), (b"x".to_vec(), false));
    }

    #[test]
    fn ordered_bytes_both_ways_with_various_chunking() {
        for (max_data, read_size) in [(1, 1), (7, 100), (1000, 3), (65536, 65536)] {
            let (mut c, mut s) = pair(cfg(4096, 8192), cfg(4096, 8192));
            let id = c.open().unwrap();
            let up = pattern(1, 0, 20_000);
            let down = pattern(2, 0, 15_000);
            let (mut wu, mut wd) = (0, 0);
            let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
            let mut buf = vec![0u8; read_size];
            let mut server_knows = false;
            for _ in 0..100_000 {
                if wu < up.len() {
                    wu += c.write(id, &up[wu..]).unwrap_or(0);
                }
                if server_knows && wd < down.len() {
                    wd += s.write(id, &down[wd..]).unwrap_or(0);
                }
                flush(&mut c, &mut s, max_data, 0);
                server_knows = true;
                while let Ok(ReadOutcome::Data(n)) = s.read(id, &mut buf) {
                    got_up.extend_from_slice(&buf[..n]);
                }
                flush(&mut s, &mut c, max_data, 0);
                while let Ok(ReadOutcome::Data(n)) = c.read(id, &mut buf) {
                    got_down.extend_from_slice(&buf[..n]);
                }
                if got_up.len() == up.len() && got_down.len() == down.len() {
                    break;
                }
            }
            assert_eq!(got_up, up);
            assert_eq!(got_down, down);
        }
    }

    #[test]
    fn half_close_each_way() {
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let id = c.open().unwrap();
        c.write(id, b"request").unwrap();
        c.finish(id).unwrap();
        assert_eq!(c.write(id, b"more"), Err(StreamError::Closed));
        assert_eq!(c.finish(id), Err(StreamError::Closed));
        // FIN rides on the last data frame.
        let f = c.poll_frame(1000, 0).unwrap();
        assert!(matches!(
            f,
            StreamFrame::Data {
                open: true,
                fin: true,
                ..
            }
        ));
        deliver(&mut s, f, 0).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                StreamEvent::Opened(id),
                StreamEvent::Readable(id),
                StreamEvent::Finished(id)
            ]
        );
        assert_eq!(read_all(&mut s, id), (b"request".to_vec(), true));
        // The other direction is still open.
        s.write(id, b"response").unwrap();
        pump(&mut c, &mut s);
        assert_eq!(read_all(&mut c, id), (b"response".to_vec(), false));
        assert_eq!(c.stats().open_streams, 1);
        // An empty FIN closes it; both sides end the stream.
        s.finish(id).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(events(&mut s), vec![StreamEvent::Closed(id)]);
        assert_eq!(
            events(&mut c),
            vec![
                StreamEvent::Readable(id),
                StreamEvent::Finished(id),
                StreamEvent::Closed(id)
            ]
        );
        assert_eq!(c.stats().open_streams, 0);
        assert_eq!(s.stats().open_streams, 0);
        // Forgotten after Closed was polled; the id is not reused.
        assert_eq!(c.read(id, &mut [0; 4]), Err(StreamError::UnknownStream));
        assert_eq!(c.open(), Ok(3));
    }

    #[test]
    fn client_side_half_close_after_response() {
        // The client reads everything before its own FIN goes out: the
        // stream ends when the last condition (FIN sent) is met.
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let id = c.open().unwrap();
        c.write(id, b"a").unwrap();
        pump(&mut c, &mut s);
        s.write(id, b"b").unwrap();
        s.finish(id).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(read_all(&mut c, id), (b"b".to_vec(), true));
        assert!(!events(&mut c).contains(&StreamEvent::Closed(id)));
        c.finish(id).unwrap();
        pump(&mut c, &mut s);
        assert!(events(&mut c).contains(&StreamEvent::Closed(id)));
        assert_eq!(read_all(&mut s, id), (b"a".to_vec(), true));
        assert!(events(&mut s).contains(&StreamEvent::Closed(id)));
    }

    #[test]
    fn reset_both_directions_with_code() {
        let (mut c, mut s) = pair(cfg(1000, 4000), cfg(1000, 1500));
        let id = c.open().unwrap();
        c.write(id, &[1; 900]).unwrap();
        pump(&mut c, &mut s);
        s.write(id, &[2; 10]).unwrap();
        // This frame is in flight when the client resets.
        let crossing = s.poll_frame(100, 0).unwrap();
        events(&mut s);
        // Unread data at the server is dropped on reset; credit comes back.
        c.reset(id, 42).unwrap();
        assert_eq!(c.write(id, b"x"), Err(StreamError::Closed));
        assert_eq!(c.reset(id, 1), Err(StreamError::Closed));
        assert_eq!(
            c.poll_frame(100, 0),
            Some(StreamFrame::Reset { id, code: 42 })
        );
        s.on_reset(id, 42).unwrap();
        assert_eq!(
            events(&mut s),
            vec![StreamEvent::Reset { id, code: 42 }, StreamEvent::Closed(id)]
        );
        // Server data that crossed the reset is discarded harmlessly, its
        // connection credit counted as consumed.
        deliver(&mut c, crossing, 0).unwrap();
        assert_eq!(c.conn_read, 10);
        assert_eq!(s.stats().resets_received, 1);
        assert_eq!(s.stats().conn_recv_credit, 1500 - 900);
        assert_eq!(
            s.poll_frame(100, 0),
            Some(StreamFrame::WindowUpdate {
                id: 0,
                increment: 900
            })
        );
        assert_eq!(s.poll_frame(100, 0), None);
        assert_eq!(events(&mut c), vec![StreamEvent::Closed(id)]);
        assert_eq!(c.stats().open_streams, 0);

        // Server resets a client-opened stream; the client's unread data is
        // dropped and reads report the code until Closed is polled.
        let id = c.open().unwrap();
        c.write(id, b"hi").unwrap();
        pump(&mut c, &mut s);
        s.write(id, b"unread").unwrap();
        pump(&mut c, &mut s);
        s.reset(id, 7).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(c.read(id, &mut [0; 8]), Err(StreamError::Reset(7)));
        assert_eq!(c.write(id, b"x"), Err(StreamError::Reset(7)));
        assert_eq!(
            events(&mut c),
            vec![
                StreamEvent::Readable(id),
                StreamEvent::Reset { id, code: 7 },
                StreamEvent::Closed(id)
            ]
        );
        assert_eq!(c.read(id, &mut [0; 8]), Err(StreamError::UnknownStream));
        assert_eq!(c.stats().resets_received, 1);
        // Late frames for the dead stream are ignored, unknown ones are not.
        assert_eq!(c.on_window_update(id, 10), Ok(()));
        assert_eq!(c.on_reset(id, 7), Ok(()));
        assert_eq!(
            c.on_window_update(101, 10),
            Err(StreamProtoError::StreamState)
        );
        assert_eq!(c.on_reset(101, 7), Err(StreamProtoError::StreamState));
    }

    #[test]
    fn reset_before_open_sends_nothing() {
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let a = c.open().unwrap();
        let b = c.open().unwrap();
        c.write(a, b"x").unwrap();
        c.reset(a, 9).unwrap();
        assert_eq!(events(&mut c), vec![StreamEvent::Closed(a)]);
        let f = c.poll_frame(100, 0).unwrap();
        assert!(matches!(f, StreamFrame::Data { id, open: true, .. } if id == b));
        assert_eq!(c.poll_frame(100, 0), None);
        // Skipping id 1 is fine for the server.
        deliver(&mut s, f, 0).unwrap();
        assert_eq!(events(&mut s), vec![StreamEvent::Opened(b)]);
    }

    #[test]
    fn stream_limit_on_open() {
        let small = StreamConfig {
            max_concurrent_streams: 2,
            ..StreamConfig::default()
        };
        let (mut c, mut s) = pair(StreamConfig::default(), small);
        let a = c.open().unwrap();
        c.open().unwrap();
        assert_eq!(c.open(), Err(StreamError::Limit));
        // A slot frees once the stream ended and Closed was polled.
        c.reset(a, 0).unwrap();
        assert_eq!(c.open(), Err(StreamError::Limit));
        events(&mut c);
        assert_eq!(c.open(), Ok(5));
        pump(&mut c, &mut s);
    }

    #[test]
    fn peer_over_limit_is_refused() {
        let small = StreamConfig {
            max_concurrent_streams: 1,
            ..StreamConfig::default()
        };
        let mut lying = PeerStreamParams::from(&small);
        lying.max_concurrent_streams = 10;
        let mut c = Streams::new(true, StreamConfig::default(), lying);
        let mut s = Streams::new(false, small, (&StreamConfig::default()).into());
        let a = c.open().unwrap();
        let b = c.open().unwrap();
        c.write(b, &[0; 500]).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(events(&mut s), vec![StreamEvent::Opened(a)]);
        assert_eq!(s.stats().streams_refused, 1);
        assert_eq!(
            events(&mut c),
            vec![
                StreamEvent::Reset {
                    id: b,
                    code: STREAM_REFUSED
                },
                StreamEvent::Closed(b)
            ]
        );
        // The refused stream's payload counts as consumed at once.
        assert_eq!(s.conn_read, 500);
        assert_eq!(s.stats().bytes_received, 500);
        // Re-opening a refused (lower) id is a protocol error.
        assert_eq!(
            s.on_data(b, true, false, &[], 0),
            Err(StreamProtoError::StreamState)
        );
    }

    #[test]
    fn refusal_flood_is_a_connection_error() {
        let small = StreamConfig {
            max_concurrent_streams: 0,
            ..StreamConfig::default()
        };
        let mut s = Streams::new(false, small, (&StreamConfig::default()).into());
        let mut result = Ok(());
        for i in 0..(MIN_REFUSE_QUEUE as u64 + 1) {
            result = s.on_data(2 * i + 1, true, false, &[], 0);
        }
        assert_eq!(result, Err(StreamProtoError::StreamLimit));
    }

    #[test]
    fn sender_stops_exactly_at_window() {
        let (mut c, mut s) = pair(cfg(1000, 1_000_000), cfg(1000, 2500));
        let ids = [c.open().unwrap(), c.open().unwrap(), c.open().unwrap()];
        for &id in &ids {
            assert_eq!(c.write(id, &[7; 5000]), Ok(5000));
        }
        // Stream windows (1000 each) bind before the connection's 2500.
        let mut per_stream = [0u64; 3];
        while let Some(f) = poll_checked(&mut c, 300, 0) {
            if let StreamFrame::Data { id, data, .. } = &f {
                per_stream[(*id / 2) as usize] += data.len() as u64;
            }
            deliver(&mut s, f, 0).unwrap();
        }
        assert_eq!(per_stream.iter().sum::<u64>(), 2500);
        assert!(per_stream.iter().all(|&n| n <= 1000));
        assert_eq!(c.stats().conn_send_credit, 0);
        assert_eq!(c.stats().bytes_sent, 2500);
        // Reading returns credit, and sending resumes.
        for &id in &ids {
            read_all(&mut s, id);
        }
        assert!(flush(&mut s, &mut c, 300, 0) > 0);
        assert!(flush(&mut c, &mut s, 300, 0) > 0);
    }

    #[test]
    fn receiving_beyond_window_is_flow_control_error() {
        let mut s = Streams::new(false, cfg(1000, 1500), (&cfg(1000, 1500)).into());
        let big = Bytes::from(vec![0u8; 1001]);
        assert_eq!(
            s.on_data(1, true, false, &big, 0),
            Err(StreamProtoError::FlowControl)
        );
        s.on_data(1, true, false, &vec![0u8; 1000], 0).unwrap();
        assert_eq!(
            s.on_data(1, false, false, b"x", 0),
            Err(StreamProtoError::FlowControl)
        );
        // Connection window: 500 left, two streams try more.
        s.on_data(3, true, false, &vec![0u8; 500], 0).unwrap();
        assert_eq!(
            s.on_data(5, true, false, b"x", 0),
            Err(StreamProtoError::FlowControl)
        );
    }

    #[test]
    fn window_update_only_after_reads() {
        let (mut c, mut s) = pair(cfg(1000, 100_000), cfg(1000, 100_000));
        let id = c.open().unwrap();
        c.write(id, &[1; 1000]).unwrap();
        flush(&mut c, &mut s, 10_000, 0);
        // Data arrived but nothing was read: no credit goes back.
        assert_eq!(s.poll_frame(1000, 0), None);
        let mut buf = [0u8; 499];
        s.read(id, &mut buf).unwrap();
        assert_eq!(s.poll_frame(1000, 0), None, "less than half consumed");
        s.read(id, &mut [0u8; 1]).unwrap();
        assert_eq!(
            s.poll_frame(1000, 0),
            Some(StreamFrame::WindowUpdate { id, increment: 500 })
        );
        // Updates are coalesced: many reads, one frame.
        for _ in 0..5 {
            s.read(id, &mut [0u8; 100]).unwrap();
        }
        assert_eq!(
            s.poll_frame(1000, 0),
            Some(StreamFrame::WindowUpdate { id, increment: 500 })
        );
        assert_eq!(s.poll_frame(1000, 0), None);
        assert_eq!(s.recv_window(id), Some(1000));
    }

    /// Streams `total` bytes on one stream with the server reading all it
    /// can each round; returns the final stream and connection windows.
    fn run_autotune(rtt: u64, step: u64, total: usize) -> (u64, u64) {
        let local = StreamConfig {
            initial_stream_window: 1000,
            max_stream_window: 8000,
            initial_conn_window: 4000,
            max_conn_window: 6000,
            max_send_buffer: 100_000,
            ..StreamConfig::default()
        };
        let (mut c, mut s) = pair(local, local);
        s.set_rtt(rtt);
        let id = c.open().unwrap();
        let data = pattern(3, 0, total);
        let mut written = 0;
        let mut got = Vec::new();
        let mut now = 0;
        let mut max_seen = 0;
        for _ in 0..100_000 {
            now += step;
            if written < total {
                written += c.write(id, &data[written..]).unwrap_or(0);
            }
            flush(&mut c, &mut s, 1 << 20, now);
            got.extend(read_all(&mut s, id).0);
            flush(&mut s, &mut c, 1 << 20, now);
            max_seen = max_seen.max(s.recv_window(id).unwrap());
            assert!(s.stats().conn_recv_window <= 6000);
            if got.len() == total {
                break;
            }
        }
        assert_eq!(got, data);
        assert!(max_seen <= 8000);
        (s.recv_window(id).unwrap(), s.stats().conn_recv_window)
    }

    #[test]
    fn window_autotuning_grows_to_max_and_never_beyond() {
        // Updates every 10us with a 1ms RTT: the window must grow to its cap.
        assert_eq!(run_autotune(1000, 10, 200_000), (8000, 6000));
        // No RTT known: no growth.
        assert_eq!(run_autotune(0, 10, 200_000), (1000, 4000));
        // Updates slower than 2 x RTT: no growth beyond the one doubling of
        // the first update, which comes right after the first data arrived
        // (the reader emptied a whole initial window at once).
        assert_eq!(run_autotune(1000, 5000, 50_000), (2000, 4000));
    }

    #[test]
    fn write_blocked_changes_nothing() {
        let local = StreamConfig {
            max_send_buffer: 100,
            ..StreamConfig::default()
        };
        let (mut c, mut s) = pair(local, local);
        let id = c.open().unwrap();
        assert_eq!(c.write(id, &[1; 60]), Ok(60));
        assert_eq!(c.write(id, &[2; 60]), Ok(40), "partial write");
        let stats = c.stats();
        let window = c.send_window(id);
        assert_eq!(c.write(id, &[3; 10]), Err(StreamError::Blocked));
        assert_eq!(c.stats(), stats);
        assert_eq!(c.send_window(id), window);
        assert_eq!(c.write(id, &[]), Ok(0));
        assert_eq!(c.write(99, b"x"), Err(StreamError::UnknownStream));
        // Exactly the 100 accepted bytes go out, then room is reported.
        let f = c.poll_frame(1000, 0).unwrap();
        let mut expected = vec![1u8; 60];
        expected.extend_from_slice(&[2; 40]);
        assert!(matches!(&f, StreamFrame::Data { data, .. } if data[..] == expected[..]));
        assert_eq!(c.poll_frame(1000, 0), None);
        assert_eq!(events(&mut c), vec![StreamEvent::Writable(id)]);
        deliver(&mut s, f, 0).unwrap();
        assert_eq!(c.write(id, &[3; 10]), Ok(10));
    }

    #[test]
    fn events_are_deduplicated() {
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let id = c.open().unwrap();
        for _ in 0..50 {
            c.write(id, b"abc").unwrap();
            flush(&mut c, &mut s, 2, 0);
        }
        assert_eq!(
            events(&mut s),
            vec![StreamEvent::Opened(id), StreamEvent::Readable(id)]
        );
        assert_eq!(read_all(&mut s, id).0.len(), 150);
    }

    #[test]
    fn read_chunk_is_zero_copy_and_reports_fin() {
        let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
        let id = c.open().unwrap();
        c.write(id, b"hello world").unwrap();
        c.finish(id).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(s.read_chunk(id, 5), Ok(Some(Bytes::from_static(b"hello"))));
        assert_eq!(
            s.read_chunk(id, 100),
            Ok(Some(Bytes::from_static(b" world")))
        );
        assert_eq!(s.read_chunk(id, 100), Ok(None));
        assert_eq!(s.read(id, &mut [0; 4]), Ok(ReadOutcome::Fin));
    }

    #[test]
    fn protocol_errors() {
        let mut s = Streams::new(
            false,
            StreamConfig::default(),
            (&StreamConfig::default()).into(),
        );
        let e = |r: Result<(), StreamProtoError>| r.unwrap_err();
        // Wrong parity, id 0, never-opened ids.
        assert_eq!(
            e(s.on_data(2, true, false, &[], 0)),
            StreamProtoError::StreamState
        );
        assert_eq!(
            e(s.on_data(0, true, false, &[], 0)),
            StreamProtoError::StreamState
        );
        assert_eq!(
            e(s.on_data(1, false, false, &[], 0)),
            StreamProtoError::StreamState
        );
        assert_eq!(e(s.on_window_update(1, 5)), StreamProtoError::StreamState);
        assert_eq!(e(s.on_window_update(2, 5)), StreamProtoError::StreamState);
        s.on_data(5, true, false, &[], 0).unwrap();
        // Re-open, or open a lower id.
        assert_eq!(
            e(s.on_data(5, true, false, &[], 0)),
            StreamProtoError::StreamState
        );
        assert_eq!(
            e(s.on_data(3, true, false, &[], 0)),
            StreamProtoError::StreamState
        );
        // Data after FIN.
        s.on_data(5, false, true, &[], 0).unwrap();
        assert_eq!(
            e(s.on_data(5, false, false, b"x", 0)),
            StreamProtoError::StreamState
        );
        // Credit overflow, per stream and for the connection.
        assert_eq!(
            e(s.on_window_update(5, MAX_FLOW_LIMIT)),
            StreamProtoError::FlowControl
        );
        assert_eq!(
            e(s.on_window_update(0, u64::MAX)),
            StreamProtoError::FlowControl
        );
        s.on_window_update(5, 1000).unwrap();
        assert_eq!(s.send_window(5), Some(256 * 1024 + 1000));
        // Our own id the peer cannot know about yet.
        let mine = s.open().unwrap();
        assert_eq!(
            e(s.on_window_update(mine, 5)),
            StreamProtoError::StreamState
        );
        assert_eq!(
            e(s.on_data(mine, false, false, &[], 0)),
            StreamProtoError::StreamState
        );
    }

    #[test]
    fn hundred_streams_one_mib_each_fair_and_deadlock_free() {
        const N: usize = 100;
        const SIZE: u64 = 1 << 20;
        let local = StreamConfig {
            max_concurrent_streams: N as u32,
            initial_stream_window: 16 * 1024,
            max_stream_window: 16 * 1024,
            initial_conn_window: 64 * 1024,
            max_conn_window: 64 * 1024,
            max_send_buffer: 32 * 1024,
            max_total_send_buffer: N * 32 * 1024,
        };
        let (mut c, mut s) = pair(local, local);
        let ids: Vec<u64> = (0..N).map(|_| c.open().unwrap()).collect();
        assert_eq!(c.open(), Err(StreamError::Limit));
        // `pattern` repeats every 256 bytes.
        let pat = pattern(0, 0, 256 * 40);
        let chunk = |off: u64, n: usize| {
            let start = (off % 256) as usize;
            &pat[start..start + n]
        };
        let mut written = [0u64; N];
        let mut received = [0u64; N];
        let mut server_done = [false; N];
        let mut client_closed = 0;
        let mut server_closed = 0;
        let mut buf = vec![0u8; 8192];
        let mut max_spread = 0;
        let mut rounds = 0;
        while client_closed < N || server_closed < N {
            rounds += 1;
            assert!(rounds < 200_000, "no progress: deadlock");
            for (i, &id) in ids.iter().enumerate() {
                if written[i] < SIZE {
                    let n = min(SIZE - written[i], 8192) as usize;
                    if let Ok(k) = c.write(id, chunk(written[i], n)) {
                        written[i] += k as u64;
                        if written[i] == SIZE {
                            c.finish(id).unwrap();
                        }
                    }
                }
            }
            flush(&mut c, &mut s, 4096, 0);
            for (i, &id) in ids.iter().enumerate() {
                if server_done[i] {
                    continue;
                }
                loop {
                    match s.read(id, &mut buf) {
                        Ok(ReadOutcome::Data(n)) => {
                            assert!(buf[..n] == *chunk(received[i], n), "corrupt data");
                            received[i] += n as u64;
                        }
                        Ok(ReadOutcome::Fin) => {
                            assert_eq!(received[i], SIZE);
                            s.finish(id).unwrap();
                            server_done[i] = true;
                            break;
                        }
                        Err(StreamError::Blocked) | Err(StreamError::UnknownStream) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            flush(&mut s, &mut c, 4096, 0);
            for &id in &ids {
                let _ = c.read(id, &mut buf);
            }
            server_closed += events(&mut s)
                .iter()
                .filter(|e| matches!(e, StreamEvent::Closed(_)))
                .count();
            client_closed += events(&mut c)
                .iter()
                .filter(|e| matches!(e, StreamEvent::Closed(_)))
                .count();
            let spread = received.iter().max().unwrap() - received.iter().min().unwrap();
            max_spread = max_spread.max(spread);
        }
        assert!(received.iter().all(|&r| r == SIZE));
        // Round-robin: no stream gets ahead of another by more than a
        // stream window plus a frame.
        assert!(max_spread <= 16 * 1024 + 4096, "spread {max_spread}");
        assert_eq!(c.stats().open_streams, 0);
        assert_eq!(s.stats().open_streams, 0);
        assert_eq!(s.stats().bytes_received, N as u64 * SIZE);
    }

    /// Random write sizes, read sizes, frame sizes, windows and RTT on two
    /// streams sharing the connection window: bytes arrive intact, no frame
    /// exceeds credit (checked in `poll_checked`, and by the receiver), and
    /// credit never underflows (debug arithmetic would panic).
    fn prop_transfer(
        writes: Vec<u16>,
        reads: Vec<u16>,
        frames: Vec<u8>,
        windows: (u16, u16, u16),
        rtt: u8,
    ) -> TestResult {
        // Frame sizes of only 0 can move no data at all: nothing to check there.
        if reads.is_empty() || frames.iter().all(|&f| f == 0) {
            return TestResult::discard();
        }
        let stream_win = 1 + u32::from(windows.0 % 3000);
        let conn_win = 1 + u32::from(windows.1 % 5000);
        let local = StreamConfig {
            max_concurrent_streams: 4,
            initial_stream_window: stream_win,
            max_stream_window: stream_win * 4,
            initial_conn_window: conn_win,
            max_conn_window: conn_win * 4,
            max_send_buffer: 1 + usize::from(windows.2 % 4000),
            max_total_send_buffer: usize::MAX,
        };
        let (mut c, mut s) = pair(local, local);
        s.set_rtt(u64::from(rtt));
        let ids = [c.open().unwrap(), c.open().unwrap()];
        let mut sent: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for (k, w) in writes.iter().enumerate() {
            pending[k % 2].extend(pattern(k as u64, 0, usize::from(w % 2000)));
        }
        let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut fin = [false; 2];
        let mut finished = [false; 2];
        let (mut ri, mut fi) = (0, 0);
        let mut now = 0;
        for _ in 0..200_000 {
            now += 5;
            for i in 0..2 {
                let off = sent[i].len();
                if off < pending[i].len() {
                    let r = c.write(ids[i], &pending[i][off..]);
                    let before = sent[i].len();
                    match r {
                        Ok(n) => sent[i].extend_from_slice(&pending[i][off..off + n]),
                        Err(StreamError::Blocked) => assert_eq!(sent[i].len(), before),
                        Err(e) => panic!("{e:?}"),
                    }
                } else if !finished[i] {
                    c.finish(ids[i]).unwrap();
                    finished[i] = true;
                }
            }
            // Move a random number of frames of random size.
            let burst = 1 + frames[fi % frames.len()] % 4;
            for _ in 0..burst {
                let max_data = usize::from(frames[fi % frames.len()]) * 7;
                fi += 1;
                match poll_checked(&mut c, max_data, now) {
                    Some(f) => {
                        if deliver(&mut s, f, now).is_err() {
                            return TestResult::failed();
                        }
                    }
                    None => break,
                }
            }
            for i in 0..2 {
                let mut buf = vec![0u8; 1 + usize::from(reads[ri % reads.len()] % 3000)];
                ri += 1;
                match s.read(ids[i], &mut buf) {
                    Ok(ReadOutcome::Data(n)) => got[i].extend_from_slice(&buf[..n]),
                    Ok(ReadOutcome::Fin) => fin[i] = true,
                    Err(StreamError::Blocked) | Err(StreamError::UnknownStream) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            while let Some(f) = poll_checked(&mut s, 1000, now) {
                if deliver(&mut c, f, now).is_err() {
                    return TestResult::failed();
                }
            }
            if s.stats().conn_recv_window > u64::from(conn_win) * 4
                || ids.iter().any(|&id| {
                    s.recv_window(id)
                        .is_some_and(|w| w > u64::from(stream_win) * 4)
                })
            {
                return TestResult::failed();
            }
            if fin == [true, true] {
                break;
            }
        }
        TestResult::from_bool(fin == [true, true] && got == pending && sent == pending)
    }

    #[test]
    fn quickcheck_transfer_roundtrip_and_credit() {
        QuickCheck::new()
            .tests(60)
            .quickcheck(prop_transfer as fn(_, _, _, _, _) -> TestResult);
    }

    #[test]
    fn connection_wide_send_buffer_bounds_all_streams() {
        let cfg = StreamConfig {
            max_send_buffer: 10_000,
            max_total_send_buffer: 1_000,
            ..StreamConfig::default()
        };
        let mut c = Streams::new(true, cfg, PeerStreamParams::from(&StreamConfig::default()));
        let a = c.open().unwrap();
        let b = c.open().unwrap();
        assert_eq!(c.write(a, &[1; 800]), Ok(800));
        assert_eq!(c.write(b, &[2; 800]), Ok(200), "only what the total allows");
        assert_eq!(c.write(b, &[2; 1]), Err(StreamError::Blocked));
        assert_eq!(c.stats().send_buffered, 1_000);
        while c.poll_event().is_some() {}
        // Sending drains the buffers; the blocked stream hears it may write again.
        let mut woke = false;
        for _ in 0..100 {
            if c.poll_frame(300, 0).is_none() {
                break;
            }
            while let Some(e) = c.poll_event() {
                woke |= e == StreamEvent::Writable(b);
            }
        }
        assert!(woke);
        assert!(c.stats().send_buffered <= 500);
        assert!(c.write(b, &[2; 100]).is_ok());
    }
}
