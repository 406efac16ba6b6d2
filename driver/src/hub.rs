//! The server's hub: routes publish/subscribe across its connections with the
//! core's [`Router`](weft_core::router::Router), the same for every runtime.

use super::handle::push_waker;
use super::shared::{lock, HubEvent, Shared};
use super::sync::Mutex;
// std's Arc: loom's cannot be a `self` type (`attach`), and the hub's sharing
// is not what the models check; its Mutex is loom's under `--cfg loom`.
use super::Driver;
use bytes::Bytes;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::vec::Vec;
use weft_core::config::Priority;
use weft_core::error::ErrorCode;
use weft_core::router::{PublishOutcome, Router, RouterAction, RouterConfig, RouterError};

mod shutdown;
pub use shutdown::{graceful_close_limit, ShutdownReport};

struct HubState {
    router: Router,
    conns: HashMap<u64, Shared>,
    /// Connections whose publish waits for room (wait policy).
    stalled: HashSet<u64>,
    /// The server application's own publishes waiting for room (wait policy).
    publish_waiters: Vec<Waker>,
    next: u64,
    /// Woken whenever a connection detaches (a graceful shutdown waits on them).
    detach_wakers: Vec<core::task::Waker>,
}

/// Who a connection is, as [`Hub::broadcast_where`] shows it to its predicate.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Peer<'a> {
    /// The transport's peer address, when the adapter knows one.
    pub addr: Option<SocketAddr>,
    /// The key id the client authenticated with; `None` before or without
    /// authentication.
    pub key_id: Option<&'a [u8]>,
}

/// What a broadcast did: every connection it was meant for is counted once, as
/// queued or not, so nothing is dropped without the caller knowing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Connections whose send queue took the message.
    pub queued: usize,
    /// Connections chosen but not sent to: the send queue was full, or the
    /// connection was closing or not yet established.
    pub not_queued: usize,
}

/// Routes messages between the connections of one server. Attach each accepted
/// connection's [`Driver`]; the drivers feed it and it delivers to the others.
pub struct Hub {
    inner: Mutex<HubState>,
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the given routing limits.
    pub fn new(config: RouterConfig) -> Arc<Hub> {
        Arc::new(Hub {
            inner: Mutex::new(HubState {
                router: Router::new(config),
                conns: HashMap::new(),
                stalled: HashSet::new(),
                publish_waiters: Vec::new(),
                next: 0,
                detach_wakers: Vec::new(),
            }),
        })
    }

    /// Attaches a server connection's driver.
    pub fn attach(self: &Arc<Self>, driver: &mut Driver) {
        let mut h = lock(&self.inner);
        h.next += 1;
        let key = h.next;
        h.conns.insert(key, driver.shared.clone());
        lock(&driver.shared).routed = true;
        driver.hub = Some((self.clone(), key));
    }

    /// Starts closing every attached connection with `code` (graceful for
    /// `NO_ERROR` and application codes: each drains, bounded by its
    /// `drain_timeout`): a server's shutdown.
    pub fn close_all(&self, code: ErrorCode, reason: &str) {
        let h = lock(&self.inner);
        for c in h.conns.values() {
            close(c, code, reason);
        }
    }

    /// Number of attached connections.
    pub fn connections(&self) -> usize {
        lock(&self.inner).conns.len()
    }

    /// Publishes from the server's own application (spec section 10: it publishes
    /// into its router directly), routed like a client's PUBLISH, or fails
    /// changing nothing: `InvalidTopic`, or `Blocked` when a wait-policy
    /// subscriber has no room (nothing is queued for any subscription).
    pub fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishOutcome, RouterError> {
        let mut h = lock(&self.inner);
        let r = h.router.publish(topic, payload.into());
        process_actions(&mut h);
        r
    }

    /// [`try_publish`](Self::try_publish), waiting while a wait-policy subscriber
    /// has no room, as a client's PUBLISH waits.
    pub fn publish(&self, topic: &str, payload: impl Into<Bytes>) -> HubPublish<'_> {
        HubPublish {
            hub: self,
            topic: topic.into(),
            payload: payload.into(),
        }
    }

    /// Queues a one-way message (MESSAGE) on every established connection; see
    /// [`broadcast_where`](Self::broadcast_where).
    pub fn broadcast(&self, payload: &[u8]) -> BroadcastReport {
        self.broadcast_where(payload, |_| true)
    }

    /// Queues a one-way message on every established connection for which
    /// `choose` returns true, without waiting: a connection whose send queue is
    /// full is counted in [`BroadcastReport::not_queued`], so one slow peer
    /// cannot hold back the others.
    pub fn broadcast_where<F>(&self, payload: &[u8], mut choose: F) -> BroadcastReport
    where
        F: FnMut(&Peer<'_>) -> bool,
    {
        let h = lock(&self.inner);
        let mut report = BroadcastReport::default();
        for c in h.conns.values() {
            let mut st = lock(c);
            let peer = Peer {
                addr: st.peer_addr,
                key_id: st.conn.peer_key_id(),
            };
            if !choose(&peer) {
                continue;
            }
            let ok = st.conn.negotiated().is_some()
                && st.closed.is_none()
                && st.conn.send_message(payload, Priority::Normal).is_ok();
            if ok {
                report.queued += 1;
                st.wake_driver();
            } else {
                report.not_queued += 1;
            }
        }
        report
    }

    pub(crate) fn detach(&self, key: u64) {
        let mut h = lock(&self.inner);
        h.conns.remove(&key);
        h.stalled.remove(&key);
        h.router.remove_connection(key);
        // Removing a slow subscriber can free publishers held back by it.
        process_actions(&mut h);
        let waiting = core::mem::take(&mut h.detach_wakers);
        drop(h);
        waiting.into_iter().for_each(core::task::Waker::wake);
    }

    /// Applies a connection's pub/sub events. Everything happens under the hub's
    /// lock, taking each connection's lock briefly inside it: a driver never holds
    /// its connection's lock while asking for the hub's, so this order cannot
    /// deadlock, and deliveries reach each subscriber in the router's order. A
    /// publish blocked by a wait-policy subscriber puts the rest back on the
    /// publisher's connection and stalls it until `Unblocked`.
    pub(crate) fn on_events(&self, key: u64, events: Vec<HubEvent>) {
        let mut h = lock(&self.inner);
        let mut it = events.into_iter();
        while let Some(e) = it.next() {
            match e {
                HubEvent::Subscribe {
                    sub_id,
                    filter,
                    group,
                    policy,
                    credit,
                } => {
                    let filter = core::str::from_utf8(&filter).unwrap_or("");
                    let group = core::str::from_utf8(&group).ok().filter(|g| !g.is_empty());
                    if let Err(RouterError::TooManySubscriptions) = h
                        .router
                        .subscribe(key, sub_id, filter, group, policy, credit)
                    {
                        if let Some(c) = h.conns.get(&key) {
                            close(
                                c,
                                ErrorCode::SUBSCRIPTION_LIMIT,
                                "server subscription limit",
                            );
                        }
                    }
                }
                HubEvent::Unsubscribe { sub_id } => {
                    let _ = h.router.unsubscribe(key, sub_id);
                }
                HubEvent::Credit { sub_id, increment } => {
                    let _ = h.router.add_credit(key, sub_id, increment);
                }
                HubEvent::Publish { topic, payload } => {
                    let t = core::str::from_utf8(&topic).unwrap_or("");
                    if let Err(RouterError::Blocked) = h.router.publish(t, payload.clone()) {
                        h.stalled.insert(key);
                        if let Some(c) = h.conns.get(&key) {
                            let mut st = lock(c);
                            let rest: Vec<HubEvent> =
                                core::iter::once(HubEvent::Publish { topic, payload })
                                    .chain(it.by_ref())
                                    .collect();
                            for e in rest.into_iter().rev() {
                                st.hub_events.push_front(e);
                            }
                            st.stalled = true;
                        }
                        break;
                    }
                }
            }
        }
        process_actions(&mut h);
    }
}

/// Carries out what the router asks for, under the hub's lock (connection locks
/// nested inside): deliveries, slow-consumer closes, drop reports, and resuming
/// publishers held back by the wait policy.
fn process_actions(h: &mut HubState) {
    while let Some(a) = h.router.poll_action() {
        match a {
            RouterAction::Ready { conn } => {
                let Some(c) = h.conns.get(&conn).cloned() else {
                    continue;
                };
                let mut st = lock(&c);
                while let Some(d) = h.router.poll_delivery(conn) {
                    st.deliver_or_park(d.sub_id, d.topic, d.payload);
                }
                st.wake_driver();
            }
            RouterAction::Disconnect { conn, .. } => {
                if let Some(c) = h.conns.get(&conn) {
                    close(c, ErrorCode::SLOW_CONSUMER, "slow consumer");
                }
            }
            RouterAction::Dropped {
                conn,
                sub_id,
                total,
            } => {
                if let Some(c) = h.conns.get(&conn) {
                    let mut st = lock(c);
                    let _ = st.conn.report_dropped(sub_id, total);
                    st.wake_driver();
                }
            }
            RouterAction::Unblocked => {
                for w in h.publish_waiters.drain(..) {
                    w.wake();
                }
                let stalled: Vec<u64> = h.stalled.drain().collect();
                for k in stalled {
                    if let Some(c) = h.conns.get(&k) {
                        Driver::unstall(c);
                    }
                }
            }
        }
    }
}

/// A publish from the server's application waiting for room; see [`Hub::publish`].
#[derive(Debug)]
#[must_use = "a publish does nothing until awaited"]
pub struct HubPublish<'a> {
    hub: &'a Hub,
    topic: std::string::String,
    payload: Bytes,
}

impl Future for HubPublish<'_> {
    type Output = Result<PublishOutcome, RouterError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut h = lock(&self.hub.inner);
        let r = h.router.publish(&self.topic, self.payload.clone());
        process_actions(&mut h);
        match r {
            // The router armed `Unblocked` for us (core's `Router::publish`).
            Err(RouterError::Blocked) => {
                push_waker(&mut h.publish_waiters, cx.waker());
                Poll::Pending
            }
            r => Poll::Ready(r),
        }
    }
}

fn close(c: &Shared, code: ErrorCode, reason: &str) {
    let mut st = lock(c);
    let now = st.now();
    st.conn.close(now, code, reason);
    st.wake_driver();
}
