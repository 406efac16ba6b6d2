//! yamux 0.14 over tokio TCP (default config): messages length-prefixed inside
//! the streams, written round-robin over the streams one write call at a time.
//! The connection is driven by a task polling `poll_next_inbound`, as yamux
//! requires; the server reads each inbound stream in its own task.

use super::tokio_tcp::{accept, connect, runtime};
use super::{
    framed, timed_out, Client, Counter, Frames, Workload, BULK, BULK_PER_STEP, IO_TIMEOUT,
    PIPELINE, SERVER_LIFETIME, SMALL, WRITES_PER_STEP,
};
use crate::measure::Work;
use futures::{AsyncReadExt, AsyncWriteExt};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_util::compat::TokioAsyncReadCompatExt;
use yamux::{Config, Connection, Mode, Stream};

/// Accepts one connection and reads every stream it opens until it goes away.
pub(super) fn server(listener: std::net::TcpListener, counter: &Arc<Counter>) -> io::Result<()> {
    runtime()?.block_on(async {
        let s = accept(listener).await?;
        let mut conn = Connection::new(s.compat(), Config::default(), Mode::Server);
        let drive = async {
            // Ends when the client closes (None) or the connection fails; the
            // stream tasks end with the runtime.
            while let Some(Ok(stream)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {
                tokio::spawn(read_stream(stream, counter.clone()));
            }
        };
        timeout(SERVER_LIFETIME, drive)
            .await
            .map_err(|_| timed_out("server"))
    })
}

async fn read_stream(mut s: Stream, counter: Arc<Counter>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut frames = Frames::default();
    // Ends when the stream or the connection closes.
    while let Ok(n @ 1..) = s.read(&mut buf).await {
        counter.add(frames.feed(&buf[..n]));
    }
}

/// The yamux load generator.
pub(super) struct YamuxClient {
    w: Workload,
    streams: Vec<Stream>,
    msg: Vec<u8>,
    next: usize,
    /// Last, so the connection closes while the runtime still exists.
    rt: Runtime,
}

impl YamuxClient {
    pub(super) fn connect(
        w: Workload,
        streams: usize,
        addr: SocketAddr,
    ) -> io::Result<YamuxClient> {
        assert!(w != Workload::PingPong, "no yamux ping-pong baseline");
        let rt = runtime()?;
        let streams = rt.block_on(async {
            let s = connect(addr).await?;
            let mut conn = Connection::new(s.compat(), Config::default(), Mode::Client);
            let mut v = Vec::with_capacity(streams);
            for _ in 0..streams {
                v.push(
                    poll_fn(|cx| conn.poll_new_outbound(cx))
                        .await
                        .map_err(io::Error::other)?,
                );
            }
            // The driver: runs whenever the client's runtime does (during steps);
            // ends when the connection closes.
            tokio::spawn(async move {
                while let Some(Ok(_)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {}
            });
            Ok::<_, io::Error>(v)
        })?;
        let msg = match w {
            Workload::Bulk => framed(BULK, 1),
            _ => framed(SMALL, PIPELINE),
        };
        Ok(YamuxClient {
            rt,
            w,
            streams,
            msg,
            next: 0,
        })
    }
}

impl Client for YamuxClient {
    fn batch(&mut self, _rtts: &mut Vec<u64>) -> io::Result<Work> {
        let YamuxClient {
            rt,
            w,
            streams,
            msg,
            next,
        } = self;
        let writes = if *w == Workload::Bulk {
            BULK_PER_STEP
        } else {
            WRITES_PER_STEP
        };
        let batch = async {
            for _ in 0..writes {
                streams[*next].write_all(msg).await?;
                *next = (*next + 1) % streams.len();
            }
            Ok::<(), io::Error>(())
        };
        rt.block_on(async { timeout(IO_TIMEOUT, batch).await })
            .map_err(|_| timed_out("client batch"))??;
        Ok(Work::default())
    }
}
