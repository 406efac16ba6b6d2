//! The blocking client: the shared [`BlockingClient`] over this crate's
//! [`EventLoop`]. Only where the connection runs is io_uring's; the blocking calls
//! are the driver's.

use crate::event_loop::EventLoop;
use std::io;
use std::net::ToSocketAddrs;
use weft_core::Config;
use weft_driver::{BlockingClient, BlockingLoop, Handle};

/// A blocking Weft client: one connection on an io_uring event loop of its own.
///
/// [`connect`](BlockingClient::connect) starts the loop and waits for the
/// handshake. Every method blocks the calling thread until done; none may be
/// called from inside a future (use [`handle`](BlockingClient::handle) there).
///
/// Dropping it drops its handle (the connection closes gracefully once no clone
/// of the handle is left) and lets the loop end when the connection did.
pub type Client = BlockingClient<EventLoop>;

impl BlockingLoop for EventLoop {
    fn start() -> io::Result<Self> {
        EventLoop::new()
    }

    fn connect(&self, addr: impl ToSocketAddrs, config: Config) -> io::Result<Handle> {
        EventLoop::connect(self, addr, config)
    }
}
