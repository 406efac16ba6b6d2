//! The loom models of the shared driver (`tests/models/mod.rs`) run as ordinary
//! std stress tests: real threads, larger sizes, many iterations. Part of the normal
//! `cargo test -p weft-driver`; the same bodies run under loom in `tests/loom.rs`.
#![cfg(not(loom))]

mod models;

use models::*;

#[test]
fn stress_senders_and_driver() {
    for _ in 0..50 {
        senders_and_driver(4, 50, 16, 64, 2);
    }
}

#[test]
fn stress_blocked_sender_is_woken() {
    for _ in 0..500 {
        blocked_sender_is_woken(3, 16, 40);
    }
}

#[test]
fn stress_close_racing_send() {
    for _ in 0..300 {
        close_racing_send(20, 16, 64, None);
    }
}

/// Regression (found by `model_close_racing_send_own_records` in `tests/loom.rs`):
/// a graceful close must not lose accepted messages that travel in later records.
#[test]
fn stress_close_racing_send_small_records() {
    for _ in 0..100 {
        close_racing_send(8, 700, 1500, Some(1024));
    }
}

#[test]
fn stress_last_handle_drop_wakes_driver() {
    for _ in 0..1000 {
        last_handle_drop_wakes_driver(4);
    }
}

#[test]
fn stress_response_races_request_drop() {
    for i in 0..400 {
        response_races_request_drop(i % 2 == 0, i % 3 != 0);
    }
}

#[test]
fn stress_heartbeat_shutdown_send() {
    for _ in 0..200 {
        heartbeat_shutdown_send(10, 16);
    }
}

/// Regression, deterministic and with the default configuration: 8 messages of
/// 16 000 bytes accepted, then a graceful close; all 8 reach the server.
#[test]
fn graceful_close_delivers_queued_messages() {
    assert_eq!(graceful_close_after_queued_messages(8, 16_000), 8);
}
