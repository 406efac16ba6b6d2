//! Configurations and the real handshake the connection targets start from.

use crate::drive::{shuttle, Endpoint};
use std::sync::Arc;
use weft_core::auth::PskAuthenticator;
use weft_core::conn::Connection;
use weft_core::{Config, Instant, Role};

/// The pre-shared key of the PSK configurations.
pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// Its id.
pub const KEY_ID: &[u8] = b"device-7";

/// Start time of every target.
pub const T0: Instant = Instant::from_millis(1_000);

/// A configuration chosen by the bits of `bits`: 1 PSK authentication, 2 no CRC
/// (integrity waived; both sides must waive it), 4 small limits, 8 no heartbeat or
/// idle timeout, 16 manual subscription credit.
pub fn config(bits: u8) -> Config {
    let mut c = Config::default();
    if bits & 1 != 0 {
        let a = PskAuthenticator::with_client_key(KEY_ID, KEY).expect("valid key");
        c.auth = Some(Arc::new(a));
    }
    if bits & 2 != 0 {
        c.params.integrity = false;
    }
    if bits & 4 != 0 {
        c.params.max_record_size = 1024;
        c.params.max_frame_size = 1024;
        c.params.max_message_size = 4096;
        c.params.max_concurrent_requests = 3;
        c.params.max_subscriptions = 2;
        c.params.max_concurrent_streams = 2;
        c.params.max_concurrent_fragmented = 1;
        c.params.initial_stream_window = 2048;
        c.params.initial_conn_window = 4096;
        c.max_outstanding_requests = 3;
        c.max_queued_bytes = 8192;
        c.max_preauth_bytes = 2048;
        c.max_reassembly_bytes = 8192;
        c.max_queued_control = 4;
        c.max_resets_per_interval = 4;
        c.max_empty_frames_per_interval = 8;
        c.subscription_credit = 2;
        c.max_stream_send_buffer = 4096;
        c.max_stream_total_send_buffer = 8192;
        c.max_stream_window = 8192;
        c.max_conn_window = 8192;
    }
    if bits & 8 != 0 {
        c.params.heartbeat_ms = 0;
        c.params.idle_timeout_ms = 0;
    }
    if bits & 16 != 0 {
        c.auto_subscription_credit = false;
    }
    c
}

/// A client and a server with configuration `bits`, after a real handshake.
pub fn handshaken(bits: u8) -> (Endpoint, Endpoint) {
    let mut client = Endpoint::new(
        Connection::new(Role::Client, config(bits), T0, [11; 32]),
        T0,
    );
    let mut server = Endpoint::new(
        Connection::new(Role::Server, config(bits), T0, [22; 32]),
        T0,
    );
    shuttle(&mut client, &mut server);
    assert!(client.conn.is_established() && server.conn.is_established());
    (client, server)
}
