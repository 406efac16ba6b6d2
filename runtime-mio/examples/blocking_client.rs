//! A blocking client on weft-mio (no async runtime): request/response and a
//! one-way message against the weft-tokio `server` example (or any server
//! answering `greet` and `upper`).
//!
//! ```text
//! cargo run -p weft-tokio --example server                 # in one terminal
//! cargo run -p weft-mio --example blocking_client -- 127.0.0.1:7400
//! ```

use std::time::Duration;
use weft_core::conn::Outcome;
use weft_core::Config;
use weft_mio::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7400".into());
    // Connects on an event-loop thread of its own and waits for the handshake.
    let client = Client::connect(&addr, Config::default())?;

    // Each call blocks until its reply; `into_result` makes every outcome but Ok
    // an error.
    let hello = client.request(b"greet", b"mio", None)?.into_result()?;
    println!("greet -> {}", String::from_utf8_lossy(&hello));
    let up = client
        .request(b"upper", b"blocking", Some(Duration::from_secs(2)))?
        .into_result()?;
    println!("upper -> {}", String::from_utf8_lossy(&up));
    let missing = client.request(b"missing", b"", None)?;
    match missing.outcome {
        Outcome::Error(404) => println!("missing -> 404"),
        other => return Err(format!("expected a 404, got {other:?}").into()),
    }

    // One-way: no reply comes; `flush` returns once the server has processed it.
    client.send(b"a one-way message")?;
    client.flush()?;
    println!("message -> processed by the server");

    // Close gracefully and wait: everything sent was delivered.
    client.shutdown()?;
    println!("closed gracefully");
    Ok(())
}
