//! Copies a file through a Weft stream to the `server` example, which echoes it
//! back, and checks that the copy is identical: streams are ordered,
//! flow-controlled byte pipes with tokio's `AsyncRead`/`AsyncWrite`.
//!
//! ```text
//! cargo run -p weft-tokio --example server     # in one terminal
//! cargo run -p weft-tokio --example stream_copy -- 127.0.0.1:7400 Cargo.toml
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_tokio::{Config, Stream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7400".into());
    let path = args.next().unwrap_or_else(|| "Cargo.toml".into());
    let original = tokio::fs::read(&path).await?;

    let h = weft_tokio::connect(&addr, Config::default()).await?;
    // Streams open once the handshake is done (requests and messages need not wait).
    h.connected().await?;
    let stream = Stream::open(&h)?;
    let (mut rx, mut tx) = tokio::io::split(stream);
    // Write and read at once: the echo comes back while we are still sending.
    let send = async {
        tx.write_all(&original).await?;
        tx.shutdown().await // finishes our direction: the server sees the end
    };
    let mut copy = Vec::new();
    let (sent, got) = tokio::join!(send, rx.read_to_end(&mut copy));
    sent?;
    got?;
    if copy != original {
        return Err("the copy differs from the original".into());
    }
    println!("{path}: {} bytes there and back, identical", copy.len());
    h.shutdown().await?;
    Ok(())
}
