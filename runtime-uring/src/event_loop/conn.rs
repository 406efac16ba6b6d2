//! One connection on the loop: its state, its turn ([`Loop::service`]: input to
//! the driver, a `Send` of its output, the linger, the next `Recv`), and the
//! completions of its operations.
//!
//! Receive memory: with the ring's pool, a `Recv` owns no buffer until data
//! arrives; the bytes are offered straight from the pool buffer and only what the
//! driver leaves is copied into the connection's [`Backlog`]. Without a pool (or
//! after the pool ran dry on this connection) the backlog's buffer itself is lent
//! to the `Recv` and comes back with the completion. Either way no `Recv` is in
//! flight while bytes wait for the driver, so input stays in order.

use super::{
    is_transient, ConnWake, Loop, Tag, RECV_BUF, SEND_BUF, SPARE_PERIOD, STARVED_RECV_BUF,
};
use crate::ring::{Done, Kind, OpId};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;
use weft_driver::{Backlog, Driver};

/// A connection's state on the loop (its fields are the loop's to use).
pub(super) struct Conn {
    pub(super) sock: TcpStream,
    pub(super) driver: Driver,
    waker: Waker,
    pub(super) wake: Arc<ConnWake>,
    /// Bytes received and not taken by the driver yet. Without a pool its buffer
    /// is also the connection's receive buffer, in the ring while a `Recv` is in
    /// flight.
    pub(super) backlog: Backlog,
    /// The last pooled receive found the pool empty: the next receive uses a small
    /// buffer of the connection's own, so that a connection cannot lose the race
    /// for pool buffers turn after turn while thousands of others are busy.
    starved: bool,
    pub(super) recv: Option<OpId>,
    /// The `Send` in flight (its buffer is the ring's), `[sent..slen]` of it
    /// still to go.
    sent: usize,
    slen: usize,
    pub(super) send: Option<OpId>,
    /// The peer's side ended (EOF or error).
    eof: bool,
    /// Sending failed: output is discarded.
    broken: bool,
    /// Finished: the socket is kept until then (`Config::linger` after the driver
    /// finished), to send what is left, then its end, and discard input.
    linger: Option<Instant>,
    /// Our end of stream was sent (or cannot be): the peer's ends the linger.
    fin_sent: bool,
    /// The socket was shut down; the connection goes once its operations are done.
    pub(super) shut: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) dirty: bool,
}

impl Loop {
    pub(super) fn add_conn(&mut self, sock: TcpStream, driver: Driver) {
        let id = self.next_id;
        self.next_id += 1;
        let wake = Arc::new(ConnWake {
            notify: self.notify.clone(),
            id,
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(wake.clone());
        self.conns.insert(
            id,
            Conn {
                sock,
                driver,
                waker,
                wake,
                backlog: Backlog::new(RECV_BUF),
                starved: false,
                recv: None,
                sent: 0,
                slen: 0,
                send: None,
                eof: false,
                broken: false,
                linger: None,
                fin_sent: false,
                shut: false,
                deadline: None,
                dirty: false,
            },
        );
        self.mark_dirty(id);
    }

    /// Moves bytes between the driver and the socket, submits what is due, and
    /// retires the connection once it is finished.
    pub(super) fn service(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.dirty = false;
        // Registered first: a command issued after the checks below wakes us again.
        c.driver.register(&c.waker);
        let fd = c.sock.as_raw_fd();
        // Input, output, input: each offer is one (the backlog's stop rule), and
        // the second follows a transmit, which resumes events the driver paused on
        // a full application queue and so can make room for input it left.
        c.backlog.offer(&mut c.driver);
        if c.send.is_none() && !c.broken && !c.shut {
            let mut buf = self.spare.pop().unwrap_or_else(|| vec![0; SEND_BUF]);
            self.spare_low = self.spare_low.min(self.spare.len());
            let mut n = 0;
            while n < buf.len() {
                let k = c.driver.poll_transmit(&mut buf[n..]);
                if k == 0 {
                    break;
                }
                n += k;
            }
            if n > 0 {
                c.sent = 0;
                c.slen = n;
                c.send = Some(self.ring.send(fd, buf, 0..n, Tag::Conn(id)));
            } else {
                self.spare.push(buf);
            }
        }
        c.backlog.offer(&mut c.driver);
        let finished = c.driver.is_finished();
        let now = Instant::now();
        // Finished: once everything is written, end our direction (FIN after the
        // last bytes) and keep reading, discarding, until the peer's end of stream;
        // all within the linger period from when the driver finished (PROTOCOL.md
        // 15.5), so that the peer reads our last bytes rather than a reset caused
        // by unread input.
        if finished && c.linger.is_none() {
            c.linger = Some(now + c.driver.linger());
        }
        if finished && (c.send.is_none() || c.broken) && !c.fin_sent {
            if !c.eof && !c.broken {
                let _ = c.sock.shutdown(Shutdown::Write);
            }
            c.fin_sent = true;
        }
        let peer_done = c.fin_sent && (c.eof || c.broken);
        if !c.shut && c.linger.is_some_and(|t| peer_done || now >= t) {
            // Close the socket, and retire the connection once the kernel is done
            // with its buffers.
            c.shut = true;
            let _ = c.sock.shutdown(Shutdown::Both);
            for op in [c.recv, c.send].into_iter().flatten() {
                self.ring.cancel(op);
            }
        }
        if c.recv.is_none() && !c.eof && !c.shut && c.backlog.is_empty() {
            c.recv = if self.ring.has_pool() && !c.starved {
                self.ring.recv_pooled(fd, Tag::Conn(id))
            } else {
                // The backlog's buffer when it keeps one, else a new one: small
                // after the pool ran dry (the pool is back at the next receive).
                let len = if c.starved {
                    STARVED_RECV_BUF
                } else {
                    RECV_BUF
                };
                Some(
                    self.ring
                        .recv(fd, c.backlog.take_buffer(len), 0, Tag::Conn(id)),
                )
            };
        }
        // The deadline: the driver's, then the linger's.
        let want = if c.shut {
            None
        } else if finished {
            c.linger
        } else {
            c.driver.poll_timeout()
        };
        if want != c.deadline {
            if let Some(old) = c.deadline {
                self.deadlines.remove(&(old, id));
            }
            if let Some(new) = want {
                self.deadlines.insert((new, id));
            }
            c.deadline = want;
        }
        if c.shut && c.recv.is_none() && c.send.is_none() {
            if let Some(d) = c.deadline {
                self.deadlines.remove(&(d, id));
            }
            self.conns.remove(&id);
        }
    }

    pub(super) fn complete_conn(&mut self, id: u64, d: Done<Tag>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let fd = c.sock.as_raw_fd();
        match d.kind {
            Kind::Recv => {
                c.recv = None;
                let landed = d.buf.is_some() || d.pooled.is_some();
                if let Some(buf) = d.buf {
                    // Into the connection's own buffer (no pool, or starved).
                    c.starved = false;
                    c.backlog
                        .restore(buf, usize::try_from(d.result).unwrap_or(0));
                }
                if let Some(p) = d.pooled {
                    // Offered straight from the pool buffer, which goes back at once;
                    // only what the driver leaves is kept. No `Recv` was in flight
                    // with a backlog, so there is none before these bytes.
                    if !c.shut {
                        c.backlog
                            .offer_and_keep(&mut c.driver, self.ring.pooled(&p));
                    }
                    self.ring.give_back(p);
                }
                if d.result > 0 && landed {
                    // Offered, or kept for the driver.
                } else if d.result == -libc::ENOBUFS {
                    // The pool ran dry: one more buffer (up to the bound); `service`
                    // submits the receive again once this turn's buffers are back.
                    self.ring.grow_pool();
                    c.starved = true;
                    self.starved += 1;
                } else if d.result < 0 && is_transient(-d.result) {
                    // Submitted again by `service`.
                } else if !c.shut && !c.eof {
                    // 0: end of stream; otherwise reset, aborted, cancelled … (or
                    // bytes in no buffer the loop knows, which cannot be taken back).
                    c.eof = true;
                    c.driver.handle_eof();
                }
            }
            Kind::Send => {
                c.send = None;
                let Some(buf) = d.buf else {
                    return;
                };
                let more = d.result > 0 || is_transient(-d.result);
                if more && !c.shut {
                    c.sent += usize::try_from(d.result.max(0)).unwrap_or(0);
                    if c.sent < c.slen {
                        // A partial send: continue from the offset.
                        c.send = Some(self.ring.send(fd, buf, c.sent..c.slen, Tag::Conn(id)));
                    } else {
                        self.spare.push(buf);
                    }
                } else {
                    self.spare.push(buf);
                    if !c.shut {
                        c.broken = true;
                        if !c.eof {
                            c.eof = true;
                            c.driver.handle_eof();
                        }
                    }
                }
            }
            Kind::Accept | Kind::Timeout => {}
        }
        self.mark_dirty(id);
    }

    /// Frees the spare send buffers that no send needed since the last trim (at
    /// most one [`SPARE_PERIOD`] ago): a steady load keeps what it uses.
    pub(super) fn trim_spares(&mut self, now: Instant) {
        if now < self.trim_at {
            return;
        }
        let unused = self.spare_low.min(self.spare.len());
        self.spare.truncate(self.spare.len() - unused);
        self.spare_low = self.spare.len();
        self.trim_at = now + SPARE_PERIOD;
    }
}
