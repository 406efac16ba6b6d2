//! Test support: two [`Connection`]s joined by in-memory pipes on a virtual clock.
//!
//! Not part of the API. It is compiled for the crate's own unit tests and, through
//! the `testing` feature that `weft-core`'s dev-dependency on itself turns on, for
//! its integration tests, so that both drive connections with one copy of this code
//! rather than one per test binary. It uses `std` in every build: tests run on a
//! host, even those of the `no_std` builds.

use crate::auth::PskAuthenticator;
use crate::config::{Config, Role};
use crate::conn::{CloseInfo, Connection, Event};
use crate::time::Instant;
use crate::wire::frame::Frame;
use crate::wire::record;
use core::time::Duration;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// The instant a [`Pair`] starts at (not zero, so that "before the start" exists).
pub const START: Instant = Instant::from_millis(1_000);
/// The client's seed: fixed, so that runs are reproducible.
pub const CLIENT_SEED: [u8; 32] = [11; 32];
/// The server's seed.
pub const SERVER_SEED: [u8; 32] = [22; 32];
/// Large enough for any record (65 535 + 8) and the preface.
pub const TX_BUF: usize = 1 << 17;
/// The pre-shared key of [`psk`].
pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// An event with its data copied out, so that it outlives the connection's hold on
/// the record.
#[derive(Clone, Debug, PartialEq)]
pub struct Got {
    /// The event.
    pub ev: Event,
    /// Its subject or topic, empty if it has none.
    pub subject: Vec<u8>,
    /// Its payload, empty if it has none.
    pub payload: Vec<u8>,
    /// Its text (an error message, a subscription's group), empty if it has none.
    pub text: String,
}

/// Drains events (bounded: a connection never has unboundedly many).
pub fn collect(c: &mut Connection, out: &mut Vec<Got>) {
    for _ in 0..1_000_000 {
        let Some(ev) = c.poll_event() else { return };
        let id = ev.data_id();
        let d = id.and_then(|id| c.data(id));
        out.push(Got {
            ev,
            subject: d.map(|d| d.subject.to_vec()).unwrap_or_default(),
            payload: d.map(|d| d.payload.to_vec()).unwrap_or_default(),
            text: d.map(|d| d.text.to_string()).unwrap_or_default(),
        });
    }
    panic!("poll_event never ran dry");
}

/// Everything `poll_transmit` has to give now.
pub fn flush(c: &mut Connection, now: Instant, out: &mut Vec<u8>) {
    let mut buf = vec![0u8; TX_BUF];
    for _ in 0..100_000 {
        let n = c.poll_transmit(now, &mut buf);
        if n == 0 {
            return;
        }
        out.extend_from_slice(&buf[..n]);
    }
    panic!("poll_transmit never ran dry");
}

/// Feeds `bytes` following the contract (offer the rest again after draining);
/// returns the bytes the connection sent meanwhile.
pub fn feed(c: &mut Connection, now: Instant, bytes: &[u8], events: &mut Vec<Got>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut stalls = 0;
    loop {
        let n = c.handle_input(now, rest);
        assert!(n <= rest.len(), "handle_input took {n} of {}", rest.len());
        rest = &rest[n..];
        collect(c, events);
        flush(c, now, &mut out);
        if rest.is_empty() {
            return out;
        }
        stalls = if n == 0 { stalls + 1 } else { 0 };
        assert!(stalls < 3, "handle_input takes nothing after draining");
    }
}

/// The first close event in `events`.
pub fn closed(events: &[Got]) -> Option<CloseInfo> {
    events.iter().find_map(|g| match g.ev {
        Event::Closed(i) => Some(i),
        _ => None,
    })
}

/// Seals frames into one record.
pub fn record_of(frames: &[Frame<'_>], integrity: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let mut pos = record::HEADER_LEN;
    for f in frames {
        pos += f.encode(&mut buf[pos..]).unwrap();
    }
    let n = record::seal(&mut buf, pos - record::HEADER_LEN, integrity).unwrap();
    buf.truncate(n);
    buf
}

/// Seals encoded frames into one record.
pub fn seal(frames: &[u8], integrity: bool) -> Vec<u8> {
    let mut buf = vec![0u8; record::HEADER_LEN + frames.len() + record::TRAILER_LEN];
    buf[record::HEADER_LEN..record::HEADER_LEN + frames.len()].copy_from_slice(frames);
    let n = record::seal(&mut buf, frames.len(), integrity).expect("record fits");
    buf.truncate(n);
    buf
}

/// A configuration authenticating as `device-7` with `key`.
pub fn psk(key: &[u8]) -> Config {
    let a = PskAuthenticator::with_client_key(b"device-7", key).unwrap();
    Config {
        auth: Some(auth_handle(a)),
        ..Config::default()
    }
}

/// `a` as the configuration holds an authenticator in this build.
#[cfg(feature = "alloc")]
pub fn auth_handle(a: PskAuthenticator) -> crate::config::AuthHandle {
    alloc::sync::Arc::new(a)
}

/// `a` as the configuration holds an authenticator in this build: without a heap
/// it is a `'static` reference, and a test can afford to leak one.
#[cfg(not(feature = "alloc"))]
pub fn auth_handle(a: PskAuthenticator) -> crate::config::AuthHandle {
    std::boxed::Box::leak(std::boxed::Box::new(a))
}

/// How [`Pair::drive_with`] drains a side's events: given the side's role, its
/// connection and its event list.
pub type Drain<'a> = dyn FnMut(Role, &mut Connection, &mut Vec<Got>) + 'a;

/// The default [`Drain`]: every event copied into the side's list.
fn collect_all(_: Role, c: &mut Connection, out: &mut Vec<Got>) {
    collect(c, out);
}

/// Two connections joined by in-memory pipes on a virtual clock.
pub struct Pair {
    /// The client.
    pub client: Connection,
    /// The server.
    pub server: Connection,
    /// The virtual clock.
    pub now: Instant,
    /// Events the client produced and nobody took yet.
    pub c_events: Vec<Got>,
    /// Events the server produced and nobody took yet.
    pub s_events: Vec<Got>,
    /// Bytes in flight client → server and server → client.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Everything the client and the server ever sent, for inspection (while
    /// `keep_wire`).
    pub client_wire: Vec<u8>,
    /// Everything the server ever sent.
    pub server_wire: Vec<u8>,
    /// Off for tests that count allocations: the wires grow without bound.
    pub keep_wire: bool,
    /// Latency applied to each `drive` round trip direction.
    pub latency: Duration,
    /// The transmit buffer, for tests that move bytes by hand.
    pub buf: Vec<u8>,
}

impl Pair {
    /// A pair before its handshake: nothing sent yet.
    pub fn new(cc: Config, sc: Config) -> Self {
        let now = START;
        Pair {
            client: Connection::new(Role::Client, cc, now, CLIENT_SEED),
            server: Connection::new(Role::Server, sc, now, SERVER_SEED),
            now,
            c_events: Vec::new(),
            s_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_wire: Vec::new(),
            server_wire: Vec::new(),
            keep_wire: true,
            latency: Duration::ZERO,
            buf: vec![0u8; TX_BUF],
        }
    }

    /// [`Pair::new`] with default configurations.
    pub fn default_pair() -> Self {
        Pair::new(Config::default(), Config::default())
    }

    /// A pair past its handshake, with events and wires cleared.
    pub fn established(cc: Config, sc: Config) -> Self {
        let mut p = Pair::new(cc, sc);
        p.drive();
        assert!(p.client.is_established() && p.server.is_established());
        p.c_events.clear();
        p.s_events.clear();
        p.client_wire.clear();
        p.server_wire.clear();
        p
    }

    /// [`Pair::established`] with default configurations.
    pub fn connected() -> Self {
        Pair::established(Config::default(), Config::default())
    }

    /// Moves bytes both ways until neither side has anything to send; bounded.
    pub fn drive(&mut self) {
        self.drive_with(&mut collect_all);
    }

    /// [`Pair::drive`], draining each side's events with `drain` instead of copying
    /// them out: for tests that answer events as they come, or must not allocate.
    pub fn drive_with(&mut self, drain: &mut Drain<'_>) {
        for _ in 0..10_000 {
            let mut moved = false;
            loop {
                let n = self.client.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.to_server.extend_from_slice(&self.buf[..n]);
                if self.keep_wire {
                    self.client_wire.extend_from_slice(&self.buf[..n]);
                }
            }
            loop {
                let n = self.server.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.to_client.extend_from_slice(&self.buf[..n]);
                if self.keep_wire {
                    self.server_wire.extend_from_slice(&self.buf[..n]);
                }
            }
            if !self.latency.is_zero() && (!self.to_server.is_empty() || !self.to_client.is_empty())
            {
                self.now = self.now + self.latency;
                self.timeouts_with(drain);
            }
            if !self.to_server.is_empty() {
                let n = self.server.handle_input(self.now, &self.to_server);
                assert!(n <= self.to_server.len(), "handle_input took too much");
                self.to_server.drain(..n);
                moved |= n > 0;
            }
            drain(Role::Server, &mut self.server, &mut self.s_events);
            if !self.to_client.is_empty() {
                let n = self.client.handle_input(self.now, &self.to_client);
                assert!(n <= self.to_client.len(), "handle_input took too much");
                self.to_client.drain(..n);
                moved |= n > 0;
            }
            drain(Role::Client, &mut self.client, &mut self.c_events);
            if !moved && self.to_server.is_empty() && self.to_client.is_empty() {
                let a = self.client.poll_transmit(self.now, &mut self.buf);
                let b = if a == 0 {
                    self.server.poll_transmit(self.now, &mut self.buf)
                } else {
                    0
                };
                if a == 0 && b == 0 {
                    return;
                }
                if a > 0 {
                    self.to_server.extend_from_slice(&self.buf[..a]);
                    if self.keep_wire {
                        self.client_wire.extend_from_slice(&self.buf[..a]);
                    }
                } else {
                    self.to_client.extend_from_slice(&self.buf[..b]);
                    if self.keep_wire {
                        self.server_wire.extend_from_slice(&self.buf[..b]);
                    }
                }
            }
        }
        panic!("drive did not settle");
    }

    /// Fires the timers that are due at `now`.
    pub fn timeouts(&mut self) {
        self.timeouts_with(&mut collect_all);
    }

    fn timeouts_with(&mut self, drain: &mut Drain<'_>) {
        for c in [&mut self.client, &mut self.server] {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        drain(Role::Client, &mut self.client, &mut self.c_events);
        drain(Role::Server, &mut self.server, &mut self.s_events);
    }

    /// Advances the virtual clock by `d`, firing timers in order, then drives.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.timeouts();
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = end;
        self.timeouts();
        self.drive();
    }

    /// The client's events so far.
    pub fn take_client(&mut self) -> Vec<Got> {
        core::mem::take(&mut self.c_events)
    }

    /// The server's events so far.
    pub fn take_server(&mut self) -> Vec<Got> {
        core::mem::take(&mut self.s_events)
    }

    /// Hand-built bytes straight into the server, as a misbehaving client would send.
    pub fn inject_to_server(&mut self, frames: &[Frame<'_>]) {
        let bytes = record_of(frames, true);
        let out = feed(&mut self.server, self.now, &bytes, &mut self.s_events);
        self.to_client.extend_from_slice(&out);
        if self.keep_wire {
            self.server_wire.extend_from_slice(&out);
        }
        self.drive();
    }

    /// Hand-built bytes straight into the client, as a misbehaving server would send.
    pub fn inject_to_client(&mut self, frames: &[Frame<'_>]) {
        let bytes = record_of(frames, true);
        let out = feed(&mut self.client, self.now, &bytes, &mut self.c_events);
        self.to_server.extend_from_slice(&out);
        if self.keep_wire {
            self.client_wire.extend_from_slice(&out);
        }
        self.drive();
    }
}
