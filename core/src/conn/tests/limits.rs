//! Abuse limits and malformed input (spec sections 3, 4, 12, 14, 16): what a
//! misbehaving peer gets closed with.

use super::*;

#[cfg(feature = "alloc")]
#[test]
fn hostile_fragments_get_codes() {
    let mut sc = Config::default();
    sc.params.max_message_size = 10_000;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    p.inject_to_server(&[Frame::Fragment {
        frag_id: 1,
        flags: frame::FRAG_FIRST,
        total_len: 10_001,
        data: &[frame::ty::MESSAGE, 0],
    }]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::MESSAGE_TOO_LARGE
    );

    let mut sc = Config::default();
    sc.params.max_concurrent_fragmented = 1;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    let first = |id| Frame::Fragment {
        frag_id: id,
        flags: frame::FRAG_FIRST,
        total_len: 5000,
        data: &[frame::ty::MESSAGE, 0x86, 0x27],
    };
    p.inject_to_server(&[first(1), first(2)]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::FRAGMENT_LIMIT
    );
}

#[test]
fn peer_over_max_frame_size_is_refused() {
    let mut p = Pair::connected();
    let big = vec![0u8; 20_000];
    p.inject_to_server(&[Frame::Message { payload: &big }]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::FRAME_TOO_LARGE
    );
}

#[test]
fn unknown_and_extension_frames() {
    let mut p = Pair::connected();
    p.inject_to_server(&[Frame::Extension {
        ty: 0x41,
        body: b"skip me",
    }]);
    assert!(p.server.is_established(), "ignorable extension skipped");
    p.inject_to_server(&[Frame::Extension {
        ty: 0x3a,
        body: b"",
    }]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::UNKNOWN_FRAME
    );
}

#[test]
fn damaged_record_is_not_delivered() {
    let mut p = Pair::connected();
    let mut rec = record_of(
        &[
            Frame::Message { payload: b"good" },
            Frame::Message { payload: b"data" },
        ],
        true,
    );
    let last = rec.len() - 6;
    rec[last] ^= 0x10;
    p.server.handle_input(p.now, &rec);
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    assert!(!ev.iter().any(|g| matches!(g.ev, Event::Message { .. })));
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::INTEGRITY_ERROR);
}

#[test]
fn idle_timeout_detects_dead_peer() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 0;
    cc.params.idle_timeout_ms = 1_000;
    let mut p = Pair::new(cc.clone(), cc);
    p.drive();
    // The server goes silent: only the client's timers run.
    let t = p.client.poll_timeout().unwrap();
    assert_eq!(t, p.now + Duration::from_millis(1_000));
    p.client.handle_timeout(t);
    let mut ev = Vec::new();
    collect(&mut p.client, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::IDLE_TIMEOUT);
}

#[test]
fn ping_flood_closes_with_control_flood() {
    let mut p = Pair::connected();
    let pings: Vec<Frame<'_>> = (0..65).map(|t| Frame::Ping { token: t }).collect();
    // The server never gets to transmit in between: its PONGs pile up.
    let bytes = record_of(&pings, true);
    p.server.handle_input(p.now, &bytes);
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    assert_eq!(closed(&ev).unwrap().code, ErrorCode::CONTROL_FLOOD);
}

#[test]
fn empty_frame_flood() {
    let mut sc = Config::default();
    sc.max_empty_frames_per_interval = 10;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    let empties: Vec<Frame<'_>> = (0..11).map(|_| Frame::Message { payload: b"" }).collect();
    p.inject_to_server(&empties);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::EMPTY_FRAME_FLOOD
    );
}

#[test]
fn preauth_limit() {
    let mut sc = psk(KEY);
    sc.max_preauth_bytes = 1_000;
    let mut p = Pair::new(psk(KEY), sc);
    // Pipelined before the client could possibly have authenticated.
    for _ in 0..2 {
        p.client
            .send_message(&[1u8; 900], Priority::Normal)
            .unwrap();
    }
    p.drive();
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::PREAUTH_LIMIT
    );
}

/// Tiny pipelined frames count their bookkeeping too: 20 one-byte messages are 80
/// encoded bytes, far under a 1,000-byte budget, but with 64 bytes each for the
/// buffer's handles they exceed it; counted by encoded size alone, 20 tiny frames per
/// 80 bytes of budget would let a client make the server hold 20 times the budget.
/// (Without `alloc` nothing is buffered before authentication at all.)
#[cfg(feature = "alloc")]
#[test]
fn preauth_limit_counts_each_frames_bookkeeping() {
    let run = |n: usize| {
        let mut sc = psk(KEY);
        sc.max_preauth_bytes = 1_000;
        let mut p = Pair::new(psk(KEY), sc);
        for _ in 0..n {
            p.client.send_message(&[1u8], Priority::Normal).unwrap();
        }
        p.drive();
        closed(&p.take_server()).map(|c| c.code)
    };
    assert_eq!(run(20), Some(ErrorCode::PREAUTH_LIMIT));
    assert_eq!(run(10), None, "10 x (4 + 64) bytes fit the budget");
}
