//! The `mio` runtime under test: weft-mio's blocking server (one event-loop thread
//! for all connections, the app futures on a two-thread [`weft_mio::Executor`]) and
//! one shared client event loop for every client connection.

use crate::{App, BoxFuture, Runtime, TestServer};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use weft_core::Config;
use weft_driver::Handle;
use weft_mio::{EventLoop, Executor, Server};

/// Worker threads running a test server's per-connection app futures.
const APP_THREADS: usize = 2;

/// The weft-mio adapter under test.
#[derive(Debug, Default)]
pub struct Mio {
    clients: OnceLock<EventLoop>,
}

impl Mio {
    /// The runtime; its client event loop starts with the first connection.
    pub fn new() -> Self {
        Mio::default()
    }

    fn client_loop(&self) -> std::io::Result<&EventLoop> {
        if let Some(ev) = self.clients.get() {
            return Ok(ev);
        }
        let ev = EventLoop::new()?;
        // A racing caller may have set it first: theirs is used, ours exits.
        Ok(self.clients.get_or_init(|| ev))
    }
}

impl Runtime for Mio {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn start_server(&self, config: Config, app: App) -> std::io::Result<TestServer> {
        let server = Arc::new(Server::bind("127.0.0.1:0", config)?);
        let addr = server.local_addr();
        let exec = Arc::new(Executor::new(APP_THREADS)?);
        let acceptor = {
            let (server, exec) = (server.clone(), exec.clone());
            std::thread::Builder::new()
                .name("weft-mio-accept".into())
                .spawn(move || {
                    let _ = server.serve_with(&exec, |h| app(h));
                })?
        };
        let stop = Box::new(move || {
            server.stop();
            let _ = acceptor.join();
            // Dropping the connections ends the app futures; then the workers stop.
            server.shutdown();
            exec.shutdown();
        });
        Ok(TestServer { addr, stop })
    }

    fn connect(&self, addr: SocketAddr, config: Config) -> std::io::Result<Handle> {
        self.client_loop()?.connect(addr, config)
    }

    fn block_on(&self, fut: BoxFuture<'_, ()>) {
        weft_driver::block_on(fut);
    }
}
