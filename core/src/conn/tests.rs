//! Scenario tests: a client and a server driven in memory on a virtual clock.

use super::*;
use crate::auth::PskAuthenticator;
use crate::wire::frame::Frame;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

/// An event with its data copied out.
#[derive(Clone, Debug, PartialEq)]
struct Got {
    ev: Event,
    subject: Vec<u8>,
    payload: Vec<u8>,
    text: String,
}

fn collect(c: &mut Connection, out: &mut Vec<Got>) {
    while let Some(ev) = c.poll_event() {
        let id = match ev {
            Event::Message { data }
            | Event::Request { data, .. }
            | Event::Subscribed { data, .. }
            | Event::Published { data }
            | Event::Delivery { data, .. }
            | Event::Response {
                data: Some(data), ..
            } => Some(data),
            _ => None,
        };
        let d = id.and_then(|id| c.data(id));
        out.push(Got {
            ev,
            subject: d.map(|d| d.subject.to_vec()).unwrap_or_default(),
            payload: d.map(|d| d.payload.to_vec()).unwrap_or_default(),
            text: d.map(|d| d.text.to_string()).unwrap_or_default(),
        });
    }
}

/// Two connections joined by in-memory pipes on a virtual clock.
pub(super) struct Pair {
    pub(super) client: Connection,
    pub(super) server: Connection,
    pub(super) now: Instant,
    c_events: Vec<Got>,
    s_events: Vec<Got>,
    /// Bytes in flight client → server and server → client.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Everything the client and the server ever sent, for inspection.
    pub(super) client_wire: Vec<u8>,
    pub(super) server_wire: Vec<u8>,
    /// Latency applied to each `drive` round trip direction.
    pub(super) latency: Duration,
    buf: Vec<u8>,
}

impl Pair {
    fn new(cc: Config, sc: Config) -> Self {
        let now = Instant::from_millis(1_000);
        Pair {
            client: Connection::new(Role::Client, cc, now, 11),
            server: Connection::new(Role::Server, sc, now, 22),
            now,
            c_events: Vec::new(),
            s_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_wire: Vec::new(),
            server_wire: Vec::new(),
            latency: Duration::ZERO,
            buf: vec![0u8; 1 << 17],
        }
    }

    fn default_pair() -> Self {
        Pair::new(Config::default(), Config::default())
    }

    fn connected() -> Self {
        let mut p = Pair::default_pair();
        p.drive();
        assert!(p.client.is_established() && p.server.is_established());
        p.take_client();
        p.take_server();
        p
    }

    /// Moves bytes both ways until neither side has anything to send; bounded.
    fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            loop {
                let n = self.client.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.to_server.extend_from_slice(&self.buf[..n]);
                self.client_wire.extend_from_slice(&self.buf[..n]);
            }
            loop {
                let n = self.server.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.to_client.extend_from_slice(&self.buf[..n]);
                self.server_wire.extend_from_slice(&self.buf[..n]);
            }
            if !self.latency.is_zero() && (!self.to_server.is_empty() || !self.to_client.is_empty())
            {
                self.now = self.now + self.latency;
                self.timeouts();
            }
            if !self.to_server.is_empty() {
                let n = self.server.handle_input(self.now, &self.to_server);
                self.to_server.drain(..n);
                moved |= n > 0;
            }
            collect(&mut self.server, &mut self.s_events);
            if !self.to_client.is_empty() {
                let n = self.client.handle_input(self.now, &self.to_client);
                self.to_client.drain(..n);
                moved |= n > 0;
            }
            collect(&mut self.client, &mut self.c_events);
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
                    self.client_wire.extend_from_slice(&self.buf[..a]);
                } else {
                    self.to_client.extend_from_slice(&self.buf[..b]);
                    self.server_wire.extend_from_slice(&self.buf[..b]);
                }
            }
        }
        panic!("drive did not settle");
    }

    fn timeouts(&mut self) {
        for c in [&mut self.client, &mut self.server] {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        collect(&mut self.client, &mut self.c_events);
        collect(&mut self.server, &mut self.s_events);
    }

    /// Advances the virtual clock by `d`, firing timers in order, then drives.
    fn advance(&mut self, d: Duration) {
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

    fn take_client(&mut self) -> Vec<Got> {
        core::mem::take(&mut self.c_events)
    }

    fn take_server(&mut self) -> Vec<Got> {
        core::mem::take(&mut self.s_events)
    }

    /// Hand-built bytes straight into the server, as a misbehaving client would send.
    fn inject_to_server(&mut self, frames: &[Frame<'_>]) {
        let bytes = record_of(frames, true);
        let n = self.server.handle_input(self.now, &bytes);
        assert_eq!(n, bytes.len());
        collect(&mut self.server, &mut self.s_events);
        self.drive();
    }

    fn inject_to_client(&mut self, frames: &[Frame<'_>]) {
        let bytes = record_of(frames, true);
        let n = self.client.handle_input(self.now, &bytes);
        assert_eq!(n, bytes.len());
        collect(&mut self.client, &mut self.c_events);
        self.drive();
    }
}

/// Seals frames into one record.
fn record_of(frames: &[Frame<'_>], integrity: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let mut pos = record::HEADER_LEN;
    for f in frames {
        pos += f.encode(&mut buf[pos..]).unwrap();
    }
    let n = record::seal(&mut buf, pos - record::HEADER_LEN, integrity).unwrap();
    buf.truncate(n);
    buf
}

fn closed(events: &[Got]) -> Option<CloseInfo> {
    events.iter().find_map(|g| match g.ev {
        Event::Closed(i) => Some(i),
        _ => None,
    })
}

fn psk(key: &[u8]) -> Config {
    let a = PskAuthenticator::with_client_key(b"device-7", key).unwrap();
    Config {
        auth: Some(Arc::new(a)),
        ..Config::default()
    }
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

// ----- handshake -----

#[test]
fn handshake_without_auth_negotiates() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 1_000;
    cc.params.integrity = false;
    let mut sc = Config::default();
    sc.params.heartbeat_ms = 2_000;
    sc.params.max_frame_size = 4096;
    let mut p = Pair::new(cc, sc);
    p.drive();
    assert_eq!(p.take_client()[0].ev, Event::Connected);
    assert_eq!(p.take_server()[0].ev, Event::Connected);
    let n = p.client.negotiated().unwrap();
    assert_eq!(n.heartbeat, Some(Duration::from_millis(1_000)));
    assert!(n.integrity, "one side requires integrity");
    assert_eq!(n.peer.max_frame_size, 4096);
    assert!(!n.authenticated);
    assert_eq!(p.server.negotiated().unwrap().heartbeat, n.heartbeat);
}

#[test]
fn integrity_off_when_both_agree_and_records_lose_trailer() {
    let mut cc = Config::default();
    cc.params.integrity = false;
    let mut p = Pair::new(cc.clone(), cc);
    p.drive();
    assert!(!p.client.negotiated().unwrap().integrity);
    p.client_wire.clear();
    p.client.send_message(b"abc", Priority::Normal).unwrap();
    p.drive();
    // header 4 + frame 2 + 3, no trailer
    assert_eq!(p.client_wire.len(), 9);
    assert!(p.take_server().iter().any(|g| g.payload == b"abc"));
}

#[test]
fn psk_handshake_with_pipelined_request() {
    let mut p = Pair::new(psk(KEY), psk(KEY));
    let id = p
        .client
        .request(p.now, b"svc.echo", b"early", None, Priority::Normal)
        .unwrap();
    p.drive();
    let s = p.take_server();
    assert_eq!(s[0].ev, Event::Connected);
    assert!(p.server.negotiated().unwrap().authenticated);
    let (rid, subject, payload) = match &s[1] {
        Got {
            ev: Event::Request { id, .. },
            subject,
            payload,
            ..
        } => (*id, subject.clone(), payload.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (subject.as_slice(), payload.as_slice()),
        (&b"svc.echo"[..], &b"early"[..])
    );
    p.server
        .respond(rid, Outcome::Ok, "", b"late", Priority::Normal)
        .unwrap();
    p.drive();
    let c = p.take_client();
    assert!(c.iter().any(|g| g.ev
        == Event::Response {
            id,
            outcome: Outcome::Ok,
            data: match g.ev {
                Event::Response { data, .. } => data,
                _ => None,
            }
        }
        && g.payload == b"late"));
}

#[test]
fn wrong_key_fails_both_sides_and_pipelined_work_is_discarded() {
    let mut p = Pair::new(psk(b"ffffffffffffffffffffffffffffffff"), psk(KEY));
    p.client.send_message(b"secret", Priority::Normal).unwrap();
    p.drive();
    let c = closed(&p.take_client()).unwrap();
    assert_eq!(c.code, ErrorCode::AUTH_FAILED);
    assert_eq!(
        c.initiator,
        Side::Local,
        "client detects the wrong key first"
    );
    let s = p.take_server();
    assert!(!s
        .iter()
        .any(|g| matches!(g.ev, Event::Message { .. } | Event::Connected)));
    assert_eq!(closed(&s).unwrap().code, ErrorCode::AUTH_FAILED);
}

#[test]
fn unknown_key_id_looks_like_wrong_key() {
    let a = PskAuthenticator::with_client_key(b"nobody", KEY).unwrap();
    let cc = Config {
        auth: Some(Arc::new(a)),
        ..Config::default()
    };
    let mut p = Pair::new(cc, psk(KEY));
    p.drive();
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::AUTH_FAILED
    );
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::AUTH_FAILED
    );
}

#[test]
fn missing_auth_is_its_own_code() {
    let mut p = Pair::new(Config::default(), psk(KEY));
    p.drive();
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::AUTH_REQUIRED
    );
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::AUTH_REQUIRED
    );
    // A client that requires mutual authentication refuses a server without a key.
    let mut p = Pair::new(psk(KEY), Config::default());
    p.drive();
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::AUTH_FAILED
    );
}

#[test]
fn bad_preface_and_version_mismatch() {
    let now = Instant::ZERO;
    let mut s = Connection::new(Role::Server, Config::default(), now, 1);
    s.handle_input(now, b"GET / HTTP/1.1\r\n");
    let mut ev = Vec::new();
    collect(&mut s, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::BAD_PREFACE);
    let mut buf = [0u8; 256];
    let n = s.poll_transmit(now, &mut buf);
    assert!(n > 8, "preface and CLOSE are sent");
    assert!(s.is_closed());

    let mut s = Connection::new(Role::Server, Config::default(), now, 1);
    s.handle_input(now, b"WEFT\x02\x07\x00\x00");
    let mut ev = Vec::new();
    collect(&mut s, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::UNSUPPORTED_VERSION);
}

#[test]
fn handshake_timeout() {
    let mut c = Connection::new(Role::Client, Config::default(), Instant::ZERO, 1);
    let t = c.poll_timeout().unwrap();
    assert_eq!(t, Instant::from_millis(10_000));
    c.handle_timeout(t);
    let mut ev = Vec::new();
    collect(&mut c, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::HANDSHAKE_TIMEOUT);
}
