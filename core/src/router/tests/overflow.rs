//! Full queues and their overflow policies, by count and by bytes.

use super::*;

#[test]
fn drop_newest_policy() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 2,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "t", None, OverflowPolicy::DropNewest, 0)
        .unwrap();
    for p in ["1", "2", "3", "4"] {
        r.publish("t", Bytes::from_static(p.as_bytes())).unwrap();
    }
    let s = r.sub_stats(1, SubId::new(1)).unwrap();
    assert_eq!((s.queued, s.dropped, s.queued_bytes), (2, 2, 2));
    r.add_credit(1, SubId::new(1), 10).unwrap();
    let got: Vec<_> = drain(&mut r, 1).into_iter().map(|d| d.2).collect();
    assert_eq!(got, vec!["1", "2"]);
}

#[test]
fn drop_oldest_policy() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 2,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "t", None, OverflowPolicy::DropOldest, 0)
        .unwrap();
    let mut outs = Vec::new();
    for p in ["1", "2", "3", "4"] {
        outs.push(r.publish("t", Bytes::from_static(p.as_bytes())).unwrap());
    }
    assert_eq!(
        outs[3],
        PublishOutcome {
            matched: 1,
            queued: 1,
            dropped: 1
        }
    );
    let s = r.sub_stats(1, SubId::new(1)).unwrap();
    assert_eq!((s.queued, s.dropped), (2, 2));
    r.add_credit(1, SubId::new(1), 10).unwrap();
    let got: Vec<_> = drain(&mut r, 1).into_iter().map(|d| d.2).collect();
    assert_eq!(got, vec!["3", "4"]);
}

#[test]
fn byte_limit_and_oversized_messages() {
    let mut r = Router::new(RouterConfig {
        max_queue_bytes_per_sub: 10,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "t", None, OverflowPolicy::DropOldest, 0)
        .unwrap();
    r.subscribe(1, SubId::new(2), "t", None, OverflowPolicy::Wait, 0)
        .unwrap();
    r.publish("t", Bytes::from(vec![0u8; 4])).unwrap();
    r.publish("t", Bytes::from(vec![0u8; 4])).unwrap();
    // 8 + 4 > 10: Wait sub blocks the publish.
    assert_eq!(
        r.publish("t", Bytes::from(vec![0u8; 4])),
        Err(RouterError::Blocked)
    );
    r.unsubscribe(1, SubId::new(2)).unwrap();
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Unblocked]);
    // DropOldest evicts both 4-byte messages to fit a 9-byte one.
    let out = r.publish("t", Bytes::from(vec![0u8; 9])).unwrap();
    assert_eq!(
        out,
        PublishOutcome {
            matched: 1,
            queued: 1,
            dropped: 2
        }
    );
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().queued_bytes, 9);
    // A payload larger than the whole budget still reaches an empty queue
    // (DropOldest makes it empty first; a fresh Wait subscription is empty).
    r.subscribe(1, SubId::new(3), "t", None, OverflowPolicy::Wait, 0)
        .unwrap();
    let out = r.publish("t", Bytes::from(vec![0u8; 11])).unwrap();
    assert_eq!(
        out,
        PublishOutcome {
            matched: 2,
            queued: 2,
            dropped: 1
        }
    );
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().queued_bytes, 11);
    assert_eq!(r.sub_stats(1, SubId::new(3)).unwrap().queued_bytes, 11);
    // Behind it, the Wait subscription's queue is over budget: a publish waits.
    assert_eq!(
        r.publish("t", Bytes::from(vec![0u8; 1])),
        Err(RouterError::Blocked)
    );
    assert_eq!(r.sub_stats(1, SubId::new(3)).unwrap().dropped, 0);
}

#[test]
fn disconnect_policy() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 1,
        ..RouterConfig::default()
    });
    r.subscribe(5, SubId::new(1), "t", None, OverflowPolicy::Disconnect, 0)
        .unwrap();
    r.subscribe(5, SubId::new(2), "t", None, OverflowPolicy::Disconnect, 0)
        .unwrap();
    r.publish("t", msg("1")).unwrap();
    let out = r.publish("t", msg("2")).unwrap();
    assert_eq!(
        out,
        PublishOutcome {
            matched: 2,
            queued: 0,
            dropped: 2
        }
    );
    // Only one Disconnect per connection, however often it overflows.
    for _ in 0..10 {
        r.publish("t", msg("3")).unwrap();
    }
    let actions = drain_actions(&mut r);
    let disconnects: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, RouterAction::Disconnect { .. }))
        .collect();
    assert_eq!(
        disconnects,
        vec![&RouterAction::Disconnect {
            conn: 5,
            sub_id: SubId::new(1)
        }]
    );
    // Each subscription's drops are reported once, with the running total.
    assert!(actions.contains(&RouterAction::Dropped {
        conn: 5,
        sub_id: SubId::new(1),
        total: 11
    }));
    assert_eq!(r.sub_stats(5, SubId::new(1)).unwrap().dropped, 11);
    assert_eq!(r.remove_connection(5), 2);
    assert!(r.is_empty());
}

#[test]
fn wait_blocks_whole_publish_then_unblocks_once() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 2,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "t.>", None, OverflowPolicy::Wait, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "t.x", None, OverflowPolicy::DropNewest, 0)
        .unwrap();
    r.subscribe(
        3,
        SubId::new(1),
        "t.*",
        Some("g"),
        OverflowPolicy::DropNewest,
        0,
    )
    .unwrap();
    r.subscribe(
        4,
        SubId::new(1),
        "t.*",
        Some("g"),
        OverflowPolicy::DropNewest,
        0,
    )
    .unwrap();
    r.publish("t.x", msg("1")).unwrap();
    r.publish("t.x", msg("2")).unwrap();
    let before: Vec<_> = [1, 2, 3, 4]
        .map(|c| r.sub_stats(c, SubId::new(1)).unwrap())
        .into();
    let cursor_before = r.groups.values().next().unwrap().last;

    for _ in 0..3 {
        assert_eq!(r.publish("t.x", msg("3")), Err(RouterError::Blocked));
    }
    let after: Vec<_> = [1, 2, 3, 4]
        .map(|c| r.sub_stats(c, SubId::new(1)).unwrap())
        .into();
    assert_eq!(before, after, "nothing enqueued or dropped anywhere");
    assert_eq!(r.groups.values().next().unwrap().last, cursor_before);
    assert!(drain_actions(&mut r).is_empty());

    // Room appears in the Wait queue: exactly one Unblocked.
    r.add_credit(1, SubId::new(1), 10).unwrap();
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 1 }]);
    assert!(r.poll_delivery(1).is_some());
    assert!(r.poll_delivery(1).is_some());
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Unblocked]);
    // The retry goes through; no further Unblocked without a new block.
    let out = r.publish("t.x", msg("3")).unwrap();
    assert_eq!(out.matched, 3);
    assert!(r.poll_delivery(1).is_some());
    assert!(
        !drain_actions(&mut r).contains(&RouterAction::Unblocked),
        "Unblocked only after a Blocked publish"
    );
}
