//! Publish/subscribe through the `server` example: a wildcard subscriber, a
//! queue group of two workers that share the work, and a publisher. Checks what
//! arrived and exits non-zero if anything is missing.
//!
//! ```text
//! cargo run -p weft-tokio --example server     # in one terminal
//! cargo run -p weft-tokio --example pubsub -- 127.0.0.1:7400
//! ```

use futures_core::Stream as _;
use std::future::poll_fn;
use std::pin::Pin;
use weft_tokio::{Config, OverflowPolicy, Subscription};

const ORDERS: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7400".into());
    let audit = weft_tokio::connect(&addr, Config::default()).await?;
    let worker_a = weft_tokio::connect(&addr, Config::default()).await?;
    let worker_b = weft_tokio::connect(&addr, Config::default()).await?;
    let publisher = weft_tokio::connect(&addr, Config::default()).await?;

    // `*` matches one token, `>` the rest. Each subscribe returns once the server
    // has registered it, so nothing published afterwards is missed.
    let mut all = audit
        .subscribe("orders.>", None, OverflowPolicy::Wait)
        .await?;
    let mut a = worker_a
        .subscribe("orders.*.new", Some("billing"), OverflowPolicy::Wait)
        .await?;
    let mut b = worker_b
        .subscribe("orders.*.new", Some("billing"), OverflowPolicy::Wait)
        .await?;

    for i in 0..ORDERS {
        let region = if i % 2 == 0 { "eu" } else { "us" };
        publisher
            .publish(
                &format!("orders.{region}.new"),
                format!("order {i}").as_bytes(),
            )
            .await?;
    }
    publisher.publish("orders.eu.audit", b"end of day").await?;

    // The audit subscriber sees everything: 20 orders and the audit record.
    for _ in 0..=ORDERS {
        let d = next(&mut all).await?;
        println!("audit    {} {}", show(&d.topic), show(&d.payload));
    }
    // The group shares the 20 orders: each goes to exactly one worker.
    let (mut got_a, mut got_b) = (0, 0);
    while got_a + got_b < ORDERS {
        tokio::select! {
            d = next(&mut a) => { d?; got_a += 1; }
            d = next(&mut b) => { d?; got_b += 1; }
        }
    }
    println!("billing  worker a took {got_a}, worker b took {got_b}");

    for h in [audit, worker_a, worker_b, publisher] {
        h.shutdown().await?;
    }
    Ok(())
}

/// The next delivery of a subscription, through its `Stream` implementation.
async fn next(s: &mut Subscription) -> Result<weft_tokio::Delivery, String> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx))
        .await
        .ok_or_else(|| "the connection closed".to_string())
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
