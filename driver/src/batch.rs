//! Batch sends: many one-way messages (or publications on one topic) queued under
//! one lock and with one driver wake-up, instead of one of each per message.
//!
//! Why: in W3 (64 B pipelined messages) a per-message [`Handle::send`] costs a lock,
//! a poll and a driver wake, which is most of what the application side spends;
//! the baselines (tokio-util's `feed`, a `BufWriter`) batch the same way.
//!
//! Each message is queued or refused whole (the core's commit-on-success rule), in
//! order, so a batch that fails part-way has queued exactly the first
//! [`BatchError::queued`] messages: those are accepted (sent, or counted in
//! `Stats::unsent` if the connection ends first), the rest were never taken.

use crate::handle::{push_waker, Handle};
use crate::shared::lock;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use weft_core::config::Priority;
use weft_core::Error;

/// A batch send that stopped part-way: how many messages were queued before the
/// error, and the error that refused the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// Messages queued (accepted) before the error, counted from the first.
    pub queued: usize,
    /// Why the message at index `queued` was refused.
    pub error: Error,
}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "batch send stopped after {} messages: {}",
            self.queued, self.error
        )
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Queues every payload of a batch in order, waiting for queue room as needed;
/// from [`Handle::send_many`] or [`Handle::publish_many`].
#[derive(Debug)]
pub struct SendMany<'a, P> {
    handle: &'a Handle,
    topic: Option<&'a str>,
    payloads: &'a [P],
    prio: Priority,
    queued: usize,
}

impl<'a, P: AsRef<[u8]>> SendMany<'a, P> {
    pub(crate) fn new(
        handle: &'a Handle,
        topic: Option<&'a str>,
        payloads: &'a [P],
        prio: Priority,
    ) -> Self {
        SendMany {
            handle,
            topic,
            payloads,
            prio,
            queued: 0,
        }
    }
}

impl<P: AsRef<[u8]>> Future for SendMany<'_, P> {
    type Output = Result<(), BatchError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut st = lock(&this.handle.shared);
        let start = this.queued;
        let outcome = loop {
            let Some(p) = this.payloads.get(this.queued) else {
                break Poll::Ready(Ok(()));
            };
            let r = match this.topic {
                Some(t) => st.conn.publish(t, p.as_ref(), this.prio),
                None => st.conn.send_message(p.as_ref(), this.prio),
            };
            match r {
                Ok(()) => this.queued += 1,
                Err(Error::Blocked) if st.closed.is_none() => {
                    push_waker(&mut st.send_waiters, cx.waker());
                    // The driver frees room by transmitting: make sure it runs.
                    st.wake_driver();
                    return Poll::Pending;
                }
                Err(error) => {
                    break Poll::Ready(Err(BatchError {
                        queued: this.queued,
                        error,
                    }))
                }
            }
        };
        if this.queued > start {
            st.wake_driver();
        }
        outcome
    }
}

impl Handle {
    /// Queues every payload as a one-way message, in order, waiting for queue room
    /// as needed: [`send`](Self::send) for a batch, with one lock and one driver
    /// wake-up per batch instead of per message. Resolves once the last is queued;
    /// on an error, [`BatchError::queued`] says how many were (those are accepted,
    /// the rest are not).
    pub fn send_many<'a, P: AsRef<[u8]>>(&'a self, payloads: &'a [P]) -> SendMany<'a, P> {
        SendMany::new(self, None, payloads, Priority::Normal)
    }

    /// [`send_many`](Self::send_many) at a chosen priority.
    pub fn send_many_with<'a, P: AsRef<[u8]>>(
        &'a self,
        payloads: &'a [P],
        prio: Priority,
    ) -> SendMany<'a, P> {
        SendMany::new(self, None, payloads, prio)
    }

    /// Publishes every payload on `topic`, in order: [`publish`](Self::publish)
    /// for a batch, as [`send_many`](Self::send_many) is for `send`.
    pub fn publish_many<'a, P: AsRef<[u8]>>(
        &'a self,
        topic: &'a str,
        payloads: &'a [P],
    ) -> SendMany<'a, P> {
        SendMany::new(self, Some(topic), payloads, Priority::Normal)
    }
}
