//! Configurations and the real handshake the connection targets start from.

use crate::drive::Endpoint;
use weft_core::auth::PskAuthenticator;
use weft_core::testing::{self, Pair};
use weft_core::{Config, Instant};

/// The pre-shared key of the PSK configurations (weft-core's test key).
pub const KEY: &[u8] = testing::KEY;
/// Its id.
pub const KEY_ID: &[u8] = b"device-7";

/// Start time of every target (that of weft-core's test `Pair`).
pub const T0: Instant = testing::START;

thread_local! {
    /// One authenticator for every configuration: without a heap weft-core holds a
    /// `'static` reference, which `testing::auth_handle` makes by leaking, and a
    /// leak per input runs the fuzzer out of memory.
    static AUTH: weft_core::config::AuthHandle = testing::auth_handle(
        PskAuthenticator::with_client_key(KEY_ID, KEY).expect("valid key"),
    );
}

/// A configuration chosen by the bits of `bits`: 1 PSK authentication, 2 no CRC
/// (integrity waived; both sides must waive it), 4 small limits, 8 no heartbeat or
/// idle timeout, 16 manual subscription credit.
pub fn config(bits: u8) -> Config {
    let mut c = Config::default();
    if bits & 1 != 0 {
        c.auth = Some(AUTH.with(Clone::clone));
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

/// A client and a server with configuration `bits`, after a real handshake
/// (weft-core's shared test `Pair`, seeds and clock included).
pub fn handshaken(bits: u8) -> (Endpoint, Endpoint) {
    let p = Pair::established(config(bits), config(bits));
    let Pair {
        client,
        server,
        now,
        ..
    } = p;
    (Endpoint::new(client, now), Endpoint::new(server, now))
}
