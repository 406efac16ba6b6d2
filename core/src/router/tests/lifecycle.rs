//! Removing connections, and failed calls leaving the router unchanged.

use super::*;

#[test]
fn remove_connection_cleans_up() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "a.b", None, P, 10).unwrap();
    r.subscribe(1, SubId::new(2), "a.*", Some("g"), P, 10)
        .unwrap();
    r.subscribe(1, SubId::new(3), "a.>", None, OverflowPolicy::Wait, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "a.b", None, P, 10).unwrap();
    r.publish("a.b", msg("m")).unwrap();
    assert_eq!(r.remove_connection(1), 3);
    assert_eq!(r.remove_connection(1), 0);
    assert_eq!(r.subscription_count(), 1);
    assert_eq!(r.connection_count(), 1);
    assert!(r.groups.is_empty() && r.group_ids.is_empty());
    // Only conn 2's Ready remains.
    assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 2 }]);
    assert!(r.poll_delivery(1).is_none());
    assert_eq!(drain(&mut r, 2).len(), 1);
    assert_eq!(receivers(&mut r, "a.b"), vec![(2, 1)]);
    r.remove_connection(2);
    assert!(r.is_empty());
    assert!(r.conns.is_empty());
    assert!(r.root.is_empty());
    assert!(r.actions.is_empty());
}

#[test]
fn errors_leave_state_unchanged() {
    let mut r = Router::new(RouterConfig {
        max_subs_per_conn: 2,
        max_subs_total: 3,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "a", None, P, 1).unwrap();
    let nodes = r.root.node_count();
    assert_eq!(
        r.subscribe(1, SubId::new(1), "b", Some("g"), P, 1),
        Err(RouterError::DuplicateSubscription)
    );
    assert_eq!(
        r.subscribe(1, SubId::new(2), "a..b", Some("g"), P, 1),
        Err(RouterError::InvalidFilter(TopicError::EmptyLevel))
    );
    assert_eq!(
        r.subscribe(1, SubId::new(2), "b", Some("g.h"), P, 1),
        Err(RouterError::InvalidQueueGroup(TopicError::InvalidChar))
    );
    assert_eq!(r.root.node_count(), nodes);
    assert!(r.groups.is_empty());
    r.subscribe(1, SubId::new(2), "b", None, P, 1).unwrap();
    assert_eq!(
        r.subscribe(1, SubId::new(3), "c", Some("g"), P, 1),
        Err(RouterError::TooManySubscriptions)
    );
    r.subscribe(2, SubId::new(1), "c", None, P, 1).unwrap();
    assert_eq!(
        r.subscribe(3, SubId::new(1), "d", Some("g"), P, 1),
        Err(RouterError::TooManySubscriptions)
    );
    assert_eq!(r.subscription_count(), 3);
    assert_eq!(r.connection_count(), 2);
    assert!(r.groups.is_empty());
    assert_eq!(receivers(&mut r, "d"), vec![]);
    assert_eq!(receivers(&mut r, "c"), vec![(2, 1)]);
    assert_eq!(
        r.unsubscribe(1, SubId::new(9)),
        Err(RouterError::UnknownSubscription)
    );
    assert_eq!(
        r.unsubscribe(9, SubId::new(1)),
        Err(RouterError::UnknownSubscription)
    );
    assert_eq!(r.subscription_count(), 3);
    // Original subscription still works and the id is reusable after
    // unsubscribing.
    r.unsubscribe(1, SubId::new(1)).unwrap();
    r.subscribe(1, SubId::new(1), "a", None, P, 1).unwrap();
    assert_eq!(receivers(&mut r, "a"), vec![(1, 1)]);
}
