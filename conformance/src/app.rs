//! The server application every conformance server runs on each connection.
//!
//! Requests: `echo` answers the payload; `fail` answers error 500 "fail"; `none`
//! answers no-responder; `hang` never answers (until cancelled or closed);
//! `count` answers the number of one-way messages received so far (decimal);
//! `close` closes the connection gracefully after answering. One-way messages are
//! counted. Streams are echoed back and finished. Pub/sub is routed by the hub.

use crate::{App, BoxFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use weft_core::conn::Outcome;
use weft_core::driver::Handle;
use weft_core::ErrorCode;

/// The standard conformance app.
pub fn standard() -> App {
    Arc::new(|h: Handle| -> BoxFuture<'static, ()> { Box::pin(serve(h)) })
}

async fn serve(h: Handle) {
    let messages = Arc::new(AtomicU64::new(0));
    let mut hanging = Vec::new();
    let streams = h.clone();
    let counter = messages.clone();
    let msgs = h.clone();
    // Three loops share the task: requests, messages and streams, polled in turn.
    let requests = async {
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
                b"count" => {
                    let n = counter.load(Ordering::SeqCst).to_string();
                    let _ = req.respond(Outcome::Ok, "", n.as_bytes());
                }
                b"close" => {
                    let _ = req.respond(Outcome::Ok, "", b"");
                    h.close(ErrorCode::NO_ERROR, "asked to close");
                }
                _ => {
                    let _ = req.respond(Outcome::NoResponder, "", b"");
                }
            }
        }
    };
    let messages_loop = async {
        while msgs.next_message().await.is_some() {
            messages.fetch_add(1, Ordering::SeqCst);
        }
    };
    let streams_loop = async {
        while let Some(mut s) = streams.accept_stream().await {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match core::future::poll_fn(|cx| s.poll_read(cx, &mut buf)).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut off = 0;
                while off < n {
                    match core::future::poll_fn(|cx| s.poll_write(cx, &buf[off..n])).await {
                        Ok(k) => off += k,
                        Err(_) => break,
                    }
                }
            }
            let _ = s.finish();
        }
    };
    join3(requests, messages_loop, streams_loop).await;
}

/// Polls three futures to completion on one task (no runtime needed).
pub async fn join3<A, B, C>(a: A, b: B, c: C)
where
    A: core::future::Future<Output = ()>,
    B: core::future::Future<Output = ()>,
    C: core::future::Future<Output = ()>,
{
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    let mut c = core::pin::pin!(c);
    let (mut da, mut db, mut dc) = (false, false, false);
    core::future::poll_fn(|cx| {
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
            core::task::Poll::Ready(())
        } else {
            core::task::Poll::Pending
        }
    })
    .await
}
