//! Property tests of `weft-core`, through its public API only (and the in-memory
//! [`Pair`] of `weft_core::testing`, which the unit tests drive too).
//!
//! Each `#[test]` runs one property with quickcheck over a moderate number of
//! generated cases. The wire-format properties (1, 2, 3, 6, 8) exercise the codecs
//! directly; the others drive real [`Connection`]s in memory on a fixed clock.
//!
//! # Reproducing a failure
//!
//! quickcheck 1.1 has no seed environment variable of its own, but it accepts a
//! seeded generator (`QuickCheck::rng(Gen::from_size_and_seed(..))`). Every property
//! here picks a fresh random seed, prints it, and appends it to the failure message;
//! rerun a failure deterministically with
//!
//! ```text
//! WEFT_QC_SEED=<seed> cargo test -p weft-core --test properties <test name>
//! ```
//!
//! quickcheck also prints the (shrunk) failing input. `QUICKCHECK_TESTS=<n>`
//! overrides every property's case count and `QUICKCHECK_GENERATOR_SIZE=<n>` the
//! generator size (default 100).

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult, Testable};
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use weft_core::conn::{Connection, Event, Side, Stats};
use weft_core::integrity::header_check;
use weft_core::testing::{closed, collect, feed, flush, seal, Got, Pair, SERVER_SEED};
use weft_core::time::Instant;
use weft_core::varint::{self, VarintError};
use weft_core::wire::frame::{self, ty, Frame, FrameError, Status};
use weft_core::wire::params::Params;
use weft_core::wire::preface::{self, Preface};
use weft_core::wire::record;
use weft_core::{Config, ErrorCode, OverflowPolicy, Priority, Role};

// ===================================================================================
// Running properties reproducibly
// ===================================================================================

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn fresh_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Runs `prop` for `tests` passing cases with a printed, overridable seed.
fn check<A: Testable>(name: &str, tests: u64, prop: A) {
    let seed = env_num("WEFT_QC_SEED").unwrap_or_else(fresh_seed);
    let size = env_num("QUICKCHECK_GENERATOR_SIZE").unwrap_or(100) as usize;
    let tests = env_num("QUICKCHECK_TESTS").unwrap_or(tests);
    eprintln!("[{name}] {tests} cases, seed {seed} (rerun: WEFT_QC_SEED={seed})");
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(size, seed))
            .tests(tests)
            .max_tests(tests * 20)
            .quickcheck(prop)
    }));
    if let Err(e) = run {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{msg}\n[{name}] reproduce with WEFT_QC_SEED={seed}");
    }
}

/// `Err(message)` as a failed case with that message.
type Check = Result<(), String>;

fn verdict(r: Check) -> TestResult {
    match r {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ===================================================================================
// Small generators
// ===================================================================================

/// Uniform in `lo..=hi`.
fn range(g: &mut Gen, lo: u64, hi: u64) -> u64 {
    let span = hi - lo;
    if span == u64::MAX {
        u64::arbitrary(g)
    } else {
        lo + u64::arbitrary(g) % (span + 1)
    }
}

fn upto(g: &mut Gen, hi: usize) -> usize {
    range(g, 0, hi as u64) as usize
}

fn chance(g: &mut Gen, num: u64, den: u64) -> bool {
    range(g, 1, den) <= num
}

/// A `u64` of a random bit width, so that varints of every length turn up.
fn any_u64(g: &mut Gen) -> u64 {
    let bits = range(g, 0, 64);
    if bits == 0 {
        0
    } else {
        u64::arbitrary(g) >> (64 - bits)
    }
}

/// A length of at most `max`, biased towards small values and both ends.
fn len_upto(g: &mut Gen, max: usize) -> usize {
    match range(g, 0, 7) {
        0 => 0,
        1 => max,
        2 => upto(g, max),
        _ => upto(g, max.min(g.size())),
    }
}

/// Deterministic filler bytes from the generator (fast for large buffers).
fn noise(g: &mut Gen, n: usize) -> Vec<u8> {
    let mut s = u64::arbitrary(g) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn bytes_upto(g: &mut Gen, max: usize) -> Vec<u8> {
    let n = len_upto(g, max);
    noise(g, n)
}

/// Valid UTF-8 of at most `max` bytes, with multi-byte characters.
fn text_upto(g: &mut Gen, max: usize) -> String {
    let target = len_upto(g, max);
    let mut s = String::new();
    while s.len() < target {
        let c = char::arbitrary(g);
        if s.len() + c.len_utf8() > target {
            break;
        }
        s.push(c);
    }
    s
}

/// A payload: usually small, sometimes a few KiB.
fn payload(g: &mut Gen) -> Vec<u8> {
    let n = if chance(g, 1, 6) {
        upto(g, 3000)
    } else {
        upto(g, g.size())
    };
    noise(g, n)
}

const TOKENS: &[&str] = &["a", "b", "c", "foo", "bar", "x1", "*", ">", "", "a b", "é"];

/// A subject, topic or filter: often made of plausible tokens (valid or not),
/// sometimes arbitrary bytes of up to 256.
fn subject(g: &mut Gen) -> Vec<u8> {
    if chance(g, 1, 4) {
        return bytes_upto(g, frame::MAX_SUBJECT);
    }
    topic_text(g).into_bytes()
}

fn topic_text(g: &mut Gen) -> String {
    let levels = range(g, 1, 5);
    let mut parts = Vec::new();
    for _ in 0..levels {
        // Mostly tokens that are valid in topics, so that many frames get deep.
        let t = if chance(g, 3, 4) {
            *g.choose(&TOKENS[..6]).unwrap()
        } else {
            *g.choose(TOKENS).unwrap()
        };
        parts.push(t);
    }
    parts.join(".")
}

/// A pattern buffer larger than any payload the tests use, sliced instead of
/// generating megabytes per case.
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut s: u32 = 0x1234_5678;
        (0..(2 << 20) + 4096)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    })
}

fn pattern_slice(off: usize, len: usize) -> &'static [u8] {
    &pattern()[off % 4096..off % 4096 + len]
}

// ===================================================================================
// An owned model of every frame kind
// ===================================================================================

#[derive(Clone, Debug, PartialEq)]
enum StatusModel {
    Ok,
    Error { code: u64, message: String },
    NoResponder,
    DeadlineExceeded,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq)]
enum FrameModel {
    ClientHello {
        nonce: [u8; frame::NONCE_LEN],
        params: Vec<u8>,
        auth_scheme: u8,
        key_id: Vec<u8>,
        token: Vec<u8>,
    },
    ServerHello {
        nonce: [u8; frame::NONCE_LEN],
        params: Vec<u8>,
        auth_scheme: u8,
        proof: Vec<u8>,
        token: Vec<u8>,
    },
    Auth {
        proof: Vec<u8>,
    },
    Ping {
        token: u64,
    },
    Pong {
        token: u64,
    },
    Close {
        code: u64,
        last_request_id: u64,
        reason: String,
    },
    WindowUpdate {
        id: u64,
        increment: u64,
    },
    Message {
        payload: Vec<u8>,
    },
    Request {
        id: u64,
        timeout_ms: u64,
        subject: Vec<u8>,
        payload: Vec<u8>,
    },
    Response {
        id: u64,
        status: StatusModel,
        payload: Vec<u8>,
    },
    Cancel {
        id: u64,
    },
    Subscribe {
        sub_id: u64,
        policy: u8,
        credit: u64,
        filter: Vec<u8>,
        group: Vec<u8>,
    },
    Unsubscribe {
        sub_id: u64,
    },
    Publish {
        topic: Vec<u8>,
        payload: Vec<u8>,
    },
    Deliver {
        sub_id: u64,
        topic: Vec<u8>,
        payload: Vec<u8>,
    },
    SubCredit {
        sub_id: u64,
        increment: u64,
    },
    SubDropped {
        sub_id: u64,
        total: u64,
    },
    StreamData {
        id: u64,
        flags: u8,
        data: Vec<u8>,
    },
    StreamReset {
        id: u64,
        code: u64,
    },
    Fragment {
        frag_id: u64,
        flags: u8,
        total_len: u64,
        data: Vec<u8>,
    },
    Extension {
        ty: u8,
        body: Vec<u8>,
    },
}

/// Every frame type code the model produces (extensions stand for 0x40..=0x7f).
const ALL_KINDS: [u8; 21] = {
    let mut all = [ty::EXTENSION_MIN; 21];
    let mut i = 0;
    while i < ty::DEFINED.len() {
        all[i] = ty::DEFINED[i];
        i += 1;
    }
    all
};

/// Kinds a client may legitimately send to an established server, repeated so that
/// traffic usually gets past the first frame; the rest still turn up.
const CLIENT_KINDS: &[u8] = &[
    ty::PING,
    ty::PING,
    ty::PONG,
    ty::MESSAGE,
    ty::MESSAGE,
    ty::MESSAGE,
    ty::REQUEST,
    ty::REQUEST,
    ty::CANCEL,
    ty::SUBSCRIBE,
    ty::SUBSCRIBE,
    ty::UNSUBSCRIBE,
    ty::PUBLISH,
    ty::PUBLISH,
    ty::PUBLISH,
    ty::SUB_CREDIT,
    ty::WINDOW_UPDATE,
    ty::STREAM_DATA,
    ty::STREAM_DATA,
    ty::STREAM_RESET,
    ty::FRAGMENT,
    ty::EXTENSION_MIN,
    ty::EXTENSION_MIN,
    ty::CLOSE,
    ty::RESPONSE,
    ty::DELIVER,
    ty::SUB_DROPPED,
    ty::AUTH,
    ty::CLIENT_HELLO,
];

impl FrameModel {
    fn gen_kind(g: &mut Gen, kind: u8) -> FrameModel {
        let small = |g: &mut Gen| {
            if chance(g, 3, 4) {
                range(g, 0, 20)
            } else {
                any_u64(g)
            }
        };
        match kind {
            ty::CLIENT_HELLO => FrameModel::ClientHello {
                nonce: std::array::from_fn(|_| u8::arbitrary(g)),
                params: bytes_upto(g, 512),
                auth_scheme: u8::arbitrary(g),
                key_id: bytes_upto(g, frame::MAX_KEY_ID),
                token: bytes_upto(g, frame::MAX_TOKEN),
            },
            ty::SERVER_HELLO => FrameModel::ServerHello {
                nonce: std::array::from_fn(|_| u8::arbitrary(g)),
                params: bytes_upto(g, 512),
                auth_scheme: u8::arbitrary(g),
                proof: bytes_upto(g, frame::MAX_PROOF),
                token: bytes_upto(g, frame::MAX_TOKEN),
            },
            ty::AUTH => FrameModel::Auth {
                proof: bytes_upto(g, frame::MAX_PROOF),
            },
            ty::PING => FrameModel::Ping {
                token: u64::arbitrary(g),
            },
            ty::PONG => FrameModel::Pong {
                token: u64::arbitrary(g),
            },
            ty::CLOSE => FrameModel::Close {
                code: if chance(g, 1, 2) {
                    range(g, 0, 24)
                } else {
                    any_u64(g)
                },
                last_request_id: any_u64(g),
                reason: text_upto(g, frame::MAX_REASON),
            },
            ty::WINDOW_UPDATE => FrameModel::WindowUpdate {
                id: small(g),
                increment: any_u64(g),
            },
            ty::MESSAGE => FrameModel::Message {
                payload: payload(g),
            },
            ty::REQUEST => FrameModel::Request {
                id: small(g),
                timeout_ms: any_u64(g),
                subject: subject(g),
                payload: payload(g),
            },
            ty::RESPONSE => FrameModel::Response {
                id: small(g),
                status: match range(g, 0, 4) {
                    0 => StatusModel::Ok,
                    1 => StatusModel::Error {
                        code: any_u64(g),
                        message: text_upto(g, frame::MAX_REASON),
                    },
                    2 => StatusModel::NoResponder,
                    3 => StatusModel::DeadlineExceeded,
                    _ => StatusModel::Cancelled,
                },
                payload: payload(g),
            },
            ty::CANCEL => FrameModel::Cancel { id: small(g) },
            ty::SUBSCRIBE => FrameModel::Subscribe {
                sub_id: small(g),
                policy: if chance(g, 3, 4) {
                    range(g, 0, 3) as u8
                } else {
                    u8::arbitrary(g)
                },
                credit: any_u64(g),
                filter: subject(g),
                group: if chance(g, 1, 2) {
                    Vec::new()
                } else {
                    bytes_upto(g, frame::MAX_GROUP)
                },
            },
            ty::UNSUBSCRIBE => FrameModel::Unsubscribe { sub_id: small(g) },
            ty::PUBLISH => FrameModel::Publish {
                topic: subject(g),
                payload: payload(g),
            },
            ty::DELIVER => FrameModel::Deliver {
                sub_id: small(g),
                topic: subject(g),
                payload: payload(g),
            },
            ty::SUB_CREDIT => FrameModel::SubCredit {
                sub_id: small(g),
                increment: any_u64(g),
            },
            ty::SUB_DROPPED => FrameModel::SubDropped {
                sub_id: small(g),
                total: any_u64(g),
            },
            ty::STREAM_DATA => FrameModel::StreamData {
                id: small(g),
                flags: range(g, 0, 3) as u8,
                data: payload(g),
            },
            ty::STREAM_RESET => FrameModel::StreamReset {
                id: small(g),
                code: any_u64(g),
            },
            ty::FRAGMENT => {
                let flags = range(g, 0, 3) as u8;
                FrameModel::Fragment {
                    frag_id: small(g),
                    flags,
                    total_len: if flags & frame::FRAG_FIRST != 0 {
                        any_u64(g)
                    } else {
                        0
                    },
                    data: payload(g),
                }
            }
            _ => FrameModel::Extension {
                ty: range(
                    g,
                    u64::from(ty::EXTENSION_MIN),
                    u64::from(ty::EXTENSION_MAX),
                ) as u8,
                body: payload(g),
            },
        }
    }

    fn as_frame(&self) -> Frame<'_> {
        match self {
            FrameModel::ClientHello {
                nonce,
                params,
                auth_scheme,
                key_id,
                token,
            } => Frame::ClientHello {
                nonce: *nonce,
                params,
                auth_scheme: *auth_scheme,
                key_id,
                token,
            },
            FrameModel::ServerHello {
                nonce,
                params,
                auth_scheme,
                proof,
                token,
            } => Frame::ServerHello {
                nonce: *nonce,
                params,
                auth_scheme: *auth_scheme,
                proof,
                token,
            },
            FrameModel::Auth { proof } => Frame::Auth { proof },
            FrameModel::Ping { token } => Frame::Ping { token: *token },
            FrameModel::Pong { token } => Frame::Pong { token: *token },
            FrameModel::Close {
                code,
                last_request_id,
                reason,
            } => Frame::Close {
                code: ErrorCode(*code),
                last_request_id: *last_request_id,
                reason,
            },
            FrameModel::WindowUpdate { id, increment } => Frame::WindowUpdate {
                id: *id,
                increment: *increment,
            },
            FrameModel::Message { payload } => Frame::Message { payload },
            FrameModel::Request {
                id,
                timeout_ms,
                subject,
                payload,
            } => Frame::Request {
                id: *id,
                timeout_ms: *timeout_ms,
                subject,
                payload,
            },
            FrameModel::Response {
                id,
                status,
                payload,
            } => Frame::Response {
                id: *id,
                status: match status {
                    StatusModel::Ok => Status::Ok,
                    StatusModel::Error { code, message } => Status::Error {
                        code: *code,
                        message,
                    },
                    StatusModel::NoResponder => Status::NoResponder,
                    StatusModel::DeadlineExceeded => Status::DeadlineExceeded,
                    StatusModel::Cancelled => Status::Cancelled,
                },
                payload,
            },
            FrameModel::Cancel { id } => Frame::Cancel { id: *id },
            FrameModel::Subscribe {
                sub_id,
                policy,
                credit,
                filter,
                group,
            } => Frame::Subscribe {
                sub_id: *sub_id,
                policy: *policy,
                credit: *credit,
                filter,
                group,
            },
            FrameModel::Unsubscribe { sub_id } => Frame::Unsubscribe { sub_id: *sub_id },
            FrameModel::Publish { topic, payload } => Frame::Publish { topic, payload },
            FrameModel::Deliver {
                sub_id,
                topic,
                payload,
            } => Frame::Deliver {
                sub_id: *sub_id,
                topic,
                payload,
            },
            FrameModel::SubCredit { sub_id, increment } => Frame::SubCredit {
                sub_id: *sub_id,
                increment: *increment,
            },
            FrameModel::SubDropped { sub_id, total } => Frame::SubDropped {
                sub_id: *sub_id,
                total: *total,
            },
            FrameModel::StreamData { id, flags, data } => Frame::StreamData {
                id: *id,
                flags: *flags,
                data,
            },
            FrameModel::StreamReset { id, code } => Frame::StreamReset {
                id: *id,
                code: *code,
            },
            FrameModel::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => Frame::Fragment {
                frag_id: *frag_id,
                flags: *flags,
                total_len: *total_len,
                data,
            },
            FrameModel::Extension { ty, body } => Frame::Extension { ty: *ty, body },
        }
    }

    fn encode(&self) -> Vec<u8> {
        let f = self.as_frame();
        let mut v = vec![0u8; f.encoded_len()];
        let n = f.encode(&mut v).expect("a buffer of encoded_len fits");
        v.truncate(n);
        v
    }

    /// The variable-length byte fields, for shrinking.
    fn byte_fields(&mut self) -> Vec<&mut Vec<u8>> {
        match self {
            FrameModel::ClientHello {
                params,
                key_id,
                token,
                ..
            } => vec![params, key_id, token],
            FrameModel::ServerHello {
                params,
                proof,
                token,
                ..
            } => vec![params, proof, token],
            FrameModel::Auth { proof } => vec![proof],
            FrameModel::Message { payload } | FrameModel::Response { payload, .. } => {
                vec![payload]
            }
            FrameModel::Request {
                subject, payload, ..
            } => vec![subject, payload],
            FrameModel::Subscribe { filter, group, .. } => vec![filter, group],
            FrameModel::Publish { topic, payload } | FrameModel::Deliver { topic, payload, .. } => {
                vec![topic, payload]
            }
            FrameModel::StreamData { data, .. } | FrameModel::Fragment { data, .. } => vec![data],
            FrameModel::Extension { body, .. } => vec![body],
            _ => Vec::new(),
        }
    }
}

impl Arbitrary for FrameModel {
    fn arbitrary(g: &mut Gen) -> Self {
        let kind = *g.choose(&ALL_KINDS).unwrap();
        FrameModel::gen_kind(g, kind)
    }

    /// Shrinks the byte fields (empty, then halved); numbers stay as they are.
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        let n = self.clone().byte_fields().len();
        for i in 0..n {
            let len = self.clone().byte_fields()[i].len();
            if len == 0 {
                continue;
            }
            let mut empty = self.clone();
            empty.byte_fields()[i].clear();
            out.push(empty);
            if len > 1 {
                let mut half = self.clone();
                half.byte_fields()[i].truncate(len / 2);
                out.push(half);
            }
        }
        if let FrameModel::Close { reason, .. } = self {
            if !reason.is_empty() {
                let mut c = self.clone();
                if let FrameModel::Close { reason, .. } = &mut c {
                    reason.clear();
                }
                out.push(c);
            }
        }
        Box::new(out.into_iter())
    }
}

// ===================================================================================
// Reading records back
// ===================================================================================

/// The fixed clock: the instant a [`Pair`] starts at.
const NOW: Instant = weft_core::testing::START;

/// The 4-byte header of a record of `len` payload bytes, with a correct check byte.
fn header(len: u16, flags: u8) -> [u8; 4] {
    let [a, b] = len.to_be_bytes();
    [a, b, flags, header_check([a, b, flags])]
}

/// The length of the first complete record in `wire`.
fn first_record_len(wire: &[u8]) -> usize {
    record::parse(wire, record::MAX_PAYLOAD, false)
        .expect("valid record")
        .expect("complete record")
        .total_len
}

/// A readable summary of a connection's output: the preface, then each record's
/// frames as `type:len`, for failure messages.
fn describe(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = wire;
    if rest.starts_with(&preface::MAGIC) && rest.len() >= preface::LEN {
        out.push_str("preface ");
        rest = &rest[preface::LEN..];
    }
    while !rest.is_empty() {
        let Ok(Some(info)) = record::parse(rest, record::MAX_PAYLOAD, false) else {
            out.push_str(&format!("<{} unparsed bytes>", rest.len()));
            break;
        };
        out.push('[');
        let mut p = &rest[info.payload_start..][..info.payload_len];
        while let Ok((t, len, h)) = frame::decode_header(p) {
            if h + len > p.len() {
                break;
            }
            let f = Frame::decode(t, &p[h..h + len]);
            match f {
                Ok(Frame::Close { code, reason, .. }) => {
                    out.push_str(&format!(" CLOSE({code:?} {reason:?})"))
                }
                _ => out.push_str(&format!(" {t:#04x}:{len}")),
            }
            p = &p[h + len..];
        }
        out.push_str(" ] ");
        rest = &rest[info.total_len..];
    }
    out
}

#[cfg(feature = "alloc")]
fn message_events(events: &[Got]) -> usize {
    events
        .iter()
        .filter(|g| matches!(g.ev, Event::Message { .. }))
        .count()
}

// ===================================================================================
// 1. Frame encode/decode round trip
// ===================================================================================

fn prop_frame_round_trip(m: FrameModel) -> TestResult {
    verdict((|| {
        let f = m.as_frame();
        let n = f.encoded_len();
        let mut buf = vec![0xa5u8; n + 8];
        let written = f.encode(&mut buf);
        ensure!(
            written == Some(n),
            "encode wrote {written:?}, encoded_len {n}"
        );
        ensure!(
            f.encode(&mut vec![0u8; n - 1]).is_none(),
            "encode into {} bytes claims success",
            n - 1
        );
        let (t, body_len, hdr) =
            frame::decode_header(&buf[..n]).map_err(|e| format!("decode_header: {e:?}"))?;
        ensure!(t == f.ty(), "type {t:#x} != {:#x}", f.ty());
        ensure!(hdr + body_len == n, "header {hdr} + body {body_len} != {n}");
        ensure!(body_len == f.body_len(), "body_len mismatch");
        let back = Frame::decode(t, &buf[hdr..n]);
        ensure!(back == Ok(f), "decoded {back:?}");
        Ok(())
    })())
}

#[test]
fn p1_frame_encode_decode_round_trip() {
    check(
        "p1_frame_round_trip",
        500,
        prop_frame_round_trip as fn(FrameModel) -> TestResult,
    );
}

// ===================================================================================
// 2. Decoders never panic (and accept only canonical encodings)
// ===================================================================================

/// A valid frame encoding with a few random mutations, or plain random bytes.
#[derive(Clone, Debug)]
struct Mangled {
    t: u8,
    body: Vec<u8>,
}

impl Arbitrary for Mangled {
    fn arbitrary(g: &mut Gen) -> Self {
        if chance(g, 1, 4) {
            return Mangled {
                t: u8::arbitrary(g),
                body: bytes_upto(g, 300),
            };
        }
        let m = FrameModel::arbitrary(g);
        let enc = m.encode();
        let (_, _, hdr) = frame::decode_header(&enc).expect("valid");
        let mut body = enc[hdr..].to_vec();
        let mut t = enc[0];
        for _ in 0..range(g, 0, 3) {
            match range(g, 0, 5) {
                0 if !body.is_empty() => {
                    let i = upto(g, body.len() - 1);
                    body[i] ^= 1 << range(g, 0, 7);
                }
                1 if !body.is_empty() => {
                    let i = upto(g, body.len() - 1);
                    body[i] = u8::arbitrary(g);
                }
                2 => {
                    let k = upto(g, body.len());
                    body.truncate(k);
                }
                3 => {
                    let i = upto(g, body.len());
                    body.insert(i, u8::arbitrary(g));
                }
                4 => t = u8::arbitrary(g),
                _ => {}
            }
        }
        Mangled { t, body }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let t = self.t;
        Box::new(self.body.shrink().map(move |body| Mangled { t, body }))
    }
}

fn prop_frame_decode_total(m: Mangled) -> TestResult {
    verdict((|| {
        let Mangled { t, body } = &m;
        match Frame::decode(*t, body) {
            Ok(f) => {
                // Whatever decodes re-encodes to exactly the same bytes: the decoder
                // accepts only what the encoder can produce.
                ensure!(f.ty() == *t, "type changed");
                ensure!(f.body_len() == body.len(), "body_len {}", f.body_len());
                let mut out = vec![0u8; f.encoded_len()];
                let n = f.encode(&mut out).ok_or("re-encode failed")?;
                let (_, _, hdr) = frame::decode_header(&out[..n]).map_err(|e| format!("{e:?}"))?;
                ensure!(
                    out[hdr..n] == body[..],
                    "re-encoding differs: {:?}",
                    &out[hdr..n]
                );
            }
            Err(code) => {
                ensure!(code.name().is_some(), "undocumented code {code:?}");
                let known = ALL_KINDS.contains(t);
                ensure!(
                    (code == ErrorCode::UNKNOWN_FRAME) != known,
                    "type {t:#x} gave {code:?}"
                );
            }
        }
        Ok(())
    })())
}

fn prop_decode_header_total(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        match frame::decode_header(&bytes) {
            Ok((t, len, hdr)) => {
                ensure!(
                    (2..=1 + varint::MAX_LEN).contains(&hdr),
                    "header length {hdr}"
                );
                ensure!(hdr <= bytes.len(), "header beyond input");
                ensure!(t == bytes[0], "type");
                ensure!(
                    varint::decode(&bytes[1..]) == Ok((len as u64, hdr - 1)),
                    "length"
                );
            }
            Err(FrameError::Incomplete) => {
                ensure!(
                    bytes.len() <= varint::MAX_LEN,
                    "incomplete on {} bytes",
                    bytes.len()
                );
            }
            Err(FrameError::Fatal(c)) => ensure!(c.name().is_some(), "undocumented {c:?}"),
        }
        Ok(())
    })())
}

/// Bytes that are often close to a record: a valid header or whole record, mutated.
#[derive(Clone, Debug)]
struct RecordInput {
    bytes: Vec<u8>,
    max: usize,
    require: bool,
}

impl Arbitrary for RecordInput {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut bytes = match range(g, 0, 2) {
            0 => bytes_upto(g, 300),
            1 => {
                let len = range(g, 0, 65_535) as u16;
                let mut v = header(len, range(g, 0, 3) as u8).to_vec();
                v.extend(bytes_upto(g, 300));
                v
            }
            _ => {
                let mut p = payload(g);
                if p.is_empty() {
                    p.push(0);
                }
                seal(&p, bool::arbitrary(g))
            }
        };
        if !bytes.is_empty() && chance(g, 1, 3) {
            let i = upto(g, bytes.len() - 1);
            bytes[i] ^= u8::arbitrary(g);
        }
        if chance(g, 1, 4) {
            let k = upto(g, bytes.len());
            bytes.truncate(k);
        }
        let max = match range(g, 0, 3) {
            0 => usize::arbitrary(g),
            1 => record::MAX_PAYLOAD,
            _ => upto(g, 70_000),
        };
        RecordInput {
            bytes,
            max,
            require: bool::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let (max, require) = (self.max, self.require);
        Box::new(self.bytes.shrink().map(move |bytes| RecordInput {
            bytes,
            max,
            require,
        }))
    }
}

fn prop_record_parse_total(r: RecordInput) -> TestResult {
    verdict((|| {
        match record::parse(&r.bytes, r.max, r.require) {
            Ok(Some(info)) => {
                ensure!(info.payload_start == record::HEADER_LEN, "payload start");
                ensure!(info.payload_len >= 1, "empty record accepted");
                ensure!(info.payload_len <= r.max, "payload above max");
                ensure!(info.total_len <= r.bytes.len(), "record beyond input");
                let trailer = info.total_len - record::HEADER_LEN - info.payload_len;
                ensure!(
                    trailer == 0 || trailer == record::TRAILER_LEN,
                    "trailer {trailer}"
                );
                ensure!(
                    !r.require || trailer == record::TRAILER_LEN,
                    "CRC not required"
                );
            }
            Ok(None) => ensure!(
                r.bytes.len() < record::HEADER_LEN + 65_535 + record::TRAILER_LEN,
                "incomplete with {} bytes",
                r.bytes.len()
            ),
            Err(c) => ensure!(c.name().is_some(), "undocumented {c:?}"),
        }
        Ok(())
    })())
}

fn prop_params_and_preface_total(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        if let Ok(p) = Params::decode(&bytes) {
            ensure!(p.validate().is_ok(), "decoded params fail validation");
            let mut buf = vec![0u8; p.encoded_len()];
            let mut w = weft_core::wire::codec::Writer::new(&mut buf);
            p.encode(&mut w);
            let n = w.finish().ok_or("params encode")?;
            ensure!(
                Params::decode(&buf[..n]) == Ok(p),
                "params do not round trip"
            );
        }
        match Preface::parse(&bytes) {
            None => ensure!(
                bytes.len() < preface::LEN,
                "None with {} bytes",
                bytes.len()
            ),
            Some(Ok(p)) => ensure!(p.magic == preface::MAGIC, "bad magic accepted"),
            Some(Err(_)) => ensure!(bytes[..4] != preface::MAGIC, "good magic refused"),
        }
        Ok(())
    })())
}

/// Parameter lists: ascending (id, value) pairs of small ids, sometimes shuffled.
#[derive(Clone, Debug)]
struct ParamBytes(Vec<u8>);

impl Arbitrary for ParamBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut ids: Vec<u64> = (0..range(g, 0, 8)).map(|_| range(g, 0, 16)).collect();
        ids.sort_unstable();
        if chance(g, 1, 5) {
            ids.reverse();
        }
        let mut out = Vec::new();
        for id in ids {
            let v = if chance(g, 1, 2) {
                range(g, 0, 70_000)
            } else {
                any_u64(g)
            };
            let mut b = [0u8; varint::MAX_LEN];
            let n = varint::encode(id, &mut b).unwrap();
            out.extend_from_slice(&b[..n]);
            let n = varint::encode(v, &mut b).unwrap();
            out.extend_from_slice(&b[..n]);
        }
        if chance(g, 1, 4) {
            out.extend(bytes_upto(g, 8));
        }
        if chance(g, 1, 4) {
            out = [b"WEFT".as_slice(), &out].concat();
        }
        ParamBytes(out)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(ParamBytes))
    }
}

fn prop_params_structured(p: ParamBytes) -> TestResult {
    prop_params_and_preface_total(p.0)
}

#[test]
fn p2_frame_decode_never_panics() {
    check(
        "p2_frame_decode",
        500,
        prop_frame_decode_total as fn(Mangled) -> TestResult,
    );
}

#[test]
fn p2_decode_header_never_panics() {
    check(
        "p2_decode_header",
        500,
        prop_decode_header_total as fn(Vec<u8>) -> TestResult,
    );
}

#[test]
fn p2_record_parse_never_panics() {
    check(
        "p2_record_parse",
        500,
        prop_record_parse_total as fn(RecordInput) -> TestResult,
    );
}

#[test]
fn p2_params_and_preface_never_panic() {
    check(
        "p2_params_preface_random",
        300,
        prop_params_and_preface_total as fn(Vec<u8>) -> TestResult,
    );
    check(
        "p2_params_preface_structured",
        300,
        prop_params_structured as fn(ParamBytes) -> TestResult,
    );
}

// ===================================================================================
// 3. A strict prefix of a record is incomplete
// ===================================================================================

#[derive(Clone, Debug)]
struct RecordModel {
    frames: Vec<FrameModel>,
    integrity: bool,
}

impl RecordModel {
    fn payload(&self) -> Vec<u8> {
        self.frames.iter().flat_map(FrameModel::encode).collect()
    }
}

impl Arbitrary for RecordModel {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 1, 4);
        RecordModel {
            frames: (0..n).map(|_| FrameModel::arbitrary(g)).collect(),
            integrity: bool::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let integrity = self.integrity;
        Box::new(
            self.frames
                .shrink()
                .filter(|f| !f.is_empty())
                .map(move |frames| RecordModel { frames, integrity }),
        )
    }
}

fn prop_record_prefix(m: RecordModel) -> TestResult {
    verdict((|| {
        let p = m.payload();
        let rec = seal(&p, m.integrity);
        let requires: &[bool] = if m.integrity {
            &[false, true]
        } else {
            &[false]
        };
        for &req in requires {
            for max in [p.len(), record::MAX_PAYLOAD] {
                for k in 0..rec.len() {
                    let r = record::parse(&rec[..k], max, req);
                    ensure!(
                        r == Ok(None),
                        "prefix {k}/{} (max {max}, req {req}): {r:?}",
                        rec.len()
                    );
                }
                let info = record::parse(&rec, max, req).map_err(|e| format!("{e:?}"))?;
                let info = info.ok_or("whole record incomplete")?;
                ensure!(info.total_len == rec.len(), "total_len {}", info.total_len);
                ensure!(
                    rec[info.payload_start..][..info.payload_len] == p[..],
                    "payload differs"
                );
            }
        }
        Ok(())
    })())
}

#[test]
fn p3_record_prefix_is_incomplete() {
    check(
        "p3_record_prefix",
        300,
        prop_record_prefix as fn(RecordModel) -> TestResult,
    );
}

/// Something an established client sends, and where to cut the record carrying it.
#[derive(Clone, Debug)]
struct PrefixCase {
    op: ClientOp,
    cut: usize,
}

impl Arbitrary for PrefixCase {
    fn arbitrary(g: &mut Gen) -> Self {
        PrefixCase {
            op: ClientOp::arbitrary(g),
            cut: usize::arbitrary(g),
        }
    }
}

fn prop_connection_prefix(c: PrefixCase) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        if c.op.apply(&mut p.client).is_err() {
            return Ok(());
        }
        let mut wire = Vec::new();
        flush(&mut p.client, NOW, &mut wire);
        let rec_len = first_record_len(&wire);
        let k = c.cut % rec_len;
        let before = p.server.stats();
        let mut ev = Vec::new();
        let out = feed(&mut p.server, NOW, &wire[..k], &mut ev);
        let after = p.server.stats();
        ensure!(ev.is_empty(), "prefix {k}/{rec_len} produced events {ev:?}");
        ensure!(out.is_empty(), "prefix {k}/{rec_len} produced output");
        ensure!(
            after.messages_received == before.messages_received
                && after.records_received == before.records_received
                && after.frames_received == before.frames_received
                && after.errors == before.errors,
            "prefix changed counters: {before:?} -> {after:?}"
        );
        ensure!(
            after.bytes_received == before.bytes_received + k as u64,
            "bytes counted"
        );
        // The rest of the record completes it.
        feed(&mut p.server, NOW, &wire[k..rec_len], &mut ev);
        ensure!(
            p.server.stats().records_received == before.records_received + 1,
            "the completed record was not processed"
        );
        ensure!(closed(&ev).is_none(), "completed record closed: {ev:?}");
        Ok(())
    })())
}

#[test]
fn p3_connection_ignores_record_prefix() {
    check(
        "p3_connection_prefix",
        200,
        prop_connection_prefix as fn(PrefixCase) -> TestResult,
    );
}

// ===================================================================================
// 4. The same bytes split anywhere give the same events and output
// ===================================================================================

/// A client command for pipelining.
#[derive(Clone, Debug)]
enum ClientOp {
    Message(Vec<u8>),
    Request {
        subject: Vec<u8>,
        payload: Vec<u8>,
        timeout_ms: Option<u64>,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    Subscribe {
        filter: String,
        group: Option<String>,
    },
}

/// A payload that sometimes needs fragmenting (over the 16 KiB default frame size).
fn op_payload(g: &mut Gen) -> Vec<u8> {
    if chance(g, 1, 8) {
        let n = range(g, 16_000, 40_000) as usize;
        noise(g, n)
    } else {
        payload(g)
    }
}

impl Arbitrary for ClientOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match range(g, 0, 3) {
            0 => ClientOp::Message(op_payload(g)),
            // Requests stay small (never fragmented) and all at one priority: see
            // `bug_requests_reordered_by_scheduler_close_the_connection` for why.
            1 => ClientOp::Request {
                subject: subject(g),
                payload: payload(g),
                timeout_ms: if chance(g, 1, 2) {
                    Some(range(g, 1, 100_000))
                } else {
                    None
                },
            },
            2 => ClientOp::Publish {
                topic: topic_text(g),
                payload: op_payload(g),
            },
            _ => ClientOp::Subscribe {
                filter: topic_text(g),
                group: if chance(g, 1, 3) {
                    Some(topic_text(g))
                } else {
                    None
                },
            },
        }
    }

    /// Shrinks the payload (empty, then halved).
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        let with = |p: Vec<u8>| match self.clone() {
            ClientOp::Message(_) => ClientOp::Message(p),
            ClientOp::Request {
                subject,
                timeout_ms,
                ..
            } => ClientOp::Request {
                subject,
                payload: p,
                timeout_ms,
            },
            ClientOp::Publish { topic, .. } => ClientOp::Publish { topic, payload: p },
            s @ ClientOp::Subscribe { .. } => s,
        };
        let len = match self {
            ClientOp::Message(p)
            | ClientOp::Request { payload: p, .. }
            | ClientOp::Publish { payload: p, .. } => p.len(),
            ClientOp::Subscribe { .. } => 0,
        };
        let payload = match self {
            ClientOp::Message(p)
            | ClientOp::Request { payload: p, .. }
            | ClientOp::Publish { payload: p, .. } => p.clone(),
            ClientOp::Subscribe { .. } => Vec::new(),
        };
        if len > 0 {
            out.push(with(Vec::new()));
        }
        if len > 1 {
            out.push(with(payload[..len / 2].to_vec()));
        }
        Box::new(out.into_iter())
    }
}

impl ClientOp {
    fn apply(&self, c: &mut Connection) -> Result<(), weft_core::Error> {
        match self {
            ClientOp::Message(p) => c.send_message(p, Priority::Normal),
            ClientOp::Request {
                subject,
                payload,
                timeout_ms,
            } => c
                .request(
                    NOW,
                    subject,
                    payload,
                    timeout_ms.map(std::time::Duration::from_millis),
                    Priority::Normal,
                )
                .map(drop),
            ClientOp::Publish { topic, payload } => c.publish(topic, payload, Priority::High),
            ClientOp::Subscribe { filter, group } => c
                .subscribe(filter, group.as_deref(), OverflowPolicy::DropOldest)
                .map(drop),
        }
    }
}

#[derive(Clone, Debug)]
struct SplitCase {
    ops: Vec<ClientOp>,
    /// How many ops are pipelined before the handshake.
    pipelined: usize,
    /// Chunk lengths for the split feed (cycled).
    chunks: Vec<usize>,
}

impl Arbitrary for SplitCase {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 0, 12) as usize;
        let ops: Vec<ClientOp> = (0..n).map(|_| ClientOp::arbitrary(g)).collect();
        let chunks = (0..range(g, 1, 8))
            .map(|_| match range(g, 0, 3) {
                0 => range(g, 1, 8) as usize,
                1 => range(g, 1, 300) as usize,
                _ => range(g, 1, 70_000) as usize,
            })
            .collect();
        SplitCase {
            pipelined: upto(g, n),
            ops,
            chunks,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        let fewer = self.ops.shrink().map(move |ops| SplitCase {
            pipelined: me.pipelined.min(ops.len()),
            ops,
            chunks: me.chunks.clone(),
        });
        let me = self.clone();
        let chunks = self
            .chunks
            .shrink()
            .filter(|c| !c.is_empty() && !c.contains(&0))
            .map(move |chunks| SplitCase {
                chunks,
                ..me.clone()
            });
        Box::new(fewer.chain(chunks))
    }
}

/// A fresh default server fed `wire` in the given pieces, draining after each call.
fn replay_server(wire: &[u8], chunks: &[usize]) -> (Vec<Got>, Vec<u8>) {
    let mut s = Connection::new(Role::Server, Config::default(), NOW, SERVER_SEED);
    let mut ev = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = chunks[i % chunks.len()].min(wire.len() - pos);
        i += 1;
        out.extend(feed(&mut s, NOW, &wire[pos..pos + n], &mut ev));
        pos += n;
    }
    (ev, out)
}

fn prop_split_invariance(c: SplitCase) -> TestResult {
    verdict((|| {
        let mut p = Pair::new(Config::default(), Config::default());
        for op in &c.ops[..c.pipelined] {
            let _ = op.apply(&mut p.client);
        }
        p.drive();
        for op in &c.ops[c.pipelined..] {
            let _ = op.apply(&mut p.client);
        }
        p.drive();
        let wire = p.client_wire;
        let (ev1, out1) = replay_server(&wire, &[wire.len().max(1)]);
        let (ev2, out2) = replay_server(&wire, &c.chunks);
        // The replays see what the live server saw.
        ensure!(
            ev1 == p.s_events,
            "one-piece replay differs from the live server"
        );
        ensure!(
            ev1.len() == ev2.len(),
            "{} events in one piece, {} split",
            ev1.len(),
            ev2.len()
        );
        for (i, (a, b)) in ev1.iter().zip(&ev2).enumerate() {
            ensure!(a == b, "event {i}: one piece {a:?}, split {b:?}");
        }
        ensure!(
            out1 == out2,
            "server output differs:\n one piece: {}\n split:     {}",
            describe(&out1),
            describe(&out2)
        );
        Ok(())
    })())
}

#[test]
fn p4_split_points_do_not_matter() {
    check(
        "p4_split_invariance",
        200,
        prop_split_invariance as fn(SplitCase) -> TestResult,
    );
}

// ===================================================================================
// 5. Every single-bit flip is detected
// ===================================================================================

fn prop_bit_flip(op: ClientOp, bit: usize) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        if op.apply(&mut p.client).is_err() {
            return Ok(());
        }
        let mut wire = Vec::new();
        flush(&mut p.client, NOW, &mut wire);
        let n = first_record_len(&wire);
        let mut rec = wire[..n].to_vec();
        let bit = bit % (n * 8);
        rec[bit / 8] ^= 1 << (bit % 8);
        let mut ev = Vec::new();
        feed(&mut p.server, NOW, &rec, &mut ev);
        let info = closed(&ev).ok_or_else(|| format!("bit {bit}/{}: no close, {ev:?}", n * 8))?;
        ensure!(
            info.code == ErrorCode::INTEGRITY_ERROR && info.initiator == Side::Local,
            "bit {bit}: closed with {info:?}"
        );
        ensure!(
            ev.iter()
                .all(|g| matches!(g.ev, Event::Closed(_) | Event::Response { .. })),
            "bit {bit}: content delivered: {ev:?}"
        );
        ensure!(p.server.stats().messages_received == 0, "message counted");
        Ok(())
    })())
}

#[test]
fn p5_every_bit_flip_is_detected() {
    check(
        "p5_bit_flip",
        300,
        prop_bit_flip as fn(ClientOp, usize) -> TestResult,
    );
}

// ===================================================================================
// 6. Oversize lengths are refused before allocation
// ===================================================================================

fn prop_oversize_record_header(max: u16, len: u16, flags: bool, require: bool) -> TestResult {
    verdict((|| {
        let max = usize::from(max.min(65_534));
        let len = (max as u64 + 1 + u64::from(len) % (65_535 - max as u64)) as u16;
        let h = header(len, u8::from(flags));
        for k in 0..4 {
            ensure!(
                record::parse(&h[..k], max, require) == Ok(None),
                "prefix {k}"
            );
        }
        let r = record::parse(&h, max, require);
        ensure!(
            r == Err(ErrorCode::FRAME_TOO_LARGE),
            "len {len} > max {max}: {r:?}"
        );
        Ok(())
    })())
}

fn prop_oversize_at_connection(max: u16, len: u16) -> TestResult {
    verdict((|| {
        let max = u64::from(max) % (65_534 - 1024 + 1) + 1024;
        let len = (max + 1 + u64::from(len) % (65_535 - max)) as u16;
        let mut sc = Config::default();
        sc.params.max_record_size = max;
        sc.params.max_frame_size = max.min(16_384);
        let mut p = Pair::established(Config::default(), sc);
        let h = header(len, record::FLAG_INTEGRITY);
        let mut ev = Vec::new();
        let took = p.server.handle_input(NOW, &h);
        ensure!(took == 4, "took {took}");
        collect(&mut p.server, &mut ev);
        let info = closed(&ev).ok_or_else(|| format!("len {len} > {max}: no close"))?;
        ensure!(
            info.code == ErrorCode::FRAME_TOO_LARGE,
            "closed with {info:?}"
        );
        Ok(())
    })())
}

#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
struct BigFragment {
    max_message: u64,
    excess: u64,
    last: bool,
    frag_id: u64,
    inner: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl Arbitrary for BigFragment {
    fn arbitrary(g: &mut Gen) -> Self {
        let inner = FrameModel::gen_kind(g, ty::MESSAGE).encode();
        BigFragment {
            max_message: if chance(g, 1, 2) {
                range(g, 1, 70_000)
            } else {
                range(g, 1, 1 << 24)
            },
            excess: if chance(g, 1, 2) {
                range(g, 1, 1000)
            } else {
                any_u64(g).max(1)
            },
            last: bool::arbitrary(g),
            frag_id: any_u64(g),
            inner,
        }
    }
}

#[cfg(feature = "alloc")]
fn prop_oversize_fragment(b: BigFragment) -> TestResult {
    verdict((|| {
        let mut sc = Config::default();
        sc.params.max_message_size = b.max_message;
        let mut p = Pair::established(Config::default(), sc);
        let total = b.max_message.saturating_add(b.excess);
        let data = &b.inner[..b.inner.len().min(8_000)];
        let f = FrameModel::Fragment {
            frag_id: b.frag_id,
            flags: frame::FRAG_FIRST | if b.last { frame::FRAG_LAST } else { 0 },
            total_len: total,
            data: data.to_vec(),
        };
        let rec = seal(&f.encode(), true);
        ensure!(p.server.stats().reassembly_bytes == 0, "reassembly before");
        let mut ev = Vec::new();
        let n = p.server.handle_input(NOW, &rec);
        ensure!(n == rec.len(), "took {n} of {}", rec.len());
        ensure!(
            p.server.stats().reassembly_bytes == 0,
            "reserved on a refused fragment"
        );
        collect(&mut p.server, &mut ev);
        let info = closed(&ev).ok_or_else(|| format!("total {total}: no close"))?;
        ensure!(
            info.code == ErrorCode::MESSAGE_TOO_LARGE,
            "total {total} > {}: closed with {info:?}",
            b.max_message
        );
        ensure!(message_events(&ev) == 0, "message delivered");
        ensure!(p.server.stats().reassembly_bytes == 0, "reassembly after");
        Ok(())
    })())
}

#[test]
fn p6_oversize_record_header_refused_from_four_bytes() {
    check(
        "p6_record_header",
        500,
        prop_oversize_record_header as fn(u16, u16, bool, bool) -> TestResult,
    );
}

#[test]
fn p6_oversize_record_closes_connection() {
    check(
        "p6_connection_record",
        200,
        prop_oversize_at_connection as fn(u16, u16) -> TestResult,
    );
}

// Without alloc the receiver announces no reassembly at all (FRAGMENT_LIMIT).
#[cfg(feature = "alloc")]
#[test]
fn p6_oversize_fragment_refused_on_first_fragment() {
    check(
        "p6_fragment",
        200,
        prop_oversize_fragment as fn(BigFragment) -> TestResult,
    );
}

// ===================================================================================
// 7. Hostile input never panics, work and memory stay bounded
// ===================================================================================

/// One unit of hostile traffic: a frame, or a message properly split into fragments.
#[derive(Clone, Debug)]
enum Item {
    Frame(FrameModel),
    Fragmented {
        frag_id: u64,
        inner: FrameModel,
        pieces: usize,
    },
}

impl Item {
    fn frames(&self) -> Vec<Vec<u8>> {
        match self {
            Item::Frame(f) => vec![f.encode()],
            Item::Fragmented {
                frag_id,
                inner,
                pieces,
            } => {
                let enc = inner.encode();
                let size = enc.len().div_ceil(*pieces).max(1);
                let chunks: Vec<&[u8]> = enc.chunks(size).collect();
                let last = chunks.len() - 1;
                chunks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut flags = 0;
                        if i == 0 {
                            flags |= frame::FRAG_FIRST;
                        }
                        if i == last {
                            flags |= frame::FRAG_LAST;
                        }
                        FrameModel::Fragment {
                            frag_id: *frag_id,
                            flags,
                            total_len: if i == 0 { enc.len() as u64 } else { 0 },
                            data: c.to_vec(),
                        }
                        .encode()
                    })
                    .collect()
            }
        }
    }
}

/// Kinds an established server accepts from a client (given valid fields).
const BENIGN_KINDS: &[u8] = &[
    ty::PING,
    ty::PONG,
    ty::MESSAGE,
    ty::REQUEST,
    ty::CANCEL,
    ty::SUBSCRIBE,
    ty::UNSUBSCRIBE,
    ty::PUBLISH,
    ty::SUB_CREDIT,
    ty::EXTENSION_MIN,
];

/// Gives a frame the fields an established server accepts: increasing request and
/// subscription ids (`seq`), valid topics and filters, a known policy.
fn make_benign(f: &mut FrameModel, seq: u64) {
    let valid_topic = |t: &mut Vec<u8>| {
        let ok = std::str::from_utf8(t).is_ok_and(|s| weft_core::topic::validate_topic(s).is_ok());
        if !ok {
            *t = format!("t.{seq}").into_bytes();
        }
    };
    match f {
        FrameModel::Request { id, .. } => *id = seq,
        FrameModel::Subscribe {
            sub_id,
            policy,
            filter,
            group,
            ..
        } => {
            *sub_id = seq;
            *policy %= 4;
            let ok = std::str::from_utf8(filter)
                .is_ok_and(|s| weft_core::topic::validate_filter(s).is_ok());
            if !ok {
                *filter = b"t.>".to_vec();
            }
            group.clear();
        }
        FrameModel::Publish { topic, .. } => valid_topic(topic),
        _ => {}
    }
}

/// Traffic for an established server: records of arbitrary frames, or raw bytes.
#[derive(Clone, Debug)]
struct Hostile {
    items: Vec<Item>,
    /// Frames per record (cycled).
    per_record: Vec<usize>,
    /// Raw bytes appended after the records (or alone).
    garbage: Vec<u8>,
    /// Chunk lengths handed to `handle_input` (cycled).
    chunks: Vec<usize>,
    /// Whether the peer reads what the server sends (a non-reading peer lets queues
    /// fill up).
    reads: bool,
    /// Milliseconds the clock moves between chunks (cycled).
    steps: Vec<u64>,
}

fn gen_chunks(g: &mut Gen) -> Vec<usize> {
    (0..range(g, 1, 6))
        .map(|_| match range(g, 0, 2) {
            0 => range(g, 1, 16) as usize,
            1 => range(g, 1, 2_000) as usize,
            _ => range(g, 1, 70_000) as usize,
        })
        .collect()
}

impl Hostile {
    fn gen(g: &mut Gen, raw: bool) -> Hostile {
        let items = if raw {
            Vec::new()
        } else {
            // Two cases in three are "benign": frames a server accepts, so the traffic
            // gets deep (queues and reassembly fill up); the rest mix in every kind.
            let benign = chance(g, 2, 3);
            let mut next_id = 0;
            (0..range(g, 1, 60))
                .map(|_| {
                    next_id += 1;
                    match range(g, 0, 15) {
                        0 | 1 => {
                            let kinds: &[u8] = if benign {
                                &[ty::MESSAGE, ty::REQUEST, ty::PUBLISH]
                            } else {
                                &[ty::MESSAGE, ty::REQUEST, ty::PUBLISH, ty::RESPONSE]
                            };
                            let kind = *g.choose(kinds).unwrap();
                            let mut inner = FrameModel::gen_kind(g, kind);
                            if benign {
                                make_benign(&mut inner, next_id);
                            }
                            Item::Fragmented {
                                frag_id: if benign { next_id } else { range(g, 0, 10) },
                                inner,
                                pieces: range(g, 1, 5) as usize,
                            }
                        }
                        // A reassembly that is opened and never finished, announcing up
                        // to the whole reassembly memory.
                        2 => Item::Frame(FrameModel::Fragment {
                            frag_id: if benign { next_id } else { range(g, 0, 10) },
                            flags: frame::FRAG_FIRST,
                            total_len: range(g, 1, 17 << 20),
                            data: vec![ty::MESSAGE, 0x80],
                        }),
                        _ if benign => {
                            let kind = *g.choose(BENIGN_KINDS).unwrap();
                            let mut f = FrameModel::gen_kind(g, kind);
                            make_benign(&mut f, next_id);
                            Item::Frame(f)
                        }
                        _ => {
                            let kind = *g.choose(CLIENT_KINDS).unwrap();
                            Item::Frame(FrameModel::gen_kind(g, kind))
                        }
                    }
                })
                .collect()
        };
        let garbage = if raw {
            let n = if chance(g, 1, 2) {
                upto(g, 64 << 10)
            } else {
                upto(g, 512)
            };
            noise(g, n)
        } else if chance(g, 1, 4) {
            bytes_upto(g, 64)
        } else {
            Vec::new()
        };
        Hostile {
            items,
            per_record: (0..range(g, 1, 4))
                .map(|_| range(g, 1, 6) as usize)
                .collect(),
            garbage,
            chunks: gen_chunks(g),
            reads: chance(g, 3, 4),
            steps: (0..range(g, 1, 4))
                .map(|_| {
                    if chance(g, 1, 2) {
                        0
                    } else {
                        range(g, 0, 3_000)
                    }
                })
                .collect(),
        }
    }

    fn wire(&self) -> Vec<u8> {
        let frames: Vec<Vec<u8>> = self.items.iter().flat_map(Item::frames).collect();
        let mut out = Vec::new();
        let mut i = 0;
        let mut r = 0;
        while i < frames.len() {
            let k = self.per_record[r % self.per_record.len()];
            r += 1;
            let mut payload = Vec::new();
            for f in &frames[i..(i + k).min(frames.len())] {
                if !payload.is_empty() && payload.len() + f.len() > record::MAX_PAYLOAD {
                    break;
                }
                payload.extend_from_slice(f);
                i += 1;
            }
            if payload.len() > record::MAX_PAYLOAD {
                // A single frame too large for any record: send what fits.
                payload.truncate(record::MAX_PAYLOAD);
            }
            out.extend(seal(&payload, true));
        }
        out.extend_from_slice(&self.garbage);
        out
    }

    fn shrink_items(&self) -> Box<dyn Iterator<Item = Hostile>> {
        let me = self.clone();
        let n = self.items.len();
        let cuts = [n / 2, n.saturating_sub(1)];
        Box::new(
            cuts.into_iter()
                .filter(move |&k| k < n)
                .map(move |k| Hostile {
                    items: me.items[..k].to_vec(),
                    ..me.clone()
                })
                .chain((!self.garbage.is_empty()).then(|| Hostile {
                    garbage: self.garbage[..self.garbage.len() / 2].to_vec(),
                    ..self.clone()
                })),
        )
    }
}

#[derive(Clone, Debug)]
struct HostileRecords(Hostile);
#[derive(Clone, Debug)]
struct HostileBytes(Hostile);

impl Arbitrary for HostileRecords {
    fn arbitrary(g: &mut Gen) -> Self {
        HostileRecords(Hostile::gen(g, false))
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink_items().map(HostileRecords))
    }
}

impl Arbitrary for HostileBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        HostileBytes(Hostile::gen(g, true))
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink_items().map(HostileBytes))
    }
}

/// Control frames a server may queue beyond the data bound: its PONG allowance, a
/// CLOSE, and slack for the odd other control frame.
const CONTROL_SLACK: u64 = 64 << 10;

fn check_bounds(s: &Stats, cfg: &Config) -> Check {
    ensure!(
        s.queued_bytes <= cfg.max_queued_bytes as u64 + CONTROL_SLACK,
        "queued_bytes {} over bound",
        s.queued_bytes
    );
    ensure!(
        s.reassembly_bytes <= cfg.max_reassembly_bytes as u64,
        "reassembly_bytes {} over bound",
        s.reassembly_bytes
    );
    Ok(())
}

fn run_hostile(h: &Hostile) -> Check {
    let cfg = Config::default();
    let mut p = Pair::established(Config::default(), cfg.clone());
    let s = &mut p.server;
    let wire = h.wire();
    let mut now = NOW;
    let mut ev = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut step = 0;
    let mut stalls = 0;
    while pos < wire.len() {
        let want = h.chunks[step % h.chunks.len()].min(wire.len() - pos);
        let dt = h.steps[step % h.steps.len()];
        step += 1;
        ensure!(step < 1_000_000, "no progress");
        now = Instant::from_micros(now.as_micros() + dt * 1000);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        let took = s.handle_input(now, &wire[pos..pos + want]);
        ensure!(took <= want, "handle_input took {took} of {want}");
        pos += took;
        stalls = if took == 0 { stalls + 1 } else { 0 };
        ensure!(stalls < 3, "handle_input takes nothing after draining");
        let before = ev.len();
        collect(s, &mut ev);
        if h.reads {
            flush(s, now, &mut out);
        }
        check_bounds(&s.stats(), &cfg)?;
        for g in &ev[before..] {
            if let Event::Closed(info) = g.ev {
                if info.initiator == Side::Local {
                    ensure!(
                        info.code.name().is_some(),
                        "closed with undocumented {:?}",
                        info.code
                    );
                }
            }
        }
    }
    flush(s, now, &mut out);
    check_bounds(&s.stats(), &cfg)?;
    let closes = ev
        .iter()
        .filter(|g| matches!(g.ev, Event::Closed(_)))
        .count();
    ensure!(closes <= 1, "{closes} Closed events");
    Ok(())
}

fn prop_hostile_records(h: HostileRecords) -> TestResult {
    verdict(run_hostile(&h.0))
}

fn prop_hostile_bytes(h: HostileBytes) -> TestResult {
    verdict(run_hostile(&h.0))
}

#[test]
fn p7_arbitrary_bytes_after_handshake() {
    check(
        "p7_hostile_bytes",
        200,
        prop_hostile_bytes as fn(HostileBytes) -> TestResult,
    );
}

#[test]
fn p7_arbitrary_valid_records_after_handshake() {
    check(
        "p7_hostile_records",
        300,
        prop_hostile_records as fn(HostileRecords) -> TestResult,
    );
}

// ===================================================================================
// 8. Varints
// ===================================================================================

#[derive(Clone, Debug)]
struct AnyU64(u64);

impl Arbitrary for AnyU64 {
    fn arbitrary(g: &mut Gen) -> Self {
        AnyU64(any_u64(g))
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(AnyU64))
    }
}

fn prop_varint(v: AnyU64, pad: u8, tail: Vec<u8>) -> TestResult {
    verdict((|| {
        let v = v.0;
        let mut buf = [0u8; varint::MAX_LEN];
        let n = varint::encode(v, &mut buf).ok_or("encode")?;
        ensure!(n == varint::len(v), "len");
        let enc = &buf[..n];
        ensure!(varint::decode(enc) == Ok((v, n)), "round trip");
        let mut with_tail = enc.to_vec();
        with_tail.extend_from_slice(&tail);
        ensure!(varint::decode(&with_tail) == Ok((v, n)), "trailing bytes");
        for k in 0..n {
            ensure!(
                varint::decode(&enc[..k]) == Err(VarintError::Incomplete),
                "prefix {k}"
            );
        }
        // Padded (non-canonical) forms: set the continuation bit and add p - 1
        // bytes of 0x80 then a 0x00; every length up to and past MAX_LEN.
        let p = 1 + usize::from(pad) % 12;
        let mut padded = enc.to_vec();
        *padded.last_mut().unwrap() |= 0x80;
        padded.extend(std::iter::repeat_n(0x80, p - 1));
        padded.push(0x00);
        let r = varint::decode(&padded);
        ensure!(
            r == Err(VarintError::Invalid),
            "padded by {p}: {padded:02x?} gave {r:?}"
        );
        Ok(())
    })())
}

/// Whatever decodes is canonical: re-encoding reproduces the consumed bytes.
fn prop_varint_canonical(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        match varint::decode(&bytes) {
            Ok((v, n)) => {
                let mut buf = [0u8; varint::MAX_LEN];
                let m = varint::encode(v, &mut buf).ok_or("encode")?;
                ensure!(
                    buf[..m] == bytes[..n],
                    "accepted non-canonical {:02x?}",
                    &bytes[..n]
                );
            }
            Err(VarintError::Incomplete) => {
                ensure!(
                    bytes.len() < varint::MAX_LEN,
                    "incomplete at {} bytes",
                    bytes.len()
                );
                ensure!(
                    bytes.iter().all(|b| b & 0x80 != 0),
                    "incomplete with a last byte"
                );
            }
            Err(VarintError::Invalid) => {}
        }
        Ok(())
    })())
}

/// Bytes shaped like varints: continuation bits set, then a final byte.
#[derive(Clone, Debug)]
struct VarintLike(Vec<u8>);

impl Arbitrary for VarintLike {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 0, 12) as usize;
        let mut v: Vec<u8> = (0..n).map(|_| u8::arbitrary(g) | 0x80).collect();
        if chance(g, 3, 4) {
            v.push(if chance(g, 1, 2) {
                range(g, 0, 2) as u8
            } else {
                u8::arbitrary(g) & 0x7f
            });
        }
        VarintLike(v)
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(VarintLike))
    }
}

fn prop_varint_like(v: VarintLike) -> TestResult {
    prop_varint_canonical(v.0)
}

#[test]
fn p8_varint_round_trip_and_canonical() {
    check(
        "p8_varint",
        500,
        prop_varint as fn(AnyU64, u8, Vec<u8>) -> TestResult,
    );
    check(
        "p8_varint_canonical_random",
        500,
        prop_varint_canonical as fn(Vec<u8>) -> TestResult,
    );
    check(
        "p8_varint_canonical_shaped",
        500,
        prop_varint_like as fn(VarintLike) -> TestResult,
    );
}

// ===================================================================================
// 9. A failed command changes nothing
// ===================================================================================

#[derive(Clone, Debug)]
enum Cmd {
    Message {
        size: usize,
        off: usize,
        prio: Priority,
    },
    Request {
        subject: Vec<u8>,
        size: usize,
        timeout_ms: Option<u64>,
        prio: Priority,
    },
    Subscribe {
        filter: String,
        group: Option<String>,
        policy: OverflowPolicy,
    },
    Publish {
        topic: String,
        size: usize,
        prio: Priority,
    },
    Cancel(u64),
    Unsubscribe(u64),
    /// Drain `poll_transmit` (the peer reads).
    Flush,
}

fn cmd_size(g: &mut Gen) -> usize {
    match range(g, 0, 9) {
        0 => range(g, 1 << 20, 2 << 20) as usize,
        1 => range(g, 16_000, 300_000) as usize,
        _ => upto(g, 4096),
    }
}

fn prio(g: &mut Gen) -> Priority {
    *g.choose(&[
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ])
    .unwrap()
}

/// A filter or topic string, valid or not (empty, too long, bad tokens).
fn maybe_bad_topic(g: &mut Gen) -> String {
    match range(g, 0, 5) {
        0 => String::new(),
        1 => "a.".repeat(range(g, 100, 200) as usize) + "b",
        2 => text_upto(g, 40),
        _ => topic_text(g),
    }
}

impl Arbitrary for Cmd {
    fn arbitrary(g: &mut Gen) -> Self {
        match range(g, 0, 9) {
            0 | 1 => Cmd::Message {
                size: cmd_size(g),
                off: upto(g, 4095),
                prio: prio(g),
            },
            2 => Cmd::Request {
                subject: if chance(g, 1, 5) {
                    vec![b'x'; range(g, 250, 300) as usize]
                } else {
                    subject(g)
                },
                size: cmd_size(g),
                timeout_ms: if chance(g, 1, 2) {
                    Some(range(g, 0, 10_000))
                } else {
                    None
                },
                prio: prio(g),
            },
            3 => Cmd::Subscribe {
                filter: maybe_bad_topic(g),
                group: match range(g, 0, 3) {
                    0 => Some(maybe_bad_topic(g)),
                    1 => Some("g".repeat(range(g, 1, 80) as usize)),
                    _ => None,
                },
                policy: *g
                    .choose(&[
                        OverflowPolicy::Wait,
                        OverflowPolicy::DropOldest,
                        OverflowPolicy::DropNewest,
                        OverflowPolicy::Disconnect,
                    ])
                    .unwrap(),
            },
            4 => Cmd::Publish {
                topic: maybe_bad_topic(g),
                size: cmd_size(g),
                prio: prio(g),
            },
            5 => Cmd::Cancel(range(g, 0, 12)),
            6 => Cmd::Unsubscribe(range(g, 0, 12)),
            _ => Cmd::Flush,
        }
    }
}

/// What a run observed after each command: the result, the stats, and the bytes of
/// a flush.
#[derive(Debug, PartialEq)]
struct Step {
    result: Result<u64, weft_core::Error>,
    stats: Stats,
    sent: Vec<u8>,
}

/// Runs `cmds` except the skipped ones on a fresh established client. Returns the
/// stats before the first command, one step per command run plus a final flush, and
/// the events.
fn run_cmds(cmds: &[Cmd], skip: &[bool]) -> (Stats, Vec<Step>, Vec<Got>) {
    let p = Pair::established(Config::default(), Config::default());
    let mut c = p.client;
    let initial = c.stats();
    let mut steps = Vec::new();
    for (cmd, &skip) in cmds.iter().zip(skip) {
        if skip {
            continue;
        }
        let mut sent = Vec::new();
        let result = match cmd {
            Cmd::Message { size, off, prio } => {
                c.send_message(pattern_slice(*off, *size), *prio).map(|_| 0)
            }
            Cmd::Request {
                subject,
                size,
                timeout_ms,
                prio,
            } => c.request(
                NOW,
                subject,
                pattern_slice(*size, *size),
                timeout_ms.map(std::time::Duration::from_millis),
                *prio,
            ),
            Cmd::Subscribe {
                filter,
                group,
                policy,
            } => c.subscribe(filter, group.as_deref(), *policy),
            Cmd::Publish { topic, size, prio } => {
                c.publish(topic, pattern_slice(7, *size), *prio).map(|_| 0)
            }
            Cmd::Cancel(id) => c.cancel(*id).map(|_| 0),
            Cmd::Unsubscribe(id) => c.unsubscribe(*id).map(|_| 0),
            Cmd::Flush => {
                flush(&mut c, NOW, &mut sent);
                Ok(0)
            }
        };
        steps.push(Step {
            result,
            stats: c.stats(),
            sent,
        });
    }
    let mut sent = Vec::new();
    flush(&mut c, NOW, &mut sent);
    steps.push(Step {
        result: Ok(0),
        stats: c.stats(),
        sent,
    });
    let mut ev = Vec::new();
    collect(&mut c, &mut ev);
    (initial, steps, ev)
}

fn prop_commit_on_success(cmds: Vec<Cmd>) -> TestResult {
    verdict((|| {
        let all = vec![false; cmds.len()];
        let (init1, first, ev1) = run_cmds(&cmds, &all);
        let failed: Vec<bool> = first[..cmds.len()]
            .iter()
            .map(|s| s.result.is_err())
            .collect();
        let (init2, second, ev2) = run_cmds(&cmds, &failed);
        ensure!(init1 == init2, "runs start differently");
        // The first run without its failed steps; each failed step must have left the
        // stats as they were before it (and sends nothing: it is not a flush).
        let mut expect = Vec::new();
        let mut before = init1;
        for (i, s) in first.iter().enumerate() {
            if i < cmds.len() && failed[i] {
                ensure!(
                    s.stats == before,
                    "failed {:?} ({:?}) changed stats: {before:?} -> {:?}",
                    cmds[i],
                    s.result,
                    s.stats
                );
                continue;
            }
            before = s.stats;
            expect.push(s);
        }
        ensure!(expect.len() == second.len(), "step counts");
        for (i, (a, b)) in expect.iter().zip(&second).enumerate() {
            ensure!(
                a.result == b.result,
                "step {i}: result {:?} vs {:?}",
                a.result,
                b.result
            );
            ensure!(
                a.stats == b.stats,
                "step {i}: stats {:?} vs {:?}",
                a.stats,
                b.stats
            );
            ensure!(
                a.sent == b.sent,
                "step {i}: sent bytes differ ({} vs {})",
                a.sent.len(),
                b.sent.len()
            );
        }
        // `Writable` follows a `Blocked` refusal by design (the retry signal); every
        // other event must be the same.
        let strip = |ev: Vec<Got>| -> Vec<Got> {
            ev.into_iter()
                .filter(|g| !matches!(g.ev, Event::Writable))
                .collect()
        };
        ensure!(strip(ev1) == strip(ev2), "events differ");
        Ok(())
    })())
}

#[test]
fn p9_failed_commands_change_nothing() {
    check(
        "p9_commit_on_success",
        150,
        prop_commit_on_success as fn(Vec<Cmd>) -> TestResult,
    );
}

// ===================================================================================
// Found while writing property 4: request ids must arrive in increasing order, but
// the sender's scheduler reorders requests.
// ===================================================================================

#[derive(Clone, Debug)]
struct ReqSpec {
    size: usize,
    prio: Priority,
}

impl Arbitrary for ReqSpec {
    fn arbitrary(g: &mut Gen) -> Self {
        ReqSpec {
            size: if chance(g, 1, 4) {
                range(g, 16_000, 40_000) as usize
            } else {
                upto(g, 2_000)
            },
            prio: prio(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let prio = self.prio;
        let mut out = Vec::new();
        if self.size > 0 {
            out.push(ReqSpec { size: 0, prio });
            out.push(ReqSpec {
                size: self.size / 2,
                prio,
            });
        }
        if prio != Priority::Normal {
            out.push(ReqSpec {
                size: self.size,
                prio: Priority::Normal,
            });
        }
        Box::new(out.into_iter())
    }
}

#[derive(Clone, Debug)]
struct Requests(Vec<ReqSpec>);

impl Arbitrary for Requests {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 1, 8);
        Requests((0..n).map(|_| ReqSpec::arbitrary(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().filter(|v| !v.is_empty()).map(Requests))
    }
}

/// Well-formed requests from an established client never make the server close, and
/// every one of them reaches the server.
fn prop_requests_arrive(r: Requests) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        let mut ids = Vec::new();
        for spec in &r.0 {
            let payload = pattern_slice(spec.size, spec.size);
            if let Ok(id) = p.client.request(NOW, b"svc.echo", payload, None, spec.prio) {
                ids.push(id);
            }
        }
        p.drive();
        if let Some(info) = closed(&p.s_events) {
            return Err(format!(
                "server closed with {info:?} ({:?}); client sent {}",
                p.server.close_reason(),
                describe(&p.client_wire)
            ));
        }
        let got: Vec<u64> = p
            .s_events
            .iter()
            .filter_map(|g| match g.ev {
                Event::Request { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        ensure!(sorted == ids, "sent {ids:?}, server saw {got:?}");
        Ok(())
    })())
}

#[test]
fn regression_requests_reordered_by_the_scheduler_are_accepted() {
    check(
        "bug_request_order",
        200,
        prop_requests_arrive as fn(Requests) -> TestResult,
    );
}

// ===================================================================================
// Found while writing property 9: a CANCEL overtakes the request it cancels.
// ===================================================================================

/// A request cancelled before it was sent is either never seen by the responder, or
/// seen and then cancelled: the responder is never left holding a request the
/// requester gave up on.
fn prop_cancel_reaches_responder(spec: ReqSpec) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        let payload = pattern_slice(spec.size, spec.size);
        let Ok(id) = p.client.request(NOW, b"svc.echo", payload, None, spec.prio) else {
            return Ok(());
        };
        p.client.cancel(id).map_err(|e| format!("cancel: {e:?}"))?;
        p.drive();
        let seen = p
            .s_events
            .iter()
            .position(|g| matches!(g.ev, Event::Request { id: i, .. } if i == id));
        let cancelled = p
            .s_events
            .iter()
            .position(|g| g.ev == Event::RequestCancelled { id });
        match (seen, cancelled) {
            (None, _) => Ok(()),
            (Some(s), Some(c)) if c > s => Ok(()),
            _ => Err(format!(
                "server got request {id} but no later cancel; client sent {}",
                describe(&p.client_wire)
            )),
        }
    })())
}

#[test]
fn regression_cancel_never_overtakes_its_request() {
    check(
        "bug_cancel_order",
        100,
        prop_cancel_reaches_responder as fn(ReqSpec) -> TestResult,
    );
}
