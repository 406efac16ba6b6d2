//! The state shared between a connection's I/O task ([`Driver`]) and the
//! application's [`Handle`](super::Handle)s: the connection behind one lock, the
//! waiters, and the bounded queues between them.

use super::flush::FlushSlot;
pub(crate) use super::sync::lock;
use super::sync::{Arc, Mutex};
use super::{Clock, Delivery, IncomingRequest, Reply};
use bytes::Bytes;
use core::task::Waker;
use std::collections::{HashMap, HashSet, VecDeque};
use std::vec::Vec;
use weft_core::config::OverflowPolicy;
use weft_core::conn::{CloseInfo, Connection, DataId, Event, FlushId, Outcome};
use weft_core::error::ErrorCode;
use weft_core::time::Instant;
use weft_core::{RequestId, StreamId, SubId};

/// What a server connection's driver hands to the hub after releasing its lock.
#[derive(Debug, Clone)]
pub(crate) enum HubEvent {
    Subscribe {
        sub_id: SubId,
        filter: Bytes,
        group: Bytes,
        policy: OverflowPolicy,
        credit: u32,
    },
    Unsubscribe {
        sub_id: SubId,
    },
    Credit {
        sub_id: SubId,
        increment: u32,
    },
    Publish {
        topic: Bytes,
        payload: Bytes,
    },
}

/// The result slot of one request.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) reply: Option<Reply>,
    pub(crate) waker: Option<Waker>,
}

/// Deliveries of one subscription waiting for the application.
#[derive(Debug, Default)]
pub(crate) struct SubQueue {
    pub(crate) queue: VecDeque<Delivery>,
    pub(crate) waker: Option<Waker>,
    pub(crate) dropped: u64,
}

/// Waiters of one stream.
#[derive(Debug, Default)]
pub(crate) struct StreamWaiters {
    pub(crate) read: Option<Waker>,
    pub(crate) write: Option<Waker>,
    pub(crate) reset: Option<u64>,
    pub(crate) closed: bool,
    /// A `WeftStream` exists for it; the entry goes once closed and dropped.
    pub(crate) held: bool,
}

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) conn: Connection,
    pub(crate) clock: Clock,
    /// Bound on each application-facing queue (messages, requests, deliveries per
    /// subscription, streams to accept); when one is full, events stop being
    /// drained, input stops being taken, and the peer is held back by the transport.
    pub(crate) queue_cap: usize,
    pub(crate) driver_waker: Option<Waker>,
    pub(crate) connected: bool,
    pub(crate) connect_wakers: Vec<Waker>,
    pub(crate) responses: HashMap<RequestId, Slot>,
    pub(crate) messages: VecDeque<Bytes>,
    pub(crate) message_waker: Option<Waker>,
    pub(crate) requests: VecDeque<IncomingRequest>,
    pub(crate) request_waker: Option<Waker>,
    /// Peer requests the application holds (popped, not yet answered).
    pub(crate) live_requests: HashSet<RequestId>,
    /// Of those, the ones the peer cancelled or that expired: answering is moot.
    pub(crate) cancelled: HashSet<RequestId>,
    /// Tasks waiting for a held request to be cancelled (`IncomingRequest::cancelled`).
    pub(crate) cancel_wakers: HashMap<RequestId, Waker>,
    pub(crate) subs: HashMap<SubId, SubQueue>,
    pub(crate) streams: HashMap<StreamId, StreamWaiters>,
    pub(crate) accept: VecDeque<StreamId>,
    pub(crate) accept_waker: Option<Waker>,
    /// Tasks waiting for send-queue room, and for a free request slot.
    pub(crate) send_waiters: Vec<Waker>,
    pub(crate) request_cap_waiters: Vec<Waker>,
    pub(crate) closed: Option<CloseInfo>,
    pub(crate) closed_wakers: Vec<Waker>,
    /// Flushes the application waits for, and tasks waiting for room for one
    /// (`weft_core::conn::MAX_FLUSHES` are outstanding).
    pub(crate) flushes: HashMap<FlushId, FlushSlot>,
    pub(crate) flush_room: Vec<Waker>,
    /// The transport's peer address, if the adapter knows one.
    pub(crate) peer_addr: Option<std::net::SocketAddr>,
    /// Live handles; dropping the last one closes the connection gracefully.
    pub(crate) handles: usize,
    pub(crate) hub_events: VecDeque<HubEvent>,
    /// A hub is attached: pub/sub events are kept for it.
    pub(crate) routed: bool,
    /// A publish the hub could not take yet (wait policy): draining pauses.
    pub(crate) stalled: bool,
    /// Draining stopped on a full application queue: a reader that makes enough
    /// room wakes the driver (and only then, so a reader keeping up costs the
    /// driver no wake-up per item).
    pub(crate) paused: bool,
    /// Deliveries routed to this connection that did not fit its send queue yet;
    /// bounded by the subscriptions' credit, retried as the queue drains.
    pub(crate) parked: VecDeque<(SubId, Bytes, Bytes)>,
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("conn", &self.conn)
            .field("handles", &self.handles)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Delivers a routed message now, or parks it (in order) until the send queue
    /// has room: never dropped.
    pub(crate) fn deliver_or_park(&mut self, sub_id: SubId, topic: Bytes, payload: Bytes) {
        if self.parked.is_empty() {
            match self.conn.deliver(
                sub_id,
                &topic,
                &payload,
                weft_core::config::Priority::Normal,
            ) {
                Err(weft_core::error::Error::Blocked) => {}
                // Delivered, or the subscription or connection is gone.
                _ => return,
            }
        }
        self.parked.push_back((sub_id, topic, payload));
    }

    /// Retries parked deliveries in order while they fit.
    pub(crate) fn unpark(&mut self) {
        while let Some((sub_id, topic, payload)) = self.parked.front() {
            match self
                .conn
                .deliver(*sub_id, topic, payload, weft_core::config::Priority::Normal)
            {
                Err(weft_core::error::Error::Blocked) => return,
                _ => {
                    self.parked.pop_front();
                }
            }
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Wakes the I/O task: there is something to send or a deadline changed.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver_waker.take() {
            w.wake();
        }
    }

    fn full(&self) -> bool {
        let cap = self.queue_cap;
        self.stalled
            || self.messages.len() >= cap
            || self.requests.len() >= cap
            || self.accept.len() >= cap
            || self.hub_events.len() >= cap
            || self.subs.values().any(|s| s.queue.len() >= cap)
    }

    fn data(&self, id: DataId) -> (Bytes, Bytes, Bytes) {
        match self.conn.data(id) {
            // Subject and payload are shared slices of the received record; the
            // text (an error message, rare) is copied.
            Some(d) => (
                self.conn.take_subject(id).unwrap_or_default(),
                self.conn.take_payload(id).unwrap_or_default(),
                Bytes::copy_from_slice(d.text.as_bytes()),
            ),
            None => Default::default(),
        }
    }

    /// Moves the connection's events to the waiters, until an application queue is
    /// full (then the rest waits, bounded, inside the connection).
    pub(crate) fn drain_events(&mut self) {
        while !self.full() {
            let Some(ev) = self.conn.poll_event() else {
                break;
            };
            self.dispatch(ev);
        }
        // Cleared only by the wake-up below: a later drain that finds the queues
        // with room (the connection holding no events, the transport holding the
        // input) must not forget that the driver is waiting for a reader.
        if self.full() {
            self.paused = true;
        }
    }

    /// A reader took an item from an application queue that now holds `left`:
    /// wakes a paused driver once the queue is down to half, so it resumes with
    /// room for a batch.
    pub(crate) fn room_made(&mut self, left: usize) {
        if self.paused && left <= self.queue_cap / 2 {
            self.paused = false;
            self.wake_driver();
        }
    }

    fn dispatch(&mut self, ev: Event) {
        match ev {
            Event::Connected => {
                self.connected = true;
                self.connect_wakers.drain(..).for_each(Waker::wake);
            }
            Event::Message { data } => {
                let (_, payload, _) = self.data(data);
                self.messages.push_back(payload);
                wake(&mut self.message_waker);
            }
            Event::Request { id, deadline, data } => {
                let (subject, payload, _) = self.data(data);
                self.requests.push_back(IncomingRequest {
                    id,
                    subject,
                    payload,
                    deadline,
                    shared: None,
                });
                wake(&mut self.request_waker);
            }
            Event::Response { id, outcome, data } => {
                let (payload, text) = match data {
                    Some(d) => {
                        let (_, p, t) = self.data(d);
                        (p, t)
                    }
                    None => (Bytes::new(), Bytes::new()),
                };
                if let Some(slot) = self.responses.get_mut(&id) {
                    slot.reply = Some(Reply {
                        outcome,
                        payload,
                        message: text,
                    });
                    wake(&mut slot.waker);
                }
                self.request_cap_waiters.drain(..).for_each(Waker::wake);
            }
            Event::RequestCancelled { id } => {
                // Remembered only for a request the application holds or will still
                // be handed (answering it then reports UnknownId); a request already
                // answered leaves nothing behind, so the set stays bounded.
                if self.live_requests.contains(&id) || self.requests.iter().any(|r| r.id == id) {
                    self.cancelled.insert(id);
                }
                if let Some(w) = self.cancel_wakers.remove(&id) {
                    w.wake();
                }
            }
            // Without a hub nothing routes pub/sub: the events go (a server
            // connection made with `spawn` rather than a `Server`).
            Event::Subscribed { .. }
            | Event::Unsubscribed { .. }
            | Event::Credit { .. }
            | Event::Published { .. }
                if !self.routed => {}
            Event::Subscribed {
                sub_id,
                policy,
                credit,
                data,
            } => {
                let filter = self
                    .conn
                    .data(data)
                    .map(|d| Bytes::copy_from_slice(d.subject));
                let group = self
                    .conn
                    .data(data)
                    .map(|d| Bytes::copy_from_slice(d.payload));
                self.hub_events.push_back(HubEvent::Subscribe {
                    sub_id,
                    filter: filter.unwrap_or_default(),
                    group: group.unwrap_or_default(),
                    policy,
                    credit,
                });
            }
            Event::Flushed(id) => {
                if let Some(f) = self.flushes.get_mut(&id) {
                    f.done = true;
                    wake(&mut f.waker);
                }
                self.flush_room.drain(..).for_each(Waker::wake);
            }
            Event::Unsubscribed { sub_id } => {
                self.hub_events.push_back(HubEvent::Unsubscribe { sub_id })
            }
            Event::Credit { sub_id, increment } => self
                .hub_events
                .push_back(HubEvent::Credit { sub_id, increment }),
            Event::Published { data } => {
                let (topic, payload, _) = self.data(data);
                self.hub_events
                    .push_back(HubEvent::Publish { topic, payload });
            }
            Event::Delivery { sub_id, data } => {
                let (topic, payload, _) = self.data(data);
                if let Some(s) = self.subs.get_mut(&sub_id) {
                    s.queue.push_back(Delivery { topic, payload });
                    wake(&mut s.waker);
                }
            }
            Event::Dropped { sub_id, total } => {
                if let Some(s) = self.subs.get_mut(&sub_id) {
                    s.dropped = total;
                }
            }
            Event::StreamOpened(id) => {
                self.streams.entry(id).or_default();
                self.accept.push_back(id);
                wake(&mut self.accept_waker);
            }
            Event::StreamReadable(id) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    wake(&mut s.read);
                }
            }
            Event::StreamWritable(id) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    wake(&mut s.write);
                }
            }
            Event::StreamReset { id, code } => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.reset = Some(code);
                    wake(&mut s.read);
                    wake(&mut s.write);
                }
            }
            Event::StreamClosed(id) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.closed = true;
                    wake(&mut s.read);
                    wake(&mut s.write);
                    if !s.held && !self.accept.contains(&id) {
                        self.streams.remove(&id);
                    }
                }
            }
            Event::Writable => self.send_waiters.drain(..).for_each(Waker::wake),
            Event::Draining { .. } => {}
            Event::Closed(info) => {
                self.closed = Some(info);
                self.wake_all();
            }
            // `Event` is non-exhaustive for applications; this crate is released in
            // lockstep with weft-core and handles every kind above, so a kind that
            // lands here is one added to the core and not yet wired through.
            _ => debug_assert!(false, "event not handled by the driver"),
        }
    }

    /// The connection is over: every waiter learns it.
    pub(crate) fn wake_all(&mut self) {
        self.connect_wakers.drain(..).for_each(Waker::wake);
        for slot in self.responses.values_mut() {
            wake(&mut slot.waker);
        }
        wake(&mut self.message_waker);
        wake(&mut self.request_waker);
        wake(&mut self.accept_waker);
        for s in self.subs.values_mut() {
            wake(&mut s.waker);
        }
        for s in self.streams.values_mut() {
            wake(&mut s.read);
            wake(&mut s.write);
        }
        self.send_waiters.drain(..).for_each(Waker::wake);
        self.request_cap_waiters.drain(..).for_each(Waker::wake);
        self.closed_wakers.drain(..).for_each(Waker::wake);
        for f in self.flushes.values_mut() {
            wake(&mut f.waker);
        }
        self.flush_room.drain(..).for_each(Waker::wake);
        self.cancel_wakers.drain().for_each(|(_, w)| w.wake());
    }
}

pub(crate) fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// The lock around a connection, shared by its driver and its handles.
pub(crate) type Shared = Arc<Mutex<State>>;

/// The I/O side of one connection: what an adapter's task or event loop calls.
///
/// The adapter reads bytes from its transport and offers them with
/// [`handle_input`](Self::handle_input) (keeping what was not taken), writes what
/// [`poll_transmit`](Self::poll_transmit) produces, calls
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout),
/// [`handle_eof`](Self::handle_eof) when the transport ends, and registers its waker
/// with [`register`](Self::register) so that application commands wake it. It stops
/// when [`is_finished`](Self::is_finished).
pub struct Driver {
    pub(crate) shared: Shared,
    pub(crate) hub: Option<(std::sync::Arc<super::Hub>, u64)>,
    /// The configuration's `linger`: how long the transport is kept once finished.
    pub(crate) linger: core::time::Duration,
}

impl core::fmt::Debug for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Driver {
    /// Takes bytes read from the transport; returns how many were taken. Fewer than
    /// offered means the application's queues are full: keep the rest, stop
    /// reading, and offer it again when the driver's waker is woken (the
    /// application's next read does that).
    pub fn handle_input(&mut self, data: &[u8]) -> usize {
        let taken = {
            let mut st = lock(&self.shared);
            let now = st.now();
            let mut taken = 0;
            let mut idle = 0;
            // Processing what the connection holds can make room for more input;
            // retry until everything is taken or two offers in a row take nothing,
            // which means an application queue is full (its reader wakes us).
            while taken < data.len() && idle < 2 {
                let n = st.conn.handle_input(now, &data[taken..]);
                st.drain_events();
                taken += n;
                idle = if n == 0 { idle + 1 } else { 0 };
            }
            taken
        };
        self.flush_hub();
        taken
    }

    /// The transport ended.
    pub fn handle_eof(&mut self) {
        let mut st = lock(&self.shared);
        let now = st.now();
        st.conn.handle_eof(now);
        st.drain_events();
        if st.closed.is_none() && st.conn.is_closed() {
            st.wake_all();
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self) {
        {
            let mut st = lock(&self.shared);
            let now = st.now();
            if st.conn.poll_timeout().is_some_and(|t| t <= now) {
                st.conn.handle_timeout(now);
            }
            st.drain_events();
        }
        self.flush_hub();
    }

    /// Writes bytes to send into `buf`; 0 when there is nothing to send. Use at
    /// least [`Connection::MIN_TRANSMIT_BUFFER`] bytes so progress never depends on
    /// the peer's limits.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> usize {
        // Pub/sub events the hub has not applied yet (a stalled publish, or events a
        // handle's call drained) hold back the PONGs owed to the peer: a PONG
        // promises that what came before its PING was processed (spec 14.1).
        self.flush_hub();
        let n = {
            let mut st = lock(&self.shared);
            let now = st.now();
            st.unpark();
            let unapplied = !st.hub_events.is_empty();
            st.conn.hold_pongs(unapplied);
            let n = st.conn.poll_transmit(now, buf);
            // Transmitting can free queue room and complete a drain: tell the waiters,
            // resume events paused on a full application queue, and retry parked
            // deliveries (they go out with the next call).
            st.drain_events();
            st.unpark();
            n
        };
        self.flush_hub();
        n
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        let st = lock(&self.shared);
        let t = st.conn.poll_timeout()?;
        Some(st.clock.to_std(t))
    }

    /// Records the transport's peer address, for [`Handle::peer_addr`](super::Handle::peer_addr).
    pub fn set_peer_addr(&self, addr: std::net::SocketAddr) {
        lock(&self.shared).peer_addr = Some(addr);
    }

    /// Registers the waker to wake when an application command queued work, a
    /// queue drained, or the last handle was dropped. A wake consumes the
    /// registration: register again on every pass of the I/O loop.
    pub fn register(&self, waker: &Waker) {
        let mut st = lock(&self.shared);
        match &st.driver_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => st.driver_waker = Some(waker.clone()),
        }
    }

    /// How long the transport is kept once the driver is finished
    /// ([`Config::linger`](weft_core::Config::linger)): the last bytes written, the
    /// write direction shut down, input discarded until the peer's end of stream.
    pub fn linger(&self) -> core::time::Duration {
        self.linger
    }

    /// True once the connection is closed and its last bytes were handed out.
    pub fn is_finished(&self) -> bool {
        lock(&self.shared).conn.is_closed()
    }

    /// Hands server-side pub/sub events to the hub, outside the connection's lock
    /// so the hub can lock other connections to deliver.
    fn flush_hub(&mut self) {
        let Some((hub, key)) = &self.hub else {
            return;
        };
        let events: Vec<HubEvent> = {
            let mut st = lock(&self.shared);
            if st.stalled {
                return;
            }
            st.hub_events.drain(..).collect()
        };
        if !events.is_empty() {
            hub.on_events(*key, events);
        }
    }

    /// Resumes after the hub made room for a stalled publish.
    pub(crate) fn unstall(shared: &Shared) {
        let mut st = lock(shared);
        st.stalled = false;
        st.wake_driver();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some((hub, key)) = self.hub.take() {
            hub.detach(key);
        }
        let mut st = lock(&self.shared);
        // Events held back by full application queues still count: the last of
        // them may be the close that explains the end.
        st.queue_cap = usize::MAX;
        st.stalled = false;
        st.drain_events();
        if st.closed.is_none() {
            // The I/O side is gone: nothing will ever complete.
            st.closed = Some(CloseInfo {
                code: ErrorCode::NO_ERROR,
                initiator: weft_core::conn::Side::Local,
                kind: weft_core::conn::CloseKind::Lost,
            });
        }
        st.wake_all();
    }
}

/// The reply of a request whose connection ended without an answer.
pub(crate) fn closed_reply() -> Reply {
    Reply {
        outcome: Outcome::Lost,
        payload: Bytes::new(),
        message: Bytes::new(),
    }
}
