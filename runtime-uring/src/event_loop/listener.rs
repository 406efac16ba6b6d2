//! A listening socket on the loop: one single-shot `Accept` at a time, submitted
//! again after each connection (every kernel with `IORING_OP_ACCEPT` has it), a
//! back-off after resource errors, and a server-role driver attached to the hub
//! for each accepted socket.

use super::{is_transient, Loop, OnConnection, Tag, ACCEPT_BACKOFF};
use crate::ring::{Done, Kind, OpId};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use weft_core::{Config, Role};
use weft_driver::{self as driver, Hub};

/// A listener's state on the loop.
pub(super) struct Listener {
    pub(super) sock: TcpListener,
    config: Config,
    hub: Arc<Hub>,
    on_connection: OnConnection,
    pub(super) accept: Option<OpId>,
    pub(super) backoff: Option<OpId>,
    closing: bool,
}

impl Listener {
    /// A listener whose accepted connections get a server driver with `config`,
    /// attached to `hub`, their handles passed to `on_connection`.
    pub(super) fn new(
        sock: TcpListener,
        config: Config,
        hub: Arc<Hub>,
        on_connection: OnConnection,
    ) -> Self {
        Listener {
            sock,
            config,
            hub,
            on_connection,
            accept: None,
            backoff: None,
            closing: false,
        }
    }
}

impl Loop {
    /// Starts accepting on `l` (or, on a loop winding down, drops it at once).
    pub(super) fn add_listener(&mut self, mut l: Listener) {
        let id = self.next_id;
        self.next_id += 1;
        if self.stop_when_idle {
            l.closing = true;
        } else {
            l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
        }
        self.listeners.insert(id, l);
        self.reap_listener(id);
    }

    pub(super) fn complete_listener(&mut self, id: u64, d: Done<Tag>) {
        let Some(l) = self.listeners.get_mut(&id) else {
            return;
        };
        match d.kind {
            Kind::Accept => {
                l.accept = None;
                if let Some(fd) = d.fd {
                    if !l.closing {
                        let sock = TcpStream::from(fd);
                        let _ = sock.set_nodelay(true);
                        let (mut driver, handle) =
                            driver::connect(Role::Server, l.config.clone(), driver::os_seed());
                        if let Ok(p) = sock.peer_addr() {
                            driver.set_peer_addr(p);
                        }
                        l.hub.attach(&mut driver);
                        (l.on_connection)(handle);
                        self.add_conn(sock, driver);
                    }
                }
                let Some(l) = self.listeners.get_mut(&id) else {
                    return;
                };
                if !l.closing {
                    let errno = -d.result;
                    if d.result >= 0 || is_transient(errno) || errno == libc::ECONNABORTED {
                        l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
                    } else {
                        l.backoff = Some(self.ring.timeout(ACCEPT_BACKOFF, Tag::Listener(id)));
                    }
                }
            }
            Kind::Timeout => {
                l.backoff = None;
                if !l.closing {
                    l.accept = Some(self.ring.accept(l.sock.as_raw_fd(), Tag::Listener(id)));
                }
            }
            Kind::Recv | Kind::Send => {}
        }
        self.reap_listener(id);
    }

    pub(super) fn close_listener(&mut self, id: u64) {
        if let Some(l) = self.listeners.get_mut(&id) {
            l.closing = true;
            if let Some(op) = l.accept {
                self.ring.cancel(op);
            }
            if let Some(op) = l.backoff {
                self.ring.remove_timeout(op);
            }
        }
        self.reap_listener(id);
    }

    /// Drops a closing listener once none of its operations is in flight.
    fn reap_listener(&mut self, id: u64) {
        if self
            .listeners
            .get(&id)
            .is_some_and(|l| l.closing && l.accept.is_none() && l.backoff.is_none())
        {
            self.listeners.remove(&id);
        }
    }
}
