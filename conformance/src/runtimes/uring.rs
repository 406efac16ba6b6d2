//! The `uring` runtime under test: the weft-uring adapter.
//!
//! Servers run on a [`weft_uring::Server`] loop with each connection's app on a
//! small [`weft_uring::Executor`]; clients share one [`weft_uring::EventLoop`].
//! Where io_uring is unavailable, starting and connecting fail with the adapter's
//! "io_uring is unavailable" error (so every scenario reports it).

use crate::{App, BoxFuture, Runtime, TestServer};
use std::io;
use std::net::SocketAddr;
use weft_core::Config;
use weft_driver::Handle;
use weft_uring::{EventLoop, Executor, Server};

/// Worker threads of each test server's executor.
const SERVER_WORKERS: usize = 2;

/// The io_uring runtime.
#[derive(Debug)]
pub struct Uring {
    clients: io::Result<EventLoop>,
}

impl Uring {
    /// Sets up the client loop (its error, if io_uring is unavailable, is returned
    /// by every later call).
    pub fn new() -> Self {
        Uring {
            clients: EventLoop::new(),
        }
    }

    fn clients(&self) -> io::Result<&EventLoop> {
        self.clients
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))
    }
}

impl Default for Uring {
    fn default() -> Self {
        Uring::new()
    }
}

impl Runtime for Uring {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn start_server(&self, config: Config, app: App) -> io::Result<TestServer> {
        let exec = Executor::new(SERVER_WORKERS)?;
        let spawner = exec.spawner();
        let server = Server::bind_with("127.0.0.1:0", config, move |h| spawner.spawn(app(h)))?;
        let addr = server.local_addr();
        Ok(TestServer {
            addr,
            stop: Box::new(move || {
                // Connections first (their apps then see the end), then the workers.
                drop(server);
                drop(exec);
            }),
        })
    }

    fn connect(&self, addr: SocketAddr, config: Config) -> io::Result<Handle> {
        self.clients()?.connect(addr, config)
    }

    fn block_on(&self, fut: BoxFuture<'_, ()>) {
        weft_driver::block_on(fut);
    }
}
