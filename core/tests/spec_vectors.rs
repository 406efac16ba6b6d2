//! Checks the test vectors of `docs/PROTOCOL.md` against the wire codec.
//!
//! Every fenced block with the info string `vector` is decoded with the matching
//! decoder and re-encoded; the bytes must come back unchanged. The frame vectors must
//! also be exactly the encodings of the sample frames below (a copy of the `samples()`
//! of `core/src/wire/frame.rs`), and every frame type must have a vector.
//!
//! The handshake vectors (`HANDSHAKE_*`, kind `wire`) are the exact bytes a real
//! `weft_core::conn::Connection` client and server send each other during a PSK
//! handshake with fixed seeds: with `alloc`, the handshake is run and its bytes must
//! equal the vectors. Without it (and with it), the vectors must be consistent: the
//! proofs in them are recomputed from their transcript, the nonces from the seeds
//! by the spec's HKDF derivation, and the worked example of section 7.5 must be derived from them.
//!
//! To regenerate the vector blocks after a deliberate wire change, run
//! `cargo test -p weft-core --test spec_vectors -- --ignored --nocapture print_vectors`
//! and paste its output into the document.

use std::fmt::Write as _;

use weft_core::auth::{Authenticator, ProofRole, PskAuthenticator, Transcript};
use weft_core::wire::codec::Writer;
use weft_core::wire::frame::{self, ty, Frame, Status};
use weft_core::wire::params::{Params, CAPS_V1};
use weft_core::wire::preface::Preface;
use weft_core::wire::record;
use weft_core::ErrorCode;
#[cfg(feature = "alloc")]
use weft_core::{
    conn::{Connection, Event},
    Config, Instant, Role,
};
use zerocopy::IntoBytes;

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"));

/// Every frame type code of `frame::ty` that has an encoding in version 1, and one code
/// of the ignorable extension range. (`ty::RESERVED_ACK` is reserved for resumption and
/// has no encoding: it decodes as `UNKNOWN_FRAME`, checked separately.)
const FRAME_TYPES: [u8; 21] = {
    // 0x55: within ty::EXTENSION_MIN..=ty::EXTENSION_MAX.
    let mut all = [0x55; 21];
    let mut i = 0;
    while i < ty::DEFINED.len() {
        all[i] = ty::DEFINED[i];
        i += 1;
    }
    all
};

/// Fewer vectors than this means some were deleted.
const MIN_VECTORS: usize = 37;

#[derive(Debug)]
struct Vector {
    name: String,
    kind: String,
    bytes: Vec<u8>,
}

fn parse_hex(text: &str, name: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            let d = c
                .to_digit(16)
                .unwrap_or_else(|| panic!("vector {name}: bad hex digit {c:?}"));
            d as u8
        })
        .collect();
    assert!(
        digits.len() % 2 == 0,
        "vector {name}: odd number of hex digits"
    );
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// Every `vector` block of the document, in order.
fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut lines = SPEC.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```vector" {
            continue;
        }
        let mut block = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            block.push(l.trim());
        }
        let mut it = block.into_iter();
        let name = it
            .next()
            .and_then(|l| l.strip_prefix("name:"))
            .expect("a vector block starts with `name:`")
            .trim()
            .to_string();
        let kind = it
            .next()
            .and_then(|l| l.strip_prefix("kind:"))
            .unwrap_or_else(|| panic!("vector {name}: second line must be `kind:`"))
            .trim()
            .to_string();
        let first = it
            .next()
            .and_then(|l| l.strip_prefix("hex:"))
            .unwrap_or_else(|| panic!("vector {name}: third line must be `hex:`"));
        let mut hex = String::from(first);
        for l in it {
            hex.push(' ');
            hex.push_str(l);
        }
        let bytes = parse_hex(&hex, &name);
        assert!(!bytes.is_empty(), "vector {name} is empty");
        out.push(Vector { name, kind, bytes });
    }
    out
}

/// Decodes one whole frame and re-encodes it; returns the decoded type.
fn frame_round_trip(name: &str, bytes: &[u8]) -> u8 {
    let (t, len, h) = frame::decode_header(bytes)
        .unwrap_or_else(|e| panic!("vector {name}: bad frame header: {e:?}"));
    assert_eq!(h + len, bytes.len(), "vector {name}: length field");
    let f = Frame::decode(t, &bytes[h..])
        .unwrap_or_else(|e| panic!("vector {name}: does not decode: {e:?}"));
    assert_eq!(f.ty(), t, "vector {name}: type");
    let mut buf = [0u8; 1024];
    let n = f
        .encode(&mut buf)
        .unwrap_or_else(|| panic!("vector {name}: does not re-encode"));
    assert_eq!(&buf[..n], bytes, "vector {name}: re-encoding differs");
    t
}

fn record_round_trip(name: &str, bytes: &[u8]) {
    let info = record::parse(bytes, record::MAX_PAYLOAD, false)
        .unwrap_or_else(|e| panic!("vector {name}: record refused: {e:?}"))
        .unwrap_or_else(|| panic!("vector {name}: record incomplete"));
    assert_eq!(info.total_len, bytes.len(), "vector {name}: record length");
    let integrity = bytes[2] & record::FLAG_INTEGRITY != 0;
    assert_eq!(
        record::parse(bytes, record::MAX_PAYLOAD, true).is_ok(),
        integrity,
        "vector {name}: trailer presence"
    );
    let payload = &bytes[info.payload_start..info.payload_start + info.payload_len];
    let mut buf = [0u8; 2048];
    let mut pos = record::HEADER_LEN;
    let mut rest = payload;
    while !rest.is_empty() {
        let (t, len, h) = frame::decode_header(rest)
            .unwrap_or_else(|e| panic!("vector {name}: bad frame header: {e:?}"));
        assert!(
            h + len <= rest.len(),
            "vector {name}: frame spans the record"
        );
        let f = Frame::decode(t, &rest[h..h + len])
            .unwrap_or_else(|e| panic!("vector {name}: frame does not decode: {e:?}"));
        pos += f.encode(&mut buf[pos..]).expect("frame re-encodes");
        rest = &rest[h + len..];
    }
    let n = record::seal(&mut buf, pos - record::HEADER_LEN, integrity).expect("record seals");
    assert_eq!(&buf[..n], bytes, "vector {name}: re-sealed record differs");
}

/// A byte sequence as one side writes it: an optional preface, then whole records.
/// Each record is decoded and re-encoded (`record_round_trip`); returns the preface
/// (if any) and the frames of every record, in order.
fn wire_round_trip(name: &str, bytes: &[u8]) -> (Option<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rest = bytes;
    let mut preface = None;
    if rest.starts_with(b"WEFT") {
        preface_round_trip(name, &rest[..8]);
        preface = Some(rest[..8].to_vec());
        rest = &rest[8..];
    }
    let mut frames = Vec::new();
    assert!(!rest.is_empty(), "vector {name}: no record");
    while !rest.is_empty() {
        let info = record::parse(rest, record::MAX_PAYLOAD, false)
            .unwrap_or_else(|e| panic!("vector {name}: record refused: {e:?}"))
            .unwrap_or_else(|| panic!("vector {name}: record incomplete"));
        record_round_trip(name, &rest[..info.total_len]);
        let mut p = &rest[info.payload_start..info.payload_start + info.payload_len];
        while !p.is_empty() {
            let (_, len, h) = frame::decode_header(p).expect("checked above");
            frame_round_trip(name, &p[..h + len]);
            frames.push(p[..h + len].to_vec());
            p = &p[h + len..];
        }
        rest = &rest[info.total_len..];
    }
    (preface, frames)
}

fn preface_round_trip(name: &str, bytes: &[u8]) {
    let p = Preface::parse(bytes)
        .unwrap_or_else(|| panic!("vector {name}: preface incomplete"))
        .unwrap_or_else(|e| panic!("vector {name}: preface refused: {e:?}"));
    assert_eq!(p.as_bytes(), bytes, "vector {name}: preface differs");
}

fn params_round_trip(name: &str, bytes: &[u8]) {
    let p =
        Params::decode(bytes).unwrap_or_else(|e| panic!("vector {name}: params refused: {e:?}"));
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    let n = w.finish().expect("params fit");
    assert_eq!(n, p.encoded_len());
    assert_eq!(&buf[..n], bytes, "vector {name}: params differ");
}

#[test]
fn every_vector_round_trips() {
    let vs = vectors();
    for v in &vs {
        match v.kind.as_str() {
            "frame" => {
                frame_round_trip(&v.name, &v.bytes);
            }
            "record" => record_round_trip(&v.name, &v.bytes),
            "preface" => preface_round_trip(&v.name, &v.bytes),
            "params" => params_round_trip(&v.name, &v.bytes),
            "wire" => {
                wire_round_trip(&v.name, &v.bytes);
            }
            k => panic!("vector {}: unknown kind {k:?}", v.name),
        }
    }
}

#[test]
fn vector_names_are_unique() {
    let vs = vectors();
    for (i, a) in vs.iter().enumerate() {
        assert!(
            vs[i + 1..].iter().all(|b| b.name != a.name),
            "duplicate vector name {}",
            a.name
        );
    }
}

#[test]
fn enough_vectors() {
    let n = vectors().len();
    assert!(n >= MIN_VECTORS, "only {n} vectors, expected {MIN_VECTORS}");
}

#[test]
fn every_frame_type_has_a_vector() {
    let vs = vectors();
    for t in FRAME_TYPES {
        let found = vs
            .iter()
            .filter(|v| v.kind == "frame")
            .any(|v| frame_round_trip(&v.name, &v.bytes) == t);
        assert!(found, "no frame vector of type {t:#04x}");
    }
    // Every record vector holds at least one frame, and the reserved type has none.
    assert!(vs.iter().any(|v| v.kind == "record"), "no record vector");
    assert!(vs.iter().any(|v| v.kind == "preface"), "no preface vector");
    assert!(vs.iter().any(|v| v.kind == "params"), "no params vector");
    assert!(vs.iter().any(|v| v.kind == "wire"), "no wire vector");
    assert_eq!(
        Frame::decode(ty::RESERVED_ACK, &[]),
        Err(ErrorCode::UNKNOWN_FRAME)
    );
}

// ----------------------------------------------------------------------------------
// The vectors the document must contain.

/// A copy of `samples()` in `core/src/wire/frame.rs`, with the vector names.
fn samples() -> Vec<(&'static str, Frame<'static>)> {
    vec![
        (
            "CLIENT_HELLO",
            Frame::ClientHello {
                nonce: [7; frame::NONCE_LEN],
                params: &[9, 0x88, 0x27],
                auth_scheme: 1,
                key_id: b"k1",
                token: b"",
            },
        ),
        (
            "SERVER_HELLO",
            Frame::ServerHello {
                nonce: [8; frame::NONCE_LEN],
                params: &[],
                auth_scheme: 1,
                proof: &[0xab; 32],
                token: b"",
            },
        ),
        ("AUTH", Frame::Auth { proof: &[0xcd; 32] }),
        (
            "PING",
            Frame::Ping {
                token: 0x0102_0304_0506_0708,
            },
        ),
        ("PONG", Frame::Pong { token: 42 }),
        (
            "CLOSE",
            Frame::Close {
                code: ErrorCode::NO_ERROR,
                last_request_id: 300,
                reason: "bye",
            },
        ),
        (
            "WINDOW_UPDATE",
            Frame::WindowUpdate {
                id: 3,
                increment: 65_536,
            },
        ),
        ("MESSAGE", Frame::Message { payload: b"hello" }),
        (
            "REQUEST",
            Frame::Request {
                id: 1,
                timeout_ms: 250,
                subject: b"svc.echo",
                payload: b"ping",
            },
        ),
        (
            "RESPONSE",
            Frame::Response {
                id: 1,
                status: Status::Error {
                    code: 4242,
                    message: "nope",
                },
                payload: b"",
            },
        ),
        ("CANCEL", Frame::Cancel { id: 9 }),
        (
            "SUBSCRIBE",
            Frame::Subscribe {
                sub_id: 1,
                policy: 1,
                credit: 64,
                filter: b"a.*.c",
                group: b"workers",
            },
        ),
        ("UNSUBSCRIBE", Frame::Unsubscribe { sub_id: 1 }),
        (
            "PUBLISH",
            Frame::Publish {
                topic: b"a.b.c",
                payload: b"x",
            },
        ),
        (
            "DELIVER",
            Frame::Deliver {
                sub_id: 1,
                topic: b"a.b.c",
                payload: b"x",
            },
        ),
        (
            "SUB_CREDIT",
            Frame::SubCredit {
                sub_id: 1,
                increment: 32,
            },
        ),
        (
            "SUB_DROPPED",
            Frame::SubDropped {
                sub_id: 1,
                total: 5,
            },
        ),
        (
            "STREAM_DATA",
            Frame::StreamData {
                id: 1,
                flags: frame::STREAM_OPEN | frame::STREAM_FIN,
                data: b"data",
            },
        ),
        ("STREAM_RESET", Frame::StreamReset { id: 1, code: 7 }),
        (
            "FRAGMENT",
            Frame::Fragment {
                frag_id: 2,
                flags: frame::FRAG_FIRST,
                total_len: 70_000,
                data: b"\x10\xe0\xa2\x04",
            },
        ),
        (
            "EXTENSION_0x55",
            Frame::Extension {
                ty: 0x55,
                body: b"ignored",
            },
        ),
    ]
}

/// Further frame vectors beyond the samples: other variants of the same types.
fn extra_frames() -> Vec<(&'static str, Frame<'static>)> {
    vec![
        (
            "RESPONSE_OK",
            Frame::Response {
                id: 2,
                status: Status::Ok,
                payload: b"pong",
            },
        ),
        (
            "RESPONSE_NO_RESPONDER",
            Frame::Response {
                id: 3,
                status: Status::NoResponder,
                payload: b"",
            },
        ),
        (
            "CLOSE_PROTOCOL_ERROR",
            Frame::Close {
                code: ErrorCode::PROTOCOL_ERROR,
                last_request_id: 0,
                reason: "",
            },
        ),
        (
            "WINDOW_UPDATE_CONNECTION",
            Frame::WindowUpdate {
                id: 0,
                increment: 1 << 20,
            },
        ),
        (
            "FRAGMENT_LAST",
            Frame::Fragment {
                frag_id: 2,
                flags: frame::FRAG_LAST,
                total_len: 0,
                data: b"tail",
            },
        ),
        (
            "MESSAGE_32",
            Frame::Message {
                payload: &[0x5a; 32],
            },
        ),
    ]
}

fn hex_lines(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        s.push_str(&line.join(" "));
        s.push('\n');
    }
    s
}

fn block(name: &str, kind: &str, bytes: &[u8]) -> String {
    format!(
        "```vector\nname: {name}\nkind: {kind}\nhex:\n{}```\n",
        hex_lines(bytes)
    )
}

fn encode_frame(f: &Frame<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut buf), Some(buf.len()));
    buf
}

fn record_of(frames: &[Frame<'_>], integrity: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut pos = record::HEADER_LEN;
    for f in frames {
        pos += f.encode(&mut buf[pos..]).unwrap();
    }
    let n = record::seal(&mut buf, pos - record::HEADER_LEN, integrity).unwrap();
    buf.truncate(n);
    buf
}

fn encode_params(p: &Params) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    let n = w.finish().unwrap();
    buf[..n].to_vec()
}

/// The parameters of `Config::default()`: pub/sub and streams, 5 s heartbeat, 30 s
/// idle timeout.
fn config_default_params() -> Params {
    Params {
        capabilities: CAPS_V1,
        heartbeat_ms: 5_000,
        idle_timeout_ms: 30_000,
        ..Params::default()
    }
}

/// Every vector the document must contain, as (name, kind, bytes).
fn expected_vectors() -> Vec<(String, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, f) in samples().iter().chain(extra_frames().iter()) {
        out.push((name.to_string(), "frame", encode_frame(f)));
    }
    let hello = Frame::Message { payload: b"hello" };
    out.push((
        "RECORD_MESSAGE_CRC".into(),
        "record",
        record_of(&[hello], true),
    ));
    out.push((
        "RECORD_MESSAGE_NO_CRC".into(),
        "record",
        record_of(&[hello], false),
    ));
    out.push((
        "RECORD_TWO_FRAMES_CRC".into(),
        "record",
        record_of(
            &[
                Frame::Pong { token: 42 },
                Frame::Publish {
                    topic: b"a.b.c",
                    payload: b"x",
                },
            ],
            true,
        ),
    ));
    out.push((
        "PREFACE_V1".into(),
        "preface",
        Preface::new(1, 1).as_bytes().to_vec(),
    ));
    out.push((
        "PREFACE_V1_TO_3".into(),
        "preface",
        Preface::new(1, 3).as_bytes().to_vec(),
    ));
    let p = Params {
        capabilities: CAPS_V1,
        heartbeat_ms: 5000,
        integrity: false,
        ..Params::default()
    };
    out.push((
        "PARAMS_PUBSUB_STREAMS_HB5000_NOCRC".into(),
        "params",
        encode_params(&p),
    ));
    out.push((
        "PARAMS_CONFIG_DEFAULT".into(),
        "params",
        encode_params(&config_default_params()),
    ));
    out
}

#[test]
fn document_holds_the_expected_vectors() {
    let vs = vectors();
    for (name, kind, bytes) in expected_vectors() {
        let v = vs
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("the document lacks vector {name}"));
        assert_eq!(v.kind, kind, "vector {name}: kind");
        assert_eq!(v.bytes, bytes, "vector {name}: bytes differ from the code");
    }
}

// ----------------------------------------------------------------------------------
// The real handshake (section 7.5 and the HANDSHAKE_* vectors).

/// The pre-shared key of the handshake vectors (32 ASCII bytes).
const HS_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// Its key id.
const HS_KEY_ID: &[u8] = b"device-7";
/// The seeds given to `Connection::new`: 32 bytes of 0x01 (client) and of 0x02
/// (server).
const HS_CLIENT_SEED: [u8; 32] = [1; 32];
const HS_SERVER_SEED: [u8; 32] = [2; 32];

/// The bytes each side writes during the handshake.
struct Flights {
    /// Client preface and the record holding CLIENT_HELLO.
    client_first: Vec<u8>,
    /// Server preface and the record holding SERVER_HELLO.
    server: Vec<u8>,
    /// The record holding AUTH.
    client_auth: Vec<u8>,
}

/// Runs a real client and server through the PSK handshake, in memory, at
/// `Instant::ZERO`, and captures what each one writes.
#[cfg(feature = "alloc")]
fn run_handshake() -> Flights {
    use std::sync::Arc;
    fn config() -> Config {
        let a = PskAuthenticator::with_client_key(HS_KEY_ID, HS_KEY).expect("valid key");
        Config {
            auth: Some(Arc::new(a)),
            ..Config::default()
        }
    }
    fn out(c: &mut Connection) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 1 << 17];
        loop {
            let n = c.poll_transmit(Instant::ZERO, &mut buf);
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&buf[..n]);
        }
    }
    fn feed(c: &mut Connection, bytes: &[u8]) -> bool {
        assert_eq!(c.handle_input(Instant::ZERO, bytes), bytes.len());
        let mut connected = false;
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Connected => connected = true,
                Event::Closed(info) => panic!("handshake failed: {info:?}"),
                _ => {}
            }
        }
        connected
    }
    let now = Instant::ZERO;
    let mut client = Connection::new(Role::Client, config(), now, HS_CLIENT_SEED);
    let mut server = Connection::new(Role::Server, config(), now, HS_SERVER_SEED);
    let client_first = out(&mut client);
    assert!(!feed(&mut server, &client_first), "server waits for AUTH");
    let server_flight = out(&mut server);
    assert!(feed(&mut client, &server_flight), "client connected");
    let client_auth = out(&mut client);
    assert!(feed(&mut server, &client_auth), "server connected");
    assert!(client.negotiated().is_some_and(|n| n.authenticated));
    assert!(server.negotiated().is_some_and(|n| n.authenticated));
    assert!(out(&mut server).is_empty() && out(&mut client).is_empty());
    Flights {
        client_first,
        server: server_flight,
        client_auth,
    }
}

/// The handshake vectors as the document holds them.
fn doc_flights() -> Flights {
    let vs = vectors();
    let get = |name: &str| {
        let v = vs
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("the document lacks vector {name}"));
        assert_eq!(v.kind, "wire", "vector {name}: kind");
        v.bytes.clone()
    };
    Flights {
        client_first: get("HANDSHAKE_CLIENT_FIRST_FLIGHT"),
        server: get("HANDSHAKE_SERVER_FLIGHT"),
        client_auth: get("HANDSHAKE_CLIENT_AUTH"),
    }
}

/// A nonce as section 7.5 derives it from a 32-byte seed, written here from the
/// spec's text alone: HKDF-SHA256 with salt "weft v1 seed" and info "weft v1 nonce",
/// the first 16 bytes of the one output block.
fn spec_nonce(seed: &[u8; 32]) -> [u8; 16] {
    use hmac::{Hmac, Mac};
    fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
    let prk = mac(b"weft v1 seed", &[seed]);
    let okm = mac(&prk, &[b"weft v1 nonce", &[1]]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&okm[..16]);
    out
}

fn flat(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// Decodes one whole frame.
fn decode(b: &[u8]) -> Frame<'_> {
    let (t, _, h) = frame::decode_header(b).unwrap();
    Frame::decode(t, &b[h..]).unwrap()
}

/// Checks the handshake flights frame by frame (kinds, nonces, params, transcript,
/// proofs) and returns the worked example of section 7.5 derived from them.
fn handshake_example(f: &Flights) -> String {
    let (cp, cframes) = wire_round_trip("HANDSHAKE_CLIENT_FIRST_FLIGHT", &f.client_first);
    let (sp, sframes) = wire_round_trip("HANDSHAKE_SERVER_FLIGHT", &f.server);
    let (ap, aframes) = wire_round_trip("HANDSHAKE_CLIENT_AUTH", &f.client_auth);
    let preface = Preface::new(1, 1);
    assert_eq!(cp.as_deref(), Some(preface.as_bytes()), "client preface");
    assert_eq!(sp.as_deref(), Some(preface.as_bytes()), "server preface");
    assert!(ap.is_none(), "the AUTH flight has no preface");
    assert_eq!(cframes.len(), 1, "one CLIENT_HELLO, nothing pipelined");
    assert_eq!(sframes.len(), 1, "one SERVER_HELLO");
    assert_eq!(aframes.len(), 1, "one AUTH");
    // Every handshake record carries the CRC trailer (before the peer's HELLO, and
    // the HELLO records always).
    for (name, w, skip) in [
        ("client first flight", &f.client_first, 8),
        ("server flight", &f.server, 8),
        ("auth", &f.client_auth, 0),
    ] {
        assert_eq!(w[skip + 2], record::FLAG_INTEGRITY, "{name}: record flags");
    }
    let params = encode_params(&config_default_params());
    let Frame::ClientHello {
        nonce: client_nonce,
        params: cparams,
        auth_scheme: 1,
        key_id: HS_KEY_ID,
        token: b"",
    } = decode(&cframes[0])
    else {
        panic!("the client's first frame is a scheme-1 CLIENT_HELLO for device-7")
    };
    assert_eq!(
        cparams,
        &params[..],
        "client params are Config::default()'s"
    );
    let Frame::ServerHello {
        nonce: server_nonce,
        params: sparams,
        auth_scheme: 1,
        proof: server_proof,
        token: b"",
    } = decode(&sframes[0])
    else {
        panic!("the server's first frame is a scheme-1 SERVER_HELLO")
    };
    assert_eq!(
        sparams,
        &params[..],
        "server params are Config::default()'s"
    );
    let Frame::Auth {
        proof: client_proof,
    } = decode(&aframes[0])
    else {
        panic!("the client's second flight is AUTH")
    };
    assert_eq!(client_nonce, spec_nonce(&HS_CLIENT_SEED), "client nonce");
    assert_eq!(server_nonce, spec_nonce(&HS_SERVER_SEED), "server nonce");

    // The transcript: both prefaces, CLIENT_HELLO as sent, SERVER_HELLO with an
    // empty proof.
    let unsigned = encode_frame(&Frame::ServerHello {
        nonce: server_nonce,
        params: sparams,
        auth_scheme: 1,
        proof: b"",
        token: b"",
    });
    let mut t = Transcript::new();
    t.update(preface.as_bytes());
    t.update(&cframes[0]);
    t.update(preface.as_bytes());
    t.update(&unsigned);
    let th = t.hash();
    let auth = PskAuthenticator::with_client_key(HS_KEY_ID, HS_KEY).unwrap();
    // The key id is known, so the dummy secret plays no part.
    let dummy = [0u8; 32];
    let want_server = auth.prove(HS_KEY_ID, ProofRole::Server, &th, &dummy);
    let want_client = auth.prove(HS_KEY_ID, ProofRole::Client, &th, &dummy);
    assert_eq!(server_proof, &want_server[..], "server proof");
    assert_eq!(client_proof, &want_client[..], "client proof");
    assert!(auth.verify(HS_KEY_ID, ProofRole::Client, &th, client_proof));

    let mut s = String::from("```text\n");
    let _ = writeln!(
        s,
        "psk                    = {} (\"{}\")",
        flat(HS_KEY),
        String::from_utf8_lossy(HS_KEY)
    );
    let _ = writeln!(
        s,
        "key id                 = {} (\"{}\")",
        flat(HS_KEY_ID),
        String::from_utf8_lossy(HS_KEY_ID)
    );
    let _ = writeln!(
        s,
        "seeds                  = client {} (01 x 32), server {} (02 x 32)",
        flat(&HS_CLIENT_SEED),
        flat(&HS_SERVER_SEED)
    );
    let _ = writeln!(s, "client nonce           = {}", flat(&client_nonce));
    let _ = writeln!(s, "server nonce           = {}", flat(&server_nonce));
    let _ = writeln!(s, "params (both)          = {}", flat(&params));
    let _ = writeln!(s, "client preface         = {}", flat(preface.as_bytes()));
    let _ = writeln!(s, "server preface         = {}", flat(preface.as_bytes()));
    let _ = writeln!(s, "CLIENT_HELLO as sent   = {}", flat(&cframes[0]));
    let _ = writeln!(s, "SERVER_HELLO, no proof = {}", flat(&unsigned));
    let _ = writeln!(s, "transcript hash        = {}", flat(&th));
    let _ = writeln!(s, "server proof           = {}", flat(&want_server));
    let _ = writeln!(s, "client proof           = {}", flat(&want_client));
    let _ = writeln!(s, "SERVER_HELLO as sent   = {}", flat(&sframes[0]));
    let _ = writeln!(s, "AUTH as sent           = {}", flat(&aframes[0]));
    s.push_str("```\n");
    s
}

/// The real connection's handshake bytes are exactly the document's vectors.
#[cfg(feature = "alloc")]
#[test]
fn handshake_vectors_are_what_the_connection_sends() {
    let real = run_handshake();
    let doc = doc_flights();
    let hex = |b: &[u8]| hex_lines(b);
    assert_eq!(
        hex(&real.client_first),
        hex(&doc.client_first),
        "HANDSHAKE_CLIENT_FIRST_FLIGHT differs from what the client sends"
    );
    assert_eq!(
        hex(&real.server),
        hex(&doc.server),
        "HANDSHAKE_SERVER_FLIGHT differs from what the server sends"
    );
    assert_eq!(
        hex(&real.client_auth),
        hex(&doc.client_auth),
        "HANDSHAKE_CLIENT_AUTH differs from what the client sends"
    );
}

/// The handshake vectors are a consistent conversation, and section 7.5 shows it.
#[test]
fn document_holds_the_handshake_example() {
    let ex = handshake_example(&doc_flights());
    assert!(
        SPEC.contains(&ex),
        "the worked handshake example differs from the vectors; expected:\n{ex}"
    );
}

/// Prints every block the document needs (regeneration helper). The handshake
/// vectors need `alloc` (they come from running the connection).
#[test]
#[ignore = "generator: prints the vector blocks for docs/PROTOCOL.md"]
fn print_vectors() {
    for (name, kind, bytes) in expected_vectors() {
        println!("{}", block(&name, kind, &bytes));
    }
    #[cfg(feature = "alloc")]
    {
        let f = run_handshake();
        println!(
            "{}",
            block("HANDSHAKE_CLIENT_FIRST_FLIGHT", "wire", &f.client_first)
        );
        println!("{}", block("HANDSHAKE_SERVER_FLIGHT", "wire", &f.server));
        println!("{}", block("HANDSHAKE_CLIENT_AUTH", "wire", &f.client_auth));
        println!("{}", handshake_example(&f));
    }
}
