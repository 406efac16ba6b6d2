//! Multiplexed streams with credit-based flow control.
//!
//! [`Streams`] is a sans-IO sub-state-machine owned by the connection. The
//! connection feeds it parsed frame fields (`on_data`, `on_window_update`,
//! `on_reset`) and asks it for frames to send ([`Streams::poll_frame`]); the
//! application opens, writes, reads, finishes and resets streams and learns
//! about changes through [`Streams::poll_event`]. Nothing here reads a clock
//! or draws randomness: time enters as a `now` argument, an
//! [`Instant`](crate::time::Instant) on the caller's monotonic clock.
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
//!
//! # Layout
//!
//! This file holds the per-stream state and [`Streams`] itself; `types.rs` the
//! public value types; `window.rs` the flow-control window shared by streams and
//! the connection; `send.rs` writes, peer credit and cutting DATA frames;
//! `recv.rs` peer DATA and reads (into `recv_buf.rs`); `schedule.rs` frame output
//! by priority; `lifecycle.rs` opening, resets, ending and events; `tests/` the
//! tests by what they check.

mod lifecycle;
mod recv;
mod recv_buf;
mod schedule;
mod send;
#[cfg(test)]
mod tests;
mod types;
mod window;

use crate::ids::StreamId;
use alloc::collections::{BTreeMap, VecDeque};
use bytes::BytesMut;
use recv_buf::RecvBuf;
pub(crate) use recv_buf::{max_allocation as max_recv_allocation, SLACK as RECV_SLACK};
use types::{End, MIN_REFUSE_QUEUE};
pub use types::{
    PeerStreamParams, ReadOutcome, StreamConfig, StreamError, StreamEvent, StreamFrame,
    StreamProtoError, StreamStats, DEFAULT_PRIORITY, MAX_FLOW_LIMIT, PRIORITY_LEVELS,
    STREAM_REFUSED,
};
use window::FlowWindow;

/// One stream's state. Its fields are shared by the concern files (`send.rs`,
/// `recv.rs`, ...), which is why the struct lives here rather than in one of them.
#[derive(Debug)]
struct Stream {
    // Send direction.
    send_buf: BytesMut,
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
    fin_recv: bool,
    readable_queued: bool,
    /// Credit in both directions.
    flow: FlowWindow,
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
            open_sent,
            fin_queued: false,
            fin_sent: false,
            in_send_queue: false,
            prio: DEFAULT_PRIORITY,
            want_writable: false,
            writable_queued: false,
            recv_buf: RecvBuf::default(),
            flow: FlowWindow::new(send_max, window),
            fin_recv: false,
            readable_queued: false,
            ctl_queued: false,
            pending_reset: None,
            end: None,
            closed_polled: false,
        }
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
                self.flow.send.credit() > 0
            }
    }

    /// Whether a WINDOW_UPDATE for this stream is worth sending: never once the
    /// peer finished or the stream ended, as the peer can send nothing more.
    fn update_due(&self) -> bool {
        self.end.is_none() && !self.fin_recv && self.flow.recv.update_due()
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
    map: BTreeMap<StreamId, Stream>,
    next_local: u64,
    /// Lowest peer id that may still be opened.
    next_peer: u64,
    /// Map entries by initiator (ended streams included until forgotten).
    local_count: usize,
    peer_count: usize,
    /// Connection-level credit in both directions.
    conn: FlowWindow,
    /// Streams with a pending RESET or (maybe) WINDOW_UPDATE.
    ctl_queue: VecDeque<StreamId>,
    /// Refused peer ids awaiting their RESET.
    refused: VecDeque<StreamId>,
    refuse_cap: usize,
    /// Locally opened streams whose opening frame is not out yet, in id order.
    open_queue: VecDeque<StreamId>,
    /// Round-robin of opened streams with data (and credit) or a FIN to send.
    send_queue: [VecDeque<StreamId>; PRIORITY_LEVELS],
    events: VecDeque<StreamEvent>,
    /// Bytes in all send buffers, bounded by `max_total_send_buffer`.
    send_buffered: usize,
    /// Streams refused a write because the connection-wide buffer was full; each
    /// is told `Writable` once room comes back. Bounded by the number of streams.
    blocked_on_total: VecDeque<StreamId>,
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
            conn: FlowWindow::new(
                u64::from(peer.initial_conn_window),
                u64::from(cfg.initial_conn_window),
            ),
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

    fn is_local(&self, id: StreamId) -> bool {
        (id.get() % 2 == 1) == self.is_client
    }

    /// Counters and connection-level windows.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            open_streams: self.map.values().filter(|s| s.end.is_none()).count(),
            conn_send_credit: self.conn.send.credit(),
            conn_recv_window: self.conn.recv.size(),
            conn_recv_credit: self.conn.recv.credit(),
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
    pub fn send_window(&self, id: StreamId) -> Option<u64> {
        self.map.get(&id).map(|s| s.flow.send.credit())
    }

    /// Current receive window size of stream `id` (grows with auto-tuning),
    /// or `None` for an unknown stream.
    pub fn recv_window(&self, id: StreamId) -> Option<u64> {
        self.map.get(&id).map(|s| s.flow.recv.size())
    }
}
