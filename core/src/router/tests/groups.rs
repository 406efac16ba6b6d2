//! Queue groups: one member per message, round-robin, skipping members
//! without room or credit.

use super::*;

#[test]
fn queue_group_round_robin_exactly_one() {
    let mut r = router();
    for conn in 1..=3 {
        r.subscribe(conn, SubId::new(1), "jobs", Some("workers"), P, 100)
            .unwrap();
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        let out = r.publish("jobs", msg("j")).unwrap();
        assert_eq!(out.matched, 1);
        assert_eq!(out.queued, 1);
        let got: Vec<_> = (1..=3).filter(|&c| r.poll_delivery(c).is_some()).collect();
        assert_eq!(got.len(), 1, "exactly one member gets it");
        order.push(got[0]);
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
}

#[test]
fn queue_group_across_different_filters() {
    // Members of the same group with different filters: only matching
    // members are candidates, and still exactly one gets the message.
    let mut r = router();
    r.subscribe(1, SubId::new(1), "a.*", Some("g"), P, 100)
        .unwrap();
    r.subscribe(2, SubId::new(1), "a.>", Some("g"), P, 100)
        .unwrap();
    r.subscribe(3, SubId::new(1), "b", Some("g"), P, 100)
        .unwrap();
    let mut hits = [0; 4];
    for _ in 0..4 {
        assert_eq!(r.publish("a.x", msg("m")).unwrap().matched, 1);
        for c in 1..=3 {
            hits[c as usize] += drain(&mut r, c).len();
        }
    }
    assert_eq!(hits, [0, 2, 2, 0]);
}

#[test]
fn queue_group_skips_member_with_full_queue() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 2,
        ..RouterConfig::default()
    });
    // Member 1 has no credit and will fill up; member 2 has no credit
    // either but we drain it by granting credit as we go.
    r.subscribe(1, SubId::new(1), "jobs", Some("g"), P, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "jobs", Some("g"), P, 0)
        .unwrap();
    for _ in 0..4 {
        r.publish("jobs", msg("j")).unwrap();
    }
    // Without credit anywhere, plain round-robin by room: 2 each.
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().queued, 2);
    assert_eq!(r.sub_stats(2, SubId::new(1)).unwrap().queued, 2);
    r.add_credit(2, SubId::new(1), 100).unwrap();
    assert_eq!(drain(&mut r, 2).len(), 2);
    for _ in 0..10 {
        let out = r.publish("jobs", msg("j")).unwrap();
        assert_eq!(out.dropped, 0);
        assert_eq!(drain(&mut r, 2).len(), 1);
    }
    let s1 = r.sub_stats(1, SubId::new(1)).unwrap();
    assert_eq!((s1.queued, s1.dropped), (2, 0), "full member was skipped");
}

#[test]
fn queue_group_prefers_member_with_credit() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "jobs", Some("g"), P, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "jobs", Some("g"), P, 3)
        .unwrap();
    for _ in 0..3 {
        r.publish("jobs", msg("j")).unwrap();
    }
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().queued, 0);
    assert_eq!(r.sub_stats(2, SubId::new(1)).unwrap().queued, 3);
    // Member 2's credit window is now used up: member 1 takes the next.
    r.publish("jobs", msg("j")).unwrap();
    assert_eq!(r.sub_stats(1, SubId::new(1)).unwrap().queued, 1);
}

#[test]
fn all_members_full_applies_policy_of_member_in_turn() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 1,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "jobs", Some("g"), P, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "jobs", Some("g"), P, 0)
        .unwrap();
    r.publish("jobs", msg("j")).unwrap();
    r.publish("jobs", msg("j")).unwrap();
    let out = r.publish("jobs", msg("j")).unwrap();
    assert_eq!(
        out,
        PublishOutcome {
            matched: 1,
            queued: 0,
            dropped: 1
        }
    );
    let dropped = r.sub_stats(1, SubId::new(1)).unwrap().dropped
        + r.sub_stats(2, SubId::new(1)).unwrap().dropped;
    assert_eq!(dropped, 1);
}

#[test]
fn plain_and_group_on_same_topic() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "t", None, P, 100).unwrap();
    r.subscribe(2, SubId::new(1), "t", Some("g"), P, 100)
        .unwrap();
    r.subscribe(3, SubId::new(1), "t", Some("g"), P, 100)
        .unwrap();
    r.subscribe(4, SubId::new(1), "t", Some("h"), P, 100)
        .unwrap();
    let out = r.publish("t", msg("m")).unwrap();
    assert_eq!(out.matched, 3);
    assert_eq!(drain(&mut r, 1).len(), 1);
    assert_eq!(drain(&mut r, 2).len() + drain(&mut r, 3).len(), 1);
    assert_eq!(drain(&mut r, 4).len(), 1);
}

#[test]
fn wait_member_of_group_is_skipped_when_another_has_room() {
    let mut r = Router::new(RouterConfig {
        max_queue_per_sub: 1,
        ..RouterConfig::default()
    });
    r.subscribe(1, SubId::new(1), "t", Some("g"), OverflowPolicy::Wait, 0)
        .unwrap();
    r.subscribe(2, SubId::new(1), "t", Some("g"), OverflowPolicy::Wait, 0)
        .unwrap();
    r.publish("t", msg("1")).unwrap();
    r.publish("t", msg("2")).unwrap();
    assert_eq!(r.publish("t", msg("3")), Err(RouterError::Blocked));
    r.add_credit(2, SubId::new(1), 1).unwrap();
    assert!(r.poll_delivery(2).is_some());
    assert!(drain_actions(&mut r).contains(&RouterAction::Unblocked));
    // Member 1 is next in turn but full: member 2 takes it.
    assert_eq!(r.publish("t", msg("3")).unwrap().queued, 1);
    assert_eq!(r.sub_stats(2, SubId::new(1)).unwrap().queued, 1);
}
