//! Flushes and acknowledged subscriptions: [`Handle::flush`] and
//! [`Handle::subscribe`]'s future, both built on the core's
//! [`Connection::flush`](weft_core::conn::Connection::flush) (spec 14.1: a PONG
//! proves that the peer processed everything sent before its PING).

use super::handle::{push_waker, set_waker, Handle, Subscription};
use super::shared::{lock, Shared, SubQueue};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use weft_core::config::OverflowPolicy;
use weft_core::conn::FlushId;
use weft_core::error::Error;

/// One flush the application waits for.
#[derive(Debug, Default)]
pub(crate) struct FlushSlot {
    pub(crate) done: bool,
    pub(crate) waker: Option<Waker>,
}

impl Handle {
    /// Resolves once the peer has processed everything this handle's connection
    /// queued before the call: messages, requests and responses handed to its
    /// application, subscriptions registered with the server's router (so that a
    /// publication from any connection after this reaches them), publications
    /// routed. As `flush` in async-nats. Waits for the handshake first; fails with
    /// [`Error::Closed`] if the connection closes before the proof arrives.
    ///
    /// ```no_run
    /// # async fn f(h: weft_driver::Handle) -> Result<(), weft_core::Error> {
    /// h.try_send(b"last words")?;
    /// h.flush().await?; // the peer's application has them
    /// # Ok(()) }
    /// ```
    pub fn flush(&self) -> Flush {
        Flush {
            shared: self.shared.clone(),
            id: None,
        }
    }

    /// Subscribes to a topic filter (optionally in a queue group) and resolves once
    /// the server has registered the subscription: a publication the server routes
    /// after that, from any connection, is delivered to it. The SUBSCRIBE is queued
    /// at once, in call order; deliveries that arrive before the future resolves
    /// wait in the subscription. Fails at once for a refused subscription (invalid
    /// filter, too many, closed), and with [`Error::Closed`] if the connection
    /// closes before the server confirmed. Dropping the future, or the
    /// subscription, unsubscribes.
    pub fn subscribe(
        &self,
        filter: &str,
        group: Option<&str>,
        policy: OverflowPolicy,
    ) -> SubscribeFuture {
        let sub = {
            let mut st = lock(&self.shared);
            st.conn.subscribe(filter, group, policy).map(|id| {
                st.subs.insert(id, SubQueue::default());
                st.wake_driver();
                Subscription::new(self.shared.clone(), id)
            })
        };
        SubscribeFuture {
            sub: Some(sub),
            flush: self.flush(),
        }
    }
}

/// Resolves when the peer processed what was queued before it ([`Handle::flush`]).
#[derive(Debug)]
#[must_use = "a flush does nothing unless awaited"]
pub struct Flush {
    shared: Shared,
    id: Option<FlushId>,
}

impl Future for Flush {
    type Output = Result<(), Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared);
        if let Some(id) = self.id {
            let closed = st.closed.is_some();
            return match st.flushes.get_mut(&id) {
                Some(s) if s.done => {
                    st.flushes.remove(&id);
                    drop(st);
                    self.id = None;
                    Poll::Ready(Ok(()))
                }
                Some(s) if !closed => {
                    set_waker(&mut s.waker, cx.waker());
                    Poll::Pending
                }
                _ => {
                    st.flushes.remove(&id);
                    drop(st);
                    self.id = None;
                    Poll::Ready(Err(Error::Closed))
                }
            };
        }
        if st.closed.is_some() {
            return Poll::Ready(Err(Error::Closed));
        }
        if !st.connected {
            push_waker(&mut st.connect_wakers, cx.waker());
            return Poll::Pending;
        }
        match st.conn.flush() {
            Ok(id) => {
                st.flushes.insert(
                    id,
                    FlushSlot {
                        done: false,
                        waker: Some(cx.waker().clone()),
                    },
                );
                st.wake_driver();
                drop(st);
                self.id = Some(id);
                Poll::Pending
            }
            Err(Error::Blocked) => {
                // Room comes with the next completed flush (or the close).
                push_waker(&mut st.flush_room, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // Its PONG still comes; nobody waits for it.
            lock(&self.shared).flushes.remove(&id);
        }
    }
}

/// Resolves with a [`Subscription`] once the server registered it
/// ([`Handle::subscribe`]).
#[derive(Debug)]
#[must_use = "a subscription is confirmed only when awaited; dropping it unsubscribes"]
pub struct SubscribeFuture {
    sub: Option<Result<Subscription, Error>>,
    flush: Flush,
}

impl Future for SubscribeFuture {
    type Output = Result<Subscription, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &self.sub {
            Some(Ok(_)) => {}
            Some(Err(_)) => return Poll::Ready(self.sub.take().expect("checked")),
            None => panic!("SubscribeFuture polled after completion"),
        }
        match Pin::new(&mut self.flush).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(self.sub.take().expect("checked")),
            // Dropping the subscription unsubscribes (harmless once closed).
            Poll::Ready(Err(e)) => {
                self.sub = None;
                Poll::Ready(Err(e))
            }
        }
    }
}
