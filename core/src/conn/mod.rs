//! The connection state machine.
//!
//! [`Connection`] is the whole protocol for one peer: bytes and timer events go in,
//! bytes to send, events and the next deadline come out. Sub-modules hold one concern
//! each: `handshake` (HELLO/AUTH), `recv` (records in, every frame's handler),
//! `send` (queues and the transmit scheduler), `reasm` (fragment reassembly),
//! `types` (what the application sees).

mod handshake;
mod held;
#[cfg(feature = "alloc")]
mod reasm;
mod recv;
mod send;
mod store;
mod types;

pub use types::{CloseInfo, CloseKind, Data, DataId, Event, Negotiated, Outcome, Side, Stats};

use crate::auth::Transcript;
use crate::config::{Config, OverflowPolicy, Priority, Role};
use crate::error::{Error, ErrorCode, InvalidKind};
use crate::secrets::{Secrets, SEED_LEN};
use crate::time::Instant;
use crate::wire::frame::{self, Frame, Status};
use crate::wire::params::{Params, CAP_PUBSUB};
use crate::wire::preface::{self, Preface};
use crate::wire::record;
#[cfg(feature = "alloc")]
use alloc::collections::VecDeque;
#[cfg(feature = "alloc")]
use bytes::{Bytes, BytesMut};
use core::time::Duration;
#[cfg(feature = "alloc")]
use reasm::Reassembly;
use send::{SendMark, Tx};
use store::{Deadlines, Map, Queue};

/// Fixed capacities of a connection built without `alloc`. The limits announced in
/// the HELLO are lowered to fit them, so a compliant peer never exceeds them.
pub mod capacity {
    /// Largest record payload accepted.
    pub const RECORD: usize = 2048;
    /// Receive buffer: the preface plus one record with header and trailer.
    pub const RX: usize = 8 + 4 + RECORD + 4;
    /// Bytes of queued frames per transmit queue (control, and each priority level).
    pub const TX: usize = 2048;
    /// Entries per table: outstanding requests each way, subscriptions.
    pub const TABLE: usize = 8;
    /// Queued events (room for a full batch plus the events a close produces).
    pub const EVENTS: usize = 32;
}

use held::FrameRef;
#[cfg(feature = "alloc")]
use held::Held;

/// Events queued before input processing pauses until the application polls them.
///
/// Queued events keep their records alive, so this also bounds that memory (see
/// `Config::memory_bound`).
#[cfg(feature = "alloc")]
const EVENT_SOFT_CAP: usize = 16;
/// Events queued before input processing pauses until the application polls them.
#[cfg(not(feature = "alloc"))]
const EVENT_SOFT_CAP: usize = 8;

/// The connection's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's preface and HELLO.
    Handshake,
    /// Server: HELLO answered, waiting for the client's proof.
    AwaitAuth,
    /// Up.
    Established,
    /// CLOSE sent or received gracefully; finishing in-flight work.
    Draining,
    /// An error close: only the queued CLOSE may still be sent.
    Failing,
    /// Over.
    Closed,
}

/// The fixed timer table; `poll_timeout` is its earliest entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Handshake = 0,
    Idle = 1,
    Heartbeat = 2,
    Drain = 3,
}
const TIMERS: usize = 4;

/// One of our outstanding requests.
#[derive(Debug)]
struct OutRequest {
    deadline: Option<Instant>,
    /// Where the REQUEST sits in the transmit queues: a CANCEL may not overtake it.
    mark: SendMark,
}

/// A client subscription.
#[derive(Debug)]
struct ClientSub {
    /// Deliveries the server may still send.
    credit: u32,
    /// Deliveries consumed since the last grant.
    consumed: u32,
    window: u32,
}

/// A peer subscription as the server's connection sees it.
#[derive(Debug)]
struct ServerSub {
    credit: u32,
}

/// Sliding-interval counter for abuse limits.
#[derive(Debug, Default)]
struct RateCounter {
    start: Instant,
    count: u32,
}

impl RateCounter {
    /// Counts one event; true if the limit is exceeded.
    fn hit(&mut self, now: Instant, interval: Duration, limit: u32) -> bool {
        if now.saturating_duration_since(self.start) >= interval {
            self.start = now;
            self.count = 0;
        }
        self.count += 1;
        self.count > limit
    }
}

/// A Weft connection: the sans-IO protocol state machine for one peer.
///
/// # Contract
///
/// - Create it with [`Connection::new`], giving the role, the configuration, the
///   current time and a seed (nonces are derived from it: give each connection a
///   fresh random seed from the operating system).
/// - Time is the caller's monotonic clock in [`Instant`]s; every `now` must be at
///   least the previous one.
/// - **Inputs**: [`handle_input`](Self::handle_input) with bytes read from the
///   transport (it returns how many it took; keep the rest and offer them again
///   after draining events), [`handle_timeout`](Self::handle_timeout) when the
///   instant of [`poll_timeout`](Self::poll_timeout) is reached, and
///   [`handle_eof`](Self::handle_eof) when the transport ends.
/// - **After every input and every command**, drain: call
///   [`poll_event`](Self::poll_event) until `None` (read each event's data with
///   [`data`](Self::data) before the next `poll_event`), then
///   [`poll_transmit`](Self::poll_transmit) until it returns 0 and write those bytes
///   in order, then re-arm the timer from [`poll_timeout`](Self::poll_timeout).
/// - **Commands** ([`send_message`](Self::send_message), [`request`](Self::request),
///   [`respond`](Self::respond), [`subscribe`](Self::subscribe),
///   [`publish`](Self::publish), stream calls, [`close`](Self::close)...) may be called
///   any time between inputs. A command that returns an error changes nothing.
/// - Every call does work bounded by its input; nothing grows without a configured
///   bound; a misbehaving peer gets a CLOSE with an error code and never a panic.
///
/// ```
/// use weft_core::{Config, Instant, Role, conn::{Connection, Event}};
/// let now = Instant::ZERO;
/// let mut client = Connection::new(Role::Client, Config::default(), now, [1; 32]);
/// let mut server = Connection::new(Role::Server, Config::default(), now, [2; 32]);
/// client.send_message(b"hello", Default::default()).unwrap(); // pipelined
/// let mut buf = vec![0u8; 1 << 17];
/// let mut got = None;
/// for _ in 0..4 {
///     let n = client.poll_transmit(now, &mut buf);
///     assert_eq!(server.handle_input(now, &buf[..n]), n);
///     let n = server.poll_transmit(now, &mut buf);
///     assert_eq!(client.handle_input(now, &buf[..n]), n);
///     while let Some(ev) = server.poll_event() {
///         if let Event::Message { data } = ev {
///             got = Some(server.data(data).unwrap().payload.to_vec());
///         }
///     }
///     while client.poll_event().is_some() {}
/// }
/// assert_eq!(got.as_deref(), Some(&b"hello"[..]));
/// ```
pub struct Connection {
    role: Role,
    config: Config,
    /// Nonce, dummy secret and PING tokens, all derived from the seed.
    secrets: Secrets,
    phase: Phase,
    // Handshake.
    local_preface: Preface,
    preface_sent: bool,
    /// Our HELLO has been handed out: later records may drop the CRC if negotiated.
    hello_sent: bool,
    peer_preface: Option<Preface>,
    transcript: Transcript,
    nonce: [u8; frame::NONCE_LEN],
    /// The client hello's key id, kept for verifying the client's proof.
    peer_key_id: heapless::Vec<u8, { frame::MAX_KEY_ID }>,
    version: u8,
    peer: Option<Params>,
    negotiated: Option<Negotiated>,
    /// Server: frames pipelined by the client before its proof arrived.
    #[cfg(feature = "alloc")]
    preauth: VecDeque<Bytes>,
    #[cfg(feature = "alloc")]
    preauth_bytes: usize,
    #[cfg(feature = "alloc")]
    replay: VecDeque<Bytes>,
    // Receive.
    #[cfg(feature = "alloc")]
    rx: BytesMut,
    /// Payload of the record being read.
    #[cfg(feature = "alloc")]
    record: Bytes,
    /// Sequence number of `record` (counts records read).
    #[cfg(feature = "alloc")]
    record_seq: u64,
    /// Records that queued events refer to.
    #[cfg(feature = "alloc")]
    held: Held,
    #[cfg(not(feature = "alloc"))]
    rx: heapless::Vec<u8, { capacity::RX }>,
    /// Payload of the record being read, as a span of `rx`.
    #[cfg(not(feature = "alloc"))]
    record: core::ops::Range<usize>,
    /// Bytes of `rx` holding records already read, released once no event refers
    /// to them.
    #[cfg(not(feature = "alloc"))]
    rx_consumed: usize,
    record_pos: usize,
    #[cfg(feature = "alloc")]
    reasm: Reassembly,
    // Events.
    events: Queue<(Event, Option<FrameRef>)>,
    current: Option<(DataId, FrameRef)>,
    next_data: u64,
    // Send.
    tx: Tx,
    blocked: bool,
    pongs_queued: usize,
    ping_out: Option<(u64, Instant)>,
    // Requests.
    next_req_id: u64,
    out_reqs: Map<OutRequest>,
    out_deadlines: Deadlines,
    max_peer_req: u64,
    in_reqs: Map<Option<Instant>>,
    in_deadlines: Deadlines,
    // Pub/sub.
    next_sub_id: u64,
    client_subs: Map<ClientSub>,
    max_peer_sub: u64,
    server_subs: Map<ServerSub>,
    dropped_reported: Map<u64>,
    /// CANCELs waiting for their REQUEST to leave, so they never overtake it
    /// (control frames go first).
    deferred_cancels: Map<SendMark>,
    // Streams.
    #[cfg(feature = "alloc")]
    streams: Option<crate::stream::Streams>,
    // Abuse counters.
    #[cfg(feature = "alloc")]
    resets: RateCounter,
    empties: RateCounter,
    // Time.
    timers: [Option<Instant>; TIMERS],
    last_rx: Instant,
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Option<Duration>,
    // Close.
    close_sent: bool,
    /// A graceful CLOSE decided but waiting for the queued data to leave first.
    pending_close: Option<(ErrorCode, heapless::String<{ frame::MAX_REASON }>)>,
    close_received: bool,
    first_close: Option<(ErrorCode, Side)>,
    peer_last_request: u64,
    our_last_request: u64,
    close_reason: heapless::String<{ frame::MAX_REASON }>,
    closed_event: bool,
    stats: Stats,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A transmit buffer this large always holds the preface and a record with the
    /// largest frame any peer may allow (65 535 bytes of payload).
    pub const MIN_TRANSMIT_BUFFER: usize =
        preface::LEN + record::HEADER_LEN + record::MAX_PAYLOAD + record::TRAILER_LEN;

    /// A new connection. The client queues its preface and HELLO at once, so requests
    /// and messages may be pipelined right behind them.
    ///
    /// `seed` is the connection's only source of randomness: its nonce, the secret
    /// behind the dummy key for unknown key ids and its PING tokens are derived from
    /// it with HKDF-SHA256 ([`crate::secrets`], spec section 7.5). Give every
    /// connection 32 fresh bytes from the operating system's random source; a fixed
    /// seed gives fixed bytes, for tests.
    pub fn new(role: Role, config: Config, now: Instant, seed: [u8; SEED_LEN]) -> Self {
        #[cfg(not(feature = "alloc"))]
        let config = fit_to_capacity(config);
        let secrets = Secrets::new(&seed);
        let nonce = secrets.nonce();
        #[cfg(feature = "alloc")]
        let reasm = Reassembly::new(
            usize::try_from(config.params.max_message_size).unwrap_or(usize::MAX),
            usize::try_from(config.params.max_concurrent_fragmented).unwrap_or(usize::MAX),
            config.max_reassembly_bytes,
        );
        let mut timers = [None; TIMERS];
        timers[Timer::Handshake as usize] = Some(now + config.handshake_timeout);
        let mut c = Connection {
            role,
            secrets,
            phase: Phase::Handshake,
            local_preface: Preface::new(preface::VERSION_1, preface::VERSION_1),
            preface_sent: false,
            hello_sent: false,
            peer_preface: None,
            transcript: Transcript::new(),
            nonce,
            peer_key_id: heapless::Vec::new(),
            version: 0,
            peer: None,
            negotiated: None,
            #[cfg(feature = "alloc")]
            preauth: VecDeque::new(),
            #[cfg(feature = "alloc")]
            preauth_bytes: 0,
            #[cfg(feature = "alloc")]
            replay: VecDeque::new(),
            #[cfg(feature = "alloc")]
            rx: BytesMut::new(),
            #[cfg(feature = "alloc")]
            record: Bytes::new(),
            #[cfg(feature = "alloc")]
            record_seq: 0,
            #[cfg(feature = "alloc")]
            held: Held::default(),
            #[cfg(not(feature = "alloc"))]
            rx: heapless::Vec::new(),
            #[cfg(not(feature = "alloc"))]
            record: 0..0,
            #[cfg(not(feature = "alloc"))]
            rx_consumed: 0,
            record_pos: 0,
            #[cfg(feature = "alloc")]
            reasm,
            events: Queue::new(),
            current: None,
            next_data: 0,
            tx: Tx::default(),
            blocked: false,
            pongs_queued: 0,
            ping_out: None,
            next_req_id: 1,
            out_reqs: Map::new(),
            out_deadlines: Deadlines::new(),
            max_peer_req: 0,
            in_reqs: Map::new(),
            in_deadlines: Deadlines::new(),
            next_sub_id: 1,
            client_subs: Map::new(),
            max_peer_sub: 0,
            server_subs: Map::new(),
            dropped_reported: Map::new(),
            deferred_cancels: Map::new(),
            #[cfg(feature = "alloc")]
            streams: None,
            #[cfg(feature = "alloc")]
            resets: RateCounter::default(),
            empties: RateCounter::default(),
            timers,
            last_rx: now,
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
            close_sent: false,
            pending_close: None,
            close_received: false,
            first_close: None,
            peer_last_request: u64::MAX,
            our_last_request: u64::MAX,
            close_reason: heapless::String::new(),
            closed_event: false,
            stats: Stats::default(),
            config,
        };
        if c.config.params.validate().is_err() {
            c.fail(
                now,
                ErrorCode::INTERNAL_ERROR,
                "invalid local configuration",
            );
            return c;
        }
        if role == Role::Client {
            c.send_client_hello();
        }
        c
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The handshake's outcome, once [`Event::Connected`] was emitted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True once the connection is fully over and its last bytes were handed out.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while the handshake is done and the connection not closing.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The reason text of the CLOSE that ended (or is ending) the connection.
    pub fn close_reason(&self) -> &str {
        &self.close_reason
    }

    /// Counters and current windows.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.frames_sent = self.tx.frames_sent;
        s.rtt = self.srtt;
        s.rtt_var = self.srtt.map(|_| self.rttvar);
        s.min_rtt = self.min_rtt;
        s.queued_bytes = (self.tx.queued_bytes() + self.tx.control.len()) as u64;
        #[cfg(feature = "alloc")]
        {
            s.reassembly_bytes = self.reasm.memory() as u64;
        }
        #[cfg(feature = "alloc")]
        if let Some(st) = &self.streams {
            let ss = st.stats();
            s.stream_send_window = ss.conn_send_credit;
            s.stream_recv_window = ss.conn_recv_window;
        }
        s
    }

    // ----- inputs -----

    /// Takes bytes read from the transport; returns how many were taken. Fewer than
    /// offered means events must be drained first; offer the rest again afterwards.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        if matches!(self.phase, Phase::Closed | Phase::Failing) {
            // Nothing more is read; the bytes are consumed so the caller can move on.
            return data.len();
        }
        #[cfg(not(feature = "alloc"))]
        self.release_rx();
        // Buffer at most one maximal record (plus the preface) ahead of processing.
        let limit = preface::LEN
            + record::HEADER_LEN
            + self.config.params.max_record_size as usize
            + record::TRAILER_LEN;
        #[cfg(not(feature = "alloc"))]
        let limit = limit.min(capacity::RX);
        let room = limit.saturating_sub(self.rx.len());
        let take = room.min(data.len());
        #[cfg(feature = "alloc")]
        self.rx.extend_from_slice(&data[..take]);
        #[cfg(not(feature = "alloc"))]
        let _ = self.rx.extend_from_slice(&data[..take]);
        self.stats.bytes_received += take as u64;
        if take > 0 {
            self.last_rx = now;
            self.arm_idle(now);
        }
        self.process(now);
        take
    }

    /// The transport ended (EOF or reset).
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        if self.phase == Phase::Closed {
            return;
        }
        let graceful_done = self.close_received && self.close_sent;
        self.enter_closed(if graceful_done {
            CloseInfo {
                code: self.first_close.map_or(ErrorCode::NO_ERROR, |c| c.0),
                initiator: self.first_close.map_or(Side::Peer, |c| c.1),
                kind: CloseKind::Graceful,
            }
        } else if let Some((code, side)) = self.first_close.filter(|_| self.phase == Phase::Failing)
        {
            CloseInfo {
                code,
                initiator: side,
                kind: CloseKind::Error,
            }
        } else {
            CloseInfo {
                code: ErrorCode::NO_ERROR,
                initiator: Side::Peer,
                kind: CloseKind::Lost,
            }
        });
    }

    /// Call when the instant of [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers[Timer::Handshake as usize]) {
            self.timers[Timer::Handshake as usize] = None;
            if matches!(self.phase, Phase::Handshake | Phase::AwaitAuth) {
                self.fail(now, ErrorCode::HANDSHAKE_TIMEOUT, "handshake timed out");
                return;
            }
        }
        if due(self.timers[Timer::Idle as usize]) {
            self.timers[Timer::Idle as usize] = None;
            self.fail(now, ErrorCode::IDLE_TIMEOUT, "idle timeout");
            return;
        }
        if due(self.timers[Timer::Drain as usize]) {
            self.timers[Timer::Drain as usize] = None;
            self.fail(now, ErrorCode::DRAIN_TIMEOUT, "drain timed out");
            return;
        }
        if due(self.timers[Timer::Heartbeat as usize]) {
            self.timers[Timer::Heartbeat as usize] = None;
            if self.ping_out.is_none() && matches!(self.phase, Phase::Established | Phase::Draining)
            {
                let token = self.secrets.next_ping_token();
                self.ping_out = Some((token, now));
                self.push_control(&Frame::Ping { token });
            }
            self.arm_heartbeat(now);
        }
        // Request deadlines, ours and the peer's; bounded by the request caps.
        while let Some((t, id)) = self.out_deadlines.first() {
            if t > now {
                break;
            }
            self.out_deadlines.pop_first();
            if let Some(r) = self.out_reqs.remove(id) {
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
        while let Some((t, id)) = self.in_deadlines.first() {
            if t > now {
                break;
            }
            self.in_deadlines.pop_first();
            if self.in_reqs.remove(id).is_some() {
                self.push_event(Event::RequestCancelled { id }, None);
            }
        }
        self.check_drained(now);
    }

    // ----- outputs -----

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let fixed = self.timers.iter().flatten().min().copied();
        let req = self.out_deadlines.first().map(|d| d.0);
        let peer = self.in_deadlines.first().map(|d| d.0);
        [fixed, req, peer].into_iter().flatten().min()
    }

    /// The next event, if any. The data of the returned event stays readable with
    /// [`data`](Self::data) until the next call.
    pub fn poll_event(&mut self) -> Option<Event> {
        #[cfg(feature = "alloc")]
        if let Some((_, r)) = self.current.take() {
            self.held.release(r);
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.current = None;
        }
        #[cfg(not(feature = "alloc"))]
        self.release_rx();
        if self.events.is_empty() && !matches!(self.phase, Phase::Closed | Phase::Failing) {
            // Input processing paused on a full event queue resumes here.
            let now = self.last_rx;
            self.process(now);
        }
        let (ev, bytes) = self.events.pop_front()?;
        match ev {
            Event::Delivery { sub_id, .. } if self.config.auto_subscription_credit => {
                let _ = self.delivery_consumed(sub_id);
            }
            // Until now a reset stream's reads reported the peer's code.
            #[cfg(feature = "alloc")]
            Event::StreamClosed(id) => {
                if let Some(s) = self.streams.as_mut() {
                    s.closed_seen(id);
                }
            }
            _ => {}
        }
        match (bytes, ev.data_id()) {
            (Some(b), Some(id)) => self.current = Some((id, b)),
            #[cfg(feature = "alloc")]
            (Some(b), None) => self.held.release(b),
            _ => {}
        }
        Some(ev)
    }

    /// Tells the connection the application consumed one delivery of `sub_id`, so
    /// credit can return to the server. Called by `poll_event` unless
    /// `Config::auto_subscription_credit` is off. Credit returns as deliveries are
    /// consumed, not as they arrive, so a subscriber that stops reading holds the
    /// server back instead of being buried.
    ///
    /// Returns true if credit was queued for sending (call `poll_transmit` soon).
    pub fn delivery_consumed(&mut self, sub_id: u64) -> bool {
        let Some(s) = self.client_subs.get_mut(sub_id) else {
            return false;
        };
        s.consumed += 1;
        // Re-grant once half the window is used, so a subscriber that keeps up never
        // waits for credit.
        if s.consumed * 2 >= s.window {
            let inc = s.consumed;
            s.credit += inc;
            s.consumed = 0;
            self.push_control(&Frame::SubCredit {
                sub_id,
                increment: u64::from(inc),
            });
            return true;
        }
        false
    }

    /// Writes bytes to send into `buf`, returning how many; 0 when there is nothing
    /// to send or `buf` cannot hold the next frame in a record. A buffer of
    /// [`Connection::MIN_TRANSMIT_BUFFER`] bytes always makes progress, whatever the
    /// peer's limits; smaller buffers give smaller records.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        if self.phase == Phase::Closed {
            return 0;
        }
        let mut pos = 0;
        if !self.preface_sent {
            if buf.len() < preface::LEN {
                return 0;
            }
            use zerocopy::IntoBytes;
            buf[..preface::LEN].copy_from_slice(self.local_preface.as_bytes());
            self.preface_sent = true;
            pos = preface::LEN;
        }
        let (max_record, max_frame) = self.peer_limits();
        #[cfg(feature = "alloc")]
        {
            self.tx.max_fragmenting = self.peer.map_or(0, |p| {
                usize::try_from(p.max_concurrent_fragmented).unwrap_or(usize::MAX)
            });
        }
        // The CRC is dropped only once both HELLOs said so and ours is already out,
        // so the peer never sees a CRC-less record before it could know.
        let integrity = !(self.hello_sent && self.integrity_off());
        // Before the handshake completes only handshake frames (and the client's
        // pipelined data) may leave; the server sends data only once authenticated.
        let data_allowed = match self.phase {
            Phase::Established | Phase::Draining => true,
            Phase::Handshake | Phase::AwaitAuth => self.role == Role::Client,
            Phase::Failing | Phase::Closed => false,
        };
        self.queue_pending_close();
        // Streams with nothing to send are skipped outright: the scheduler would
        // otherwise ask them at every level for every frame.
        #[cfg(feature = "alloc")]
        let mut streams = StreamSource(self.streams.as_mut().filter(|s| s.has_pending()), now);
        #[cfg(not(feature = "alloc"))]
        let mut streams = send::NoStreams;
        pos += self.tx.fill(
            &mut buf[pos..],
            max_record,
            max_frame,
            integrity,
            &mut streams,
            data_allowed,
        );
        self.release_deferred();
        // The data ahead of a graceful CLOSE is out: the CLOSE goes in this call.
        if self.pending_close.is_some() && self.tx.queued_bytes() == 0 && pos < buf.len() {
            self.queue_pending_close();
            let (max_record, max_frame) = self.peer_limits();
            let integrity = !(self.hello_sent && self.integrity_off());
            pos += self.tx.fill(
                &mut buf[pos..],
                max_record,
                max_frame,
                integrity,
                &mut send::NoStreams,
                true,
            );
        }
        if self.tx.control.is_empty() {
            self.pongs_queued = 0;
            // Only a HELLO actually queued counts, not an empty queue before it.
            self.hello_sent = self.peer.is_some() || self.role == Role::Client && self.preface_sent;
        }
        self.stats.bytes_sent += pos as u64;
        if self.blocked
            && self.tx.queued_bytes() - self.tx.queued_bulk() < self.config.max_queued_bytes / 2
            && self.tx.queued_bulk() < self.config.max_queued_bytes / 2
        {
            self.blocked = false;
            self.push_event(Event::Writable, None);
        }
        if self.phase == Phase::Failing && self.tx.control.is_empty() {
            self.phase = Phase::Closed;
        }
        self.check_drained(now);
        pos
    }

    /// The data of the event last returned by [`poll_event`](Self::poll_event).
    pub fn data(&self, id: DataId) -> Option<Data<'_>> {
        let (cur, fr) = self.current.as_ref()?;
        if *cur != id {
            return None;
        }
        let bytes = self.frame_bytes(fr);
        let (t, _, hdr) = frame::decode_header(bytes).ok()?;
        if t == frame::ty::MESSAGE {
            return Some(Data {
                subject: &[],
                payload: &bytes[hdr..],
                text: "",
            });
        }
        let f = Frame::decode(t, &bytes[hdr..]).ok()?;
        Some(match f {
            Frame::Message { payload } => Data {
                subject: &[],
                payload,
                text: "",
            },
            Frame::Request {
                subject, payload, ..
            }
            | Frame::Publish {
                topic: subject,
                payload,
            }
            | Frame::Deliver {
                topic: subject,
                payload,
                ..
            } => Data {
                subject,
                payload,
                text: "",
            },
            Frame::Response {
                status, payload, ..
            } => Data {
                subject: &[],
                payload,
                text: match status {
                    Status::Error { message, .. } => message,
                    _ => "",
                },
            },
            Frame::Subscribe { filter, group, .. } => Data {
                subject: filter,
                payload: group,
                text: "",
            },
            _ => return None,
        })
    }

    /// The payload of the current event as shared bytes, without copying.
    #[cfg(feature = "alloc")]
    pub fn take_payload(&self, id: DataId) -> Option<Bytes> {
        let d = self.data(id)?;
        let (_, r) = self.current.as_ref()?;
        let (_, shared) = self.held.get(r)?;
        Some(shared.slice_ref(d.payload))
    }

    /// The subject (or topic) of the current event as shared bytes, without
    /// copying; empty shared bytes for events without one.
    #[cfg(feature = "alloc")]
    pub fn take_subject(&self, id: DataId) -> Option<Bytes> {
        let d = self.data(id)?;
        if d.subject.is_empty() {
            return Some(Bytes::new());
        }
        let (_, r) = self.current.as_ref()?;
        let (_, shared) = self.held.get(r)?;
        Some(shared.slice_ref(d.subject))
    }

    // ----- helpers shared by the sub-modules -----

    fn peer_limits(&self) -> (usize, usize) {
        match &self.peer {
            Some(p) => (p.max_record_size as usize, p.max_frame_size as usize),
            None => (record::MIN_MAX_PAYLOAD, record::MIN_MAX_PAYLOAD),
        }
    }

    /// True when both HELLOs (ours and the peer's, once received) waive the CRC.
    fn integrity_off(&self) -> bool {
        !self.config.params.integrity && self.peer.is_some_and(|p| !p.integrity)
    }

    /// The bytes of a received frame.
    fn frame_bytes<'a>(&'a self, fr: &'a FrameRef) -> &'a [u8] {
        #[cfg(feature = "alloc")]
        {
            self.held.get(fr).map_or(&[], |(f, _)| f)
        }
        #[cfg(not(feature = "alloc"))]
        {
            &self.rx[fr.clone()]
        }
    }

    fn push_event(&mut self, ev: Event, data: Option<FrameRef>) {
        // With fixed capacities the queue is sized for the worst burst (see
        // `capacity::EVENTS`): processing pauses at EVENT_SOFT_CAP.
        let pushed = self.events.push_back((ev, data));
        debug_assert!(pushed.is_ok(), "event queue sized for the worst case");
    }

    /// Queues a graceful CLOSE waiting for the data lanes to empty.
    fn queue_pending_close(&mut self) {
        if self.tx.queued_bytes() > 0 {
            return;
        }
        if let Some((code, reason)) = self.pending_close.take() {
            self.push_control(&Frame::Close {
                code,
                last_request_id: self.our_last_request,
                reason: &reason,
            });
        }
    }

    /// Sends CANCEL for one of our requests, but never ahead of the REQUEST itself.
    fn send_cancel(&mut self, id: u64, mark: SendMark) {
        if self.tx.is_sent(mark) {
            self.push_control(&Frame::Cancel { id });
        } else {
            // Bounded by the request table the entry came from.
            let _ = self.deferred_cancels.insert(id, mark);
        }
    }

    /// Queues the CANCELs whose REQUEST has now left.
    fn release_deferred(&mut self) {
        if !self.deferred_cancels.is_empty() {
            for id in self.deferred_cancels.keys_above(0) {
                if let Some(&m) = self.deferred_cancels.get(id) {
                    if self.tx.is_sent(m) {
                        self.deferred_cancels.remove(id);
                        self.push_control(&Frame::Cancel { id });
                    }
                }
            }
        }
    }

    /// Queues a control frame. A full fixed-capacity queue means the peer is not
    /// reading while making us answer: that is a flood.
    fn push_control(&mut self, f: &Frame<'_>) {
        if !self.tx.control.push(f) {
            self.fail(
                Instant::ZERO,
                ErrorCode::CONTROL_FLOOD,
                "control queue full",
            );
        }
    }

    fn new_data_id(&mut self) -> DataId {
        self.next_data += 1;
        DataId(self.next_data)
    }

    fn arm_idle(&mut self, now: Instant) {
        if let Some(t) = self.negotiated.and_then(|n| n.idle_timeout) {
            self.timers[Timer::Idle as usize] = Some(now + t);
        }
    }

    fn arm_heartbeat(&mut self, now: Instant) {
        self.timers[Timer::Heartbeat as usize] =
            self.negotiated.and_then(|n| n.heartbeat).map(|h| now + h);
    }

    fn cap(&self, bit: u64) -> bool {
        self.negotiated.is_some_and(|n| n.capabilities & bit != 0)
    }

    /// Closes at once with an error: queue CLOSE, drop everything else.
    fn fail(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        let _ = now;
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return;
        }
        self.stats.errors += 1;
        self.stats.unsent += self.tx.data_frames_queued() as u64;
        self.tx.clear();
        // Our preface may not be out yet: it still goes first (poll_transmit).
        let _ = self.tx.control.push(&Frame::Close {
            code,
            last_request_id: self.max_peer_req,
            reason,
        });
        self.close_sent = true;
        self.set_reason(reason);
        self.first_close.get_or_insert((code, Side::Local));
        self.phase = Phase::Failing;
        self.timers = [None; TIMERS];
        self.emit_closed(CloseInfo {
            code,
            initiator: Side::Local,
            kind: CloseKind::Error,
        });
    }

    fn set_reason(&mut self, reason: &str) {
        self.close_reason.clear();
        let mut end = reason.len().min(frame::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self.close_reason.push_str(&reason[..end]);
    }

    fn emit_closed(&mut self, info: CloseInfo) {
        if !self.closed_event {
            self.closed_event = true;
            // Pending requests will never be answered.
            let ids = self.out_reqs.keys_above(0);
            self.out_reqs.clear();
            self.out_deadlines.clear();
            // Only a graceful close promises the peer did not process them.
            let outcome = if info.kind == CloseKind::Graceful {
                Outcome::NotProcessed
            } else {
                Outcome::Lost
            };
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
            self.push_event(Event::Closed(info), None);
        }
    }

    fn enter_closed(&mut self, info: CloseInfo) {
        if self.phase != Phase::Failing {
            self.stats.unsent += self.tx.data_frames_queued() as u64;
            self.tx.clear();
        }
        self.phase = Phase::Closed;
        self.timers = [None; TIMERS];
        self.emit_closed(info);
    }

    /// A graceful close completes when both CLOSEs crossed and nothing is in flight.
    fn check_drained(&mut self, now: Instant) {
        let _ = now;
        if self.phase != Phase::Draining
            || !(self.close_sent && self.close_received)
            || self.pending_close.is_some()
        {
            return;
        }
        #[cfg(feature = "alloc")]
        let streams_open = self
            .streams
            .as_ref()
            .is_some_and(|s| s.stats().open_streams > 0);
        #[cfg(not(feature = "alloc"))]
        let streams_open = false;
        if self.out_reqs.is_empty() && self.in_reqs.is_empty() && !streams_open && self.tx.is_idle()
        {
            let (code, side) = self
                .first_close
                .unwrap_or((ErrorCode::NO_ERROR, Side::Local));
            self.enter_closed(CloseInfo {
                code,
                initiator: side,
                kind: CloseKind::Graceful,
            });
        }
    }

    fn can_send_app(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Established => Ok(()),
            Phase::Handshake | Phase::AwaitAuth if self.role == Role::Client => Ok(()),
            Phase::Handshake | Phase::AwaitAuth => Err(Error::NotConnected),
            _ => Err(Error::Closed),
        }
    }

    /// Checks size and queue bounds for a data frame and queues it: commit on success.
    fn queue_data(&mut self, prio: Priority, f: &Frame<'_>) -> Result<SendMark, Error> {
        let n = f.encoded_len();
        let (_, max_frame) = self.peer_limits();
        let max_msg = match &self.peer {
            // A peer that reassembles nothing takes only whole frames.
            Some(p) if p.max_concurrent_fragmented == 0 => max_frame,
            Some(p) => usize::try_from(p.max_message_size).unwrap_or(usize::MAX),
            // Before the peer's limits are known only unfragmented frames may go.
            None => max_frame,
        };
        // Without a heap nothing is fragmented either.
        #[cfg(not(feature = "alloc"))]
        let max_msg = max_msg.min(max_frame);
        if n > max_msg {
            return Err(if self.peer.is_none() {
                Error::NotConnected
            } else {
                Error::MessageTooLarge
            });
        }
        // Small frames and fragmenting ones have separate budgets, so a queued large
        // message never blocks small sends; one large message is always accepted
        // when none is waiting, which bounds the queue by max_queued_bytes plus one
        // maximal message.
        let bulk = self.tx.queued_bulk();
        let used = if n > max_frame {
            bulk
        } else {
            self.tx.queued_bytes() - bulk
        };
        if used > 0 && used + n > self.config.max_queued_bytes {
            self.blocked = true;
            return Err(Error::Blocked);
        }
        let Some(mark) = self.tx.push_data_sized(prio, f, n, max_frame) else {
            self.blocked = true;
            return Err(Error::Blocked);
        };
        self.stats.messages_sent += 1;
        Ok(mark)
    }

    // ----- application commands -----

    /// Queues a one-way message.
    pub fn send_message(&mut self, payload: &[u8], prio: Priority) -> Result<(), Error> {
        self.can_send_app()?;
        self.queue_data(prio, &Frame::Message { payload })
            .map(|_| ())
    }

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
    ) -> Result<u64, Error> {
        self.can_send_app()?;
        if subject.len() > frame::MAX_SUBJECT {
            return Err(Error::Invalid(InvalidKind::TooLong));
        }
        let peer_cap = self.peer.map_or(u64::MAX, |p| p.max_concurrent_requests) as usize;
        if self.out_reqs.len() >= self.config.max_outstanding_requests.min(peer_cap) {
            self.blocked = true;
            return Err(Error::Blocked);
        }
        let id = self.next_req_id;
        let timeout_ms = timeout.map_or(0, |t| {
            let ms = t.as_micros().div_ceil(1000);
            u64::try_from(ms).unwrap_or(u64::MAX).max(1)
        });
        let mark = self.queue_data(
            prio,
            &Frame::Request {
                id,
                timeout_ms,
                subject,
                payload,
            },
        )?;
        self.next_req_id += 1;
        let deadline = timeout.map(|t| now + t);
        if let Some(d) = deadline {
            self.out_deadlines.insert(d, id);
        }
        // The cap was checked above, so a fixed-capacity table has room.
        let _ = self.out_reqs.insert(id, OutRequest { deadline, mark });
        Ok(id)
    }

    /// Cancels one of our outstanding requests: the responder is told, and no
    /// response event will follow.
    pub fn cancel(&mut self, id: u64) -> Result<(), Error> {
        let r = self.out_reqs.remove(id).ok_or(Error::UnknownId)?;
        if let Some(d) = r.deadline {
            self.out_deadlines.remove(d, id);
        }
        self.send_cancel(id, r.mark);
        Ok(())
    }

    /// Answers a peer request.
    pub fn respond(
        &mut self,
        id: u64,
        outcome: Outcome,
        message: &str,
        payload: &[u8],
        prio: Priority,
    ) -> Result<(), Error> {
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return Err(Error::Closed);
        }
        let deadline = *self.in_reqs.get(id).ok_or(Error::UnknownId)?;
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
                id,
                status,
                payload,
            },
        )?;
        self.in_reqs.remove(id);
        if let Some(d) = deadline {
            self.in_deadlines.remove(d, id);
        }
        Ok(())
    }

    /// (Client) Subscribes to a topic filter, optionally in a queue group; returns
    /// the subscription id. Deliveries arrive as [`Event::Delivery`]; credit is
    /// re-granted automatically as they are polled.
    pub fn subscribe(
        &mut self,
        filter: &str,
        group: Option<&str>,
        policy: OverflowPolicy,
    ) -> Result<u64, Error> {
        self.can_send_app()?;
        if self.role != Role::Client {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if self.negotiated.is_some() && !self.cap(CAP_PUBSUB) {
            return Err(Error::NotNegotiated);
        }
        crate::topic::validate_filter(filter).map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        if let Some(g) = group {
            crate::topic::validate_queue_group(g)
                .map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        }
        let peer_cap = self.peer.map_or(u64::MAX, |p| p.max_subscriptions) as usize;
        #[cfg(not(feature = "alloc"))]
        let peer_cap = peer_cap.min(capacity::TABLE);
        if self.client_subs.len() >= peer_cap {
            return Err(Error::Blocked);
        }
        let window = self.config.subscription_credit.max(1);
        let id = self.next_sub_id;
        let f = Frame::Subscribe {
            sub_id: id,
            policy: policy as u8,
            credit: u64::from(window),
            filter: filter.as_bytes(),
            group: group.unwrap_or("").as_bytes(),
        };
        self.queue_data(Priority::Urgent, &f)?;
        self.next_sub_id += 1;
        let _ = self.client_subs.insert(
            id,
            ClientSub {
                credit: window,
                consumed: 0,
                window,
            },
        );
        Ok(id)
    }

    /// (Client) Ends a subscription. Deliveries already in flight are discarded.
    pub fn unsubscribe(&mut self, sub_id: u64) -> Result<(), Error> {
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return Err(Error::Closed);
        }
        self.client_subs.remove(sub_id).ok_or(Error::UnknownId)?;
        // Same lane as SUBSCRIBE, so it can neither overtake its SUBSCRIBE nor be
        // overtaken by a later one (the server's subscription count stays exact).
        // Tiny and bounded by the subscriptions: not held to the send budget.
        let (_, max_frame) = self.peer_limits();
        let _ = self
            .tx
            .push_data(Priority::Urgent, &Frame::Unsubscribe { sub_id }, max_frame);
        Ok(())
    }

    /// (Client) Publishes on a topic.
    pub fn publish(&mut self, topic: &str, payload: &[u8], prio: Priority) -> Result<(), Error> {
        self.can_send_app()?;
        if self.role != Role::Client {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if self.negotiated.is_some() && !self.cap(CAP_PUBSUB) {
            return Err(Error::NotNegotiated);
        }
        crate::topic::validate_topic(topic).map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        self.queue_data(
            prio,
            &Frame::Publish {
                topic: topic.as_bytes(),
                payload,
            },
        )
        .map(|_| ())
    }

    /// (Server) Delivers a routed message to a peer subscription, consuming one
    /// credit; `Blocked` when the subscription has none left.
    pub fn deliver(
        &mut self,
        sub_id: u64,
        topic: &[u8],
        payload: &[u8],
        prio: Priority,
    ) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if !matches!(self.phase, Phase::Established | Phase::Draining) {
            return Err(Error::Closed);
        }
        let credit = self.server_subs.get(sub_id).ok_or(Error::UnknownId)?.credit;
        if credit == 0 {
            return Err(Error::Blocked);
        }
        self.queue_data(
            prio,
            &Frame::Deliver {
                sub_id,
                topic,
                payload,
            },
        )?;
        if let Some(s) = self.server_subs.get_mut(sub_id) {
            s.credit -= 1;
        }
        Ok(())
    }

    /// (Server) Tells the subscriber how many messages its overflow policy dropped.
    pub fn report_dropped(&mut self, sub_id: u64, total: u64) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if !self.server_subs.contains(sub_id) {
            return Err(Error::UnknownId);
        }
        self.push_control(&Frame::SubDropped { sub_id, total });
        self.stats.dropped = self.stats.dropped.max(total);
        Ok(())
    }

    /// Starts closing. [`ErrorCode::NO_ERROR`] and application codes drain: no new
    /// requests, in-flight work finishes, then [`Event::Closed`]. Other codes close at
    /// once.
    pub fn close(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        if matches!(self.phase, Phase::Failing | Phase::Closed) || self.close_sent {
            return;
        }
        if !code.is_graceful() || self.phase != Phase::Established {
            self.fail(now, code, reason);
            return;
        }
        self.send_close(now, code, reason, Side::Local);
        self.check_drained(now);
    }

    fn send_close(&mut self, now: Instant, code: ErrorCode, reason: &str, side: Side) {
        self.our_last_request = self.max_peer_req;
        // The CLOSE follows the data already queued (control frames would overtake
        // it); it is queued by `queue_pending_close` once the lanes are empty.
        let mut r = heapless::String::new();
        let mut end = reason.len().min(frame::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = r.push_str(&reason[..end]);
        self.pending_close = Some((code, r));
        self.close_sent = true;
        if self.first_close.is_none() {
            self.first_close = Some((code, side));
            self.set_reason(reason);
        }
        self.phase = Phase::Draining;
        self.timers[Timer::Drain as usize] = Some(now + self.config.drain_timeout);
    }

    // ----- streams -----

    #[cfg(feature = "alloc")]
    fn streams_mut(&mut self) -> Result<&mut crate::stream::Streams, Error> {
        if !matches!(self.phase, Phase::Established | Phase::Draining) {
            return Err(Error::NotConnected);
        }
        self.streams.as_mut().ok_or(Error::NotNegotiated)
    }

    #[cfg(feature = "alloc")]
    /// Opens a stream; returns its id.
    pub fn open_stream(&mut self) -> Result<u64, Error> {
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
    pub fn stream_write(&mut self, id: u64, data: &[u8]) -> Result<usize, Error> {
        self.streams_mut()?.write(id, data).map_err(stream_err)
    }

    #[cfg(feature = "alloc")]
    /// Reads from a stream into `buf`.
    pub fn stream_read(
        &mut self,
        id: u64,
        buf: &mut [u8],
    ) -> Result<crate::stream::ReadOutcome, Error> {
        self.streams_mut()?.read(id, buf).map_err(stream_err)
    }

    /// Sets a stream's transmit priority (default normal).
    #[cfg(feature = "alloc")]
    pub fn stream_set_priority(&mut self, id: u64, prio: Priority) -> Result<(), Error> {
        self.streams_mut()?
            .set_priority(id, prio as u8)
            .map_err(stream_err)
    }

    /// Ends our direction of a stream.
    #[cfg(feature = "alloc")]
    pub fn stream_finish(&mut self, id: u64) -> Result<(), Error> {
        self.streams_mut()?.finish(id).map_err(stream_err)
    }

    #[cfg(feature = "alloc")]
    /// Aborts a stream both ways with an application code.
    pub fn stream_reset(&mut self, id: u64, code: u64) -> Result<(), Error> {
        self.streams_mut()?.reset(id, code).map_err(stream_err)
    }
}

/// Lowers the announced limits to what fixed capacities can hold, so a compliant
/// peer never sends more than fits: one record of `capacity::RECORD`, no fragments,
/// no streams, and tables of `capacity::TABLE` entries. Pipelined frames are not
/// buffered before authentication.
#[cfg(not(feature = "alloc"))]
fn fit_to_capacity(mut c: Config) -> Config {
    let p = &mut c.params;
    let rec = capacity::RECORD as u64;
    p.max_record_size = p.max_record_size.min(rec);
    p.max_frame_size = p.max_frame_size.min(p.max_record_size);
    p.max_message_size = p.max_message_size.min(p.max_frame_size);
    p.max_concurrent_fragmented = 0;
    p.capabilities &= !crate::wire::params::CAP_STREAMS;
    let table = capacity::TABLE as u64;
    p.max_concurrent_requests = p.max_concurrent_requests.min(table);
    p.max_subscriptions = p.max_subscriptions.min(table);
    c.max_outstanding_requests = c.max_outstanding_requests.min(capacity::TABLE);
    c.max_queued_bytes = c.max_queued_bytes.min(capacity::TX);
    c.max_queued_control = c.max_queued_control.min(capacity::TX / 16);
    c.max_preauth_bytes = 0;
    c
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
struct StreamSource<'a>(Option<&'a mut crate::stream::Streams>, Instant);

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
            id: *id,
            flags: if *open { frame::STREAM_OPEN } else { 0 }
                | if *fin { frame::STREAM_FIN } else { 0 },
            data,
        },
        crate::stream::StreamFrame::WindowUpdate { id, increment } => Frame::WindowUpdate {
            id: *id,
            increment: *increment,
        },
        crate::stream::StreamFrame::Reset { id, code } => Frame::StreamReset {
            id: *id,
            code: *code,
        },
    }
}

#[cfg(test)]
mod tests;
