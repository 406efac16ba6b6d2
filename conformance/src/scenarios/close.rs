//! Closing (§15): graceful with in-flight work, application codes, error close,
//! abrupt loss, dropping the last handle, a local drain timeout, and statistics.

use super::{ask, check, connect_to, count, reply, run, serve, Srv};
use crate::{Runtime, Scenario};
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use weft_core::conn::{CloseKind, Outcome, Side};
use weft_core::{Config, Error, ErrorCode};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "close/graceful-in-flight",
            spec: "§15.2 step 3, §18.9",
            requirement: "Work at or below the announced last_request_id is finished during a graceful drain.",
            expected: "Server starts closing, then answers the request (`close-later`): client gets Ok, then Closed{Graceful, NO_ERROR, initiator Peer}.",
            run: graceful_in_flight,
        },
        Scenario {
            id: "close/client-graceful",
            spec: "§15.2",
            requirement: "A client-initiated NO_ERROR close drains and ends gracefully.",
            expected: "Closed{Graceful, NO_ERROR, initiator Local}; new requests fail Closed.",
            run: client_graceful,
        },
        Scenario {
            id: "close/application-code",
            spec: "§15.2, §17 (codes >= 0x1000)",
            requirement: "Application codes close gracefully and reach the peer.",
            expected: "Client closes with 0x1234: Closed{Graceful, 0x1234, initiator Local}.",
            run: application_code,
        },
        Scenario {
            id: "close/error-immediate",
            spec: "§15.3",
            requirement: "A non-graceful close ends the connection at once; outstanding requests complete.",
            expected: "Client closes with INTERNAL_ERROR while a request hangs: Closed{Error, INTERNAL_ERROR, Local}; the request resolves (not Ok).",
            run: error_immediate,
        },
        Scenario {
            id: "close/abrupt-loss",
            spec: "§15.4",
            requirement: "Transport loss without CLOSE is reported as such; outstanding requests fail, nothing hangs.",
            expected: "Server stopped under a hanging request: the request resolves not-Ok, Closed{Lost} (or an error), later requests fail.",
            run: abrupt_loss,
        },
        Scenario {
            id: "close/drop-last-handle",
            spec: "§15.2 (driver: last handle)",
            requirement: "Dropping the last handle closes the connection gracefully.",
            expected: "Closed{Graceful, NO_ERROR, initiator Local} observed through a `closed()` future kept past the drop.",
            run: drop_last_handle,
        },
        Scenario {
            id: "close/drain-timeout-local",
            spec: "§15.2 step 5",
            requirement: "A graceful drain that cannot finish is aborted at the drain timeout.",
            expected: "Client (drain_timeout 200 ms) closes while its `hang` request is being processed: Closed{Error, DRAIN_TIMEOUT, Local}.",
            run: drain_timeout_local,
        },
        Scenario {
            id: "close/stats",
            spec: "§14 (RTT), §6.3",
            requirement: "Counters grow with traffic both ways; heartbeats yield an RTT sample.",
            expected: "bytes and messages sent/received > 0 after traffic; rtt present with heartbeat_ms 100.",
            run: stats,
        },
    ]
}

fn graceful_in_flight(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(client, reply(&h, "close-later", b""))?;
    check(r.outcome == Outcome::Ok, || {
        format!("in-flight request: {r:?}")
    })?;
    let info = run(client, h.closed());
    check(
        info.kind == CloseKind::Graceful
            && info.code == ErrorCode::NO_ERROR
            && info.initiator == Side::Peer,
        || format!("closed {info:?}"),
    )
}

fn client_close(client: &dyn Runtime, srv: &Srv, code: ErrorCode) -> Result<(), String> {
    let h = connect_to(client, srv.addr, Config::default())?;
    let n = run(client, count(&h))?;
    check(n == 0, || format!("count {n}"))?;
    h.close(code, "done");
    let info = run(client, h.closed());
    check(
        info.kind == CloseKind::Graceful && info.code == code && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )?;
    let r = run(client, h.request(b"echo", b"", None));
    check(r == Err(Error::Closed), || {
        format!("request after close: {r:?}")
    })
}

fn client_graceful(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    client_close(client, &srv, ErrorCode::NO_ERROR)
}

fn application_code(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    client_close(client, &srv, ErrorCode(0x1234))
}

fn error_immediate(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = run(client, async {
        let mut hang = Box::pin(h.request(b"hang", b"", None));
        poll_fn(|cx| {
            let _ = hang.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        ask(&h, "echo", b"x").await?;
        h.close(ErrorCode::INTERNAL_ERROR, "test");
        Ok::<_, String>(hang.await)
    })?;
    check(!matches!(&r, Ok(rep) if rep.outcome == Outcome::Ok), || {
        format!("hanging request gave {r:?}")
    })?;
    let info = run(client, h.closed());
    check(
        info.kind == CloseKind::Error
            && info.code == ErrorCode::INTERNAL_ERROR
            && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )
}

fn abrupt_loss(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let mut hang = Box::pin(h.request(b"hang", b"", None));
    run(client, async {
        poll_fn(|cx| {
            let _ = hang.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        ask(&h, "echo", b"x").await.map(|_| ())
    })?;
    srv.stop();
    let r = run(client, hang);
    check(!matches!(&r, Ok(rep) if rep.outcome == Outcome::Ok), || {
        format!("hanging request gave {r:?}")
    })?;
    let info = run(client, h.closed());
    check(info.kind != CloseKind::Graceful, || {
        format!("closed {info:?}")
    })?;
    let later = run(client, h.request(b"echo", b"", None));
    check(later.is_err(), || format!("request after loss: {later:?}"))
}

fn drop_last_handle(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let p = run(client, ask(&h, "echo", b"bye"))?;
    check(p == b"bye", || format!("echo {p:?}"))?;
    let closed = h.closed();
    drop(h);
    let info = run(client, closed);
    check(
        info.kind == CloseKind::Graceful
            && info.code == ErrorCode::NO_ERROR
            && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )
}

fn drain_timeout_local(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let cfg = Config {
        drain_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let h = connect_to(client, srv.addr, cfg)?;
    let r = run(client, async {
        let mut hang = Box::pin(h.request(b"hang", b"", None));
        poll_fn(|cx| {
            let _ = hang.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        // The echo's answer proves the server holds `hang` (it will announce it).
        ask(&h, "echo", b"x").await?;
        h.close(ErrorCode::NO_ERROR, "drain");
        Ok::<_, String>(hang.await)
    })?;
    check(!matches!(&r, Ok(rep) if rep.outcome == Outcome::Ok), || {
        format!("hanging request gave {r:?}")
    })?;
    let info = run(client, h.closed());
    check(
        info.kind == CloseKind::Error
            && info.code == ErrorCode::DRAIN_TIMEOUT
            && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )
}

fn stats(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut s = Config::default();
    s.params.heartbeat_ms = 100;
    let srv = serve(server, s)?;
    let mut c = Config::default();
    c.params.heartbeat_ms = 100;
    let h = connect_to(client, srv.addr, c)?;
    let before = h.stats();
    run(client, async {
        for i in 0..20 {
            h.send(format!("{i}").as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
            ask(&h, "echo", b"s").await?;
        }
        Ok::<(), String>(())
    })?;
    // Let heartbeats happen: protocol deadlines are the only clock (bounded).
    for _ in 0..20 {
        if h.stats().rtt.is_some() {
            break;
        }
        let _ = run(
            client,
            h.request(b"hang", b"", Some(Duration::from_millis(150))),
        );
    }
    let st = h.stats();
    check(
        st.bytes_sent > before.bytes_sent && st.bytes_received > before.bytes_received,
        || format!("bytes did not grow: {before:?} -> {st:?}"),
    )?;
    check(st.messages_sent >= before.messages_sent + 40, || {
        format!("messages_sent {st:?}")
    })?;
    check(
        st.messages_received >= before.messages_received + 20,
        || format!("messages_received {st:?}"),
    )?;
    check(
        st.frames_sent > 0 && st.frames_received > 0 && st.records_received > 0,
        || format!("frame counters {st:?}"),
    )?;
    check(st.rtt.is_some() && st.min_rtt.is_some(), || {
        format!("no rtt: {st:?}")
    })?;
    check(st.errors == 0, || format!("errors {st:?}"))
}
