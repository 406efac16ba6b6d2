//! The application's side: [`Handle`] and its futures. They work on any executor:
//! they only use the [`Waker`] they are polled with.

use super::shared::{closed_reply, lock, wake, Shared, Slot, StreamWaiters};
use super::{Delivery, Reply};
use bytes::Bytes;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::vec::Vec;
use weft_core::config::Priority;
use weft_core::conn::{CloseInfo, Negotiated, Outcome, Stats};
use weft_core::error::{Error, ErrorCode};
use weft_core::stream::ReadOutcome;
use weft_core::time::Instant;
use weft_core::{RequestId, StreamId, SubId};

pub(crate) fn push_waker(list: &mut std::vec::Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

pub(crate) fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(x) if x.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

/// The application's handle to a connection. Clone it freely; when the last clone
/// is dropped the connection closes gracefully.
pub struct Handle {
    pub(crate) shared: Shared,
}

impl core::fmt::Debug for Handle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        lock(&self.shared).handles += 1;
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        st.handles -= 1;
        if st.handles == 0 && st.closed.is_none() {
            let now = st.now();
            st.conn.close(now, ErrorCode::NO_ERROR, "");
            st.drain_events();
            st.wake_driver();
        }
    }
}

impl Handle {
    /// Resolves once the handshake completed (`Ok`) or the connection closed first.
    pub fn connected(&self) -> Connected {
        Connected {
            shared: self.shared.clone(),
        }
    }

    /// What the handshake settled, once connected.
    pub fn negotiated(&self) -> Option<Negotiated> {
        lock(&self.shared).conn.negotiated().copied()
    }

    /// (Server) The key id the client authenticated with, once connected with
    /// authentication; `None` otherwise (see `Connection::peer_key_id`).
    pub fn peer_key_id(&self) -> Option<Vec<u8>> {
        lock(&self.shared).conn.peer_key_id().map(<[u8]>::to_vec)
    }

    /// The transport's peer address, when the adapter knows one (TCP
    /// connections of every adapter's `connect` and server).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        lock(&self.shared).peer_addr
    }

    /// Connection statistics.
    pub fn stats(&self) -> Stats {
        lock(&self.shared).conn.stats()
    }

    /// Queues a one-way message now, or fails (`Blocked` when the send queue is
    /// full).
    pub fn try_send(&self, payload: &[u8]) -> Result<(), Error> {
        let mut st = lock(&self.shared);
        st.conn.send_message(payload, Priority::Normal)?;
        st.wake_driver();
        Ok(())
    }

    /// Queues a one-way message, waiting for queue room. For many messages at
    /// once, [`send_many`](Self::send_many) takes one lock and one wake-up for all.
    pub fn send<'a>(&'a self, payload: &'a [u8]) -> SendFuture<'a> {
        SendFuture {
            handle: self,
            topic: None,
            payload,
            prio: Priority::Normal,
        }
    }

    /// [`send`](Self::send) at a chosen priority.
    pub fn send_with<'a>(&'a self, payload: &'a [u8], prio: Priority) -> SendFuture<'a> {
        SendFuture {
            handle: self,
            topic: None,
            payload,
            prio,
        }
    }

    /// Publishes on a topic, waiting for queue room.
    pub fn publish<'a>(&'a self, topic: &'a str, payload: &'a [u8]) -> SendFuture<'a> {
        self.publish_with(topic, payload, Priority::Normal)
    }

    /// [`publish`](Self::publish) at a chosen priority.
    pub fn publish_with<'a>(
        &'a self,
        topic: &'a str,
        payload: &'a [u8],
        prio: Priority,
    ) -> SendFuture<'a> {
        SendFuture {
            handle: self,
            topic: Some(topic),
            payload,
            prio,
        }
    }

    /// Sends a request and resolves with its reply. Dropping the future cancels the
    /// request on the wire.
    ///
    /// The request is queued by this call when the send queue has room (so
    /// requests go out in the order they were made, and a `timeout` counts from
    /// here); only when it is full are `subject` and `payload` copied and the
    /// request queued by a later poll, once there is room. Why: copying both into
    /// owned buffers on every call was two of the three allocations per round trip
    /// that W7 counted through weft-tokio.
    pub fn request(
        &self,
        subject: &[u8],
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> RequestFuture {
        self.request_with(subject, payload, timeout, Priority::Normal)
    }

    /// [`request`](Self::request) at a chosen transmit priority (the responder
    /// answers at the priority it chooses).
    pub fn request_with(
        &self,
        subject: &[u8],
        payload: &[u8],
        timeout: Option<Duration>,
        prio: Priority,
    ) -> RequestFuture {
        let mut st = lock(&self.shared);
        let state = match issue(&mut st, subject, payload, timeout, prio, None) {
            Ok(id) => ReqState::Waiting(id),
            Err(Error::Blocked) => ReqState::Issue {
                subject: Bytes::copy_from_slice(subject),
                payload: Bytes::copy_from_slice(payload),
                timeout,
                prio,
            },
            Err(e) => ReqState::Failed(e),
        };
        drop(st);
        RequestFuture {
            shared: self.shared.clone(),
            state,
        }
    }

    /// The next one-way message; `None` once the connection is closed and none is
    /// left.
    pub fn next_message(&self) -> NextMessage {
        NextMessage {
            shared: self.shared.clone(),
        }
    }

    /// Waits for one-way messages and moves up to `max` of those waiting into
    /// `out` (appended) under one lock: the batch form of
    /// [`next_message`](Self::next_message) for receivers of many small messages.
    /// Resolves with how many were moved, 0 once the connection is closed and
    /// none is left (or if `max` is 0).
    pub fn next_messages<'a>(&self, out: &'a mut Vec<Bytes>, max: usize) -> NextMessages<'a> {
        NextMessages {
            shared: self.shared.clone(),
            out,
            max,
        }
    }

    /// The next request from the peer; `None` once closed.
    pub fn next_request(&self) -> NextRequest {
        NextRequest {
            shared: self.shared.clone(),
        }
    }

    /// Serves requests until the connection closes: `handler` maps subject and
    /// payload to a result payload, or an application error code and message.
    pub async fn serve<F>(&self, mut handler: F)
    where
        F: FnMut(&[u8], &[u8]) -> Result<std::vec::Vec<u8>, (u64, std::string::String)>,
    {
        while let Some(req) = self.next_request().await {
            let _ = match handler(&req.subject, &req.payload) {
                Ok(body) => req.respond(Outcome::Ok, "", &body),
                Err((code, msg)) => req.respond(Outcome::Error(code), &msg, b""),
            };
        }
    }

    /// Opens a stream.
    pub fn open_stream(&self) -> Result<WeftStream, Error> {
        let mut st = lock(&self.shared);
        let id = st.conn.open_stream()?;
        st.streams.insert(
            id,
            StreamWaiters {
                held: true,
                ..StreamWaiters::default()
            },
        );
        st.wake_driver();
        Ok(WeftStream {
            shared: self.shared.clone(),
            id,
            finished: false,
        })
    }

    /// The next stream the peer opened; `None` once closed.
    pub fn accept_stream(&self) -> AcceptStream {
        AcceptStream {
            shared: self.shared.clone(),
        }
    }

    /// Starts closing with `code` (graceful for `NO_ERROR` and application codes).
    pub fn close(&self, code: ErrorCode, reason: &str) {
        let mut st = lock(&self.shared);
        let now = st.now();
        st.conn.close(now, code, reason);
        st.drain_events();
        st.wake_driver();
    }

    /// Closes gracefully and waits until the connection is over: everything
    /// accepted before the call has been delivered to the peer's application
    /// (`Ok`), or the close says why not (`Err`, with [`Stats::unsent`] counting
    /// what was never written). Await it before leaving `main` or dropping the
    /// runtime: a runtime that stops drops its I/O tasks mid-drain, and what was
    /// still queued is lost. Dropping the last handle closes gracefully too, but
    /// nobody learns the outcome.
    pub async fn shutdown(&self) -> Result<(), CloseInfo> {
        self.close(ErrorCode::NO_ERROR, "");
        let info = self.closed().await;
        if info.kind == weft_core::conn::CloseKind::Graceful && self.stats().unsent == 0 {
            Ok(())
        } else {
            Err(info)
        }
    }

    /// Resolves when the connection is over.
    pub fn closed(&self) -> Closed {
        Closed {
            shared: self.shared.clone(),
        }
    }
}

/// Resolves when the handshake completes.
#[derive(Debug)]
pub struct Connected {
    shared: Shared,
}

impl Future for Connected {
    type Output = Result<(), CloseInfo>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared);
        if st.connected {
            return Poll::Ready(Ok(()));
        }
        if let Some(c) = st.closed {
            return Poll::Ready(Err(c));
        }
        push_waker(&mut st.connect_wakers, cx.waker());
        Poll::Pending
    }
}

/// Resolves with the close details.
#[derive(Debug)]
pub struct Closed {
    shared: Shared,
}

impl Future for Closed {
    type Output = CloseInfo;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseInfo> {
        let mut st = lock(&self.shared);
        if let Some(c) = st.closed {
            return Poll::Ready(c);
        }
        push_waker(&mut st.closed_wakers, cx.waker());
        Poll::Pending
    }
}

/// Queues a message or publication once there is room.
#[derive(Debug)]
pub struct SendFuture<'a> {
    handle: &'a Handle,
    topic: Option<&'a str>,
    payload: &'a [u8],
    prio: Priority,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), Error>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.handle.shared);
        let r = match self.topic {
            Some(t) => st.conn.publish(t, self.payload, self.prio),
            None => st.conn.send_message(self.payload, self.prio),
        };
        match r {
            Ok(()) => {
                st.wake_driver();
                Poll::Ready(Ok(()))
            }
            Err(Error::Blocked) if st.closed.is_none() => {
                push_waker(&mut st.send_waiters, cx.waker());
                // The driver frees room by transmitting: make sure it runs.
                st.wake_driver();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[derive(Debug)]
enum ReqState {
    /// Not queued yet: the send queue was full.
    Issue {
        subject: Bytes,
        payload: Bytes,
        timeout: Option<Duration>,
        prio: Priority,
    },
    Waiting(RequestId),
    /// Refused when made; reported at the first poll.
    Failed(Error),
    Done,
}

/// Queues a request and its reply slot, or fails changing nothing.
fn issue(
    st: &mut super::shared::State,
    subject: &[u8],
    payload: &[u8],
    timeout: Option<Duration>,
    prio: Priority,
    waker: Option<&Waker>,
) -> Result<RequestId, Error> {
    if st.closed.is_some() {
        return Err(Error::Closed);
    }
    let now: Instant = st.now();
    let id = st.conn.request(now, subject, payload, timeout, prio)?;
    st.responses.insert(
        id,
        Slot {
            reply: None,
            waker: waker.cloned(),
        },
    );
    st.wake_driver();
    Ok(id)
}

/// A request in flight. Dropping it before completion cancels the request.
#[derive(Debug)]
pub struct RequestFuture {
    shared: Shared,
    state: ReqState,
}

impl Future for RequestFuture {
    type Output = Result<Reply, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = lock(&this.shared);
        let id = match core::mem::replace(&mut this.state, ReqState::Done) {
            ReqState::Issue {
                subject,
                payload,
                timeout,
                prio,
            } => match issue(&mut st, &subject, &payload, timeout, prio, Some(cx.waker())) {
                Ok(id) => {
                    this.state = ReqState::Waiting(id);
                    return Poll::Pending;
                }
                Err(Error::Blocked) => {
                    push_waker(&mut st.request_cap_waiters, cx.waker());
                    push_waker(&mut st.send_waiters, cx.waker());
                    st.wake_driver();
                    this.state = ReqState::Issue {
                        subject,
                        payload,
                        timeout,
                        prio,
                    };
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e)),
            },
            ReqState::Failed(e) => return Poll::Ready(Err(e)),
            ReqState::Done => return Poll::Ready(Err(Error::Closed)),
            ReqState::Waiting(id) => id,
        };
        this.state = ReqState::Waiting(id);
        let closed = st.closed.is_some();
        let Some(slot) = st.responses.get_mut(&id) else {
            this.state = ReqState::Done;
            return Poll::Ready(Err(Error::Closed));
        };
        if let Some(r) = slot.reply.take() {
            st.responses.remove(&id);
            this.state = ReqState::Done;
            return Poll::Ready(Ok(r));
        }
        if closed {
            st.responses.remove(&id);
            this.state = ReqState::Done;
            return Poll::Ready(Ok(closed_reply()));
        }
        set_waker(&mut slot.waker, cx.waker());
        Poll::Pending
    }
}

impl Drop for RequestFuture {
    fn drop(&mut self) {
        if let ReqState::Waiting(id) = self.state {
            let mut st = lock(&self.shared);
            // Completed at most once: a reply that raced in is simply discarded.
            if st.responses.remove(&id).is_some_and(|s| s.reply.is_none()) {
                let _ = st.conn.cancel(id);
                st.wake_driver();
            }
        }
    }
}

/// Resolves with the next one-way message.
#[derive(Debug)]
pub struct NextMessage {
    shared: Shared,
}

impl Future for NextMessage {
    type Output = Option<Bytes>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared);
        if let Some(m) = st.messages.pop_front() {
            let left = st.messages.len();
            st.room_made(left);
            return Poll::Ready(Some(m));
        }
        if st.closed.is_some() {
            return Poll::Ready(None);
        }
        set_waker(&mut st.message_waker, cx.waker());
        Poll::Pending
    }
}

/// Future of [`Handle::next_messages`].
#[derive(Debug)]
pub struct NextMessages<'a> {
    shared: Shared,
    out: &'a mut Vec<Bytes>,
    max: usize,
}

impl Future for NextMessages<'_> {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        let mut st = lock(&this.shared);
        let n = this.max.min(st.messages.len());
        if n > 0 || this.max == 0 {
            this.out.extend(st.messages.drain(..n));
            let left = st.messages.len();
            st.room_made(left);
            return Poll::Ready(n);
        }
        if st.closed.is_some() {
            return Poll::Ready(0);
        }
        set_waker(&mut st.message_waker, cx.waker());
        Poll::Pending
    }
}

/// A request received from the peer. Answer it with [`respond`](Self::respond);
/// dropping it unanswered replies `NoResponder`.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The peer's request id.
    pub id: RequestId,
    /// What is asked for.
    pub subject: Bytes,
    /// The argument.
    pub payload: Bytes,
    /// When the requester gives up, if it set a deadline.
    pub deadline: Option<Instant>,
    pub(crate) shared: Option<Shared>,
}

impl IncomingRequest {
    /// Answers the request. `UnknownId` if the requester cancelled it meanwhile.
    pub fn respond(self, outcome: Outcome, message: &str, payload: &[u8]) -> Result<(), Error> {
        self.respond_with(outcome, message, payload, Priority::Normal)
    }

    /// [`respond`](Self::respond) at a chosen transmit priority.
    pub fn respond_with(
        mut self,
        outcome: Outcome,
        message: &str,
        payload: &[u8],
        prio: Priority,
    ) -> Result<(), Error> {
        let shared = self.shared.take().ok_or(Error::Closed)?;
        let mut st = lock(&shared);
        st.live_requests.remove(&self.id);
        if st.cancelled.remove(&self.id) {
            return Err(Error::UnknownId);
        }
        let r = st.conn.respond(self.id, outcome, message, payload, prio);
        st.wake_driver();
        r
    }
}

impl IncomingRequest {
    /// When the requester gives up, as a std instant (`None`: it set no deadline).
    /// Past it the request counts as cancelled and an answer is not sent.
    pub fn deadline_at(&self) -> Option<std::time::Instant> {
        let d = self.deadline?;
        let shared = self.shared.as_ref()?;
        Some(lock(shared).clock.to_std(d))
    }

    /// True once the requester cancelled the request, its deadline passed, or the
    /// connection closed: an answer would not be sent.
    pub fn is_cancelled(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| {
            let st = lock(s);
            st.cancelled.contains(&self.id) || st.closed.is_some()
        })
    }

    /// Resolves once [`is_cancelled`](Self::is_cancelled) holds: race the work
    /// against it to stop early.
    pub fn cancelled(&self) -> crate::RequestCancelled {
        crate::serve::RequestCancelled::new(self.shared.clone(), self.id)
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut st = lock(&shared);
            st.live_requests.remove(&self.id);
            if !st.cancelled.remove(&self.id) {
                let _ = st
                    .conn
                    .respond(self.id, Outcome::NoResponder, "", b"", Priority::Normal);
                st.wake_driver();
            }
        }
    }
}

/// Resolves with the next request from the peer.
#[derive(Debug)]
pub struct NextRequest {
    shared: Shared,
}

impl Future for NextRequest {
    type Output = Option<IncomingRequest>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared);
        if let Some(mut r) = st.requests.pop_front() {
            st.live_requests.insert(r.id);
            r.shared = Some(self.shared.clone());
            let left = st.requests.len();
            st.room_made(left);
            return Poll::Ready(Some(r));
        }
        if st.closed.is_some() {
            return Poll::Ready(None);
        }
        set_waker(&mut st.request_waker, cx.waker());
        Poll::Pending
    }
}

/// A subscription: a stream of deliveries. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    shared: Shared,
    sub_id: SubId,
}

impl Subscription {
    pub(crate) fn new(shared: Shared, sub_id: SubId) -> Self {
        Subscription { shared, sub_id }
    }

    /// The subscription id.
    pub fn id(&self) -> SubId {
        self.sub_id
    }

    /// Messages the server dropped for it so far (overflow policy).
    pub fn dropped(&self) -> u64 {
        lock(&self.shared)
            .subs
            .get(&self.sub_id)
            .map_or(0, |s| s.dropped)
    }

    /// Polls for the next delivery; `None` once the connection is closed.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut st = lock(&self.shared);
        let closed = st.closed.is_some();
        let Some(q) = st.subs.get_mut(&self.sub_id) else {
            return Poll::Ready(None);
        };
        if let Some(d) = q.queue.pop_front() {
            let left = q.queue.len();
            if st.conn.delivery_consumed(self.sub_id) {
                // Credit to send back.
                st.wake_driver();
            }
            st.room_made(left);
            return Poll::Ready(Some(d));
        }
        if closed {
            return Poll::Ready(None);
        }
        set_waker(&mut q.waker, cx.waker());
        Poll::Pending
    }

    /// The next delivery.
    pub fn next_delivery(&mut self) -> NextDelivery<'_> {
        NextDelivery { sub: self }
    }
}

/// Deliveries as a stream (`StreamExt::next` of futures, tokio-stream or
/// futures-lite); it ends once the connection is closed and nothing is left.
impl futures_core::Stream for Subscription {
    type Item = Delivery;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        Subscription::poll_next(self.get_mut(), cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        st.subs.remove(&self.sub_id);
        let _ = st.conn.unsubscribe(self.sub_id);
        st.wake_driver();
    }
}

/// Resolves with a subscription's next delivery.
#[derive(Debug)]
pub struct NextDelivery<'a> {
    sub: &'a mut Subscription,
}

impl Future for NextDelivery<'_> {
    type Output = Option<Delivery>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.sub.poll_next(cx)
    }
}

/// Resolves with the next stream the peer opened.
#[derive(Debug)]
pub struct AcceptStream {
    shared: Shared,
}

impl Future for AcceptStream {
    type Output = Option<WeftStream>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared);
        if let Some(id) = st.accept.pop_front() {
            if let Some(w) = st.streams.get_mut(&id) {
                w.held = true;
            }
            let left = st.accept.len();
            st.room_made(left);
            return Poll::Ready(Some(WeftStream {
                shared: self.shared.clone(),
                id,
                finished: false,
            }));
        }
        if st.closed.is_some() {
            return Poll::Ready(None);
        }
        set_waker(&mut st.accept_waker, cx.waker());
        Poll::Pending
    }
}

/// One multiplexed stream: ordered bytes both ways. Adapters expose it through
/// their runtime's I/O traits. Dropping it finishes our direction.
#[derive(Debug)]
pub struct WeftStream {
    shared: Shared,
    id: StreamId,
    finished: bool,
}

fn io_err(kind: std::io::ErrorKind, what: &str) -> std::io::Error {
    std::io::Error::new(kind, std::string::String::from(what))
}

impl WeftStream {
    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Reads into `buf`: `Ok(0)` at the end of the peer's data.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut st = lock(&self.shared);
        match st.conn.stream_read(self.id, buf) {
            Ok(ReadOutcome::Data(n)) => {
                // Reading returns credit: the driver may have a window update to send.
                st.wake_driver();
                Poll::Ready(Ok(n))
            }
            Ok(ReadOutcome::Fin) => Poll::Ready(Ok(0)),
            Err(Error::Blocked) if st.closed.is_none() => {
                if let Some(w) = st.streams.get_mut(&self.id) {
                    set_waker(&mut w.read, cx.waker());
                }
                Poll::Pending
            }
            Err(_) => {
                let reset = st.streams.get(&self.id).and_then(|w| w.reset);
                Poll::Ready(match reset {
                    Some(_) => Err(io_err(
                        std::io::ErrorKind::ConnectionReset,
                        "stream reset by peer",
                    )),
                    None if st.closed.is_some() => Err(io_err(
                        std::io::ErrorKind::NotConnected,
                        "connection closed",
                    )),
                    None => Ok(0),
                })
            }
        }
    }

    /// Writes from `buf`, returning how much was accepted.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut st = lock(&self.shared);
        match st.conn.stream_write(self.id, buf) {
            Ok(n) => {
                st.wake_driver();
                Poll::Ready(Ok(n))
            }
            Err(Error::Blocked) if st.closed.is_none() => {
                if let Some(w) = st.streams.get_mut(&self.id) {
                    set_waker(&mut w.write, cx.waker());
                }
                st.wake_driver();
                Poll::Pending
            }
            Err(_) => Poll::Ready(Err(io_err(std::io::ErrorKind::BrokenPipe, "stream closed"))),
        }
    }

    /// Ends our direction (the peer reads end-of-stream after the data).
    pub fn finish(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let mut st = lock(&self.shared);
        let r = st.conn.stream_finish(self.id);
        st.wake_driver();
        r.map_err(|_| io_err(std::io::ErrorKind::BrokenPipe, "stream closed"))
    }

    /// Sets the stream's transmit priority (default normal).
    pub fn set_priority(&mut self, prio: Priority) -> Result<(), Error> {
        let mut st = lock(&self.shared);
        st.conn.stream_set_priority(self.id, prio)
    }

    /// Aborts both directions with an application code.
    pub fn reset(&mut self, code: u64) {
        self.finished = true;
        let mut st = lock(&self.shared);
        let _ = st.conn.stream_reset(self.id, code);
        st.wake_driver();
    }
}

impl Drop for WeftStream {
    fn drop(&mut self) {
        let _ = self.finish();
        let mut st = lock(&self.shared);
        if let Some(w) = st.streams.get_mut(&self.id) {
            w.held = false;
            wake(&mut w.read);
            if w.closed {
                st.streams.remove(&self.id);
            }
        }
    }
}
