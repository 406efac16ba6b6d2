//! One connection facing a hostile peer: `server_raw`, `server_frames` and
//! `client_hostile`.

use crate::app::{App, AppState};
use crate::drive::Endpoint;
use crate::frames::{seal_frames, Crc, FrameSpec};
use crate::setup::{config, handshaken, T0};
use arbitrary::{Arbitrary, Unstructured};
use weft_core::conn::Connection;
use weft_core::wire::preface;
use weft_core::Role;

/// What the hostile peer does next.
#[derive(Arbitrary, Debug)]
pub enum WireOp {
    /// Frames sealed into records, fed in pieces of `split` bytes (0: whole).
    Records {
        /// The frames.
        frames: Vec<FrameSpec>,
        /// Record integrity.
        crc: Crc,
        /// Piece size.
        split: u16,
    },
    /// Raw bytes.
    Raw(Vec<u8>),
    /// Time passes (ms), timers fire.
    Time(u16),
    /// The application under test acts.
    App(App),
}

fn feed_split(ep: &mut Endpoint, bytes: &[u8], split: u16) {
    let step = if split == 0 {
        bytes.len().max(1)
    } else {
        usize::from(split)
    };
    for piece in bytes.chunks(step) {
        ep.feed(piece);
    }
}

fn run_ops(ep: &mut Endpoint, ops: &[WireOp], max_record: usize) {
    let mut st = AppState::default();
    for op in ops {
        match op {
            WireOp::Records { frames, crc, split } => {
                let bytes = seal_frames(frames, *crc, max_record, ep.last_ping);
                feed_split(ep, &bytes, *split);
            }
            WireOp::Raw(b) => ep.feed(b),
            WireOp::Time(ms) => ep.advance(u64::from(*ms)),
            WireOp::App(a) => a.apply(ep, &mut st),
        }
        ep.transmit();
        ep.sent.clear();
    }
    ep.finish();
}

/// `server_raw`: a server after a real handshake, fed raw bytes with interleaved
/// timeouts and answers.
///
/// Input: a configuration byte (see [`crate::setup::config`]; bit value 2
/// waives the CRC, so raw records need only the header check), then chunks: a control byte `c`;
/// `c < 0xc0`: the next `c + 1` bytes are fed; `0xc0..0xe0`: `(c - 0xc0) * 50` ms
/// pass; `0xe0..`: the application answers the oldest request (or, with none,
/// delivers to a subscription / closes, by `c`).
pub fn server_raw(data: &[u8]) {
    let Some((&bits, mut rest)) = data.split_first() else {
        return;
    };
    let (_client, mut server) = handshaken(bits);
    server.sent.clear();
    let mut st = AppState::default();
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        match c {
            0..=0xbf => {
                let n = (usize::from(c) + 1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                server.feed(chunk);
            }
            0xc0..=0xdf => server.advance(u64::from(c - 0xc0) * 50),
            _ => {
                let op = match c & 7 {
                    0..=2 => App::Respond {
                        which: 0,
                        outcome: c,
                        message: crate::frames::Text::Vocab(0),
                        payload: crate::frames::Payload::Fill { len: 3, byte: c },
                    },
                    3 => App::Deliver {
                        which: c,
                        topic: crate::frames::Text::Vocab(2),
                        payload: crate::frames::Payload::Fill { len: 5, byte: c },
                    },
                    4 => App::Send {
                        payload: crate::frames::Payload::Fill { len: 7, byte: c },
                        prio: c,
                    },
                    5 => App::StreamRead { which: c, len: 100 },
                    6 => App::OpenStream,
                    _ => App::Close {
                        code: crate::frames::Num::Small(c & 0x10),
                        reason: crate::frames::Text::Vocab(0),
                    },
                };
                if matches!(op, App::Respond { .. }) && !server.requests.is_empty() {
                    op.apply(&mut server, &mut st);
                    server.requests.remove(0);
                } else {
                    op.apply(&mut server, &mut st);
                }
            }
        }
        server.transmit();
        server.sent.clear();
    }
    server.finish();
}

/// Input of `server_frames`.
#[derive(Arbitrary, Debug)]
pub struct ServerInput {
    /// Configuration bits.
    pub bits: u8,
    /// What the client does.
    pub ops: Vec<WireOp>,
}

/// `server_frames`: a server after a real handshake fed fuzzer-chosen frames in
/// records with correct CRCs (or deliberately without or broken), raw bytes, time
/// and its own application's commands.
pub fn server_frames(data: &[u8]) {
    let Ok(input) = ServerInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (_client, mut server) = handshaken(input.bits);
    server.sent.clear();
    let max = config(input.bits).params.max_record_size as usize;
    run_ops(&mut server, &input.ops, max);
}

/// The hostile server's preface.
#[derive(Arbitrary, Debug)]
pub enum PrefaceSpec {
    /// `WEFT`, version 1..=1.
    Valid,
    /// Any 8 bytes.
    Bytes([u8; 8]),
    /// None at all: the ops' bytes come first.
    Missing,
}

/// Input of `client_hostile`.
#[derive(Arbitrary, Debug)]
pub struct ClientInput {
    /// Configuration bits of the client.
    pub bits: u8,
    /// The server's preface.
    pub preface: PrefaceSpec,
    /// What the server does.
    pub ops: Vec<WireOp>,
}

/// `client_hostile`: a client fed whatever a hostile server sends (its preface,
/// its SERVER_HELLO and everything after, in valid records or not), with the
/// client's application issuing commands and time passing in between.
pub fn client_hostile(data: &[u8]) {
    let Ok(input) = ClientInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut client = Endpoint::new(
        Connection::new(Role::Client, config(input.bits), T0, [11; 32]),
        T0,
    );
    client.transmit();
    client.sent.clear();
    match input.preface {
        PrefaceSpec::Valid => {
            client.feed(&preface_bytes());
        }
        PrefaceSpec::Bytes(b) => client.feed(&b),
        PrefaceSpec::Missing => {}
    }
    run_ops(&mut client, &input.ops, 65_535);
}

/// The preface of version 1.
pub fn preface_bytes() -> [u8; preface::LEN] {
    let mut b = [0u8; preface::LEN];
    b[..4].copy_from_slice(&preface::MAGIC);
    b[4] = preface::VERSION_1;
    b[5] = preface::VERSION_1;
    b
}
