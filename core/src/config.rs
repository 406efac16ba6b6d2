//! Connection configuration: every limit, with its default.

use crate::wire::params::{Params, CAPS_V1};
use core::time::Duration;

#[cfg(feature = "alloc")]
use alloc::sync::Arc;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens the connection and sends the first HELLO.
    Client,
    /// Accepts the connection.
    Server,
}

/// Transmit priority of a message, request, response or publication. Control frames
/// (handshake, heartbeats, stream window updates and resets, cancels, close) always
/// go before all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Sent before everything else.
    Urgent = 0,
    /// Before normal traffic.
    High = 1,
    /// The default.
    #[default]
    Normal = 2,
    /// Bulk traffic.
    Low = 3,
}

impl Priority {
    /// Number of levels.
    pub const LEVELS: usize = 4;
}

/// How a subscription behaves when its subscriber falls behind (the server applies it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Publishers are held back until the subscriber catches up.
    #[default]
    Wait = 0,
    /// The oldest queued message is dropped and counted.
    DropOldest = 1,
    /// The new message is dropped and counted.
    DropNewest = 2,
    /// The subscriber is disconnected with `SLOW_CONSUMER`.
    Disconnect = 3,
}

impl OverflowPolicy {
    /// From its wire code.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Wait,
            1 => Self::DropOldest,
            2 => Self::DropNewest,
            3 => Self::Disconnect,
            _ => return None,
        })
    }
}

/// The authenticator a configuration holds.
#[cfg(feature = "alloc")]
pub type AuthHandle = Arc<dyn crate::auth::Authenticator>;
/// The authenticator a configuration holds.
#[cfg(not(feature = "alloc"))]
pub type AuthHandle = &'static dyn crate::auth::Authenticator;

/// What each frame buffered before authentication counts beyond its encoded size
/// against `max_preauth_bytes`: its handle in the queue and its allocation's
/// bookkeeping, so a flood of tiny frames cannot cost far more than the budget.
pub const PREAUTH_FRAME_OVERHEAD: usize = 64;

/// Configuration of one connection. `Config::default()` is a sensible start; every
/// bound below is enforced.
#[derive(Clone)]
pub struct Config {
    /// What we announce in our HELLO: our receive limits and capabilities (default
    /// [`Params::default`] with the version 1 capabilities, a 5 s heartbeat and a
    /// 30 s idle timeout).
    pub params: Params,
    /// Pre-shared-key authentication. A server with an authenticator requires every
    /// client to authenticate; a client with one requires the server to prove the key
    /// (default none).
    pub auth: Option<AuthHandle>,
    /// The handshake must complete within this time (default 10 s).
    pub handshake_timeout: Duration,
    /// A graceful close that has not drained by then is aborted (default 10 s).
    pub drain_timeout: Duration,
    /// How long a finished connection's transport is kept (default 2 s): its last
    /// bytes are written, its write direction shut down, and its input read and
    /// discarded until the peer's end of stream, all within this time from the
    /// moment the connection finished (PROTOCOL.md section 15.5). Closing a socket
    /// with unread input resets it, and a reset can destroy the CLOSE still in
    /// flight. The core does not use it; every runtime adapter applies it.
    pub linger: Duration,
    /// Requests we may have outstanding, also bounded by the peer's limit (default 256).
    pub max_outstanding_requests: usize,
    /// Bytes of frames queued for transmission before sends report `Blocked`
    /// (default 512 KiB).
    pub max_queued_bytes: usize,
    /// Bytes a client may send before authentication completes, counted as each
    /// buffered frame's encoded size plus [`PREAUTH_FRAME_OVERHEAD`] (default 64 KiB).
    pub max_preauth_bytes: usize,
    /// Memory for messages being reassembled from fragments, all together (default
    /// 16 MiB + 68 KiB: one maximal message and the records around it).
    pub max_reassembly_bytes: usize,
    /// Receive memory that zero-copy payloads handed out (`take_payload`,
    /// `take_subject`) may keep alive, all together, including the receive buffer
    /// itself (default 1 MiB). A shared payload keeps its whole receive allocation
    /// alive (up to one maximal record); past this bound payloads are copied
    /// instead, so a peer padding tiny messages into large records, or an
    /// application holding many tiny payloads, cannot pin more than this.
    pub max_pinned_bytes: usize,
    /// Control replies (PONGs) queued for a peer that does not read before closing
    /// with `CONTROL_FLOOD` (default 64).
    pub max_queued_control: usize,
    /// Stream resets the peer may cause per `reset_interval` before `RESET_FLOOD`
    /// (default 200).
    pub max_resets_per_interval: u32,
    /// The interval for `max_resets_per_interval` and `max_empty_frames_per_interval`
    /// (default 1 s).
    pub reset_interval: Duration,
    /// Empty frames (no payload where one is expected) the peer may send per interval
    /// (default 1,000).
    pub max_empty_frames_per_interval: u32,
    /// Credit (messages) each subscription is given, and re-granted as it is consumed
    /// (default 256).
    pub subscription_credit: u32,
    /// Re-grant subscription credit when a delivery's event is polled (default true).
    /// Off, the application calls `Connection::delivery_consumed` itself, e.g. when a
    /// driver queues deliveries for a reader that takes them later.
    pub auto_subscription_credit: bool,
    /// Bytes an application may buffer for sending on one stream (default 256 KiB).
    pub max_stream_send_buffer: usize,
    /// Bytes buffered for sending across all streams of the connection (default
    /// 512 KiB).
    pub max_stream_total_send_buffer: usize,
    /// Upper bound for per-stream receive-window auto-tuning (default 1 MiB).
    pub max_stream_window: u32,
    /// Upper bound for connection receive-window auto-tuning (default 1 MiB).
    pub max_conn_window: u32,
}

impl Default for Config {
    fn default() -> Self {
        let params = Params {
            capabilities: CAPS_V1,
            heartbeat_ms: 5_000,
            idle_timeout_ms: 30_000,
            ..Params::default()
        };
        Config {
            params,
            auth: None,
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            max_outstanding_requests: 256,
            max_queued_bytes: 512 << 10,
            max_preauth_bytes: 64 << 10,
            max_reassembly_bytes: (16 << 20) + (68 << 10),
            max_pinned_bytes: 1 << 20,
            max_queued_control: 64,
            max_resets_per_interval: 200,
            reset_interval: Duration::from_secs(1),
            max_empty_frames_per_interval: 1_000,
            subscription_credit: 256,
            auto_subscription_credit: true,
            max_stream_send_buffer: 256 << 10,
            max_stream_total_send_buffer: 512 << 10,
            max_stream_window: 1 << 20,
            max_conn_window: 1 << 20,
        }
    }
}

impl Config {
    /// The most memory one connection's buffers and queues can hold under this
    /// configuration, in bytes, *excluding* messages in flight: at most one message
    /// being reassembled per `max_concurrent_fragmented` (bounded together by
    /// `max_reassembly_bytes`) and one large message being fragmented out.
    ///
    /// It adds up: the receive buffer (one record), the records that queued events
    /// keep alive (up to 20 events' records), the send queue for small frames, the
    /// control queue (replies are bounded by `max_queued_control`), stream receive
    /// buffers (their data is bounded by the connection receive window,
    /// `max_conn_window` at most, and copied out of its records into buffers that
    /// allocate at most 1.5 times what they hold plus 1 KiB per stream, up to our
    /// `max_concurrent_streams`) and stream send buffers. Frames buffered before
    /// authentication are not added: until the peer authenticates nothing else
    /// fills (no events pin records, no stream receives), and their budget
    /// (`max_preauth_bytes`, each frame's bookkeeping included) is far below the
    /// terms they stand in for. The default configuration stays under 4 MiB:
    ///
    /// ```
    /// assert!(weft_core::Config::default().memory_bound() <= 4 << 20);
    /// ```
    pub fn memory_bound(&self) -> usize {
        let record = self.params.max_record_size as usize + 16;
        let rx = record;
        let events = 20 * record;
        let control = self.max_queued_control * 16 + 4096;
        #[cfg(feature = "alloc")]
        let recv = {
            let window = usize::try_from(self.max_conn_window).unwrap_or(usize::MAX);
            let streams = usize::try_from(self.params.max_concurrent_streams).unwrap_or(usize::MAX);
            crate::stream::max_recv_allocation(window)
                .saturating_add(streams.saturating_mul(crate::stream::RECV_SLACK))
        };
        #[cfg(not(feature = "alloc"))]
        let recv = 0; // no streams without alloc
        let streams = recv + self.max_stream_total_send_buffer;
        rx + events + self.max_queued_bytes + control + streams
    }
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("params", &self.params)
            .field("auth", &self.auth.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_outstanding_requests", &self.max_outstanding_requests)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .finish_non_exhaustive()
    }
}
