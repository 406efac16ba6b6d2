//! The loom models of the shared driver (`tests/models/mod.rs`) run as ordinary
//! std stress tests: real threads, larger sizes, many iterations. Part of the normal
//! `cargo test -p weft-driver`; the same bodies run under loom in `tests/loom.rs`.
//!
//! Each iteration runs under a bounded wait: a lost wake-up leaves the body's
//! threads asleep for good, and the test then fails naming the model and the
//! iteration instead of hanging. The limit is generous (an iteration takes
//! milliseconds) and never part of a pass: only a hang reaches it. What each body
//! returns (counts, outcomes) is checked here too.
#![cfg(not(loom))]

mod models;

use models::*;
use std::sync::mpsc;
use std::time::Duration;
use weft_core::conn::{CloseKind, Outcome};
use weft_core::ErrorCode;

/// How long one iteration may take before it counts as hung.
const ITERATION_LIMIT: Duration = Duration::from_secs(60);

/// Runs iteration `i` of `name` on a thread of its own and returns what it
/// returned; fails (instead of hanging) if it does not finish in
/// [`ITERATION_LIMIT`], and passes its panic on.
fn bounded<T: Send + 'static>(
    name: &str,
    i: usize,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let v = body();
        let _ = tx.send(());
        v
    });
    // Disconnected (the body panicked) falls through to the join.
    if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(ITERATION_LIMIT) {
        // The thread stays asleep; the process ends with the test run.
        panic!(
            "{name}: iteration {i} did not finish within {ITERATION_LIMIT:?}: \
             a lost wake-up (or a deadlock) left its threads asleep"
        );
    }
    match t.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

#[test]
fn stress_senders_and_driver() {
    for i in 0..50 {
        let got = bounded("senders_and_driver", i, || {
            senders_and_driver(4, 50, 16, 64, 2)
        });
        assert_eq!(got, 4 * 50, "iteration {i}: every message delivered");
    }
}

#[test]
fn stress_blocked_sender_is_woken() {
    for i in 0..500 {
        let (queued, got) = bounded("blocked_sender_is_woken", i, || {
            blocked_sender_is_woken(3, 16, 40)
        });
        assert!(queued > 0, "iteration {i}: the queue was filled first");
        assert_eq!(
            got,
            queued + 3,
            "iteration {i}: the 3 blocked sends went too"
        );
    }
}

#[test]
fn stress_close_racing_send() {
    for i in 0..300 {
        let (accepted, got) = bounded("close_racing_send", i, || {
            close_racing_send(20, 16, 64, None)
        });
        assert!(accepted <= 20, "iteration {i}: {accepted} accepted");
        assert_eq!(
            got, accepted,
            "iteration {i}: every accepted message delivered"
        );
    }
}

/// Regression (found by `model_close_racing_send_own_records` in `tests/loom.rs`):
/// a graceful close must not lose accepted messages that travel in later records.
#[test]
fn stress_close_racing_send_small_records() {
    for i in 0..100 {
        let (accepted, got) = bounded("close_racing_send (small records)", i, || {
            close_racing_send(8, 700, 1500, Some(1024))
        });
        assert!(accepted <= 8, "iteration {i}: {accepted} accepted");
        assert_eq!(
            got, accepted,
            "iteration {i}: every accepted message delivered"
        );
    }
}

#[test]
fn stress_last_handle_drop_wakes_driver() {
    for i in 0..1000 {
        let info = bounded("last_handle_drop_wakes_driver", i, || {
            last_handle_drop_wakes_driver(4)
        })
        .unwrap_or_else(|| panic!("iteration {i}: the server's connection did not close"));
        assert_eq!(
            (info.kind, info.code),
            (CloseKind::Graceful, ErrorCode::NO_ERROR),
            "iteration {i}: {info:?}"
        );
    }
}

#[test]
fn stress_response_races_request_drop() {
    for i in 0..400 {
        let answer = i % 2 == 0;
        let completed = bounded("response_races_request_drop", i, move || {
            response_races_request_drop(answer, i % 3 != 0)
        });
        // Completed before the drop, then with the right outcome; or never.
        let want = if answer {
            Outcome::Ok
        } else {
            Outcome::NoResponder
        };
        if let Some(o) = completed {
            assert_eq!(o, want, "iteration {i}");
        }
    }
}

#[test]
fn stress_heartbeat_shutdown_send() {
    for i in 0..200 {
        let (accepted, got) = bounded("heartbeat_shutdown_send", i, || {
            heartbeat_shutdown_send(10, 16)
        });
        assert!(accepted <= 10, "iteration {i}: {accepted} accepted");
        assert_eq!(
            got, accepted,
            "iteration {i}: delivered exactly when accepted"
        );
    }
}

/// Regression, deterministic and with the default configuration: 8 messages of
/// 16 000 bytes accepted, then a graceful close; all 8 reach the server.
#[test]
fn graceful_close_delivers_queued_messages() {
    assert_eq!(graceful_close_after_queued_messages(8, 16_000), 8);
}
