//! Serving requests with async handlers: [`Handle::serve_concurrent`] runs up to
//! a bound of them at once, answers with the outcome each returns, and drops a
//! handler whose request was cancelled, expired or lost its connection.

use super::handle::{Handle, IncomingRequest};
use super::shared::{lock, Shared};
use bytes::Bytes;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;
use std::string::String;
use std::vec::Vec;
use weft_core::conn::Outcome;
use weft_core::RequestId;

/// What a request handler answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Success, with the result payload.
    Ok(Vec<u8>),
    /// An application failure: its code and message.
    Error {
        /// The application's code.
        code: u64,
        /// A message for the requester.
        message: String,
    },
    /// This server does not serve the subject: the requester may try elsewhere.
    NoResponder,
    /// The handler gave up on the request.
    Cancelled,
}

/// A request as a handler sees it; dropping the handler's future is how it
/// learns of a cancellation (as with tonic and axum).
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// What is asked for.
    pub subject: Bytes,
    /// The argument.
    pub payload: Bytes,
    /// When the requester gives up, if it set a deadline.
    pub deadline: Option<std::time::Instant>,
}

/// Resolves when a held request is cancelled, expires, or its connection closes
/// ([`IncomingRequest::cancelled`]).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct RequestCancelled {
    shared: Option<Shared>,
    id: RequestId,
}

impl RequestCancelled {
    pub(crate) fn new(shared: Option<Shared>, id: RequestId) -> Self {
        RequestCancelled { shared, id }
    }
}

impl Future for RequestCancelled {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(());
        };
        let mut st = lock(shared);
        if st.cancelled.contains(&self.id) || st.closed.is_some() {
            return Poll::Ready(());
        }
        let slot = st
            .cancel_wakers
            .entry(self.id)
            .or_insert_with(|| cx.waker().clone());
        if !slot.will_wake(cx.waker()) {
            *slot = cx.waker().clone();
        }
        Poll::Pending
    }
}

impl Drop for RequestCancelled {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            lock(s).cancel_wakers.remove(&self.id);
        }
    }
}

type Handler<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// One request being handled.
struct InFlight<'a> {
    req: IncomingRequest,
    cancelled: RequestCancelled,
    work: Handler<'a>,
}

impl Handle {
    /// Serves requests until the connection closes, running `handler` for up to
    /// `max_concurrent` of them at once (more wait in the connection's bounded
    /// queue, which holds the peer back). Each answer is sent with the outcome
    /// the handler returns; a handler whose request is cancelled by the
    /// requester, passes its deadline, or whose connection closes is dropped
    /// unanswered. Everything runs on the calling task, on any executor.
    ///
    /// ```no_run
    /// # async fn f(h: weft_driver::Handle) {
    /// use weft_driver::Answer;
    /// h.serve_concurrent(64, |req| async move {
    ///     match &req.subject[..] {
    ///         b"greet" => Answer::Ok([b"hello, ".as_slice(), &req.payload].concat()),
    ///         _ => Answer::NoResponder,
    ///     }
    /// })
    /// .await;
    /// # }
    /// ```
    pub async fn serve_concurrent<F, Fut>(&self, max_concurrent: usize, mut handler: F)
    where
        F: FnMut(RequestInfo) -> Fut,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let max = max_concurrent.max(1);
        let mut next = Some(self.next_request());
        let mut running: Vec<InFlight<'static>> = Vec::new();
        core::future::poll_fn(|cx| {
            loop {
                // Take new requests while there is room.
                let mut took = false;
                while running.len() < max {
                    let Some(n) = next.as_mut() else { break };
                    match Pin::new(n).poll(cx) {
                        Poll::Ready(Some(req)) => {
                            let info = RequestInfo {
                                subject: req.subject.clone(),
                                payload: req.payload.clone(),
                                deadline: req.deadline_at(),
                            };
                            let cancelled = req.cancelled();
                            running.push(InFlight {
                                req,
                                cancelled,
                                work: Box::pin(handler(info)),
                            });
                            next = Some(self.next_request());
                            took = true;
                        }
                        Poll::Ready(None) => next = None,
                        Poll::Pending => break,
                    }
                }
                // Advance each handler; answer the finished, drop the cancelled.
                let mut freed = false;
                let mut i = 0;
                while i < running.len() {
                    let f = &mut running[i];
                    if Pin::new(&mut f.cancelled).poll(cx).is_ready() {
                        drop(running.swap_remove(i));
                        freed = true;
                        continue;
                    }
                    if let Poll::Ready(answer) = f.work.as_mut().poll(cx) {
                        let f = running.swap_remove(i);
                        respond(f.req, answer);
                        freed = true;
                        continue;
                    }
                    i += 1;
                }
                if next.is_none() && running.is_empty() {
                    return Poll::Ready(());
                }
                // New requests were taken (take more while there is room), or room
                // was made while the next request was not asked for: go round, so
                // that the next request's waker is registered.
                if !(took || freed && next.is_some()) {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

fn respond(req: IncomingRequest, answer: Answer) {
    // A request cancelled meanwhile reports UnknownId: nothing to send then.
    let _ = match answer {
        Answer::Ok(p) => req.respond(Outcome::Ok, "", &p),
        Answer::Error { code, message } => req.respond(Outcome::Error(code), &message, b""),
        Answer::NoResponder => req.respond(Outcome::NoResponder, "", b""),
        Answer::Cancelled => req.respond(Outcome::Cancelled, "", b""),
    };
}
