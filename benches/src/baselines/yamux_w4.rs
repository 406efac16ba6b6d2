//! The yamux baseline of W4 (multiplexed streams): yamux 0.14 over tokio TCP
//! (default config, one current-thread runtime per side), `streams` concurrent
//! streams on one connection, each written in a loop `write` bytes at a time (the
//! same writes as Weft's W4). The server reads every inbound stream in a task of
//! its own and adds the bytes read to a counter. Driven by `net::w45`, which runs
//! it on the same pinned threads and with the same counting as Weft's W4 rows.

use super::tokio_tcp::{accept, connect, runtime};
use super::{timed_out, IO_TIMEOUT};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::{AsyncReadExt, AsyncWriteExt};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;
use tokio_util::compat::TokioAsyncReadCompatExt;
use yamux::{Config, Connection, Mode, Stream};

/// Accepts one connection and reads every stream it opens until the client goes
/// away (at most `lifetime`), calling `add` with the bytes of each read.
pub(crate) fn server(
    listener: std::net::TcpListener,
    add: Arc<dyn Fn(u64) + Send + Sync>,
    lifetime: Duration,
) -> io::Result<()> {
    runtime()?.block_on(async {
        let s = accept(listener).await?;
        let mut conn = Connection::new(s.compat(), Config::default(), Mode::Server);
        let drive = async {
            // Ends when the client closes (None) or the connection fails; the
            // stream tasks end with the runtime.
            while let Some(Ok(stream)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {
                tokio::spawn(read_stream(stream, add.clone()));
            }
        };
        timeout(lifetime, drive)
            .await
            .map_err(|_| timed_out("server"))
    })
}

async fn read_stream(mut s: Stream, add: Arc<dyn Fn(u64) + Send + Sync>) {
    let mut buf = vec![0u8; 64 << 10];
    // Ends when the stream or the connection closes.
    while let Ok(n @ 1..) = s.read(&mut buf).await {
        add(n as u64);
    }
}

/// Connects, opens `streams` streams, calls `ready`, and writes `write`-byte
/// chunks on every stream until `stop` is set (or `lifetime` has passed); then
/// closes the streams and the connection.
pub(crate) fn client(
    addr: SocketAddr,
    streams: usize,
    write: usize,
    stop: &AtomicBool,
    lifetime: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let s = connect(addr).await?;
        let mut conn = Connection::new(s.compat(), Config::default(), Mode::Client);
        let mut v = Vec::with_capacity(streams);
        for _ in 0..streams {
            v.push(
                timeout(IO_TIMEOUT, poll_fn(|cx| conn.poll_new_outbound(cx)))
                    .await
                    .map_err(|_| timed_out("open stream"))?
                    .map_err(io::Error::other)?,
            );
        }
        // The driver runs whenever this runtime does; ends when the connection
        // closes (or with the runtime).
        tokio::spawn(async move {
            while let Some(Ok(_)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {}
        });
        ready();
        let chunk: Vec<u8> = (0..write).map(|i| (i % 251) as u8 + 1).collect();
        let deadline = Instant::now() + lifetime;
        let writers: FuturesUnordered<_> = v
            .into_iter()
            .map(|mut s| {
                let chunk = &chunk;
                async move {
                    let mut rounds = 0u32;
                    while !stop.load(Ordering::Relaxed)
                        && (rounds % 256 != 0 || Instant::now() < deadline)
                    {
                        rounds = rounds.wrapping_add(1);
                        timeout(IO_TIMEOUT, s.write_all(chunk))
                            .await
                            .map_err(|_| timed_out("stream write"))??;
                    }
                    let _ = timeout(IO_TIMEOUT, s.close()).await;
                    Ok::<(), io::Error>(())
                }
            })
            .collect();
        let results: Vec<io::Result<()>> = writers.collect().await;
        results.into_iter().collect::<io::Result<()>>()
    })
    // Dropping the runtime drops the driver and with it the connection.
}
