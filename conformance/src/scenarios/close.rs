//! Closing (§15): graceful with in-flight work, application codes, error close,
//! abrupt loss, dropping the last handle, a local drain timeout, statistics, and
//! how the transport is closed (linger, §15.5).

use super::raw::{self, Raw};
use super::{ask, check, connect_to, count, reply, run, serve, still_serves, Srv};
use crate::{App, BoxFuture, Runtime, Scenario};
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;
use weft_core::conn::{CloseKind, Outcome, Side};
use weft_core::wire::frame::Frame;
use weft_core::{Config, Error, ErrorCode};
use weft_driver::Handle;

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
        Scenario {
            id: "close/linger-reads-to-eof",
            spec: "§15.5 steps 1-4, §15.4",
            requirement: "A side that closes while its peer is still writing reads and discards that input until the peer's end of stream, so its CLOSE and then a clean end of stream reach the peer (closing with unread input would reset the connection).",
            expected: "Server linger 30 s; raw peer, after the handshake: a record with a flipped CRC byte, then 4 MiB from a second thread and its end of stream; every write completes, CLOSE(INTEGRITY_ERROR) is read, then end of stream without a reset; still serves others.",
            run: linger_reads_to_eof,
        },
        Scenario {
            id: "close/linger-bounded",
            spec: "§15.5 step 4",
            requirement: "The transport is dropped when the linger period has passed, even if the peer never ends its stream.",
            expected: "Server linger 300 ms; raw peer closes gracefully, reads CLOSE(NO_ERROR), then writes without end: within a generous 30 s its writes fail (broken pipe or reset), never a write timeout.",
            run: linger_bounded,
        },
        Scenario {
            id: "close/linger-ends-write-first",
            spec: "§15.5 step 2",
            requirement: "A side whose connection is over ends its write direction at once (TCP FIN), without waiting for the peer's end of stream.",
            expected: "Server linger 30 s; raw peer, after the handshake, sends a record with a flipped CRC byte and keeps its own write direction open: it reads CLOSE(INTEGRITY_ERROR), then end of stream within its 3 s read timeout (not at the linger's end); still serves others.",
            run: linger_ends_write_first,
        },
        Scenario {
            id: "close/during-handshake",
            spec: "§15.2, §7.3",
            requirement: "A graceful close asked for before the handshake ends waits for it, then sends and drains what was accepted before it.",
            expected: "Client connects, sends 100 one-way messages and closes with NO_ERROR before the handshake is known to be done: Closed{Graceful, NO_ERROR, initiator Local}, stats.unsent 0; the server's connection received all 100.",
            run: close_during_handshake,
        },
        Scenario {
            id: "close/drop-during-handshake",
            spec: "§15.2, §7.3",
            requirement: "Dropping the last handle before the handshake ends closes gracefully once it is up, after what was accepted.",
            expected: "Client connects, sends 100 one-way messages and drops its only handle: Closed{Graceful, NO_ERROR, initiator Local}; the server's connection received all 100.",
            run: drop_during_handshake,
        },
        Scenario {
            id: "close/shutdown-delivers",
            spec: "§15.2",
            requirement: "shutdown() closes gracefully and returns only once everything accepted before it was delivered.",
            expected: "Client connects, queues 1000 one-way messages without waiting, awaits shutdown(): Ok; the server's connection received all 1000.",
            run: shutdown_delivers,
        },
    ]
}

/// A server whose app counts each connection's one-way messages and reports the
/// count once that connection's messages end (it closed).
fn counting_server(server: &dyn Runtime) -> Result<(Srv, Receiver<u64>), String> {
    let (tx, rx) = sync_channel(16);
    let app: App = Arc::new(move |h: Handle| -> BoxFuture<'static, ()> {
        let tx = tx.clone();
        Box::pin(async move {
            let mut n = 0u64;
            while h.next_message().await.is_some() {
                n += 1;
            }
            let _ = tx.try_send(n);
        })
    });
    let t = server
        .start_server(Config::default(), app)
        .map_err(|e| format!("start server on {}: {e}", server.name()))?;
    Ok((Srv::from(t), rx))
}

/// Connects without waiting for the handshake and sends 100 one-way messages.
fn send_before_handshake(client: &dyn Runtime, srv: &Srv) -> Result<Handle, String> {
    let h = client
        .connect(srv.addr, Config::default())
        .map_err(|e| format!("connect with {}: {e}", client.name()))?;
    for i in 0..100u32 {
        h.try_send(&i.to_be_bytes())
            .map_err(|e| format!("send {i} before the handshake: {e}"))?;
    }
    Ok(h)
}

/// The count the server's connection reported when it ended; bounded wait.
fn server_count(rx: &Receiver<u64>) -> Result<u64, String> {
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|e| format!("the server's connection did not end: {e}"))
}

fn shutdown_delivers(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let (srv, rx) = counting_server(server)?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let mut sent = 0u32;
    while sent < 1000 {
        match h.try_send(&sent.to_be_bytes()) {
            Ok(()) => sent += 1,
            // A full send queue: wait for room, as an application would.
            Err(Error::Blocked) => run(client, h.send(&sent.to_be_bytes()))
                .map(|()| sent += 1)
                .map_err(|e| format!("send {sent}: {e}"))?,
            Err(e) => return Err(format!("send {sent}: {e}")),
        }
    }
    let r = run(client, h.shutdown());
    check(r.is_ok(), || format!("shutdown gave {r:?}"))?;
    let n = server_count(&rx)?;
    check(n == 1000, || format!("the server received {n} of 1000"))
}

fn close_during_handshake(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let (srv, rx) = counting_server(server)?;
    let h = send_before_handshake(client, &srv)?;
    h.close(ErrorCode::NO_ERROR, "done");
    let info = run(client, h.closed());
    check(
        info.kind == CloseKind::Graceful
            && info.code == ErrorCode::NO_ERROR
            && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )?;
    let unsent = h.stats().unsent;
    check(unsent == 0, || format!("stats.unsent {unsent}"))?;
    let n = server_count(&rx)?;
    check(n == 100, || format!("the server received {n} of 100"))
}

fn drop_during_handshake(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let (srv, rx) = counting_server(server)?;
    let h = send_before_handshake(client, &srv)?;
    let closed = h.closed();
    drop(h);
    let info = run(client, closed);
    check(
        info.kind == CloseKind::Graceful
            && info.code == ErrorCode::NO_ERROR
            && info.initiator == Side::Local,
        || format!("closed {info:?}"),
    )?;
    let n = server_count(&rx)?;
    check(n == 100, || format!("the server received {n} of 100"))
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

/// Bytes the peer writes, from a thread of its own, while the server closes: far
/// more than the server reads before its close is over.
const FLOOD: usize = 4 << 20;

/// A server with a 30 s linger, and a raw peer that completed the handshake and
/// sent a record with a flipped CRC byte (the server must close with
/// INTEGRITY_ERROR).
fn damaged_after_handshake(server: &dyn Runtime) -> Result<(Srv, Raw), String> {
    let cfg = Config {
        linger: Duration::from_secs(30),
        ..Config::default()
    };
    let srv = serve(server, cfg)?;
    let mut r = Raw::connect(srv.addr)?;
    r.handshake()?;
    let mut damaged = raw::record(&raw::frame(&Frame::Message {
        payload: b"damaged",
    }));
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    r.send(&damaged)?;
    Ok((srv, r))
}

fn linger_reads_to_eof(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    // A generous linger: the peer's end of stream, not the period, ends it here.
    let (srv, mut r) = damaged_after_handshake(server)?;
    {
        // Still writing as the server closes; then our end of stream.
        let mut w = r.writer()?;
        let flood = std::thread::spawn(move || -> std::io::Result<()> {
            let chunk = vec![0x5au8; 64 << 10];
            for _ in 0..FLOOD / chunk.len() {
                w.write_all(&chunk)?;
            }
            w.shutdown(Shutdown::Write)
        });
        let closed = r.expect_close_code(ErrorCode::INTEGRITY_ERROR);
        let eof = r.expect_clean_eof();
        let wrote = flood
            .join()
            .map_err(|_| "the raw writer panicked".to_string())?;
        closed?;
        eof.map_err(|e| format!("after the server's CLOSE: {e}"))?;
        wrote.map_err(|e| format!("the server refused input while closing: {e}"))?;
    }
    still_serves(client, &srv)
}

fn linger_ends_write_first(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    // A linger far above the raw peer's read timeout: only a shut-down write
    // direction gives the peer its end of stream in time.
    let (srv, mut r) = damaged_after_handshake(server)?;
    {
        r.expect_close_code(ErrorCode::INTEGRITY_ERROR)?;
        r.expect_clean_eof()
            .map_err(|e| format!("end of stream while our write side is open: {e}"))?;
    }
    still_serves(client, &srv)
}

/// Turns a transport that is never dropped into a failure; far above the linger.
const CUT_OFF_LIMIT: Duration = Duration::from_secs(30);

fn linger_bounded(_client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let cfg = Config {
        linger: Duration::from_millis(300),
        ..Config::default()
    };
    let srv = serve(server, cfg)?;
    let mut r = Raw::connect(srv.addr)?;
    r.handshake()?;
    r.send_frame(&Frame::Close {
        code: ErrorCode::NO_ERROR,
        last_request_id: 0,
        reason: "bye",
    })?;
    r.expect_close_code(ErrorCode::NO_ERROR)?;
    // A peer that never ends its stream and keeps the server reading: only the
    // linger period ends it. The limit bounds the wait; it is not what is checked.
    let chunk = vec![0x5au8; 16 << 10];
    let started = Instant::now();
    while started.elapsed() < CUT_OFF_LIMIT {
        match r.try_send(&chunk) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(format!(
                    "the server stopped reading but kept the connection open: {e}"
                ))
            }
        }
    }
    Err(format!(
        "the server still read {CUT_OFF_LIMIT:?} after its close (linger 300 ms)"
    ))
}
