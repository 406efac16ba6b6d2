//! Flushes (spec 14.1): a PING after everything queued, a PONG only once the events
//! before its PING were taken, and the subscription acknowledgement built on them.

use super::*;

/// Moves the client's bytes to the server without taking the server's events.
fn client_to_server(p: &mut Pair) {
    loop {
        let n = p.client.poll_transmit(p.now, &mut p.buf);
        if n == 0 {
            break;
        }
        assert_eq!(p.server.handle_input(p.now, &p.buf[..n]), n);
    }
}

fn flushed(ev: &[Got]) -> Vec<FlushId> {
    ev.iter()
        .filter_map(|g| match g.ev {
            Event::Flushed(id) => Some(id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flush_completes_after_the_peer_took_what_came_before() {
    let mut p = Pair::connected();
    for i in 0..5u8 {
        p.client.send_message(&[i], Priority::Low).unwrap();
    }
    let id = p.client.flush().unwrap();
    client_to_server(&mut p);
    // The server read the PING but holds its PONG: its five messages are not taken.
    let n = p.server.poll_transmit(p.now, &mut p.buf);
    assert_eq!(
        n, 0,
        "no PONG before the events ahead of the PING are taken"
    );
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    assert_eq!(ev.len(), 5);
    p.drive();
    assert_eq!(flushed(&p.take_client()), vec![id]);
}

#[test]
fn held_pongs_wait_until_let_go() {
    let mut p = Pair::connected();
    p.client.send_message(b"m", Priority::Normal).unwrap();
    let id = p.client.flush().unwrap();
    p.server.hold_pongs(true);
    p.drive();
    assert!(flushed(&p.take_client()).is_empty(), "held: no PONG");
    p.server.hold_pongs(false);
    p.drive();
    assert_eq!(flushed(&p.take_client()), vec![id]);
}

#[test]
fn flushes_complete_in_order_beside_heartbeats() {
    let mut cc = Config::default();
    cc.params.heartbeat_ms = 100;
    let mut p = Pair::new(cc.clone(), cc);
    p.drive();
    p.take_client();
    let a = p.client.flush().unwrap();
    p.advance(Duration::from_millis(150));
    let b = p.client.flush().unwrap();
    p.drive();
    p.advance(Duration::from_millis(150));
    assert_eq!(flushed(&p.take_client()), vec![a, b]);
    assert!(p.client.stats().rtt.is_some(), "heartbeats still measure");
}

#[test]
fn flush_is_bounded_and_a_refused_one_changes_nothing() {
    let mut p = Pair::connected();
    let ids: Vec<FlushId> = (0..MAX_FLUSHES)
        .map(|_| p.client.flush().unwrap())
        .collect();
    assert_eq!(p.client.flush(), Err(Error::Blocked));
    p.drive();
    assert_eq!(
        flushed(&p.take_client()),
        ids,
        "the refused flush left no trace"
    );
    assert!(p.client.flush().is_ok(), "room again once they completed");
}

#[test]
fn flush_needs_a_connection() {
    let mut p = Pair::default_pair();
    assert_eq!(p.client.flush(), Err(Error::NotConnected));
    p.drive();
    p.client.close(p.now, ErrorCode::NO_ERROR, "");
    assert_eq!(p.client.flush(), Err(Error::Closed));
}

/// The acknowledgement of a subscription: a flush after the SUBSCRIBE completes
/// only once the server took its `Subscribed` event.
#[test]
fn a_flush_after_subscribe_proves_the_server_took_it() {
    let mut p = Pair::connected();
    let sub = p
        .client
        .subscribe("a.b", None, OverflowPolicy::DropOldest)
        .unwrap();
    let id = p.client.flush().unwrap();
    client_to_server(&mut p);
    assert_eq!(p.server.poll_transmit(p.now, &mut p.buf), 0);
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    assert!(
        matches!(ev[0].ev, Event::Subscribed { sub_id, .. } if sub_id == sub),
        "{ev:?}"
    );
    p.drive();
    assert_eq!(flushed(&p.take_client()), vec![id]);
}
