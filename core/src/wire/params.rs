//! Handshake parameters: the limits and capabilities each side announces in its HELLO.
//!
//! On the wire a parameter list is a sequence of `(id varint, value varint)` pairs.
//! Every parameter a side omits takes its default; unknown ids are skipped, so a later
//! version can add parameters without breaking this one; a repeated id is a protocol
//! error. Each value is the sender's own limit, i.e. what the *receiver* of the
//! HELLO must respect when sending to its author.

use super::codec::{Malformed, Reader, Writer};

/// Capability bit: publish/subscribe.
pub const CAP_PUBSUB: u64 = 1 << 0;
/// Capability bit: multiplexed streams.
pub const CAP_STREAMS: u64 = 1 << 1;
/// Capability bit reserved for session resumption (never set by this version).
pub const CAP_RESUMPTION: u64 = 1 << 2;
/// Every capability this version implements.
pub const CAPS_V1: u64 = CAP_PUBSUB | CAP_STREAMS;

/// Parameter ids.
pub mod id {
    /// Capability bit set.
    pub const CAPABILITIES: u64 = 0;
    /// Largest record payload accepted.
    pub const MAX_RECORD_SIZE: u64 = 1;
    /// Largest frame accepted (type and length included).
    pub const MAX_FRAME_SIZE: u64 = 2;
    /// Largest message accepted after reassembly.
    pub const MAX_MESSAGE_SIZE: u64 = 3;
    /// Initial receive window of each stream.
    pub const INITIAL_STREAM_WINDOW: u64 = 4;
    /// Initial connection-wide stream receive window.
    pub const INITIAL_CONN_WINDOW: u64 = 5;
    /// Requests the peer may have outstanding towards us.
    pub const MAX_CONCURRENT_REQUESTS: u64 = 6;
    /// Streams the peer may have open towards us.
    pub const MAX_CONCURRENT_STREAMS: u64 = 7;
    /// Subscriptions the peer may hold with us.
    pub const MAX_SUBSCRIPTIONS: u64 = 8;
    /// Heartbeat interval in milliseconds, 0 for none.
    pub const HEARTBEAT_MS: u64 = 9;
    /// Idle timeout in milliseconds, 0 for none.
    pub const IDLE_TIMEOUT_MS: u64 = 10;
    /// 1 if the sender requires CRC-32C on every record, 0 if it may be omitted.
    pub const INTEGRITY: u64 = 11;
    /// Messages the peer may have in reassembly at once.
    pub const MAX_CONCURRENT_FRAGMENTED: u64 = 12;
}

/// One side's announced parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Capability bits (default 0 here; [`crate::Config::default`] announces
    /// [`CAPS_V1`]).
    pub capabilities: u64,
    /// Largest record payload accepted, [`super::record::MIN_MAX_PAYLOAD`]..=65535
    /// (default 65,535).
    pub max_record_size: u64,
    /// Largest frame accepted, 1024..=`max_record_size` (default 16,384).
    pub max_frame_size: u64,
    /// Largest message accepted after reassembly (default 16 MiB + 4,096 bytes).
    pub max_message_size: u64,
    /// Initial per-stream receive window (default 256 KiB).
    pub initial_stream_window: u64,
    /// Initial connection-wide stream receive window (default 1 MiB).
    pub initial_conn_window: u64,
    /// Outstanding requests accepted from the peer (default 256).
    pub max_concurrent_requests: u64,
    /// Concurrent streams accepted from the peer (default 100).
    pub max_concurrent_streams: u64,
    /// Subscriptions accepted from the peer (default 256).
    pub max_subscriptions: u64,
    /// Heartbeat interval in ms, 0 for none (default 0 here; 5,000 in
    /// [`crate::Config::default`]).
    pub heartbeat_ms: u64,
    /// Idle timeout in ms, 0 for none (default 0 here; 30,000 in
    /// [`crate::Config::default`]).
    pub idle_timeout_ms: u64,
    /// True if the sender requires a CRC on every record (default true).
    pub integrity: bool,
    /// Messages in reassembly at once (default 8).
    pub max_concurrent_fragmented: u64,
}

impl Default for Params {
    /// The defaults that apply to every parameter a HELLO omits.
    fn default() -> Self {
        Params {
            capabilities: 0,
            max_record_size: 65_535,
            max_frame_size: 16_384,
            // 16 MiB of payload plus room for the frame's fields.
            max_message_size: (16 << 20) + 4096,
            initial_stream_window: 256 << 10,
            initial_conn_window: 1 << 20,
            max_concurrent_requests: 256,
            max_concurrent_streams: 100,
            max_subscriptions: 256,
            heartbeat_ms: 0,
            idle_timeout_ms: 0,
            integrity: true,
            max_concurrent_fragmented: 8,
        }
    }
}

impl Params {
    fn pairs(&self) -> [(u64, u64); 13] {
        [
            (id::CAPABILITIES, self.capabilities),
            (id::MAX_RECORD_SIZE, self.max_record_size),
            (id::MAX_FRAME_SIZE, self.max_frame_size),
            (id::MAX_MESSAGE_SIZE, self.max_message_size),
            (id::INITIAL_STREAM_WINDOW, self.initial_stream_window),
            (id::INITIAL_CONN_WINDOW, self.initial_conn_window),
            (id::MAX_CONCURRENT_REQUESTS, self.max_concurrent_requests),
            (id::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (id::MAX_SUBSCRIPTIONS, self.max_subscriptions),
            (id::HEARTBEAT_MS, self.heartbeat_ms),
            (id::IDLE_TIMEOUT_MS, self.idle_timeout_ms),
            (id::INTEGRITY, u64::from(self.integrity)),
            (
                id::MAX_CONCURRENT_FRAGMENTED,
                self.max_concurrent_fragmented,
            ),
        ]
    }

    /// Writes every parameter that differs from its default, in id order, so equal
    /// parameter sets always encode to equal bytes.
    pub fn encode(&self, w: &mut Writer<'_>) {
        let d = Params::default().pairs();
        for (p, dflt) in self.pairs().iter().zip(d.iter()) {
            if p.1 != dflt.1 {
                w.varint(p.0);
                w.varint(p.1);
            }
        }
    }

    /// Encoded length of [`Params::encode`].
    pub fn encoded_len(&self) -> usize {
        let d = Params::default().pairs();
        self.pairs()
            .iter()
            .zip(d.iter())
            .filter(|(p, dflt)| p.1 != dflt.1)
            .map(|(p, _)| crate::varint::len(p.0) + crate::varint::len(p.1))
            .sum()
    }

    /// Reads a parameter list. Unknown ids are skipped; repeated ids, ids out of
    /// ascending order and out-of-range values are [`Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Params, Malformed> {
        let mut p = Params::default();
        let mut r = Reader::new(bytes);
        let mut last: Option<u64> = None;
        while r.remaining() > 0 {
            let k = r.varint()?;
            let v = r.varint()?;
            if last.is_some_and(|l| k <= l) {
                return Err(Malformed);
            }
            last = Some(k);
            match k {
                id::CAPABILITIES => p.capabilities = v,
                id::MAX_RECORD_SIZE => p.max_record_size = v,
                id::MAX_FRAME_SIZE => p.max_frame_size = v,
                id::MAX_MESSAGE_SIZE => p.max_message_size = v,
                id::INITIAL_STREAM_WINDOW => p.initial_stream_window = v,
                id::INITIAL_CONN_WINDOW => p.initial_conn_window = v,
                id::MAX_CONCURRENT_REQUESTS => p.max_concurrent_requests = v,
                id::MAX_CONCURRENT_STREAMS => p.max_concurrent_streams = v,
                id::MAX_SUBSCRIPTIONS => p.max_subscriptions = v,
                id::HEARTBEAT_MS => p.heartbeat_ms = v,
                id::IDLE_TIMEOUT_MS => p.idle_timeout_ms = v,
                id::INTEGRITY if v <= 1 => p.integrity = v == 1,
                id::INTEGRITY => return Err(Malformed),
                id::MAX_CONCURRENT_FRAGMENTED => p.max_concurrent_fragmented = v,
                _ => {}
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Checks the ranges the spec sets.
    pub fn validate(&self) -> Result<(), Malformed> {
        let rec = self.max_record_size;
        let ok = (super::record::MIN_MAX_PAYLOAD as u64..=super::record::MAX_PAYLOAD as u64)
            .contains(&rec)
            && (super::record::MIN_MAX_PAYLOAD as u64..=rec).contains(&self.max_frame_size)
            && self.max_message_size >= 1
            && self.max_message_size <= 1 << 40
            && self.initial_stream_window <= 1 << 31
            && self.initial_conn_window <= 1 << 31;
        if ok {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_encode_to_nothing_and_round_trip() {
        let p = Params::default();
        assert_eq!(p.encoded_len(), 0);
        assert_eq!(Params::decode(&[]), Ok(p));
        let q = Params {
            capabilities: CAPS_V1,
            heartbeat_ms: 5000,
            integrity: false,
            ..p
        };
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        q.encode(&mut w);
        let n = w.finish().unwrap();
        assert_eq!(n, q.encoded_len());
        assert_eq!(&buf[..n], &[0, 3, 9, 0x88, 0x27, 11, 0]);
        assert_eq!(Params::decode(&buf[..n]), Ok(q));
    }

    #[test]
    fn unknown_skipped_duplicates_and_ranges_refused() {
        assert_eq!(Params::decode(&[99, 5]), Ok(Params::default()));
        assert_eq!(Params::decode(&[9, 1, 9, 2]), Err(Malformed));
        assert_eq!(Params::decode(&[9, 1, 0, 2]), Err(Malformed));
        assert_eq!(Params::decode(&[11, 2]), Err(Malformed));
        assert_eq!(Params::decode(&[1, 10]), Err(Malformed));
        assert_eq!(Params::decode(&[9]), Err(Malformed));
    }
}
