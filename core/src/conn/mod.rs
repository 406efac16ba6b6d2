//! The connection state machine.
//!
//! [`Connection`] is the whole protocol for one peer: bytes and timer events go in,
//! bytes to send, events and the next deadline come out. Each feature owns its state
//! (a sub-struct of [`Connection`]), its commands, its frame handlers and its timers,
//! in one file:
//!
//! - `handshake`: prefaces, HELLO and AUTH (spec section 7).
//! - `messages`: one-way MESSAGEs (section 9).
//! - `rpc`: requests, responses, CANCEL and deadlines (section 8).
//! - `pubsub`: subscriptions, credit, PUBLISH and DELIVER (section 10).
//! - `streams`: the connection's side of streams (section 11; the stream state
//!   machine is [`crate::stream`]).
//! - `liveness`: PING/PONG, round-trip time, idle and heartbeat timers (section 14).
//! - `close`: graceful drain, error closes, the end of the transport (section 15).
//!
//! Below them: `recv` (records in, frames out, and the dispatcher that hands each
//! frame to its feature), `reasm` (fragment reassembly), `held` (records kept for
//! queued events), `send` (queues and the transmit scheduler), `store` (fixed or heap
//! tables), `timers` (the fixed timer table) and `types` (what the application sees).

mod close;
mod flush;
mod handshake;
mod held;
mod liveness;
mod messages;
mod pubsub;
#[cfg(feature = "alloc")]
mod reasm;
mod recv;
mod rpc;
mod send;
mod store;
#[cfg(feature = "alloc")]
mod streams;
mod timers;
mod types;

pub use flush::{FlushId, MAX_FLUSHES};
pub use types::{CloseInfo, CloseKind, Data, DataId, Event, Negotiated, Outcome, Side, Stats};

use crate::auth::Transcript;
use crate::config::{Config, Priority, Role};
use crate::error::{Error, ErrorCode};
use crate::secrets::{Secrets, SEED_LEN};
use crate::time::Instant;
use crate::wire::frame::{self, Frame, Status};
use crate::wire::params::Params;
use crate::wire::preface::{self, Preface};
use crate::wire::record;
#[cfg(feature = "alloc")]
use alloc::collections::VecDeque;
#[cfg(feature = "alloc")]
use bytes::{Bytes, BytesMut};
use close::Closing;
use core::time::Duration;
use flush::Flushes;
use handshake::Refusal;
#[cfg(feature = "alloc")]
use held::Src;
#[cfg(not(feature = "alloc"))]
use held::Src;
use liveness::Liveness;
use pubsub::PubSub;
#[cfg(feature = "alloc")]
use reasm::Reassembly;
use rpc::Rpc;
use send::{SendMark, Tx};
use store::Queue;
use timers::{Timer, Timers};

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
    /// Bytes of the allocation `rx` lies in (the connection makes every one).
    #[cfg(feature = "alloc")]
    rx_alloc: usize,
    /// Earlier receive allocations that records or payloads handed out still keep
    /// alive, with their sizes (`pinning_allowed` says why).
    #[cfg(feature = "alloc")]
    retired: VecDeque<(Bytes, usize)>,
    #[cfg(feature = "alloc")]
    retired_bytes: usize,
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
    /// A send reported `Blocked`: `Writable` follows once the queues drain.
    blocked: bool,
    // Features.
    rpc: Rpc,
    pubsub: PubSub,
    /// The stream component, once negotiated.
    #[cfg(feature = "alloc")]
    streams: Option<crate::stream::Streams>,
    /// Rapid-reset defence: STREAM_RESETs per interval.
    #[cfg(feature = "alloc")]
    resets: RateCounter,
    /// Frames carrying nothing, per interval.
    empties: RateCounter,
    live: Liveness,
    flush: Flushes,
    closing: Closing,
    timers: Timers,
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
        let mut timers = Timers::default();
        timers.set(Timer::Handshake, Some(now + config.handshake_timeout));
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
            rx_alloc: 0,
            #[cfg(feature = "alloc")]
            retired: VecDeque::new(),
            #[cfg(feature = "alloc")]
            retired_bytes: 0,
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
            rpc: Rpc::new(),
            pubsub: PubSub::new(),
            #[cfg(feature = "alloc")]
            streams: None,
            #[cfg(feature = "alloc")]
            resets: RateCounter::default(),
            empties: RateCounter::default(),
            live: Liveness::new(now),
            flush: Flushes::new(),
            closing: Closing::new(),
            timers,
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

    /// (Server) The key id the client authenticated with, once [`Event::Connected`]
    /// was emitted with `authenticated` (spec section 7.6); `None` before, and for a
    /// connection without authentication. The application decides what the key may
    /// do from it.
    pub fn peer_key_id(&self) -> Option<&[u8]> {
        let n = self.negotiated.as_ref()?;
        (self.role == Role::Server && n.authenticated).then_some(&self.peer_key_id[..])
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
        &self.closing.close_reason
    }

    /// Counters and current windows.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.frames_sent = self.tx.frames_sent;
        s.rtt = self.live.srtt;
        s.rtt_var = self.live.srtt.map(|_| self.live.rttvar);
        s.min_rtt = self.live.min_rtt;
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
        self.reserve_rx(take, limit);
        #[cfg(feature = "alloc")]
        self.rx.extend_from_slice(&data[..take]);
        #[cfg(not(feature = "alloc"))]
        let _ = self.rx.extend_from_slice(&data[..take]);
        self.stats.bytes_received += take as u64;
        if take > 0 {
            self.live.last_rx = now;
            self.arm_idle(now);
        }
        self.process(now);
        take
    }

    /// The transport ended (EOF or reset). Input already taken by
    /// [`handle_input`](Self::handle_input) but not processed yet (processing
    /// pauses while the event queue is full) is still processed first, as
    /// [`poll_event`](Self::poll_event) makes room: what the peer sent before its
    /// end, its CLOSE included, is not dropped.
    pub fn handle_eof(&mut self, now: Instant) {
        self.process(now);
        self.on_eof();
    }

    /// Call when the instant of [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        // Each feature takes its own timers; one that failed the connection ends
        // the round.
        if self.handshake_timeout(now) || self.idle_timeout(now) || self.drain_timeout(now) {
            return;
        }
        self.heartbeat_timeout(now);
        self.request_timeouts(now);
        self.check_drained(now);
    }

    // ----- outputs -----

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        [self.timers.earliest(), self.rpc.next_deadline()]
            .into_iter()
            .flatten()
            .min()
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
            let now = self.live.last_rx;
            self.process(now);
        }
        let (ev, bytes) = self.events.pop_front()?;
        self.flush.events_taken += 1;
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
        if self.phase != Phase::Failing {
            self.release_pongs();
        }
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
        let mut streams =
            streams::StreamSource(self.streams.as_mut().filter(|s| s.has_pending()), now);
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
        self.release_flushes();
        // The data ahead of a graceful CLOSE is out: the CLOSE goes in this call.
        if self.closing.pending_close.is_some() && self.tx.queued_bytes() == 0 && pos < buf.len() {
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
            self.live.pongs_queued = 0;
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

    /// The payload of the current event as shared bytes, without copying while
    /// the receive memory such payloads keep alive is within
    /// [`Config::max_pinned_bytes`]; a copy beyond it.
    #[cfg(feature = "alloc")]
    pub fn take_payload(&self, id: DataId) -> Option<Bytes> {
        let d = self.data(id)?;
        self.share(d.payload)
    }

    /// The subject (or topic) of the current event as shared bytes, as
    /// [`take_payload`](Self::take_payload); empty bytes for events without one.
    #[cfg(feature = "alloc")]
    pub fn take_subject(&self, id: DataId) -> Option<Bytes> {
        let d = self.data(id)?;
        if d.subject.is_empty() {
            return Some(Bytes::new());
        }
        self.share(d.subject)
    }

    /// `part` of the current event's frame as shared bytes, or copied when sharing
    /// would keep too much receive memory alive.
    #[cfg(feature = "alloc")]
    fn share(&self, part: &[u8]) -> Option<Bytes> {
        let (_, r) = self.current.as_ref()?;
        let (_, shared) = self.held.get(r)?;
        // A frame with bytes of its own (reassembled, or buffered before
        // authentication) keeps only itself alive.
        if matches!(r, FrameRef::Own(_)) || self.pinning_allowed() {
            Some(shared.slice_ref(part))
        } else {
            Some(Bytes::copy_from_slice(part))
        }
    }

    /// True while the receive allocations still alive (the current one, and the
    /// earlier ones that records or payloads still refer to) fit
    /// `max_pinned_bytes`. A shared payload keeps its whole allocation alive, so
    /// without this bound a peer sending each 1-byte message in its own padded
    /// 64 KiB record could make 1,000 queued messages hold 64 MB.
    #[cfg(feature = "alloc")]
    fn pinning_allowed(&self) -> bool {
        let budget = self.config.max_pinned_bytes;
        if self.retired_bytes + self.rx_alloc <= budget {
            return true;
        }
        // The running total counts allocations that may have been freed since;
        // look again (the slow path only, when the quick sum is over budget).
        let live: usize = self
            .retired
            .iter()
            .filter(|(b, _)| !b.is_unique())
            .map(|(_, n)| n)
            .sum();
        live + self.rx_alloc <= budget
    }

    /// Makes room for `take` more bytes in the receive buffer. Every allocation is
    /// made here, so its size is known: reused in place when nothing else refers to
    /// it, else a new one (growing from 4 KiB to one maximal record `limit`), the old
    /// one kept track of while records or payloads keep it alive.
    #[cfg(feature = "alloc")]
    fn reserve_rx(&mut self, take: usize, limit: usize) {
        let len = self.rx.len();
        if self.rx.capacity() - len >= take || self.rx.try_reclaim(take) {
            return;
        }
        let cap = (len + take).max(limit.min(self.rx_alloc.saturating_mul(2).max(4096)));
        let mut fresh = BytesMut::with_capacity(cap);
        fresh.extend_from_slice(&self.rx);
        let old = core::mem::replace(&mut self.rx, fresh).freeze();
        let old_size = core::mem::replace(&mut self.rx_alloc, cap);
        // Forget the allocations nobody refers to any more; the count is bounded
        // by `max_pinned_bytes` over the smallest allocation (4 KiB), plus the
        // records queued events hold.
        let before = self.retired.len();
        self.retired.retain(|(b, _)| !b.is_unique());
        if self.retired.len() != before {
            self.retired_bytes = self.retired.iter().map(|(_, n)| n).sum();
        }
        if old_size > 0 && !old.is_unique() {
            self.retired.push_back((old, old_size));
            self.retired_bytes += old_size;
        }
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
        self.flush.events_pushed += 1;
        // With fixed capacities the queue is sized for the worst burst (see
        // `capacity::EVENTS`): processing pauses at EVENT_SOFT_CAP.
        let pushed = self.events.push_back((ev, data));
        debug_assert!(pushed.is_ok(), "event queue sized for the worst case");
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

    fn cap(&self, bit: u64) -> bool {
        self.negotiated.is_some_and(|n| n.capabilities & bit != 0)
    }

    fn can_send_app(&self) -> Result<(), Error> {
        if self.closing.after_handshake.is_some() {
            return Err(Error::Closed);
        }
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

    // ----- streams -----
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

#[cfg(test)]
mod tests;
