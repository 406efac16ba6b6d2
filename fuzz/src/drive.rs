//! One connection under test, driven by the contract of `Connection` with checks on
//! what it promises: input is always taken once events are drained, timers do not
//! spin, every event's data is readable, `Closed` comes once and last, and the end
//! of the transport always closes. Unlike weft-core's `testing::Pair`, which moves
//! all bytes at once, it lets a harness hand bytes over in any pieces.

use weft_core::conn::{Connection, Event};
pub use weft_core::testing::Got;
use weft_core::{Instant, RequestId, StreamId, SubId};

/// True when `WEFT_FUZZ_TRACE` is set: every input, timer and event is printed
/// (for reading a failing input with the `show` example).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WEFT_FUZZ_TRACE").is_some())
}

/// A connection with its virtual clock and the bytes it sent.
pub struct Endpoint {
    /// The connection.
    pub conn: Connection,
    /// Virtual time.
    pub now: Instant,
    /// What the connection sent since the last `take_sent`.
    pub sent: Vec<u8>,
    /// Token of the last PING it sent.
    pub last_ping: u64,
    /// `Event::Closed` seen.
    pub closed: u32,
    /// Requests from the peer, in arrival order (not yet answered by the harness).
    pub requests: Vec<RequestId>,
    /// Subscriptions the peer made (server side).
    pub subs: Vec<SubId>,
    /// Streams seen.
    pub streams: Vec<StreamId>,
    /// When set, every event with its data copied out.
    pub log: Option<Vec<Got>>,
    buf: Vec<u8>,
}

impl Endpoint {
    /// Wraps a connection created at `now`.
    pub fn new(conn: Connection, now: Instant) -> Self {
        Endpoint {
            conn,
            now,
            sent: Vec::new(),
            last_ping: 0,
            closed: 0,
            requests: Vec::new(),
            subs: Vec::new(),
            streams: Vec::new(),
            log: None,
            buf: vec![0u8; Connection::MIN_TRANSMIT_BUFFER],
        }
    }

    /// Polls every event, checking each, and logs it if logging.
    pub fn drain_events(&mut self) {
        for _ in 0..100_000 {
            let Some(ev) = self.conn.poll_event() else {
                return;
            };
            if tracing() {
                eprintln!("{:?} {:?} event {ev:?}", self.conn.role(), self.now);
            }
            assert_eq!(self.closed, 0, "event after Closed: {ev:?}");
            let mut got = Got {
                ev,
                subject: Vec::new(),
                payload: Vec::new(),
                text: String::new(),
            };
            if let Some(id) = ev.data_id() {
                let d = self.conn.data(id);
                assert!(d.is_some(), "data of {ev:?} unreadable");
                if let (Some(d), true) = (d, self.log.is_some()) {
                    got.subject = d.subject.to_vec();
                    got.payload = d.payload.to_vec();
                    got.text = d.text.to_string();
                }
            }
            if let Some(log) = self.log.as_mut() {
                log.push(got);
            }
            match ev {
                Event::Closed(_) => self.closed += 1,
                Event::Request { id, .. } => self.requests.push(id),
                Event::Subscribed { sub_id, .. } => self.subs.push(sub_id),
                Event::StreamOpened(id) => self.streams.push(id),
                _ => {}
            }
        }
        panic!("poll_event never returned None");
    }

    /// Takes everything the connection has to send.
    pub fn transmit(&mut self) {
        for _ in 0..100_000 {
            let n = self.conn.poll_transmit(self.now, &mut self.buf);
            assert!(n <= self.buf.len());
            if n == 0 {
                // A transmit may queue events (Writable, Closed).
                self.drain_events();
                return;
            }
            crate::frames::last_ping_in(&self.buf[..n], &mut self.last_ping);
            self.sent.extend_from_slice(&self.buf[..n]);
            self.drain_events();
        }
        panic!("poll_transmit never returned 0");
    }

    /// Bytes sent so far, taken.
    pub fn take_sent(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.sent)
    }

    /// Offers all of `bytes` the way the contract asks: what is not taken is offered
    /// again after draining. Once events are drained it must take something.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let mut stalls = 0;
        if tracing() {
            eprintln!("{:?} {:?} input {:02x?}", self.conn.role(), self.now, bytes);
        }
        while !bytes.is_empty() {
            let n = self.conn.handle_input(self.now, bytes);
            assert!(n <= bytes.len(), "took {n} of {}", bytes.len());
            bytes = &bytes[n..];
            self.drain_events();
            if n == 0 {
                stalls += 1;
                self.transmit();
                assert!(
                    stalls < 3,
                    "handle_input takes nothing after draining ({} bytes left, closed {})",
                    bytes.len(),
                    self.conn.is_closed()
                );
            } else {
                stalls = 0;
            }
        }
    }

    /// Advances the clock by `ms`, firing every timer that comes due on the way, in
    /// order, and sending what they queue.
    pub fn advance(&mut self, ms: u64) {
        let end = Instant::from_micros(self.now.as_micros().saturating_add(ms * 1000));
        let mut fired_at_same = 0;
        for _ in 0..100_000 {
            match self.conn.poll_timeout() {
                Some(t) if t <= end => {
                    if t <= self.now {
                        fired_at_same += 1;
                        assert!(
                            fired_at_same < 100,
                            "timer spins: deadline {t:?} stays due at {:?}",
                            self.now
                        );
                    } else {
                        fired_at_same = 0;
                        self.now = t;
                    }
                    if tracing() {
                        eprintln!("{:?} {:?} timeout", self.conn.role(), self.now);
                    }
                    self.conn.handle_timeout(self.now);
                    self.drain_events();
                    self.transmit();
                }
                _ => break,
            }
        }
        self.now = end;
        self.drain_events();
    }

    /// The transport ends: the connection must be closed, with one `Closed`.
    pub fn finish(&mut self) {
        self.conn.handle_eof(self.now);
        self.drain_events();
        self.transmit();
        assert!(self.conn.is_closed(), "not closed after EOF");
        assert_eq!(self.closed, 1, "Closed events");
        assert_eq!(self.conn.poll_timeout(), None, "timer armed after close");
        assert_eq!(self.conn.poll_transmit(self.now, &mut self.buf), 0);
    }
}

/// Runs a connected client/server pair: moves bytes both ways until quiet.
pub fn shuttle(a: &mut Endpoint, b: &mut Endpoint) {
    for _ in 0..1000 {
        a.transmit();
        b.transmit();
        let ab = a.take_sent();
        let ba = b.take_sent();
        if ab.is_empty() && ba.is_empty() {
            return;
        }
        b.feed(&ab);
        a.feed(&ba);
    }
    panic!("shuttle did not settle");
}
