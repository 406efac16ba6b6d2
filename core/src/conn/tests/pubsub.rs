//! Publish/subscribe (spec section 10): routing across connections with the core's
//! router, credit, drop reports, the slow-consumer policy and subscription rules.

use super::*;

#[cfg(feature = "alloc")]
/// A server hosting several client connections, routing with the core's router.
struct Hub {
    pairs: Vec<Pair>,
    router: crate::router::Router,
    /// Server events other than routing ones, per connection.
    other: Vec<Vec<Got>>,
}

#[cfg(feature = "alloc")]
impl Hub {
    fn new(n: usize) -> Self {
        Hub {
            pairs: (0..n).map(|_| Pair::connected()).collect(),
            router: crate::router::Router::new(Default::default()),
            other: Vec::new(),
        }
    }

    /// Drives every pair and routes what the servers received; bounded.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut work = false;
            for (k, p) in self.pairs.iter_mut().enumerate() {
                p.drive();
                for g in p.take_server() {
                    work = true;
                    let conn = k as u64;
                    match g.ev {
                        Event::Subscribed {
                            sub_id,
                            policy,
                            credit,
                            ..
                        } => {
                            let filter = core::str::from_utf8(&g.subject).unwrap();
                            let group = core::str::from_utf8(&g.payload).unwrap();
                            let group = (!group.is_empty()).then_some(group);
                            self.router
                                .subscribe(conn, sub_id, filter, group, policy, credit)
                                .unwrap();
                        }
                        Event::Unsubscribed { sub_id } => {
                            self.router.unsubscribe(conn, sub_id).unwrap();
                        }
                        Event::Credit { sub_id, increment } => {
                            self.router.add_credit(conn, sub_id, increment).unwrap();
                        }
                        Event::Published { .. } => {
                            let topic = core::str::from_utf8(&g.subject).unwrap();
                            self.router
                                .publish(topic, Bytes::from(g.payload.clone()))
                                .unwrap();
                        }
                        _ => {
                            if self.other.len() <= k {
                                self.other.resize(k + 1, Vec::new());
                            }
                            self.other[k].push(g);
                        }
                    }
                }
            }
            for (k, p) in self.pairs.iter_mut().enumerate() {
                while let Some(d) = self.router.poll_delivery(k as u64) {
                    work = true;
                    p.server
                        .deliver(d.sub_id, &d.topic, &d.payload, Priority::Normal)
                        .unwrap();
                }
            }
            while let Some(a) = self.router.poll_action() {
                if let crate::router::RouterAction::Disconnect { conn, .. } = a {
                    let p = &mut self.pairs[conn as usize];
                    p.server
                        .close(p.now, ErrorCode::SLOW_CONSUMER, "slow consumer");
                    work = true;
                }
            }
            if !work {
                return;
            }
        }
        panic!("hub did not settle");
    }
}

#[cfg(feature = "alloc")]
fn deliveries(ev: &[Got]) -> Vec<(SubId, Vec<u8>, Vec<u8>)> {
    ev.iter()
        .filter_map(|g| match g.ev {
            Event::Delivery { sub_id, .. } => Some((sub_id, g.subject.clone(), g.payload.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(feature = "alloc")]
#[test]
fn wildcards_and_queue_group_across_connections() {
    let mut hub = Hub::new(4);
    let s_all = hub.pairs[0]
        .client
        .subscribe("orders.>", None, OverflowPolicy::Wait)
        .unwrap();
    let s_eu = hub.pairs[1]
        .client
        .subscribe("orders.*.eu", None, OverflowPolicy::Wait)
        .unwrap();
    for k in [2, 3] {
        hub.pairs[k]
            .client
            .subscribe("orders.>", Some("workers"), OverflowPolicy::Wait)
            .unwrap();
    }
    hub.pump();
    for (topic, body) in [
        ("orders.new.eu", "a"),
        ("orders.new.us", "b"),
        ("orders.old.eu", "c"),
        ("other", "d"),
    ] {
        hub.pairs[0]
            .client
            .publish(topic, body.as_bytes(), Priority::Normal)
            .unwrap();
    }
    hub.pump();
    let all = deliveries(&hub.pairs[0].take_client());
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|d| d.0 == s_all));
    assert_eq!(all[0].1, b"orders.new.eu");
    let eu = deliveries(&hub.pairs[1].take_client());
    assert_eq!(
        eu.iter().map(|d| d.2.clone()).collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"c".to_vec()]
    );
    assert!(eu.iter().all(|d| d.0 == s_eu));
    let w2 = deliveries(&hub.pairs[2].take_client()).len();
    let w3 = deliveries(&hub.pairs[3].take_client()).len();
    assert_eq!(w2 + w3, 3, "each message to exactly one group member");
    assert!(w2 >= 1 && w3 >= 1, "the group shares the work");
}

#[cfg(feature = "alloc")]
#[test]
fn credit_is_regranted_as_deliveries_are_consumed() {
    let mut cc = Config::default();
    cc.subscription_credit = 4;
    let mut hub = Hub {
        pairs: vec![Pair::new(cc, Config::default())],
        router: crate::router::Router::new(Default::default()),
        other: Vec::new(),
    };
    hub.pairs[0].drive();
    hub.pairs[0].take_server();
    hub.pairs[0]
        .client
        .subscribe("t", None, OverflowPolicy::Wait)
        .unwrap();
    hub.pump();
    for i in 0..50u8 {
        hub.pairs[0]
            .client
            .publish("t", &[i], Priority::Normal)
            .unwrap();
    }
    hub.pump();
    let got = deliveries(&hub.pairs[0].take_client());
    assert_eq!(got.len(), 50, "flow control paced, nothing lost");
    assert!(got.iter().enumerate().all(|(i, d)| d.2 == [i as u8]));
}

#[test]
fn server_never_exceeds_credit_and_client_enforces_it() {
    let mut cc = Config::default();
    cc.subscription_credit = 2;
    let mut p = Pair::new(cc, Config::default());
    p.drive();
    let sub = p
        .client
        .subscribe("t", None, OverflowPolicy::DropNewest)
        .unwrap();
    p.drive();
    p.server.deliver(sub, b"t", b"1", Priority::Normal).unwrap();
    p.server.deliver(sub, b"t", b"2", Priority::Normal).unwrap();
    assert_eq!(
        p.server.deliver(sub, b"t", b"3", Priority::Normal),
        Err(Error::Blocked)
    );
    p.drive();
    // The client re-granted after consuming half its window.
    assert!(p.server.deliver(sub, b"t", b"3", Priority::Normal).is_ok());
    // A hostile server delivering beyond credit is refused.
    let mut p = Pair::new(Config::default(), Config::default());
    p.drive();
    let mut cc = Config::default();
    cc.subscription_credit = 1;
    let mut p2 = Pair::new(cc, Config::default());
    p2.drive();
    let sub = p2
        .client
        .subscribe("t", None, OverflowPolicy::Wait)
        .unwrap();
    p2.drive();
    let d = Frame::Deliver {
        sub_id: sub.get(),
        topic: b"t",
        payload: b"x",
    };
    // Credit 1 and two deliveries in one record: the second exceeds the grant.
    p2.inject_to_client(&[d, d]);
    assert_eq!(
        closed(&p2.take_client()).unwrap().code,
        ErrorCode::FLOW_CONTROL_ERROR
    );
    let _ = &mut p;
}

#[test]
fn drop_reports_reach_the_subscriber() {
    let mut p = Pair::connected();
    let sub = p
        .client
        .subscribe("t", None, OverflowPolicy::DropOldest)
        .unwrap();
    p.drive();
    p.server.report_dropped(sub, 7).unwrap();
    p.drive();
    assert!(p.take_client().iter().any(|g| g.ev
        == Event::Dropped {
            sub_id: sub,
            total: 7
        }));
    assert_eq!(p.client.stats().dropped, 7);
}

#[cfg(feature = "alloc")]
#[test]
fn slow_consumer_disconnect_policy() {
    let mut cc = Config::default();
    cc.subscription_credit = 1;
    let mut hub = Hub {
        pairs: vec![Pair::new(cc, Config::default()), Pair::connected()],
        router: crate::router::Router::new(crate::router::RouterConfig {
            max_queue_per_sub: 2,
            ..Default::default()
        }),
        other: Vec::new(),
    };
    hub.pairs[0].drive();
    hub.pairs[0].take_server();
    hub.pairs[0]
        .client
        .subscribe("t", None, OverflowPolicy::Disconnect)
        .unwrap();
    hub.pump();
    // The subscriber stops reading: its client never polls, so no credit returns.
    for i in 0..10u8 {
        hub.router.publish("t", Bytes::from(vec![i])).ok();
    }
    hub.pump();
    let c = closed(&hub.pairs[0].take_client()).unwrap();
    assert_eq!(c.code, ErrorCode::SLOW_CONSUMER);
    assert!(hub.pairs[1].client.is_established(), "others go on");
}

#[test]
fn subscription_limit_and_direction_rules() {
    let mut sc = Config::default();
    sc.params.max_subscriptions = 1;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    assert!(p.client.subscribe("a", None, OverflowPolicy::Wait).is_ok());
    assert_eq!(
        p.client.subscribe("b", None, OverflowPolicy::Wait),
        Err(Error::Blocked),
        "the client respects the server's limit"
    );
    p.drive();
    let sub = |id| Frame::Subscribe {
        sub_id: id,
        policy: 0,
        credit: 1,
        filter: b"b",
        group: b"",
    };
    p.inject_to_server(&[sub(2)]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::SUBSCRIPTION_LIMIT
    );

    let mut p = Pair::connected();
    p.inject_to_client(&[Frame::Publish {
        topic: b"t",
        payload: b"",
    }]);
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::PROTOCOL_ERROR
    );
    assert_eq!(
        p.server.subscribe("x", None, OverflowPolicy::Wait),
        Err(Error::Closed)
    );
    let mut p = Pair::connected();
    assert_eq!(
        p.client.subscribe("a..b", None, OverflowPolicy::Wait),
        Err(Error::Invalid(InvalidKind::Topic))
    );
    assert_eq!(
        p.client.publish("a.*", b"", Priority::Normal),
        Err(Error::Invalid(InvalidKind::Topic))
    );
}
