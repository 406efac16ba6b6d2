//! Request/response (§8): outcomes, deadlines, cancellation, concurrency, the
//! local request cap and large payloads.

use super::{ask, check, connect_to, join_all, pattern, reply, run, serve};
use crate::{Runtime, Scenario};
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use weft_core::conn::Outcome;
use weft_core::Config;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "rpc/error",
            spec: "§8.2 (status 1)",
            requirement: "A responder's failure reaches the requester with its code and message.",
            expected: "Outcome Error(500) with message \"fail\".",
            run: error,
        },
        Scenario {
            id: "rpc/no-responder",
            spec: "§8.2 (status 2)",
            requirement: "A subject nobody serves is answered NO_RESPONDER.",
            expected: "Outcome NoResponder.",
            run: no_responder,
        },
        Scenario {
            id: "rpc/deadline",
            spec: "§8.1, §8.2, §18.5",
            requirement: "At its deadline a request completes locally as DEADLINE_EXCEEDED and the requester sends CANCEL.",
            expected: "`hang` with 200 ms: DeadlineExceeded; the server's held request can no longer be answered (cancelled=1).",
            run: deadline,
        },
        Scenario {
            id: "rpc/cancel-on-drop",
            spec: "§8.1 (cancellation), §8.2 (CANCEL)",
            requirement: "Dropping an outstanding request cancels it on the wire.",
            expected: "After the drop the server sees the cancel (cancelled=1, answered=0); the connection keeps working.",
            run: cancel_on_drop,
        },
        Scenario {
            id: "rpc/responder-cancel",
            spec: "§8.2 (status 4)",
            requirement: "A responder may cancel a request itself.",
            expected: "Outcome Cancelled.",
            run: responder_cancel,
        },
        Scenario {
            id: "rpc/concurrent",
            spec: "§8.1 (ids), §8.2",
            requirement: "Many outstanding requests are matched to their responses by id.",
            expected: "200 concurrent echo requests each answered with its own payload.",
            run: concurrent,
        },
        Scenario {
            id: "rpc/request-cap",
            spec: "§8.1 (local cap), §16",
            requirement: "Beyond max_outstanding_requests the request API is Blocked and waits, and nothing is sent; nothing is lost.",
            expected: "Client cap 4 with 4 `hang`s outstanding: a 5th request (echo) stays pending after a reflected message proves the server took everything sent before it, and is answered once one hang is cancelled; hang-status then reports cancelled=4 answered=0. And 64 concurrent echos: all answered correctly, connection never closed.",
            run: request_cap,
        },
        Scenario {
            id: "rpc/large",
            spec: "§8, §12",
            requirement: "Requests and responses larger than max_frame_size are fragmented and reassembled.",
            expected: "1 MiB echo returned byte for byte.",
            run: large,
        },
    ]
}

fn error(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(client, reply(&h, "fail", b"x"))?;
    check(
        r.outcome == Outcome::Error(500) && &r.message[..] == b"fail",
        || format!("reply {r:?}"),
    )
}

fn no_responder(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(client, reply(&h, "nobody.serves.this", b""))?;
    check(r.outcome == Outcome::NoResponder, || format!("reply {r:?}"))
}

fn deadline(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(
        client,
        h.request(b"hang", b"", Some(Duration::from_millis(200))),
    )
    .map_err(|e| format!("hang: {e}"))?;
    check(r.outcome == Outcome::DeadlineExceeded, || {
        format!("reply {r:?}")
    })?;
    let s = run(client, ask(&h, "hang-status", b""))?;
    check(s == b"cancelled=1 answered=0", || {
        format!("server status {}", String::from_utf8_lossy(&s))
    })
}

fn cancel_on_drop(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    run(client, async {
        let mut hang = Box::pin(h.request(b"hang", b"", None));
        // Issue it (one poll), then prove the server has it: a later echo answered.
        poll_fn(|cx| {
            let _ = hang.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        let p = ask(&h, "echo", b"after").await?;
        check(p == b"after", || format!("echo {p:?}"))?;
        drop(hang);
        Ok::<(), String>(())
    })?;
    let s = run(client, ask(&h, "hang-status", b""))?;
    check(s == b"cancelled=1 answered=0", || {
        format!("server status {}", String::from_utf8_lossy(&s))
    })
}

fn responder_cancel(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(client, reply(&h, "cancel", b""))?;
    check(r.outcome == Outcome::Cancelled, || format!("reply {r:?}"))
}

fn many(client: &dyn Runtime, cfg: Config, n: usize, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, cfg)?;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("req-{i}").into_bytes()).collect();
    let futs: Vec<_> = payloads.iter().map(|p| ask(&h, "echo", p)).collect();
    let out = run(client, join_all(futs));
    for (i, (o, p)) in out.into_iter().zip(payloads.iter()).enumerate() {
        let o = o?;
        check(&o == p, || format!("request {i} answered {o:?}"))?;
    }
    check(h.stats().errors == 0, || "connection errors".into())
}

fn concurrent(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    many(client, Config::default(), 200, server)
}

fn request_cap(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        max_outstanding_requests: 4,
        ..Config::default()
    };
    cap_enforced(client, cfg.clone(), server)?;
    many(client, cfg, 64, server)
}

/// With the cap's worth of `hang` requests outstanding, one more waits unsent.
/// Proof that it was not sent: a one-way `reflect:` message sent after it comes
/// back, and the server answers an echo at once, before it reflects a message
/// that arrived after it (at the same level, in the same order); so an echo sent
/// before the message would have been answered by the time the reflection is in.
fn cap_enforced(client: &dyn Runtime, cfg: Config, server: &dyn Runtime) -> Result<(), String> {
    let cap = cfg.max_outstanding_requests;
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, cfg)?;
    run(client, async {
        let mut hangs: Vec<_> = (0..cap)
            .map(|_| Box::pin(h.request(b"hang", b"", None)))
            .collect();
        let mut extra = Box::pin(h.request(b"echo", b"beyond the cap", None));
        // One poll each issues them, in order: the hangs, then the one beyond.
        let pending = poll_fn(|cx| {
            let hung = hangs.iter_mut().all(|r| r.as_mut().poll(cx).is_pending());
            Poll::Ready(hung && extra.as_mut().poll(cx).is_pending())
        })
        .await;
        check(pending, || "a request completed at once".into())?;
        h.send(b"reflect:cap")
            .await
            .map_err(|e| format!("send: {e}"))?;
        let m = h.next_message().await.ok_or("closed")?;
        check(m[..] == b"reflect:cap"[..], || format!("message {m:?}"))?;
        let waiting = poll_fn(|cx| Poll::Ready(extra.as_mut().poll(cx))).await;
        check(waiting.is_pending(), || {
            format!(
                "request {} of a cap of {cap} was sent and answered: {waiting:?}",
                cap + 1
            )
        })?;
        // Room for it once one hang is cancelled: it waited, and is not lost.
        drop(hangs.pop());
        let r = extra.await.map_err(|e| format!("echo: {e}"))?;
        check(
            r.outcome == Outcome::Ok && &r.payload[..] == b"beyond the cap",
            || format!("echo answered {r:?}"),
        )?;
        drop(hangs);
        Ok::<(), String>(())
    })?;
    let s = run(client, ask(&h, "hang-status", b""))?;
    let want = format!("cancelled={cap} answered=0");
    check(s == want.as_bytes(), || {
        format!("server status {}", String::from_utf8_lossy(&s))
    })
}

fn large(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let big = pattern(1 << 20, 3);
    let p = run(client, ask(&h, "echo", &big))?;
    check(p == big, || format!("1 MiB echo differs (len {})", p.len()))
}
