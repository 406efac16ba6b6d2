//! weft-mio over real sockets on 127.0.0.1. Every wait is bounded (a generous
//! bound that only stops a broken run); nothing sleeps to synchronise and nothing
//! asserts on timing.

use std::collections::HashSet;
use std::future::Future;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use weft_core::conn::{CloseKind, Outcome};
use weft_core::{Config, OverflowPolicy};
use weft_driver::Handle;
use weft_mio::{
    block_on, block_on_timeout, BlockingStream, Client, EventLoop, Executor, RecvTimeoutError,
    Server,
};

/// Bounds a wait that must end; only a broken adapter ever reaches it.
const BOUND: Duration = Duration::from_secs(60);

/// A server running the conformance suite's standard app (echo, hang, streams
/// echoed, pub/sub through the hub) on a two-thread executor.
struct TestServer {
    server: Arc<Server>,
    acceptor: Option<JoinHandle<()>>,
    exec: Arc<Executor>,
}

impl TestServer {
    fn start(config: Config) -> TestServer {
        let server = Arc::new(Server::bind("127.0.0.1:0", config).expect("bind"));
        let exec = Arc::new(Executor::new(2).expect("executor"));
        let app = weft_conformance::app::standard();
        let acceptor = {
            let (server, exec) = (server.clone(), exec.clone());
            std::thread::spawn(move || {
                server.serve_with(&exec, |h| app(h)).expect("serve");
            })
        };
        TestServer {
            server,
            acceptor: Some(acceptor),
            exec,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.stop();
        if let Some(a) = self.acceptor.take() {
            a.join().expect("acceptor");
        }
        self.server.shutdown();
        self.exec.shutdown();
    }
}

#[test]
fn request_with_timeout_gets_deadline_exceeded() {
    let srv = TestServer::start(Config::default());
    let client = Client::connect(srv.addr(), Config::default()).expect("connect");
    // `hang` is never answered: the core's request deadline ends it.
    let reply = client
        .request(b"hang", b"", Some(Duration::from_millis(200)))
        .expect("request");
    assert_eq!(reply.outcome, Outcome::DeadlineExceeded);
    // The connection is fine afterwards.
    let reply = client.request(b"echo", b"still here", None).expect("echo");
    assert_eq!(reply.outcome, Outcome::Ok);
    assert_eq!(&reply.payload[..], b"still here");
    let info = client.close();
    assert_eq!(info.kind, CloseKind::Graceful);
}

#[test]
fn dropped_request_is_cancelled() {
    let srv = TestServer::start(Config::default());
    let client = Client::connect(srv.addr(), Config::default()).expect("connect");
    // Give up locally on a request that is never answered: dropping it cancels it.
    let r = block_on_timeout(
        client.handle().request(b"hang", b"", None),
        Duration::from_millis(100),
    );
    assert!(r.is_none());
    let reply = client.request(b"echo", b"after", None).expect("echo");
    assert_eq!(&reply.payload[..], b"after");
    let stats = client.stats();
    assert!(stats.messages_sent >= 2, "{stats:?}");
    assert!(stats.bytes_received > 0, "{stats:?}");
}

#[test]
fn one_loop_serves_a_thousand_connections() {
    const N: usize = 1000;
    let server = Arc::new(Server::bind("127.0.0.1:0", Config::default()).expect("bind"));
    let serving = {
        let server = server.clone();
        std::thread::spawn(move || {
            server.serve(|subject, payload| match subject {
                b"echo" => Ok(payload.to_vec()),
                _ => Err((404, "unknown".into())),
            })
        })
    };
    // One client event loop hosts all the client connections; a two-thread
    // executor runs their requests.
    let clients = EventLoop::new().expect("client loop");
    let handles: Vec<Handle> = (0..N)
        .map(|_| {
            clients
                .connect(server.local_addr(), Config::default())
                .expect("connect")
        })
        .collect();
    let exec = Executor::new(2).expect("executor");
    let (tx, rx) = mpsc::channel();
    for (i, h) in handles.iter().enumerate() {
        let h = h.clone();
        let tx = tx.clone();
        exec.spawn(async move {
            let r = match h.connected().await {
                Ok(()) => h
                    .request(b"echo", i.to_string().as_bytes(), Some(BOUND))
                    .await
                    .map_err(|e| e.to_string()),
                Err(c) => Err(format!("handshake: {c:?}")),
            };
            let _ = tx.send((i, r));
        });
    }
    let mut seen = HashSet::new();
    for _ in 0..N {
        let (i, r) = rx.recv_timeout(BOUND).expect("a reply in time");
        let reply = r.expect("request");
        assert_eq!(reply.outcome, Outcome::Ok);
        assert_eq!(reply.payload, i.to_string().as_bytes());
        assert!(seen.insert(i));
    }
    // Every connection is still open, on the server's one loop.
    assert_eq!(clients.connections(), N);
    assert_eq!(server.connections(), N);
    assert_eq!(server.hub().connections(), N);
    drop(handles);
    exec.shutdown();
    clients.shutdown();
    server.stop();
    serving.join().expect("serving thread").expect("serve");
}

fn big_config() -> Config {
    let mut c = Config::default();
    // Room for a 16 MiB payload plus its frame header.
    c.params.max_message_size = (16 << 20) + 4096;
    c
}

#[test]
fn sixteen_mib_message_survives_partial_writes() {
    let srv = TestServer::start(big_config());
    let client = Client::connect(srv.addr(), big_config()).expect("connect");
    let payload: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    // Both directions carry 16 MiB: far more than the socket buffers, so both
    // loops keep partial writes and wait for writability.
    let reply = client.request(b"echo", &payload, None).expect("request");
    if reply.outcome != Outcome::Ok {
        panic!("{reply:?} {:?} {:?}", client.closed(), client.stats());
    }
    assert!(reply.payload == payload[..], "echo differs");
    let stats = client.stats();
    assert!(stats.bytes_sent >= 16 << 20, "{stats:?}");
    assert!(stats.bytes_received >= 16 << 20, "{stats:?}");
    assert_eq!(client.close().kind, CloseKind::Graceful);
}

#[test]
fn peer_reset_mid_request_resolves() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (go, wait) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        wait.recv_timeout(BOUND).expect("go");
        // Read one byte of the client's HELLO and close with the rest unread: the
        // kernel answers with a reset.
        let mut b = [0u8; 1];
        let n = s.read(&mut b).expect("read");
        assert_eq!(n, 1);
        drop(s);
    });
    let ev = EventLoop::new().expect("loop");
    let h = ev.connect(addr, Config::default()).expect("connect");
    // The request is issued (pipelined behind the HELLO) before the reset.
    let mut req = Box::pin(h.request(b"echo", b"never answered", None));
    let waker = std::task::Waker::noop();
    let first = req
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker));
    assert!(first.is_pending());
    go.send(()).expect("go");
    let r = block_on_timeout(req, BOUND).expect("the request resolves");
    match r {
        // Lost: the connection ended without an answer (not retry-safe).
        Ok(reply) => assert_eq!(reply.outcome, Outcome::Lost),
        Err(e) => assert_eq!(e, weft_core::Error::Closed),
    }
    let info = block_on_timeout(h.closed(), BOUND).expect("closed");
    assert_ne!(info.kind, CloseKind::Graceful);
    peer.join().expect("peer");
    drop(h);
    ev.shutdown();
    assert_eq!(ev.connections(), 0);
}

#[test]
fn stream_read_write_echo() {
    let server = Server::bind("127.0.0.1:0", Config::default()).expect("bind");
    let addr = server.local_addr();
    let client = Client::connect(addr, Config::default()).expect("connect");
    let h = server.accept().expect("accept");
    // The server echoes the stream with blocking Read/Write too.
    let echo = std::thread::spawn(move || {
        let mut s = BlockingStream::from(block_on(h.accept_stream()).expect("a stream"));
        s.set_read_timeout(Some(BOUND));
        s.set_write_timeout(Some(BOUND));
        let mut r = s.try_clone().expect("clone");
        let n = std::io::copy(&mut r, &mut s).expect("copy");
        s.finish().expect("finish");
        drop(s);
        drop(r);
        // Keep the connection until the client is done with it.
        let _ = block_on_timeout(h.closed(), BOUND);
        n
    });
    let data: Vec<u8> = (0..(3u32 << 20) / 2).map(|i| (i * 7 % 256) as u8).collect();
    let mut s = client.open_stream().expect("open");
    s.set_read_timeout(Some(BOUND));
    s.set_write_timeout(Some(BOUND));
    // Writer and reader on two threads: the echo is flow-controlled both ways and
    // larger than the windows, so it needs both.
    let mut w = s.try_clone().expect("clone");
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || {
            w.write_all(&data).expect("write");
            w.flush().expect("flush");
            w.finish().expect("finish");
        })
    };
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("read");
    writer.join().expect("writer");
    assert!(
        back == data,
        "echo differs ({} of {} bytes)",
        back.len(),
        data.len()
    );
    drop(s);
    assert_eq!(client.close().kind, CloseKind::Graceful);
    assert_eq!(echo.join().expect("echo"), data.len() as u64);
}

#[test]
fn pubsub_queue_group_through_the_hub() {
    let srv = TestServer::start(Config::default());
    let connect = || Client::connect(srv.addr(), Config::default()).expect("connect");
    let (a, b, c, p) = (connect(), connect(), connect(), connect());
    let sa = a
        .subscribe("jobs.*", Some("workers"), OverflowPolicy::DropOldest)
        .expect("sub a");
    let sb = b
        .subscribe("jobs.*", Some("workers"), OverflowPolicy::DropOldest)
        .expect("sub b");
    let mut sc = c
        .subscribe("jobs.>", None, OverflowPolicy::DropOldest)
        .expect("sub c");
    // Each subscribe returned once the server's hub registered it.
    const N: usize = 20;
    for i in 0..N {
        p.publish(&format!("jobs.{i}"), i.to_string().as_bytes())
            .expect("publish");
    }
    // The plain subscriber sees all of them, in order.
    for i in 0..N {
        let d = sc.recv_timeout(BOUND).expect("delivery");
        assert_eq!(&d.topic[..], format!("jobs.{i}").as_bytes());
        assert_eq!(&d.payload[..], i.to_string().as_bytes());
    }
    // The group shares them: each exactly once across its two members.
    let (tx, rx) = mpsc::channel();
    let readers: Vec<_> = [(sa, tx.clone()), (sb, tx)]
        .into_iter()
        .map(|(mut s, tx)| {
            std::thread::spawn(move || {
                while let Ok(d) = s.recv_timeout(BOUND) {
                    if tx.send(d.payload).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    let mut got = HashSet::new();
    for _ in 0..N {
        let m = rx.recv_timeout(BOUND).expect("group delivery");
        assert!(got.insert(m), "delivered twice");
    }
    drop(rx);
    // Closing the members' connections ends their readers.
    a.close();
    b.close();
    for r in readers {
        r.join().expect("reader");
    }
    assert!(matches!(
        sc.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    ));
}

#[test]
fn server_stop_ends_accept() {
    let server = Server::bind("127.0.0.1:0", Config::default()).expect("bind");
    assert!(server
        .accept_timeout(Duration::ZERO)
        .expect("accept")
        .is_none());
    server.stop();
    assert!(server.accept().is_err());
    // Connecting may still succeed at the TCP level (backlog) but the connection is
    // never served; the handshake ends rather than hangs.
    server.shutdown();
}

#[test]
fn input_resumes_when_the_application_catches_up() {
    const N: usize = 20_000;
    let pad = [b'.'; 200];
    let server = Server::bind("127.0.0.1:0", Config::default()).expect("bind");
    let client = Client::connect(server.local_addr(), Config::default()).expect("connect");
    let h = server.accept().expect("accept");
    let (half, half_sent) = mpsc::channel();
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            if i == N / 2 {
                half.send(()).expect("signal");
            }
            let m = [format!("message {i}").as_bytes(), &pad].concat();
            client.send(&m).expect("send");
        }
        client
    });
    // Half the messages (2 MB) are more than the server's application queue and the
    // connection's buffers hold: its driver stops taking input until this thread
    // reads, then wakes the loop.
    half_sent.recv_timeout(BOUND).expect("half sent");
    for i in 0..N {
        let m = block_on_timeout(h.next_message(), BOUND)
            .expect("in time")
            .expect("a message");
        assert_eq!(m, [format!("message {i}").as_bytes(), &pad].concat());
    }
    let client = sender.join().expect("sender");
    assert_eq!(client.close().kind, CloseKind::Graceful);
}
