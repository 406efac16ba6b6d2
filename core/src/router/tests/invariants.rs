//! Random operation sequences keep every structural invariant and memory bound.

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Subscribe {
        conn: ConnKey,
        sub: SubId,
        filter: String,
        group: bool,
        policy: OverflowPolicy,
        credit: u32,
    },
    Unsubscribe(ConnKey, SubId),
    Publish(String, usize),
    Poll(ConnKey),
    Credit(ConnKey, SubId, u32),
    Action,
    Remove(ConnKey),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let conn = ConnKey::from(u8::arbitrary(g) % 3);
        let sub = SubId::new(u64::from(u8::arbitrary(g) % 4));
        let small = u32::from(u8::arbitrary(g) % 4);
        match u8::arbitrary(g) % 10 {
            0 | 1 => Op::Subscribe {
                conn,
                sub,
                filter: gen_filter(g),
                group: bool::arbitrary(g),
                policy: *g
                    .choose(&[
                        OverflowPolicy::Wait,
                        OverflowPolicy::DropOldest,
                        OverflowPolicy::DropNewest,
                        OverflowPolicy::Disconnect,
                    ])
                    .unwrap(),
                credit: small,
            },
            2 => Op::Unsubscribe(conn, sub),
            3..=5 => Op::Publish(gen_topic(g), usize::from(u8::arbitrary(g) % 24)),
            6 => Op::Poll(conn),
            7 => Op::Credit(conn, sub, small),
            8 => Op::Action,
            _ => Op::Remove(conn),
        }
    }
}

/// Checks every structural invariant and the memory bounds.
fn invariants_hold(r: &Router) -> bool {
    let cfg = r.config;
    let mut subs = 0;
    let mut members: BTreeMap<GroupId, usize> = BTreeMap::new();
    for (&ck, c) in &r.conns {
        if c.subs.is_empty() {
            return false;
        }
        for (&id, s) in &c.subs {
            subs += 1;
            let bytes: usize = s.queue.iter().map(|m| m.payload.len()).sum();
            if s.queue.len() > cfg.max_queue_per_sub
                // One message may exceed the budget, alone in its queue.
                || (s.queue.len() > 1 && s.queued_bytes > cfg.max_queue_bytes_per_sub)
                || bytes != s.queued_bytes
                || s.is_ready() != c.ready.contains(&id)
            {
                return false;
            }
            if let Some(g) = s.group {
                *members.entry(g).or_default() += 1;
            }
        }
        if c.ready.iter().any(|id| !c.subs.contains_key(id)) {
            return false;
        }
        let readies = r
            .actions
            .iter()
            .filter(|a| **a == RouterAction::Ready { conn: ck })
            .count();
        let disconnects = r
            .actions
            .iter()
            .filter(|a| matches!(a, RouterAction::Disconnect { conn, .. } if *conn == ck))
            .count();
        if readies != usize::from(c.ready_pending)
            || disconnects != usize::from(c.disconnect_pending)
        {
            return false;
        }
    }
    let unblocked = r
        .actions
        .iter()
        .filter(|a| **a == RouterAction::Unblocked)
        .count();
    let mut trie = Vec::new();
    r.root.collect_all(&mut trie);
    subs == r.sub_count
        && trie.len() == subs
        // Ready and Disconnect once per connection, Dropped once per
        // subscription, Unblocked once.
        && r.actions.len() <= 2 * r.conns.len() + subs + 1
        && unblocked == usize::from(r.unblocked_pending)
        && r.waiting.iter().all(|k| r.sub(k).is_some())
        && r.groups.len() == members.len()
        && r.group_ids.len() == r.groups.len()
        && members
            .iter()
            .all(|(g, n)| r.groups.get(g).is_some_and(|grp| grp.members == *n))
        && (subs > 0 || r.root.is_empty())
}

#[test]
fn prop_bounds_and_invariants_under_random_ops() {
    fn prop(ops: Vec<Op>) -> bool {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 3,
            max_queue_bytes_per_sub: 40,
            max_subs_per_conn: 3,
            max_subs_total: 7,
        });
        for op in ops {
            match op {
                Op::Subscribe {
                    conn,
                    sub,
                    filter,
                    group,
                    policy,
                    credit,
                } => {
                    let count = r.subscription_count();
                    let res = r.subscribe(conn, sub, &filter, group.then_some("g"), policy, credit);
                    if res.is_err() && r.subscription_count() != count {
                        return false;
                    }
                }
                Op::Unsubscribe(conn, sub) => {
                    let _ = r.unsubscribe(conn, sub);
                }
                Op::Publish(topic, len) => {
                    let before: Vec<SubStats> = r
                        .conns
                        .values()
                        .flat_map(|c| c.subs.values().map(Sub::stats))
                        .collect();
                    let res = r.publish(&topic, Bytes::from(vec![0u8; len]));
                    let after: Vec<SubStats> = r
                        .conns
                        .values()
                        .flat_map(|c| c.subs.values().map(Sub::stats))
                        .collect();
                    match res {
                        Err(RouterError::Blocked) if before != after => return false,
                        Ok(out) if out.queued > out.matched => return false,
                        _ => {}
                    }
                }
                Op::Poll(conn) => {
                    let _ = r.poll_delivery(conn);
                }
                Op::Credit(conn, sub, n) => {
                    let _ = r.add_credit(conn, sub, n);
                }
                Op::Action => {
                    let _ = r.poll_action();
                }
                Op::Remove(conn) => {
                    r.remove_connection(conn);
                }
            }
            if !invariants_hold(&r) {
                return false;
            }
            if total_queued(&r) > r.sub_count * r.config.max_queue_per_sub {
                return false;
            }
        }
        true
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<Op>) -> bool);
}
