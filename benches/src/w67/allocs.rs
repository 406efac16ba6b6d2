//! W7 allocations per message: a counting global allocator ([`stats_alloc`], the
//! system allocator behind two atomic counters) and the steady-state loops it
//! counts: weft-core in memory (no I/O, like W0) and weft-tokio over loopback TCP
//! (client, server and both drivers on one current-thread runtime, so nothing
//! else runs meanwhile).

use crate::measure::Work;
use crate::w0::{CoreOneWay, TRANSMIT_BUF};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_core::conn::{Connection, Event, Outcome};
use weft_core::{Config, ErrorCode, Instant, Priority, Role};
use weft_driver::Handle;

/// Counts every allocation of the process (this library and every binary that
/// links it: the benchmark binary and the smoke test).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocation calls so far (allocations and reallocations), process-wide.
pub fn allocations() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

/// W3 messages or W2 round trips per step.
const BATCH: usize = 256;
const SMALL: usize = 64;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Moves everything `from` has to send into `to`, draining `to`'s events with
/// `on_event`.
fn pump(
    now: Instant,
    from: &mut Connection,
    to: &mut Connection,
    buf: &mut [u8],
    on_event: &mut dyn FnMut(&mut Connection, Event),
) {
    loop {
        let n = from.poll_transmit(now, buf);
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            let took = to.handle_input(now, &buf[off..n]);
            off += took;
            let mut any = false;
            while let Some(ev) = to.poll_event() {
                any = true;
                on_event(to, ev);
            }
            assert!(took > 0 || any, "no progress between the connections");
        }
    }
}

/// W2 in memory: sequential 64 B echo requests between two connections.
pub struct CorePingPong {
    now: Instant,
    client: Connection,
    server: Connection,
    payload: Vec<u8>,
    reply: Vec<u8>,
    buf: Vec<u8>,
}

impl CorePingPong {
    /// Two connected connections.
    pub fn new() -> Self {
        let now = Instant::ZERO;
        let config = Config::default();
        let mut b = CorePingPong {
            now,
            client: Connection::new(Role::Client, config.clone(), now, [1; 32]),
            server: Connection::new(Role::Server, config, now, [2; 32]),
            payload: pattern(SMALL),
            reply: Vec::with_capacity(SMALL),
            buf: vec![0u8; TRANSMIT_BUF],
        };
        for _ in 0..16 {
            if b.client.is_established() && b.server.is_established() {
                break;
            }
            pump(
                now,
                &mut b.client,
                &mut b.server,
                &mut b.buf,
                &mut |_, _| {},
            );
            pump(
                now,
                &mut b.server,
                &mut b.client,
                &mut b.buf,
                &mut |_, _| {},
            );
        }
        assert!(b.client.is_established() && b.server.is_established());
        b
    }

    /// One round trip.
    fn round(&mut self) {
        let now = self.now;
        self.client
            .request(
                now,
                b"echo",
                &self.payload,
                Some(REQUEST_TIMEOUT),
                Priority::default(),
            )
            .expect("request");
        let reply = &mut self.reply;
        pump(
            now,
            &mut self.client,
            &mut self.server,
            &mut self.buf,
            &mut |s, ev| {
                if let Event::Request { id, data, .. } = ev {
                    reply.clear();
                    reply.extend_from_slice(s.data(data).expect("request data").payload);
                    s.respond(id, Outcome::Ok, "", reply, Priority::default())
                        .expect("respond");
                }
            },
        );
        let mut done = false;
        pump(
            now,
            &mut self.server,
            &mut self.client,
            &mut self.buf,
            &mut |c, ev| {
                if let Event::Response { outcome, data, .. } = ev {
                    assert_eq!(outcome, Outcome::Ok);
                    let d = data.and_then(|d| c.data(d)).expect("reply data");
                    assert_eq!(d.payload.len(), SMALL);
                    done = true;
                }
            },
        );
        assert!(done, "no reply");
    }

    /// A batch of round trips.
    pub fn step(&mut self) -> Work {
        for _ in 0..BATCH {
            self.round();
        }
        Work {
            items: BATCH as u64,
            bytes: (BATCH * SMALL) as u64,
        }
    }
}

impl Default for CorePingPong {
    fn default() -> Self {
        Self::new()
    }
}

/// The loops whose allocations are counted.
pub enum Subject {
    /// W3 in memory (the W0 loop with 64 B messages, CRC on).
    CoreOneWay(Box<CoreOneWay>),
    /// W2 in memory.
    CorePingPong(Box<CorePingPong>),
    /// W3 or W2 over loopback TCP with weft-tokio.
    Tokio(TokioPair),
}

impl Subject {
    /// A batch of messages or round trips.
    pub fn step(&mut self) -> Work {
        match self {
            Subject::CoreOneWay(b) => crate::measure::Bench::step(b.as_mut()),
            Subject::CorePingPong(b) => b.step(),
            Subject::Tokio(p) => p.step(),
        }
    }
}

/// A weft-tokio client and server on one current-thread runtime.
pub struct TokioPair {
    rt: weft_tokio::runtime::Runtime,
    client: Handle,
    received: Arc<AtomicU64>,
    pingpong: bool,
    payload: Vec<u8>,
}

impl TokioPair {
    /// A connected pair; the server echoes (`pingpong`) or counts messages.
    pub fn new(pingpong: bool) -> std::io::Result<TokioPair> {
        let rt = weft_tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let received = Arc::new(AtomicU64::new(0));
        let r = received.clone();
        let client = rt.block_on(async move {
            let cfg = Config::default();
            let server = weft_tokio::Server::bind("127.0.0.1:0", cfg.clone()).await?;
            let addr = server.local_addr()?;
            tokio::spawn(async move {
                let Ok(h) = server.accept().await else { return };
                if pingpong {
                    // The echo answers from the request's shared payload, so
                    // what is counted is Weft's allocations, not the echo's.
                    while let Some(req) = h.next_request().await {
                        let payload = req.payload.clone();
                        let _ = req.respond(Outcome::Ok, "", &payload);
                    }
                } else {
                    while let Some(m) = h.next_message().await {
                        r.fetch_add(1, Ordering::Relaxed);
                        drop(m);
                    }
                }
            });
            let h = tokio::time::timeout(Duration::from_secs(15), async {
                let h = weft_tokio::connect(addr, cfg).await?;
                h.connected()
                    .await
                    .map_err(|i| std::io::Error::other(format!("handshake: {i:?}")))?;
                Ok::<_, std::io::Error>(h)
            })
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??;
            Ok::<_, std::io::Error>(h)
        })?;
        Ok(TokioPair {
            rt,
            client,
            received,
            pingpong,
            payload: pattern(SMALL),
        })
    }

    fn step(&mut self) -> Work {
        let (h, p, received) = (&self.client, &self.payload, &self.received);
        let items = if self.pingpong {
            self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), async {
                    for _ in 0..BATCH {
                        let r = h
                            .request(b"echo", p, Some(REQUEST_TIMEOUT))
                            .await
                            .expect("request");
                        assert_eq!(r.outcome, Outcome::Ok);
                    }
                })
                .await
                .expect("W2 batch timed out");
            });
            BATCH as u64
        } else {
            // Send a batch, then let the server take what has arrived (the next
            // batch's sends wait for queue room, so the server keeps up).
            let before = received.load(Ordering::Relaxed);
            self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), async {
                    for _ in 0..BATCH {
                        h.send(p).await.expect("send");
                    }
                    yield_once().await;
                })
                .await
                .expect("W3 batch timed out");
            });
            received.load(Ordering::Relaxed) - before
        };
        Work {
            items,
            bytes: items * SMALL as u64,
        }
    }
}

/// Returns to the runtime once so the server's tasks run. Not `yield_now`: tokio
/// defers that wake-up into a list that each `block_on` builds afresh, so it
/// allocated once per batch (0.004 per message, profiled with a uprobe on
/// malloc), which is the harness's allocation, not Weft's. Waking `block_on`'s
/// own waker allocates nothing.
async fn yield_once() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            return core::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    })
    .await
}

impl Drop for TokioPair {
    fn drop(&mut self) {
        self.client.close(ErrorCode::NO_ERROR, "");
        let h = self.client.clone();
        self.rt.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.closed()).await;
        });
    }
}
