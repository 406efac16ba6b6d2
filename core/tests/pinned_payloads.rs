//! Zero-copy payloads handed to the application keep their receive allocation alive;
//! `Config::max_pinned_bytes` bounds what they can keep alive together. Measured with
//! a counting global allocator (this test binary's only, `stats_alloc`): live bytes
//! are exact byte counts, not timings.

#![cfg(feature = "alloc")]

use bytes::Bytes;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use weft_core::conn::{Connection, Event};
use weft_core::wire::frame::Frame;
use weft_core::wire::record;
use weft_core::{Config, Instant, Role};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NOW: Instant = Instant::ZERO;

/// Bytes live: requested and not yet freed.
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn enc(f: &Frame<'_>) -> Vec<u8> {
    let mut v = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut v), Some(v.len()));
    v
}

fn seal(frames: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; record::HEADER_LEN + frames.len() + record::TRAILER_LEN];
    buf[record::HEADER_LEN..record::HEADER_LEN + frames.len()].copy_from_slice(frames);
    let n = record::seal(&mut buf, frames.len(), true).expect("record fits");
    buf.truncate(n);
    buf
}

/// A client and a server past their handshake.
fn established(config: &Config) -> Connection {
    let mut c = Connection::new(Role::Client, config.clone(), NOW, [1; 32]);
    let mut s = Connection::new(Role::Server, config.clone(), NOW, [2; 32]);
    let mut buf = vec![0u8; Connection::MIN_TRANSMIT_BUFFER];
    for _ in 0..8 {
        let n = c.poll_transmit(NOW, &mut buf);
        assert_eq!(s.handle_input(NOW, &buf[..n]), n);
        while s.poll_event().is_some() {}
        let n = s.poll_transmit(NOW, &mut buf);
        assert_eq!(c.handle_input(NOW, &buf[..n]), n);
        while c.poll_event().is_some() {}
    }
    assert!(s.is_established());
    s
}

/// Sends `count` one-byte MESSAGEs, each alone in a record padded with skippable
/// extension frames to about 64 KB, and keeps every payload the server hands out;
/// returns the bytes still live once all are held, and the payloads.
fn hold_padded_messages(config: &Config, count: usize) -> (isize, Vec<Bytes>) {
    let mut frames = enc(&Frame::Message { payload: b"x" });
    while frames.len() < 64_000 {
        frames.extend(enc(&Frame::Extension {
            ty: 0x40,
            body: &[0u8; 16_000],
        }));
    }
    let rec = seal(&frames);
    let before = live();
    let mut server = established(config);
    let mut held = Vec::new();
    for k in 0..count {
        // 5 ms apart: the padding's extension frames stay under the empty-frame
        // flood limit (1,000 per second).
        let now = Instant::from_millis(5 * k as u64);
        let mut rest = &rec[..];
        while !rest.is_empty() {
            let n = server.handle_input(now, rest);
            rest = &rest[n..];
            while let Some(ev) = server.poll_event() {
                if let Event::Message { data } = ev {
                    held.push(server.take_payload(data).expect("payload"));
                }
            }
        }
    }
    assert_eq!(held.len(), count);
    assert!(held.iter().all(|p| &p[..] == b"x"));
    let held_bytes = live() - before;
    drop(server);
    (held_bytes, held)
}

/// 1,000 one-byte payloads held by the application keep at most
/// `max_pinned_bytes` of receive memory alive (plus their own copies past it and
/// the connection's fixed state); shared without a bound they held every 64 KB
/// record, 64 MB.
#[test]
fn held_payloads_pin_at_most_the_budget() {
    let config = Config::default();
    let (held, payloads) = hold_padded_messages(&config, 1_000);
    // Copies cost a small allocation each; the connection itself (queues, tables,
    // one receive buffer) is well under 512 KiB.
    let slack = 1_000 * 64 + (512 << 10);
    let bound = (config.max_pinned_bytes + slack) as isize;
    assert!(
        held <= bound,
        "1,000 held 1-byte payloads keep {held} bytes alive (bound {bound})"
    );
    drop(payloads);
}

/// Within the budget payloads stay zero-copy, and sharing really pins: with a
/// budget large enough for all, 100 held one-byte payloads keep their 64 KB
/// records alive (so the bound above is what keeps memory down, not a copy
/// everywhere).
#[test]
fn payloads_within_the_budget_are_shared() {
    let config = Config {
        max_pinned_bytes: 64 << 20,
        ..Config::default()
    };
    let (held, payloads) = hold_padded_messages(&config, 100);
    assert!(
        held >= 100 * 60_000,
        "100 shared payloads keep only {held} bytes alive: were they copied?"
    );
    drop(payloads);
}
