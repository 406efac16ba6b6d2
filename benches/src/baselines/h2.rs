//! The HTTP/2 baselines (the transport under gRPC): the `h2` crate over tokio TCP,
//! one current-thread runtime per side, both sides with [`WINDOW`]-byte stream and
//! connection receive windows (Weft's auto-tuning bound; h2's default is 64 KiB),
//! the server's small-DATA-frame budget raised to cover a window of 64 B frames
//! ([`SMALL_FRAME_BUDGET`]), otherwise h2's defaults (16 KiB frames at most).
//!
//! - W2 (`w2/pingpong-64B/h2`): like a gRPC unary call without its 5-byte message
//!   prefix and trailers: every round trip opens a stream with a POST request
//!   whose body is the 64 B payload (HEADERS, then one DATA frame ending the
//!   stream); the server answers with a 200 response whose body echoes it. One
//!   request outstanding. The server handles each request in a task of its own,
//!   as h2 servers do (the connection is driven by its accept loop).
//! - W4 (`w4/.../h2`, driven by `net::w45` like the yamux row): `streams`
//!   concurrent request streams on one connection, each written in a loop `write`
//!   bytes at a time with `send_data` after reserving flow-control capacity (as
//!   hyper does): every write becomes its own DATA frame (split at 16 KiB), h2
//!   does not coalesce writes. The server reads every request body in a task of
//!   its own, releases the capacity it read and adds the bytes to a counter.

use super::tokio_tcp::{accept, connect, runtime};
use super::{
    timed_out, Client, Counter, Workload, IO_TIMEOUT, PINGS_PER_STEP, SERVER_LIFETIME,
    SETUP_TIMEOUT, SMALL,
};
use crate::measure::Work;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use h2::{client, server, RecvStream, SendStream};
use http::{Request, Response};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// Stream and connection receive window of both sides (bytes).
pub(crate) const WINDOW: u32 = 1 << 20;
/// The server's budget for buffered small DATA frames (h2 charges 256 bytes
/// minus the payload for each one the application has not read yet): enough for
/// a whole connection window of 64 B frames. With h2's default (half the window)
/// W4's 64 B writes outrun the reading task and the server closes the connection
/// with ENHANCE_YOUR_CALM ("too many small DATA frames").
const SMALL_FRAME_BUDGET: usize = WINDOW as usize / 64 * 256;
/// The request URI (h2 needs a scheme and an authority).
const URI: &str = "http://127.0.0.1/weft-bench";

fn h2_err(what: &str, e: h2::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// True for the errors that mean the peer went away (the normal end).
fn is_gone(e: &h2::Error) -> bool {
    e.is_go_away() || e.get_io().is_some_and(super::is_end)
}

async fn handshake_server(s: TcpStream) -> io::Result<server::Connection<TcpStream, Bytes>> {
    let hs = server::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .data_frame_budget(SMALL_FRAME_BUDGET)
        .handshake(s);
    timeout(SETUP_TIMEOUT, hs)
        .await
        .map_err(|_| timed_out("h2 server handshake"))?
        .map_err(|e| h2_err("h2 server handshake", e))
}

async fn handshake_client(addr: SocketAddr) -> io::Result<client::SendRequest<Bytes>> {
    let s = connect(addr).await?;
    let hs = client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake(s);
    let (send, conn) = timeout(SETUP_TIMEOUT, hs)
        .await
        .map_err(|_| timed_out("h2 client handshake"))?
        .map_err(|e| h2_err("h2 client handshake", e))?;
    // The connection's I/O: runs whenever this runtime does; ends when the
    // connection closes (or with the runtime).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

fn request() -> Request<()> {
    Request::builder()
        .method("POST")
        .uri(URI)
        .body(())
        .expect("a valid request")
}

/// Reads a body to its end, releasing the flow-control capacity of what it read;
/// calls `each` with the length of every DATA frame's payload. Returns the bytes.
async fn drain(body: &mut RecvStream, mut each: impl FnMut(usize)) -> Result<usize, h2::Error> {
    let mut total = 0;
    while let Some(chunk) = body.data().await {
        let n = chunk?.len();
        let _ = body.flow_control().release_capacity(n);
        total += n;
        each(n);
    }
    Ok(total)
}

/// Accepts one connection and serves its requests until the client goes away (at
/// most `lifetime`): `handle` runs each in a task of its own.
async fn serve<F, Fut>(
    listener: std::net::TcpListener,
    lifetime: Duration,
    handle: F,
) -> io::Result<()>
where
    F: Fn(Request<RecvStream>, server::SendResponse<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let s = accept(listener).await?;
    let mut conn = handshake_server(s).await?;
    // The request tasks end with the runtime.
    let drive = async {
        while let Some(r) = conn.accept().await {
            match r {
                Ok((req, respond)) => {
                    tokio::spawn(handle(req, respond));
                }
                Err(e) if is_gone(&e) => return Ok(()),
                Err(e) => return Err(h2_err("h2 server", e)),
            }
        }
        Ok(())
    };
    timeout(lifetime, drive)
        .await
        .map_err(|_| timed_out("h2 server"))?
}

/// W2's server: echoes every request body in its response.
pub(super) fn w2_server(
    listener: std::net::TcpListener,
    _counter: &Arc<Counter>,
) -> io::Result<()> {
    // The client counts the round trips.
    runtime()?.block_on(serve(
        listener,
        SERVER_LIFETIME,
        |req, mut respond| async move {
            let mut body = req.into_body();
            let mut echo = Vec::with_capacity(SMALL);
            while let Some(chunk) = body.data().await {
                let Ok(c) = chunk else { return };
                let _ = body.flow_control().release_capacity(c.len());
                echo.extend_from_slice(&c);
            }
            if let Ok(mut s) = respond.send_response(Response::new(()), false) {
                let _ = s.send_data(Bytes::from(echo), true);
            }
        },
    ))
}

/// W2's load generator: one request stream per round trip.
pub(super) struct H2Client {
    send: client::SendRequest<Bytes>,
    payload: Bytes,
    /// Last, so the connection closes while the runtime still exists.
    rt: Runtime,
}

impl H2Client {
    pub(super) fn connect(w: Workload, addr: SocketAddr) -> io::Result<H2Client> {
        assert_eq!(w, Workload::PingPong, "h2 runs W2 (and W4) only");
        let rt = runtime()?;
        let send = rt.block_on(handshake_client(addr))?;
        Ok(H2Client {
            send,
            payload: Bytes::from(super::framed(SMALL, 1).split_off(4)),
            rt,
        })
    }
}

impl Client for H2Client {
    fn batch(&mut self, rtts: &mut Vec<u64>) -> io::Result<Work> {
        let H2Client { send, payload, rt } = self;
        let batch = async {
            for _ in 0..PINGS_PER_STEP {
                let t = Instant::now();
                poll_fn(|cx| send.poll_ready(cx))
                    .await
                    .map_err(|e| h2_err("h2 ready", e))?;
                let (resp, mut body) = send
                    .send_request(request(), false)
                    .map_err(|e| h2_err("h2 request", e))?;
                body.send_data(payload.clone(), true)
                    .map_err(|e| h2_err("h2 request body", e))?;
                let resp = resp.await.map_err(|e| h2_err("h2 response", e))?;
                let n = drain(&mut resp.into_body(), |_| {})
                    .await
                    .map_err(|e| h2_err("h2 response body", e))?;
                rtts.push(t.elapsed().as_nanos() as u64);
                if n != SMALL {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("h2 response of {n} bytes"),
                    ));
                }
            }
            Ok::<(), io::Error>(())
        };
        rt.block_on(async { timeout(IO_TIMEOUT, batch).await })
            .map_err(|_| timed_out("client batch"))??;
        Ok(Work {
            items: PINGS_PER_STEP as u64,
            bytes: (PINGS_PER_STEP * SMALL) as u64,
        })
    }
}

/// W4's server: accepts one connection and reads every request body until the
/// client goes away (at most `lifetime`), calling `add` with the bytes of each
/// DATA frame read; answers each request once its body has ended.
pub(crate) fn w4_server(
    listener: std::net::TcpListener,
    add: Arc<dyn Fn(u64) + Send + Sync>,
    lifetime: Duration,
) -> io::Result<()> {
    runtime()?.block_on(serve(listener, lifetime, move |req, mut respond| {
        let add = add.clone();
        async move {
            let mut body = req.into_body();
            if drain(&mut body, |n| add(n as u64)).await.is_ok() {
                let _ = respond.send_response(Response::new(()), true);
            }
        }
    }))
}

/// Writes all of `chunk` on `s` as it gets flow-control capacity: one DATA frame
/// per call of `send_data`, so one per write unless the window splits it.
async fn write_all(s: &mut SendStream<Bytes>, chunk: &Bytes) -> io::Result<()> {
    let mut off = 0;
    while off < chunk.len() {
        let want = chunk.len() - off;
        s.reserve_capacity(want);
        let mut cap = s.capacity();
        if cap == 0 {
            cap = match poll_fn(|cx| s.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(h2_err("h2 capacity", e)),
                None => return Err(io::Error::other("h2 stream closed")),
            };
        }
        let n = cap.min(want);
        s.send_data(chunk.slice(off..off + n), false)
            .map_err(|e| h2_err("h2 send_data", e))?;
        off += n;
    }
    Ok(())
}

/// W4's load generator: connects, opens `streams` request streams, calls `ready`,
/// and writes `write`-byte chunks on every stream until `stop` is set (or
/// `lifetime` has passed); then ends the streams and closes the connection.
pub(crate) fn w4_client(
    addr: SocketAddr,
    streams: usize,
    write: usize,
    stop: &AtomicBool,
    lifetime: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut send = handshake_client(addr).await?;
        let mut v = Vec::with_capacity(streams);
        for _ in 0..streams {
            timeout(SETUP_TIMEOUT, poll_fn(|cx| send.poll_ready(cx)))
                .await
                .map_err(|_| timed_out("open stream"))?
                .map_err(|e| h2_err("h2 ready", e))?;
            v.push(
                send.send_request(request(), false)
                    .map_err(|e| h2_err("h2 request", e))?,
            );
        }
        ready();
        let chunk = Bytes::from((0..write).map(|i| (i % 251) as u8 + 1).collect::<Vec<u8>>());
        let deadline = Instant::now() + lifetime;
        let writers: FuturesUnordered<_> = v
            .into_iter()
            .map(|(resp, mut s)| {
                let chunk = &chunk;
                async move {
                    let mut rounds = 0u32;
                    while !stop.load(Ordering::Relaxed)
                        && (rounds % 256 != 0 || Instant::now() < deadline)
                    {
                        rounds = rounds.wrapping_add(1);
                        match timeout(IO_TIMEOUT, write_all(&mut s, chunk)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                // Why the stream ended, if the response says.
                                let why = match timeout(Duration::from_secs(1), resp).await {
                                    Ok(Ok(r)) => format!("response {}", r.status()),
                                    Ok(Err(e)) => e.to_string(),
                                    Err(_) => "no response".into(),
                                };
                                return Err(io::Error::other(format!("{e} ({why})")));
                            }
                            Err(_) => return Err(timed_out("stream write")),
                        }
                    }
                    // End the stream and wait (briefly) for the server's answer.
                    if s.send_data(Bytes::new(), true).is_ok() {
                        let _ = timeout(Duration::from_secs(2), resp).await;
                    }
                    Ok::<(), io::Error>(())
                }
            })
            .collect();
        let results: Vec<io::Result<()>> = writers.collect().await;
        results.into_iter().collect::<io::Result<()>>()
    })
    // Dropping the runtime drops the connection task and with it the connection.
}
