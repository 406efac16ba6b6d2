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

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::mem;
use core::ops::Bound;

use bytes::Bytes;

use crate::topic::{self, TopicError, MAX_TOPIC_LEVELS, SEPARATOR, WILDCARD_ONE, WILDCARD_TAIL};

/// Caller-assigned key identifying one client connection.
pub type ConnKey = u64;

/// Subscription id chosen by the subscribing connection, unique within that
/// connection.
pub type SubId = u64;

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

/// A message held for a subscription.
#[derive(Debug, Clone)]
struct Message {
    topic: Bytes,
    payload: Bytes,
}

#[derive(Debug)]
struct Sub {
    /// Kept so the subscription can be found in the trie on removal.
    filter: Box<str>,
    group: Option<GroupId>,
    policy: OverflowPolicy,
    credit: u32,
    queue: VecDeque<Message>,
    /// Sum of the payload lengths in `queue`.
    queued_bytes: usize,
    delivered: u64,
    dropped: u64,
    /// A `Dropped` action for it is queued (at most one at a time).
    drop_pending: bool,
}

impl Sub {
    /// Whether `poll_delivery` may hand out a message from this subscription.
    fn is_ready(&self) -> bool {
        self.credit > 0 && !self.queue.is_empty()
    }

    /// Whether one more message of `len` payload bytes fits in the queue. An
    /// empty queue takes any one message, so a message larger than the byte
    /// budget (up to the connection's maximum message size) is still delivered:
    /// a queue holds at most its budget plus one message.
    fn fits(&self, len: usize, config: &RouterConfig) -> bool {
        self.queue.len() < config.max_queue_per_sub
            && (self.queue.is_empty()
                || self.queued_bytes.saturating_add(len) <= config.max_queue_bytes_per_sub)
    }

    /// Whether a new message would be within the subscriber's credit window,
    /// i.e. deliverable as soon as it is polled rather than parked.
    fn has_spare_credit(&self) -> bool {
        usize::try_from(self.credit).unwrap_or(usize::MAX) > self.queue.len()
    }

    fn stats(&self) -> SubStats {
        SubStats {
            delivered: self.delivered,
            dropped: self.dropped,
            queued: self.queue.len(),
            queued_bytes: self.queued_bytes,
            credit: self.credit,
        }
    }
}

/// Queues one `Dropped` report for a subscription that just dropped a message.
fn note_drop(sub: &mut Sub, actions: &mut VecDeque<RouterAction>, conn: ConnKey, sub_id: SubId) {
    if !sub.drop_pending {
        sub.drop_pending = true;
        actions.push_back(RouterAction::Dropped {
            conn,
            sub_id,
            total: 0,
        });
    }
}

/// Payloads shorter than this are copied into the router's own allocation (with
/// the topic); longer ones are kept as the caller's shared bytes. 64 KiB is above
/// the largest record payload (65 535 bytes), so a payload that came out of one
/// received record is always copied: a slice of a record would keep the whole
/// record (and the receive buffer it was cut from) alive for a payload of a few
/// bytes. A longer payload from a connection is a reassembled message owning a
/// buffer of its own frame, so what the router retains is what it counts.
pub const COPY_BELOW: usize = 64 << 10;

/// The topic and payload as the router holds them, one allocation per publish: the
/// topic is always copied (every target shares the copy); a payload shorter than
/// [`COPY_BELOW`] is copied into the same allocation, a longer one is shared.
fn held_copy(topic: &str, payload: &Bytes) -> (Bytes, Bytes) {
    let t = topic.len();
    if payload.len() >= COPY_BELOW {
        return (Bytes::copy_from_slice(topic.as_bytes()), payload.clone());
    }
    let mut buf = Vec::with_capacity(t + payload.len());
    buf.extend_from_slice(topic.as_bytes());
    buf.extend_from_slice(payload);
    let both = Bytes::from(buf);
    (both.slice(..t), both.slice(t..))
}

/// A message that no subscription could ever hold (queues of zero messages):
/// waiting for room would block forever.
fn never_fits(_len: usize, config: &RouterConfig) -> bool {
    config.max_queue_per_sub == 0
}

#[derive(Debug, Default)]
struct Conn {
    subs: BTreeMap<SubId, Sub>,
    /// Exactly the subscriptions that are `is_ready()`, so `poll_delivery`
    /// never scans idle subscriptions.
    ready: BTreeSet<SubId>,
    /// Round-robin cursor over `ready`.
    last_served: Option<SubId>,
    /// A `Ready` action for this connection is in the action queue.
    ready_pending: bool,
    /// A `Disconnect` action for this connection is in the action queue.
    disconnect_pending: bool,
    /// A `Disconnect` was emitted for this connection (it is never repeated).
    disconnect_requested: bool,
}

impl Conn {
    /// Re-establishes `sub_id ∈ ready ⇔ sub.is_ready()` after a change to the
    /// subscription, emitting `Ready` on the connection's empty → non-empty
    /// transition.
    fn sync_ready(&mut self, conn: ConnKey, sub_id: SubId, actions: &mut VecDeque<RouterAction>) {
        if self.subs.get(&sub_id).is_some_and(Sub::is_ready) {
            let was_idle = self.ready.is_empty();
            if self.ready.insert(sub_id) && was_idle && !self.ready_pending {
                self.ready_pending = true;
                actions.push_back(RouterAction::Ready { conn });
            }
        } else {
            self.ready.remove(&sub_id);
        }
    }

    /// The next ready subscription after the cursor, wrapping around.
    fn next_ready(&self) -> Option<SubId> {
        let after = match self.last_served {
            Some(last) => self
                .ready
                .range((Bound::Excluded(last), Bound::Unbounded))
                .next(),
            None => None,
        };
        after.or_else(|| self.ready.first()).copied()
    }
}

#[derive(Debug)]
struct Group {
    name: Box<str>,
    /// Number of subscriptions in the group, to free it with the last one.
    members: usize,
    /// Round-robin cursor: the member that got the previous message.
    last: Option<SubKey>,
}

/// Token trie node. Each subscription is stored at exactly one node (the
/// path of its filter), so a topic walk visits it at most once.
#[derive(Debug, Default)]
struct Node {
    literal: BTreeMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    /// Filters that end at this node.
    here: BTreeSet<Entry>,
    /// Filters that end with `>` right after this node.
    tail: BTreeSet<Entry>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.star.is_none()
            && self.here.is_empty()
            && self.tail.is_empty()
    }

    fn insert(&mut self, filter: &str, entry: Entry) {
        let mut node = self;
        for token in filter.split(SEPARATOR) {
            if token == WILDCARD_TAIL {
                node.tail.insert(entry);
                return;
            }
            node = if token == WILDCARD_ONE {
                node.star.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(token.into()).or_default()
            };
        }
        node.here.insert(entry);
    }

    /// Removes `entry` stored under `tokens`, pruning nodes left empty so the
    /// trie's size follows the live subscriptions rather than their history.
    /// Recursion depth is bounded by `MAX_TOPIC_LEVELS`.
    fn remove(&mut self, mut tokens: core::str::Split<'_, char>, entry: &Entry) -> bool {
        match tokens.next() {
            None => self.here.remove(entry),
            Some(WILDCARD_TAIL) => self.tail.remove(entry),
            Some(WILDCARD_ONE) => {
                let Some(child) = self.star.as_mut() else {
                    return false;
                };
                let found = child.remove(tokens, entry);
                if child.is_empty() {
                    self.star = None;
                }
                found
            }
            Some(token) => {
                let Some(child) = self.literal.get_mut(token) else {
                    return false;
                };
                let found = child.remove(tokens, entry);
                if child.is_empty() {
                    self.literal.remove(token);
                }
                found
            }
        }
    }

    /// Appends every entry whose filter matches the remaining `tokens`.
    fn collect(&self, tokens: &[&str], out: &mut Vec<Entry>) {
        let Some((first, rest)) = tokens.split_first() else {
            out.extend(self.here.iter().copied());
            return;
        };
        // At least one token remains, which is what `>` requires.
        out.extend(self.tail.iter().copied());
        if let Some(child) = self.literal.get(*first) {
            child.collect(rest, out);
        }
        if let Some(child) = &self.star {
            child.collect(rest, out);
        }
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        1 + self.literal.values().map(Node::node_count).sum::<usize>()
            + self.star.as_ref().map_or(0, |s| s.node_count())
    }
}

/// Routing decisions of one publish, computed before anything is mutated.
struct Plan<'a> {
    /// Subscriptions that get the message.
    targets: &'a mut Vec<SubKey>,
    /// Queue group cursors to advance if the publish commits.
    cursors: &'a mut Vec<(GroupId, SubKey)>,
    /// Members of groups where no member had room: if the publish blocks,
    /// room in any of them is worth an `Unblocked`.
    watch: &'a mut Vec<SubKey>,
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
        let sub = c.subs.get_mut(&sub_id)?;
        let msg = sub.queue.pop_front()?;
        sub.queued_bytes -= msg.payload.len();
        sub.credit -= 1;
        sub.delivered += 1;
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

    fn join_group(&mut self, name: &str) -> GroupId {
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

    fn leave_group(&mut self, id: GroupId) {
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

    /// Turns the trie matches into delivery targets, choosing one member per
    /// queue group. Does not mutate the router: group cursors to advance are
    /// returned in `cursors` and applied only if the publish commits.
    fn plan(&self, matches: &mut [Entry], plan: &mut Plan<'_>, len: usize) {
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
    fn choose_member(&self, group: GroupId, members: &[Entry], len: usize) -> (SubKey, bool) {
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

    fn commit(
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
        let payload = &payload;
        for &(conn_key, sub_id) in targets {
            let Some(conn) = self.conns.get_mut(&conn_key) else {
                continue;
            };
            let Some(sub) = conn.subs.get_mut(&sub_id) else {
                continue;
            };
            outcome.matched = outcome.matched.saturating_add(1);
            if never_fits(len, &config) {
                sub.dropped += 1;
                note_drop(sub, &mut self.actions, conn_key, sub_id);
                outcome.dropped = outcome.dropped.saturating_add(1);
                continue;
            }
            if !sub.fits(len, &config) {
                match sub.policy {
                    // Wait targets were checked above; treat a violation of
                    // that invariant as a drop rather than exceed the bound.
                    OverflowPolicy::DropNewest | OverflowPolicy::Wait => {
                        sub.dropped += 1;
                        note_drop(sub, &mut self.actions, conn_key, sub_id);
                        outcome.dropped = outcome.dropped.saturating_add(1);
                        continue;
                    }
                    OverflowPolicy::Disconnect => {
                        sub.dropped += 1;
                        note_drop(sub, &mut self.actions, conn_key, sub_id);
                        outcome.dropped = outcome.dropped.saturating_add(1);
                        if !conn.disconnect_requested {
                            conn.disconnect_requested = true;
                            conn.disconnect_pending = true;
                            self.actions.push_back(RouterAction::Disconnect {
                                conn: conn_key,
                                sub_id,
                            });
                        }
                        continue;
                    }
                    OverflowPolicy::DropOldest => {
                        // Terminates: `never_fits` is false, so an empty
                        // queue always has room.
                        while !sub.fits(len, &config) {
                            let Some(old) = sub.queue.pop_front() else {
                                break;
                            };
                            sub.queued_bytes -= old.payload.len();
                            sub.dropped += 1;
                            note_drop(sub, &mut self.actions, conn_key, sub_id);
                            outcome.dropped = outcome.dropped.saturating_add(1);
                        }
                    }
                }
            }
            sub.queue.push_back(Message {
                topic: topic.clone(),
                payload: payload.clone(),
            });
            sub.queued_bytes += len;
            outcome.queued = outcome.queued.saturating_add(1);
            conn.sync_ready(conn_key, sub_id, &mut self.actions);
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::topic::filter_matches;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    const P: OverflowPolicy = OverflowPolicy::DropNewest;

    fn router() -> Router {
        Router::new(RouterConfig::default())
    }

    fn msg(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    /// Drains all deliveries of `conn` as (sub_id, topic, payload) strings.
    fn drain(r: &mut Router, conn: ConnKey) -> Vec<(SubId, String, String)> {
        let mut out = Vec::new();
        while let Some(d) = r.poll_delivery(conn) {
            out.push((
                d.sub_id,
                String::from_utf8(d.topic.to_vec()).unwrap(),
                String::from_utf8(d.payload.to_vec()).unwrap(),
            ));
        }
        out
    }

    fn drain_actions(r: &mut Router) -> Vec<RouterAction> {
        core::iter::from_fn(|| r.poll_action()).collect()
    }

    /// Which (conn, sub) the router routes `topic` to, via a real publish.
    fn receivers(r: &mut Router, topic: &str) -> Vec<SubKey> {
        r.publish(topic, msg("x")).unwrap();
        let conns: Vec<ConnKey> = r.conns.keys().copied().collect();
        let mut got = Vec::new();
        for c in conns {
            for (sub, _, _) in drain(r, c) {
                got.push((c, sub));
            }
        }
        got.sort_unstable();
        got
    }

    fn total_queued(r: &Router) -> usize {
        r.conns
            .values()
            .flat_map(|c| c.subs.values())
            .map(|s| s.queue.len())
            .sum()
    }

    #[test]
    fn literal_star_and_tail_matching() {
        let mut r = router();
        r.subscribe(1, 1, "a.b.c", None, P, 100).unwrap();
        r.subscribe(1, 2, "a.*.c", None, P, 100).unwrap();
        r.subscribe(1, 3, "a.>", None, P, 100).unwrap();
        r.subscribe(1, 4, "*", None, P, 100).unwrap();
        r.subscribe(1, 5, ">", None, P, 100).unwrap();

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
        r.subscribe(1, 1, "a.>", None, P, 100).unwrap();
        r.subscribe(1, 2, "a.b.>", None, P, 100).unwrap();
        let out = r.publish("a", msg("x")).unwrap();
        assert_eq!(out.matched, 0);
        assert_eq!(receivers(&mut r, "a.b"), vec![(1, 1)]);
        assert_eq!(receivers(&mut r, "a.b.c"), vec![(1, 1), (1, 2)]);
    }

    #[test]
    fn delivery_contents_and_shared_buffers() {
        let mut r = router();
        r.subscribe(1, 7, "t.*", None, P, 10).unwrap();
        r.subscribe(2, 8, "t.>", None, P, 10).unwrap();
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
        assert_eq!((d1.sub_id, d2.sub_id), (7, 8));
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
    fn invalid_topic_is_rejected() {
        let mut r = router();
        r.subscribe(1, 1, ">", None, P, 1).unwrap();
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
    fn queue_group_round_robin_exactly_one() {
        let mut r = router();
        for conn in 1..=3 {
            r.subscribe(conn, 1, "jobs", Some("workers"), P, 100)
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
        r.subscribe(1, 1, "a.*", Some("g"), P, 100).unwrap();
        r.subscribe(2, 1, "a.>", Some("g"), P, 100).unwrap();
        r.subscribe(3, 1, "b", Some("g"), P, 100).unwrap();
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
        r.subscribe(1, 1, "jobs", Some("g"), P, 0).unwrap();
        r.subscribe(2, 1, "jobs", Some("g"), P, 0).unwrap();
        for _ in 0..4 {
            r.publish("jobs", msg("j")).unwrap();
        }
        // Without credit anywhere, plain round-robin by room: 2 each.
        assert_eq!(r.sub_stats(1, 1).unwrap().queued, 2);
        assert_eq!(r.sub_stats(2, 1).unwrap().queued, 2);
        r.add_credit(2, 1, 100).unwrap();
        assert_eq!(drain(&mut r, 2).len(), 2);
        for _ in 0..10 {
            let out = r.publish("jobs", msg("j")).unwrap();
            assert_eq!(out.dropped, 0);
            assert_eq!(drain(&mut r, 2).len(), 1);
        }
        let s1 = r.sub_stats(1, 1).unwrap();
        assert_eq!((s1.queued, s1.dropped), (2, 0), "full member was skipped");
    }

    #[test]
    fn queue_group_prefers_member_with_credit() {
        let mut r = router();
        r.subscribe(1, 1, "jobs", Some("g"), P, 0).unwrap();
        r.subscribe(2, 1, "jobs", Some("g"), P, 3).unwrap();
        for _ in 0..3 {
            r.publish("jobs", msg("j")).unwrap();
        }
        assert_eq!(r.sub_stats(1, 1).unwrap().queued, 0);
        assert_eq!(r.sub_stats(2, 1).unwrap().queued, 3);
        // Member 2's credit window is now used up: member 1 takes the next.
        r.publish("jobs", msg("j")).unwrap();
        assert_eq!(r.sub_stats(1, 1).unwrap().queued, 1);
    }

    #[test]
    fn all_members_full_applies_policy_of_member_in_turn() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 1,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "jobs", Some("g"), P, 0).unwrap();
        r.subscribe(2, 1, "jobs", Some("g"), P, 0).unwrap();
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
        let dropped = r.sub_stats(1, 1).unwrap().dropped + r.sub_stats(2, 1).unwrap().dropped;
        assert_eq!(dropped, 1);
    }

    #[test]
    fn plain_and_group_on_same_topic() {
        let mut r = router();
        r.subscribe(1, 1, "t", None, P, 100).unwrap();
        r.subscribe(2, 1, "t", Some("g"), P, 100).unwrap();
        r.subscribe(3, 1, "t", Some("g"), P, 100).unwrap();
        r.subscribe(4, 1, "t", Some("h"), P, 100).unwrap();
        let out = r.publish("t", msg("m")).unwrap();
        assert_eq!(out.matched, 3);
        assert_eq!(drain(&mut r, 1).len(), 1);
        assert_eq!(drain(&mut r, 2).len() + drain(&mut r, 3).len(), 1);
        assert_eq!(drain(&mut r, 4).len(), 1);
    }

    #[test]
    fn credit_gates_delivery() {
        let mut r = router();
        r.subscribe(1, 1, "t", None, P, 0).unwrap();
        r.publish("t", msg("a")).unwrap();
        r.publish("t", msg("b")).unwrap();
        assert!(r.poll_delivery(1).is_none());
        assert!(drain_actions(&mut r).is_empty(), "nothing deliverable yet");
        r.add_credit(1, 1, 1).unwrap();
        assert_eq!(drain_actions(&mut r), vec![RouterAction::Ready { conn: 1 }]);
        assert_eq!(drain(&mut r, 1), vec![(1, "t".into(), "a".into())]);
        assert_eq!(r.sub_stats(1, 1).unwrap().credit, 0);
        r.add_credit(1, 1, u32::MAX).unwrap();
        r.add_credit(1, 1, 5).unwrap();
        assert_eq!(drain(&mut r, 1), vec![(1, "t".into(), "b".into())]);
        let s = r.sub_stats(1, 1).unwrap();
        assert_eq!((s.credit, s.delivered, s.queued), (u32::MAX - 1, 2, 0));
        assert_eq!(r.add_credit(1, 2, 1), Err(RouterError::UnknownSubscription));
        assert_eq!(r.add_credit(9, 1, 1), Err(RouterError::UnknownSubscription));
    }

    #[test]
    fn ready_is_edge_triggered_and_deduplicated() {
        let mut r = router();
        r.subscribe(1, 1, "t", None, P, 100).unwrap();
        r.subscribe(1, 2, "t", None, P, 100).unwrap();
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
        r.subscribe(1, 1, "t", None, P, 1000).unwrap();
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
        r.subscribe(1, 10, "a", None, P, 100).unwrap();
        r.subscribe(1, 20, "b", None, P, 100).unwrap();
        r.subscribe(1, 30, "c", None, P, 100).unwrap();
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

    #[test]
    fn drop_newest_policy() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 2,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "t", None, OverflowPolicy::DropNewest, 0)
            .unwrap();
        for p in ["1", "2", "3", "4"] {
            r.publish("t", Bytes::from_static(p.as_bytes())).unwrap();
        }
        let s = r.sub_stats(1, 1).unwrap();
        assert_eq!((s.queued, s.dropped, s.queued_bytes), (2, 2, 2));
        r.add_credit(1, 1, 10).unwrap();
        let got: Vec<_> = drain(&mut r, 1).into_iter().map(|d| d.2).collect();
        assert_eq!(got, vec!["1", "2"]);
    }

    #[test]
    fn drop_oldest_policy() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 2,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "t", None, OverflowPolicy::DropOldest, 0)
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
        let s = r.sub_stats(1, 1).unwrap();
        assert_eq!((s.queued, s.dropped), (2, 2));
        r.add_credit(1, 1, 10).unwrap();
        let got: Vec<_> = drain(&mut r, 1).into_iter().map(|d| d.2).collect();
        assert_eq!(got, vec!["3", "4"]);
    }

    #[test]
    fn byte_limit_and_oversized_messages() {
        let mut r = Router::new(RouterConfig {
            max_queue_bytes_per_sub: 10,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "t", None, OverflowPolicy::DropOldest, 0)
            .unwrap();
        r.subscribe(1, 2, "t", None, OverflowPolicy::Wait, 0)
            .unwrap();
        r.publish("t", Bytes::from(vec![0u8; 4])).unwrap();
        r.publish("t", Bytes::from(vec![0u8; 4])).unwrap();
        // 8 + 4 > 10: Wait sub blocks the publish.
        assert_eq!(
            r.publish("t", Bytes::from(vec![0u8; 4])),
            Err(RouterError::Blocked)
        );
        r.unsubscribe(1, 2).unwrap();
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
        assert_eq!(r.sub_stats(1, 1).unwrap().queued_bytes, 9);
        // A payload larger than the whole budget still reaches an empty queue
        // (DropOldest makes it empty first; a fresh Wait subscription is empty).
        r.subscribe(1, 3, "t", None, OverflowPolicy::Wait, 0)
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
        assert_eq!(r.sub_stats(1, 1).unwrap().queued_bytes, 11);
        assert_eq!(r.sub_stats(1, 3).unwrap().queued_bytes, 11);
        // Behind it, the Wait subscription's queue is over budget: a publish waits.
        assert_eq!(
            r.publish("t", Bytes::from(vec![0u8; 1])),
            Err(RouterError::Blocked)
        );
        assert_eq!(r.sub_stats(1, 3).unwrap().dropped, 0);
    }

    #[test]
    fn disconnect_policy() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 1,
            ..RouterConfig::default()
        });
        r.subscribe(5, 1, "t", None, OverflowPolicy::Disconnect, 0)
            .unwrap();
        r.subscribe(5, 2, "t", None, OverflowPolicy::Disconnect, 0)
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
            vec![&RouterAction::Disconnect { conn: 5, sub_id: 1 }]
        );
        // Each subscription's drops are reported once, with the running total.
        assert!(actions.contains(&RouterAction::Dropped {
            conn: 5,
            sub_id: 1,
            total: 11
        }));
        assert_eq!(r.sub_stats(5, 1).unwrap().dropped, 11);
        assert_eq!(r.remove_connection(5), 2);
        assert!(r.is_empty());
    }

    #[test]
    fn wait_blocks_whole_publish_then_unblocks_once() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 2,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "t.>", None, OverflowPolicy::Wait, 0)
            .unwrap();
        r.subscribe(2, 1, "t.x", None, OverflowPolicy::DropNewest, 0)
            .unwrap();
        r.subscribe(3, 1, "t.*", Some("g"), OverflowPolicy::DropNewest, 0)
            .unwrap();
        r.subscribe(4, 1, "t.*", Some("g"), OverflowPolicy::DropNewest, 0)
            .unwrap();
        r.publish("t.x", msg("1")).unwrap();
        r.publish("t.x", msg("2")).unwrap();
        let before: Vec<_> = [1, 2, 3, 4].map(|c| r.sub_stats(c, 1).unwrap()).into();
        let cursor_before = r.groups.values().next().unwrap().last;

        for _ in 0..3 {
            assert_eq!(r.publish("t.x", msg("3")), Err(RouterError::Blocked));
        }
        let after: Vec<_> = [1, 2, 3, 4].map(|c| r.sub_stats(c, 1).unwrap()).into();
        assert_eq!(before, after, "nothing enqueued or dropped anywhere");
        assert_eq!(r.groups.values().next().unwrap().last, cursor_before);
        assert!(drain_actions(&mut r).is_empty());

        // Room appears in the Wait queue: exactly one Unblocked.
        r.add_credit(1, 1, 10).unwrap();
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

    #[test]
    fn wait_member_of_group_is_skipped_when_another_has_room() {
        let mut r = Router::new(RouterConfig {
            max_queue_per_sub: 1,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "t", Some("g"), OverflowPolicy::Wait, 0)
            .unwrap();
        r.subscribe(2, 1, "t", Some("g"), OverflowPolicy::Wait, 0)
            .unwrap();
        r.publish("t", msg("1")).unwrap();
        r.publish("t", msg("2")).unwrap();
        assert_eq!(r.publish("t", msg("3")), Err(RouterError::Blocked));
        r.add_credit(2, 1, 1).unwrap();
        assert!(r.poll_delivery(2).is_some());
        assert!(drain_actions(&mut r).contains(&RouterAction::Unblocked));
        // Member 1 is next in turn but full: member 2 takes it.
        assert_eq!(r.publish("t", msg("3")).unwrap().queued, 1);
        assert_eq!(r.sub_stats(2, 1).unwrap().queued, 1);
    }

    #[test]
    fn remove_connection_cleans_up() {
        let mut r = router();
        r.subscribe(1, 1, "a.b", None, P, 10).unwrap();
        r.subscribe(1, 2, "a.*", Some("g"), P, 10).unwrap();
        r.subscribe(1, 3, "a.>", None, OverflowPolicy::Wait, 0)
            .unwrap();
        r.subscribe(2, 1, "a.b", None, P, 10).unwrap();
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
            r.subscribe(conn, i as SubId, f, group.as_deref(), P, 1)
                .unwrap();
        }
        assert!(r.root.node_count() > 10_000);
        for (i, _) in filters.iter().enumerate() {
            r.unsubscribe((i % 5) as ConnKey, i as SubId).unwrap();
        }
        assert!(r.root.is_empty());
        assert_eq!(r.root.node_count(), 1);
        assert!(r.conns.is_empty());
        assert!(r.groups.is_empty() && r.group_ids.is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn errors_leave_state_unchanged() {
        let mut r = Router::new(RouterConfig {
            max_subs_per_conn: 2,
            max_subs_total: 3,
            ..RouterConfig::default()
        });
        r.subscribe(1, 1, "a", None, P, 1).unwrap();
        let nodes = r.root.node_count();
        assert_eq!(
            r.subscribe(1, 1, "b", Some("g"), P, 1),
            Err(RouterError::DuplicateSubscription)
        );
        assert_eq!(
            r.subscribe(1, 2, "a..b", Some("g"), P, 1),
            Err(RouterError::InvalidFilter(TopicError::EmptyLevel))
        );
        assert_eq!(
            r.subscribe(1, 2, "b", Some("g.h"), P, 1),
            Err(RouterError::InvalidQueueGroup(TopicError::InvalidChar))
        );
        assert_eq!(r.root.node_count(), nodes);
        assert!(r.groups.is_empty());
        r.subscribe(1, 2, "b", None, P, 1).unwrap();
        assert_eq!(
            r.subscribe(1, 3, "c", Some("g"), P, 1),
            Err(RouterError::TooManySubscriptions)
        );
        r.subscribe(2, 1, "c", None, P, 1).unwrap();
        assert_eq!(
            r.subscribe(3, 1, "d", Some("g"), P, 1),
            Err(RouterError::TooManySubscriptions)
        );
        assert_eq!(r.subscription_count(), 3);
        assert_eq!(r.connection_count(), 2);
        assert!(r.groups.is_empty());
        assert_eq!(receivers(&mut r, "d"), vec![]);
        assert_eq!(receivers(&mut r, "c"), vec![(2, 1)]);
        assert_eq!(r.unsubscribe(1, 9), Err(RouterError::UnknownSubscription));
        assert_eq!(r.unsubscribe(9, 1), Err(RouterError::UnknownSubscription));
        assert_eq!(r.subscription_count(), 3);
        // Original subscription still works and the id is reusable after
        // unsubscribing.
        r.unsubscribe(1, 1).unwrap();
        r.subscribe(1, 1, "a", None, P, 1).unwrap();
        assert_eq!(receivers(&mut r, "a"), vec![(1, 1)]);
    }

    // ---- property tests ----

    const FILTER_TOKENS: [&str; 3] = ["a", "b", "*"];
    const TOPIC_TOKENS: [&str; 2] = ["a", "b"];

    fn gen_filter(g: &mut Gen) -> String {
        let n = usize::from(u8::arbitrary(g) % 3) + 1;
        let mut toks: Vec<&str> = (0..n).map(|_| *g.choose(&FILTER_TOKENS).unwrap()).collect();
        if bool::arbitrary(g) {
            toks.push(">");
        }
        toks.join(".")
    }

    fn gen_topic(g: &mut Gen) -> String {
        let n = usize::from(u8::arbitrary(g) % 4) + 1;
        let toks: Vec<&str> = (0..n).map(|_| *g.choose(&TOPIC_TOKENS).unwrap()).collect();
        toks.join(".")
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
        let mut expected: Vec<SubKey> = live
            .iter()
            .filter(|(_, f)| filter_matches(f, topic))
            .map(|&(id, _)| (1, id))
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
                    r.subscribe(1, i as SubId, f, None, P, u32::MAX).unwrap();
                    live.push((i as SubId, f));
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
                let remove = case.remove_mask & (1 << (id % 64)) != 0;
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

    fn validate_filter_ok(f: &str) -> bool {
        crate::topic::validate_filter(f).is_ok()
    }

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
            let sub = SubId::from(u8::arbitrary(g) % 4);
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
        collect_all(&r.root, &mut trie);
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

    fn collect_all(n: &Node, out: &mut Vec<Entry>) {
        out.extend(n.here.iter().chain(&n.tail).copied());
        for child in n.literal.values().chain(n.star.as_deref()) {
            collect_all(child, out);
        }
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
                        let res =
                            r.subscribe(conn, sub, &filter, group.then_some("g"), policy, credit);
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
}
