//! weft-mio's graceful shutdown over real sockets on 127.0.0.1: in-flight work
//! drains and every peer sees a graceful close; peers that do not cooperate
//! cannot hold the shutdown past the configured timeouts. Every wait is bounded
//! (a bound only a broken run reaches); nothing sleeps to synchronise and
//! nothing asserts on timing.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_core::conn::{CloseKind, Outcome, Side};
use weft_core::{Config, Error, ErrorCode};
use weft_driver::{Handle, IncomingRequest, Spawner};
use weft_mio::{block_on_timeout, Client, Executor, Server, ShutdownReport};

/// Bounds a wait that must end; only a broken adapter ever reaches it.
const BOUND: Duration = Duration::from_secs(60);

/// Every one-way message the server's applications received, in order.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// One connection's application: its messages are recorded (on a task of their
/// own, which says when the connection's messages ended), `echo` is answered,
/// and any other request is handed to the test, which answers it when it likes.
fn app(
    h: Handle,
    spawner: &Spawner,
    received: Received,
    messages_done: mpsc::Sender<()>,
    held: mpsc::Sender<IncomingRequest>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let reader = h.clone();
    spawner.spawn(async move {
        while let Some(m) = reader.next_message().await {
            received.lock().unwrap().push(m.to_vec());
        }
        let _ = messages_done.send(());
    });
    async move {
        while let Some(req) = h.next_request().await {
            if &req.subject[..] == b"echo" {
                let p = req.payload.clone();
                let _ = req.respond(Outcome::Ok, "", &p);
            } else {
                let _ = held.send(req);
            }
        }
    }
}

/// How the client learns that the server's CLOSE reached it: from then on it
/// refuses new work itself (spec 15.2).
#[derive(Clone, Copy)]
enum Probe {
    /// `echo` requests, one round trip at a time.
    Requests,
    /// One-way messages as fast as they go, more than the server's application
    /// queue holds.
    Messages,
}

#[test]
fn graceful_shutdown_drains_in_flight_work_and_closes_gracefully() {
    graceful_shutdown_while(Probe::Requests);
}

/// The same with the client flooding messages until the server's CLOSE arrives.
/// The server's application falls behind, so the server's core still holds the
/// client's last record (its CLOSE and up to a record of messages) unprocessed
/// when the client's end of stream arrives; that input is processed before the
/// end applies (spec 15.4). Before that fix the record was dropped, the client
/// was told the close was graceful, and its last messages were lost.
#[test]
fn graceful_shutdown_loses_nothing_when_the_application_falls_behind() {
    graceful_shutdown_while(Probe::Messages);
}

fn graceful_shutdown_while(probe: Probe) {
    let server = Arc::new(Server::bind("127.0.0.1:0", Config::default()).expect("bind"));
    let exec = Arc::new(Executor::new(2).expect("executor"));
    let received = Received::default();
    let (done_tx, done_rx) = mpsc::channel();
    let (held_tx, held_rx) = mpsc::channel();
    let serving = {
        let (server, exec, received) = (server.clone(), exec.clone(), received.clone());
        std::thread::spawn(move || {
            let spawner = exec.spawner();
            server.serve_with(&exec, |h| {
                app(
                    h,
                    &spawner,
                    received.clone(),
                    done_tx.clone(),
                    held_tx.clone(),
                )
            })
        })
    };

    const N: usize = 100;
    let client = Client::connect(server.local_addr(), Config::default()).expect("connect");
    for i in 0..N {
        client.send(format!("m{i}").as_bytes()).expect("send");
    }
    let reply = client.request(b"echo", b"before", None).expect("echo");
    assert_eq!(&reply.payload[..], b"before");
    // A request the server's application holds: in flight when the shutdown starts.
    let in_flight = {
        let h = client.handle().clone();
        std::thread::spawn(move || block_on_timeout(h.request(b"held", b"", None), BOUND))
    };
    let req = held_rx
        .recv_timeout(BOUND)
        .expect("the held request reached the server's application");

    let shutting = {
        let server = server.clone();
        std::thread::spawn(move || server.graceful_shutdown())
    };
    // The client goes on until the server's CLOSE reaches it. Every message it
    // accepted before must reach the server's application.
    let started = Instant::now();
    let mut sent = N;
    loop {
        let r = match probe {
            Probe::Requests => client.request(b"echo", b"probe", None).map(drop),
            Probe::Messages => client.send(format!("m{sent}").as_bytes()),
        };
        match r {
            Ok(()) if matches!(probe, Probe::Messages) => sent += 1,
            // A reply, or NOT_PROCESSED for a request the CLOSE overtook.
            Ok(()) => {}
            Err(Error::Closed) => break,
            Err(e) => panic!("failed otherwise than closed: {e:?}"),
        }
        assert!(
            started.elapsed() < BOUND,
            "the server's CLOSE never reached the client"
        );
    }
    // The drain waits for the held request: answering it now still reaches the client.
    req.respond(Outcome::Ok, "", b"answered while draining")
        .expect("respond while draining");
    let reply = in_flight
        .join()
        .expect("requesting thread")
        .expect("the held request resolves")
        .expect("a reply");
    assert_eq!(reply.outcome, Outcome::Ok);
    assert_eq!(&reply.payload[..], b"answered while draining");

    let info = block_on_timeout(client.handle().closed(), BOUND).expect("the client closes");
    assert_eq!(info.kind, CloseKind::Graceful, "{info}");
    assert_eq!(info.code, ErrorCode::NO_ERROR, "{info}");
    assert_eq!(info.initiator, Side::Peer, "{info}");
    let report = shutting.join().expect("shutdown thread");
    let expected = ShutdownReport {
        graceful: 1,
        ..ShutdownReport::default()
    };
    assert_eq!(report, expected);
    serving.join().expect("serving thread").expect("serve_with");
    assert_eq!(server.connections(), 0);

    done_rx
        .recv_timeout(BOUND)
        .expect("the server's message reader ends");
    let got = received.lock().unwrap();
    assert_eq!(got.len(), sent, "messages lost or duplicated");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, format!("m{i}").as_bytes(), "message {i} out of order");
    }
    exec.shutdown();
}

#[test]
fn serve_returns_after_a_graceful_shutdown() {
    let server = Arc::new(Server::bind("127.0.0.1:0", Config::default()).expect("bind"));
    let serving = {
        let server = server.clone();
        std::thread::spawn(move || server.serve(|_, payload| Ok(payload.to_vec())))
    };
    let clients: Vec<Client> = (0..3)
        .map(|_| Client::connect(server.local_addr(), Config::default()).expect("connect"))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let p = format!("client {i}");
        let reply = c.request(b"echo", p.as_bytes(), None).expect("echo");
        assert_eq!(&reply.payload[..], p.as_bytes());
    }
    let report = server.graceful_shutdown();
    assert_eq!(report.graceful, 3, "{report:?}");
    assert!(report.all_graceful(), "{report:?}");
    serving.join().expect("serving thread").expect("serve");
    for c in &clients {
        let info = block_on_timeout(c.handle().closed(), BOUND).expect("closed");
        assert_eq!(info.kind, CloseKind::Graceful, "{info}");
    }
    // A second call has nothing left to close.
    assert_eq!(server.graceful_shutdown(), ShutdownReport::default());
}

#[test]
fn peers_that_do_not_cooperate_cannot_hold_the_shutdown() {
    // Short timeouts so the test runs quickly; the outcome is what is checked.
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        drain_timeout: Duration::from_millis(300),
        linger: Duration::from_millis(300),
        ..Config::default()
    };
    let server = Arc::new(Server::bind("127.0.0.1:0", config).expect("bind"));
    let exec = Arc::new(Executor::new(2).expect("executor"));
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let serving = {
        let (server, exec) = (server.clone(), exec.clone());
        // The conformance app: its `hang` requests are never answered.
        let standard = weft_conformance::app::standard();
        std::thread::spawn(move || {
            server.serve_with(&exec, |h| {
                let _ = accepted_tx.send(());
                standard(h)
            })
        })
    };

    // A peer that connects and then says nothing, reads nothing, never closes:
    // the handshake never completes and the linger is never cut short.
    let mut silent = std::net::TcpStream::connect(server.local_addr()).expect("raw connect");
    // A client whose request the server never answers: the drain cannot finish.
    let client = Client::connect(server.local_addr(), Config::default()).expect("connect");
    let hanging = client.handle().request(b"hang", b"", None);
    // Processed by the server (spec 14.1), so its CLOSE announces the request.
    client.flush().expect("flush");
    for _ in 0..2 {
        accepted_rx
            .recv_timeout(BOUND)
            .expect("the server accepted both peers");
    }

    let report = server.graceful_shutdown();
    assert_eq!(report.graceful, 0, "{report:?}");
    assert_eq!(report.total(), 2, "{report:?}");
    serving.join().expect("serving thread").expect("serve_with");

    // The client: its request is not answered, and the close is the drain's timeout.
    match block_on_timeout(hanging, BOUND).expect("the request resolves") {
        Ok(reply) => assert_ne!(reply.outcome, Outcome::Ok, "{reply:?}"),
        Err(e) => assert_eq!(e, Error::Closed),
    }
    let info = block_on_timeout(client.handle().closed(), BOUND).expect("closed");
    assert_ne!(info.kind, CloseKind::Graceful, "{info}");
    // The silent peer: its socket ends (whatever came before the end).
    silent.set_read_timeout(Some(BOUND)).expect("read timeout");
    let mut rest = Vec::new();
    if let Err(e) = silent.read_to_end(&mut rest) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the silent peer's socket never ended: {e}"
        );
    }
    exec.shutdown();
}
