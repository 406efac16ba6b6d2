//! Frames: the protocol's units, each `type (u8) | length (varint) | body`.
//!
//! Every frame's encoder and decoder is here, in [`Frame::encode_body`] and
//! [`Frame::decode`]; the connection's handler for it is `conn::Connection::on_frame`.
//! Frame type ranges (the extension rule): `0x01..=0x3f` are protocol frames and an
//! unknown one is [`crate::ErrorCode::UNKNOWN_FRAME`]; `0x40..=0x7f` are ignorable
//! extensions that a receiver which does not know them skips; `0x00` and
//! `0x80..=0xff` are invalid.

use super::codec::{len_prefixed_len, Malformed, Reader, Writer};
use crate::error::ErrorCode;
use crate::varint;

/// Frame type codes.
pub mod ty {
    /// Client's handshake hello.
    pub const CLIENT_HELLO: u8 = 0x01;
    /// Server's handshake hello.
    pub const SERVER_HELLO: u8 = 0x02;
    /// Client's authentication proof.
    pub const AUTH: u8 = 0x03;
    /// Heartbeat probe.
    pub const PING: u8 = 0x04;
    /// Heartbeat answer.
    pub const PONG: u8 = 0x05;
    /// Close, graceful or on error.
    pub const CLOSE: u8 = 0x06;
    /// Stream or connection flow-control credit.
    pub const WINDOW_UPDATE: u8 = 0x07;
    /// Reserved for session resumption (acknowledged sequence number).
    pub const RESERVED_ACK: u8 = 0x08;
    /// One-way message.
    pub const MESSAGE: u8 = 0x10;
    /// Request.
    pub const REQUEST: u8 = 0x11;
    /// Response.
    pub const RESPONSE: u8 = 0x12;
    /// Cancel a request.
    pub const CANCEL: u8 = 0x13;
    /// Subscribe.
    pub const SUBSCRIBE: u8 = 0x14;
    /// Unsubscribe.
    pub const UNSUBSCRIBE: u8 = 0x15;
    /// Publish.
    pub const PUBLISH: u8 = 0x16;
    /// Deliver a published message to a subscription.
    pub const DELIVER: u8 = 0x17;
    /// Grant deliveries to a subscription.
    pub const SUB_CREDIT: u8 = 0x18;
    /// Report messages dropped for a subscription.
    pub const SUB_DROPPED: u8 = 0x19;
    /// Stream data.
    pub const STREAM_DATA: u8 = 0x1a;
    /// Stream reset.
    pub const STREAM_RESET: u8 = 0x1b;
    /// A fragment of a larger frame.
    pub const FRAGMENT: u8 = 0x1f;
    /// First ignorable extension type.
    pub const EXTENSION_MIN: u8 = 0x40;
    /// Last ignorable extension type.
    pub const EXTENSION_MAX: u8 = 0x7f;
    /// Every type with an encoding in this version, in code order (not
    /// [`RESERVED_ACK`], not the extension range).
    pub const DEFINED: [u8; 20] = [
        CLIENT_HELLO,
        SERVER_HELLO,
        AUTH,
        PING,
        PONG,
        CLOSE,
        WINDOW_UPDATE,
        MESSAGE,
        REQUEST,
        RESPONSE,
        CANCEL,
        SUBSCRIBE,
        UNSUBSCRIBE,
        PUBLISH,
        DELIVER,
        SUB_CREDIT,
        SUB_DROPPED,
        STREAM_DATA,
        STREAM_RESET,
        FRAGMENT,
    ];
}

/// Length of the nonces in the HELLOs.
pub const NONCE_LEN: usize = 16;
/// Longest key id.
pub const MAX_KEY_ID: usize = 64;
/// Longest authentication proof.
pub const MAX_PROOF: usize = 64;
/// Longest session token (reserved for resumption).
pub const MAX_TOKEN: usize = 64;
/// Longest close reason or error message, in bytes of UTF-8.
pub const MAX_REASON: usize = 256;
/// Longest request subject, publish topic or subscription filter.
pub const MAX_SUBJECT: usize = 256;
/// Longest queue group name.
pub const MAX_GROUP: usize = 64;

/// Stream data flag: first frame of a stream.
pub const STREAM_OPEN: u8 = 0x01;
/// Stream data flag: last frame in this direction.
pub const STREAM_FIN: u8 = 0x02;
/// Fragment flag: first fragment, carries the total length.
pub const FRAG_FIRST: u8 = 0x01;
/// Fragment flag: last fragment.
pub const FRAG_LAST: u8 = 0x02;

/// The outcome a RESPONSE carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<'a> {
    /// Success; the payload is the result.
    Ok,
    /// The responder failed with an application code and message.
    Error {
        /// Application error code.
        code: u64,
        /// UTF-8 message.
        message: &'a str,
    },
    /// Nobody serves the subject.
    NoResponder,
    /// The responder gave up at the deadline.
    DeadlineExceeded,
    /// The responder cancelled the request.
    Cancelled,
}

impl Status<'_> {
    fn code(&self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Error { .. } => 1,
            Status::NoResponder => 2,
            Status::DeadlineExceeded => 3,
            Status::Cancelled => 4,
        }
    }
}

/// A decoded frame, borrowing its variable parts from the record it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Client hello.
    ClientHello {
        /// Client nonce.
        nonce: [u8; NONCE_LEN],
        /// Encoded parameter list (see [`super::params`]).
        params: &'a [u8],
        /// Authentication scheme, 0 for none.
        auth_scheme: u8,
        /// Key id presented.
        key_id: &'a [u8],
        /// Session token, empty (reserved for resumption).
        token: &'a [u8],
    },
    /// Server hello.
    ServerHello {
        /// Server nonce.
        nonce: [u8; NONCE_LEN],
        /// Encoded parameter list.
        params: &'a [u8],
        /// Authentication scheme, 0 for none.
        auth_scheme: u8,
        /// The server's proof (empty without authentication).
        proof: &'a [u8],
        /// Session token, empty (reserved for resumption).
        token: &'a [u8],
    },
    /// Client's proof.
    Auth {
        /// HMAC proof.
        proof: &'a [u8],
    },
    /// Heartbeat probe.
    Ping {
        /// Opaque token echoed by the PONG.
        token: u64,
    },
    /// Heartbeat answer.
    Pong {
        /// The PING's token.
        token: u64,
    },
    /// Close.
    Close {
        /// Why.
        code: ErrorCode,
        /// Highest peer request id that will be (or was) processed.
        last_request_id: u64,
        /// Human-readable reason.
        reason: &'a str,
    },
    /// Flow-control credit for a stream (id > 0) or the connection (id 0).
    WindowUpdate {
        /// Stream id or 0.
        id: u64,
        /// Added credit in bytes.
        increment: u64,
    },
    /// One-way message.
    Message {
        /// Application payload.
        payload: &'a [u8],
    },
    /// Request.
    Request {
        /// Request id, allocated by the requester, increasing from 1.
        id: u64,
        /// Milliseconds the requester will wait, 0 for no deadline.
        timeout_ms: u64,
        /// What is asked for.
        subject: &'a [u8],
        /// Argument.
        payload: &'a [u8],
    },
    /// Response.
    Response {
        /// The request's id.
        id: u64,
        /// Outcome.
        status: Status<'a>,
        /// Result payload.
        payload: &'a [u8],
    },
    /// Cancel an outstanding request (sent by the requester).
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// Subscribe.
    Subscribe {
        /// Subscription id chosen by the subscriber.
        sub_id: u64,
        /// Overflow policy (0 wait, 1 drop oldest, 2 drop newest, 3 disconnect).
        policy: u8,
        /// Initial credit in messages.
        credit: u64,
        /// Topic filter.
        filter: &'a [u8],
        /// Queue group, empty for none.
        group: &'a [u8],
    },
    /// Unsubscribe.
    Unsubscribe {
        /// Subscription id.
        sub_id: u64,
    },
    /// Publish.
    Publish {
        /// Topic.
        topic: &'a [u8],
        /// Payload.
        payload: &'a [u8],
    },
    /// Delivery to a subscription.
    Deliver {
        /// Subscription id.
        sub_id: u64,
        /// Topic the message was published on.
        topic: &'a [u8],
        /// Payload.
        payload: &'a [u8],
    },
    /// More deliveries allowed.
    SubCredit {
        /// Subscription id.
        sub_id: u64,
        /// Added credit in messages.
        increment: u64,
    },
    /// Messages dropped for a subscription by its overflow policy.
    SubDropped {
        /// Subscription id.
        sub_id: u64,
        /// Total dropped so far.
        total: u64,
    },
    /// Stream data.
    StreamData {
        /// Stream id.
        id: u64,
        /// [`STREAM_OPEN`] and [`STREAM_FIN`].
        flags: u8,
        /// Bytes.
        data: &'a [u8],
    },
    /// Stream reset.
    StreamReset {
        /// Stream id.
        id: u64,
        /// Application reset code.
        code: u64,
    },
    /// A fragment of a larger frame.
    Fragment {
        /// Fragmented-frame id chosen by the sender.
        frag_id: u64,
        /// [`FRAG_FIRST`] and [`FRAG_LAST`].
        flags: u8,
        /// Length of the whole frame, present on the first fragment only.
        total_len: u64,
        /// Bytes of the whole frame's encoding.
        data: &'a [u8],
    },
    /// An ignorable extension frame this version does not know.
    Extension {
        /// Its type.
        ty: u8,
        /// Its body, ignored.
        body: &'a [u8],
    },
}

/// Why a frame could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed for the header or body.
    Incomplete,
    /// The frame is known but malformed, or the type is invalid: close with the code.
    Fatal(ErrorCode),
}

/// Reads one frame header: `(type, body_len, header_len)`.
#[inline]
pub fn decode_header(buf: &[u8]) -> Result<(u8, usize, usize), FrameError> {
    let (&t, rest) = buf.split_first().ok_or(FrameError::Incomplete)?;
    let (len, n) = varint::decode(rest).map_err(|e| match e {
        varint::VarintError::Incomplete => FrameError::Incomplete,
        varint::VarintError::Invalid => FrameError::Fatal(ErrorCode::PROTOCOL_ERROR),
    })?;
    let len = usize::try_from(len).map_err(|_| FrameError::Fatal(ErrorCode::FRAME_TOO_LARGE))?;
    Ok((t, len, 1 + n))
}

fn utf8(b: &[u8]) -> Result<&str, Malformed> {
    core::str::from_utf8(b).map_err(|_| Malformed)
}

impl<'a> Frame<'a> {
    /// Its type code.
    pub fn ty(&self) -> u8 {
        match self {
            Frame::ClientHello { .. } => ty::CLIENT_HELLO,
            Frame::ServerHello { .. } => ty::SERVER_HELLO,
            Frame::Auth { .. } => ty::AUTH,
            Frame::Ping { .. } => ty::PING,
            Frame::Pong { .. } => ty::PONG,
            Frame::Close { .. } => ty::CLOSE,
            Frame::WindowUpdate { .. } => ty::WINDOW_UPDATE,
            Frame::Message { .. } => ty::MESSAGE,
            Frame::Request { .. } => ty::REQUEST,
            Frame::Response { .. } => ty::RESPONSE,
            Frame::Cancel { .. } => ty::CANCEL,
            Frame::Subscribe { .. } => ty::SUBSCRIBE,
            Frame::Unsubscribe { .. } => ty::UNSUBSCRIBE,
            Frame::Publish { .. } => ty::PUBLISH,
            Frame::Deliver { .. } => ty::DELIVER,
            Frame::SubCredit { .. } => ty::SUB_CREDIT,
            Frame::SubDropped { .. } => ty::SUB_DROPPED,
            Frame::StreamData { .. } => ty::STREAM_DATA,
            Frame::StreamReset { .. } => ty::STREAM_RESET,
            Frame::Fragment { .. } => ty::FRAGMENT,
            Frame::Extension { ty, .. } => *ty,
        }
    }

    /// Decodes the body of a frame of type `t`.
    pub fn decode(t: u8, body: &'a [u8]) -> Result<Frame<'a>, ErrorCode> {
        if (ty::EXTENSION_MIN..=ty::EXTENSION_MAX).contains(&t) {
            return Ok(Frame::Extension { ty: t, body });
        }
        // The most frequent frame, and the one with nothing to check.
        if t == ty::MESSAGE {
            return Ok(Frame::Message { payload: body });
        }
        let mut r = Reader::new(body);
        let f = Self::decode_known(t, &mut r).map_err(|_| ErrorCode::PROTOCOL_ERROR)?;
        match f {
            Some(f) => {
                r.finish().map_err(|_| ErrorCode::PROTOCOL_ERROR)?;
                Ok(f)
            }
            None => Err(ErrorCode::UNKNOWN_FRAME),
        }
    }

    fn decode_known(t: u8, r: &mut Reader<'a>) -> Result<Option<Frame<'a>>, Malformed> {
        Ok(Some(match t {
            ty::CLIENT_HELLO => Frame::ClientHello {
                nonce: r.array()?,
                params: r.len_prefixed(512)?,
                auth_scheme: r.u8()?,
                key_id: r.len_prefixed(MAX_KEY_ID)?,
                token: r.len_prefixed(MAX_TOKEN)?,
            },
            ty::SERVER_HELLO => Frame::ServerHello {
                nonce: r.array()?,
                params: r.len_prefixed(512)?,
                auth_scheme: r.u8()?,
                proof: r.len_prefixed(MAX_PROOF)?,
                token: r.len_prefixed(MAX_TOKEN)?,
            },
            ty::AUTH => Frame::Auth {
                proof: r.len_prefixed(MAX_PROOF)?,
            },
            ty::PING => Frame::Ping {
                token: u64::from_be_bytes(r.array()?),
            },
            ty::PONG => Frame::Pong {
                token: u64::from_be_bytes(r.array()?),
            },
            ty::CLOSE => Frame::Close {
                code: ErrorCode(r.varint()?),
                last_request_id: r.varint()?,
                reason: utf8(r.len_prefixed(MAX_REASON)?)?,
            },
            ty::WINDOW_UPDATE => Frame::WindowUpdate {
                id: r.varint()?,
                increment: r.varint()?,
            },
            ty::MESSAGE => Frame::Message { payload: r.rest() },
            ty::REQUEST => Frame::Request {
                id: r.varint()?,
                timeout_ms: r.varint()?,
                subject: r.len_prefixed(MAX_SUBJECT)?,
                payload: r.rest(),
            },
            ty::RESPONSE => {
                let id = r.varint()?;
                let status = match r.u8()? {
                    0 => Status::Ok,
                    1 => Status::Error {
                        code: r.varint()?,
                        message: utf8(r.len_prefixed(MAX_REASON)?)?,
                    },
                    2 => Status::NoResponder,
                    3 => Status::DeadlineExceeded,
                    4 => Status::Cancelled,
                    _ => return Err(Malformed),
                };
                Frame::Response {
                    id,
                    status,
                    payload: r.rest(),
                }
            }
            ty::CANCEL => Frame::Cancel { id: r.varint()? },
            ty::SUBSCRIBE => Frame::Subscribe {
                sub_id: r.varint()?,
                policy: r.u8()?,
                credit: r.varint()?,
                filter: r.len_prefixed(MAX_SUBJECT)?,
                group: r.len_prefixed(MAX_GROUP)?,
            },
            ty::UNSUBSCRIBE => Frame::Unsubscribe {
                sub_id: r.varint()?,
            },
            ty::PUBLISH => Frame::Publish {
                topic: r.len_prefixed(MAX_SUBJECT)?,
                payload: r.rest(),
            },
            ty::DELIVER => Frame::Deliver {
                sub_id: r.varint()?,
                topic: r.len_prefixed(MAX_SUBJECT)?,
                payload: r.rest(),
            },
            ty::SUB_CREDIT => Frame::SubCredit {
                sub_id: r.varint()?,
                increment: r.varint()?,
            },
            ty::SUB_DROPPED => Frame::SubDropped {
                sub_id: r.varint()?,
                total: r.varint()?,
            },
            ty::STREAM_DATA => {
                let id = r.varint()?;
                let flags = r.u8()?;
                if flags & !(STREAM_OPEN | STREAM_FIN) != 0 {
                    return Err(Malformed);
                }
                Frame::StreamData {
                    id,
                    flags,
                    data: r.rest(),
                }
            }
            ty::STREAM_RESET => Frame::StreamReset {
                id: r.varint()?,
                code: r.varint()?,
            },
            ty::FRAGMENT => {
                let frag_id = r.varint()?;
                let flags = r.u8()?;
                if flags & !(FRAG_FIRST | FRAG_LAST) != 0 {
                    return Err(Malformed);
                }
                let total_len = if flags & FRAG_FIRST != 0 {
                    r.varint()?
                } else {
                    0
                };
                Frame::Fragment {
                    frag_id,
                    flags,
                    total_len,
                    data: r.rest(),
                }
            }
            _ => return Ok(None),
        }))
    }

    /// Length of the body [`Frame::encode_body`] writes.
    pub fn body_len(&self) -> usize {
        let v = varint::len;
        let lp = len_prefixed_len;
        match *self {
            Frame::ClientHello {
                params,
                key_id,
                token,
                ..
            } => NONCE_LEN + lp(params.len()) + 1 + lp(key_id.len()) + lp(token.len()),
            Frame::ServerHello {
                params,
                proof,
                token,
                ..
            } => NONCE_LEN + lp(params.len()) + 1 + lp(proof.len()) + lp(token.len()),
            Frame::Auth { proof } => lp(proof.len()),
            Frame::Ping { .. } | Frame::Pong { .. } => 8,
            Frame::Close {
                code,
                last_request_id,
                reason,
            } => v(code.0) + v(last_request_id) + lp(reason.len()),
            Frame::WindowUpdate { id, increment } => v(id) + v(increment),
            Frame::Message { payload } => payload.len(),
            Frame::Request {
                id,
                timeout_ms,
                subject,
                payload,
            } => v(id) + v(timeout_ms) + lp(subject.len()) + payload.len(),
            Frame::Response {
                id,
                status,
                payload,
            } => {
                let s = match status {
                    Status::Error { code, message } => v(code) + lp(message.len()),
                    _ => 0,
                };
                v(id) + 1 + s + payload.len()
            }
            Frame::Cancel { id } => v(id),
            Frame::Subscribe {
                sub_id,
                credit,
                filter,
                group,
                ..
            } => v(sub_id) + 1 + v(credit) + lp(filter.len()) + lp(group.len()),
            Frame::Unsubscribe { sub_id } => v(sub_id),
            Frame::Publish { topic, payload } => lp(topic.len()) + payload.len(),
            Frame::Deliver {
                sub_id,
                topic,
                payload,
            } => v(sub_id) + lp(topic.len()) + payload.len(),
            Frame::SubCredit { sub_id, increment } => v(sub_id) + v(increment),
            Frame::SubDropped { sub_id, total } => v(sub_id) + v(total),
            Frame::StreamData { id, data, .. } => v(id) + 1 + data.len(),
            Frame::StreamReset { id, code } => v(id) + v(code),
            Frame::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => {
                let t = if flags & FRAG_FIRST != 0 {
                    v(total_len)
                } else {
                    0
                };
                v(frag_id) + 1 + t + data.len()
            }
            Frame::Extension { body, .. } => body.len(),
        }
    }

    /// Length of the whole frame: type, length varint and body.
    pub fn encoded_len(&self) -> usize {
        let b = match self {
            Frame::Message { payload } => payload.len(),
            _ => self.body_len(),
        };
        1 + varint::len(b as u64) + b
    }

    /// Writes the whole frame into `out`, returning its length, or `None` (and nothing
    /// meaningful written) if it does not fit.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        // The most frequent frame, written without the general field walk.
        if let Frame::Message { payload } = *self {
            let mut len = [0u8; varint::MAX_LEN];
            let l = varint::encode(payload.len() as u64, &mut len)?;
            let out = out.get_mut(..1 + l + payload.len())?;
            out[0] = ty::MESSAGE;
            out[1..1 + l].copy_from_slice(&len[..l]);
            out[1 + l..].copy_from_slice(payload);
            return Some(out.len());
        }
        let mut w = Writer::new(out);
        w.u8(self.ty());
        w.varint(self.body_len() as u64);
        self.encode_body(&mut w);
        w.finish()
    }

    /// Writes the body.
    pub fn encode_body(&self, w: &mut Writer<'_>) {
        match *self {
            Frame::ClientHello {
                nonce,
                params,
                auth_scheme,
                key_id,
                token,
            } => {
                w.bytes(&nonce);
                w.len_prefixed(params);
                w.u8(auth_scheme);
                w.len_prefixed(key_id);
                w.len_prefixed(token);
            }
            Frame::ServerHello {
                nonce,
                params,
                auth_scheme,
                proof,
                token,
            } => {
                w.bytes(&nonce);
                w.len_prefixed(params);
                w.u8(auth_scheme);
                w.len_prefixed(proof);
                w.len_prefixed(token);
            }
            Frame::Auth { proof } => w.len_prefixed(proof),
            Frame::Ping { token } | Frame::Pong { token } => w.bytes(&token.to_be_bytes()),
            Frame::Close {
                code,
                last_request_id,
                reason,
            } => {
                w.varint(code.0);
                w.varint(last_request_id);
                w.len_prefixed(reason.as_bytes());
            }
            Frame::WindowUpdate { id, increment } => {
                w.varint(id);
                w.varint(increment);
            }
            Frame::Message { payload } => w.bytes(payload),
            Frame::Request {
                id,
                timeout_ms,
                subject,
                payload,
            } => {
                w.varint(id);
                w.varint(timeout_ms);
                w.len_prefixed(subject);
                w.bytes(payload);
            }
            Frame::Response {
                id,
                status,
                payload,
            } => {
                w.varint(id);
                w.u8(status.code());
                if let Status::Error { code, message } = status {
                    w.varint(code);
                    w.len_prefixed(message.as_bytes());
                }
                w.bytes(payload);
            }
            Frame::Cancel { id } => w.varint(id),
            Frame::Subscribe {
                sub_id,
                policy,
                credit,
                filter,
                group,
            } => {
                w.varint(sub_id);
                w.u8(policy);
                w.varint(credit);
                w.len_prefixed(filter);
                w.len_prefixed(group);
            }
            Frame::Unsubscribe { sub_id } => w.varint(sub_id),
            Frame::Publish { topic, payload } => {
                w.len_prefixed(topic);
                w.bytes(payload);
            }
            Frame::Deliver {
                sub_id,
                topic,
                payload,
            } => {
                w.varint(sub_id);
                w.len_prefixed(topic);
                w.bytes(payload);
            }
            Frame::SubCredit { sub_id, increment } => {
                w.varint(sub_id);
                w.varint(increment);
            }
            Frame::SubDropped { sub_id, total } => {
                w.varint(sub_id);
                w.varint(total);
            }
            Frame::StreamData { id, flags, data } => {
                w.varint(id);
                w.u8(flags);
                w.bytes(data);
            }
            Frame::StreamReset { id, code } => {
                w.varint(id);
                w.varint(code);
            }
            Frame::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => {
                w.varint(frag_id);
                w.u8(flags);
                if flags & FRAG_FIRST != 0 {
                    w.varint(total_len);
                }
                w.bytes(data);
            }
            Frame::Extension { body, .. } => w.bytes(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn samples() -> [Frame<'static>; 21] {
        [
            Frame::ClientHello {
                nonce: [7; NONCE_LEN],
                params: &[9, 0x88, 0x27],
                auth_scheme: 1,
                key_id: b"k1",
                token: b"",
            },
            Frame::ServerHello {
                nonce: [8; NONCE_LEN],
                params: &[],
                auth_scheme: 1,
                proof: &[0xab; 32],
                token: b"",
            },
            Frame::Auth { proof: &[0xcd; 32] },
            Frame::Ping {
                token: 0x0102_0304_0506_0708,
            },
            Frame::Pong { token: 42 },
            Frame::Close {
                code: ErrorCode::NO_ERROR,
                last_request_id: 300,
                reason: "bye",
            },
            Frame::WindowUpdate {
                id: 3,
                increment: 65_536,
            },
            Frame::Message { payload: b"hello" },
            Frame::Request {
                id: 1,
                timeout_ms: 250,
                subject: b"svc.echo",
                payload: b"ping",
            },
            Frame::Response {
                id: 1,
                status: Status::Error {
                    code: 4242,
                    message: "nope",
                },
                payload: b"",
            },
            Frame::Cancel { id: 9 },
            Frame::Subscribe {
                sub_id: 1,
                policy: 1,
                credit: 64,
                filter: b"a.*.c",
                group: b"workers",
            },
            Frame::Unsubscribe { sub_id: 1 },
            Frame::Publish {
                topic: b"a.b.c",
                payload: b"x",
            },
            Frame::Deliver {
                sub_id: 1,
                topic: b"a.b.c",
                payload: b"x",
            },
            Frame::SubCredit {
                sub_id: 1,
                increment: 32,
            },
            Frame::SubDropped {
                sub_id: 1,
                total: 5,
            },
            Frame::StreamData {
                id: 1,
                flags: STREAM_OPEN | STREAM_FIN,
                data: b"data",
            },
            Frame::StreamReset { id: 1, code: 7 },
            Frame::Fragment {
                frag_id: 2,
                flags: FRAG_FIRST,
                total_len: 70_000,
                data: b"\x10\xe0\xa2\x04",
            },
            Frame::Extension {
                ty: 0x55,
                body: b"ignored",
            },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for f in samples() {
            let mut buf = [0u8; 256];
            let n = f.encode(&mut buf).unwrap();
            assert_eq!(n, f.encoded_len());
            let (t, len, h) = decode_header(&buf[..n]).unwrap();
            assert_eq!(h + len, n);
            assert_eq!(Frame::decode(t, &buf[h..n]), Ok(f));
            assert_eq!(f.encode(&mut buf[..n - 1]), None, "{f:?} fits short buffer");
        }
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(Frame::decode(0x3e, b""), Err(ErrorCode::UNKNOWN_FRAME));
        assert_eq!(Frame::decode(0x00, b""), Err(ErrorCode::UNKNOWN_FRAME));
        assert_eq!(Frame::decode(0x90, b""), Err(ErrorCode::UNKNOWN_FRAME));
        assert_eq!(
            Frame::decode(ty::PING, &[0; 7]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            Frame::decode(ty::PING, &[0; 9]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            Frame::decode(ty::CLOSE, &[0, 0, 2, 0xff, 0xfe]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            Frame::decode(ty::STREAM_DATA, &[1, 0x04]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(decode_header(&[0x10]), Err(FrameError::Incomplete));
        assert_eq!(
            decode_header(&[0x10, 0x80, 0x00]),
            Err(FrameError::Fatal(ErrorCode::PROTOCOL_ERROR))
        );
    }

    #[test]
    fn small_message_overhead() {
        let f = Frame::Message { payload: &[0; 32] };
        assert_eq!(f.encoded_len() - 32, 2);
    }
}
