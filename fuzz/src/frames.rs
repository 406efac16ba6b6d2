//! Fuzzer-chosen frames, encoded with weft-core's own codec and sealed into records
//! with correct header checks and CRCs, so that inputs get past record integrity and
//! reach the frame handlers. Shared with the no-alloc project (`noalloc/`), so it
//! uses only what weft-core offers without `alloc`.

use arbitrary::Arbitrary;
use weft_core::wire::frame::{Frame, Status, NONCE_LEN};
use weft_core::wire::record;
use weft_core::ErrorCode;

/// A number biased towards small values, so ids collide with live ones.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Num {
    /// 0..=255.
    Small(u8),
    /// 0..=65535.
    Mid(u16),
    /// Anything, including values near `u64::MAX`.
    Any(u64),
}

impl Num {
    /// The value.
    pub fn get(self) -> u64 {
        match self {
            Num::Small(v) => u64::from(v),
            Num::Mid(v) => u64::from(v),
            Num::Any(v) => v,
        }
    }
}

/// Topics, filters, subjects and group names that mean something to the
/// connection, valid and invalid, plus raw bytes.
pub const VOCAB: &[&str] = &[
    "a",
    "b",
    "a.b",
    "a.b.c",
    "a.*",
    "a.>",
    "*",
    ">",
    "*.b",
    "a.*.c",
    "x.y.z",
    "sensors.kitchen.temp",
    "echo",
    "grp",
    "",
    "a..b",
    ".a",
    "a.",
    "a b",
    "a*",
    ">.a",
    "a.>.b",
    "\u{7f}",
    "ünï.cödé",
];

/// Text: from [`VOCAB`] or raw bytes.
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    /// A vocabulary entry (index modulo its length).
    Vocab(u8),
    /// Anything.
    Raw(Vec<u8>),
}

impl Text {
    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Text::Vocab(i) => VOCAB[usize::from(*i) % VOCAB.len()].as_bytes().to_vec(),
            Text::Raw(b) => b.clone(),
        }
    }
}

/// A payload: literal bytes, or a cheap description of a long one.
#[derive(Arbitrary, Debug, Clone)]
pub enum Payload {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` copies of `byte`.
    Fill {
        /// Length.
        len: u16,
        /// The byte.
        byte: u8,
    },
}

impl Payload {
    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b.clone(),
            Payload::Fill { len, byte } => vec![*byte; usize::from(*len)],
        }
    }
}

/// A HELLO's parameter list.
#[derive(Arbitrary, Debug, Clone)]
pub enum ParamsSpec {
    /// Empty: every default.
    Defaults,
    /// The parameters the reference implementation announces by default.
    Reference,
    /// Chosen (id, value) pairs, in the order given.
    Pairs(Vec<(Num, Num)>),
    /// Raw bytes.
    Raw(Vec<u8>),
}

impl ParamsSpec {
    /// The encoded list.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            ParamsSpec::Defaults => {}
            ParamsSpec::Reference => {
                // capabilities 3, heartbeat 5000 ms, idle 30000 ms.
                push_varint(&mut out, 0);
                push_varint(&mut out, 3);
                push_varint(&mut out, 9);
                push_varint(&mut out, 5000);
                push_varint(&mut out, 10);
                push_varint(&mut out, 30000);
            }
            ParamsSpec::Pairs(p) => {
                for (k, v) in p {
                    push_varint(&mut out, k.get());
                    push_varint(&mut out, v.get());
                }
            }
            ParamsSpec::Raw(b) => out.extend_from_slice(b),
        }
        out
    }
}

/// Appends a canonical varint.
pub fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; 10];
    let n = weft_core::varint::encode(v, &mut b).expect("10 bytes hold any u64");
    out.extend_from_slice(&b[..n]);
}

/// One frame as the fuzzer describes it.
#[derive(Arbitrary, Debug, Clone)]
#[allow(missing_docs)]
pub enum FrameSpec {
    ClientHello {
        nonce: [u8; NONCE_LEN],
        params: ParamsSpec,
        auth_scheme: u8,
        key_id: Vec<u8>,
        token: Vec<u8>,
    },
    ServerHello {
        nonce: [u8; NONCE_LEN],
        params: ParamsSpec,
        auth_scheme: u8,
        proof: Vec<u8>,
        token: Vec<u8>,
    },
    Auth {
        proof: Vec<u8>,
    },
    Ping(u64),
    Pong(u64),
    /// A PONG echoing the token of the last PING the connection sent.
    PongEcho,
    Close {
        code: Num,
        last_request_id: Num,
        reason: Text,
    },
    WindowUpdate {
        id: Num,
        increment: Num,
    },
    Message(Payload),
    Request {
        id: Num,
        timeout_ms: Num,
        subject: Text,
        payload: Payload,
    },
    Response {
        id: Num,
        status: u8,
        code: Num,
        message: Text,
        payload: Payload,
    },
    Cancel(Num),
    Subscribe {
        sub_id: Num,
        policy: u8,
        credit: Num,
        filter: Text,
        group: Text,
    },
    Unsubscribe(Num),
    Publish {
        topic: Text,
        payload: Payload,
    },
    Deliver {
        sub_id: Num,
        topic: Text,
        payload: Payload,
    },
    SubCredit {
        sub_id: Num,
        increment: Num,
    },
    SubDropped {
        sub_id: Num,
        total: Num,
    },
    StreamData {
        id: Num,
        flags: u8,
        data: Payload,
    },
    StreamReset {
        id: Num,
        code: Num,
    },
    Fragment {
        frag_id: Num,
        flags: u8,
        total_len: Num,
        data: Payload,
    },
    /// A frame of this type with this body, its length field correct.
    Typed {
        ty: u8,
        body: Vec<u8>,
    },
    /// Bytes as they are (a frame header with any length).
    Bytes(Vec<u8>),
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn encode(f: &Frame<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + f.encoded_len(), 0);
    let n = f
        .encode(&mut out[start..])
        .expect("encoded_len bytes hold the frame");
    assert_eq!(n, f.encoded_len(), "encode wrote encoded_len bytes: {f:?}");
}

impl FrameSpec {
    /// Appends the frame's bytes; `last_ping` is the token of the last PING the
    /// connection under test sent, for [`FrameSpec::PongEcho`].
    pub fn encode_into(&self, out: &mut Vec<u8>, last_ping: u64) {
        use FrameSpec as S;
        match self {
            S::ClientHello {
                nonce,
                params,
                auth_scheme,
                key_id,
                token,
            } => {
                let p = params.bytes();
                encode(
                    &Frame::ClientHello {
                        nonce: *nonce,
                        params: &p,
                        auth_scheme: *auth_scheme,
                        key_id,
                        token,
                    },
                    out,
                );
            }
            S::ServerHello {
                nonce,
                params,
                auth_scheme,
                proof,
                token,
            } => {
                let p = params.bytes();
                encode(
                    &Frame::ServerHello {
                        nonce: *nonce,
                        params: &p,
                        auth_scheme: *auth_scheme,
                        proof,
                        token,
                    },
                    out,
                );
            }
            S::Auth { proof } => encode(&Frame::Auth { proof }, out),
            S::Ping(token) => encode(&Frame::Ping { token: *token }, out),
            S::Pong(token) => encode(&Frame::Pong { token: *token }, out),
            S::PongEcho => encode(&Frame::Pong { token: last_ping }, out),
            S::Close {
                code,
                last_request_id,
                reason,
            } => {
                let r = utf8(&reason.bytes());
                encode(
                    &Frame::Close {
                        code: ErrorCode(code.get()),
                        last_request_id: last_request_id.get(),
                        reason: &r,
                    },
                    out,
                );
            }
            S::WindowUpdate { id, increment } => encode(
                &Frame::WindowUpdate {
                    id: id.get(),
                    increment: increment.get(),
                },
                out,
            ),
            S::Message(p) => encode(
                &Frame::Message {
                    payload: &p.bytes(),
                },
                out,
            ),
            S::Request {
                id,
                timeout_ms,
                subject,
                payload,
            } => encode(
                &Frame::Request {
                    id: id.get(),
                    timeout_ms: timeout_ms.get(),
                    subject: &subject.bytes(),
                    payload: &payload.bytes(),
                },
                out,
            ),
            S::Response {
                id,
                status,
                code,
                message,
                payload,
            } => {
                let m = utf8(&message.bytes());
                let status = match status % 5 {
                    0 => Status::Ok,
                    1 => Status::Error {
                        code: code.get(),
                        message: &m,
                    },
                    2 => Status::NoResponder,
                    3 => Status::DeadlineExceeded,
                    _ => Status::Cancelled,
                };
                encode(
                    &Frame::Response {
                        id: id.get(),
                        status,
                        payload: &payload.bytes(),
                    },
                    out,
                );
            }
            S::Cancel(id) => encode(&Frame::Cancel { id: id.get() }, out),
            S::Subscribe {
                sub_id,
                policy,
                credit,
                filter,
                group,
            } => encode(
                &Frame::Subscribe {
                    sub_id: sub_id.get(),
                    policy: *policy,
                    credit: credit.get(),
                    filter: &filter.bytes(),
                    group: &group.bytes(),
                },
                out,
            ),
            S::Unsubscribe(sub_id) => encode(
                &Frame::Unsubscribe {
                    sub_id: sub_id.get(),
                },
                out,
            ),
            S::Publish { topic, payload } => encode(
                &Frame::Publish {
                    topic: &topic.bytes(),
                    payload: &payload.bytes(),
                },
                out,
            ),
            S::Deliver {
                sub_id,
                topic,
                payload,
            } => encode(
                &Frame::Deliver {
                    sub_id: sub_id.get(),
                    topic: &topic.bytes(),
                    payload: &payload.bytes(),
                },
                out,
            ),
            S::SubCredit { sub_id, increment } => encode(
                &Frame::SubCredit {
                    sub_id: sub_id.get(),
                    increment: increment.get(),
                },
                out,
            ),
            S::SubDropped { sub_id, total } => encode(
                &Frame::SubDropped {
                    sub_id: sub_id.get(),
                    total: total.get(),
                },
                out,
            ),
            S::StreamData { id, flags, data } => encode(
                &Frame::StreamData {
                    id: id.get(),
                    flags: flags & 3,
                    data: &data.bytes(),
                },
                out,
            ),
            S::StreamReset { id, code } => encode(
                &Frame::StreamReset {
                    id: id.get(),
                    code: code.get(),
                },
                out,
            ),
            S::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => encode(
                &Frame::Fragment {
                    frag_id: frag_id.get(),
                    flags: flags & 3,
                    total_len: total_len.get(),
                    data: &data.bytes(),
                },
                out,
            ),
            S::Typed { ty, body } => {
                out.push(*ty);
                push_varint(out, body.len() as u64);
                out.extend_from_slice(body);
            }
            S::Bytes(b) => out.extend_from_slice(b),
        }
    }
}

/// How a record's integrity is presented.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crc {
    /// Correct header check and CRC-32C trailer.
    Good,
    /// Correct header check, no trailer.
    Omitted,
    /// Correct header check, trailer with one bit flipped.
    Corrupt(u8),
}

/// Frames sealed into records: packed into as few records of at most `max_payload`
/// bytes as they fit in (a frame longer than that is cut to it).
pub fn seal_frames(frames: &[FrameSpec], crc: Crc, max_payload: usize, last_ping: u64) -> Vec<u8> {
    let max_payload = max_payload.clamp(1, record::MAX_PAYLOAD);
    let mut out = Vec::new();
    let mut payload = Vec::new();
    let mut one = Vec::new();
    for f in frames {
        one.clear();
        f.encode_into(&mut one, last_ping);
        one.truncate(max_payload);
        if !payload.is_empty() && payload.len() + one.len() > max_payload {
            seal_into(&payload, crc, &mut out);
            payload.clear();
        }
        payload.extend_from_slice(&one);
    }
    if !payload.is_empty() {
        seal_into(&payload, crc, &mut out);
    }
    out
}

/// Appends one record holding `payload` (1..=65535 bytes).
pub fn seal_into(payload: &[u8], crc: Crc, out: &mut Vec<u8>) {
    let integrity = crc != Crc::Omitted;
    let start = out.len();
    out.resize(start + record::overhead(integrity) + payload.len(), 0);
    let rec = &mut out[start..];
    rec[record::HEADER_LEN..record::HEADER_LEN + payload.len()].copy_from_slice(payload);
    let n = record::seal(rec, payload.len(), integrity).expect("room for the record");
    assert_eq!(n, rec.len());
    if let Crc::Corrupt(bit) = crc {
        let last = rec.len() - 1 - usize::from(bit / 8 % 4);
        rec[last] ^= 1 << (bit % 8);
    }
}

/// The tokens of the PINGs found in bytes a connection sent (records with or without
/// trailers; anything unparseable is skipped).
pub fn last_ping_in(wire: &[u8], last: &mut u64) {
    let mut pos = 0;
    // Skip a preface.
    if wire.starts_with(b"WEFT") {
        pos = weft_core::wire::preface::LEN;
    }
    while pos < wire.len() {
        let Ok(Some(info)) = record::parse(&wire[pos..], record::MAX_PAYLOAD, false) else {
            return;
        };
        let payload = &wire[pos + info.payload_start..pos + info.payload_start + info.payload_len];
        let mut p = 0;
        while p < payload.len() {
            let Ok((t, len, hdr)) = weft_core::wire::frame::decode_header(&payload[p..]) else {
                break;
            };
            let Some(body) = payload.get(p + hdr..p + hdr + len) else {
                break;
            };
            if let Ok(Frame::Ping { token }) = Frame::decode(t, body) {
                *last = token;
            }
            p += hdr + len;
        }
        pos += info.total_len;
    }
}
