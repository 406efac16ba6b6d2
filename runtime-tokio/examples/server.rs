//! A Weft server: answers requests, routes publish/subscribe between its clients,
//! echoes streams, and shuts down gracefully on Ctrl-C (or after `--for SECS`).
//!
//! ```text
//! cargo run -p weft-tokio --example server -- 127.0.0.1:7400
//! # then, in other terminals:
//! cargo run -p weft-tokio --example client -- 127.0.0.1:7400
//! cargo run -p weft-tokio --example pubsub -- 127.0.0.1:7400
//! cargo run -p weft-tokio --example stream_copy -- 127.0.0.1:7400 Cargo.toml
//! ```

use std::time::Duration;
use weft_tokio::{Config, Handle, Server, Stream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7400".into());
    // `--for SECS`: shut down after that long at the latest (a backstop for
    // scripts); Ctrl-C shuts it down at any time.
    let run_for = match (args.next().as_deref(), args.next()) {
        (Some("--for"), Some(s)) => s.parse().ok().map(Duration::from_secs),
        _ => None,
    };

    // A custom configuration: heartbeats every 2 s, a peer silent for 10 s is
    // dropped, and no message may exceed 1 MiB.
    let mut config = Config::default();
    config.params.heartbeat_ms = 2_000;
    config.params.idle_timeout_ms = 10_000;
    config.params.max_message_size = 1 << 20;

    let server = Server::bind(&addr, config).await?;
    println!("listening on {}", server.local_addr()?);
    let stop = async move {
        let limit = async {
            match run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = limit => {}
        }
        println!("shutting down: closing every connection gracefully");
    };
    server.serve_with_shutdown(app, stop).await?;
    println!("all connections closed");
    Ok(())
}

/// One connection: streams are echoed back, requests answered; publish/subscribe
/// is routed by the server's hub without the application's help.
async fn app(h: Handle) {
    let streams = {
        let h = h.clone();
        tokio::spawn(async move {
            while let Some(s) = Stream::accept(&h).await {
                tokio::spawn(echo(s));
            }
        })
    };
    h.serve(|subject, payload| match subject {
        b"greet" => Ok(format!("hello, {}!", String::from_utf8_lossy(payload)).into_bytes()),
        b"upper" => Ok(payload.to_ascii_uppercase()),
        _ => Err((404, "no such subject".into())),
    })
    .await;
    let _ = streams.await;
}

/// Copies a stream's bytes back to it, then finishes.
async fn echo(mut s: Stream) {
    let (mut r, mut w) = tokio::io::split(&mut s);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
}
