//! A listening socket on the loop: it accepts only while the server's accept
//! queue has room (the kernel's backlog holds the rest), and retries a little
//! later after an error that no readiness edge would report again.

use super::{TokenWaker, Turn, ACCEPTS_PER_TURN, ACCEPT_RETRY};
use crate::server::AcceptQueue;
use mio::net::{TcpListener, TcpStream};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A listener's state on the loop.
pub(super) struct Listener {
    pub(super) sock: TcpListener,
    pub(super) queue: Arc<AcceptQueue>,
    waker: Arc<TokenWaker>,
    pub(super) ready: bool,
    pub(super) timer: Option<Instant>,
}

impl Listener {
    /// A listener woken through `waker` (the accept queue wakes it as room
    /// appears), ready to accept at once.
    pub(super) fn new(sock: TcpListener, queue: Arc<AcceptQueue>, waker: Arc<TokenWaker>) -> Self {
        Listener {
            sock,
            queue,
            waker,
            ready: true,
            timer: None,
        }
    }

    /// Accepts what the accept queue has room for (bounded per turn); returns the
    /// accepted sockets, and whether to go on next turn.
    pub(super) fn turn(&mut self) -> (Vec<TcpStream>, Turn) {
        self.waker.queued.store(false, Ordering::Release);
        let mut accepted = Vec::new();
        let keep = |again| Turn {
            remove: false,
            again,
        };
        if self.queue.is_closed() {
            let t = Turn {
                remove: true,
                again: false,
            };
            return (accepted, t);
        }
        if self.timer.is_some_and(|t| t <= Instant::now()) {
            self.timer = None;
            self.ready = true;
        }
        if !self.ready {
            return (accepted, keep(false));
        }
        // When the application's accept queue is full, it wakes us as it takes one;
        // meanwhile the kernel's backlog holds the rest.
        let room = self.queue.room().min(ACCEPTS_PER_TURN);
        while accepted.len() < room {
            match self.sock.accept() {
                Ok((stream, _peer)) => accepted.push(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready = false;
                    return (accepted, keep(false));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(_) => {
                    // E.g. out of file descriptors: the readiness edge will not come
                    // back by itself, so try again a little later.
                    self.ready = false;
                    self.timer = Some(Instant::now() + ACCEPT_RETRY);
                    return (accepted, keep(false));
                }
            }
        }
        let again = room == ACCEPTS_PER_TURN;
        (accepted, keep(again))
    }
}
