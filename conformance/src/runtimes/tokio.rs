//! The `tokio` runtime under test: `weft-tokio` on a multi-thread runtime with two
//! workers, over loopback TCP.

use crate::{App, BoxFuture, Runtime, TestServer};
use std::net::SocketAddr;
use weft_core::Config;
use weft_driver::Handle;
use weft_tokio::runtime::{Builder, Runtime as TokioRuntime};

/// `weft-tokio` under test.
#[derive(Debug)]
pub struct Tokio {
    rt: TokioRuntime,
}

impl Tokio {
    /// A multi-thread tokio runtime with two workers, I/O and time enabled.
    ///
    /// # Panics
    ///
    /// If the runtime cannot be built (no threads or no I/O driver available).
    pub fn new() -> Self {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-conformance-tokio")
            .enable_all()
            .build()
            .expect("build the tokio runtime");
        Tokio { rt }
    }
}

impl Default for Tokio {
    fn default() -> Self {
        Tokio::new()
    }
}

impl Runtime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn start_server(&self, config: Config, app: App) -> std::io::Result<TestServer> {
        let server = self
            .rt
            .block_on(weft_tokio::Server::bind("127.0.0.1:0", config))?;
        let addr = server.local_addr()?;
        let aborter = server.aborter();
        let task = self.rt.spawn(server.serve(move |h| app(h)));
        let stop = Box::new(move || {
            // Transports first, as a dying server would (applications aborted
            // before would close their connections gracefully), then the serve
            // future with the listener and the applications.
            weft_driver::block_on(aborter.abort_connections());
            task.abort();
            let _ = weft_driver::block_on(task);
        });
        Ok(TestServer { addr, stop })
    }

    fn connect(&self, addr: SocketAddr, config: Config) -> std::io::Result<Handle> {
        self.rt.block_on(weft_tokio::connect(addr, config))
    }

    fn block_on(&self, fut: BoxFuture<'_, ()>) {
        self.rt.block_on(fut);
    }
}
