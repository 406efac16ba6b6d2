//! What a delivery carries, credit gating it, and the `Ready` notifications.

use super::*;

#[test]
fn delivery_contents_and_shared_buffers() {
    let mut r = router();
    r.subscribe(1, SubId::new(7), "t.*", None, P, 10).unwrap();
    r.subscribe(2, SubId::new(8), "t.>", None, P, 10).unwrap();
    let payload = Bytes::from(vec![9u8; 100]);
    let out = r.publish("t.x", payload.clone()).unwrap();
    assert_eq!(
        out,
        PublishOutcome {
            matched: 2,
            queued: 2,
            dropped: 0
        }
    );
    let d1 = r.poll_delivery(1).unwrap();
    let d2 = r.poll_delivery(2).unwrap();
    assert_eq!((d1.sub_id.get(), d2.sub_id.get()), (7, 8));
    assert_eq!(&d1.topic[..], b"t.x");
    // A small payload is copied once, with the topic, and the copy shared:
    // the caller's bytes (perhaps a slice of a whole record) are not kept.
    assert_eq!(&d1.payload[..], &payload[..]);
    assert_ne!(d1.payload.as_ptr(), payload.as_ptr());
    assert_eq!(d2.payload.as_ptr(), d1.payload.as_ptr());
    assert_eq!(d1.topic.as_ptr(), d2.topic.as_ptr());
    // A payload too long for one record is shared, never copied.
    let big = Bytes::from(vec![5u8; COPY_BELOW]);
    r.publish("t.y", big.clone()).unwrap();
    assert_eq!(r.poll_delivery(1).unwrap().payload.as_ptr(), big.as_ptr());
    assert_eq!(r.poll_delivery(2).unwrap().payload.as_ptr(), big.as_ptr());
}

#[test]
fn credit_gates_delivery() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "t", None, P, 0).unwrap();
    r.publish("t", msg("a")).unwrap();
    r.publish("t", msg("b")).unwrap();
    assert!(r.poll_delivery(1).is_none());
    assert!(drain_actions(&mut r).is_empty(), "nothing deliverable yet");
    r.add_credit(1, SubId::new(1), 1).unwrap();
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 1 }]);
    assert_eq!(drain(&mut r, 1), vec![(1, "t".into(), "a".into())]);
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().credit, 0);
    r.add_credit(1, SubId::new(1), u32::MAX).unwrap();
    r.add_credit(1, SubId::new(1), 5).unwrap();
    assert_eq!(drain(&mut r, 1), vec![(1, "t".into(), "b".into())]);
    let s = r.sub_stats(1, SubId::new(1)).unwrap();
    assert_eq!((s.credit, s.delivered, s.queued), (u32::MAX - 1, 2, 0));
    assert_eq!(
        r.add_credit(1, SubId::new(2), 1),
        Err(RouterError::UnknownSubscription)
    );
    assert_eq!(
        r.add_credit(9, SubId::new(1), 1),
        Err(RouterError::UnknownSubscription)
    );
}

#[test]
fn ready_is_edge_triggered_and_deduplicated() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "t", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(2), "t", None, P, 100).unwrap();
    for _ in 0..50 {
        r.publish("t", msg("m")).unwrap();
    }
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 1 }]);
    // Still deliverable: no new Ready on further publishes.
    r.publish("t", msg("m")).unwrap();
    assert!(drain_actions(&mut r).is_empty());
    assert_eq!(drain(&mut r, 1).len(), 102);
    r.publish("t", msg("m")).unwrap();
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 1 }]);
}

#[test]
fn ready_not_duplicated_while_pending() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "t", None, P, 1000).unwrap();
    // Repeated idle -> ready transitions without polling actions.
    for _ in 0..100 {
        r.publish("t", msg("m")).unwrap();
        assert!(r.poll_delivery(1).is_some());
    }
    assert_eq!(r.actions.len(), 1);
}

#[test]
fn poll_delivery_is_fair_across_subscriptions() {
    let mut r = router();
    r.subscribe(1, SubId::new(10), "a", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(20), "b", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(30), "c", None, P, 100).unwrap();
    for _ in 0..3 {
        r.publish("a", msg("a")).unwrap();
    }
    r.publish("b", msg("b")).unwrap();
    for _ in 0..2 {
        r.publish("c", msg("c")).unwrap();
    }
    let ids: Vec<_> = drain(&mut r, 1).into_iter().map(|d| d.0).collect();
    assert_eq!(ids, vec![10, 20, 30, 10, 30, 10]);
}
