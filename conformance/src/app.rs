//! The server application every conformance server runs on each connection.
//!
//! Requests: `echo` answers the payload; `fail` answers error 500 "fail"; `none`
//! (and any unknown subject) answers no-responder; `hang` never answers (until
//! cancelled or closed); `cancel` answers with the responder-side `Cancelled`
//! outcome; `hang-status` answers every request held by `hang` and reports
//! `cancelled=C answered=A` (C: those the requester cancelled or whose deadline
//! passed, so they could not be answered); `count` answers the number of one-way
//! messages received so far (decimal; messages that arrived before the request are
//! counted first); `close` answers, then closes the connection gracefully;
//! `peer` answers the connection's peer address (empty if unknown);
//! `close-later` starts a graceful close first and answers afterwards (the answer
//! is in-flight work the drain must finish).
//!
//! One-way messages are counted; one whose payload starts with `reflect:` is sent
//! back unchanged. Streams are served concurrently: each is echoed back and
//! finished, except one whose first bytes are `reset:N`, which is reset with code
//! `N`. Pub/sub is routed by the hub.

use crate::{App, BoxFuture};
use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::Poll;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use weft_core::conn::Outcome;
use weft_core::ErrorCode;
use weft_driver::{Handle, WeftStream};

/// The standard conformance app.
pub fn standard() -> App {
    Arc::new(|h: Handle| -> BoxFuture<'static, ()> { Box::pin(serve(h)) })
}

async fn serve(h: Handle) {
    let counter = Arc::new(AtomicU64::new(0));
    join3(
        requests(h.clone(), counter.clone()),
        messages(h.clone(), counter),
        streams(h),
    )
    .await;
}

/// Handles one one-way message: counts it, reflects it if asked to.
async fn on_message(h: &Handle, counter: &AtomicU64, m: &[u8]) {
    counter.fetch_add(1, Ordering::SeqCst);
    if m.starts_with(b"reflect:") {
        let _ = h.send(m).await;
    }
}

async fn messages(h: Handle, counter: Arc<AtomicU64>) {
    while let Some(m) = h.next_message().await {
        on_message(&h, &counter, &m).await;
    }
}

/// Handles the messages already received (without waiting for more).
async fn drain_messages(h: &Handle, counter: &AtomicU64) {
    loop {
        let mut next = h.next_message();
        let m = poll_fn(|cx| match Pin::new(&mut next).poll(cx) {
            Poll::Ready(m) => Poll::Ready(m),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        match m {
            Some(m) => on_message(h, counter, &m).await,
            None => return,
        }
    }
}

async fn requests(h: Handle, counter: Arc<AtomicU64>) {
    let mut hanging = Vec::new();
    while let Some(req) = h.next_request().await {
        match &req.subject[..] {
            b"echo" => {
                let p = req.payload.clone();
                let _ = req.respond(Outcome::Ok, "", &p);
            }
            b"fail" => {
                let _ = req.respond(Outcome::Error(500), "fail", b"");
            }
            b"hang" => hanging.push(req),
            b"cancel" => {
                let _ = req.respond(Outcome::Cancelled, "", b"");
            }
            b"hang-status" => {
                let (mut cancelled, mut answered) = (0, 0);
                for r in hanging.drain(..) {
                    match r.respond(Outcome::Ok, "", b"late") {
                        Ok(()) => answered += 1,
                        Err(_) => cancelled += 1,
                    }
                }
                let s = format!("cancelled={cancelled} answered={answered}");
                let _ = req.respond(Outcome::Ok, "", s.as_bytes());
            }
            b"peer" => {
                // The transport's peer address as the server's handle knows it.
                let a = h.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let _ = req.respond(Outcome::Ok, "", a.as_bytes());
            }
            b"whoami" => {
                // The key id this connection authenticated with (spec 7.6).
                let id = h.peer_key_id().unwrap_or_default();
                let _ = req.respond(Outcome::Ok, "", &id);
            }
            b"count" => {
                drain_messages(&h, &counter).await;
                let n = counter.load(Ordering::SeqCst).to_string();
                let _ = req.respond(Outcome::Ok, "", n.as_bytes());
            }
            b"close" => {
                let _ = req.respond(Outcome::Ok, "", b"");
                h.close(ErrorCode::NO_ERROR, "asked to close");
            }
            b"close-later" => {
                h.close(ErrorCode::NO_ERROR, "asked to close");
                let _ = req.respond(Outcome::Ok, "", b"answered while draining");
            }
            _ => {
                let _ = req.respond(Outcome::NoResponder, "", b"");
            }
        }
    }
}

async fn streams(h: Handle) {
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    let mut accept = Some(h.accept_stream());
    poll_fn(|cx| {
        while let Some(a) = accept.as_mut() {
            match Pin::new(a).poll(cx) {
                Poll::Ready(Some(s)) => {
                    tasks.push(Box::pin(echo_stream(s)));
                    accept = Some(h.accept_stream());
                }
                Poll::Ready(None) => accept = None,
                Poll::Pending => break,
            }
        }
        tasks.retain_mut(|t| t.as_mut().poll(cx).is_pending());
        if accept.is_none() && tasks.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

async fn echo_stream(mut s: WeftStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    loop {
        let n = match poll_fn(|cx| s.poll_read(cx, &mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if first {
            first = false;
            if let Some(code) = buf[..n]
                .strip_prefix(b"reset:")
                .and_then(|c| core::str::from_utf8(c).ok())
                .and_then(|c| c.trim().parse::<u64>().ok())
            {
                s.reset(code);
                return;
            }
        }
        let mut off = 0;
        while off < n {
            match poll_fn(|cx| s.poll_write(cx, &buf[off..n])).await {
                Ok(k) => off += k,
                Err(_) => return,
            }
        }
    }
    let _ = s.finish();
}

/// Polls three futures to completion on one task (no runtime needed).
pub async fn join3<A, B, C>(a: A, b: B, c: C)
where
    A: Future<Output = ()>,
    B: Future<Output = ()>,
    C: Future<Output = ()>,
{
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    let mut c = core::pin::pin!(c);
    let (mut da, mut db, mut dc) = (false, false, false);
    poll_fn(|cx| {
        if !da {
            da = a.as_mut().poll(cx).is_ready();
        }
        if !db {
            db = b.as_mut().poll(cx).is_ready();
        }
        if !dc {
            dc = c.as_mut().poll(cx).is_ready();
        }
        if da && db && dc {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
