//! The io_uring server's graceful shutdown over 127.0.0.1: work in flight when
//! it starts is finished and the peer sees a graceful close; peers that do not
//! cooperate end by the configured timeouts, so the shutdown returns.
//!
//! Like the crate's other tests these require io_uring: without it they fail,
//! saying so. Nothing sleeps to synchronise and nothing asserts timing; each
//! test runs under a watchdog so that a hang fails instead.

use std::io::Read;
use std::net::TcpStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use weft_core::conn::{CloseKind, Outcome};
use weft_core::{Config, Error, ErrorCode};
use weft_driver::{block_on, Handle};
use weft_uring::{Client, Server, ShutdownReport};

/// A bound no working run comes near; it only turns a hang into a failure.
const WATCHDOG: Duration = Duration::from_secs(120);

fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let r = rx.recv_timeout(WATCHDOG);
    match (r, t.join()) {
        (Ok(v), _) => v,
        (Err(_), Err(p)) => std::panic::resume_unwind(p),
        (Err(_), Ok(())) => panic!("hung: no result within {WATCHDOG:?}"),
    }
}

/// The server's constructor result, failing loudly where io_uring is missing.
fn must(r: std::io::Result<Server>) -> Server {
    match r {
        Ok(s) => s,
        Err(e) if weft_uring::is_unavailable(&e) => {
            panic!("io_uring unavailable, and these tests require it: {e}")
        }
        Err(e) => panic!("bind: {e}"),
    }
}

#[test]
fn graceful_shutdown_finishes_what_is_in_flight() {
    watchdog(|| {
        let server = must(Server::bind("127.0.0.1:0", Config::default()));
        let client = Client::connect(server.local_addr(), Config::default()).expect("connect");
        let conn = server.accept().expect("the connection");

        const N: usize = 50;
        // The server's side: takes the N messages, then answers every request but
        // `slow`, which it hands over to be answered later; returns the messages
        // once its connection has ended.
        let (slow_tx, slow_rx) = mpsc::channel();
        let server_side = std::thread::spawn(move || {
            let got: Vec<_> = (0..N)
                .map(|_| block_on(conn.next_message()).expect("a message"))
                .collect();
            while let Some(req) = block_on(conn.next_request()) {
                if req.subject[..] == b"slow"[..] {
                    slow_tx.send(req).expect("hand over");
                } else {
                    let p = req.payload.clone();
                    let _ = req.respond(Outcome::Ok, "", &p);
                }
            }
            got
        });
        for i in 0..N {
            client.send(&[i as u8; 32]).expect("send");
        }
        let pending = client.handle().request(b"slow", b"work", None);
        let req = slow_rx.recv().expect("the slow request reached the server");

        let shutting = std::thread::spawn(move || server.graceful_shutdown());
        // Requests until the client refuses them (it does once the server's
        // CLOSE reached it, spec 15.2); one the CLOSE overtook is NOT_PROCESSED.
        let mut probes = 0u64;
        let refused = loop {
            match client.request(b"ping", b"", None) {
                Ok(_) => probes += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(refused, Error::Closed, "after {probes} probes");
        // The request was in flight: the drain waits for its answer.
        req.respond(Outcome::Ok, "", b"finished while draining")
            .expect("respond");
        let reply = block_on(pending).expect("the reply");
        assert_eq!(reply.outcome, Outcome::Ok);
        assert_eq!(&reply.payload[..], b"finished while draining");

        let info = block_on(client.handle().closed());
        assert_eq!(
            (info.kind, info.code),
            (CloseKind::Graceful, ErrorCode::NO_ERROR)
        );
        let report = shutting.join().expect("the shutdown");
        let all_graceful = ShutdownReport {
            graceful: 1,
            not_graceful: 0,
            cut: 0,
        };
        assert_eq!(report, all_graceful);
        let got = server_side.join().expect("the server's side");
        for (i, m) in got.iter().enumerate() {
            assert_eq!(&m[..], &[i as u8; 32][..], "message {i}");
        }
    });
}

#[test]
fn uncooperative_peers_end_by_the_configured_timeouts() {
    watchdog(|| {
        // Small timeouts keep the test short; only the outcome is checked.
        let config = Config {
            handshake_timeout: Duration::from_millis(250),
            drain_timeout: Duration::from_millis(250),
            linger: Duration::from_millis(250),
            ..Config::default()
        };
        // The application keeps every connection and answers nothing.
        let kept: Arc<Mutex<Vec<Handle>>> = Arc::default();
        let (accepted, seen) = mpsc::channel();
        let server = {
            let kept = kept.clone();
            must(Server::bind_with("127.0.0.1:0", config, move |h| {
                kept.lock().unwrap().push(h);
                let _ = accepted.send(());
            }))
        };
        // Never a byte, never an end: the handshake times out, the linger is
        // never cut short by the peer's end of stream.
        let mut mute = TcpStream::connect(server.local_addr()).expect("raw connect");
        // A request that is never answered: the drain times out.
        let client = Client::connect(server.local_addr(), Config::default()).expect("connect");
        let unanswered = client.handle().request(b"anything", b"", None);
        // Processed by the server once this returns (spec 14.1), so the server's
        // CLOSE covers the request and the drain must wait for it.
        client.flush().expect("flush");
        for _ in 0..2 {
            seen.recv().expect("both peers accepted");
        }

        let report = server.graceful_shutdown();
        assert_eq!(report.graceful, 0, "{report:?}");
        assert_eq!(report.total(), 2, "{report:?}");
        assert!(!report.all_graceful());

        match block_on(unanswered) {
            Ok(r) => assert_ne!(r.outcome, Outcome::Ok, "{r:?}"),
            Err(e) => assert_eq!(e, Error::Closed),
        }
        let info = block_on(client.handle().closed());
        assert_ne!(info.kind, CloseKind::Graceful, "{info}");
        // The mute peer's socket was closed (a clean end or a reset, not a hang).
        mute.set_read_timeout(Some(WATCHDOG)).expect("timeout");
        let mut sink = Vec::new();
        let end = mute.read_to_end(&mut sink).map_err(|e| e.kind());
        let hung = [std::io::ErrorKind::WouldBlock, std::io::ErrorKind::TimedOut];
        assert!(
            !end.is_err_and(|k| hung.contains(&k)),
            "the mute peer's socket stayed open"
        );
        // Every handle the application kept saw its connection end, not gracefully.
        for h in kept.lock().unwrap().iter() {
            let info = block_on(h.closed());
            assert_ne!(info.kind, CloseKind::Graceful, "{info}");
        }
    });
}
