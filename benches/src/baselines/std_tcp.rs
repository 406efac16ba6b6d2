//! Blocking `std::net` TCP: the limit of W1-W3.

use super::{
    framed, is_end, timed_out, Client, Counter, Frames, Workload, BULK, BULK_PER_STEP, IO_TIMEOUT,
    PINGS_PER_STEP, PIPELINE, READ_BUF, SETUP_TIMEOUT, SMALL, WRITES_PER_STEP,
};
use crate::measure::Work;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

/// Accepts one connection, waiting at most [`SETUP_TIMEOUT`].
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(timed_out("accept")),
            Err(e) => return Err(e),
        }
    }
}

fn configure(s: &TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))
}

/// Reads and parses until the client goes away (or is idle for [`IO_TIMEOUT`]);
/// W2 answers every request with one reply.
pub(super) fn server(w: Workload, listener: TcpListener, counter: &Counter) -> io::Result<()> {
    let mut s = accept(&listener)?;
    configure(&s)?;
    let mut buf = vec![0u8; READ_BUF];
    let mut frames = Frames::default();
    let reply = framed(SMALL, 1);
    let mut out = Vec::with_capacity(reply.len() * 16);
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let got = frames.feed(&buf[..n]);
        if w == Workload::PingPong && got.items > 0 {
            out.clear();
            for _ in 0..got.items {
                out.extend_from_slice(&reply);
            }
            match s.write_all(&out) {
                Ok(()) => {}
                Err(e) if is_end(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        counter.add(got);
    }
}

/// The blocking load generator.
pub(super) struct StdClient {
    w: Workload,
    s: TcpStream,
    msg: Vec<u8>,
    reply: Vec<u8>,
}

impl StdClient {
    pub(super) fn connect(w: Workload, addr: SocketAddr) -> io::Result<StdClient> {
        let s = TcpStream::connect_timeout(&addr, SETUP_TIMEOUT)?;
        configure(&s)?;
        let msg = match w {
            Workload::Bulk => framed(BULK, 1),
            Workload::PingPong => framed(SMALL, 1),
            Workload::Pipelined => framed(SMALL, PIPELINE),
        };
        Ok(StdClient {
            w,
            s,
            msg,
            reply: vec![0; SMALL + 4],
        })
    }
}

impl Client for StdClient {
    fn batch(&mut self, rtts: &mut Vec<u64>) -> io::Result<Work> {
        match self.w {
            Workload::Bulk => {
                for _ in 0..BULK_PER_STEP {
                    self.s.write_all(&self.msg)?;
                }
            }
            Workload::Pipelined => {
                for _ in 0..WRITES_PER_STEP {
                    self.s.write_all(&self.msg)?;
                }
            }
            Workload::PingPong => {
                for _ in 0..PINGS_PER_STEP {
                    let t = Instant::now();
                    self.s.write_all(&self.msg)?;
                    self.s.read_exact(&mut self.reply)?;
                    rtts.push(t.elapsed().as_nanos() as u64);
                    check_reply(&self.reply)?;
                }
                return Ok(Work {
                    items: PINGS_PER_STEP as u64,
                    bytes: (PINGS_PER_STEP * SMALL) as u64,
                });
            }
        }
        Ok(Work::default())
    }
}

/// Checks a W2 reply's length prefix.
pub(super) fn check_reply(reply: &[u8]) -> io::Result<()> {
    let len = u32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
    if len == SMALL {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply of {len} bytes, expected {SMALL}"),
        ))
    }
}
