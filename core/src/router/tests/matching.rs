//! Topic matching through the trie: literals and wildcards, invalid topics, the
//! trie shrinking back as subscriptions go, and agreement with `filter_matches`.

use super::*;

#[test]
fn literal_star_and_tail_matching() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "a.b.c", None, P, 100)
        .unwrap();
    r.subscribe(1, SubId::new(2), "a.*.c", None, P, 100)
        .unwrap();
    r.subscribe(1, SubId::new(3), "a.>", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(4), "*", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(5), ">", None, P, 100).unwrap();

    assert_eq!(
        receivers(&mut r, "a.b.c"),
        vec![(1, 1), (1, 2), (1, 3), (1, 5)]
    );
    assert_eq!(receivers(&mut r, "a.x.c"), vec![(1, 2), (1, 3), (1, 5)]);
    assert_eq!(receivers(&mut r, "a.b"), vec![(1, 3), (1, 5)]);
    assert_eq!(receivers(&mut r, "a.b.c.d"), vec![(1, 3), (1, 5)]);
    assert_eq!(receivers(&mut r, "q"), vec![(1, 4), (1, 5)]);
    assert_eq!(receivers(&mut r, "b.b.c"), vec![(1, 5)]);
}

#[test]
fn tail_does_not_match_zero_tokens() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), "a.>", None, P, 100).unwrap();
    r.subscribe(1, SubId::new(2), "a.b.>", None, P, 100)
        .unwrap();
    let out = r.publish("a", msg("x")).unwrap();
    assert_eq!(out.matched, 0);
    assert_eq!(receivers(&mut r, "a.b"), vec![(1, 1)]);
    assert_eq!(receivers(&mut r, "a.b.c"), vec![(1, 1), (1, 2)]);
}

#[test]
fn invalid_topic_is_rejected() {
    let mut r = router();
    r.subscribe(1, SubId::new(1), ">", None, P, 1).unwrap();
    assert_eq!(
        r.publish("a.*", msg("x")),
        Err(RouterError::InvalidTopic(TopicError::WildcardInTopic))
    );
    assert_eq!(
        r.publish("", msg("x")),
        Err(RouterError::InvalidTopic(TopicError::Empty))
    );
    assert_eq!(total_queued(&r), 0);
}

#[test]
fn churn_leaves_trie_empty() {
    let mut r = Router::new(RouterConfig {
        max_subs_per_conn: 10_000,
        ..RouterConfig::default()
    });
    let filters: Vec<String> = (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("t{i}.x"),
            1 => format!("*.t{i}.>"),
            2 => format!("a.t{}.*.{i}", i % 7),
            _ => format!("t{i}"),
        })
        .collect();
    for (i, f) in filters.iter().enumerate() {
        let group = (i % 3 == 0).then(|| format!("g{i}"));
        let conn = (i % 5) as ConnKey;
        r.subscribe(conn, SubId::new(i as u64), f, group.as_deref(), P, 1)
            .unwrap();
    }
    assert!(r.root.node_count() > 10_000);
    for (i, _) in filters.iter().enumerate() {
        r.unsubscribe((i % 5) as ConnKey, SubId::new(i as u64))
            .unwrap();
    }
    assert!(r.root.is_empty());
    assert_eq!(r.root.node_count(), 1);
    assert!(r.conns.is_empty());
    assert!(r.groups.is_empty() && r.group_ids.is_empty());
    assert!(r.is_empty());
}

#[derive(Clone, Debug)]
struct MatchCase {
    filters: Vec<String>,
    topics: Vec<String>,
    remove_mask: u64,
}

impl Arbitrary for MatchCase {
    fn arbitrary(g: &mut Gen) -> Self {
        let nf = usize::from(u8::arbitrary(g) % 24) + 1;
        let nt = usize::from(u8::arbitrary(g) % 8) + 1;
        MatchCase {
            filters: (0..nf).map(|_| gen_filter(g)).collect(),
            topics: (0..nt).map(|_| gen_topic(g)).collect(),
            remove_mask: u64::arbitrary(g),
        }
    }
}

fn check_agreement(r: &mut Router, live: &[(SubId, &str)], topic: &str) -> bool {
    let mut expected: Vec<(ConnKey, u64)> = live
        .iter()
        .filter(|(_, f)| filter_matches(f, topic))
        .map(|&(id, _)| (1, id.get()))
        .collect();
    expected.sort_unstable();
    receivers(r, topic) == expected
}

#[test]
fn prop_trie_agrees_with_filter_matches() {
    fn prop(case: MatchCase) -> bool {
        let mut r = router();
        let mut live: Vec<(SubId, &str)> = Vec::new();
        for (i, f) in case.filters.iter().enumerate() {
            if validate_filter_ok(f) {
                r.subscribe(1, SubId::new(i as u64), f, None, P, u32::MAX)
                    .unwrap();
                live.push((SubId::new(i as u64), f));
            }
        }
        if !case
            .topics
            .iter()
            .all(|t| check_agreement(&mut r, &live, t))
        {
            return false;
        }
        // Remove a random subset and check again: removal must not
        // disturb the remaining subscriptions.
        live.retain(|&(id, _)| {
            let remove = case.remove_mask & (1 << (id.get() % 64)) != 0;
            if remove {
                r.unsubscribe(1, id).unwrap();
            }
            !remove
        });
        if !case
            .topics
            .iter()
            .all(|t| check_agreement(&mut r, &live, t))
        {
            return false;
        }
        for &(id, _) in &live {
            r.unsubscribe(1, id).unwrap();
        }
        r.root.is_empty()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(MatchCase) -> bool);
}
