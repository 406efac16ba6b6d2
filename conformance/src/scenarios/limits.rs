//! Abuse limits and malformed input (§3, §4, §7.3, §8, §10-§12, §14-§16), each
//! driven by a scripted misbehaving peer on a raw socket ([`super::raw`]) writing
//! bytes built from the spec. Each checks the CLOSE code the server sends, then
//! that the same server still serves a well-behaved client.

use super::raw::{self, Raw};
use super::{check, psk_config, serve, still_serves, KEY};
use crate::{Runtime, Scenario};
use core::time::Duration;
use weft_core::integrity::header_check;
use weft_core::wire::frame::{ty, Frame, FRAG_FIRST, STREAM_OPEN};
use weft_core::{Config, ErrorCode};

macro_rules! bad_peer {
    ($id:expr, $spec:expr, $req:expr, $exp:expr, $f:ident) => {
        Scenario {
            id: $id,
            spec: $spec,
            requirement: $req,
            expected: $exp,
            run: $f,
        }
    };
}

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        bad_peer!("limits/first-frame-not-hello", "§4.4, §7.2 step 2",
            "The server's first frame from the client must be CLIENT_HELLO.",
            "Preface then MESSAGE: server sends CLOSE(PROTOCOL_ERROR) and closes; still serves others.",
            first_frame),
        bad_peer!("limits/bad-crc", "§3.2 step 5",
            "A record whose CRC-32C does not match delivers nothing and closes the connection.",
            "After the handshake, a MESSAGE record with a flipped CRC byte: CLOSE(INTEGRITY_ERROR); still serves others.",
            bad_crc),
        bad_peer!("limits/bad-header-check", "§3.2 step 1",
            "A record header whose CRC-8 check fails is refused from the 4 header bytes.",
            "Header check byte damaged: CLOSE(INTEGRITY_ERROR); still serves others.",
            bad_header_check),
        bad_peer!("limits/missing-trailer", "§3.3",
            "While integrity is required a record without the CRC trailer is refused.",
            "Record with flag I clear (integrity negotiated on): CLOSE(INTEGRITY_ERROR); still serves others.",
            missing_trailer),
        bad_peer!("limits/reserved-record-flag", "§3.2 step 2",
            "Reserved record flag bits must be zero.",
            "Record with flag 0x02 (valid header check): CLOSE(PROTOCOL_ERROR); still serves others.",
            reserved_flag),
        bad_peer!("limits/oversize-record", "§3.2 step 3, §16",
            "A record longer than the receiver's max_record_size is refused from its header alone.",
            "Server max_record_size 4096; only a 4-byte header claiming 8000 is sent: CLOSE(FRAME_TOO_LARGE); still serves others.",
            oversize_record),
        bad_peer!("limits/oversize-frame", "§4.2 step 2, §16",
            "A frame larger than the receiver's max_frame_size is refused.",
            "Server max_frame_size 1024; a 2000-byte MESSAGE frame in one record: CLOSE(FRAME_TOO_LARGE); still serves others.",
            oversize_frame),
        bad_peer!("limits/unknown-frame", "§4.3",
            "An unknown frame type in 0x01-0x3f is a connection error.",
            "Frame type 0x30: CLOSE(UNKNOWN_FRAME); still serves others.",
            unknown_frame),
        bad_peer!("frames/extension-ignored", "§4.3, §19",
            "Frame types 0x40-0x7f the receiver does not know are skipped.",
            "Frame 0x40 then REQUEST echo: RESPONSE Ok, no CLOSE; still serves others.",
            extension_ignored),
        bad_peer!("limits/wrong-direction", "§4.4, §10",
            "A frame sent in the wrong direction is a protocol error.",
            "DELIVER from the client: CLOSE(PROTOCOL_ERROR); still serves others.",
            wrong_direction),
        bad_peer!("limits/duplicate-request-id", "§8.1 (ids)",
            "A REQUEST reusing the id of a live request is refused.",
            "Two REQUEST{id 1, hang}: CLOSE(PROTOCOL_ERROR); still serves others.",
            duplicate_request),
        bad_peer!("limits/message-too-large", "§12.2",
            "A fragmented message whose total_len exceeds max_message_size is refused on the first fragment.",
            "Server max_message_size 64 KiB; FRAGMENT FIRST total_len 1 MiB: CLOSE(MESSAGE_TOO_LARGE); still serves others.",
            message_too_large),
        bad_peer!("limits/fragment-limit", "§12.2, §16",
            "More reassemblies than MAX_CONCURRENT_FRAGMENTED are refused.",
            "Server limit 2; three FIRST fragments of distinct ids: CLOSE(FRAGMENT_LIMIT); still serves others.",
            fragment_limit),
        bad_peer!("limits/request-flood", "§8.2, §16",
            "More live requests than MAX_CONCURRENT_REQUESTS close the connection.",
            "Server limit 4; five `hang` REQUESTs: CLOSE(REQUEST_LIMIT); still serves others.",
            request_flood),
        bad_peer!("limits/subscribe-flood", "§10.2, §16",
            "More subscriptions than MAX_SUBSCRIPTIONS close the connection.",
            "Server limit 4; five SUBSCRIBEs: CLOSE(SUBSCRIPTION_LIMIT); still serves others.",
            subscribe_flood),
        bad_peer!("limits/ping-flood", "§14, §16",
            "More than max_queued_control unsent PONGs (a peer that pings but does not read) close the connection.",
            "200 PINGs in one record (limit 64): CLOSE(CONTROL_FLOOD); still serves others.",
            ping_flood),
        bad_peer!("limits/empty-frame-flood", "§16",
            "Too many empty frames per interval close the connection.",
            "Server limit 10 per interval; 20 empty MESSAGEs: CLOSE(EMPTY_FRAME_FLOOD); still serves others.",
            empty_flood),
        bad_peer!("limits/reset-flood", "§11.2 (reset flood), §16",
            "More stream resets per interval than allowed (rapid reset) close the connection.",
            "Server limit 5; eight streams opened and reset: CLOSE(RESET_FLOOD); still serves others.",
            reset_flood),
        bad_peer!("limits/flow-control", "§11.4, §16",
            "Stream data beyond the granted credit is a connection error.",
            "Server initial_stream_window 1024; 2000 bytes on a new stream: CLOSE(FLOW_CONTROL_ERROR); still serves others.",
            flow_control),
        bad_peer!("limits/stream-parity", "§11.1, §11.2",
            "A peer opening a stream id of the receiver's parity is refused.",
            "Client opens stream 2 (even): CLOSE(STREAM_STATE_ERROR); still serves others.",
            stream_parity),
        bad_peer!("limits/preauth", "§7.3, §16",
            "Pipelined bytes buffered before authentication are bounded.",
            "Server with keys, max_preauth_bytes 2048; CLIENT_HELLO (scheme 1) then 3.6 KB of MESSAGEs and no AUTH: CLOSE(PREAUTH_LIMIT); still serves others.",
            preauth),
        bad_peer!("limits/idle-timeout", "§14, §16",
            "A peer that sends nothing for the idle timeout is considered dead.",
            "Server idle_timeout 200 ms, no heartbeat; raw peer handshakes then stays silent: CLOSE(IDLE_TIMEOUT); still serves others.",
            idle_timeout),
        bad_peer!("limits/drain-timeout", "§15.2 step 5",
            "A graceful drain that does not finish in time is aborted.",
            "Server drain_timeout 200 ms; raw peer sends REQUEST hang + CLOSE(NO_ERROR): server CLOSE(NO_ERROR) then CLOSE(DRAIN_TIMEOUT); still serves others.",
            drain_timeout),
    ]
}

/// Starts a server with `cfg`, runs `script` on a raw peer (`handshake` first if
/// asked), expects a CLOSE with `code`, then checks the server still serves.
fn scripted(
    client: &dyn Runtime,
    server: &dyn Runtime,
    cfg: Config,
    handshake: bool,
    code: ErrorCode,
    script: impl FnOnce(&mut Raw) -> Result<(), String>,
) -> Result<(), String> {
    let srv = serve(server, cfg)?;
    {
        let mut r = Raw::connect(srv.addr)?;
        if handshake {
            r.handshake()?;
        }
        script(&mut r)?;
        r.expect_close_code(code)?;
    }
    still_serves(client, &srv)
}

fn msg_record(payload: &[u8]) -> Vec<u8> {
    raw::record(&raw::frame(&Frame::Message { payload }))
}

fn first_frame(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        false,
        ErrorCode::PROTOCOL_ERROR,
        |r| {
            let mut b = raw::preface(1, 1);
            b.extend(msg_record(b"too early"));
            r.send(&b)
        },
    )
}

fn bad_crc(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::INTEGRITY_ERROR,
        |r| {
            let mut rec = msg_record(b"damaged");
            let last = rec.len() - 1;
            rec[last] ^= 0x40;
            r.send(&rec)
        },
    )
}

fn bad_header_check(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::INTEGRITY_ERROR,
        |r| {
            let mut rec = msg_record(b"damaged header");
            rec[3] ^= 0x01;
            r.send(&rec)
        },
    )
}

fn missing_trailer(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::INTEGRITY_ERROR,
        |r| {
            r.send(&raw::record_plain(&raw::frame(&Frame::Message {
                payload: b"no crc",
            })))
        },
    )
}

fn reserved_flag(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::PROTOCOL_ERROR,
        |r| {
            let f = raw::frame(&Frame::Message {
                payload: b"flagged",
            });
            let [a, b] = (f.len() as u16).to_be_bytes();
            let mut rec = vec![a, b, 0x02, header_check([a, b, 0x02])];
            rec.extend(f);
            r.send(&rec)
        },
    )
}

fn oversize_record(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_record_size = 4096;
    cfg.params.max_frame_size = 4096;
    scripted(c, s, cfg, true, ErrorCode::FRAME_TOO_LARGE, |r| {
        let [a, b] = 8000u16.to_be_bytes();
        // The header alone: the server must not wait for the 8000 bytes.
        r.send(&[a, b, 0x01, header_check([a, b, 0x01])])
    })
}

fn oversize_frame(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_frame_size = 1024;
    scripted(c, s, cfg, true, ErrorCode::FRAME_TOO_LARGE, |r| {
        r.send(&msg_record(&[7u8; 2000]))
    })
}

fn unknown_frame(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::UNKNOWN_FRAME,
        |r| r.send(&raw::record(&[0x30, 0x00])),
    )
}

fn extension_ignored(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let srv = serve(s, Config::default())?;
    {
        let mut r = Raw::connect(srv.addr)?;
        r.handshake()?;
        let mut p = vec![0x40, 0x03, 1, 2, 3];
        p.extend(raw::frame(&Frame::Request {
            id: 1,
            timeout_ms: 0,
            subject: b"echo",
            payload: b"ext",
        }));
        r.send(&raw::record(&p))?;
        let (_, body) = r.wait_for(|t, _| t == ty::RESPONSE)?;
        match Frame::decode(ty::RESPONSE, &body) {
            Ok(Frame::Response { id: 1, payload, .. }) if payload == b"ext" => {}
            other => return Err(format!("response {other:?}")),
        }
    }
    still_serves(c, &srv)
}

fn wrong_direction(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::PROTOCOL_ERROR,
        |r| {
            r.send_frame(&Frame::Deliver {
                sub_id: 1,
                topic: b"a.b",
                payload: b"x",
            })
        },
    )
}

fn hang(id: u64) -> Vec<u8> {
    raw::frame(&Frame::Request {
        id,
        timeout_ms: 0,
        subject: b"hang",
        payload: b"",
    })
}

fn duplicate_request(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::PROTOCOL_ERROR,
        |r| {
            let mut p = hang(1);
            p.extend(hang(1));
            r.send(&raw::record(&p))
        },
    )
}

fn message_too_large(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_message_size = 64 << 10;
    scripted(c, s, cfg, true, ErrorCode::MESSAGE_TOO_LARGE, |r| {
        r.send_frame(&Frame::Fragment {
            frag_id: 1,
            flags: FRAG_FIRST,
            total_len: 1 << 20,
            data: &[ty::MESSAGE; 100],
        })
    })
}

fn fragment_limit(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_concurrent_fragmented = 2;
    scripted(c, s, cfg, true, ErrorCode::FRAGMENT_LIMIT, |r| {
        let fs: Vec<Frame<'_>> = (1..=3)
            .map(|id| Frame::Fragment {
                frag_id: id,
                flags: FRAG_FIRST,
                total_len: 4000,
                data: &[ty::MESSAGE; 100],
            })
            .collect();
        r.send(&raw::record(&raw::frames(&fs)))
    })
}

fn request_flood(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_concurrent_requests = 4;
    scripted(c, s, cfg, true, ErrorCode::REQUEST_LIMIT, |r| {
        let p: Vec<u8> = (1..=5).flat_map(hang).collect();
        r.send(&raw::record(&p))
    })
}

fn subscribe_flood(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.max_subscriptions = 4;
    scripted(c, s, cfg, true, ErrorCode::SUBSCRIPTION_LIMIT, |r| {
        let filters: Vec<String> = (1..=5).map(|i| format!("flood.{i}")).collect();
        let fs: Vec<Frame<'_>> = filters
            .iter()
            .enumerate()
            .map(|(i, f)| Frame::Subscribe {
                sub_id: i as u64 + 1,
                policy: 0,
                credit: 10,
                filter: f.as_bytes(),
                group: b"",
            })
            .collect();
        r.send(&raw::record(&raw::frames(&fs)))
    })
}

fn ping_flood(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::CONTROL_FLOOD,
        |r| {
            let fs: Vec<Frame<'_>> = (0..200).map(|t| Frame::Ping { token: t }).collect();
            r.send(&raw::record(&raw::frames(&fs)))
        },
    )
}

fn empty_flood(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        max_empty_frames_per_interval: 10,
        ..Config::default()
    };
    scripted(c, s, cfg, true, ErrorCode::EMPTY_FRAME_FLOOD, |r| {
        let fs: Vec<Frame<'_>> = (0..20).map(|_| Frame::Message { payload: b"" }).collect();
        r.send(&raw::record(&raw::frames(&fs)))
    })
}

fn reset_flood(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        max_resets_per_interval: 5,
        ..Config::default()
    };
    scripted(c, s, cfg, true, ErrorCode::RESET_FLOOD, |r| {
        let mut fs = Vec::new();
        for i in 0..8u64 {
            let id = 2 * i + 1;
            fs.push(Frame::StreamData {
                id,
                flags: STREAM_OPEN,
                data: b"x",
            });
            fs.push(Frame::StreamReset { id, code: 0 });
        }
        r.send(&raw::record(&raw::frames(&fs)))
    })
}

fn flow_control(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.initial_stream_window = 1024;
    scripted(c, s, cfg, true, ErrorCode::FLOW_CONTROL_ERROR, |r| {
        r.send_frame(&Frame::StreamData {
            id: 1,
            flags: STREAM_OPEN,
            data: &[9u8; 2000],
        })
    })
}

fn stream_parity(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    scripted(
        c,
        s,
        Config::default(),
        true,
        ErrorCode::STREAM_STATE_ERROR,
        |r| {
            r.send_frame(&Frame::StreamData {
                id: 2,
                flags: STREAM_OPEN,
                data: b"even",
            })
        },
    )
}

fn preauth(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        max_preauth_bytes: 2048,
        ..psk_config(b"conformance", KEY)
    };
    let srv = serve(s, cfg)?;
    {
        let mut r = Raw::connect(srv.addr)?;
        let mut b = raw::preface(1, 1);
        b.extend(raw::record(&raw::client_hello(
            &raw::client_params(),
            1,
            b"conformance",
        )));
        for _ in 0..4 {
            b.extend(msg_record(&[1u8; 900]));
        }
        r.send_lossy(&b);
        r.expect_close_code(ErrorCode::PREAUTH_LIMIT)?;
    }
    // A well-behaved client of this server authenticates.
    let h = super::connect_to(c, srv.addr, psk_config(b"conformance", KEY))?;
    let p = super::run(c, super::ask(&h, "echo", b"authed"))?;
    check(p == b"authed", || format!("echo {p:?}"))
}

fn idle_timeout(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let mut cfg = Config::default();
    cfg.params.idle_timeout_ms = 200;
    cfg.params.heartbeat_ms = 0;
    scripted(c, s, cfg, true, ErrorCode::IDLE_TIMEOUT, |_| Ok(()))
}

fn drain_timeout(c: &dyn Runtime, s: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        drain_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    scripted(c, s, cfg, true, ErrorCode::DRAIN_TIMEOUT, |r| {
        let mut p = hang(1);
        p.extend(raw::frame(&Frame::Close {
            code: ErrorCode::NO_ERROR,
            last_request_id: 0,
            reason: "bye",
        }));
        r.send(&raw::record(&p))
    })
}
