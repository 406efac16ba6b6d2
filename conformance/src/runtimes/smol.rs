//! The `smol` runtime under test, through the `weft-smol` adapter.
//!
//! Connection tasks, the servers' accept loops and their applications run on
//! [`weft_smol::global_executor`], whose own thread keeps running them while the
//! scenario's thread waits in [`weft_smol::block_on`] (smol's `block_on`, which
//! drives the reactor meanwhile). Everything comes through `weft_smol`'s
//! re-exports, so no other smol crate is a dependency here.

use crate::{App, BoxFuture, Runtime, TestServer};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_core::Config;
use weft_driver::Handle;
use weft_smol::{block_on, global_executor, Server, Task};

/// The smol runtime.
#[derive(Debug, Default, Clone, Copy)]
pub struct Smol;

impl Smol {
    /// The runtime (its executor thread starts with the first server or client).
    pub fn new() -> Self {
        Smol
    }
}

impl Runtime for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn start_server(&self, config: Config, app: App) -> io::Result<TestServer> {
        let server = Arc::new(Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)?);
        let addr = server.local_addr()?;
        let task = global_executor().spawn(accept_loop(server.clone(), app));
        Ok(TestServer {
            addr,
            stop: Box::new(move || {
                // Transports first, as a dying server would (applications dropped
                // before would close their connections gracefully), then the
                // accept loop with the listener and the applications.
                block_on(async move {
                    server.abort_connections().await;
                    task.cancel().await;
                });
            }),
        })
    }

    fn connect(&self, addr: SocketAddr, config: Config) -> io::Result<Handle> {
        block_on(weft_smol::connect(addr, config))
    }

    fn block_on(&self, fut: BoxFuture<'_, ()>) {
        block_on(fut)
    }
}

/// Accepts connections until cancelled, running `app` on each on its own task.
async fn accept_loop(server: Arc<Server>, app: App) {
    let mut apps: Vec<Task<()>> = Vec::new();
    loop {
        match server.accept().await {
            Ok(handle) => {
                apps.retain(|t| !t.is_finished());
                apps.push(global_executor().spawn(app(handle)));
            }
            // A connection that went away before it was accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // The listener is broken: keep the running connections until stopped.
                eprintln!("smol test server: accept failed: {e}");
                std::future::pending::<()>().await;
            }
        }
    }
}
