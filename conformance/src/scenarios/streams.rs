//! Streams (§11): echo, flow control through small windows, half-close, reset,
//! concurrency and the stream limit.

use super::raw::{self, Raw};
use super::{ask, check, connect_to, join_all, pattern, run, serve};
use crate::{Runtime, Scenario};
use core::future::poll_fn;
use core::task::Poll;
use weft_core::wire::frame::{ty, Frame, STREAM_OPEN};
use weft_core::{Config, Error};
use weft_driver::{Handle, WeftStream};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "stream/echo",
            spec: "§11.2",
            requirement: "A stream opened by its first STREAM_DATA carries bytes both ways and ends with FIN.",
            expected: "\"hello stream\" echoed, then end-of-stream.",
            run: echo,
        },
        Scenario {
            id: "stream/flow-control",
            spec: "§11.4, §18.7",
            requirement: "Stream data never exceeds the granted credit; WINDOW_UPDATEs keep it flowing.",
            expected: "4 MiB echoed through 4 KiB stream / 8 KiB connection initial windows (both sides, auto-tuning capped at 64 KiB), byte for byte.",
            run: flow_control,
        },
        Scenario {
            id: "stream/half-close",
            spec: "§11.2 (FIN), §18.2",
            requirement: "After our FIN the peer's direction stays open; writing after FIN fails.",
            expected: "Client finishes first, then still reads the whole 512 KiB echo and EOF; a write after finish is an error.",
            run: half_close,
        },
        Scenario {
            id: "stream/reset",
            spec: "§11.2 (STREAM_RESET)",
            requirement: "A reset aborts both directions; the peer sees it.",
            expected: "Server resets on request (`reset:42`): the client's read fails with ConnectionReset; the connection keeps working.",
            run: reset,
        },
        Scenario {
            id: "stream/reset-code",
            spec: "§5.19, §11.2",
            requirement: "STREAM_RESET carries the application's code to the peer.",
            expected: "Raw client opens stream 1 with `reset:42`: reads STREAM_RESET{id 1, code 42}.",
            run: reset_code,
        },
        Scenario {
            id: "stream/concurrent-100",
            spec: "§11.1, §11.2 (concurrency)",
            requirement: "Up to MAX_CONCURRENT_STREAMS streams run at once, each independent.",
            expected: "100 concurrent streams each echo their own 8 KiB.",
            run: concurrent,
        },
        Scenario {
            id: "stream/limit-local",
            spec: "§6.3, §11.2 (concurrency)",
            requirement: "A sender opens no more streams than the peer's limit.",
            expected: "Server limit 2: the 3rd open_stream is Blocked; after one stream completes, opening works again.",
            run: limit_local,
        },
        Scenario {
            id: "stream/limit-refused",
            spec: "§11.2 (concurrency), §16",
            requirement: "A stream above MAX_CONCURRENT_STREAMS is refused with STREAM_RESET code 1, not a connection error.",
            expected: "Raw client opens 3 streams, server limit 2: STREAM_RESET{5, 1}; the connection still answers a request.",
            run: limit_refused,
        },
    ]
}

async fn write_all(s: &mut WeftStream, data: &[u8]) -> Result<(), String> {
    let mut off = 0;
    while off < data.len() {
        off += poll_fn(|cx| s.poll_write(cx, &data[off..]))
            .await
            .map_err(|e| format!("stream write: {e}"))?;
    }
    Ok(())
}

/// Writes `data` and finishes while reading the echo (one stream, one task).
async fn round_trip(s: &mut WeftStream, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut off = 0;
    let mut finished = false;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    poll_fn(|cx| loop {
        let mut progress = false;
        if off < data.len() {
            match s.poll_write(cx, &data[off..]) {
                Poll::Ready(Ok(n)) => {
                    off += n;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("stream write: {e}"))),
                Poll::Pending => {}
            }
        } else if !finished {
            finished = true;
            progress = true;
            if let Err(e) = s.finish() {
                return Poll::Ready(Err(format!("finish: {e}")));
            }
        }
        match s.poll_read(cx, &mut buf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(core::mem::take(&mut out))),
            Poll::Ready(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                progress = true;
                if out.len() > data.len() {
                    return Poll::Ready(Err(format!("echo longer than {} bytes", data.len())));
                }
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("stream read: {e}"))),
            Poll::Pending => {}
        }
        if !progress {
            return Poll::Pending;
        }
    })
    .await
}

async fn open_round_trip(h: &Handle, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = h.open_stream().map_err(|e| format!("open: {e}"))?;
    round_trip(&mut s, data).await
}

fn echo(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let back = run(client, open_round_trip(&h, b"hello stream"))?;
    check(back == b"hello stream", || format!("echo {back:?}"))
}

fn small_windows() -> Config {
    let mut c = Config::default();
    c.params.initial_stream_window = 4096;
    c.params.initial_conn_window = 8192;
    c.max_stream_window = 64 << 10;
    c.max_conn_window = 64 << 10;
    c
}

fn flow_control(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, small_windows())?;
    let h = connect_to(client, srv.addr, small_windows())?;
    let data = pattern(4 << 20, 17);
    let back = run(client, open_round_trip(&h, &data))?;
    check(back == data, || {
        format!("echo differs (len {})", back.len())
    })?;
    check(h.stats().errors == 0, || "connection errors".into())
}

fn half_close(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let data = pattern(512 << 10, 5);
    run(client, async {
        let mut s = h.open_stream().map_err(|e| format!("open: {e}"))?;
        // Stream send buffers are bounded: write what fits, finish, then read.
        let back = round_trip(&mut s, &data).await?;
        check(back == data, || {
            format!("echo differs (len {})", back.len())
        })?;
        let w = poll_fn(|cx| s.poll_write(cx, b"late")).await;
        check(w.is_err(), || format!("write after finish gave {w:?}"))
    })
}

fn reset(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    run(client, async {
        let mut s = h.open_stream().map_err(|e| format!("open: {e}"))?;
        write_all(&mut s, b"reset:42").await?;
        let mut buf = [0u8; 64];
        let r = poll_fn(|cx| s.poll_read(cx, &mut buf)).await;
        check(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            || format!("read after the peer's reset gave {r:?}"),
        )?;
        let p = ask(&h, "echo", b"still").await?;
        check(p == b"still", || format!("echo {p:?}"))
    })
}

fn reset_code(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let _ = client;
    let srv = serve(server, Config::default())?;
    let mut r = Raw::connect(srv.addr)?;
    r.handshake()?;
    r.send_frame(&Frame::StreamData {
        id: 1,
        flags: STREAM_OPEN,
        data: b"reset:42",
    })?;
    let (_, body) = r.wait_for(|t, _| t == ty::STREAM_RESET)?;
    match Frame::decode(ty::STREAM_RESET, &body) {
        Ok(Frame::StreamReset { id: 1, code: 42 }) => Ok(()),
        other => Err(format!("got {other:?}")),
    }
}

fn concurrent(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let datas: Vec<Vec<u8>> = (0..100).map(|i| pattern(8 << 10, i as u8)).collect();
    let futs: Vec<_> = datas.iter().map(|d| open_round_trip(&h, d)).collect();
    let out = run(client, join_all(futs));
    for (i, (o, d)) in out.into_iter().zip(datas.iter()).enumerate() {
        let o = o?;
        check(&o == d, || {
            format!("stream {i} echo differs (len {})", o.len())
        })?;
    }
    Ok(())
}

fn limit_local(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut scfg = Config::default();
    scfg.params.max_concurrent_streams = 2;
    let srv = serve(server, scfg)?;
    let h = connect_to(client, srv.addr, Config::default())?;
    run(client, async {
        let mut a = h.open_stream().map_err(|e| format!("open 1: {e}"))?;
        let _b = h.open_stream().map_err(|e| format!("open 2: {e}"))?;
        let third = h.open_stream().map(|s| s.id());
        check(third == Err(Error::Blocked), || {
            format!("3rd open gave {third:?}")
        })?;
        let back = round_trip(&mut a, b"one").await?;
        check(back == b"one", || format!("echo {back:?}"))?;
        drop(a);
        // Both directions finished: the slot frees up (retry after protocol
        // progress, bounded: `Blocked` means "retry later").
        let mut c = None;
        for _ in 0..50 {
            match h.open_stream() {
                Ok(s) => {
                    c = Some(s);
                    break;
                }
                Err(Error::Blocked) => {
                    ask(&h, "echo", b"progress").await?;
                }
                Err(e) => return Err(format!("open after a stream ended: {e}")),
            }
        }
        let mut c = c.ok_or("open still Blocked after the stream ended")?;
        let back = round_trip(&mut c, b"two").await?;
        check(back == b"two", || format!("echo {back:?}"))
    })
}

fn limit_refused(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let _ = client;
    let mut scfg = Config::default();
    scfg.params.max_concurrent_streams = 2;
    let srv = serve(server, scfg)?;
    let mut r = Raw::connect(srv.addr)?;
    r.handshake()?;
    let fs = raw::frames(&[
        Frame::StreamData {
            id: 1,
            flags: STREAM_OPEN,
            data: b"a",
        },
        Frame::StreamData {
            id: 3,
            flags: STREAM_OPEN,
            data: b"b",
        },
        Frame::StreamData {
            id: 5,
            flags: STREAM_OPEN,
            data: b"c",
        },
    ]);
    r.send(&raw::record(&fs))?;
    let (_, body) = r.wait_for(|t, b| {
        t == ty::STREAM_RESET && matches!(Frame::decode(t, b), Ok(Frame::StreamReset { id: 5, .. }))
    })?;
    match Frame::decode(ty::STREAM_RESET, &body) {
        Ok(Frame::StreamReset { id: 5, code: 1 }) => {}
        other => return Err(format!("refusal was {other:?}")),
    }
    r.send_frame(&Frame::Request {
        id: 1,
        timeout_ms: 0,
        subject: b"echo",
        payload: b"alive",
    })?;
    r.wait_for(|t, _| t == ty::RESPONSE).map(|_| ())
}
