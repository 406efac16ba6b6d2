//! The scenario catalogue, one module per area. Each scenario names the spec
//! section and requirement it checks and its expected outcome.

use crate::{app, Runtime, Scenario, TestServer};
use std::sync::Arc;
use weft_core::auth::PskAuthenticator;
use weft_core::driver::Handle;
use weft_core::Config;

mod basic;

/// All scenarios, in catalogue order.
pub(crate) fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(basic::scenarios());
    v
}

/// The pre-shared key the conformance servers and clients use.
pub const KEY: &[u8] = b"conformance-key-0123456789abcdef";

/// A configuration with PSK authentication under `key_id`.
pub fn psk_config(key_id: &[u8], key: &[u8]) -> Config {
    let a = PskAuthenticator::with_client_key(key_id, key).expect("valid key");
    Config {
        auth: Some(Arc::new(a)),
        ..Config::default()
    }
}

/// Starts the standard app on `server`, or explains why not.
pub fn start(server: &dyn Runtime, config: Config) -> Result<TestServer, String> {
    server
        .start_server(config, app::standard())
        .map_err(|e| format!("start server on {}: {e}", server.name()))
}

/// Connects a client and waits for the handshake.
pub fn connect(client: &dyn Runtime, srv: &TestServer, config: Config) -> Result<Handle, String> {
    let h = client
        .connect(srv.addr, config)
        .map_err(|e| format!("connect with {}: {e}", client.name()))?;
    let mut r = Ok(());
    let h2 = h.clone();
    client.block_on(Box::pin(async {
        r = h2
            .connected()
            .await
            .map_err(|c| format!("handshake failed: {c:?}"));
    }));
    r.map(|()| h)
}

/// Runs an async block on `rt` and returns its result.
pub fn run<T: Send>(rt: &dyn Runtime, fut: impl core::future::Future<Output = T> + Send) -> T {
    let mut out = None;
    rt.block_on(Box::pin(async {
        out = Some(fut.await);
    }));
    out.expect("block_on ran the future to completion")
}
