//! A server with a custom configuration: the limits and timeouts that matter
//! most, each with what it bounds. It answers `echo` and shuts down gracefully
//! on Ctrl-C (or after `--for SECS`).
//!
//! ```text
//! cargo run -p weft-tokio --example custom_config -- 127.0.0.1:7400
//! # then, in another terminal (its `greet` and `upper` get a 404 here):
//! cargo run -p weft-tokio --example client -- 127.0.0.1:7400
//! ```

use std::time::Duration;
use weft_tokio::{Config, Handle, RouterConfig, Server};

fn config() -> Config {
    let mut c = Config::default();
    // Limits we announce to the peer (its sends above them are refused).
    c.params.max_message_size = 256 << 10; // largest message, after reassembly
    c.params.max_concurrent_requests = 64; // the peer's requests outstanding at once
    c.params.max_concurrent_streams = 16; // streams the peer may open
    c.params.max_subscriptions = 128; // subscriptions the peer may hold
    c.params.heartbeat_ms = 2_000; // PING every 2 s while quiet
    c.params.idle_timeout_ms = 10_000; // a peer silent for 10 s is dropped
                                       // Our own bounds.
    c.max_outstanding_requests = 64; // our requests outstanding at once
    c.max_queued_bytes = 256 << 10; // send queue; beyond it sends wait for room
    c.max_preauth_bytes = 16 << 10; // what a client may send before it authenticates
    c.max_reassembly_bytes = 1 << 20; // all messages being reassembled together
                                      // Timeouts of the connection's life and end (PROTOCOL.md section 15).
    c.handshake_timeout = Duration::from_secs(5); // the handshake must be done by then
    c.drain_timeout = Duration::from_secs(5); // a graceful close must drain by then
    c.linger = Duration::from_secs(1); // how long a closed socket waits for the peer's end
    c
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7400".into());
    let run_for = match (args.next().as_deref(), args.next()) {
        (Some("--for"), Some(s)) => s.parse().ok().map(Duration::from_secs),
        _ => None,
    };
    let config = config();
    // Memory one connection may hold under it, messages in flight aside.
    println!("per-connection bound: {} KiB", config.memory_bound() >> 10);
    // The publish/subscribe hub's limits, shared by all connections.
    let router = RouterConfig {
        max_queue_per_sub: 256, // messages held for a slow subscriber
        max_subs_per_conn: 128, // subscriptions one connection may register
        ..RouterConfig::default()
    };
    let server = Server::bind_with(&addr, config, router).await?;
    println!("listening on {}", server.local_addr()?);
    let stop = async move {
        match run_for {
            Some(d) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = tokio::time::sleep(d) => {}
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    // With the timeouts above a graceful shutdown takes at most about 6 s:
    // drain_timeout, then linger.
    server.serve_with_shutdown(app, stop).await?;
    println!("all connections closed");
    Ok(())
}

async fn app(h: Handle) {
    h.serve(|subject, payload| match subject {
        b"echo" => Ok(payload.to_vec()),
        _ => Err((404, "no such subject".into())),
    })
    .await;
}
