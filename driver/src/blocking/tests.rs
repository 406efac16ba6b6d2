//! The blocking client over an in-memory loop: each connection is a pair of
//! [`IoTask`](crate::IoTask)s joined by a [`mem::pipe`](crate::mem::pipe) on a
//! small executor, the server side running an echo application. So the wrapper is
//! checked apart from any adapter's sockets (the adapters' own tests and the
//! conformance catalogue run it over TCP).

use super::*;
use crate::mem;
use crate::{Executor, IoTask};
use core::future::Future;
use std::sync::Arc;
use weft_core::auth::PskAuthenticator;
use weft_core::conn::{CloseKind, Outcome};
use weft_core::Role;

/// Bounds the waits that only a broken wrapper would reach.
const BOUND: Duration = Duration::from_secs(60);

/// A "loop" that runs both ends of every connection on one executor.
#[derive(Clone)]
struct MemLoop {
    exec: Arc<Executor>,
    server: Config,
}

impl BlockingLoop for MemLoop {
    fn start() -> io::Result<Self> {
        Ok(MemLoop {
            exec: Arc::new(Executor::new(2)?),
            server: Config::default(),
        })
    }

    fn connect(&self, _addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
        let (a, b) = mem::pipe(64 << 10);
        let (cd, ch) = crate::connect(Role::Client, config, crate::os_seed());
        let (sd, sh) = crate::connect(Role::Server, self.server.clone(), crate::os_seed());
        // The timers are never fired: nothing here waits on a deadline.
        self.exec.spawn(IoTask::new(a, cd, mem::manual_timer().0));
        self.exec.spawn(IoTask::new(b, sd, mem::manual_timer().0));
        self.exec.spawn(serve(sh));
        Ok(ch)
    }
}

/// Echoes requests, one-way messages and streams until the connection ends.
async fn serve(h: Handle) {
    let requests = {
        let h = h.clone();
        async move { h.serve(|_, p| Ok(p.to_vec())).await }
    };
    let messages = {
        let h = h.clone();
        async move {
            while let Some(m) = h.next_message().await {
                if h.send(&m).await.is_err() {
                    return;
                }
            }
        }
    };
    let streams = async move {
        while let Some(mut s) = h.accept_stream().await {
            let mut buf = vec![0u8; 4096];
            loop {
                match poll_fn(|cx| s.poll_read(cx, &mut buf)).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut off = 0;
                        while off < n {
                            match poll_fn(|cx| s.poll_write(cx, &buf[off..n])).await {
                                Ok(k) => off += k,
                                Err(_) => return,
                            }
                        }
                    }
                }
            }
            let _ = s.finish();
        }
    };
    join3(requests, messages, streams).await;
}

/// Polls three futures until all are done.
async fn join3(
    a: impl Future<Output = ()>,
    b: impl Future<Output = ()>,
    c: impl Future<Output = ()>,
) {
    let (mut a, mut b, mut c) = (Box::pin(a), Box::pin(b), Box::pin(c));
    let (mut da, mut db, mut dc) = (false, false, false);
    poll_fn(|cx| {
        da = da || a.as_mut().poll(cx).is_ready();
        db = db || b.as_mut().poll(cx).is_ready();
        dc = dc || c.as_mut().poll(cx).is_ready();
        if da && db && dc {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

type Client = BlockingClient<MemLoop>;

#[test]
fn connect_waits_for_the_handshake_then_requests_and_messages_block() {
    let client = Client::connect("unused:0", Config::default()).expect("connect");
    // The handshake is over when connect returns.
    assert!(
        client.negotiated().is_some(),
        "negotiated before connect returned"
    );
    let reply = client.request(b"echo", b"hi", None).expect("request");
    assert_eq!(reply.outcome, Outcome::Ok);
    assert_eq!(&reply.payload[..], b"hi");
    client.send(b"one way").expect("send");
    let back = block_on_timeout(client.handle().next_message(), BOUND).expect("echoed in time");
    assert_eq!(back.as_deref(), Some(&b"one way"[..]));
    assert!(client.stats().messages_sent >= 1, "{:?}", client.stats());
    assert_eq!(client.close().kind, CloseKind::Graceful);
    // Closed: the blocking calls return at once.
    assert_eq!(client.next_message(), None);
    assert!(client.next_request().is_none());
    assert_eq!(client.closed().kind, CloseKind::Graceful);
}

#[test]
fn a_refused_handshake_is_an_error_that_says_why() {
    let lp = MemLoop {
        server: Config {
            auth: Some(Arc::new(
                PskAuthenticator::with_client_key(b"k", b"server-key-0123456789abcdefghij")
                    .expect("key"),
            )),
            ..Config::default()
        },
        ..MemLoop::start().expect("loop")
    };
    let client = Config {
        auth: Some(Arc::new(
            PskAuthenticator::with_client_key(b"k", b"client-key-0123456789abcdefghij")
                .expect("key"),
        )),
        ..Config::default()
    };
    let err = Client::connect_on(&lp, "unused:0", client).expect_err("wrong key");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("handshake failed"), "{err}");
}

#[test]
fn subscriptions_wait_a_bounded_time_and_end_with_the_connection() {
    let client = Client::connect("unused:0", Config::default()).expect("connect");
    let mut sub = client
        .subscribe("nobody.publishes", None, OverflowPolicy::DropOldest)
        .expect("subscribe");
    // No hub on the in-memory server: nothing is delivered, and the wait ends.
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(sub.dropped(), 0);
    client.close();
    assert_eq!(sub.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
    assert!(
        sub.next().is_none(),
        "the iterator ends with the connection"
    );
}

#[test]
fn a_stream_and_its_clone_take_turns_then_read_the_end() {
    let client = Client::connect("unused:0", Config::default()).expect("connect");
    let mut w = client.open_stream().expect("open");
    w.set_write_timeout(Some(BOUND));
    let mut r = w.try_clone().expect("clone");
    r.set_read_timeout(Some(BOUND));
    assert_eq!(r.id(), w.id());
    // Chunk by chunk on one thread: each write is echoed before the next, so the
    // clones share the stream without either holding it across a wait.
    for round in 0..8u8 {
        let chunk: Vec<u8> = (0..40_000u32).map(|i| (i as u8) ^ round).collect();
        w.write_all(&chunk).expect("write");
        let mut back = vec![0u8; chunk.len()];
        r.read_exact(&mut back).expect("echo");
        assert!(back == chunk, "round {round} echoed intact");
    }
    w.finish().expect("finish");
    drop(w);
    assert_eq!(r.read(&mut [0u8; 8]).expect("end"), 0, "the echo ends ours");
    // The writer's clone is gone: the stream comes back whole.
    assert!(r.into_inner().is_some());
    assert_eq!(client.close().kind, CloseKind::Graceful);
}

#[test]
fn a_read_past_its_timeout_fails_with_timed_out() {
    let client = Client::connect("unused:0", Config::default()).expect("connect");
    let mut s = client.open_stream().expect("open");
    let keep = s.try_clone().expect("clone");
    // Nothing written, so the echo has nothing to send back.
    s.set_read_timeout(Some(Duration::from_millis(20)));
    let err = s.read(&mut [0u8; 16]).expect_err("nothing to read");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(s.into_inner().is_none(), "a clone still shares it");
    drop(keep);
    client.close();
}

#[test]
fn recv_timeout_error_says_what_happened() {
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out waiting for a delivery"
    );
    assert_eq!(RecvTimeoutError::Closed.to_string(), "connection closed");
}
