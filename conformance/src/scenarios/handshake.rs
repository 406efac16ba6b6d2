//! Handshake: authentication outcomes, version and preface errors, pipelining,
//! the handshake timeout and the negotiated values (§2, §6.3, §7).

use super::raw::{self, Raw};
use super::{ask, check, psk_config, run, serve, still_serves, try_connect, KEY};
use crate::{Runtime, Scenario};
use core::time::Duration;
use std::sync::Arc;
use weft_core::auth::PskAuthenticator;
use weft_core::conn::{CloseInfo, CloseKind, Side};
use weft_core::wire::frame::{ty, Frame, Status};
use weft_core::{Config, ErrorCode};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "handshake/peer-addresses",
            spec: "API (no wire form)",
            requirement: "Each side's handle knows its transport's peer address.",
            expected: "The client's handle reports the server's listening address; the server's app (`peer`) reports a loopback address.",
            run: peer_addresses,
        },
        Scenario {
            id: "handshake/no-auth",
            spec: "§7.1, §7.6",
            requirement: "Without keys on either side the handshake completes with scheme 0.",
            expected: "Client connected; version 1; peer not authenticated; echo works.",
            run: no_auth,
        },
        Scenario {
            id: "handshake/key-selection",
            spec: "§7.2",
            requirement: "A server holding several keys proves the one the client names, and its application learns that key id (§7.6).",
            expected: "A client with the server's second key id connects authenticated; `whoami` answers `conformance`.",
            run: key_selection,
        },
        Scenario {
            id: "handshake/wrong-key",
            spec: "§7.4, §18.4",
            requirement: "A wrong key fails authentication; the client detects it from the server proof first.",
            expected: "Client closed: AUTH_FAILED, initiator Local, kind Error (the server then sees AUTH_FAILED from the client).",
            run: wrong_key,
        },
        Scenario {
            id: "handshake/unknown-key-id",
            spec: "§7.2",
            requirement: "An unknown key id is indistinguishable from a wrong key (dummy-key proof).",
            expected: "Client closed: AUTH_FAILED, initiator Local, kind Error.",
            run: unknown_key_id,
        },
        Scenario {
            id: "handshake/auth-required",
            spec: "§7.2",
            requirement: "A server with keys refuses a client that offers no authentication.",
            expected: "Server sends CLOSE(AUTH_REQUIRED) in place of SERVER_HELLO: client closed AUTH_REQUIRED, initiator Peer.",
            run: auth_required,
        },
        Scenario {
            id: "handshake/server-without-keys",
            spec: "§7.4 step 3",
            requirement: "A server without keys refuses a client offering authentication (scheme 1) with AUTH_FAILED in place of its SERVER_HELLO, instead of connecting it unauthenticated.",
            expected: "Client sees Closed{Error, AUTH_FAILED, initiator Peer}.",
            run: server_without_keys,
        },
        Scenario {
            id: "handshake/version-mismatch",
            spec: "§2 rule 2",
            requirement: "Prefaces without a common version end the connection.",
            expected: "Raw preface 2..3: server sends its preface, then CLOSE(UNSUPPORTED_VERSION) and closes; it still serves others.",
            run: version_mismatch,
        },
        Scenario {
            id: "handshake/bad-preface",
            spec: "§2 rule 1",
            requirement: "First bytes that are not a Weft preface end the connection.",
            expected: "Raw \"GET / HTTP/1.1\": server sends its preface, CLOSE(BAD_PREFACE) and closes; it still serves others.",
            run: bad_preface,
        },
        Scenario {
            id: "handshake/pipelined-request",
            spec: "§7.3, §18.3",
            requirement: "A client may pipeline a request right after CLIENT_HELLO; a request pipelined before authentication completes is processed after it.",
            expected: "A scripted server that answers nothing reads the client's REQUEST(echo) right after its CLIENT_HELLO (so it was sent before any SERVER_HELLO), then answers; and a PSK client issuing echo before the handshake finished is answered Ok with the payload.",
            run: pipelined,
        },
        Scenario {
            id: "handshake/timeout",
            spec: "§7.1, §16",
            requirement: "A handshake that does not complete in time is closed.",
            expected: "Raw peer sends only its preface; server (handshake_timeout 200 ms) sends CLOSE(HANDSHAKE_TIMEOUT).",
            run: timeout,
        },
        Scenario {
            id: "handshake/negotiated",
            spec: "§6.3",
            requirement: "Negotiated values: smaller non-zero heartbeat and idle timeout, integrity off only when both agree, peer limits reported.",
            expected: "heartbeat 300 ms, idle 2 s, integrity off, capabilities 3, the server's max_concurrent_requests (77) seen; echo works without CRC trailers.",
            run: negotiated,
        },
        Scenario {
            id: "handshake/integrity-kept",
            spec: "§3.3, §6.3",
            requirement: "Integrity stays on unless both sides announce INTEGRITY=0.",
            expected: "Client off, server on: negotiated integrity on; echo works.",
            run: integrity_kept,
        },
    ]
}

fn expect_fail(
    client: &dyn Runtime,
    server: &dyn Runtime,
    server_cfg: Config,
    client_cfg: Config,
    code: ErrorCode,
    side: Side,
) -> Result<(), String> {
    let srv = serve(server, server_cfg)?;
    let (_h, r) = try_connect(client, srv.addr, client_cfg)?;
    let want = CloseInfo {
        code,
        initiator: side,
        kind: CloseKind::Error,
    };
    match r {
        Err(c) if c == want => Ok(()),
        other => Err(format!("expected {want:?}, got {other:?}")),
    }
}

fn no_auth(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let (h, r) = try_connect(client, srv.addr, Config::default())?;
    r.map_err(|c| format!("handshake: {c:?}"))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    check(n.version == 1, || format!("version {}", n.version))?;
    check(!n.authenticated, || "authenticated without keys".into())?;
    let p = run(client, ask(&h, "echo", b"hi"))?;
    check(p == b"hi", || format!("echo {p:?}"))
}

fn key_selection(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut a = PskAuthenticator::new();
    a.add_key(b"first", b"first-key-0123456789abcdef")
        .map_err(|e| format!("{e:?}"))?;
    a.add_key(b"conformance", KEY)
        .map_err(|e| format!("{e:?}"))?;
    let cfg = Config {
        auth: Some(Arc::new(a)),
        ..Config::default()
    };
    let srv = serve(server, cfg)?;
    let (h, r) = try_connect(client, srv.addr, psk_config(b"conformance", KEY))?;
    r.map_err(|c| format!("handshake: {c:?}"))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    check(n.authenticated, || "server proof not reported".into())?;
    let p = run(client, ask(&h, "echo", b"k"))?;
    check(p == b"k", || format!("echo {p:?}"))?;
    let who = run(client, ask(&h, "whoami", b""))?;
    check(who == b"conformance", || {
        format!(
            "server application saw key id {:?}",
            String::from_utf8_lossy(&who)
        )
    })
}

fn wrong_key(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    expect_fail(
        client,
        server,
        psk_config(b"conformance", KEY),
        psk_config(b"conformance", b"another-key-0123456789abcdefghij"),
        ErrorCode::AUTH_FAILED,
        Side::Local,
    )
}

fn unknown_key_id(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    expect_fail(
        client,
        server,
        psk_config(b"conformance", KEY),
        psk_config(b"stranger", KEY),
        ErrorCode::AUTH_FAILED,
        Side::Local,
    )
}

fn auth_required(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    expect_fail(
        client,
        server,
        psk_config(b"conformance", KEY),
        Config::default(),
        ErrorCode::AUTH_REQUIRED,
        Side::Peer,
    )
}

fn server_without_keys(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    expect_fail(
        client,
        server,
        Config::default(),
        psk_config(b"conformance", KEY),
        ErrorCode::AUTH_FAILED,
        Side::Peer,
    )
}

fn version_mismatch(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let mut r = Raw::connect(srv.addr)?;
    r.send(&raw::preface(2, 3))?;
    let p = r.peer_preface()?;
    check(&p[..4] == b"WEFT", || format!("server preface {p:?}"))?;
    let code = r.expect_close()?;
    check(code == ErrorCode::UNSUPPORTED_VERSION, || {
        format!("CLOSE({code:?})")
    })?;
    drop(r);
    still_serves(client, &srv)
}

fn bad_preface(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let mut r = Raw::connect(srv.addr)?;
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let p = r.peer_preface()?;
    check(&p[..4] == b"WEFT", || format!("server preface {p:?}"))?;
    let code = r.expect_close()?;
    check(code == ErrorCode::BAD_PREFACE, || {
        format!("CLOSE({code:?})")
    })?;
    drop(r);
    still_serves(client, &srv)
}

fn pipelined(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    first_flight(client)?;
    let srv = serve(server, psk_config(b"conformance", KEY))?;
    let h = client
        .connect(srv.addr, psk_config(b"conformance", KEY))
        .map_err(|e| format!("connect: {e}"))?;
    // No `connected().await` first: the request is pipelined after CLIENT_HELLO.
    let p = run(client, ask(&h, "echo", b"pipelined"))?;
    check(p == b"pipelined", || format!("echo {p:?}"))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    check(n.authenticated, || "not authenticated".into())
}

/// The client's first flight, read by a scripted server that sends nothing until
/// it has seen the request: a REQUEST read before any SERVER_HELLO was written was
/// pipelined (a client that waited for the SERVER_HELLO would send nothing, and the
/// peer's read would time out).
fn first_flight(client: &dyn Runtime) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("raw listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("raw listener: {e}"))?;
    let h = client
        .connect(addr, Config::default())
        .map_err(|e| format!("connect: {e}"))?;
    let mut r = Raw::accept(&listener)?;
    r.read_client_hello()?;
    std::thread::scope(|s| {
        let peer = s.spawn(move || -> Result<(), String> {
            let (t, body) = r
                .read_frame()
                .map_err(|e| format!("no frame after CLIENT_HELLO (not pipelined?): {e}"))?
                .ok_or("EOF after CLIENT_HELLO")?;
            check(t == ty::REQUEST, || {
                format!("frame {t:#04x} after CLIENT_HELLO, not the pipelined REQUEST")
            })?;
            let Ok(Frame::Request {
                id,
                subject,
                payload,
                ..
            }) = Frame::decode(t, &body)
            else {
                return Err("malformed pipelined REQUEST".into());
            };
            check(subject == b"echo" && payload == b"first flight", || {
                format!("pipelined REQUEST {subject:?} {payload:?}")
            })?;
            // Only now does the client learn the server's HELLO, then the answer.
            r.send_server_hello(&raw::client_params())?;
            r.send_frame(&Frame::Response {
                id,
                status: Status::Ok,
                payload: b"answered",
            })?;
            // Keep the connection until the client has read the answer.
            let _ = r.read_frame();
            Ok(())
        });
        let asked = run(client, ask(&h, "echo", b"first flight"));
        h.close(ErrorCode::NO_ERROR, "done");
        let peer = peer.join().map_err(|_| "raw peer panicked".to_string())?;
        peer?;
        let p = asked?;
        check(p == b"answered", || format!("answer {p:?}"))
    })
}

fn timeout(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        handshake_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let srv = serve(server, cfg)?;
    let mut r = Raw::connect(srv.addr)?;
    r.send(&raw::preface(1, 1))?;
    let code = r.expect_close()?;
    check(code == ErrorCode::HANDSHAKE_TIMEOUT, || {
        format!("CLOSE({code:?})")
    })?;
    drop(r);
    still_serves(client, &srv)
}

fn negotiated(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut s = Config::default();
    s.params.heartbeat_ms = 1000;
    s.params.idle_timeout_ms = 2000;
    s.params.integrity = false;
    s.params.max_concurrent_requests = 77;
    let mut c = Config::default();
    c.params.heartbeat_ms = 300;
    c.params.idle_timeout_ms = 5000;
    c.params.integrity = false;
    let srv = serve(server, s)?;
    let (h, r) = try_connect(client, srv.addr, c)?;
    r.map_err(|c| format!("handshake: {c:?}"))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    check(n.heartbeat == Some(Duration::from_millis(300)), || {
        format!("heartbeat {:?}", n.heartbeat)
    })?;
    check(n.idle_timeout == Some(Duration::from_millis(2000)), || {
        format!("idle {:?}", n.idle_timeout)
    })?;
    check(!n.integrity, || {
        "integrity on although both announced 0".into()
    })?;
    check(n.capabilities == 3, || {
        format!("capabilities {}", n.capabilities)
    })?;
    check(n.peer.max_concurrent_requests == 77, || {
        format!("peer limits {:?}", n.peer)
    })?;
    let p = run(client, ask(&h, "echo", &[5u8; 3000]))?;
    check(p == [5u8; 3000], || "echo without CRC differs".into())
}

fn integrity_kept(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let mut c = Config::default();
    c.params.integrity = false;
    let (h, r) = try_connect(client, srv.addr, c)?;
    r.map_err(|c| format!("handshake: {c:?}"))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    check(n.integrity, || {
        "integrity off although the server requires it".into()
    })?;
    let p = run(client, ask(&h, "echo", b"crc"))?;
    check(p == b"crc", || format!("echo {p:?}"))
}

fn peer_addresses(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let (h, r) = try_connect(client, srv.addr, Config::default())?;
    r.map_err(|c| format!("handshake failed: {c:?}"))?;
    check(h.peer_addr() == Some(srv.addr), || {
        format!(
            "client sees peer {:?}, server is {}",
            h.peer_addr(),
            srv.addr
        )
    })?;
    let p = run(client, ask(&h, "peer", b""))?;
    let p = String::from_utf8_lossy(&p).into_owned();
    let ok = p
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    check(ok, || format!("server sees peer {p:?}"))
}
