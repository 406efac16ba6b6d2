//! Prefaces, HELLO and AUTH (spec section 7): negotiation, PSK proofs, refusals,
//! timeouts, and that the same seed gives the same bytes.

use super::*;
use crate::testing::feed;
use zerocopy::IntoBytes;

#[test]
fn handshake_without_auth_negotiates() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 1_000;
    cc.params.integrity = false;
    let mut sc = Config::default();
    sc.params.heartbeat_ms = 2_000;
    sc.params.max_frame_size = 1500;
    let mut p = Pair::new(cc, sc);
    p.drive();
    assert_eq!(p.take_client()[0].ev, Event::Connected);
    assert_eq!(p.take_server()[0].ev, Event::Connected);
    let n = p.client.negotiated().unwrap();
    assert_eq!(n.heartbeat, Some(Duration::from_millis(1_000)));
    assert!(n.integrity, "one side requires integrity");
    assert_eq!(n.peer.max_frame_size, 1500);
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

#[cfg(feature = "alloc")]
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
    let s = p.take_server();
    assert!(!s
        .iter()
        .any(|g| matches!(g.ev, Event::Message { .. } | Event::Connected)));
    if cfg!(feature = "alloc") {
        assert_eq!(c.code, ErrorCode::AUTH_FAILED);
        assert_eq!(
            c.initiator,
            Side::Local,
            "client detects the wrong key first"
        );
        assert_eq!(closed(&s).unwrap().code, ErrorCode::AUTH_FAILED);
    } else {
        // Without a heap the server buffers nothing before authentication, so the
        // pipelined message alone closes it.
        assert_eq!(c.code, ErrorCode::PREAUTH_LIMIT);
        assert_eq!(closed(&s).unwrap().code, ErrorCode::PREAUTH_LIMIT);
    }
}

#[test]
fn wrong_key_without_pipelining() {
    let mut p = Pair::new(psk(b"ffffffffffffffffffffffffffffffff"), psk(KEY));
    p.drive();
    let c = closed(&p.take_client()).unwrap();
    assert_eq!((c.code, c.initiator), (ErrorCode::AUTH_FAILED, Side::Local));
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::AUTH_FAILED
    );
}

#[test]
fn unknown_key_id_looks_like_wrong_key() {
    let a = PskAuthenticator::with_client_key(b"nobody", KEY).unwrap();
    let cc = Config {
        auth: Some(auth_handle(a)),
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
    // A server without keys refuses a client that offers authentication, in place
    // of its SERVER_HELLO (spec 7.4 step 3): it does not connect it unauthenticated.
    let mut p = Pair::new(psk(KEY), Config::default());
    p.drive();
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::AUTH_FAILED
    );
    let c = closed(&p.take_client()).unwrap();
    assert_eq!((c.code, c.initiator), (ErrorCode::AUTH_FAILED, Side::Peer));
    assert!(p.client.negotiated().is_none() && p.server.negotiated().is_none());
    // The same for a scheme no one assigned.
    let mut s = Connection::new(Role::Server, Config::default(), Instant::ZERO, [3; 32]);
    let mut input = Preface::new(1, 1).as_bytes().to_vec();
    input.extend(record_of(
        &[Frame::ClientHello {
            nonce: [9; 16],
            params: &[],
            auth_scheme: 2,
            key_id: b"k",
            token: &[],
        }],
        true,
    ));
    let mut ev = Vec::new();
    feed(&mut s, Instant::ZERO, &input, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::AUTH_FAILED);
    // A client that requires mutual authentication still refuses a (non-compliant)
    // server that answers scheme 0.
    let mut p = Pair::new(psk(KEY), Config::default());
    let first = p.client.poll_transmit(p.now, &mut p.buf);
    assert!(first > 0);
    let mut answer = Preface::new(1, 1).as_bytes().to_vec();
    answer.extend(record_of(
        &[Frame::ServerHello {
            nonce: [8; 16],
            params: &[],
            auth_scheme: 0,
            proof: &[],
            token: &[],
        }],
        true,
    ));
    let mut ev = Vec::new();
    feed(&mut p.client, p.now, &answer, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::AUTH_REQUIRED);
}

/// The server application learns which key id authenticated (spec 7.6).
#[test]
fn server_learns_the_authenticated_key_id() {
    let mut p = Pair::new(psk(KEY), psk(KEY));
    p.drive();
    assert!(p.server.is_established());
    assert_eq!(p.server.peer_key_id(), Some(&b"device-7"[..]));
    assert_eq!(p.client.peer_key_id(), None, "a client has no peer key id");
    let mut p = Pair::connected();
    assert_eq!(p.server.peer_key_id(), None, "no authentication, no key id");
    p.drive();
}

#[test]
fn bad_preface_and_version_mismatch() {
    let now = Instant::ZERO;
    let mut s = Connection::new(Role::Server, Config::default(), now, [1; 32]);
    s.handle_input(now, b"GET / HTTP/1.1\r\n");
    let mut ev = Vec::new();
    collect(&mut s, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::BAD_PREFACE);
    let mut buf = [0u8; 256];
    let n = s.poll_transmit(now, &mut buf);
    assert!(n > 8, "preface and CLOSE are sent");
    assert!(s.is_closed());

    let mut s = Connection::new(Role::Server, Config::default(), now, [1; 32]);
    s.handle_input(now, b"WEFT\x02\x07\x00\x00");
    let mut ev = Vec::new();
    collect(&mut s, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::UNSUPPORTED_VERSION);
}

#[test]
fn handshake_timeout() {
    let mut c = Connection::new(Role::Client, Config::default(), Instant::ZERO, [1; 32]);
    let t = c.poll_timeout().unwrap();
    assert_eq!(t, Instant::from_millis(10_000));
    c.handle_timeout(t);
    let mut ev = Vec::new();
    collect(&mut c, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::HANDSHAKE_TIMEOUT);
}

#[test]
fn invalid_local_config_is_internal_error() {
    let mut cc = Config::default();
    cc.params.max_frame_size = 100;
    let mut c = Connection::new(Role::Client, cc, Instant::ZERO, [1; 32]);
    let mut ev = Vec::new();
    collect(&mut c, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::INTERNAL_ERROR);
}

#[test]
fn hello_after_handshake_is_protocol_error() {
    let mut p = Pair::connected();
    p.inject_to_server(&[Frame::Auth { proof: &[0; 32] }]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::PROTOCOL_ERROR
    );
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut p = Pair::new(psk(KEY), psk(KEY));
        p.client.send_message(b"m", Priority::Normal).unwrap();
        p.client
            .request(
                p.now,
                b"r",
                b"q",
                Some(Duration::from_secs(1)),
                Priority::High,
            )
            .unwrap();
        p.drive();
        p.advance(Duration::from_secs(2));
        (p.client_wire, p.server_wire)
    };
    assert_eq!(run(), run());
}
