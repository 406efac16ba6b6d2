//! The scenario catalogue, one module per area. Each scenario names the spec
//! section and requirement it checks and its expected outcome.
//!
//! Rules every scenario follows: it starts its own server (stopped when it ends,
//! also on failure), uses the client runtime for its clients, never sleeps to
//! synchronise (order comes from the protocol: a reply proves what was sent before
//! it, a publication seen by its own publisher proves the hub took everything that
//! connection sent before), lets time pass only through the protocol's own
//! deadlines and timeouts (100-500 ms), never asserts on measured durations, and
//! bounds every loop (counts, read timeouts on raw sockets, request deadlines as
//! timers).

use crate::{app, Runtime, Scenario, TestServer};
use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_core::auth::PskAuthenticator;
use weft_core::conn::{CloseInfo, Outcome};
use weft_core::Config;
use weft_driver::{Handle, Reply};

mod basic;
mod close;
mod handshake;
mod limits;
mod messages;
mod pubsub;
pub mod raw;
mod rpc;
mod streams;

/// All scenarios, in catalogue order.
pub(crate) fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(basic::scenarios());
    v.extend(handshake::scenarios());
    v.extend(rpc::scenarios());
    v.extend(messages::scenarios());
    v.extend(pubsub::scenarios());
    v.extend(streams::scenarios());
    v.extend(close::scenarios());
    v.extend(limits::scenarios());
    v
}

/// The pre-shared key the conformance servers and clients use.
pub const KEY: &[u8] = b"conformance-key-0123456789abcdef";

/// A configuration with PSK authentication under `key_id`.
pub fn psk_config(key_id: &[u8], key: &[u8]) -> Config {
    let a = PskAuthenticator::with_client_key(key_id, key).expect("valid key");
    Config {
        auth: Some(Arc::new(a)),
        ..Config::default()
    }
}

/// Starts the standard app on `server`, or explains why not.
pub fn start(server: &dyn Runtime, config: Config) -> Result<TestServer, String> {
    server
        .start_server(config, app::standard())
        .map_err(|e| format!("start server on {}: {e}", server.name()))
}

/// A server that is stopped when dropped (so a failing scenario stops it too).
pub struct Srv {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Srv {
    /// Stops the server now.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            s();
        }
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            s();
        }
    }
}

impl From<TestServer> for Srv {
    fn from(t: TestServer) -> Self {
        Srv {
            addr: t.addr,
            stop: Some(t.stop),
        }
    }
}

/// [`start`], returning a guard that stops the server when dropped.
pub fn serve(server: &dyn Runtime, config: Config) -> Result<Srv, String> {
    start(server, config).map(Srv::from)
}

/// Connects a client and waits for the handshake.
pub fn connect(client: &dyn Runtime, srv: &TestServer, config: Config) -> Result<Handle, String> {
    connect_to(client, srv.addr, config)
}

/// Connects a client to `addr` and waits for the handshake to succeed.
pub fn connect_to(
    client: &dyn Runtime,
    addr: SocketAddr,
    config: Config,
) -> Result<Handle, String> {
    let (h, r) = try_connect(client, addr, config)?;
    r.map_err(|c| format!("handshake failed: {c:?}"))?;
    Ok(h)
}

/// Connects a client to `addr` and returns the handle with how the handshake ended.
pub fn try_connect(
    client: &dyn Runtime,
    addr: SocketAddr,
    config: Config,
) -> Result<(Handle, Result<(), CloseInfo>), String> {
    let h = client
        .connect(addr, config)
        .map_err(|e| format!("connect with {}: {e}", client.name()))?;
    let r = run(client, h.connected());
    Ok((h, r))
}

/// Runs an async block on `rt` and returns its result.
pub fn run<T: Send>(rt: &dyn Runtime, fut: impl Future<Output = T> + Send) -> T {
    let mut out = None;
    rt.block_on(Box::pin(async {
        out = Some(fut.await);
    }));
    out.expect("block_on ran the future to completion")
}

/// Sends a request and checks for an `Ok` answer; returns its payload.
pub async fn ask(h: &Handle, subject: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    let r = h
        .request(subject.as_bytes(), payload, None)
        .await
        .map_err(|e| format!("request {subject}: {e}"))?;
    if r.outcome == Outcome::Ok {
        Ok(r.payload.to_vec())
    } else {
        Err(format!("request {subject}: {r:?}"))
    }
}

/// Sends a request and returns its reply.
pub async fn reply(h: &Handle, subject: &str, payload: &[u8]) -> Result<Reply, String> {
    h.request(subject.as_bytes(), payload, None)
        .await
        .map_err(|e| format!("request {subject}: {e}"))
}

/// The server's count of one-way messages received on this connection.
pub async fn count(h: &Handle) -> Result<u64, String> {
    let p = ask(h, "count", b"").await?;
    String::from_utf8_lossy(&p)
        .parse()
        .map_err(|e| format!("count reply: {e}"))
}

/// Races `fut` against a request that never gets an answer, with `dur` as its
/// deadline: the protocol's own deadline is the timer. `None` if it ran out first
/// (or the connection closed).
pub async fn within<T>(h: &Handle, dur: Duration, fut: impl Future<Output = T>) -> Option<T> {
    let mut timer = core::pin::pin!(h.request(b"hang", b"", Some(dur)));
    let mut fut = core::pin::pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Runs all futures concurrently on one task; results in order.
pub async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Runs two futures concurrently on one task.
pub async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.expect("a done"), rb.expect("b done"))
}

/// Returns `Pending` once (after waking itself): lets other futures of the task run.
pub async fn yield_now() {
    let mut done = false;
    poll_fn(|cx| {
        if done {
            Poll::Ready(())
        } else {
            done = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Waits until the server has processed every frame this connection sent before
/// (its hub applied every subscription and publication): a flush (spec 14.1).
pub async fn hub_sync(h: &Handle) -> Result<(), String> {
    h.flush().await.map_err(|e| format!("flush: {e}"))
}

/// A misbehaving-peer scenario's last step: the same server still serves a
/// well-behaved client (connect, `echo`).
pub fn still_serves(client: &dyn Runtime, srv: &Srv) -> Result<(), String> {
    let h = connect_to(client, srv.addr, Config::default())
        .map_err(|e| format!("after the bad peer: {e}"))?;
    let p = run(client, ask(&h, "echo", b"still serving"))
        .map_err(|e| format!("after the bad peer: {e}"))?;
    if p != b"still serving" {
        return Err(format!("after the bad peer: echo gave {p:?}"));
    }
    Ok(())
}

/// Fails with `what` unless `cond`.
pub fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// A deterministic payload of `n` bytes seeded by `seed`.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}
