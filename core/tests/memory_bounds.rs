//! Memory a peer can make us hold, measured: a counting global allocator (this test
//! binary's only, `stats_alloc`) tracks the bytes live, sampled after every call
//! into the connection, and each test checks what a
//! connection (and the router) retains against what it claims to count. The counts
//! are exact byte figures of requested allocations, not timings. The tests take
//! one lock, so no two measure at once.

#![cfg(feature = "alloc")]

use quickcheck::{Arbitrary, Gen, QuickCheck};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::Mutex;
use weft_core::conn::{Connection, Event};
use weft_core::router::{Router, RouterConfig};
use weft_core::wire::frame::{Frame, STREAM_OPEN};
use weft_core::wire::record;
use weft_core::{Config, Instant, OverflowPolicy, Role, SubId};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One measurement at a time: the counters are global to the binary.
static LOCK: Mutex<()> = Mutex::new(());

/// Bytes live: requested and not yet freed (`stats_alloc` counts a reallocation's
/// growth as allocated and its shrinking as deallocated).
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// The largest `live()` seen at the points where [`Peak::sample`] was called: after
/// every call into the connection, so everything a call leaves held is seen.
struct Peak(isize);

impl Peak {
    fn new() -> Peak {
        Peak(live())
    }
    fn sample(&mut self) {
        self.0 = self.0.max(live());
    }
}

const NOW: Instant = Instant::ZERO;

fn conn(role: Role, config: Config) -> Connection {
    let seed = if role == Role::Client {
        [1; 32]
    } else {
        [2; 32]
    };
    Connection::new(role, config, NOW, seed)
}

/// A client and a server past their handshake, with nothing left to send.
fn established(config: &Config) -> (Connection, Connection) {
    let mut c = conn(Role::Client, config.clone());
    let mut s = conn(Role::Server, config.clone());
    let mut buf = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    for _ in 0..8 {
        let n = c.poll_transmit(NOW, &mut buf);
        assert_eq!(s.handle_input(NOW, &buf[..n]), n);
        while s.poll_event().is_some() {}
        let n = s.poll_transmit(NOW, &mut buf);
        assert_eq!(c.handle_input(NOW, &buf[..n]), n);
        while c.poll_event().is_some() {}
    }
    assert!(c.is_established() && s.is_established());
    (c, s)
}

fn enc(f: &Frame<'_>) -> Vec<u8> {
    let mut v = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut v), Some(v.len()));
    v
}

/// Frames sealed into one record with its CRC.
fn seal(frames: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; record::HEADER_LEN + frames.len() + record::TRAILER_LEN];
    buf[record::HEADER_LEN..record::HEADER_LEN + frames.len()].copy_from_slice(frames);
    let n = record::seal(&mut buf, frames.len(), true).expect("record fits");
    buf.truncate(n);
    buf
}

/// Extension frames (skipped by the receiver) of `n` encoded bytes in all, each
/// within the default frame size.
fn padding(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n > 0 {
        // Type, a 2-byte length, body; a remainder too small for that is one byte
        // longer rather than an invalid frame.
        let take = n.min(16_384);
        let body = vec![0u8; take.saturating_sub(3).max(1)];
        out.extend(enc(&Frame::Extension {
            ty: 0x40,
            body: &body,
        }));
        n -= take;
    }
    out
}

/// Offers `bytes` until all are taken, polling every event (data unread) and
/// discarding what the connection sends, so only its receive side keeps memory.
fn feed(c: &mut Connection, bytes: &[u8], tx: &mut [u8], peak: &mut Peak) {
    let mut rest = bytes;
    while !rest.is_empty() && !c.is_closed() {
        let n = c.handle_input(NOW, rest);
        peak.sample();
        rest = &rest[n..];
        while c.poll_event().is_some() {}
        while c.poll_transmit(NOW, tx) > 0 {}
    }
}

/// Probe 1 of the issue. 1,000 one-byte PUBLISHes, each in a ~64 KB record padded
/// with PUBLISHes to a topic nobody subscribes to, queued for a WAIT subscriber
/// without credit: the router reports 1,000 bytes queued, and must not hold the
/// 1,000 records (64 MB) behind them.
#[test]
fn router_retains_what_it_counts() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::default();
    let (_client, mut server) = established(&config);
    let mut router = Router::new(RouterConfig::default());
    router
        .subscribe(9, SubId::new(1), "t", None, OverflowPolicy::Wait, 0)
        .unwrap();
    let pad_payload = vec![0u8; 16_370];
    let pad = enc(&Frame::Publish {
        topic: b"pad",
        payload: &pad_payload,
    });
    let mut tx = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    let before = live();
    for i in 0..1_000u32 {
        let mut frames = enc(&Frame::Publish {
            topic: b"t",
            payload: &[i as u8],
        });
        while frames.len() + pad.len() <= 65_535 {
            frames.extend_from_slice(&pad);
        }
        let rec = seal(&frames);
        let mut rest = &rec[..];
        while !rest.is_empty() {
            let n = server.handle_input(NOW, rest);
            rest = &rest[n..];
            while let Some(ev) = server.poll_event() {
                if let Event::Published { data } = ev {
                    let topic = server.take_subject(data).unwrap();
                    let payload = server.take_payload(data).unwrap();
                    let topic = std::str::from_utf8(&topic).unwrap();
                    router.publish(topic, payload).unwrap();
                }
            }
            while server.poll_transmit(NOW, &mut tx) > 0 {}
        }
    }
    let stats = router.sub_stats(9, SubId::new(1)).unwrap();
    assert_eq!((stats.queued, stats.queued_bytes), (1_000, 1_000));
    let held = live() - before;
    // Each queued message costs its queue slot and its one small copy (topic and
    // payload): well under 256 bytes. The records behind them would be 64 MB.
    assert!(
        held < 256 * 1_000,
        "router counts 1,000 bytes, {held} bytes are held"
    );
}

/// Probe 3 of the issue: a 21-byte record whose FRAGMENT claims a 16 MiB message
/// (within the limits, so accepted) must not make us allocate 16 MiB.
#[test]
fn first_fragment_costs_what_it_carries() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::default();
    let (_client, mut server) = established(&config);
    let probe: Vec<u8> = (0..21)
        .map(|i| {
            u8::from_str_radix(
                &"000d01ee1f0b0101808080081080808008962f8631"[2 * i..][..2],
                16,
            )
            .unwrap()
        })
        .collect();
    let mut tx = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    let before = live();
    let mut peak = Peak::new();
    feed(&mut server, &probe, &mut tx, &mut peak);
    assert!(
        server.is_established(),
        "a claim within the limits is accepted"
    );
    assert_eq!(server.stats().reassembly_bytes, 16 << 20);
    let grew = peak.0 - before;
    assert!(grew < 64 << 10, "21 bytes in, {grew} bytes allocated");
}

/// Probe 2 of the issue: 4 streams x 16 frames of 16,378 bytes, each frame alone
/// in a 65,512-byte record padded with extension frames, none of it read. What the
/// server holds stays within `Config::memory_bound`.
#[test]
fn padded_stream_records_stay_within_memory_bound() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::default();
    let data = vec![7u8; 16_378];
    let mut input = Vec::new();
    for round in 0..16 {
        for id in [1u64, 3, 5, 7] {
            let f = enc(&Frame::StreamData {
                id,
                flags: if round == 0 { STREAM_OPEN } else { 0 },
                data: &data,
            });
            let mut frames = f.clone();
            frames.extend(padding(65_512 - f.len()));
            assert_eq!(frames.len(), 65_512);
            input.extend(seal(&frames));
        }
    }
    let mut tx = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    let before = live();
    let (client, mut server) = established(&config);
    drop(client);
    let mut peak = Peak::new();
    feed(&mut server, &input, &mut tx, &mut peak);
    assert!(server.is_established());
    let held = peak.0 - before;
    let bound = config.memory_bound() as isize;
    assert!(
        held <= bound,
        "held {held} bytes, memory_bound {bound} (unread stream data: {})",
        16 * 4 * data.len()
    );
}

/// A hostile input for the property: records of frames of the kinds that can pin,
/// pad or fill memory, in sizes from tiny to a whole frame.
#[derive(Clone, Debug)]
struct Hostile {
    records: Vec<Vec<Piece>>,
}

#[derive(Clone, Debug)]
enum Piece {
    /// STREAM_DATA of `len` bytes on the stream with this index (opened first).
    Stream { idx: u8, len: u16 },
    /// Extension padding of about `len` encoded bytes.
    Pad { len: u16 },
    /// A PUBLISH to "t" (subscribed, no credit) or "pad" (not subscribed).
    Publish { subscribed: bool, len: u16 },
    /// A MESSAGE.
    Message { len: u16 },
    /// A FIRST fragment claiming `claim` bytes, carrying `len`.
    Fragment { claim: u32, len: u16 },
    /// A PING (a control reply).
    Ping,
    /// STREAM_DATA of `len` bytes, then extension padding to the end of a maximal
    /// record: the shape that made unread stream data pin four times its size.
    PaddedStream { idx: u8, len: u16 },
}

impl Arbitrary for Piece {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = |g: &mut Gen| -> u16 {
            match u8::arbitrary(g) % 4 {
                0 => u16::arbitrary(g) % 8,
                1 => u16::arbitrary(g) % 1_024,
                _ => u16::arbitrary(g) % 16_370,
            }
        };
        // Padded stream records are weighted so that a typical case sends about a
        // connection window of them: the input that pinned four times its size.
        match u8::arbitrary(g) % 10 {
            0..=2 => Piece::Stream {
                idx: u8::arbitrary(g) % 8,
                len: len(g),
            },
            3 => Piece::Pad { len: len(g) },
            4 => Piece::Publish {
                subscribed: bool::arbitrary(g),
                len: len(g),
            },
            5 => Piece::Message { len: len(g) },
            6 => Piece::Fragment {
                claim: u32::arbitrary(g) % (1 << 20),
                len: len(g),
            },
            7 => Piece::Ping,
            _ => Piece::PaddedStream {
                idx: u8::arbitrary(g) % 8,
                len: 16_000 + u16::arbitrary(g) % 379,
            },
        }
    }
}

impl Arbitrary for Hostile {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = 1 + usize::arbitrary(g) % 200;
        let records = (0..n)
            .map(|_| {
                let k = 1 + usize::arbitrary(g) % 8;
                (0..k).map(|_| Piece::arbitrary(g)).collect()
            })
            .collect();
        Hostile { records }
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(
            self.records
                .shrink()
                .filter(|r| !r.is_empty())
                .map(|records| Hostile { records }),
        )
    }
}

/// Encodes the input, keeping stream data within the windows the server grants
/// (the server never reads, so credit is never returned) and fragment ids fresh.
fn encode(h: &Hostile, config: &Config) -> Vec<u8> {
    let stream_window = config.params.initial_stream_window as usize;
    let mut conn_left = config.params.initial_conn_window as usize;
    let mut used = [0usize; 8];
    // Stream ids in the order the streams are first used: a peer must open its ids
    // in increasing order (else STREAM_STATE_ERROR ends the case at once).
    let mut ids = [0u64; 8];
    let mut next_id = 1u64;
    let mut frag_id = 0u64;
    let mut out = Vec::new();
    for rec in &h.records {
        let mut frames = Vec::new();
        for p in rec {
            let f = match *p {
                Piece::Stream { idx, len } | Piece::PaddedStream { idx, len } => {
                    let i = usize::from(idx);
                    let len = usize::from(len).min(stream_window - used[i]).min(conn_left);
                    used[i] += len;
                    conn_left -= len;
                    let open = ids[i] == 0;
                    if open {
                        ids[i] = next_id;
                        next_id += 2;
                    }
                    if len == 0 && !open {
                        continue;
                    }
                    enc(&Frame::StreamData {
                        id: ids[i],
                        flags: if open { STREAM_OPEN } else { 0 },
                        data: &vec![1u8; len],
                    })
                }
                Piece::Pad { len } => padding(usize::from(len).max(3)),
                Piece::Publish { subscribed, len } => enc(&Frame::Publish {
                    topic: if subscribed { b"t" } else { b"pad" },
                    payload: &vec![2u8; usize::from(len).max(1)],
                }),
                Piece::Message { len } => enc(&Frame::Message {
                    payload: &vec![3u8; usize::from(len).max(1)],
                }),
                Piece::Fragment { claim, len } => {
                    // Within MAX_CONCURRENT_FRAGMENTED: beyond it the server closes.
                    if frag_id == u64::from(config.params.max_concurrent_fragmented as u32) {
                        continue;
                    }
                    frag_id += 1;
                    let mut data = enc(&Frame::Message {
                        payload: &vec![4u8; usize::from(len)],
                    });
                    data.truncate(data.len().min(16_000));
                    enc(&Frame::Fragment {
                        frag_id,
                        flags: weft_core::wire::frame::FRAG_FIRST,
                        total_len: u64::from(claim).max(data.len() as u64 + 1),
                        data: &data,
                    })
                }
                Piece::Ping => enc(&Frame::Ping { token: 7 }),
            };
            if frames.len() + f.len() > record::MAX_PAYLOAD {
                out.extend(seal(&frames));
                frames.clear();
            }
            frames.extend(f);
            if let Piece::PaddedStream { len, .. } = *p {
                // Padded to four times the data: the largest record in which a
                // quarter-of-the-record rule still kept the data as a slice. Within
                // 8 bytes: `padding` may write a few bytes more than asked.
                let target = (4 * usize::from(len)).min(record::MAX_PAYLOAD - 4);
                if target >= frames.len() + 8 {
                    frames.extend(padding(target - frames.len() - 4));
                }
                out.extend(seal(&frames));
                frames.clear();
            }
        }
        if !frames.is_empty() {
            out.extend(seal(&frames));
        }
    }
    out
}

/// Bytes of fragment data in the input, which reassembly holds (at most twice over)
/// on top of `memory_bound`, as messages in flight.
fn fragment_data(h: &Hostile) -> usize {
    let mut n = 0;
    for p in h.records.iter().flatten() {
        if let Piece::Fragment { len, .. } = *p {
            n += usize::from(len) + 4;
        }
    }
    n.min(8 * 16_000)
}

/// The property: whatever records a peer sends (stream data of any size, padded
/// with extension frames, publishes for a subscriber without credit, messages left
/// unpolled, fragments claiming more than they carry, pings), the server's live
/// heap never exceeds `Config::memory_bound()` plus the router's bound, the
/// reassembly of the fragment data actually received, and a fixed slack.
///
/// The slack (64 KiB) covers what the bound leaves out because it does not grow
/// with input: the connection's tables and queues at their working sizes and the
/// per-stream state of the few streams opened here (measured: well under 32 KiB).
fn prop_memory_bound(h: Hostile) -> bool {
    let config = Config::default();
    let rcfg = RouterConfig {
        max_queue_per_sub: 64,
        max_queue_bytes_per_sub: 64 << 10,
        ..RouterConfig::default()
    };
    let input = encode(&h, &config);
    let mut tx = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    let before = live();
    let (client, mut server) = established(&config);
    drop(client);
    let mut router = Router::new(rcfg);
    router
        .subscribe(9, SubId::new(1), "t", None, OverflowPolicy::DropNewest, 0)
        .unwrap();
    let mut peak = Peak::new();
    let mut rest = &input[..];
    while !rest.is_empty() && !server.is_closed() {
        let n = server.handle_input(NOW, rest);
        peak.sample();
        rest = &rest[n..];
        if n > 0 {
            // Events are left queued (holding their records) until input stalls.
            continue;
        }
        while let Some(ev) = server.poll_event() {
            if let Event::Published { data } = ev {
                let topic = server.take_subject(data).unwrap();
                let payload = server.take_payload(data).unwrap();
                let _ = router.publish(std::str::from_utf8(&topic).unwrap(), payload);
            }
            peak.sample();
        }
        while server.poll_transmit(NOW, &mut tx) > 0 {}
    }
    let mut closed_by = None;
    while let Some(ev) = server.poll_event() {
        if let Event::Closed(info) = ev {
            closed_by = Some(info.code);
        }
    }
    // Every piece is valid within the limits, so the server must still be up: a
    // case cut short by an error would measure nothing.
    if let Some(code) = closed_by {
        eprintln!("the server closed with {code:?}");
        return false;
    }
    let held = peak.0 - before;
    let router_bound = rcfg.max_queue_bytes_per_sub + (16 << 10) + rcfg.max_queue_per_sub * 128;
    let bound = config.memory_bound() + router_bound + 2 * fragment_data(&h) + (64 << 10);
    if held > bound as isize {
        eprintln!("held {held} > bound {bound}");
        return false;
    }
    true
}

#[test]
fn memory_bound_holds_for_padded_input() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    QuickCheck::new()
        .tests(60)
        .quickcheck(prop_memory_bound as fn(Hostile) -> bool);
}
