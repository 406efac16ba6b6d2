//! tokio TCP, framing by hand (`tokio-tcp`) or with tokio-util's
//! `LengthDelimitedCodec` (`tokio-codec`, 4-byte big-endian prefix, its defaults).
//! Each side runs one current-thread runtime on its (pinned) thread.

use super::std_tcp::check_reply;
use super::{
    framed, is_end, timed_out, Client, Counter, Frames, Workload, BULK, BULK_PER_STEP, IO_TIMEOUT,
    PINGS_PER_STEP, PIPELINE, READ_BUF, SERVER_LIFETIME, SETUP_TIMEOUT, SMALL, WRITES_PER_STEP,
};
use crate::measure::Work;
use futures::{SinkExt, StreamExt};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// A current-thread runtime with I/O and timers.
pub(super) fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

/// Accepts one connection (at most [`SETUP_TIMEOUT`]), with `TCP_NODELAY`.
pub(super) async fn accept(listener: std::net::TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let l = TcpListener::from_std(listener)?;
    let (s, _) = timeout(SETUP_TIMEOUT, l.accept())
        .await
        .map_err(|_| timed_out("accept"))??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Connects (at most [`SETUP_TIMEOUT`]), with `TCP_NODELAY`.
pub(super) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = timeout(SETUP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connect"))??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Serves one connection until the client goes away.
pub(super) fn server(
    codec: bool,
    w: Workload,
    listener: std::net::TcpListener,
    counter: &Counter,
) -> io::Result<()> {
    runtime()?.block_on(async {
        let s = accept(listener).await?;
        let served = if codec {
            timeout(SERVER_LIFETIME, serve_codec(w, s, counter)).await
        } else {
            timeout(SERVER_LIFETIME, serve_raw(w, s, counter)).await
        };
        match served.map_err(|_| timed_out("server"))? {
            Err(e) if is_end(&e) => Ok(()),
            r => r,
        }
    })
}

async fn serve_raw(w: Workload, mut s: TcpStream, counter: &Counter) -> io::Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    let mut frames = Frames::default();
    let reply = framed(SMALL, 1);
    let mut out = Vec::with_capacity(reply.len() * 16);
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let got = frames.feed(&buf[..n]);
        if w == Workload::PingPong && got.items > 0 {
            out.clear();
            for _ in 0..got.items {
                out.extend_from_slice(&reply);
            }
            s.write_all(&out).await?;
        }
        counter.add(got);
    }
}

async fn serve_codec(w: Workload, s: TcpStream, counter: &Counter) -> io::Result<()> {
    let mut f = Framed::new(s, LengthDelimitedCodec::new());
    let reply = Bytes::from(framed(SMALL, 1).split_off(4));
    let mut got = Work::default();
    while let Some(frame) = f.next().await {
        let frame = frame?;
        got.items += 1;
        got.bytes += frame.len() as u64;
        if w == Workload::PingPong {
            f.send(reply.clone()).await?;
        }
        // Publish when the next frame needs a read: cheap and up to date.
        if f.read_buffer().len() < 4 {
            counter.add(got);
            got = Work::default();
        }
    }
    counter.add(got);
    Ok(())
}

enum Conn {
    Raw(TcpStream),
    Codec(Framed<TcpStream, LengthDelimitedCodec>),
}

/// The tokio load generator.
pub(super) struct TokioClient {
    w: Workload,
    conn: Conn,
    /// The framed message(s) of one write (raw).
    msg: Vec<u8>,
    /// One payload (codec).
    payload: Bytes,
    reply: Vec<u8>,
    /// Last, so the connection closes while the runtime still exists.
    rt: Runtime,
}

impl TokioClient {
    pub(super) fn connect(codec: bool, w: Workload, addr: SocketAddr) -> io::Result<TokioClient> {
        let rt = runtime()?;
        let s = rt.block_on(connect(addr))?;
        let conn = if codec {
            Conn::Codec(Framed::new(s, LengthDelimitedCodec::new()))
        } else {
            Conn::Raw(s)
        };
        let len = if w == Workload::Bulk { BULK } else { SMALL };
        let count = if w == Workload::Pipelined {
            PIPELINE
        } else {
            1
        };
        Ok(TokioClient {
            rt,
            w,
            conn,
            msg: framed(len, count),
            payload: Bytes::from(framed(len, 1).split_off(4)),
            reply: vec![0; SMALL + 4],
        })
    }
}

impl Client for TokioClient {
    fn batch(&mut self, rtts: &mut Vec<u64>) -> io::Result<Work> {
        let TokioClient {
            rt,
            w,
            conn,
            msg,
            payload,
            reply,
        } = self;
        let batch = async {
            match (*w, conn) {
                (Workload::Bulk, Conn::Raw(s)) => {
                    for _ in 0..BULK_PER_STEP {
                        s.write_all(msg).await?;
                    }
                }
                (Workload::Pipelined, Conn::Raw(s)) => {
                    for _ in 0..WRITES_PER_STEP {
                        s.write_all(msg).await?;
                    }
                }
                (Workload::PingPong, Conn::Raw(s)) => {
                    for _ in 0..PINGS_PER_STEP {
                        let t = Instant::now();
                        s.write_all(msg).await?;
                        s.read_exact(reply).await?;
                        rtts.push(t.elapsed().as_nanos() as u64);
                        check_reply(reply)?;
                    }
                }
                (Workload::Bulk, Conn::Codec(f)) => {
                    for _ in 0..BULK_PER_STEP {
                        f.send(payload.clone()).await?;
                    }
                }
                (Workload::Pipelined, Conn::Codec(f)) => {
                    // 64 messages encoded, then one flush: one write call.
                    for _ in 0..WRITES_PER_STEP {
                        for _ in 0..PIPELINE {
                            f.feed(payload.clone()).await?;
                        }
                        SinkExt::<Bytes>::flush(f).await?;
                    }
                }
                (Workload::PingPong, Conn::Codec(f)) => {
                    for _ in 0..PINGS_PER_STEP {
                        let t = Instant::now();
                        f.send(payload.clone()).await?;
                        let r = f
                            .next()
                            .await
                            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))??;
                        rtts.push(t.elapsed().as_nanos() as u64);
                        if r.len() != SMALL {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("reply of {} bytes", r.len()),
                            ));
                        }
                    }
                }
            }
            Ok::<(), io::Error>(())
        };
        rt.block_on(async { timeout(IO_TIMEOUT, batch).await })
            .map_err(|_| timed_out("client batch"))??;
        Ok(if *w == Workload::PingPong {
            Work {
                items: PINGS_PER_STEP as u64,
                bytes: (PINGS_PER_STEP * SMALL) as u64,
            }
        } else {
            Work::default()
        })
    }
}
