//! Adapter-specific tests over 127.0.0.1 and in-memory pipes: partial writes,
//! a peer that vanishes, many requests at once, streams through tokio's I/O
//! traits, and publish/subscribe across the connections of one server.
//!
//! Every loop is bounded; nothing sleeps to synchronise. A generous time limit
//! only turns a hang into a failure.

use core::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_tokio::{CloseKind, Config, Handle, Outcome, OverflowPolicy, Role, Server, Stream};

/// Turns a hang into a failure; never part of an assertion.
const HANG_LIMIT: Duration = Duration::from_secs(120);

fn run<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(HANG_LIMIT, f)
            .await
            .expect("the test hung")
    })
}

/// Answers `echo` with the payload, anything else with error 404.
async fn echo_app(h: Handle) {
    h.serve(|subject, payload| match subject {
        b"echo" => Ok(payload.to_vec()),
        _ => Err((404, "no such subject".to_string())),
    })
    .await;
}

/// A request that did not succeed: an error, or a reply other than `Ok`.
fn failed(r: &Result<weft_tokio::Reply, weft_tokio::Error>) -> bool {
    match r {
        Err(_) => true,
        Ok(reply) => reply.outcome != Outcome::Ok,
    }
}

/// 16 MiB less room for the frame header: the whole frame must fit the limit.
const BIG: usize = (16 << 20) - 64;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[test]
fn sixteen_mib_message_through_a_tiny_pipe() {
    run(async {
        // A 256-byte pipe: every write is partial, every read short.
        let (a, b) = tokio::io::duplex(256);
        let client = weft_tokio::spawn(a, Role::Client, Config::default());
        let server = weft_tokio::spawn(b, Role::Server, Config::default());
        client.connected().await.expect("handshake");
        server.connected().await.expect("handshake");

        // The largest message whose frame fits the default 16 MiB limit.
        let big = pattern(BIG, 1);
        client.send(&big).await.expect("send");
        let got = server.next_message().await.expect("message");
        assert_eq!(got.len(), big.len());
        assert!(got[..] == big[..], "payload intact");

        // And the other way, as a request and its reply.
        let back = pattern(BIG, 2);
        let want = back.clone();
        let responder = tokio::spawn(async move {
            let req = server.next_request().await.expect("request");
            assert_eq!(&req.subject[..], b"big");
            req.respond(Outcome::Ok, "", &back).expect("respond");
            server
        });
        let reply = client.request(b"big", b"", None).await.expect("reply");
        assert_eq!(reply.outcome, Outcome::Ok);
        assert!(reply.payload[..] == want[..], "reply intact");
        let server = responder.await.expect("responder");

        drop(client);
        assert_eq!(server.closed().await.kind, CloseKind::Graceful);
    });
}

#[test]
fn peer_drops_the_socket_mid_handshake() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = weft_tokio::connect(addr, Config::default()).await.unwrap();
        // A request pipelined behind the HELLO.
        let c = client.clone();
        let req = tokio::spawn(async move { c.request(b"echo", b"x", None).await });
        let (mut sock, _) = listener.accept().await.unwrap();
        // Read the start of the preface, then vanish.
        let mut start = [0u8; 4];
        sock.read_exact(&mut start).await.unwrap();
        drop(sock);

        assert!(client.connected().await.is_err(), "no handshake");
        assert!(failed(&req.await.unwrap()), "the request failed");
        assert_eq!(client.closed().await.kind, CloseKind::Lost);
    });
}

#[test]
fn peer_drops_the_socket_mid_request() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let server_addr = server.local_addr().unwrap();
        // A proxy between client and server whose sockets the test drops.
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = weft_tokio::connect(proxy.local_addr().unwrap(), Config::default())
            .await
            .unwrap();
        let (mut down, _) = proxy.accept().await.unwrap();
        let mut up = TcpStream::connect(server_addr).await.unwrap();
        let pipe = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
        });
        let served = server.accept().await.unwrap();
        client.connected().await.expect("handshake");

        let c = client.clone();
        let req = tokio::spawn(async move { c.request(b"hang", b"", None).await });
        // The request reached the server's application: it is in flight.
        let incoming = served.next_request().await.expect("request");
        assert_eq!(&incoming.subject[..], b"hang");

        pipe.abort();
        assert!(pipe.await.unwrap_err().is_cancelled());

        assert!(failed(&req.await.unwrap()), "the request failed");
        assert_eq!(client.closed().await.kind, CloseKind::Lost);
        // The server side learns it too.
        served.closed().await;
        drop(incoming);
        // A new request on the dead connection fails at once.
        assert!(failed(&client.request(b"echo", b"", None).await));
    });
}

#[test]
fn many_concurrent_requests_on_one_connection() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let serving = tokio::spawn(server.serve(echo_app));
        let client = weft_tokio::connect(addr, Config::default()).await.unwrap();
        client.connected().await.expect("handshake");

        // More than the 256 outstanding requests allowed: the rest wait for room.
        const N: usize = 2_000;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..N {
            let c = client.clone();
            set.spawn(async move {
                let body = format!("request {i}");
                let r = c.request(b"echo", body.as_bytes(), None).await.unwrap();
                assert_eq!(r.outcome, Outcome::Ok);
                assert_eq!(&r.payload[..], body.as_bytes());
            });
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            r.unwrap();
            done += 1;
        }
        assert_eq!(done, N);
        let bad = client.request(b"nope", b"", None).await.unwrap();
        assert_eq!(bad.outcome, Outcome::Error(404));
        assert_eq!(&bad.message[..], b"no such subject");
        assert!(client.stats().bytes_sent > 0);
        serving.abort();
    });
}

#[test]
fn stream_echo_through_async_read_and_write() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let serving = tokio::spawn(server.serve(|h: Handle| async move {
            while let Some(s) = Stream::accept(&h).await {
                tokio::spawn(async move {
                    let (mut r, mut w) = tokio::io::split(s);
                    tokio::io::copy(&mut r, &mut w).await.expect("echo");
                    w.shutdown().await.expect("finish");
                });
            }
        }));
        let client = weft_tokio::connect(addr, Config::default()).await.unwrap();
        client.connected().await.expect("handshake");

        // Larger than the windows, so flow control holds the writer back.
        let data = pattern(3 << 20, 3);
        let stream = Stream::open(&client).expect("open");
        let (mut r, mut w) = tokio::io::split(stream);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(100_000) {
                w.write_all(chunk).await.expect("write");
            }
            w.shutdown().await.expect("finish");
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read");
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echo intact");
        serving.abort();
    });
}

#[test]
fn publish_reaches_a_subscriber_on_another_connection() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let hub = server.hub().clone();
        let serving = tokio::spawn(server.serve(echo_app));
        let publisher = weft_tokio::connect(addr, Config::default()).await.unwrap();
        let subscriber = weft_tokio::connect(addr, Config::default()).await.unwrap();
        publisher.connected().await.expect("handshake");
        subscriber.connected().await.expect("handshake");

        // Each subscribe completes once the server's hub registered it.
        let mut sub = subscriber
            .subscribe("news.>", None, OverflowPolicy::Wait)
            .await
            .expect("subscribe");
        let mut group = subscriber
            .subscribe("jobs", Some("workers"), OverflowPolicy::Wait)
            .await
            .expect("subscribe in a group");
        assert_eq!(hub.connections(), 2);

        for i in 0..200u8 {
            publisher.publish("news.eu", &[i]).await.expect("publish");
        }
        publisher.publish("jobs", b"job").await.expect("publish");
        publisher
            .publish("other", b"unseen")
            .await
            .expect("publish");
        for i in 0..200u8 {
            let d = sub.next_delivery().await.expect("delivery");
            assert_eq!(&d.topic[..], b"news.eu");
            assert_eq!(&d.payload[..], &[i]);
        }
        let job = group.next_delivery().await.expect("job");
        assert_eq!(
            (&job.topic[..], &job.payload[..]),
            (&b"jobs"[..], &b"job"[..])
        );
        assert_eq!(sub.dropped(), 0);
        serving.abort();
    });
}

#[test]
fn deadlines_fire_and_dropped_requests_are_cancelled() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = weft_tokio::connect(addr, Config::default()).await.unwrap();
        let served = server.accept().await.unwrap();
        client.connected().await.expect("handshake");

        // Never answered: the requester's deadline (the driver task's timer) ends it.
        let timed = client
            .request(b"hang", b"", Some(Duration::from_millis(20)))
            .await;
        let held = served.next_request().await.expect("request");
        assert!(failed(&timed), "the deadline ended it: {timed:?}");
        drop(held);

        // Dropped while in flight: the server learns of the cancel.
        let mut pending = Box::pin(client.request(b"slow", b"", None));
        assert!(futures_poll_once(pending.as_mut()).await.is_none());
        let slow = served.next_request().await.expect("request");
        assert_eq!(&slow.subject[..], b"slow");
        drop(pending);
        // A later request arrives after the CANCEL on the same connection.
        let c = client.clone();
        let marker = tokio::spawn(async move { c.request(b"marker", b"", None).await });
        let m = served.next_request().await.expect("marker");
        assert_eq!(
            slow.respond(Outcome::Ok, "", b""),
            Err(weft_tokio::Error::UnknownId)
        );
        m.respond(Outcome::Ok, "", b"done").unwrap();
        assert_eq!(&marker.await.unwrap().unwrap().payload[..], b"done");
    });
}

/// Polls a future once; `Some` if it completed.
async fn futures_poll_once<F: Future + ?Sized>(mut f: core::pin::Pin<&mut F>) -> Option<F::Output> {
    core::future::poll_fn(|cx| match f.as_mut().poll(cx) {
        core::task::Poll::Ready(v) => core::task::Poll::Ready(Some(v)),
        core::task::Poll::Pending => core::task::Poll::Ready(None),
    })
    .await
}

#[test]
fn a_slow_reader_holds_the_sender_back_and_loses_nothing() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = weft_tokio::connect(addr, Config::default()).await.unwrap();
        let served = server.accept().await.unwrap();
        client.connected().await.expect("handshake");
        const N: u32 = 5_000;
        let msg = |i: u32| {
            let mut m = [0u8; 64];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        };
        // Fits the client's send queue: every send completes without the reader.
        for i in 0..N {
            client.send(&msg(i)).await.expect("send");
        }
        // Wait until the server has taken in more than its application queue
        // (1024 messages) holds while nobody reads: from then on its driver is
        // held back, and must resume as the reader below catches up. It gets
        // there (its driver takes the queue's worth and fills its receive
        // buffer, a 64 KiB record, with the rest) and the count only grows, so
        // the wait cannot race; it is bounded in time, not in a number of yields
        // (which a loaded machine could use up before the server ran at all).
        let full = 1_500 * 64;
        let limit = std::time::Instant::now() + Duration::from_secs(60);
        let mut took = served.stats().bytes_received;
        while took <= full && std::time::Instant::now() < limit {
            tokio::task::yield_now().await;
            took = served.stats().bytes_received;
        }
        assert!(took > full, "server took only {took} bytes in 60 s");
        for i in 0..N {
            let m = served.next_message().await.expect("message");
            assert_eq!(&m[..], &msg(i));
        }
    });
}

/// The shutdown an application does before leaving `main`: `shutdown().await`
/// on its handle, then the runtime may go. The client runs on a runtime of its
/// own that is dropped right after; the server, on another, received everything.
#[test]
fn shutdown_before_the_runtime_goes_loses_nothing() {
    const N: u32 = 2_000;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let addr = server_rt.block_on(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.serve(move |h: Handle| {
            let tx = tx.clone();
            async move {
                let mut n = 0u32;
                while let Some(m) = h.next_message().await {
                    assert_eq!(&m[..], &n.to_be_bytes(), "in order, unchanged");
                    n += 1;
                }
                let _ = tx.try_send(n);
            }
        }));
        addr
    });
    {
        // The application's `main`: its own runtime, dropped at the end.
        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        client_rt.block_on(async {
            let h = weft_tokio::connect(addr, Config::default()).await.unwrap();
            for i in 0..N {
                h.send(&i.to_be_bytes()).await.expect("send");
            }
            h.shutdown().await.expect("a graceful shutdown");
        });
    }
    let n = rx
        .recv_timeout(HANG_LIMIT)
        .expect("the server's connection ended");
    assert_eq!(n, N, "every message sent before shutdown arrived");
}

/// A server's graceful shutdown: it stops accepting, closes every connection
/// with NO_ERROR after what was in flight, and returns once all are done.
#[test]
fn serve_with_shutdown_drains_every_connection_and_returns() {
    run(async {
        let server = Server::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (count_tx, mut count_rx) = tokio::sync::mpsc::channel::<(u32, bool)>(4);
        let serving = tokio::spawn(server.serve_with_shutdown(
            move |h: Handle| {
                let count_tx = count_tx.clone();
                async move {
                    let has_peer = h.peer_addr().is_some_and(|a| a.ip().is_loopback());
                    let mut n = 0;
                    while h.next_message().await.is_some() {
                        n += 1;
                    }
                    let _ = count_tx.send((n, has_peer)).await;
                }
            },
            async {
                let _ = stop_rx.await;
            },
        ));
        let a = weft_tokio::connect(addr, Config::default()).await.unwrap();
        let b = weft_tokio::connect(addr, Config::default()).await.unwrap();
        for h in [&a, &b] {
            for i in 0..50u32 {
                h.send(&i.to_be_bytes()).await.unwrap();
            }
            h.flush().await.expect("the server has them");
        }
        stop_tx.send(()).unwrap();
        for h in [&a, &b] {
            let info = h.closed().await;
            assert_eq!(
                (info.kind, info.code, info.initiator),
                (
                    CloseKind::Graceful,
                    weft_tokio::ErrorCode::NO_ERROR,
                    weft_tokio::Side::Peer
                ),
                "{info}"
            );
        }
        serving.await.unwrap().expect("serve returned Ok");
        for _ in 0..2 {
            let (n, has_peer) = count_rx.recv().await.expect("an app ended");
            assert_eq!(n, 50);
            assert!(has_peer, "the app saw its peer's address");
        }
        assert!(true_if_refused(addr).await, "the listener is closed");
    });
}

/// True if a connection to `addr` is refused or ends at once (a closed listener).
async fn true_if_refused(addr: std::net::SocketAddr) -> bool {
    match TcpStream::connect(addr).await {
        Err(_) => true,
        Ok(mut s) => {
            let mut b = [0u8; 1];
            matches!(s.read(&mut b).await, Ok(0) | Err(_))
        }
    }
}

/// Async handlers run concurrently up to the bound, answer with any outcome, and
/// a handler whose request passed its deadline is dropped (cancellation).
#[test]
fn serve_concurrent_runs_handlers_at_once_and_drops_cancelled_ones() {
    use std::sync::{Arc, Mutex};
    use weft_tokio::{Answer, RequestError};
    run(async {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = weft_tokio::spawn(a, Role::Client, Config::default());
        let server = weft_tokio::spawn(b, Role::Server, Config::default());
        // Four "meet" handlers answer only once all four are running at once.
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
        /// Reports its drop: the handler holding it was dropped.
        struct Guard(Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                if let Some(t) = self.0.lock().unwrap().take() {
                    let _ = t.send(());
                }
            }
        }
        let serving = tokio::spawn(async move {
            server
                .serve_concurrent(8, move |req| {
                    let barrier = barrier.clone();
                    let dropped_tx = dropped_tx.clone();
                    async move {
                        match &req.subject[..] {
                            b"meet" => {
                                barrier.wait().await;
                                Answer::Ok(req.payload.to_vec())
                            }
                            b"forever" => {
                                assert!(req.deadline.is_some(), "the deadline is visible");
                                let _g = Guard(dropped_tx);
                                std::future::pending::<Answer>().await
                            }
                            b"fail" => Answer::Error {
                                code: 7,
                                message: "seven".into(),
                            },
                            _ => Answer::NoResponder,
                        }
                    }
                })
                .await;
        });
        let meets: Vec<_> = (0..4u8)
            .map(|i| {
                let c = client.clone();
                tokio::spawn(async move { c.request(b"meet", &[i], None).await })
            })
            .collect();
        for (i, m) in meets.into_iter().enumerate() {
            let r = m.await.unwrap().unwrap().into_result().expect("met");
            assert_eq!(&r[..], &[i as u8]);
        }
        let r = client.request(b"fail", b"", None).await.unwrap();
        assert_eq!(
            r.into_result(),
            Err(RequestError::Error {
                code: 7,
                message: "seven".into()
            })
        );
        let r = client.request(b"nobody", b"", None).await.unwrap();
        assert_eq!(r.into_result(), Err(RequestError::NoResponder));
        let r = client
            .request(b"forever", b"", Some(Duration::from_millis(200)))
            .await
            .unwrap();
        assert_eq!(r.into_result(), Err(RequestError::DeadlineExceeded));
        dropped_rx
            .await
            .expect("the expired request's handler was dropped");
        drop(client);
        serving.await.unwrap();
    });
}
