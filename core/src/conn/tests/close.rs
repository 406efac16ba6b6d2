//! Closing (spec section 15): graceful drain, drain timeout, error close, abrupt
//! loss and what each reports; and the heartbeats (section 14) that keep a
//! connection up and measure its round trip.

use super::*;

#[test]
fn heartbeat_measures_rtt() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 100;
    let mut p = Pair::new(cc.clone(), cc);
    p.latency = Duration::from_millis(5);
    p.drive();
    p.advance(Duration::from_millis(350));
    let rtt = p.client.stats().rtt.unwrap();
    assert!(
        rtt >= Duration::from_millis(10) && rtt <= Duration::from_millis(20),
        "{rtt:?}"
    );
    assert!(p.client.stats().min_rtt.is_some());
    assert!(p.client.is_established() && p.server.is_established());
}

#[test]
fn heartbeats_keep_an_idle_connection_alive() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 1_000;
    cc.params.idle_timeout_ms = 3_000;
    let mut p = Pair::new(cc.clone(), cc);
    p.drive();
    p.advance(Duration::from_secs(20));
    assert!(p.client.is_established() && p.server.is_established());
}

#[test]
fn graceful_close_drains_in_flight_work() {
    let mut p = Pair::connected();
    let r1 = p
        .client
        .request(p.now, b"work", b"", None, Priority::Normal)
        .unwrap();
    p.drive();
    let reqs = requests_of(&p.take_server());
    assert_eq!(reqs.len(), 1);
    // The server starts closing with the request still in progress.
    p.server.close(p.now, ErrorCode::NO_ERROR, "maintenance");
    let r2 = p
        .client
        .request(p.now, b"late", b"", None, Priority::Normal);
    p.drive();
    let c = p.take_client();
    assert!(c.iter().any(|g| g.ev
        == Event::Draining {
            code: ErrorCode::NO_ERROR
        }));
    if let Ok(r2) = r2 {
        // Sent before the client saw the CLOSE: reported as not processed.
        assert!(responses_of(&c).contains(&(r2, Outcome::NotProcessed, Vec::new(), String::new())));
    }
    assert!(!p.server.is_closed(), "still draining");
    assert_eq!(
        p.client.request(p.now, b"x", b"", None, Priority::Normal),
        Err(Error::Closed)
    );
    p.server
        .respond(r1, Outcome::Ok, "", b"finished", Priority::Normal)
        .unwrap();
    p.drive();
    let c = p.take_client();
    assert!(responses_of(&c).contains(&(r1, Outcome::Ok, b"finished".to_vec(), String::new())));
    let info = closed(&c).unwrap();
    assert_eq!(
        info,
        CloseInfo {
            code: ErrorCode::NO_ERROR,
            initiator: Side::Peer,
            kind: CloseKind::Graceful
        }
    );
    assert_eq!(closed(&p.take_server()).unwrap().kind, CloseKind::Graceful);
    assert!(p.client.is_closed() && p.server.is_closed());
    assert_eq!(p.client.close_reason(), "maintenance");
}

#[test]
fn drain_timeout_aborts() {
    let mut p = Pair::connected();
    p.client
        .request(p.now, b"never", b"", None, Priority::Normal)
        .unwrap();
    p.drive();
    p.client
        .close(p.now, ErrorCode(ErrorCode::APPLICATION_MIN + 1), "bye");
    p.advance(Duration::from_secs(11));
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::DRAIN_TIMEOUT
    );
}

#[test]
fn abrupt_loss_is_distinguishable() {
    let mut p = Pair::connected();
    p.client.handle_eof(p.now);
    let mut ev = Vec::new();
    collect(&mut p.client, &mut ev);
    assert_eq!(closed(&ev).unwrap().kind, CloseKind::Lost);
}

#[test]
fn error_close_is_immediate() {
    let mut p = Pair::connected();
    p.client.close(p.now, ErrorCode::PROTOCOL_ERROR, "testing");
    p.drive();
    assert!(p.client.is_closed());
    let s = closed(&p.take_server()).unwrap();
    assert_eq!(
        (s.code, s.kind, s.initiator),
        (ErrorCode::PROTOCOL_ERROR, CloseKind::Error, Side::Peer)
    );
    assert_eq!(p.server.close_reason(), "testing");
}

#[test]
fn error_close_reports_requests_lost_not_retryable() {
    let mut p = Pair::connected();
    let id = p
        .client
        .request(p.now, b"x", b"", None, Priority::Normal)
        .unwrap();
    p.drive();
    p.server.close(p.now, ErrorCode::PROTOCOL_ERROR, "broken");
    p.drive();
    let r = responses_of(&p.take_client());
    assert_eq!(r, vec![(id, Outcome::Lost, Vec::new(), String::new())]);
}

#[cfg(feature = "alloc")]
#[test]
fn graceful_close_sends_queued_data_first() {
    let mut p = Pair::connected();
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    p.client.send_message(&big, Priority::Normal).unwrap();
    p.client.send_message(b"small", Priority::Low).unwrap();
    p.client.close(p.now, ErrorCode::NO_ERROR, "done");
    p.drive();
    let s = p.take_server();
    let payloads: Vec<&[u8]> = s
        .iter()
        .filter(|g| matches!(g.ev, Event::Message { .. }))
        .map(|g| &g.payload[..])
        .collect();
    assert_eq!(payloads.len(), 2, "both messages arrive before the close");
    assert!(payloads.contains(&&big[..]));
    assert_eq!(closed(&s).unwrap().kind, CloseKind::Graceful);
    assert!(p.client.is_closed() && p.server.is_closed());
}

#[test]
fn messages_never_written_are_counted_on_loss() {
    let mut p = Pair::connected();
    for _ in 0..5 {
        p.client.send_message(b"queued", Priority::Normal).unwrap();
    }
    // The transport dies before anything is written.
    p.client.handle_eof(p.now);
    let s = p.client.stats();
    assert_eq!(s.unsent, 5);
    let mut ev = Vec::new();
    collect(&mut p.client, &mut ev);
    assert_eq!(closed(&ev).unwrap().kind, CloseKind::Lost);
}

/// A graceful close asked for during the handshake waits for it, then sends and
/// drains what was accepted before it (spec 15.1): nothing accepted is lost, and
/// `NO_ERROR` is never an error close.
#[test]
fn close_during_the_handshake_drains_what_was_accepted() {
    let mut p = Pair::default_pair();
    for i in 0..100u8 {
        p.client.send_message(&[i; 3], Priority::Normal).unwrap();
    }
    p.client.close(p.now, ErrorCode::NO_ERROR, "done");
    assert_eq!(
        p.client.send_message(b"late", Priority::Normal),
        Err(Error::Closed),
        "nothing is accepted once the close was asked for"
    );
    p.drive();
    let got: Vec<Vec<u8>> = p
        .take_server()
        .into_iter()
        .filter(|g| matches!(g.ev, Event::Message { .. }))
        .map(|g| g.payload)
        .collect();
    assert_eq!(got.len(), 100, "every accepted message arrives");
    assert!(got.iter().enumerate().all(|(i, m)| m == &[i as u8; 3]));
    let c = closed(&p.take_client()).expect("the client closed");
    assert_eq!(
        (c.code, c.initiator, c.kind),
        (ErrorCode::NO_ERROR, Side::Local, CloseKind::Graceful)
    );
    assert_eq!(p.client.stats().unsent, 0);
}

/// If the handshake fails after a close was asked for, the close reports the
/// handshake's code and counts every accepted message as not sent.
#[test]
fn close_during_a_failing_handshake_reports_what_was_not_sent() {
    // The client offers a key the keyless server refuses (AUTH_FAILED).
    let mut p = Pair::new(psk(KEY), Config::default());
    for _ in 0..10 {
        p.client.send_message(b"m", Priority::Normal).unwrap();
    }
    p.client.close(p.now, ErrorCode::NO_ERROR, "");
    p.drive();
    let c = closed(&p.take_client()).expect("the client closed");
    assert_eq!((c.code, c.kind), (ErrorCode::AUTH_FAILED, CloseKind::Error));
    assert_eq!(p.client.stats().unsent, 10);
    assert!(!p
        .take_server()
        .iter()
        .any(|g| matches!(g.ev, Event::Message { .. })));
}

#[test]
fn close_info_says_who_closed_how_and_why() {
    let s = |code, initiator, kind| {
        CloseInfo {
            code,
            initiator,
            kind,
        }
        .to_string()
    };
    assert_eq!(
        s(ErrorCode::NO_ERROR, Side::Peer, CloseKind::Graceful),
        "connection closed gracefully by the peer (NO_ERROR)"
    );
    assert_eq!(
        s(ErrorCode::AUTH_FAILED, Side::Local, CloseKind::Error),
        "connection closed on error by us: AUTH_FAILED"
    );
    assert!(s(ErrorCode::NO_ERROR, Side::Local, CloseKind::Lost).contains("lost"));
    let e: &dyn core::error::Error = &CloseInfo {
        code: ErrorCode::NO_ERROR,
        initiator: Side::Local,
        kind: CloseKind::Lost,
    };
    assert!(e.source().is_none());
}

/// The transport's end arriving while the receiver's event queue is full does not
/// drop the input it already took (found by weft-mio's graceful shutdown test, in
/// which a server whose application fell behind lost the last record of a
/// client's messages, with its CLOSE, while the client was told the close was
/// graceful): the messages and the CLOSE in it are processed as the events are
/// taken, and the close is graceful on both sides.
#[test]
fn end_of_transport_waits_for_input_paused_on_a_full_event_queue() {
    let mut p = Pair::connected();
    p.server.close(p.now, ErrorCode::NO_ERROR, "shutdown");
    let mut close = Vec::new();
    crate::testing::flush(&mut p.server, p.now, &mut close);
    // The client queued 100 messages before the server's CLOSE reached it: they
    // go out ahead of its own CLOSE.
    for i in 0..100u32 {
        p.client
            .send_message(&i.to_le_bytes(), Priority::Normal)
            .unwrap();
    }
    let mut client_events = Vec::new();
    let wire = crate::testing::feed(&mut p.client, p.now, &close, &mut client_events);
    assert!(p.client.is_closed(), "the client finished its side");
    // The server takes all of it while nobody polls its events (an application
    // that fell behind), then the transport ends.
    assert_eq!(p.server.handle_input(p.now, &wire), wire.len());
    p.server.handle_eof(p.now);
    assert!(
        !p.server.is_closed(),
        "input taken is still to be processed"
    );
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    let got: Vec<u32> = ev
        .iter()
        .filter(|g| matches!(g.ev, Event::Message { .. }))
        .map(|g| u32::from_le_bytes(g.payload[..].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>(), "every message, in order");
    let info = closed(&ev).expect("closed once the input was used up");
    assert_eq!(
        (info.kind, info.code),
        (CloseKind::Graceful, ErrorCode::NO_ERROR)
    );
    assert!(p.server.is_closed());
}
