//! Request/response against the `server` example: two requests that succeed and
//! one the server does not serve, with `?` on every failure.
//!
//! ```text
//! cargo run -p weft-tokio --example server     # in one terminal
//! cargo run -p weft-tokio --example client -- 127.0.0.1:7400
//! ```

use std::time::Duration;
use weft_tokio::{Config, RequestError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7400".into());
    let h = weft_tokio::connect(&addr, Config::default()).await?;

    // `into_result` turns every outcome but Ok into a `RequestError`.
    let hello = h.request(b"greet", b"weft", None).await?.into_result()?;
    println!("greet -> {}", String::from_utf8_lossy(&hello));

    // A deadline travels with the request: past it the answer is DeadlineExceeded.
    let up = h
        .request(b"upper", b"quiet please", Some(Duration::from_secs(2)))
        .await?
        .into_result()?;
    println!("upper -> {}", String::from_utf8_lossy(&up));

    match h.request(b"missing", b"", None).await?.into_result() {
        Err(RequestError::Error { code: 404, message }) => println!("missing -> 404 {message}"),
        other => return Err(format!("expected a 404, got {other:?}").into()),
    }

    // Close gracefully and wait: everything sent has been delivered.
    h.shutdown().await?;
    Ok(())
}
