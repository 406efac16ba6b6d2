//! The blocking client: the shared [`BlockingClient`] over this crate's
//! [`EventLoop`]. Only where the connection runs is mio's; the blocking calls are
//! the driver's.

use crate::event_loop::EventLoop;
use std::io;
use std::net::ToSocketAddrs;
use weft_core::Config;
use weft_driver::{BlockingClient, BlockingLoop, Handle};

/// A blocking Weft client: one connection driven by a mio event loop thread.
///
/// [`connect`](BlockingClient::connect) starts a loop thread of its own for the
/// connection; [`connect_on`](BlockingClient::connect_on) shares a given
/// [`EventLoop`] (one thread for many clients). Both wait for the handshake.
/// Every method blocks the calling thread until done; none may be called from
/// inside a future (use [`handle`](BlockingClient::handle) there).
///
/// Dropping the client closes the connection gracefully unless a clone of its
/// [`Handle`] is still alive; its own loop thread then exits once the connection
/// has finished.
pub type Client = BlockingClient<EventLoop>;

impl BlockingLoop for EventLoop {
    fn start() -> io::Result<Self> {
        EventLoop::new()
    }

    fn connect(&self, addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
        EventLoop::connect(self, addr, config)
    }
}
