//! Publish/subscribe on the connection: the client's subscriptions and their
//! delivery credit, the server's view of the peer's subscriptions, and every
//! pub/sub frame (spec section 10). Routing across connections is the
//! [`Router`](crate::router::Router)'s.
//!
//! Everything of the feature is here: the [`PubSub`] tables, the commands
//! (`subscribe`, `unsubscribe`, `publish`, `deliver`, `report_dropped`,
//! `delivery_consumed`) and the handlers of SUBSCRIBE, UNSUBSCRIBE, SUB_CREDIT,
//! PUBLISH, DELIVER and SUB_DROPPED.

#[cfg(not(feature = "alloc"))]
use super::capacity;
use super::store::Map;
use super::{Connection, Event, Phase, Refusal, Src};
use crate::config::{OverflowPolicy, Priority, Role};
use crate::error::{Error, ErrorCode, InvalidKind};
use crate::ids::SubId;
use crate::time::Instant;
use crate::wire::frame::Frame;
use crate::wire::params::CAP_PUBSUB;

/// A client subscription.
#[derive(Debug)]
pub(super) struct ClientSub {
    /// Deliveries the server may still send.
    credit: u32,
    /// Deliveries consumed since the last grant.
    consumed: u32,
    window: u32,
}

/// A peer subscription as the server's connection sees it.
#[derive(Debug)]
pub(super) struct ServerSub {
    credit: u32,
}

/// The subscription tables of one connection.
#[derive(Debug)]
pub(super) struct PubSub {
    /// The id our next subscription gets (ids start at 1 and increase).
    pub(super) next_sub_id: u64,
    pub(super) client_subs: Map<ClientSub, SubId>,
    /// The highest subscription id the peer used (they must increase).
    pub(super) max_peer_sub: u64,
    pub(super) server_subs: Map<ServerSub, SubId>,
    /// The last drop total reported per subscription, to count only new drops.
    pub(super) dropped_reported: Map<u64, SubId>,
}

impl PubSub {
    pub(super) fn new() -> Self {
        PubSub {
            next_sub_id: 1,
            client_subs: Map::new(),
            max_peer_sub: 0,
            server_subs: Map::new(),
            dropped_reported: Map::new(),
        }
    }
}

impl Connection {
    /// Tells the connection the application consumed one delivery of `sub_id`, so
    /// credit can return to the server. Called by `poll_event` unless
    /// `Config::auto_subscription_credit` is off. Credit returns as deliveries are
    /// consumed, not as they arrive, so a subscriber that stops reading holds the
    /// server back instead of being buried.
    ///
    /// Returns true if credit was queued for sending (call `poll_transmit` soon).
    pub fn delivery_consumed(&mut self, sub_id: SubId) -> bool {
        let Some(s) = self.pubsub.client_subs.get_mut(sub_id) else {
            return false;
        };
        s.consumed += 1;
        // Re-grant once half the window is used, so a subscriber that keeps up never
        // waits for credit.
        if s.consumed * 2 >= s.window {
            let inc = s.consumed;
            s.credit += inc;
            s.consumed = 0;
            self.push_control(&Frame::SubCredit {
                sub_id: sub_id.get(),
                increment: u64::from(inc),
            });
            return true;
        }
        false
    }

    /// (Client) Subscribes to a topic filter, optionally in a queue group; returns
    /// the subscription id. Deliveries arrive as [`Event::Delivery`]; credit is
    /// re-granted automatically as they are polled.
    pub fn subscribe(
        &mut self,
        filter: &str,
        group: Option<&str>,
        policy: OverflowPolicy,
    ) -> Result<SubId, Error> {
        self.can_send_app()?;
        if self.role != Role::Client {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if self.negotiated.is_some() && !self.cap(CAP_PUBSUB) {
            return Err(Error::NotNegotiated);
        }
        crate::topic::validate_filter(filter).map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        if let Some(g) = group {
            crate::topic::validate_queue_group(g)
                .map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        }
        // Before SERVER_HELLO the server's limits are the defaults (spec 7.3).
        let peer_cap = self.peer.unwrap_or_default().max_subscriptions as usize;
        #[cfg(not(feature = "alloc"))]
        let peer_cap = peer_cap.min(capacity::TABLE);
        if self.pubsub.client_subs.len() >= peer_cap {
            return Err(Error::Blocked);
        }
        let window = self.config.subscription_credit.max(1);
        let id = SubId::new(self.pubsub.next_sub_id);
        let f = Frame::Subscribe {
            sub_id: id.get(),
            policy: policy as u8,
            credit: u64::from(window),
            filter: filter.as_bytes(),
            group: group.unwrap_or("").as_bytes(),
        };
        self.queue_data(Priority::Urgent, &f)?;
        self.pubsub.next_sub_id += 1;
        let _ = self.pubsub.client_subs.insert(
            id,
            ClientSub {
                credit: window,
                consumed: 0,
                window,
            },
        );
        Ok(id)
    }

    /// (Client) Ends a subscription. Deliveries already in flight are discarded.
    pub fn unsubscribe(&mut self, sub_id: SubId) -> Result<(), Error> {
        if matches!(self.phase, Phase::Failing | Phase::Closed) {
            return Err(Error::Closed);
        }
        self.pubsub
            .client_subs
            .remove(sub_id)
            .ok_or(Error::UnknownId)?;
        // Same lane as SUBSCRIBE, so it can neither overtake its SUBSCRIBE nor be
        // overtaken by a later one (the server's subscription count stays exact).
        // Tiny and bounded by the subscriptions: not held to the send budget.
        let (_, max_frame) = self.peer_limits();
        let _ = self.tx.push_data(
            Priority::Urgent,
            &Frame::Unsubscribe {
                sub_id: sub_id.get(),
            },
            max_frame,
        );
        Ok(())
    }

    /// (Client) Publishes on a topic.
    pub fn publish(&mut self, topic: &str, payload: &[u8], prio: Priority) -> Result<(), Error> {
        self.can_send_app()?;
        if self.role != Role::Client {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if self.negotiated.is_some() && !self.cap(CAP_PUBSUB) {
            return Err(Error::NotNegotiated);
        }
        crate::topic::validate_topic(topic).map_err(|_| Error::Invalid(InvalidKind::Topic))?;
        self.queue_data(
            prio,
            &Frame::Publish {
                topic: topic.as_bytes(),
                payload,
            },
        )
        .map(|_| ())
    }

    /// (Server) Delivers a routed message to a peer subscription, consuming one
    /// credit; `Blocked` when the subscription has none left.
    pub fn deliver(
        &mut self,
        sub_id: SubId,
        topic: &[u8],
        payload: &[u8],
        prio: Priority,
    ) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if !matches!(self.phase, Phase::Established | Phase::Draining) {
            return Err(Error::Closed);
        }
        let credit = self
            .pubsub
            .server_subs
            .get(sub_id)
            .ok_or(Error::UnknownId)?
            .credit;
        if credit == 0 {
            return Err(Error::Blocked);
        }
        self.queue_data(
            prio,
            &Frame::Deliver {
                sub_id: sub_id.get(),
                topic,
                payload,
            },
        )?;
        if let Some(s) = self.pubsub.server_subs.get_mut(sub_id) {
            s.credit -= 1;
        }
        Ok(())
    }

    /// (Server) Tells the subscriber how many messages its overflow policy dropped.
    pub fn report_dropped(&mut self, sub_id: SubId, total: u64) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(Error::Invalid(InvalidKind::Role));
        }
        if !self.pubsub.server_subs.contains(sub_id) {
            return Err(Error::UnknownId);
        }
        self.push_control(&Frame::SubDropped {
            sub_id: sub_id.get(),
            total,
        });
        self.stats.dropped = self.stats.dropped.max(total);
        Ok(())
    }

    /// Refuses a pub/sub frame that this role may not receive, or any without the
    /// capability.
    pub(super) fn pubsub_frame_allowed(&self, from_server: bool) -> Result<(), Refusal> {
        let client = self.role == Role::Client;
        if client != from_server || !self.cap(CAP_PUBSUB) {
            return Err((ErrorCode::PROTOCOL_ERROR, "unexpected frame"));
        }
        Ok(())
    }

    /// (Server) The peer subscribes.
    pub(super) fn on_subscribe(
        &mut self,
        fb: &Src<'_>,
        sub_id: SubId,
        policy: u8,
        credit: u64,
        filter: &[u8],
        group: &[u8],
    ) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(false)?;
        let pe = (ErrorCode::PROTOCOL_ERROR, "unexpected frame");
        let policy = OverflowPolicy::from_code(policy).ok_or(pe)?;
        let filter = core::str::from_utf8(filter).map_err(|_| pe)?;
        let group = core::str::from_utf8(group).map_err(|_| pe)?;
        let bad = (ErrorCode::PROTOCOL_ERROR, "bad filter");
        crate::topic::validate_filter(filter).map_err(|_| bad)?;
        if !group.is_empty() {
            crate::topic::validate_queue_group(group).map_err(|_| bad)?;
        }
        if sub_id.get() <= self.pubsub.max_peer_sub {
            return Err((ErrorCode::PROTOCOL_ERROR, "subscription id not increasing"));
        }
        self.pubsub.max_peer_sub = sub_id.get();
        if self.pubsub.server_subs.len() as u64 >= self.config.params.max_subscriptions {
            return Err((ErrorCode::SUBSCRIPTION_LIMIT, "too many subscriptions"));
        }
        let credit = u32::try_from(credit).unwrap_or(u32::MAX);
        let _ = self.pubsub.server_subs.insert(sub_id, ServerSub { credit });
        let data = self.new_data_id();
        self.push_frame_event(
            Event::Subscribed {
                sub_id,
                policy,
                credit,
                data,
            },
            fb,
        );
        Ok(())
    }

    /// (Server) The peer unsubscribes.
    pub(super) fn on_unsubscribe(&mut self, sub_id: SubId) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(false)?;
        if self.pubsub.server_subs.remove(sub_id).is_some() {
            self.push_event(Event::Unsubscribed { sub_id }, None);
        }
        Ok(())
    }

    /// (Server) The subscriber grants delivery credit.
    pub(super) fn on_sub_credit(
        &mut self,
        now: Instant,
        sub_id: SubId,
        increment: u64,
    ) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(false)?;
        if increment == 0 && self.empty_frame(now) {
            return Ok(());
        }
        if let Some(s) = self.pubsub.server_subs.get_mut(sub_id) {
            let inc = u32::try_from(increment).unwrap_or(u32::MAX);
            s.credit = s.credit.saturating_add(inc);
            self.push_event(
                Event::Credit {
                    sub_id,
                    increment: inc,
                },
                None,
            );
        }
        Ok(())
    }

    /// (Server) The peer publishes.
    pub(super) fn on_publish(&mut self, fb: &Src<'_>, topic: &[u8]) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(false)?;
        let ok = core::str::from_utf8(topic)
            .ok()
            .is_some_and(|t| crate::topic::validate_topic(t).is_ok());
        if !ok {
            return Err((ErrorCode::PROTOCOL_ERROR, "bad topic"));
        }
        self.stats.messages_received += 1;
        let data = self.new_data_id();
        self.push_frame_event(Event::Published { data }, fb);
        Ok(())
    }

    /// (Client) A delivery on one of our subscriptions.
    pub(super) fn on_deliver(&mut self, fb: &Src<'_>, sub_id: SubId) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(true)?;
        if sub_id.get() == 0 || sub_id.get() >= self.pubsub.next_sub_id {
            return Err((
                ErrorCode::PROTOCOL_ERROR,
                "delivery to unknown subscription",
            ));
        }
        self.stats.messages_received += 1;
        let Some(s) = self.pubsub.client_subs.get_mut(sub_id) else {
            return Ok(()); // unsubscribed while in flight
        };
        if s.credit == 0 {
            return Err((ErrorCode::FLOW_CONTROL_ERROR, "delivery beyond credit"));
        }
        s.credit -= 1;
        let data = self.new_data_id();
        self.push_frame_event(Event::Delivery { sub_id, data }, fb);
        Ok(())
    }

    /// (Client) The server reports messages its overflow policy dropped.
    pub(super) fn on_sub_dropped(&mut self, sub_id: SubId, total: u64) -> Result<(), Refusal> {
        self.pubsub_frame_allowed(true)?;
        if self.pubsub.client_subs.contains(sub_id) {
            let prev = self
                .pubsub
                .dropped_reported
                .get(sub_id)
                .copied()
                .unwrap_or(0);
            let _ = self.pubsub.dropped_reported.insert(sub_id, total);
            self.stats.dropped += total.saturating_sub(prev);
            self.push_event(Event::Dropped { sub_id, total }, None);
        }
        Ok(())
    }
}
