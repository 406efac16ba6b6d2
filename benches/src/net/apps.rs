//! The workloads' two sides, written once over the core's [`Handle`] (whose futures
//! run on any executor): the server application, which counts what it receives,
//! and the load generator. Also the shared control block and a bounded wait.

use super::Workload;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use weft_core::conn::Outcome;
use weft_core::ErrorCode;
use weft_driver::Handle;

/// Payload of W1 messages.
pub(crate) const BULK_MSG: usize = 1 << 20;
/// Chunk written to (and read from) the W1 stream.
pub(crate) const STREAM_CHUNK: usize = 64 << 10;
/// W3 messages per `send_many` batch.
const PIPELINE_BATCH: usize = 64;

/// Payload of W2 requests and replies and of W3 messages.
pub(crate) const SMALL: usize = 64;
/// Deadline the core puts on every W2 request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a connect, an accept, a handshake or a stream to be opened.
pub(crate) const SETUP_WAIT: Duration = Duration::from_secs(15);
/// Longest wait for a connection to finish closing.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(12);
/// A load generator stops by itself after this long, whatever happens.
pub(crate) const MAX_LOAD: Duration = Duration::from_secs(600);
/// Most round-trip times kept per window (W2).
const MAX_RTTS: usize = 50_000_000;

/// Shared between a pass's benchmark, server thread and load-generator thread.
#[derive(Debug, Default)]
pub(crate) struct Ctl {
    /// Set at the end of the window: the load generator stops and closes.
    pub(crate) stop: AtomicBool,
    /// Items completed (messages or stream reads received, round trips done).
    pub(crate) items: AtomicU64,
    /// Payload bytes completed.
    pub(crate) bytes: AtomicU64,
    /// Round-trip times (ns) are recorded while set (the window).
    pub(crate) recording: AtomicBool,
    /// The window's round-trip times, in nanoseconds.
    pub(crate) rtts: Mutex<Vec<u64>>,
    /// The first failure of either side.
    pub(crate) error: Mutex<Option<String>>,
}

impl Ctl {
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn add(&self, items: u64, bytes: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records a failure, unless the pass is already stopping (a connection
    /// closing under a pending operation is then expected).
    pub(crate) fn fail(&self, what: String) {
        if self.stopped() {
            return;
        }
        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
        e.get_or_insert(what);
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `fut`, or `None` once `limit` has passed. The deadline is kept by a helper
/// thread that wakes the task (and ends as soon as the wait does).
pub(crate) async fn bounded<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let deadline = Instant::now() + limit;
    let mut fut = pin!(fut);
    // Dropping the sender ends the helper thread early.
    let mut timer: Option<mpsc::Sender<()>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let now = Instant::now();
        if now >= deadline {
            return Poll::Ready(None);
        }
        if timer.is_none() {
            let (tx, rx) = mpsc::channel::<()>();
            let waker = cx.waker().clone();
            let wait = deadline - now;
            let spawned = std::thread::Builder::new()
                .name("weft-bench-timer".into())
                .spawn(move || {
                    if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                        waker.wake();
                    }
                });
            if spawned.is_err() {
                // No thread for the deadline: give up now rather than risk a hang.
                return Poll::Ready(None);
            }
            timer = Some(tx);
        }
        Poll::Pending
    })
    .await
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Most messages a receiving server takes from its handle at once.
const RECV_BATCH: usize = 64;

/// The server application on its one connection: counts what arrives (W1, W3) or
/// echoes requests (W2), until the connection closes.
pub(crate) async fn serve(kind: Workload, h: Handle, ctl: Arc<Ctl>) {
    match kind {
        Workload::BulkMsg | Workload::Pipelined => {
            // Taken in batches, as the baselines' servers read many frames per call.
            let mut batch = Vec::with_capacity(RECV_BATCH);
            while h.next_messages(&mut batch, RECV_BATCH).await > 0 {
                let bytes = batch.iter().map(|m| m.len() as u64).sum();
                ctl.add(batch.len() as u64, bytes);
                batch.clear();
            }
        }
        Workload::BulkStream => {
            match bounded(h.accept_stream(), SETUP_WAIT).await {
                Some(Some(mut s)) => {
                    let mut buf = vec![0u8; STREAM_CHUNK];
                    loop {
                        match poll_fn(|cx| s.poll_read(cx, &mut buf)).await {
                            Ok(0) => break,
                            Ok(n) => ctl.add(1, n as u64),
                            Err(e) => {
                                ctl.fail(format!("server: stream read: {e}"));
                                break;
                            }
                        }
                    }
                }
                Some(None) => ctl.fail("server: closed before a stream was opened".into()),
                None => ctl.fail("server: no stream opened in time".into()),
            }
            // Wait for the client's close (the connection stays up until then).
            let _ = bounded(h.closed(), MAX_LOAD).await;
        }
        Workload::PingPong => {
            // Answers from the request's own payload (a shared slice of what was
            // received), as the raw TCP echo answers from its read buffer: no
            // allocation of the application's own per round trip.
            while let Some(req) = h.next_request().await {
                let _ = if &req.subject[..] == b"echo" {
                    let payload = req.payload.clone();
                    req.respond(Outcome::Ok, "", &payload)
                } else {
                    req.respond(Outcome::Error(404), "no such subject", b"")
                };
            }
        }
    }
}

/// The load generator on its connection: runs until [`Ctl::stop`] (or
/// [`MAX_LOAD`]), then returns; the caller closes the connection.
pub(crate) async fn load(kind: Workload, h: Handle, ctl: Arc<Ctl>) {
    let deadline = Instant::now() + MAX_LOAD;
    // The clock is read every 256 rounds only: W3 rounds take well under a microsecond.
    let mut rounds = 0u32;
    let mut running = || {
        rounds = rounds.wrapping_add(1);
        !ctl.stopped() && (rounds % 256 != 0 || Instant::now() < deadline)
    };
    match kind {
        Workload::BulkMsg => {
            let p = pattern(BULK_MSG);
            while running() {
                if let Err(e) = h.send(&p).await {
                    ctl.fail(format!("client: send: {e}"));
                    break;
                }
            }
        }
        Workload::Pipelined => {
            // 64 messages per `send_many`, as the codec baseline feeds 64 frames per
            // flush: one lock and one driver wake-up per batch.
            let batch = vec![pattern(SMALL); PIPELINE_BATCH];
            while running() {
                if let Err(e) = h.send_many(&batch).await {
                    ctl.fail(format!("client: send_many: {e}"));
                    break;
                }
            }
        }
        Workload::BulkStream => {
            let mut s = match h.open_stream() {
                Ok(s) => s,
                Err(e) => return ctl.fail(format!("client: open_stream: {e}")),
            };
            let chunk = pattern(STREAM_CHUNK);
            'outer: while running() {
                let mut off = 0;
                while off < chunk.len() {
                    match poll_fn(|cx| s.poll_write(cx, &chunk[off..])).await {
                        Ok(n) => off += n,
                        Err(e) => {
                            ctl.fail(format!("client: stream write: {e}"));
                            break 'outer;
                        }
                    }
                }
            }
            let _ = s.finish();
        }
        Workload::PingPong => {
            let p = pattern(SMALL);
            while running() {
                let t = Instant::now();
                match h.request(b"echo", &p, Some(REQUEST_TIMEOUT)).await {
                    Ok(r) if r.outcome == Outcome::Ok && r.payload.len() == SMALL => {
                        let ns = t.elapsed().as_nanos() as u64;
                        ctl.add(1, SMALL as u64);
                        if ctl.recording.load(Ordering::Relaxed) {
                            let mut v = ctl.rtts.lock().unwrap_or_else(|p| p.into_inner());
                            if v.len() < MAX_RTTS {
                                v.push(ns);
                            }
                        }
                    }
                    Ok(r) => {
                        ctl.fail(format!(
                            "client: echo answered {:?} with {} bytes",
                            r.outcome,
                            r.payload.len()
                        ));
                        break;
                    }
                    Err(e) => {
                        ctl.fail(format!("client: request: {e}"));
                        break;
                    }
                }
            }
        }
    }
}

/// The client side once connected: waits for the handshake, says so on `ready`,
/// runs the load, then closes gracefully (bounded).
pub(crate) async fn drive_client(
    kind: Workload,
    h: Handle,
    ctl: Arc<Ctl>,
    ready: mpsc::SyncSender<()>,
) -> std::io::Result<()> {
    match bounded(h.connected(), SETUP_WAIT).await {
        Some(Ok(())) => {}
        Some(Err(info)) => return Err(other(format!("handshake failed: {info:?}"))),
        None => return Err(other("handshake timed out".into())),
    }
    let _ = ready.send(());
    load(kind, h.clone(), ctl).await;
    h.close(ErrorCode::NO_ERROR, "");
    let _ = bounded(h.closed(), CLOSE_WAIT).await;
    Ok(())
}

/// The server side once a connection is accepted: runs the application, then
/// waits (bounded) for the connection to be over.
pub(crate) async fn drive_server(kind: Workload, h: Handle, ctl: Arc<Ctl>) {
    serve(kind, h.clone(), ctl).await;
    let _ = bounded(h.closed(), CLOSE_WAIT).await;
}

pub(crate) fn other(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}
