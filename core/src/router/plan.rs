//! Publish planning: which subscriptions get a message (every matching plain
//! subscription, one member per matching queue group), decided before anything is
//! mutated so that a publish refused by a `Wait` queue changes nothing; then the
//! commit that fans the message out to the chosen queues.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;

use super::queue::{held_copy, never_fits, Message, Sub};
use super::{Entry, GroupId, OverflowPolicy, PublishOutcome, Router, RouterError, SubKey};

/// A queue group: the members that share its messages, one member per message.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: Box<str>,
    /// Number of subscriptions in the group, to free it with the last one.
    pub(super) members: usize,
    /// Round-robin cursor: the member that got the previous message.
    pub(super) last: Option<SubKey>,
}

/// Routing decisions of one publish, computed before anything is mutated.
pub(super) struct Plan<'a> {
    /// Subscriptions that get the message.
    pub(super) targets: &'a mut Vec<SubKey>,
    /// Queue group cursors to advance if the publish commits.
    pub(super) cursors: &'a mut Vec<(GroupId, SubKey)>,
    /// Members of groups where no member had room: if the publish blocks,
    /// room in any of them is worth an `Unblocked`.
    pub(super) watch: &'a mut Vec<SubKey>,
}

impl Router {
    /// Joins (creating if needed) the queue group `name`; returns its id.
    pub(super) fn join_group(&mut self, name: &str) -> GroupId {
        if let Some(&id) = self.group_ids.get(name) {
            if let Some(group) = self.groups.get_mut(&id) {
                group.members += 1;
            }
            return id;
        }
        let id = self.next_group_id;
        // u64 ids cannot realistically wrap; ids are never reused anyway
        // while alive because `group_ids` is checked first.
        self.next_group_id = self.next_group_id.wrapping_add(1);
        self.group_ids.insert(name.into(), id);
        self.groups.insert(
            id,
            Group {
                name: name.into(),
                members: 1,
                last: None,
            },
        );
        id
    }

    /// Leaves group `id`, freeing it with its last member.
    pub(super) fn leave_group(&mut self, id: GroupId) {
        let Some(group) = self.groups.get_mut(&id) else {
            return;
        };
        group.members -= 1;
        if group.members == 0 {
            if let Some(group) = self.groups.remove(&id) {
                self.group_ids.remove(&group.name);
            }
        }
    }

    /// Turns the trie matches into delivery targets, choosing one member per
    /// queue group. Does not mutate the router: group cursors to advance are
    /// returned in `cursors` and applied only if the publish commits.
    pub(super) fn plan(&self, matches: &mut [Entry], plan: &mut Plan<'_>, len: usize) {
        // Sorting puts plain subscriptions (group `None`) first and makes
        // each group's members contiguous and in a stable key order, which
        // round-robin relies on.
        matches.sort_unstable();
        let mut rest: &[Entry] = matches;
        while let Some(&(group, key)) = rest.first() {
            let Some(group) = group else {
                plan.targets.push(key);
                rest = &rest[1..];
                continue;
            };
            let run = rest.partition_point(|e| e.0 == Some(group));
            let (members, tail) = rest.split_at(run);
            rest = tail;
            let (chosen, has_room) = self.choose_member(group, members, len);
            plan.targets.push(chosen);
            plan.cursors.push((group, chosen));
            if !has_room {
                // Room in any member would let a retry through.
                plan.watch.extend(members.iter().map(|e| e.1));
            }
        }
    }

    /// Picks the member that gets the message and whether it has room.
    pub(super) fn choose_member(
        &self,
        group: GroupId,
        members: &[Entry],
        len: usize,
    ) -> (SubKey, bool) {
        let n = members.len();
        // Start right after the previously chosen member (members are
        // sorted by key), wrapping around.
        let start = match self.groups.get(&group).and_then(|g| g.last) {
            Some(last) => members.partition_point(|e| e.1 <= last) % n,
            None => 0,
        };
        let in_turn = || (0..n).map(move |i| members[(start + i) % n].1);
        let config = &self.config;
        let pick = |want_credit: bool| {
            in_turn().find(|key| {
                self.sub(key)
                    .is_some_and(|s| s.fits(len, config) && (!want_credit || s.has_spare_credit()))
            })
        };
        match pick(true).or_else(|| pick(false)) {
            Some(key) => (key, true),
            None => (members[start].1, false),
        }
    }

    /// Applies a plan: refuses the whole publish if a `Wait` target is full,
    /// otherwise advances the group cursors and offers the message to every
    /// target, whose overflow policy decides what a full queue does.
    pub(super) fn commit(
        &mut self,
        topic: &str,
        payload: &Bytes,
        plan: &Plan<'_>,
    ) -> Result<PublishOutcome, RouterError> {
        let targets: &[SubKey] = plan.targets;
        let len = payload.len();
        let config = self.config;
        // Check every Wait target before touching anything: the publish is
        // all or nothing. An oversized message never blocks (no amount of
        // draining would make room), it is dropped instead.
        if !never_fits(len, &config) {
            let would_block = |s: &Sub| s.policy == OverflowPolicy::Wait && !s.fits(len, &config);
            if targets.iter().any(|k| self.sub(k).is_some_and(would_block)) {
                for key in targets {
                    if self.sub(key).is_some_and(would_block) {
                        self.waiting.insert(*key);
                    }
                }
                self.waiting.extend(plan.watch.iter().copied());
                return Err(RouterError::Blocked);
            }
        }

        for &(group, key) in plan.cursors.iter() {
            if let Some(g) = self.groups.get_mut(&group) {
                g.last = Some(key);
            }
        }

        let mut outcome = PublishOutcome::default();
        if targets.is_empty() {
            return Ok(outcome);
        }
        let (topic, payload) = held_copy(topic, payload);
        let msg = Message { topic, payload };
        for &(conn_key, sub_id) in targets {
            let Some(conn) = self.conns.get_mut(&conn_key) else {
                continue;
            };
            conn.offer(
                conn_key,
                sub_id,
                &msg,
                &config,
                &mut self.actions,
                &mut outcome,
            );
        }
        Ok(outcome)
    }
}
