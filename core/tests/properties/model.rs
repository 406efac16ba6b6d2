//! An owned model of every frame kind, to generate frames and shrink them.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StatusModel {
    Ok,
    Error { code: u64, message: String },
    NoResponder,
    DeadlineExceeded,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FrameModel {
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
pub(crate) const ALL_KINDS: [u8; 21] = {
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
pub(crate) const CLIENT_KINDS: &[u8] = &[
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
    pub(crate) fn gen_kind(g: &mut Gen, kind: u8) -> FrameModel {
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

    pub(crate) fn as_frame(&self) -> Frame<'_> {
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

    pub(crate) fn encode(&self) -> Vec<u8> {
        let f = self.as_frame();
        let mut v = vec![0u8; f.encoded_len()];
        let n = f.encode(&mut v).expect("a buffer of encoded_len fits");
        v.truncate(n);
        v
    }

    /// The variable-length byte fields, for shrinking.
    pub(crate) fn byte_fields(&mut self) -> Vec<&mut Vec<u8>> {
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
