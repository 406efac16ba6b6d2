//! The adapter over 127.0.0.1: partial writes and reads, a peer that goes away
//! mid-request, many concurrent requests, a stream echo through the `futures-io`
//! wrapper, and pub/sub between two clients of one server. No sleeps, no timing
//! assertions; every loop is bounded.

use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use weft_smol::{
    block_on, global_executor, Config, Handle, Outcome, OverflowPolicy, Role, Server, Stream, Task,
};

/// The standard test app: `echo` requests answer their payload, `len` answers the
/// payload's length, `count` the number of one-way messages received so far;
/// streams are echoed back and finished.
async fn app(h: Handle) {
    let streams = h.clone();
    let messages = h.clone();
    let count = AtomicU64::new(0);
    let requests = h.serve(|subject, payload| match subject {
        b"echo" => Ok(payload.to_vec()),
        b"len" => Ok(payload.len().to_string().into_bytes()),
        b"count" => Ok(count.load(Ordering::SeqCst).to_string().into_bytes()),
        _ => Err((404, "no such subject".into())),
    });
    let counting = async {
        while messages.next_message().await.is_some() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    };
    let echo_streams = async move {
        while let Some(s) = Stream::accept(&streams).await {
            global_executor()
                .spawn(async move {
                    let (r, mut w) = futures_lite::io::split(s);
                    let _ = futures_lite::io::copy(r, &mut w).await;
                    let _ = w.close().await;
                })
                .detach();
        }
    };
    future::zip(future::zip(requests, counting), echo_streams).await;
}

/// A server running [`app`] on every connection until the returned task is dropped.
fn start_server() -> (SocketAddr, Task<()>) {
    let server = Server::bind(([127, 0, 0, 1], 0), Config::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let task = global_executor().spawn(async move {
        while let Ok(h) = server.accept().await {
            global_executor().spawn(app(h)).detach();
        }
    });
    (addr, task)
}

/// A socket that takes at most a few bytes per write and gives at most a few per
/// read, the sizes cycling.
struct Trickle {
    inner: async_io::Async<TcpStream>,
    writes: usize,
    reads: usize,
}

const WRITE_SIZES: [usize; 5] = [1, 3, 7, 2, 4093];
const READ_SIZES: [usize; 4] = [1, 5, 11, 8191];

impl futures_io::AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = READ_SIZES[this.reads % READ_SIZES.len()].min(buf.len());
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut buf[..n]);
        if r.is_ready() {
            this.reads += 1;
        }
        r
    }
}

impl futures_io::AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = WRITE_SIZES[this.writes % WRITE_SIZES.len()].min(buf.len());
        let r = Pin::new(&mut this.inner).poll_write(cx, &buf[..n]);
        if r.is_ready() {
            this.writes += 1;
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// Polls all of `futs` together on one task until every one is done.
async fn join_all<F: std::future::Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<(F, Option<F::Output>)> = futs.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in slots.iter_mut().filter(|(_, o)| o.is_none()) {
            match Pin::new(f).poll(cx) {
                Poll::Ready(v) => *out = Some(v),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().map(|(_, o)| o.unwrap()).collect()
}

#[test]
fn partial_writes_and_reads_move_a_16_mib_message() {
    let (addr, _server) = start_server();
    block_on(async {
        let socket = async_io::Async::<TcpStream>::connect(addr).await.unwrap();
        let io = Trickle {
            inner: socket,
            writes: 0,
            reads: 0,
        };
        let h = weft_smol::spawn(io, Role::Client, Config::default(), global_executor());
        h.connected().await.unwrap();
        // Just under the 16 MiB message limit, which counts the frame header too.
        let payload: Vec<u8> = (0..(16usize << 20) - 64)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let reply = h.request(b"echo", &payload, None).await.unwrap();
        assert_eq!(reply.outcome, Outcome::Ok);
        assert_eq!(reply.payload.len(), payload.len());
        assert!(reply.payload[..] == payload[..], "echo intact");
        // A one-way message of the same size; requests may overtake it, so ask
        // until the server has it.
        h.send(&payload).await.unwrap();
        let mut arrived = false;
        for _ in 0..100_000 {
            let reply = h.request(b"count", b"", None).await.unwrap();
            if &reply.payload[..] == b"1" {
                arrived = true;
                break;
            }
        }
        assert!(arrived, "the message arrived");
        // A graceful close sends everything queued first.
        h.close(weft_smol::ErrorCode::NO_ERROR, "done");
        let info = h.closed().await;
        assert_eq!(info.kind, weft_smol::CloseKind::Graceful, "{info:?}");
        assert!(h.stats().bytes_sent > 2 * payload.len() as u64);
    });
}

#[test]
fn peer_eof_mid_request_fails_the_request() {
    block_on(async {
        let listener = async_io::Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let client = weft_smol::connect(addr, Config::default()).await.unwrap();
        // The server side, run by hand so the test can cut its socket.
        let (socket, _) = listener.accept().await.unwrap();
        let raw: TcpStream = socket.get_ref().try_clone().unwrap();
        let server = weft_smol::spawn(socket, Role::Server, Config::default(), global_executor());
        let cut = async {
            let req = server.next_request().await.expect("the request arrives");
            raw.shutdown(Shutdown::Both).unwrap();
            req
        };
        let (held, reply) = future::zip(cut, client.request(b"hang", b"", None)).await;
        // Failure is an error, or an outcome other than Ok (NotProcessed).
        if let Ok(r) = reply {
            assert_ne!(r.outcome, Outcome::Ok, "{r:?}");
        }
        let info = client.closed().await;
        assert_ne!(info.kind, weft_smol::CloseKind::Graceful, "{info:?}");
        drop(held);
        // A request issued after the close fails at once.
        assert!(client.request(b"echo", b"", None).await.is_err());
    });
}

#[test]
fn peer_eof_before_the_handshake_fails_the_request() {
    block_on(async {
        let listener = async_io::Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let client = weft_smol::connect(addr, Config::default()).await.unwrap();
        let peer = async {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the client's first bytes (preface, HELLO, the request), then go.
            let mut buf = [0u8; 16];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
        };
        let ((), reply) = future::zip(peer, client.request(b"echo", b"x", None)).await;
        // Failure is an error, or an outcome other than Ok (NotProcessed).
        if let Ok(r) = reply {
            assert_ne!(r.outcome, Outcome::Ok, "{r:?}");
        }
        assert!(client.connected().await.is_err());
    });
}

#[test]
fn many_concurrent_requests() {
    let (addr, _server) = start_server();
    block_on(async {
        let h = weft_smol::connect(addr, Config::default()).await.unwrap();
        // More than the 256 requests either side allows at once: the rest wait.
        let tasks: Vec<Task<()>> = (0..1000u32)
            .map(|i| {
                let h = h.clone();
                global_executor().spawn(async move {
                    let body = i.to_be_bytes();
                    let r = h.request(b"echo", &body, None).await.unwrap();
                    assert_eq!((r.outcome, &r.payload[..]), (Outcome::Ok, &body[..]));
                })
            })
            .collect();
        // And 300 on this task at once, polled together.
        let local: Vec<_> = (0..300usize)
            .map(|i| h.request(b"len", &vec![0u8; i], None))
            .collect();
        let replies = join_all(local).await;
        for (i, r) in replies.into_iter().enumerate() {
            assert_eq!(&r.unwrap().payload[..], i.to_string().as_bytes());
        }
        for t in tasks {
            t.await;
        }
        let bad = h.request(b"nope", b"", None).await.unwrap();
        assert_eq!(bad.outcome, Outcome::Error(404));
        assert_eq!(&bad.message[..], b"no such subject");
    });
}

#[test]
fn stream_echo_through_futures_io() {
    let (addr, _server) = start_server();
    block_on(async {
        let h = weft_smol::connect(addr, Config::default()).await.unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let s = Stream::open(&h).unwrap();
        let (mut r, mut w) = futures_lite::io::split(s);
        let write = async {
            for chunk in data.chunks(100_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.close().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = future::zip(write, read).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echo intact");
    });
}

#[test]
fn subscription_across_two_clients_through_one_server() {
    let (addr, _server) = start_server();
    block_on(async {
        let a = weft_smol::connect(addr, Config::default()).await.unwrap();
        let b = weft_smol::connect(addr, Config::default()).await.unwrap();
        let c = weft_smol::connect(addr, Config::default()).await.unwrap();
        // Each subscribe completes once the server registered it.
        let mut news = a
            .subscribe("news.>", None, OverflowPolicy::Wait)
            .await
            .unwrap();
        let mut w1 = a
            .subscribe("jobs", Some("workers"), OverflowPolicy::Wait)
            .await
            .unwrap();
        let mut w2 = c
            .subscribe("jobs", Some("workers"), OverflowPolicy::Wait)
            .await
            .unwrap();
        for i in 0..20u8 {
            b.publish("news.eu.markets", &[i]).await.unwrap();
        }
        for i in 0..20u8 {
            let d = news.next_delivery().await.unwrap();
            assert_eq!(&d.topic[..], b"news.eu.markets");
            assert_eq!(&d.payload[..], &[i]);
        }
        // A queue group: each job goes to exactly one member.
        for i in 0..40u8 {
            b.publish("jobs", &[i]).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..40 {
            let d = future::or(w1.next_delivery(), w2.next_delivery())
                .await
                .unwrap();
            got.push(d.payload[0]);
        }
        got.sort_unstable();
        assert_eq!(got, (0..40u8).collect::<Vec<_>>());
        // Not on the other topic, and nothing more for the group.
        b.publish("other", b"x").await.unwrap();
        b.request(b"echo", b"", None).await.unwrap();
        assert!(future::poll_once(news.next_delivery()).await.is_none());
    });
}

#[test]
fn dropping_the_last_handle_closes_gracefully() {
    block_on(async {
        let server = Server::bind(([127, 0, 0, 1], 0), Config::default()).unwrap();
        let addr = server.local_addr().unwrap();
        let client = weft_smol::connect(addr, Config::default()).await.unwrap();
        let accepted = server.accept().await.unwrap();
        assert_eq!(server.hub().connections(), 1);
        client.connected().await.unwrap();
        drop(client);
        let info = accepted.closed().await;
        assert_eq!(info.kind, weft_smol::CloseKind::Graceful, "{info:?}");
    });
}

#[test]
fn deadlines_fire_and_dropped_requests_are_cancelled() {
    block_on(async {
        let server = Server::bind(([127, 0, 0, 1], 0), Config::default()).unwrap();
        let addr = server.local_addr().unwrap();
        let client = weft_smol::connect(addr, Config::default()).await.unwrap();
        let accepted = server.accept().await.unwrap();
        // A request nobody answers ends at its deadline (the driver's timer): the
        // server's application never takes it.
        let timeout = Some(std::time::Duration::from_millis(20));
        let reply = client.request(b"slow", b"", timeout).await.unwrap();
        assert_eq!(reply.outcome, Outcome::DeadlineExceeded);
        drop((client, accepted));

        // On a second connection:
        let client = weft_smol::connect(addr, Config::default()).await.unwrap();
        let accepted = server.accept().await.unwrap();
        // A request whose future is dropped is cancelled on the wire: the server's
        // answer to it is refused once the cancel arrived, and the connection goes on.
        let mut dropped = Box::pin(client.request(b"slow", b"", None));
        assert!(future::poll_once(dropped.as_mut()).await.is_none());
        let incoming = accepted.next_request().await.expect("second request");
        drop(dropped);
        // One round trip: the cancel was queued before this request, and the server
        // handles frames in order.
        let ((), r) = future::zip(
            async {
                let r = accepted.next_request().await.unwrap();
                let p = r.payload.clone();
                r.respond(Outcome::Ok, "", &p).unwrap();
            },
            client.request(b"echo", b"ping", None),
        )
        .await;
        assert_eq!(&r.unwrap().payload[..], b"ping");
        assert_eq!(
            incoming.respond(Outcome::Ok, "", b"late"),
            Err(weft_smol::Error::UnknownId)
        );
    });
}

/// A graceful shutdown: nothing more is accepted, every connection is closed
/// with NO_ERROR after what was in flight, and it returns once all are done.
#[test]
fn graceful_shutdown_drains_every_connection_and_returns() {
    block_on(async {
        let server = Server::bind(([127, 0, 0, 1], 0), Config::default()).unwrap();
        let addr = server.local_addr().unwrap();
        let a = weft_smol::connect(addr, Config::default()).await.unwrap();
        let served = server.accept().await.unwrap();
        assert!(served.peer_addr().is_some_and(|p| p.ip().is_loopback()));
        assert_eq!(a.peer_addr(), Some(addr));
        for i in 0..50u32 {
            a.send(&i.to_be_bytes()).await.unwrap();
        }
        a.flush().await.expect("the server has them");
        server.graceful_shutdown().await;
        let info = a.closed().await;
        assert_eq!(
            (info.kind, info.code, info.initiator),
            (
                weft_smol::CloseKind::Graceful,
                weft_smol::ErrorCode::NO_ERROR,
                weft_smol::Side::Peer
            ),
            "{info}"
        );
        let mut n = 0;
        while served.next_message().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 50, "everything sent before the shutdown was delivered");
        assert!(
            weft_smol::connect(addr, Config::default()).await.is_err(),
            "the listener is closed"
        );
    });
}
