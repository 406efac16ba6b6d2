//! A Weft server on io_uring: answers the same requests as the weft-tokio
//! `server` example (`greet`, `upper`, 404 for anything else), routes
//! publish/subscribe between its clients, and shuts down gracefully when its
//! standard input ends or reads a line `quit` (or after `--for SECS`). Linux
//! only; it says so and exits if io_uring is unavailable.
//!
//! ```text
//! cargo run -p weft-uring --example uring_server -- 127.0.0.1:7400
//! # then, in another terminal:
//! cargo run -p weft-tokio --example client -- 127.0.0.1:7400
//! cargo run -p weft-mio --example blocking_client -- 127.0.0.1:7400
//! # and back in the first one: Enter `quit` (or Ctrl-D) for a graceful shutdown
//! ```

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;
use weft_core::Config;
use weft_uring::{Executor, Handle, Server};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7400".into());
    // `--for SECS`: shut down after that long at the latest (a backstop for
    // scripts); `quit` or the end of input shuts it down at any time.
    let run_for = match (args.next().as_deref(), args.next()) {
        (Some("--for"), Some(s)) => s.parse().ok().map(Duration::from_secs),
        _ => None,
    };

    // The applications run on two worker threads; the ring's thread only moves
    // bytes and hands each new connection over.
    let workers = Executor::new(2)?;
    let spawner = workers.spawner();
    let server = match Server::bind_with(&addr, Config::default(), move |h| spawner.spawn(app(h))) {
        Ok(s) => s,
        Err(e) if weft_uring::is_unavailable(&e) => {
            eprintln!("io_uring unavailable: {e}");
            std::process::exit(2);
        }
        Err(e) => return Err(e),
    };
    println!("listening on {}", server.local_addr());

    let (stop, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "quit" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = stop.send(());
    });
    match run_for {
        Some(d) => {
            let _ = stopped.recv_timeout(d);
        }
        None => {
            let _ = stopped.recv();
        }
    }

    println!("shutting down: closing every connection gracefully");
    let report = server.graceful_shutdown();
    // The applications saw their connections end; their workers can go.
    workers.shutdown();
    println!(
        "all connections closed ({} gracefully, {} otherwise, {} cut at the deadline)",
        report.graceful, report.not_graceful, report.cut
    );
    Ok(())
}

/// One connection: requests answered; publish/subscribe is routed by the
/// server's hub without the application's help.
async fn app(h: Handle) {
    h.serve(|subject, payload| match subject {
        b"greet" => Ok(format!("hello, {}!", String::from_utf8_lossy(payload)).into_bytes()),
        b"upper" => Ok(payload.to_ascii_uppercase()),
        _ => Err((404, "no such subject".into())),
    })
    .await;
}
