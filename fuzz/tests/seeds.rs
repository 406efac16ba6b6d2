//! Writes the hand-made seeds of `wire_decode` and `server_raw` into `corpus/`:
//! real traffic of a scripted session between two weft-core connections (weft-core's
//! `testing::Pair`), in the formats of those targets. The other targets' inputs are
//! structured (`arbitrary`), so their corpus is what the fuzzer found, minimised.
//! Run with `cargo test --test seeds -- --ignored`; the files are committed.

use std::path::Path;
use std::time::Duration;
use weft_core::conn::{Event, Outcome};
use weft_core::testing::Pair;
use weft_core::wire::{preface, record};
use weft_core::{ErrorCode, OverflowPolicy, Priority};
use weft_fuzz::setup::config;

/// A session exercising every kind of frame a client sends; returns (client
/// wire after its handshake, the whole client wire, the whole server wire).
fn session(bits: u8) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut p = Pair::new(config(bits), config(bits));
    p.drive();
    let hello_c = p.client_wire.clone();
    let hello_s = p.server_wire.clone();
    p.client_wire.clear();
    let now = p.now;
    let id = p
        .client
        .request(
            now,
            b"echo",
            b"hi",
            Some(Duration::from_millis(500)),
            Priority::Normal,
        )
        .unwrap();
    p.client.send_message(b"one-way", Priority::High).unwrap();
    p.client
        .send_message(&vec![7u8; 1500], Priority::Low)
        .unwrap();
    let sub = p
        .client
        .subscribe("a.>", None, OverflowPolicy::DropOldest)
        .unwrap();
    p.client
        .subscribe("a.*.c", Some("grp"), OverflowPolicy::Wait)
        .unwrap();
    p.client.publish("a.b", b"news", Priority::Normal).unwrap();
    let s = p.client.open_stream().unwrap();
    p.client.stream_write(s, b"stream bytes").unwrap();
    p.client.stream_finish(s).unwrap();
    p.drive();
    for g in p.take_server() {
        if let Event::Request { id, .. } = g.ev {
            p.server
                .respond(id, Outcome::Ok, "", b"ho", Priority::Normal)
                .unwrap();
        }
    }
    p.server
        .deliver(sub, b"a.b", b"news", Priority::Normal)
        .unwrap();
    p.drive();
    let _ = id;
    let big = p
        .client
        .request(now, b"big", &vec![1u8; 2500], None, Priority::Normal);
    p.drive();
    let _ = big.map(|b| p.client.cancel(b));
    p.client.unsubscribe(sub).unwrap();
    p.advance(Duration::from_secs(6));
    p.client.close(p.now, ErrorCode::NO_ERROR, "bye");
    p.drive();
    let after = p.client_wire.clone();
    let mut all_c = hello_c;
    all_c.extend_from_slice(&after);
    let mut all_s = hello_s;
    all_s.extend_from_slice(&p.server_wire);
    (after, all_c, all_s)
}

fn records(wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Ok(Some(info)) = record::parse(&wire[pos..], record::MAX_PAYLOAD, false) {
        out.push(&wire[pos + info.payload_start..pos + info.payload_start + info.payload_len]);
        pos += info.total_len;
    }
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

#[test]
#[ignore = "writes the seed corpus"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for bits in [0u8, 2, 4, 8] {
        let (after, all_c, all_s) = session(bits);
        let crc = bits & 2 == 0;
        let mode = if crc { 2 } else { 0 };
        // wire_decode: record streams (preface stripped), and bare frames.
        let wd = root.join("wire_decode");
        for (who, w) in [("client", &all_c), ("server", &all_s)] {
            let mut d = vec![mode];
            d.extend_from_slice(&w[preface::LEN..]);
            write(&wd, &format!("seed-{who}-records-{bits}"), &d);
            for (i, r) in records(&w[preface::LEN..]).iter().enumerate().take(6) {
                let mut d = vec![1];
                d.extend_from_slice(r);
                write(&wd, &format!("seed-{who}-frames-{bits}-{i}"), &d);
            }
        }
        // server_raw: the client's bytes after the handshake, in pieces of 192 and
        // of 7 bytes, with time passing and the application answering between them.
        let sr = root.join("server_raw");
        for piece in [192usize, 7] {
            if piece == 7 && bits % 4 != 0 {
                continue;
            }
            let mut d = vec![bits];
            for (i, chunk) in after.chunks(piece).enumerate() {
                d.push((chunk.len() - 1) as u8);
                d.extend_from_slice(chunk);
                if i % 5 == 4 {
                    d.push(0xc0 + 4);
                    d.push(0xe0);
                }
            }
            d.push(0xdf);
            write(&sr, &format!("seed-session-{bits}-{piece}"), &d);
        }
    }
}
