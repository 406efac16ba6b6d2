//! Server-side publish/subscribe router.
//!
//! [`Router`] is a deterministic, sans-IO component: it has no clock, no
//! randomness and no threads. A server runtime feeds it subscription changes
//! and published messages, then drains two outputs:
//!
//! * [`Router::poll_delivery`] hands out, per connection, the next message a
//!   subscriber is allowed to receive (it has credit for it);
//! * [`Router::poll_action`] tells the runtime whom to wake
//!   ([`RouterAction::Ready`]), whom to close as a slow consumer
//!   ([`RouterAction::Disconnect`]) and when a refused publisher may retry
//!   ([`RouterAction::Unblocked`]).
//!
//! # Model
//!
//! Each subscription owns a bounded FIFO of pending messages and a credit
//! (how many more messages its subscriber may receive). A published message
//! is appended to the queue of every matching plain subscription and of one
//! member per matching queue group. The queue bound (count and payload
//! bytes, see [`RouterConfig`]) covers every message the router holds for the
//! subscription, whether or not the subscriber currently has credit for it,
//! so the router's memory is bounded whatever the peers do. When a queue is
//! full, the subscription's [`OverflowPolicy`] decides what happens.
//!
//! Topics are matched with a token trie, so publishing costs
//! O(topic depth × log fan-out + matches), independent of the total number of
//! subscriptions. The topic of a published message is copied once per
//! publish, and so is a payload shorter than [`COPY_BELOW`] (into the same
//! allocation), so that what a queue holds is what it counts; every subscriber
//! gets a reference-counted [`Bytes`] handle to the one copy.
//!
//! Determinism: all internal collections are ordered (`BTreeMap`,
//! `BTreeSet`, `VecDeque`), so the same sequence of calls always yields the
//! same deliveries and actions, which keeps runtimes and conformance tests
//! reproducible.
//!
//! # Layout
//!
//! This file holds the public types and [`Router`]'s API; `trie.rs` the topic
//! trie, `plan.rs` publish planning (fan-out, queue groups, the all-or-nothing
//! commit), `queue.rs` the per-subscription queues with their credit, overflow
//! policies and drop notes; `tests/` the tests by concern.

mod plan;
mod queue;
#[cfg(test)]
mod tests;
mod trie;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::mem;

use bytes::Bytes;

use crate::topic::{self, TopicError, MAX_TOPIC_LEVELS, SEPARATOR};
use plan::{Group, Plan};
pub use queue::COPY_BELOW;
use queue::{Conn, Sub};
use trie::Node;

/// Caller-assigned key identifying one client connection.
pub type ConnKey = u64;

/// Subscription id chosen by the subscribing connection, unique within that
/// connection: the id the connection reports in
/// [`Event::Subscribed`](crate::conn::Event::Subscribed), re-exported here so
/// router callers need not import it from the crate root.
pub use crate::ids::SubId;

/// A subscription's global identity.
type SubKey = (ConnKey, SubId);

/// Interned queue group name.
type GroupId = u64;

/// What the trie stores per subscription. The group travels with the key so
/// that a publish can partition its matches without extra lookups.
type Entry = (Option<GroupId>, SubKey);

/// What happens when a message is routed to a subscription whose queue is full
/// (by message count or by bytes): the one policy type of the crate, also carried in
/// SUBSCRIBE. `Wait` refuses the whole publish with [`RouterError::Blocked`] and emits
/// [`RouterAction::Unblocked`] once room appears; `Disconnect` drops the message and
/// asks for the subscriber's connection to be closed ([`RouterAction::Disconnect`]).
pub use crate::config::OverflowPolicy;

/// Resource limits of a [`Router`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Maximum number of messages held per subscription (default 1024).
    pub max_queue_per_sub: usize,
    /// Maximum total payload bytes held per subscription (default 1 MiB).
    /// A message whose payload alone exceeds this can never be held and is
    /// dropped for that subscription whatever its policy. The count is of bytes
    /// the router actually retains: payloads under [`COPY_BELOW`] are copied
    /// (a slice of a received record would keep the whole record alive), longer
    /// ones are held as given and are expected to own their buffer, as reassembled
    /// messages from a connection do.
    pub max_queue_bytes_per_sub: usize,
    /// Maximum number of subscriptions per connection (default 1024).
    pub max_subs_per_conn: usize,
    /// Maximum number of subscriptions in the router (default 1 000 000).
    pub max_subs_total: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_queue_per_sub: 1024,
            max_queue_bytes_per_sub: 1024 * 1024,
            max_subs_per_conn: 1024,
            max_subs_total: 1_000_000,
        }
    }
}

/// Errors returned by [`Router`] operations. A call that returns an error
/// leaves the router unchanged (except that [`RouterError::Blocked`] arms the
/// [`RouterAction::Unblocked`] notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterError {
    /// The subscription filter is not a valid filter.
    InvalidFilter(TopicError),
    /// The publish topic is not a valid topic.
    InvalidTopic(TopicError),
    /// The queue group name is not a valid single token.
    InvalidQueueGroup(TopicError),
    /// The connection already has a subscription with this id.
    DuplicateSubscription,
    /// A per-connection or global subscription limit would be exceeded.
    TooManySubscriptions,
    /// The connection has no subscription with this id.
    UnknownSubscription,
    /// A [`OverflowPolicy::Wait`] subscription has no room; the publish was
    /// refused as a whole. Retry after [`RouterAction::Unblocked`].
    Blocked,
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::InvalidFilter(e) => write!(f, "invalid filter: {e}"),
            RouterError::InvalidTopic(e) => write!(f, "invalid topic: {e}"),
            RouterError::InvalidQueueGroup(e) => write!(f, "invalid queue group: {e}"),
            RouterError::DuplicateSubscription => f.write_str("duplicate subscription id"),
            RouterError::TooManySubscriptions => f.write_str("too many subscriptions"),
            RouterError::UnknownSubscription => f.write_str("unknown subscription"),
            RouterError::Blocked => f.write_str("a subscriber queue is full; publish blocked"),
        }
    }
}

impl core::error::Error for RouterError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            RouterError::InvalidFilter(e)
            | RouterError::InvalidTopic(e)
            | RouterError::InvalidQueueGroup(e) => Some(e),
            _ => None,
        }
    }
}

/// Result of a successful [`Router::publish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Number of subscriptions the message was routed to: every matching
    /// plain subscription plus one member per matching queue group.
    pub matched: u32,
    /// Number of those subscriptions now holding the message (deliverable
    /// now or once the subscriber grants credit).
    pub queued: u32,
    /// Number of messages dropped by overflow policies during this publish:
    /// the new message for `DropNewest`, `Disconnect` or an oversized
    /// payload, plus each old message evicted by `DropOldest`.
    pub dropped: u32,
}

/// A message handed to a connection by [`Router::poll_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The subscription (of the polled connection) it is delivered on.
    pub sub_id: SubId,
    /// The topic it was published to (shared by all its deliveries).
    pub topic: Bytes,
    /// The payload (shared by all its deliveries; copied once at publish when
    /// shorter than [`COPY_BELOW`], otherwise the publisher's bytes).
    pub payload: Bytes,
}

/// Something the runtime must act on, from [`Router::poll_action`].
///
/// The action queue is deduplicated: at most one pending `Ready` and one
/// `Disconnect` per connection, and at most one pending `Unblocked`, so it
/// holds at most `2 × connections + 1` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterAction {
    /// The connection went from having nothing deliverable to having
    /// something deliverable: call [`Router::poll_delivery`] for it until it
    /// returns `None`. (Edge-triggered: no new `Ready` is emitted while
    /// deliveries remain.)
    Ready {
        /// The connection to wake.
        conn: ConnKey,
    },
    /// A [`OverflowPolicy::Disconnect`] subscription overflowed: close the
    /// connection with a slow-consumer error, then call
    /// [`Router::remove_connection`]. Emitted at most once per connection.
    Disconnect {
        /// The slow connection.
        conn: ConnKey,
        /// The subscription that overflowed first.
        sub_id: SubId,
    },
    /// Room appeared in a [`OverflowPolicy::Wait`] queue that refused a
    /// publish: publishers that got [`RouterError::Blocked`] may retry.
    Unblocked,
    /// A subscription's overflow policy dropped messages: tell the subscriber
    /// (SUB_DROPPED). At most one is queued per subscription; `total` is the
    /// running count when the action is polled.
    Dropped {
        /// The subscriber's connection.
        conn: ConnKey,
        /// Its subscription.
        sub_id: SubId,
        /// Messages dropped for it so far.
        total: u64,
    },
}

/// Counters and state of one subscription, from [`Router::sub_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubStats {
    /// Messages handed out by [`Router::poll_delivery`].
    pub delivered: u64,
    /// Messages dropped by the overflow policy (or because they could never
    /// fit).
    pub dropped: u64,
    /// Messages currently held.
    pub queued: usize,
    /// Payload bytes currently held.
    pub queued_bytes: usize,
    /// Remaining credit.
    pub credit: u32,
}

/// The publish/subscribe router. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct Router {
    config: RouterConfig,
    root: Node,
    conns: BTreeMap<ConnKey, Conn>,
    sub_count: usize,
    group_ids: BTreeMap<Box<str>, GroupId>,
    groups: BTreeMap<GroupId, Group>,
    next_group_id: GroupId,
    actions: VecDeque<RouterAction>,
    /// Wait-policy subscriptions that refused a publish since the last
    /// `Unblocked`. Only live subscriptions are kept, so it is bounded.
    waiting: BTreeSet<SubKey>,
    unblocked_pending: bool,
    // Scratch buffers reused across publishes so that routing bookkeeping
    // does not allocate in the steady state.
    scratch_matches: Vec<Entry>,
    scratch_targets: Vec<SubKey>,
    scratch_cursors: Vec<(GroupId, SubKey)>,
    scratch_watch: Vec<SubKey>,
}

impl Router {
    /// Creates an empty router with the given limits.
    pub fn new(config: RouterConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The router's limits.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Number of live subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.sub_count
    }

    /// Number of connections with at least one subscription.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether the router has no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.sub_count == 0
    }

    /// Adds subscription `sub_id` of connection `conn` on `filter`.
    ///
    /// With `queue_group`, the subscription joins the named group: each
    /// message matching any member is given to only one member of the group.
    /// `initial_credit` is how many messages the subscriber may receive
    /// before it must call [`Router::add_credit`].
    ///
    /// # Errors
    ///
    /// [`RouterError::InvalidFilter`], [`RouterError::InvalidQueueGroup`],
    /// [`RouterError::DuplicateSubscription`] or
    /// [`RouterError::TooManySubscriptions`]; the router is then unchanged.
    pub fn subscribe(
        &mut self,
        conn: ConnKey,
        sub_id: SubId,
        filter: &str,
        queue_group: Option<&str>,
        policy: OverflowPolicy,
        initial_credit: u32,
    ) -> Result<(), RouterError> {
        // Every check happens before any mutation so a failure changes
        // nothing.
        topic::validate_filter(filter).map_err(RouterError::InvalidFilter)?;
        if let Some(name) = queue_group {
            topic::validate_queue_group(name).map_err(RouterError::InvalidQueueGroup)?;
        }
        let existing = self.conns.get(&conn);
        if existing.is_some_and(|c| c.subs.contains_key(&sub_id)) {
            return Err(RouterError::DuplicateSubscription);
        }
        if existing.map_or(0, |c| c.subs.len()) >= self.config.max_subs_per_conn
            || self.sub_count >= self.config.max_subs_total
        {
            return Err(RouterError::TooManySubscriptions);
        }

        let group = queue_group.map(|name| self.join_group(name));
        self.root.insert(filter, (group, (conn, sub_id)));
        // A fresh subscription has an empty queue, so it is not ready and
        // the ready set needs no update.
        self.conns.entry(conn).or_default().subs.insert(
            sub_id,
            Sub {
                filter: filter.into(),
                group,
                policy,
                credit: initial_credit,
                queue: VecDeque::new(),
                queued_bytes: 0,
                delivered: 0,
                dropped: 0,
                drop_pending: false,
            },
        );
        self.sub_count += 1;
        Ok(())
    }

    /// Removes subscription `sub_id` of `conn`, dropping its queued messages.
    ///
    /// # Errors
    ///
    /// [`RouterError::UnknownSubscription`] if there is no such subscription.
    pub fn unsubscribe(&mut self, conn: ConnKey, sub_id: SubId) -> Result<(), RouterError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(RouterError::UnknownSubscription)?;
        let sub = c
            .subs
            .remove(&sub_id)
            .ok_or(RouterError::UnknownSubscription)?;
        c.ready.remove(&sub_id);
        let conn_now_empty = c.subs.is_empty();
        if sub.drop_pending {
            self.actions.retain(|a| {
                !matches!(a, RouterAction::Dropped { conn: k, sub_id: s, .. } if *k == conn && *s == sub_id)
            });
        }
        self.detach(conn, sub_id, &sub);
        if conn_now_empty {
            // Forget the connection entirely so per-connection state does
            // not accumulate over connection churn.
            if let Some(c) = self.conns.remove(&conn) {
                self.forget_conn_actions(conn, &c);
            }
        }
        Ok(())
    }

    /// Grants `n` more credit (saturating) to subscription `sub_id` of
    /// `conn`. Queued messages become deliverable.
    ///
    /// # Errors
    ///
    /// [`RouterError::UnknownSubscription`] if there is no such subscription.
    pub fn add_credit(&mut self, conn: ConnKey, sub_id: SubId, n: u32) -> Result<(), RouterError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(RouterError::UnknownSubscription)?;
        let sub = c
            .subs
            .get_mut(&sub_id)
            .ok_or(RouterError::UnknownSubscription)?;
        sub.credit = sub.credit.saturating_add(n);
        c.sync_ready(conn, sub_id, &mut self.actions);
        Ok(())
    }

    /// Removes every subscription of `conn` (and any of its pending
    /// actions). Returns how many subscriptions were removed.
    pub fn remove_connection(&mut self, conn: ConnKey) -> usize {
        let Some(c) = self.conns.remove(&conn) else {
            return 0;
        };
        for (&sub_id, sub) in &c.subs {
            self.detach(conn, sub_id, sub);
        }
        self.forget_conn_actions(conn, &c);
        c.subs.len()
    }

    /// Routes a message published to `topic` with `payload`.
    ///
    /// Every matching plain subscription gets the message, and so does one
    /// member of each matching queue group (a group is identified by its
    /// name; its candidates are the members whose filter matches). If a
    /// target's queue is full its [`OverflowPolicy`] applies.
    ///
    /// Queue group selection is round-robin over the matching members in a
    /// fixed order, preferring, in turn: members with room and spare credit
    /// (the message can be delivered right away), members with room, and
    /// finally the next member in turn (whose overflow policy then applies).
    /// So a stuck member does not starve the group.
    ///
    /// # Errors
    ///
    /// * [`RouterError::InvalidTopic`] if `topic` is not a valid topic.
    /// * [`RouterError::Blocked`] if any target has policy
    ///   [`OverflowPolicy::Wait`] and no room. Nothing is enqueued anywhere
    ///   and group rotation does not advance; a [`RouterAction::Unblocked`]
    ///   will be emitted once one of the blocking queues gets room.
    pub fn publish(&mut self, topic: &str, payload: Bytes) -> Result<PublishOutcome, RouterError> {
        topic::validate_topic(topic).map_err(RouterError::InvalidTopic)?;
        // Validation bounds the depth, so a fixed array avoids allocating.
        let mut tokens = [""; MAX_TOPIC_LEVELS];
        let mut depth = 0;
        for (slot, token) in tokens.iter_mut().zip(topic.split(SEPARATOR)) {
            *slot = token;
            depth += 1;
        }

        let mut matches = mem::take(&mut self.scratch_matches);
        let mut targets = mem::take(&mut self.scratch_targets);
        let mut cursors = mem::take(&mut self.scratch_cursors);
        let mut watch = mem::take(&mut self.scratch_watch);
        matches.clear();
        targets.clear();
        cursors.clear();
        watch.clear();

        self.root.collect(&tokens[..depth], &mut matches);
        let mut plan = Plan {
            targets: &mut targets,
            cursors: &mut cursors,
            watch: &mut watch,
        };
        self.plan(&mut matches, &mut plan, payload.len());
        let result = self.commit(topic, &payload, &plan);

        self.scratch_matches = matches;
        self.scratch_targets = targets;
        self.scratch_cursors = cursors;
        self.scratch_watch = watch;
        result
    }

    /// Hands out the next deliverable message for `conn`, consuming one
    /// credit of its subscription. Subscriptions of the connection are served
    /// round-robin; each one in FIFO order. Returns `None` when nothing is
    /// deliverable.
    pub fn poll_delivery(&mut self, conn: ConnKey) -> Option<Delivery> {
        let c = self.conns.get_mut(&conn)?;
        let sub_id = c.next_ready()?;
        c.last_served = Some(sub_id);
        let msg = c.subs.get_mut(&sub_id)?.pop()?;
        c.sync_ready(conn, sub_id, &mut self.actions);
        if self.waiting.contains(&(conn, sub_id)) {
            // A queue that refused a publish just got room.
            self.fire_unblocked();
        }
        Some(Delivery {
            sub_id,
            topic: msg.topic,
            payload: msg.payload,
        })
    }

    /// Returns the next action for the runtime, oldest first.
    pub fn poll_action(&mut self) -> Option<RouterAction> {
        loop {
            let action = self.actions.pop_front()?;
            match action {
                RouterAction::Ready { conn } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.ready_pending = false;
                    }
                }
                RouterAction::Disconnect { conn, .. } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.disconnect_pending = false;
                    }
                }
                RouterAction::Unblocked => self.unblocked_pending = false,
                RouterAction::Dropped { conn, sub_id, .. } => {
                    // A subscription removed meanwhile has nobody to tell.
                    let Some(sub) = self
                        .conns
                        .get_mut(&conn)
                        .and_then(|c| c.subs.get_mut(&sub_id))
                    else {
                        continue;
                    };
                    sub.drop_pending = false;
                    return Some(RouterAction::Dropped {
                        conn,
                        sub_id,
                        total: sub.dropped,
                    });
                }
            }
            return Some(action);
        }
    }

    /// Counters of subscription `sub_id` of `conn`, if it exists.
    pub fn sub_stats(&self, conn: ConnKey, sub_id: SubId) -> Option<SubStats> {
        self.sub(&(conn, sub_id)).map(Sub::stats)
    }

    fn sub(&self, key: &SubKey) -> Option<&Sub> {
        self.conns.get(&key.0)?.subs.get(&key.1)
    }

    /// Undoes everything `subscribe` registered outside the connection entry.
    fn detach(&mut self, conn: ConnKey, sub_id: SubId, sub: &Sub) {
        let found = self
            .root
            .remove(sub.filter.split(SEPARATOR), &(sub.group, (conn, sub_id)));
        debug_assert!(found, "subscription missing from the trie");
        if let Some(group) = sub.group {
            self.leave_group(group);
        }
        self.sub_count -= 1;
        if self.waiting.remove(&(conn, sub_id)) {
            // The queue that blocked a publisher is gone: a retry may pass.
            self.fire_unblocked();
        }
    }

    /// Drops queued actions of a removed connection so the action queue
    /// stays bounded by the live connections.
    fn forget_conn_actions(&mut self, conn: ConnKey, c: &Conn) {
        // The flags say whether there is anything to find, which keeps the
        // common removal O(1) instead of scanning the queue.
        if c.ready_pending || c.disconnect_pending || c.subs.values().any(|s| s.drop_pending) {
            self.actions.retain(|a| match a {
                RouterAction::Ready { conn: k }
                | RouterAction::Disconnect { conn: k, .. }
                | RouterAction::Dropped { conn: k, .. } => *k != conn,
                RouterAction::Unblocked => true,
            });
        }
    }

    fn fire_unblocked(&mut self) {
        // Wake-all: every blocked publisher retries and re-arms if still
        // blocked, so the set can be forgotten now.
        self.waiting.clear();
        if !self.unblocked_pending {
            self.unblocked_pending = true;
            self.actions.push_back(RouterAction::Unblocked);
        }
    }
}
