//! One connection's turn on the loop: the input the driver has not taken (a
//! [`Backlog`]), the socket's readiness (mio is edge-triggered, so readiness is
//! kept until a call returns `WouldBlock`), the output the socket has not taken,
//! and the close by the linger policy (PROTOCOL.md 15.5).

use super::{TokenWaker, READS_PER_TURN, READ_BUF, WRITES_PER_TURN};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};
use weft_driver::{Backlog, Driver};

/// One connection on the loop.
pub(super) struct Conn {
    pub(super) sock: TcpStream,
    driver: Driver,
    waker: Arc<TokenWaker>,
    task_waker: Waker,
    /// Bytes read but not yet taken by the driver.
    backlog: Backlog,
    /// Bytes produced by the driver but not yet taken by the socket.
    out: Vec<u8>,
    out_pos: usize,
    /// Readiness not yet used up (mio is edge-triggered).
    pub(super) read_ready: bool,
    pub(super) write_ready: bool,
    /// The peer's end of the byte stream was read.
    eof: bool,
    /// The driver was told of the end.
    eof_told: bool,
    /// The socket failed: nothing more can be written.
    broken: bool,
    pub(super) interest: Option<Interest>,
    /// How long the socket is kept once the driver is finished (`Config::linger`):
    /// flushing output and waiting for the peer to close share this time.
    linger: Duration,
    flush_until: Option<Instant>,
    /// Finished and flushed, our side shut down: reading until the peer closes so
    /// that our last bytes are not lost to a reset.
    linger_until: Option<Instant>,
    pub(super) timer: Option<Instant>,
}

/// What a turn of a connection decided.
pub(super) struct Turn {
    pub(super) remove: bool,
    pub(super) again: bool,
}

impl Conn {
    /// A connection registered with `interest`, woken through `waker`, keeping
    /// its socket for `linger` once the driver is finished.
    pub(super) fn new(
        sock: TcpStream,
        driver: Driver,
        waker: Arc<TokenWaker>,
        interest: Option<Interest>,
        linger: Duration,
    ) -> Self {
        let task_waker = Waker::from(waker.clone());
        Conn {
            sock,
            driver,
            waker,
            task_waker,
            backlog: Backlog::new(READ_BUF),
            out: Vec::new(),
            out_pos: 0,
            read_ready: true,
            write_ready: true,
            eof: false,
            eof_told: false,
            broken: false,
            interest,
            linger,
            flush_until: None,
            linger_until: None,
            timer: None,
        }
    }

    pub(super) fn turn(&mut self, rbuf: &mut [u8], wbuf: &mut [u8]) -> Turn {
        if let Some(until) = self.linger_until {
            return self.linger_turn(rbuf, until);
        }
        // Re-arm the waker before looking at anything, so no wake-up is lost.
        self.waker.queued.store(false, Ordering::Release);
        self.driver.register(&self.task_waker);
        let mut again = false;

        // Input: what the driver left last time first, then the socket; each offered
        // once (the backlog's stop rule). What the driver leaves waits in the backlog
        // and reading stops until the driver wakes us (the application caught up).
        let mut reads = 0;
        self.backlog.offer(&mut self.driver);
        loop {
            if !self.backlog.is_empty() || self.eof || !self.read_ready {
                break;
            }
            if reads == READS_PER_TURN {
                again = true;
                break;
            }
            reads += 1;
            let read = match self.backlog.spare() {
                // Recently backed up: read straight into the kept buffer.
                Some(buf) => {
                    let r = (&self.sock).read(buf);
                    if let Ok(n) = r {
                        self.backlog.filled(n);
                        self.backlog.offer(&mut self.driver);
                    }
                    r
                }
                // Into the loop's buffer, keeping only what the driver leaves.
                None => {
                    let r = (&self.sock).read(rbuf);
                    if let Ok(n @ 1..) = r {
                        self.backlog.offer_and_keep(&mut self.driver, &rbuf[..n]);
                    }
                    r
                }
            };
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    self.broken = true;
                }
            }
        }

        // Timers. A period of the driver's timer is also the backlog's measure of
        // whether its buffer is still needed.
        if self.timer.is_some_and(|t| t <= Instant::now()) {
            self.driver.handle_timeout();
            self.backlog.period_ended();
        }

        // Output: what the socket left last time first, then the driver's.
        again |= self.flush(wbuf);

        // The end of input, once everything before it was taken (or the socket broke).
        if self.broken {
            self.eof = true;
            self.backlog.discard();
        }
        if self.eof && !self.eof_told && self.backlog.is_empty() {
            self.eof_told = true;
            self.driver.handle_eof();
            again |= self.flush(wbuf);
        }

        let now = Instant::now();
        if self.driver.is_finished() {
            let flushed = self.broken || self.out_pos >= self.out.len();
            if flushed {
                if self.eof {
                    return Turn {
                        remove: true,
                        again: false,
                    };
                }
                // Our last bytes are out: send FIN, then read until the peer closes,
                // so unread input does not turn our close into a reset.
                // The linger period counts from when the driver finished (PROTOCOL.md
                // 15.5): flushing and reading to the peer's end share it.
                let _ = self.sock.shutdown(Shutdown::Write);
                let until = *self.flush_until.get_or_insert(now + self.linger);
                self.linger_until = Some(until);
                return self.linger_turn(rbuf, until);
            }
            let until = *self.flush_until.get_or_insert(now + self.linger);
            if until <= now {
                return Turn {
                    remove: true,
                    again: false,
                };
            }
            self.timer = Some(until);
        } else {
            self.timer = self.driver.poll_timeout();
        }
        Turn {
            remove: false,
            again,
        }
    }

    /// Writes pending output, then the driver's, until the socket is full, the
    /// driver has nothing more, or the turn's budget is spent (returns true).
    fn flush(&mut self, wbuf: &mut [u8]) -> bool {
        let mut transmits = 0;
        loop {
            if self.out_pos < self.out.len() {
                if self.broken {
                    self.out = Vec::new();
                    self.out_pos = 0;
                    continue;
                }
                if !self.write_ready {
                    return false;
                }
                match (&self.sock).write(&self.out[self.out_pos..]) {
                    Ok(0) => self.broken = true,
                    Ok(n) => {
                        self.out_pos += n;
                        if self.out_pos == self.out.len() {
                            self.out = Vec::new();
                            self.out_pos = 0;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.write_ready = false;
                        return false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.broken = true,
                }
                continue;
            }
            if transmits == WRITES_PER_TURN {
                return true;
            }
            transmits += 1;
            let n = self.driver.poll_transmit(wbuf);
            if n == 0 {
                return false;
            }
            if self.broken {
                // Nowhere to send it; the driver learns of the end below.
                continue;
            }
            let mut off = 0;
            while off < n && self.write_ready && !self.broken {
                match (&self.sock).write(&wbuf[off..n]) {
                    Ok(0) => self.broken = true,
                    Ok(k) => off += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.broken = true,
                }
            }
            if off < n && !self.broken {
                // A partial write: keep the rest for when the socket is writable.
                self.out.extend_from_slice(&wbuf[off..n]);
                self.out_pos = 0;
                return false;
            }
        }
    }

    /// After our side is done: discard input until the peer closes or time is up.
    fn linger_turn(&mut self, rbuf: &mut [u8], until: Instant) -> Turn {
        let done = Turn {
            remove: true,
            again: false,
        };
        if Instant::now() >= until {
            return done;
        }
        for _ in 0..READS_PER_TURN {
            match (&self.sock).read(rbuf) {
                Ok(0) => return done,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.timer = Some(until);
                    return Turn {
                        remove: false,
                        again: false,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return done,
            }
        }
        self.timer = Some(until);
        Turn {
            remove: false,
            again: true,
        }
    }

    /// Asks for readability only while input is wanted, and for writability only
    /// while output waits.
    pub(super) fn update_interest(&mut self, registry: &mio::Registry, token: Token) {
        let want_read = !self.eof && self.backlog.is_empty();
        let want_write = !self.broken && self.out_pos < self.out.len();
        let want = match (want_read, want_write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        };
        if want == self.interest {
            return;
        }
        let r = match (self.interest, want) {
            (None, Some(i)) => registry.register(&mut self.sock, token, i),
            (Some(_), Some(i)) => registry.reregister(&mut self.sock, token, i),
            (Some(_), None) => registry.deregister(&mut self.sock),
            (None, None) => Ok(()),
        };
        match r {
            Ok(()) => self.interest = want,
            Err(_) => {
                // Cannot watch the socket any more: treat it as broken.
                self.broken = true;
                self.eof = true;
                self.read_ready = true;
                self.write_ready = true;
                self.waker.wake_by_ref();
            }
        }
    }
}
