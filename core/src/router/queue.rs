//! Per-subscription queues: what a subscription holds, its credit, the overflow
//! policies that apply when it is full, and the per-connection ready set that
//! lets `poll_delivery` serve subscriptions round-robin without scanning idle ones.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::ops::Bound;

use bytes::Bytes;

use super::{
    ConnKey, GroupId, OverflowPolicy, PublishOutcome, RouterAction, RouterConfig, SubId, SubStats,
};

/// A message held for a subscription.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) topic: Bytes,
    pub(super) payload: Bytes,
}

/// One subscription: its queue, credit and counters.
#[derive(Debug)]
pub(super) struct Sub {
    /// Kept so the subscription can be found in the trie on removal.
    pub(super) filter: Box<str>,
    pub(super) group: Option<GroupId>,
    pub(super) policy: OverflowPolicy,
    pub(super) credit: u32,
    pub(super) queue: VecDeque<Message>,
    /// Sum of the payload lengths in `queue`.
    pub(super) queued_bytes: usize,
    pub(super) delivered: u64,
    pub(super) dropped: u64,
    /// A `Dropped` action for it is queued (at most one at a time).
    pub(super) drop_pending: bool,
}

impl Sub {
    /// Whether `poll_delivery` may hand out a message from this subscription.
    pub(super) fn is_ready(&self) -> bool {
        self.credit > 0 && !self.queue.is_empty()
    }

    /// Whether one more message of `len` payload bytes fits in the queue. An
    /// empty queue takes any one message, so a message larger than the byte
    /// budget (up to the connection's maximum message size) is still delivered:
    /// a queue holds at most its budget plus one message.
    pub(super) fn fits(&self, len: usize, config: &RouterConfig) -> bool {
        self.queue.len() < config.max_queue_per_sub
            && (self.queue.is_empty()
                || self.queued_bytes.saturating_add(len) <= config.max_queue_bytes_per_sub)
    }

    /// Whether a new message would be within the subscriber's credit window,
    /// i.e. deliverable as soon as it is polled rather than parked.
    pub(super) fn has_spare_credit(&self) -> bool {
        usize::try_from(self.credit).unwrap_or(usize::MAX) > self.queue.len()
    }

    /// Takes the oldest message for delivery, spending one credit; the caller has
    /// checked [`is_ready`](Self::is_ready).
    pub(super) fn pop(&mut self) -> Option<Message> {
        let msg = self.queue.pop_front()?;
        self.queued_bytes -= msg.payload.len();
        self.credit -= 1;
        self.delivered += 1;
        Some(msg)
    }

    /// The counters reported by `Router::sub_stats`.
    pub(super) fn stats(&self) -> SubStats {
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
pub(super) fn held_copy(topic: &str, payload: &Bytes) -> (Bytes, Bytes) {
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
pub(super) fn never_fits(_len: usize, config: &RouterConfig) -> bool {
    config.max_queue_per_sub == 0
}

/// The subscriptions of one connection and its pending notifications.
#[derive(Debug, Default)]
pub(super) struct Conn {
    pub(super) subs: BTreeMap<SubId, Sub>,
    /// Exactly the subscriptions that are `is_ready()`, so `poll_delivery`
    /// never scans idle subscriptions.
    pub(super) ready: BTreeSet<SubId>,
    /// Round-robin cursor over `ready`.
    pub(super) last_served: Option<SubId>,
    /// A `Ready` action for this connection is in the action queue.
    pub(super) ready_pending: bool,
    /// A `Disconnect` action for this connection is in the action queue.
    pub(super) disconnect_pending: bool,
    /// A `Disconnect` was emitted for this connection (it is never repeated).
    pub(super) disconnect_requested: bool,
}

impl Conn {
    /// Re-establishes `sub_id ∈ ready ⇔ sub.is_ready()` after a change to the
    /// subscription, emitting `Ready` on the connection's empty → non-empty
    /// transition.
    pub(super) fn sync_ready(
        &mut self,
        conn: ConnKey,
        sub_id: SubId,
        actions: &mut VecDeque<RouterAction>,
    ) {
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
    pub(super) fn next_ready(&self) -> Option<SubId> {
        let after = match self.last_served {
            Some(last) => self
                .ready
                .range((Bound::Excluded(last), Bound::Unbounded))
                .next(),
            None => None,
        };
        after.or_else(|| self.ready.first()).copied()
    }

    /// Offers one published message to subscription `sub_id`, applying its
    /// overflow policy if the queue is full, and counts the result in `outcome`.
    /// `Wait` targets were checked before the publish committed.
    pub(super) fn offer(
        &mut self,
        conn_key: ConnKey,
        sub_id: SubId,
        msg: &Message,
        config: &RouterConfig,
        actions: &mut VecDeque<RouterAction>,
        outcome: &mut PublishOutcome,
    ) {
        let len = msg.payload.len();
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        outcome.matched = outcome.matched.saturating_add(1);
        if never_fits(len, config) {
            sub.dropped += 1;
            note_drop(sub, actions, conn_key, sub_id);
            outcome.dropped = outcome.dropped.saturating_add(1);
            return;
        }
        if !sub.fits(len, config) {
            match sub.policy {
                // Wait targets were checked above; treat a violation of
                // that invariant as a drop rather than exceed the bound.
                OverflowPolicy::DropNewest | OverflowPolicy::Wait => {
                    sub.dropped += 1;
                    note_drop(sub, actions, conn_key, sub_id);
                    outcome.dropped = outcome.dropped.saturating_add(1);
                    return;
                }
                OverflowPolicy::Disconnect => {
                    sub.dropped += 1;
                    note_drop(sub, actions, conn_key, sub_id);
                    outcome.dropped = outcome.dropped.saturating_add(1);
                    if !self.disconnect_requested {
                        self.disconnect_requested = true;
                        self.disconnect_pending = true;
                        actions.push_back(RouterAction::Disconnect {
                            conn: conn_key,
                            sub_id,
                        });
                    }
                    return;
                }
                OverflowPolicy::DropOldest => {
                    // Terminates: `never_fits` is false, so an empty
                    // queue always has room.
                    while !sub.fits(len, config) {
                        let Some(old) = sub.queue.pop_front() else {
                            break;
                        };
                        sub.queued_bytes -= old.payload.len();
                        sub.dropped += 1;
                        note_drop(sub, actions, conn_key, sub_id);
                        outcome.dropped = outcome.dropped.saturating_add(1);
                    }
                }
            }
        }
        sub.queue.push_back(msg.clone());
        sub.queued_bytes += len;
        outcome.queued = outcome.queued.saturating_add(1);
        self.sync_ready(conn_key, sub_id, actions);
    }
}
