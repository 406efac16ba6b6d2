//! The Weft conformance suite: one catalogue of scenarios that every runtime
//! adapter must pass over real loopback sockets, and the cross-runtime interop
//! matrix.
//!
//! An adapter implements [`Runtime`] (start a server, connect a client, run a
//! future) and calls [`run_catalogue`] from its own `cargo test`; the result is a
//! [`Report`] printed and written as Markdown. No scenario is skipped: one a
//! runtime cannot do is a failure.
#![forbid(unsafe_code)]

pub mod app;
pub mod report;
pub mod runtimes;
pub mod scenarios;
pub mod testing;

pub use report::{Outcome, Report};

use core::future::Future;
use core::pin::Pin;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_core::Config;
use weft_driver::Handle;

/// A boxed future, as the object-safe [`Runtime`] takes them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a server runs for each accepted connection (see [`app::standard`]).
pub type App = Arc<dyn Fn(Handle) -> BoxFuture<'static, ()> + Send + Sync>;

/// A server started by a runtime under test.
pub struct TestServer {
    /// Where it listens (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    /// Stops it as if the server died: stop accepting, drop every connection's
    /// transport without a CLOSE (clients see the connection lost), join its
    /// threads.
    pub stop: Box<dyn FnOnce() + Send>,
}

impl core::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A runtime adapter under test. Everything happens over real sockets on
/// 127.0.0.1; the protocol itself lives in `weft-core` and is the same for all.
pub trait Runtime: Sync {
    /// Short name: `tokio`, `smol`, `mio` or `uring`.
    fn name(&self) -> &'static str;

    /// Starts a server on `127.0.0.1:0` with `config`. Every accepted connection is
    /// attached to the server's [`weft_driver::Hub`] (pub/sub routing) and
    /// `app` is run on its handle.
    fn start_server(&self, config: Config, app: App) -> std::io::Result<TestServer>;

    /// Connects to `addr` with `config` and returns the connection's handle (the
    /// handshake may still be in progress: await [`Handle::connected`]).
    fn connect(&self, addr: SocketAddr, config: Config) -> std::io::Result<Handle>;

    /// Runs `fut` to completion on this runtime.
    fn block_on(&self, fut: BoxFuture<'_, ()>);
}

/// One scenario of the catalogue.
pub struct Scenario {
    /// Stable id, e.g. `rpc/deadline`.
    pub id: &'static str,
    /// The spec section it checks, e.g. `§8.1`.
    pub spec: &'static str,
    /// The requirement, in a sentence.
    pub requirement: &'static str,
    /// The expected outcome: events, and for failures the code and who closes.
    pub expected: &'static str,
    /// Runs it with a client on `client` against a server on `server`.
    pub run: fn(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String>,
}

impl core::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scenario")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Every scenario, in catalogue order.
pub fn catalogue() -> Vec<Scenario> {
    scenarios::all()
}

/// The scenarios of the interop matrix: handshake with auth, RPC, pub/sub with a
/// queue group, a flow-controlled stream, a 16 MiB message, graceful close.
pub const MATRIX_IDS: &[&str] = &[
    "handshake/psk",
    "rpc/echo",
    "pubsub/queue-group",
    "stream/flow-control",
    "message/16mib",
    "close/graceful",
];

/// Runs the whole catalogue with `rt` on both sides; returns the report. If a
/// scenario hangs, the report so far is written (`target/weft-conformance/<name
/// of rt>.md`) before the process exits.
pub fn run_catalogue(rt: &dyn Runtime) -> Report {
    let mut report = Report::new(format!("conformance: {}", rt.name())).with_file(rt.name());
    for s in catalogue() {
        report::run_into(&mut report, &s, rt, rt);
    }
    report
}

/// Runs the matrix scenarios for every client runtime against every server runtime
/// (a hung scenario: as [`run_catalogue`], to `matrix.md`).
pub fn run_matrix(runtimes: &[&dyn Runtime]) -> Report {
    let mut report = Report::new("interop matrix".to_string()).with_file("matrix");
    let all = catalogue();
    for &client in runtimes {
        for &server in runtimes {
            for id in MATRIX_IDS {
                let s = all
                    .iter()
                    .find(|s| s.id == *id)
                    .unwrap_or_else(|| panic!("matrix scenario {id} missing"));
                report::run_into(&mut report, s, client, server);
            }
        }
    }
    report
}
