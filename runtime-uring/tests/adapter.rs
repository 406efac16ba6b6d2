//! The adapter over real sockets on 127.0.0.1: large messages (partial sends), a
//! peer reset mid-request, many connections on one ring, blocking streams, timers,
//! graceful close, and the "io_uring is unavailable" error.
//!
//! Loops are bounded; nothing sleeps to synchronise and nothing asserts timing.
//! Each blocking wait runs under a watchdog so a hang fails the test instead.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use weft_core::conn::{CloseKind, Outcome};
use weft_core::Config;
use weft_driver::{block_on, Handle};
use weft_uring::{BlockingStream, Client, EventLoop, Executor, Server};

/// Runs `f` on a thread and fails (instead of hanging) if it takes pathologically
/// long. Not a timing assertion: the bound is minutes, for a broken run only.
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(_) => match t.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("hung"),
        },
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The largest payload a one-way message may carry under the default limits.
const MSG: usize = (16 << 20) - 64;

#[test]
fn sixteen_mib_messages_both_ways() {
    watchdog(|| {
        let server = Server::bind("127.0.0.1:0", Config::default()).unwrap();
        let client = Client::connect(server.local_addr(), Config::default()).unwrap();
        let conn = server.accept().unwrap();

        // 16 MiB with the frame's header: the default `max_message_size`.
        let up = pattern(MSG, 1);
        let down = pattern(MSG, 2);
        client.send(&up).unwrap();
        let got = block_on(conn.next_message()).expect("the message");
        assert!(got[..] == up[..], "client → server message differs");

        block_on(conn.send(&down)).unwrap();
        let got = block_on(client.handle().next_message()).expect("the message");
        assert!(got[..] == down[..], "server → client message differs");

        // A request and its reply of nearly the same size.
        let big = pattern(MSG - 1024, 3);
        let serve = std::thread::spawn(move || {
            let req = block_on(conn.next_request()).unwrap();
            let p = req.payload.clone();
            req.respond(Outcome::Ok, "", &p).unwrap();
            conn
        });
        let reply = client.request(b"echo", &big, None).unwrap();
        assert_eq!(reply.outcome, Outcome::Ok);
        assert!(reply.payload[..] == big[..], "echoed payload differs");
        let conn = serve.join().unwrap();
        assert!(conn.stats().bytes_received >= 3 * (16 << 20) / 2);
    });
}

#[test]
fn backpressure_holds_input_until_the_application_reads() {
    // More messages than the server's application queue (1024) and its connection
    // hold, none read until the client queued them all (600 kB: within the socket
    // buffers and the client's send queue): the loop stops taking input, then
    // resumes as the application drains, and every message arrives in order.
    const N: usize = 6000;
    watchdog(|| {
        let server = Server::bind("127.0.0.1:0", Config::default()).unwrap();
        let client = Client::connect(server.local_addr(), Config::default()).unwrap();
        let conn = server.accept().unwrap();
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                client.send(format!("{i:0100}").as_bytes()).unwrap();
            }
            client
        });
        let client = sender.join().unwrap();
        for i in 0..N {
            let m = block_on(conn.next_message()).expect("a message");
            assert_eq!(&m[..], format!("{i:0100}").as_bytes());
        }
        assert_eq!(client.close().kind, CloseKind::Graceful);
    });
}

#[test]
fn peer_reset_mid_request_resolves() {
    watchdog(|| {
        // A raw socket plays the server: it reads a little of what the client
        // sends (preface, HELLO, the request) and closes with unread data, which
        // makes the kernel reset the connection.
        // The loop's handle, not a `Client`: a client's connect would wait for a
        // handshake this peer never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let lp = EventLoop::new().unwrap();
        let client = lp.connect(addr, Config::default()).unwrap();
        let (mut raw, _) = listener.accept().unwrap();
        let mut b = [0u8; 1];
        raw.read_exact(&mut b).unwrap();
        let pending = client.request(b"echo", &[7u8; 100_000], None);
        // The request is queued; let the peer go away while it is outstanding.
        drop(raw);
        let r = block_on(pending);
        // Either an error, or a reply that says it was not answered.
        if let Ok(reply) = r {
            assert_ne!(reply.outcome, Outcome::Ok, "{reply:?}");
        }
        let info = block_on(client.closed());
        assert_ne!(info.kind, CloseKind::Graceful, "{info:?}");
    });
}

#[test]
fn peer_vanishes_before_handshake() {
    watchdog(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // On the loop's handle: the handshake fails, and so does a request after.
        let lp = EventLoop::new().unwrap();
        let h = lp.connect(addr, Config::default()).unwrap();
        let (raw, _) = listener.accept().unwrap();
        drop(raw);
        assert!(block_on(h.connected()).is_err());
        assert!(block_on(h.request(b"echo", b"x", None)).is_err());
        // A blocking client's connect waits for the handshake, so it fails itself.
        let vanish = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let err = Client::connect(addr, Config::default()).expect_err("no handshake");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
        vanish.join().unwrap();
    });
}

#[test]
fn many_connections_on_one_ring() {
    const N: usize = 64;
    watchdog(|| {
        let exec = Executor::new(2).unwrap();
        let spawner = exec.spawner();
        let server = Server::bind_with("127.0.0.1:0", Config::default(), move |h: Handle| {
            spawner.spawn(async move {
                h.serve(|_, payload| Ok(payload.to_vec())).await;
            })
        })
        .unwrap();
        // Every client connection on one loop (one ring), the server's on another.
        let clients = EventLoop::new().unwrap();
        let handles: Vec<Handle> = (0..N)
            .map(|_| {
                clients
                    .connect(server.local_addr(), Config::default())
                    .unwrap()
            })
            .collect();
        // All requests in flight at once, awaited together.
        let futs: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| h.request(b"echo", format!("conn {i}").as_bytes(), None))
            .collect();
        let replies = block_on(join_all(futs));
        for (i, r) in replies.into_iter().enumerate() {
            let r = r.unwrap();
            assert_eq!(r.outcome, Outcome::Ok);
            assert_eq!(&r.payload[..], format!("conn {i}").as_bytes());
        }
        assert_eq!(server.hub().connections(), N);
        // Closing every client ends its server connection too.
        for h in &handles {
            h.close(weft_core::ErrorCode::NO_ERROR, "");
        }
        for h in &handles {
            assert_eq!(block_on(h.closed()).kind, CloseKind::Graceful);
        }
        drop(handles);
        drop(server);
        drop(exec);
    });
}

/// Polls every future until all are done (no runtime needed).
async fn join_all<F: core::future::Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    core::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match core::pin::Pin::new(&mut *f).poll(cx) {
                    core::task::Poll::Ready(v) => *o = Some(v),
                    core::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            core::task::Poll::Pending
        } else {
            core::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

#[test]
fn stream_echo_through_read_and_write() {
    watchdog(|| {
        let exec = Executor::new(2).unwrap();
        let spawner = exec.spawner();
        let server = Server::bind_with("127.0.0.1:0", Config::default(), move |h: Handle| {
            spawner.spawn(async move {
                while let Some(s) = h.accept_stream().await {
                    // Blocking I/O on a worker is fine here: one stream per test.
                    let mut s = BlockingStream::new(s);
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        let n = s.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).unwrap();
                    }
                    s.finish().unwrap();
                }
            })
        })
        .unwrap();
        let client = Client::connect(server.local_addr(), Config::default()).unwrap();
        let mut s = client.open_stream().unwrap();
        let data = pattern(1 << 20, 9);
        let mut back = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 16 * 1024];
        // Write a chunk, read its echo: bounded by the data's length.
        for chunk in data.chunks(16 * 1024) {
            s.write_all(chunk).unwrap();
            s.flush().unwrap();
            let mut got = 0;
            while got < chunk.len() {
                let n = s.read(&mut buf[..chunk.len() - got]).unwrap();
                assert!(n > 0, "early end of stream");
                back.extend_from_slice(&buf[..n]);
                got += n;
            }
        }
        s.finish().unwrap();
        assert_eq!(s.read(&mut buf).unwrap(), 0, "end of stream after the echo");
        assert!(back == data, "echoed stream differs");
        drop(s);
        assert_eq!(client.close().kind, CloseKind::Graceful);
        drop(server);
        drop(exec);
    });
}

#[test]
fn request_deadline_fires_on_the_ring_timer() {
    watchdog(|| {
        let server = Server::bind("127.0.0.1:0", Config::default()).unwrap();
        let client = Client::connect(server.local_addr(), Config::default()).unwrap();
        let conn = server.accept().unwrap();
        // The server holds the request and never answers: only the deadline ends it.
        let held = std::thread::spawn(move || {
            let req = block_on(conn.next_request());
            (conn, req)
        });
        let r = client.request(b"hang", b"", Some(Duration::from_millis(50)));
        match r {
            Ok(reply) => assert_eq!(reply.outcome, Outcome::DeadlineExceeded),
            Err(e) => panic!("request failed: {e:?}"),
        }
        let (_conn, req) = held.join().unwrap();
        assert!(req.is_some());
    });
}

#[test]
fn server_shutdown_ends_its_connections() {
    watchdog(|| {
        let server = Server::bind("127.0.0.1:0", Config::default()).unwrap();
        let client = Client::connect(server.local_addr(), Config::default()).unwrap();
        let conn = server.accept().unwrap();
        server.shutdown();
        // The server side's handle learns its connection is gone …
        assert!(block_on(conn.next_request()).is_none());
        // … and the client sees the transport end.
        let info = block_on(client.handle().closed());
        assert_ne!(info.kind, CloseKind::Graceful, "{info:?}");
    });
}

#[test]
fn unavailable_error_is_clear() {
    // Forced: the error built from a failed set-up's cause.
    let e = weft_uring::unavailable(io::Error::from_raw_os_error(38 /* ENOSYS */));
    assert!(weft_uring::is_unavailable(&e));
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    let msg = e.to_string();
    assert!(msg.starts_with("io_uring is unavailable"), "{msg}");
    assert!(msg.contains("kernel"), "{msg}");
    let e = weft_uring::unavailable(io::Error::from_raw_os_error(1 /* EPERM */));
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(weft_uring::is_unavailable(&e));
    // Other errors are not mistaken for it.
    assert!(!weft_uring::is_unavailable(&io::Error::other("x")));
    // Here io_uring works (these tests run on a kernel that has it).
    weft_uring::check_available().expect("io_uring available on the test machine");
}
