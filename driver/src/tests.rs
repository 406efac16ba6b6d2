//! The driver on its own: pairs of drivers joined in memory, application futures
//! polled in between. The adapters' tests run the same flows over real sockets.

use super::shared::lock;
use super::*;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::boxed::Box;
use std::vec;
use std::vec::Vec;
use weft_core::config::{OverflowPolicy, Priority};
use weft_core::conn::{CloseKind, Outcome};
use weft_core::error::Error;

/// Drivers joined by in-memory pipes.
struct Net {
    drivers: Vec<Driver>,
    /// Pairs of indices joined: bytes from .0 go to .1 and back.
    links: Vec<(usize, usize, Vec<u8>, Vec<u8>)>,
}

impl Net {
    fn pair(cc: Config, sc: Config) -> (Net, Handle, Handle) {
        let (cd, c) = connect(Role::Client, cc, [1; 32]);
        let (sd, s) = connect(Role::Server, sc, [2; 32]);
        let net = Net {
            drivers: vec![cd, sd],
            links: vec![(0, 1, Vec::new(), Vec::new())],
        };
        (net, c, s)
    }

    /// A connected pair whose server application queues hold at most `cap` items.
    fn small_server_queue(cap: usize) -> (Net, Handle, Handle) {
        let (cd, client) = connect(Role::Client, Config::default(), [1; 32]);
        let (sd, server) =
            connect_with(Role::Server, Config::default(), [2; 32], Clock::new(), cap);
        let mut net = Net {
            drivers: vec![cd, sd],
            links: vec![(0, 1, Vec::new(), Vec::new())],
        };
        net.run(client.connected()).unwrap();
        (net, client, server)
    }

    /// Two clients, each joined to a server connection attached to `hub`; the
    /// second client has configuration `second` (e.g. a slow subscriber).
    fn hub_pair(hub: &std::sync::Arc<Hub>, second: Config) -> (Net, [Handle; 2], [Handle; 2]) {
        let (cd1, c1) = connect(Role::Client, Config::default(), [1; 32]);
        let (mut sd1, s1) = connect(Role::Server, Config::default(), [2; 32]);
        let (cd2, c2) = connect(Role::Client, second, [3; 32]);
        let (mut sd2, s2) = connect(Role::Server, Config::default(), [4; 32]);
        hub.attach(&mut sd1);
        hub.attach(&mut sd2);
        let net = Net {
            drivers: vec![cd1, sd1, cd2, sd2],
            links: vec![
                (0, 1, Vec::new(), Vec::new()),
                (2, 3, Vec::new(), Vec::new()),
            ],
        };
        (net, [c1, c2], [s1, s2])
    }

    /// Moves bytes until quiet; bounded.
    fn pump(&mut self) {
        let mut buf = vec![0u8; 1 << 17];
        for _ in 0..10_000 {
            let mut moved = false;
            for (a, b, ab, ba) in self.links.iter_mut() {
                loop {
                    let n = self.drivers[*a].poll_transmit(&mut buf);
                    if n == 0 {
                        break;
                    }
                    ab.extend_from_slice(&buf[..n]);
                }
                loop {
                    let n = self.drivers[*b].poll_transmit(&mut buf);
                    if n == 0 {
                        break;
                    }
                    ba.extend_from_slice(&buf[..n]);
                }
                if !ab.is_empty() {
                    let n = self.drivers[*b].handle_input(ab);
                    ab.drain(..n);
                    moved |= n > 0;
                }
                if !ba.is_empty() {
                    let n = self.drivers[*a].handle_input(ba);
                    ba.drain(..n);
                    moved |= n > 0;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("net did not settle");
    }

    /// Polls `fut`, pumping in between, until it completes; bounded.
    fn run<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = Box::pin(fut);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..1000 {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            self.pump();
        }
        panic!("future did not complete");
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn request_response_and_serve() {
    let (mut net, client, server) = Net::pair(Config::default(), Config::default());
    net.run(client.connected()).unwrap();
    let mut serve = Box::pin(server.serve(|subject, payload| match subject {
        b"echo" => Ok(payload.to_vec()),
        _ => Err((404, "no such subject".into())),
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let mut req = client.request(b"echo", b"hello", None);
    let mut bad = client.request(b"nope", b"", None);
    let mut got = (None, None);
    for _ in 0..100 {
        let _ = serve.as_mut().poll(&mut cx);
        if got.0.is_none() {
            if let Poll::Ready(r) = poll_once(&mut req) {
                got.0 = Some(r);
            }
        }
        if got.1.is_none() {
            if let Poll::Ready(r) = poll_once(&mut bad) {
                got.1 = Some(r);
            }
        }
        if got.0.is_some() && got.1.is_some() {
            break;
        }
        net.pump();
    }
    let ok = got.0.unwrap().unwrap();
    assert_eq!((ok.outcome, &ok.payload[..]), (Outcome::Ok, &b"hello"[..]));
    let err = got.1.unwrap().unwrap();
    assert_eq!(err.outcome, Outcome::Error(404));
    assert_eq!(&err.message[..], b"no such subject");
}

#[test]
fn dropping_a_request_future_cancels_it() {
    let (mut net, client, server) = Net::pair(Config::default(), Config::default());
    net.run(client.connected()).unwrap();
    let mut req = client.request(b"slow", b"", None);
    assert!(poll_once(&mut req).is_pending());
    net.pump();
    let incoming = net.run(server.next_request()).unwrap();
    drop(req);
    net.pump();
    // The responder learns of the cancel: answering is refused.
    assert_eq!(
        incoming.respond(Outcome::Ok, "", b""),
        Err(Error::UnknownId)
    );
}

#[test]
fn messages_publish_subscribe_through_the_hub() {
    let hub = Hub::new(Default::default());
    let (mut net, [c1, c2], _servers) = Net::hub_pair(&hub, Config::default());
    net.run(c1.connected()).unwrap();
    net.run(c2.connected()).unwrap();
    assert_eq!(hub.connections(), 2);
    let mut sub = net
        .run(c2.subscribe("prices.>", None, OverflowPolicy::Wait))
        .unwrap();
    for i in 0..5u8 {
        net.run(c1.publish("prices.eu.gold", &[i])).unwrap();
    }
    for i in 0..5u8 {
        // Every other one through the `Stream` impl: the same deliveries.
        let d = if i % 2 == 0 {
            net.run(sub.next_delivery())
        } else {
            net.run(core::future::poll_fn(|cx| {
                futures_core::Stream::poll_next(Pin::new(&mut sub), cx)
            }))
        }
        .unwrap();
        assert_eq!(
            (&d.topic[..], &d.payload[..]),
            (&b"prices.eu.gold"[..], &[i][..])
        );
    }
    drop(sub);
    net.pump();
    net.run(c1.publish("prices.eu.gold", b"late")).unwrap();
    net.pump();
    assert_eq!(net.drivers.len(), 4);
}

#[test]
fn stream_echo() {
    let (mut net, client, server) = Net::pair(Config::default(), Config::default());
    net.run(client.connected()).unwrap();
    let mut s = client.open_stream().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    let mut sent = 0;
    let mut cx = Context::from_waker(Waker::noop());
    let mut peer = None;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..10_000 {
        if sent < data.len() {
            if let Poll::Ready(Ok(n)) = s.poll_write(&mut cx, &data[sent..]) {
                sent += n;
                if sent == data.len() {
                    s.finish().unwrap();
                }
            }
        }
        net.pump();
        if peer.is_none() {
            if let Poll::Ready(p) = poll_once(&mut server.accept_stream()) {
                peer = p;
            }
        }
        if let Some(p) = peer.as_mut() {
            match p.poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(Ok(n)) => got.extend_from_slice(&buf[..n]),
                _ => {}
            }
        }
    }
    assert!(got == data);
}

#[test]
fn dropping_the_last_handle_closes_gracefully() {
    let (mut net, client, server) = Net::pair(Config::default(), Config::default());
    net.run(client.connected()).unwrap();
    let c2 = client.clone();
    drop(client);
    net.pump();
    assert!(!server.closed_now(), "another handle still holds it open");
    drop(c2);
    let info = net.run(server.closed());
    assert_eq!(info.kind, CloseKind::Graceful);
    assert!(net.drivers[0].is_finished() && net.drivers[1].is_finished());
}

#[test]
fn send_waits_for_room_instead_of_growing() {
    let cc = Config {
        max_queued_bytes: 4096,
        ..Config::default()
    };
    let (mut net, client, server) = Net::pair(cc, Config::default());
    net.run(client.connected()).unwrap();
    let mut pending = 0;
    for _ in 0..20 {
        let mut f = client.send(&[1u8; 1000]);
        if poll_once(&mut f).is_pending() {
            pending += 1;
            net.run(f).unwrap();
        }
    }
    assert!(pending > 0, "the bound was reached at least once");
    net.pump();
    let mut n = 0;
    while let Poll::Ready(Some(_)) = poll_once(&mut server.next_message()) {
        n += 1;
    }
    assert_eq!(n, 20);
}

#[test]
fn application_queue_bound_holds_the_peer_back() {
    let (mut net, client, server) = Net::small_server_queue(4);
    for i in 0..50u8 {
        net.run(client.send(&[i])).unwrap();
    }
    net.pump();
    {
        let st = lock(&server.shared);
        assert!(
            st.messages.len() <= 4,
            "queue bound holds: {}",
            st.messages.len()
        );
    }
    for i in 0..50u8 {
        let m = net.run(server.next_message()).unwrap();
        assert_eq!(&m[..], &[i]);
    }
}

/// Counts wake-ups.
struct CountWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_reader_wakes_a_paused_driver_once_it_made_room_for_a_batch() {
    use std::sync::{atomic::Ordering, Arc};
    let (mut net, client, server) = Net::small_server_queue(4);
    for i in 0..50u8 {
        net.run(client.send(&[i])).unwrap();
    }
    net.pump();
    let count = Arc::new(CountWaker(0.into()));
    let waker = Waker::from(count.clone());
    net.drivers[1].register(&waker);
    let mut got = Vec::new();
    // Full queue (4): taking one leaves 3, more than half: the driver sleeps on.
    got.push(net_free_pop(&server));
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "no wake per item");
    // Down to half: one wake, and the registration is used up.
    got.push(net_free_pop(&server));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken at half");
    got.push(net_free_pop(&server));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    // The batch form takes the rest, in order, at most `max` at a time.
    let mut out = Vec::new();
    while got.len() + out.len() < 50 {
        let before = out.len();
        let n = net.run(server.next_messages(&mut out, 3));
        assert!((1..=3).contains(&n), "took {n}");
        assert_eq!(out.len(), before + n);
    }
    got.extend(out);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(&m[..], &[i as u8]);
    }
    assert_eq!(net.run(server.next_messages(&mut Vec::new(), 0)), 0);
}

#[test]
fn a_driver_holding_input_is_woken_by_the_reader_whatever_ran_in_between() {
    use std::sync::{atomic::Ordering, Arc};
    let (mut net, client, server) = Net::small_server_queue(4);
    // More than the server connection buffers: the rest waits in the link, as it
    // would in a transport's read buffer.
    const N: usize = 3000;
    for i in 0..N {
        net.run(client.send(&[i as u8; 100])).unwrap();
    }
    net.pump();
    let mut buf = vec![0u8; 1 << 17];
    let (mut got, mut held_rounds) = (0, 0);
    for _ in 0..N {
        if got == N {
            break;
        }
        let count = Arc::new(CountWaker(0.into()));
        net.drivers[1].register(&Waker::from(count.clone()));
        let held = !net.links[0].2.is_empty();
        // The reader takes one item at a time while the driver transmits in between
        // (which drains events into the queue again).
        while let Poll::Ready(Some(m)) = poll_once(&mut server.next_message()) {
            assert_eq!(m[0], got as u8);
            got += 1;
            let n = net.drivers[1].poll_transmit(&mut buf);
            net.links[0].3.extend_from_slice(&buf[..n]);
        }
        if held {
            held_rounds += 1;
            assert!(
                count.0.load(Ordering::SeqCst) > 0,
                "the reader emptied its queue but never woke the driver holding input"
            );
        }
        net.pump();
    }
    assert_eq!(got, N);
    assert!(held_rounds > 0, "the link held input at least once");
}

/// One message already queued, taken without running the network.
fn net_free_pop(h: &Handle) -> bytes::Bytes {
    match poll_once(&mut h.next_message()) {
        Poll::Ready(Some(m)) => m,
        other => panic!("expected a queued message, got {other:?}"),
    }
}

#[test]
fn block_on_runs_a_future() {
    assert_eq!(block_on(async { 7 }), 7);
}

impl Handle {
    fn closed_now(&self) -> bool {
        lock(&self.shared).closed.is_some()
    }
}

#[test]
fn publisher_resumes_when_the_blocking_subscriber_leaves() {
    let hub = Hub::new(weft_core::router::RouterConfig {
        max_queue_per_sub: 1,
        ..Default::default()
    });
    let slow = Config {
        subscription_credit: 1,
        ..Config::default()
    };
    let (mut net, [c1, c2], [s1, _s2]) = Net::hub_pair(&hub, slow);
    net.run(c1.connected()).unwrap();
    net.run(c2.connected()).unwrap();
    // A subscriber that never reads: one delivery in credit, one queued, then full.
    let _sub = net
        .run(c2.subscribe("t", None, OverflowPolicy::Wait))
        .unwrap();
    for i in 0..3u8 {
        net.run(c1.publish("t", &[i])).unwrap();
    }
    // The third publish stalls the publisher's connection: what comes after waits.
    net.pump();
    c1.try_send(b"after").unwrap();
    net.pump();
    assert!(
        poll_once(&mut s1.next_message()).is_pending(),
        "the publisher's connection is held back"
    );
    // The subscriber's connection goes away: the hub must resume the publisher.
    net.links.truncate(1);
    drop(net.drivers.pop());
    net.pump();
    let m = net.run(s1.next_message()).unwrap();
    assert_eq!(&m[..], b"after");
}

#[test]
fn send_many_queues_in_order_and_waits_for_room() {
    let cc = Config {
        max_queued_bytes: 4096,
        ..Config::default()
    };
    let (mut net, client, server) = Net::pair(cc, Config::default());
    net.run(client.connected()).unwrap();
    let batch: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000]).collect();
    let mut f = client.send_many(&batch);
    assert!(
        poll_once(&mut f).is_pending(),
        "20,000 bytes do not fit a 4,096-byte queue: the batch waits"
    );
    net.run(f).unwrap();
    net.pump();
    for i in 0..20u8 {
        let m = net.run(server.next_message()).unwrap();
        assert_eq!(&m[..], &[i; 1000][..]);
    }
    assert!(poll_once(&mut server.next_message()).is_pending());
}

#[test]
fn a_batch_refused_part_way_reports_what_it_queued() {
    let mut sc = Config::default();
    sc.params.max_message_size = 64 * 1024;
    let (mut net, client, server) = Net::pair(Config::default(), sc);
    net.run(client.connected()).unwrap();
    let too_large = client.negotiated().unwrap().peer.max_message_size as usize + 1;
    let batch = [vec![1u8], vec![2u8], vec![0u8; too_large], vec![4u8]];
    let e = net.run(client.send_many(&batch)).unwrap_err();
    assert_eq!(
        e,
        BatchError {
            queued: 2,
            error: Error::MessageTooLarge
        }
    );
    net.pump();
    // The two accepted are delivered; the refused one and the one after it are not.
    assert_eq!(&net.run(server.next_message()).unwrap()[..], &[1]);
    assert_eq!(&net.run(server.next_message()).unwrap()[..], &[2]);
    assert!(poll_once(&mut server.next_message()).is_pending());
    assert_eq!(client.stats().messages_sent, 2);

    client.close(weft_core::error::ErrorCode::NO_ERROR, "");
    let e = net.run(client.send_many(&[[5u8]])).unwrap_err();
    assert_eq!((e.queued, e.error), (0, Error::Closed));
}

#[test]
fn publish_many_reaches_a_subscriber_in_order() {
    let hub = Hub::new(Default::default());
    let (cd1, c1) = connect(Role::Client, Config::default(), [1; 32]);
    let (mut sd1, _s1) = connect(Role::Server, Config::default(), [2; 32]);
    hub.attach(&mut sd1);
    let mut net = Net {
        drivers: vec![cd1, sd1],
        links: vec![(0, 1, Vec::new(), Vec::new())],
    };
    net.run(c1.connected()).unwrap();
    let mut sub = net
        .run(c1.subscribe("t", None, OverflowPolicy::Wait))
        .unwrap();
    let batch: Vec<[u8; 1]> = (0..50u8).map(|i| [i]).collect();
    net.run(c1.publish_many("t", &batch)).unwrap();
    for i in 0..50u8 {
        let d = net.run(sub.next_delivery()).unwrap();
        assert_eq!((&d.topic[..], &d.payload[..]), (&b"t"[..], &[i][..]));
    }
}

#[test]
fn the_server_application_publishes_and_broadcasts_through_the_hub() {
    use weft_core::router::{RouterConfig, RouterError};
    let hub = Hub::new(RouterConfig {
        max_queue_per_sub: 1,
        ..Default::default()
    });
    let slow = Config {
        subscription_credit: 1,
        ..Config::default()
    };
    let (mut net, [c1, c2], _servers) = Net::hub_pair(&hub, slow);
    // Before the handshakes a broadcast reaches no one, and says so.
    assert_eq!(
        hub.broadcast(b"early"),
        BroadcastReport {
            queued: 0,
            not_queued: 2
        }
    );
    net.run(c1.connected()).unwrap();
    net.run(c2.connected()).unwrap();
    let mut sub = net
        .run(c2.subscribe("news.>", None, OverflowPolicy::Wait))
        .unwrap();
    assert!(matches!(
        hub.try_publish("news.*", &b"x"[..]),
        Err(RouterError::InvalidTopic(_))
    ));
    // One delivery in the subscriber's credit, one held by the router, then full.
    assert_eq!(hub.try_publish("news.a", &b"0"[..]).unwrap().matched, 1);
    hub.try_publish("news.a", &b"1"[..]).unwrap();
    assert_eq!(
        hub.try_publish("news.a", &b"2"[..]),
        Err(RouterError::Blocked)
    );
    struct Flag(std::sync::atomic::AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let woken = std::sync::Arc::new(Flag(false.into()));
    let waker = Waker::from(woken.clone());
    let mut waiting = Box::pin(hub.publish("news.a", &b"2"[..]));
    assert!(
        waiting
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending(),
        "no room: the publish waits"
    );
    // The subscriber reads: its credit returns, the router makes room, the
    // waiting publish is woken and goes through.
    let d = net.run(sub.next_delivery()).unwrap();
    assert_eq!(&d.payload[..], b"0");
    net.pump();
    assert!(
        woken.0.load(std::sync::atomic::Ordering::SeqCst),
        "the waiting publish was woken"
    );
    assert_eq!(net.run(waiting).unwrap().queued, 1);
    for want in [b"1", b"2"] {
        assert_eq!(&net.run(sub.next_delivery()).unwrap().payload[..], want);
    }
    // A broadcast to every connection, then to those a predicate picks.
    let all = hub.broadcast(b"to all");
    assert_eq!((all.queued, all.not_queued), (2, 0));
    for c in [&c1, &c2] {
        assert_eq!(&net.run(c.next_message()).unwrap()[..], b"to all");
    }
    let mut seen = 0;
    let first = hub.broadcast_where(b"to one", |p| {
        assert_eq!((p.addr, p.key_id), (None, None));
        seen += 1;
        seen == 1
    });
    assert_eq!((seen, first.queued, first.not_queued), (2, 1, 0));
    net.pump();
    let got: usize = [&c1, &c2]
        .iter()
        .filter(|c| poll_once(&mut c.next_message()).is_ready())
        .count();
    assert_eq!(got, 1, "exactly one connection was chosen");
}

#[test]
fn publish_and_request_take_a_priority() {
    let hub = Hub::new(Default::default());
    let (mut net, [c1, c2], [s1, _s2]) = Net::hub_pair(&hub, Config::default());
    net.run(c1.connected()).unwrap();
    net.run(c2.connected()).unwrap();
    let mut sub = net
        .run(c2.subscribe("t", None, OverflowPolicy::Wait))
        .unwrap();
    // Queued together, the urgent one is transmitted first.
    net.run(c1.publish_with("t", b"low", Priority::Low))
        .unwrap();
    net.run(c1.publish_with("t", b"urgent", Priority::Urgent))
        .unwrap();
    let order: Vec<Vec<u8>> = (0..2)
        .map(|_| net.run(sub.next_delivery()).unwrap().payload.to_vec())
        .collect();
    assert_eq!(order, vec![b"urgent".to_vec(), b"low".to_vec()]);
    // request_with and respond_with go through at their priorities (the order
    // across a message and a request is not observable from the handles).
    c1.try_send(b"bulk").unwrap();
    let mut reply = Box::pin(c1.request_with(b"q", b"", None, Priority::High));
    assert!(poll_once(&mut reply).is_pending());
    net.pump();
    let req = net.run(s1.next_request()).unwrap();
    req.respond_with(Outcome::Ok, "", b"a", Priority::Urgent)
        .unwrap();
    assert_eq!(&net.run(reply).unwrap().payload[..], b"a");
    assert_eq!(&net.run(s1.next_message()).unwrap()[..], b"bulk");
}
